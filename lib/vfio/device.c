/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Devices opened through VFIO: info, regions (read/write, mmap), config
 * space, IRQs with one eventfd per vector, reset, VF token.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <linux/vfio.h>

#include "vfio-internal.h"

/* Bounds on what the kernel reports, so a confused driver cannot make us
 * allocate without limit: vfio-pci has 9 regions (+ a few device-specific
 * ones, e.g. IGD OpRegion) and 5 IRQ indexes. */
#define MAX_REGIONS 64
#define MAX_IRQS 16
/* MSI-X allows 2048 vectors. */
#define MAX_VECTORS 2048

struct region_map {
	void *addr;
	size_t size;
};

struct irq_state {
	int *fds;
	uint32_t count; /* enabled vectors, 0 when disabled */
};

struct iovk_vfio_device {
	int n_ref;
	struct iovk_vfio_iommu *iommu;
	struct iovk_ctx *ctx;
	char address[IOVK_PCI_ADDR_MAX];
	int group;
	int fd;
	uint32_t flags;
	char *reset_methods;
	struct iovk_vfio_region *regions;
	struct region_map *maps;
	size_t n_regions;
	struct iovk_vfio_irq *irqs;
	struct irq_state *irq_states;
	size_t n_irqs;
};

int vfio_parse_uuid(const char *s, uint8_t ret[16])
{
	size_t k = 0;

	if (!s || strlen(s) != 36)
		return -EINVAL;
	for (size_t i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return -EINVAL;
			continue;
		}
		if (!isxdigit((unsigned char)s[i]) || !isxdigit((unsigned char)s[i + 1]))
			return -EINVAL;
		char hex[3] = { s[i], s[i + 1], 0 };
		ret[k++] = (uint8_t)strtoul(hex, NULL, 16);
		i++;
	}
	return k == 16 ? 0 : -EINVAL;
}

struct region_query {
	uint32_t index;
};

static void fill_region_query(void *buf, void *userdata)
{
	struct vfio_region_info *info = buf;

	info->index = ((struct region_query *)userdata)->index;
}

static int read_region(struct iovk_vfio_device *dev, uint32_t index)
{
	_cleanup_free_ void *buf = NULL;
	size_t size;
	int r;

	r = vfio_info_ioctl(dev->fd, VFIO_DEVICE_GET_REGION_INFO, sizeof(struct vfio_region_info), fill_region_query,
			    &(struct region_query){ index }, &buf, &size);
	if (r == -EINVAL) {
		/* vfio-pci refuses indexes it does not implement (VGA on a
		 * non-VGA device): an empty region, not a failure. */
		dev->regions[index] = (struct iovk_vfio_region){ .index = index };
		return 0;
	}
	if (r < 0)
		return set_error(dev->ctx, r, "%s: VFIO_DEVICE_GET_REGION_INFO for region %u: %s", dev->address,
				 index, strerror(-r));
	r = iovk_vfio_parse_region_info(buf, size, &dev->regions[index]);
	if (r < 0)
		return set_error(dev->ctx, r, "%s: the kernel's info for region %u is malformed (%s)", dev->address,
				 index,
				 r == -ELOOP   ? "cyclic capability chain"
				 : r == -E2BIG ? "oversized"
				 : r == -EOVERFLOW ? "sparse area outside the region"
						   : "truncated");
	return 0;
}

