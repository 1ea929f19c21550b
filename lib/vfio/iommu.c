/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * IOMMU address spaces: the backend-independent part (modes, the object,
 * DMA map/unmap with the IOVA allocator and the shadow list of mappings).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "vfio-internal.h"

static const char *const mode_names[_IOVK_VFIO_MODE_MAX] = {
	[IOVK_VFIO_MODE_AUTO] = "auto",       [IOVK_VFIO_MODE_CONTAINER] = "container",
	[IOVK_VFIO_MODE_TYPE1V2] = "type1v2", [IOVK_VFIO_MODE_TYPE1] = "type1",
	[IOVK_VFIO_MODE_IOMMUFD] = "iommufd",
};

_public_ const char *iovk_vfio_mode_to_string(enum iovk_vfio_mode mode)
{
	return (unsigned)mode < _IOVK_VFIO_MODE_MAX ? mode_names[mode] : NULL;
}

_public_ int iovk_vfio_mode_from_string(const char *s, enum iovk_vfio_mode *ret_mode)
{
	assert_return(s && ret_mode, -EINVAL);

	for (unsigned i = 0; s && i < _IOVK_VFIO_MODE_MAX; i++)
		if (strcmp(s, mode_names[i]) == 0) {
			*ret_mode = (enum iovk_vfio_mode)i;
			return 0;
		}
	return -EINVAL;
}

/* iommufd with VFIO cdevs: /dev/iommu, and /dev/vfio/devices (vfio loaded with CONFIG_VFIO_DEVICE_CDEV). */
static bool have_iommufd_nodes(struct iovk_ctx *ctx)
{
	_cleanup_free_ char *iommu = dev_path(ctx, "/iommu");
	_cleanup_free_ char *cdevs = dev_path(ctx, "/vfio/devices");

	return iommu && cdevs && path_exists(iommu) && path_exists(cdevs);
}

static const struct vfio_iommu_ops *ops_for_mode(struct iovk_ctx *ctx, enum iovk_vfio_mode mode)
{
	switch (mode) {
	case IOVK_VFIO_MODE_AUTO:
		/* iommufd first: it is the kernel's future (the container has
		 * been a compatibility layer since 6.2, and new features such
		 * as nested translation and PASID are iommufd-only). Debian's
		 * 6.1 and 6.12 kernels are built without it. */
		if (have_iommufd_nodes(ctx))
			return &vfio_iommufd_ops;
		return &vfio_container_ops;
	case IOVK_VFIO_MODE_CONTAINER:
	case IOVK_VFIO_MODE_TYPE1V2:
	case IOVK_VFIO_MODE_TYPE1:
		return &vfio_container_ops;
	case IOVK_VFIO_MODE_IOMMUFD:
		return &vfio_iommufd_ops;
	default:
		return NULL;
	}
}

/* AUTO mode, before any device joined (nothing mapped yet): iommufd given up for the legacy container. */
static int fall_back_to_container(struct iovk_vfio_iommu *iommu)
{
	iommu->ops->close(iommu);
	iommu->ops = &vfio_container_ops;
	iommu->mode = IOVK_VFIO_MODE_AUTO;
	clear_error(iommu->ctx);
	return iommu->ops->open(iommu);
}

_public_ int iovk_vfio_iommu_new(struct iovk_ctx *ctx, enum iovk_vfio_mode mode, struct iovk_vfio_iommu **ret_iommu)
{
	const struct vfio_iommu_ops *ops;
	struct iovk_vfio_iommu *iommu;
	int r;

	assert_return(ctx && ret_iommu, -EINVAL);
	clear_error(ctx);
	ops = ops_for_mode(ctx, mode);
	if (!ops)
		return set_error(ctx, -EINVAL, "%d is not a VFIO IOMMU mode", (int)mode);
	iommu = calloc(1, sizeof(*iommu));
	if (!iommu)
		return -ENOMEM;
	iommu->n_ref = 1;
	iommu->ctx = iovk_ctx_ref(ctx);
	iommu->mode = mode;
	iommu->auto_mode = mode == IOVK_VFIO_MODE_AUTO;
	iommu->ops = ops;
	iommu->fd = -1;
	r = iovk_vfio_mapping_list_new(&iommu->mappings);
	if (r >= 0)
		r = ops->open(iommu);
	if (r < 0 && iommu->auto_mode && ops != &vfio_container_ops) {
		/* /dev/iommu exists but cannot be used (e.g. permissions
		 * differ from /dev/vfio's): the container may still work. */
		log_debug(ctx, "iommufd unusable, trying the VFIO container: %s", ctx->error);
		r = fall_back_to_container(iommu);
	}
	if (r < 0) {
		iovk_vfio_iommu_unref(iommu);
		return r;
	}
	*ret_iommu = iommu;
	return 0;
}

