/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private to lib/vfio: the address-space object and its backend ops table. */
#pragma once

#include <iovkit/vfio.h>

#include "../internal.h"

struct iovk_vfio_iommu;

/*
 * One backend of an IOMMU address space, the way the kernel's VFIO
 * selftests library keys its struct iommu on a mode: the container
 * (type1v2/type1) today, iommufd later. Every hook returns 0 or -errno and
 * has already put a description naming the device or node into the
 * context's error when it fails.
 */
struct vfio_iommu_ops {
	const char *backend; /* "container", "iommufd" */
	/* Opens the backend's node and checks the kernel offers what the mode needs. */
	int (*open)(struct iovk_vfio_iommu *iommu);
	/* Releases groups/devices bookkeeping and closes the node. */
	void (*close)(struct iovk_vfio_iommu *iommu);
	/*
	 * Joins the device's IOMMU group (once per group) to the address
	 * space, setting the IOMMU type on the first one, and returns a
	 * device fd.
	 */
	int (*attach_device)(struct iovk_vfio_iommu *iommu, const char *address, int group, const char *vf_token,
			     int *ret_device_fd);
	/* Reads page sizes, valid IOVA ranges and dma_avail from the kernel. */
	int (*query_info)(struct iovk_vfio_iommu *iommu, struct iovk_vfio_iommu_info *ret_info);
	/* Returns the kernel's -errno unchanged (the caller explains it). */
	int (*map)(struct iovk_vfio_iommu *iommu, uint64_t vaddr, uint64_t iova, uint64_t size, unsigned flags);
	int (*unmap)(struct iovk_vfio_iommu *iommu, uint64_t iova, uint64_t size, uint64_t *ret_unmapped);
};

extern const struct vfio_iommu_ops vfio_container_ops;
extern const struct vfio_iommu_ops vfio_iommufd_ops;

struct vfio_group {
	int number;
	int fd;
};

struct iovk_vfio_iommu {
	int n_ref;
	struct iovk_ctx *ctx;
	enum iovk_vfio_mode mode; /* as asked; TYPE1V2/TYPE1 once the container's type is set */
	const struct vfio_iommu_ops *ops;
	int fd;
	bool ready; /* a device joined: the IOMMU type is set and info was read */
	struct vfio_group *groups;
	size_t n_groups;
	struct iovk_vfio_iommu_info info;
	struct iovk_iova_allocator *allocator;
	struct iovk_vfio_mapping_list *mappings;
	uint64_t mapped_bytes;
};

/*
 * Called by a backend after a group/device joined (the IOMMU type is set):
 * reads the info again and rebuilds the allocator from the valid IOVA
 * ranges, keeping the IOVAs of existing mappings reserved. Sets ready.
 */
int vfio_iommu_update_info(struct iovk_vfio_iommu *iommu);

/*
 * Runs an info ioctl whose struct starts with argsz and may carry a
 * capability chain: starts with min_size bytes (the caller's fixed struct,
 * fill_fn fills the input fields) and grows the buffer to the argsz the
 * kernel asks for, up to IOVK_VFIO_INFO_MAX. *ret_buf is malloc'd,
 * *ret_size its size. Returns 0, -E2BIG, or the ioctl's -errno.
 */
int vfio_info_ioctl(int fd, unsigned long request, size_t min_size, void (*fill_fn)(void *buf, void *userdata),
		    void *userdata, void **ret_buf, size_t *ret_size);

/* ioctl(2) that retries on EINTR and returns 0/positive or -errno. */
int vfio_ioctl(int fd, unsigned long request, void *arg);
