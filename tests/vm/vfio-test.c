/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vfio-test: what tests/vm/cases/72-vfio-hot-reset.sh and 73-vfio-replay.sh
 * cannot ask of iovctl, driven through libiovkit against the guest's real
 * VFIO.
 *
 *   vfio-test virtio-reset [--mode MODE] [--hot] BDF
 *       BDF is a modern virtio-pci device on vfio-pci. Writes its virtio
 *       device_status (common config, found through its vendor
 *       capabilities) to ACKNOWLEDGE|DRIVER and reads it back, resets the
 *       device (VFIO_DEVICE_RESET, or with --hot the hot reset of its slot
 *       or bus), and checks that device_status reads 0 afterwards: the
 *       virtio device itself was reset. The kernel restores config space
 *       after either reset (pci_dev_restore), so config space cannot show it.
 *
 *   vfio-test replay [--mode MODE] BDF
 *       Maps three buffers (one at an allocated IOVA, one at a fixed IOVA,
 *       one read-only at the last page of the first valid range), copies
 *       the mapping list, closes the device and the address space, opens a
 *       fresh one and replays the copy. Checks that the list is the same,
 *       that the kernel holds each mapping (a map of another buffer at its
 *       IOVA is refused by the kernel with EEXIST, while one at a free IOVA
 *       is taken; container: dma_avail as the kernel counts it), that a
 *       replay meeting an occupied IOVA fails naming that mapping and leaves
 *       nothing of itself behind, and that unmapping all gives every
 *       mapping back.
 *
 * One line per check, "ok: ..." or "FAIL: ..."; exit 0 when all passed, 1
 * when one failed, 2 on a usage error.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <iovkit/iovkit.h>

/* VFIO's index of the config space region (linux/vfio.h VFIO_PCI_CONFIG_REGION_INDEX) */
#define CONFIG_REGION 7
/* virtio 1.x: PCI vendor capability, cfg_type 1 = common config; device_status at 20 in it */
#define PCI_CAP_ID_VNDR 0x09
#define VIRTIO_PCI_CAP_COMMON_CFG 1
#define VIRTIO_COMMON_STATUS 20
#define VIRTIO_STATUS_ACK_DRIVER 0x03
/* a free IOVA for probes: far below anything the tests map */
#define FREE_IOVA 0x40000000ull
#define FIXED_IOVA 0x80000000ull

static unsigned failures;

static void check(bool ok, const char *format, ...) __attribute__((format(printf, 2, 3)));
static void check(bool ok, const char *format, ...)
{
	va_list ap;

	va_start(ap, format);
	fputs(ok ? "ok: " : "FAIL: ", stdout);
	vprintf(format, ap);
	fputc('\n', stdout);
	va_end(ap);
	failures += !ok;
}

/* A failure that ends the test: a step the rest depends on. */
static int fatal(struct iovk_ctx *ctx, const char *what, int r)
{
	printf("FAIL: %s: %s (%s)\n", what, iovk_ctx_get_error(ctx), strerror(-r));
	failures++;
	return 1;
}

struct session {
	struct iovk_ctx *ctx;
	struct iovk_vfio_iommu *iommu;
	struct iovk_vfio_device *dev;
};

static int session_open(struct session *s, enum iovk_vfio_mode mode, const char *bdf)
{
	int r = iovk_vfio_iommu_new(s->ctx, mode, &s->iommu);

	if (r < 0)
		return fatal(s->ctx, "opening the address space", r);
	r = iovk_vfio_device_open(s->iommu, bdf, NULL, &s->dev);
	if (r < 0)
		return fatal(s->ctx, "opening the device", r);
	return 0;
}

static void session_close(struct session *s)
{
	s->dev = iovk_vfio_device_unref(s->dev);
	s->iommu = iovk_vfio_iommu_unref(s->iommu);
}

