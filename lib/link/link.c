/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Links: reading them (one by name, or all in a dump), and the changes every
 * link takes (up/down, MAC, MTU, delete), each read back, because a driver
 * may accept a request and not apply it.
 *
 * Requests are built by libnl-route (rtnl_link_build_*_request) and sent
 * through lib/core/netlink.c, which keeps the kernel's errno and its
 * extended ACK text for the error. Only the bond's attributes, which libnl
 * 3.7 cannot build or read, are written raw (link-internal.h); answers and
 * notifications are read raw (link_parse_msg()).
 */
#include <net/if.h>
#include <string.h>

#include <linux/if.h>
#include <linux/rtnetlink.h>

#include "link-internal.h"

/* ---- reading ------------------------------------------------------------------------- */

static int parse_bond_data(const struct nlattr *data, struct bond_attrs *b)
{
	struct nlattr *tb[IFLA_BOND_MAX + 1];

	if (nla_parse_nested(tb, IFLA_BOND_MAX, (struct nlattr *)data, NULL) < 0)
		return -EBADMSG;
	*b = (struct bond_attrs){ .present = true };
#define U8(attr, field) \
	if (tb[attr] && nla_len(tb[attr]) >= 1) \
	b->field = nla_get_u8(tb[attr])
#define U32(attr, field) \
	if (tb[attr] && nla_len(tb[attr]) >= 4) \
	b->field = nla_get_u32(tb[attr])
	U8(IFLA_BOND_MODE, mode);
	U32(IFLA_BOND_ACTIVE_SLAVE, active_slave);
	U32(IFLA_BOND_MIIMON, miimon);
	U32(IFLA_BOND_UPDELAY, updelay);
	U32(IFLA_BOND_DOWNDELAY, downdelay);
	U32(IFLA_BOND_ARP_INTERVAL, arp_interval);
	U8(IFLA_BOND_FAIL_OVER_MAC, fail_over_mac);
	U8(IFLA_BOND_NUM_PEER_NOTIF, num_peer_notif);
#undef U8
#undef U32
	if (tb[IFLA_BOND_ARP_IP_TARGET]) {
		struct nlattr *t;
		int rem;

		nla_for_each_nested(t, tb[IFLA_BOND_ARP_IP_TARGET], rem) {
			if (nla_len(t) < 4)
				return -EBADMSG;
			if (b->n_arp_targets < IOVK_BOND_ARP_TARGETS_MAX)
				b->arp_targets[b->n_arp_targets++] = nla_get_u32(t);
		}
	}
	return 0;
}

static int parse_bond_slave_data(const struct nlattr *data, struct bond_slave_attrs *s)
{
	struct nlattr *tb[IFLA_BOND_SLAVE_MAX + 1];

	if (nla_parse_nested(tb, IFLA_BOND_SLAVE_MAX, (struct nlattr *)data, NULL) < 0)
		return -EBADMSG;
	/* state and MII status are what the wait reads: without them this is not a bond slave's data */
	if (!tb[IFLA_BOND_SLAVE_STATE] || nla_len(tb[IFLA_BOND_SLAVE_STATE]) < 1 || !tb[IFLA_BOND_SLAVE_MII_STATUS] ||
	    nla_len(tb[IFLA_BOND_SLAVE_MII_STATUS]) < 1)
		return -EBADMSG;
	*s = (struct bond_slave_attrs){
		.present = true,
		.state = nla_get_u8(tb[IFLA_BOND_SLAVE_STATE]),
		.mii_status = nla_get_u8(tb[IFLA_BOND_SLAVE_MII_STATUS]),
	};
	if (tb[IFLA_BOND_SLAVE_LINK_FAILURE_COUNT] && nla_len(tb[IFLA_BOND_SLAVE_LINK_FAILURE_COUNT]) >= 4)
		s->link_failure_count = nla_get_u32(tb[IFLA_BOND_SLAVE_LINK_FAILURE_COUNT]);
	if (tb[IFLA_BOND_SLAVE_PERM_HWADDR] && nla_len(tb[IFLA_BOND_SLAVE_PERM_HWADDR]) >= 6)
		memcpy(s->perm_mac, nla_data(tb[IFLA_BOND_SLAVE_PERM_HWADDR]), 6);
	return 0;
}

