/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * CDI specs of VFIO devices (cdi.h). A device node carries type, major and
 * minor when the node is a character device here; a runtime fills in what
 * is missing from the node itself (the fixtures' nodes are plain files).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "cdi.h"
#include "fileio.h"

/* One /dev node as a deviceNodes entry, at path (as the container sees it);
 * host is where the context finds it. Nothing when it is not there or is
 * in the list already (devices of one group share its node). */
static void add_node(struct json_object *nodes, const char *path, const char *host)
{
	struct json_object *n;
	struct stat st;

	if (stat(host, &st) < 0)
		return;
	for (size_t i = 0; i < json_object_array_length(nodes); i++) {
		struct json_object *p;

		if (json_object_object_get_ex(json_object_array_get_idx(nodes, i), "path", &p) &&
		    strcmp(json_object_get_string(p), path) == 0)
			return;
	}
	n = json_object_new_object();
	json_object_object_add(n, "path", json_object_new_string(path));
	if (S_ISCHR(st.st_mode)) {
		json_object_object_add(n, "type", json_object_new_string("c"));
		json_object_object_add(n, "major", json_object_new_int64(major(st.st_rdev)));
		json_object_object_add(n, "minor", json_object_new_int64(minor(st.st_rdev)));
	}
	json_object_object_add(n, "permissions", json_object_new_string("rw"));
	json_object_array_add(nodes, n);
}

/* What a VFIO user needs for the device at address: its group's node and the
 * container node (legacy VFIO), its cdev and /dev/iommu (iommufd). -ENOENT
 * when it has no IOMMU group. */
static int add_device_nodes(struct iovk_ctx *ctx, struct json_object *nodes, const char *address)
{
	const char *dev = iovk_ctx_get_dev_root(ctx);
	char *host = NULL, *cdev = NULL, path[64];
	int group, r;

	group = iovk_device_read_iommu_group(ctx, address);
	if (group < 0)
		return group;
	snprintf(path, sizeof(path), "/dev/vfio/%d", group);
	host = iovk_iommu_group_vfio_node(ctx, group);
	if (!host)
		return -ENOMEM;
	add_node(nodes, path, host);
	free(host);
	if (asprintf(&host, "%s/vfio/vfio", dev) < 0)
		return -ENOMEM;
	add_node(nodes, "/dev/vfio/vfio", host);
	free(host);
	r = iovk_device_vfio_cdev_node(ctx, address, &cdev);
	if (r == -ENOENT)
		return 0; /* no cdev: a kernel before 6.6 or without VFIO_DEVICE_CDEV */
	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "/dev/vfio/devices/%s", strrchr(cdev, '/') + 1);
	add_node(nodes, path, cdev);
	free(cdev);
	if (asprintf(&host, "%s/iommu", dev) < 0)
		return -ENOMEM;
	add_node(nodes, "/dev/iommu", host);
	free(host);
	return 0;
}

static struct json_object *spec_new(const char *class, struct json_object **ret_devices)
{
	struct json_object *s = json_object_new_object();
	char kind[64];

	snprintf(kind, sizeof(kind), "%s/%s", CDI_VENDOR, class);
	*ret_devices = json_object_new_array();
	json_object_object_add(s, "cdiVersion", json_object_new_string(CDI_VERSION));
	json_object_object_add(s, "kind", json_object_new_string(kind));
	json_object_object_add(s, "devices", *ret_devices);
	return s;
}

/* Appends {name, containerEdits: {deviceNodes}} when nodes is not empty; takes nodes. */
static void add_device(struct json_object *devices, const char *name, struct json_object *nodes)
{
	struct json_object *d, *edits;

	if (json_object_array_length(nodes) == 0) {
		json_object_put(nodes);
		return;
	}
	d = json_object_new_object();
	edits = json_object_new_object();
	json_object_object_add(edits, "deviceNodes", nodes);
	json_object_object_add(d, "name", json_object_new_string(name));
	json_object_object_add(d, "containerEdits", edits);
	json_object_array_add(devices, d);
}

int cdi_vf_spec(struct iovk_ctx *ctx, struct json_object **ret)
{
	struct json_object *devices, *spec = spec_new("vf", &devices);
	struct iovk_device **all = NULL;
	size_t n = 0;
	int r;

	r = iovk_device_enumerate(ctx, &all, &n);
	for (size_t i = 0; i < n && r >= 0; i++) {
		struct json_object *nodes;

		if (!iovk_driver_is_vfio(iovk_device_get_driver(all[i])))
			continue;
		nodes = json_object_new_array();
		r = add_device_nodes(ctx, nodes, iovk_device_get_address(all[i]));
		if (r == -ENOENT) /* no IOMMU group (the IOMMU is off): nothing a container could open */
			r = 0;
		add_device(devices, iovk_device_get_address(all[i]), nodes);
	}
	iovk_device_list_free(all);
	if (r < 0) {
		json_object_put(spec);
		return r;
	}
	*ret = spec;
	return 0;
}

/* A spec of class whose devices are named sets of addresses (pools, allocations). */
static int sets_spec(struct iovk_ctx *ctx, const char *class, const struct cdi_pool *pools, size_t n_pools,
		     struct json_object **ret)
{
	struct json_object *devices, *spec = spec_new(class, &devices);
	int r = 0;

	for (size_t i = 0; i < n_pools && r >= 0; i++) {
		struct json_object *nodes = json_object_new_array();

		for (size_t k = 0; k < pools[i].n_addresses && r >= 0; k++) {
			r = add_device_nodes(ctx, nodes, pools[i].addresses[k]);
			if (r == -ENOENT || r == -ENODEV) /* no group, or released meanwhile */
				r = 0;
		}
		add_device(devices, pools[i].name, nodes);
	}
	if (r < 0) {
		json_object_put(spec);
		return r;
	}
	*ret = spec;
	return 0;
}

int cdi_pool_spec(struct iovk_ctx *ctx, const struct cdi_pool *pools, size_t n_pools, struct json_object **ret)
{
	return sets_spec(ctx, "pool", pools, n_pools, ret);
}

int cdi_allocation_spec(struct iovk_ctx *ctx, const struct cdi_pool *allocs, size_t n_allocs, struct json_object **ret)
{
	return sets_spec(ctx, "allocation", allocs, n_allocs, ret);
}

int cdi_spec_write(const char *dir, const char *file, struct json_object *spec)
{
	struct json_object *devices = NULL;
	char *path;
	int r;

	if (asprintf(&path, "%s/%s", dir, file) < 0)
		return -ENOMEM;
	json_object_object_get_ex(spec, "devices", &devices);
	if (json_object_array_length(devices) == 0)
		r = unlink(path) < 0 && errno != ENOENT ? -errno : 0;
	else {
		r = write_file_atomic(path, json_object_to_json_string_ext(spec, JSON_C_TO_STRING_PRETTY |
										 JSON_C_TO_STRING_NOSLASHESCAPE));
		if (r >= 0)
			r = 1;
	}
	free(path);
	return r;
}
