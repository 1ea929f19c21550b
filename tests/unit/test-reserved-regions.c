// SPDX-License-Identifier: GPL-2.0-or-later
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>

#include <iovkit/iommu.h>

Test(reserved_regions, parses_kernel_format_sorted)
{
	const char *text = "0x00000000fee00000 0x00000000feefffff msi\n"
			   "0x00000000000a0000 0x00000000000bffff direct-relaxable\n";
	struct iovk_reserved_region *r = NULL;
	size_t n = 0;

	cr_assert_eq(iovk_iommu_parse_reserved_regions(text, &r, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(r[0].start, 0xa0000);
	cr_assert_eq(r[0].end, 0xbffff);
	cr_assert_str_eq(r[0].type, "direct-relaxable");
	cr_assert_eq(r[1].start, 0xfee00000);
	cr_assert_str_eq(r[1].type, "msi");
	free(r);
}

Test(reserved_regions, empty_is_fine)
{
	struct iovk_reserved_region *r = (void *)1;
	size_t n = 99;

	cr_assert_eq(iovk_iommu_parse_reserved_regions("", &r, &n), 0);
	cr_assert_eq(n, 0);
	cr_assert_null(r);
}

Test(reserved_regions, rejects_garbage)
{
	static const char *const bad[] = {
		"0xfee00000 msi\n",
		"0x2000 0x1000 msi\n",              /* start after end */
		"0x1000 0x2000 msi trailing\n",
		"zz 0x2000 msi\n",
		"0x1000 0x2000 averyveryveryverylongtypename_that_overflows\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct iovk_reserved_region *r = NULL;
		size_t n = 0;

		cr_expect_eq(iovk_iommu_parse_reserved_regions(bad[i], &r, &n), -EBADMSG, "'%s'", bad[i]);
		cr_expect_null(r);
	}
}
