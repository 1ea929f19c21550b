/* SPDX-License-Identifier: GPL-2.0-or-later */
/* iovctl overrides: the driver overrides iovkit.json(5) persists, and applying them as devices appear */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "iovctl.h"

static const char overrides_help[] =
	"Usage: iovctl overrides [--json] [FILE|DIR...]\n"
	"       iovctl overrides list [--json] [FILE|DIR...]\n"
	"       iovctl overrides apply [--json] [--config FILE|DIR] DEVICE...\n"
	"\n"
	"The drivers that iovkit.json(5) gives VFs and devices (what driverctl calls\n"
	"persisted overrides), from " IOVKIT_APPLY_DIR " unless files or directories are\n"
	"named: each with the device it names now, the driver it asks for, the driver\n"
	"bound now, and whether it is in effect. A devices[] selector (an address glob,\n"
	"\"ids\") lists each device it matches.\n"
	"\n"
	"apply binds each DEVICE (a PCI address) to the driver its override asks for,\n"
	"and does nothing for a device without one (exit 0): the udev rule\n"
	"(90-iovkit.rules) runs it for every PCI device that appears, so hotplugged\n"
	"devices and VFs created at any time come up on their configured driver.\n"
	"A DEVICE without its physfn link yet that a PF's SR-IOV offset and stride\n"
	"place as one of its VFs is waited for, up to 1 s, until the kernel links it.\n"
	"\n"
	"  --config PATH  read this file or directory instead of " IOVKIT_APPLY_DIR "\n"
	"  -j, --json     list: [override...]; apply: [override... with \"changed\"]\n"
	"                 (see iovctl(8))\n";

static struct json_object *override_to_json(const struct iovk_override *o)
{
	struct json_object *j = json_object_new_object();

	json_object_object_add(j, "file", json_object_new_string(o->file));
	json_object_object_add(j, "path", json_object_new_string(o->path));
	json_object_object_add(j, "match", json_string_or_null(o->match));
	json_object_object_add(j, "pf", json_string_or_null(o->pf));
	json_object_object_add(j, "vf", o->vf >= 0 ? json_object_new_int(o->vf) : NULL);
	json_object_object_add(j, "device", json_string_or_null(o->device));
	json_object_object_add(j, "wanted_driver", json_string_or_null(o->driver));
	json_object_object_add(j, "driver", json_string_or_null(o->current_driver));
	json_object_object_add(j, "in_effect", json_object_new_boolean(o->in_effect));
	json_object_object_add(j, "force", json_object_new_boolean(o->force));
	return j;
}

static int load_all(struct cli *cli, struct iovk_config *config, char *const *paths, int n)
{
	struct stat st;
	int ret;

	if (n == 0) {
		/* No configuration at all is no override, not an error: the udev
		 * rule runs on hosts that never wrote one. */
		if (stat(IOVKIT_APPLY_DIR, &st) < 0 && errno == ENOENT)
			return EXIT_OK;
		return load_config(cli, config, IOVKIT_APPLY_DIR);
	}
	for (int i = 0; i < n; i++) {
		ret = load_config(cli, config, paths[i]);
		if (ret != EXIT_OK)
			return ret;
	}
	return EXIT_OK;
}

/* What the source of a row reads like in text: "devices[1] (8086:10ed) of FILE". */
static void print_entry(const struct iovk_override *o)
{
	printf("%s%s%s%s of %s", o->path, o->match ? " (" : "", o->match ?: "", o->match ? ")" : "", o->file);
}

