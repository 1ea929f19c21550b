/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private to lib/apply/ (config*.c and plan.c): a parsed configuration. */
#pragma once

#include <string.h>

#include <json-c/json.h>

#include "../sriov/sriov-internal.h"

/* What one entry of "vfs" declares. */
struct cfg_vf {
	unsigned index;
	char *path;                       /* "pfs[0].vfs[1]" */
	struct iovk_vf_settings settings; /* fields 0: no settings declared */
	char *driver;                     /* NULL: not declared; "none": no driver */
};

/* One entry of "pfs". */
struct cfg_pf {
	const char *file; /* owned by the configuration's list of files */
	char *path;       /* "pfs[0]" */
	char *name;       /* canonical PCI address, or an interface name */
	bool by_address;
	int numvfs;    /* -1: not declared */
	int autoprobe; /* -1: not declared, else 0 or 1 */
	bool force;    /* "force": remove VFs in use, take VFs the host uses */
	struct cfg_vf *vfs;
	size_t n_vfs;
};

/* One entry of "devices": one device by address, or a selector (an address
 * glob, vendor:device ids, or both) that stands for every device it matches. */
struct cfg_device {
	const char *file;
	char *path;    /* "devices[0]" */
	char *address; /* canonical; NULL for a selector */
	char *glob;    /* an address glob (fnmatch(3), on DDDD:BB:DD.F), or NULL */
	int vendor;    /* "ids": -1 when not given */
	int device_id; /* -1: any */
	int class_code; /* class and subclass (0xCCSS), -1: any */
	char *match;   /* a selector as the file words it: "0000:3b:*", "8086:10ed", both joined by " " */
	char *driver;  /* "none": no driver */
	bool force;    /* "force": take it although the host uses it */
};

struct iovk_config {
	int n_ref;
	struct iovk_ctx *ctx;
	char **files;
	size_t n_files;
	struct cfg_pf *pfs;
	size_t n_pfs;
	struct cfg_device *devices;
	size_t n_devices;
};

/* Two strings, either NULL, are equal. */
static inline bool streq_null(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* The value of a "driver" key that means no driver. */
#define CFG_DRIVER_NONE "none"

/* ---- lib/apply/config.c: what a file declares, checked ------------------- */

/* One file being parsed: what it declares, appended to the configuration
 * only when all of it is valid. */
struct parse {
	struct iovk_ctx *ctx;
	const char *file;
	struct cfg_pf *pfs;
	size_t n_pfs;
	struct cfg_device *devices;
	size_t n_devices;
};

void parse_done(struct parse *p);
/* The document's pfs[] and devices[] into p, checked against what c holds already. */
int parse_document(struct parse *p, struct json_object *root, const struct iovk_config *c);
/* Drops what was added after the first n_files, n_pfs and n_devices. */
void config_truncate(struct iovk_config *c, size_t n_files, size_t n_pfs, size_t n_devices);

static inline void json_object_putp(struct json_object **o)
{
	if (*o)
		json_object_put(*o);
}
#define _cleanup_json_ _cleanup_(json_object_putp)

/* ---- lib/apply/overrides.c ----------------------------------------------- */

/* Whether the selector entry d matches dev by its address and ids (bridges never). */
bool cfg_device_selects(const struct cfg_device *d, struct iovk_device *dev);
/*
 * Whether a devices[] selector may claim dev: dev is neither a PF that pfs[]
 * declares, nor a VF whose driver pfs[] gives, nor a device that an exact
 * devices[] entry names. 1 when free, 0 when claimed elsewhere, or -errno.
 */
int cfg_device_free_for_selectors(struct iovk_ctx *ctx, const struct iovk_config *c, struct iovk_device *dev);

/* ---- lib/apply/config-syntax.c ------------------------------------------- */

/* Our documents nest five deep (root, pfs, a PF, vfs, a VF); json-c's
 * default allows 32. A little room, no more. */
#define JSON_DEPTH_MAX 8

/*
 * Parses text (len bytes, the file called name in messages) with json-c in
 * strict mode and the checks json-c lacks (check_object_keys()); 0 with the
 * document in *ret, or -EBADMSG/-ENOMEM with the error "name:line:col: ..."
 * set in ctx.
 */
int parse_text(struct iovk_ctx *ctx, const char *name, const char *text, size_t len, struct json_object **ret);
/* A key twice in one object (compared decoded), a key in single quotes,
 * an object with more keys than any of ours has: -EBADMSG naming where. */
int check_object_keys(struct iovk_ctx *ctx, const char *name, const char *text, size_t len);

