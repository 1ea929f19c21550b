/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * The few iommufd and VFIO-cdev definitions lib/vfio/iommufd.c needs, for
 * building on systems whose kernel headers predate them (Debian 12 ships
 * 6.1's: no <linux/iommufd.h>, no cdev ioctls in <linux/vfio.h>).
 *
 * Copied from Linux 6.12 (Debian linux-source-6.12 6.12.117):
 *   include/uapi/linux/iommufd.h  (Copyright (c) 2021-2022, NVIDIA CORPORATION
 *                                  & AFFILIATES; GPL-2.0 WITH Linux-syscall-note)
 *   include/uapi/linux/vfio.h     (VFIO_DEVICE_BIND_IOMMUFD and the
 *                                  ATTACH/DETACH_IOMMUFD_PT ioctls, the
 *                                  hot reset devid flags, 6.6+)
 * except VFIO_DEVICE_BIND_FLAG_TOKEN and token_uuid_ptr, which came with
 * Linux 6.17 ("vfio: Provide a VF token to VFIO_DEVICE_BIND_IOMMUFD"):
 * earlier kernels read only the first 16 bytes of the bind struct and
 * refuse any flag with EINVAL.
 *
 * Each block is guarded by a macro the real header defines, so a newer
 * system header wins and nothing is defined twice. The structs carry an
 * iovk_ prefix: the system header may or may not declare them, and C has no
 * way to ask.
 */
#pragma once

#include <linux/ioctl.h>
#include <linux/types.h>
#include <linux/vfio.h>

#if __has_include(<linux/iommufd.h>)
#include <linux/iommufd.h>
#endif

#ifndef IOMMUFD_TYPE
#define IOMMUFD_TYPE (';')
#endif

/* ioctl numbers: _IO(IOMMUFD_TYPE, IOMMUFD_CMD_*) */
#ifndef IOMMU_DESTROY
#define IOMMU_DESTROY _IO(IOMMUFD_TYPE, 0x80)
#endif
#ifndef IOMMU_IOAS_ALLOC
#define IOMMU_IOAS_ALLOC _IO(IOMMUFD_TYPE, 0x81)
#endif
#ifndef IOMMU_IOAS_IOVA_RANGES
#define IOMMU_IOAS_IOVA_RANGES _IO(IOMMUFD_TYPE, 0x84)
#endif
#ifndef IOMMU_IOAS_MAP
#define IOMMU_IOAS_MAP _IO(IOMMUFD_TYPE, 0x85)
#endif
#ifndef IOMMU_IOAS_UNMAP
#define IOMMU_IOAS_UNMAP _IO(IOMMUFD_TYPE, 0x86)
#endif

/* enum iommufd_ioas_map_flags (an enum upstream: #ifndef cannot see it) */
#define IOVK_IOMMU_IOAS_MAP_FIXED_IOVA (1u << 0)
#define IOVK_IOMMU_IOAS_MAP_WRITEABLE (1u << 1)
#define IOVK_IOMMU_IOAS_MAP_READABLE (1u << 2)

struct iovk_iommu_destroy {
	__u32 size;
	__u32 id;
};

struct iovk_iommu_ioas_alloc {
	__u32 size;
	__u32 flags;
	__u32 out_ioas_id;
};

struct iovk_iommu_iova_range {
	__aligned_u64 start;
	__aligned_u64 last; /* inclusive */
};

struct iovk_iommu_ioas_iova_ranges {
	__u32 size;
	__u32 ioas_id;
	__u32 num_iovas; /* in: array length; out: ranges the IOAS has (EMSGSIZE when more) */
	__u32 __reserved;
	__aligned_u64 allowed_iovas; /* struct iovk_iommu_iova_range[] */
	__aligned_u64 out_iova_alignment;
};

struct iovk_iommu_ioas_map {
	__u32 size;
	__u32 flags;
	__u32 ioas_id;
	__u32 __reserved;
	__aligned_u64 user_va;
	__aligned_u64 length;
	__aligned_u64 iova;
};

struct iovk_iommu_ioas_unmap {
	__u32 size;
	__u32 ioas_id;
	__aligned_u64 iova;
	__aligned_u64 length; /* in: bytes to unmap; out: bytes unmapped */
};

/* VFIO device cdev (include/uapi/linux/vfio.h, 6.6+) */
#ifndef VFIO_DEVICE_BIND_IOMMUFD
#define VFIO_DEVICE_BIND_IOMMUFD _IO(VFIO_TYPE, VFIO_BASE + 18)
#endif
#ifndef VFIO_DEVICE_ATTACH_IOMMUFD_PT
#define VFIO_DEVICE_ATTACH_IOMMUFD_PT _IO(VFIO_TYPE, VFIO_BASE + 19)
#endif
#ifndef VFIO_DEVICE_DETACH_IOMMUFD_PT
#define VFIO_DEVICE_DETACH_IOMMUFD_PT _IO(VFIO_TYPE, VFIO_BASE + 20)
#endif
#ifndef VFIO_DEVICE_BIND_FLAG_TOKEN
#define VFIO_DEVICE_BIND_FLAG_TOKEN (1u << 0) /* 6.17+ */
#endif

/*
 * Hot reset of a cdev-opened device (include/uapi/linux/vfio.h, 6.6+): the
 * info ioctl then reports devids instead of group ids, and the reset takes
 * a zero-length group fd array. The structs themselves are older (3.12)
 * and in every header we build against; only these names are new.
 */
#ifndef VFIO_PCI_HOT_RESET_FLAG_DEV_ID
#define VFIO_PCI_HOT_RESET_FLAG_DEV_ID (1 << 0)
#endif
#ifndef VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED
#define VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED (1 << 1)
#endif
#ifndef VFIO_PCI_DEVID_OWNED
#define VFIO_PCI_DEVID_OWNED 0 /* in the dev_set, not bound here, but its group is ours */
#endif
#ifndef VFIO_PCI_DEVID_NOT_OWNED
#define VFIO_PCI_DEVID_NOT_OWNED -1 /* outside the dev_set, or owned by no one we know */
#endif

struct iovk_vfio_device_bind_iommufd {
	__u32 argsz;
	__u32 flags;
	__s32 iommufd;
	__u32 out_devid;
	__aligned_u64 token_uuid_ptr; /* 6.17+, with VFIO_DEVICE_BIND_FLAG_TOKEN */
};

struct iovk_vfio_device_attach_iommufd_pt {
	__u32 argsz;
	__u32 flags;
	__u32 pt_id;
};

struct iovk_vfio_device_detach_iommufd_pt {
	__u32 argsz;
	__u32 flags;
};

/* The kernel's checks are on the first fields' offsets; so are ours. */
_Static_assert(sizeof(struct iovk_iommu_ioas_iova_ranges) == 32, "iommu_ioas_iova_ranges layout");
_Static_assert(sizeof(struct iovk_iommu_ioas_map) == 40, "iommu_ioas_map layout");
_Static_assert(sizeof(struct iovk_iommu_ioas_unmap) == 24, "iommu_ioas_unmap layout");
_Static_assert(sizeof(struct iovk_vfio_device_bind_iommufd) == 24, "vfio_device_bind_iommufd layout");