/* Frees what the last reference held (DEFINE_PUBLIC_REF_UNREF below). */
static void vfio_iommu_free(struct iovk_vfio_iommu *iommu)
{
	/* Unmap before the groups go: once the last group leaves the
	 * container the kernel drops the mappings itself, but a container
	 * that outlives us (an fd passed to a VMM) must not keep pins. */
	if (iommu->mappings && iommu->ready) {
		char saved[sizeof(iommu->ctx->error)];

		/* keep the caller's last error readable after the cleanup */
		memcpy(saved, iommu->ctx->error, sizeof(saved));
		(void)iovk_vfio_dma_unmap_all(iommu);
		memcpy(iommu->ctx->error, saved, sizeof(saved));
	}
	if (iommu->ops)
		iommu->ops->close(iommu);
	iovk_vfio_mapping_list_free(iommu->mappings);
	iovk_iova_allocator_free(iommu->allocator);
	iovk_vfio_iommu_info_clear(&iommu->info);
	free(iommu->groups);
	iovk_ctx_unref(iommu->ctx);
	free(iommu);
}

DEFINE_PUBLIC_REF_UNREF(struct iovk_vfio_iommu, iovk_vfio_iommu, vfio_iommu_free);

_public_ enum iovk_vfio_mode iovk_vfio_iommu_get_mode(const struct iovk_vfio_iommu *iommu)
{
	return iommu->mode;
}

_public_ const char *iovk_vfio_iommu_get_backend(const struct iovk_vfio_iommu *iommu)
{
	return iommu->ops->backend;
}

_public_ int iovk_vfio_iommu_get_fd(const struct iovk_vfio_iommu *iommu)
{
	return iommu->fd;
}

static int not_ready(const struct iovk_vfio_iommu *iommu)
{
	return set_error(iommu->ctx, -ENXIO,
			 "the VFIO %s has no device yet: the kernel sets its IOMMU type, and can describe "
			 "it, only once a device's group joined",
			 iommu->ops->backend);
}

int vfio_iommu_attach_device(struct iovk_vfio_iommu *iommu, const char *address, int group, const char *vf_token,
			     int *ret_device_fd)
{
	int r;

	r = iommu->ops->attach_device(iommu, address, group, vf_token, ret_device_fd);
	/* The iommufd backend says -EOPNOTSUPP only when this device cannot
	 * use it at all (no cdev; a VF token the cdev cannot take). Before
	 * any device joined nothing is lost by switching: no mapping can
	 * exist yet. */
	if (r != -EOPNOTSUPP || !iommu->auto_mode || iommu->ready || iommu->ops == &vfio_container_ops)
		return r;
	log_debug(iommu->ctx, "%s: using the VFIO container instead of iommufd: %s", address, iommu->ctx->error);
	r = fall_back_to_container(iommu);
	if (r < 0)
		return r;
	return iommu->ops->attach_device(iommu, address, group, vf_token, ret_device_fd);
}

