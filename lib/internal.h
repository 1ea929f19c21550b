/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private to lib/: nothing outside the library includes this. */
#pragma once

#include <syslog.h>
#include <sys/types.h>

#include <iovkit/iovkit.h>

#include "../common/macro.h"
/* mkdir_p(), write_file_atomic(), strv_*(): shared with iovctl and iovd */
#include "../common/fileio.h"
#include "../common/strv.h"

struct pci_access;
struct sd_hwdb;

/* A host has few distinct vendor:device:class triples among its functions:
 * each is looked up once per context (lib/core/pci.c). */
struct pci_names {
	uint16_t vendor_id, device_id;
	uint32_t class;
	char *vendor_name, *device_name, *class_name;
};

struct nl_sock;

struct iovk_ctx {
	int n_ref;
	char *sysfs_root;
	char *dev_root;
	char *proc_root;
	char *run_dir;
	char *pci_ids;
	unsigned timeout_ms;
	iovk_log_fn log_fn;
	void *log_userdata;
	int log_priority;
	struct pci_access *pacc; /* libpci, opened on first use */
	struct sd_hwdb *hwdb;    /* udev's hardware database, opened on first use */
	bool hwdb_failed;
	struct pci_names *names; /* names looked up so far, one per vendor:device:class */
	size_t n_names;
	/* the kept NETLINK_ROUTE socket (iovk_ctx_set_keep_netlink(), core/netlink.c) */
	bool keep_nl;
	bool nl_lent;   /* a call holds it now (route_nl_get()) */
	bool nl_broken; /* closed when given back: an exchange on it failed, or it was retired */
	pid_t nl_pid;   /* the process that opened it: a child after fork() opens its own */
	struct nl_sock *nl;
	char error[1024];
};

/*
 * The public ref/unref pair of a refcounted object (an n_ref member, 1 on
 * creation): ref(NULL) and unref(NULL) are fine, unref always returns NULL
 * and calls free_func when the last reference goes, as systemd's
 * DEFINE_TRIVIAL_REF_UNREF_FUNC does. tests/abi/check-symbols reads the
 * names from here too.
 */
#define DEFINE_PUBLIC_REF_UNREF(type, name, free_func) \
	_public_ type *name##_ref(type *p)             \
	{                                              \
		if (p)                                 \
			p->n_ref++;                    \
		return p;                              \
	}                                              \
	_public_ type *name##_unref(type *p)           \
	{                                              \
		if (p && --p->n_ref == 0)              \
			free_func(p);                  \
		return NULL;                           \
	}

/* systemd's assert_return(): how a public entry point refuses a NULL
 * where an object or a place for its result belongs, instead of crashing. */
#define assert_return(expr, r)                  \
	do {                                    \
		if (_unlikely_(!(expr)))        \
			return (r);             \
	} while (0)

void iovk_log(struct iovk_ctx *ctx, int priority, const char *file, int line, const char *fn,
	      const char *format, ...) _printf_(6, 7);

#define log_cond(ctx, prio, ...)                                                        \
	do {                                                                            \
		if ((ctx)->log_fn && (prio) <= (ctx)->log_priority)                     \
			iovk_log(ctx, prio, __FILE__, __LINE__, __func__, __VA_ARGS__); \
	} while (0)
#define log_debug(ctx, ...) log_cond(ctx, LOG_DEBUG, __VA_ARGS__)
#define log_info(ctx, ...) log_cond(ctx, LOG_INFO, __VA_ARGS__)
#define log_warn(ctx, ...) log_cond(ctx, LOG_WARNING, __VA_ARGS__)

/*
 * Records the failure text in the context (and logs it at LOG_ERR) and
 * returns err, which must be a negative errno: `return set_error(ctx, r, ...)`.
 */
int set_error(struct iovk_ctx *ctx, int err, const char *format, ...) _printf_(3, 4);
void clear_error(struct iovk_ctx *ctx);

/* Builds "<root><rel>"; rel starts with '/'. NULL on OOM. */
char *root_path(const char *root, const char *fmt, ...) _printf_(2, 3);
#define sysfs_path(ctx, ...) root_path((ctx)->sysfs_root, __VA_ARGS__)
#define dev_path(ctx, ...) root_path((ctx)->dev_root, __VA_ARGS__)
#define proc_path(ctx, ...) root_path((ctx)->proc_root, __VA_ARGS__)

