/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * macvtap: a virtio-net backend on a netdev. The link is built by libnl's
 * macvtap type (rtnl_link_macvtap_*: kind, mode), its character device is
 * the kernel's "tap<ifindex>" (drivers/net/macvtap.c names it so), whose
 * number sysfs shows under the link (<class/net/NAME>/tapN/dev).
 *
 * Passthru mode hands the whole netdev to the one macvtap: it inherits the
 * lower device's MAC, and a MAC set on it is set on the lower device (a VF
 * whose PF fixed an admin MAC refuses that unless trusted). The kernel
 * allows one passthru macvtap per netdev and refuses a second with EINVAL.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <linux/if_link.h>
#include <netlink/route/link/macvtap.h>

#include "link-internal.h"

static const char *const mode_names[] = {
	[IOVK_MACVTAP_PRIVATE] = "private",
	[IOVK_MACVTAP_VEPA] = "vepa",
	[IOVK_MACVTAP_BRIDGE] = "bridge",
	[IOVK_MACVTAP_PASSTHRU] = "passthru",
};

_public_ const char *iovk_macvtap_mode_to_string(enum iovk_macvtap_mode mode)
{
	if ((unsigned)mode >= ELEMENTSOF(mode_names))
		return NULL;
	return mode_names[mode];
}

_public_ int iovk_macvtap_mode_from_string(const char *s, enum iovk_macvtap_mode *ret)
{
	assert_return(s && ret, -EINVAL);
	for (unsigned i = 0; i < ELEMENTSOF(mode_names); i++)
		if (mode_names[i] && strcmp(s, mode_names[i]) == 0) {
			*ret = (enum iovk_macvtap_mode)i;
			return 0;
		}
	return -EINVAL;
}

/* The macvtap's char device number from sysfs; 0:0 when sysfs does not show it (another namespace's sysfs). */
static void read_tap_devnum(struct iovk_ctx *ctx, struct iovk_macvtap_info *m)
{
	_cleanup_free_ char *path = sysfs_path(ctx, "/class/net/%s/tap%d/dev", m->name, m->ifindex);
	_cleanup_free_ char *text = NULL, *ifindex_path = sysfs_path(ctx, "/class/net/%s/ifindex", m->name);
	long long ifindex;

	m->tap_major = m->tap_minor = 0;
	/* the sysfs of another network namespace may have a link of that name too */
	if (!path || !ifindex_path || read_int(ifindex_path, &ifindex) < 0 || ifindex != m->ifindex)
		return;
	if (read_text(path, &text) < 0 || sscanf(text, "%u:%u", &m->tap_major, &m->tap_minor) != 2)
		m->tap_major = m->tap_minor = 0;
}

static int macvtap_info(struct iovk_ctx *ctx, struct nl_sock *sk, const struct link_state *s,
			struct iovk_macvtap_info *ret)
{
	struct iovk_macvtap_info m = IOVK_MACVTAP_INFO_INIT;
	_cleanup_free_ char *node = NULL;
	int r;

	if (!s->is_macvtap)
		return set_error(ctx, -EMEDIUMTYPE, "%s: not a macvtap (it is %s)", s->info.name,
				 s->info.kind[0] ? s->info.kind : "a device's own interface");
	snprintf(m.name, sizeof(m.name), "%s", s->info.name);
	m.ifindex = s->info.ifindex;
	m.lower_ifindex = s->info.lower_ifindex;
	m.mode = (enum iovk_macvtap_mode)s->macvtap_mode;
	memcpy(m.mac, s->info.mac, 6);
	r = link_name_of(ctx, sk, m.lower_ifindex, m.lower);
	if (r < 0)
		return r;
	node = dev_path(ctx, "/tap%d", m.ifindex);
	if (!node)
		return -ENOMEM;
	if (strlen(node) >= sizeof(m.tap_node))
		return set_error(ctx, -ENAMETOOLONG, "%s: its node %s is longer than %zu characters", m.name, node,
				 sizeof(m.tap_node) - 1);
	strcpy(m.tap_node, node);
	read_tap_devnum(ctx, &m);
	result_store(ret, &m, sizeof(m));
	return 0;
}

/* The macvtap on lower the kernel named itself: the one of highest ifindex above since (ifindexes only grow). */
static int find_new_macvtap(struct iovk_ctx *ctx, struct nl_sock *sk, int lower, int since, struct link_state *ret)
{
	struct link_state *all = NULL;
	size_t n = 0;
	int r, found = -1;

	r = link_dump(ctx, sk, 0, &all, &n);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		if (all[i].is_macvtap && all[i].info.lower_ifindex == lower && all[i].info.ifindex > since)
			found = (int)i;
	if (found >= 0)
		*ret = all[found];
	free(all);
	return found >= 0 ? 0 : set_error(ctx, -ENODEV, "the macvtap just created on ifindex %d is gone", lower);
}

