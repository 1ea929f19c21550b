/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The syntax of iovkit.json(5) files: json-c in strict mode, and what it
 * lets through refused here (see lib/apply/config.c's head comment): a key
 * twice in one object, compared decoded; keys in single quotes.
 */
#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "config-internal.h"

static void line_column(const char *text, size_t offset, unsigned *ret_line, unsigned *ret_col)
{
	unsigned line = 1, col = 1;

	for (size_t i = 0; i < offset && text[i]; i++) {
		if (text[i] == '\n') {
			line++;
			col = 1;
		} else
			col++;
	}
	*ret_line = line;
	*ret_col = col;
}

/*
 * Keys in one object. The largest object of this format, a VF, has 11
 * known keys and none may repeat, so an object with more is invalid anyway.
 * Refusing it here keeps the duplicate scan linear in the size of the text
 * (each key is compared with at most this many others), with no hash table
 * whose collisions a crafted file could choose: one object of 87,000 keys
 * cost 8.9 s of CPU when every key was compared with every earlier one.
 */
#define JSON_OBJECT_KEYS_MAX 64

struct key_frame {
	bool object;
	bool want_key; /* in an object, after '{' or ',' */
	size_t n_keys;
	struct {
		size_t start, len; /* the decoded key, in the scan's buffer */
	} keys[JSON_OBJECT_KEYS_MAX];
};

static int hex4(const char *s, uint32_t *ret)
{
	uint32_t v = 0;

	for (int i = 0; i < 4; i++) {
		char c = s[i];
		int d = c >= '0' && c <= '9' ? c - '0'
			: c >= 'a' && c <= 'f' ? c - 'a' + 10
			: c >= 'A' && c <= 'F' ? c - 'A' + 10
					       : -1;

		if (d < 0)
			return -EBADMSG;
		v = v << 4 | (uint32_t)d;
	}
	*ret = v;
	return 0;
}

static size_t utf8_put(uint32_t cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/*
 * Decodes the JSON string whose opening quote is at s into out (the decoded
 * form is never longer than the escaped one), sets *ret_len and points
 * *ret_end at the closing quote. json-c accepted the text, but it turns a
 * lone UTF-16 surrogate into U+FFFD and cuts a key at \u0000 (its keys are
 * C strings), so two different spellings could be one key behind our back:
 * both are refused. Returns 0, or -EBADMSG with *ret_end at the escape and
 * *ret_why saying what is wrong with it.
 */
static int decode_string(const char *s, char *out, size_t *ret_len, const char **ret_end, const char **ret_why)
{
	static const char escaped[] = "\"\\/bfnrt", unescaped[] = "\"\\/\b\f\n\r\t";
	size_t n = 0;
	const char *c, *e;

	for (c = s + 1; *c && *c != '"'; c++) {
		const char *esc = c;
		uint32_t cp, low;

		if (*c != '\\') {
			out[n++] = *c;
			continue;
		}
		e = *++c ? strchr(escaped, *c) : NULL;
		if (e) {
			out[n++] = unescaped[e - escaped];
			continue;
		}
		*ret_end = esc;
		if (*c != 'u') {
			*ret_why = "not a JSON escape";
			return -EBADMSG;
		}
		if (hex4(c + 1, &cp) < 0) {
			*ret_why = "\\u needs four hex digits";
			return -EBADMSG;
		}
		c += 4;
		if (cp == 0) {
			*ret_why = "a NUL character";
			return -EBADMSG;
		}
		if (cp >= 0xdc00 && cp <= 0xdfff) {
			*ret_why = "a UTF-16 low surrogate without a high one before it";
			return -EBADMSG;
		}
		if (cp >= 0xd800 && cp <= 0xdbff) {
			if (c[1] != '\\' || c[2] != 'u' || hex4(c + 3, &low) < 0 || low < 0xdc00 || low > 0xdfff) {
				*ret_why = "a UTF-16 high surrogate without a low one after it";
				return -EBADMSG;
			}
			cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
			c += 6;
		}
		n += utf8_put(cp, out + n);
	}
	if (!*c) {
		*ret_end = c;
		*ret_why = "the string does not end";
		return -EBADMSG;
	}
	*ret_len = n;
	*ret_end = c;
	return 0;
}

/* Error at the byte at of text: "NAME:LINE:COLUMN: ..." */
static int text_error(struct iovk_ctx *ctx, const char *name, const char *text, const char *at, const char *format,
		      ...) _printf_(5, 6);
static int text_error(struct iovk_ctx *ctx, const char *name, const char *text, const char *at, const char *format,
		      ...)
{
	char msg[512];
	unsigned line, col;
	va_list ap;

	va_start(ap, format);
	vsnprintf(msg, sizeof(msg), format, ap);
	va_end(ap);
	line_column(text, (size_t)(at - text), &line, &col);
	return set_error(ctx, -EBADMSG, "%s:%u:%u: %s", name, line, col, msg);
}

static bool printable(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/*
 * Checks the keys of every object of text, which json-c has already
 * accepted as strict JSON (so strings end and nesting is at most
 * JSON_DEPTH_MAX; but see '\'' below): a key twice in one object, compared decoded
 * ("\u006eumvfs" is "numvfs"; json-c keeps the last of two without a word),
 * an escape in a key that decodes to no character, more than
 * JSON_OBJECT_KEYS_MAX keys in one object. Returns 0, -ENOMEM, or -EBADMSG
 * with an error naming the file, line and column.
 */
int check_object_keys(struct iovk_ctx *ctx, const char *name, const char *text, size_t len)
{
	_cleanup_free_ struct key_frame *stack = calloc(JSON_DEPTH_MAX + 1, sizeof(*stack));
	_cleanup_free_ char *decoded = malloc(len + 1);
	size_t used = 0;
	int depth = -1;

	if (!stack || !decoded)
		return -ENOMEM;
	for (const char *c = text; *c; c++) {
		struct key_frame *f = depth >= 0 ? &stack[depth] : NULL;
		const char *start = c, *why;
		char *key = decoded + used;
		size_t key_len;

		switch (*c) {
		case '{':
		case '[':
			if (depth >= JSON_DEPTH_MAX)
				return text_error(ctx, name, text, c, "nested deeper than this format ever is");
			stack[++depth] = (struct key_frame){ .object = *c == '{', .want_key = *c == '{' };
			break;
		case '}':
		case ']':
			if (depth >= 0)
				depth--;
			break;
		case ',':
			if (f && f->object)
				f->want_key = true;
			break;
		case '\'':
			/*
			 * Outside a string: json-c 0.16 takes a key in single
			 * quotes even in strict mode ({'pfs': []}), and this scan
			 * would not see it as a key (fuzz-config's corpus has
			 * the case).
			 */
			return text_error(ctx, name, text, c, "not valid JSON: a string in single quotes");
		case '"':
			if (!f || !f->object || !f->want_key) {
				/* a value: skipped, json-c has checked it */
				for (c++; *c && *c != '"'; c++)
					if (*c == '\\' && c[1])
						c++;
				if (!*c)
					c--;
				break;
			}
			f->want_key = false;
			if (decode_string(start, key, &key_len, &c, &why) < 0)
				return text_error(ctx, name, text, c, "a key holds \"%.*s\": %s", c[0] == '\\' && c[1] == 'u' ? 6 : 2,
						  c, why);
			for (size_t i = 0; i < f->n_keys; i++)
				if (f->keys[i].len == key_len && memcmp(decoded + f->keys[i].start, key, key_len) == 0) {
					int raw_len = (int)(c - start - 1);

					/* As written, and decoded when that differs and prints. */
					if (((size_t)raw_len != key_len || memcmp(start + 1, key, key_len) != 0) &&
					    printable(key, key_len))
						return text_error(ctx, name, text, start,
								  "the key \"%.*s\" (\"%.*s\" decoded) appears twice in one object",
								  raw_len, start + 1, (int)key_len, key);
					return text_error(ctx, name, text, start, "the key \"%.*s\" appears twice in one object",
							  raw_len, start + 1);
				}
			if (f->n_keys >= JSON_OBJECT_KEYS_MAX)
				return text_error(ctx, name, text, start,
						  "more than %d keys in one object (no object of this format has more than 11)",
						  JSON_OBJECT_KEYS_MAX);
			f->keys[f->n_keys].start = used;
			f->keys[f->n_keys++].len = key_len;
			used += key_len;
			break;
		default:
			break;
		}
	}
	return 0;
}

int parse_text(struct iovk_ctx *ctx, const char *name, const char *text, size_t len,
	       struct json_object **ret)
{
	struct json_tokener *tok;
	struct json_object *root;
	enum json_tokener_error jerr;
	size_t end, offset;
	unsigned line, col;
	int r;

	if (memchr(text, '\0', len))
		return set_error(ctx, -EBADMSG, "%s: holds a NUL byte: not a JSON text", name);
	if (len >= INT_MAX)
		return set_error(ctx, -EFBIG, "%s: too large", name);
	tok = json_tokener_new_ex(JSON_DEPTH_MAX);
	if (!tok)
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	/* With the NUL: the end of input ends a bare number too. */
	root = json_tokener_parse_ex(tok, text, (int)len + 1);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (jerr != json_tokener_success || !root) {
		const char *what = jerr == json_tokener_continue || (jerr == json_tokener_success && !root)
					   ? "unexpected end of the text"
				   : jerr == json_tokener_error_depth
					   ? "nested deeper than this format ever is"
					   : json_tokener_error_desc(jerr);

		if (root)
			json_object_put(root);
		/* json-c stops at the byte it could not take. */
		offset = end <= len ? end : len;
		/* An empty file has no line to point at. */
		if (strspn(text, " \t\r\n") == len)
			return set_error(ctx, -EBADMSG, "%s: empty: expected a JSON object", name);
		line_column(text, offset, &line, &col);
		return set_error(ctx, -EBADMSG, "%s:%u:%u: not valid JSON: %s", name, line, col, what);
	}
	/* json-c stops after the NUL it was given; anything else is an error
	 * it reported above. */
	r = check_object_keys(ctx, name, text, len);
	if (r < 0) {
		json_object_put(root);
		return r;
	}
	*ret = root;
	return 0;
}

