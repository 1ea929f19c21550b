/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The decoders of the kernel's VFIO replies (lib/vfio/caps.c,
 * hot-reset.c, iommufd.c), on buffers a buggy or hostile kernel, or a
 * malicious VFIO user driver behind vfio-user, could hand back. The first
 * byte picks the decoder; the rest is the reply:
 *   0  iovk_vfio_cap_chain_walk(): the walk every chain goes through (the
 *      buffer's first two bytes give the fixed header size and the first
 *      offset)
 *   1  iovk_vfio_parse_region_info(): VFIO_DEVICE_GET_REGION_INFO and its
 *      sparse-mmap, MSI-X and type capabilities
 *   2  iovk_vfio_parse_iommu_info(): VFIO_IOMMU_GET_INFO, its IOVA-range and
 *      DMA-avail capabilities
 *   3  iovk_vfio_parse_hot_reset_info(): VFIO_DEVICE_GET_PCI_HOT_RESET_INFO
 *   4  vfio_iommufd_ranges_convert(): IOMMU_IOAS_IOVA_RANGES (internal)
 * Every buffer is copied to an allocation of exactly its size, so ASan sees
 * a read past the end. Oracles: what decodes obeys what the header
 * promises (offsets inside the buffer, sparse areas inside the region,
 * ranges sorted and disjoint).
 */
#include <errno.h>

#include <iovkit/vfio.h>

#include "lib/vfio/vfio-internal.h"

#include "fuzz.h"

static void check_ranges(const struct iovk_iova_range *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		FUZZ_CHECK(r[i].start <= r[i].end, "range %zu inverted", i);
		FUZZ_CHECK(i == 0 || r[i - 1].end < r[i].start, "ranges %zu and %zu overlap or are unsorted", i - 1, i);
	}
}

/* The first two bytes give the fixed header's size and the first offset. */
static void fuzz_chain(const uint8_t *buf, size_t size)
{
	struct iovk_vfio_cap caps[IOVK_VFIO_CAP_MAX];
	size_t n = 0, hdr_size = size >= 2 ? buf[0] : 0;
	uint32_t first = size >= 2 ? buf[1] : 0;
	int r = iovk_vfio_cap_chain_walk(buf, size, hdr_size, first, caps, IOVK_VFIO_CAP_MAX, &n);

	FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -ELOOP || r == -E2BIG, "%d", r);
	if (r < 0)
		return;
	FUZZ_CHECK(n <= IOVK_VFIO_CAP_MAX && (first == 0) == (n == 0), "%zu caps from offset %u", n, first);
	for (size_t i = 0; i < n; i++) {
		FUZZ_CHECK(caps[i].offset >= hdr_size && caps[i].offset + 8u <= size, "cap %zu at %u of %zu", i,
			   caps[i].offset, size);
		FUZZ_CHECK(caps[i].avail == size - caps[i].offset, "cap %zu", i);
		for (size_t k = 0; k < i; k++)
			FUZZ_CHECK(caps[k].offset != caps[i].offset, "caps %zu and %zu at one offset", k, i);
	}
}

static void fuzz_region(const uint8_t *buf, size_t size)
{
	struct iovk_vfio_region r;

	if (iovk_vfio_parse_region_info(buf, size, &r) < 0)
		return;
	FUZZ_CHECK(r.n_caps <= IOVK_VFIO_CAP_MAX && r.n_sparse_areas <= IOVK_VFIO_SPARSE_MAX, "%zu caps", r.n_caps);
	for (size_t i = 0; i < r.n_sparse_areas; i++)
		FUZZ_CHECK(r.sparse_areas[i].offset <= r.size && r.sparse_areas[i].size <= r.size - r.sparse_areas[i].offset,
			   "sparse area %zu outside the region", i);
}

static void fuzz_iommu(const uint8_t *buf, size_t size)
{
	struct iovk_vfio_iommu_info info;

	if (iovk_vfio_parse_iommu_info(buf, size, &info) < 0)
		return;
	FUZZ_CHECK(info.has_iova_ranges || info.n_iova_ranges == 0, "ranges without the capability");
	FUZZ_CHECK(info.n_iova_ranges <= IOVK_VFIO_IOVA_RANGES_MAX, "%zu ranges", info.n_iova_ranges);
	check_ranges(info.iova_ranges, info.n_iova_ranges);
	iovk_vfio_iommu_info_clear(&info);
}

static void fuzz_hot_reset(const uint8_t *buf, size_t size)
{
	static const int held[] = { 1, 7, 42 };
	struct iovk_vfio_hot_reset_info info;

	if (iovk_vfio_parse_hot_reset_info(buf, size, held, 3, &info) < 0)
		return;
	FUZZ_CHECK(info.n_devices >= 1 && info.n_devices <= IOVK_VFIO_HOT_RESET_DEVICES_MAX, "%zu", info.n_devices);
	FUZZ_CHECK(info.n_unowned <= info.n_devices, "%zu of %zu", info.n_unowned, info.n_devices);
	for (size_t i = 0; i < info.n_devices; i++) {
		struct iovk_pci_addr a;

		FUZZ_CHECK(iovk_pci_addr_parse(info.devices[i].address, &a) == 0, "'%s'", info.devices[i].address);
	}
	iovk_vfio_hot_reset_info_clear(&info);
}

static void fuzz_iommufd_ranges(const uint8_t *buf, size_t size)
{
	struct iovk_iova_range *ranges = NULL;
	/* struct iommu_iova_range: two u64, start and last */
	size_t n = size / 16;

	if (vfio_iommufd_ranges_convert(buf, n, &ranges) < 0)
		return;
	check_ranges(ranges, n);
	free(ranges);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static void (*const decoders[])(const uint8_t *buf, size_t size) = {
		fuzz_chain, fuzz_region, fuzz_iommu, fuzz_hot_reset, fuzz_iommufd_ranges,
	};
	uint8_t *buf;

	if (size < 1)
		return 0;
	/* exactly size bytes, 8-aligned as the kernel's replies are (malloc) */
	buf = malloc(size - 1 ? size - 1 : 1);
	if (!buf)
		abort();
	memcpy(buf, data + 1, size - 1);
	decoders[data[0] % ELEMENTSOF(decoders)](buf, size - 1);
	free(buf);
	return 0;
}
