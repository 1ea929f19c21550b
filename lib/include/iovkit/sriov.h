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
/*
 * The VF whose index (its PF's virtfnN link, 'ip link set PF vf N') is
 * index, NULL when the PF has none. Not iovk_sriov_pf_get_vfs()[index]: a
 * virtfn link missing while VFs are being changed leaves the list shorter.
 */
struct iovk_device *iovk_sriov_pf_get_vf(const struct iovk_sriov_pf *pf, unsigned index);

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

/*
 * Writes sriov_drivers_autoprobe of the PF at address: whether the kernel
 * probes drivers for VFs without a driver_override (at their creation and
 * at every later probe). The value asked for here is the one to keep: a
 * record that iovk_sriov_set_numvfs() made with IOVK_SRIOV_NO_AUTOPROBE is
 * dropped, so a later n = 0 leaves autoprobe as set here. Serialised with
 * other iovkit processes through the lock file in the run directory.
 *
 * Returns 1 when it wrote the file, 0 when autoprobe already was so, or a
 * negative errno: -EINVAL, -ENODEV, -ENOENT as for iovk_sriov_pf_new(),
 * -EOPNOTSUPP when the kernel lacks the file (before 4.12), or the errno of
 * the write.
 */
int iovk_sriov_set_drivers_autoprobe(struct iovk_ctx *ctx, const char *address, bool enabled);

/* ---- VF settings through netlink ------------------------------------------ */

/*
 * The settings of a VF that its PF's driver enforces (the admin MAC, a VLAN,
 * spoof checking, trust, link state, tx rate limits) are read and written
 * through the PF's network interface with rtnetlink, through libnl-route, as
 * `ip link show DEV` and `ip link set DEV vf N ...` do.
 *
 * A PF is named by its PCI address (its network interface is then the first
 * one in its sysfs net/ directory; a PF without one, e.g. on vfio-pci, has no
 * VF settings) or by the name of its network interface, which also serves
 * PFs that are not PCI devices (netdevsim). A name holding ':' is taken as a
 * PCI address.
 *
 * Netlink: every call opens its own NETLINK_ROUTE socket and closes it before
 * it returns, unless the context keeps one (iovk_ctx_set_keep_netlink());
 * by default the context holds none, so a context stays cheap, can be used
 * after fork(), and each call acts in the network namespace the calling
 * thread is in at that moment. Each answer from the kernel is awaited at most
 * the context's timeout (iovk_ctx_set_timeout_ms()). Netlink always reaches
 * the running kernel, whatever the context's sysfs root: the sysfs root only
 * serves to turn a PCI address into an interface name and to find each VF's
 * PCI address and own network interface (for its effective MAC). Sysfs shows
 * the network namespace it was mounted in: when the PF's interface in sysfs
 * is not the one netlink shows (another ifindex or MAC), the sysfs facts are
 * not used.
 */

/* Bits naming the settings, in the order the kernel applies them. */
enum iovk_vf_field {
	IOVK_VF_MAC = 1u << 0,         /* admin MAC */
	IOVK_VF_VLAN = 1u << 1,        /* VLAN ID, QoS and VLAN protocol together */
	IOVK_VF_MIN_TX_RATE = 1u << 2, /* Mbit/s, 0: no guarantee */
	IOVK_VF_MAX_TX_RATE = 1u << 3, /* Mbit/s, 0: no limit */
	IOVK_VF_SPOOFCHK = 1u << 4,
	IOVK_VF_LINK_STATE = 1u << 5,
	IOVK_VF_TRUST = 1u << 6,
};
#define IOVK_VF_ALL_FIELDS 0x7fu

/* Values of IFLA_VF_LINK_STATE. */
enum iovk_vf_link_state {
	IOVK_VF_LINK_STATE_AUTO = 0,    /* the VF's link follows the PF's */
	IOVK_VF_LINK_STATE_ENABLE = 1,  /* always up */
	IOVK_VF_LINK_STATE_DISABLE = 2, /* always down */
};

/* VLAN protocols (EtherType, host byte order). */
#define IOVK_VF_VLAN_PROTO_8021Q 0x8100u
#define IOVK_VF_VLAN_PROTO_8021AD 0x88a8u
#define IOVK_VF_VLAN_MAX 4095u
#define IOVK_VF_QOS_MAX 7u
/* Rates are passed to the driver as int Mbit/s. */
#define IOVK_VF_RATE_MAX 2147483647u

