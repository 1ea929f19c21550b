/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libiovkit PCI: addresses, the device inventory read from sysfs, and
 * driver binding.
 */
#pragma once

#include <iovkit/core.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- PCI addresses ---------------------------------------------------- */

struct iovk_pci_addr {
	uint32_t domain; /* 16 bits on most hosts; VMD domains are wider */
	uint8_t bus;
	uint8_t dev; /* 0..31 */
	uint8_t fn;  /* 0..7 */
};

/* "dddd:bb:dd.f" plus NUL; wide (VMD) domains need up to 8 domain digits. */
#define IOVK_PCI_ADDR_MAX 17

/*
 * Parses "DDDD:BB:DD.F" (4 to 8 hex domain digits, as the kernel prints
 * them) or the short "BB:DD.F" (domain 0). Hex digits of either case; no
 * surrounding blanks, signs or prefixes. Returns 0 or -EINVAL.
 */
int iovk_pci_addr_parse(const char *s, struct iovk_pci_addr *ret_addr);
/* Writes the canonical "0000:01:00.0" form; returns buf. */
char *iovk_pci_addr_format(const struct iovk_pci_addr *addr, char buf[static IOVK_PCI_ADDR_MAX]);
int iovk_pci_addr_compare(const struct iovk_pci_addr *a, const struct iovk_pci_addr *b);

/* ---- Devices ------------------------------------------------------------ */

/* A snapshot of one PCI function as sysfs showed it when it was read. */
struct iovk_device;

/*
 * Reads the device at the address given as text (any form accepted by
 * iovk_pci_addr_parse()). Returns 0, -EINVAL for a malformed address,
 * -ENODEV when there is no such device, or the errno of an unreadable
 * attribute.
 */
int iovk_device_new(struct iovk_ctx *ctx, const char *address, struct iovk_device **ret_device);
struct iovk_device *iovk_device_ref(struct iovk_device *d);
struct iovk_device *iovk_device_unref(struct iovk_device *d);

/*
 * Reads every PCI device, sorted by address. *ret_devices is a
 * NULL-terminated array to free with iovk_device_list_free().
 */
int iovk_device_enumerate(struct iovk_ctx *ctx, struct iovk_device ***ret_devices, size_t *ret_n);
void iovk_device_list_free(struct iovk_device **devices);

const char *iovk_device_get_address(const struct iovk_device *d);
const struct iovk_pci_addr *iovk_device_get_addr(const struct iovk_device *d);
uint16_t iovk_device_get_vendor_id(const struct iovk_device *d);
uint16_t iovk_device_get_device_id(const struct iovk_device *d);
uint16_t iovk_device_get_subsystem_vendor_id(const struct iovk_device *d);
uint16_t iovk_device_get_subsystem_device_id(const struct iovk_device *d);
uint32_t iovk_device_get_class(const struct iovk_device *d); /* 0xCCSSPP */
/* Names from pci.ids through libpci; NULL when the database lacks them. */
const char *iovk_device_get_vendor_name(struct iovk_device *d);
const char *iovk_device_get_device_name(struct iovk_device *d);
const char *iovk_device_get_class_name(struct iovk_device *d);
/* Current driver, or NULL when none is bound. */
const char *iovk_device_get_driver(const struct iovk_device *d);
/* driver_override, or NULL when unset. */
const char *iovk_device_get_driver_override(const struct iovk_device *d);
/* NUMA node, -1 when the platform reports none. */
int iovk_device_get_numa_node(const struct iovk_device *d);
/* IOMMU group number, or -1 when the device has none (IOMMU off). */
int iovk_device_get_iommu_group(const struct iovk_device *d);
/* A port: PCI-to-PCI bridge (class 0x0604) or semi-transparent bridge (0x0609).
 * Host and ISA bridges are ordinary functions and count as false. */
bool iovk_device_is_bridge(const struct iovk_device *d);
/* SR-IOV: total and enabled VFs; -1 when the device is not a PF. */
int iovk_device_get_sriov_totalvfs(const struct iovk_device *d);
int iovk_device_get_sriov_numvfs(const struct iovk_device *d);
/* VF addresses of a PF, NULL-terminated (empty list when none). */
const char *const *iovk_device_get_vfs(const struct iovk_device *d);
/* Address of the PF of a VF, or NULL. */
const char *iovk_device_get_physfn(const struct iovk_device *d);
/* Network interface names, NULL-terminated (empty list when none). */
const char *const *iovk_device_get_netdevs(const struct iovk_device *d);
/* Address of the upstream bridge, or NULL for a device on a root bus. */
const char *iovk_device_get_parent(const struct iovk_device *d);

