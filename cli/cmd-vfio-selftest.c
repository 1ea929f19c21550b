/* SPDX-License-Identifier: GPL-2.0-or-later */
/* iovctl vfio selftest: prove that a device on vfio-pci is usable, step by step */
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/vfio.h>

#include "iovctl.h"
#include "vfio-common.h"

static const char selftest_help[] =
	"Usage: iovctl vfio selftest [--json] [--mode MODE] [--vf-token UUID] BDF\n"
	"\n"
	"Prove that a device on vfio-pci is usable: open it, read config space through\n"
	"VFIO and compare its first 64 bytes with sysfs, write a harmless config\n"
	"register back, read every mmap-able BAR through mmap, map a memfd buffer for\n"
	"DMA (and one on huge pages when the host has some), map at the top of the\n"
	"valid IOVA space, check that maps outside the valid IOVA ranges and wrapping\n"
	"maps are refused (by iovkit and by the kernel), set up one eventfd per\n"
	"MSI-X/MSI/INTx vector and receive a kernel-triggered interrupt on each, reset\n"
	"the device. Each step is PASS, FAIL or SKIP with a reason. Exit status 1 when\n"
	"a step FAILs.\n"
	"\n"
	"  --mode MODE      as for 'iovctl vfio info'\n"
	"  --vf-token UUID  VF token, to open a VF whose PF is on vfio-pci\n";

/* A step has no hint: its message says what failed and what the kernel said. */
#define step(rep, name, st, ...) report_add(rep, name, st, NULL, __VA_ARGS__)

static const char *lib_error(struct cli *cli)
{
	return iovk_ctx_get_error(cli->ctx);
}

static void step_iommu_info(struct report *rep, struct vfio_cmd *c)
{
	const struct iovk_iova_range *ranges;
	size_t n;
	uint64_t pgsizes;
	uint32_t avail;
	bool reported;
	char sizes[128] = "", sz[24];
	size_t len = 0;

	if (iovk_vfio_iommu_get_iova_ranges(c->iommu, &ranges, &n) < 0 ||
	    iovk_vfio_iommu_get_pgsizes(c->iommu, &pgsizes) < 0 ||
	    iovk_vfio_iommu_get_dma_avail(c->iommu, &avail, &reported) < 0) {
		step(rep, "iommu-info", REPORT_FAIL, "%s", lib_error(rep->cli));
		return;
	}
	for (uint64_t p = pgsizes; p && len < sizeof(sizes); p &= p - 1) {
		size_text(p & -p, sz);
		len += (size_t)snprintf(sizes + len, sizeof(sizes) - len, "%s%s", len ? "," : "", sz);
	}
	if (avail == IOVK_VFIO_DMA_AVAIL_UNLIMITED)
		step(rep, "iommu-info", REPORT_PASS, "%s (%s): %zu IOVA range(s) from 0x%" PRIx64 " to 0x%" PRIx64
		     ", minimum IOVA alignment %s, dma_avail unlimited",
		     iovk_vfio_iommu_get_backend(c->iommu), iovk_vfio_mode_to_string(iovk_vfio_iommu_get_mode(c->iommu)),
		     n, ranges[0].start, ranges[n - 1].end, sizes);
	else
		step(rep, "iommu-info", REPORT_PASS, "%s (%s): %zu IOVA range(s) from 0x%" PRIx64 " to 0x%" PRIx64
		     ", page sizes %s, dma_avail %" PRIu32 "%s",
		     iovk_vfio_iommu_get_backend(c->iommu), iovk_vfio_mode_to_string(iovk_vfio_iommu_get_mode(c->iommu)),
		     n, ranges[0].start, ranges[n - 1].end, sizes, avail, reported ? "" : " (assumed)");
}

/*
 * Bytes of a VF's header that vfio-pci shows differently from the hardware,
 * by design (vfio_config_init(), vfio_bar_fixup()): a VF reads 0xffff as
 * vendor and device id (SR-IOV 1.1, 3.4.1.1/2) and 0 in its BARs (they live
 * in the PF's SR-IOV capability), and vfio-pci fills in the real ones; it
 * also hides the INTx pin, since VFs have no INTx.
 */
