/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vfio-dma-bench: what it costs to make a buffer DMA-able through VFIO.
 *
 *   vfio-dma-bench [--size BYTES] [--rounds N] [--mode MODE] [--json] BDF
 *
 * For one buffer (default 1 GiB, memfd-backed, pre-faulted so the figures
 * are the pinning and IOMMU work, not page allocation) it times, in
 * interleaved rounds (this machine's speed varies run to run; compare only
 * interleaved figures):
 *   one-map-4k     one VFIO_IOMMU_MAP_DMA over 4 KiB pages
 *   one-map-huge   one map over huge pages (when enough are free)
 *   per-page-4k    the naive way: one map per 4 KiB page
 * and reports map and unmap time, map ioctls, and dma_avail consumed. The
 * naive way needs one mapping per page and the kernel allows
 * dma_entry_limit (65535 by default) per container, so it stops there
 * unless the limit was raised (/sys/module/vfio_iommu_type1/parameters/
 * dma_entry_limit, read when the container is opened).
 *
 * --mode picks the backend (iovk_vfio_mode_from_string(): auto, container,
 * type1v2, type1, iommufd). iommufd has no dma_entry_limit: there the naive
 * way maps the whole buffer and dma_avail is not counted.
 *
 * The device must be on vfio-pci; it is only opened (its group is what
 * the container needs), nothing is sent to it.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <iovkit/iovkit.h>

