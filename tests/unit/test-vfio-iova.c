// SPDX-License-Identifier: GPL-2.0-or-later
/* IOVA allocator (property test against a reference model) and the shadow list of mappings. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <iovkit/vfio.h>

/* The valid ranges measured in the test guest (tests/vm, /work/shared/testbed.md). */
static const struct iovk_iova_range guest_ranges[2] = {
	{ 0xfef00000, 0x7fffffffff },
	{ 0, 0xfedfffff },
};

Test(iova, rejects_bad_ranges)
{
	struct iovk_iova_allocator *a = NULL;
	const struct iovk_iova_range overlap[2] = { { 0, 0x1fff }, { 0x1000, 0x2fff } };
	const struct iovk_iova_range inverted[1] = { { 0x2000, 0x1000 } };

	cr_expect_eq(iovk_iova_allocator_new(overlap, 2, &a), -EINVAL);
	cr_expect_eq(iovk_iova_allocator_new(inverted, 1, &a), -EINVAL);
	cr_expect_eq(iovk_iova_allocator_new(overlap, 0, &a), -EINVAL);
	cr_expect_null(a);
	cr_expect_null(iovk_iova_allocator_free(NULL));
}

Test(iova, allocates_inside_ranges_and_skips_the_hole)
{
	struct iovk_iova_allocator *a;
	uint64_t iova;

	cr_assert_eq(iovk_iova_allocator_new(guest_ranges, 2, &a), 0);
	/* the range starts at 0, the first allocation at the second page */
	cr_assert_eq(iovk_iova_alloc(a, 0x1000, 0x1000, &iova), 0);
	cr_expect_eq(iova, 0x1000);
	/* 4 GiB does not fit below the MSI hole: it goes above it */
	cr_assert_eq(iovk_iova_alloc(a, 1ull << 32, 1ull << 30, &iova), 0);
	cr_expect_eq(iova, 1ull << 32);
	/* a 2 MiB-aligned 2 MiB block lands at 2 MiB, not at 4 KiB */
	cr_assert_eq(iovk_iova_alloc(a, 2 << 20, 2 << 20, &iova), 0);
	cr_expect_eq(iova, 2 << 20);
	cr_expect_eq(iovk_iova_allocator_get_n_allocations(a), 3);
	iovk_iova_allocator_free(a);
}

Test(iova, errors)
{
	struct iovk_iova_allocator *a;
	const struct iovk_iova_range small[1] = { { 0x10000, 0x1ffff } };
	uint64_t iova;

	cr_assert_eq(iovk_iova_allocator_new(small, 1, &a), 0);
	cr_expect_eq(iovk_iova_alloc(a, 0, 0, &iova), -EINVAL);
	cr_expect_eq(iovk_iova_alloc(a, 0x1000, 3, &iova), -EINVAL);
	/* can never fit */
	cr_expect_eq(iovk_iova_alloc(a, 0x20000, 0, &iova), -EOVERFLOW);
	cr_expect_eq(iovk_iova_alloc(a, UINT64_MAX, 0, &iova), -EOVERFLOW);
	/* fills up, then exhausted */
	for (int i = 0; i < 16; i++)
		cr_assert_eq(iovk_iova_alloc(a, 0x1000, 0x1000, &iova), 0);
	cr_expect_eq(iovk_iova_alloc(a, 0x1000, 0x1000, &iova), -ENOSPC);
	cr_expect_eq(iovk_iova_allocator_get_free(a), 0);
	/* frees must name an allocation exactly */
	cr_expect_eq(iovk_iova_free(a, 0x10000, 0x2000), -ENOENT);
	cr_expect_eq(iovk_iova_free(a, 0x10800, 0x1000), -ENOENT);
	cr_expect_eq(iovk_iova_free(a, 0x10000, 0x1000), 0);
	cr_expect_eq(iovk_iova_free(a, 0x10000, 0x1000), -ENOENT);
	/* reserve: outside, busy, wrapping, then fine */
	cr_expect_eq(iovk_iova_reserve(a, 0x20000, 0x1000), -ERANGE);
	cr_expect_eq(iovk_iova_reserve(a, 0xf000, 0x2000), -ERANGE);
	cr_expect_eq(iovk_iova_reserve(a, 0x11000, 0x1000), -EBUSY);
	cr_expect_eq(iovk_iova_reserve(a, UINT64_MAX, 2), -EOVERFLOW);
	cr_expect_eq(iovk_iova_reserve(a, 0x10000, 0x1000), 0);
	cr_expect_eq(iovk_iova_reserve(a, 0x10000, 0x1000), -EBUSY);
	iovk_iova_allocator_free(a);
}