/* The BAR and offset of the virtio common config, from the vendor capabilities. */
static int find_virtio_common(struct iovk_vfio_device *dev, uint32_t *ret_bar, uint32_t *ret_offset)
{
	uint8_t p, cap[16];

	if (iovk_vfio_device_config_read(dev, 0x34, &p, 1) < 0)
		return -EIO;
	for (int hops = 0; p >= 0x40 && hops < 48; hops++) {
		if (iovk_vfio_device_config_read(dev, p, cap, sizeof(cap)) < 0)
			return -EIO;
		if (cap[0] == PCI_CAP_ID_VNDR && cap[3] == VIRTIO_PCI_CAP_COMMON_CFG) {
			*ret_bar = cap[4];
			*ret_offset = (uint32_t)cap[8] | (uint32_t)cap[9] << 8 | (uint32_t)cap[10] << 16 |
				      (uint32_t)cap[11] << 24;
			return 0;
		}
		p = cap[1];
	}
	return -ENOENT;
}

static int virtio_reset(struct iovk_ctx *ctx, enum iovk_vfio_mode mode, bool hot, const char *bdf)
{
	struct session s = { .ctx = ctx };
	uint32_t bar, off;
	uint8_t st = VIRTIO_STATUS_ACK_DRIVER, before = 0, after = 0xff, id0[4], id1[4];
	int r;

	if (session_open(&s, mode, bdf))
		goto out;
	if (find_virtio_common(s.dev, &bar, &off) < 0) {
		check(false, "%s has no virtio common config capability: not a modern virtio-pci device", bdf);
		goto out;
	}
	off += VIRTIO_COMMON_STATUS;
	if ((r = iovk_vfio_device_config_read(s.dev, 0, id0, sizeof(id0))) < 0 ||
	    (r = iovk_vfio_device_region_write(s.dev, bar, off, &st, 1)) < 0 ||
	    (r = iovk_vfio_device_region_read(s.dev, bar, off, &before, 1)) < 0) {
		fatal(ctx, "virtio device_status before the reset", r);
		goto out;
	}
	/* the control: without it a reset that did nothing would pass */
	check(before == VIRTIO_STATUS_ACK_DRIVER, "device_status (BAR%u+0x%x) reads 0x%02x after writing 0x%02x", bar,
	      off, before, VIRTIO_STATUS_ACK_DRIVER);
	r = hot ? iovk_vfio_device_hot_reset(s.dev) : iovk_vfio_device_reset(s.dev);
	check(r >= 0, "%s returned %d%s%s", hot ? "iovk_vfio_device_hot_reset" : "iovk_vfio_device_reset", r,
	      r < 0 ? ": " : "", r < 0 ? iovk_ctx_get_error(ctx) : "");
	/* read on after a failure too: the kernel may have reset the device
	 * and failed only afterwards (a link that did not come back) */
	if ((r = iovk_vfio_device_region_read(s.dev, bar, off, &after, 1)) < 0 ||
	    (r = iovk_vfio_device_config_read(s.dev, 0, id1, sizeof(id1))) < 0) {
		fatal(ctx, "reading the device after the reset", r);
		goto out;
	}
	check(after == 0, "device_status reads 0x%02x after the %s reset (0 = the virtio device was reset)", after,
	      hot ? "hot" : "function");
	check(memcmp(id0, id1, sizeof(id0)) == 0, "vendor/device id %02x%02x:%02x%02x unchanged", id1[1], id1[0], id1[3],
	      id1[2]);
	/* still usable: the status register takes a write again */
	st = 1;
	if (iovk_vfio_device_region_write(s.dev, bar, off, &st, 1) >= 0 &&
	    iovk_vfio_device_region_read(s.dev, bar, off, &after, 1) >= 0)
		check(after == 1, "device_status takes ACKNOWLEDGE after the reset (reads 0x%02x)", after);
	else
		check(false, "device_status after the reset: %s", iovk_ctx_get_error(ctx));
	st = 0;
	(void)iovk_vfio_device_region_write(s.dev, bar, off, &st, 1);
out:
	session_close(&s);
	return failures ? 1 : 0;
}

