// SPDX-License-Identifier: GPL-2.0-or-later
/* VFIO info capability chains on crafted buffers: valid, truncated, cyclic, oversized. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/vfio.h>

#include <iovkit/vfio.h>

/* A region info buffer: the fixed struct, then capabilities laid out by the test. */
struct crafted {
	uint8_t buf[1024];
	size_t size;
};

static struct vfio_region_info *region_hdr(struct crafted *c)
{
	return (struct vfio_region_info *)c->buf;
}

static void crafted_region(struct crafted *c, size_t size, uint64_t region_size)
{
	memset(c, 0, sizeof(*c));
	c->size = size;
	*region_hdr(c) = (struct vfio_region_info){
		.argsz = (uint32_t)size,
		.flags = VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE | VFIO_REGION_INFO_FLAG_MMAP |
			 VFIO_REGION_INFO_FLAG_CAPS,
		.index = 1,
		.cap_offset = 0,
		.size = region_size,
		.offset = 0x10000000000ull,
	};
}

static void put_cap(struct crafted *c, uint32_t off, uint16_t id, uint32_t next)
{
	struct vfio_info_cap_header h = { .id = id, .version = 1, .next = next };

	memcpy(c->buf + off, &h, sizeof(h));
}

static void put_sparse(struct crafted *c, uint32_t off, uint32_t next, uint32_t nr,
		       const struct vfio_region_sparse_mmap_area *areas)
{
	struct vfio_region_info_cap_sparse_mmap s = { .header = { VFIO_REGION_INFO_CAP_SPARSE_MMAP, 1, next },
						       .nr_areas = nr };

	memcpy(c->buf + off, &s, sizeof(s));
	if (areas)
		memcpy(c->buf + off + sizeof(s), areas, nr * sizeof(*areas));
}

Test(vfio_caps, valid_region_with_sparse_and_msix)
{
	struct vfio_region_sparse_mmap_area areas[2] = { { 0, 0x1000 }, { 0x3000, 0x1000 } };
	struct crafted c;
	struct iovk_vfio_region r;
	uint32_t sparse_off = sizeof(struct vfio_region_info);
	uint32_t msix_off = sparse_off + sizeof(struct vfio_region_info_cap_sparse_mmap) + sizeof(areas);

	crafted_region(&c, msix_off + sizeof(struct vfio_info_cap_header), 0x4000);
	region_hdr(&c)->cap_offset = sparse_off;
	put_sparse(&c, sparse_off, msix_off, 2, areas);
	put_cap(&c, msix_off, VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, 0);

	cr_assert_eq(iovk_vfio_parse_region_info(c.buf, c.size, &r), 0);
	cr_assert_eq(r.index, 1);
	cr_assert_eq(r.size, 0x4000);
	cr_assert_eq(r.offset, 0x10000000000ull);
	cr_assert_eq(r.n_caps, 2);
	cr_assert_eq(r.cap_ids[0], VFIO_REGION_INFO_CAP_SPARSE_MMAP);
	cr_assert_eq(r.cap_ids[1], VFIO_REGION_INFO_CAP_MSIX_MAPPABLE);
	cr_assert(r.has_sparse_mmap);
	cr_assert_eq(r.n_sparse_areas, 2);
	cr_assert_eq(r.sparse_areas[1].offset, 0x3000);
	cr_assert_eq(r.sparse_areas[1].size, 0x1000);
	cr_assert(r.msix_mappable);
	cr_assert(!r.has_type);
}

Test(vfio_caps, no_chain_is_fine)
{
	struct crafted c;
	struct iovk_vfio_region r;

	crafted_region(&c, sizeof(struct vfio_region_info), 0x1000);
	region_hdr(&c)->flags &= ~VFIO_REGION_INFO_FLAG_CAPS;
	region_hdr(&c)->cap_offset = 0x40; /* ignored without the CAPS flag */
	cr_assert_eq(iovk_vfio_parse_region_info(c.buf, c.size, &r), 0);
	cr_assert_eq(r.n_caps, 0);
	cr_assert(!r.has_sparse_mmap);
}

