/* SPDX-License-Identifier: GPL-2.0-or-later */
/* iovctl vfio info, reset; the command table (vfio selftest: cmd-vfio-selftest.c) */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/vfio.h>

#include "iovctl.h"
#include "vfio-common.h"

static const char vfio_help[] =
	"Usage: iovctl vfio info [--json] [--mode MODE] [--vf-token UUID] BDF\n"
	"       iovctl vfio selftest [--json] [--mode MODE] [--vf-token UUID] BDF\n"
	"       iovctl vfio reset [--json] [--hot] [--mode MODE] [--vf-token UUID] BDF\n"
	"\n"
	"Open a device through VFIO and describe it, prove it usable, or reset it.\n"
	"BDF: a PCI address (0000:3b:00.0, 3b:00.0), libvirt's pci_0000_3b_00_0 or a\n"
	"network interface name (the PCI function it belongs to).\n"
	"'iovctl vfio COMMAND --help' describes each command.\n";

static const char info_help[] =
	"Usage: iovctl vfio info [--json] [--mode MODE] [--vf-token UUID] BDF\n"
	"\n"
	"Open the device through VFIO (it must be on vfio-pci: iovctl bind BDF vfio-pci)\n"
	"and show what the kernel reports: backend and IOMMU type, IOMMU group,\n"
	"regions (flags, size, offset, capabilities such as sparse mmap and MSI-X\n"
	"mappable), IRQ indexes with their vector counts, reset support and methods,\n"
	"whether a hot reset (slot or bus reset) is possible and which functions it\n"
	"would reset, with their IOMMU group and driver and whether this address\n"
	"space owns them, the valid IOVA ranges, IOMMU page sizes and dma_avail (DMA\n"
	"mappings still allowed).\n"
	"\n"
	"  --mode MODE      auto (default: iommufd when /dev/iommu and the device's\n"
	"                   VFIO cdev exist, else the container), container (type1v2,\n"
	"                   else type1), type1v2, type1, iommufd (/dev/iommu and\n"
	"                   /dev/vfio/devices/vfioN; dma_avail is unlimited there)\n"
	"  --vf-token UUID  VF token, to open a VF whose PF is on vfio-pci\n";

static const char reset_help[] =
	"Usage: iovctl vfio reset [--json] [--hot] [--mode MODE] [--vf-token UUID] BDF\n"
	"\n"
	"Open the device through VFIO (it must be on vfio-pci) and reset it: a\n"
	"function-level reset (VFIO_DEVICE_RESET: FLR, PM or whatever the kernel's\n"
	"reset_method offers) by default, or with --hot a hot reset of its slot or\n"
	"bus (VFIO_DEVICE_PCI_HOT_RESET), which resets every function there. A hot\n"
	"reset is asked for only when every function it would reset is owned by the\n"
	"address space iovctl opened (container: its IOMMU group is attached there\n"
	"and it is on vfio-pci; iommufd: the kernel says so); else it is refused,\n"
	"nothing is reset, and each function in the way is named with its IOMMU\n"
	"group and driver. Functions of other groups cannot be opened by one\n"
	"iovctl call: a hot reset succeeds here when the device's slot or bus holds\n"
	"only its own group.\n"
	"\n"
	"  --hot            hot reset (slot or bus) instead of the function reset\n"
	"  --mode MODE      as for 'iovctl vfio info'\n"
	"  --vf-token UUID  VF token, to open a VF whose PF is on vfio-pci\n";

void vfio_cmd_done(struct vfio_cmd *c)
{
	iovk_vfio_device_unref(c->dev);
	iovk_vfio_iommu_unref(c->iommu);
}