/* Maps a 4 KiB probe buffer at iova without iovkit's checks: the kernel decides. */
static int probe_map(struct iovk_vfio_iommu *iommu, struct iovk_vfio_buffer *probe, uint64_t iova)
{
	return iovk_vfio_dma_map(iommu, iovk_vfio_buffer_get_addr(probe), iovk_vfio_buffer_get_size(probe),
				 &IOVK_OPTS(iovk_vfio_dma_map_opts,
					    .flags = IOVK_VFIO_DMA_FIXED_IOVA | IOVK_VFIO_DMA_NO_CHECK, .iova = iova),
				 NULL);
}

/* The kernel holds a mapping at iova: a probe there is refused by the kernel itself with EEXIST. */
static void check_kernel_has(struct iovk_ctx *ctx, struct iovk_vfio_iommu *iommu, struct iovk_vfio_buffer *probe,
			     uint64_t iova)
{
	int r = probe_map(iommu, probe, iova);

	if (r >= 0)
		(void)iovk_vfio_dma_unmap(iommu, iova, iovk_vfio_buffer_get_size(probe));
	/* "refused: it overlaps" comes from the kernel's answer; iovkit's
	 * own list would say "recording the mapping" instead */
	check(r == -EEXIST && strstr(iovk_ctx_get_error(ctx), "refused: it overlaps an existing mapping"),
	      "the kernel holds IOVA 0x%" PRIx64 ": a second map there gets %s (%s)", iova,
	      r < 0 ? strerrorname_np(-r) : "success", r < 0 ? iovk_ctx_get_error(ctx) : "mapped");
}

/* The kernel holds nothing at iova: a probe there is taken (and unmapped again). */
static void check_kernel_free(struct iovk_ctx *ctx, struct iovk_vfio_iommu *iommu, struct iovk_vfio_buffer *probe,
			      uint64_t iova)
{
	int r = probe_map(iommu, probe, iova);

	if (r >= 0)
		r = iovk_vfio_dma_unmap(iommu, iova, iovk_vfio_buffer_get_size(probe));
	check(r >= 0, "the kernel holds nothing at IOVA 0x%" PRIx64 ": a map there is taken%s%s", iova,
	      r < 0 ? ": " : "", r < 0 ? iovk_ctx_get_error(ctx) : "");
}

static bool same_list(const struct iovk_vfio_mapping_list *a, const struct iovk_vfio_mapping_list *b)
{
	size_t na, nb;
	const struct iovk_vfio_mapping *va = iovk_vfio_mapping_list_get(a, &na), *vb = iovk_vfio_mapping_list_get(b, &nb);

	if (na != nb)
		return false;
	/* field by field: the struct has padding */
	for (size_t i = 0; i < na; i++)
		if (va[i].vaddr != vb[i].vaddr || va[i].iova != vb[i].iova || va[i].size != vb[i].size ||
		    va[i].flags != vb[i].flags)
			return false;
	return true;
}

/* dma_avail as the kernel reports it; false (and no check) for iommufd, which has no such count. */
static bool kernel_dma_avail(struct iovk_vfio_iommu *iommu, uint32_t *ret)
{
	bool reported = false;

	return iovk_vfio_iommu_get_dma_avail(iommu, ret, &reported) >= 0 && reported;
}

/* The kernel's dma_avail is want (container only: iommufd has no such count). */
static void check_dma_avail(struct iovk_vfio_iommu *iommu, uint32_t want, const char *what)
{
	uint32_t avail = 0;
	bool ok = kernel_dma_avail(iommu, &avail);

	check(ok && avail == want, "%s: the kernel's dma_avail is %" PRIu32 " (want %" PRIu32 ")", what, avail, want);
}

