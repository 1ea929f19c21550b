/* SPDX-License-Identifier: GPL-2.0-or-later */
/* iovctl list, iovctl show */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "iovctl.h"

const char *driver_or_none(const char *driver)
{
	return driver ? driver : "-";
}

static struct json_object *json_hex(unsigned v, int digits)
{
	static const char hex[] = "0123456789abcdef";
	char buf[8];

	/* "%0*x" without printf: iovctl list writes five per function */
	for (int i = digits - 1; i >= 0; i--, v >>= 4)
		buf[i] = hex[v & 0xf];
	return json_object_new_string_len(buf, digits);
}

static struct json_object *json_strv(const char *const *v)
{
	struct json_object *a = json_object_new_array();

	for (; v && *v; v++)
		json_object_array_add(a, json_object_new_string(*v));
	return a;
}

/* A PF's VFs as VF objects {vf, address}: virtfn links are numbered from 0
 * without gaps, and the library lists them in that order. */
/* A key not yet in o, given as a literal: json-c neither copies it nor
 * looks it up (iovctl list writes ~25 of them per function). */
static void add_new(struct json_object *o, const char *literal_key, struct json_object *v)
{
	json_object_object_add_ex(o, literal_key, v, JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_ADD_CONSTANT_KEY);
}

static struct json_object *vfs_json(const char *const *v)
{
	struct json_object *a = json_object_new_array();

	for (int i = 0; v && v[i]; i++) {
		struct json_object *o = json_object_new_object();

		add_new(o, "vf", json_object_new_int(i));
		add_new(o, "address", json_object_new_string(v[i]));
		json_object_array_add(a, o);
	}
	return a;
}

struct json_object *device_to_json(struct cli *cli, struct iovk_device *d)
{
	struct json_object *o = json_object_new_object();
	const char *reason = NULL;
	int group = iovk_device_get_iommu_group(d), vf = iovk_device_get_vf_index(d);

	add_new(o, "address", json_object_new_string(iovk_device_get_address(d)));
	add_new(o, "vendor_id", json_hex(iovk_device_get_vendor_id(d), 4));
	add_new(o, "device_id", json_hex(iovk_device_get_device_id(d), 4));
	add_new(o, "subsystem_vendor_id", json_hex(iovk_device_get_subsystem_vendor_id(d), 4));
	add_new(o, "subsystem_device_id", json_hex(iovk_device_get_subsystem_device_id(d), 4));
	add_new(o, "class", json_hex(iovk_device_get_class(d), 6));
	add_new(o, "vendor_name", json_string_or_null(iovk_device_get_vendor_name(d)));
	add_new(o, "device_name", json_string_or_null(iovk_device_get_device_name(d)));
	add_new(o, "class_name", json_string_or_null(iovk_device_get_class_name(d)));
	add_new(o, "driver", json_string_or_null(iovk_device_get_driver(d)));
	add_new(o, "driver_override", json_string_or_null(iovk_device_get_driver_override(d)));
	add_new(o, "numa_node", json_object_new_int(iovk_device_get_numa_node(d)));
	add_new(o, "iommu_group", group >= 0 ? json_object_new_int(group) : NULL);
	add_new(o, "is_bridge", json_object_new_boolean(iovk_device_is_bridge(d)));
	add_new(o, "parent", json_string_or_null(iovk_device_get_parent(d)));
	if (iovk_device_get_sriov_numvfs(d) >= 0) {
		struct json_object *s = json_object_new_object();

		add_new(s, "totalvfs", json_object_new_int(iovk_device_get_sriov_totalvfs(d)));
		add_new(s, "numvfs", json_object_new_int(iovk_device_get_sriov_numvfs(d)));
		add_new(s, "vfs", vfs_json(iovk_device_get_vfs(d)));
		add_new(o, "sriov", s);
	} else
		add_new(o, "sriov", NULL);
	add_new(o, "pf", json_string_or_null(iovk_device_get_physfn(d)));
	add_new(o, "vf", vf >= 0 ? json_object_new_int(vf) : NULL);
	add_new(o, "net", json_strv(iovk_device_get_netdevs(d)));
	add_new(o, "vfio_safe", json_object_new_boolean(iovk_device_is_vfio_safe(d, &reason)));
	add_new(o, "vfio_blocker", json_string_or_null(reason));
	return o;
}

