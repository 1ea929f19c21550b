/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The legacy VFIO container backend: /dev/vfio/vfio with the type1v2 IOMMU
 * (type1 as a fallback), groups /dev/vfio/<N> attached to it.
 *
 * Order the kernel insists on (Documentation/driver-api/vfio.rst): open the
 * container, open the group, check VIABLE, VFIO_GROUP_SET_CONTAINER, only
 * then VFIO_SET_IOMMU (it needs a group to know which IOMMU driver applies),
 * then VFIO_GROUP_GET_DEVICE_FD.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/vfio.h>

#include "vfio-internal.h"

static int container_open(struct iovk_vfio_iommu *iommu)
{
	struct iovk_ctx *ctx = iommu->ctx;
	_cleanup_free_ char *path = dev_path(ctx, "/vfio/vfio");
	_cleanup_close_ int fd = -1;
	int r, v1, v2;

	if (!path)
		return -ENOMEM;
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		r = negative_errno();
		if (r == -ENOENT)
			return set_error(ctx, r,
					 "%s does not exist: the vfio module is not loaded (binding a device "
					 "to vfio-pci loads it: iovctl bind BDF vfio-pci)",
					 path);
		return set_error(ctx, r, "opening the VFIO container %s: %s", path, strerror(-r));
	}
	r = ioctl(fd, VFIO_GET_API_VERSION);
	if (r < 0) {
		r = negative_errno();
		return set_error(ctx, r, "%s is not a VFIO container (VFIO_GET_API_VERSION: %s)", path, strerror(-r));
	}
	if (r != VFIO_API_VERSION)
		return set_error(ctx, -EPROTONOSUPPORT, "%s speaks VFIO API version %d, iovkit knows version %d",
				 path, r, VFIO_API_VERSION);
	v2 = ioctl(fd, VFIO_CHECK_EXTENSION, (unsigned long)VFIO_TYPE1v2_IOMMU) > 0;
	v1 = ioctl(fd, VFIO_CHECK_EXTENSION, (unsigned long)VFIO_TYPE1_IOMMU) > 0;
	switch (iommu->mode) {
	case IOVK_VFIO_MODE_TYPE1V2:
		if (!v2)
			return set_error(ctx, -EOPNOTSUPP,
					 "%s does not offer the type1v2 IOMMU (VFIO_TYPE1v2_IOMMU); "
					 "is vfio_iommu_type1 loaded?", path);
		break;
	case IOVK_VFIO_MODE_TYPE1:
		if (!v1)
			return set_error(ctx, -EOPNOTSUPP,
					 "%s does not offer the type1 IOMMU (VFIO_TYPE1_IOMMU); "
					 "is vfio_iommu_type1 loaded?", path);
		break;
	default:
		if (!v1 && !v2)
			return set_error(ctx, -EOPNOTSUPP,
					 "%s offers neither the type1v2 nor the type1 IOMMU; is "
					 "vfio_iommu_type1 loaded? (other IOMMU types, e.g. sPAPR TCE, are "
					 "not supported)", path);
	}
	iommu->fd = TAKE_FD(fd);
	return 0;
}

static void container_close(struct iovk_vfio_iommu *iommu)
{
	/* Closing a group fd takes it out of the container; with the last
	 * one the kernel tears the IOMMU domain (and its mappings) down. */
	for (size_t i = 0; i < iommu->n_groups; i++)
		if (iommu->groups[i].fd >= 0)
			close(iommu->groups[i].fd);
	iommu->n_groups = 0;
	if (iommu->fd >= 0)
		close(iommu->fd);
	iommu->fd = -1;
}

size_t vfio_group_blockers(struct iovk_ctx *ctx, int group, char *buf, size_t size)
{
	struct iovk_iommu_group *g = NULL;
	size_t len = 0, n = 0;

	buf[0] = '\0';
	if (iovk_iommu_group_new(ctx, group, &g) >= 0) {
		for (struct iovk_device *const *d = iovk_iommu_group_get_devices(g); *d; d++) {
			const char *reason = NULL;

			if (iovk_device_is_vfio_safe(*d, &reason))
				continue;
			n++;
			if (len < size)
				len += (size_t)snprintf(buf + len, size - len, "%s%s", len ? "; " : "", reason);
		}
		iovk_iommu_group_unref(g);
	}
	return n;
}

