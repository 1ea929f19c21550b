/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The native iommufd backend: /dev/iommu with one IOAS (I/O address space)
 * per struct iovk_vfio_iommu, devices opened through their VFIO cdev
 * /dev/vfio/devices/vfioN, bound to the iommufd and attached to the IOAS.
 *
 * Order the kernel insists on (Documentation/driver-api/vfio.rst, "VFIO
 * device cdev"): open the cdev, VFIO_DEVICE_BIND_IOMMUFD (only then may the
 * fd be used at all), VFIO_DEVICE_ATTACH_IOMMUFD_PT with the IOAS id; the
 * IOAS's valid IOVA ranges narrow with every attached device, so they are
 * read again after each (IOMMU_IOAS_IOVA_RANGES). Closing the device fd
 * detaches and unbinds it; we detach explicitly first.
 *
 * Needs Linux 6.6+ with CONFIG_IOMMUFD and CONFIG_VFIO_DEVICE_CDEV. Debian's
 * packaged kernels (6.1; 6.12 from bookworm-backports) have neither, so the
 * test tier builds a guest kernel that has them (tests/vm/build-kernel).
 * The uapi comes from a private header (iommufd-uapi.h): Debian 12's kernel
 * headers are 6.1's.
 *
 * What iommufd does not report, and what we say instead:
 *   - dma_avail: iommufd has no dma_entry_limit; IOVK_VFIO_DMA_AVAIL_UNLIMITED.
 *   - IOMMU page sizes: only the minimum IOVA alignment
 *     (out_iova_alignment, at most PAGE_SIZE); pgsizes is that.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "iommufd-uapi.h"
#include "vfio-internal.h"

/* A few retries when the ranges change between the two calls (a device attached meanwhile). */
#define IOVA_RANGES_TRIES 4

static int iommufd_open(struct iovk_vfio_iommu *iommu)
{
	struct iovk_ctx *ctx = iommu->ctx;
	_cleanup_free_ char *path = dev_path(ctx, "/iommu");
	_cleanup_close_ int fd = -1;
	struct iovk_iommu_ioas_alloc alloc = { .size = sizeof(alloc) };
	int r;

	if (!path)
		return -ENOMEM;
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		r = negative_errno();
		if (r == -ENOENT)
			return set_error(ctx, r,
					 "%s does not exist: this kernel has no iommufd (CONFIG_IOMMUFD, Linux "
					 "6.2+; VFIO cdevs need CONFIG_VFIO_DEVICE_CDEV, 6.6+; Debian's kernels are "
					 "built without both); use the container backend (mode \"container\" or "
					 "\"auto\")",
					 path);
		return set_error(ctx, r, "opening the iommufd %s: %s", path, strerror(-r));
	}
	r = vfio_ioctl(fd, IOMMU_IOAS_ALLOC, &alloc);
	if (r < 0)
		return set_error(ctx, r, "%s: IOMMU_IOAS_ALLOC: %s%s", path, strerror(-r),
				 r == -ENOTTY ? " (not an iommufd)" : "");
	iommu->ioas_id = alloc.out_ioas_id;
	iommu->mode = IOVK_VFIO_MODE_IOMMUFD;
	iommu->fd = TAKE_FD(fd);
	log_debug(ctx, "iommufd %s: IOAS %" PRIu32, path, iommu->ioas_id);
	return 0;
}

static void iommufd_close(struct iovk_vfio_iommu *iommu)
{
	/* Closing the iommufd destroys the IOAS and whatever it still maps;
	 * devices are gone by now (each holds a reference on us). */
	if (iommu->fd >= 0)
		close(iommu->fd);
	iommu->fd = -1;
	iommu->ioas_id = 0;
	iommu->n_devices = 0;
}

