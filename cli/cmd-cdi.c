/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * iovctl cdi generate: the VFIO devices and iovd's pools as a Container
 * Device Interface spec, which podman, containerd, CRI-O and the Kubernetes
 * device plugins read from /etc/cdi and /var/run/cdi.
 *
 * One spec file holds devices of one kind (CDI: "kind" is a member of the
 * spec, not of a device), so the two kinds go to two files: iovkit-vf.json
 * (iovkit.org/vf=ADDRESS, each device on a VFIO driver) and iovkit-pool.json
 * (iovkit.org/pool=NAME, the devices iovd has handed out from that pool).
 * cdiVersion is 0.5.0, the newest that Debian 12's podman (4.3) reads: no
 * member newer than that is used (no hostPath, no device annotations). A
 * device node carries type, major and minor when the node is a character
 * device here; a runtime fills in what is missing from the node itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "iovctl.h"
#include "../common/fileio.h"

#define CDI_VERSION "0.5.0"
#define CDI_DEFAULT_DIR "/etc/cdi"

static const char cdi_help[] =
	"Usage: iovctl cdi generate [--json] [--output DIR] [--bus-address ADDR]\n"
	"\n"
	"Write a Container Device Interface (CDI) spec for container engines (podman,\n"
	"containerd, CRI-O): DIR/iovkit-vf.json names each device bound to a VFIO\n"
	"driver as iovkit.org/vf=ADDRESS, DIR/iovkit-pool.json each iovd pool with\n"
	"devices handed out as iovkit.org/pool=NAME; each with its /dev/vfio nodes\n"
	"(the group's, /dev/vfio/vfio, and the VFIO cdev with /dev/iommu where the\n"
	"kernel has them). A file whose kind has no device is removed. Files are\n"
	"replaced atomically. Pools need iovd; without it only the devices are written.\n"
	"\n"
	"  --output DIR       " CDI_DEFAULT_DIR " (default), or /var/run/cdi for a spec that\n"
	"                     does not outlive a boot\n"
	"  --bus-address ADDR iovd's bus (default: $IOVKIT_BUS_ADDRESS, else the system bus)\n"
	"  -j, --json         {\"cdi_files\": [...], \"cdi_devices\": [...], \"iovd_reached\": bool}\n";

/* One /dev node as CDI's deviceNodes entry, at path (as the container sees
 * it); host is where this context finds it. Nothing when it is not there. */
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

/* The nodes a VMM or VFIO user needs for the device at address: its group's
 * node and the container node (legacy VFIO), its cdev and /dev/iommu (iommufd). */