static int replay(struct iovk_ctx *ctx, enum iovk_vfio_mode mode, const char *bdf)
{
	struct session s = { .ctx = ctx };
	struct iovk_vfio_buffer *b[3] = {}, *probe = NULL;
	struct iovk_vfio_mapping_list *copy = NULL;
	const struct iovk_iova_range *ranges;
	const struct iovk_vfio_mapping *m;
	uint64_t last_page;
	uint32_t avail0 = 0;
	size_t n, nr;
	bool counted;
	int r;

	if (session_open(&s, mode, bdf))
		goto out;
	if ((r = iovk_vfio_buffer_new(ctx, 64 << 10, 0, &b[0])) < 0 || (r = iovk_vfio_buffer_new(ctx, 1 << 20, 0, &b[1])) < 0 ||
	    (r = iovk_vfio_buffer_new(ctx, 4096, 0, &b[2])) < 0 || (r = iovk_vfio_buffer_new(ctx, 4096, 0, &probe)) < 0) {
		fatal(ctx, "buffers", r);
		goto out;
	}
	if ((r = iovk_vfio_iommu_get_iova_ranges(s.iommu, &ranges, &nr)) < 0) {
		fatal(ctx, "IOVA ranges", r);
		goto out;
	}
	last_page = (ranges[0].end - 0xfff) & ~0xfffull;
	if ((r = iovk_vfio_dma_map(s.iommu, iovk_vfio_buffer_get_addr(b[0]), iovk_vfio_buffer_get_size(b[0]), NULL,
				   NULL)) < 0 ||
	    (r = iovk_vfio_dma_map(s.iommu, iovk_vfio_buffer_get_addr(b[1]), iovk_vfio_buffer_get_size(b[1]),
				   &IOVK_OPTS(iovk_vfio_dma_map_opts, .flags = IOVK_VFIO_DMA_FIXED_IOVA, .iova = FIXED_IOVA),
				   NULL)) < 0 ||
	    (r = iovk_vfio_dma_map(s.iommu, iovk_vfio_buffer_get_addr(b[2]), 4096,
				   &IOVK_OPTS(iovk_vfio_dma_map_opts, .flags = IOVK_VFIO_DMA_FIXED_IOVA | IOVK_VFIO_DMA_READ,
					      .iova = last_page),
				   NULL)) < 0) {
		fatal(ctx, "mapping in the first address space", r);
		goto out;
	}
	r = iovk_vfio_mapping_list_copy(iovk_vfio_iommu_get_mappings(s.iommu), &copy);
	if (r < 0) {
		fatal(ctx, "copying the mapping list", r);
		goto out;
	}
	m = iovk_vfio_mapping_list_get(copy, &n);
	check(n == 3 && same_list(copy, iovk_vfio_iommu_get_mappings(s.iommu)),
	      "the copy of the first address space's list has its %zu mappings", n);
	for (size_t i = 0; i < n; i++)
		printf("# mapping %zu: IOVA 0x%" PRIx64 " +0x%" PRIx64 " host 0x%" PRIx64 " flags %u\n", i + 1, m[i].iova,
		       m[i].size, m[i].vaddr, m[i].flags);
	r = iovk_vfio_iommu_replay(s.iommu, iovk_vfio_iommu_get_mappings(s.iommu));
	check(r == -EINVAL, "replaying an address space's own list is refused (%d: %s)", r, iovk_ctx_get_error(ctx));

	/* the old address space goes: the replay must not lean on it */
	session_close(&s);
	if (session_open(&s, mode, bdf))
		goto out;
	counted = kernel_dma_avail(s.iommu, &avail0);
	printf("# fresh %s address space; dma_avail %s %" PRIu32 "\n", iovk_vfio_iommu_get_backend(s.iommu),
	       counted ? "(kernel)" : "unlimited/not reported", avail0);
	r = iovk_vfio_iommu_replay(s.iommu, copy);
	check(r == 3, "replay onto the fresh address space mapped %d of 3%s%s", r, r < 0 ? ": " : "",
	      r < 0 ? iovk_ctx_get_error(ctx) : "");
	check(same_list(copy, iovk_vfio_iommu_get_mappings(s.iommu)),
	      "the fresh address space's list is exactly the copy (IOVAs, sizes, host addresses, permissions)");
	if (counted)
		check_dma_avail(s.iommu, avail0 - 3, "after the replay");
	for (size_t i = 0; i < n; i++)
		check_kernel_has(ctx, s.iommu, probe, m[i].iova);
	check_kernel_free(ctx, s.iommu, probe, FREE_IOVA);

	/* unmap all gives the totals back */
	r = iovk_vfio_dma_unmap_all(s.iommu);
	check(r == 3, "unmap all unmapped %d mappings (3 replayed)%s%s", r, r < 0 ? ": " : "",
	      r < 0 ? iovk_ctx_get_error(ctx) : "");
	if (counted)
		check_dma_avail(s.iommu, avail0, "after unmapping all");
	for (size_t i = 0; i < n; i++)
		check_kernel_free(ctx, s.iommu, probe, m[i].iova);

	/* all or nothing: the second mapping's IOVA is taken, so the replay
	 * must fail there, name it, and take the first one back */
	r = iovk_vfio_dma_map(s.iommu, iovk_vfio_buffer_get_addr(probe), 4096,
			      &IOVK_OPTS(iovk_vfio_dma_map_opts, .flags = IOVK_VFIO_DMA_FIXED_IOVA, .iova = m[1].iova), NULL);
	if (r < 0) {
		fatal(ctx, "occupying the second mapping's IOVA", r);
		goto out;
	}
	r = iovk_vfio_iommu_replay(s.iommu, copy);
	{
		char want[64];

		snprintf(want, sizeof(want), "replaying mapping 2 of 3 (IOVA 0x%" PRIx64, m[1].iova);
		check(r == -EEXIST && strstr(iovk_ctx_get_error(ctx), want) &&
			      strstr(iovk_ctx_get_error(ctx), "the 1 mapping(s) replayed before it were unmapped again"),
		      "a replay meeting an occupied IOVA fails there (%s): %s", r < 0 ? strerrorname_np(-r) : "success",
		      iovk_ctx_get_error(ctx));
	}
	iovk_vfio_mapping_list_get(iovk_vfio_iommu_get_mappings(s.iommu), &nr);
	check(nr == 1, "after the failed replay the list holds only the mapping that was there (%zu)", nr);
	if (counted)
		check_dma_avail(s.iommu, avail0 - 1, "after the failed replay (1 mapping left)");
	check_kernel_free(ctx, s.iommu, probe, m[0].iova);
	r = iovk_vfio_dma_unmap_all(s.iommu);
	check(r == 1, "unmap all after the failed replay unmapped %d (1)", r);
out:
	session_close(&s);
	iovk_vfio_mapping_list_free(copy);
	for (size_t i = 0; i < 3; i++)
		iovk_vfio_buffer_free(b[i]);
	iovk_vfio_buffer_free(probe);
	return failures ? 1 : 0;
}

