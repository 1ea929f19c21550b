// SPDX-License-Identifier: GPL-2.0-or-later
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <iovkit/pci.h>

static void check_ok(const char *in, const char *canonical)
{
	struct iovk_pci_addr a;
	char buf[IOVK_PCI_ADDR_MAX];

	cr_assert_eq(iovk_pci_addr_parse(in, &a), 0, "'%s' should parse", in);
	cr_assert_str_eq(iovk_pci_addr_format(&a, buf), canonical);
}

Test(pci_addr, full_and_short_forms)
{
	check_ok("0000:01:00.0", "0000:01:00.0");
	check_ok("0000:ff:1f.7", "0000:ff:1f.7");
	check_ok("01:00.1", "0000:01:00.1");
	check_ok("0001:3B:00.2", "0001:3b:00.2");
	/* VMD domains are printed with five digits by the kernel */
	check_ok("10000:e1:00.0", "10000:e1:00.0");
	check_ok("ffffffff:00:1f.7", "ffffffff:00:1f.7");
	check_ok("0000abcd:00:00.0", "abcd:00:00.0");
}

/* iovk_pci_addr_format() writes the digits itself: what "%04x:%02x:%02x.%x" gives */
Test(pci_addr, format_is_printf_s)
{
	static const uint32_t domains[] = { 0, 1, 0xffff, 0x10000, 0xfffff, 0x100000, 0x1000000, 0x10000000, 0xffffffff };
	/* 8 and above are out of range, but the struct is the caller's to fill */
	static const unsigned fns[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 0xf, 0x10, 0x12, 0xff };
	char buf[IOVK_PCI_ADDR_MAX], want[IOVK_PCI_ADDR_MAX];

	for (size_t i = 0; i < sizeof(domains) / sizeof(domains[0]); i++)
		for (unsigned bus = 0; bus < 256; bus += 17)
			for (unsigned dev = 0; dev < 256; dev += 37)
				for (size_t f = 0; f < sizeof(fns) / sizeof(fns[0]); f++) {
					struct iovk_pci_addr a = { .domain = domains[i], .bus = (uint8_t)bus,
								   .dev = (uint8_t)dev, .fn = (uint8_t)fns[f] };

					snprintf(want, sizeof(want), "%04x:%02x:%02x.%x", a.domain, a.bus, a.dev, a.fn);
					cr_assert_str_eq(iovk_pci_addr_format(&a, buf), want);
				}
}

Test(pci_addr, fields)
{
	struct iovk_pci_addr a;

	cr_assert_eq(iovk_pci_addr_parse("0002:81:1e.5", &a), 0);
	cr_assert_eq(a.domain, 2);
	cr_assert_eq(a.bus, 0x81);
	cr_assert_eq(a.dev, 0x1e);
	cr_assert_eq(a.fn, 5);
}

Test(pci_addr, rejects_malformed)
{
	static const char *const bad[] = {
		"", "0", "01:00", "01:00.", "1:00.0", "001:00.0", "0000:1:00.0", "0000:01:0.0",
		"0000:01:20.0", /* device 32 */
		"0000:01:00.8", /* function 8 */
		"0000:01:00.00", "0000:01:00.0 ", " 0000:01:00.0", "0000:01:00.0\n", "0x00:01:00.0",
		"000:01:00.0", "g000:01:00.0", "0000:01:00:0", "0000.01:00.0", "123456789:00:00.0",
		"+000:01:00.0", "0000:01:00.-1", "00:00:00:00.0",
	};
	struct iovk_pci_addr a = { .domain = 0xdead };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(iovk_pci_addr_parse(bad[i], &a), -EINVAL, "'%s' must be rejected", bad[i]);
	cr_assert_eq(iovk_pci_addr_parse(NULL, &a), -EINVAL);
	/* ret_ untouched on failure */
	cr_assert_eq(a.domain, 0xdead);
}

Test(pci_addr, compare_orders_by_domain_bus_dev_fn)
{
	struct iovk_pci_addr a, b;

	iovk_pci_addr_parse("0000:01:00.1", &a);
	iovk_pci_addr_parse("0000:01:01.0", &b);
	cr_assert_lt(iovk_pci_addr_compare(&a, &b), 0);
	iovk_pci_addr_parse("0001:00:00.0", &b);
	cr_assert_lt(iovk_pci_addr_compare(&a, &b), 0);
	cr_assert_eq(iovk_pci_addr_compare(&a, &a), 0);
}