int vfio_not_viable_error(struct iovk_ctx *ctx, const char *address, int group)
{
	char who[700];

	if (vfio_group_blockers(ctx, group, who, sizeof(who)) == 0)
		return set_error(ctx, -EBUSY,
				 "%s: IOMMU group %d is not viable: the kernel says a member is still "
				 "owned by a kernel driver, yet every PCI member looks VFIO-safe (a non-PCI "
				 "member, or a driver still unbinding?)",
				 address, group);
	return set_error(ctx, -EBUSY, "%s: IOMMU group %d is not viable: %s", address, group, who);
}

static int set_iommu_type(struct iovk_vfio_iommu *iommu, const char *address, int group)
{
	struct iovk_ctx *ctx = iommu->ctx;
	enum iovk_vfio_mode use;
	int r;

	if (iommu->mode == IOVK_VFIO_MODE_TYPE1)
		use = IOVK_VFIO_MODE_TYPE1;
	else if (iommu->mode == IOVK_VFIO_MODE_TYPE1V2)
		use = IOVK_VFIO_MODE_TYPE1V2;
	else
		/* type1v2 fixes type1's unmap semantics (no partial unmaps of
		 * a mapping, exact sizes reported): prefer it when offered. */
		use = ioctl(iommu->fd, VFIO_CHECK_EXTENSION, (unsigned long)VFIO_TYPE1v2_IOMMU) > 0
			      ? IOVK_VFIO_MODE_TYPE1V2
			      : IOVK_VFIO_MODE_TYPE1;
	r = ioctl(iommu->fd, VFIO_SET_IOMMU,
		  (unsigned long)(use == IOVK_VFIO_MODE_TYPE1V2 ? VFIO_TYPE1v2_IOMMU : VFIO_TYPE1_IOMMU));
	if (r < 0) {
		r = negative_errno();
		if (r == -EPERM)
			return set_error(ctx, r,
					 "%s: the kernel refused the %s IOMMU for group %d (EPERM): without "
					 "interrupt remapping vfio_iommu_type1 refuses unless its "
					 "allow_unsafe_interrupts parameter is set (see iovctl doctor)",
					 address, iovk_vfio_mode_to_string(use), group);
		return set_error(ctx, r, "%s: setting the %s IOMMU on the container (group %d): %s", address,
				 iovk_vfio_mode_to_string(use), group, strerror(-r));
	}
	iommu->mode = use;
	return 0;
}

static int attach_group(struct iovk_vfio_iommu *iommu, const char *address, int group, int *ret_fd)
{
	struct iovk_ctx *ctx = iommu->ctx;
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;
	struct vfio_group_status status = { .argsz = sizeof(status) };
	struct vfio_group *ng;
	int r;

	for (size_t i = 0; i < iommu->n_groups; i++)
		if (iommu->groups[i].number == group) {
			*ret_fd = iommu->groups[i].fd;
			return 0;
		}
	path = iovk_iommu_group_vfio_node(ctx, group);
	if (!path)
		return -ENOMEM;
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		r = negative_errno();
		if (r == -EBUSY)
			return set_error(ctx, r,
					 "%s: %s is busy: another process holds IOMMU group %d open (a VMM, "
					 "or another VFIO user; the kernel allows one)",
					 address, path, group);
		if (r == -ENOENT)
			return set_error(ctx, r,
					 "%s: %s does not exist although the device is on a vfio driver "
					 "(is %s a devtmpfs?)",
					 address, path, iovk_ctx_get_dev_root(ctx));
		return set_error(ctx, r, "%s: opening %s: %s", address, path, strerror(-r));
	}
	r = vfio_ioctl(fd, VFIO_GROUP_GET_STATUS, &status);
	if (r < 0)
		return set_error(ctx, r, "%s: VFIO_GROUP_GET_STATUS on %s: %s", address, path, strerror(-r));
	if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE))
		return vfio_not_viable_error(ctx, address, group);
	if (status.flags & VFIO_GROUP_FLAGS_CONTAINER_SET)
		/* We just opened it and group fds are exclusive: cannot happen
		 * on a sane kernel. */
		return set_error(ctx, -EBUSY, "%s: IOMMU group %d is already in a container", address, group);
	ng = realloc(iommu->groups, (iommu->n_groups + 1) * sizeof(*ng));
	if (!ng)
		return -ENOMEM;
	iommu->groups = ng;
	r = vfio_ioctl(fd, VFIO_GROUP_SET_CONTAINER, &iommu->fd);
	if (r < 0)
		return set_error(ctx, r, "%s: attaching IOMMU group %d to the container: %s", address, group,
				 strerror(-r));
	if (!iommu->ready) {
		r = set_iommu_type(iommu, address, group);
		if (r < 0)
			return r; /* closing fd takes the group out again */
	}
	/* Every group can bring reserved regions of its own (an MSI window,
	 * RMRRs): the valid IOVA ranges are read again after each attach. */
	r = vfio_iommu_update_info(iommu);
	if (r < 0)
		return r;
	iommu->groups[iommu->n_groups++] = (struct vfio_group){ .number = group, .fd = fd };
	*ret_fd = TAKE_FD(fd);
	return 0;
}