static int max_ifindex(struct iovk_ctx *ctx, struct nl_sock *sk, int *ret)
{
	struct link_state *all = NULL;
	size_t n = 0;
	int r;

	r = link_dump(ctx, sk, 0, &all, &n);
	if (r < 0)
		return r;
	*ret = 0;
	for (size_t i = 0; i < n; i++)
		if (all[i].info.ifindex > *ret)
			*ret = all[i].info.ifindex;
	free(all);
	return 0;
}

_public_ int iovk_macvtap_create(struct iovk_ctx *ctx, const char *lower, const struct iovk_macvtap_opts *opts,
				 struct iovk_macvtap_info *ret)
{
	struct iovk_macvtap_opts o = IOVK_MACVTAP_OPTS_INIT;
	_cleanup_route_nl_ struct route_nl nl = {};
	_cleanup_rtnl_link_ struct rtnl_link *l = NULL;
	_cleanup_nlmsg_ struct nl_msg *msg = NULL;
	struct link_state low, made;
	char what[3 * IOVK_IFNAMSIZ + 64];
	int r, since = 0;

	assert_return(ctx && lower, -EINVAL);
	clear_error(ctx);
	if (opts) {
		r = opts_valid(ctx, opts, opts->sz, sizeof(o), sizeof(o), "iovk_macvtap_opts", "IOVK_MACVTAP_OPTS_INIT");
		if (r < 0)
			return r;
		o = *opts;
	}
	r = result_valid(ctx, ret, sizeof(*ret), "iovk_macvtap_info");
	if (r < 0)
		return r;
	if (!o.mode)
		o.mode = IOVK_MACVTAP_BRIDGE;
	if (!iovk_macvtap_mode_to_string(o.mode))
		return set_error(ctx, -EINVAL, "%s: macvtap mode %d is none of private, vepa, bridge, passthru", lower,
				 (int)o.mode);
	if (o.name && strlen(o.name) >= IOVK_IFNAMSIZ)
		return set_error(ctx, -EINVAL, "'%s': an interface name is at most %d characters", o.name, IOVK_IFNAMSIZ - 1);
	snprintf(what, sizeof(what), "%s: creating macvtap %s (mode %s)", lower, o.name ?: "(a name the kernel picks)",
		 iovk_macvtap_mode_to_string(o.mode));

	r = link_open_read(ctx, &nl, lower, &low);
	if (r >= 0 && !o.name)
		r = max_ifindex(ctx, nl.sk, &since);
	if (r < 0)
		return r;
	l = rtnl_link_macvtap_alloc();
	if (!l)
		return -ENOMEM;
	rtnl_link_set_link(l, low.info.ifindex);
	rtnl_link_set_name(l, o.name ?: "macvtap%d");
	r = rtnl_link_macvtap_set_mode(l, o.mode);
	if (r >= 0 && o.set_mac) {
		struct nl_addr *addr = nl_addr_build(AF_LLC, o.mac, 6);

		if (!addr)
			return -ENOMEM;
		rtnl_link_set_addr(l, addr);
		nl_addr_put(addr);
	}
	if (r >= 0)
		r = rtnl_link_build_add_request(l, NLM_F_CREATE | NLM_F_EXCL, &msg);
	if (r < 0)
		return set_error(ctx, nle_to_errno(r), "%s: building the netlink request: %s", what, nl_geterror(r));
	r = link_request(ctx, nl.sk, msg, what, -EINVAL,
			 " (a netdev with a passthru macvtap takes no other macvtap, and a passthru macvtap wants its "
			 "netdev alone)");
	if (r < 0)
		return r;
	r = o.name ? link_read(ctx, nl.sk, o.name, &made) : find_new_macvtap(ctx, nl.sk, low.info.ifindex, since, &made);
	if (r < 0)
		return r;
	return ret ? macvtap_info(ctx, nl.sk, &made, ret) : 0;
}

_public_ int iovk_macvtap_get(struct iovk_ctx *ctx, const char *name, struct iovk_macvtap_info *ret)
{
	_cleanup_route_nl_ struct route_nl nl = {};
	struct link_state s;
	int r;

	assert_return(ctx && name && ret, -EINVAL);
	clear_error(ctx);
	r = result_valid(ctx, ret, sizeof(*ret), "iovk_macvtap_info");
	if (r < 0)
		return r;
	r = link_open_read(ctx, &nl, name, &s);
	if (r < 0)
		return r;
	return macvtap_info(ctx, nl.sk, &s, ret);
}