int vfio_iommu_update_info(struct iovk_vfio_iommu *iommu)
{
	struct iovk_vfio_iommu_info info = {};
	struct iovk_iova_allocator *a = NULL;
	const struct iovk_vfio_mapping *m;
	size_t n;
	int r;

	r = iommu->ops->query_info(iommu, &info);
	if (r < 0)
		return r;
	if (!info.has_iova_ranges) {
		/* Before 5.4 type1 did not report ranges: the whole 64-bit
		 * space is the best we know; the kernel still refuses maps
		 * its IOMMU cannot address. */
		info.iova_ranges = calloc(1, sizeof(*info.iova_ranges));
		if (!info.iova_ranges)
			return -ENOMEM;
		info.iova_ranges[0] = (struct iovk_iova_range){ 0, UINT64_MAX };
		info.n_iova_ranges = 1;
	}
	if (info.n_iova_ranges == 0) {
		iovk_vfio_iommu_info_clear(&info);
		return set_error(iommu->ctx, -ENOSPC, "the kernel reports no valid IOVA range for this %s",
				 iommu->ops->backend);
	}
	r = iovk_iova_allocator_new(info.iova_ranges, info.n_iova_ranges, &a);
	if (r < 0) {
		iovk_vfio_iommu_info_clear(&info);
		return set_error(iommu->ctx, r, "building the IOVA allocator: %s", strerror(-r));
	}
	m = iovk_vfio_mapping_list_get(iommu->mappings, &n);
	for (size_t i = 0; i < n; i++)
		/* The kernel refuses an attach whose reserved regions hit a
		 * mapping, so these fit; a failure would be ours to report. */
		if ((r = iovk_iova_reserve(a, m[i].iova, m[i].size)) < 0) {
			iovk_iova_allocator_free(a);
			iovk_vfio_iommu_info_clear(&info);
			return set_error(iommu->ctx, r,
					 "the mapping at IOVA 0x%" PRIx64 " is outside the new valid IOVA ranges",
					 m[i].iova);
		}
	if (info.has_dma_avail)
		/* The kernel counts what is left after our mappings; keep the
		 * budget instead, which the map check compares with our count. */
		info.dma_avail = info.dma_avail > UINT32_MAX - n ? UINT32_MAX : info.dma_avail + (uint32_t)n;
	iovk_iova_allocator_free(iommu->allocator);
	iovk_vfio_iommu_info_clear(&iommu->info);
	iommu->allocator = a;
	iommu->info = info;
	iommu->ready = true;
	return 0;
}

_public_ int iovk_vfio_iommu_get_iova_ranges(const struct iovk_vfio_iommu *iommu,
					     const struct iovk_iova_range **ret_ranges, size_t *ret_n)
{
	if (!iommu->ready)
		return not_ready(iommu);
	*ret_ranges = iommu->info.iova_ranges;
	*ret_n = iommu->info.n_iova_ranges;
	return 0;
}

_public_ int iovk_vfio_iommu_get_pgsizes(const struct iovk_vfio_iommu *iommu, uint64_t *ret_pgsizes)
{
	if (!iommu->ready)
		return not_ready(iommu);
	*ret_pgsizes = iommu->info.pgsizes;
	return 0;
}

static size_t n_mappings(const struct iovk_vfio_iommu *iommu)
{
	size_t n;

	iovk_vfio_mapping_list_get(iommu->mappings, &n);
	return n;
}

_public_ int iovk_vfio_iommu_get_dma_avail(struct iovk_vfio_iommu *iommu, uint32_t *ret_avail, bool *ret_reported)
{
	struct iovk_vfio_iommu_info info = {};
	size_t n = n_mappings(iommu);
	int r;

	if (!iommu->ready)
		return not_ready(iommu);
	r = iommu->ops->query_info(iommu, &info);
	if (r < 0)
		return r;
	if (iommu->ops->unlimited_mappings)
		*ret_avail = IOVK_VFIO_DMA_AVAIL_UNLIMITED;
	else if (info.has_dma_avail)
		*ret_avail = info.dma_avail;
	else
		*ret_avail = n >= IOVK_VFIO_DEFAULT_DMA_AVAIL ? 0 : IOVK_VFIO_DEFAULT_DMA_AVAIL - (uint32_t)n;
	if (ret_reported)
		*ret_reported = info.has_dma_avail;
	iovk_vfio_iommu_info_clear(&info);
	return 0;
}

