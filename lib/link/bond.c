/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Active-backup bonds: a VF's netdev and a standby port as slaves, one of
 * them active. A planned switch (before a live migration) sets
 * IFLA_BOND_ACTIVE_SLAVE; in active-backup mode the kernel switches inside
 * that request when the new slave's link is up (bond_option_active_slave_set()
 * -> bond_change_active_slave()), and announces it: RTM_NEWLINK for the bond
 * (IFLA_EVENT_BONDING_FAILOVER) and for each slave whose state changed.
 * iovk_bond_wait_active() reads those notifications, so a switch the kernel
 * makes later (miimon noticing a dead link, updelay) is waited for the same
 * way, and nothing here sleeps.
 *
 * libnl 3.7 has the bond kind only (rtnl_link_bond_alloc/add/enslave/
 * release), no mode, miimon or active slave: those attributes are written
 * and read raw, through libnl's nla_* calls (link-internal.h). Enslaving
 * and releasing are plain IFLA_MASTER changes through rtnl_link objects
 * (what rtnl_link_bond_enslave() sends, without its NLE_* error codes).
 */
#include <poll.h>
#include <string.h>
#include <time.h>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/if.h>
#include <linux/rtnetlink.h>

#include "common/time-util.h"
#include "link-internal.h"

#ifndef BOND_STATE_ACTIVE
#define BOND_STATE_ACTIVE 0
#endif
#ifndef BOND_LINK_UP
#define BOND_LINK_UP 0
#endif

struct iovk_bond {
	int n_ref;
	struct link_state bond;
	struct link_state *slaves; /* by ifindex */
	size_t n_slaves;
	char active[IOVK_IFNAMSIZ]; /* "" none */
};

static void bond_free(struct iovk_bond *b)
{
	free(b->slaves);
	free(b);
}

DEFINE_PUBLIC_REF_UNREF(struct iovk_bond, iovk_bond, bond_free)

static int read_bond_link(struct iovk_ctx *ctx, struct nl_sock *sk, const char *name, struct link_state *ret);

/*
 * The bond called name (RTM_GETLINK) and its slaves: a dump the kernel
 * filters by IFLA_MASTER, so a host with hundreds of VF netdevs sends the
 * bond's few links only.
 */
static int bond_read(struct iovk_ctx *ctx, struct nl_sock *sk, const char *name, struct iovk_bond **ret)
{
	struct link_state *all = NULL, bond;
	struct iovk_bond *b;
	size_t n = 0;
	int r;

	r = read_bond_link(ctx, sk, name, &bond);
	if (r >= 0)
		r = link_dump(ctx, sk, bond.info.ifindex, &all, &n);
	if (r < 0)
		return r;
	b = calloc(1, sizeof(*b));
	if (!b) {
		free(all);
		return -ENOMEM;
	}
	b->n_ref = 1;
	b->bond = bond;
	/* the slaves, in place at the front of all (a dump is in ifindex order) */
	for (size_t i = 0; i < n; i++)
		if (all[i].info.master_ifindex == b->bond.info.ifindex && all[i].slave.present) {
			if (all[i].info.ifindex == (int)b->bond.bond.active_slave)
				memcpy(b->active, all[i].info.name, IOVK_IFNAMSIZ);
			all[b->n_slaves++] = all[i];
		}
	b->slaves = all;
	*ret = b;
	return 0;
}

_public_ int iovk_bond_read(struct iovk_ctx *ctx, const char *name, struct iovk_bond **ret)
{
	_cleanup_route_nl_ struct route_nl nl = {};
	int r;

	assert_return(ctx && name && ret, -EINVAL);
	clear_error(ctx);
	r = route_nl_get(ctx, &nl);
	if (r < 0)
		return r;
	return bond_read(ctx, nl.sk, name, ret);
}

_public_ const char *iovk_bond_get_name(const struct iovk_bond *b)
{
	return b ? b->bond.info.name : NULL;
}

_public_ int iovk_bond_get_ifindex(const struct iovk_bond *b)
{
	assert_return(b, -EINVAL);
	return b->bond.info.ifindex;
}

_public_ int iovk_bond_get_mode(const struct iovk_bond *b)
{
	assert_return(b, -EINVAL);
	return b->bond.bond.mode;
}

_public_ const char *iovk_bond_get_active_slave(const struct iovk_bond *b)
{
	return b && b->active[0] ? b->active : NULL;
}

