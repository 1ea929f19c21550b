/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pci/pci.h>
#include <systemd/sd-hwdb.h>

#include "../internal.h"
#include "netlink.h"

static int set_path(char **field, const char *path)
{
	char *copy;
	size_t len;

	if (!path || path[0] != '/')
		return -EINVAL;
	copy = strdup(path);
	if (!copy)
		return -ENOMEM;
	/* "/" would make "//sys"-style paths; a trailing slash likewise. */
	len = strlen(copy);
	while (len > 1 && copy[len - 1] == '/')
		copy[--len] = '\0';
	if (len == 1)
		copy[0] = '\0';
	free(*field);
	*field = copy;
	return 0;
}

_public_ int iovk_ctx_new(struct iovk_ctx **ret_ctx)
{
	struct iovk_ctx *ctx;
	const char *e;
	int r;

	assert_return(ret_ctx, -EINVAL);
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	ctx->n_ref = 1;
	ctx->timeout_ms = 30000;
	ctx->log_priority = LOG_ERR;

	/* secure_getenv: a setuid or setcap program linking libiovkit must not
	 * let its caller point it at a sysfs, /dev or run directory of their
	 * making (that is how a fixture tree is chosen, and what a test wants). */
	e = secure_getenv("IOVKIT_SYSFS_ROOT");
	r = set_path(&ctx->sysfs_root, e && *e ? e : "/sys");
	if (r < 0)
		goto fail;
	e = secure_getenv("IOVKIT_DEV_ROOT");
	r = set_path(&ctx->dev_root, e && *e ? e : "/dev");
	if (r < 0)
		goto fail;
	e = secure_getenv("IOVKIT_PROC_ROOT");
	r = set_path(&ctx->proc_root, e && *e ? e : "/proc");
	if (r < 0)
		goto fail;
	e = secure_getenv("IOVKIT_RUN_DIR");
	r = set_path(&ctx->run_dir, e && *e ? e : "/run/iovkit");
	if (r < 0)
		goto fail;
	e = secure_getenv("IOVKIT_PCI_IDS");
	r = e && *e ? set_path(&ctx->pci_ids, e) : 0;
	if (r < 0)
		goto fail;

	*ret_ctx = ctx;
	return 0;
fail:
	/* A relative path from the environment is refused, not ignored. */
	iovk_ctx_unref(ctx);
	return r;
}

/* Frees what the last reference held (DEFINE_PUBLIC_REF_UNREF below). */
static void ctx_free(struct iovk_ctx *ctx)
{
	route_nl_close_kept(ctx);
	if (ctx->pacc)
		pci_cleanup(ctx->pacc);
	sd_hwdb_unref(ctx->hwdb);
	for (size_t i = 0; i < ctx->n_names; i++) {
		free(ctx->names[i].vendor_name);
		free(ctx->names[i].device_name);
		free(ctx->names[i].class_name);
	}
	free(ctx->names);
	free(ctx->sysfs_root);
	free(ctx->dev_root);
	free(ctx->proc_root);
	free(ctx->run_dir);
	free(ctx->pci_ids);
	free(ctx);
}

DEFINE_PUBLIC_REF_UNREF(struct iovk_ctx, iovk_ctx, ctx_free);

_public_ int iovk_ctx_set_sysfs_root(struct iovk_ctx *ctx, const char *path)
{
	int r;

	assert_return(ctx && path, -EINVAL);
	r = set_path(&ctx->sysfs_root, path);
	/* libpci caches the sysfs path: reopen it with the new root. */
	if (r >= 0 && ctx->pacc) {
		pci_cleanup(ctx->pacc);
		ctx->pacc = NULL;
	}
	return r;
}

_public_ int iovk_ctx_set_dev_root(struct iovk_ctx *ctx, const char *path)
{
	assert_return(ctx && path, -EINVAL);

	return set_path(&ctx->dev_root, path);
}

_public_ int iovk_ctx_set_proc_root(struct iovk_ctx *ctx, const char *path)
{
	assert_return(ctx && path, -EINVAL);

	return set_path(&ctx->proc_root, path);
}

_public_ int iovk_ctx_set_run_dir(struct iovk_ctx *ctx, const char *path)
{
	assert_return(ctx && path, -EINVAL);

	return set_path(&ctx->run_dir, path);
}

_public_ int iovk_ctx_set_pci_ids(struct iovk_ctx *ctx, const char *path)
{
	int r;

	assert_return(ctx, -EINVAL);
	r = set_path(&ctx->pci_ids, path);
	if (r >= 0 && ctx->pacc) {
		pci_cleanup(ctx->pacc);
		ctx->pacc = NULL;
	}
	return r;
}

/* An empty stored root means "/" (see set_path). */
#define ROOT_OR_SLASH(s) ((s)[0] ? (s) : "/")

_public_ const char *iovk_ctx_get_sysfs_root(const struct iovk_ctx *ctx)
{
	return ROOT_OR_SLASH(ctx->sysfs_root);
}