static int overrides_list(struct cli *cli, int argc, char **argv)
{
	struct iovk_config *config = NULL;
	struct iovk_overrides *ov = NULL;
	int i, r, ret;

	i = parse_cmd_opts(cli, "overrides", overrides_help, argc, argv, NULL);
	if (i < 0)
		return i == -1 ? EXIT_OK : EXIT_USAGE;
	r = iovk_config_new(cli->ctx, &config);
	if (r < 0)
		return fail(cli, r, "Failed to create a configuration");
	ret = load_all(cli, config, argv + i, argc - i);
	if (ret != EXIT_OK)
		goto out;
	r = iovk_overrides_new(cli->ctx, config, NULL, &ov);
	if (r < 0) {
		ret = fail_config(cli, r, "Failed to read the overrides");
		goto out;
	}
	if (cli->json) {
		struct json_object *a = json_object_new_array();

		for (size_t k = 0; k < iovk_overrides_get_n(ov); k++)
			json_object_array_add(a, override_to_json(iovk_overrides_get(ov, k)));
		print_json(a);
		goto out;
	}
	if (iovk_overrides_get_n(ov) == 0) {
		printf("No driver overrides: the configuration gives no VF or device a driver.\n");
		goto out;
	}
	printf("%-13s %-14s %-14s %-9s %s\n", "DEVICE", "OVERRIDE", "DRIVER", "IN EFFECT", "ENTRY");
	for (size_t k = 0; k < iovk_overrides_get_n(ov); k++) {
		const struct iovk_override *o = iovk_overrides_get(ov, k);
		char dev[64];

		if (o->device)
			snprintf(dev, sizeof(dev), "%s", o->device);
		else if (o->vf >= 0)
			snprintf(dev, sizeof(dev), "(VF %d)", o->vf);
		else
			snprintf(dev, sizeof(dev), "(absent)");
		printf("%-13s %-14s %-14s %-9s ", dev, driver_or_none(o->driver),
		       o->device ? driver_or_none(o->current_driver) : "-", o->in_effect ? "yes" : "no");
		print_entry(o);
		putchar('\n');
	}
out:
	iovk_overrides_unref(ov);
	iovk_config_unref(config);
	return ret;
}

static long read_long(const char *dir, const char *name)
{
	char path[PATH_MAX], buf[32] = "";
	FILE *f;
	char *end;
	long v;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "re");
	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	fclose(f);
	v = strtol(buf, &end, 10);
	return end != buf && (*end == '\n' || !*end) ? v : -1;
}

static long routing_id(const struct iovk_pci_addr *a)
{
	return (long)a->bus << 8 | (long)a->dev << 3 | a->fn;
}

/*
 * Whether a PF on the system places address as one of its VFs (what the
 * kernel computes in pci_iov_virtfn_bus/devfn: the PF's routing ID +
 * sriov_offset + i * sriov_stride, i below sriov_totalvfs: sriov_numvfs
 * still reads 0 while the kernel adds the VFs).
 */
static bool placed_as_vf(const char *devices, const struct iovk_pci_addr *a)
{
	DIR *dir = opendir(devices);
	struct dirent *de;
	bool found = false;

	if (!dir)
		return false;
	while (!found && (de = readdir(dir))) {
		char pf[PATH_MAX];
		struct iovk_pci_addr pa;
		long total, offset, stride, diff;

		if (iovk_pci_addr_parse(de->d_name, &pa) < 0 || pa.domain != a->domain)
			continue;
		snprintf(pf, sizeof(pf), "%s/%s", devices, de->d_name);
		if ((total = read_long(pf, "sriov_totalvfs")) <= 0 || (offset = read_long(pf, "sriov_offset")) <= 0 ||
		    (stride = read_long(pf, "sriov_stride")) < 0)
			continue;
		diff = routing_id(a) - routing_id(&pa) - offset;
		found = diff >= 0 && (stride ? diff % stride == 0 && diff / stride < total : diff == 0);
	}
	closedir(dir);
	return found;
}

/*
 * A VF's "add" uevent can come before the kernel links it to its PF
 * (pci_iov_add_virtfn() adds the device, then makes its physfn link): read
 * then, the VF looks like a plain device and its PF's override is missed.
 * A device without physfn that a PF places as one of its VFs is waited for,
 * up to 1 s (then taken as it is).
 */
static void wait_for_physfn(struct cli *cli, const char *address)
{
	char devices[PATH_MAX], physfn[PATH_MAX];
	struct iovk_pci_addr a;
	struct stat st;

	snprintf(devices, sizeof(devices), "%s/bus/pci/devices", iovk_ctx_get_sysfs_root(cli->ctx));
	snprintf(physfn, sizeof(physfn), "%s/%s/physfn", devices, address);
	if (lstat(physfn, &st) == 0 || iovk_pci_addr_parse(address, &a) < 0 || !placed_as_vf(devices, &a))
		return;
	for (int i = 0; i < 100 && lstat(physfn, &st) < 0; i++)
		nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
}

