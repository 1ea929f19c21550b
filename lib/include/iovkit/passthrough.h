/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libiovkit: a device's IOMMU group handed to a VMM and back
 * (lib/passthrough/), above the device and group binding.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <iovkit/core.h>
#include <iovkit/pci.h>
#include <iovkit/iommu.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Passthrough: a device's IOMMU group handed to a VMM ----------------- */

/*
 * What iovk_passthrough_prepare() does with a device: it moves every
 * endpoint of the device's IOMMU group to vfio-pci (bridges stay on
 * pcieport), after checking that no member is still used by the host:
 *  - another endpoint of the group on a kernel driver that keeps DMA
 *    ownership (anything but vfio-pci, a vfio variant driver, pci-stub or
 *    no driver) blocks: iovkit moves only the device asked for away from
 *    its kernel driver, the others the operator moves first (a GPU's audio
 *    function, the ICH9 LPC bridge next to a SATA controller);
 *  - a bridge on a driver other than pcieport blocks;
 *  - the device asked for blocks when the host uses it, by the rule of
 *    iovk_device_check_in_use() (an interface up, addressed, routed or
 *    enslaved; a block device mounted, swap or held; the boot VGA device on
 *    a kernel driver; a PF with VFs; a device iovd allocated), unless flags
 *    has IOVK_BIND_FORCE, which overrides these reasons (and logs them),
 *    never the DMA-ownership ones above.
 * Before anything is written, the previous drivers of the endpoints are
 * recorded durably (written to a temporary file, fsync'ed, renamed, the
 * directory fsync'ed) in <run dir>/passthrough/<address>, so that
 * iovk_passthrough_release() can undo the move from any process, also after
 * the preparing one died halfway. The run directory (/run/iovkit) is
 * cleared at reboot, as are the bindings it describes.
 */
struct iovk_passthrough;

/* A member of the group that stops the move, and why. */
struct iovk_passthrough_blocker {
	char address[IOVK_PCI_ADDR_MAX];
	char driver[64];  /* its driver, "" when none */
	char reason[256]; /* without the address, e.g. "bound to snd_hda_intel, ..." */
	/* Appended (the library allocates blockers; callers only read them):
	 * the host-use reason's kind, or IOVK_IN_USE_KERNEL_DRIVER for another
	 * device of the group on a kernel driver; the interface or block device
	 * the reason names, "" when none. */
	enum iovk_in_use_kind kind;
	char object[64];
};

/* An endpoint of the group. */
struct iovk_passthrough_device {
	char address[IOVK_PCI_ADDR_MAX];
	char previous_driver[64]; /* before the first prepare (from the record); "" none */
	char driver[64];          /* driver now, "" none */
	bool requested;           /* the device named in the call */
	bool changed;             /* this call moved it (prepare: to vfio-pci; release: back) */
};

/*
 * Checks, without changing anything, whether the IOMMU group of the device
 * at address can go to a VMM. Returns 0 with the plan in *ret_p: the
 * endpoints with their current drivers and the blockers
 * (iovk_passthrough_get_n_blockers() is 0 when prepare would go ahead).
 * Returns -EINVAL for a malformed address or a bridge, -ENODEV for no such
 * device, -ENOENT when the device has no IOMMU group (the IOMMU is off),
 * or another negative errno.
 */
int iovk_passthrough_check(struct iovk_ctx *ctx, const char *address, struct iovk_passthrough **ret_p);

/*
 * Checks as iovk_passthrough_check() and, when nothing blocks, records the
 * previous drivers and binds the group to vfio-pci with
 * iovk_iommu_group_bind() (all or nothing; flags as there). An existing
 * record for the group is kept: it holds the older truth. When every
 * endpoint already is on vfio-pci (or a vfio variant driver) nothing is
 * written and no record is made.
 * Returns 0 with the result in *ret_p, -EBUSY when a member blocks (the
 * error text names each one and why; nothing was written), the errors of
 * iovk_passthrough_check() and iovk_iommu_group_bind(), or the errno of
 * writing the record. When the bind fails, the devices already moved are
 * put back and the record is removed; if putting them back failed, the
 * record is kept for iovk_passthrough_release().
 */
int iovk_passthrough_prepare(struct iovk_ctx *ctx, const char *address, unsigned flags,
			     struct iovk_passthrough **ret_p);

