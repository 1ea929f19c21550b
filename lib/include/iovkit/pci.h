/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libiovkit PCI: addresses, the device inventory read from sysfs, and
 * driver binding.
 */
#pragma once

#include <sys/types.h>

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
/*
 * The canonical PCI address of what an operator names a device by: a PCI
 * address (DDDD:BB:DD.F or BB:DD.F), libvirt's node device name
 * (pci_0000_3b_00_0, as virsh nodedev-list prints it), or a network
 * interface whose device is a PCI function (as dpdk-devbind accepts), or a
 * virtio device of one (virtio-net on virtio-pci, a VM's NIC). An
 * address is only parsed (iovk_device_new() says whether a device is
 * there); an interface is looked up in sysfs. Returns 0, -EINVAL when name
 * has none of these forms, -ENODEV for an interface that does not exist or
 * is not a PCI function.
 */
int iovk_device_resolve_name(struct iovk_ctx *ctx, const char *name, char ret_address[static IOVK_PCI_ADDR_MAX]);
/* Address of the PF of a VF, or NULL. */
const char *iovk_device_get_physfn(const struct iovk_device *d);
/*
 * A VF's index among its PF's VFs: the N of the PF's virtfnN link, what
 * 'ip link set PF vf N' and iovkit.json(5) call VF N. Read on first use and
 * kept. Returns it (>= 0), -ENOENT when the device is not a VF, -ENODATA when
 * the PF links no virtfn to it, or another negative errno.
 */
int iovk_device_get_vf_index(struct iovk_device *d);
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
 * Reads config space bytes [offset, offset + size) from sysfs (the
 * kernel's view, not through VFIO). Returns the number of bytes read (fewer
 * past the end, or past 64 bytes for an unprivileged reader), or -errno
 * with the error naming the file.
 */
ssize_t iovk_device_read_config(struct iovk_device *d, size_t offset, void *buf, size_t size);

/*
 * Whether this device lets its IOMMU group be used by VFIO, following the
 * kernel's DMA-ownership rules, which look at the driver alone (whether it
 * sets driver_managed_dma): no driver, vfio-pci or a vfio variant driver,
 * pci-stub and pcieport are fine; any other driver blocks. On false, *ret_reason (if given)
 * says why, valid while the device lives.
 */
bool iovk_device_is_vfio_safe(const struct iovk_device *d, const char **ret_reason);

/*
 * Whether driver is vfio-pci or a vfio variant driver (mlx5_vfio_pci,
 * hisi_acc_vfio_pci, ...): a VMM can use the device through VFIO as it is.
 * False for NULL and "".
 */
bool iovk_driver_is_vfio(const char *driver);

/* ---- What the host uses ------------------------------------------------- */

/*
 * Why taking a device from its driver would hurt the host. One rule, used
 * by every call below that unbinds or rebinds a device, by passthrough, by
 * SR-IOV VF removal, by iovctl apply and by iovd.
 */
enum iovk_in_use_kind {
	IOVK_IN_USE_NETDEV_UP = 1,  /* a network interface of it is up (IFF_UP) */
	IOVK_IN_USE_NETDEV_ADDRESS, /* an interface carries an IP address (link-local ones do not count) */
	IOVK_IN_USE_NETDEV_ROUTE,   /* routes set up on top of the addresses (default, static, DHCP) use it */
	IOVK_IN_USE_NETDEV_MASTER,  /* an interface is enslaved to a bond or bridge */
	IOVK_IN_USE_BLOCK_MOUNTED,  /* a block device below it is mounted */
	IOVK_IN_USE_BLOCK_SWAP,     /* ... is in use as swap */
	IOVK_IN_USE_BLOCK_HELD,     /* ... is held by device-mapper, md or bcache */
	IOVK_IN_USE_BOOT_VGA,       /* the boot VGA device on a kernel driver: the host's console */
	IOVK_IN_USE_PF_WITH_VFS,    /* a PF with VFs on a driver: unbinding it removes the VFs */
	IOVK_IN_USE_ALLOCATED,      /* iovd has allocated it to an owner */
	IOVK_IN_USE_VF_ON_VFIO,     /* a VF that would be removed sits on a VFIO driver (assigned) */
	/* Not a reason iovk_device_check_in_use() gives: another device of the
	 * IOMMU group is on a kernel driver that keeps DMA ownership, so VFIO
	 * cannot take the group (iommu groups' and passthrough's blockers). */
	IOVK_IN_USE_KERNEL_DRIVER,
};

