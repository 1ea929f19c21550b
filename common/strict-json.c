/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Strict JSON (strict-json.h): json-c's strict mode, then one pass over the
 * text json-c accepted for what it lets through. That pass can trust the
 * text's shape (strings end, escapes are whole, brackets match), so it only
 * tracks which strings are keys of which object.
 *
 * Keys are compared as json-c stores them, decoded: comparing the raw text
 * let "\u006eumvfs" slip past a "numvfs" that json-c then replaced. And in
 * one hash set for the whole document, keyed by (object, key): comparing each
 * key with every earlier one of its object took quadratic time, seconds for
 * a state file of iovd with tens of thousands of entries.
 *
 * The hash (FNV-1a) is not keyed: a file crafted for collisions makes the
 * set slow, not wrong. These files are written by root or by iovd.
 *
 * What json-c 0.16 takes in strict mode that RFC 8259 does not, and this
 * pass refuses: keys in single quotes, NaN, Infinity and -Infinity. The
 * pass never reads past the text whatever json-c let through: each string
 * walk is bounded by its end.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "common/macro.h"
#include "common/strict-json.h"

struct key_slot {
	uint64_t hash;
	uint32_t object; /* from 1; 0: the slot is free */
	uint32_t len;
	size_t off; /* in the arena of decoded keys */
};

struct key_set {
	struct key_slot *slots;
	size_t cap, n; /* cap: a power of two, at most half full */
	const char *arena;
};

struct frame {
	uint32_t object; /* 0 in an array */
	bool want_key;   /* in an object, after '{' or ',' */
};

static void fail_at(struct strict_json_error *err, const char *text, size_t offset, const char *what,
		    const char *detail)
{
	unsigned line = 1, col = 1;

	for (size_t i = 0; i < offset; i++) {
		if (text[i] == '\n') {
			line++;
			col = 1;
		} else
			col++;
	}
	err->line = line;
	err->column = col;
	snprintf(err->message, sizeof(err->message), "%s%s", what, detail ?: "");
}

static unsigned hex4(const char *s)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++)
		v = v * 16 + (unsigned)(s[i] <= '9' ? s[i] - '0' : (s[i] | 0x20) - 'a' + 10);
	return v;
}