/*
 * Puts the endpoints recorded by iovk_passthrough_prepare() for the group
 * of the device at address (the device asked for or any other endpoint of
 * that group) back on their previous drivers and driver_override, exactly
 * as recorded (iovk_device_bind_undo(): the driver link is checked), then
 * removes the record. Needs nothing but the record: not the preparing
 * process, not the previous-driver records of iovk_device_bind(). An
 * endpoint already as recorded (one that was on vfio-pci before prepare,
 * or one a dying prepare never reached) is left alone.
 * Returns 1 with the result in *ret_p, 0 with *ret_p NULL when there is no
 * record (nothing to release), -EINVAL for a malformed address, -ENODEV for
 * an unknown device without a record, -EBADMSG for a corrupt record, -EBUSY
 * when a VFIO user (a running VM) holds the group open (unbinding vfio-pci
 * would block until it lets go; nothing changed), or the first error of an
 * endpoint: then the others were still tried and the record is kept, so
 * that a later release can finish.
 */
int iovk_passthrough_release(struct iovk_ctx *ctx, const char *address, struct iovk_passthrough **ret_p);

/*
 * Options of iovk_passthrough_prepare_opts() and
 * iovk_passthrough_release_opts(), for a program that hands groups out on
 * behalf of others (iovd's device pools). sz first:
 *     struct iovk_passthrough_opts o = { .sz = sizeof(o), .holder = "..." };
 * (IOVK_OPTS() of <iovkit/vfio.h> does the same). NULL means all defaults,
 * which is what iovk_passthrough_prepare() and _release() use.
 */
struct iovk_passthrough_opts {
	size_t sz;
	unsigned flags; /* as iovk_passthrough_prepare()'s (IOVK_BIND_FORCE ...) */
	/*
	 * Who holds the group once it is prepared: a line of printable ASCII
	 * (at most IOVK_PASSTHROUGH_HOLDER_MAX - 1 bytes), written into the
	 * record. A group whose record names another holder (or none: the
	 * record of `iovctl passthrough prepare`) is refused by prepare and
	 * release with -EBUSY naming that holder, and a record naming a holder
	 * is refused to a caller naming none: two programs never undo each
	 * other's passthrough. NULL: no holder (iovctl's).
	 */
	const char *holder;
	/*
	 * Other endpoints of the group that the caller may take from their
	 * kernel drivers too (NULL-terminated addresses; NULL for none): each
	 * is checked by the host-use rule as the device asked for, instead of
	 * blocking because it is on a kernel driver. iovd passes the free
	 * members of the pool (a GPU and its HDMI audio function in one pool).
	 */
	const char *const *take;
	/* The driver the endpoints go to: vfio-pci (NULL) or a vfio variant
	 * driver (iovk_driver_is_vfio()). */
	const char *driver;
};

#define IOVK_PASSTHROUGH_HOLDER_MAX 256

/* iovk_passthrough_prepare() and _release() with options (NULL: defaults);
 * opts->flags replaces prepare's flags. Returns as they do, and -EBUSY for
 * a group another holder has prepared. */
int iovk_passthrough_prepare_opts(struct iovk_ctx *ctx, const char *address, const struct iovk_passthrough_opts *opts,
				  struct iovk_passthrough **ret_p);
int iovk_passthrough_release_opts(struct iovk_ctx *ctx, const char *address, const struct iovk_passthrough_opts *opts,
				  struct iovk_passthrough **ret_p);

/*
 * Every passthrough record in the run directory, read as
 * iovk_passthrough_release() reads them (devices with previous_driver and
 * driver now, holder, record path), sorted by path, NULL-terminated in
 * *ret_list (free with iovk_passthrough_list_free()). A record iovkit did
 * not write is skipped with a warning in the log. Returns the number of
 * records, or a negative errno. For a holder that finds its own records at
 * start (iovd rolls back what a crash interrupted).
 */
int iovk_passthrough_list_records(struct iovk_ctx *ctx, struct iovk_passthrough ***ret_list);
void iovk_passthrough_list_free(struct iovk_passthrough **list);

/* Frees the object; NULL is fine. Always returns NULL. */
struct iovk_passthrough *iovk_passthrough_free(struct iovk_passthrough *p);
/* Canonical address of the device the call named. */
const char *iovk_passthrough_get_address(const struct iovk_passthrough *p);
int iovk_passthrough_get_iommu_group(const struct iovk_passthrough *p);
/* Path of the record; NULL when there is none (check, or nothing moved). */
const char *iovk_passthrough_get_record(const struct iovk_passthrough *p);
/* The holder the record names; NULL when none (iovctl's, or no record). */
const char *iovk_passthrough_get_holder(const struct iovk_passthrough *p);
/* Endpoints of the group, sorted by address; bridges are not listed. */
size_t iovk_passthrough_get_n_devices(const struct iovk_passthrough *p);
const struct iovk_passthrough_device *iovk_passthrough_get_device(const struct iovk_passthrough *p, size_t i);
size_t iovk_passthrough_get_n_blockers(const struct iovk_passthrough *p);
const struct iovk_passthrough_blocker *iovk_passthrough_get_blocker(const struct iovk_passthrough *p, size_t i);

#ifdef __cplusplus
}
#endif
