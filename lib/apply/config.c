/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The declarative configuration (iovkit.json(5)): JSON files parsed with
 * json-c, strictly and whole, before anything looks at the system.
 *
 * json-c 0.16 in strict mode refuses most of what RFC 8259 refuses
 * (comments, trailing commas, values in single quotes) but takes a key in
 * single quotes, and keeps the last of two equal keys in an object without
 * a word: a second "numvfs" in a PF would silently win over the first.
 * check_object_keys() scans the text json-c accepted for both, comparing
 * keys decoded. (NaN and Infinity, which it takes too, are numbers with a
 * fraction to the type checks: no member takes one.)
 *
 * VF settings are turned into iproute2's words and handed to
 * iovk_vf_settings_parse(), so a file passes exactly the checks that
 * `iovctl vf set` applies; its error names the word, which leads back to the
 * JSON key.
 */
#include <ctype.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "config-internal.h"

/* VF indices fit in 16 bits: TotalVFs is a 16-bit field (SR-IOV 9.3.3.6). */
#define NUMVFS_MAX 65535


/* ---- lifetime ----------------------------------------------------------- */

static void cfg_vf_done(struct cfg_vf *v)
{
	free(v->path);
	free(v->driver);
}

static void cfg_pf_done(struct cfg_pf *p)
{
	for (size_t i = 0; i < p->n_vfs; i++)
		cfg_vf_done(&p->vfs[i]);
	free(p->vfs);
	free(p->path);
	free(p->name);
}

static void cfg_device_done(struct cfg_device *d)
{
	free(d->path);
	free(d->address);
	free(d->glob);
	free(d->match);
	free(d->driver);
}

/* Drops what was added after the first n_files/n_pfs/n_devices entries. */
void config_truncate(struct iovk_config *c, size_t n_files, size_t n_pfs, size_t n_devices)
{
	while (c->n_pfs > n_pfs)
		cfg_pf_done(&c->pfs[--c->n_pfs]);
	while (c->n_devices > n_devices)
		cfg_device_done(&c->devices[--c->n_devices]);
	while (c->n_files > n_files)
		free(c->files[--c->n_files]);
}

_public_ int iovk_config_new(struct iovk_ctx *ctx, struct iovk_config **ret_config)
{
	struct iovk_config *c;

	assert_return(ctx && ret_config, -EINVAL);
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->n_ref = 1;
	c->ctx = iovk_ctx_ref(ctx);
	*ret_config = c;
	return 0;
}

_public_ struct iovk_config *iovk_config_ref(struct iovk_config *config)
{
	if (config)
		config->n_ref++;
	return config;
}

_public_ struct iovk_config *iovk_config_unref(struct iovk_config *config)
{
	if (!config || --config->n_ref > 0)
		return NULL;
	config_truncate(config, 0, 0, 0);
	free(config->files);
	free(config->pfs);
	free(config->devices);
	iovk_ctx_unref(config->ctx);
	free(config);
	return NULL;
}

_public_ size_t iovk_config_get_n_files(const struct iovk_config *config)
{
	return config->n_files;
}

_public_ const char *iovk_config_get_file(const struct iovk_config *config, size_t i)
{
	return i < config->n_files ? config->files[i] : NULL;
}

/* ---- errors -------------------------------------------------------------- */

void parse_done(struct parse *p)
{
	for (size_t i = 0; i < p->n_pfs; i++)
		cfg_pf_done(&p->pfs[i]);
	for (size_t i = 0; i < p->n_devices; i++)
		cfg_device_done(&p->devices[i]);
	free(p->pfs);
	free(p->devices);
}

/* "FILE: PATH: problem"; PATH may be "" (the document itself). */
static int cfg_error(struct parse *p, int err, const char *path, const char *format, ...) _printf_(4, 5);
static int cfg_error(struct parse *p, int err, const char *path, const char *format, ...)
{
	char msg[768];
	va_list ap;

	va_start(ap, format);
	vsnprintf(msg, sizeof(msg), format, ap);
	va_end(ap);
	if (path && *path)
		return set_error(p->ctx, err, "%s: %s: %s", p->file, path, msg);
	return set_error(p->ctx, err, "%s: %s", p->file, msg);
}

