/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VFIO info structs and their capability chains, decoded from a buffer
 * alone (no kernel), so that crafted buffers can test every refusal.
 *
 * The chain format (include/uapi/linux/vfio.h, "struct vfio_info_cap_header"):
 * each capability starts with { u16 id; u16 version; u32 next; }, next is an
 * offset from the start of the whole info buffer, 0 ends the chain. The kernel
 * builds it with vfio_info_cap_add() (8-byte aligned, in increasing order),
 * but nothing in the format stops a buggy or hostile producer from pointing
 * outside the buffer or back to an earlier capability, hence the checks.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/vfio.h>

#include "vfio-internal.h"

#define CAP_HDR_SIZE sizeof(struct vfio_info_cap_header)

_public_ int iovk_vfio_cap_chain_walk(const void *buf, size_t size, size_t hdr_size, uint32_t first,
				      struct iovk_vfio_cap *ret_caps, size_t max_caps, size_t *ret_n)
{
	const uint8_t *p = buf;
	uint32_t off = first;
	size_t n = 0;

	if (size > IOVK_VFIO_INFO_MAX)
		return -E2BIG;
	if (max_caps > IOVK_VFIO_CAP_MAX)
		max_caps = IOVK_VFIO_CAP_MAX;
	while (off != 0) {
		struct vfio_info_cap_header h;

		/* The header must lie whole inside the buffer and after the fixed struct. */
		if (off < hdr_size || off > size || size - off < CAP_HDR_SIZE || off % 4 != 0)
			return -EBADMSG;
		/* A chain longer than we allow is treated like a cycle: both
		 * would make us walk forever or without bound. */
		if (n >= max_caps)
			return -ELOOP;
		for (size_t i = 0; i < n; i++)
			if (ret_caps[i].offset == off)
				return -ELOOP;
		memcpy(&h, p + off, sizeof(h)); /* no alignment assumption on buf */
		ret_caps[n++] = (struct iovk_vfio_cap){
			.id = h.id,
			.version = h.version,
			.offset = off,
			.avail = (uint32_t)(size - off),
		};
		off = h.next;
	}
	*ret_n = n;
	return 0;
}

/* Checks the fixed part and the argsz the buffer claims; returns the usable size. */
static int check_info_size(const void *buf, size_t size, size_t fixed, size_t *ret_usable)
{
	uint32_t argsz;

	if (size > IOVK_VFIO_INFO_MAX)
		return -E2BIG;
	if (size < fixed)
		return -EBADMSG;
	memcpy(&argsz, buf, sizeof(argsz));
	if (argsz < fixed)
		return -EBADMSG;
	/* The kernel raises argsz above ours when the caps did not fit: we
	 * hold only part of what it meant to send. */
	if (argsz > size)
		return -EBADMSG;
	*ret_usable = argsz;
	return 0;
}

static int parse_sparse(const uint8_t *buf, const struct iovk_vfio_cap *c, struct iovk_vfio_region *r)
{
	struct vfio_region_info_cap_sparse_mmap s;
	size_t need;

	if (c->avail < sizeof(s))
		return -EBADMSG;
	memcpy(&s, buf + c->offset, sizeof(s));
	if (s.nr_areas > IOVK_VFIO_SPARSE_MAX)
		return -E2BIG;
	need = sizeof(s) + (size_t)s.nr_areas * sizeof(struct vfio_region_sparse_mmap_area);
	if (c->avail < need)
		return -EBADMSG;
	for (uint32_t i = 0; i < s.nr_areas; i++) {
		struct vfio_region_sparse_mmap_area a;

		memcpy(&a, buf + c->offset + sizeof(s) + i * sizeof(a), sizeof(a));
		/* An area must lie inside the region (no wrap-around). */
		if (a.offset > r->size || a.size > r->size - a.offset)
			return -EOVERFLOW;
		r->sparse_areas[i] = (struct iovk_vfio_sparse_area){ .offset = a.offset, .size = a.size };
	}
	r->has_sparse_mmap = true;
	r->n_sparse_areas = s.nr_areas;
	return 0;
}