struct iovk_in_use_reason {
	char address[IOVK_PCI_ADDR_MAX]; /* the device in use: the one asked about, or one of its VFs */
	char driver[64];                 /* its driver, "" when none */
	enum iovk_in_use_kind kind;
	char object[64];  /* the interface or block device named, "" when none */
	char reason[256]; /* without the address: "its network interface eth0 is up; ..." */
};

enum iovk_in_use_flags {
	/* The device would vanish (its PF's VFs are removed), not only change
	 * driver: a VF on VFIO then counts as in use, since a guest may hold it. */
	IOVK_IN_USE_REMOVAL = 1u << 0,
};

struct iovk_in_use;

/*
 * Checks, changing nothing, whether taking the device at address from its
 * driver would take something the host uses: its interfaces (up, carrying
 * addresses or routes, enslaved to a bond or bridge; addresses and routes
 * are read over rtnetlink in the caller's network namespace when the
 * context reads the live /proc), its block devices (mounted, swap, held),
 * the boot VGA device on a kernel driver, a PF with VFs (and each of those
 * VFs that iovd allocated, that is on VFIO or that the host uses), a device
 * iovd allocated. A device with no driver, or on vfio-pci or pci-stub, is in
 * use only when iovd allocated it, when it is a PF with VFs, or (with
 * IOVK_IN_USE_REMOVAL) when it sits on VFIO. Every reason is returned, not
 * the first. Returns 0 with the list in *ret (no reasons: free to take),
 * -EINVAL for a malformed address or unknown flags, -ENODEV for an unknown
 * device, or another negative errno (reading rtnetlink: -EIO).
 */
int iovk_device_check_in_use(struct iovk_ctx *ctx, const char *address, unsigned flags, struct iovk_in_use **ret);
size_t iovk_in_use_get_n_reasons(const struct iovk_in_use *u);
const struct iovk_in_use_reason *iovk_in_use_get_reason(const struct iovk_in_use *u, size_t i);
/* Every reason in one line: "0000:01:00.0 (ixgbe): its network interface ... is up; ..."; "" for none. */
const char *iovk_in_use_get_text(const struct iovk_in_use *u);
/* "netdev-up", "pf-with-vfs", "kernel-driver", ...: the words of iovctl's --json output ("kind" of a
 * blocker); NULL for an unknown kind. */
const char *iovk_in_use_kind_to_string(enum iovk_in_use_kind kind);
/* Frees the list; NULL is fine. Always returns NULL. */
struct iovk_in_use *iovk_in_use_free(struct iovk_in_use *u);

/* ---- Driver binding ----------------------------------------------------- */

/*
 * Whether name can be a kernel driver's name as the binding calls accept
 * it: 1 to 63 letters, digits, '-', '_' and '.', so it can never walk out
 * of /sys/bus/pci/drivers/. What callers check before they call (a usage
 * error), instead of reading the calls' -EINVAL texts.
 */
bool iovk_driver_name_is_valid(const char *name);

/*
 * Results the caller allocates start with their size, as options do: set
 * sz with the _INIT macro (IOVK_BIND_RESULT_INIT), and a newer library
 * writes only the members the caller's version has. A result smaller than
 * the first version's is -EINVAL.
 */
struct iovk_bind_result {
	size_t sz;
	char previous_driver[64]; /* "" when the device had no driver */
	char driver[64];          /* driver afterwards, "" when none */
	bool changed;             /* the call changed the binding */
	bool module_loaded;       /* the call loaded the driver's module */
	bool rolled_back;         /* the bind failed and the previous driver was restored */
	char previous_override[64]; /* driver_override before the call, "" when unset */
	bool record_created;      /* the call wrote the previous-driver record */
};
#define IOVK_BIND_RESULT_INIT { .sz = sizeof(struct iovk_bind_result) }