/* The device's /dev/vfio/devices/vfioN; -EOPNOTSUPP without one: AUTO mode takes the container instead. */
static int find_cdev(struct iovk_vfio_iommu *iommu, const char *address, char **ret_path)
{
	struct iovk_ctx *ctx = iommu->ctx;
	int r = iovk_device_vfio_cdev_node(ctx, address, ret_path);

	if (r == -ENOENT) {
		char why[sizeof(ctx->error)];

		snprintf(why, sizeof(why), "%s", ctx->error);
		return set_error(ctx, -EOPNOTSUPP, "%s; use the container backend", why);
	}
	return r;
}

/* The driver bound to a device ("" when none), by sysfs. */
static void driver_of(struct iovk_ctx *ctx, const char *address, const char *rel, char *buf, size_t size)
{
	_cleanup_free_ char *p = sysfs_path(ctx, "/bus/pci/devices/%s%s/driver", address, rel);

	buf[0] = '\0';
	if (!p || read_link_name(p, buf, size) < 0)
		buf[0] = '\0';
}

/*
 * Whether vfio-pci takes a VF token for this device: a VF whose PF is bound
 * to the same vfio driver (the kernel compares the drivers), or such a PF
 * with SR-IOV (vfio_pci_core_match_token_uuid()).
 */
static bool token_applies(struct iovk_ctx *ctx, const char *address, bool *ret_is_vf)
{
	char drv[64], pf_drv[64];
	_cleanup_free_ char *physfn = sysfs_path(ctx, "/bus/pci/devices/%s/physfn", address);
	_cleanup_free_ char *numvfs = sysfs_path(ctx, "/bus/pci/devices/%s/sriov_numvfs", address);

	*ret_is_vf = false;
	if (!physfn || !numvfs)
		return false;
	driver_of(ctx, address, "", drv, sizeof(drv));
	if (path_exists(physfn)) {
		*ret_is_vf = true;
		driver_of(ctx, address, "/physfn", pf_drv, sizeof(pf_drv));
		return drv[0] && strcmp(drv, pf_drv) == 0;
	}
	return iovk_driver_is_vfio(drv) && path_exists(numvfs);
}

static int bind_error(struct iovk_vfio_iommu *iommu, const char *address, int group, const char *vf_token,
		      const char *cdev, int r)
{
	struct iovk_ctx *ctx = iommu->ctx;
	bool is_vf;

	switch (r) {
	case -EINVAL:
		if (vf_token && token_applies(ctx, address, &is_vf))
			/* The token belongs here, so the kernel refused the
			 * flag itself: before 6.17 flags must be 0. */
			return set_error(ctx, -EOPNOTSUPP,
					 "%s: this kernel's VFIO cdev takes no VF token "
					 "(VFIO_DEVICE_BIND_FLAG_TOKEN arrived in Linux 6.17) and checks none; "
					 "open the device through the container backend, which passes it",
					 address);
		if (vf_token)
			return set_error(ctx, r,
					 "%s: the kernel refused the VF token: it applies only to a VF whose PF is "
					 "bound to vfio-pci, or to such a PF",
					 address);
		/* vfio_df_open(): the cdev path allows one open of a device. */
		return set_error(ctx, -EBUSY, "%s: the device is already open through VFIO (%s, another fd or process)",
				 address, cdev);
	case -EACCES:
		if (!vf_token)
			return set_error(ctx, r,
					 "%s: the kernel wants a VF token (its PF is bound to vfio-pci, whose user "
					 "sets one); pass the token that user set",
					 address);
		return set_error(ctx, r, "%s: the kernel refused the VF token %s (not the one the PF's user set)",
				 address, vf_token);
	case -EBUSY:
		/* vfio_device_block_group(): the legacy group is open. */
		return set_error(ctx, r,
				 "%s: another process holds IOMMU group %d open (a VMM, or another VFIO user; "
				 "a group used through /dev/vfio/%d excludes its devices' cdevs)",
				 address, group, group);
	case -EPERM: {
		char who[700];

		/* iommu_device_claim_dma_owner(): a kernel driver owns a
		 * member of the group, or another iommufd owns its DMA;
		 * iommufd_device_bind(): no interrupt remapping. */
		if (vfio_group_blockers(ctx, group, who, sizeof(who)) > 0)
			return set_error(ctx, -EBUSY, "%s: IOMMU group %d is not viable: %s", address, group, who);
		return set_error(ctx, -EBUSY,
				 "%s: the kernel refused to bind the device to the iommufd (EPERM): another "
				 "process has a device of IOMMU group %d open through its own iommufd, or "
				 "interrupt remapping is off and iommufd's allow_unsafe_interrupts parameter "
				 "is not set (see iovctl doctor)",
				 address, group);
	}
	default:
		return set_error(ctx, r, "%s: VFIO_DEVICE_BIND_IOMMUFD on %s: %s", address, cdev, strerror(-r));
	}
}

