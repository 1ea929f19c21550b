/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private to lib/vfio: the address-space object and its backend ops table. */
#pragma once

#include <iovkit/vfio.h>

#include "../internal.h"

struct iovk_vfio_iommu;

/*
 * One backend of an IOMMU address space, the way the kernel's VFIO
 * selftests library keys its struct iommu on a mode: the legacy container
 * (type1v2/type1) and native iommufd (an IOAS, devices through their VFIO
 * cdevs). Every hook returns 0 or -errno and has already put a description
 * naming the device or node into the context's error when it fails.
 */
struct vfio_iommu_ops {
	const char *backend; /* "container", "iommufd" */
	/*
	 * iommufd says neither how many mappings are left (it has no
	 * dma_entry_limit) nor the IOMMU's page sizes (only the minimum IOVA
	 * alignment): dma_avail is then IOVK_VFIO_DMA_AVAIL_UNLIMITED, and
	 * IOVAs are aligned naturally so that huge IOMMU pages stay usable.
	 */
	bool unlimited_mappings;
	bool pgsizes_unknown;
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
	/*
	 * Optional: takes an attached device out of the address space before
	 * its fd is closed (iommufd: VFIO_DEVICE_DETACH_IOMMUFD_PT). Best
	 * effort; closing the fd undoes it anyway.
	 */
	void (*detach_device)(struct iovk_vfio_iommu *iommu, const char *address, int device_fd);
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
	/* as asked; TYPE1V2/TYPE1 once the container's type is set, IOMMUFD for iommufd */
	enum iovk_vfio_mode mode;
	bool auto_mode; /* asked for AUTO: the backend may still change until a device joins */
	const struct vfio_iommu_ops *ops;
	int fd; /* the container, or the iommufd */
	bool ready; /* a device joined: the IOMMU type is set and info was read */
	struct vfio_group *groups; /* container */
	size_t n_groups;
	uint32_t ioas_id;  /* iommufd: the IOAS all devices attach to */
	size_t n_devices;  /* iommufd: devices attached */
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

/*
 * Attaches a device through the backend; in AUTO mode, before any device
 * joined, falls back from iommufd to the container when the device cannot
 * use iommufd (no VFIO cdev, or a VF token this kernel's cdev cannot take).
 */
int vfio_iommu_attach_device(struct iovk_vfio_iommu *iommu, const char *address, int group, const char *vf_token,
			     int *ret_device_fd);

/* Sorts ranges in place and checks them: 0, or -EBADMSG for an inverted or overlapping range. */
int vfio_iova_ranges_sort_check(struct iovk_iova_range *ranges, size_t n);

/*
 * "address: IOMMU group N is not viable: <every blocking device and its
 * driver>", from sysfs; returns -EBUSY.
 */
int vfio_not_viable_error(struct iovk_ctx *ctx, const char *address, int group);
/* The members of a group that keep it from being viable ("<bdf> is bound to <driver>; ..."), and their number. */
size_t vfio_group_blockers(struct iovk_ctx *ctx, int group, char *buf, size_t size);

/* lib/vfio/iommufd.c: struct iommu_iova_range[n] -> sorted, checked ranges (malloc'd). */
int vfio_iommufd_ranges_convert(const void *kranges, size_t n, struct iovk_iova_range **ret_ranges);

/* A VF token: 8-4-4-4-12 hex digits (the kernel's uuid_parse() takes nothing else); 0 or -EINVAL. */
int vfio_parse_uuid(const char *s, uint8_t ret[16]);

/* ioctl(2) that retries on EINTR and returns 0/positive or -errno. */
int vfio_ioctl(int fd, unsigned long request, void *arg);