_public_ int iovk_vfio_parse_region_info(const void *buf, size_t size, struct iovk_vfio_region *ret_region)
{
	struct vfio_region_info info;
	struct iovk_vfio_cap caps[IOVK_VFIO_CAP_MAX];
	struct iovk_vfio_region r = {};
	size_t usable, n = 0;
	int ret;

	ret = check_info_size(buf, size, sizeof(info), &usable);
	if (ret < 0)
		return ret;
	memcpy(&info, buf, sizeof(info));
	r.index = info.index;
	r.flags = info.flags;
	r.size = info.size;
	r.offset = info.offset;
	if ((info.flags & VFIO_REGION_INFO_FLAG_CAPS) && info.cap_offset) {
		ret = iovk_vfio_cap_chain_walk(buf, usable, sizeof(info), info.cap_offset, caps, ELEMENTSOF(caps), &n);
		if (ret < 0)
			return ret;
	}
	r.n_caps = n;
	for (size_t i = 0; i < n; i++) {
		r.cap_ids[i] = caps[i].id;
		switch (caps[i].id) {
		case VFIO_REGION_INFO_CAP_SPARSE_MMAP:
			ret = parse_sparse(buf, &caps[i], &r);
			if (ret < 0)
				return ret;
			break;
		case VFIO_REGION_INFO_CAP_MSIX_MAPPABLE:
			r.msix_mappable = true; /* the header is the whole capability */
			break;
		case VFIO_REGION_INFO_CAP_TYPE: {
			struct vfio_region_info_cap_type t;

			if (caps[i].avail < sizeof(t))
				return -EBADMSG;
			memcpy(&t, (const uint8_t *)buf + caps[i].offset, sizeof(t));
			r.has_type = true;
			r.type = t.type;
			r.subtype = t.subtype;
			break;
		}
		default:
			break; /* unknown capabilities are listed, not decoded */
		}
	}
	*ret_region = r;
	return 0;
}

static int range_cmp(const void *a, const void *b)
{
	const struct iovk_iova_range *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

int vfio_iova_ranges_sort_check(struct iovk_iova_range *ranges, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ranges[i].start > ranges[i].end)
			return -EBADMSG;
	/* The kernel sends them sorted; do not depend on it, but refuse
	 * overlaps: an address in two ranges means the list is corrupt. */
	if (n > 1)
		qsort(ranges, n, sizeof(*ranges), range_cmp);
	for (size_t i = 1; i < n; i++)
		if (ranges[i].start <= ranges[i - 1].end)
			return -EBADMSG;
	return 0;
}

_public_ void iovk_vfio_iommu_info_clear(struct iovk_vfio_iommu_info *info)
{
	if (!info)
		return;
	free(info->iova_ranges);
	*info = (struct iovk_vfio_iommu_info){};
}

static int parse_iova_ranges(const uint8_t *buf, const struct iovk_vfio_cap *c, struct iovk_vfio_iommu_info *info)
{
	struct vfio_iommu_type1_info_cap_iova_range h;
	struct iovk_iova_range *ranges;
	size_t need;

	if (c->avail < sizeof(h))
		return -EBADMSG;
	memcpy(&h, buf + c->offset, sizeof(h));
	if (h.nr_iovas > IOVK_VFIO_IOVA_RANGES_MAX)
		return -E2BIG;
	need = sizeof(h) + (size_t)h.nr_iovas * sizeof(struct vfio_iova_range);
	if (c->avail < need)
		return -EBADMSG;
	if (info->has_iova_ranges)
		return -EBADMSG; /* two IOVA-range capabilities: which one is true? */
	ranges = calloc(h.nr_iovas ? h.nr_iovas : 1, sizeof(*ranges));
	if (!ranges)
		return -ENOMEM;
	for (uint32_t i = 0; i < h.nr_iovas; i++) {
		struct vfio_iova_range v;

		memcpy(&v, buf + c->offset + sizeof(h) + i * sizeof(v), sizeof(v));
		if (v.start > v.end) {
			free(ranges);
			return -EBADMSG;
		}
		ranges[i] = (struct iovk_iova_range){ .start = v.start, .end = v.end };
	}
	if (vfio_iova_ranges_sort_check(ranges, h.nr_iovas) < 0) {
		free(ranges);
		return -EBADMSG;
	}
	info->has_iova_ranges = true;
	info->iova_ranges = ranges;
	info->n_iova_ranges = h.nr_iovas;
	return 0;
}