static bool vf_virtualized(size_t off)
{
	return off < 0x04 || (off >= 0x10 && off < 0x28) || off == 0x3d;
}

static void step_config_read(struct report *rep, struct vfio_cmd *c)
{
	uint8_t via_vfio[64], via_sysfs[64];
	struct iovk_device *d = NULL;
	char diff[512] = "", note[160] = "";
	size_t len = 0;
	unsigned ndiff = 0;
	ssize_t n = -1;
	bool is_vf = false;
	long vendor = -1, device = -1;

	if (iovk_vfio_device_config_read(c->dev, 0, via_vfio, sizeof(via_vfio)) < 0) {
		step(rep, "config-read", REPORT_FAIL, "%s", lib_error(rep->cli));
		return;
	}
	/* The kernel's view of the same bytes, through libiovkit (sysfs). */
	if (iovk_device_new(rep->cli->ctx, c->address, &d) >= 0) {
		is_vf = iovk_device_get_physfn(d) != NULL;
		vendor = iovk_device_get_vendor_id(d);
		device = iovk_device_get_device_id(d);
		n = iovk_device_read_config(d, 0, via_sysfs, sizeof(via_sysfs));
		iovk_device_unref(d);
	}
	if (n != (ssize_t)sizeof(via_sysfs)) {
		step(rep, "config-read", REPORT_SKIP, "read the header through VFIO, but cannot read 64 bytes of its sysfs "
		     "config to compare: %s", n < 0 ? lib_error(rep->cli) : "short read");
		return;
	}
	for (size_t i = 0; i < sizeof(via_vfio); i++) {
		uint8_t a = via_vfio[i], b = via_sysfs[i];

		if (is_vf && vf_virtualized(i))
			continue;
		/* Status bit 3 (Interrupt Status, PCI 3.0 6.2.3) follows the
		 * INTx line from moment to moment: not a fact to compare. */
		if (i == 0x06) {
			a &= (uint8_t)~0x08;
			b &= (uint8_t)~0x08;
		}
		if (a == b)
			continue;
		ndiff++;
		if (len < sizeof(diff))
			len += (size_t)snprintf(diff + len, sizeof(diff) - len, "%s0x%02zx: vfio 0x%02x sysfs 0x%02x",
						len ? ", " : "", i, via_vfio[i], via_sysfs[i]);
	}
	if (is_vf) {
		/* The ids vfio-pci fills in must be the ones sysfs names. */
		long got_vendor = via_vfio[0] | via_vfio[1] << 8, got_device = via_vfio[2] | via_vfio[3] << 8;

		if (vendor != got_vendor || device != got_device) {
			ndiff++;
			if (len < sizeof(diff))
				len += (size_t)snprintf(diff + len, sizeof(diff) - len,
							"%sids: vfio %04lx:%04lx, sysfs vendor/device %04lx:%04lx",
							len ? ", " : "", got_vendor, got_device, vendor, device);
		}
		snprintf(note, sizeof(note), "; a VF: ids, BARs and INTx pin are vfio-pci's by design, the ids match "
			 "sysfs vendor/device");
	}
	if (ndiff)
		step(rep, "config-read", REPORT_FAIL,
		     "the first 64 bytes read through VFIO differ from sysfs config in %u place(s): %s",
		     ndiff, diff);
	else
		step(rep, "config-read", REPORT_PASS, "the first 64 bytes read through VFIO match sysfs config (vendor %02x%02x, "
		     "device %02x%02x)%s", via_vfio[1], via_vfio[0], via_vfio[3], via_vfio[2], note);
}

