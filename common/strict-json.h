/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Strict JSON for files a human or iovd writes: what json-c's strict mode
 * takes, without what it lets through silently. Shared by iovd's
 * configuration and state file, and meant for the library's iovkit.json(5)
 * parser too. Nothing here is public ABI.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

enum strict_json_flags {
	/*
	 * Refuse "\u0000" in string values as well as in keys: json-c keeps
	 * such a value whole, but every C caller reads it up to the NUL, so
	 * "wheel\u0000x" would be taken for "wheel".
	 */
	STRICT_JSON_NO_NUL_IN_STRINGS = 1u << 0,
};

struct strict_json_error {
	/* Of the offending byte, from 1; both 0 when the text as a whole is wrong (empty). */
	unsigned line, column;
	char message[160];
};

/*
 * Parses text[0, len) (text[len] must be its NUL) as exactly one JSON text
 * (RFC 8259): json-c in strict
 * mode (no comments, no trailing commas; valid UTF-8) nested at
 * most max_depth deep, and besides:
 *  - no NUL byte in the text, nothing but blanks after the value;
 *  - no key twice in one object, keys compared as json-c decodes them
 *    ("\u006eumvfs" is "numvfs"; a lone surrogate is U+FFFD), since json-c
 *    keeps the last of two equal keys without a word;
 *  - no key holding "\u0000" (json-c cuts a key there, so "a\u0000b"
 *    would be "a"), and with STRICT_JSON_NO_NUL_IN_STRINGS no value either;
 *  - no key in single quotes, no NaN, Infinity or -Infinity (json-c 0.16
 *    takes them in strict mode).
 * Time and memory are linear in len (the duplicate-key check is one hash
 * set over the document, not a comparison of every pair).
 *
 * Returns 0 and the document in *ret (json_object_put() it); -EBADMSG with
 * *err saying where and why; -EFBIG when len does not fit json-c's int;
 * -EINVAL when text[len] is not a NUL;
 * -ENOMEM.
 */
int strict_json_parse(const char *text, size_t len, int max_depth, unsigned flags, struct json_object **ret,
		      struct strict_json_error *err);
/*
 * The same, calling stop() (when not NULL) after every few MiB of text:
 * when it returns true, stops there with -EINTR (iovd: SIGTERM while it
 * loads a large state file).
 */
int strict_json_parse_until(const char *text, size_t len, int max_depth, unsigned flags, bool (*stop)(void),
			    struct json_object **ret, struct strict_json_error *err);
