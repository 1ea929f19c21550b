/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libiovkit declarative configuration: JSON files (iovkit.json(5)) that say
 * how many VFs each SR-IOV PF has, whether the kernel probes drivers for its
 * new VFs, the settings of each VF and the driver of each VF, and which
 * driver any other PCI device is bound to (what driverctl keeps); and plans
 * that bring the running system there.
 *
 * A configuration is parsed strictly and whole before the system is looked
 * at: syntax errors name the file, line and column; unknown keys, wrong
 * types, duplicate PFs, devices or VFs, VF indices out of range and bad
 * values name the file and the JSON path (pfs[0].vfs[1].vlan). VF settings
 * go through iovk_vf_settings_parse(), so they pass exactly the checks of
 * `iovctl vf set`.
 *
 * A plan is computed against the running system (read only) and lists the
 * steps that differ from it, in the order they are applied:
 *   1. sriov_drivers_autoprobe of each PF, so that VFs meant for VFIO never
 *      meet their kernel driver;
 *   2. the number of VFs of each PF (through 0 between two non-zero counts,
 *      refused while VFs are in use unless forced);
 *   3. VF settings, through the PF's network interface: they work whatever
 *      driver the VF has;
 *   4. driver bindings of VFs, then of the other devices: last, so that a VF
 *      is not used before it is configured.
 * Applying a plan stops at the first step that fails and leaves the rest
 * untouched; the steps say which were applied. Each step is idempotent on
 * its own, and a configuration the system already matches gives an empty
 * plan.
 */
#pragma once

#include <iovkit/core.h>
#include <iovkit/sriov.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Limits on what a configuration may hold. */
#define IOVK_CONFIG_FILE_MAX (1024 * 1024) /* bytes per file */
#define IOVK_CONFIG_PFS_MAX 1024u          /* PFs in all files */
#define IOVK_CONFIG_DEVICES_MAX 4096u      /* devices in all files */
#define IOVK_CONFIG_FILES_MAX 256u         /* files (a directory may hold no more) */

/* ---- configuration --------------------------------------------------------- */

struct iovk_config;

/* An empty configuration. Returns 0 or -ENOMEM. */
int iovk_config_new(struct iovk_ctx *ctx, struct iovk_config **ret_config);
struct iovk_config *iovk_config_ref(struct iovk_config *config);
/* Drops a reference; NULL is fine. Always returns NULL. */
struct iovk_config *iovk_config_unref(struct iovk_config *config);

/*
 * Parses the file at path and adds what it declares. All or nothing: on
 * failure the configuration is as before. Returns 0; -EBADMSG when the file
 * is not JSON (the error reads "FILE:LINE:COLUMN: ..."), or holds a key twice
 * in one object (compared decoded), a key escape that decodes to no
 * character or to NUL, more than 64 keys in one object, or a NUL byte;
 * -EINVAL when it is JSON but not a valid configuration, or declares a PF or
 * device that an earlier file declared too (the error reads "FILE:
 * pfs[0].vfs[1].vlan: ..."), or when path is not a regular file (a FIFO,
 * socket or device: refused without opening it); -EISDIR for a directory;
 * -EFBIG above IOVK_CONFIG_FILE_MAX; -E2BIG when a limit above would be
 * passed; or the errno of opening or reading it.
 */
int iovk_config_add_file(struct iovk_config *config, const char *path);
/* The same for text in memory; name stands for the file in messages. */
int iovk_config_add_string(struct iovk_config *config, const char *name, const char *text);
/*
 * Adds every file named *.json in the directory at path (names starting
 * with '.' are skipped), in the byte order of their names, all or nothing.
 * Each must be a regular file or a symlink to one: a FIFO, socket, device,
 * directory or dangling symlink named *.json fails the call, as
 * iovk_config_add_file() does. Returns the number of files added (0 for a
 * directory without any), or the error of the first file that fails (as
 * iovk_config_add_file()), or the errno of reading the directory.
 */
int iovk_config_add_directory(struct iovk_config *config, const char *path);

/* Files added, in order; the name of file i (NULL when i >= n). */
size_t iovk_config_get_n_files(const struct iovk_config *config);
const char *iovk_config_get_file(const struct iovk_config *config, size_t i);

/* ---- plans ------------------------------------------------------------------- */