static int read_device(struct iovk_vfio_device *dev)
{
	struct vfio_device_info info = { .argsz = sizeof(info) };
	_cleanup_free_ char *p = NULL;
	int r;

	r = vfio_ioctl(dev->fd, VFIO_DEVICE_GET_INFO, &info);
	if (r < 0)
		return set_error(dev->ctx, r, "%s: VFIO_DEVICE_GET_INFO: %s", dev->address, strerror(-r));
	if (!(info.flags & VFIO_DEVICE_FLAGS_PCI))
		return set_error(dev->ctx, -ENODEV, "%s: VFIO says this is not a PCI device (flags 0x%x)",
				 dev->address, info.flags);
	if (info.num_regions > MAX_REGIONS || info.num_irqs > MAX_IRQS)
		return set_error(dev->ctx, -E2BIG, "%s: the kernel reports %u regions and %u IRQ indexes (at most "
						   "%d and %d accepted)",
				 dev->address, info.num_regions, info.num_irqs, MAX_REGIONS, MAX_IRQS);
	dev->flags = info.flags;
	dev->n_regions = info.num_regions;
	dev->regions = calloc(dev->n_regions ? dev->n_regions : 1, sizeof(*dev->regions));
	dev->maps = calloc(dev->n_regions ? dev->n_regions : 1, sizeof(*dev->maps));
	dev->n_irqs = info.num_irqs;
	dev->irqs = calloc(dev->n_irqs ? dev->n_irqs : 1, sizeof(*dev->irqs));
	dev->irq_states = calloc(dev->n_irqs ? dev->n_irqs : 1, sizeof(*dev->irq_states));
	if (!dev->regions || !dev->maps || !dev->irqs || !dev->irq_states)
		return -ENOMEM;
	for (uint32_t i = 0; i < dev->n_regions; i++) {
		r = read_region(dev, i);
		if (r < 0)
			return r;
	}
	for (uint32_t i = 0; i < dev->n_irqs; i++) {
		struct vfio_irq_info irq = { .argsz = sizeof(irq), .index = i };

		r = vfio_ioctl(dev->fd, VFIO_DEVICE_GET_IRQ_INFO, &irq);
		if (r == -EINVAL) {
			/* vfio-pci refuses indexes the device cannot have
			 * (ERR on conventional PCI, e.g. the ICH9 functions):
			 * no vectors, not a failure; as for regions. */
			dev->irqs[i] = (struct iovk_vfio_irq){ .index = i };
			continue;
		}
		if (r < 0)
			return set_error(dev->ctx, r, "%s: VFIO_DEVICE_GET_IRQ_INFO for index %u: %s", dev->address, i,
					 strerror(-r));
		if (irq.count > MAX_VECTORS)
			return set_error(dev->ctx, -E2BIG, "%s: IRQ index %u has %u vectors (at most %d accepted)",
					 dev->address, i, irq.count, MAX_VECTORS);
		dev->irqs[i] = (struct iovk_vfio_irq){ .index = i, .flags = irq.flags, .count = irq.count };
	}
	/* reset_method (5.15+) names what a reset will do: "flr", "pm", "bus", ... */
	p = sysfs_path(dev->ctx, "/bus/pci/devices/%s/reset_method", dev->address);
	if (!p)
		return -ENOMEM;
	r = read_text(p, &dev->reset_methods);
	if (r < 0 && r != -ENOENT)
		log_debug(dev->ctx, "%s: reading %s: %s", dev->address, p, strerror(-r));
	return 0;
}