static const char *type_words(struct json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_null:
		return "null";
	case json_type_boolean:
		return "a boolean";
	case json_type_double:
		return "a number with a fraction or exponent";
	case json_type_int:
		return "an integer";
	case json_type_object:
		return "an object";
	case json_type_array:
		return "an array";
	case json_type_string:
		return "a string";
	}
	return "something else";
}

static int type_error(struct parse *p, const char *path, const char *want, struct json_object *got)
{
	return cfg_error(p, -EINVAL, path, "expected %s, not %s", want, type_words(got));
}

/* Every key of obj must be one of keys (NULL-terminated). */
static int check_keys(struct parse *p, const char *path, struct json_object *obj, const char *const *keys)
{
	json_object_object_foreach(obj, key, val) {
		char expected[256] = "";
		size_t len = 0;
		bool known = false;

		(void)val;
		for (const char *const *k = keys; *k; k++) {
			int n;

			if (strcmp(key, *k) == 0)
				known = true;
			n = snprintf(expected + len, sizeof(expected) - len, "%s%s", len ? ", " : "", *k);
			if (n > 0 && (size_t)n < sizeof(expected) - len)
				len += (size_t)n;
		}
		if (!known)
			return cfg_error(p, -EINVAL, path, "unknown key \"%s\" (known here: %s)", key, expected);
	}
	return 0;
}

static void join_path(char *buf, size_t size, const char *path, const char *key)
{
	snprintf(buf, size, "%s%s%s", path, *path ? "." : "", key);
}

/* ---- typed members ---------------------------------------------------------- */

/* An integer member in [min, max]. Returns 1 when present, 0 when absent. */
static int get_int(struct parse *p, struct json_object *obj, const char *path, const char *key, int64_t min,
		   int64_t max, const char *what, int64_t *ret)
{
	struct json_object *v;
	char kp[128];
	int64_t n;

	if (!json_object_object_get_ex(obj, key, &v))
		return 0;
	join_path(kp, sizeof(kp), path, key);
	if (!json_object_is_type(v, json_type_int))
		return type_error(p, kp, "an integer", v);
	errno = 0;
	n = json_object_get_int64(v);
	if (errno == EINVAL || n < min || n > max)
		return cfg_error(p, -EINVAL, kp, "%s is not %s (%" PRId64 " to %" PRId64 ")",
				 json_object_get_string(v), what, min, max);
	*ret = n;
	return 1;
}

static int get_bool(struct parse *p, struct json_object *obj, const char *path, const char *key, bool *ret)
{
	struct json_object *v;
	char kp[128];

	if (!json_object_object_get_ex(obj, key, &v))
		return 0;
	join_path(kp, sizeof(kp), path, key);
	if (!json_object_is_type(v, json_type_boolean))
		return type_error(p, kp, "true or false", v);
	*ret = json_object_get_boolean(v);
	return 1;
}

static int get_string(struct parse *p, struct json_object *obj, const char *path, const char *key,
		      const char **ret)
{
	struct json_object *v;
	char kp[128];

	if (!json_object_object_get_ex(obj, key, &v))
		return 0;
	join_path(kp, sizeof(kp), path, key);
	if (!json_object_is_type(v, json_type_string))
		return type_error(p, kp, "a string", v);
	if (strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v))
		return cfg_error(p, -EINVAL, kp, "the string holds a NUL character");
	*ret = json_object_get_string(v);
	return 1;
}

static int get_array(struct parse *p, struct json_object *obj, const char *path, const char *key, size_t max,
		     struct json_object **ret)
{
	struct json_object *v;
	char kp[128];

	if (!json_object_object_get_ex(obj, key, &v))
		return 0;
	join_path(kp, sizeof(kp), path, key);
	if (!json_object_is_type(v, json_type_array))
		return type_error(p, kp, "an array", v);
	if (json_object_array_length(v) > max)
		return cfg_error(p, -E2BIG, kp, "%zu entries, more than the %zu allowed",
				 json_object_array_length(v), max);
	*ret = v;
	return 1;
}

