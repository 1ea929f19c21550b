/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Driver binding through sysfs.
 *
 * What driverctl and dpdk-devbind taught: write driver_override before
 * unbinding, so no driver (the old one, or one a uevent loads) grabs the
 * device in between; drivers_probe reports success even when no driver
 * claimed the device, so the driver link is the only truth; an override is
 * cleared by writing a newline. What they lack and we add: when the new
 * driver does not take the device, the old one is put back.
 */
#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "../internal.h"
#include "bind-internal.h"
#include "kmod-dl.h"


_public_ bool iovk_driver_name_is_valid(const char *name)
{
	size_t len = name ? strlen(name) : 0;

	if (len == 0 || len >= DRIVER_MAX)
		return false;
	for (const char *p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
			return false;
	return true;
}

int bind_check_args(struct iovk_ctx *ctx, unsigned flags, const char *driver)
{
	int r = bind_check_flags(ctx, flags);

	return r < 0 ? r : bind_check_driver_name(ctx, driver);
}

int bind_check_driver_name(struct iovk_ctx *ctx, const char *driver)
{
	if (!iovk_driver_name_is_valid(driver))
		return set_error(ctx, -EINVAL, "'%s' is not a driver name", driver ? driver : "");
	return 0;
}

#define BIND_FLAGS_ALL (IOVK_BIND_NO_MODULE_LOAD | IOVK_BIND_FORCE)

int bind_check_flags(struct iovk_ctx *ctx, unsigned flags)
{
	if (flags & ~BIND_FLAGS_ALL)
		return set_error(ctx, -EINVAL, "unknown bind flags 0x%x", flags & ~BIND_FLAGS_ALL);
	return 0;
}

/* The host-use rule of lib/core/in-use.c, asked only when the device is
 * about to leave its driver. */
static int refuse_in_use(struct iovk_ctx *ctx, const struct dev_state *s, unsigned flags)
{
	return in_use_refuse(ctx, s->address, 0, flags & IOVK_BIND_FORCE, s->address);
}

int bind_read_state(struct iovk_ctx *ctx, const char *address, struct dev_state *ret)
{
	struct iovk_device *d;
	struct dev_state s = {};
	_cleanup_free_ char *p = NULL;
	int r;

	r = iovk_device_new(ctx, address, &d);
	if (r < 0)
		return r;
	snprintf(s.address, sizeof(s.address), "%s", iovk_device_get_address(d));
	s.vendor_id = iovk_device_get_vendor_id(d);
	s.device_id = iovk_device_get_device_id(d);
	snprintf(s.driver, sizeof(s.driver), "%s", iovk_device_get_driver(d) ?: "");
	snprintf(s.override, sizeof(s.override), "%s", iovk_device_get_driver_override(d) ?: "");
	iovk_device_unref(d);
	p = sysfs_path(ctx, "/bus/pci/devices/%s/driver_override", s.address);
	if (!p)
		return -ENOMEM;
	s.has_override = path_exists(p);
	*ret = s;
	return 0;
}

static int current_driver(struct iovk_ctx *ctx, const char *address, char buf[static DRIVER_MAX])
{
	_cleanup_free_ char *p = sysfs_path(ctx, "/bus/pci/devices/%s/driver", address);
	int r;

	if (!p)
		return -ENOMEM;
	r = read_link_name(p, buf, DRIVER_MAX);
	if (r == -ENOENT) {
		buf[0] = '\0';
		return 0;
	}
	if (r < 0)
		return set_error(ctx, r, "%s: reading link %s: %s", address, p, strerror(-r));
	return 0;
}

/* Writes value to the sysfs file at <sysfs>/<rel>; the error names all three. */
static int write_attr(struct iovk_ctx *ctx, const char *address, const char *rel, const char *value)
{
	_cleanup_free_ char *p = sysfs_path(ctx, "%s", rel);
	int r;

	if (!p)
		return -ENOMEM;
	r = write_text(p, value);
	if (r < 0)
		return set_error(ctx, r, "%s: writing '%s' to %s: %s", address,
				 value[0] == '\n' ? "\\n" : value, p, strerror(-r));
	log_debug(ctx, "%s: wrote '%s' to %s", address, value, p);
	return 0;
}

static int set_override(struct iovk_ctx *ctx, const char *address, const char *driver)
{
	_cleanup_free_ char *rel = NULL;

	if (asprintf(&rel, "/bus/pci/devices/%s/driver_override", address) < 0)
		return -ENOMEM;
	/* A newline clears it: an empty write is a no-op on some kernels. */
	return write_attr(ctx, address, rel, driver[0] ? driver : "\n");
}

static int driver_registered(struct iovk_ctx *ctx, const char *driver)
{
	_cleanup_free_ char *p = sysfs_path(ctx, "/bus/pci/drivers/%s", driver);

	if (!p)
		return -ENOMEM;
	return path_exists(p);
}

static int load_driver_module(struct iovk_ctx *ctx, const char *driver)
{
	const struct kmod_dl *k;
	struct kmod_ctx *kctx;
	struct kmod_list *list = NULL, *it;
	int r;

	r = kmod_dl_get(ctx, "loading the module of a driver", &k);
	if (r < 0)
		return r;
	kctx = k->kmod_new(NULL, NULL);
	if (!kctx)
		return set_error(ctx, -ENOMEM, "cannot load module for driver %s: libkmod failed", driver);
	/* Looks the name up as an alias, then as a module name; kmod turns
	 * "vfio-pci" into the module name vfio_pci. */
	r = k->kmod_module_new_from_lookup(kctx, driver, &list);
	if (r < 0 || !list) {
		k->kmod_unref(kctx);
		return set_error(ctx, r < 0 ? r : -ENOENT,
				 "driver %s is not loaded and no kernel module provides it", driver);
	}
	kmod_dl_foreach(k, it, list) {
		struct kmod_module *mod = k->kmod_module_get_module(it);

		r = k->kmod_module_probe_insert_module(mod, 0, NULL, NULL, NULL, NULL);
		if (r < 0)
			set_error(ctx, r, "loading kernel module %s for driver %s: %s", k->kmod_module_get_name(mod),
				  driver, strerror(-r));
		else
			log_info(ctx, "loaded kernel module %s for driver %s", k->kmod_module_get_name(mod), driver);
		k->kmod_module_unref(mod);
		if (r < 0)
			break;
	}
	k->kmod_module_unref_list(list);
	k->kmod_unref(kctx);
	return r < 0 ? r : 0;
}

static int ensure_driver(struct iovk_ctx *ctx, const char *driver, unsigned flags, bool *ret_loaded)
{
	int r;

	r = driver_registered(ctx, driver);
	if (r != 0)
		return r < 0 ? r : 0;
	if ((flags & IOVK_BIND_NO_MODULE_LOAD) || !iovk_ctx_is_live(ctx))
		return set_error(ctx, -ENOENT, "driver %s is not registered (%s/bus/pci/drivers/%s does not exist)",
				 driver, ctx->sysfs_root, driver);
	r = load_driver_module(ctx, driver);
	if (r < 0)
		return r;
	r = driver_registered(ctx, driver);
	if (r <= 0)
		return set_error(ctx, r < 0 ? r : -ENOENT,
				 "the module for %s loaded, but no PCI driver of that name registered", driver);
	*ret_loaded = true;
	return 0;
}

/* ---- records of the previous driver, for restore ------------------------- */

static char *record_path(struct iovk_ctx *ctx, const char *address)
{
	return root_path(ctx->run_dir, "/previous-driver/%s", address);
}

/* Returns 1 with the recorded driver ("" = none), 0 when there is no record. */
static int record_read(struct iovk_ctx *ctx, const char *address, char buf[static DRIVER_MAX])
{
	_cleanup_free_ char *p = record_path(ctx, address), *s = NULL;
	int r;

	if (!p)
		return -ENOMEM;
	r = read_text(p, &s);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return set_error(ctx, r, "%s: reading %s: %s", address, p, strerror(-r));
	if (s[0] && bind_check_driver_name(ctx, s) < 0)
		return set_error(ctx, -EBADMSG, "%s: %s does not hold a driver name", address, p);
	snprintf(buf, DRIVER_MAX, "%s", s);
	return 1;
}

/* Records the driver a device had before iovkit first moved it; keeps an
 * existing record, which holds the older truth. Returns 1 if it wrote one. */
static int record_write(struct iovk_ctx *ctx, const char *address, const char *driver)
{
	_cleanup_free_ char *p = record_path(ctx, address), *text = NULL;
	char buf[DRIVER_MAX];
	int r;

	if (!p || asprintf(&text, "%s\n", driver) < 0)
		return -ENOMEM;
	r = record_read(ctx, address, buf);
	if (r != 0)
		return r < 0 ? r : 0;
	r = write_file_atomic(p, text);
	if (r < 0)
		return set_error(ctx, r, "%s: recording previous driver in %s: %s", address, p, strerror(-r));
	return 1;
}

bool previous_driver_forget(struct iovk_ctx *ctx, const char *address)
{
	_cleanup_free_ char *p = record_path(ctx, address);

	return p && unlink(p) >= 0;
}


/* ---- moving a device between drivers ------------------------------------- */

/*
 * Moves the device from its current driver to target ("" = none) and
 * checks the driver link. Returns 0 when the device ended on target,
 * -ENODEV (or the probe's errno) when it did not.
 */
static int move_device(struct iovk_ctx *ctx, const struct dev_state *s, const char *target)
{
	_cleanup_free_ char *rel = NULL;
	char now[DRIVER_MAX];
	int r, probe_r = 0;

	r = current_driver(ctx, s->address, now);
	if (r < 0)
		return r;
	if (strcmp(now, target) == 0)
		return 0;

	if (target[0]) {
		if (s->has_override) {
			r = set_override(ctx, s->address, target);
		} else {
			/* Kernels before 3.16: teach the driver the ID. Like
			 * dpdk-devbind, this lets it claim every unbound
			 * device with the same ID. */
			char id[16];

			snprintf(id, sizeof(id), "%04x %04x", s->vendor_id, s->device_id);
			if (asprintf(&rel, "/bus/pci/drivers/%s/new_id", target) < 0)
				return -ENOMEM;
			r = write_attr(ctx, s->address, rel, id);
			if (r == -EEXIST)
				r = 0;
			free(rel);
			rel = NULL;
		}
		if (r < 0)
			return r;
	}

	if (now[0]) {
		if (asprintf(&rel, "/bus/pci/drivers/%s/unbind", now) < 0)
			return -ENOMEM;
		r = write_attr(ctx, s->address, rel, s->address);
		free(rel);
		rel = NULL;
		if (r < 0)
			return r;
	}

	if (target[0]) {
		/* drivers_probe ends in device_attach(), which probes
		 * synchronously even for drivers that prefer async probing, so
		 * the link is final when the write returns. */
		if (s->has_override)
			rel = strdup("/bus/pci/drivers_probe");
		else if (asprintf(&rel, "/bus/pci/drivers/%s/bind", target) < 0)
			rel = NULL;
		if (!rel)
			return -ENOMEM;
		probe_r = write_attr(ctx, s->address, rel, s->address);
	}

	r = current_driver(ctx, s->address, now);
	if (r < 0)
		return r;
	if (strcmp(now, target) == 0)
		return 0;
	if (probe_r < 0)
		return probe_r;
	if (!target[0])
		return set_error(ctx, -EBUSY, "%s: still bound to %s after unbinding", s->address, now);
	if (now[0])
		return set_error(ctx, -EBUSY, "%s: %s took the device instead of %s", s->address, now, target);
	return set_error(ctx, -ENODEV,
			 "%s: driver %s did not take the device (its probe failed; the kernel log says why)",
			 s->address, target);
}

/*
 * Puts the device back as it was: previous driver and previous override.
 * Appends what happened to the error text already in the context.
 */
static void rollback(struct iovk_ctx *ctx, const struct dev_state *before, struct iovk_bind_result *res)
{
	char reason[sizeof(ctx->error)];
	int r;

	snprintf(reason, sizeof(reason), "%s", ctx->error);
	/* Pin the old driver while probing, so nothing else can win. */
	r = move_device(ctx, before, before->driver);
	if (before->has_override) {
		int r2 = set_override(ctx, before->address, before->override);

		if (r >= 0)
			r = r2;
	}
	if (r < 0) {
		char why[sizeof(ctx->error)];

		snprintf(why, sizeof(why), "%s", ctx->error);
		set_error(ctx, -EIO, "%s; restoring %s failed too: %s", reason,
			  before->driver[0] ? before->driver : "no driver", why);
		return;
	}
	set_error(ctx, -EIO, "%s; %s restored", reason,
		  before->driver[0] ? before->driver : "unbound state");
	res->rolled_back = true;
}

static void result_fill(struct iovk_ctx *ctx, struct iovk_bind_result *res, const struct dev_state *before)
{
	char now[DRIVER_MAX] = "";

	snprintf(res->previous_driver, sizeof(res->previous_driver), "%s", before->driver);
	snprintf(res->previous_override, sizeof(res->previous_override), "%s", before->override);
	res->record_created = before->recorded;
	if (current_driver(ctx, before->address, now) >= 0)
		snprintf(res->driver, sizeof(res->driver), "%s", now);
}

int bind_locked(struct iovk_ctx *ctx, struct dev_state *before, const char *driver, unsigned flags,
		       struct iovk_bind_result *res)
{
	int r, recorded;

	if (strcmp(before->driver, driver) == 0) {
		/* Already there: pin it, as driverctl does, so a later
		 * reprobe keeps it. */
		if (before->has_override && strcmp(before->override, driver) != 0) {
			r = set_override(ctx, before->address, driver);
			if (r < 0)
				return r;
		}
		result_fill(ctx, res, before);
		return 0;
	}
	/* The driver first: a misspelt one is the answer, not the device's use.
	 * Loading its module changes nothing of the device's. */
	r = ensure_driver(ctx, driver, flags, &res->module_loaded);
	if (r < 0)
		return r;
	r = refuse_in_use(ctx, before, flags);
	if (r < 0)
		return r;
	recorded = record_write(ctx, before->address, before->driver);
	if (recorded < 0)
		return recorded;
	before->recorded = recorded > 0;

	r = move_device(ctx, before, driver);
	if (r < 0) {
		int err = r;

		rollback(ctx, before, res);
		if (recorded > 0)
			previous_driver_forget(ctx, before->address);
		result_fill(ctx, res, before);
		return err;
	}
	res->changed = true;
	result_fill(ctx, res, before);
	return 0;
}

_public_ int iovk_device_bind(struct iovk_ctx *ctx, const char *address, const char *driver, unsigned flags,
			      struct iovk_bind_result *result)
{
	_cleanup_close_ int lock = -1;
	struct iovk_bind_result res = IOVK_BIND_RESULT_INIT;
	struct dev_state before;
	int r;

	assert_return(ctx && address, -EINVAL);
	clear_error(ctx);
	r = result_valid(ctx, result, sizeof(*result), "iovk_bind_result");
	if (r < 0)
		return r;
	r = bind_check_args(ctx, flags, driver);
	if (r < 0)
		return r;
	r = bind_read_state(ctx, address, &before);
	if (r < 0)
		return r;
	r = run_lock(ctx, &lock);
	if (r < 0)
		return r;
	/* Re-read under the lock: another process may have moved it. */
	r = bind_read_state(ctx, address, &before);
	if (r < 0)
		return r;
	r = bind_locked(ctx, &before, driver, flags, &res);
	result_store(result, &res, sizeof(res));
	return r;
}

/*
 * What unbind and restore do first: arguments, the run lock (held in
 * *lock until the caller returns), the device read again under it.
 */
static int change_begin(struct iovk_ctx *ctx, const char *address, unsigned flags,
			const struct iovk_bind_result *result, int *lock, struct dev_state *before)
{
	int r;

	clear_error(ctx);
	r = result_valid(ctx, result, sizeof(*result), "iovk_bind_result");
	if (r >= 0)
		r = bind_check_flags(ctx, flags);
	if (r >= 0)
		r = run_lock(ctx, lock);
	if (r >= 0)
		r = bind_read_state(ctx, address, before);
	return r;
}

_public_ int iovk_device_unbind(struct iovk_ctx *ctx, const char *address, unsigned flags,
				struct iovk_bind_result *result)
{
	_cleanup_close_ int lock = -1;
	struct iovk_bind_result res = IOVK_BIND_RESULT_INIT;
	struct dev_state before;
	int r, recorded;

	assert_return(ctx && address, -EINVAL);
	r = change_begin(ctx, address, flags, result, &lock, &before);
	if (r < 0)
		return r;
	if (before.driver[0]) {
		r = refuse_in_use(ctx, &before, flags);
		if (r < 0)
			return r;
		recorded = record_write(ctx, before.address, before.driver);
		if (recorded < 0)
			return recorded;
		before.recorded = recorded > 0;
		r = move_device(ctx, &before, "");
		if (r < 0) {
			if (recorded > 0)
				previous_driver_forget(ctx, before.address);
			result_fill(ctx, &res, &before);
			result_store(result, &res, sizeof(res));
			return r;
		}
		res.changed = true;
	}
	result_fill(ctx, &res, &before);
	result_store(result, &res, sizeof(res));
	return 0;
}

_public_ int iovk_device_bind_undo(struct iovk_ctx *ctx, const char *address, const struct iovk_bind_result *result)
{
	_cleanup_close_ int lock = -1;
	struct dev_state now;
	int r;

	assert_return(ctx && address, -EINVAL);
	clear_error(ctx);
	if (!result || result_valid(ctx, result, sizeof(*result), "iovk_bind_result") < 0)
		return -EINVAL;
	if (result->previous_driver[0] && bind_check_driver_name(ctx, result->previous_driver) < 0)
		return -EINVAL;
	if (result->previous_override[0] && bind_check_driver_name(ctx, result->previous_override) < 0)
		return -EINVAL;
	r = run_lock(ctx, &lock);
	if (r < 0)
		return r;
	r = bind_read_state(ctx, address, &now);
	if (r < 0)
		return r;
	r = move_device(ctx, &now, result->previous_driver);
	if (r >= 0 && now.has_override && strcmp(now.override, result->previous_override) != 0)
		r = set_override(ctx, now.address, result->previous_override);
	if (r < 0)
		return r;
	if (result->record_created)
		previous_driver_forget(ctx, now.address);
	return 0;
}

/* The canonical form of address, for a PCI device that exists: 0, -EINVAL or -ENODEV (with the error set). */
static int canonical_address(struct iovk_ctx *ctx, const char *address, char canonical[static IOVK_PCI_ADDR_MAX])
{
	struct iovk_pci_addr addr;

	if (iovk_pci_addr_parse(address, &addr) < 0)
		return set_error(ctx, -EINVAL, "'%s' is not a PCI address", address ? address : "(null)");
	iovk_pci_addr_format(&addr, canonical);
	return 0;
}

/* -ENODEV (set as the error) unless canonical names a device in sysfs. */
static int device_exists(struct iovk_ctx *ctx, const char *canonical)
{
	_cleanup_free_ char *dir = sysfs_path(ctx, "/bus/pci/devices/%s", canonical);

	if (!dir)
		return -ENOMEM;
	if (!path_exists(dir))
		return set_error(ctx, -ENODEV, "%s: no such PCI device (%s does not exist)", canonical, dir);
	return 0;
}

static int existing_device(struct iovk_ctx *ctx, const char *address, char canonical[static IOVK_PCI_ADDR_MAX])
{
	int r = canonical_address(ctx, address, canonical);

	return r < 0 ? r : device_exists(ctx, canonical);
}

/*
 * The two reads below are iovd's per Allocate: the link is read first, and
 * the device looked for only when it is missing (no driver, no group, or no
 * device), which spares a walk of the sysfs path in the usual case.
 */
_public_ int iovk_device_read_driver(struct iovk_ctx *ctx, const char *address, char *buf, size_t size)
{
	char canonical[IOVK_PCI_ADDR_MAX], name[DRIVER_MAX];
	int r;

	assert_return(ctx && address && buf, -EINVAL);
	clear_error(ctx);
	r = canonical_address(ctx, address, canonical);
	if (r < 0)
		return r;
	r = current_driver(ctx, canonical, name);
	if (r < 0)
		return r;
	if (!name[0]) {
		r = device_exists(ctx, canonical);
		if (r < 0)
			return r;
	}
	if (strlen(name) >= size)
		return -ENAMETOOLONG;
	strcpy(buf, name);
	return 0;
}

_public_ int iovk_device_read_iommu_group(struct iovk_ctx *ctx, const char *address)
{
	char canonical[IOVK_PCI_ADDR_MAX], name[32];
	_cleanup_free_ char *p = NULL;
	char *end;
	long g;
	int r;

	assert_return(ctx && address, -EINVAL);
	clear_error(ctx);
	r = canonical_address(ctx, address, canonical);
	if (r < 0)
		return r;
	p = sysfs_path(ctx, "/bus/pci/devices/%s/iommu_group", canonical);
	if (!p)
		return -ENOMEM;
	r = read_link_name(p, name, sizeof(name));
	if (r == -ENOENT) {
		r = device_exists(ctx, canonical);
		if (r < 0)
			return r;
		return set_error(ctx, -ENOENT, "%s: no IOMMU group (%s does not exist: the IOMMU is off)", canonical, p);
	}
	if (r < 0)
		return set_error(ctx, r, "%s: reading link %s: %s", canonical, p, strerror(-r));
	g = strtol(name, &end, 10);
	if (*end || end == name || g < 0 || g > INT_MAX)
		return set_error(ctx, -EBADMSG, "%s: %s points to '%s', not a group number", canonical, p, name);
	return (int)g;
}

/*
 * The PCI driver that kernel module name registers and that is a kernel
 * driver (not vfio-pci, a vfio variant driver or pci-stub): its entry
 * "pci:NAME" in <sysfs>/module/<name>/drivers. Returns 1 with it in buf, 0
 * when there is none (the module is not loaded, or drives another bus).
 */
static int module_kernel_pci_driver(struct iovk_ctx *ctx, const char *name, char buf[static DRIVER_MAX])
{
	_cleanup_free_ char *dir = sysfs_path(ctx, "/module/%s/drivers", name);
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;

	if (!dir)
		return -ENOMEM;
	d = opendir(dir);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		const char *drv = de->d_name + strlen("pci:");

		if (strncmp(de->d_name, "pci:", strlen("pci:")) != 0 || strlen(drv) >= DRIVER_MAX ||
		    driver_is_vfio_friendly(drv))
			continue;
		snprintf(buf, DRIVER_MAX, "%s", drv);
		return 1;
	}
	return 0;
}

