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
#include <inttypes.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "config-internal.h"

/* Our documents nest five deep (root, pfs, a PF, vfs, a VF); json-c's
 * default allows 32. A little room, no more. */
#define JSON_DEPTH_MAX 8
/* VF indices fit in 16 bits: TotalVFs is a 16-bit field (SR-IOV 9.3.3.6). */
#define NUMVFS_MAX 65535

static void json_object_putp(struct json_object **o)
{
	if (*o)
		json_object_put(*o);
}
#define _cleanup_json_ _cleanup_(json_object_putp)

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
	free(d->driver);
}

/* Drops what was added after the first n_files/n_pfs/n_devices entries. */
static void config_truncate(struct iovk_config *c, size_t n_files, size_t n_pfs, size_t n_devices)
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
	struct iovk_config *c = calloc(1, sizeof(*c));

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

struct parse {
	struct iovk_ctx *ctx;
	const char *file;
	/* what this file declares, appended to the configuration at the end */
	struct cfg_pf *pfs;
	size_t n_pfs;
	struct cfg_device *devices;
	size_t n_devices;
};

static void parse_done(struct parse *p)
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

/* The kernel's dev_valid_name(), as lib/sriov/vf.c checks interface names. */
static bool ifname_valid(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len >= IFNAMSIZ || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (const char *c = s; *c; c++)
		if (*c == '/' || *c == ':' || isspace((unsigned char)*c))
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
	static const char *const keys[] = { "pf", "numvfs", "autoprobe", "vfs", NULL };
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

static int parse_device(struct parse *p, struct json_object *dev, const char *path, struct cfg_device *ret)
{
	static const char *const keys[] = { "device", "driver", NULL };
	struct cfg_device d = { .file = p->file };
	int r;

	if (!json_object_is_type(dev, json_type_object))
		return type_error(p, path, "an object", dev);
	r = check_keys(p, path, dev, keys);
	if (r < 0)
		return r;
	r = require(p, get_address(p, dev, path, "device", &d.address), path, "device", "the device's PCI address");
	if (r < 0)
		goto fail;
	r = require(p, get_driver(p, dev, path, &d.driver), path, "driver",
		    "\"vfio-pci\", a kernel driver, or \"none\"");
	if (r < 0)
		goto fail;
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
			if (strcmp(c->devices[k].address, pf->name) == 0) {
				where(p, c->devices[k].file, c->devices[k].path, other, sizeof(other));
				return cfg_error(p, -EINVAL, kp, "%s is a PF here and a device in %s: one or the other",
						 pf->name, other);
			}
	}
	for (size_t i = 0; i < p->n_devices; i++) {
		const struct cfg_device *d = &p->devices[i];

		snprintf(kp, sizeof(kp), "%s.device", d->path);
		for (size_t k = 0; k < c->n_devices + i; k++) {
			const struct cfg_device *o = k < c->n_devices ? &c->devices[k] : &p->devices[k - c->n_devices];

			if (strcmp(o->address, d->address) == 0) {
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

static int parse_document(struct parse *p, struct json_object *root, const struct iovk_config *c)
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

/* ---- syntax ---------------------------------------------------------------------- */

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
static int check_object_keys(struct iovk_ctx *ctx, const char *name, const char *text, size_t len)
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

static int parse_text(struct iovk_ctx *ctx, const char *name, const char *text, size_t len,
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

/* ---- adding files -------------------------------------------------------------- */

static int add_text(struct iovk_config *c, const char *name, const char *text, size_t len)
{
	_cleanup_json_ struct json_object *root = NULL;
	struct parse p = { .ctx = c->ctx, .file = name };
	char *file = NULL, **files;
	struct cfg_pf *pfs;
	struct cfg_device *devices;
	int r;

	if (c->n_files >= IOVK_CONFIG_FILES_MAX)
		return set_error(c->ctx, -E2BIG, "%s: more than %u files", name, IOVK_CONFIG_FILES_MAX);
	r = parse_text(c->ctx, name, text, len, &root);
	if (r < 0)
		return r;
	file = strdup(name);
	if (!file)
		return -ENOMEM;
	p.file = file;
	r = parse_document(&p, root, c);
	if (r < 0)
		goto fail;

	r = -ENOMEM;
	files = realloc(c->files, (c->n_files + 1) * sizeof(*files));
	if (!files)
		goto fail;
	c->files = files;
	pfs = realloc(c->pfs, (c->n_pfs + p.n_pfs + 1) * sizeof(*pfs));
	if (!pfs)
		goto fail;
	c->pfs = pfs;
	devices = realloc(c->devices, (c->n_devices + p.n_devices + 1) * sizeof(*devices));
	if (!devices)
		goto fail;
	c->devices = devices;
	c->files[c->n_files++] = file;
	memcpy(c->pfs + c->n_pfs, p.pfs, p.n_pfs * sizeof(*p.pfs));
	c->n_pfs += p.n_pfs;
	memcpy(c->devices + c->n_devices, p.devices, p.n_devices * sizeof(*p.devices));
	c->n_devices += p.n_devices;
	free(p.pfs);
	free(p.devices);
	return 0;
fail:
	parse_done(&p);
	free(file);
	return r;
}

_public_ int iovk_config_add_string(struct iovk_config *config, const char *name, const char *text)
{
	clear_error(config->ctx);
	if (!name || !text)
		return set_error(config->ctx, -EINVAL, "no name or no text given");
	if (strlen(text) > IOVK_CONFIG_FILE_MAX)
		return set_error(config->ctx, -EFBIG, "%s: larger than %d bytes", name, IOVK_CONFIG_FILE_MAX);
	return add_text(config, name, text, strlen(text));
}

static const char *file_type_words(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFIFO:
		return "a FIFO";
	case S_IFSOCK:
		return "a socket";
	case S_IFCHR:
		return "a character device";
	case S_IFBLK:
		return "a block device";
	case S_IFDIR:
		return "a directory";
	}
	return "not a regular file";
}

/* -EISDIR for a directory, -EINVAL for anything else that is not a regular file. */
static int refuse_not_regular(struct iovk_ctx *ctx, const char *path, mode_t mode)
{
	if (S_ISDIR(mode))
		return set_error(ctx, -EISDIR, "%s: is a directory", path);
	return set_error(ctx, -EINVAL, "%s: not a regular file (%s)", path, file_type_words(mode));
}

/*
 * Only regular files are read. Opening is not harmless for the rest: a FIFO
 * blocks open() and read() until a writer comes (iovctl apply hung on one),
 * a device may act on open. So the type is checked before opening, and
 * again on the descriptor (opened non-blocking), for a file replaced between
 * the two.
 */
static int read_file(struct iovk_ctx *ctx, const char *path, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	struct stat st;
	int r;

	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
		return refuse_not_regular(ctx, path, st.st_mode);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) < 0) {
		r = negative_errno();
		return set_error(ctx, r, "%s: cannot read it: %s", path, strerror(-r));
	}
	if (!S_ISREG(st.st_mode))
		return refuse_not_regular(ctx, path, st.st_mode);
	/* One byte more than the limit tells a file that grew past it. */
	buf = malloc(IOVK_CONFIG_FILE_MAX + 2);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = read(fd, buf + len, IOVK_CONFIG_FILE_MAX + 1 - len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = negative_errno();
			return set_error(ctx, r, "%s: reading it: %s", path, strerror(-r));
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > IOVK_CONFIG_FILE_MAX)
			return set_error(ctx, -EFBIG, "%s: larger than %d bytes", path, IOVK_CONFIG_FILE_MAX);
	}
	buf[len] = '\0';
	*ret = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

_public_ int iovk_config_add_file(struct iovk_config *config, const char *path)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r;

	clear_error(config->ctx);
	if (!path || !*path)
		return set_error(config->ctx, -EINVAL, "no file name given");
	r = read_file(config->ctx, path, &text, &len);
	if (r < 0)
		return r;
	return add_text(config, path, text, len);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

_public_ int iovk_config_add_directory(struct iovk_config *config, const char *path)
{
	_cleanup_closedir_ DIR *dir = NULL;
	_cleanup_strv_free_ char **names = NULL;
	size_t n = 0, n_files = config->n_files, n_pfs = config->n_pfs, n_devices = config->n_devices;
	struct dirent *de;
	int r;

	clear_error(config->ctx);
	dir = opendir(path);
	if (!dir) {
		r = negative_errno();
		return set_error(config->ctx, r, "%s: cannot read the directory: %s", path, strerror(-r));
	}
	while ((de = readdir(dir))) {
		_cleanup_free_ char *full = NULL;
		size_t len = strlen(de->d_name);

		if (de->d_name[0] == '.' || len <= 5 || strcmp(de->d_name + len - 5, ".json") != 0)
			continue;
		if (asprintf(&full, "%s%s%s", path, path[strlen(path) - 1] == '/' ? "" : "/", de->d_name) < 0)
			return -ENOMEM;
		/*
		 * Symlinks are followed, as in systemd's *.d directories. Every
		 * other *.json that is not a regular file (a FIFO, socket, device,
		 * directory, dangling link) fails the whole directory in
		 * iovk_config_add_file(), in name order: a file meant to be applied
		 * at boot that is skipped without a word would be worse.
		 */
		if (n >= IOVK_CONFIG_FILES_MAX)
			return set_error(config->ctx, -E2BIG, "%s: more than %u *.json files", path,
					 IOVK_CONFIG_FILES_MAX);
		r = strv_push(&names, &n, full);
		if (r < 0)
			return r;
	}
	if (n == 0)
		return 0;
	qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; i < n; i++) {
		r = iovk_config_add_file(config, names[i]);
		if (r < 0) {
			char msg[sizeof(config->ctx->error)];

			/* All or nothing: the files before go too. */
			snprintf(msg, sizeof(msg), "%s", iovk_ctx_get_error(config->ctx));
			config_truncate(config, n_files, n_pfs, n_devices);
			set_error(config->ctx, r, "%s", msg);
			return r;
		}
	}
	return (int)n;
}