static void step_config_write(struct report *rep, struct vfio_cmd *c)
{
	/* Interrupt Line (0x3c) is a scratch register for software (PCI 3.0
	 * 6.2.4): writing it changes nothing on the device, and vfio-pci
	 * virtualizes it. */
	uint8_t old, val, back;

	if (iovk_vfio_device_config_read(c->dev, 0x3c, &old, 1) < 0) {
		step(rep, "config-write", REPORT_FAIL, "%s", lib_error(rep->cli));
		return;
	}
	val = old ^ 0x5a;
	if (iovk_vfio_device_config_write(c->dev, 0x3c, &val, 1) < 0 ||
	    iovk_vfio_device_config_read(c->dev, 0x3c, &back, 1) < 0) {
		step(rep, "config-write", REPORT_FAIL, "%s", lib_error(rep->cli));
		return;
	}
	if (iovk_vfio_device_config_write(c->dev, 0x3c, &old, 1) < 0) {
		step(rep, "config-write", REPORT_FAIL, "restoring Interrupt Line: %s", lib_error(rep->cli));
		return;
	}
	if (back != val)
		step(rep, "config-write", REPORT_FAIL,
		     "wrote 0x%02x to Interrupt Line (0x3c), read back 0x%02x", val, back);
	else
		step(rep, "config-write", REPORT_PASS, "Interrupt Line (0x3c) written (0x%02x) and read back, then restored to 0x%02x",
		     val, old);
}

static void step_bar_mmap(struct report *rep, struct vfio_cmd *c)
{
	char msg[1024] = "";
	size_t len = 0;
	unsigned mapped = 0;

	for (uint32_t i = VFIO_PCI_BAR0_REGION_INDEX; i <= VFIO_PCI_BAR5_REGION_INDEX; i++) {
		const struct iovk_vfio_region *reg = iovk_vfio_device_get_region(c->dev, i);
		uint64_t off = 0;
		uint32_t v_mmap, v_pread;
		void *base;

		if (!reg || reg->size == 0 || !(reg->flags & VFIO_REGION_INFO_FLAG_MMAP))
			continue;
		if (reg->has_sparse_mmap) {
			size_t k = 0;

			while (k < reg->n_sparse_areas && reg->sparse_areas[k].size < 4)
				k++;
			if (k == reg->n_sparse_areas)
				continue; /* nothing mappable after all */
			off = reg->sparse_areas[k].offset;
		}
		if (iovk_vfio_device_map_region(c->dev, i, &base) < 0) {
			step(rep, "bar-mmap", REPORT_FAIL, "%s", lib_error(rep->cli));
			return;
		}
		v_mmap = *(volatile uint32_t *)((uint8_t *)base + off);
		if (iovk_vfio_device_region_read(c->dev, i, off, &v_pread, sizeof(v_pread)) < 0) {
			step(rep, "bar-mmap", REPORT_FAIL, "%s", lib_error(rep->cli));
			return;
		}
		mapped++;
		if (len < sizeof(msg))
			/* Registers may change between two reads (counters,
			 * status): a difference is reported, not failed. */
			len += (size_t)snprintf(msg + len, sizeof(msg) - len,
						"%sBAR%u (0x%" PRIx64 " bytes%s) at 0x%" PRIx64 ": 0x%08x%s", len ? "; " : "",
						i, reg->size, reg->has_sparse_mmap ? ", sparse" : "", off, v_mmap,
						v_mmap == v_pread ? ", pread agrees" : ", pread differs");
	}
	if (!mapped)
		step(rep, "bar-mmap", REPORT_SKIP, "no BAR of this device can be mmap'ed");
	else
		step(rep, "bar-mmap", REPORT_PASS, "read through mmap: %s", msg);
}