_public_ int iovk_vfio_parse_iommu_info(const void *buf, size_t size, struct iovk_vfio_iommu_info *ret_info)
{
	struct vfio_iommu_type1_info t;
	struct iovk_vfio_cap caps[IOVK_VFIO_CAP_MAX];
	struct iovk_vfio_iommu_info info = {};
	size_t usable, n = 0;
	int ret;

	ret = check_info_size(buf, size, sizeof(t), &usable);
	if (ret < 0)
		return ret;
	memcpy(&t, buf, sizeof(t));
	if (t.flags & VFIO_IOMMU_INFO_PGSIZES)
		info.pgsizes = t.iova_pgsizes;
	if ((t.flags & VFIO_IOMMU_INFO_CAPS) && t.cap_offset) {
		ret = iovk_vfio_cap_chain_walk(buf, usable, sizeof(t), t.cap_offset, caps, ELEMENTSOF(caps), &n);
		if (ret < 0)
			return ret;
	}
	for (size_t i = 0; i < n; i++) {
		switch (caps[i].id) {
		case VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE:
			ret = parse_iova_ranges(buf, &caps[i], &info);
			if (ret < 0) {
				iovk_vfio_iommu_info_clear(&info);
				return ret;
			}
			break;
		case VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL: {
			struct vfio_iommu_type1_info_dma_avail d;

			if (caps[i].avail < sizeof(d)) {
				iovk_vfio_iommu_info_clear(&info);
				return -EBADMSG;
			}
			memcpy(&d, (const uint8_t *)buf + caps[i].offset, sizeof(d));
			info.has_dma_avail = true;
			info.dma_avail = d.avail;
			break;
		}
		default:
			break;
		}
	}
	if (!info.has_dma_avail)
		info.dma_avail = IOVK_VFIO_DEFAULT_DMA_AVAIL;
	*ret_info = info;
	return 0;
}

int vfio_ioctl(int fd, unsigned long request, void *arg)
{
	int r;

	do
		r = ioctl(fd, request, arg);
	while (r < 0 && errno == EINTR);
	return r < 0 ? negative_errno() : r;
}

int vfio_info_ioctl(int fd, unsigned long request, size_t min_size, void (*fill_fn)(void *buf, void *userdata),
		    void *userdata, void **ret_buf, size_t *ret_size)
{
	size_t size = min_size;

	/* Three rounds are plenty: the kernel states the size it needs in
	 * the first answer; only a change between two calls needs another. */
	for (int round = 0; round < 3; round++) {
		_cleanup_free_ uint8_t *buf = calloc(1, size);
		uint32_t argsz = (uint32_t)size;
		int r;

		if (!buf)
			return -ENOMEM;
		memcpy(buf, &argsz, sizeof(argsz));
		if (fill_fn)
			fill_fn(buf, userdata);
		r = vfio_ioctl(fd, request, buf);
		if (r < 0)
			return r;
		memcpy(&argsz, buf, sizeof(argsz));
		if (argsz <= size) {
			*ret_buf = TAKE_PTR(buf);
			*ret_size = size;
			return 0;
		}
		if (argsz > IOVK_VFIO_INFO_MAX)
			return -E2BIG;
		size = argsz;
	}
	return -EBADMSG;
}

static const char *const region_names[] = { "BAR0", "BAR1", "BAR2", "BAR3", "BAR4", "BAR5", "ROM", "CONFIG", "VGA" };
static const char *const irq_names[] = { "INTX", "MSI", "MSIX", "ERR", "REQ" };

_public_ const char *iovk_vfio_pci_region_name(uint32_t index)
{
	return index < ELEMENTSOF(region_names) ? region_names[index] : NULL;
}

_public_ const char *iovk_vfio_pci_irq_name(uint32_t index)
{
	return index < ELEMENTSOF(irq_names) ? irq_names[index] : NULL;
}
