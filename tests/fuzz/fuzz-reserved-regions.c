/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The text of an IOMMU group's reserved_regions file, through
 * iovk_iommu_parse_reserved_regions(). Oracles: regions come out sorted, each
 * with start <= end and a type; printed back as the kernel prints them
 * (iommu_group_show_resv_regions: "0x%016llx 0x%016llx %s\n") they parse to
 * the same regions.
 */
#include <inttypes.h>

#include <iovkit/iommu.h>

#include "fuzz.h"

/* A total order: the parser sorts by start alone, and qsort is not stable. */
static int region_cmp(const void *a, const void *b)
{
	const struct iovk_reserved_region *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return strcmp(x->type, y->type);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_string(data, size), *again = NULL;
	struct iovk_reserved_region *regions = NULL, *regions2 = NULL;
	size_t n = 0, n2 = 0, len = 0;
	FILE *f;

	if (iovk_iommu_parse_reserved_regions(text, &regions, &n) < 0) {
		free(text);
		return 0;
	}
	f = open_memstream(&again, &len);
	if (!f)
		abort();
	for (size_t i = 0; i < n; i++) {
		FUZZ_CHECK(regions[i].start <= regions[i].end, "region %zu", i);
		FUZZ_CHECK(i == 0 || regions[i - 1].start <= regions[i].start, "regions %zu and %zu unsorted", i - 1, i);
		FUZZ_CHECK(regions[i].type[0] && strlen(regions[i].type) < sizeof(regions[i].type), "region %zu", i);
		fprintf(f, "0x%016" PRIx64 " 0x%016" PRIx64 " %s\n", regions[i].start, regions[i].end, regions[i].type);
	}
	fclose(f);
	FUZZ_CHECK(iovk_iommu_parse_reserved_regions(again, &regions2, &n2) == 0, "printed back: %s", again);
	FUZZ_CHECK(n2 == n, "%zu regions, %zu printed back", n, n2);
	if (n > 1) {
		qsort(regions, n, sizeof(*regions), region_cmp);
		qsort(regions2, n2, sizeof(*regions2), region_cmp);
	}
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK(region_cmp(&regions[i], &regions2[i]) == 0, "region %zu printed back differs", i);
	free(regions);
	free(regions2);
	free(again);
	free(text);
	return 0;
}
