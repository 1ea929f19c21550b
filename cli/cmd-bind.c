/* SPDX-License-Identifier: GPL-2.0-or-later */
/* iovctl bind, unbind, restore */
#include <stdio.h>
#include <string.h>

#include "iovctl.h"
#include "common/strv.h"

static const char bind_help[] =
	"Usage: iovctl bind [--json] [--no-load] [--force] DEVICE... DRIVER\n"
	"       iovctl bind [--json] --group [--no-load] [--force] DEVICE DRIVER\n"
	"\n"
	"DEVICE is a PCI address (0000:3b:00.0 or 3b:00.0), libvirt's name of it\n"
	"(pci_0000_3b_00_0) or a network interface of it (ens1f0), as dpdk-devbind\n"
	"takes them. Several devices are bound all or nothing: every one is checked\n"
	"first, and if one fails those already moved are put back.\n"
	"\n"
	"Bind a device to DRIVER (e.g. vfio-pci) through driver_override. The override\n"
	"is written before the old driver lets go, the result is verified through the\n"
	"driver link, and if DRIVER does not take the device the previous driver is put\n"
	"back. The driver's module is loaded when needed. The previous driver is\n"
	"remembered for 'iovctl restore'. A device the host uses (an interface up,\n"
	"addressed, routed or in a bond or bridge; a mounted, swap or held disk; the boot\n"
	"VGA device; a PF with VFs; a device iovd allocated) is refused, naming every\n"
	"reason, and nothing is changed.\n"
	"\n"
	"  --group     bind every endpoint in the device's IOMMU group (bridges stay on\n"
	"              pcieport); all or nothing\n"
	"  --no-load   do not load the driver's kernel module\n"
	"  --force     take a device the host uses anyway (says what it overrides)\n";

static const char unbind_help[] =
	"Usage: iovctl unbind [--json] [--force] DEVICE\n"
	"\n"
	"Unbind a device from its driver; the driver is remembered for 'iovctl restore'.\n"
	"DEVICE is a PCI address, libvirt's pci_DDDD_BB_DD_F or a network interface.\n"
	"A device the host uses is refused as by 'iovctl bind'.\n"
	"\n"
	"  --force     unbind it anyway (says what it overrides)\n";

static const char restore_help[] =
	"Usage: iovctl restore [--json] [--force] DEVICE\n"
	"\n"
	"Put a device back on the driver it had before iovctl first moved it, and clear\n"
	"its driver_override. Without such a record but with an override set, clear the\n"
	"override and let the kernel choose (what 'driverctl unset-override' does);\n"
	"without either, change nothing. A device the host uses, or one iovd allocated,\n"
	"is refused as by 'iovctl bind'.\n"
	"\n"
	"  --force     restore it anyway (says what it overrides)\n";

static struct json_object *result_json(const char *action, const char *address, const struct iovk_bind_result *res,
				       struct json_object *forced)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "address", json_object_new_string(address));
	json_object_object_add(o, "action", json_object_new_string(action));
	json_object_object_add(o, "driver", res->driver[0] ? json_object_new_string(res->driver) : NULL);
	json_object_object_add(o, "previous_driver",
			       res->previous_driver[0] ? json_object_new_string(res->previous_driver) : NULL);
	json_object_object_add(o, "changed", json_object_new_boolean(res->changed));
	json_object_object_add(o, "module_loaded", json_object_new_boolean(res->module_loaded));
	if (forced)
		json_object_object_add(o, "overridden", forced);
	return o;
}

static void print_result_text(const char *address, const struct iovk_bind_result *res)
{
	if (res->module_loaded)
		printf("%s: loaded the kernel module for %s\n", address, res->driver);
	if (!res->changed)
		printf("%s: already %s%s\n", address, res->driver[0] ? "bound to " : "without a driver",
		       res->driver);
	else if (res->driver[0])
		printf("%s: bound to %s (was %s)\n", address, res->driver,
		       res->previous_driver[0] ? res->previous_driver : "no driver");
	else
		printf("%s: unbound (was %s)\n", address, res->previous_driver);
}

static void print_result(struct cli *cli, const char *action, const char *address,
			 const struct iovk_bind_result *res, struct json_object *forced)
{
	if (cli->json) {
		print_json(result_json(action, address, res, forced));
		return;
	}
	json_object_put(forced);
	print_result_text(address, res);
}