static void step_dma_map(struct report *rep, struct vfio_cmd *c, bool huge)
{
	const char *name = huge ? "dma-map-hugetlb" : "dma-map";
	struct iovk_vfio_buffer *buf = NULL;
	uint32_t avail0 = 0, avail1 = 0, avail2 = 0;
	bool reported = false;
	uint64_t iova = 0, lookup = 0, size;
	uint8_t *p;
	int r;

	r = iovk_vfio_buffer_new(rep->cli->ctx, huge ? 2 << 20 : 1 << 20,
				 huge ? IOVK_VFIO_BUFFER_REQUIRE_HUGETLB : 0, &buf);
	if (r < 0) {
		step(rep, name, huge ? REPORT_SKIP : REPORT_FAIL, "%s", lib_error(rep->cli));
		return;
	}
	size = iovk_vfio_buffer_get_size(buf);
	p = iovk_vfio_buffer_get_addr(buf);
	memset(p, 0xa5, size);
	if (iovk_vfio_iommu_get_dma_avail(c->iommu, &avail0, &reported) < 0 ||
	    iovk_vfio_dma_map(c->iommu, p, size, NULL, &iova) < 0) {
		step(rep, name, REPORT_FAIL, "%s", lib_error(rep->cli));
		goto out;
	}
	if (iovk_vfio_dma_to_iova(c->iommu, p + size / 2, &lookup) < 0 || lookup != iova + size / 2) {
		step(rep, name, REPORT_FAIL,
		     "the shadow list translates the buffer's middle to 0x%" PRIx64 ", not 0x%" PRIx64,
		     lookup, iova + size / 2);
		(void)iovk_vfio_dma_unmap(c->iommu, iova, size);
		goto out;
	}
	if (iovk_vfio_iommu_get_dma_avail(c->iommu, &avail1, NULL) < 0 ||
	    iovk_vfio_dma_unmap(c->iommu, iova, size) < 0 ||
	    iovk_vfio_iommu_get_dma_avail(c->iommu, &avail2, NULL) < 0) {
		step(rep, name, REPORT_FAIL, "%s", lib_error(rep->cli));
		goto out;
	}
	if (reported && (avail1 != avail0 - 1 || avail2 != avail0)) {
		step(rep, name, REPORT_FAIL,
		     "dma_avail went %" PRIu32 " -> %" PRIu32 " -> %" PRIu32 " over map and unmap",
		     avail0, avail1, avail2);
		goto out;
	}
	if (avail0 == IOVK_VFIO_DMA_AVAIL_UNLIMITED)
		step(rep, name, REPORT_PASS,
		     "mapped a %" PRIu64 "-byte memfd buffer (%zu-byte pages) at IOVA 0x%" PRIx64 " and unmapped it; "
		     "dma_avail unlimited (iommufd)",
		     size, iovk_vfio_buffer_get_page_size(buf), iova);
	else
		step(rep, name, REPORT_PASS,
		     "mapped a %" PRIu64 "-byte memfd buffer (%zu-byte pages) at IOVA 0x%" PRIx64 " and unmapped it; "
		     "dma_avail %" PRIu32 " -> %" PRIu32 " -> %" PRIu32 "%s",
		     size, iovk_vfio_buffer_get_page_size(buf), iova, avail0, avail1, avail2,
		     reported ? "" : " (assumed: the kernel does not report it)");
out:
	iovk_vfio_buffer_free(buf);
}

/* Maps the last page-aligned area of the highest valid range: the top of IOVA space works. */
static void step_dma_map_fixed(struct report *rep, struct vfio_cmd *c, struct iovk_vfio_buffer *buf)
{
	const struct iovk_iova_range *ranges;
	size_t n;
	uint64_t size = iovk_vfio_buffer_get_size(buf), iova;

	if (iovk_vfio_iommu_get_iova_ranges(c->iommu, &ranges, &n) < 0) {
		step(rep, "dma-map-fixed", REPORT_FAIL, "%s", lib_error(rep->cli));
		return;
	}
	if (ranges[n - 1].end - ranges[n - 1].start < size - 1) {
		step(rep, "dma-map-fixed", REPORT_SKIP, "the last IOVA range is smaller than %" PRIu64 " bytes", size);
		return;
	}
	iova = (ranges[n - 1].end - (size - 1)) & ~(uint64_t)(size - 1);
	if (iova < ranges[n - 1].start) {
		step(rep, "dma-map-fixed", REPORT_SKIP,
		     "no aligned %" PRIu64 "-byte area in the last IOVA range", size);
		return;
	}
	if (iovk_vfio_dma_map(c->iommu, iovk_vfio_buffer_get_addr(buf), size,
			      &IOVK_OPTS(iovk_vfio_dma_map_opts, .flags = IOVK_VFIO_DMA_FIXED_IOVA, .iova = iova),
			      NULL) < 0) {
		step(rep, "dma-map-fixed", REPORT_FAIL, "%s", lib_error(rep->cli));
		return;
	}
	if (iovk_vfio_dma_unmap(c->iommu, iova, size) < 0) {
		step(rep, "dma-map-fixed", REPORT_FAIL, "%s", lib_error(rep->cli));
		return;
	}
	step(rep, "dma-map-fixed", REPORT_PASS, "mapped and unmapped %" PRIu64 " bytes at IOVA 0x%" PRIx64
	     ", the top of the last valid range (ends 0x%" PRIx64 ")", size, iova, ranges[n - 1].end);
}

