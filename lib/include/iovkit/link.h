/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libiovkit links: the network interfaces a live migration of a VM with a
 * passthrough VF needs on the host, over rtnetlink (libnl-route):
 *
 *  - macvtap: a virtio-net backend on a VF's netdev (or any netdev), whose
 *    character device /dev/tapN a VMM opens;
 *  - active-backup bonds: the VF's netdev and a standby port as slaves,
 *    the active one chosen (IFLA_BOND_ACTIVE_SLAVE) and waited for until
 *    the kernel reports the switch;
 *  - a link's state: up/down, MAC, MTU, set and read back.
 *
 * Interfaces are named as in the caller's network namespace. Every call
 * returns 0 or a negative errno; the kernel's errno is kept, and its own
 * words (the extended ACK: "Device can not be enslaved while up") are in
 * iovk_ctx_get_error() with the interface named.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <iovkit/core.h>

#ifdef __cplusplus
extern "C" {
#endif

/* IFNAMSIZ: an interface name and its NUL. */
#define IOVK_IFNAMSIZ 16

/* ---- any link --------------------------------------------------------------------- */

/* What the kernel reports of a link (RTM_GETLINK). Starts with its size: IOVK_LINK_INFO_INIT. */
struct iovk_link_info {
	size_t sz;
	char name[IOVK_IFNAMSIZ];
	int ifindex;
	int lower_ifindex;  /* IFLA_LINK: the netdev a macvtap or VLAN sits on; 0 none */
	int master_ifindex; /* IFLA_MASTER: the bond or bridge it is a port of; 0 none */
	uint8_t mac[6];
	unsigned mtu;
	bool up;            /* IFF_UP: administratively up */
	bool carrier;       /* IFF_LOWER_UP */
	uint8_t operstate;  /* IF_OPER_* (RFC 2863) */
	char kind[IOVK_IFNAMSIZ];       /* IFLA_INFO_KIND: "macvtap", "bond", "veth"; "" for a device's own netdev */
	char slave_kind[IOVK_IFNAMSIZ]; /* IFLA_INFO_SLAVE_KIND: "bond" for a bond's slave, else "" */
};
#define IOVK_LINK_INFO_INIT { .sz = sizeof(struct iovk_link_info) }

/* Reads the link called name. -ENODEV when there is none in this network namespace. */
int iovk_link_get(struct iovk_ctx *ctx, const char *name, struct iovk_link_info *ret);
/* Sets IFF_UP (up) or clears it, then reads it back: -EIO when the kernel did not take it. */
int iovk_link_set_up(struct iovk_ctx *ctx, const char *name, bool up);
/*
 * Sets the link's MAC address and reads it back. The kernel refuses a
 * multicast or zero address (-EADDRNOTAVAIL), and some drivers any change
 * while up (-EBUSY): the error says which.
 */
int iovk_link_set_mac(struct iovk_ctx *ctx, const char *name, const uint8_t mac[6]);
/* Sets the MTU and reads it back; -EINVAL names the driver's range when the kernel gives it. */
int iovk_link_set_mtu(struct iovk_ctx *ctx, const char *name, unsigned mtu);
/* Deletes a virtual link (macvtap, bond, veth, ...). -ENODEV when there is none; -EOPNOTSUPP for a device's own netdev. */
int iovk_link_delete(struct iovk_ctx *ctx, const char *name);

/* ---- macvtap ---------------------------------------------------------------------- */

/* The kernel's MACVLAN_MODE_* values. */
enum iovk_macvtap_mode {
	IOVK_MACVTAP_PRIVATE = 1,  /* no traffic between macvtaps of one netdev */
	IOVK_MACVTAP_VEPA = 2,     /* macvtap to macvtap through the adjacent switch */
	IOVK_MACVTAP_BRIDGE = 4,   /* macvtap to macvtap inside the host */
	IOVK_MACVTAP_PASSTHRU = 8, /* the one macvtap owns the netdev (its MAC, promiscuity) */
};

/* "private", "vepa", "bridge", "passthru"; NULL for another value. */
const char *iovk_macvtap_mode_to_string(enum iovk_macvtap_mode mode);
/* The reverse; -EINVAL for another word. */
int iovk_macvtap_mode_from_string(const char *s, enum iovk_macvtap_mode *ret);

/* Options of iovk_macvtap_create(). Starts with its size: IOVK_MACVTAP_OPTS_INIT. */
struct iovk_macvtap_opts {
	size_t sz;
	const char *name;           /* NULL: the kernel picks macvtapN */
	enum iovk_macvtap_mode mode; /* 0: bridge, the kernel's default */
	bool set_mac;               /* give it mac, else the kernel picks a random one */
	uint8_t mac[6];
};
#define IOVK_MACVTAP_OPTS_INIT { .sz = sizeof(struct iovk_macvtap_opts) }

/* A macvtap as the kernel reports it. Starts with its size: IOVK_MACVTAP_INFO_INIT. */
struct iovk_macvtap_info {
	size_t sz;
	char name[IOVK_IFNAMSIZ];
	int ifindex;
	char lower[IOVK_IFNAMSIZ]; /* the netdev it sits on */
	int lower_ifindex;
	enum iovk_macvtap_mode mode;
	uint8_t mac[6];
	/*
	 * Its character device: "<dev root>/tap<ifindex>" (the kernel names
	 * it so; devtmpfs or udev creates it), and the number sysfs gives it
	 * (0:0 when sysfs does not show this namespace's interfaces).
	 */
	char tap_node[256];
	unsigned tap_major, tap_minor;
};
#define IOVK_MACVTAP_INFO_INIT { .sz = sizeof(struct iovk_macvtap_info) }

/*
 * Creates a macvtap on the netdev lower (opts NULL: defaults) and reads it
 * back into *ret (may be NULL). -ENODEV when lower does not exist, -EEXIST
 * when the name is taken, -EOPNOTSUPP without the macvtap module; a second
 * passthru macvtap on one netdev is -EINVAL, and the error says so.
 */
int iovk_macvtap_create(struct iovk_ctx *ctx, const char *lower, const struct iovk_macvtap_opts *opts,
			struct iovk_macvtap_info *ret);
/* Reads the macvtap called name. -ENODEV: none; -EMEDIUMTYPE: the link is not a macvtap. */
int iovk_macvtap_get(struct iovk_ctx *ctx, const char *name, struct iovk_macvtap_info *ret);

/* ---- active-backup bonds ------------------------------------------------------------ */

/* The kernel's BOND_MODE_ACTIVEBACKUP: the one mode these calls make. */
#define IOVK_BOND_MODE_ACTIVE_BACKUP 1
#define IOVK_BOND_ARP_TARGETS_MAX 16

/* How the bond watches its slaves' links. Starts with its size: IOVK_BOND_OPTS_INIT. */
struct iovk_bond_opts {
	size_t sz;
	unsigned miimon_ms;       /* MII/carrier polling interval; 0: off (then arp_interval_ms) */
	unsigned updelay_ms;      /* a link must stay up this long before it is used (multiple of miimon) */
	unsigned downdelay_ms;    /* and down this long before the bond leaves it */
	unsigned arp_interval_ms; /* ARP monitoring instead of MII; needs arp_targets */
	unsigned n_arp_targets;
	uint32_t arp_targets[IOVK_BOND_ARP_TARGETS_MAX]; /* IPv4, network byte order */
	uint8_t fail_over_mac;    /* 0 none (slaves take the bond's MAC), 1 active, 2 follow */
	/* gratuitous ARPs / unsolicited NAs for the bond's addresses after a
	 * switch (num_grat_arp); IOVK_BOND_OPTS_INIT: 1, the kernel's default,
	 * as `ip link add ... type bond` makes it; 0 none */
	unsigned num_peer_notif;
};
#define IOVK_BOND_OPTS_INIT { .sz = sizeof(struct iovk_bond_opts), .num_peer_notif = 1 }

/*
 * Creates an active-backup bond called name (opts NULL: IOVK_BOND_OPTS_INIT
 * with miimon 100 ms).
 * -EEXIST when the name is taken; -EOPNOTSUPP when the kernel has no
 * bonding module ("Unknown device type"); -EINVAL for options the kernel
 * refuses (arp_interval without targets), its reason in the error.
 */
int iovk_bond_create(struct iovk_ctx *ctx, const char *name, const struct iovk_bond_opts *opts);
/*
 * Makes slave a port of the bond. The kernel refuses to enslave a link that
 * is up: it is taken down first, and the bond opens it again. -EBUSY when
 * it is a port of another master already.
 */
int iovk_bond_enslave(struct iovk_ctx *ctx, const char *bond, const char *slave);
/* Takes slave out of its bond (IFLA_MASTER 0). -ENOENT when it is in none. */
int iovk_bond_release(struct iovk_ctx *ctx, const char *slave);
/*
 * Asks the bond to make slave its active slave (IFLA_BOND_ACTIVE_SLAVE). The
 * kernel switches at once when slave's link is up, and refuses (-EINVAL) a
 * slave that is not its own or whose link is down: the error says which.
 * Does not wait: iovk_bond_wait_active() does.
 */
int iovk_bond_set_active_slave(struct iovk_ctx *ctx, const char *bond, const char *slave);
/*
 * Waits until the kernel reports slave as the bond's active slave: the
 * bond's IFLA_BOND_ACTIVE_SLAVE names it and the slave's own state
 * (IFLA_BOND_SLAVE_STATE) is active, read on RTM_NEWLINK notifications (no
 * polling, no sleeping). Bounded by timeout_ms: -ETIMEDOUT, the error
 * naming what the kernel reported last. *ret_usec (may be NULL): the time
 * waited.
 */
int iovk_bond_wait_active(struct iovk_ctx *ctx, const char *bond, const char *slave, unsigned timeout_ms,
			  uint64_t *ret_usec);

/*
 * Waits, the same way, until the bond sees slave's link up (its MII status,
 * polled by the bond every miimon ms): a slave is made active only then. A
 * VF's link comes up a while after its driver probes (igbvf's watchdog
 * checks every 2 s).
 */
int iovk_bond_wait_link_up(struct iovk_ctx *ctx, const char *bond, const char *slave, unsigned timeout_ms,
			   uint64_t *ret_usec);

/*
 * A planned switch, what a migration's PrepareMigration does: makes slave
 * the bond's active slave and returns once the kernel reports it (as
 * iovk_bond_set_active_slave() then iovk_bond_wait_active(), without reading
 * any link but the two, and subscribing to link notifications only when the
 * kernel has not switched by the request's answer). When slave is up and
 * running (operstate up) and enslaved, and the bond sees its link up
 * (sysfs), the request goes first and one read of the bond confirms it;
 * otherwise, or when the kernel refuses that request, both links are read
 * and what is missing is done: sets slave up first when it is down and
 * waits for the bond to see its link (MII up). 0 when slave is active
 * already. Bounded by timeout_ms in all: -ETIMEDOUT naming what the kernel
 * reported last; -EINVAL when slave is not one of the bond's slaves or
 * the kernel refuses (its reason in the error); -EMEDIUMTYPE when bond is
 * not a bond; -ENODEV when either link is missing or deleted meanwhile.
 * *ret_usec (may be NULL): the time from the call to the kernel's word.
 */
int iovk_bond_switch(struct iovk_ctx *ctx, const char *bond, const char *slave, unsigned timeout_ms,
		     uint64_t *ret_usec);

/* A snapshot of a bond and its slaves, read once (reread after a change). */
struct iovk_bond;

/* Reads the bond called name. -ENODEV: none; -EMEDIUMTYPE: the link is not a bond. */
int iovk_bond_read(struct iovk_ctx *ctx, const char *name, struct iovk_bond **ret);
struct iovk_bond *iovk_bond_ref(struct iovk_bond *b);
/* Drops a reference; NULL is fine. Always returns NULL. */
struct iovk_bond *iovk_bond_unref(struct iovk_bond *b);

const char *iovk_bond_get_name(const struct iovk_bond *b);
int iovk_bond_get_ifindex(const struct iovk_bond *b);
/* IFLA_BOND_MODE: IOVK_BOND_MODE_ACTIVE_BACKUP for the bonds these calls make. */
int iovk_bond_get_mode(const struct iovk_bond *b);
/* The active slave's name, NULL when there is none (or the mode has no such thing). */
const char *iovk_bond_get_active_slave(const struct iovk_bond *b);
/* The bond's monitoring settings, as the kernel reports them. */
int iovk_bond_get_opts(const struct iovk_bond *b, struct iovk_bond_opts *ret);

/* What the kernel reports of one slave. Starts with its size: IOVK_BOND_SLAVE_INIT. */
struct iovk_bond_slave {
	size_t sz;
	char name[IOVK_IFNAMSIZ];
	int ifindex;
	bool active;        /* IFLA_BOND_SLAVE_STATE: active (else backup) */
	bool mii_up;        /* IFLA_BOND_SLAVE_MII_STATUS: the bond sees its link up */
	bool carrier;       /* IFF_LOWER_UP of the slave itself */
	uint32_t link_failure_count;
	uint8_t perm_mac[6]; /* the MAC it had before the bond took it */
};
#define IOVK_BOND_SLAVE_INIT { .sz = sizeof(struct iovk_bond_slave) }

size_t iovk_bond_get_n_slaves(const struct iovk_bond *b);
/* Slave i (0 .. n-1, ordered by ifindex). -ERANGE past the last. */
int iovk_bond_get_slave(const struct iovk_bond *b, size_t i, struct iovk_bond_slave *ret);

#ifdef __cplusplus
}
#endif
