/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * PCI hot reset through VFIO: a slot or secondary bus reset, which resets
 * every function on that slot or bus (and below), not just the device
 * asked for. The kernel wants proof that the caller owns all of them
 * (include/uapi/linux/vfio.h, VFIO_DEVICE_PCI_HOT_RESET): the fds of their
 * groups for a device opened through its group, or, for a cdev bound to an
 * iommufd (6.6+), a zero-length fd array, ownership then being decided by
 * the iommufd. We check the same ownership first, from
 * VFIO_DEVICE_GET_PCI_HOT_RESET_INFO and sysfs, so that a refusal names
 * every function in the way (its group, its driver) and the reset ioctl is
 * never issued at all in that case.
 *
 * Kernel rules this follows (drivers/vfio/pci/vfio_pci_core.c, 6.12):
 *   - the info ioctl answers -ENODEV when neither the slot nor the bus can
 *     be reset (a device on a root bus: the ICH9 functions of q35), and
 *     -ENOSPC with the needed count when the array is short;
 *   - vfio_pci_dev_set_resettable(): every affected function must be in the
 *     device's dev_set, i.e. bound to vfio-pci (a VF is a dev_set of its
 *     own, so a VF that shares its bus cannot be hot reset at all);
 *   - group path: every dev_set member must be in one of the groups passed;
 *     cdev path: bound to the same iommufd, or in a group that has such a
 *     device (devid VFIO_PCI_DEVID_OWNED).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iommufd-uapi.h"
#include "vfio-internal.h"

/* The topology may change between the count and the fill (-EAGAIN), or the count grow (-ENOSPC). */
#define HOT_RESET_INFO_TRIES 4

_Static_assert(IOVK_VFIO_HOT_RESET_BY_DEVID == VFIO_PCI_HOT_RESET_FLAG_DEV_ID, "kernel flag value");
_Static_assert(IOVK_VFIO_HOT_RESET_DEVID_OWNED == VFIO_PCI_HOT_RESET_FLAG_DEV_ID_OWNED, "kernel flag value");

static bool group_is_held(int group, const int *held, size_t n_held)
{
	for (size_t i = 0; i < n_held; i++)
		if (held[i] == group)
			return true;
	return false;
}

_public_ int iovk_vfio_parse_hot_reset_info(const void *buf, size_t size, const int *held_groups, size_t n_held,
					    struct iovk_vfio_hot_reset_info *ret_info)
{
	const struct vfio_pci_hot_reset_info *hdr = buf;
	struct iovk_vfio_hot_reset_device *devs;
	size_t n_unowned = 0;
	bool by_devid;

	if (size < sizeof(*hdr) || hdr->count == 0)
		return -EBADMSG;
	if (hdr->count > IOVK_VFIO_HOT_RESET_DEVICES_MAX)
		return -E2BIG;
	if ((size - sizeof(*hdr)) / sizeof(hdr->devices[0]) < hdr->count)
		return -EBADMSG;
	devs = calloc(hdr->count, sizeof(*devs));
	if (!devs)
		return -ENOMEM;
	by_devid = hdr->flags & VFIO_PCI_HOT_RESET_FLAG_DEV_ID;
	for (uint32_t i = 0; i < hdr->count; i++) {
		const struct vfio_pci_dependent_device *k = &hdr->devices[i];
		struct iovk_pci_addr a = {
			.domain = k->segment, .bus = k->bus, .dev = k->devfn >> 3, .fn = k->devfn & 7,
		};
		/* group_id and devid share the field (a union since 6.6) */
		uint32_t id = k->group_id;

		iovk_pci_addr_format(&a, devs[i].address);
		if (by_devid) {
			devs[i].iommu_group = -1;
			devs[i].devid = id == (uint32_t)VFIO_PCI_DEVID_NOT_OWNED ? -1 : (int64_t)id;
			devs[i].owned = devs[i].devid >= 0;
		} else {
			if (id > INT_MAX) {
				free(devs);
				return -EBADMSG;
			}
			devs[i].iommu_group = (int)id;
			devs[i].devid = -1;
			devs[i].owned = group_is_held((int)id, held_groups, n_held);
		}
		n_unowned += !devs[i].owned;
	}
	*ret_info = (struct iovk_vfio_hot_reset_info){
		.flags = hdr->flags,
		.n_devices = hdr->count,
		.devices = devs,
		.n_unowned = n_unowned,
	};
	return 0;
}

_public_ void iovk_vfio_hot_reset_info_clear(struct iovk_vfio_hot_reset_info *info)
{
	if (!info)
		return;
	free(info->devices);
	*info = (struct iovk_vfio_hot_reset_info){};
}

static int no_hot_reset(struct iovk_vfio_device *dev, int r)
{
	const char *methods = iovk_vfio_device_get_reset_methods(dev);

	return set_error(iovk_vfio_device_get_iommu(dev)->ctx, -ENODEV,
			 "%s has no hot reset: the kernel can reset neither its slot nor its bus (%s: a device on "
			 "a root bus, or behind a bridge that cannot reset its secondary bus); the device's own "
			 "reset methods: %s",
			 iovk_vfio_device_get_address(dev), strerrorname_np(-r) ?: "?",
			 methods && *methods ? methods : "none");
}