/*
 * A map just outside the valid ranges must be refused twice: by iovkit's own
 * check (-ERANGE, naming the ranges) and by the kernel when that check is
 * skipped (type1 returns -EINVAL).
 */
static void step_dma_outside(struct report *rep, struct vfio_cmd *c, struct iovk_vfio_buffer *buf)
{
	const struct iovk_iova_range *ranges;
	size_t n;
	uint64_t size = iovk_vfio_buffer_get_size(buf), iova;
	void *p = iovk_vfio_buffer_get_addr(buf);
	char lib_msg[512];
	int r;

	if (iovk_vfio_iommu_get_iova_ranges(c->iommu, &ranges, &n) < 0) {
		step(rep, "dma-outside-ranges", REPORT_FAIL, "%s", lib_error(rep->cli));
		return;
	}
	/* The first page after the first range: the start of a hole (the
	 * MSI window on x86) or past the IOMMU's address width; else the
	 * page at 0 when the first range starts above it. */
	if (ranges[0].end < UINT64_MAX - 0xfff)
		iova = (ranges[0].end + 0x1000) & ~(uint64_t)0xfff;
	else if (ranges[0].start >= 0x1000)
		iova = 0;
	else {
		step(rep, "dma-outside-ranges", REPORT_SKIP, "the valid IOVA ranges cover the whole 64-bit space");
		return;
	}
	r = iovk_vfio_dma_map(c->iommu, p, size,
			      &IOVK_OPTS(iovk_vfio_dma_map_opts, .flags = IOVK_VFIO_DMA_FIXED_IOVA, .iova = iova), NULL);
	if (r >= 0) {
		(void)iovk_vfio_dma_unmap(c->iommu, iova, size);
		step(rep, "dma-outside-ranges", REPORT_FAIL, "iovkit mapped IOVA 0x%" PRIx64 ", outside the valid ranges", iova);
		return;
	}
	if (r != -ERANGE) {
		step(rep, "dma-outside-ranges", REPORT_FAIL,
		     "iovkit refused IOVA 0x%" PRIx64 " with %s, not ERANGE: %s", iova,
		     strerrorname_np(-r) ?: "?", lib_error(rep->cli));
		return;
	}
	snprintf(lib_msg, sizeof(lib_msg), "%s", lib_error(rep->cli));
	r = iovk_vfio_dma_map(c->iommu, p, size,
			      &IOVK_OPTS(iovk_vfio_dma_map_opts, .flags = IOVK_VFIO_DMA_FIXED_IOVA | IOVK_VFIO_DMA_NO_CHECK,
					 .iova = iova),
			      NULL);
	if (r >= 0) {
		(void)iovk_vfio_dma_unmap(c->iommu, iova, size);
		step(rep, "dma-outside-ranges", REPORT_FAIL, "the kernel mapped IOVA 0x%" PRIx64 " although it lies outside the "
		     "valid ranges it reported", iova);
		return;
	}
	step(rep, "dma-outside-ranges", REPORT_PASS,
	     "IOVA 0x%" PRIx64 " refused by iovkit (%s) and by the kernel (%s)", iova,
	     lib_msg, strerrorname_np(-r) ?: "?");
}