/*
 * ACS capability of the device read from its config space through libpci.
 * Returns 0 with the capability and control registers, -ENODATA when the
 * device has no ACS capability, or a negative errno when config space could
 * not be read.
 */
int iovk_device_get_acs(struct iovk_device *d, uint16_t *ret_cap, uint16_t *ret_ctrl);

/*
 * Whether this device lets its IOMMU group be used by VFIO, following the
 * kernel's DMA-ownership rules, which look at the driver alone (whether it
 * sets driver_managed_dma): no driver, vfio-pci or a vfio variant driver,
 * pci-stub and pcieport are fine; any other driver blocks. On false, *ret_reason (if given)
 * says why, valid while the device lives.
 */
bool iovk_device_is_vfio_safe(const struct iovk_device *d, const char **ret_reason);

/* ---- Driver binding ----------------------------------------------------- */

struct iovk_bind_result {
	char previous_driver[64]; /* "" when the device had no driver */
	char driver[64];          /* driver afterwards, "" when none */
	bool changed;             /* the call changed the binding */
	bool module_loaded;       /* the call loaded the driver's module */
	bool rolled_back;         /* the bind failed and the previous driver was restored */
	char previous_override[64]; /* driver_override before the call, "" when unset */
	bool record_created;      /* the call wrote the previous-driver record */
};

enum iovk_bind_flags {
	/* Do not load the driver's kernel module when it is not loaded. */
	IOVK_BIND_NO_MODULE_LOAD = 1u << 0,
};

/*
 * Binds the device to driver: writes driver_override (new_id on kernels
 * without it) before unbinding, so no other driver can grab the device in
 * between, probes, and verifies the driver link, because drivers_probe
 * succeeds even when no driver took the device. Loads the driver's module
 * first when needed (live sysfs only). If the new driver does not take the
 * device, the previous driver and override are restored and the call fails
 * with -ENODEV (no driver took it), -EBUSY (another driver took it) or the
 * errno of the failing sysfs write; result->rolled_back is set when the
 * previous state was restored.
 * Already bound to driver: 0, result->changed false. The driver the device
 * had before the first bind/unbind is recorded under the run directory for
 * iovk_device_restore(). Serialised with other iovkit processes through a
 * lock file in the run directory. result may be NULL.
 */
int iovk_device_bind(struct iovk_ctx *ctx, const char *address, const char *driver, unsigned flags,
		     struct iovk_bind_result *result);

/*
 * Undoes a successful iovk_device_bind() or iovk_device_unbind() exactly,
 * from the result it returned: the previous driver and the previous
 * driver_override come back, and the previous-driver record goes if that
 * call created it. For callers that must roll back a larger transaction
 * after the bind succeeded (iovd). Returns 0 or -errno.
 */
int iovk_device_bind_undo(struct iovk_ctx *ctx, const char *address, const struct iovk_bind_result *result);

/*
 * Reads only the device's current driver (the name of its driver link) into
 * buf, "" when none: far cheaper than iovk_device_new() for a caller that
 * needs nothing else. Returns 0, -EINVAL for a malformed address, -ENODEV
 * for an unknown device, -ENAMETOOLONG when buf is too small.
 */
int iovk_device_read_driver(struct iovk_ctx *ctx, const char *address, char *buf, size_t size);

/* Unbinds the device from its driver (0 if it has none). */
int iovk_device_unbind(struct iovk_ctx *ctx, const char *address, struct iovk_bind_result *result);

/*
 * Puts the device back on the driver recorded before iovkit first changed
 * it, clears driver_override and drops the record. Without a record but
 * with an override set, clears the override and reprobes, so the kernel
 * picks the default driver (what `driverctl unset-override` does). Without
 * either, changes nothing.
 */
int iovk_device_restore(struct iovk_ctx *ctx, const char *address, struct iovk_bind_result *result);

/*
 * Binds every endpoint of an IOMMU group to driver, as one transaction:
 * bridges are left alone, and when any device fails the ones already moved
 * are put back. On success *ret_n_changed (if given) counts the devices
 * that moved.
 */
int iovk_iommu_group_bind(struct iovk_ctx *ctx, int group, const char *driver, unsigned flags,
			  size_t *ret_n_changed);

#ifdef __cplusplus
}
#endif