struct result {
	const char *name;
	bool ran;
	char why[256];       /* when it did not run, or stopped early */
	uint64_t bytes;      /* mapped */
	uint64_t ioctls;     /* map ioctls issued (successful) */
	uint32_t avail_used; /* dma_avail consumed while mapped */
	double map_s, unmap_s;
	size_t page_size;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int one_map(struct iovk_ctx *ctx, struct iovk_vfio_iommu *iommu, struct iovk_vfio_buffer *b, struct result *res)
{
	uint32_t before = 0, during = 0;
	uint64_t iova;
	double t0;

	res->page_size = iovk_vfio_buffer_get_page_size(b);
	if (iovk_vfio_iommu_get_dma_avail(iommu, &before, NULL) < 0)
		return -1;
	t0 = now();
	if (iovk_vfio_dma_map(iommu, iovk_vfio_buffer_get_addr(b), iovk_vfio_buffer_get_size(b), NULL, &iova) < 0) {
		snprintf(res->why, sizeof(res->why), "%s", iovk_ctx_get_error(ctx));
		return -1;
	}
	res->map_s = now() - t0;
	res->ioctls = 1;
	res->bytes = iovk_vfio_buffer_get_size(b);
	(void)iovk_vfio_iommu_get_dma_avail(iommu, &during, NULL);
	res->avail_used = before - during;
	t0 = now();
	if (iovk_vfio_dma_unmap(iommu, iova, iovk_vfio_buffer_get_size(b)) < 0) {
		snprintf(res->why, sizeof(res->why), "%s", iovk_ctx_get_error(ctx));
		return -1;
	}
	res->unmap_s = now() - t0;
	res->ran = true;
	return 0;
}

static int per_page(struct iovk_ctx *ctx, struct iovk_vfio_iommu *iommu, struct iovk_vfio_buffer *b, struct result *res)
{
	size_t page = 4096, size = iovk_vfio_buffer_get_size(b);
	uint8_t *p = iovk_vfio_buffer_get_addr(b);
	uint32_t before = 0, during = 0;
	double t0;
	int r;

	res->page_size = iovk_vfio_buffer_get_page_size(b);
	if (iovk_vfio_iommu_get_dma_avail(iommu, &before, NULL) < 0)
		return -1;
	t0 = now();
	for (size_t off = 0; off < size; off += page) {
		r = iovk_vfio_dma_map(iommu, p + off, page, NULL, NULL);
		if (r < 0) {
			snprintf(res->why, sizeof(res->why), "stopped after %" PRIu64 " maps (%" PRIu64 " MiB): %s",
				 res->ioctls, res->bytes >> 20, iovk_ctx_get_error(ctx));
			break;
		}
		res->ioctls++;
		res->bytes += page;
	}
	res->map_s = now() - t0;
	(void)iovk_vfio_iommu_get_dma_avail(iommu, &during, NULL);
	res->avail_used = before - during;
	t0 = now();
	r = iovk_vfio_dma_unmap_all(iommu);
	res->unmap_s = now() - t0;
	if (r < 0) {
		snprintf(res->why, sizeof(res->why), "unmap: %s", iovk_ctx_get_error(ctx));
		return -1;
	}
	res->ran = res->ioctls > 0;
	return 0;
}

static void print_result(const struct result *r, bool json, bool last)
{
	double gib = (double)r->bytes / (1 << 30);

	if (json) {
		printf("    { \"name\": \"%s\", \"ran\": %s, \"page_size\": %zu, \"bytes\": %" PRIu64
		       ", \"map_ioctls\": %" PRIu64 ", \"dma_avail_used\": %" PRIu32
		       ", \"map_s\": %.6f, \"unmap_s\": %.6f, \"map_gib_per_s\": %.3f, \"note\": \"",
		       r->name, r->ran ? "true" : "false", r->page_size, r->bytes, r->ioctls, r->avail_used, r->map_s,
		       r->unmap_s, r->map_s > 0 ? gib / r->map_s : 0.0);
		for (const char *c = r->why; *c; c++)
			printf(*c == '"' || *c == '\\' ? "\\%c" : "%c", *c);
		printf("\" }%s\n", last ? "" : ",");
		return;
	}
	if (!r->ran) {
		printf("%-13s skipped: %s\n", r->name, r->why);
		return;
	}
	printf("%-13s %7zu B pages  %6" PRIu64 " MiB  %7" PRIu64 " map ioctls  dma_avail -%-6" PRIu32
	       "  map %8.3f s (%6.2f GiB/s)  unmap %8.3f s%s%s\n",
	       r->name, r->page_size, r->bytes >> 20, r->ioctls, r->avail_used, r->map_s, r->map_s > 0 ? gib / r->map_s : 0,
	       r->unmap_s, r->why[0] ? "\n              " : "", r->why);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "mode", required_argument, NULL, 'm' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	uint64_t size = 1ull << 30;
	unsigned rounds = 1;
	bool json = false;
	enum iovk_vfio_mode mode = IOVK_VFIO_MODE_AUTO;
	struct iovk_ctx *ctx = NULL;
	struct iovk_vfio_iommu *iommu = NULL;
	struct iovk_vfio_device *dev = NULL;
	struct iovk_vfio_buffer *small = NULL, *huge = NULL;
	char huge_why[256] = "";
	uint32_t avail0 = 0;
	int c, rc = 1;

	while ((c = getopt_long(argc, argv, "jh", longopts, NULL)) >= 0) {
		switch (c) {
		case 's':
			size = strtoull(optarg, NULL, 0);
			break;
		case 'r':
			rounds = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 'm':
			if (iovk_vfio_mode_from_string(optarg, &mode) < 0) {
				fprintf(stderr, "vfio-dma-bench: '%s' is not a VFIO mode\n", optarg);
				return 2;
			}
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			puts("Usage: vfio-dma-bench [--size BYTES] [--rounds N] [--mode MODE] [--json] BDF");
			return 0;
		default:
			return 2;
		}
	}
	if (optind != argc - 1 || size < 4096 || size % 4096 || rounds == 0) {
		fputs("Usage: vfio-dma-bench [--size BYTES (multiple of 4096)] [--rounds N] [--mode MODE] [--json] BDF\n",
		      stderr);
		return 2;
	}
	if (iovk_ctx_new(&ctx) < 0 || iovk_vfio_iommu_new(ctx, mode, &iommu) < 0 ||
	    iovk_vfio_device_open(iommu, argv[optind], NULL, &dev) < 0) {
		fprintf(stderr, "vfio-dma-bench: %s\n", ctx ? iovk_ctx_get_error(ctx) : "no memory");
		goto out;
	}
	if (iovk_vfio_buffer_new(ctx, size, 0, &small) < 0) {
		fprintf(stderr, "vfio-dma-bench: %s\n", iovk_ctx_get_error(ctx));
		goto out;
	}
	if (iovk_vfio_buffer_new(ctx, size, IOVK_VFIO_BUFFER_REQUIRE_HUGETLB, &huge) < 0)
		snprintf(huge_why, sizeof(huge_why), "%s", iovk_ctx_get_error(ctx));
	/* Fault the pages in first: the figures are for pinning and IOMMU
	 * mapping, not for the kernel allocating memory. */
	memset(iovk_vfio_buffer_get_addr(small), 1, iovk_vfio_buffer_get_size(small));
	if (huge)
		memset(iovk_vfio_buffer_get_addr(huge), 1, iovk_vfio_buffer_get_size(huge));
	(void)iovk_vfio_iommu_get_dma_avail(iommu, &avail0, NULL);

	if (json)
		printf("{\n  \"address\": \"%s\",\n  \"backend\": \"%s\",\n  \"size\": %" PRIu64
		       ",\n  \"dma_avail\": %" PRIu32 ",\n  \"rounds\": [\n",
		       iovk_vfio_device_get_address(dev), iovk_vfio_iommu_get_backend(iommu), size, avail0);
	else
		printf("%s: %s backend, %" PRIu64 " MiB buffer, dma_avail %" PRIu32 " at the start, %u round(s)\n",
		       iovk_vfio_device_get_address(dev), iovk_vfio_iommu_get_backend(iommu), size >> 20, avail0, rounds);
	for (unsigned round = 0; round < rounds; round++) {
		struct result res[3] = { { .name = "one-map-4k" }, { .name = "one-map-huge" }, { .name = "per-page-4k" } };

		(void)one_map(ctx, iommu, small, &res[0]);
		if (huge)
			(void)one_map(ctx, iommu, huge, &res[1]);
		else
			snprintf(res[1].why, sizeof(res[1].why), "%s", huge_why);
		(void)per_page(ctx, iommu, small, &res[2]);
		if (json)
			printf("   [\n");
		else
			printf("round %u\n", round + 1);
		for (int i = 0; i < 3; i++)
			print_result(&res[i], json, i == 2);
		if (json)
			printf("   ]%s\n", round + 1 < rounds ? "," : "");
	}
	if (json)
		printf("  ]\n}\n");
	rc = 0;
out:
	iovk_vfio_buffer_free(huge);
	iovk_vfio_buffer_free(small);
	iovk_vfio_device_unref(dev);
	iovk_vfio_iommu_unref(iommu);
	iovk_ctx_unref(ctx);
	return rc;
}
