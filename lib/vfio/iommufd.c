/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The iommufd backend (/dev/iommu, IOAS objects, VFIO cdevs
 * /dev/vfio/devices/vfioN), not implemented yet: this table is where it
 * slots in. Debian's packaged kernels (6.1; 6.12 from bookworm-backports)
 * are built without CONFIG_IOMMUFD and VFIO_DEVICE_CDEV, and 6.1 predates
 * both (iommufd arrived in 6.2, VFIO cdev in 6.6), so only a self-built
 * kernel can exercise it.
 */
#include <errno.h>

#include "vfio-internal.h"

static int iommufd_open(struct iovk_vfio_iommu *iommu)
{
	_cleanup_free_ char *path = dev_path(iommu->ctx, "/iommu");

	if (!path)
		return -ENOMEM;
	return set_error(iommu->ctx, -EOPNOTSUPP,
			 "the iommufd backend is not implemented yet (%s %s); use the container backend "
			 "(mode \"container\" or \"auto\")",
			 path, path_exists(path) ? "exists on this kernel" : "does not exist on this kernel either");
}

static void iommufd_close(struct iovk_vfio_iommu *iommu)
{
}

static int iommufd_attach_device(struct iovk_vfio_iommu *iommu, const char *address, int group, const char *vf_token,
				 int *ret_device_fd)
{
	return -EOPNOTSUPP;
}

static int iommufd_query_info(struct iovk_vfio_iommu *iommu, struct iovk_vfio_iommu_info *ret_info)
{
	return -EOPNOTSUPP;
}

static int iommufd_map(struct iovk_vfio_iommu *iommu, uint64_t vaddr, uint64_t iova, uint64_t size, unsigned flags)
{
	return -EOPNOTSUPP;
}

static int iommufd_unmap(struct iovk_vfio_iommu *iommu, uint64_t iova, uint64_t size, uint64_t *ret_unmapped)
{
	return -EOPNOTSUPP;
}

const struct vfio_iommu_ops vfio_iommufd_ops = {
	.backend = "iommufd",
	.open = iommufd_open,
	.close = iommufd_close,
	.attach_device = iommufd_attach_device,
	.query_info = iommufd_query_info,
	.map = iommufd_map,
	.unmap = iommufd_unmap,
};