/* --class 02, 0200 or 020000 (hex prefix of the 24-bit class code) */
static bool class_matches(uint32_t class, const char *want)
{
	char buf[8];

	snprintf(buf, sizeof(buf), "%06x", class);
	return strncasecmp(buf, want, strlen(want)) == 0;
}

static bool hex_arg_ok(const char *s, size_t max)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (; *s; s++)
		if (!isxdigit((unsigned char)*s))
			return false;
	return true;
}

static const char list_help[] =
	"Usage: iovctl list [--json] [--class HEX] [--vendor VVVV[:DDDD]] [--driver NAME|none] [--group N]\n"
	"\n"
	"List PCI devices with their driver and IOMMU group.\n"
	"\n"
	"  --class HEX      class code prefix: 02 (network), 0200 (Ethernet), 010802 (NVMe)\n"
	"  --vendor ID      vendor, or vendor:device, in hex: 8086, 8086:10fb\n"
	"  --driver NAME    devices bound to NAME; 'none' for devices without a driver\n"
	"  --group N        devices in IOMMU group N\n"
	"  -j, --json       JSON array of device objects (see iovctl(8))\n";

int cmd_list(struct cli *cli, int argc, char **argv)
{
	const char *class = NULL, *vendor = NULL, *driver = NULL, *group = NULL;
	const struct cmd_opt opts[] = {
		{ "class", true, &class }, { "vendor", true, &vendor }, { "driver", true, &driver },
		{ "group", true, &group }, {},
	};
	struct iovk_device **devs = NULL;
	struct json_array_printer out;
	unsigned want_vendor = 0, want_device = 0;
	bool have_device = false;
	long want_group = -1;
	int r, i;

	i = parse_cmd_opts(cli, "list", list_help, argc, argv, opts);
	if (i < 0)
		return i == -1 ? EXIT_OK : EXIT_USAGE;
	if (i < argc)
		return usage_error(cli, "list", "unexpected argument '%s'", argv[i]);
	if (class && (strlen(class) < 2 || !hex_arg_ok(class, 6)))
		return usage_error(cli, "list", "--class takes 2 to 6 hex digits, not '%s'", class);
	if (vendor) {
		const char *colon = strchr(vendor, ':');
		char v[8] = "";

		if (colon && (size_t)(colon - vendor) < sizeof(v))
			memcpy(v, vendor, (size_t)(colon - vendor));
		else if (!colon && strlen(vendor) < sizeof(v))
			strcpy(v, vendor);
		if (!hex_arg_ok(v, 4) || (colon && !hex_arg_ok(colon + 1, 4)))
			return usage_error(cli, "list", "--vendor takes VVVV or VVVV:DDDD in hex, not '%s'", vendor);
		want_vendor = (unsigned)strtoul(v, NULL, 16);
		if (colon) {
			want_device = (unsigned)strtoul(colon + 1, NULL, 16);
			have_device = true;
		}
	}
	if (group) {
		char *end;

		errno = 0;
		want_group = strtol(group, &end, 10);
		if (errno || *end || end == group || want_group < 0)
			return usage_error(cli, "list", "--group takes a group number, not '%s'", group);
	}

	r = iovk_device_enumerate(cli->ctx, &devs, NULL);
	if (r < 0)
		return fail_lib(cli, r, "Failed to list PCI devices");

	if (cli->json)
		json_array_printer_begin(&out);
	else
		printf("%-13s %-9s %-6s %-14s %-5s %s\n", "ADDRESS", "IDS", "CLASS", "DRIVER", "GROUP", "DEVICE");
	for (struct iovk_device **p = devs; *p; p++) {
		struct iovk_device *d = *p;
		const char *drv = iovk_device_get_driver(d);

		if (class && !class_matches(iovk_device_get_class(d), class))
			continue;
		if (vendor && (iovk_device_get_vendor_id(d) != want_vendor ||
			       (have_device && iovk_device_get_device_id(d) != want_device)))
			continue;
		if (driver && (strcmp(driver, "none") == 0 ? drv != NULL : (!drv || strcmp(drv, driver) != 0)))
			continue;
		if (want_group >= 0 && iovk_device_get_iommu_group(d) != want_group)
			continue;
		if (cli->json) {
			json_array_printer_add(&out, device_to_json(cli, d));
		} else {
			char ids[10], grp[12] = "-";
			const char *vn = iovk_device_get_vendor_name(d), *dn = iovk_device_get_device_name(d);

			snprintf(ids, sizeof(ids), "%04x:%04x", iovk_device_get_vendor_id(d),
				 iovk_device_get_device_id(d));
			if (iovk_device_get_iommu_group(d) >= 0)
				snprintf(grp, sizeof(grp), "%d", iovk_device_get_iommu_group(d));
			printf("%-13s %-9s %04x   %-14s %-5s %s%s%s\n", iovk_device_get_address(d), ids,
			       iovk_device_get_class(d) >> 8, driver_or_none(drv), grp, vn ? vn : "",
			       vn && dn ? " " : "", dn ? dn : "");
		}
	}
	if (cli->json)
		json_array_printer_end(&out);
	iovk_device_list_free(devs);
	return EXIT_OK;
}