static int usage(void)
{
	fputs("Usage: vfio-test virtio-reset [--mode MODE] [--hot] BDF\n"
	      "       vfio-test replay [--mode MODE] BDF\n",
	      stderr);
	return 2;
}

int main(int argc, char **argv)
{
	enum iovk_vfio_mode mode = IOVK_VFIO_MODE_AUTO;
	const char *cmd, *bdf = NULL;
	struct iovk_ctx *ctx = NULL;
	bool hot = false;
	int r;

	if (argc < 3)
		return usage();
	cmd = argv[1];
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc) {
			if (iovk_vfio_mode_from_string(argv[++i], &mode) < 0)
				return usage();
		} else if (strcmp(argv[i], "--hot") == 0)
			hot = true;
		else if (!bdf && argv[i][0] != '-')
			bdf = argv[i];
		else
			return usage();
	}
	if (!bdf)
		return usage();
	r = iovk_ctx_new(&ctx);
	if (r < 0) {
		fprintf(stderr, "vfio-test: %s\n", strerror(-r));
		return 1;
	}
	if (strcmp(cmd, "virtio-reset") == 0)
		r = virtio_reset(ctx, mode, hot, bdf);
	else if (strcmp(cmd, "replay") == 0 && !hot)
		r = replay(ctx, mode, bdf);
	else
		r = usage();
	iovk_ctx_unref(ctx);
	return r;
}