Test(iova, top_of_the_64bit_space)
{
	struct iovk_iova_allocator *a;
	const struct iovk_iova_range all[1] = { { 0, UINT64_MAX } };
	uint64_t iova;

	cr_assert_eq(iovk_iova_allocator_new(all, 1, &a), 0);
	cr_expect_eq(iovk_iova_allocator_get_free(a), UINT64_MAX);
	cr_assert_eq(iovk_iova_reserve(a, UINT64_MAX - 0xfff, 0x1000), 0);
	/* the 2^63-aligned blocks are 0 (never handed out) and 2^63, which
	 * holds the reserved top page */
	cr_expect_eq(iovk_iova_alloc(a, 1ull << 63, 1ull << 63, &iova), -ENOSPC);
	cr_assert_eq(iovk_iova_free(a, UINT64_MAX - 0xfff, 0x1000), 0);
	cr_assert_eq(iovk_iova_alloc(a, 1ull << 63, 1ull << 63, &iova), 0);
	cr_expect_eq(iova, 1ull << 63);
	/* all of the low half but page 0, which only a reserve takes */
	cr_assert_eq(iovk_iova_alloc(a, (1ull << 63) - 0x1000, 0, &iova), 0);
	cr_expect_eq(iova, 0x1000);
	cr_expect_eq(iovk_iova_allocator_get_free(a), 0x1000);
	cr_expect_eq(iovk_iova_alloc(a, 1, 0, &iova), -ENOSPC);
	cr_assert_eq(iovk_iova_reserve(a, 0, 0x1000), 0);
	cr_expect_eq(iovk_iova_allocator_get_free(a), 0);
	iovk_iova_allocator_free(a);
}

/*
 * IOVA 0 is never handed out (lib/vfio/iova.c: dma-iommu never does, QEMU
 * takes a virtqueue at 0 for "not set"), whatever the size and alignment,
 * and also not after page 0 was reserved and freed again.
 */
Test(iova, never_hands_out_page_zero)
{
	struct iovk_iova_allocator *a;
	const struct iovk_iova_range low[1] = { { 0, 0xffff } };
	const struct iovk_iova_range page0[1] = { { 0, 0xfff } };
	uint64_t iova;

	cr_expect_eq(IOVK_IOVA_ALLOC_MIN, 0x1000);
	/* a range that is only page 0 can never hold an allocation */
	cr_assert_eq(iovk_iova_allocator_new(page0, 1, &a), 0);
	cr_expect_eq(iovk_iova_alloc(a, 1, 0, &iova), -EOVERFLOW);
	cr_expect_eq(iovk_iova_reserve(a, 0, 0x1000), 0);
	iovk_iova_allocator_free(a);

	cr_assert_eq(iovk_iova_allocator_new(low, 1, &a), 0);
	/* the whole range does not fit above page 0 */
	cr_expect_eq(iovk_iova_alloc(a, 0x10000, 0, &iova), -EOVERFLOW);
	cr_assert_eq(iovk_iova_alloc(a, 1, 0, &iova), 0);
	cr_expect_eq(iova, 0x1000);
	cr_assert_eq(iovk_iova_free(a, iova, 1), 0);
	/* an alignment of 64 KiB (rounds 0x1000 up past the range) */
	cr_expect_eq(iovk_iova_alloc(a, 0x1000, 0x10000, &iova), -ENOSPC);
	cr_assert_eq(iovk_iova_alloc(a, 0xf000, 0x1000, &iova), 0);
	cr_expect_eq(iova, 0x1000);
	cr_expect_eq(iovk_iova_alloc(a, 1, 0, &iova), -ENOSPC);
	/* page 0 is valid IOVA space: a fixed mapping there is reserved */
	cr_expect_eq(iovk_iova_allocator_get_free(a), 0x1000);
	cr_assert_eq(iovk_iova_reserve(a, 0, 0x1000), 0);
	cr_expect_eq(iovk_iova_reserve(a, 0, 0x1000), -EBUSY);
	cr_assert_eq(iovk_iova_free(a, 0, 0x1000), 0);
	cr_assert_eq(iovk_iova_free(a, 0x1000, 0xf000), 0);
	/* freed and merged with its neighbour, page 0 is still not handed out */
	cr_assert_eq(iovk_iova_alloc(a, 0x1000, 0, &iova), 0);
	cr_expect_eq(iova, 0x1000);
	iovk_iova_allocator_free(a);
}