static const char show_help[] =
	"Usage: iovctl show [--json] DEVICE\n"
	"\n"
	"DEVICE: a PCI address (0000:3b:00.0, 3b:00.0), libvirt's pci_0000_3b_00_0, or a\n"
	"network interface of the device.\n"
	"\n"
	"Show one PCI device: ids and names, driver and override, IOMMU group and\n"
	"whether it blocks VFIO, NUMA node, SR-IOV PF/VF links, network interfaces,\n"
	"and the ACS state of the device itself and of the ports above it.\n";

static void acs_text(struct iovk_device *d, char *buf, size_t size)
{
	uint16_t cap, ctrl;
	int r = iovk_device_get_acs(d, &cap, &ctrl);

	if (r == -ENODATA)
		snprintf(buf, size, "no ACS capability");
	else if (r < 0)
		snprintf(buf, size, "unknown (%s)", strerror(-r));
	else
		snprintf(buf, size, "cap %04x ctrl %04x (source validation %s, P2P request redirect %s, "
			 "completion redirect %s, upstream forwarding %s)",
			 cap, ctrl, ctrl & 0x1 ? "on" : "off", ctrl & 0x4 ? "on" : "off",
			 ctrl & 0x8 ? "on" : "off", ctrl & 0x10 ? "on" : "off");
}

/* The bridges from the device up to its root port, with their ACS state. */
static struct json_object *upstream_json(struct cli *cli, struct iovk_device *d)
{
	struct json_object *arr = json_object_new_array();
	const char *parent = iovk_device_get_parent(d);
	struct iovk_device *cur = NULL;
	int depth = 0;

	while (parent && depth++ < 32) {
		struct iovk_device *up;
		struct json_object *o;
		uint16_t cap, ctrl;
		int r;

		if (iovk_device_new(cli->ctx, parent, &up) < 0)
			break;
		o = json_object_new_object();
		json_object_object_add(o, "address", json_object_new_string(iovk_device_get_address(up)));
		json_object_object_add(o, "driver", json_string_or_null(iovk_device_get_driver(up)));
		r = iovk_device_get_acs(up, &cap, &ctrl);
		if (r >= 0) {
			struct json_object *acs = json_object_new_object();

			json_object_object_add(acs, "cap", json_hex(cap, 4));
			json_object_object_add(acs, "ctrl", json_hex(ctrl, 4));
			/* SV, RR, CR and UF are what isolation needs (the
			 * kernel's REQ_ACS_FLAGS). */
			json_object_object_add(acs, "isolating", json_object_new_boolean((ctrl & 0x1d) == 0x1d));
			json_object_object_add(o, "acs", acs);
		} else
			json_object_object_add(o, "acs", NULL);
		json_object_array_add(arr, o);
		iovk_device_unref(cur);
		cur = up;
		parent = iovk_device_get_parent(up);
	}
	iovk_device_unref(cur);
	return arr;
}