enum iovk_plan_action {
	IOVK_PLAN_AUTOPROBE = 1, /* write the PF's sriov_drivers_autoprobe */
	IOVK_PLAN_NUMVFS,        /* set the PF's number of VFs */
	IOVK_PLAN_VF_SETTINGS,   /* change VF settings through the PF's interface */
	IOVK_PLAN_BIND,          /* bind a VF or device to a driver, or unbind it */
};

enum iovk_plan_status {
	IOVK_PLAN_PENDING = 0, /* not applied (yet) */
	IOVK_PLAN_APPLIED,
	IOVK_PLAN_FAILED,
};

/*
 * One step of a plan. Allocated by the library (members may be appended in
 * later versions); valid while the plan lives. Apply updates status, error,
 * error_message, changed and, for a VF created by an earlier step, device.
 */
struct iovk_plan_step {
	enum iovk_plan_action action;
	/* Where the configuration asks for it: the file and the JSON path of
	 * the entry, e.g. "pfs[0]", "pfs[0].vfs[1]", "devices[2]". */
	const char *file;
	const char *path;
	/* The PF as the file names it (a PCI address or an interface name);
	 * NULL for a device of "devices". */
	const char *pf;
	/* The PF's PCI address; NULL when the PF is not a PCI device
	 * (netdevsim) or for a device of "devices". */
	const char *pf_address;
	/* The VF's index, -1 when the step is not about a VF. */
	int vf;
	/* The PCI address acted on: the PF for AUTOPROBE and NUMVFS, the VF or
	 * device for BIND and VF_SETTINGS. NULL for a VF that an earlier step
	 * creates, until that step is applied, and for the VFs of a PF that is
	 * not a PCI device. */
	const char *device;

	/* AUTOPROBE: 0 or 1 now and asked. NUMVFS: the count now and asked. */
	int from, to;
	/* NUMVFS: both counts are non-zero, so all VFs are removed first (the
	 * kernel changes the count only through 0). */
	bool through_zero;
	/* NUMVFS: n = 0 will write back the autoprobe value recorded by
	 * IOVK_SRIOV_NO_AUTOPROBE (-1: no such record, or not n = 0). */
	int autoprobe_restored;
	/*
	 * Why applying this step would be refused, e.g. VFs in use that the
	 * step would remove, without IOVK_PLAN_FORCE; NULL when it would not.
	 * iovk_plan_apply() applies nothing while any step is blocked.
	 */
	const char *blocked;

	/*
	 * VF_SETTINGS: the settings to write (fields: those that differ, and
	 * those the driver does not report back); current holds what the VF
	 * shows now for the same fields, when has_current (false for a VF that
	 * an earlier step creates).
	 */
	struct iovk_vf_settings settings;
	bool has_current;
	struct iovk_vf_settings current;

	/* BIND: the driver now and the one asked, NULL for none. driver_from
	 * is NULL too for a VF that an earlier step creates. */
	const char *driver_from;
	const char *driver_to;

	/* One line in words, e.g. "0000:04:00.0: numvfs 2 -> 4 (through 0)". */
	const char *description;

	/* Filled by iovk_plan_apply(). */
	enum iovk_plan_status status;
	int error;                 /* negative errno of a failed step, else 0 */
	const char *error_message; /* the library's text for it, else NULL */
	bool changed;              /* applied and the system changed (not already so) */
	unsigned vf_unverified;    /* VF_SETTINGS: written but not reported back */

	/* What IOVK_PLAN_FORCE or the entry's "force" overrides for this step,
	 * in the words blocked would have used; NULL when nothing. */
	const char *forced;
};

enum iovk_plan_flags {
	/* Remove VFs even when they are in use (IOVK_SRIOV_FORCE). */
	IOVK_PLAN_FORCE = 1u << 0,
};

struct iovk_plan;

/*
 * Computes the steps that bring the running system to config: reads the
 * PFs, their VFs, the VFs' settings (through netlink, when the configuration
 * has any for VFs that exist) and the devices' drivers; writes nothing.
 * Fails, naming the file and JSON path of the entry, when the configuration
 * cannot apply to this system: -ENODEV for a PF, interface or device that
 * does not exist, -ENOENT for a PF that is not an SR-IOV PF or has no driver
 * when its number of VFs is to change, or no network interface when VF
 * settings are asked, -ERANGE for more VFs than the PF supports or a VF that
 * does not exist, -EOPNOTSUPP for what the PF cannot do (autoprobe before
 * Linux 4.12; numvfs, autoprobe or drivers of a PF that is not a PCI
 * device), -EINVAL when two entries name the same PF or device, or the
 * error of reading. Steps that would be refused (see blocked) do not fail
 * the call.
 */