/* 8-4-4-4-12 hex digits, checked before anything is opened (the library checks too). */
static bool is_uuid(const char *s)
{
	if (strlen(s) != 36)
		return false;
	for (size_t i = 0; i < 36; i++)
		if ((i == 8 || i == 13 || i == 18 || i == 23) ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* open_device() without the cleanup on failure */
static int parse_and_open(struct cli *cli, const char *cmd, const char *help, int argc, char **argv,
			  struct vfio_cmd *c, bool allow_hot)
{
	const char *mode_s = NULL, *token = NULL, *hot = NULL;
	const struct cmd_opt opts[] = {
		{ "mode", true, &mode_s }, { "vf-token", true, &token }, { allow_hot ? "hot" : NULL, false, &hot }, {}
	};
	enum iovk_vfio_mode mode = IOVK_VFIO_MODE_AUTO;
	char address[IOVK_PCI_ADDR_MAX];
	struct iovk_device *d;
	int r, i;

	i = parse_cmd_opts(cli, cmd, help, argc, argv, opts);
	if (i < 0)
		return i == -1 ? -1 : EXIT_USAGE;
	c->hot = hot != NULL;
	if (argc - i != 1)
		return usage_error(cli, cmd, "expected one device address");
	if (token && !is_uuid(token))
		return usage_error(cli, cmd, "'%s' is not a VF token (a UUID: 8-4-4-4-12 hex digits)", token);
	if (mode_s && iovk_vfio_mode_from_string(mode_s, &mode) < 0)
		return usage_error(cli, cmd, "--mode takes auto, container, type1v2, type1 or iommufd, not '%s'",
				   mode_s);
	r = resolve_device(cli, cmd, argv[i], address);
	if (r != EXIT_OK)
		return r;
	r = iovk_device_new(cli->ctx, address, &d);
	if (r < 0)
		return fail_lib(cli, r, "Failed to open %s through VFIO", argv[i]);
	snprintf(c->address, sizeof(c->address), "%s", iovk_device_get_address(d));
	snprintf(c->driver, sizeof(c->driver), "%s", iovk_device_get_driver(d) ?: "");
	iovk_device_unref(d);
	/* Before the container: on a host where vfio is not loaded yet the
	 * useful advice is to bind the device, not to load a module. */
	if (!iovk_driver_is_vfio(c->driver))
		/* the text is the whole story; the errno is the one iovk_vfio_device_open()
		 * returns for the same refusal (lib/vfio/device.c) */
		return fail_text(cli, c->driver[0] ? -EBUSY : -ENODEV,
				 "Failed to open %s through VFIO: %s%s, not to vfio-pci: bind it first: iovctl bind %s vfio-pci",
				 c->address, c->driver[0] ? "it is bound to " : "it has no driver", c->driver, c->address);

	r = iovk_vfio_iommu_new(cli->ctx, mode, &c->iommu);
	if (r < 0)
		return fail_lib(cli, r, "Failed to open %s through VFIO", c->address);
	r = iovk_vfio_device_open(c->iommu, c->address,
				  token ? &IOVK_OPTS(iovk_vfio_device_opts, .vf_token = token) : NULL, &c->dev);
	if (r < 0)
		return fail_lib(cli, r, "Failed to open %s through VFIO", c->address);
	return EXIT_OK;
}

int open_device(struct cli *cli, const char *cmd, const char *help, int argc, char **argv, struct vfio_cmd *c,
		bool allow_hot)
{
	int r = parse_and_open(cli, cmd, help, argc, argv, c, allow_hot);

	if (r != EXIT_OK)
		vfio_cmd_done(c);
	return r;
}

static const char *cap_name(uint16_t id, char buf[static 16])
{
	switch (id) {
	case VFIO_REGION_INFO_CAP_SPARSE_MMAP:
		return "sparse-mmap";
	case VFIO_REGION_INFO_CAP_TYPE:
		return "type";
	case VFIO_REGION_INFO_CAP_MSIX_MAPPABLE:
		return "msix-mappable";
	default:
		snprintf(buf, 16, "cap-%u", id);
		return buf;
	}
}

static const char *region_name(uint32_t index, char buf[static 16])
{
	const char *n = iovk_vfio_pci_region_name(index);

	if (n)
		return n;
	snprintf(buf, 16, "REGION%u", index);
	return buf;
}

static const char *irq_name(uint32_t index, char buf[static 16])
{
	const char *n = iovk_vfio_pci_irq_name(index);

	if (n)
		return n;
	snprintf(buf, 16, "IRQ%u", index);
	return buf;
}

struct flag_name {
	uint32_t bit;
	const char *name;
};

static const struct flag_name region_flags[] = {
	{ VFIO_REGION_INFO_FLAG_READ, "read" },
	{ VFIO_REGION_INFO_FLAG_WRITE, "write" },
	{ VFIO_REGION_INFO_FLAG_MMAP, "mmap" },
	{ VFIO_REGION_INFO_FLAG_CAPS, "caps" },
	{},
};

static const struct flag_name irq_flags[] = {
	{ VFIO_IRQ_INFO_EVENTFD, "eventfd" },
	{ VFIO_IRQ_INFO_MASKABLE, "maskable" },
	{ VFIO_IRQ_INFO_AUTOMASKED, "automasked" },
	{ VFIO_IRQ_INFO_NORESIZE, "noresize" },
	{},
};

static const struct flag_name device_flags[] = {
	{ VFIO_DEVICE_FLAGS_RESET, "reset" },
	{ VFIO_DEVICE_FLAGS_PCI, "pci" },
	{ VFIO_DEVICE_FLAGS_CAPS, "caps" },
	{},
};

static struct json_object *flags_json(uint32_t flags, const struct flag_name *names)
{
	struct json_object *a = json_object_new_array();

	for (; names->name; names++)
		if (flags & names->bit)
			json_object_array_add(a, json_object_new_string(names->name));
	return a;
}

void size_text(uint64_t v, char buf[static 24])
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	unsigned u = 0;

	while (u + 1 < ELEMENTSOF(units) && v >= 1024 && v % 1024 == 0) {
		v /= 1024;
		u++;
	}
	snprintf(buf, 24, "%" PRIu64 "%s", v, units[u]);
}

static struct json_object *strv_json_split(const char *s)
{
	struct json_object *a = json_object_new_array();
	char *copy, *save = NULL;

	if (!s)
		return a;
	copy = strdup(s);
	for (char *t = copy ? strtok_r(copy, " ", &save) : NULL; t; t = strtok_r(NULL, " ", &save))
		json_object_array_add(a, json_object_new_string(t));
	free(copy);
	return a;
}

/* The functions a hot reset resets, as JSON: address, IOMMU group, driver, owned. */
static struct json_object *hot_reset_devices_json(const struct iovk_vfio_hot_reset_info *hr)
{
	struct json_object *a = json_object_new_array();

	for (size_t i = 0; i < hr->n_devices; i++) {
		const struct iovk_vfio_hot_reset_device *d = &hr->devices[i];
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "address", json_object_new_string(d->address));
		json_object_object_add(o, "iommu_group", d->iommu_group >= 0 ? json_object_new_int(d->iommu_group) : NULL);
		json_object_object_add(o, "driver", d->driver[0] ? json_object_new_string(d->driver) : NULL);
		json_object_object_add(o, "owned", json_object_new_boolean(d->owned));
		json_object_array_add(a, o);
	}
	return a;
}

