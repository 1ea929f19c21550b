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

/* The bond called name and its slaves, from one dump. */
static int bond_read(struct iovk_ctx *ctx, struct nl_sock *sk, const char *name, struct iovk_bond **ret)
{
	struct link_state *all = NULL;
	struct iovk_bond *b;
	size_t n = 0, at = SIZE_MAX;
	int r;

	r = link_dump(ctx, sk, &all, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if (strcmp(all[i].info.name, name) == 0)
			at = i;
	if (at == SIZE_MAX) {
		free(all);
		return set_error(ctx, -ENODEV, "%s: no such network interface in this network namespace", name);
	}
	if (!all[at].bond.present) {
		r = set_error(ctx, -EMEDIUMTYPE, "%s: not a bond (it is %s)", name,
			      all[at].info.kind[0] ? all[at].info.kind : "a device's own interface");
		free(all);
		return r;
	}
	b = calloc(1, sizeof(*b));
	if (!b) {
		free(all);
		return -ENOMEM;
	}
	b->n_ref = 1;
	b->bond = all[at];
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
	_cleanup_nl_socket_ struct nl_sock *sk = NULL;
	int r;

	assert_return(ctx && name && ret, -EINVAL);
	clear_error(ctx);
	r = route_nl_open(ctx, &sk);
	if (r < 0)
		return r;
	return bond_read(ctx, sk, name, ret);
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
	_cleanup_nl_socket_ struct nl_sock *sk = NULL;
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
	r = route_nl_open(ctx, &sk);
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
	return link_request(ctx, sk, msg, what, 0, NULL);
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
static int open_bond_and_slave(struct iovk_ctx *ctx, struct nl_sock **sk, const char *bond, const char *slave,
			       struct link_state *ret_bond, struct link_state *ret_slave)
{
	int r = route_nl_open(ctx, sk);

	if (r >= 0)
		r = read_bond_link(ctx, *sk, bond, ret_bond);
	return r < 0 ? r : link_read(ctx, *sk, slave, ret_slave);
}

_public_ int iovk_bond_enslave(struct iovk_ctx *ctx, const char *bond, const char *slave)
{
	_cleanup_nl_socket_ struct nl_sock *sk = NULL;
	_cleanup_rtnl_link_ struct rtnl_link *changes = rtnl_link_alloc();
	struct link_state b, s;
	char what[2 * IOVK_IFNAMSIZ + 64], master[IOVK_IFNAMSIZ];
	int r;

	assert_return(ctx && bond && slave, -EINVAL);
	clear_error(ctx);
	if (!changes)
		return -ENOMEM;
	r = open_bond_and_slave(ctx, &sk, bond, slave, &b, &s);
	if (r < 0)
		return r;
	if (s.info.master_ifindex == b.info.ifindex)
		return 0;
	if (s.info.master_ifindex) {
		r = link_name_of(ctx, sk, s.info.master_ifindex, master);
		return set_error(ctx, -EBUSY, "%s: cannot enslave it to %s: it is a port of %s already", slave, bond,
				 r >= 0 && master[0] ? master : "another master");
	}
	snprintf(what, sizeof(what), "%s: enslaving it to bond %s", slave, bond);
	if (s.info.up) {
		_cleanup_rtnl_link_ struct rtnl_link *down = rtnl_link_alloc();

		if (!down)
			return -ENOMEM;
		rtnl_link_unset_flags(down, IFF_UP);
		r = link_change(ctx, sk, s.info.ifindex, down, what, 0, NULL);
		if (r < 0)
			return r;
	}
	rtnl_link_set_master(changes, b.info.ifindex);
	return link_change(ctx, sk, s.info.ifindex, changes, what, 0, NULL);
}

_public_ int iovk_bond_release(struct iovk_ctx *ctx, const char *slave)
{
	_cleanup_nl_socket_ struct nl_sock *sk = NULL;
	_cleanup_rtnl_link_ struct rtnl_link *changes = rtnl_link_alloc();
	struct link_state s;
	char what[IOVK_IFNAMSIZ + 64];
	int r;

	assert_return(ctx && slave, -EINVAL);
	clear_error(ctx);
	if (!changes)
		return -ENOMEM;
	r = link_open_read(ctx, &sk, slave, &s);
	if (r < 0)
		return r;
	if (!s.info.master_ifindex)
		return set_error(ctx, -ENOENT, "%s: it is in no bond", slave);
	snprintf(what, sizeof(what), "%s: releasing it from its bond", slave);
	rtnl_link_set_master(changes, 0);
	return link_change(ctx, sk, s.info.ifindex, changes, what, 0, NULL);
}

_public_ int iovk_bond_set_active_slave(struct iovk_ctx *ctx, const char *bond, const char *slave)
{
	_cleanup_nl_socket_ struct nl_sock *sk = NULL;
	_cleanup_nlmsg_ struct nl_msg *msg = NULL;
	struct link_state b, s;
	struct nlattr *info, *data;
	char what[2 * IOVK_IFNAMSIZ + 64];
	int r;

	assert_return(ctx && bond && slave, -EINVAL);
	clear_error(ctx);
	r = open_bond_and_slave(ctx, &sk, bond, slave, &b, &s);
	if (r < 0)
		return r;
	snprintf(what, sizeof(what), "%s: making %s its active slave", bond, slave);
	if (s.info.master_ifindex != b.info.ifindex)
		return set_error(ctx, -EINVAL, "%s: %s is not one of its slaves", what, slave);
	r = link_msg_linkinfo(b.info.ifindex, 0, NULL, "bond", &msg, &info);
	if (r < 0)
		return r;
	data = nla_nest_start(msg, IFLA_INFO_DATA);
	if (!data || nla_put_u32(msg, IFLA_BOND_ACTIVE_SLAVE, (uint32_t)s.info.ifindex) < 0)
		return -ENOMEM;
	nla_nest_end(msg, data);
	nla_nest_end(msg, info);
	return link_request(ctx, sk, msg, what, -EINVAL,
			    s.info.carrier ? NULL : " (its link is down: a bond makes only a slave with link active)");
}

/* ---- waiting for the kernel's word --------------------------------------------------- */

/* The slave at ifindex in b, NULL (why says so) when it is not one of its slaves. */
static const struct link_state *find_slave(const struct iovk_bond *b, int slave, char *why, size_t size)
{
	for (size_t i = 0; i < b->n_slaves; i++)
		if (b->slaves[i].info.ifindex == slave)
			return &b->slaves[i];
	snprintf(why, size, "it is not a slave of the bond");
	return NULL;
}

static void describe(const struct iovk_bond *b, const struct link_state *s, char *why, size_t size)
{
	snprintf(why, size, "the bond reports %s as its active slave, and %s as %s, MII %s",
		 b->active[0] ? b->active : "no slave", s->info.name, s->slave.state == BOND_STATE_ACTIVE ? "active" : "backup",
		 s->slave.mii_status == BOND_LINK_UP ? "up" : "down");
}

/* Whether the bond reports slave (ifindex) active; else what it reports, in why. */
static bool switch_done(const struct iovk_bond *b, int slave, char *why, size_t size)
{
	const struct link_state *s = find_slave(b, slave, why, size);

	if (!s)
		return false;
	if ((int)b->bond.bond.active_slave == slave && s->slave.state == BOND_STATE_ACTIVE)
		return true;
	describe(b, s, why, size);
	return false;
}

/* Whether the bond sees slave's link up (its MII status), which it needs to make it active. */
static bool link_up_done(const struct iovk_bond *b, int slave, char *why, size_t size)
{
	const struct link_state *s = find_slave(b, slave, why, size);

	if (!s)
		return false;
	if (s->slave.mii_status == BOND_LINK_UP)
		return true;
	describe(b, s, why, size);
	return false;
}

static int drain(struct nl_msg *msg, void *arg)
{
	return NL_OK;
}

static int bond_wait(struct iovk_ctx *ctx, const char *bond, const char *slave, unsigned timeout_ms,
		     bool (*done_fn)(const struct iovk_bond *b, int slave, char *why, size_t size), const char *what,
		     uint64_t *ret_usec)
{
	_cleanup_nl_socket_ struct nl_sock *sk = NULL, *mon = NULL;
	struct link_state s;
	uint64_t start = now_usec(CLOCK_MONOTONIC), deadline = start + (uint64_t)timeout_ms * 1000;
	char why[256] = "";
	int r;

	assert_return(ctx && bond && slave, -EINVAL);
	clear_error(ctx);
	r = link_open_read(ctx, &sk, slave, &s);
	if (r < 0)
		return r;
	/* subscribed before the first look: a change between the two is not missed */
	mon = nl_socket_alloc();
	if (!mon)
		return -ENOMEM;
	nl_socket_disable_seq_check(mon);
	nl_socket_modify_cb(mon, NL_CB_VALID, NL_CB_CUSTOM, drain, NULL);
	r = nl_connect(mon, NETLINK_ROUTE);
	if (r >= 0)
		r = nl_socket_add_membership(mon, RTNLGRP_LINK);
	if (r >= 0)
		r = nl_socket_set_nonblocking(mon);
	if (r < 0)
		return set_error(ctx, nle_to_errno(r), "%s: subscribing to link notifications: %s", bond, nl_geterror(r));
	for (;;) {
		struct iovk_bond *b = NULL;
		struct pollfd p = { .fd = nl_socket_get_fd(mon), .events = POLLIN };
		struct timespec ts;
		uint64_t now;
		bool done;

		r = bond_read(ctx, sk, bond, &b);
		if (r < 0)
			return r;
		done = done_fn(b, s.info.ifindex, why, sizeof(why));
		iovk_bond_unref(b);
		now = now_usec(CLOCK_MONOTONIC);
		if (done) {
			if (ret_usec)
				*ret_usec = now - start;
			return 0;
		}
		if (now >= deadline)
			return set_error(ctx, -ETIMEDOUT, "%s: %s did not %s within %u ms: %s", bond, slave, what,
					 timeout_ms, why);
		ts = (struct timespec){ .tv_sec = (time_t)((deadline - now) / 1000000),
					.tv_nsec = (long)((deadline - now) % 1000000) * 1000 };
		r = ppoll(&p, 1, &ts, NULL);
		if (r < 0 && errno != EINTR)
			return set_error(ctx, negative_errno(), "%s: waiting for link notifications: %m", bond);
		/* read them all (nl_recvmsgs_report(): 0 when none is left); what they
		 * say is read again in one dump, after an overrun (ENOBUFS) too */
		if (r > 0) {
			struct nl_cb *cb = nl_socket_get_cb(mon);

			while (nl_recvmsgs_report(mon, cb) > 0)
				;
			nl_cb_put(cb);
		}
	}
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