static int require(struct parse *p, int r, const char *path, const char *key, const char *what)
{
	if (r == 0)
		return cfg_error(p, -EINVAL, path, "\"%s\" is missing (%s)", key, what);
	return r;
}

/* ---- names -------------------------------------------------------------------- */

/*
 * The rule lib/core/bind.c checks driver names by (characters the kernel's
 * driver names use); checked here too so a bad name fails the whole file
 * before anything is applied, not one step in the middle.
 */
static bool driver_name_valid(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len >= 64)
		return false;
	for (const char *c = s; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_' && *c != '.')
			return false;
	return true;
}

static int get_driver(struct parse *p, struct json_object *obj, const char *path, char **ret)
{
	const char *s;
	char kp[128];
	int r;

	r = get_string(p, obj, path, "driver", &s);
	if (r <= 0)
		return r;
	join_path(kp, sizeof(kp), path, "driver");
	if (!driver_name_valid(s))
		return cfg_error(p, -EINVAL, kp, "'%s' is not a driver name (\"vfio-pci\", a kernel driver, or \"none\")",
				 s);
	*ret = strdup(s);
	return *ret ? 1 : -ENOMEM;
}

/* A PCI address in canonical form. */
static int get_address(struct parse *p, struct json_object *obj, const char *path, const char *key, char **ret)
{
	struct iovk_pci_addr addr;
	char buf[IOVK_PCI_ADDR_MAX], kp[128];
	const char *s;
	int r;

	r = get_string(p, obj, path, key, &s);
	if (r <= 0)
		return r;
	join_path(kp, sizeof(kp), path, key);
	if (iovk_pci_addr_parse(s, &addr) < 0)
		return cfg_error(p, -EINVAL, kp, "'%s' is not a PCI address (DDDD:BB:DD.F or BB:DD.F)", s);
	*ret = strdup(iovk_pci_addr_format(&addr, buf));
	return *ret ? 1 : -ENOMEM;
}

/* ---- VFs ---------------------------------------------------------------------- */

static const char *const vf_keys[] = {
	"vf", "driver", "mac", "vlan", "qos", "proto", "spoofchk", "trust", "state", "min_tx_rate", "max_tx_rate",
	NULL,
};

/*
 * iovk_vf_settings_parse() names the word first ("vlan: '4096' is not ...",
 * "min_tx_rate 10 is above max_tx_rate 5"): the word is the JSON key.
 */
static int settings_error(struct parse *p, int err, const char *vf_path, struct json_object *vf)
{
	char msg[sizeof(((struct iovk_ctx *)0)->error)], key[32], kp[160];
	size_t n;

	snprintf(msg, sizeof(msg), "%s", iovk_ctx_get_error(p->ctx));
	n = strcspn(msg, ": ");
	if (n < sizeof(key)) {
		memcpy(key, msg, n);
		key[n] = '\0';
		for (const char *const *k = vf_keys; *k; k++)
			if (strcmp(key, *k) == 0 && json_object_object_get_ex(vf, key, NULL)) {
				join_path(kp, sizeof(kp), vf_path, key);
				return cfg_error(p, err, kp, "%s", msg[n] == ':' ? msg + n + 2 : msg);
			}
	}
	return cfg_error(p, err, vf_path, "%s", msg);
}