static void step_dma_overflow(struct report *rep, struct vfio_cmd *c, struct iovk_vfio_buffer *buf)
{
	uint64_t size = iovk_vfio_buffer_get_size(buf), iova = UINT64_MAX - size / 2 + 1;
	int r;

	r = iovk_vfio_dma_map(c->iommu, iovk_vfio_buffer_get_addr(buf), size,
			      &IOVK_OPTS(iovk_vfio_dma_map_opts, .flags = IOVK_VFIO_DMA_FIXED_IOVA | IOVK_VFIO_DMA_NO_CHECK,
					 .iova = iova),
			      NULL);
	if (r >= 0) {
		(void)iovk_vfio_dma_unmap(c->iommu, iova, size);
		step(rep, "dma-overflow", REPORT_FAIL,
		     "a map at IOVA 0x%" PRIx64 " of %" PRIu64 " bytes (wrapping) succeeded",
		     iova, size);
	} else if (r != -EOVERFLOW)
		step(rep, "dma-overflow", REPORT_FAIL, "a wrapping map was refused with %s, not EOVERFLOW: %s",
		     strerrorname_np(-r) ?: "?", lib_error(rep->cli));
	else
		step(rep, "dma-overflow", REPORT_PASS,
		     "a map wrapping past 2^64 (IOVA 0x%" PRIx64 ", %" PRIu64 " bytes) is "
		     "refused with EOVERFLOW", iova, size);
}

/* Waits up to 1 s for an eventfd; returns its counter or -errno. */
static long long wait_eventfd(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	uint64_t v;
	int r;

	r = poll(&pfd, 1, 1000);
	if (r < 0)
		return -errno;
	if (r == 0)
		return -ETIMEDOUT;
	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return -EIO;
	return (long long)v;
}

static void step_irq(struct report *rep, struct vfio_cmd *c, uint32_t index, const char *name)
{
	const struct iovk_vfio_irq *irq = iovk_vfio_device_get_irq(c->dev, index);
	uint32_t count;

	if (!irq || irq->count == 0) {
		step(rep, name, REPORT_SKIP, "the device has no %s vectors", iovk_vfio_pci_irq_name(index));
		return;
	}
	count = irq->count;
	if (iovk_vfio_device_irq_enable(c->dev, index, count) < 0) {
		step(rep, name, REPORT_FAIL, "%s", lib_error(rep->cli));
		return;
	}
	for (uint32_t v = 0; v < count; v++) {
		int fd = iovk_vfio_device_irq_get_eventfd(c->dev, index, v);
		long long got;

		if (iovk_vfio_device_irq_trigger(c->dev, index, v) < 0) {
			step(rep, name, REPORT_FAIL, "%s", lib_error(rep->cli));
			goto out;
		}
		got = wait_eventfd(fd);
		if (got != 1) {
			step(rep, name, REPORT_FAIL, "vector %u: the eventfd %s after the kernel triggered it", v,
			     got == -ETIMEDOUT ? "stayed silent for 1 s" : got < 0 ? strerror((int)-got) : "counted more than 1");
			goto out;
		}
		if (index == VFIO_PCI_INTX_IRQ_INDEX && iovk_vfio_device_irq_unmask(c->dev, index) < 0) {
			step(rep, name, REPORT_FAIL, "%s", lib_error(rep->cli));
			goto out;
		}
	}
	step(rep, name, REPORT_PASS, "%u vector(s) enabled with one eventfd each; a kernel-triggered interrupt arrived on every one",
	     count);
out:
	if (iovk_vfio_device_irq_disable(c->dev, index) < 0)
		step(rep, name, REPORT_FAIL, "%s", lib_error(rep->cli));
}