/*
 * Whether a hot reset is possible and what it would reset: "hot_reset" of
 * vfio info. Never fails the command: no hot reset is a fact about the
 * device.
 */
static struct json_object *hot_reset_json(struct cli *cli, struct vfio_cmd *c)
{
	struct iovk_vfio_hot_reset_info hr = {};
	int r = iovk_vfio_device_get_hot_reset_info(c->dev, &hr);
	struct json_object *h = json_object_new_object();

	json_object_object_add(h, "possible", json_object_new_boolean(r >= 0));
	/* true: 'iovctl vfio reset --hot' would ask the kernel for it */
	json_object_object_add(h, "all_owned", json_object_new_boolean(r >= 0 && hr.n_unowned == 0));
	json_object_object_add(h, "reason", r < 0 ? json_object_new_string(iovk_ctx_get_error(cli->ctx)) : NULL);
	json_object_object_add(h, "devices", r < 0 ? NULL : hot_reset_devices_json(&hr));
	iovk_vfio_hot_reset_info_clear(&hr);
	return h;
}

static struct json_object *region_json(uint32_t index, const struct iovk_vfio_region *reg)
{
	struct json_object *ro = json_object_new_object(), *caps = json_object_new_array(), *sa = NULL;
	char buf[16];

	json_object_object_add(ro, "index", json_object_new_int((int)index));
	json_object_object_add(ro, "name", json_object_new_string(region_name(index, buf)));
	json_object_object_add(ro, "size", json_object_new_uint64(reg->size));
	json_object_object_add(ro, "offset", json_object_new_uint64(reg->offset));
	json_object_object_add(ro, "flags", flags_json(reg->flags, region_flags));
	for (size_t k = 0; k < reg->n_caps; k++)
		json_object_array_add(caps, json_object_new_string(cap_name(reg->cap_ids[k], buf)));
	json_object_object_add(ro, "caps", caps);
	if (reg->has_sparse_mmap) {
		sa = json_object_new_array();
		for (size_t k = 0; k < reg->n_sparse_areas; k++) {
			struct json_object *ao = json_object_new_object();

			json_object_object_add(ao, "offset", json_object_new_uint64(reg->sparse_areas[k].offset));
			json_object_object_add(ao, "size", json_object_new_uint64(reg->sparse_areas[k].size));
			json_object_array_add(sa, ao);
		}
	}
	json_object_object_add(ro, "sparse_mmap", sa);
	json_object_object_add(ro, "msix_mappable", json_object_new_boolean(reg->msix_mappable));
	return ro;
}