/* A string attribute into a fixed buffer; -EBADMSG when it does not fit or
 * is not NUL-terminated (its last byte is never dropped to make it one). */
static int get_name(const struct nlattr *a, char *buf, size_t size)
{
	int n = nla_len(a);

	if (n <= 0 || (size_t)n > size || ((const char *)nla_data(a))[n - 1] != 0)
		return -EBADMSG;
	memcpy(buf, nla_data(a), (size_t)n);
	return 0;
}

int link_parse_linkinfo(const struct nlattr *linkinfo, struct link_state *s)
{
	struct nlattr *tb[IFLA_INFO_MAX + 1];
	int r;

	if (nla_parse_nested(tb, IFLA_INFO_MAX, (struct nlattr *)linkinfo, NULL) < 0)
		return -EBADMSG;
	if (tb[IFLA_INFO_KIND] && (r = get_name(tb[IFLA_INFO_KIND], s->info.kind, sizeof(s->info.kind))) < 0)
		return r;
	if (tb[IFLA_INFO_SLAVE_KIND] &&
	    (r = get_name(tb[IFLA_INFO_SLAVE_KIND], s->info.slave_kind, sizeof(s->info.slave_kind))) < 0)
		return r;
	if (tb[IFLA_INFO_DATA] && strcmp(s->info.kind, "bond") == 0 && (r = parse_bond_data(tb[IFLA_INFO_DATA], &s->bond)) < 0)
		return r;
	if (strcmp(s->info.kind, "macvtap") == 0) {
		struct nlattr *mv[IFLA_MACVLAN_MAX + 1];

		s->is_macvtap = true;
		if (tb[IFLA_INFO_DATA] && nla_parse_nested(mv, IFLA_MACVLAN_MAX, tb[IFLA_INFO_DATA], NULL) < 0)
			return -EBADMSG;
		if (tb[IFLA_INFO_DATA] && mv[IFLA_MACVLAN_MODE] && nla_len(mv[IFLA_MACVLAN_MODE]) >= 4)
			s->macvtap_mode = nla_get_u32(mv[IFLA_MACVLAN_MODE]);
	}
	if (tb[IFLA_INFO_SLAVE_DATA] && strcmp(s->info.slave_kind, "bond") == 0 &&
	    (r = parse_bond_slave_data(tb[IFLA_INFO_SLAVE_DATA], &s->slave)) < 0)
		return r;
	return 0;
}

/* A u32 attribute of at least 4 bytes into *v; absent or short leaves it. */
static void get_u32(const struct nlattr *a, int *v)
{
	if (a && nla_len(a) >= 4)
		*v = (int)nla_get_u32((struct nlattr *)a);
}

/*
 * Raw, as the kernel's rtnl_fill_ifinfo() lays it out: libnl's rtnl_link
 * parser reads every attribute (statistics, each address family's
 * settings) into an object, and was 45% of the instructions of a bond
 * switch (callgrind, issue 11) for the eight fields read here.
 */
int link_parse_msg(struct nl_msg *msg, struct link_state *ret)
{
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct nlattr *tb[IFLA_MAX + 1];
	const struct ifinfomsg *ifi;
	struct link_state s = { .info = IOVK_LINK_INFO_INIT };
	int r;

	if (!nlmsg_valid_hdr(h, sizeof(*ifi)) || nlmsg_parse(h, sizeof(*ifi), tb, IFLA_MAX, NULL) < 0)
		return -EBADMSG;
	ifi = nlmsg_data(h);
	if (!tb[IFLA_IFNAME] || get_name(tb[IFLA_IFNAME], s.info.name, sizeof(s.info.name)) < 0 || !s.info.name[0])
		return -EBADMSG;
	s.info.ifindex = ifi->ifi_index;
	get_u32(tb[IFLA_LINK], &s.info.lower_ifindex);
	get_u32(tb[IFLA_MASTER], &s.info.master_ifindex);
	if (tb[IFLA_MTU] && nla_len(tb[IFLA_MTU]) >= 4)
		s.info.mtu = nla_get_u32(tb[IFLA_MTU]);
	s.info.up = ifi->ifi_flags & IFF_UP;
	s.info.carrier = ifi->ifi_flags & IFF_LOWER_UP;
	if (tb[IFLA_OPERSTATE] && nla_len(tb[IFLA_OPERSTATE]) >= 1)
		s.info.operstate = nla_get_u8(tb[IFLA_OPERSTATE]);
	if (tb[IFLA_ADDRESS] && nla_len(tb[IFLA_ADDRESS]) == 6)
		memcpy(s.info.mac, nla_data(tb[IFLA_ADDRESS]), 6);
	if (tb[IFLA_LINKINFO]) {
		r = link_parse_linkinfo(tb[IFLA_LINKINFO], &s);
		if (r < 0)
			return r;
	}
	*ret = s;
	return 0;
}