static void step_reset(struct report *rep, struct vfio_cmd *c)
{
	const char *methods = iovk_vfio_device_get_reset_methods(c->dev);
	uint8_t id0[4], id1[4];
	int r;

	if (!(iovk_vfio_device_get_flags(c->dev) & VFIO_DEVICE_FLAGS_RESET)) {
		step(rep, "reset", REPORT_SKIP, "the device offers no reset VFIO can use (reset_method: %s)",
		     methods && *methods ? methods : "none");
		return;
	}
	if (iovk_vfio_device_config_read(c->dev, 0, id0, sizeof(id0)) < 0) {
		step(rep, "reset", REPORT_FAIL, "%s", lib_error(rep->cli));
		return;
	}
	r = iovk_vfio_device_reset(c->dev);
	if (r < 0) {
		step(rep, "reset", REPORT_FAIL, "%s", lib_error(rep->cli));
		return;
	}
	if (iovk_vfio_device_config_read(c->dev, 0, id1, sizeof(id1)) < 0) {
		step(rep, "reset", REPORT_FAIL, "after the reset: %s", lib_error(rep->cli));
		return;
	}
	if (memcmp(id0, id1, sizeof(id0)) != 0)
		step(rep, "reset", REPORT_FAIL, "vendor/device id changed across the reset (%02x%02x:%02x%02x)", id1[1], id1[0],
		     id1[3], id1[2]);
	else
		step(rep, "reset", REPORT_PASS,
		     "VFIO_DEVICE_RESET done (reset_method: %s); the device answers config reads",
		     methods && *methods ? methods : "unknown");
}

int vfio_selftest(struct cli *cli, int argc, char **argv)
{
	struct vfio_cmd c = {};
	struct report rep = {
		.cli = cli,
		.name_width = 19,
		.statuses = 1u << REPORT_PASS | 1u << REPORT_FAIL | 1u << REPORT_SKIP,
	};
	struct iovk_vfio_buffer *buf = NULL;
	struct json_object *o;
	int r;

	r = open_device(cli, "vfio selftest", selftest_help, argc, argv, &c, false);
	if (r != EXIT_OK)
		return r == -1 ? EXIT_OK : r;
	step(&rep, "open", REPORT_PASS, "opened through the VFIO %s (%s), IOMMU group %d",
	     iovk_vfio_iommu_get_backend(c.iommu), iovk_vfio_mode_to_string(iovk_vfio_iommu_get_mode(c.iommu)),
	     iovk_vfio_device_get_iommu_group(c.dev));
	step_iommu_info(&rep, &c);
	step_config_read(&rep, &c);
	step_config_write(&rep, &c);
	step_bar_mmap(&rep, &c);
	step_dma_map(&rep, &c, false);
	step_dma_map(&rep, &c, true);
	if (iovk_vfio_buffer_new(cli->ctx, 1 << 20, 0, &buf) < 0) {
		step(&rep, "dma-map-fixed", REPORT_FAIL, "%s", lib_error(cli));
	} else {
		step_dma_map_fixed(&rep, &c, buf);
		step_dma_outside(&rep, &c, buf);
		step_dma_overflow(&rep, &c, buf);
		iovk_vfio_buffer_free(buf);
	}
	step_irq(&rep, &c, VFIO_PCI_MSIX_IRQ_INDEX, "msix");
	step_irq(&rep, &c, VFIO_PCI_MSI_IRQ_INDEX, "msi");
	step_irq(&rep, &c, VFIO_PCI_INTX_IRQ_INDEX, "intx");
	step_reset(&rep, &c);

	o = json_object_new_object();
	json_object_object_add(o, "address", json_object_new_string(c.address));
	json_object_object_add(o, "backend", json_object_new_string(iovk_vfio_iommu_get_backend(c.iommu)));
	json_object_object_add(o, "mode",
			       json_object_new_string(iovk_vfio_mode_to_string(iovk_vfio_iommu_get_mode(c.iommu))));
	r = report_finish(&rep, o, "steps");
	vfio_cmd_done(&c);
	return r;
}