static void format_ranges(const struct iovk_vfio_iommu *iommu, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < iommu->info.n_iova_ranges && len < size; i++) {
		int n = snprintf(buf + len, size - len, "%s0x%" PRIx64 "-0x%" PRIx64, i ? ", " : "",
				 iommu->info.iova_ranges[i].start, iommu->info.iova_ranges[i].end);

		if (n < 0)
			break;
		len += (size_t)n;
	}
}

static uint64_t min_page(const struct iovk_vfio_iommu *iommu)
{
	uint64_t p = iommu->info.pgsizes;

	return p ? p & -p : 4096;
}

/* The largest IOMMU page size not above size: the IOVA alignment that lets
 * the IOMMU use its biggest pages for a buffer that has them. */
static uint64_t map_alignment(const struct iovk_vfio_iommu *iommu, uint64_t size)
{
	uint64_t best = min_page(iommu);

	if (iommu->ops->pgsizes_unknown) {
		/* iommufd does not tell the IOMMU's page sizes: align to the
		 * largest power of two not above size, up to 1 GiB (the
		 * largest IOMMU page x86 and arm64 have), so whatever huge
		 * pages the IOMMU has fit. */
		while (best < (UINT64_C(1) << 30) && best * 2 <= size)
			best *= 2;
		return best;
	}
	for (uint64_t p = iommu->info.pgsizes; p; p &= p - 1) {
		uint64_t bit = p & -p;

		if (bit <= size && bit > best)
			best = bit;
	}
	return best;
}

/* Explains a kernel refusal of MAP_DMA. */
static int map_error(struct iovk_vfio_iommu *iommu, int r, uint64_t vaddr, uint64_t iova, uint64_t size)
{
	struct iovk_ctx *ctx = iommu->ctx;
	char ranges[512];
	struct rlimit rl;

	switch (r) {
	case -ENOMEM:
		/* type1 counts pinned pages against RLIMIT_MEMLOCK unless the
		 * process has CAP_IPC_LOCK (vfio_lock_acct()). */
		if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
			return set_error(ctx, r,
					 "pinning %" PRIu64 " bytes for DMA at IOVA 0x%" PRIx64
					 " failed: the locked-memory limit RLIMIT_MEMLOCK is %llu bytes and "
					 "%" PRIu64 " bytes are already pinned through this %s (plus whatever else "
					 "the process locked); raise it (ulimit -l, prlimit --memlock, "
					 "LimitMEMLOCK= in a systemd unit) or grant CAP_IPC_LOCK",
					 size, iova, (unsigned long long)rl.rlim_cur, iommu->mapped_bytes,
					 iommu->ops->backend);
		return set_error(ctx, r,
				 "pinning %" PRIu64 " bytes for DMA at IOVA 0x%" PRIx64
				 " failed: out of memory (RLIMIT_MEMLOCK is unlimited)",
				 size, iova);
	case -ENOSPC:
		return set_error(ctx, r,
				 "mapping IOVA 0x%" PRIx64 " (+%" PRIu64 " bytes) refused: no DMA mapping left "
				 "(%zu made here; the vfio_iommu_type1 module parameter dma_entry_limit bounds "
				 "them, default 65535)",
				 iova, size, n_mappings(iommu));
	case -EEXIST:
		return set_error(ctx, r, "mapping IOVA 0x%" PRIx64 " (+%" PRIu64 " bytes) refused: "
					 "it overlaps an existing mapping", iova, size);
	case -EINVAL:
		format_ranges(iommu, ranges, sizeof(ranges));
		return set_error(ctx, r,
				 "the kernel refused to map IOVA 0x%" PRIx64 " (+%" PRIu64 " bytes) from host "
				 "address 0x%" PRIx64 ": Invalid argument (outside the valid IOVA ranges %s, "
				 "wrapping, or not aligned to the IOMMU page size 0x%" PRIx64 ")",
				 iova, size, vaddr, ranges, min_page(iommu));
	default:
		return set_error(ctx, r, "mapping IOVA 0x%" PRIx64 " (+%" PRIu64 " bytes): %s", iova, size,
				 strerror(-r));
	}
}