int link_request(struct iovk_ctx *ctx, struct nl_sock *sk, struct nl_msg *msg, const char *what, int hint_errno,
		 const char *hint)
{
	struct route_nl_answer a = {};
	int r;

	r = route_nl_exchange(ctx, sk, msg, what, &a);
	if (r < 0)
		return r;
	if (a.error < 0)
		return set_error(ctx, a.error, "%s: %s%s%s%s%s", what, strerror(-a.error), a.reason[0] ? " (the kernel: " : "",
				 a.reason, a.reason[0] ? ")" : "", hint && a.error == hint_errno ? hint : "");
	return 0;
}

struct read_one {
	struct link_state *state;
	int parse_error;
	bool found;
};

static int read_one_valid(struct nl_msg *msg, void *arg)
{
	struct read_one *o = arg;
	int r;

	if (nlmsg_hdr(msg)->nlmsg_type != RTM_NEWLINK || o->found)
		return NL_OK;
	r = link_parse_msg(msg, o->state);
	if (r < 0)
		o->parse_error = r;
	else
		o->found = true;
	return NL_OK;
}

/* RTM_GETLINK of one link, by ifindex (name NULL) or by name; label names it in errors. */
static int read_link(struct iovk_ctx *ctx, struct nl_sock *sk, int ifindex, const char *name, const char *label,
		     struct link_state *ret)
{
	_cleanup_nlmsg_ struct nl_msg *msg = NULL;
	struct read_one o = { .state = ret };
	struct route_nl_answer a = { .valid = read_one_valid, .userdata = &o };
	int r;

	r = rtnl_link_build_get_request(ifindex, name, &msg);
	if (r < 0)
		return set_error(ctx, nle_to_errno(r), "%s: building the netlink request: %s", label, nl_geterror(r));
	r = route_nl_exchange(ctx, sk, msg, label, &a);
	if (r < 0)
		return r;
	if (a.error == -ENODEV)
		return set_error(ctx, -ENODEV, "%s: no such network interface in this network namespace%s", label,
				 name ? "" : " (any more)");
	if (a.error < 0)
		return set_error(ctx, a.error, "%s: RTM_GETLINK: %s", label, strerror(-a.error));
	if (!o.found)
		return set_error(ctx, -EBADMSG, "%s: the kernel's RTM_GETLINK answer could not be read", label);
	return 0;
}

int link_read(struct iovk_ctx *ctx, struct nl_sock *sk, const char *name, struct link_state *ret)
{
	if (strlen(name) >= IOVK_IFNAMSIZ)
		return set_error(ctx, -EINVAL, "'%s': an interface name is at most %d characters", name, IOVK_IFNAMSIZ - 1);
	return read_link(ctx, sk, 0, name, name, ret);
}

int link_read_index(struct iovk_ctx *ctx, struct nl_sock *sk, int ifindex, const char *label, struct link_state *ret)
{
	return read_link(ctx, sk, ifindex, NULL, label, ret);
}

struct read_all {
	struct link_state *states;
	size_t n, cap;
	int error;
};

static int read_all_valid(struct nl_msg *msg, void *arg)
{
	struct read_all *o = arg;
	struct link_state s;

	if (nlmsg_hdr(msg)->nlmsg_type != RTM_NEWLINK || o->error)
		return NL_OK;
	if (link_parse_msg(msg, &s) < 0)
		return NL_OK; /* a link this code cannot read is none of its business */
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 16;
		struct link_state *n = realloc(o->states, cap * sizeof(*n));

		if (!n) {
			o->error = -ENOMEM;
			return NL_OK;
		}
		o->states = n;
		o->cap = cap;
	}
	o->states[o->n++] = s;
	return NL_OK;
}