static size_t put_utf8(char *out, uint32_t cp)
{
	char b[4];
	size_t n;

	if (cp < 0x80) {
		b[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		b[0] = (char)(0xc0 | cp >> 6);
		b[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		b[0] = (char)(0xe0 | cp >> 12);
		b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		b[0] = (char)(0xf0 | cp >> 18);
		b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	if (out)
		memcpy(out, b, n);
	return n;
}

static bool is_hex4(const char *s, const char *end)
{
	if (end - s < 4)
		return false;
	for (int i = 0; i < 4; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || ((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'f')))
			return false;
	return true;
}

/*
 * Walks the body of a string (s is past its opening quote) to its closing
 * quote, which it returns (NULL when end comes first, or a "\u" without
 * four hex digits: json-c refused those already), decoding it into out
 * (when not NULL) as json-c does: a surrogate pair is one character, a lone
 * surrogate U+FFFD. Never longer than the text it comes from. *ret_nul: it
 * holds "\u0000".
 */
static const char *scan_string(const char *s, const char *end, char *out, size_t *ret_len, bool *ret_nul)
{
	size_t n = 0;
	bool nul = false;

	while (s < end && *s != '"') {
		char c = *s++;

		if (c == '\\') {
			if (s == end)
				return NULL;
			c = *s++;
			if (c == 'u') {
				uint32_t cp;

				if (!is_hex4(s, end))
					return NULL;
				cp = hex4(s);
				s += 4;
				if (cp >= 0xd800 && cp <= 0xdbff && end - s >= 2 && s[0] == '\\' && s[1] == 'u' &&
				    is_hex4(s + 2, end)) {
					uint32_t lo = hex4(s + 2);

					if (lo >= 0xdc00 && lo <= 0xdfff) {
						cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
						s += 6;
					}
				}
				if (cp >= 0xd800 && cp <= 0xdfff)
					cp = 0xfffd;
				nul = nul || cp == 0;
				n += put_utf8(out ? out + n : NULL, cp);
				continue;
			}
			c = c == 'b' ? '\b' : c == 'f' ? '\f' : c == 'n' ? '\n' : c == 'r' ? '\r' : c == 't' ? '\t' : c;
		}
		if (out)
			out[n] = c;
		n++;
	}
	if (s == end)
		return NULL;
	*ret_len = n;
	*ret_nul = nul;
	return s;
}

static uint64_t key_hash(uint32_t object, const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (int i = 0; i < 4; i++) {
		h ^= (object >> (8 * i)) & 0xff;
		h *= 0x100000001b3ULL;
	}
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

static struct key_slot *key_find(struct key_set *set, uint64_t hash, uint32_t object, const char *s, size_t n)
{
	for (size_t i = hash & (set->cap - 1);; i = (i + 1) & (set->cap - 1)) {
		struct key_slot *k = &set->slots[i];

		if (k->object == 0 ||
		    (k->hash == hash && k->object == object && k->len == n && memcmp(set->arena + k->off, s, n) == 0))
			return k;
	}
}

/* Adds key s (n bytes at offset off of the arena) of object; 1 when the object has it already. */
static int key_add(struct key_set *set, uint32_t object, size_t off, size_t n)
{
	uint64_t hash = key_hash(object, set->arena + off, n);
	struct key_slot *k;

	if ((set->n + 1) * 2 > set->cap) {
		struct key_set bigger = { .cap = set->cap ? set->cap * 2 : 64, .n = set->n, .arena = set->arena };

		bigger.slots = calloc(bigger.cap, sizeof(*bigger.slots));
		if (!bigger.slots)
			return -ENOMEM;
		for (size_t i = 0; i < set->cap; i++)
			if (set->slots[i].object)
				*key_find(&bigger, set->slots[i].hash, 0, NULL, 0) = set->slots[i];
		free(set->slots);
		*set = bigger;
	}
	k = key_find(set, hash, object, set->arena + off, n);
	if (k->object)
		return 1;
	*k = (struct key_slot){ .hash = hash, .object = object, .len = (uint32_t)n, .off = off };
	set->n++;
	return 0;
}

/* Text between calls of stop(): a few milliseconds of either pass. */
#define STOP_EVERY (4u << 20)

/* The pass over text that json-c accepted: keys, "\u0000", what json-c should not have accepted. */
static int check_keys(const char *text, size_t len, int max_depth, unsigned flags, bool (*stop)(void),
		      struct strict_json_error *err)
{
	_cleanup_free_ struct frame *stack = calloc((size_t)max_depth + 1, sizeof(*stack));
	_cleanup_free_ char *arena = malloc(len + 1);
	struct key_set set = { .arena = arena };
	const char *end = text + len, *next_stop = text + STOP_EVERY;
	size_t used = 0;
	uint32_t objects = 0;
	int depth = -1, r = 0;

	if (!stack || !arena)
		return -ENOMEM;
	for (const char *c = text; c < end && r == 0; c++) {
		struct frame *f = depth >= 0 ? &stack[depth] : NULL;

		if (c >= next_stop) {
			next_stop = c + STOP_EVERY;
			if (stop && stop()) {
				r = -EINTR;
				break;
			}
		}
		switch (*c) {
		case '{':
		case '[':
			if (depth + 1 > max_depth) /* json-c refused it already */
				return -EBADMSG;
			stack[++depth] = (struct frame){ .object = *c == '{' ? ++objects : 0, .want_key = *c == '{' };
			break;
		case '}':
		case ']':
			if (depth < 0) { /* json-c refused it already */
				r = -EBADMSG;
				break;
			}
			depth--;
			break;
		case 'N':
		case 'I':
			/* no JSON literal has an upper-case letter, and a number's E follows a digit */
			fail_at(err, text, (size_t)(c - text), "not valid JSON: NaN and Infinity are not JSON numbers",
				NULL);
			r = -EBADMSG;
			break;
		case ',':
			if (f && f->object)
				f->want_key = true;
			break;
		case '\'':
			/*
			 * json-c 0.16 takes a key in single quotes even in strict
			 * mode; read as JSON, its '"' would start a string that
			 * runs past the end of the text (fuzz-iovd-state found it).
			 */
			fail_at(err, text, (size_t)(c - text), "not valid JSON: a string in single quotes", NULL);
			r = -EBADMSG;
			break;
		case '"': {
			bool key = f && f->object && f->want_key, nul;
			const char *start = c;
			size_t n;

			c = scan_string(c + 1, end, key ? arena + used : NULL, &n, &nul);
			if (!c) {
				fail_at(err, text, (size_t)(start - text), "not valid JSON: a string that does not end",
					NULL);
				r = -EBADMSG;
				break;
			}
			if (nul && (key || (flags & STRICT_JSON_NO_NUL_IN_STRINGS))) {
				fail_at(err, text, (size_t)(start - text),
					key ? "a key holds \\u0000 (json-c would cut it there)" : "a string holds \\u0000",
					NULL);
				r = -EBADMSG;
				break;
			}
			if (!key)
				break;
			f->want_key = false;
			r = key_add(&set, f->object, used, n);
			if (r > 0) {
				char shown[64];

				snprintf(shown, sizeof(shown), "\"%.*s\"%s", (int)(n < 48 ? n : 48), arena + used,
					 n > 48 ? "..." : "");
				fail_at(err, text, (size_t)(start - text), "this key appears twice in one object: ", shown);
				r = -EBADMSG;
			}
			used += n;
			break;
		}
		default:
			break;
		}
	}
	free(set.slots);
	return r;
}

int strict_json_parse(const char *text, size_t len, int max_depth, unsigned flags, struct json_object **ret,
		      struct strict_json_error *err)
{
	return strict_json_parse_until(text, len, max_depth, flags, NULL, ret, err);
}

int strict_json_parse_until(const char *text, size_t len, int max_depth, unsigned flags, bool (*stop)(void),
			    struct json_object **ret, struct strict_json_error *err)
{
	struct json_tokener *tok;
	struct json_object *root = NULL;
	enum json_tokener_error jerr;
	const char *nul;
	size_t end, off = 0;
	int r;

	*err = (struct strict_json_error){};
	if (text[len] != '\0')
		return -EINVAL;
	if (len >= INT_MAX || max_depth < 1 || max_depth > 1000) {
		snprintf(err->message, sizeof(err->message), "larger than json-c can read (%zu bytes)", len);
		return -EFBIG;
	}
	nul = memchr(text, '\0', len);
	if (nul) {
		fail_at(err, text, (size_t)(nul - text), "holds a NUL byte: not a JSON text", NULL);
		return -EBADMSG;
	}
	if (strspn(text, " \t\r\n") == len) {
		snprintf(err->message, sizeof(err->message), "empty: not a JSON text");
		return -EBADMSG;
	}
	tok = json_tokener_new_ex(max_depth);
	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	/*
	 * In pieces, so that stop() is asked in between; with the NUL after
	 * the text: the end of input ends a bare number too. json-c refuses
	 * what follows the value in the piece where it ends; what is in later
	 * pieces, blanks aside, is refused below.
	 */
	for (;;) {
		size_t n = len + 1 - off < STOP_EVERY ? len + 1 - off : STOP_EVERY;

		root = json_tokener_parse_ex(tok, text + off, (int)n);
		jerr = json_tokener_get_error(tok);
		end = off + json_tokener_get_parse_end(tok);
		off += n;
		if (jerr != json_tokener_continue || off == len + 1)
			break;
		if (stop && stop()) {
			json_tokener_free(tok);
			return -EINTR;
		}
	}
	json_tokener_free(tok);
	if (jerr == json_tokener_success && root) {
		end += strspn(text + end, " \t\r\n");
		if (end < len) {
			json_object_put(root);
			fail_at(err, text, end, "not valid JSON: text after the end of the document", NULL);
			return -EBADMSG;
		}
	}
	if (jerr != json_tokener_success || !root) {
		json_object_put(root);
		fail_at(err, text, end <= len ? end : len, "not valid JSON: ",
			jerr == json_tokener_continue || jerr == json_tokener_success ? "unexpected end of the text"
			: jerr == json_tokener_error_depth ? "nested too deep"
							   : json_tokener_error_desc(jerr));
		return -EBADMSG;
	}
	r = check_keys(text, len, max_depth, flags, stop, err);
	if (r < 0) {
		json_object_put(root);
		return r;
	}
	*ret = root;
	return 0;
}
