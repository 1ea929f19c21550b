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

/* ---- netlink -------------------------------------------------------------- */

int vf_nle_to_errno(int nle)
{
	switch (nle < 0 ? -nle : nle) {
	case NLE_NOMEM:
		return -ENOMEM;
	case NLE_AGAIN:
		return -ETIMEDOUT; /* SO_RCVTIMEO expired */
	case NLE_PERM:
		return -EPERM;
	case NLE_NOACCESS:
		return -EACCES;
	case NLE_BAD_SOCK:
		return -EBADF;
	case NLE_MSGSIZE:
		return -EMSGSIZE;
	case NLE_NOADDR:
	case NLE_OBJ_NOTFOUND:
		return -ENODEV;
	case NLE_OPNOTSUPP:
		return -EOPNOTSUPP;
	case NLE_INVAL:
	case NLE_RANGE:
		return -EINVAL;
	default:
		return -EIO;
	}
}

int vf_nl_open(struct iovk_ctx *ctx, struct nl_sock **ret)
{
	_cleanup_nl_socket_ struct nl_sock *sk = nl_socket_alloc();
	struct timeval tv = { .tv_sec = ctx->timeout_ms / 1000, .tv_usec = (ctx->timeout_ms % 1000) * 1000 };
	int r;

	if (!sk)
		return -ENOMEM;
	r = nl_connect(sk, NETLINK_ROUTE);
	if (r < 0)
		return set_error(ctx, vf_nle_to_errno(r), "opening a NETLINK_ROUTE socket: %s", nl_geterror(r));
	/* A PF with many VFs answers with one large message (~350 bytes a
	 * VF): let libnl size its buffer from a peek instead of truncating. */
	nl_socket_enable_msg_peek(sk);
	nl_socket_enable_auto_ack(sk);
	/* Bounds every wait for the kernel: rtnl_lock can be held for long
	 * by a driver in trouble. */
	if (setsockopt(nl_socket_get_fd(sk), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
		r = negative_errno();
		return set_error(ctx, r, "setting a timeout on the netlink socket: %s", strerror(-r));
	}
	*ret = TAKE_PTR(sk);
	return 0;
}

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

static int cb_ack(struct nl_msg *msg, void *arg)
{
	struct nl_answer *a = arg;

	a->done = true;
	return NL_STOP;
}

static int cb_error(struct sockaddr_nl *who, struct nlmsgerr *e, void *arg)
{
	struct nl_answer *a = arg;

	a->error = e->error < 0 ? e->error : -EIO;
	a->done = true;
	return NL_STOP;
}

/*
 * Sends msg and collects the answer until the kernel's ACK or error. Returns
 * 0 with the answer (a->error may hold the kernel's refusal), or -errno when
 * the exchange itself failed (error text set, naming what).
 */
int vf_nl_exchange(struct iovk_ctx *ctx, struct nl_sock *sk, struct nl_msg *msg, const char *what,
		   struct nl_answer *a)
{
	struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);
	int r;

	if (!cb)
		return -ENOMEM;
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, cb_valid, a);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, cb_ack, a);
	nl_cb_err(cb, NL_CB_CUSTOM, cb_error, a);
	r = nl_send_auto(sk, msg);
	if (r < 0) {
		nl_cb_put(cb);
		return set_error(ctx, vf_nle_to_errno(r), "%s: sending the netlink request: %s", what, nl_geterror(r));
	}
	while (!a->done) {
		r = nl_recvmsgs(sk, cb);
		if (a->done)
			break;
		if (r < 0) {
			nl_cb_put(cb);
			if (vf_nle_to_errno(r) == -ETIMEDOUT)
				return set_error(ctx, -ETIMEDOUT, "%s: no answer from the kernel within %u ms", what,
						 ctx->timeout_ms);
			return set_error(ctx, vf_nle_to_errno(r), "%s: receiving the netlink answer: %s", what,
					 nl_geterror(r));
		}
	}
	nl_cb_put(cb);
	return 0;
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

