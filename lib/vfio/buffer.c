/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * DMA buffers backed by a memfd: shared mappings a VMM can pass on (the fd),
 * optionally on huge pages, which need fewer IOMMU entries and pins.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "vfio-internal.h"

struct iovk_vfio_buffer {
	void *addr;
	size_t size;
	size_t page_size;
	int fd;
	bool hugetlb;
};

/* Hugepagesize from meminfo, in bytes; 0 when the kernel has no hugetlbfs. */
static size_t default_huge_page_size(struct iovk_ctx *ctx)
{
	_cleanup_free_ char *path = proc_path(ctx, "/meminfo");
	_cleanup_fclose_ FILE *f = NULL;
	char line[256];

	if (!path)
		return 0;
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long kb;

		if (sscanf(line, "Hugepagesize: %llu kB", &kb) == 1)
			return (size_t)kb * 1024;
	}
	return 0;
}

static int make_buffer(size_t size, size_t page, bool huge, struct iovk_vfio_buffer *b)
{
	_cleanup_close_ int fd = -1;
	size_t len;
	void *p;

	if (size > SIZE_MAX - (page - 1))
		return -EOVERFLOW;
	len = (size + page - 1) / page * page;
	fd = memfd_create(huge ? "iovkit-dma-huge" : "iovkit-dma", MFD_CLOEXEC | (huge ? MFD_HUGETLB : 0));
	if (fd < 0)
		return negative_errno();
	if (ftruncate(fd, (off_t)len) < 0)
		return negative_errno();
	/* A shared hugetlb mapping reserves its pages here, so "no free huge
	 * pages" is an mmap error and not a SIGBUS at first touch. */
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return negative_errno();
	*b = (struct iovk_vfio_buffer){ .addr = p, .size = len, .page_size = page, .fd = TAKE_FD(fd), .hugetlb = huge };
	return 0;
}

_public_ int iovk_vfio_buffer_new(struct iovk_ctx *ctx, size_t size, unsigned flags,
				  struct iovk_vfio_buffer **ret_buffer)
{
	struct iovk_vfio_buffer tmp = { .fd = -1 }, *b;
	long sys_page = sysconf(_SC_PAGESIZE);
	int r = -EOPNOTSUPP;

	assert_return(ctx && ret_buffer, -EINVAL);
	clear_error(ctx);
	if (size == 0)
		return set_error(ctx, -EINVAL, "a DMA buffer of 0 bytes was asked for");
	if (flags & (IOVK_VFIO_BUFFER_HUGETLB | IOVK_VFIO_BUFFER_REQUIRE_HUGETLB)) {
		size_t huge = default_huge_page_size(ctx);

		if (huge)
			r = make_buffer(size, huge, true, &tmp);
		if (r < 0 && (flags & IOVK_VFIO_BUFFER_REQUIRE_HUGETLB)) {
			if (!huge)
				return set_error(ctx, r, "a %zu-byte DMA buffer on huge pages: the kernel has no "
							 "hugetlbfs (no Hugepagesize in meminfo)", size);
			return set_error(ctx, r,
					 "a %zu-byte DMA buffer on %zu kB huge pages: %s (see HugePages_Free in "
					 "/proc/meminfo; reserve some with sysctl vm.nr_hugepages)",
					 size, huge / 1024, strerror(-r));
		}
		if (r < 0)
			log_debug(ctx, "no huge pages for a %zu-byte DMA buffer (%s), using %ld-byte pages", size,
				  strerror(-r), sys_page);
	}
	if (r < 0) {
		r = make_buffer(size, (size_t)sys_page, false, &tmp);
		if (r < 0)
			return set_error(ctx, r, "allocating a %zu-byte DMA buffer (memfd): %s", size, strerror(-r));
	}
	b = malloc(sizeof(*b));
	if (!b) {
		munmap(tmp.addr, tmp.size);
		close(tmp.fd);
		return -ENOMEM;
	}
	*b = tmp;
	*ret_buffer = b;
	return 0;
}

_public_ struct iovk_vfio_buffer *iovk_vfio_buffer_free(struct iovk_vfio_buffer *b)
{
	if (!b)
		return NULL;
	munmap(b->addr, b->size);
	close(b->fd);
	free(b);
	return NULL;
}

_public_ void *iovk_vfio_buffer_get_addr(const struct iovk_vfio_buffer *b)
{
	return b->addr;
}

_public_ size_t iovk_vfio_buffer_get_size(const struct iovk_vfio_buffer *b)
{
	return b->size;
}

_public_ size_t iovk_vfio_buffer_get_page_size(const struct iovk_vfio_buffer *b)
{
	return b->page_size;
}

_public_ bool iovk_vfio_buffer_is_hugetlb(const struct iovk_vfio_buffer *b)
{
	return b->hugetlb;
}

_public_ int iovk_vfio_buffer_get_fd(const struct iovk_vfio_buffer *b)
{
	return b->fd;
}