int iovk_plan_new(struct iovk_ctx *ctx, const struct iovk_config *config, unsigned flags,
		  struct iovk_plan **ret_plan);
struct iovk_plan *iovk_plan_ref(struct iovk_plan *plan);
/* Drops a reference; NULL is fine. Always returns NULL. */
struct iovk_plan *iovk_plan_unref(struct iovk_plan *plan);

size_t iovk_plan_get_n_steps(const struct iovk_plan *plan);
/* Step i, in the order of applying; NULL when i >= n_steps. */
const struct iovk_plan_step *iovk_plan_get_step(const struct iovk_plan *plan, size_t i);
/* The first blocked step's index, or -1 when none is blocked. */
int iovk_plan_get_first_blocked(const struct iovk_plan *plan);
/* "autoprobe", "numvfs", "vf-settings", "bind"; NULL for other values. */
const char *iovk_plan_action_name(enum iovk_plan_action action);

/*
 * Applies the steps in order through the library's own calls
 * (iovk_sriov_set_drivers_autoprobe(), iovk_sriov_set_numvfs(),
 * iovk_vf_set(), iovk_device_bind() / iovk_device_unbind()), each of which
 * re-reads what it changes under the lock and undoes its own partial work
 * when it fails. Stops at the first failure: that step is FAILED (with its
 * error and the context's error, which names the step's file and path), the
 * steps before it APPLIED, the rest PENDING and untouched.
 *
 * Returns the number of steps applied (all of them), or a negative errno:
 * -EBUSY without applying anything when a step is blocked, -EALREADY when
 * the plan was applied before, or the error of the failed step.
 */
int iovk_plan_apply(struct iovk_plan *plan);
/* Steps applied so far. */
size_t iovk_plan_get_n_applied(const struct iovk_plan *plan);

/* ---- persisted driver overrides ------------------------------------------------ */

/*
 * One driver the configuration gives a device (what driverctl calls a
 * persisted override), as the system shows it now. Valid while the list
 * lives; members may be appended in later versions.
 */
struct iovk_override {
	/* The entry: its file and JSON path ("pfs[0].vfs[1]", "devices[2]"). */
	const char *file;
	const char *path;
	/* A devices[] selector as the file words it ("0000:3b:*", "8086:10ed"),
	 * NULL for an entry that names one device. */
	const char *match;
	/* A VF entry's PF (PCI address; NULL when the PF is not there) and
	 * index; NULL and -1 for devices[]. */
	const char *pf;
	int vf;
	/* The device now; NULL when it is not there (a VF not created yet, a
	 * device unplugged, a selector that matches nothing). */
	const char *device;
	/* The driver asked for (NULL: no driver) and the one bound now. */
	const char *driver;
	const char *current_driver;
	/* The device is there and on the driver asked for. */
	bool in_effect;
	/* The entry's "force": take the device even when the host uses it. */
	bool force;
};

struct iovk_overrides;

/*
 * The driver overrides of config. With address NULL: every VF entry with a
 * driver, every devices[] entry naming one device, and each device a
 * selector entry matches now (a selector that matches nothing is one row
 * without a device), in the configuration's order. With an address: the
 * override of that one device (0 or 1 rows), read cheaply enough for a udev
 * rule to ask for each device that appears: a VF by its PF's entry and its
 * index, then an entry naming it, then the selectors. Selectors never match
 * bridges, nor devices pfs[] covers (a PF it declares, a VF whose driver it
 * gives) or an exact entry names. Reads only. Returns 0, -ENODEV for an
 * address with no device, -EINVAL when two selectors match one device (the
 * error names both), or the errno of reading sysfs.
 */
int iovk_overrides_new(struct iovk_ctx *ctx, const struct iovk_config *config, const char *address,
		       struct iovk_overrides **ret_overrides);
struct iovk_overrides *iovk_overrides_ref(struct iovk_overrides *overrides);
/* Drops a reference; NULL is fine. Always returns NULL. */
struct iovk_overrides *iovk_overrides_unref(struct iovk_overrides *overrides);
size_t iovk_overrides_get_n(const struct iovk_overrides *overrides);
/* Row i; NULL when i >= n. */
const struct iovk_override *iovk_overrides_get(const struct iovk_overrides *overrides, size_t i);

#ifdef __cplusplus
}
#endif
