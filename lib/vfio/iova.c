/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * IOVA allocator over the kernel's valid IOVA ranges.
 *
 * Two sorted arrays of inclusive extents: the free space (starts as the
 * valid ranges) and the live allocations. Everything is O(n) in the number
 * of extents, which the kernel bounds anyway (dma_entry_limit, 65535 by
 * default); a tree would pay off only far above that. Ends are inclusive so
 * that a range ending at 2^64-1 needs no 65-bit arithmetic.
 *
 * iovk_iova_alloc() never hands out the first page, [0, IOVK_IOVA_ALLOC_MIN),
 * even where it is valid IOVA space. The kernel's own DMA API never does
 * either (dma-iommu's iova domain starts at pfn 1), so devices and their
 * emulators are tested with no DMA at 0, and some take address 0 for "not
 * set": QEMU ignores a virtqueue whose descriptor table is at 0
 * (virtio_queue_notify_vq() does nothing, no error anywhere). The page
 * stays in the free space: iovk_iova_reserve() takes it for a caller that
 * asks for IOVA 0 at a fixed address.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vfio-internal.h"

struct extent {
	uint64_t start, end; /* inclusive */
};

struct iovk_iova_allocator {
	struct extent *ranges; /* the valid ranges, for -ERANGE/-EOVERFLOW */
	size_t n_ranges;
	struct extent *free;
	size_t n_free, cap_free;
	struct extent *allocs;
	size_t n_allocs, cap_allocs;
};

static int extent_cmp(const void *a, const void *b)
{
	const struct extent *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static int reserve_slots(struct extent **v, size_t *cap, size_t want)
{
	struct extent *nv;
	size_t ncap;

	if (want <= *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	while (ncap < want)
		ncap *= 2;
	nv = realloc(*v, ncap * sizeof(**v));
	if (!nv)
		return -ENOMEM;
	*v = nv;
	*cap = ncap;
	return 0;
}

static void insert_at(struct extent *v, size_t *n, size_t i, struct extent e)
{
	memmove(v + i + 1, v + i, (*n - i) * sizeof(*v));
	v[i] = e;
	(*n)++;
}

static void remove_at(struct extent *v, size_t *n, size_t i)
{
	memmove(v + i, v + i + 1, (*n - i - 1) * sizeof(*v));
	(*n)--;
}

/* First index whose start is > key (upper bound). */
static size_t upper_bound(const struct extent *v, size_t n, uint64_t key)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid].start <= key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

_public_ int iovk_iova_allocator_new(const struct iovk_iova_range *ranges, size_t n,
				     struct iovk_iova_allocator **ret_allocator)
{
	struct iovk_iova_allocator *a;

	assert_return((ranges || n == 0) && ret_allocator, -EINVAL);
	if (!ranges || n == 0 || n > IOVK_VFIO_IOVA_RANGES_MAX)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->ranges = calloc(n, sizeof(*a->ranges));
	if (!a->ranges || reserve_slots(&a->free, &a->cap_free, n) < 0) {
		iovk_iova_allocator_free(a);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		if (ranges[i].start > ranges[i].end) {
			iovk_iova_allocator_free(a);
			return -EINVAL;
		}
		a->ranges[i] = (struct extent){ ranges[i].start, ranges[i].end };
	}
	qsort(a->ranges, n, sizeof(*a->ranges), extent_cmp);
	for (size_t i = 1; i < n; i++)
		if (a->ranges[i].start <= a->ranges[i - 1].end) {
			iovk_iova_allocator_free(a);
			return -EINVAL;
		}
	/* Adjacent ranges become one: an allocation may straddle the seam,
	 * every address of it is valid. */
	for (size_t i = 0; i < n; i++) {
		if (a->n_ranges && a->ranges[a->n_ranges - 1].end + 1 == a->ranges[i].start)
			a->ranges[a->n_ranges - 1].end = a->ranges[i].end;
		else
			a->ranges[a->n_ranges++] = a->ranges[i];
	}
	memcpy(a->free, a->ranges, a->n_ranges * sizeof(*a->free));
	a->n_free = a->n_ranges;
	*ret_allocator = a;
	return 0;
}

_public_ struct iovk_iova_allocator *iovk_iova_allocator_free(struct iovk_iova_allocator *a)
{
	if (!a)
		return NULL;
	free(a->ranges);
	free(a->free);
	free(a->allocs);
	free(a);
	return NULL;
}

static int record_alloc(struct iovk_iova_allocator *a, struct extent e)
{
	int r = reserve_slots(&a->allocs, &a->cap_allocs, a->n_allocs + 1);

	if (r < 0)
		return r;
	insert_at(a->allocs, &a->n_allocs, upper_bound(a->allocs, a->n_allocs, e.start), e);
	return 0;
}

/* Carves e out of free extent i, which contains it. */
static int carve(struct iovk_iova_allocator *a, size_t i, struct extent e)
{
	struct extent f = a->free[i];
	int r;

	/* Room for the worst case first, so a failure leaves everything as it was. */
	r = reserve_slots(&a->free, &a->cap_free, a->n_free + 1);
	if (r < 0)
		return r;
	r = record_alloc(a, e);
	if (r < 0)
		return r;
	if (f.start == e.start && f.end == e.end)
		remove_at(a->free, &a->n_free, i);
	else if (f.start == e.start)
		a->free[i].start = e.end + 1;
	else if (f.end == e.end)
		a->free[i].end = e.start - 1;
	else {
		a->free[i].end = e.start - 1;
		insert_at(a->free, &a->n_free, i + 1, (struct extent){ e.end + 1, f.end });
	}
	return 0;
}

/* Where iovk_iova_alloc() may start in e: past the first page. */
static uint64_t alloc_floor(struct extent e)
{
	return e.start < IOVK_IOVA_ALLOC_MIN ? IOVK_IOVA_ALLOC_MIN : e.start;
}

static bool fits_some_range(const struct iovk_iova_allocator *a, uint64_t size)
{
	for (size_t i = 0; i < a->n_ranges; i++) {
		uint64_t start = alloc_floor(a->ranges[i]);

		if (start <= a->ranges[i].end && a->ranges[i].end - start >= size - 1)
			return true;
	}
	return false;
}

_public_ int iovk_iova_alloc(struct iovk_iova_allocator *a, uint64_t size, uint64_t align, uint64_t *ret_iova)
{
	assert_return(a && ret_iova, -EINVAL);

	if (size == 0)
		return -EINVAL;
	if (align == 0)
		align = 1;
	if (align & (align - 1))
		return -EINVAL;
	if (!fits_some_range(a, size))
		return -EOVERFLOW;
	if (a->n_allocs >= IOVK_IOVA_MAX_ALLOCATIONS)
		return -ENOSPC;
	for (size_t i = 0; i < a->n_free; i++) {
		struct extent f = a->free[i];
		uint64_t floor = alloc_floor(f), start = (floor + (align - 1)) & ~(align - 1);

		/* Rounding up wrapped past 2^64, or left the extent. */
		if (start < floor || start > f.end)
			continue;
		if (f.end - start < size - 1)
			continue;
		int r = carve(a, i, (struct extent){ start, start + (size - 1) });
		if (r < 0)
			return r;
		*ret_iova = start;
		return 0;
	}
	return -ENOSPC;
}

_public_ int iovk_iova_reserve(struct iovk_iova_allocator *a, uint64_t iova, uint64_t size)
{
	struct extent e;
	size_t i;

	if (size == 0)
		return -EINVAL;
	if (iova + (size - 1) < iova)
		return -EOVERFLOW;
	e = (struct extent){ iova, iova + (size - 1) };
	/* Inside one valid range (adjacent ranges count as one)? */
	i = upper_bound(a->free, a->n_free, e.start);
	if (i > 0 && a->free[i - 1].end >= e.end) {
		if (a->n_allocs >= IOVK_IOVA_MAX_ALLOCATIONS)
			return -ENOSPC;
		return carve(a, i - 1, e);
	}
	/* Not free: already allocated (-EBUSY) or not valid at all (-ERANGE). */
	for (size_t k = 0; k < a->n_allocs; k++)
		if (a->allocs[k].start <= e.end && e.start <= a->allocs[k].end) {
			/* Only busy if the whole area is valid IOVA space. */
			uint64_t cur = e.start;

			for (size_t j = 0; j < a->n_ranges && cur <= e.end; j++) {
				if (a->ranges[j].end < cur)
					continue;
				if (a->ranges[j].start > cur)
					break;
				if (a->ranges[j].end >= e.end)
					return -EBUSY;
				cur = a->ranges[j].end + 1;
			}
			return -ERANGE;
		}
	return -ERANGE;
}

_public_ int iovk_iova_free(struct iovk_iova_allocator *a, uint64_t iova, uint64_t size)
{
	size_t i, k;
	struct extent e;
	int r;

	if (size == 0 || iova + (size - 1) < iova)
		return -ENOENT;
	e = (struct extent){ iova, iova + (size - 1) };
	k = upper_bound(a->allocs, a->n_allocs, iova);
	if (k == 0 || a->allocs[k - 1].start != e.start || a->allocs[k - 1].end != e.end)
		return -ENOENT;
	r = reserve_slots(&a->free, &a->cap_free, a->n_free + 1);
	if (r < 0)
		return r;
	remove_at(a->allocs, &a->n_allocs, k - 1);
	/* Give it back and merge with touching free neighbours. */
	i = upper_bound(a->free, a->n_free, e.start);
	insert_at(a->free, &a->n_free, i, e);
	if (i + 1 < a->n_free && a->free[i].end + 1 == a->free[i + 1].start) {
		a->free[i].end = a->free[i + 1].end;
		remove_at(a->free, &a->n_free, i + 1);
	}
	if (i > 0 && a->free[i - 1].end + 1 == a->free[i].start) {
		a->free[i - 1].end = a->free[i].end;
		remove_at(a->free, &a->n_free, i);
	}
	return 0;
}

_public_ size_t iovk_iova_allocator_get_n_allocations(const struct iovk_iova_allocator *a)
{
	return a->n_allocs;
}

_public_ uint64_t iovk_iova_allocator_get_free(const struct iovk_iova_allocator *a)
{
	uint64_t total = 0;

	for (size_t i = 0; i < a->n_free; i++) {
		uint64_t len = a->free[i].end - a->free[i].start; /* minus one */

		if (len == UINT64_MAX || total > UINT64_MAX - len - 1)
			return UINT64_MAX;
		total += len + 1;
	}
	return total;
}