/*
 * The model of vfio info: everything it says about the device, as the
 * --json object. The text is printed from it (print_info()), so the two
 * outputs cannot disagree. Returns 0, or -errno with the library's error
 * set.
 */
static int info_to_json(struct cli *cli, struct vfio_cmd *c, struct json_object **ret_info)
{
	const struct iovk_iova_range *ranges = NULL;
	struct iovk_iommu_group *g = NULL;
	size_t n_ranges = 0;
	uint64_t pgsizes = 0;
	uint32_t avail = 0;
	bool reported = false;
	uint8_t cfg[64];
	char hex[sizeof(cfg) * 2 + 1];
	const char *reset_methods;
	struct json_object *o, *a;
	int r;

	if ((r = iovk_vfio_iommu_get_iova_ranges(c->iommu, &ranges, &n_ranges)) < 0 ||
	    (r = iovk_vfio_iommu_get_pgsizes(c->iommu, &pgsizes)) < 0 ||
	    (r = iovk_vfio_iommu_get_dma_avail(c->iommu, &avail, &reported)) < 0 ||
	    (r = iovk_vfio_device_config_read(c->dev, 0, cfg, sizeof(cfg))) < 0)
		return r;
	for (size_t i = 0; i < sizeof(cfg); i++)
		snprintf(hex + 2 * i, 3, "%02x", cfg[i]);
	reset_methods = iovk_vfio_device_get_reset_methods(c->dev);
	(void)iovk_iommu_group_new(cli->ctx, iovk_vfio_device_get_iommu_group(c->dev), &g);

	o = json_object_new_object();
	json_object_object_add(o, "address", json_object_new_string(c->address));
	json_object_object_add(o, "driver", json_object_new_string(c->driver));
	json_object_object_add(o, "backend", json_object_new_string(iovk_vfio_iommu_get_backend(c->iommu)));
	json_object_object_add(o, "mode",
			       json_object_new_string(iovk_vfio_mode_to_string(iovk_vfio_iommu_get_mode(c->iommu))));
	json_object_object_add(o, "iommu_group", json_object_new_int(iovk_vfio_device_get_iommu_group(c->dev)));
	a = json_object_new_array();
	for (struct iovk_device *const *d = g ? iovk_iommu_group_get_devices(g) : NULL; d && *d; d++)
		json_object_array_add(a, json_object_new_string(iovk_device_get_address(*d)));
	json_object_object_add(o, "group_devices", a);
	iovk_iommu_group_unref(g);
	/* The group passed VFIO_GROUP_GET_STATUS's VIABLE check, or the open failed. */
	json_object_object_add(o, "viable", json_object_new_boolean(true));
	json_object_object_add(o, "flags", flags_json(iovk_vfio_device_get_flags(c->dev), device_flags));
	json_object_object_add(o, "reset",
			       json_object_new_boolean(iovk_vfio_device_get_flags(c->dev) & VFIO_DEVICE_FLAGS_RESET));
	json_object_object_add(o, "reset_methods", reset_methods ? strv_json_split(reset_methods) : NULL);
	json_object_object_add(o, "hot_reset", hot_reset_json(cli, c));
	a = json_object_new_array();
	for (uint32_t i = 0; i < iovk_vfio_device_get_n_regions(c->dev); i++)
		json_object_array_add(a, region_json(i, iovk_vfio_device_get_region(c->dev, i)));
	json_object_object_add(o, "regions", a);
	a = json_object_new_array();
	for (uint32_t i = 0; i < iovk_vfio_device_get_n_irqs(c->dev); i++) {
		const struct iovk_vfio_irq *irq = iovk_vfio_device_get_irq(c->dev, i);
		struct json_object *io = json_object_new_object();
		char buf[16];

		json_object_object_add(io, "index", json_object_new_int((int)i));
		json_object_object_add(io, "name", json_object_new_string(irq_name(i, buf)));
		json_object_object_add(io, "count", json_object_new_int64(irq->count));
		json_object_object_add(io, "flags", flags_json(irq->flags, irq_flags));
		json_object_array_add(a, io);
	}
	json_object_object_add(o, "irqs", a);
	a = json_object_new_array();
	for (size_t i = 0; i < n_ranges; i++) {
		struct json_object *ro = json_object_new_object();

		char bound[24];

		/* hex strings, as groups' reserved regions: 0xffffffffffffffff
		 * is no exact JSON number for most readers (jq: a double) */
		snprintf(bound, sizeof(bound), "0x%016" PRIx64, ranges[i].start);
		json_object_object_add(ro, "start", json_object_new_string(bound));
		snprintf(bound, sizeof(bound), "0x%016" PRIx64, ranges[i].end);
		json_object_object_add(ro, "end", json_object_new_string(bound));
		json_object_array_add(a, ro);
	}
	json_object_object_add(o, "iova_ranges", a);
	json_object_object_add(o, "pgsizes", json_object_new_uint64(pgsizes));
	a = json_object_new_array();
	for (uint64_t p = pgsizes; p; p &= p - 1)
		json_object_array_add(a, json_object_new_uint64(p & -p));
	json_object_object_add(o, "page_sizes", a);
	/* null: iommufd has no limit on the number of mappings */
	json_object_object_add(o, "dma_avail",
			       avail == IOVK_VFIO_DMA_AVAIL_UNLIMITED ? NULL : json_object_new_int64(avail));
	json_object_object_add(o, "dma_avail_reported", json_object_new_boolean(reported));
	json_object_object_add(o, "config_header", json_object_new_string(hex));
	*ret_info = o;
	return 0;
}

