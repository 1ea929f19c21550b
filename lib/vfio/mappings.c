/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The shadow list of DMA mappings: what this process asked the kernel to
 * map, sorted by IOVA. The kernel cannot be asked for it (type1 has no
 * "list mappings" call), yet unmap-all, IOVA lookup by host address and
 * replay onto a new address space all need it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vfio-internal.h"

struct iovk_vfio_mapping_list {
	struct iovk_vfio_mapping *v;
	size_t n, cap;
};

_public_ int iovk_vfio_mapping_list_new(struct iovk_vfio_mapping_list **ret_list)
{
	struct iovk_vfio_mapping_list *l;

	assert_return(ret_list, -EINVAL);
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	*ret_list = l;
	return 0;
}

_public_ struct iovk_vfio_mapping_list *iovk_vfio_mapping_list_free(struct iovk_vfio_mapping_list *l)
{
	if (!l)
		return NULL;
	free(l->v);
	free(l);
	return NULL;
}

_public_ int iovk_vfio_mapping_list_copy(const struct iovk_vfio_mapping_list *l,
					 struct iovk_vfio_mapping_list **ret_copy)
{
	struct iovk_vfio_mapping_list *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	if (l->n) {
		c->v = malloc(l->n * sizeof(*c->v));
		if (!c->v) {
			free(c);
			return -ENOMEM;
		}
		memcpy(c->v, l->v, l->n * sizeof(*c->v));
		c->n = c->cap = l->n;
	}
	*ret_copy = c;
	return 0;
}

/* First index whose iova is > key. */
static size_t upper_bound(const struct iovk_vfio_mapping_list *l, uint64_t key)
{
	size_t lo = 0, hi = l->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (l->v[mid].iova <= key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static uint64_t last_iova(const struct iovk_vfio_mapping *m)
{
	return m->iova + (m->size - 1);
}

_public_ int iovk_vfio_mapping_list_add(struct iovk_vfio_mapping_list *l, const struct iovk_vfio_mapping *m)
{
	size_t i;

	if (m->size == 0)
		return -EINVAL;
	if (m->iova + (m->size - 1) < m->iova || m->vaddr + (m->size - 1) < m->vaddr)
		return -EOVERFLOW;
	i = upper_bound(l, m->iova);
	/* Sorted and disjoint: only the neighbours can overlap. */
	if (i > 0 && last_iova(&l->v[i - 1]) >= m->iova)
		return -EEXIST;
	if (i < l->n && l->v[i].iova <= last_iova(m))
		return -EEXIST;
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 16;
		struct iovk_vfio_mapping *nv = realloc(l->v, ncap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		l->v = nv;
		l->cap = ncap;
	}
	memmove(l->v + i + 1, l->v + i, (l->n - i) * sizeof(*l->v));
	l->v[i] = *m;
	l->n++;
	return 0;
}

_public_ int iovk_vfio_mapping_list_remove(struct iovk_vfio_mapping_list *l, uint64_t iova, uint64_t size)
{
	size_t i = upper_bound(l, iova);

	if (i == 0 || l->v[i - 1].iova != iova || l->v[i - 1].size != size)
		return -ENOENT;
	memmove(l->v + i - 1, l->v + i, (l->n - i) * sizeof(*l->v));
	l->n--;
	return 0;
}

_public_ int iovk_vfio_mapping_list_to_iova(const struct iovk_vfio_mapping_list *l, const void *vaddr,
					    uint64_t *ret_iova)
{
	uint64_t va = (uint64_t)(uintptr_t)vaddr;

	/* Host ranges are not sorted (one buffer may be mapped twice): scan,
	 * in IOVA order, so the lowest IOVA wins. */
	for (size_t i = 0; i < l->n; i++)
		if (va >= l->v[i].vaddr && va - l->v[i].vaddr < l->v[i].size) {
			*ret_iova = l->v[i].iova + (va - l->v[i].vaddr);
			return 0;
		}
	return -ENOENT;
}

_public_ const struct iovk_vfio_mapping *iovk_vfio_mapping_list_find_iova(const struct iovk_vfio_mapping_list *l,
									   uint64_t iova)
{
	size_t i = upper_bound(l, iova);

	if (i > 0 && iova <= last_iova(&l->v[i - 1]))
		return &l->v[i - 1];
	return NULL;
}

_public_ const struct iovk_vfio_mapping *iovk_vfio_mapping_list_get(const struct iovk_vfio_mapping_list *l,
								    size_t *ret_n)
{
	*ret_n = l->n;
	return l->v;
}