_public_ const char *iovk_ctx_get_dev_root(const struct iovk_ctx *ctx)
{
	return ROOT_OR_SLASH(ctx->dev_root);
}

_public_ const char *iovk_ctx_get_proc_root(const struct iovk_ctx *ctx)
{
	return ROOT_OR_SLASH(ctx->proc_root);
}

_public_ const char *iovk_ctx_get_run_dir(const struct iovk_ctx *ctx)
{
	return ROOT_OR_SLASH(ctx->run_dir);
}

_public_ bool iovk_ctx_is_live(const struct iovk_ctx *ctx)
{
	return strcmp(ctx->sysfs_root, "/sys") == 0;
}

_public_ int iovk_ctx_set_timeout_ms(struct iovk_ctx *ctx, unsigned timeout_ms)
{
	assert_return(ctx, -EINVAL);

	if (timeout_ms == 0)
		return -EINVAL;
	ctx->timeout_ms = timeout_ms;
	/* the kept socket has the old bound (SO_RCVTIMEO): the next call opens one with this */
	route_nl_retire_kept(ctx);
	return 0;
}

_public_ void iovk_ctx_set_keep_netlink(struct iovk_ctx *ctx, bool keep)
{
	ctx->keep_nl = keep;
	if (!keep)
		route_nl_retire_kept(ctx);
}

_public_ unsigned iovk_ctx_get_timeout_ms(const struct iovk_ctx *ctx)
{
	return ctx->timeout_ms;
}

_public_ void iovk_ctx_set_log_fn(struct iovk_ctx *ctx, iovk_log_fn fn, void *userdata)
{
	ctx->log_fn = fn;
	ctx->log_userdata = userdata;
}

_public_ void iovk_ctx_set_log_priority(struct iovk_ctx *ctx, int priority)
{
	ctx->log_priority = priority;
}

_public_ int iovk_ctx_get_log_priority(const struct iovk_ctx *ctx)
{
	return ctx->log_priority;
}

_public_ const char *iovk_ctx_get_error(const struct iovk_ctx *ctx)
{
	return ctx->error;
}

void iovk_log(struct iovk_ctx *ctx, int priority, const char *file, int line, const char *fn,
	      const char *format, ...)
{
	va_list ap;

	va_start(ap, format);
	ctx->log_fn(ctx->log_userdata, priority, file, line, fn, format, ap);
	va_end(ap);
}

int set_error(struct iovk_ctx *ctx, int err, const char *format, ...)
{
	va_list ap;

	va_start(ap, format);
	vsnprintf(ctx->error, sizeof(ctx->error), format, ap);
	va_end(ap);
	log_cond(ctx, LOG_ERR, "%s", ctx->error);
	return err < 0 ? err : -EIO;
}

void clear_error(struct iovk_ctx *ctx)
{
	ctx->error[0] = '\0';
}

/*
 * libpci reports fatal errors through a callback that must not return (it
 * defaults to exit()). With the sysfs access method and a path we set, it
 * has no fatal error to report, but if it ever did, aborting is the honest
 * answer: a library must not exit() its caller.
 */
static _Noreturn void pci_error_cb(char *msg, ...)
{
	(void)msg;
	abort();
}

static void pci_quiet_cb(char *msg _unused_, ...)
{
}

/* udev's hardware database (what `udevadm info` shows as
 * ID_MODEL_FROM_DATABASE), or NULL: where it is missing, or where a pci.ids
 * file was named (IOVKIT_PCI_IDS, iovk_ctx_set_pci_ids), which then rules. */
sd_hwdb *ctx_hwdb(struct iovk_ctx *ctx)
{
	if (ctx->pci_ids || ctx->hwdb_failed)
		return NULL;
	if (!ctx->hwdb && sd_hwdb_new(&ctx->hwdb) < 0) {
		ctx->hwdb = NULL;
		ctx->hwdb_failed = true;
	}
	return ctx->hwdb;
}

struct pci_access *ctx_pci_access(struct iovk_ctx *ctx)
{
	_cleanup_free_ char *bus = NULL;
	struct pci_access *pacc;

	if (ctx->pacc)
		return ctx->pacc;
	bus = sysfs_path(ctx, "/bus/pci");
	if (!bus)
		return NULL;
	pacc = pci_alloc();
	if (!pacc)
		return NULL;
	pacc->error = pci_error_cb;
	pacc->warning = pci_quiet_cb;
	pacc->debug = pci_quiet_cb;
	pacc->method = PCI_ACCESS_SYS_BUS_PCI;
	/* pci_set_param copies the value. */
	pci_set_param(pacc, "sysfs.path", bus);
	if (ctx->pci_ids)
		pci_set_name_list_path(pacc, ctx->pci_ids, 0);
	pci_init(pacc);
	ctx->pacc = pacc;
	return pacc;
}