/* Members of the model: info_to_json() put each there, with its type (or null). */
static struct json_object *member(struct json_object *o, const char *key)
{
	return json_object_object_get(o, key);
}

static const char *member_string(struct json_object *o, const char *key)
{
	return json_object_get_string(member(o, key)); /* NULL for null */
}

static uint64_t member_uint64(struct json_object *o, const char *key)
{
	return json_object_get_uint64(member(o, key));
}

static bool member_bool(struct json_object *o, const char *key)
{
	return json_object_get_boolean(member(o, key));
}

/*
 * The strings of the array a (null: none) joined with sep into buf, cut
 * at size; returns the length so far (size or more once cut), for
 * appending more.
 */
static size_t strings_text(struct json_object *a, const char *sep, char *buf, size_t size)
{
	size_t len = 0, n = a ? json_object_array_length(a) : 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? sep : "",
					json_object_get_string(json_object_array_get_idx(a, i)));
	return len;
}

/* A flags array as text: "read,write,mmap", or "-" for none. */
static const char *flags_text(struct json_object *flags, char *buf, size_t size)
{
	strings_text(flags, ",", buf, size);
	return buf[0] ? buf : "-";
}

static void print_hot_reset(struct json_object *h)
{
	struct json_object *devices = member(h, "devices");

	if (!member_bool(h, "possible")) {
		printf("  hot reset:    not possible: %s\n", member_string(h, "reason"));
		return;
	}
	printf("  hot reset:    %s; it resets:\n",
	       member_bool(h, "all_owned") ? "possible" : "refused here (a function is not opened in this address space)");
	for (size_t i = 0; i < json_object_array_length(devices); i++) {
		struct json_object *d = json_object_array_get_idx(devices, i), *group = member(d, "iommu_group");
		char g[16] = "-";

		if (group)
			snprintf(g, sizeof(g), "%d", json_object_get_int(group));
		printf("    %-13s group %-5s %-14s %s\n", member_string(d, "address"), g,
		       driver_or_none(member_string(d, "driver")),
		       member_bool(d, "owned") ? "owned" : "not opened in this address space");
	}
}