/* The VF's settings as the words of `ip link set DEV vf N ...`. */
static int parse_vf_settings(struct parse *p, struct json_object *vf, const char *path, struct iovk_vf_settings *s)
{
	static const char *const int_words[] = { "min_tx_rate", "max_tx_rate" };
	char numbers[5][24], kp[160];
	const char *argv[20], *str;
	int argc = 0, r, nn = 0;
	int64_t v;
	bool b, has_vlan;

	r = get_string(p, vf, path, "mac", &str);
	if (r < 0)
		return r;
	if (r > 0) {
		argv[argc++] = "mac";
		argv[argc++] = str;
	}
	/* Any integer: the range is iovk_vf_settings_parse()'s to check. */
	has_vlan = json_object_object_get_ex(vf, "vlan", NULL);
	if (!has_vlan)
		for (const char *const *k = (const char *const[]){ "qos", "proto", NULL }; *k; k++)
			if (json_object_object_get_ex(vf, *k, NULL)) {
				join_path(kp, sizeof(kp), path, *k);
				return cfg_error(p, -EINVAL, kp, "%s only goes with \"vlan\" (as in 'vlan VLANID %s ...')",
						 *k, *k);
			}
	r = get_int(p, vf, path, "vlan", INT64_MIN, INT64_MAX, "", &v);
	if (r < 0)
		return r;
	if (r > 0) {
		snprintf(numbers[nn], sizeof(numbers[nn]), "%" PRId64, v);
		argv[argc++] = "vlan";
		argv[argc++] = numbers[nn++];
		r = get_int(p, vf, path, "qos", INT64_MIN, INT64_MAX, "", &v);
		if (r < 0)
			return r;
		if (r > 0) {
			snprintf(numbers[nn], sizeof(numbers[nn]), "%" PRId64, v);
			argv[argc++] = "qos";
			argv[argc++] = numbers[nn++];
		}
		r = get_string(p, vf, path, "proto", &str);
		if (r < 0)
			return r;
		if (r > 0) {
			argv[argc++] = "proto";
			argv[argc++] = str;
		}
	}
	for (size_t i = 0; i < ELEMENTSOF(int_words); i++) {
		r = get_int(p, vf, path, int_words[i], INT64_MIN, INT64_MAX, "", &v);
		if (r < 0)
			return r;
		if (r > 0) {
			snprintf(numbers[nn], sizeof(numbers[nn]), "%" PRId64, v);
			argv[argc++] = int_words[i];
			argv[argc++] = numbers[nn++];
		}
	}
	for (const char *const *k = (const char *const[]){ "spoofchk", "trust", NULL }; *k; k++) {
		r = get_bool(p, vf, path, *k, &b);
		if (r < 0)
			return r;
		if (r > 0) {
			argv[argc++] = *k;
			argv[argc++] = b ? "on" : "off";
		}
	}
	r = get_string(p, vf, path, "state", &str);
	if (r < 0)
		return r;
	if (r > 0) {
		argv[argc++] = "state";
		argv[argc++] = str;
	}
	if (argc == 0)
		return 0;
	r = iovk_vf_settings_parse(p->ctx, argc, (char *const *)argv, s);
	if (r < 0)
		return settings_error(p, r, path, vf);
	return 0;
}

static int parse_vf(struct parse *p, struct json_object *vf, const char *path, struct cfg_vf *ret)
{
	struct cfg_vf v = { .settings = IOVK_VF_SETTINGS_INIT };
	int64_t index;
	int r;

	if (!json_object_is_type(vf, json_type_object))
		return type_error(p, path, "an object", vf);
	r = check_keys(p, path, vf, vf_keys);
	if (r < 0)
		return r;
	r = require(p, get_int(p, vf, path, "vf", 0, NUMVFS_MAX - 1, "a VF index", &index), path, "vf",
		    "the VF's index, from 0");
	if (r < 0)
		return r;
	v.index = (unsigned)index;
	r = parse_vf_settings(p, vf, path, &v.settings);
	if (r < 0)
		return r;
	v.path = strdup(path);
	if (!v.path)
		return -ENOMEM;
	r = get_driver(p, vf, path, &v.driver);
	if (r < 0) {
		cfg_vf_done(&v);
		return r;
	}
	*ret = v;
	return 0;
}

/* ---- PFs and devices --------------------------------------------------------- */