_public_ int iovk_vfio_dma_map(struct iovk_vfio_iommu *iommu, void *vaddr, uint64_t size,
			       const struct iovk_vfio_dma_map_opts *opts, uint64_t *ret_iova)
{
	struct iovk_ctx *ctx;
	uint64_t va = (uint64_t)(uintptr_t)vaddr, iova = 0, page;
	unsigned flags = 0;
	bool check, allocated = false;
	char ranges[512];
	int r;

	assert_return(iommu, -EINVAL);
	ctx = iommu->ctx;
	clear_error(ctx);
	if (opts) {
		/* Callers built against an older header pass a smaller struct:
		 * read only the fields it has. */
		r = opts_valid(ctx, opts, opts->sz, offsetofend(struct iovk_vfio_dma_map_opts, flags),
			       sizeof(*opts), "iovk_vfio_dma_map_opts", "IOVK_OPTS()");
		if (r < 0)
			return r;
		flags = opts->flags;
		if (opts->sz >= offsetofend(struct iovk_vfio_dma_map_opts, iova))
			iova = opts->iova;
		else if (flags & IOVK_VFIO_DMA_FIXED_IOVA)
			return set_error(ctx, -EINVAL, "DMA map options: fixed IOVA asked for without .iova");
	}
	if (!(flags & (IOVK_VFIO_DMA_READ | IOVK_VFIO_DMA_WRITE)))
		flags |= IOVK_VFIO_DMA_READ | IOVK_VFIO_DMA_WRITE;
	check = !(flags & IOVK_VFIO_DMA_NO_CHECK);
	if (!iommu->ready)
		return not_ready(iommu);
	if (size == 0)
		return set_error(ctx, -EINVAL, "a DMA mapping of 0 bytes was asked for");
	page = min_page(iommu);
	if (check && (va % page || size % page))
		return set_error(ctx, -EINVAL,
				 "DMA mapping of host address 0x%" PRIx64 " (+%" PRIu64 " bytes): not aligned "
				 "to the IOMMU's smallest page, 0x%" PRIx64 " bytes",
				 va, size, page);
	/* info.dma_avail was read before the first mapping: what is left is
	 * that minus ours (the container is ours alone). */
	if (check && n_mappings(iommu) >= iommu->info.dma_avail)
		return set_error(ctx, -ENOSPC,
				 "mapping %" PRIu64 " bytes from host address 0x%" PRIx64 " refused: no DMA mapping "
				 "left (%zu made here; the vfio_iommu_type1 module parameter dma_entry_limit "
				 "bounds them, default 65535)",
				 size, va, n_mappings(iommu));

	if (flags & IOVK_VFIO_DMA_FIXED_IOVA) {
		if (iova + (size - 1) < iova)
			return set_error(ctx, -EOVERFLOW,
					 "DMA mapping at IOVA 0x%" PRIx64 " (+%" PRIu64 " bytes) wraps past 2^64",
					 iova, size);
		if (check) {
			if (iova % page)
				return set_error(ctx, -EINVAL,
						 "IOVA 0x%" PRIx64 " is not aligned to the IOMMU's smallest page, "
						 "0x%" PRIx64 " bytes",
						 iova, page);
			r = iovk_iova_reserve(iommu->allocator, iova, size);
			if (r == -ERANGE) {
				format_ranges(iommu, ranges, sizeof(ranges));
				return set_error(ctx, r,
						 "IOVA 0x%" PRIx64 "-0x%" PRIx64 " is outside the valid IOVA "
						 "ranges of this %s: %s",
						 iova, iova + (size - 1), iommu->ops->backend, ranges);
			}
			if (r == -EBUSY)
				return map_error(iommu, -EEXIST, va, iova, size);
			if (r < 0)
				return set_error(ctx, r, "reserving IOVA 0x%" PRIx64 ": %s", iova, strerror(-r));
			allocated = true;
		}
	} else {
		r = iovk_iova_alloc(iommu->allocator, size, map_alignment(iommu, size), &iova);
		if (r == -EOVERFLOW) {
			format_ranges(iommu, ranges, sizeof(ranges));
			return set_error(ctx, r,
					 "a DMA mapping of %" PRIu64 " bytes is larger than every valid IOVA "
					 "range (%s)",
					 size, ranges);
		}
		if (r == -ENOSPC)
			return set_error(ctx, r,
					 "no free IOVA space for %" PRIu64 " bytes (%zu mappings, %" PRIu64
					 " bytes of IOVA space left, fragmented)",
					 size, n_mappings(iommu), iovk_iova_allocator_get_free(iommu->allocator));
		if (r < 0)
			return set_error(ctx, r, "allocating IOVA space: %s", strerror(-r));
		allocated = true;
	}

	r = iommu->ops->map(iommu, va, iova, size, flags & (IOVK_VFIO_DMA_READ | IOVK_VFIO_DMA_WRITE));
	if (r < 0) {
		if (allocated)
			(void)iovk_iova_free(iommu->allocator, iova, size);
		return map_error(iommu, r, va, iova, size);
	}
	r = iovk_vfio_mapping_list_add(iommu->mappings,
				       &(struct iovk_vfio_mapping){ .vaddr = va, .iova = iova, .size = size,
								    .flags = flags & (IOVK_VFIO_DMA_READ |
										      IOVK_VFIO_DMA_WRITE) });
	if (r < 0) {
		/* Only reachable with NO_CHECK: the kernel took a mapping we
		 * cannot track; take it back rather than lose it. */
		(void)iommu->ops->unmap(iommu, iova, size, NULL);
		if (allocated)
			(void)iovk_iova_free(iommu->allocator, iova, size);
		return set_error(ctx, r, "recording the mapping at IOVA 0x%" PRIx64 ": %s", iova, strerror(-r));
	}
	if (!allocated)
		/* A NO_CHECK mapping the kernel accepted: keep the allocator
		 * from handing its IOVAs out again (best effort). */
		(void)iovk_iova_reserve(iommu->allocator, iova, size);
	iommu->mapped_bytes += size;
	log_debug(ctx, "mapped host 0x%" PRIx64 " at IOVA 0x%" PRIx64 " (+%" PRIu64 ")", va, iova, size);
	if (ret_iova)
		*ret_iova = iova;
	return 0;
}