static int iommufd_attach_device(struct iovk_vfio_iommu *iommu, const char *address, int group, const char *vf_token,
				 int *ret_device_fd)
{
	struct iovk_ctx *ctx = iommu->ctx;
	_cleanup_free_ char *cdev = NULL;
	_cleanup_close_ int fd = -1;
	uint8_t uuid[16];
	struct iovk_vfio_device_bind_iommufd bind = {
		.argsz = sizeof(bind),
		.iommufd = iommu->fd,
	};
	struct iovk_vfio_device_attach_iommufd_pt attach = {
		.argsz = sizeof(attach),
		.pt_id = iommu->ioas_id,
	};
	bool is_vf;
	int r;

	r = find_cdev(iommu, address, &cdev);
	if (r < 0)
		return r;
	if (vf_token) {
		if (vfio_parse_uuid(vf_token, uuid) < 0)
			return set_error(ctx, -EINVAL, "'%s' is not a VF token (a UUID: 8-4-4-4-12 hex digits)",
					 vf_token);
		bind.flags |= VFIO_DEVICE_BIND_FLAG_TOKEN;
		bind.token_uuid_ptr = (uint64_t)(uintptr_t)uuid;
	} else if (token_applies(ctx, address, &is_vf) && is_vf) {
		/* Kernels before 6.17 check no token on the cdev path (a gap
		 * the group path never had): refuse as the group path would,
		 * rather than open a VF behind its PF user's back. 6.17+
		 * refuses by itself. */
		return set_error(ctx, -EACCES,
				 "%s: the kernel wants a VF token (its PF is bound to vfio-pci, whose user "
				 "sets one); pass the token that user set",
				 address);
	}

	fd = open(cdev, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		r = negative_errno();
		if (r == -ENOENT)
			return set_error(ctx, r, "%s: %s does not exist although sysfs names it (is %s a devtmpfs?)",
					 address, cdev, iovk_ctx_get_dev_root(ctx));
		return set_error(ctx, r, "%s: opening %s: %s", address, cdev, strerror(-r));
	}
	r = vfio_ioctl(fd, VFIO_DEVICE_BIND_IOMMUFD, &bind);
	if (r < 0)
		return bind_error(iommu, address, group, vf_token, cdev, r);
	r = vfio_ioctl(fd, VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach);
	if (r < 0) {
		if (r == -EPERM)
			/* intel-iommu without interrupt remapping: as type1,
			 * iommufd refuses unless allow_unsafe_interrupts. */
			return set_error(ctx, r,
					 "%s: the kernel refused to attach the device to IOAS %" PRIu32 " (EPERM): "
					 "without interrupt remapping iommufd refuses unless its "
					 "allow_unsafe_interrupts parameter is set (see iovctl doctor)",
					 address, iommu->ioas_id);
		return set_error(ctx, r, "%s: VFIO_DEVICE_ATTACH_IOMMUFD_PT to IOAS %" PRIu32 ": %s%s", address,
				 iommu->ioas_id, strerror(-r),
				 r == -EADDRINUSE ? " (a mapping of the IOAS lies in the device's reserved IOVA regions)"
						  : "");
	}
	iommu->n_devices++;
	/* The device's reserved regions (the MSI window, RMRRs) are now
	 * holes in the IOAS: read the valid ranges again. */
	r = vfio_iommu_update_info(iommu);
	if (r < 0) {
		struct iovk_vfio_device_detach_iommufd_pt detach = { .argsz = sizeof(detach) };

		(void)vfio_ioctl(fd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach);
		iommu->n_devices--;
		return r;
	}
	log_debug(ctx, "%s: %s bound to the iommufd and attached to IOAS %" PRIu32, address, cdev, iommu->ioas_id);
	*ret_device_fd = TAKE_FD(fd);
	return 0;
}