_public_ int iovk_bond_get_opts(const struct iovk_bond *b, struct iovk_bond_opts *ret)
{
	const struct bond_attrs *a;
	struct iovk_bond_opts o = IOVK_BOND_OPTS_INIT;

	assert_return(b && ret, -EINVAL);
	if (result_valid(NULL, ret, sizeof(o), "iovk_bond_opts") < 0)
		return -EINVAL;
	a = &b->bond.bond;
	o.miimon_ms = a->miimon;
	o.updelay_ms = a->updelay;
	o.downdelay_ms = a->downdelay;
	o.arp_interval_ms = a->arp_interval;
	o.n_arp_targets = a->n_arp_targets;
	memcpy(o.arp_targets, a->arp_targets, sizeof(o.arp_targets));
	o.fail_over_mac = a->fail_over_mac;
	o.num_peer_notif = a->num_peer_notif;
	result_store(ret, &o, sizeof(o));
	return 0;
}

_public_ size_t iovk_bond_get_n_slaves(const struct iovk_bond *b)
{
	return b ? b->n_slaves : 0;
}

_public_ int iovk_bond_get_slave(const struct iovk_bond *b, size_t i, struct iovk_bond_slave *ret)
{
	struct iovk_bond_slave s = IOVK_BOND_SLAVE_INIT;
	const struct link_state *l;

	assert_return(b && ret, -EINVAL);
	if (result_valid(NULL, ret, sizeof(s), "iovk_bond_slave") < 0)
		return -EINVAL;
	if (i >= b->n_slaves)
		return -ERANGE;
	l = &b->slaves[i];
	memcpy(s.name, l->info.name, IOVK_IFNAMSIZ);
	s.ifindex = l->info.ifindex;
	s.active = l->slave.state == BOND_STATE_ACTIVE;
	s.mii_up = l->slave.mii_status == BOND_LINK_UP;
	s.carrier = l->info.carrier;
	s.link_failure_count = l->slave.link_failure_count;
	memcpy(s.perm_mac, l->slave.perm_mac, 6);
	result_store(ret, &s, sizeof(s));
	return 0;
}

/* ---- changes --------------------------------------------------------------------------- */

_public_ int iovk_bond_create(struct iovk_ctx *ctx, const char *name, const struct iovk_bond_opts *opts)
{
	struct iovk_bond_opts o = IOVK_BOND_OPTS_INIT;
	_cleanup_route_nl_ struct route_nl nl = {};
	_cleanup_nlmsg_ struct nl_msg *msg = NULL;
	struct nlattr *info, *data, *targets;
	char what[IOVK_IFNAMSIZ + 64];
	int r;

	assert_return(ctx && name, -EINVAL);
	clear_error(ctx);
	if (opts) {
		r = opts_valid(ctx, opts, opts->sz, sizeof(o), sizeof(o), "iovk_bond_opts", "IOVK_BOND_OPTS_INIT");
		if (r < 0)
			return r;
		o = *opts;
	} else
		o.miimon_ms = 100;
	if (strlen(name) >= IOVK_IFNAMSIZ)
		return set_error(ctx, -EINVAL, "'%s': an interface name is at most %d characters", name, IOVK_IFNAMSIZ - 1);
	if (o.n_arp_targets > IOVK_BOND_ARP_TARGETS_MAX || o.fail_over_mac > 2 || o.num_peer_notif > 255)
		return set_error(ctx, -EINVAL, "%s: %u ARP targets (at most %d), fail_over_mac %u (0 to 2), num_peer_notif %u "
				 "(at most 255)", name, o.n_arp_targets, IOVK_BOND_ARP_TARGETS_MAX, o.fail_over_mac,
				 o.num_peer_notif);
	snprintf(what, sizeof(what), "%s: creating an active-backup bond", name);
	r = route_nl_get(ctx, &nl);
	if (r < 0)
		return r;
	r = link_msg_linkinfo(0, NLM_F_CREATE | NLM_F_EXCL, name, "bond", &msg, &info);
	if (r < 0)
		return r;
	data = nla_nest_start(msg, IFLA_INFO_DATA);
	if (!data || nla_put_u8(msg, IFLA_BOND_MODE, IOVK_BOND_MODE_ACTIVE_BACKUP) < 0 ||
	    nla_put_u32(msg, IFLA_BOND_MIIMON, o.miimon_ms) < 0 || nla_put_u32(msg, IFLA_BOND_UPDELAY, o.updelay_ms) < 0 ||
	    nla_put_u32(msg, IFLA_BOND_DOWNDELAY, o.downdelay_ms) < 0 ||
	    nla_put_u8(msg, IFLA_BOND_FAIL_OVER_MAC, o.fail_over_mac) < 0 ||
	    nla_put_u8(msg, IFLA_BOND_NUM_PEER_NOTIF, (uint8_t)o.num_peer_notif) < 0)
		return -ENOMEM;
	if (o.arp_interval_ms) {
		if (nla_put_u32(msg, IFLA_BOND_ARP_INTERVAL, o.arp_interval_ms) < 0)
			return -ENOMEM;
		targets = nla_nest_start(msg, IFLA_BOND_ARP_IP_TARGET);
		if (!targets)
			return -ENOMEM;
		for (unsigned i = 0; i < o.n_arp_targets; i++)
			if (nla_put_u32(msg, (int)i, o.arp_targets[i]) < 0)
				return -ENOMEM;
		nla_nest_end(msg, targets);
	}
	nla_nest_end(msg, data);
	nla_nest_end(msg, info);
	return link_request(ctx, nl.sk, msg, what, 0, NULL);
}