/* VFIO_DEVICE_GET_PCI_HOT_RESET_INFO with an array as large as the kernel asks. */
static int query_hot_reset_info(struct iovk_vfio_device *dev, void **ret_buf, size_t *ret_size)
{
	struct iovk_ctx *ctx = iovk_vfio_device_get_iommu(dev)->ctx;
	const char *address = iovk_vfio_device_get_address(dev);
	size_t cap = 8; /* a multi-function device and its VFs; grown on -ENOSPC */
	int r = -EAGAIN;

	for (int tries = 0; tries < HOT_RESET_INFO_TRIES; tries++) {
		size_t size = sizeof(struct vfio_pci_hot_reset_info) + cap * sizeof(struct vfio_pci_dependent_device);
		_cleanup_free_ struct vfio_pci_hot_reset_info *info = calloc(1, size);

		if (!info)
			return -ENOMEM;
		info->argsz = (uint32_t)size;
		r = vfio_ioctl(iovk_vfio_device_get_fd(dev), VFIO_DEVICE_GET_PCI_HOT_RESET_INFO, info);
		if (r >= 0) {
			*ret_size = size;
			*ret_buf = TAKE_PTR(info);
			return 0;
		}
		if (r == -ENOSPC) {
			if (info->count > IOVK_VFIO_HOT_RESET_DEVICES_MAX)
				return set_error(ctx, -E2BIG,
						 "%s: a hot reset would reset %" PRIu32 " functions (at most %d accepted)",
						 address, info->count, IOVK_VFIO_HOT_RESET_DEVICES_MAX);
			cap = info->count > cap ? info->count : cap * 2;
			continue;
		}
		if (r == -EAGAIN) /* the functions below the slot or bus changed while the kernel counted */
			continue;
		/* -ENODEV: no slot or bus reset; -ENOTTY: a vfio driver
		 * without the ioctl; -EINVAL: the kernel refused the query
		 * itself. In each case there is no hot reset to be had. */
		if (r == -ENODEV || r == -ENOTTY || r == -EINVAL)
			return no_hot_reset(dev, r);
		if (r == -EPERM)
			return set_error(ctx, r,
					 "%s: a function on its slot or bus has no IOMMU group: the kernel does not "
					 "reset devices it cannot isolate (VFIO_DEVICE_GET_PCI_HOT_RESET_INFO: EPERM)",
					 address);
		return set_error(ctx, r, "%s: VFIO_DEVICE_GET_PCI_HOT_RESET_INFO: %s", address, strerror(-r));
	}
	return set_error(ctx, r, "%s: VFIO_DEVICE_GET_PCI_HOT_RESET_INFO: the functions below its slot or bus kept "
				 "changing (%s)",
			 address, strerror(-r));
}

_public_ int iovk_vfio_device_get_hot_reset_info(struct iovk_vfio_device *dev, struct iovk_vfio_hot_reset_info *ret_info)
{
	struct iovk_vfio_iommu *iommu = iovk_vfio_device_get_iommu(dev);
	struct iovk_ctx *ctx = iommu->ctx;
	struct iovk_vfio_hot_reset_info info = {};
	_cleanup_free_ void *buf = NULL;
	_cleanup_free_ int *held = NULL;
	size_t size = 0;
	int r;

	clear_error(ctx);
	r = query_hot_reset_info(dev, &buf, &size);
	if (r < 0)
		return r;
	/* Only the container holds groups; an iommufd answer carries devids. */
	held = calloc(iommu->n_groups ? iommu->n_groups : 1, sizeof(*held));
	if (!held)
		return -ENOMEM;
	for (size_t i = 0; i < iommu->n_groups; i++)
		held[i] = iommu->groups[i].number;
	r = iovk_vfio_parse_hot_reset_info(buf, size, held, iommu->n_groups, &info);
	if (r < 0)
		return set_error(ctx, r, "%s: the kernel's VFIO_DEVICE_GET_PCI_HOT_RESET_INFO answer is malformed (%s)",
				 iovk_vfio_device_get_address(dev), r == -E2BIG ? "too many functions" : "truncated");
	for (size_t i = 0; i < info.n_devices; i++) {
		struct iovk_vfio_hot_reset_device *d = &info.devices[i];
		_cleanup_free_ char *link = NULL;
		char name[32];

		/* Gone meanwhile, or a driver name longer than we keep: "" */
		if (iovk_device_read_driver(ctx, d->address, d->driver, sizeof(d->driver)) < 0)
			d->driver[0] = '\0';
		if (d->iommu_group < 0) {
			link = sysfs_path(ctx, "/bus/pci/devices/%s/iommu_group", d->address);
			if (!link) {
				iovk_vfio_hot_reset_info_clear(&info);
				return -ENOMEM;
			}
			if (read_link_name(link, name, sizeof(name)) >= 0)
				d->iommu_group = atoi(name);
		}
		/* The container's proof is the group; the kernel also wants
		 * the function itself on vfio-pci (in the dev_set). */
		if (!(info.flags & VFIO_PCI_HOT_RESET_FLAG_DEV_ID) && d->owned && !iovk_driver_is_vfio(d->driver)) {
			d->owned = false;
			info.n_unowned++;
		}
	}
	clear_error(ctx); /* iovk_device_read_driver() may have left a failure behind */
	*ret_info = info;
	return 0;
}

