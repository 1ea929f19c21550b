/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * iovd's configuration (/etc/iovkit/iovd.json, iovd(8)) through
 * config_parse(), what config_load() hands the file's text to. Links iovd's
 * objects but main.o, as the unit tests do. Oracles: a configuration that
 * loads has pools with valid, distinct names and a selector each, and its
 * limits are not 0; one that does not load says why (errors go to iovd's
 * log, silenced here) with -EINVAL or -ENOMEM.
 */
#include <errno.h>

#include "daemon/iovd.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_string(data, size);
	struct config c = {};
	int r;

	log_max_priority = -1;
	r = config_parse("fuzz.json", text, size, &c);
	FUZZ_CHECK(r == 0 || r == -EINVAL || r == -ENOMEM || r == -EFBIG, "%d", r);
	if (r == 0) {
		for (size_t i = 0; i < c.n_pools; i++) {
			FUZZ_CHECK(pool_name_valid(c.pools[i].name), "pool %zu: '%s'", i, c.pools[i].name);
			FUZZ_CHECK(c.pools[i].selectors && c.pools[i].selectors[0], "pool %s without selectors",
				   c.pools[i].name);
			for (size_t k = 0; k < i; k++)
				FUZZ_CHECK(strcmp(c.pools[k].name, c.pools[i].name) != 0, "pool %s twice", c.pools[i].name);
		}
		FUZZ_CHECK(c.max_total > 0 && c.max_per_owner > 0, "limits %u %u", c.max_total, c.max_per_owner);
		config_done(&c);
	}
	free(text);
	return 0;
}