/*
 * No sysfs file names a device's kernel driver before a driver has it: the
 * kernel matches the device's modalias against the drivers registered, and
 * udev loads the modules whose aliases match. With sriov_drivers_autoprobe
 * 0 on its PF the kernel does not even try for a VF, so whoever wants the
 * VF on its kernel driver must name it: the modalias goes through the module
 * index as udev's kmod builtin does it (blacklists applied), and the module
 * found, once loaded, shows its driver in /sys/module/<name>/drivers.
 */
_public_ int iovk_device_find_kernel_driver(struct iovk_ctx *ctx, const char *address, unsigned flags, char *buf,
					    size_t size)
{
	_cleanup_free_ char *dir = NULL, *alias = NULL;
	const struct kmod_dl *k;
	struct kmod_ctx *kctx = NULL;
	struct kmod_list *list = NULL, *it;
	char canonical[IOVK_PCI_ADDR_MAX], found[DRIVER_MAX] = "", modules[256] = "", why[256] = "";
	size_t len = 0;
	int r;

	assert_return(ctx && address && buf, -EINVAL);
	clear_error(ctx);
	r = existing_device(ctx, address, canonical);
	if (r < 0)
		return r;
	dir = sysfs_path(ctx, "/bus/pci/devices/%s/modalias", canonical);
	if (!dir)
		return -ENOMEM;
	r = read_text(dir, &alias);
	if (r < 0)
		return set_error(ctx, r, "%s: reading %s: %s", canonical, dir, strerror(-r));
	if (!iovk_ctx_is_live(ctx))
		return set_error(ctx, -EOPNOTSUPP,
				 "%s: the kernel driver for modalias %s is found in the running kernel's module "
				 "index, which does not describe the sysfs tree %s", canonical, alias, ctx->sysfs_root);

	r = kmod_dl_get(ctx, "looking up a modalias", &k);
	if (r < 0)
		return r;
	kctx = k->kmod_new(NULL, NULL);
	if (!kctx)
		return set_error(ctx, -ENOMEM, "%s: cannot look up modalias %s: libkmod failed", canonical, alias);
	r = k->kmod_module_new_from_lookup(kctx, alias, &list);
	if (r < 0) {
		k->kmod_unref(kctx);
		return set_error(ctx, r, "%s: looking up modalias %s in the module index: %s", canonical, alias,
				 strerror(-r));
	}
	kmod_dl_foreach(k, it, list) {
		struct kmod_module *mod = k->kmod_module_get_module(it);
		const char *name = k->kmod_module_get_name(mod);
		bool loaded = k->kmod_module_get_initstate(mod) >= 0; /* live, coming or built in */
		int pr;

		if (!loaded && (flags & IOVK_BIND_NO_MODULE_LOAD))
			snprintf(why, sizeof(why), "; %s is not loaded", name);
		else if (!loaded) {
			pr = k->kmod_module_probe_insert_module(mod, KMOD_PROBE_APPLY_BLACKLIST, NULL, NULL, NULL, NULL);
			if (pr < 0)
				snprintf(why, sizeof(why), "; loading %s failed: %s", name, strerror(-pr));
			else if (pr > 0)
				snprintf(why, sizeof(why), "; %s is blacklisted", name);
			else
				log_info(ctx, "loaded kernel module %s for %s", name, canonical);
			loaded = pr == 0;
		}
		r = loaded ? module_kernel_pci_driver(ctx, name, found) : 0;
		len += (size_t)snprintf(modules + len, len < sizeof(modules) ? sizeof(modules) - len : 0, "%s%s",
					len ? ", " : "", name);
		k->kmod_module_unref(mod);
		if (r != 0)
			break;
	}
	k->kmod_module_unref_list(list);
	k->kmod_unref(kctx);
	if (r < 0)
		return r;
	if (!found[0]) {
		if (!modules[0])
			return set_error(ctx, -ENOENT, "%s: no kernel module matches its modalias %s", canonical, alias);
		return set_error(ctx, -ENOENT, "%s: the modules matching its modalias (%s) register no kernel PCI "
				 "driver%s", canonical, modules, why);
	}
	if (strlen(found) >= size)
		return -ENAMETOOLONG;
	strcpy(buf, found);
	return 0;
}