Test(iova, adjacent_ranges_merge)
{
	struct iovk_iova_allocator *a;
	const struct iovk_iova_range adj[2] = { { 0x2000, 0x2fff }, { 0x1000, 0x1fff } };
	uint64_t iova;

	cr_assert_eq(iovk_iova_allocator_new(adj, 2, &a), 0);
	cr_assert_eq(iovk_iova_alloc(a, 0x2000, 0, &iova), 0);
	cr_expect_eq(iova, 0x1000);
	iovk_iova_allocator_free(a);
}

/* ---- property test --------------------------------------------------------- */

struct live {
	uint64_t iova, size;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
	/* xorshift64*: deterministic, so a failure replays */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static bool inside_one_range(const struct iovk_iova_range *r, size_t n, uint64_t iova, uint64_t size)
{
	uint64_t last = iova + (size - 1);

	if (last < iova)
		return false;
	for (size_t i = 0; i < n; i++)
		if (iova >= r[i].start && last <= r[i].end)
			return true;
	return false;
}

/*
 * Random allocations and frees over a small space with holes: every
 * allocation lies inside one valid range, is aligned, overlaps no live
 * allocation, and an allocation fails only when no aligned gap of that size
 * exists in the model (exhaustion is an error, never a bogus address).
 */
static void property_run(const struct iovk_iova_range *ranges, size_t n_ranges, uint64_t unit, int rounds)
{
	struct iovk_iova_allocator *a;
	struct live *live = calloc(4096, sizeof(*live));
	size_t n_live = 0;
	unsigned enospc = 0, ok = 0;

	cr_assert_not_null(live);
	cr_assert_eq(iovk_iova_allocator_new(ranges, n_ranges, &a), 0);
	for (int round = 0; round < rounds; round++) {
		if (n_live > 0 && (rnd() % 3 == 0 || n_live == 4096)) {
			size_t k = rnd() % n_live;

			cr_assert_eq(iovk_iova_free(a, live[k].iova, live[k].size), 0);
			live[k] = live[--n_live];
			continue;
		}
		uint64_t size = unit * (1 + rnd() % 8), align = unit << (rnd() % 3), iova = 0;
		int r = iovk_iova_alloc(a, size, align, &iova);

		if (r == 0) {
			ok++;
			cr_assert_geq(iova, IOVK_IOVA_ALLOC_MIN, "round %d: 0x%llx is in page 0", round,
				      (unsigned long long)iova);
			cr_assert(inside_one_range(ranges, n_ranges, iova, size),
				  "round %d: 0x%llx+0x%llx outside the valid ranges", round, (unsigned long long)iova,
				  (unsigned long long)size);
			cr_assert_eq(iova % align, 0, "round %d: 0x%llx not aligned to 0x%llx", round,
				     (unsigned long long)iova, (unsigned long long)align);
			for (size_t k = 0; k < n_live; k++)
				cr_assert(iova + size <= live[k].iova || live[k].iova + live[k].size <= iova,
					  "round %d: 0x%llx+0x%llx overlaps live 0x%llx+0x%llx", round,
					  (unsigned long long)iova, (unsigned long long)size,
					  (unsigned long long)live[k].iova, (unsigned long long)live[k].size);
			live[n_live++] = (struct live){ iova, size };
			continue;
		}
		cr_assert_eq(r, -ENOSPC, "round %d: alloc failed with %d", round, r);
		enospc++;
		/* Exhaustion must be real: no aligned free slot of that size
		 * (page 0 is never one). */
		for (size_t i = 0; i < n_ranges; i++) {
			uint64_t lo = ranges[i].start < IOVK_IOVA_ALLOC_MIN ? IOVK_IOVA_ALLOC_MIN : ranges[i].start;

			for (uint64_t s = (lo + align - 1) / align * align;
			     s <= ranges[i].end && ranges[i].end - s >= size - 1; s += align) {
				bool free_slot = true;

				for (size_t k = 0; k < n_live && free_slot; k++)
					if (!(s + size <= live[k].iova || live[k].iova + live[k].size <= s))
						free_slot = false;
				cr_assert(!free_slot, "round %d: -ENOSPC although 0x%llx+0x%llx is free", round,
					  (unsigned long long)s, (unsigned long long)size);
			}
		}
	}
	cr_expect_gt(ok, 100);
	cr_expect_gt(enospc, 0, "the run never exhausted the space: make it smaller");
	cr_expect_eq(iovk_iova_allocator_get_n_allocations(a), n_live);
	/* freeing everything gives back the whole space */
	for (; n_live; n_live--)
		cr_assert_eq(iovk_iova_free(a, live[n_live - 1].iova, live[n_live - 1].size), 0);
	uint64_t total = 0;
	for (size_t i = 0; i < n_ranges; i++)
		total += ranges[i].end - ranges[i].start + 1;
	cr_expect_eq(iovk_iova_allocator_get_free(a), total);
	iovk_iova_allocator_free(a);
	free(live);
}

Test(iova, property_random_alloc_free)
{
	/* 3 ranges with holes, 4 KiB units: 40 + 24 + 64 pages */
	const struct iovk_iova_range ranges[3] = {
		{ 0x100000, 0x100000 + 40 * 0x1000 - 1 },
		{ 0x200000, 0x200000 + 24 * 0x1000 - 1 },
		{ 0x300000, 0x300000 + 64 * 0x1000 - 1 },
	};

	rng_state = 0x9e3779b97f4a7c15ull;
	property_run(ranges, 3, 0x1000, 20000);
}

Test(iova, property_range_from_zero)
{
	/* the testbed's first range starts at IOVA 0: never handed out */
	const struct iovk_iova_range ranges[2] = {
		{ 0, 32 * 0x1000 - 1 },
		{ 0x40000, 0x40000 + 40 * 0x1000 - 1 },
	};

	rng_state = 0x5eed0ull;
	property_run(ranges, 2, 0x1000, 20000);
}

Test(iova, property_unaligned_range_edges)
{
	/* ranges that start and end off the alignment the allocations ask for */
	const struct iovk_iova_range ranges[2] = {
		{ 0x1800, 0x1800 + 30 * 0x1000 - 1 },
		{ 0x40800, 0x40800 + 50 * 0x1000 - 1 },
	};

	rng_state = 0x1234567ull;
	property_run(ranges, 2, 0x1000, 20000);
}

/* ---- mapping list ---------------------------------------------------------- */

Test(mappings, add_lookup_remove)
{
	struct iovk_vfio_mapping_list *l;
	const struct iovk_vfio_mapping *v;
	/* The mapped buffer sits a page into a larger one, so the test's
	 * pointer just below it (host - 1) is still inside an object: forming
	 * a pointer before an array is undefined, and gcc -O2 says so
	 * (-Warray-bounds). */
	static uint8_t buf[0x1000 + 0x3000];
	uint8_t *host = buf + 0x1000;
	uint64_t base = (uint64_t)(uintptr_t)host, iova;
	size_t n;

	cr_assert_eq(iovk_vfio_mapping_list_new(&l), 0);
	cr_assert_eq(iovk_vfio_mapping_list_add(l, &(struct iovk_vfio_mapping){ base, 0x10000, 0x2000, 3 }), 0);
	/* the same host buffer mapped a second time, lower IOVA */
	cr_assert_eq(iovk_vfio_mapping_list_add(l, &(struct iovk_vfio_mapping){ base, 0x4000, 0x1000, 1 }), 0);
	cr_assert_eq(iovk_vfio_mapping_list_add(l, &(struct iovk_vfio_mapping){ base + 0x2000, 0x20000, 0x1000, 3 }), 0);
	v = iovk_vfio_mapping_list_get(l, &n);
	cr_assert_eq(n, 3);
	cr_expect_eq(v[0].iova, 0x4000);
	cr_expect_eq(v[1].iova, 0x10000);
	cr_expect_eq(v[2].iova, 0x20000);

	/* lookup by host address: the lowest IOVA wins where both cover it */
	cr_assert_eq(iovk_vfio_mapping_list_to_iova(l, host + 0x10, &iova), 0);
	cr_expect_eq(iova, 0x4010);
	cr_assert_eq(iovk_vfio_mapping_list_to_iova(l, host + 0x1800, &iova), 0);
	cr_expect_eq(iova, 0x11800);
	cr_assert_eq(iovk_vfio_mapping_list_to_iova(l, host + 0x2fff, &iova), 0);
	cr_expect_eq(iova, 0x20fff);
	cr_expect_eq(iovk_vfio_mapping_list_to_iova(l, host + 0x3000, &iova), -ENOENT);
	cr_expect_eq(iovk_vfio_mapping_list_to_iova(l, host - 1, &iova), -ENOENT);

	cr_expect_not_null(iovk_vfio_mapping_list_find_iova(l, 0x11fff));
	cr_expect_null(iovk_vfio_mapping_list_find_iova(l, 0x12000));
	cr_expect_null(iovk_vfio_mapping_list_find_iova(l, 0x3fff));

	/* overlapping IOVAs are refused, touching ones are fine */
	cr_expect_eq(iovk_vfio_mapping_list_add(l, &(struct iovk_vfio_mapping){ base, 0x11000, 0x1000, 3 }), -EEXIST);
	cr_expect_eq(iovk_vfio_mapping_list_add(l, &(struct iovk_vfio_mapping){ base, 0xf000, 0x2000, 3 }), -EEXIST);
	cr_expect_eq(iovk_vfio_mapping_list_add(l, &(struct iovk_vfio_mapping){ base, 0x0, 0x100000, 3 }), -EEXIST);
	cr_expect_eq(iovk_vfio_mapping_list_add(l, &(struct iovk_vfio_mapping){ base, 0x12000, 0x1000, 3 }), 0);
	cr_expect_eq(iovk_vfio_mapping_list_add(l, &(struct iovk_vfio_mapping){ base, 0x5000, 0, 3 }), -EINVAL);
	cr_expect_eq(iovk_vfio_mapping_list_add(l, &(struct iovk_vfio_mapping){ base, UINT64_MAX, 2, 3 }), -EOVERFLOW);

	/* removal is exact */
	cr_expect_eq(iovk_vfio_mapping_list_remove(l, 0x10000, 0x1000), -ENOENT);
	cr_expect_eq(iovk_vfio_mapping_list_remove(l, 0x10800, 0x2000), -ENOENT);
	cr_expect_eq(iovk_vfio_mapping_list_remove(l, 0x10000, 0x2000), 0);
	cr_expect_eq(iovk_vfio_mapping_list_remove(l, 0x10000, 0x2000), -ENOENT);
	cr_assert_eq(iovk_vfio_mapping_list_to_iova(l, host + 0x1800, &iova), -ENOENT);
	v = iovk_vfio_mapping_list_get(l, &n);
	cr_expect_eq(n, 3);
	iovk_vfio_mapping_list_free(l);
	cr_expect_null(iovk_vfio_mapping_list_free(NULL));
}

Test(mappings, many_in_random_order_stay_sorted)
{
	struct iovk_vfio_mapping_list *l;
	const struct iovk_vfio_mapping *v;
	size_t n, count = 0;

	rng_state = 42;
	cr_assert_eq(iovk_vfio_mapping_list_new(&l), 0);
	for (int i = 0; i < 3000; i++) {
		uint64_t page = rnd() % 2048;
		int r = iovk_vfio_mapping_list_add(l, &(struct iovk_vfio_mapping){ 0x7f0000000000ull + page * 0x1000,
										   page * 0x1000, 0x1000, 3 });

		cr_assert(r == 0 || r == -EEXIST);
		count += r == 0;
	}
	v = iovk_vfio_mapping_list_get(l, &n);
	cr_assert_eq(n, count);
	for (size_t i = 1; i < n; i++)
		cr_assert_gt(v[i].iova, v[i - 1].iova);
	while (n) {
		cr_assert_eq(iovk_vfio_mapping_list_remove(l, v[n / 2].iova, v[n / 2].size), 0);
		v = iovk_vfio_mapping_list_get(l, &n);
	}
	iovk_vfio_mapping_list_free(l);
}

Test(mappings, copy_is_independent)
{
	struct iovk_vfio_mapping_list *l, *c, *e;
	const struct iovk_vfio_mapping *v, *w;
	size_t n, m;

	cr_assert_eq(iovk_vfio_mapping_list_new(&l), 0);
	/* empty copies empty */
	cr_assert_eq(iovk_vfio_mapping_list_copy(l, &e), 0);
	iovk_vfio_mapping_list_get(e, &n);
	cr_expect_eq(n, 0);
	for (uint64_t i = 0; i < 40; i++)
		cr_assert_eq(iovk_vfio_mapping_list_add(l, &(struct iovk_vfio_mapping){ 0x7f0000000000ull + i * 0x3000,
										   (40 - i) * 0x10000, 0x2000,
										   i % 2 ? 1 : 3 }),
			     0);
	cr_assert_eq(iovk_vfio_mapping_list_copy(l, &c), 0);
	v = iovk_vfio_mapping_list_get(l, &n);
	w = iovk_vfio_mapping_list_get(c, &m);
	cr_assert_eq(m, n);
	cr_assert_eq(m, 40);
	for (size_t i = 0; i < n; i++) {
		cr_expect_eq(w[i].vaddr, v[i].vaddr);
		cr_expect_eq(w[i].iova, v[i].iova);
		cr_expect_eq(w[i].size, v[i].size);
		cr_expect_eq(w[i].flags, v[i].flags);
		if (i)
			cr_expect_gt(w[i].iova, w[i - 1].iova, "the copy stays sorted");
	}
	/* changing one list leaves the other alone */
	cr_assert_eq(iovk_vfio_mapping_list_remove(l, 0x10000, 0x2000), 0);
	cr_assert_eq(iovk_vfio_mapping_list_add(c, &(struct iovk_vfio_mapping){ 0x1000, 0x1000000, 0x1000, 3 }), 0);
	iovk_vfio_mapping_list_get(l, &n);
	iovk_vfio_mapping_list_get(c, &m);
	cr_expect_eq(n, 39);
	cr_expect_eq(m, 41);
	cr_expect_not_null(iovk_vfio_mapping_list_find_iova(c, 0x10000));
	cr_expect_null(iovk_vfio_mapping_list_find_iova(l, 0x1000000));
	/* the copy of the empty list grows like any list */
	cr_assert_eq(iovk_vfio_mapping_list_add(e, &(struct iovk_vfio_mapping){ 0x1000, 0x1000, 0x1000, 3 }), 0);
	iovk_vfio_mapping_list_free(e);
	iovk_vfio_mapping_list_free(c);
	iovk_vfio_mapping_list_free(l);
}