enum iovk_bind_flags {
	/* Do not load the driver's kernel module when it is not loaded. */
	IOVK_BIND_NO_MODULE_LOAD = 1u << 0,
	/* Take the device even when iovk_device_check_in_use() finds the
	 * host using it; the reasons are logged at LOG_WARNING. */
	IOVK_BIND_FORCE = 1u << 1,
};

/*
 * Binds the device to driver: writes driver_override (new_id on kernels
 * without it) before unbinding, so no other driver can grab the device in
 * between, probes, and verifies the driver link, because drivers_probe
 * succeeds even when no driver took the device. Loads the driver's module
 * first when needed (live sysfs only; -EOPNOTSUPP, nothing written, when
 * libkmod.so.2, opened on first use, cannot be). If the new driver does not take the
 * device, the previous driver and override are restored and the call fails
 * with -ENODEV (no driver took it), -EBUSY (another driver took it) or the
 * errno of the failing sysfs write; result->rolled_back is set when the
 * previous state was restored.
 * A device that would leave a driver the host uses through it
 * (iovk_device_check_in_use()) is refused with -EBUSY naming every reason,
 * before anything is written, unless flags has IOVK_BIND_FORCE; unknown
 * flags are -EINVAL.
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

/*
 * Reads only the device's IOMMU group (its iommu_group link), as cheaply as
 * iovk_device_read_driver(). Returns the group number, -ENOENT when the
 * device has none (the IOMMU is off), -EINVAL for a malformed address,
 * -ENODEV for an unknown device, -EBADMSG for a link that names no number.
 */
int iovk_device_read_iommu_group(struct iovk_ctx *ctx, const char *address);

/* Unbinds the device from its driver (0 if it has none); refuses a device
 * the host uses unless IOVK_BIND_FORCE, as iovk_device_bind(). */
int iovk_device_unbind(struct iovk_ctx *ctx, const char *address, unsigned flags, struct iovk_bind_result *result);

/*
 * Puts the device back on the driver recorded before iovkit first changed
 * it, clears driver_override and drops the record. Without a record but
 * with an override set, clears the override and reprobes, so the kernel
 * picks the default driver (what `driverctl unset-override` does). Without
 * either, changes nothing. A device that would leave a driver the host
 * uses, or that iovd allocated, is refused unless IOVK_BIND_FORCE, as
 * iovk_device_bind().
 */
int iovk_device_restore(struct iovk_ctx *ctx, const char *address, unsigned flags, struct iovk_bind_result *result);

/*
 * The name of the kernel driver that the device's modalias names (the one
 * udev loads for it), e.g. "igbvf" for an 82576 VF, into buf: what to bind a
 * device that no driver has taken, such as a VF whose PF has
 * sriov_drivers_autoprobe 0 (the kernel probes no driver for it then).
 * Looks the modalias up in the running kernel's module index (libkmod,
 * blacklists applied), loads a matching module that is not loaded unless
 * flags has IOVK_BIND_NO_MODULE_LOAD, and takes the first PCI driver such a
 * module registers that is not vfio-pci, a vfio variant driver or
 * pci-stub. Returns 0, -EINVAL for a malformed address, -ENODEV for an
 * unknown device, -EOPNOTSUPP on a context that is not live (a fixture tree
 * is not described by this kernel's index) or when libkmod.so.2, which
 * libiovkit opens on first use, cannot be loaded, -ENOENT when no module provides
 * a driver (the error names the modalias and the modules, and says when one
 * is blacklisted or not loaded), -ENAMETOOLONG when buf is too small.
 */
int iovk_device_find_kernel_driver(struct iovk_ctx *ctx, const char *address, unsigned flags, char *buf,
				   size_t size);


#ifdef __cplusplus
}
#endif
