/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * PCI addresses, as every command and file names devices: iovk_pci_addr_parse()
 * on any text. Oracle: whatever parses formats to a canonical string that
 * parses to the same address and formats to itself.
 */
#include <iovkit/pci.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_string(data, size), buf[IOVK_PCI_ADDR_MAX], again[IOVK_PCI_ADDR_MAX];
	struct iovk_pci_addr a, b;

	if (iovk_pci_addr_parse(s, &a) == 0) {
		iovk_pci_addr_format(&a, buf);
		FUZZ_CHECK(strlen(buf) < IOVK_PCI_ADDR_MAX, "'%s'", buf);
		FUZZ_CHECK(iovk_pci_addr_parse(buf, &b) == 0, "'%s' parsed, its canonical form '%s' does not", s, buf);
		FUZZ_CHECK(iovk_pci_addr_compare(&a, &b) == 0, "'%s' -> '%s' is another address", s, buf);
		FUZZ_CHECK(a.dev < 32 && a.fn < 8, "'%s': device %u function %u", s, a.dev, a.fn);
		iovk_pci_addr_format(&b, again);
		FUZZ_CHECK(strcmp(buf, again) == 0, "'%s' formats as '%s', then as '%s'", s, buf, again);
	}
	free(s);
	return 0;
}
