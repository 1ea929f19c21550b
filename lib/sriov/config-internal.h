/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private to lib/sriov/config.c and plan.c: a parsed configuration. */
#pragma once

#include "sriov-internal.h"

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
	struct cfg_vf *vfs;
	size_t n_vfs;
};

/* One entry of "devices". */
struct cfg_device {
	const char *file;
	char *path;    /* "devices[0]" */
	char *address; /* canonical */
	char *driver;  /* "none": no driver */
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

/* The value of a "driver" key that means no driver. */
#define CFG_DRIVER_NONE "none"
