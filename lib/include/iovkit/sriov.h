/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libiovkit SR-IOV: physical functions (PFs), their virtual functions (VFs)
 * and the number of VFs enabled, through sysfs.
 *
 * A PF snapshot is read once, like struct iovk_device: reread it (a new
 * iovk_sriov_pf_new()) after a change. Its VFs are struct iovk_device
 * objects, in virtfnN order, so everything pci.h says about a device (driver,
 * IOMMU group, netdevs) is available for them.
 *
 * Network interfaces are listed by the device's sysfs net/ directory, never
 * by a name guessed from the PF's: udev may rename a fresh VF netdev just
 * after it appears, so reread the snapshot rather than keep a name long.
 */
#pragma once

#include <iovkit/core.h>
#include <iovkit/pci.h>

#ifdef __cplusplus
extern "C" {
#endif

struct iovk_sriov_pf;

/*
 * Reads the PF at address (any form accepted by iovk_pci_addr_parse()) and
 * its VFs. Returns 0, -EINVAL for a malformed address, -ENODEV when there is
 * no such device, -ENOENT when the device is not an SR-IOV PF (no
 * sriov_numvfs; a VF, or a device without the capability), or the errno of
 * an unreadable attribute.
 */
int iovk_sriov_pf_new(struct iovk_ctx *ctx, const char *address, struct iovk_sriov_pf **ret_pf);
struct iovk_sriov_pf *iovk_sriov_pf_ref(struct iovk_sriov_pf *pf);
/* Drops a reference; NULL is fine. Always returns NULL. */
struct iovk_sriov_pf *iovk_sriov_pf_unref(struct iovk_sriov_pf *pf);

/*
 * Every PF (devices with sriov_numvfs, or sriov_totalvfs > 0), sorted by
 * address. *ret_pfs is NULL-terminated; free it with
 * iovk_sriov_pf_list_free(). Returns 0 (an empty list on a host without
 * PFs) or -errno; *ret_n (if given) is the count.
 */
int iovk_sriov_enumerate_pfs(struct iovk_ctx *ctx, struct iovk_sriov_pf ***ret_pfs, size_t *ret_n);
void iovk_sriov_pf_list_free(struct iovk_sriov_pf **pfs);

const char *iovk_sriov_pf_get_address(const struct iovk_sriov_pf *pf);
/* The PF as a device (driver, netdevs, ids, ...); valid while pf lives. */
struct iovk_device *iovk_sriov_pf_get_device(const struct iovk_sriov_pf *pf);
/* sriov_totalvfs; -1 when the kernel does not show it. */
int iovk_sriov_pf_get_totalvfs(const struct iovk_sriov_pf *pf);
/* sriov_numvfs: VFs enabled now. */
int iovk_sriov_pf_get_numvfs(const struct iovk_sriov_pf *pf);
/*
 * Routing-ID offset of the first VF and stride between VFs (SR-IOV spec
 * 9.3.3.9/10): VF i has RID = PF RID + offset + i * stride. -1 when unknown.
 */
int iovk_sriov_pf_get_offset(const struct iovk_sriov_pf *pf);
int iovk_sriov_pf_get_stride(const struct iovk_sriov_pf *pf);
/* Device ID the VFs report (sriov_vf_device), -1 when unknown. */
int iovk_sriov_pf_get_vf_device_id(const struct iovk_sriov_pf *pf);
/*
 * sriov_drivers_autoprobe: 1 when the kernel probes drivers for new VFs, 0
 * when it does not (only a driver_override then binds a VF), -1 when the
 * kernel lacks the file (before 4.12).
 */
int iovk_sriov_pf_get_drivers_autoprobe(const struct iovk_sriov_pf *pf);
/* VFs in virtfnN order, NULL-terminated (empty when none). */
struct iovk_device *const *iovk_sriov_pf_get_vfs(const struct iovk_sriov_pf *pf);
size_t iovk_sriov_pf_get_n_vfs(const struct iovk_sriov_pf *pf);

enum iovk_sriov_flags {
	/* Remove VFs even when they are in use (see iovk_sriov_set_numvfs()). */
	IOVK_SRIOV_FORCE = 1u << 0,
	/*
	 * Write sriov_drivers_autoprobe=0 before enabling VFs, so no kernel
	 * driver probes them: for VFs meant for VFIO. The value it had is
	 * recorded under the run directory and written back when the VFs
	 * are set to 0.
	 */
	IOVK_SRIOV_NO_AUTOPROBE = 1u << 1,
};

/*
 * Sets the number of VFs of the PF at address to n.
 *
 * Before writing anything it checks that the PF exists and has a driver,
 * that n <= sriov_totalvfs (-ERANGE, naming the total) and, with
 * IOVK_SRIOV_NO_AUTOPROBE, that the kernel has sriov_drivers_autoprobe
 * (-EOPNOTSUPP). The kernel changes N VFs to M only through 0 (N -> M with
 * both non-zero is -EBUSY), so a change between two non-zero counts removes
 * all VFs first. VFs are only removed when none is in use: a VF bound to
 * vfio-pci or a vfio variant driver is taken as assigned to a guest, and the
 * call fails with -EBUSY naming the VF, unless flags has IOVK_SRIOV_FORCE.
 *
 * Without IOVK_SRIOV_NO_AUTOPROBE sriov_drivers_autoprobe is left as it is,
 * except that n = 0 writes back the value recorded by an earlier call with
 * that flag.
 *
 * After each write it polls, bounded by timeout_ms (0: the context's
 * timeout), until sriov_numvfs reads n, virtfn0 ... virtfn<n-1> exist (none
 * for n = 0) and every VF of a network class that a kernel driver took has a
 * network interface in its sysfs net/ directory (netdevs appear after the
 * write returns); -ETIMEDOUT says what was missing. The timeout cannot
 * bound the write itself: the kernel runs the PF driver's sriov_configure()
 * inside the write(2), uninterruptibly (64 VFs take ~22 s on i40e, removing a
 * VF that a process still holds through VFIO waits for that process, and a
 * PF in a bad state can hang), and nothing in userspace can abort it.
 *
 * Kernel refusals are translated: -ERANGE (more than the PF supports),
 * -ENOMEM (the PF driver may need a module parameter such as max_vfs, or the
 * platform reserved too few bus numbers or too little MMIO), -EBUSY, -ENOENT
 * (the PF driver cannot configure SR-IOV through sysfs), -EPERM/-EACCES.
 * When a change N -> M removed the N VFs but enabling M failed, the error
 * says that the PF is left with 0 VFs.
 *
 * Records of previous drivers (iovk_device_bind()) of removed VFs are
 * dropped: a VF that comes back is a new device. Serialised with other
 * iovkit processes through the lock file in the run directory.
 *
 * Returns 1 when it changed something (numvfs or autoprobe), 0 when the PF
 * already was as asked, or a negative errno: -EINVAL for a malformed
 * address, -ENODEV for an unknown device, -ENOENT for a device that is not
 * a PF or a PF without a driver.
 */
int iovk_sriov_set_numvfs(struct iovk_ctx *ctx, const char *address, unsigned n, unsigned flags,
			  unsigned timeout_ms);

#ifdef __cplusplus
}
#endif