/* The link called name, which must be a bond (-EMEDIUMTYPE). */
static int read_bond_link(struct iovk_ctx *ctx, struct nl_sock *sk, const char *name, struct link_state *ret)
{
	int r = link_read(ctx, sk, name, ret);

	if (r >= 0 && strcmp(ret->info.kind, "bond") != 0)
		return set_error(ctx, -EMEDIUMTYPE, "%s: not a bond (it is %s)", name,
				 ret->info.kind[0] ? ret->info.kind : "a device's own interface");
	return r;
}

/* A socket, the bond (a bond, or -EMEDIUMTYPE) and the slave, read. */
static int open_bond_and_slave(struct iovk_ctx *ctx, struct route_nl *nl, const char *bond, const char *slave,
			       struct link_state *ret_bond, struct link_state *ret_slave)
{
	int r = route_nl_get(ctx, nl);

	if (r >= 0)
		r = read_bond_link(ctx, nl->sk, bond, ret_bond);
	return r < 0 ? r : link_read(ctx, nl->sk, slave, ret_slave);
}

_public_ int iovk_bond_enslave(struct iovk_ctx *ctx, const char *bond, const char *slave)
{
	_cleanup_route_nl_ struct route_nl nl = {};
	_cleanup_rtnl_link_ struct rtnl_link *changes = rtnl_link_alloc();
	struct link_state b, s;
	char what[2 * IOVK_IFNAMSIZ + 64], master[IOVK_IFNAMSIZ];
	int r;

	assert_return(ctx && bond && slave, -EINVAL);
	clear_error(ctx);
	if (!changes)
		return -ENOMEM;
	r = open_bond_and_slave(ctx, &nl, bond, slave, &b, &s);
	if (r < 0)
		return r;
	if (s.info.master_ifindex == b.info.ifindex)
		return 0;
	if (s.info.master_ifindex) {
		r = link_name_of(ctx, nl.sk, s.info.master_ifindex, master);
		return set_error(ctx, -EBUSY, "%s: cannot enslave it to %s: it is a port of %s already", slave, bond,
				 r >= 0 && master[0] ? master : "another master");
	}
	snprintf(what, sizeof(what), "%s: enslaving it to bond %s", slave, bond);
	if (s.info.up) {
		_cleanup_rtnl_link_ struct rtnl_link *down = rtnl_link_alloc();

		if (!down)
			return -ENOMEM;
		rtnl_link_unset_flags(down, IFF_UP);
		r = link_change(ctx, nl.sk, s.info.ifindex, down, what, 0, NULL);
		if (r < 0)
			return r;
	}
	rtnl_link_set_master(changes, b.info.ifindex);
	return link_change(ctx, nl.sk, s.info.ifindex, changes, what, 0, NULL);
}

_public_ int iovk_bond_release(struct iovk_ctx *ctx, const char *slave)
{
	_cleanup_route_nl_ struct route_nl nl = {};
	_cleanup_rtnl_link_ struct rtnl_link *changes = rtnl_link_alloc();
	struct link_state s;
	char what[IOVK_IFNAMSIZ + 64];
	int r;

	assert_return(ctx && slave, -EINVAL);
	clear_error(ctx);
	if (!changes)
		return -ENOMEM;
	r = link_open_read(ctx, &nl, slave, &s);
	if (r < 0)
		return r;
	if (!s.info.master_ifindex)
		return set_error(ctx, -ENOENT, "%s: it is in no bond", slave);
	snprintf(what, sizeof(what), "%s: releasing it from its bond", slave);
	rtnl_link_set_master(changes, 0);
	return link_change(ctx, nl.sk, s.info.ifindex, changes, what, 0, NULL);
}