static void print_region(struct json_object *reg)
{
	struct json_object *sparse = member(reg, "sparse_mmap");
	uint64_t size = member_uint64(reg, "size");
	char flags[256], caps[256], sz[24];
	size_t len;

	size_text(size, sz);
	printf("  %-6u %-7s %-10s 0x%-10" PRIx64 " %-16s ", (unsigned)json_object_get_int(member(reg, "index")),
	       member_string(reg, "name"), size ? sz : "-", member_uint64(reg, "offset"),
	       flags_text(member(reg, "flags"), flags, sizeof(flags)));
	len = strings_text(member(reg, "caps"), ",", caps, sizeof(caps));
	for (size_t k = 0; sparse && k < json_object_array_length(sparse) && len < sizeof(caps); k++) {
		struct json_object *area = json_object_array_get_idx(sparse, k);

		len += (size_t)snprintf(caps + len, sizeof(caps) - len, " [0x%" PRIx64 "+0x%" PRIx64 "]",
					member_uint64(area, "offset"), member_uint64(area, "size"));
	}
	printf("%s\n", caps[0] ? caps : "-");
}

/* vfio info as text, from its model (info_to_json()). */
static void print_info(struct json_object *o)
{
	struct json_object *a, *avail = member(o, "dma_avail");
	char flags[256], methods[256], sz[24];

	printf("%s  driver %s, IOMMU group %d (viable)\n", member_string(o, "address"), member_string(o, "driver"),
	       json_object_get_int(member(o, "iommu_group")));
	printf("  backend:      %s (%s)\n", member_string(o, "backend"), member_string(o, "mode"));
	a = member(o, "reset_methods");
	if (a)
		/* The kernel separates them with one space: the reset_method
		 * file again. */
		strings_text(a, " ", methods, sizeof(methods));
	else
		/* No reset_method file: the kernel hides it when the device
		 * has no reset (5.15+), and VFIO then offers none either. */
		snprintf(methods, sizeof(methods), "%s", member_bool(o, "reset") ? "unknown" : "none");
	printf("  device:       flags %s; reset methods: %s\n", flags_text(member(o, "flags"), flags, sizeof(flags)),
	       methods);
	print_hot_reset(member(o, "hot_reset"));
	printf("  page sizes:  ");
	a = member(o, "page_sizes");
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		size_text(json_object_get_uint64(json_object_array_get_idx(a, i)), sz);
		printf(" %s", sz);
	}
	if (!avail)
		printf("\n  dma_avail:    unlimited (iommufd has no limit on the number of mappings)\n");
	else
		printf("\n  dma_avail:    %" PRIu32 "%s\n", (uint32_t)json_object_get_int64(avail),
		       member_bool(o, "dma_avail_reported") ? "" : " (assumed: the kernel does not say)");
	printf("  iova ranges: ");
	a = member(o, "iova_ranges");
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		struct json_object *r = json_object_array_get_idx(a, i);

		printf("%s 0x%" PRIx64 "-0x%" PRIx64, i ? "," : "", member_uint64(r, "start"), member_uint64(r, "end"));
	}
	printf("\n  %-6s %-7s %-10s %-12s %-16s %s\n", "REGION", "NAME", "SIZE", "OFFSET", "FLAGS", "CAPS");
	a = member(o, "regions");
	for (size_t i = 0; i < json_object_array_length(a); i++)
		print_region(json_object_array_get_idx(a, i));
	printf("  %-6s %-7s %-7s %s\n", "IRQ", "NAME", "COUNT", "FLAGS");
	a = member(o, "irqs");
	for (size_t i = 0; i < json_object_array_length(a); i++) {
		struct json_object *irq = json_object_array_get_idx(a, i);

		printf("  %-6u %-7s %-7" PRIu32 " %s\n", (unsigned)json_object_get_int(member(irq, "index")),
		       member_string(irq, "name"), (uint32_t)json_object_get_int64(member(irq, "count")),
		       flags_text(member(irq, "flags"), flags, sizeof(flags)));
	}
}