int link_dump(struct iovk_ctx *ctx, struct nl_sock *sk, int master_ifindex, struct link_state **ret, size_t *ret_n)
{
	_cleanup_nlmsg_ struct nl_msg *msg = nlmsg_alloc_simple(RTM_GETLINK, NLM_F_DUMP);
	struct read_all o = {};
	struct route_nl_answer a = { .valid = read_all_valid, .userdata = &o };
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	int r;

	if (!msg || nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0)
		return -ENOMEM;
	/* the kernel's own filter (since 4.5, rtnl_dump_ifinfo()); an older one sends every link */
	if (master_ifindex && nla_put_u32(msg, IFLA_MASTER, (uint32_t)master_ifindex) < 0)
		return -ENOMEM;
	r = route_nl_exchange(ctx, sk, msg, "listing the network interfaces", &a);
	if (r >= 0 && a.error < 0)
		r = set_error(ctx, a.error, "listing the network interfaces: %s", strerror(-a.error));
	if (r >= 0 && o.error < 0)
		r = o.error;
	if (r < 0) {
		free(o.states);
		return r;
	}
	*ret = o.states;
	*ret_n = o.n;
	return 0;
}

int link_open_read(struct iovk_ctx *ctx, struct route_nl *nl, const char *name, struct link_state *ret)
{
	int r = route_nl_get(ctx, nl);

	return r < 0 ? r : link_read(ctx, nl->sk, name, ret);
}

int link_name_of(struct iovk_ctx *ctx, struct nl_sock *sk, int ifindex, char name[static IOVK_IFNAMSIZ])
{
	struct link_state s;
	int r;

	name[0] = 0;
	if (ifindex <= 0) /* no link: libnl asserts on a request for ifindex 0 */
		return 0;
	r = link_read_index(ctx, sk, ifindex, "a link by its ifindex", &s);
	if (r == -ENODEV) {
		clear_error(ctx); /* a link gone is "", not a failure */
		return 0;
	}
	if (r >= 0)
		memcpy(name, s.info.name, IOVK_IFNAMSIZ);
	return r;
}

int link_change(struct iovk_ctx *ctx, struct nl_sock *sk, int ifindex, struct rtnl_link *changes, const char *what,
		int hint_errno, const char *hint)
{
	_cleanup_rtnl_link_ struct rtnl_link *orig = rtnl_link_alloc();
	_cleanup_nlmsg_ struct nl_msg *msg = NULL;
	int r;

	if (!orig)
		return -ENOMEM;
	rtnl_link_set_ifindex(orig, ifindex);
	r = rtnl_link_build_change_request(orig, changes, 0, &msg);
	if (r < 0)
		return set_error(ctx, nle_to_errno(r), "%s: building the netlink request: %s", what, nl_geterror(r));
	return link_request(ctx, sk, msg, what, hint_errno, hint);
}

int link_msg_linkinfo(int ifindex, int nlm_flags, const char *name, const char *kind, struct nl_msg **ret_msg,
		      struct nlattr **ret_linkinfo)
{
	_cleanup_nlmsg_ struct nl_msg *msg = nlmsg_alloc_simple(RTM_NEWLINK, nlm_flags);
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = ifindex };
	struct nlattr *info;

	if (!msg || nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0)
		return -ENOMEM;
	if (name && nla_put_string(msg, IFLA_IFNAME, name) < 0)
		return -ENOMEM;
	info = nla_nest_start(msg, IFLA_LINKINFO);
	if (!info || nla_put_string(msg, IFLA_INFO_KIND, kind) < 0)
		return -ENOMEM;
	*ret_linkinfo = info;
	*ret_msg = TAKE_PTR(msg);
	return 0;
}

/* ---- the public calls ------------------------------------------------------------------ */

_public_ int iovk_link_get(struct iovk_ctx *ctx, const char *name, struct iovk_link_info *ret)
{
	_cleanup_route_nl_ struct route_nl nl = {};
	struct link_state s;
	int r;

	assert_return(ctx && name && ret, -EINVAL);
	clear_error(ctx);
	r = result_valid(ctx, ret, sizeof(size_t) + IOVK_IFNAMSIZ, "iovk_link_info");
	if (r < 0)
		return r;
	r = link_open_read(ctx, &nl, name, &s);
	if (r < 0)
		return r;
	result_store(ret, &s.info, sizeof(s.info));
	return 0;
}