static int parse_pf(struct parse *p, struct json_object *pf, const char *path, struct cfg_pf *ret)
{
	static const char *const keys[] = { "pf", "numvfs", "autoprobe", "force", "vfs", NULL };
	struct cfg_pf c = { .file = p->file, .numvfs = -1, .autoprobe = -1 };
	struct json_object *vfs = NULL;
	_cleanup_free_ uint64_t *seen = NULL; /* VF indices declared so far */
	const char *name;
	char kp[128];
	int64_t n;
	bool b;
	int r;

	if (!json_object_is_type(pf, json_type_object))
		return type_error(p, path, "an object", pf);
	r = check_keys(p, path, pf, keys);
	if (r < 0)
		return r;
	r = require(p, get_string(p, pf, path, "pf", &name), path, "pf",
		    "the PF's PCI address or network interface name");
	if (r < 0)
		return r;
	join_path(kp, sizeof(kp), path, "pf");
	if (strchr(name, ':')) {
		/* As iovctl vf: a name holding ':' is a PCI address. */
		r = get_address(p, pf, path, "pf", &c.name);
		if (r < 0)
			return r;
		c.by_address = true;
	} else {
		if (!ifname_valid(name))
			return cfg_error(p, -EINVAL, kp, "'%s' is neither a PCI address nor a network interface name",
					 name);
		c.name = strdup(name);
		if (!c.name)
			return -ENOMEM;
	}
	r = get_int(p, pf, path, "numvfs", 0, NUMVFS_MAX, "a number of VFs", &n);
	if (r < 0)
		goto fail;
	if (r > 0)
		c.numvfs = (int)n;
	r = get_bool(p, pf, path, "autoprobe", &b);
	if (r < 0)
		goto fail;
	if (r > 0)
		c.autoprobe = b;
	r = get_bool(p, pf, path, "force", &b);
	if (r < 0)
		goto fail;
	c.force = r > 0 && b;
	r = get_array(p, pf, path, "vfs", NUMVFS_MAX, &vfs);
	if (r < 0)
		goto fail;
	c.path = strdup(path);
	if (!c.path) {
		r = -ENOMEM;
		goto fail;
	}
	if (vfs) {
		size_t n_vfs = json_object_array_length(vfs);

		c.vfs = calloc(n_vfs ? n_vfs : 1, sizeof(*c.vfs));
		seen = calloc(NUMVFS_MAX / 64 + 1, sizeof(*seen));
		if (!c.vfs || !seen) {
			r = -ENOMEM;
			goto fail;
		}
		for (size_t i = 0; i < n_vfs; i++) {
			char vp[128];

			snprintf(vp, sizeof(vp), "%s.vfs[%zu]", path, i);
			r = parse_vf(p, json_object_array_get_idx(vfs, i), vp, &c.vfs[c.n_vfs]);
			if (r < 0)
				goto fail;
			c.n_vfs++;
			/* A bit per index, not every earlier VF: 65535 VFs cost 1.9 s compared pairwise. */
			if (seen[c.vfs[i].index / 64] & (UINT64_C(1) << c.vfs[i].index % 64))
				for (size_t k = 0; k + 1 < c.n_vfs; k++)
					if (c.vfs[k].index == c.vfs[i].index) {
						snprintf(kp, sizeof(kp), "%s.vf", vp);
						r = cfg_error(p, -EINVAL, kp, "VF %u is declared twice (%s too)",
							      c.vfs[i].index, c.vfs[k].path);
						goto fail;
					}
			seen[c.vfs[i].index / 64] |= UINT64_C(1) << c.vfs[i].index % 64;
			if (c.numvfs >= 0 && c.vfs[i].index >= (unsigned)c.numvfs) {
				snprintf(kp, sizeof(kp), "%s.vf", vp);
				if (c.numvfs == 0)
					r = cfg_error(p, -EINVAL, kp, "VF %u does not exist: %s.numvfs is 0", c.vfs[i].index,
						      path);
				else
					r = cfg_error(p, -EINVAL, kp, "VF %u does not exist: %s.numvfs is %d (VFs 0 to %d)",
						      c.vfs[i].index, path, c.numvfs, c.numvfs - 1);
				goto fail;
			}
		}
	}
	*ret = c;
	return 0;
fail:
	cfg_pf_done(&c);
	return r;
}

