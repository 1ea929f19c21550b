/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libiovkit core: the context every call takes.
 *
 * Conventions for the whole library:
 *  - functions returning int return >= 0 on success and a negative errno
 *    on failure; out-parameters are named ret_* and are left untouched on
 *    failure;
 *  - the library never prints: it reports through a caller-set log function
 *    and keeps a human-readable description of the last failure in the
 *    context (iovk_ctx_get_error()), which names the device, the path and
 *    the kernel's errno text;
 *  - a context, and objects made from it, are used by one thread at a time.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct iovk_ctx;

/* syslog(3) priorities. */
typedef void (*iovk_log_fn)(void *userdata, int priority, const char *file, int line,
			    const char *fn, const char *format, va_list args);

/*
 * Creates a context. Its roots default to /sys, /dev and /proc and its run
 * directory (lock file, records of previous drivers) to /run/iovkit; the
 * environment variables IOVKIT_SYSFS_ROOT, IOVKIT_DEV_ROOT, IOVKIT_PROC_ROOT
 * and IOVKIT_RUN_DIR override them, IOVKIT_PCI_IDS names the pci.ids file.
 * Returns 0, -EINVAL when one of those variables is not an absolute path,
 * or -ENOMEM.
 */
int iovk_ctx_new(struct iovk_ctx **ret_ctx);
struct iovk_ctx *iovk_ctx_ref(struct iovk_ctx *ctx);
/* Drops a reference; NULL is fine. Always returns NULL. */
struct iovk_ctx *iovk_ctx_unref(struct iovk_ctx *ctx);

/* Each returns 0, -EINVAL for a relative or empty path, or -ENOMEM. */
int iovk_ctx_set_sysfs_root(struct iovk_ctx *ctx, const char *path);
int iovk_ctx_set_dev_root(struct iovk_ctx *ctx, const char *path);
int iovk_ctx_set_proc_root(struct iovk_ctx *ctx, const char *path);
int iovk_ctx_set_run_dir(struct iovk_ctx *ctx, const char *path);
int iovk_ctx_set_pci_ids(struct iovk_ctx *ctx, const char *path);

const char *iovk_ctx_get_sysfs_root(const struct iovk_ctx *ctx);
const char *iovk_ctx_get_dev_root(const struct iovk_ctx *ctx);
const char *iovk_ctx_get_proc_root(const struct iovk_ctx *ctx);
const char *iovk_ctx_get_run_dir(const struct iovk_ctx *ctx);

/*
 * True when the sysfs root is the live /sys, i.e. a kernel stands behind the
 * files. Only then does the library load kernel modules on its own.
 */
bool iovk_ctx_is_live(const struct iovk_ctx *ctx);

/*
 * Bounds the library's waits: for the lock file another iovkit process
 * holds, and for what the kernel creates asynchronously (VFs and their
 * netdevs). Probes started through drivers_probe are synchronous and need
 * no bound. Default 30000 ms. Returns 0 or -EINVAL for 0.
 */
int iovk_ctx_set_timeout_ms(struct iovk_ctx *ctx, unsigned timeout_ms);
unsigned iovk_ctx_get_timeout_ms(const struct iovk_ctx *ctx);

/*
 * By default every call that speaks rtnetlink (links, bonds, macvtaps, VF
 * settings) opens its own NETLINK_ROUTE socket and closes it before it
 * returns, so it acts in the network namespace the calling thread is in at
 * that moment. With keep, the context holds one socket, opened by the next
 * such call, and every later call uses it: a call saves the socket's set-up
 * and close (about 0.5 ms of a bond switch in the test guest under TCG, a
 * tenth of the switch). The calls then act in the namespace that call was
 * in, whatever namespace the thread enters later. A child after fork()
 * opens its own; a call whose exchange with the kernel failed (a timeout)
 * closes it, and so do iovk_ctx_set_timeout_ms(), keep false and the
 * context's last unref. Meant for a long-lived process that makes many
 * calls, such as iovd.
 */
void iovk_ctx_set_keep_netlink(struct iovk_ctx *ctx, bool keep);

void iovk_ctx_set_log_fn(struct iovk_ctx *ctx, iovk_log_fn fn, void *userdata);
/* Messages above this syslog priority are dropped. Default LOG_ERR. */
void iovk_ctx_set_log_priority(struct iovk_ctx *ctx, int priority);
int iovk_ctx_get_log_priority(const struct iovk_ctx *ctx);

/*
 * Description of the most recent failure of a call on this context, e.g.
 * "0000:01:00.0: writing /sys/bus/pci/devices/0000:01:00.0/driver_override:
 * Permission denied". Empty string when there is none. Valid until the next
 * call on the context.
 */
const char *iovk_ctx_get_error(const struct iovk_ctx *ctx);

#ifdef __cplusplus
}
#endif