/* The IFLA_BOND_ACTIVE_SLAVE request for the bond at bond_ifindex and the slave at slave_ifindex. */
static int active_slave_msg(int bond_ifindex, int slave_ifindex, struct nl_msg **ret)
{
	_cleanup_nlmsg_ struct nl_msg *msg = NULL;
	struct nlattr *info, *data;
	int r;

	r = link_msg_linkinfo(bond_ifindex, 0, NULL, "bond", &msg, &info);
	if (r < 0)
		return r;
	data = nla_nest_start(msg, IFLA_INFO_DATA);
	if (!data || nla_put_u32(msg, IFLA_BOND_ACTIVE_SLAVE, (uint32_t)slave_ifindex) < 0)
		return -ENOMEM;
	nla_nest_end(msg, data);
	nla_nest_end(msg, info);
	*ret = TAKE_PTR(msg);
	return 0;
}

/* The same sent, for the slave s: the kernel's refusal reported, naming what. */
static int request_active_slave(struct iovk_ctx *ctx, struct nl_sock *sk, int bond_ifindex, const struct link_state *s,
				const char *what)
{
	_cleanup_nlmsg_ struct nl_msg *msg = NULL;
	int r;

	r = active_slave_msg(bond_ifindex, s->info.ifindex, &msg);
	if (r < 0)
		return r;
	return link_request(ctx, sk, msg, what, -EINVAL,
			    s->info.carrier ? NULL : " (its link is down: a bond makes only a slave with link active)");
}

_public_ int iovk_bond_set_active_slave(struct iovk_ctx *ctx, const char *bond, const char *slave)
{
	_cleanup_route_nl_ struct route_nl nl = {};
	struct link_state b, s;
	char what[2 * IOVK_IFNAMSIZ + 64];
	int r;

	assert_return(ctx && bond && slave, -EINVAL);
	clear_error(ctx);
	r = open_bond_and_slave(ctx, &nl, bond, slave, &b, &s);
	if (r < 0)
		return r;
	snprintf(what, sizeof(what), "%s: making %s its active slave", bond, slave);
	if (s.info.master_ifindex != b.info.ifindex)
		return set_error(ctx, -EINVAL, "%s: %s is not one of its slaves", what, slave);
	return request_active_slave(ctx, nl.sk, b.info.ifindex, &s, what);
}

/* ---- waiting for the kernel's word --------------------------------------------------- */

/*
 * A bond and one of its slaves, watched: each of the two links read once
 * (RTM_GETLINK of that one link), then read again by ifindex each time the
 * kernel's RTM_NEWLINK notifications of those two links wake the wait. The
 * subscription to RTNLGRP_LINK (a second socket, mon) comes before the first
 * read a wait rests on, so a change between the two is not missed. The
 * kernel sends the notifications from inside the request that changed the
 * links (rtnetlink_event() for NETDEV_CHANGELOWERSTATE on each slave whose
 * state changed, then NETDEV_BONDING_FAILOVER on the bond), so they are
 * queued on the subscribed socket before the request's ACK comes back. The
 * first version read a whole RTM_GETLINK dump, every link parsed by libnl,
 * at each look: a planned switch took 66 ms at p99 under TCG, against the
 * 117 ms of the miimon failover it is to beat tenfold (issue 11).
 *
 * A planned switch subscribes only when it has to wait: in active-backup
 * mode the kernel switches inside the IFLA_BOND_ACTIVE_SLAVE request when
 * the slave's link is up (bond_change_active_slave() under RTNL), so the
 * look right after the request's ACK finds the switch done, and the
 * subscribed socket, its notifications and their reads were all cost (in
 * the test guest under TCG: a socket, five system calls to set it up and
 * four notifications to read and drop, ~1 ms of a PrepareMigration).
 * Subscribed after that look, the wait reads both links again before it
 * sleeps, as any wait does.
 *
 * A notification is never the answer: mon checks no sequence numbers and
 * any process in the netns can unicast to its port id, so only the
 * kernel's (sender port id 0) of the link itself (AF_UNSPEC: not a bridge
 * port's) are kept, and each look reads both links again by ifindex over
 * the sequence-checked socket: no wait rests on a state the kernel did
 * not just give. An RTM_DELLINK from the kernel of either link ends the
 * wait.
 */
struct bond_watch {
	struct route_nl nl; /* requests and reads (the context's kept socket, if it keeps one) */
	struct nl_sock *mon;
	struct nl_cb *mon_cb; /* mon's callbacks: watch_notified() */
	const char *bond_name, *slave_name;
	struct link_state bond, slave;
	const char *gone; /* the one of the two an RTM_DELLINK named */
};