/* "02:00:00:00:00:01" plus NUL */
#define IOVK_VF_MAC_STRING_MAX 18

struct iovk_vf_vlan {
	uint16_t vlan;  /* 0..4095 */
	uint8_t qos;    /* 802.1p priority, 0..7 */
	uint16_t proto; /* IOVK_VF_VLAN_PROTO_*, host byte order */
};

struct iovk_vf_stats {
	uint64_t rx_packets, tx_packets, rx_bytes, tx_bytes, broadcast, multicast;
	bool has_dropped; /* the kernel reports drops (5.x and later) */
	uint64_t rx_dropped, tx_dropped;
};

/*
 * One VF as its PF reported it. Allocated by the library (fields may be
 * appended in later versions); valid while the list it came from lives.
 */
struct iovk_vf_info {
	unsigned index;
	/* Admin MAC, set on the PF; all zero when none is set. */
	uint8_t mac[6];
	/* VLANs the PF enforces on the VF; empty when none. Entries with VLAN 0
	 * and QoS 0 (the kernel's way of saying "no VLAN") are left out. */
	const struct iovk_vf_vlan *vlans;
	size_t n_vlans;
	int spoofchk;   /* 1 on, 0 off, -1 the driver does not report it */
	int trust;      /* 1 on, 0 off, -1 the driver does not report it */
	int link_state; /* enum iovk_vf_link_state */
	uint32_t min_tx_rate, max_tx_rate; /* Mbit/s, 0: none */
	bool has_stats;
	struct iovk_vf_stats stats;
	/* The VF's PCI address (virtfnN of a PCI PF), NULL when unknown. */
	const char *address;
	/* The VF's own network interface in this namespace, NULL when none
	 * (no driver, vfio-pci, or in another namespace). */
	const char *netdev;
	/* The MAC that interface uses now (sysfs address). */
	bool has_effective_mac;
	uint8_t effective_mac[6];
	/*
	 * An admin MAC is set and the VF's interface uses another one: the
	 * admin MAC takes effect only when the VF driver re-initialises (reload
	 * the VF driver or rebind the VF); until then, and for an untrusted VF
	 * that tries to change it, the PF enforces the admin MAC on the wire.
	 */
	bool mac_differs;
};

/* A snapshot of the VFs of one PF. */
struct iovk_vf_list;

/*
 * Reads the VFs of pf (a PCI address or an interface name, see above)
 * through one RTM_GETLINK request with the VF information.
 * Returns 0; -EINVAL when pf is neither a PCI address nor a valid interface
 * name; -ENODEV when there is no such PCI device or interface; -ENOENT when
 * the PCI device is not an SR-IOV PF or has no network interface; or the
 * errno of the netlink request (-EPERM, -ETIMEDOUT, ...). An interface
 * without SR-IOV (veth, a bridge) is not an error: its list is empty and
 * iovk_vf_list_get_numvfs() says -1.
 */
int iovk_vf_list_new(struct iovk_ctx *ctx, const char *pf, struct iovk_vf_list **ret_list);
struct iovk_vf_list *iovk_vf_list_ref(struct iovk_vf_list *list);
/* Drops a reference; NULL is fine. Always returns NULL. */
struct iovk_vf_list *iovk_vf_list_unref(struct iovk_vf_list *list);

/* The PF's network interface. */
const char *iovk_vf_list_get_pf_netdev(const struct iovk_vf_list *list);
/* The PF's PCI address, NULL when it has no PCI device (netdevsim). */
const char *iovk_vf_list_get_pf_address(const struct iovk_vf_list *list);
/* VFs the PF has enabled (IFLA_NUM_VF); -1 when the interface reports
 * none at all, i.e. it is not an SR-IOV PF. */
int iovk_vf_list_get_numvfs(const struct iovk_vf_list *list);
/* VFs reported, by index. Fewer than numvfs when the driver could not
 * report some (the kernel then leaves them out). */