/*
 * Reads a small text file (sysfs attribute) whole, trailing newline
 * stripped. Returns 0 or -errno; the file's contents in *ret (malloc'd).
 */
int read_text(const char *path, char **ret);
/* Reads an attribute holding one integer (strtoll base 0). */
int read_int(const char *path, long long *ret);
/*
 * Writes value to a sysfs attribute in a single write(2), which is how
 * sysfs wants it; returns 0 or the kernel's -errno.
 */
int write_text(const char *path, const char *value);
/* basename of readlink(path) into buf. -ENOENT when there is no link. */
int read_link_name(const char *path, char *buf, size_t size);
/* The same, path relative to the directory fd dfd (or AT_FDCWD). */
int read_link_name_at(int dfd, const char *path, char *buf, size_t size);
bool path_exists(const char *path);
/* The kernel's dev_valid_name(): 1 to 15 bytes, no '/', ':' or blank, not "." or "..". */
bool ifname_valid(const char *s);

/* The entries of a sysfs directory that are PCI addresses, in address order. */
int list_pci_addresses(const char *dir, char ***ret_names, size_t *ret_n);
/* iovk_device_new() for each name, skipping devices gone meanwhile (-ENODEV). */
int read_devices(struct iovk_ctx *ctx, char *const *names, size_t n, struct iovk_device ***ret_devices,
		 size_t *ret_n);
/*
 * The virtfn index of a PF's k-th VF in iovk_device_get_vfs() (the list
 * closes up over a missing virtfn link, so k is not always the index), and
 * setting a VF device's index from it, so that iovk_device_get_vf_index()
 * reads nothing more.
 */
unsigned device_vf_index_at(const struct iovk_device *pf, size_t k);
void device_set_vf_index(struct iovk_device *vf, unsigned index);

/* libpci access for this context, opened lazily; NULL on failure. */
struct pci_access *ctx_pci_access(struct iovk_ctx *ctx);
struct sd_hwdb *ctx_hwdb(struct iovk_ctx *ctx);

/* True for the drivers the kernel lets share a group with VFIO users. */
bool driver_is_vfio_friendly(const char *driver);

/* iovk_device_check_in_use() for a device already read (lib/core/in-use.c). */
int in_use_collect(struct iovk_ctx *ctx, struct iovk_device *d, unsigned flags, struct iovk_in_use **ret);
/*
 * Fails with -EBUSY naming every reason the host uses the device ("<what>:
 * in use by the host: ...") unless force, which logs them instead.
 */
int in_use_refuse(struct iovk_ctx *ctx, const char *address, unsigned flags, bool force, const char *what);

/* Drops the record of the driver a device had before iovkit moved it
 * (lib/core/bind.c); true when there was one. */
bool previous_driver_forget(struct iovk_ctx *ctx, const char *address);

/*
 * The one check of a caller's options struct that starts with its size
 * (libbpf's OPTS_VALID, VFIO's argsz): sz at least min_sz (the first
 * version's size), and every byte past known_sz (what this library knows)
 * zero, so a newer caller's members are never silently ignored. name
 * names the struct in the error, init the macro that fills sz. 0 or
 * -EINVAL (error set when ctx).
 */
int opts_valid(struct iovk_ctx *ctx, const void *opts, size_t sz, size_t min_sz, size_t known_sz,
	       const char *name, const char *init);

/*
 * A caller's sized result (struct iovk_bind_result and its kind: sz first):
 * result_valid() refuses one smaller than min_sz (-EINVAL, named), NULL is
 * fine; result_store() copies what this library filled in, at most the
 * caller's sz bytes, keeping its sz.
 */
int result_valid(struct iovk_ctx *ctx, const void *result, size_t min_sz, const char *name);
void result_store(void *dst, const void *src, size_t known_sz);

/*
 * Exclusive flock on <dir>/<name> (both created when missing), waiting at
 * most the context timeout for another process to let go.
 */
int lock_file(struct iovk_ctx *ctx, const char *dir, const char *name, int *ret_fd);

/* Exclusive lock on <run_dir>/lock, bounded by the context timeout. */
int run_lock(struct iovk_ctx *ctx, int *ret_fd);