static int container_attach_device(struct iovk_vfio_iommu *iommu, const char *address, int group,
				   const char *vf_token, int *ret_device_fd)
{
	struct iovk_ctx *ctx = iommu->ctx;
	char name[IOVK_PCI_ADDR_MAX + 64];
	int group_fd = -1, fd, r;

	r = attach_group(iommu, address, group, &group_fd);
	if (r < 0)
		return r;
	/* The kernel parses "<name> vf_token=<uuid>" (vfio_pci_core_match). */
	if (vf_token)
		snprintf(name, sizeof(name), "%s vf_token=%s", address, vf_token);
	else
		snprintf(name, sizeof(name), "%s", address);
	fd = vfio_ioctl(group_fd, VFIO_GROUP_GET_DEVICE_FD, name);
	if (fd >= 0) {
		*ret_device_fd = fd;
		return 0;
	}
	r = fd;
	if (r == -EACCES && !vf_token)
		return set_error(ctx, r,
				 "%s: the kernel wants a VF token (its PF is bound to vfio-pci, whose user "
				 "sets one); pass the token that user set",
				 address);
	if (r == -EACCES)
		return set_error(ctx, r, "%s: the kernel refused the VF token %s (not the one the PF's user set)",
				 address, vf_token);
	if (r == -EINVAL && vf_token)
		return set_error(ctx, r,
				 "%s: the kernel refused the VF token: it applies only to a VF whose PF is "
				 "bound to vfio-pci, or to such a PF",
				 address);
	if (r == -EBUSY)
		return set_error(ctx, r, "%s: the device is already open through VFIO", address);
	return set_error(ctx, r, "%s: VFIO_GROUP_GET_DEVICE_FD in group %d: %s", address, group, strerror(-r));
}

static int container_query_info(struct iovk_vfio_iommu *iommu, struct iovk_vfio_iommu_info *ret_info)
{
	_cleanup_free_ void *buf = NULL;
	size_t size;
	int r;

	r = vfio_info_ioctl(iommu->fd, VFIO_IOMMU_GET_INFO, sizeof(struct vfio_iommu_type1_info), NULL, NULL, &buf,
			    &size);
	if (r < 0)
		return set_error(iommu->ctx, r, "VFIO_IOMMU_GET_INFO on the container: %s", strerror(-r));
	r = iovk_vfio_parse_iommu_info(buf, size, ret_info);
	if (r < 0)
		return set_error(iommu->ctx, r,
				 "VFIO_IOMMU_GET_INFO: the kernel's answer is malformed (%s): %s",
				 r == -ELOOP ? "cyclic capability chain"
				 : r == -E2BIG ? "oversized"
					       : "truncated",
				 strerror(-r));
	return 0;
}

static int container_map(struct iovk_vfio_iommu *iommu, uint64_t vaddr, uint64_t iova, uint64_t size, unsigned flags)
{
	struct vfio_iommu_type1_dma_map map = {
		.argsz = sizeof(map),
		.flags = ((flags & IOVK_VFIO_DMA_READ) ? VFIO_DMA_MAP_FLAG_READ : 0) |
			 ((flags & IOVK_VFIO_DMA_WRITE) ? VFIO_DMA_MAP_FLAG_WRITE : 0),
		.vaddr = vaddr,
		.iova = iova,
		.size = size,
	};

	int r = vfio_ioctl(iommu->fd, VFIO_IOMMU_MAP_DMA, &map);

	return r < 0 ? r : 0;
}

static int container_unmap(struct iovk_vfio_iommu *iommu, uint64_t iova, uint64_t size, uint64_t *ret_unmapped)
{
	struct vfio_iommu_type1_dma_unmap unmap = {
		.argsz = sizeof(unmap),
		.iova = iova,
		.size = size,
	};
	int r = vfio_ioctl(iommu->fd, VFIO_IOMMU_UNMAP_DMA, &unmap);

	if (r < 0)
		return r;
	if (ret_unmapped)
		*ret_unmapped = unmap.size; /* the kernel writes back what it unmapped */
	return 0;
}

const struct vfio_iommu_ops vfio_container_ops = {
	.backend = "container",
	.open = container_open,
	.close = container_close,
	.attach_device = container_attach_device,
	.query_info = container_query_info,
	.map = container_map,
	.unmap = container_unmap,
};
