/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private to lib/link/. */
#pragma once

#include <linux/if_link.h>
#include <netlink/attr.h>

#include "../core/netlink.h"

/*
 * A bond's IFLA_INFO_DATA and a slave's IFLA_INFO_SLAVE_DATA. libnl 3.7
 * (Debian 12) has no accessors for either: its "bond" link type knows the
 * kind only (rtnl_link_bond_alloc/add/enslave/release), so these are read,
 * and the requests that carry them written, as raw attributes through
 * libnl's nla_* calls. Requests otherwise go through rtnl_link objects;
 * every RTM_NEWLINK is read raw (link_parse_msg()), which is cheaper.
 */
struct bond_attrs {
	bool present;
	uint8_t mode;
	uint32_t active_slave; /* ifindex, 0 none */
	uint32_t miimon, updelay, downdelay, arp_interval;
	unsigned n_arp_targets;
	uint32_t arp_targets[IOVK_BOND_ARP_TARGETS_MAX];
	uint8_t fail_over_mac;
	uint8_t num_peer_notif;
};

struct bond_slave_attrs {
	bool present;
	uint8_t state;      /* BOND_STATE_ACTIVE 0, BOND_STATE_BACKUP 1 */
	uint8_t mii_status; /* BOND_LINK_UP 0, FAIL 1, DOWN 2, BACK 3 */
	uint32_t link_failure_count;
	uint8_t perm_mac[6];
};

/* One link as an RTM_NEWLINK message reports it. */
struct link_state {
	struct iovk_link_info info;
	bool is_macvtap;
	uint32_t macvtap_mode;
	struct bond_attrs bond;
	struct bond_slave_attrs slave;
};

/*
 * Reads the raw members of IFLA_LINKINFO (kind, slave kind, a macvtap's mode, the bond's and
 * a bond slave's data) into s; what is absent stays as it was. Pure: the
 * unit tests feed it attributes they build. -EBADMSG for malformed ones.
 */
int link_parse_linkinfo(const struct nlattr *linkinfo, struct link_state *s);
/* Reads one RTM_NEWLINK message (its header and attributes, and link_parse_linkinfo()); -EBADMSG. */
int link_parse_msg(struct nl_msg *msg, struct link_state *ret);

/* Reads the link called name over sk; -ENODEV (error set naming it) when there is none. */
int link_read(struct iovk_ctx *ctx, struct nl_sock *sk, const char *name, struct link_state *ret);
/* The same by ifindex (a link renamed meanwhile is still found); label names it in errors. */
int link_read_index(struct iovk_ctx *ctx, struct nl_sock *sk, int ifindex, const char *label, struct link_state *ret);
/* A socket (route_nl_get(): the caller gives it back) and the link called name read over it. */
int link_open_read(struct iovk_ctx *ctx, struct route_nl *nl, const char *name, struct link_state *ret);
/*
 * Every link of the namespace, ordered by ifindex (a dump); with
 * master_ifindex, those whose master it is, as far as the kernel filters
 * (callers check IFLA_MASTER themselves: a kernel before 4.5 sends all).
 */
int link_dump(struct iovk_ctx *ctx, struct nl_sock *sk, int master_ifindex, struct link_state **ret, size_t *ret_n);
/* The name of the link at ifindex into name; "" when there is none. */
int link_name_of(struct iovk_ctx *ctx, struct nl_sock *sk, int ifindex, char name[static IOVK_IFNAMSIZ]);
/*
 * Sends msg and turns the kernel's refusal into an error naming what
 * (e.g. "bond0: setting the active slave to ens4"): errno text, then the
 * kernel's own words when it gave some, then hint when the kernel's errno
 * is hint_errno (a reason the kernel does not give itself).
 */
int link_request(struct iovk_ctx *ctx, struct nl_sock *sk, struct nl_msg *msg, const char *what, int hint_errno,
		 const char *hint);
/* RTM_NEWLINK changing the link at ifindex as changes says (rtnl_link_build_change_request()). */
int link_change(struct iovk_ctx *ctx, struct nl_sock *sk, int ifindex, struct rtnl_link *changes, const char *what,
		int hint_errno, const char *hint);
/* An RTM_NEWLINK message for the link at ifindex (0: new) with its IFLA_LINKINFO nest opened for kind. */
int link_msg_linkinfo(int ifindex, int nlm_flags, const char *name, const char *kind, struct nl_msg **ret_msg,
		      struct nlattr **ret_linkinfo);