_public_ int iovk_device_restore(struct iovk_ctx *ctx, const char *address, unsigned flags,
				 struct iovk_bind_result *result)
{
	_cleanup_close_ int lock = -1;
	struct iovk_bind_result res = IOVK_BIND_RESULT_INIT;
	struct dev_state before;
	char saved[DRIVER_MAX];
	int r, has_record;

	assert_return(ctx && address, -EINVAL);
	r = change_begin(ctx, address, flags, result, &lock, &before);
	if (r < 0)
		return r;
	has_record = record_read(ctx, before.address, saved);
	if (has_record < 0)
		return has_record;
	if ((has_record && strcmp(saved, before.driver) != 0) || (!has_record && before.override[0])) {
		r = refuse_in_use(ctx, &before, flags);
		if (r < 0)
			return r;
	}

	if (has_record) {
		bool loaded = false;

		if (saved[0]) {
			r = ensure_driver(ctx, saved, 0, &loaded);
			if (r < 0)
				return r;
		}
		r = move_device(ctx, &before, saved);
		if (r >= 0 && before.has_override)
			r = set_override(ctx, before.address, "");
		if (r < 0) {
			/* Leave the record: a later restore can try again. */
			result_fill(ctx, &res, &before);
			result_store(result, &res, sizeof(res));
			return r;
		}
		res.module_loaded = loaded;
		previous_driver_forget(ctx, before.address);
	} else if (before.override[0]) {
		/* No record: do what `driverctl unset-override` does, clear
		 * the override and let the kernel pick the default driver. */
		r = set_override(ctx, before.address, "");
		if (r >= 0 && before.driver[0]) {
			_cleanup_free_ char *rel = NULL;

			if (asprintf(&rel, "/bus/pci/drivers/%s/unbind", before.driver) < 0)
				return -ENOMEM;
			r = write_attr(ctx, before.address, rel, before.address);
		}
		if (r >= 0)
			r = write_attr(ctx, before.address, "/bus/pci/drivers_probe", before.address);
		if (r < 0)
			return r;
	}
	result_fill(ctx, &res, &before);
	res.changed = strcmp(res.driver, before.driver) != 0;
	result_store(result, &res, sizeof(res));
	return 0;
}

int bind_put_back(struct iovk_ctx *ctx, const struct dev_state *before)
{
	int r = move_device(ctx, before, before->driver);

	if (before->has_override) {
		int r2 = set_override(ctx, before->address, before->override);

		if (r >= 0)
			r = r2;
	}
	if (before->recorded)
		previous_driver_forget(ctx, before->address);
	return r;
}