size_t iovk_vf_list_get_n_vfs(const struct iovk_vf_list *list);
/* The i-th VF reported (not necessarily index i), NULL when i >= n_vfs. */
const struct iovk_vf_info *iovk_vf_list_get_vf(const struct iovk_vf_list *list, size_t i);
/* The VF with that index, NULL when it was not reported. */
const struct iovk_vf_info *iovk_vf_list_find(const struct iovk_vf_list *list, unsigned index);

/*
 * What to change on a VF: the bits in fields choose the settings, the other
 * members hold their values. Options struct (libbpf style): sz is the size
 * the caller was built with, so members can be appended; declare it with
 * IOVK_VF_SETTINGS(name) or initialise with IOVK_VF_SETTINGS_INIT.
 */
struct iovk_vf_settings {
	size_t sz;
	unsigned fields; /* enum iovk_vf_field bits */
	uint8_t mac[6];
	/* An all-zero mac is refused unless this is set: writing it clears
	 * the admin MAC (most drivers then let the VF choose its own; some
	 * refuse it). */
	bool clear_mac;
	uint16_t vlan;       /* 0 removes the VLAN */
	uint8_t qos;
	uint16_t vlan_proto; /* 0 means IOVK_VF_VLAN_PROTO_8021Q */
	bool spoofchk;
	bool trust;
	int link_state;      /* enum iovk_vf_link_state */
	uint32_t min_tx_rate, max_tx_rate;
};
#define IOVK_VF_SETTINGS_INIT { .sz = sizeof(struct iovk_vf_settings) }
#define IOVK_VF_SETTINGS(name) struct iovk_vf_settings name = IOVK_VF_SETTINGS_INIT

/* What iovk_vf_set() did; filled on success and on failure. */
/* Sized as struct iovk_bind_result: initialise with IOVK_VF_SET_RESULT_INIT. */
struct iovk_vf_set_result {
	size_t sz;
	unsigned changed;    /* fields written (they differed from the request; see
			      * iovk_vf_set() for the MAC on igb and ixgbe) */
	unsigned ignored;    /* written, accepted, but read back different */
	unsigned unverified; /* written, but the driver does not report them back */
	unsigned failed;     /* the field whose write the kernel refused, or 0 */
	bool rolled_back;    /* fields written before the refusal were put back */
};
#define IOVK_VF_SET_RESULT_INIT { .sz = sizeof(struct iovk_vf_set_result) }

/*
 * Changes the settings of VF index of pf, as `ip link set DEV vf N ...`.
 *
 * Checks the settings (iovk_vf_settings_check()) and that the VF exists
 * before anything is written. Reads the VF first and writes only the fields
 * that differ, one netlink request per setting, so that a refusal names its
 * setting: vlan, rates, spoofchk, state, trust, and the MAC last. Drivers
 * (igb, ixgbe, i40e, ice) report a MAC the VF chose itself where they report
 * an admin MAC, and writing it back would make it one, so a MAC is written
 * only once every other setting was accepted and never needs putting back.
 * On igb and ixgbe (the PF's driver in sysfs) a non-zero MAC asked for is
 * written even when it reads the same: only that write makes it an admin
 * MAC, one an untrusted VF cannot change and a VF reset keeps.
 * A rate given alone keeps the other rate as it is (the kernel sets both at
 * once); the resulting min_tx_rate must not exceed a non-zero max_tx_rate.
 * When the kernel refuses a write, the fields written before it are put back
 * (result->rolled_back; the error says if that failed too) and its errno is
 * returned with result->failed naming the field. After the writes, reads the
 * VF back: drivers may accept a setting and not apply it.
 *
 * Serialised with other iovkit processes through the lock file in the run
 * directory. result may be NULL.
 *
 * Returns 1 when something was written, 0 when the VF already was as asked
 * (or fields is 0), or a negative errno: -EINVAL for bad settings (nothing
 * is written), a malformed pf, or a rate that would fall below the other;
 * -ENODEV, -ENOENT as for iovk_vf_list_new(), -ENOENT also when the
 * interface has no SR-IOV; -ERANGE when index >= the number of VFs;
 * -EOPNOTSUPP when the driver reports no VF settings at all (nothing can be
 * read back) or, with result->ignored set and result->failed 0, when the
 * kernel accepted a setting that the read-back shows was not applied (the
 * error lists each one, asked and read; the other fields were applied);
 * otherwise the kernel's errno for the refused write (-EOPNOTSUPP when the
 * driver lacks that setting, -EINVAL, -EPERM without CAP_NET_ADMIN, ...).
 */