static void iommufd_detach_device(struct iovk_vfio_iommu *iommu, const char *address, int device_fd)
{
	struct iovk_vfio_device_detach_iommufd_pt detach = { .argsz = sizeof(detach) };
	int r = vfio_ioctl(device_fd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach);

	if (r < 0)
		log_debug(iommu->ctx, "%s: VFIO_DEVICE_DETACH_IOMMUFD_PT: %s (closing the fd detaches it)", address,
			  strerror(-r));
	if (iommu->n_devices > 0)
		iommu->n_devices--;
}

/*
 * Converts the kernel's ranges (struct iommu_iova_range: start, last) into
 * ours, sorted and checked. Pure: the unit tests feed it crafted lists.
 */
int vfio_iommufd_ranges_convert(const void *kranges, size_t n, struct iovk_iova_range **ret_ranges)
{
	const struct iovk_iommu_iova_range *k = kranges;
	struct iovk_iova_range *r;

	if (n > IOVK_VFIO_IOVA_RANGES_MAX)
		return -E2BIG;
	r = calloc(n ? n : 1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		r[i] = (struct iovk_iova_range){ .start = k[i].start, .end = k[i].last };
	if (vfio_iova_ranges_sort_check(r, n) < 0) {
		free(r);
		return -EBADMSG;
	}
	*ret_ranges = r;
	return 0;
}

static int iommufd_query_info(struct iovk_vfio_iommu *iommu, struct iovk_vfio_iommu_info *ret_info)
{
	struct iovk_ctx *ctx = iommu->ctx;
	_cleanup_free_ struct iovk_iommu_iova_range *k = NULL;
	struct iovk_iommu_ioas_iova_ranges q;
	struct iovk_iova_range *ranges = NULL;
	uint32_t cap = 0;
	long page = sysconf(_SC_PAGESIZE);
	int r = 0;

	for (int tries = 0; tries < IOVA_RANGES_TRIES; tries++) {
		q = (struct iovk_iommu_ioas_iova_ranges){
			.size = sizeof(q),
			.ioas_id = iommu->ioas_id,
			.num_iovas = cap,
			.allowed_iovas = (uint64_t)(uintptr_t)k,
		};
		r = vfio_ioctl(iommu->fd, IOMMU_IOAS_IOVA_RANGES, &q);
		if (r == 0 && q.num_iovas <= cap)
			break;
		if (r < 0 && r != -EMSGSIZE)
			return set_error(ctx, r, "IOMMU_IOAS_IOVA_RANGES on IOAS %" PRIu32 ": %s", iommu->ioas_id,
					 strerror(-r));
		/* -EMSGSIZE (or 0 with more ranges than room): num_iovas is
		 * what the kernel has; make room and ask again. */
		if (q.num_iovas > IOVK_VFIO_IOVA_RANGES_MAX)
			return set_error(ctx, -E2BIG, "IOAS %" PRIu32 " has %" PRIu32 " IOVA ranges (at most %d accepted)",
					 iommu->ioas_id, q.num_iovas, IOVK_VFIO_IOVA_RANGES_MAX);
		free(k);
		cap = q.num_iovas;
		k = calloc(cap ? cap : 1, sizeof(*k));
		if (!k)
			return -ENOMEM;
		r = -EMSGSIZE;
	}
	if (r < 0)
		return set_error(ctx, -EAGAIN, "IOMMU_IOAS_IOVA_RANGES on IOAS %" PRIu32 ": the ranges kept changing",
				 iommu->ioas_id);
	r = vfio_iommufd_ranges_convert(k, q.num_iovas, &ranges);
	if (r < 0)
		return set_error(ctx, r, "IOMMU_IOAS_IOVA_RANGES on IOAS %" PRIu32 ": the kernel's answer is malformed "
					 "(%s)",
				 iommu->ioas_id,
				 r == -E2BIG ? "too many ranges" : "inverted or overlapping ranges");
	*ret_info = (struct iovk_vfio_iommu_info){
		/* Only the minimum IOVA alignment is known (never above
		 * PAGE_SIZE); pinning works in whole pages anyway. No range
		 * at all is for vfio_iommu_update_info() to report. */
		.pgsizes = q.out_iova_alignment > (uint64_t)page ? q.out_iova_alignment : (uint64_t)page,
		.has_iova_ranges = true,
		.n_iova_ranges = q.num_iovas,
		.iova_ranges = ranges,
		.has_dma_avail = false,
		.dma_avail = IOVK_VFIO_DMA_AVAIL_UNLIMITED,
	};
	return 0;
}

static int iommufd_map(struct iovk_vfio_iommu *iommu, uint64_t vaddr, uint64_t iova, uint64_t size, unsigned flags)
{
	struct iovk_iommu_ioas_map map = {
		.size = sizeof(map),
		/* Always at the IOVA the shared allocator chose: the shadow
		 * list and the allocator stay the single source of truth,
		 * as with the container. */
		.flags = IOVK_IOMMU_IOAS_MAP_FIXED_IOVA |
			 ((flags & IOVK_VFIO_DMA_READ) ? IOVK_IOMMU_IOAS_MAP_READABLE : 0) |
			 ((flags & IOVK_VFIO_DMA_WRITE) ? IOVK_IOMMU_IOAS_MAP_WRITEABLE : 0),
		.ioas_id = iommu->ioas_id,
		.user_va = vaddr,
		.length = size,
		.iova = iova,
	};
	int r = vfio_ioctl(iommu->fd, IOMMU_IOAS_MAP, &map);

	/* iopt_check_iova(): EINVAL for a reserved or misaligned IOVA,
	 * EEXIST for an overlap, EOVERFLOW for a wrap; ENOMEM when pinning
	 * passes RLIMIT_MEMLOCK (without CAP_IPC_LOCK): as type1. */
	return r < 0 ? r : 0;
}

static int iommufd_unmap(struct iovk_vfio_iommu *iommu, uint64_t iova, uint64_t size, uint64_t *ret_unmapped)
{
	struct iovk_iommu_ioas_unmap unmap = {
		.size = sizeof(unmap),
		.ioas_id = iommu->ioas_id,
		.iova = iova,
		.length = size,
	};
	int r = vfio_ioctl(iommu->fd, IOMMU_IOAS_UNMAP, &unmap);

	if (r < 0)
		return r;
	if (ret_unmapped)
		*ret_unmapped = unmap.length; /* the kernel writes back what it unmapped */
	return 0;
}

const struct vfio_iommu_ops vfio_iommufd_ops = {
	.backend = "iommufd",
	.unlimited_mappings = true,
	.pgsizes_unknown = true,
	.open = iommufd_open,
	.close = iommufd_close,
	.attach_device = iommufd_attach_device,
	.detach_device = iommufd_detach_device,
	.query_info = iommufd_query_info,
	.map = iommufd_map,
	.unmap = iommufd_unmap,
};