/* Applies the override of one device, if it has one. */
static int apply_one(struct cli *cli, struct iovk_config *config, const char *address, struct json_object *out)
{
	struct iovk_bind_result br = IOVK_BIND_RESULT_INIT;
	struct iovk_overrides *ov = NULL;
	const struct iovk_override *o;
	struct json_object *j;
	unsigned flags;
	int r;

	wait_for_physfn(cli, address);
	r = iovk_overrides_new(cli->ctx, config, address, &ov);
	if (r < 0)
		return fail_lib(cli, r, "Failed to read the override of %s", address);
	o = iovk_overrides_get(ov, 0);
	if (!o) {
		iovk_overrides_unref(ov);
		return EXIT_OK;
	}
	flags = o->force ? IOVK_BIND_FORCE : 0;
	if (o->driver)
		r = iovk_device_bind(cli->ctx, address, o->driver, flags, &br);
	else
		r = iovk_device_unbind(cli->ctx, address, flags, &br);
	if (r < 0) {
		char action[1024];
		int ret;

		snprintf(action, sizeof(action), "apply %s's override (%s: %s): %s%s", address, o->file, o->path,
			 o->driver ? "bind to " : "unbind", o->driver ?: "");
		/* the host-use rule refused: the blockers, as bind lists them */
		if (r == -EBUSY && !o->force)
			ret = fail_refused(cli, r, action, &address, 1, "\"force\": true in the entry");
		else
			ret = fail_lib(cli, r, "Failed to %s", action);
		iovk_overrides_unref(ov);
		return ret;
	}
	if (cli->json) {
		j = override_to_json(o);
		json_object_object_add(j, "driver", json_string_or_null(o->driver));
		json_object_object_add(j, "in_effect", json_object_new_boolean(true));
		json_object_object_add(j, "changed", json_object_new_boolean(br.changed));
		json_object_array_add(out, j);
	} else {
		printf("%s: %s %s (", address, br.changed ? "now on" : "already on", driver_or_none(o->driver));
		print_entry(o);
		printf(")\n");
	}
	iovk_overrides_unref(ov);
	return EXIT_OK;
}

static int overrides_apply(struct cli *cli, int argc, char **argv)
{
	const char *config_path = NULL;
	const struct cmd_opt opts[] = { { "config", true, &config_path }, {} };
	struct json_object *out = json_object_new_array();
	struct iovk_config *config = NULL;
	char *paths[1];
	int i, r, ret;

	i = parse_cmd_opts(cli, "overrides apply", overrides_help, argc, argv, opts);
	if (i < 0) {
		json_object_put(out);
		return i == -1 ? EXIT_OK : EXIT_USAGE;
	}
	if (i >= argc) {
		json_object_put(out);
		return usage_error(cli, "overrides apply", "expected one or more devices (PCI addresses)");
	}
	r = iovk_config_new(cli->ctx, &config);
	if (r < 0) {
		json_object_put(out);
		return fail(cli, r, "Failed to create a configuration");
	}
	paths[0] = (char *)config_path;
	ret = load_all(cli, config, paths, config_path ? 1 : 0);
	for (; ret == EXIT_OK && i < argc; i++) {
		char address[IOVK_PCI_ADDR_MAX];

		ret = resolve_device(cli, "overrides apply", argv[i], address);
		if (ret == EXIT_OK)
			ret = apply_one(cli, config, address, out);
	}
	if (ret == EXIT_OK && cli->json)
		print_json(out);
	else
		json_object_put(out);
	iovk_config_unref(config);
	return ret;
}

int cmd_overrides(struct cli *cli, int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "apply") == 0)
		return overrides_apply(cli, argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "list") == 0)
		return overrides_list(cli, argc - 1, argv + 1);
	return overrides_list(cli, argc, argv);
}