/* Reads the device once so that a bad address is a usage error and an
 * unknown device a clear failure, before anything is touched. */
static int check_device(struct cli *cli, const char *cmd, const char *address,
			char canonical[static IOVK_PCI_ADDR_MAX], int *ret_group)
{
	struct iovk_device *d;
	int r = resolve_device(cli, cmd, address, canonical);

	if (r != EXIT_OK)
		return r;
	r = iovk_device_new(cli->ctx, canonical, &d);
	if (r < 0)
		return fail_lib(cli, r, "Failed to %s %s", cmd, address);
	snprintf(canonical, IOVK_PCI_ADDR_MAX, "%s", iovk_device_get_address(d));
	if (ret_group)
		*ret_group = iovk_device_get_iommu_group(d);
	iovk_device_unref(d);
	return EXIT_OK;
}

/* The endpoints of the group that would leave their driver: what --group takes. */
static int group_movers(struct cli *cli, int g, const char *driver, char ***ret)
{
	struct iovk_iommu_group *grp = NULL;
	char **list;
	size_t n = 0;
	int r;

	r = iovk_iommu_group_new(cli->ctx, g, &grp);
	if (r < 0)
		return r;
	list = calloc(iovk_iommu_group_get_n_devices(grp) + 1, sizeof(*list));
	for (size_t k = 0; list && k < iovk_iommu_group_get_n_devices(grp); k++) {
		struct iovk_device *d = iovk_iommu_group_get_devices(grp)[k];
		const char *drv = iovk_device_get_driver(d);

		if (!iovk_device_is_bridge(d) && !(drv && strcmp(drv, driver) == 0))
			list[n++] = strdup(iovk_device_get_address(d));
	}
	iovk_iommu_group_unref(grp);
	if (!list)
		return -ENOMEM;
	*ret = list;
	return (int)n;
}

/*
 * Several devices, as dpdk-devbind takes them, but all or nothing as
 * --group is: every device resolved and read, and the host-use rule asked
 * of all of them, before the first is moved; when one bind fails, those
 * this command moved are put back (iovk_device_bind_undo()) and named.
 */
static int bind_several(struct cli *cli, char **args, size_t n_args, const char *driver, unsigned flags, bool force)
{
	_cleanup_free_ char(*addrs)[IOVK_PCI_ADDR_MAX] = calloc(n_args, sizeof(*addrs));
	_cleanup_free_ const char **list = calloc(n_args, sizeof(*list));
	_cleanup_free_ const char **movers = calloc(n_args, sizeof(*movers));
	_cleanup_free_ struct iovk_bind_result *res = calloc(n_args, sizeof(*res));
	_cleanup_free_ struct json_object **forced = calloc(n_args, sizeof(*forced));
	struct json_object *arr;
	char action[512];
	size_t n = 0, len = 0, n_movers = 0;
	int r, ex = EXIT_FAILED;

	if (!addrs || !list || !movers || !res || !forced)
		return fail(cli, -ENOMEM, "Failed to bind %zu devices to %s", n_args, driver);
	for (size_t k = 0; k < n_args; k++) {
		bool dup = false;

		r = check_device(cli, "bind", args[k], addrs[n], NULL);
		if (r != EXIT_OK)
			return r;
		for (size_t j = 0; j < n; j++)
			dup = dup || strcmp(addrs[j], addrs[n]) == 0;
		if (!dup) {
			list[n] = addrs[n];
			len += (size_t)snprintf(action + len, len < sizeof(action) ? sizeof(action) - len : 0, "%s%s",
						n ? ", " : "bind ", addrs[n]);
			n++;
		}
	}
	if (len < sizeof(action))
		snprintf(action + len, sizeof(action) - len, " to %s", driver);
	/* Only a move asks (as for one device). Without --force one refusal
	 * names every reason of every device; with it, what is overridden is
	 * said, and recorded, per device. */
	for (size_t k = 0; k < n; k++) {
		char now[64];

		if (iovk_device_read_driver(cli->ctx, list[k], now, sizeof(now)) < 0 || strcmp(now, driver) != 0)
			movers[n_movers++] = list[k];
	}
	if (!force && check_host_use(cli, action, movers, n_movers, false, NULL) != EXIT_OK)
		return EXIT_FAILED;
	for (size_t k = 0; force && k < n; k++) {
		char what[128];
		bool moves = false;

		for (size_t j = 0; j < n_movers; j++)
			moves = moves || movers[j] == list[k];
		if (!moves)
			continue;

		snprintf(what, sizeof(what), "bind %s to %s", list[k], driver);
		if (check_host_use(cli, what, &list[k], 1, true, &forced[k]) != EXIT_OK)
			goto out;
	}
	for (size_t k = 0; k < n; k++) {
		res[k] = (struct iovk_bind_result)IOVK_BIND_RESULT_INIT;
		r = iovk_device_bind(cli->ctx, list[k], driver, flags, &res[k]);
		if (r >= 0)
			continue;
		{
			_cleanup_free_ char *why = strdup(iovk_ctx_get_error(cli->ctx));
			char undone[512] = "";
			size_t ul = 0;

			for (size_t j = k; j-- > 0;)
				if (res[j].changed && iovk_device_bind_undo(cli->ctx, list[j], &res[j]) >= 0 &&
				    ul < sizeof(undone))
					ul += (size_t)snprintf(undone + ul, sizeof(undone) - ul, "%s%s", ul ? ", " : "",
							       list[j]);
			ex = fail_detail(cli, r, why, "Failed to %s (%s failed; %s%s)", action, list[k],
					 undone[0] ? "put back: " : "none had moved", undone);
			goto out;
		}
	}
	arr = json_object_new_array();
	for (size_t k = 0; k < n; k++) {
		if (cli->json)
			json_object_array_add(arr, result_json("bind", list[k], &res[k], TAKE_PTR(forced[k])));
		else
			print_result_text(list[k], &res[k]);
	}
	if (cli->json)
		print_json(arr);
	else
		json_object_put(arr);
	ex = EXIT_OK;
out:
	for (size_t k = 0; k < n; k++)
		json_object_put(forced[k]);
	return ex;
}

