/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * rtnetlink requests of the VF code: one request, its answer through our own
 * callbacks, so the kernel's errno reaches the caller (libnl's NLE_* codes
 * lose it; see lib/sriov/vf.c's head comment for what libnl covers).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <net/if.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netlink/attr.h>
#include <netlink/errno.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/link/sriov.h>
#include <netlink/socket.h>

#include "vf-internal.h"

/* ---- netlink ----------------------------------------------------------------- */

void vf_answer_done(struct nl_answer *a)
{
	if (a->link)
		rtnl_link_put(a->link);
	free(a->drops);
	*a = (struct nl_answer){};
}

static void link_parsed(struct nl_object *obj, void *arg)
{
	struct nl_answer *a = arg;

	if (a->link)
		return;
	nl_object_get(obj);
	a->link = (struct rtnl_link *)obj;
}

static void parse_drops(struct nl_msg *msg, struct nl_answer *a)
{
	struct nlattr *list = nlmsg_find_attr(nlmsg_hdr(msg), sizeof(struct ifinfomsg), IFLA_VFINFO_LIST);
	struct nlattr *vfi;
	int rem;

	if (!list)
		return;
	nla_for_each_nested(vfi, list, rem) {
		struct nlattr *tb[IFLA_VF_MAX + 1], *st[IFLA_VF_STATS_MAX + 1];
		struct vf_drops *n;

		if (nla_parse_nested(tb, IFLA_VF_MAX, vfi, NULL) < 0 || !tb[IFLA_VF_MAC] || !tb[IFLA_VF_STATS] ||
		    nla_len(tb[IFLA_VF_MAC]) < (int)sizeof(struct ifla_vf_mac))
			continue;
		if (nla_parse_nested(st, IFLA_VF_STATS_MAX, tb[IFLA_VF_STATS], NULL) < 0 ||
		    !st[IFLA_VF_STATS_RX_DROPPED] || !st[IFLA_VF_STATS_TX_DROPPED])
			continue;
		n = realloc(a->drops, (a->n_drops + 1) * sizeof(*n));
		if (!n)
			return; /* drops are extras: without memory, go without */
		a->drops = n;
		a->drops[a->n_drops++] = (struct vf_drops){
			.index = ((struct ifla_vf_mac *)nla_data(tb[IFLA_VF_MAC]))->vf,
			.rx = nla_get_u64(st[IFLA_VF_STATS_RX_DROPPED]),
			.tx = nla_get_u64(st[IFLA_VF_STATS_TX_DROPPED]),
		};
	}
}

static int cb_valid(struct nl_msg *msg, void *arg)
{
	struct nl_answer *a = arg;
	int r;

	if (nlmsg_hdr(msg)->nlmsg_type != RTM_NEWLINK || a->link)
		return NL_OK;
	r = nl_msg_parse(msg, link_parsed, a);
	if (r < 0)
		a->parse_error = r;
	else
		parse_drops(msg, a);
	return NL_OK;
}

/*
 * Sends msg and collects the answer until the kernel's ACK or error. Returns
 * 0 with the answer (a->error may hold the kernel's refusal), or -errno when
 * the exchange itself failed (error text set, naming what).
 */
int vf_nl_exchange(struct iovk_ctx *ctx, struct nl_sock *sk, struct nl_msg *msg, const char *what,
		   struct nl_answer *a)
{
	struct route_nl_answer answer = { .valid = cb_valid, .userdata = a };
	int r;

	r = route_nl_exchange(ctx, sk, msg, what, &answer);
	a->done = answer.done;
	a->error = answer.error;
	return r;
}

const char *vf_errno_hint(int err, unsigned field)
{
	switch (err) {
	case -EOPNOTSUPP:
		return field ? " (the PF driver does not support this setting)" : NULL;
	case -EPERM:
	case -EACCES:
		return " (needs CAP_NET_ADMIN)";
	case -EPROTONOSUPPORT:
		return " (the PF driver does not support this VLAN protocol)";
	case -EINVAL:
		/* igb, ixgbe and i40e refuse any min_tx_rate, and a
		 * max_tx_rate above the link speed or with the link down. */
		return field == (IOVK_VF_MIN_TX_RATE | IOVK_VF_MAX_TX_RATE)
			       ? " (the PF driver does not take these rates: many take no min_tx_rate, and no "
				 "max_tx_rate above the link speed or while the link is down)"
			       : NULL;
	default:
		return NULL;
	}
}