static void watch_close(struct bond_watch *w)
{
	route_nl_put(&w->nl);
	if (w->mon)
		nl_socket_free(w->mon);
	if (w->mon_cb)
		nl_cb_put(w->mon_cb);
}

/* Both links read again, by ifindex. */
static int watch_refresh(struct iovk_ctx *ctx, struct bond_watch *w)
{
	int r;

	r = link_read_index(ctx, w->nl.sk, w->bond.info.ifindex, w->bond_name, &w->bond);
	return r < 0 ? r : link_read_index(ctx, w->nl.sk, w->slave.info.ifindex, w->slave_name, &w->slave);
}

/* One notification: only the kernel's RTM_DELLINK of the bond or the slave is kept (see struct bond_watch). */
static int watch_notified(struct nl_msg *msg, void *arg)
{
	struct bond_watch *w = arg;
	struct nlmsghdr *h = nlmsg_hdr(msg);
	const struct ifinfomsg *ifi;

	if (h->nlmsg_type != RTM_DELLINK || !nlmsg_valid_hdr(h, sizeof(*ifi)))
		return NL_OK;
	/* only the kernel's (port id 0): any process in the netns can unicast
	 * to mon, whose sequence numbers are not checked */
	if (nlmsg_get_src(msg)->nl_pid != 0)
		return NL_OK;
	ifi = nlmsg_data(h);
	/* AF_BRIDGE (a bridge port's) and others are not the link itself: an
	 * RTM_DELLINK of the bond leaving a bridge does not delete it */
	if (ifi->ifi_family != AF_UNSPEC)
		return NL_OK;
	if (ifi->ifi_index == w->bond.info.ifindex)
		w->gone = w->bond_name;
	else if (ifi->ifi_index == w->slave.info.ifindex)
		w->gone = w->slave_name;
	return NL_OK;
}

/* Every notification queued on the subscribed socket, without blocking; nothing when not subscribed. */
static void watch_drain(struct bond_watch *w)
{
	if (!w->mon)
		return;
	/* nl_recvmsgs_report(): -NLE_AGAIN when none is left (the socket does not
	 * block), -NLE_NOMEM on an overrun (ENOBUFS: what was lost, the GETLINK
	 * that follows reads), > 0 for what it read */
	while (nl_recvmsgs_report(w->mon, w->mon_cb) > 0)
		;
}

/*
 * The receive buffer of the watch's subscribed socket (mon), read without
 * MSG_PEEK. libnl peeks at each datagram to size its buffer and then reads
 * it again: two recvmsg() a message, and a switch reads several
 * notifications. A notification carries one link without VF information
 * (the kernel builds it with no RTEXT_FILTER_VF): about 1.6 KiB. One that
 * is larger all the same (a link with hundreds of altnames) fails its read
 * (-NLE_MSG_TRUNC) and is dropped, never cut silently, and no wait rests on
 * it: a notification only wakes the wait, whose look reads both links again
 * over sk (a deleted one as -ENODEV).
 *
 * The request socket sk keeps peeking: libnl's rtnl_link_build_get_request()
 * always asks IFLA_EXT_MASK RTEXT_FILTER_VF, so the GETLINK of a PF carries
 * its IFLA_VFINFO_LIST (~350 bytes a VF: over 32 KiB past ~100 VFs), and
 * a link's altnames alone can pass 32 KiB (tests/host: a fixed buffer
 * failed the switch there with "truncated message").
 */
#define WATCH_MSG_BUF (32u * 1024)

/* mon: subscribed to the kernel's link notifications; see struct bond_watch. */
static int watch_subscribe(struct iovk_ctx *ctx, struct bond_watch *w)
{
	int r;

	w->mon = nl_socket_alloc();
	if (!w->mon)
		return -ENOMEM;
	nl_socket_disable_seq_check(w->mon);
	nl_socket_disable_msg_peek(w->mon);
	w->mon_cb = nl_socket_get_cb(w->mon);
	nl_cb_set(w->mon_cb, NL_CB_VALID, NL_CB_CUSTOM, watch_notified, w);
	r = nl_connect(w->mon, NETLINK_ROUTE);
	if (r >= 0)
		r = nl_socket_set_msg_buf_size(w->mon, WATCH_MSG_BUF);
	if (r >= 0)
		r = nl_socket_add_membership(w->mon, RTNLGRP_LINK);
	if (r >= 0)
		r = nl_socket_set_nonblocking(w->mon);
	if (r < 0)
		return set_error(ctx, nle_to_errno(r), "%s: subscribing to link notifications: %s", w->bond_name,
				 nl_geterror(r));
	return 0;
}