int cmd_bind(struct cli *cli, int argc, char **argv)
{
	const char *group = NULL, *no_load = NULL, *force = NULL;
	const struct cmd_opt opts[] = { { "group", false, &group }, { "no-load", false, &no_load },
					{ "force", false, &force }, {} };
	struct iovk_bind_result res = IOVK_BIND_RESULT_INIT;
	struct json_object *forced = NULL;
	char addr[IOVK_PCI_ADDR_MAX], action[256], now[64];
	const char *one[1];
	unsigned flags = 0;
	size_t n;
	int r, i, ex, g = -1;

	i = parse_cmd_opts(cli, "bind", bind_help, argc, argv, opts);
	if (i < 0)
		return i == -1 ? EXIT_OK : EXIT_USAGE;
	if (argc - i < 2)
		return usage_error(cli, "bind", "expected a device and a driver name");
	if (group && argc - i != 2)
		return usage_error(cli, "bind", "--group takes one device");
	if (!iovk_driver_name_is_valid(argv[argc - 1]))
		return usage_error(cli, "bind", "'%s' is not a driver name (1 to 63 letters, digits, '-', '_', '.')",
				   argv[argc - 1]);
	if (no_load)
		flags |= IOVK_BIND_NO_MODULE_LOAD;
	if (force)
		flags |= IOVK_BIND_FORCE;
	if (argc - i > 2)
		return bind_several(cli, argv + i, (size_t)(argc - i - 1), argv[argc - 1], flags, force);
	r = check_device(cli, "bind", argv[i], addr, &g);
	if (r != EXIT_OK)
		return r;

	if (group) {
		size_t changed = 0;
		char **movers = NULL;

		if (g < 0)
			/* ENODEV: the library's errno for a device without a group (lib/vfio/device.c) */
			return fail_text(cli, -ENODEV, "Failed to bind the IOMMU group of %s: the device has no IOMMU group "
				    "(the IOMMU is off; see 'iovctl doctor')", argv[i]);
		r = group_movers(cli, g, argv[i + 1], &movers);
		if (r < 0)
			return fail_lib(cli, r, "Failed to bind the IOMMU group of %s to %s", argv[i], argv[i + 1]);
		snprintf(action, sizeof(action), "bind IOMMU group %d of %s to %s", g, addr, argv[i + 1]);
		n = (size_t)r;
		if (force && check_host_use(cli, action, (const char *const *)movers, n, true, &forced) != EXIT_OK) {
			strv_free(movers);
			return EXIT_FAILED;
		}
		r = iovk_iommu_group_bind(cli->ctx, g, argv[i + 1], flags, &changed);
		if (r == -EBUSY && !force) {
			ex = fail_refused(cli, r, action, (const char *const *)movers, n, "--force");
			strv_free(movers);
			return ex;
		}
		strv_free(movers);
		if (r < 0)
			json_object_put(forced);
		if (r < 0)
			return fail_lib(cli, r, "Failed to bind the IOMMU group of %s to %s", argv[i], argv[i + 1]);
		if (cli->json) {
			struct json_object *o = json_object_new_object();

			json_object_object_add(o, "address", json_object_new_string(addr));
			json_object_object_add(o, "action", json_object_new_string("bind-group"));
			json_object_object_add(o, "iommu_group", json_object_new_int(g));
			json_object_object_add(o, "driver", json_object_new_string(argv[i + 1]));
			json_object_object_add(o, "devices_changed", json_object_new_int((int)changed));
			if (forced)
				json_object_object_add(o, "overridden", forced);
			print_json(o);
		} else {
			json_object_put(forced);
			printf("IOMMU group %d of %s: %zu device(s) moved to %s\n", g, addr, changed, argv[i + 1]);
		}
		return EXIT_OK;
	}

	snprintf(action, sizeof(action), "bind %s to %s", addr, argv[i + 1]);
	one[0] = addr;
	/* Only a move asks: binding to the driver it has changes nothing. */
	if (force && (iovk_device_read_driver(cli->ctx, addr, now, sizeof(now)) < 0 || strcmp(now, argv[i + 1]) != 0) &&
	    check_host_use(cli, action, one, 1, true, &forced) != EXIT_OK)
		return EXIT_FAILED;
	r = iovk_device_bind(cli->ctx, addr, argv[i + 1], flags, &res);
	if (r == -EBUSY && !force)
		return fail_refused(cli, r, action, one, 1, "--force");
	if (r < 0)
		json_object_put(forced);
	if (r < 0)
		return fail_lib(cli, r, "Failed to bind %s to %s", argv[i], argv[i + 1]);
	print_result(cli, "bind", addr, &res, forced);
	return EXIT_OK;
}

