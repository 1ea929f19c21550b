/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Container Device Interface (CDI) specs of VFIO devices, for iovctl (cdi
 * generate) and iovd (its pools, kept current as allocations change). Built
 * on libiovkit's public calls; nothing here is public ABI.
 *
 * One spec file holds devices of one kind, so there are three:
 * iovkit-vf.json (iovkit.org/vf=ADDRESS), iovkit-pool.json
 * (iovkit.org/pool=NAME) and, iovd's only, iovkit-allocation.json
 * (iovkit.org/allocation=ID). cdiVersion 0.5.0, the newest that Debian 12's
 * podman (4.3) reads: no member newer than that (no hostPath, no device
 * annotations).
 */
#pragma once

#include <stddef.h>

#include <json-c/json.h>

#include <iovkit/iovkit.h>

#define CDI_VERSION "0.5.0"
#define CDI_VENDOR "iovkit.org"
#define CDI_VF_FILE "iovkit-vf.json"
#define CDI_POOL_FILE "iovkit-pool.json"
#define CDI_ALLOCATION_FILE "iovkit-allocation.json"

/* A pool and the addresses of the devices handed out of it. */
struct cdi_pool {
	const char *name;
	const char *const *addresses;
	size_t n_addresses;
};

/* The iovkit.org/vf spec: each device on a VFIO driver that has an IOMMU
 * group, in address order. 0 or -errno (the context's error set). */
int cdi_vf_spec(struct iovk_ctx *ctx, struct json_object **ret);
/* The iovkit.org/pool spec: each pool with at least one device node. A
 * device without a group or gone meanwhile adds nothing. 0 or -errno. */
int cdi_pool_spec(struct iovk_ctx *ctx, const struct cdi_pool *pools, size_t n_pools, struct json_object **ret);
/* The iovkit.org/allocation spec (iovd's): the same from sets named by
 * allocation id, each one allocation's devices. 0 or -errno. */
int cdi_allocation_spec(struct iovk_ctx *ctx, const struct cdi_pool *allocs, size_t n_allocs, struct json_object **ret);
/* dir/file replaced atomically with spec, or removed when spec has no
 * device (so a stale name never resolves). 1 written, 0 removed (or
 * absent), -errno. */
int cdi_spec_write(const char *dir, const char *file, struct json_object *spec);