_public_ int iovk_vfio_dma_unmap(struct iovk_vfio_iommu *iommu, uint64_t iova, uint64_t size)
{
	struct iovk_ctx *ctx;
	const struct iovk_vfio_mapping *m;
	uint64_t unmapped = 0;
	int r;

	assert_return(iommu, -EINVAL);
	ctx = iommu->ctx;
	m = iovk_vfio_mapping_list_find_iova(iommu->mappings, iova);
	clear_error(ctx);
	if (!m || m->iova != iova || m->size != size)
		return set_error(ctx, -ENOENT,
				 "no DMA mapping at IOVA 0x%" PRIx64 " of %" PRIu64 " bytes was made through "
				 "this %s",
				 iova, size, iommu->ops->backend);
	r = iommu->ops->unmap(iommu, iova, size, &unmapped);
	if (r < 0)
		return set_error(ctx, r, "unmapping IOVA 0x%" PRIx64 " (+%" PRIu64 " bytes): %s", iova, size,
				 strerror(-r));
	if (unmapped != size)
		/* type1 reports what it unmapped; less means our shadow list
		 * and the kernel disagree. Keep the entry: it may still pin. */
		return set_error(ctx, -EIO,
				 "unmapping IOVA 0x%" PRIx64 ": the kernel unmapped %" PRIu64 " of %" PRIu64
				 " bytes",
				 iova, unmapped, size);
	(void)iovk_vfio_mapping_list_remove(iommu->mappings, iova, size);
	(void)iovk_iova_free(iommu->allocator, iova, size);
	iommu->mapped_bytes -= size;
	return 0;
}

