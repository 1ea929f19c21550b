/* SPDX-License-Identifier: GPL-2.0-or-later */
/* iovctl groups */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "iovctl.h"

static const char groups_help[] =
	"Usage: iovctl groups [--json] [--group N]\n"
	"\n"
	"List IOMMU groups, their member devices and drivers, whether VFIO can take\n"
	"each group (\"viable\") and, when it cannot, which device blocks it and why.\n"
	"Also lists each group's reserved IOVA regions. Group numbers change across\n"
	"reboots: refer to devices by address in anything persistent.\n";

static struct json_object *group_to_json(struct iovk_iommu_group *g)
{
	struct json_object *o = json_object_new_object(), *devs = json_object_new_array();
	struct json_object *blockers = json_object_new_array(), *regions = json_object_new_array();
	const struct iovk_reserved_region *rr;
	size_t n_rr;

	json_object_object_add(o, "iommu_group", json_object_new_int(iovk_iommu_group_get_number(g)));
	json_object_object_add(o, "viable", json_object_new_boolean(iovk_iommu_group_is_viable(g, NULL)));
	json_object_object_add(o, "type", iovk_iommu_group_get_type(g)
						  ? json_object_new_string(iovk_iommu_group_get_type(g))
						  : NULL);
	for (struct iovk_device *const *p = iovk_iommu_group_get_devices(g); *p; p++) {
		struct json_object *d = json_object_new_object();
		const char *drv = iovk_device_get_driver(*p), *reason = NULL;
		bool safe = iovk_device_is_vfio_safe(*p, &reason);

		json_object_object_add(d, "address", json_object_new_string(iovk_device_get_address(*p)));
		json_object_object_add(d, "driver", drv ? json_object_new_string(drv) : NULL);
		json_object_object_add(d, "is_bridge", json_object_new_boolean(iovk_device_is_bridge(*p)));
		json_object_object_add(d, "vfio_safe", json_object_new_boolean(safe));
		json_object_array_add(devs, d);
		if (!safe)
			json_object_array_add(blockers, blocker_to_json(iovk_device_get_address(*p), drv,
									IOVK_IN_USE_KERNEL_DRIVER, NULL, reason));
	}
	json_object_object_add(o, "devices", devs);
	json_object_object_add(o, "blockers", blockers);
	rr = iovk_iommu_group_get_reserved_regions(g, &n_rr);
	for (size_t i = 0; i < n_rr; i++) {
		struct json_object *r = json_object_new_object();
		char buf[24];

		snprintf(buf, sizeof(buf), "0x%016" PRIx64, rr[i].start);
		json_object_object_add(r, "start", json_object_new_string(buf));
		snprintf(buf, sizeof(buf), "0x%016" PRIx64, rr[i].end);
		json_object_object_add(r, "end", json_object_new_string(buf));
		json_object_object_add(r, "type", json_object_new_string(rr[i].type));
		json_object_array_add(regions, r);
	}
	json_object_object_add(o, "reserved_regions", regions);
	return o;
}

static void print_group_text(struct iovk_iommu_group *g)
{
	size_t n_block = 0;
	bool viable = iovk_iommu_group_is_viable(g, &n_block);
	const struct iovk_reserved_region *rr;
	size_t n_rr;

	printf("group %d%s%s: ", iovk_iommu_group_get_number(g), iovk_iommu_group_get_type(g) ? " " : "",
	       iovk_iommu_group_get_type(g) ?: "");
	if (viable)
		printf("viable\n");
	else if (n_block == 1)
		printf("not viable, 1 device blocks it\n");
	else
		printf("not viable, %zu devices block it\n", n_block);
	for (struct iovk_device *const *p = iovk_iommu_group_get_devices(g); *p; p++) {
		const char *reason = NULL, *dn = iovk_device_get_device_name(*p);
		bool safe = iovk_device_is_vfio_safe(*p, &reason);

		printf("  %s  %-14s %s\n", iovk_device_get_address(*p), driver_or_none(iovk_device_get_driver(*p)),
		       dn ? dn : "");
		if (!safe)
			printf("      blocks: %s\n", reason);
	}
	rr = iovk_iommu_group_get_reserved_regions(g, &n_rr);
	for (size_t i = 0; i < n_rr; i++)
		printf("  reserved 0x%" PRIx64 "-0x%" PRIx64 " %s\n", rr[i].start, rr[i].end, rr[i].type);
}

int cmd_groups(struct cli *cli, int argc, char **argv)
{
	const char *group = NULL;
	const struct cmd_opt opts[] = { { "group", true, &group }, {} };
	struct iovk_iommu_group **groups = NULL;
	struct json_object *arr = NULL;
	struct iovk_iommu_host_state hs = IOVK_IOMMU_HOST_STATE_INIT;
	size_t n = 0;
	long want = -1;
	int r, i;

	i = parse_cmd_opts(cli, "groups", groups_help, argc, argv, opts);
	if (i < 0)
		return i == -1 ? EXIT_OK : EXIT_USAGE;
	if (i < argc)
		return usage_error(cli, "groups", "unexpected argument '%s'", argv[i]);
	if (group) {
		char *end;

		errno = 0;
		want = strtol(group, &end, 10);
		if (errno || *end || end == group || want < 0 || want > INT32_MAX)
			return usage_error(cli, "groups", "--group takes a group number, not '%s'", group);
		groups = calloc(2, sizeof(*groups));
		if (!groups)
			return fail(cli, -ENOMEM, "Failed to read IOMMU group %ld", want);
		r = iovk_iommu_group_new(cli->ctx, (int)want, &groups[0]);
		if (r < 0) {
			free(groups);
			return fail_lib(cli, r, "Failed to read IOMMU group %ld", want);
		}
		n = 1;
	} else {
		r = iovk_iommu_group_enumerate(cli->ctx, &groups, &n);
		if (r < 0)
			return fail_lib(cli, r, "Failed to list IOMMU groups");
	}

	if (cli->json) {
		arr = json_object_new_array();
		for (size_t k = 0; k < n; k++)
			json_object_array_add(arr, group_to_json(groups[k]));
		print_json(arr);
	} else {
		for (size_t k = 0; k < n; k++)
			print_group_text(groups[k]);
		/* An empty list is most often an IOMMU that is off: say so. */
		if (n == 0 && iovk_iommu_get_host_state(cli->ctx, &hs) >= 0 && !hs.enabled)
			fprintf(stderr, "iovctl: no IOMMU groups: the IOMMU is off (see 'iovctl doctor')\n");
	}
	iovk_iommu_group_list_free(groups);
	return EXIT_OK;
}