static int vfio_info(struct cli *cli, int argc, char **argv)
{
	struct vfio_cmd c = {};
	struct json_object *o;
	int r;

	r = open_device(cli, "vfio info", info_help, argc, argv, &c, false);
	if (r != EXIT_OK)
		return r == -1 ? EXIT_OK : r;
	r = info_to_json(cli, &c, &o);
	if (r < 0)
		r = fail_lib(cli, r, "Failed to describe %s", c.address);
	else {
		if (cli->json)
			print_json(o);
		else {
			print_info(o);
			json_object_put(o);
		}
		r = EXIT_OK;
	}
	vfio_cmd_done(&c);
	return r;
}

/* ---- reset --------------------------------------------------------------- */

static int vfio_reset(struct cli *cli, int argc, char **argv)
{
	struct vfio_cmd c = {};
	struct iovk_vfio_hot_reset_info hr = {};
	const char *methods;
	int r;

	r = open_device(cli, "vfio reset", reset_help, argc, argv, &c, true);
	if (r != EXIT_OK)
		return r == -1 ? EXIT_OK : r;
	methods = iovk_vfio_device_get_reset_methods(c.dev);
	if (c.hot) {
		/* for the report; the reset checks ownership again itself */
		r = iovk_vfio_device_get_hot_reset_info(c.dev, &hr);
		if (r >= 0)
			r = iovk_vfio_device_hot_reset(c.dev);
	} else
		r = iovk_vfio_device_reset(c.dev);
	if (r < 0) {
		r = fail_lib(cli, r, "Failed to %s %s", c.hot ? "hot reset" : "reset", c.address);
		goto out;
	}
	if (cli->json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "address", json_object_new_string(c.address));
		json_object_object_add(o, "backend", json_object_new_string(iovk_vfio_iommu_get_backend(c.iommu)));
		json_object_object_add(o, "mode",
				       json_object_new_string(iovk_vfio_mode_to_string(iovk_vfio_iommu_get_mode(c.iommu))));
		json_object_object_add(o, "reset_type", json_object_new_string(c.hot ? "hot" : "function"));
		json_object_object_add(o, "reset_methods", methods ? strv_json_split(methods) : NULL);
		json_object_object_add(o, "affected", c.hot ? hot_reset_devices_json(&hr) : NULL);
		print_json(o);
	} else if (c.hot) {
		printf("%s: hot reset done (VFIO_DEVICE_PCI_HOT_RESET through the %s); functions reset:", c.address,
		       iovk_vfio_iommu_get_backend(c.iommu));
		for (size_t i = 0; i < hr.n_devices; i++)
			printf(" %s", hr.devices[i].address);
		printf("\n");
	} else
		printf("%s: reset done (VFIO_DEVICE_RESET; reset_method: %s)\n", c.address,
		       methods && *methods ? methods : "unknown");
	r = EXIT_OK;
out:
	iovk_vfio_hot_reset_info_clear(&hr);
	vfio_cmd_done(&c);
	return r;
}

int cmd_vfio(struct cli *cli, int argc, char **argv)
{
	static const struct subcommand subs[] = {
		{ "info", vfio_info },
		{ "selftest", vfio_selftest },
		{ "reset", vfio_reset },
	};

	return run_subcommand(cli, "vfio", vfio_help, subs, ELEMENTSOF(subs), argc, argv);
}