_public_ int iovk_vfio_dma_unmap_all(struct iovk_vfio_iommu *iommu)
{
	char first_text[sizeof(iommu->ctx->error)] = "";
	int n = 0, first_error = 0;
	size_t count;

	/* From the top, so each removal is O(1) in the list. */
	for (;;) {
		const struct iovk_vfio_mapping *v = iovk_vfio_mapping_list_get(iommu->mappings, &count);
		struct iovk_vfio_mapping m;
		int r;

		if (count == 0)
			break;
		m = v[count - 1];
		r = iovk_vfio_dma_unmap(iommu, m.iova, m.size);
		if (r < 0) {
			if (!first_error) {
				first_error = r;
				snprintf(first_text, sizeof(first_text), "%s", iommu->ctx->error);
			}
			/* Drop it from the list anyway: retrying forever helps nobody. */
			(void)iovk_vfio_mapping_list_remove(iommu->mappings, m.iova, m.size);
			(void)iovk_iova_free(iommu->allocator, m.iova, m.size);
			iommu->mapped_bytes -= m.size;
			continue;
		}
		n++;
	}
	if (first_error) {
		/* later unmaps cleared the context's error: put the first one back */
		snprintf(iommu->ctx->error, sizeof(iommu->ctx->error), "%s", first_text);
		return first_error;
	}
	return n;
}

_public_ int iovk_vfio_iommu_replay(struct iovk_vfio_iommu *iommu, const struct iovk_vfio_mapping_list *mappings)
{
	struct iovk_ctx *ctx = iommu->ctx;
	char why[sizeof(ctx->error)], undo[128];
	const struct iovk_vfio_mapping *v;
	size_t n, i, undo_failed = 0;
	int r = 0;

	clear_error(ctx);
	if (!mappings || mappings == iommu->mappings)
		return set_error(ctx, -EINVAL, "replaying %s onto this %s", mappings ? "its own mappings" : "no list",
				 iommu->ops->backend);
	v = iovk_vfio_mapping_list_get(mappings, &n);
	if (n > INT_MAX)
		return set_error(ctx, -E2BIG, "replaying %zu mappings: more than can be counted", n);
	for (i = 0; i < n; i++) {
		/* Only the permissions travel: NO_CHECK or the like in a list
		 * a caller filled must not switch the checks off. */
		unsigned perm = v[i].flags & (IOVK_VFIO_DMA_READ | IOVK_VFIO_DMA_WRITE);

		r = iovk_vfio_dma_map(iommu, (void *)(uintptr_t)v[i].vaddr, v[i].size,
				      &IOVK_OPTS(iovk_vfio_dma_map_opts, .flags = perm | IOVK_VFIO_DMA_FIXED_IOVA,
						 .iova = v[i].iova),
				      NULL);
		if (r < 0)
			break;
	}
	if (r >= 0)
		return (int)n;

	snprintf(why, sizeof(why), "%s", ctx->error);
	/* All or nothing: take back what this replay mapped, newest first. */
	for (size_t k = i; k-- > 0;)
		if (iovk_vfio_dma_unmap(iommu, v[k].iova, v[k].size) < 0)
			undo_failed++;
	if (undo_failed)
		snprintf(undo, sizeof(undo), "%zu of the %zu mapping(s) replayed before it could not be unmapped again",
			 undo_failed, i);
	else
		snprintf(undo, sizeof(undo), "the %zu mapping(s) replayed before it were unmapped again", i);
	return set_error(ctx, r,
			 "replaying mapping %zu of %zu (IOVA 0x%" PRIx64 ", %" PRIu64 " bytes, host address 0x%" PRIx64
			 ") failed: %s; %s",
			 i + 1, n, v[i].iova, v[i].size, v[i].vaddr, why, undo);
}

_public_ int iovk_vfio_dma_to_iova(const struct iovk_vfio_iommu *iommu, const void *vaddr, uint64_t *ret_iova)
{
	return iovk_vfio_mapping_list_to_iova(iommu->mappings, vaddr, ret_iova);
}

_public_ const struct iovk_vfio_mapping_list *iovk_vfio_iommu_get_mappings(const struct iovk_vfio_iommu *iommu)
{
	return iommu->mappings;
}