/* Both links read by name. */
static int watch_read(struct iovk_ctx *ctx, struct bond_watch *w)
{
	int r = read_bond_link(ctx, w->nl.sk, w->bond_name, &w->bond);

	return r < 0 ? r : link_read(ctx, w->nl.sk, w->slave_name, &w->slave);
}

/* The request socket, subscribed, then both links read: a wait that rests on them (bond_wait()). */
static int watch_open(struct iovk_ctx *ctx, struct bond_watch *w, const char *bond, const char *slave)
{
	int r;

	*w = (struct bond_watch){ .bond_name = bond, .slave_name = slave };
	r = route_nl_get(ctx, &w->nl);
	if (r >= 0)
		r = watch_subscribe(ctx, w);
	return r < 0 ? r : watch_read(ctx, w);
}

static bool is_slave(const struct bond_watch *w)
{
	return w->slave.info.master_ifindex == w->bond.info.ifindex && w->slave.slave.present;
}

static void describe(struct iovk_ctx *ctx, const struct bond_watch *w, char *why, size_t size)
{
	char active[IOVK_IFNAMSIZ] = "";
	const struct link_state *s = &w->slave;

	if (!is_slave(w)) {
		snprintf(why, size, "it is not a slave of the bond");
		return;
	}
	if (w->bond.bond.active_slave == (uint32_t)s->info.ifindex)
		memcpy(active, s->info.name, IOVK_IFNAMSIZ);
	else if (w->bond.bond.active_slave)
		(void)link_name_of(ctx, w->nl.sk, (int)w->bond.bond.active_slave, active);
	snprintf(why, size, "the bond reports %s as its active slave, and %s as %s, MII %s",
		 active[0] ? active : "no slave", s->info.name, s->slave.state == BOND_STATE_ACTIVE ? "active" : "backup",
		 s->slave.mii_status == BOND_LINK_UP ? "up" : "down");
}

/* Whether the bond reports the slave active (its IFLA_BOND_ACTIVE_SLAVE, and the slave's own state). */
static bool switch_done(const struct bond_watch *w)
{
	return is_slave(w) && w->bond.bond.active_slave == (uint32_t)w->slave.info.ifindex &&
	       w->slave.slave.state == BOND_STATE_ACTIVE;
}

/* Whether the bond sees the slave's link up (its MII status), which it needs to make it active. */
static bool link_up_done(const struct bond_watch *w)
{
	return is_slave(w) && w->slave.slave.mii_status == BOND_LINK_UP;
}

/* Waits until done_fn() holds, up to deadline (CLOCK_MONOTONIC, us); see struct bond_watch. */
static int watch_wait(struct iovk_ctx *ctx, struct bond_watch *w, bool (*done_fn)(const struct bond_watch *w),
		      uint64_t deadline, unsigned timeout_ms, const char *what)
{
	char why[256] = "";
	int r;

	/* before the look the wait rests on: a change after it wakes the poll */
	if (!w->mon) {
		r = watch_subscribe(ctx, w);
		if (r < 0)
			return r;
	}
	for (;;) {
		struct pollfd p = { .fd = nl_socket_get_fd(w->mon), .events = POLLIN };
		struct timespec ts;
		uint64_t now;

		watch_drain(w);
		if (w->gone)
			return set_error(ctx, -ENODEV, "%s: %s did not %s: %s was deleted", w->bond_name, w->slave_name,
					 what, w->gone);
		/* notifications only wake the wait: done is what a GETLINK over
		 * the sequence-checked socket says, never a notification alone */
		r = watch_refresh(ctx, w);
		if (r < 0)
			return r;
		if (done_fn(w))
			return 0;
		now = now_usec(CLOCK_MONOTONIC);
		if (now >= deadline) {
			describe(ctx, w, why, sizeof(why));
			return set_error(ctx, -ETIMEDOUT, "%s: %s did not %s within %u ms: %s", w->bond_name, w->slave_name,
					 what, timeout_ms, why);
		}
		ts = (struct timespec){ .tv_sec = (time_t)((deadline - now) / 1000000),
					.tv_nsec = (long)((deadline - now) % 1000000) * 1000 };
		r = ppoll(&p, 1, &ts, NULL);
		if (r < 0 && errno != EINTR)
			return set_error(ctx, negative_errno(), "%s: waiting for link notifications: %m", w->bond_name);
	}
}

