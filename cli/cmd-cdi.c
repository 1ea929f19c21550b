/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * iovctl cdi generate: the VFIO devices and iovd's pools as Container Device
 * Interface specs (common/cdi.h), which podman, containerd, CRI-O and the
 * Kubernetes device plugins read from /etc/cdi and /var/run/cdi. Without iovd
 * the pool file is left as it is: an iovd with "cdi_spec_dir" keeps it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iovctl.h"
#include "../common/cdi.h"

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
	"replaced atomically. Pools need iovd; without it only the devices are written\n"
	"(an iovd with \"cdi_spec_dir\" keeps iovkit-pool.json current itself).\n"
	"\n"
	"  --output DIR       " CDI_DEFAULT_DIR " (default), or /var/run/cdi for a spec that\n"
	"                     does not outlive a boot\n"
	"  --bus-address ADDR iovd's bus (default: $IOVKIT_BUS_ADDRESS, else the system bus)\n"
	"  -j, --json         {\"cdi_files\": [...], \"cdi_devices\": [...], \"iovd_reached\": bool}\n";

/* The devices iovd handed out, by pool, from 'iovctl allocations --json'. */
static void pools_free(struct cdi_pool *pools, size_t n)
{
	for (size_t i = 0; i < n && pools; i++)
		free((void *)pools[i].addresses);
	free(pools);
}

static int pools_of(struct json_object *allocations, struct cdi_pool **ret, size_t *ret_n)
{
	size_t n_alloc = json_object_array_length(allocations), n = 0;
	struct cdi_pool *pools = calloc(n_alloc ? n_alloc : 1, sizeof(*pools));

	if (!pools)
		return -ENOMEM;
	for (size_t i = 0; i < n_alloc; i++) {
		struct json_object *a = json_object_array_get_idx(allocations, i), *v, *members;
		const char *name, **addrs;
		struct cdi_pool *p = NULL;
		size_t extra;

		if (!json_object_object_get_ex(a, "pool", &v))
			continue;
		name = json_object_get_string(v);
		for (size_t k = 0; k < n && !p; k++)
			if (strcmp(pools[k].name, name) == 0)
				p = &pools[k];
		if (!p) {
			p = &pools[n++];
			p->name = name;
		}
		/* a device pool's allocation: every endpoint of the group; a VF: its address */
		members = json_object_object_get_ex(a, "devices", &members) && json_object_is_type(members, json_type_array)
				  ? members : NULL;
		extra = members ? json_object_array_length(members) : 1;
		addrs = realloc((void *)p->addresses, (p->n_addresses + extra) * sizeof(*addrs));
		if (!addrs) {
			pools_free(pools, n);
			return -ENOMEM;
		}
		p->addresses = addrs;
		for (size_t k = 0; k < extra; k++) {
			struct json_object *o = members ? json_object_array_get_idx(members, k) : a;

			if (json_object_object_get_ex(o, "address", &v) && json_object_get_string(v))
				addrs[p->n_addresses++] = json_object_get_string(v);
		}
	}
	*ret = pools;
	*ret_n = n;
	return 0;
}

static int write_spec(struct cli *cli, const char *dir, const char *file, struct json_object *spec,
		      struct json_object *written)
{
	int r = cdi_spec_write(dir, file, spec);

	if (r < 0)
		return fail(cli, r, "Failed to write %s/%s", dir, file);
	if (r > 0) {
		char *path;

		if (asprintf(&path, "%s/%s", dir, file) < 0)
			return -ENOMEM;
		json_object_array_add(written, json_object_new_string(path));
		free(path);
	}
	return 0;
}

/* "iovkit.org/vf=0000:3b:02.0", ... of a spec, into names. */
static void add_names(struct json_object *names, struct json_object *spec)
{
	struct json_object *kind, *devices, *n;

	json_object_object_get_ex(spec, "kind", &kind);
	json_object_object_get_ex(spec, "devices", &devices);
	for (size_t d = 0; d < json_object_array_length(devices); d++) {
		char *q;

		json_object_object_get_ex(json_object_array_get_idx(devices, d), "name", &n);
		if (asprintf(&q, "%s=%s", json_object_get_string(kind), json_object_get_string(n)) >= 0) {
			json_object_array_add(names, json_object_new_string(q));
			free(q);
		}
	}
}

static int cdi_generate(struct cli *cli, int argc, char **argv)
{
	const char *dir = CDI_DEFAULT_DIR, *bus_address = NULL;
	const struct cmd_opt opts[] = { { "output", true, &dir }, { "bus-address", true, &bus_address }, {} };
	struct json_object *vf_spec = NULL, *pool_spec = NULL, *allocations = NULL;
	struct json_object *written = json_object_new_array(), *names = json_object_new_array();
	struct cdi_pool *pools = NULL;
	size_t n_pools = 0;
	int i, r, ret = EXIT_OK;
	bool reached;

	i = parse_cmd_opts(cli, "cdi generate", cdi_help, argc, argv, opts);
	if (i < 0) {
		ret = i == -1 ? EXIT_OK : EXIT_USAGE;
		goto out;
	}
	if (i < argc) {
		ret = usage_error(cli, "cdi generate", "unexpected argument '%s'", argv[i]);
		goto out;
	}
	r = cdi_vf_spec(cli->ctx, &vf_spec);
	if (r < 0) {
		ret = fail_lib(cli, r, "Failed to list the VFIO devices");
		goto out;
	}
	r = iovd_allocations(bus_address, &allocations);
	reached = r >= 0;
	if (!reached)
		fprintf(stderr, "iovctl: iovd is not reachable (%s): the spec names no pool\n", strerror(-r));
	else if ((r = pools_of(allocations, &pools, &n_pools)) < 0) {
		ret = fail(cli, r, "Failed to read iovd's allocations");
		goto out;
	}
	r = cdi_pool_spec(cli->ctx, pools, n_pools, &pool_spec);
	if (r < 0) {
		ret = fail_lib(cli, r, "Failed to read the pools' devices");
		goto out;
	}
	if (write_spec(cli, dir, CDI_VF_FILE, vf_spec, written) < 0 ||
	    (reached && write_spec(cli, dir, CDI_POOL_FILE, pool_spec, written) < 0)) {
		ret = EXIT_FAILED;
		goto out;
	}
	add_names(names, vf_spec);
	add_names(names, pool_spec);
	if (cli->json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "cdi_files", json_object_get(written));
		json_object_object_add(o, "cdi_devices", json_object_get(names));
		json_object_object_add(o, "iovd_reached", json_object_new_boolean(reached));
		print_json(o);
	} else {
		for (size_t k = 0; k < json_object_array_length(names); k++)
			printf("%s\n", json_object_get_string(json_object_array_get_idx(names, k)));
		printf("%zu CDI device%s in %s\n", json_object_array_length(names),
		       json_object_array_length(names) == 1 ? "" : "s", dir);
	}
out:
	json_object_put(vf_spec);
	json_object_put(pool_spec);
	json_object_put(written);
	json_object_put(names);
	json_object_put(allocations);
	pools_free(pools, n_pools);
	return ret;
}

int cmd_cdi(struct cli *cli, int argc, char **argv)
{
	static const struct subcommand subs[] = { { "generate", cdi_generate } };

	return run_subcommand(cli, "cdi", cdi_help, subs, ELEMENTSOF(subs), argc, argv);
}