/*
 * One change to one link, then the link read back: check() says whether
 * the read-back shows it. Drivers that accept a request and ignore it
 * exist (a VF whose PF set an admin MAC keeps that MAC on some).
 */
static int change_and_check(struct iovk_ctx *ctx, const char *name, struct rtnl_link *changes, const char *what,
			    bool (*check)(const struct link_state *s, const void *want), const void *want)
{
	_cleanup_route_nl_ struct route_nl nl = {};
	struct link_state s;
	char label[IOVK_IFNAMSIZ + 64];
	int r;

	snprintf(label, sizeof(label), "%s: %s", name, what);
	r = link_open_read(ctx, &nl, name, &s);
	if (r >= 0)
		r = link_change(ctx, nl.sk, s.info.ifindex, changes, label, 0, NULL);
	if (r >= 0)
		r = link_read(ctx, nl.sk, name, &s);
	if (r < 0)
		return r;
	if (!check(&s, want))
		return set_error(ctx, -EIO, "%s: the kernel accepted the request, but the link does not show it", label);
	return 0;
}

static bool check_up(const struct link_state *s, const void *want)
{
	return s->info.up == *(const bool *)want;
}

_public_ int iovk_link_set_up(struct iovk_ctx *ctx, const char *name, bool up)
{
	_cleanup_rtnl_link_ struct rtnl_link *changes = rtnl_link_alloc();

	assert_return(ctx && name, -EINVAL);
	clear_error(ctx);
	if (!changes)
		return -ENOMEM;
	if (up)
		rtnl_link_set_flags(changes, IFF_UP);
	else
		rtnl_link_unset_flags(changes, IFF_UP);
	return change_and_check(ctx, name, changes, up ? "setting it up" : "setting it down", check_up, &up);
}

static bool check_mac(const struct link_state *s, const void *want)
{
	return memcmp(s->info.mac, want, 6) == 0;
}

_public_ int iovk_link_set_mac(struct iovk_ctx *ctx, const char *name, const uint8_t mac[6])
{
	_cleanup_rtnl_link_ struct rtnl_link *changes = rtnl_link_alloc();
	struct nl_addr *addr;
	char what[64];

	assert_return(ctx && name && mac, -EINVAL);
	clear_error(ctx);
	if (!changes)
		return -ENOMEM;
	addr = nl_addr_build(AF_LLC, mac, 6);
	if (!addr)
		return -ENOMEM;
	rtnl_link_set_addr(changes, addr);
	nl_addr_put(addr);
	snprintf(what, sizeof(what), "setting its MAC to %02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
		 mac[4], mac[5]);
	return change_and_check(ctx, name, changes, what, check_mac, mac);
}

static bool check_mtu(const struct link_state *s, const void *want)
{
	return s->info.mtu == *(const unsigned *)want;
}

_public_ int iovk_link_set_mtu(struct iovk_ctx *ctx, const char *name, unsigned mtu)
{
	_cleanup_rtnl_link_ struct rtnl_link *changes = rtnl_link_alloc();
	char what[64];

	assert_return(ctx && name, -EINVAL);
	clear_error(ctx);
	if (!changes)
		return -ENOMEM;
	rtnl_link_set_mtu(changes, mtu);
	snprintf(what, sizeof(what), "setting its MTU to %u", mtu);
	return change_and_check(ctx, name, changes, what, check_mtu, &mtu);
}

_public_ int iovk_link_delete(struct iovk_ctx *ctx, const char *name)
{
	_cleanup_route_nl_ struct route_nl nl = {};
	_cleanup_rtnl_link_ struct rtnl_link *l = rtnl_link_alloc();
	_cleanup_nlmsg_ struct nl_msg *msg = NULL;
	struct link_state s;
	char what[IOVK_IFNAMSIZ + 16];
	int r;

	assert_return(ctx && name, -EINVAL);
	clear_error(ctx);
	if (!l)
		return -ENOMEM;
	r = link_open_read(ctx, &nl, name, &s);
	if (r < 0)
		return r;
	rtnl_link_set_ifindex(l, s.info.ifindex);
	r = rtnl_link_build_delete_request(l, &msg);
	if (r < 0)
		return set_error(ctx, nle_to_errno(r), "%s: building the netlink request: %s", name, nl_geterror(r));
	snprintf(what, sizeof(what), "%s: deleting it", name);
	return link_request(ctx, nl.sk, msg, what, 0, NULL);
}