static int bond_wait(struct iovk_ctx *ctx, const char *bond, const char *slave, unsigned timeout_ms,
		     bool (*done_fn)(const struct bond_watch *w), const char *what, uint64_t *ret_usec)
{
	struct bond_watch w;
	uint64_t start = now_usec(CLOCK_MONOTONIC);
	int r;

	r = watch_open(ctx, &w, bond, slave);
	if (r >= 0)
		r = watch_wait(ctx, &w, done_fn, start + (uint64_t)timeout_ms * 1000, timeout_ms, what);
	watch_close(&w);
	if (r >= 0 && ret_usec)
		*ret_usec = now_usec(CLOCK_MONOTONIC) - start;
	return r;
}

_public_ int iovk_bond_wait_active(struct iovk_ctx *ctx, const char *bond, const char *slave, unsigned timeout_ms,
				   uint64_t *ret_usec)
{
	assert_return(ctx && bond && slave, -EINVAL);
	clear_error(ctx);
	return bond_wait(ctx, bond, slave, timeout_ms, switch_done, "become its active slave", ret_usec);
}

_public_ int iovk_bond_wait_link_up(struct iovk_ctx *ctx, const char *bond, const char *slave, unsigned timeout_ms,
				    uint64_t *ret_usec)
{
	assert_return(ctx && bond && slave, -EINVAL);
	clear_error(ctx);
	return bond_wait(ctx, bond, slave, timeout_ms, link_up_done, "get its link up in the bond's eyes (MII up)",
			 ret_usec);
}

/* The ifindex and flags of the link called name, by ioctl on fd (any socket of the netns); false: none or not read. */
static bool link_peek(int fd, const char *name, int *ret_ifindex, unsigned *ret_flags)
{
	struct ifreq ifr = {};

	if (strlen(name) >= sizeof(ifr.ifr_name))
		return false;
	memcpy(ifr.ifr_name, name, strlen(name));
	if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0)
		return false;
	*ret_ifindex = ifr.ifr_ifindex;
	if (!ret_flags)
		return true;
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		return false;
	*ret_flags = (unsigned)(unsigned short)ifr.ifr_flags;
	return true;
}

/*
 * Whether sysfs says the bond sees slave's link up (bonding_slave/
 * mii_status), which the kernel checks before it makes a slave active,
 * read without the RTNL lock: one open and one read into the stack (the
 * first version also read the master link, and through read_text(): 1.0
 * ms a switch in the test guest under TCG, 0.5 now; ~10 us natively). A
 * hint only, never the answer: the request and the bond's read decide.
 * sysfs shows the network namespace it was mounted in, so in another one
 * it may speak of another link; a wrong hint costs a refused request and
 * its kernel log line, or the careful way, nothing else. Whose slave it is
 * is not looked at: a switch to another bond's slave is the caller's
 * mistake, which the kernel refuses (and logs) before the careful way
 * names it.
 */
static bool slave_ready(struct iovk_ctx *ctx, const char *slave)
{
	_cleanup_free_ char *mii = sysfs_path(ctx, "/class/net/%s/bonding_slave/mii_status", slave);
	_cleanup_close_ int fd = mii ? open(mii, O_RDONLY | O_CLOEXEC) : -1;
	char buf[8];
	ssize_t n;

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	return n == 3 && memcmp(buf, "up\n", 3) == 0;
}

/*
 * The switch at once, when nothing stands in its way: the request first,
 * then one read of the bond, the kernel's word. A planned switch on a
 * healthy bond (the standby up and enslaved, which is what a failover
 * group keeps) is one IFLA_BOND_ACTIVE_SLAVE request and one RTM_GETLINK,
 * against the five exchanges of the careful way (both links read before
 * and after): in the test guest under TCG each RTM_GETLINK is 0.25-0.5 ms
 * of the kernel building the whole link, and the switch is what issue 11
 * times. The names become ifindexes by SIOCGIFINDEX, the slave's flags
 * (SIOCGIFFLAGS) must say up, running (operstate up) and enslaved, and
 * sysfs that the bond sees its link up (slave_ready()), all without the
 * RTNL lock; the bond's read then says whether the kernel made
 * that ifindex its active slave. 1: done, w->bond holds that read. 0: not
 * done, nothing reported: the careful way follows, reads both links, does
 * what is missing and names what went wrong. An ioctl that fails (no such
 * link, or one this process may not ask about) is that too: the careful
 * way reads the links over netlink and reports what the kernel says.
 * Looking first keeps the kernel's log clean: it refuses a slave whose
 * link it has not yet seen up (its MII poll lags the carrier; updelay)
 * with a KERN_ERR line, and a failover group's switch can come right
 * after a link did (a VF's netdev just bound).
 */