int cmd_show(struct cli *cli, int argc, char **argv)
{
	struct iovk_device *d = NULL;
	struct json_object *o, *up;
	char addr[IOVK_PCI_ADDR_MAX];
	int r, i;

	i = parse_cmd_opts(cli, "show", show_help, argc, argv, NULL);
	if (i < 0)
		return i == -1 ? EXIT_OK : EXIT_USAGE;
	if (argc - i != 1)
		return usage_error(cli, "show", "expected one device address");
	r = resolve_device(cli, "show", argv[i], addr);
	if (r != EXIT_OK)
		return r;
	r = iovk_device_new(cli->ctx, addr, &d);
	if (r == -EINVAL)
		return usage_error(cli, "show", "%s", iovk_ctx_get_error(cli->ctx));
	if (r < 0)
		return fail_lib(cli, r, "Failed to read %s", argv[i]);

	o = device_to_json(cli, d);
	up = upstream_json(cli, d);
	if (cli->json) {
		uint16_t cap, ctrl;

		if (iovk_device_get_acs(d, &cap, &ctrl) >= 0) {
			struct json_object *acs = json_object_new_object();

			json_object_object_add(acs, "cap", json_hex(cap, 4));
			json_object_object_add(acs, "ctrl", json_hex(ctrl, 4));
			json_object_object_add(acs, "isolating", json_object_new_boolean((ctrl & 0x1d) == 0x1d));
			json_object_object_add(o, "acs", acs);
		} else
			json_object_object_add(o, "acs", NULL);
		json_object_object_add(o, "upstream", up);
		print_json(o);
	} else {
		const char *vn = iovk_device_get_vendor_name(d), *dn = iovk_device_get_device_name(d);
		const char *cn = iovk_device_get_class_name(d), *reason = NULL;
		const char *const *v;
		char acs[256];

		printf("%s  %s %s\n", iovk_device_get_address(d), vn ? vn : "?", dn ? dn : "");
		printf("  class:        %s [%06x]\n", cn ? cn : "?", iovk_device_get_class(d));
		printf("  ids:          %04x:%04x (subsystem %04x:%04x)\n", iovk_device_get_vendor_id(d),
		       iovk_device_get_device_id(d), iovk_device_get_subsystem_vendor_id(d),
		       iovk_device_get_subsystem_device_id(d));
		printf("  driver:       %s (override: %s)\n", driver_or_none(iovk_device_get_driver(d)),
		       iovk_device_get_driver_override(d) ?: "none");
		if (iovk_device_get_iommu_group(d) >= 0)
			printf("  iommu group:  %d\n", iovk_device_get_iommu_group(d));
		else
			printf("  iommu group:  none (IOMMU off?)\n");
		if (!iovk_device_is_vfio_safe(d, &reason))
			printf("  vfio:         blocks its group: %s\n", reason);
		printf("  numa node:    %d\n", iovk_device_get_numa_node(d));
		if (iovk_device_get_sriov_numvfs(d) >= 0) {
			printf("  sr-iov:       %d of %d VFs enabled:", iovk_device_get_sriov_numvfs(d),
			       iovk_device_get_sriov_totalvfs(d));
			for (v = iovk_device_get_vfs(d); *v; v++)
				printf(" %s", *v);
			putchar('\n');
		}
		if (iovk_device_get_physfn(d))
			printf("  physfn:       %s\n", iovk_device_get_physfn(d));
		v = iovk_device_get_netdevs(d);
		if (*v) {
			printf("  net:         ");
			for (; *v; v++)
				printf(" %s", *v);
			putchar('\n');
		}
		acs_text(d, acs, sizeof(acs));
		printf("  acs:          %s\n", acs);
		for (size_t k = 0; k < json_object_array_length(up); k++) {
			struct json_object *u = json_object_array_get_idx(up, k), *a, *x;
			const char *ua = json_object_get_string(json_object_object_get(u, "address"));

			if (json_object_object_get_ex(u, "acs", &a) && a) {
				json_object_object_get_ex(a, "isolating", &x);
				printf("  upstream:     %s ACS %s\n", ua,
				       json_object_get_boolean(x) ? "isolating" : "present, not isolating");
			} else
				printf("  upstream:     %s no ACS\n", ua);
		}
		json_object_put(up);
		json_object_put(o);
	}
	iovk_device_unref(d);
	return EXIT_OK;
}