_public_ int iovk_vfio_device_open(struct iovk_vfio_iommu *iommu, const char *address,
				   const struct iovk_vfio_device_opts *opts, struct iovk_vfio_device **ret_device)
{
	struct iovk_ctx *ctx;
	struct iovk_vfio_device *dev = NULL;
	struct iovk_device *d = NULL;
	const char *vf_token = NULL, *driver;
	uint8_t uuid[16];
	int r;

	assert_return(iommu && address && ret_device, -EINVAL);
	ctx = iommu->ctx;
	clear_error(ctx);
	if (opts && opts_valid(ctx, opts, opts->sz, sizeof(opts->sz), sizeof(*opts), "iovk_vfio_device_opts", "IOVK_OPTS()") < 0)
		return -EINVAL;
	if (opts && opts->sz >= offsetofend(struct iovk_vfio_device_opts, vf_token))
		vf_token = opts->vf_token;
	if (vf_token && vfio_parse_uuid(vf_token, uuid) < 0)
		return set_error(ctx, -EINVAL, "'%s' is not a VF token (a UUID: 8-4-4-4-12 hex digits)", vf_token);
	r = iovk_device_new(ctx, address, &d);
	if (r < 0)
		return r;
	driver = iovk_device_get_driver(d);
	/* vfio-pci, or a variant driver built on vfio-pci-core
	 * (mlx5_vfio_pci, hisi_acc_vfio_pci, ...). */
	if (!iovk_driver_is_vfio(driver)) {
		r = set_error(ctx, driver ? -EBUSY : -ENODEV,
			      "%s: %s%s, not on vfio-pci: bind it first: iovctl bind %s vfio-pci",
			      iovk_device_get_address(d), driver ? "bound to " : "without a driver",
			      driver ? driver : "", iovk_device_get_address(d));
		iovk_device_unref(d);
		return r;
	}
	if (iovk_device_get_iommu_group(d) < 0) {
		r = set_error(ctx, -ENODEV, "%s: no IOMMU group: the IOMMU is off (see iovctl doctor)",
			      iovk_device_get_address(d));
		iovk_device_unref(d);
		return r;
	}
	dev = calloc(1, sizeof(*dev));
	if (!dev) {
		iovk_device_unref(d);
		return -ENOMEM;
	}
	dev->n_ref = 1;
	dev->iommu = iovk_vfio_iommu_ref(iommu);
	dev->ctx = ctx;
	dev->fd = -1;
	snprintf(dev->address, sizeof(dev->address), "%s", iovk_device_get_address(d));
	dev->group = iovk_device_get_iommu_group(d);
	iovk_device_unref(d);

	r = vfio_iommu_attach_device(iommu, dev->address, dev->group, vf_token, &dev->fd);
	if (r >= 0)
		r = read_device(dev);
	if (r < 0) {
		iovk_vfio_device_unref(dev);
		return r;
	}
	log_debug(ctx, "%s: opened through VFIO (%s, %s, group %d): %zu regions, %zu IRQ indexes", dev->address,
		  iommu->ops->backend, iovk_vfio_mode_to_string(iommu->mode), dev->group, dev->n_regions, dev->n_irqs);
	*ret_device = dev;
	return 0;
}

static void close_irq_fds(struct irq_state *s)
{
	for (uint32_t v = 0; v < s->count; v++)
		if (s->fds[v] >= 0)
			close(s->fds[v]);
	free(s->fds);
	s->fds = NULL;
	s->count = 0;
}

/* Frees what the last reference held (DEFINE_PUBLIC_REF_UNREF below). */
static void vfio_device_free(struct iovk_vfio_device *dev)
{
	for (size_t i = 0; dev->irq_states && i < dev->n_irqs; i++)
		if (dev->irq_states[i].count) {
			/* Closing the device fd would release them too; doing it
			 * first keeps the eventfds from firing into closed fds. */
			(void)iovk_vfio_device_irq_disable(dev, (uint32_t)i);
			close_irq_fds(&dev->irq_states[i]);
		}
	for (size_t i = 0; dev->maps && i < dev->n_regions; i++)
		if (dev->maps[i].addr)
			munmap(dev->maps[i].addr, dev->maps[i].size);
	if (dev->fd >= 0) {
		if (dev->iommu->ops->detach_device)
			dev->iommu->ops->detach_device(dev->iommu, dev->address, dev->fd);
		close(dev->fd);
	}
	free(dev->regions);
	free(dev->maps);
	free(dev->irqs);
	free(dev->irq_states);
	free(dev->reset_methods);
	iovk_vfio_iommu_unref(dev->iommu);
	free(dev);
}

DEFINE_PUBLIC_REF_UNREF(struct iovk_vfio_device, iovk_vfio_device, vfio_device_free);

_public_ const char *iovk_vfio_device_get_address(const struct iovk_vfio_device *dev)
{
	return dev->address;
}

_public_ int iovk_vfio_device_get_iommu_group(const struct iovk_vfio_device *dev)
{
	return dev->group;
}

_public_ struct iovk_vfio_iommu *iovk_vfio_device_get_iommu(const struct iovk_vfio_device *dev)
{
	return dev->iommu;
}

_public_ int iovk_vfio_device_get_fd(const struct iovk_vfio_device *dev)
{
	return dev->fd;
}

_public_ uint32_t iovk_vfio_device_get_flags(const struct iovk_vfio_device *dev)
{
	return dev->flags;
}