/* unbind and restore: one device, --force, the host-use rule first. */
static int unbind_or_restore(struct cli *cli, const char *cmd, const char *help, int argc, char **argv)
{
	const char *force = NULL;
	const struct cmd_opt opts[] = { { "force", false, &force }, {} };
	struct iovk_bind_result res = IOVK_BIND_RESULT_INIT;
	struct json_object *forced = NULL;
	char addr[IOVK_PCI_ADDR_MAX], action[256];
	const char *one[1] = { addr };
	bool unbind = strcmp(cmd, "unbind") == 0;
	unsigned flags;
	int r, i;

	i = parse_cmd_opts(cli, cmd, help, argc, argv, opts);
	if (i < 0)
		return i == -1 ? EXIT_OK : EXIT_USAGE;
	if (argc - i != 1)
		return usage_error(cli, cmd, "expected one device address");
	flags = force ? IOVK_BIND_FORCE : 0;
	r = check_device(cli, cmd, argv[i], addr, NULL);
	if (r != EXIT_OK)
		return r;
	snprintf(action, sizeof(action), "%s %s", cmd, addr);
	if (force && check_host_use(cli, action, one, 1, true, &forced) != EXIT_OK)
		return EXIT_FAILED;
	r = unbind ? iovk_device_unbind(cli->ctx, addr, flags, &res) : iovk_device_restore(cli->ctx, addr, flags, &res);
	if (r == -EBUSY && !force)
		return fail_refused(cli, r, action, one, 1, "--force");
	if (r < 0) {
		json_object_put(forced);
		return fail_lib(cli, r, "Failed to %s %s", cmd, addr);
	}
	print_result(cli, cmd, addr, &res, forced);
	return EXIT_OK;
}

int cmd_unbind(struct cli *cli, int argc, char **argv)
{
	return unbind_or_restore(cli, "unbind", unbind_help, argc, argv);
}

int cmd_restore(struct cli *cli, int argc, char **argv)
{
	return unbind_or_restore(cli, "restore", restore_help, argc, argv);
}