Test(vfio_caps, walk_lists_unknown_ids)
{
	struct crafted c;
	struct iovk_vfio_cap caps[IOVK_VFIO_CAP_MAX];
	size_t n = 0;

	memset(&c, 0, sizeof(c));
	put_cap(&c, 32, 77, 48);
	put_cap(&c, 48, 78, 0);
	cr_assert_eq(iovk_vfio_cap_chain_walk(c.buf, 64, 32, 32, caps, IOVK_VFIO_CAP_MAX, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(caps[0].id, 77);
	cr_assert_eq(caps[1].id, 78);
	cr_assert_eq(caps[1].offset, 48);
	cr_assert_eq(caps[1].avail, 16);
}

Test(vfio_caps, truncated_chains)
{
	struct crafted c;
	struct iovk_vfio_cap caps[IOVK_VFIO_CAP_MAX];
	size_t n;

	memset(&c, 0, sizeof(c));
	/* header starts inside the buffer but does not fit */
	put_cap(&c, 32, 1, 0);
	cr_expect_eq(iovk_vfio_cap_chain_walk(c.buf, 36, 32, 32, caps, IOVK_VFIO_CAP_MAX, &n), -EBADMSG);
	/* next points past the end */
	put_cap(&c, 32, 1, 4096);
	cr_expect_eq(iovk_vfio_cap_chain_walk(c.buf, 64, 32, 32, caps, IOVK_VFIO_CAP_MAX, &n), -EBADMSG);
	/* next points just short of the end (header would straddle it) */
	put_cap(&c, 32, 1, 60);
	cr_expect_eq(iovk_vfio_cap_chain_walk(c.buf, 64, 32, 32, caps, IOVK_VFIO_CAP_MAX, &n), -EBADMSG);
	/* into the fixed struct */
	put_cap(&c, 32, 1, 8);
	cr_expect_eq(iovk_vfio_cap_chain_walk(c.buf, 64, 32, 32, caps, IOVK_VFIO_CAP_MAX, &n), -EBADMSG);
	/* misaligned */
	put_cap(&c, 32, 1, 42);
	cr_expect_eq(iovk_vfio_cap_chain_walk(c.buf, 64, 32, 32, caps, IOVK_VFIO_CAP_MAX, &n), -EBADMSG);
	/* 0xffffffff: no wrap-around in the bounds check */
	put_cap(&c, 32, 1, 0xfffffffcu);
	cr_expect_eq(iovk_vfio_cap_chain_walk(c.buf, 64, 32, 32, caps, IOVK_VFIO_CAP_MAX, &n), -EBADMSG);
}

Test(vfio_caps, truncated_region_payloads)
{
	struct vfio_region_sparse_mmap_area areas[4] = {};
	struct crafted c;
	struct iovk_vfio_region r;
	uint32_t off = sizeof(struct vfio_region_info);

	/* the sparse capability claims 4 areas, the buffer holds 1 */
	crafted_region(&c, off + sizeof(struct vfio_region_info_cap_sparse_mmap) + sizeof(areas[0]), 0x4000);
	region_hdr(&c)->cap_offset = off;
	put_sparse(&c, off, 0, 4, NULL);
	cr_expect_eq(iovk_vfio_parse_region_info(c.buf, c.size, &r), -EBADMSG);

	/* the kernel raised argsz: we hold only part of its answer */
	crafted_region(&c, off, 0x4000);
	region_hdr(&c)->argsz = off + 64;
	cr_expect_eq(iovk_vfio_parse_region_info(c.buf, c.size, &r), -EBADMSG);

	/* shorter than the fixed struct */
	crafted_region(&c, off, 0x4000);
	cr_expect_eq(iovk_vfio_parse_region_info(c.buf, off - 1, &r), -EBADMSG);
	region_hdr(&c)->argsz = 8;
	cr_expect_eq(iovk_vfio_parse_region_info(c.buf, off, &r), -EBADMSG);

	/* a capability type header cut short */
	crafted_region(&c, off + sizeof(struct vfio_info_cap_header) + 4, 0x4000);
	region_hdr(&c)->cap_offset = off;
	put_cap(&c, off, VFIO_REGION_INFO_CAP_TYPE, 0);
	cr_expect_eq(iovk_vfio_parse_region_info(c.buf, c.size, &r), -EBADMSG);
	(void)areas;
}

Test(vfio_caps, sparse_area_outside_region)
{
	struct vfio_region_sparse_mmap_area wrap[1] = { { 0x1000, UINT64_MAX } };
	struct vfio_region_sparse_mmap_area past[1] = { { 0x3000, 0x2000 } };
	struct crafted c;
	struct iovk_vfio_region r;
	uint32_t off = sizeof(struct vfio_region_info);
	size_t size = off + sizeof(struct vfio_region_info_cap_sparse_mmap) + sizeof(wrap);

	crafted_region(&c, size, 0x4000);
	region_hdr(&c)->cap_offset = off;
	put_sparse(&c, off, 0, 1, wrap);
	cr_expect_eq(iovk_vfio_parse_region_info(c.buf, c.size, &r), -EOVERFLOW);
	put_sparse(&c, off, 0, 1, past);
	cr_expect_eq(iovk_vfio_parse_region_info(c.buf, c.size, &r), -EOVERFLOW);
}

Test(vfio_caps, cyclic_chains)
{
	struct crafted c;
	struct iovk_vfio_cap caps[IOVK_VFIO_CAP_MAX];
	struct iovk_vfio_region r;
	size_t n;

	memset(&c, 0, sizeof(c));
	/* self loop */
	put_cap(&c, 32, 1, 32);
	cr_expect_eq(iovk_vfio_cap_chain_walk(c.buf, 64, 32, 32, caps, IOVK_VFIO_CAP_MAX, &n), -ELOOP);
	/* A -> B -> A */
	put_cap(&c, 32, 1, 48);
	put_cap(&c, 48, 2, 32);
	cr_expect_eq(iovk_vfio_cap_chain_walk(c.buf, 64, 32, 32, caps, IOVK_VFIO_CAP_MAX, &n), -ELOOP);
	/* through the region parser too */
	crafted_region(&c, 64, 0x1000);
	region_hdr(&c)->cap_offset = 32;
	put_cap(&c, 32, VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, 48);
	put_cap(&c, 48, VFIO_REGION_INFO_CAP_MSIX_MAPPABLE, 32);
	cr_expect_eq(iovk_vfio_parse_region_info(c.buf, c.size, &r), -ELOOP);
}

Test(vfio_caps, too_many_hops)
{
	static uint8_t buf[8192];
	struct iovk_vfio_cap caps[IOVK_VFIO_CAP_MAX];
	size_t n, hops = IOVK_VFIO_CAP_MAX + 1;

	/* A straight chain, no revisit, just longer than allowed. */
	memset(buf, 0, sizeof(buf));
	for (size_t i = 0; i < hops; i++) {
		struct vfio_info_cap_header h = { .id = 1, .version = 1,
						  .next = i + 1 < hops ? (uint32_t)(32 + (i + 1) * 8) : 0 };

		memcpy(buf + 32 + i * 8, &h, sizeof(h));
	}
	cr_expect_eq(iovk_vfio_cap_chain_walk(buf, sizeof(buf), 32, 32, caps, IOVK_VFIO_CAP_MAX, &n), -ELOOP);
	/* exactly the maximum is fine */
	((struct vfio_info_cap_header *)(buf + 32 + (IOVK_VFIO_CAP_MAX - 1) * 8))->next = 0;
	cr_expect_eq(iovk_vfio_cap_chain_walk(buf, sizeof(buf), 32, 32, caps, IOVK_VFIO_CAP_MAX, &n), 0);
	cr_expect_eq(n, IOVK_VFIO_CAP_MAX);
	/* a smaller caller array bounds the walk too */
	cr_expect_eq(iovk_vfio_cap_chain_walk(buf, sizeof(buf), 32, 32, caps, 4, &n), -ELOOP);
}

Test(vfio_caps, oversized)
{
	static uint8_t big[IOVK_VFIO_INFO_MAX + 8];
	struct iovk_vfio_cap caps[IOVK_VFIO_CAP_MAX];
	struct iovk_vfio_region r;
	struct crafted c;
	uint32_t off = sizeof(struct vfio_region_info);
	size_t n;

	cr_expect_eq(iovk_vfio_cap_chain_walk(big, sizeof(big), 32, 32, caps, IOVK_VFIO_CAP_MAX, &n), -E2BIG);
	cr_expect_eq(iovk_vfio_parse_region_info(big, sizeof(big), &r), -E2BIG);
	/* more sparse areas than we accept */
	crafted_region(&c, sizeof(c.buf), 0x100000);
	region_hdr(&c)->cap_offset = off;
	put_sparse(&c, off, 0, IOVK_VFIO_SPARSE_MAX + 1, NULL);
	cr_expect_eq(iovk_vfio_parse_region_info(c.buf, c.size, &r), -E2BIG);
	put_sparse(&c, off, 0, 0xffffffffu, NULL);
	cr_expect_eq(iovk_vfio_parse_region_info(c.buf, c.size, &r), -E2BIG);
}

/* ---- VFIO_IOMMU_GET_INFO ---- */

struct iommu_buf {
	uint8_t buf[512];
	size_t size;
};

static void iommu_info_with_ranges(struct iommu_buf *b, const struct vfio_iova_range *ranges, uint32_t nr,
				   bool with_avail, uint32_t avail)
{
	struct vfio_iommu_type1_info t = { .flags = VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS,
					   .iova_pgsizes = 0x40201000, .cap_offset = sizeof(t) };
	struct vfio_iommu_type1_info_cap_iova_range h = { .header = { VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE, 1, 0 },
							   .nr_iovas = nr };
	size_t off = sizeof(t), avail_off = off + sizeof(h) + nr * sizeof(*ranges);

	avail_off = (avail_off + 7) & ~(size_t)7;
	memset(b, 0, sizeof(*b));
	if (with_avail)
		h.header.next = (uint32_t)avail_off;
	memcpy(b->buf + off, &h, sizeof(h));
	memcpy(b->buf + off + sizeof(h), ranges, nr * sizeof(*ranges));
	b->size = avail_off;
	if (with_avail) {
		struct vfio_iommu_type1_info_dma_avail d = { .header = { VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL, 1, 0 },
							      .avail = avail };

		memcpy(b->buf + avail_off, &d, sizeof(d));
		b->size = avail_off + sizeof(d);
	}
	t.argsz = (uint32_t)b->size;
	memcpy(b->buf, &t, sizeof(t));
}

Test(vfio_iommu_info, as_measured_in_the_test_guest)
{
	/* testbed: 0-0xfedfffff and 0xfef00000-0x7fffffffff, dma_avail 65535 */
	const struct vfio_iova_range ranges[2] = { { 0xfef00000, 0x7fffffffff }, { 0, 0xfedfffff } };
	struct iovk_vfio_iommu_info info;
	struct iommu_buf b;

	iommu_info_with_ranges(&b, ranges, 2, true, 65535);
	cr_assert_eq(iovk_vfio_parse_iommu_info(b.buf, b.size, &info), 0);
	cr_assert_eq(info.pgsizes, 0x40201000);
	cr_assert(info.has_iova_ranges);
	cr_assert_eq(info.n_iova_ranges, 2);
	/* sorted, whatever order the producer used */
	cr_assert_eq(info.iova_ranges[0].start, 0);
	cr_assert_eq(info.iova_ranges[0].end, 0xfedfffff);
	cr_assert_eq(info.iova_ranges[1].start, 0xfef00000);
	cr_assert(info.has_dma_avail);
	cr_assert_eq(info.dma_avail, 65535);
	iovk_vfio_iommu_info_clear(&info);
	cr_assert_null(info.iova_ranges);
}

Test(vfio_iommu_info, dma_avail_assumed_when_absent)
{
	const struct vfio_iova_range ranges[1] = { { 0, 0xffffffff } };
	struct iovk_vfio_iommu_info info;
	struct iommu_buf b;

	iommu_info_with_ranges(&b, ranges, 1, false, 0);
	cr_assert_eq(iovk_vfio_parse_iommu_info(b.buf, b.size, &info), 0);
	cr_assert(!info.has_dma_avail);
	cr_assert_eq(info.dma_avail, IOVK_VFIO_DEFAULT_DMA_AVAIL);
	iovk_vfio_iommu_info_clear(&info);
}

Test(vfio_iommu_info, rejects_overlapping_inverted_truncated)
{
	const struct vfio_iova_range overlap[2] = { { 0, 0x2000 }, { 0x1000, 0x3000 } };
	const struct vfio_iova_range inverted[1] = { { 0x2000, 0x1000 } };
	const struct vfio_iova_range ok[2] = { { 0, 0xfff }, { 0x2000, 0x2fff } };
	struct iovk_vfio_iommu_info info = {};
	struct iommu_buf b;

	iommu_info_with_ranges(&b, overlap, 2, false, 0);
	cr_expect_eq(iovk_vfio_parse_iommu_info(b.buf, b.size, &info), -EBADMSG);
	iommu_info_with_ranges(&b, inverted, 1, false, 0);
	cr_expect_eq(iovk_vfio_parse_iommu_info(b.buf, b.size, &info), -EBADMSG);
	/* nr_iovas says 2, the buffer ends after the first */
	iommu_info_with_ranges(&b, ok, 2, false, 0);
	b.size -= sizeof(struct vfio_iova_range);
	((struct vfio_iommu_type1_info *)b.buf)->argsz = (uint32_t)b.size;
	cr_expect_eq(iovk_vfio_parse_iommu_info(b.buf, b.size, &info), -EBADMSG);
	/* absurd nr_iovas */
	iommu_info_with_ranges(&b, ok, 2, false, 0);
	((struct vfio_iommu_type1_info_cap_iova_range *)(b.buf + sizeof(struct vfio_iommu_type1_info)))->nr_iovas =
		0x10000000;
	cr_expect_eq(iovk_vfio_parse_iommu_info(b.buf, b.size, &info), -E2BIG);
	/* chain from the IOVA-range cap back to itself */
	iommu_info_with_ranges(&b, ok, 2, false, 0);
	((struct vfio_info_cap_header *)(b.buf + sizeof(struct vfio_iommu_type1_info)))->next =
		sizeof(struct vfio_iommu_type1_info);
	cr_expect_eq(iovk_vfio_parse_iommu_info(b.buf, b.size, &info), -ELOOP);
	cr_expect_null(info.iova_ranges);
}

Test(vfio_names, pci_indexes)
{
	cr_expect_str_eq(iovk_vfio_pci_region_name(VFIO_PCI_BAR4_REGION_INDEX), "BAR4");
	cr_expect_str_eq(iovk_vfio_pci_region_name(VFIO_PCI_CONFIG_REGION_INDEX), "CONFIG");
	cr_expect_null(iovk_vfio_pci_region_name(VFIO_PCI_NUM_REGIONS));
	cr_expect_str_eq(iovk_vfio_pci_irq_name(VFIO_PCI_MSIX_IRQ_INDEX), "MSIX");
	cr_expect_null(iovk_vfio_pci_irq_name(VFIO_PCI_NUM_IRQS));
}

Test(vfio_modes, names_round_trip)
{
	enum iovk_vfio_mode m;

	for (int i = 0; i < _IOVK_VFIO_MODE_MAX; i++) {
		cr_assert_eq(iovk_vfio_mode_from_string(iovk_vfio_mode_to_string((enum iovk_vfio_mode)i), &m), 0);
		cr_assert_eq((int)m, i);
	}
	cr_expect_eq(iovk_vfio_mode_from_string("type2", &m), -EINVAL);
	cr_expect_eq(iovk_vfio_mode_from_string(NULL, &m), -EINVAL);
	cr_expect_null(iovk_vfio_mode_to_string(_IOVK_VFIO_MODE_MAX));
}