/*
 * "device" as an address glob, as Nova's device_spec takes one
 * ("*:3b:02.*", "0000:3b:*"): matched with fnmatch(3) against canonical
 * addresses, so it is lower-cased. With one colon, the part before it
 * tells the form: a 2-character bus ("3b:02.*") or a lone "*" is
 * BB:DD.F, which means domain 0 and gets "0000:"; a 4-character domain
 * ("0000:3b*") is taken as written; anything else is refused, not guessed
 * at (prefixing "0000:3b*" would match nothing, silently). Only the
 * characters of an address and of a glob: a typo must not match everything.
 */
static int parse_glob(struct parse *p, const char *kp, const char *s, char **ret)
{
	size_t colons = 0;
	bool add_domain = false;
	char *g;

	if (strlen(s) > 32)
		return cfg_error(p, -EINVAL, kp, "'%s' is too long for an address glob", s);
	for (const char *c = s; *c; c++) {
		if (*c == ':')
			colons++;
		else if (!isxdigit((unsigned char)*c) && !strchr(".*?[]!-", *c))
			return cfg_error(p, -EINVAL, kp,
					 "'%s' is neither a PCI address nor an address glob (\"0000:3b:02.*\", "
					 "\"*:3b:*\"): '%c' is not allowed", s, *c);
	}
	if (colons < 1 || colons > 2)
		return cfg_error(p, -EINVAL, kp, "'%s' is not an address glob: DDDD:BB:DD.F or BB:DD.F with * ? [...]", s);
	if (colons == 1) {
		size_t head = strcspn(s, ":");

		if (head == 2 || (head == 1 && s[0] == '*'))
			add_domain = true;
		else if (head != 4)
			return cfg_error(p, -EINVAL, kp,
					 "'%s' is not an address glob: before its ':' must be a bus (BB:DD.F) "
					 "or a domain (DDDD:BB...)", s);
	}
	if (asprintf(&g, "%s%s", add_domain ? "0000:" : "", s) < 0)
		return -ENOMEM;
	for (char *c = g; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	/* fnmatch() reports a malformed bracket only by not matching: try one. */
	if (fnmatch(g, "0000:00:00.0", 0) != 0 && fnmatch(g, "0000:00:00.0", 0) != FNM_NOMATCH) {
		free(g);
		return cfg_error(p, -EINVAL, kp, "'%s' is not a valid glob", s);
	}
	*ret = g;
	return 0;
}

static int hex_field(const char *s, size_t len, int *ret)
{
	int v = 0;

	if (len == 1 && *s == '*') {
		*ret = -1;
		return 0;
	}
	if (len != 4)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (!isxdigit((unsigned char)s[i]))
			return -EINVAL;
		v = v * 16 + (isdigit((unsigned char)s[i]) ? s[i] - '0' : tolower((unsigned char)s[i]) - 'a' + 10);
	}
	*ret = v;
	return 0;
}

/* "ids": "VVVV:DDDD" or "VVVV:DDDD:CCCC" (class and subclass), as lspci -d
 * words it; DDDD and CCCC may be "*". */
