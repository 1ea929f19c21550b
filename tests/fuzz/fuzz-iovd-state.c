/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * iovd's state file (<state dir>/allocations.json) through state_parse(),
 * what state_load() hands the file's text to. Links iovd's objects but
 * main.o. Oracle (save and reload): a table that loads, written with
 * state_serialize() and loaded into a fresh table, loads, and gives the same
 * text again: what iovd writes it can read, and nothing is lost on the way.
 */
#include <errno.h>

#include "daemon/iovd.h"

#include "fuzz.h"

/* Loads text into a fresh table and writes it back; NULL when it does not load. */
static char *load_and_save(const char *text, size_t len, size_t *ret_len, int *ret)
{
	struct manager *m = NULL;
	char *saved = NULL;

	if (manager_new(&m) < 0)
		abort();
	*ret = state_parse(m, "fuzz.json", text, len);
	FUZZ_CHECK(*ret == 0 || *ret == -EBADMSG || *ret == -ENOMEM || *ret == -EFBIG || *ret == -EINVAL, "%d", *ret);
	if (*ret == 0 && state_serialize(m, &saved, ret_len) < 0)
		abort();
	manager_free(m);
	return saved;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_string(data, size), *once, *twice;
	size_t len1 = 0, len2 = 0;
	int r;

	log_max_priority = -1;
	once = load_and_save(text, size, &len1, &r);
	if (once) {
		twice = load_and_save(once, len1, &len2, &r);
		FUZZ_CHECK(r == 0, "iovd cannot load what it wrote (%d): %s", r, once);
		FUZZ_CHECK(len1 == len2 && memcmp(once, twice, len1) == 0, "saved and reloaded:\n%s\nthen:\n%s", once,
			   twice);
		free(twice);
	}
	free(once);
	free(text);
	return 0;
}