static int add_device_nodes(struct cli *cli, struct json_object *nodes, const char *address)
{
	const char *dev = iovk_ctx_get_dev_root(cli->ctx);
	char *host = NULL, *cdev = NULL, path[64];
	int group, r;

	group = iovk_device_read_iommu_group(cli->ctx, address);
	if (group < 0)
		return group;
	snprintf(path, sizeof(path), "/dev/vfio/%d", group);
	host = iovk_iommu_group_vfio_node(cli->ctx, group);
	if (!host)
		return -ENOMEM;
	add_node(nodes, path, host);
	free(host);
	if (asprintf(&host, "%s/vfio/vfio", dev) < 0)
		return -ENOMEM;
	add_node(nodes, "/dev/vfio/vfio", host);
	free(host);
	r = iovk_device_vfio_cdev_node(cli->ctx, address, &cdev);
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

static struct json_object *cdi_device(const char *name, struct json_object *nodes)
{
	struct json_object *d = json_object_new_object(), *edits = json_object_new_object();

	json_object_object_add(edits, "deviceNodes", nodes);
	json_object_object_add(d, "name", json_object_new_string(name));
	json_object_object_add(d, "containerEdits", edits);
	return d;
}

static struct json_object *cdi_spec(const char *kind, struct json_object *devices)
{
	struct json_object *s = json_object_new_object();

	json_object_object_add(s, "cdiVersion", json_object_new_string(CDI_VERSION));
	json_object_object_add(s, "kind", json_object_new_string(kind));
	json_object_object_add(s, "devices", devices);
	return s;
}

/* iovkit.org/vf=ADDRESS for each device on a VFIO driver, in address order. */
static int vf_devices(struct cli *cli, struct json_object *devices)
{
	struct iovk_device **all = NULL;
	size_t n = 0;
	int r;

	r = iovk_device_enumerate(cli->ctx, &all, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n && r >= 0; i++) {
		const char *address = iovk_device_get_address(all[i]);
		struct json_object *nodes;

		if (!iovk_driver_is_vfio(iovk_device_get_driver(all[i])))
			continue;
		nodes = json_object_new_array();
		r = add_device_nodes(cli, nodes, address);
		if (r == -ENOENT) /* no IOMMU group (the IOMMU is off): nothing a container could open */
			r = 0;
		if (r >= 0 && json_object_array_length(nodes) > 0)
			json_object_array_add(devices, cdi_device(address, nodes));
		else
			json_object_put(nodes);
	}
	iovk_device_list_free(all);
	return r;
}

/* iovkit.org/pool=NAME: the nodes of what iovd handed out of each pool. */
static int pool_devices(struct cli *cli, struct json_object *allocations, struct json_object *devices)
{
	struct json_object *pools = json_object_new_object();
	int r = 0;

	for (size_t i = 0; i < json_object_array_length(allocations) && r >= 0; i++) {
		struct json_object *a = json_object_array_get_idx(allocations, i), *v, *nodes, *members;
		const char *pool;

		if (!json_object_object_get_ex(a, "pool", &v))
			continue;
		pool = json_object_get_string(v);
		if (!json_object_object_get_ex(pools, pool, &nodes)) {
			nodes = json_object_new_array();
			json_object_object_add(pools, pool, nodes);
		}
		/* a device pool's allocation: every endpoint of the group; a VF: its address */
		if (json_object_object_get_ex(a, "devices", &members) && json_object_is_type(members, json_type_array)) {
			for (size_t k = 0; k < json_object_array_length(members) && r >= 0; k++)
				if (json_object_object_get_ex(json_object_array_get_idx(members, k), "address", &v))
					r = add_device_nodes(cli, nodes, json_object_get_string(v));
		} else if (json_object_object_get_ex(a, "address", &v) && json_object_get_string(v))
			r = add_device_nodes(cli, nodes, json_object_get_string(v));
		if (r == -ENOENT || r == -ENODEV) /* released meanwhile, or not on VFIO: no node */
			r = 0;
	}
	json_object_object_foreach(pools, name, nodes) {
		if (r >= 0 && json_object_array_length(nodes) > 0)
			json_object_array_add(devices, cdi_device(name, json_object_get(nodes)));
	}
	json_object_put(pools);
	return r;
}

/* Writes spec to dir/file, or removes a stale one when the spec has no device. */
static int write_spec(struct cli *cli, const char *dir, const char *file, struct json_object *spec,
		      struct json_object *written)
{
	struct json_object *devices;
	char *path;
	int r = 0;

	if (asprintf(&path, "%s/%s", dir, file) < 0)
		return -ENOMEM;
	json_object_object_get_ex(spec, "devices", &devices);
	if (json_object_array_length(devices) == 0) {
		if (unlink(path) < 0 && errno != ENOENT)
			r = -errno;
	} else {
		r = write_file_atomic(path, json_object_to_json_string_ext(spec, JSON_C_TO_STRING_PRETTY |
										 JSON_C_TO_STRING_NOSLASHESCAPE));
		if (r >= 0)
			json_object_array_add(written, json_object_new_string(path));
	}
	if (r < 0)
		fail(cli, r, "Failed to write %s", path);
	free(path);
	return r;
}

static int cdi_generate(struct cli *cli, int argc, char **argv)
{
	const char *dir = CDI_DEFAULT_DIR, *bus_address = NULL;
	const struct cmd_opt opts[] = { { "output", true, &dir }, { "bus-address", true, &bus_address }, {} };
	struct json_object *vfs = json_object_new_array(), *pools = json_object_new_array(), *allocations = NULL;
	struct json_object *vf_spec, *pool_spec, *written = json_object_new_array(), *names;
	int i, r, ret = EXIT_OK;
	bool reached;

	i = parse_cmd_opts(cli, "cdi generate", cdi_help, argc, argv, opts);
	vf_spec = cdi_spec("iovkit.org/vf", vfs);
	pool_spec = cdi_spec("iovkit.org/pool", pools);
	if (i < 0) {
		ret = i == -1 ? EXIT_OK : EXIT_USAGE;
		goto out;
	}
	if (i < argc) {
		ret = usage_error(cli, "cdi generate", "unexpected argument '%s'", argv[i]);
		goto out;
	}
	r = vf_devices(cli, vfs);
	if (r < 0) {
		ret = fail_lib(cli, r, "Failed to list the VFIO devices");
		goto out;
	}
	r = iovd_allocations(bus_address, &allocations);
	reached = r >= 0;
	if (reached)
		r = pool_devices(cli, allocations, pools);
	else
		fprintf(stderr, "iovctl: iovd is not reachable (%s): the spec names no pool\n", strerror(-r));
	if (r < 0 && reached) {
		ret = fail_lib(cli, r, "Failed to read the pools' devices");
		goto out;
	}
	if (write_spec(cli, dir, "iovkit-vf.json", vf_spec, written) < 0 ||
	    write_spec(cli, dir, "iovkit-pool.json", pool_spec, written) < 0) {
		ret = EXIT_FAILED;
		goto out;
	}
	names = json_object_new_array();
	for (int k = 0; k < 2; k++) {
		struct json_object *list = k ? pools : vfs;

		for (size_t d = 0; d < json_object_array_length(list); d++) {
			struct json_object *n;
			char *q;

			json_object_object_get_ex(json_object_array_get_idx(list, d), "name", &n);
			if (asprintf(&q, "iovkit.org/%s=%s", k ? "pool" : "vf", json_object_get_string(n)) >= 0) {
				json_object_array_add(names, json_object_new_string(q));
				free(q);
			}
		}
	}
	if (cli->json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "cdi_files", json_object_get(written));
		json_object_object_add(o, "cdi_devices", names);
		json_object_object_add(o, "iovd_reached", json_object_new_boolean(reached));
		print_json(o);
	} else {
		for (size_t k = 0; k < json_object_array_length(names); k++)
			printf("%s\n", json_object_get_string(json_object_array_get_idx(names, k)));
		printf("%zu CDI device%s in %s\n", json_object_array_length(names),
		       json_object_array_length(names) == 1 ? "" : "s", dir);
		json_object_put(names);
	}
out:
	json_object_put(vf_spec);
	json_object_put(pool_spec);
	json_object_put(written);
	json_object_put(allocations);
	return ret;
}

int cmd_cdi(struct cli *cli, int argc, char **argv)
{
	static const struct subcommand subs[] = { { "generate", cdi_generate } };

	return run_subcommand(cli, "cdi", cdi_help, subs, ELEMENTSOF(subs), argc, argv);
}