/*
 * "0000:04:00.0 (group 12, bound to nvme), not opened in this address
 * space; ..." for every function not owned. A function outside vfio-pci
 * cannot be opened at all, so the words fit the container (group not
 * attached here, or the function not on vfio-pci) and iommufd alike.
 */
static void format_unowned(const struct iovk_vfio_hot_reset_info *info, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < info->n_devices && len < size; i++) {
		const struct iovk_vfio_hot_reset_device *d = &info->devices[i];
		char group[32] = "no IOMMU group";
		int n;

		if (d->owned)
			continue;
		if (d->iommu_group >= 0)
			snprintf(group, sizeof(group), "group %d", d->iommu_group);
		n = snprintf(buf + len, size - len, "%s%s (%s, %s%s), not opened in this address space",
			     len ? "; " : "", d->address, group, d->driver[0] ? "bound to " : "no driver", d->driver);
		if (n < 0)
			break;
		len += (size_t)n;
	}
}

_public_ int iovk_vfio_device_hot_reset(struct iovk_vfio_device *dev)
{
	struct iovk_vfio_iommu *iommu = iovk_vfio_device_get_iommu(dev);
	struct iovk_ctx *ctx = iommu->ctx;
	const char *address = iovk_vfio_device_get_address(dev);
	struct iovk_vfio_hot_reset_info info = {};
	_cleanup_free_ struct vfio_pci_hot_reset *reset = NULL;
	char who[768];
	uint32_t n_fds = 0;
	int r;

	r = iovk_vfio_device_get_hot_reset_info(dev, &info);
	if (r < 0)
		return r;
	if (info.n_unowned > 0) {
		/* Refused here, before the reset ioctl: the kernel would
		 * refuse too, but say less; and a function on another
		 * driver must never be reset under its feet. */
		format_unowned(&info, who, sizeof(who));
		iovk_vfio_hot_reset_info_clear(&info);
		return set_error(ctx, -EBUSY, "%s: hot reset would also reset %s; nothing was reset", address, who);
	}
	reset = calloc(1, sizeof(*reset) + info.n_devices * sizeof(reset->group_fds[0]));
	if (!reset) {
		iovk_vfio_hot_reset_info_clear(&info);
		return -ENOMEM;
	}
	if (!(info.flags & VFIO_PCI_HOT_RESET_FLAG_DEV_ID))
		/* The group path's proof: the fd of every affected function's
		 * group, each once (the kernel allows at most one per function). */
		for (size_t i = 0; i < iommu->n_groups; i++)
			for (size_t k = 0; k < info.n_devices; k++)
				if (info.devices[k].iommu_group == iommu->groups[i].number) {
					reset->group_fds[n_fds++] = iommu->groups[i].fd;
					break;
				}
	reset->argsz = (uint32_t)(sizeof(*reset) + n_fds * sizeof(reset->group_fds[0]));
	reset->count = n_fds;
	log_debug(ctx, "%s: VFIO_DEVICE_PCI_HOT_RESET of %zu function(s), %" PRIu32 " group fd(s)", address,
		  info.n_devices, n_fds);
	iovk_vfio_hot_reset_info_clear(&info);
	r = vfio_ioctl(iovk_vfio_device_get_fd(dev), VFIO_DEVICE_PCI_HOT_RESET, reset);
	if (r == -EINVAL)
		return set_error(ctx, r,
				 "%s: the kernel refused the hot reset (EINVAL): not every function it would reset "
				 "is in the device's VFIO reset set (each must be on vfio-pci, and every VF is a "
				 "set of its own), or the proof of ownership did not cover them",
				 address);
	if (r == -EBUSY)
		return set_error(ctx, r,
				 "%s: the kernel refused the hot reset (EBUSY): another thread is using a function "
				 "it would reset; try again",
				 address);
	if (r == -ENOTTY)
		/* pci_bridge_wait_for_secondary_bus(): after the reset the
		 * port's Data Link Layer Link Active bit never came on. The
		 * reset itself was done (and config space restored). */
		return set_error(ctx, r,
				 "%s: the kernel could not complete the hot reset (ENOTTY): when dmesg says \"Data "
				 "Link Layer Link Active not set\", the slot or bus was reset but the port above it "
				 "never reported its link up again (a port that advertises link active reporting "
				 "without setting it, as QEMU 7.2's pcie-root-port does)",
				 address);
	if (r < 0)
		return set_error(ctx, r, "%s: VFIO_DEVICE_PCI_HOT_RESET: %s", address, strerror(-r));
	return 0;
}