_public_ const char *iovk_vfio_device_get_reset_methods(const struct iovk_vfio_device *dev)
{
	return dev->reset_methods;
}

_public_ size_t iovk_vfio_device_get_n_regions(const struct iovk_vfio_device *dev)
{
	return dev->n_regions;
}

_public_ const struct iovk_vfio_region *iovk_vfio_device_get_region(const struct iovk_vfio_device *dev, uint32_t index)
{
	return index < dev->n_regions ? &dev->regions[index] : NULL;
}

_public_ size_t iovk_vfio_device_get_n_irqs(const struct iovk_vfio_device *dev)
{
	return dev->n_irqs;
}

_public_ const struct iovk_vfio_irq *iovk_vfio_device_get_irq(const struct iovk_vfio_device *dev, uint32_t index)
{
	return index < dev->n_irqs ? &dev->irqs[index] : NULL;
}

static const char *region_label(uint32_t index, char buf[static 16])
{
	const char *n = iovk_vfio_pci_region_name(index);

	if (n)
		return n;
	snprintf(buf, 16, "region %u", index);
	return buf;
}

static int region_check(struct iovk_vfio_device *dev, uint32_t index, uint64_t offset, size_t len, uint32_t need)
{
	const struct iovk_vfio_region *reg = iovk_vfio_device_get_region(dev, index);
	char label[16];

	if (!reg)
		return set_error(dev->ctx, -EINVAL, "%s: no region %u (the device has %zu)", dev->address, index,
				 dev->n_regions);
	if (!(reg->flags & need))
		return set_error(dev->ctx, -EOPNOTSUPP, "%s: %s is not %s through VFIO", dev->address,
				 region_label(index, label), need == VFIO_REGION_INFO_FLAG_READ ? "readable" : "writable");
	if (offset > reg->size || len > reg->size - offset)
		return set_error(dev->ctx, -EINVAL,
				 "%s: %zu bytes at offset 0x%" PRIx64 " lie past the end of %s (0x%" PRIx64 " bytes)",
				 dev->address, len, offset, region_label(index, label), reg->size);
	return 0;
}

_public_ int iovk_vfio_device_region_read(struct iovk_vfio_device *dev, uint32_t index, uint64_t offset, void *buf,
					  size_t len)
{
	char label[16];
	ssize_t n;
	int r;

	clear_error(dev->ctx);
	r = region_check(dev, index, offset, len, VFIO_REGION_INFO_FLAG_READ);
	if (r < 0)
		return r;
	do
		n = pread(dev->fd, buf, len, (off_t)(dev->regions[index].offset + offset));
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		r = negative_errno();
		return set_error(dev->ctx, r, "%s: reading %zu bytes at 0x%" PRIx64 " of %s: %s", dev->address, len,
				 offset, region_label(index, label), strerror(-r));
	}
	if ((size_t)n != len)
		return set_error(dev->ctx, -EIO, "%s: short read of %s at 0x%" PRIx64 ": %zd of %zu bytes",
				 dev->address, region_label(index, label), offset, n, len);
	return 0;
}

_public_ int iovk_vfio_device_region_write(struct iovk_vfio_device *dev, uint32_t index, uint64_t offset,
					   const void *buf, size_t len)
{
	char label[16];
	ssize_t n;
	int r;

	clear_error(dev->ctx);
	r = region_check(dev, index, offset, len, VFIO_REGION_INFO_FLAG_WRITE);
	if (r < 0)
		return r;
	do
		n = pwrite(dev->fd, buf, len, (off_t)(dev->regions[index].offset + offset));
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		r = negative_errno();
		return set_error(dev->ctx, r, "%s: writing %zu bytes at 0x%" PRIx64 " of %s: %s", dev->address, len,
				 offset, region_label(index, label), strerror(-r));
	}
	if ((size_t)n != len)
		return set_error(dev->ctx, -EIO, "%s: short write to %s at 0x%" PRIx64 ": %zd of %zu bytes",
				 dev->address, region_label(index, label), offset, n, len);
	return 0;
}

