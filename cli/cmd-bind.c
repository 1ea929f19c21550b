/* SPDX-License-Identifier: GPL-2.0-or-later */
/* iovctl bind, unbind, restore */
#include <stdio.h>
#include <string.h>

#include "iovctl.h"

static const char bind_help[] =
	"Usage: iovctl bind [--json] [--group] [--no-load] BDF DRIVER\n"
	"\n"
	"Bind a device to DRIVER (e.g. vfio-pci) through driver_override. The override\n"
	"is written before the old driver lets go, the result is verified through the\n"
	"driver link, and if DRIVER does not take the device the previous driver is put\n"
	"back. The driver's module is loaded when needed. The previous driver is\n"
	"remembered for 'iovctl restore'.\n"
	"\n"
	"  --group     bind every endpoint in the device's IOMMU group (bridges stay on\n"
	"              pcieport); all or nothing\n"
	"  --no-load   do not load the driver's kernel module\n";

static const char unbind_help[] =
	"Usage: iovctl unbind [--json] BDF\n"
	"\n"
	"Unbind a device from its driver; the driver is remembered for 'iovctl restore'.\n";

static const char restore_help[] =
	"Usage: iovctl restore [--json] BDF\n"
	"\n"
	"Put a device back on the driver it had before iovctl first moved it, and clear\n"
	"its driver_override. Without such a record but with an override set, clear the\n"
	"override and let the kernel choose (what 'driverctl unset-override' does);\n"
	"without either, change nothing.\n";

static void print_result(struct cli *cli, const char *action, const char *address,
			 const struct iovk_bind_result *res)
{
	if (cli->json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "address", json_object_new_string(address));
		json_object_object_add(o, "action", json_object_new_string(action));
		json_object_object_add(o, "driver", res->driver[0] ? json_object_new_string(res->driver) : NULL);
		json_object_object_add(o, "previous_driver",
				       res->previous_driver[0] ? json_object_new_string(res->previous_driver) : NULL);
		json_object_object_add(o, "changed", json_object_new_boolean(res->changed));
		json_object_object_add(o, "module_loaded", json_object_new_boolean(res->module_loaded));
		print_json(o);
		return;
	}
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

/* Reads the device once so that a bad address is a usage error and an
 * unknown device a clear failure, before anything is touched. */
static int check_device(struct cli *cli, const char *cmd, const char *address,
			char canonical[static IOVK_PCI_ADDR_MAX], int *ret_group)
{
	struct iovk_device *d;
	int r = iovk_device_new(cli->ctx, address, &d);

	if (r == -EINVAL)
		return usage_error(cli, cmd, "%s", iovk_ctx_get_error(cli->ctx));
	if (r < 0)
		return fail_lib(cli, r, "Failed to %s %s", cmd, address);
	snprintf(canonical, IOVK_PCI_ADDR_MAX, "%s", iovk_device_get_address(d));
	if (ret_group)
		*ret_group = iovk_device_get_iommu_group(d);
	iovk_device_unref(d);
	return EXIT_OK;
}

int cmd_bind(struct cli *cli, int argc, char **argv)
{
	const char *group = NULL, *no_load = NULL;
	const struct cmd_opt opts[] = { { "group", false, &group }, { "no-load", false, &no_load }, {} };
	struct iovk_bind_result res = {};
	char addr[IOVK_PCI_ADDR_MAX];
	unsigned flags = 0;
	int r, i, g = -1;

	i = parse_cmd_opts(cli, "bind", bind_help, argc, argv, opts);
	if (i < 0)
		return i == -1 ? EXIT_OK : EXIT_USAGE;
	if (argc - i != 2)
		return usage_error(cli, "bind", "expected a device address and a driver name");
	if (no_load)
		flags |= IOVK_BIND_NO_MODULE_LOAD;
	r = check_device(cli, "bind", argv[i], addr, &g);
	if (r != EXIT_OK)
		return r;

	if (group) {
		size_t changed = 0;

		if (g < 0)
			return fail(cli, 0, "Failed to bind the IOMMU group of %s: the device has no IOMMU group "
				    "(the IOMMU is off; see 'iovctl doctor')", argv[i]);
		r = iovk_iommu_group_bind(cli->ctx, g, argv[i + 1], flags, &changed);
		if (r == -EINVAL && strstr(iovk_ctx_get_error(cli->ctx), "is not a driver name"))
			return usage_error(cli, "bind", "%s", iovk_ctx_get_error(cli->ctx));
		if (r < 0)
			return fail_lib(cli, r, "Failed to bind the IOMMU group of %s to %s", argv[i], argv[i + 1]);
		if (cli->json) {
			struct json_object *o = json_object_new_object();

			json_object_object_add(o, "address", json_object_new_string(addr));
			json_object_object_add(o, "action", json_object_new_string("bind-group"));
			json_object_object_add(o, "iommu_group", json_object_new_int(g));
			json_object_object_add(o, "driver", json_object_new_string(argv[i + 1]));
			json_object_object_add(o, "devices_changed", json_object_new_int((int)changed));
			print_json(o);
		} else
			printf("IOMMU group %d of %s: %zu device(s) moved to %s\n", g, addr, changed, argv[i + 1]);
		return EXIT_OK;
	}

	r = iovk_device_bind(cli->ctx, argv[i], argv[i + 1], flags, &res);
	if (r == -EINVAL && strstr(iovk_ctx_get_error(cli->ctx), "is not a driver name"))
		return usage_error(cli, "bind", "%s", iovk_ctx_get_error(cli->ctx));
	if (r < 0)
		return fail_lib(cli, r, "Failed to bind %s to %s", argv[i], argv[i + 1]);
	print_result(cli, "bind", addr, &res);
	return EXIT_OK;
}

int cmd_unbind(struct cli *cli, int argc, char **argv)
{
	struct iovk_bind_result res = {};
	char addr[IOVK_PCI_ADDR_MAX];
	int r, i;

	i = parse_cmd_opts(cli, "unbind", unbind_help, argc, argv, NULL);
	if (i < 0)
		return i == -1 ? EXIT_OK : EXIT_USAGE;
	if (argc - i != 1)
		return usage_error(cli, "unbind", "expected one device address");
	r = check_device(cli, "unbind", argv[i], addr, NULL);
	if (r != EXIT_OK)
		return r;
	r = iovk_device_unbind(cli->ctx, argv[i], &res);
	if (r < 0)
		return fail_lib(cli, r, "Failed to unbind %s", argv[i]);
	print_result(cli, "unbind", addr, &res);
	return EXIT_OK;
}

int cmd_restore(struct cli *cli, int argc, char **argv)
{
	struct iovk_bind_result res = {};
	char addr[IOVK_PCI_ADDR_MAX];
	int r, i;

	i = parse_cmd_opts(cli, "restore", restore_help, argc, argv, NULL);
	if (i < 0)
		return i == -1 ? EXIT_OK : EXIT_USAGE;
	if (argc - i != 1)
		return usage_error(cli, "restore", "expected one device address");
	r = check_device(cli, "restore", argv[i], addr, NULL);
	if (r != EXIT_OK)
		return r;
	r = iovk_device_restore(cli->ctx, argv[i], &res);
	if (r < 0)
		return fail_lib(cli, r, "Failed to restore %s", argv[i]);
	print_result(cli, "restore", addr, &res);
	return EXIT_OK;
}