static int parse_ids(struct parse *p, const char *kp, const char *s, struct cfg_device *d)
{
	const char *c1 = strchr(s, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	size_t len2 = c2 ? (size_t)(c2 - c1 - 1) : c1 ? strlen(c1 + 1) : 0;

	if (!c1 || hex_field(s, (size_t)(c1 - s), &d->vendor) < 0 || d->vendor < 0 ||
	    hex_field(c1 + 1, len2, &d->device_id) < 0 || (c2 && hex_field(c2 + 1, strlen(c2 + 1), &d->class_code) < 0))
		return cfg_error(p, -EINVAL, kp,
				 "'%s' is not VENDOR:DEVICE or VENDOR:DEVICE:CLASS in hex (\"8086:10ed\", "
				 "\"10de:*:0300\"), as lspci -d takes them", s);
	return 0;
}

static int parse_device(struct parse *p, struct json_object *dev, const char *path, struct cfg_device *ret)
{
	static const char *const keys[] = { "device", "ids", "driver", "force", NULL };
	struct cfg_device d = { .file = p->file, .vendor = -1, .device_id = -1, .class_code = -1 };
	const char *name = NULL, *ids = NULL;
	char kp[128];
	bool b;
	int r;

	if (!json_object_is_type(dev, json_type_object))
		return type_error(p, path, "an object", dev);
	r = check_keys(p, path, dev, keys);
	if (r < 0)
		return r;
	r = get_string(p, dev, path, "device", &name);
	if (r < 0)
		return r;
	r = get_string(p, dev, path, "ids", &ids);
	if (r < 0)
		return r;
	if (!name && !ids)
		return cfg_error(p, -EINVAL, path,
				 "\"device\" is missing (the device's PCI address or an address glob; or \"ids\": "
				 "\"VENDOR:DEVICE\")");
	if (name && !strpbrk(name, "*?[") && !ids) {
		r = get_address(p, dev, path, "device", &d.address);
		if (r < 0)
			goto fail;
	} else {
		if (name) {
			join_path(kp, sizeof(kp), path, "device");
			if (strpbrk(name, "*?["))
				r = parse_glob(p, kp, name, &d.glob);
			else {
				/* an exact address with ids: a glob that matches one address */
				struct iovk_pci_addr a;
				char buf[IOVK_PCI_ADDR_MAX];

				if (iovk_pci_addr_parse(name, &a) < 0)
					r = cfg_error(p, -EINVAL, kp, "'%s' is not a PCI address (DDDD:BB:DD.F or BB:DD.F)",
						      name);
				else
					r = (d.glob = strdup(iovk_pci_addr_format(&a, buf))) ? 0 : -ENOMEM;
			}
			if (r < 0)
				goto fail;
		}
		if (ids) {
			join_path(kp, sizeof(kp), path, "ids");
			r = parse_ids(p, kp, ids, &d);
			if (r < 0)
				goto fail;
		}
		if (asprintf(&d.match, "%s%s%s", name ?: "", name && ids ? " " : "", ids ?: "") < 0) {
			d.match = NULL;
			r = -ENOMEM;
			goto fail;
		}
	}
	r = require(p, get_driver(p, dev, path, &d.driver), path, "driver",
		    "\"vfio-pci\", a kernel driver, or \"none\"");
	if (r < 0)
		goto fail;
	r = get_bool(p, dev, path, "force", &b);
	if (r < 0)
		goto fail;
	d.force = r > 0 && b;
	d.path = strdup(path);
	if (!d.path) {
		r = -ENOMEM;
		goto fail;
	}
	*ret = d;
	return 0;
fail:
	cfg_device_done(&d);
	return r;
}

/* Where an earlier entry declared the same thing: "pfs[0]" or "other.json: pfs[0]". */
static void where(const struct parse *p, const char *file, const char *path, char *buf, size_t size)
{
	if (strcmp(file, p->file) == 0)
		snprintf(buf, size, "%s", path);
	else
		snprintf(buf, size, "%s: %s", file, path);
}

/* Each PF and device at most once, in this file and the ones before. */
static int check_duplicates(struct parse *p, const struct iovk_config *c)
{
	char kp[160], other[PATH_MAX + 64];

	for (size_t i = 0; i < p->n_pfs; i++) {
		const struct cfg_pf *pf = &p->pfs[i];

		snprintf(kp, sizeof(kp), "%s.pf", pf->path);
		for (size_t k = 0; k < c->n_pfs + i; k++) {
			const struct cfg_pf *o = k < c->n_pfs ? &c->pfs[k] : &p->pfs[k - c->n_pfs];

			if (strcmp(o->name, pf->name) == 0) {
				where(p, o->file, o->path, other, sizeof(other));
				return cfg_error(p, -EINVAL, kp, "the PF %s is declared twice (%s too)", pf->name, other);
			}
		}
		for (size_t k = 0; k < c->n_devices; k++)
			if (c->devices[k].address && strcmp(c->devices[k].address, pf->name) == 0) {
				where(p, c->devices[k].file, c->devices[k].path, other, sizeof(other));
				return cfg_error(p, -EINVAL, kp, "%s is a PF here and a device in %s: one or the other",
						 pf->name, other);
			}
	}
	for (size_t i = 0; i < p->n_devices; i++) {
		const struct cfg_device *d = &p->devices[i];

		if (!d->address) {
			/* What a selector matches is known when planned (two that
			 * match one device fail then); the same selector twice is
			 * a duplicate now, as the same address twice is. */
			for (size_t k = 0; k < c->n_devices + i; k++) {
				const struct cfg_device *o = k < c->n_devices ? &c->devices[k] : &p->devices[k - c->n_devices];

				if (!o->address && streq_null(o->glob, d->glob) && o->vendor == d->vendor &&
				    o->device_id == d->device_id && o->class_code == d->class_code) {
					where(p, o->file, o->path, other, sizeof(other));
					return cfg_error(p, -EINVAL, d->path, "the selector \"%s\" is declared twice (%s too)",
							 d->match, other);
				}
			}
			continue;
		}
		snprintf(kp, sizeof(kp), "%s.device", d->path);
		for (size_t k = 0; k < c->n_devices + i; k++) {
			const struct cfg_device *o = k < c->n_devices ? &c->devices[k] : &p->devices[k - c->n_devices];

			if (o->address && strcmp(o->address, d->address) == 0) {
				where(p, o->file, o->path, other, sizeof(other));
				return cfg_error(p, -EINVAL, kp, "the device %s is declared twice (%s too)", d->address,
						 other);
			}
		}
		for (size_t k = 0; k < c->n_pfs + p->n_pfs; k++) {
			const struct cfg_pf *o = k < c->n_pfs ? &c->pfs[k] : &p->pfs[k - c->n_pfs];

			if (strcmp(o->name, d->address) == 0) {
				where(p, o->file, o->path, other, sizeof(other));
				return cfg_error(p, -EINVAL, kp, "%s is a device here and a PF in %s: one or the other",
						 d->address, other);
			}
		}
	}
	return 0;
}

int parse_document(struct parse *p, struct json_object *root, const struct iovk_config *c)
{
	static const char *const keys[] = { "pfs", "devices", NULL };
	struct json_object *pfs = NULL, *devices = NULL;
	size_t n;
	int r;

	if (!json_object_is_type(root, json_type_object))
		return cfg_error(p, -EINVAL, NULL, "expected an object ({\"pfs\": [...], \"devices\": [...]}), not %s",
				 type_words(root));
	r = check_keys(p, "", root, keys);
	if (r < 0)
		return r;
	r = get_array(p, root, "", "pfs", IOVK_CONFIG_PFS_MAX, &pfs);
	if (r < 0)
		return r;
	r = get_array(p, root, "", "devices", IOVK_CONFIG_DEVICES_MAX, &devices);
	if (r < 0)
		return r;
	if (pfs && c->n_pfs + json_object_array_length(pfs) > IOVK_CONFIG_PFS_MAX)
		return cfg_error(p, -E2BIG, "pfs", "more than %u PFs in all files", IOVK_CONFIG_PFS_MAX);
	if (devices && c->n_devices + json_object_array_length(devices) > IOVK_CONFIG_DEVICES_MAX)
		return cfg_error(p, -E2BIG, "devices", "more than %u devices in all files", IOVK_CONFIG_DEVICES_MAX);

	n = pfs ? json_object_array_length(pfs) : 0;
	p->pfs = calloc(n ? n : 1, sizeof(*p->pfs));
	if (!p->pfs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		char path[32];

		snprintf(path, sizeof(path), "pfs[%zu]", i);
		r = parse_pf(p, json_object_array_get_idx(pfs, i), path, &p->pfs[p->n_pfs]);
		if (r < 0)
			return r;
		p->n_pfs++;
	}
	n = devices ? json_object_array_length(devices) : 0;
	p->devices = calloc(n ? n : 1, sizeof(*p->devices));
	if (!p->devices)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		char path[32];

		snprintf(path, sizeof(path), "devices[%zu]", i);
		r = parse_device(p, json_object_array_get_idx(devices, i), path, &p->devices[p->n_devices]);
		if (r < 0)
			return r;
		p->n_devices++;
	}
	return check_duplicates(p, c);
}