_public_ int iovk_vfio_device_config_read(struct iovk_vfio_device *dev, uint64_t offset, void *buf, size_t len)
{
	return iovk_vfio_device_region_read(dev, VFIO_PCI_CONFIG_REGION_INDEX, offset, buf, len);
}

_public_ int iovk_vfio_device_config_write(struct iovk_vfio_device *dev, uint64_t offset, const void *buf,
					   size_t len)
{
	return iovk_vfio_device_region_write(dev, VFIO_PCI_CONFIG_REGION_INDEX, offset, buf, len);
}

_public_ int iovk_vfio_device_map_region(struct iovk_vfio_device *dev, uint32_t index, void **ret_addr)
{
	const struct iovk_vfio_region *reg = iovk_vfio_device_get_region(dev, index);
	char label[16];
	void *base;
	int prot = 0, r;

	clear_error(dev->ctx);
	if (!reg || reg->size == 0)
		return set_error(dev->ctx, -EINVAL, "%s: %s is not implemented by the device", dev->address,
				 region_label(index, label));
	if (dev->maps[index].addr) {
		*ret_addr = dev->maps[index].addr;
		return 0;
	}
	if (!(reg->flags & VFIO_REGION_INFO_FLAG_MMAP))
		return set_error(dev->ctx, -EOPNOTSUPP, "%s: %s cannot be mmap'ed (use reads and writes)",
				 dev->address, region_label(index, label));
	if (reg->size > SIZE_MAX)
		return set_error(dev->ctx, -EOVERFLOW, "%s: %s is too large to map", dev->address,
				 region_label(index, label));
	if (reg->flags & VFIO_REGION_INFO_FLAG_READ)
		prot |= PROT_READ;
	if (reg->flags & VFIO_REGION_INFO_FLAG_WRITE)
		prot |= PROT_WRITE;
	if (!reg->has_sparse_mmap) {
		base = mmap(NULL, reg->size, prot, MAP_SHARED, dev->fd, (off_t)reg->offset);
		if (base == MAP_FAILED) {
			r = negative_errno();
			return set_error(dev->ctx, r, "%s: mmap of %s (0x%" PRIx64 " bytes): %s", dev->address,
					 region_label(index, label), reg->size, strerror(-r));
		}
	} else {
		/* Reserve the whole region so its layout is kept, then map
		 * only the areas the kernel allows; the holes (an MSI-X table)
		 * stay PROT_NONE and fault if touched. */
		base = mmap(NULL, reg->size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (base == MAP_FAILED) {
			r = negative_errno();
			return set_error(dev->ctx, r, "%s: reserving 0x%" PRIx64 " bytes for %s: %s", dev->address,
					 reg->size, region_label(index, label), strerror(-r));
		}
		for (size_t i = 0; i < reg->n_sparse_areas; i++) {
			const struct iovk_vfio_sparse_area *a = &reg->sparse_areas[i];

			if (a->size == 0)
				continue;
			if (mmap((uint8_t *)base + a->offset, a->size, prot, MAP_SHARED | MAP_FIXED, dev->fd,
				 (off_t)(reg->offset + a->offset)) == MAP_FAILED) {
				r = negative_errno();
				munmap(base, reg->size);
				return set_error(dev->ctx, r,
						 "%s: mmap of %s area 0x%" PRIx64 "+0x%" PRIx64 ": %s", dev->address,
						 region_label(index, label), a->offset, a->size, strerror(-r));
			}
		}
	}
	dev->maps[index] = (struct region_map){ .addr = base, .size = reg->size };
	*ret_addr = base;
	return 0;
}

static int irq_check(struct iovk_vfio_device *dev, uint32_t index)
{
	if (index >= dev->n_irqs)
		return set_error(dev->ctx, -EINVAL, "%s: no IRQ index %u (the device has %zu)", dev->address, index,
				 dev->n_irqs);
	return 0;
}

static const char *irq_label(uint32_t index)
{
	return iovk_vfio_pci_irq_name(index) ?: "IRQ";
}

/* INTx, MSI and MSI-X exclude each other (vfio_pci_set_irqs_ioctl). */
static bool is_exclusive(uint32_t index)
{
	return index <= VFIO_PCI_MSIX_IRQ_INDEX;
}

_public_ int iovk_vfio_device_irq_enable(struct iovk_vfio_device *dev, uint32_t index, uint32_t count)
{
	_cleanup_free_ struct vfio_irq_set *set = NULL;
	struct irq_state *s;
	int *fds = NULL;
	size_t argsz;
	int r;

	clear_error(dev->ctx);
	r = irq_check(dev, index);
	if (r < 0)
		return r;
	if (count == 0)
		return set_error(dev->ctx, -EINVAL, "%s: enabling 0 %s vectors", dev->address, irq_label(index));
	if (count > dev->irqs[index].count)
		return set_error(dev->ctx, -ERANGE, "%s: %u %s vectors asked for, the device has %u", dev->address,
				 count, irq_label(index), dev->irqs[index].count);
	if (!(dev->irqs[index].flags & VFIO_IRQ_INFO_EVENTFD))
		return set_error(dev->ctx, -EOPNOTSUPP, "%s: %s does not signal through eventfds", dev->address,
				 irq_label(index));
	for (uint32_t i = 0; is_exclusive(index) && i < dev->n_irqs; i++)
		if (i != index && is_exclusive(i) && dev->irq_states[i].count)
			return set_error(dev->ctx, -EBUSY, "%s: %s is enabled; disable it before enabling %s",
					 dev->address, irq_label(i), irq_label(index));
	s = &dev->irq_states[index];
	if (s->count) {
		r = iovk_vfio_device_irq_disable(dev, index);
		if (r < 0)
			return r;
	}
	argsz = sizeof(*set) + (size_t)count * sizeof(int32_t);
	set = calloc(1, argsz);
	fds = calloc(count, sizeof(*fds));
	if (!set || !fds) {
		free(fds);
		return -ENOMEM;
	}
	for (uint32_t v = 0; v < count; v++)
		fds[v] = -1;
	for (uint32_t v = 0; v < count; v++) {
		fds[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fds[v] < 0) {
			r = negative_errno();
			*s = (struct irq_state){ .fds = fds, .count = count };
			close_irq_fds(s);
			return set_error(dev->ctx, r, "%s: eventfd for %s vector %u: %s", dev->address,
					 irq_label(index), v, strerror(-r));
		}
		memcpy(set->data + v * sizeof(int32_t), &fds[v], sizeof(int32_t));
	}
	set->argsz = (uint32_t)argsz;
	set->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
	set->index = index;
	set->start = 0;
	set->count = count;
	r = vfio_ioctl(dev->fd, VFIO_DEVICE_SET_IRQS, set);
	*s = (struct irq_state){ .fds = fds, .count = count };
	if (r < 0) {
		close_irq_fds(s);
		return set_error(dev->ctx, r, "%s: enabling %u %s vector(s) (VFIO_DEVICE_SET_IRQS): %s%s",
				 dev->address, count, irq_label(index), strerror(-r),
				 r == -EINVAL && is_exclusive(index)
					 ? " (another of INTx/MSI/MSI-X enabled elsewhere, or INTx shared and masked?)"
					 : "");
	}
	return 0;
}

_public_ int iovk_vfio_device_irq_disable(struct iovk_vfio_device *dev, uint32_t index)
{
	struct vfio_irq_set set = {
		.argsz = sizeof(set),
		.flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
		.index = index,
		.start = 0,
		.count = 0,
	};
	int r;

	r = irq_check(dev, index);
	if (r < 0)
		return r;
	if (!dev->irq_states[index].count)
		return 0;
	r = vfio_ioctl(dev->fd, VFIO_DEVICE_SET_IRQS, &set);
	/* The eventfds are ours either way; the kernel drops its references
	 * when the device fd closes at the latest. */
	close_irq_fds(&dev->irq_states[index]);
	if (r < 0)
		return set_error(dev->ctx, r, "%s: disabling %s: %s", dev->address, irq_label(index), strerror(-r));
	return 0;
}

_public_ int iovk_vfio_device_irq_get_eventfd(const struct iovk_vfio_device *dev, uint32_t index, uint32_t vector)
{
	if (index >= dev->n_irqs || vector >= dev->irq_states[index].count)
		return -ENOENT;
	return dev->irq_states[index].fds[vector];
}

_public_ int iovk_vfio_device_irq_trigger(struct iovk_vfio_device *dev, uint32_t index, uint32_t vector)
{
	struct vfio_irq_set set = {
		.argsz = sizeof(set),
		.flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_TRIGGER,
		.index = index,
		.start = vector,
		.count = 1,
	};
	int r;

	clear_error(dev->ctx);
	r = irq_check(dev, index);
	if (r < 0)
		return r;
	if (vector >= dev->irq_states[index].count)
		return set_error(dev->ctx, -ENOENT, "%s: %s vector %u is not enabled", dev->address, irq_label(index),
				 vector);
	r = vfio_ioctl(dev->fd, VFIO_DEVICE_SET_IRQS, &set);
	if (r < 0)
		return set_error(dev->ctx, r, "%s: triggering %s vector %u: %s", dev->address, irq_label(index),
				 vector, strerror(-r));
	return 0;
}

_public_ int iovk_vfio_device_irq_unmask(struct iovk_vfio_device *dev, uint32_t index)
{
	struct vfio_irq_set set = {
		.argsz = sizeof(set),
		.flags = VFIO_IRQ_SET_DATA_NONE | VFIO_IRQ_SET_ACTION_UNMASK,
		.index = index,
		.start = 0,
		.count = 1,
	};
	int r;

	clear_error(dev->ctx);
	r = irq_check(dev, index);
	if (r < 0)
		return r;
	r = vfio_ioctl(dev->fd, VFIO_DEVICE_SET_IRQS, &set);
	if (r < 0)
		return set_error(dev->ctx, r, "%s: unmasking %s: %s", dev->address, irq_label(index), strerror(-r));
	return 0;
}

_public_ int iovk_vfio_device_reset(struct iovk_vfio_device *dev)
{
	const char *methods = dev->reset_methods && dev->reset_methods[0] ? dev->reset_methods : NULL;
	int r;

	clear_error(dev->ctx);
	if (!(dev->flags & VFIO_DEVICE_FLAGS_RESET))
		return set_error(dev->ctx, -ENOTTY,
				 "%s: the device offers no reset VFIO can use (no FLR, PM or bus reset; "
				 "reset_method: %s)",
				 dev->address, methods ? methods : "none");
	r = vfio_ioctl(dev->fd, VFIO_DEVICE_RESET, NULL);
	if (r < 0)
		return set_error(dev->ctx, r, "%s: the device refused VFIO_DEVICE_RESET (reset_method: %s): %s%s",
				 dev->address, methods ? methods : "unknown", strerror(-r),
				 r == -EAGAIN ? " (the device lock was busy; try again)" : "");
	return 0;
}

_public_ int iovk_vfio_device_set_vf_token(struct iovk_vfio_device *dev, const char *uuid)
{
	uint8_t buf[sizeof(struct vfio_device_feature) + 16] __attribute__((aligned(8))) = {};
	struct vfio_device_feature *f = (struct vfio_device_feature *)buf;
	uint8_t token[16];
	int r;

	clear_error(dev->ctx);
	if (vfio_parse_uuid(uuid, token) < 0)
		return set_error(dev->ctx, -EINVAL, "'%s' is not a VF token (a UUID: 8-4-4-4-12 hex digits)",
				 uuid ? uuid : "(null)");
	f->argsz = sizeof(buf);
	f->flags = VFIO_DEVICE_FEATURE_SET | VFIO_DEVICE_FEATURE_PCI_VF_TOKEN;
	memcpy(f->data, token, sizeof(token));
	r = vfio_ioctl(dev->fd, VFIO_DEVICE_FEATURE, f);
	if (r < 0)
		return set_error(dev->ctx, r, "%s: setting the VF token: %s%s", dev->address, strerror(-r),
				 r == -ENOTTY || r == -EINVAL
					 ? " (only a PF on vfio-pci with SR-IOV enabled takes one; vfio-pci needs "
					   "enable_sriov=1 for that)"
					 : "");
	return 0;
}