static int switch_at_once(struct iovk_ctx *ctx, struct bond_watch *w, const char *what)
{
	_cleanup_nlmsg_ struct nl_msg *msg = NULL;
	struct route_nl_answer a = {};
	unsigned flags = 0;
	int fd = nl_socket_get_fd(w->nl.sk), bond_ifindex, slave_ifindex, r;

	if (!link_peek(fd, w->bond_name, &bond_ifindex, NULL) || !link_peek(fd, w->slave_name, &slave_ifindex, &flags) ||
	    (flags & (IFF_UP | IFF_RUNNING | IFF_SLAVE)) != (IFF_UP | IFF_RUNNING | IFF_SLAVE) ||
	    !slave_ready(ctx, w->slave_name))
		return 0;
	r = active_slave_msg(bond_ifindex, slave_ifindex, &msg);
	if (r >= 0)
		r = route_nl_exchange(ctx, w->nl.sk, msg, what, &a);
	/* a failed exchange is reported as it is; the kernel's refusal is the careful way's to explain */
	if (r < 0 || a.error < 0)
		return r < 0 ? r : 0;
	r = link_read_index(ctx, w->nl.sk, bond_ifindex, w->bond_name, &w->bond);
	if (r == -ENODEV) {
		clear_error(ctx);
		return 0;
	}
	if (r < 0)
		return r;
	/* the same bond still (not renamed meanwhile), and the kernel's word */
	return strcmp(w->bond.info.name, w->bond_name) == 0 && strcmp(w->bond.info.kind, "bond") == 0 &&
	       w->bond.bond.active_slave == (uint32_t)slave_ifindex;
}

_public_ int iovk_bond_switch(struct iovk_ctx *ctx, const char *bond, const char *slave, unsigned timeout_ms,
			      uint64_t *ret_usec)
{
	struct bond_watch w;
	uint64_t start = now_usec(CLOCK_MONOTONIC), deadline = start + (uint64_t)timeout_ms * 1000;
	char what[2 * IOVK_IFNAMSIZ + 64];
	int r;

	assert_return(ctx && bond && slave, -EINVAL);
	clear_error(ctx);
	snprintf(what, sizeof(what), "%s: making %s its active slave", bond, slave);
	w = (struct bond_watch){ .bond_name = bond, .slave_name = slave };
	r = route_nl_get(ctx, &w.nl);
	if (r >= 0)
		r = switch_at_once(ctx, &w, what);
	if (r != 0)
		goto out;
	r = watch_read(ctx, &w);
	if (r < 0)
		goto out;
	if (!is_slave(&w)) {
		r = set_error(ctx, -EINVAL, "%s: %s is not one of its slaves", what, slave);
		goto out;
	}
	if (switch_done(&w))
		goto out;
	/* the bond makes a slave active only once it sees its link up */
	if (!w.slave.info.up) {
		_cleanup_rtnl_link_ struct rtnl_link *up = rtnl_link_alloc();
		char label[IOVK_IFNAMSIZ + 32];

		if (!up) {
			r = -ENOMEM;
			goto out;
		}
		snprintf(label, sizeof(label), "%s: setting it up", slave);
		rtnl_link_set_flags(up, IFF_UP);
		r = link_change(ctx, w.nl.sk, w.slave.info.ifindex, up, label, 0, NULL);
		if (r < 0)
			goto out;
	}
	if (w.slave.slave.mii_status != BOND_LINK_UP) {
		r = watch_wait(ctx, &w, link_up_done, deadline, timeout_ms, "get its link up in the bond's eyes (MII up)");
		if (r < 0)
			goto out;
	}
	/* what came before the request, taken now (when the MII wait subscribed) */
	watch_drain(&w);
	r = request_active_slave(ctx, w.nl.sk, w.bond.info.ifindex, &w.slave, what);
	/* the kernel has switched inside the request (see struct bond_watch): one
	 * look; a switch still to come is waited for on notifications */
	if (r >= 0)
		r = watch_refresh(ctx, &w);
	if (r >= 0 && !switch_done(&w))
		r = watch_wait(ctx, &w, switch_done, deadline, timeout_ms, "become its active slave");
out:
	watch_close(&w);
	if (r >= 0 && ret_usec)
		*ret_usec = now_usec(CLOCK_MONOTONIC) - start;
	return r < 0 ? r : 0;
}