int iovk_vf_set(struct iovk_ctx *ctx, const char *pf, unsigned index, const struct iovk_vf_settings *settings,
		struct iovk_vf_set_result *result);

/*
 * Checks settings without touching anything: sz, known field bits, MAC
 * (unicast; all-zero only with clear_mac), VLAN 0..4095, QoS 0..7, VLAN
 * protocol 802.1Q or 802.1ad, link state, rates up to IOVK_VF_RATE_MAX and
 * min_tx_rate <= max_tx_rate when both are given and max is not 0. Returns
 * 0 or -EINVAL with the reason in the context's error.
 */
int iovk_vf_settings_check(struct iovk_ctx *ctx, const struct iovk_vf_settings *settings);

/*
 * Parses settings in iproute2's words and grammar (what follows
 * `ip link set DEV vf N`): `mac LLADDR`, `vlan VLANID [qos QOS] [proto
 * 802.1Q|802.1ad]`, `min_tx_rate MBPS`, `max_tx_rate MBPS`, `spoofchk
 * on|off`, `trust on|off`, `state auto|enable|disable`. Words must be
 * written in full and each at most once; numbers are decimal; qos and proto
 * only follow vlan, qos first. An all-zero mac sets clear_mac. settings must
 * be initialised (IOVK_VF_SETTINGS_INIT); what the words set is added to it.
 * Then checks the result (iovk_vf_settings_check()). Returns 0 or -EINVAL
 * with the context's error naming the word, e.g. "vlan: '4096' is not a
 * VLAN ID (0 to 4095)"; settings is untouched on failure.
 */
int iovk_vf_settings_parse(struct iovk_ctx *ctx, int argc, char *const *argv, struct iovk_vf_settings *settings);

/*
 * The fields of settings that info does not show: after a write, what the
 * driver did not apply. Fields info cannot show (spoofchk or trust that the
 * driver does not report) are not counted but go to *ret_unverifiable (if
 * given). A VLAN of 0 with QoS 0 matches a VF without VLAN, whatever the
 * protocol. Pure: no I/O.
 */
unsigned iovk_vf_settings_diff(const struct iovk_vf_settings *settings, const struct iovk_vf_info *info,
			       unsigned *ret_unverifiable);

/*
 * "xx:xx:xx:xx:xx:xx", one or two hex digits per octet. Returns 0 for a
 * unicast address, 1 for 00:00:00:00:00:00 (the caller decides whether it
 * may clear), -EINVAL for anything else, multicast and broadcast included.
 * ret_mac is untouched on failure.
 */
int iovk_vf_parse_mac(const char *s, uint8_t ret_mac[static 6]);
/* Lower-case "02:00:00:00:00:01"; returns buf. */
char *iovk_vf_format_mac(const uint8_t mac[static 6], char buf[static IOVK_VF_MAC_STRING_MAX]);
/* "802.1Q" or "802.1ad" (any case). Returns 0 or -EINVAL. */
int iovk_vf_parse_vlan_proto(const char *s, uint16_t *ret_proto);
/* "802.1Q", "802.1ad", NULL for other values. */
const char *iovk_vf_vlan_proto_name(uint16_t proto);
/* "auto", "enable" or "disable". Returns 0 or -EINVAL. */
int iovk_vf_parse_link_state(const char *s, int *ret_state);
/* "auto", "enable", "disable", NULL for other values. */
const char *iovk_vf_link_state_name(int state);
/* iproute2's word for one field bit ("mac", "vlan", "min_tx_rate", ...),
 * NULL when field is not exactly one known bit. */
const char *iovk_vf_field_name(unsigned field);

/*
 * The settings that s->fields names, in iproute2's words and order
 * ("mac 02:00:00:00:00:01 vlan 10 qos 3 spoofchk off trust on"; a VLAN
 * protocol only when it is not 802.1Q), into buf; "" for none. Cut at
 * a word boundary when buf is too small. Returns buf.
 */
char *iovk_vf_settings_format(const struct iovk_vf_settings *s, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
