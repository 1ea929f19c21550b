/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The rtnetlink exchange shared by lib/sriov and lib/link: see netlink.h. */
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <netlink/attr.h>
#include <netlink/errno.h>

#include "netlink.h"

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_CAP_ACK
#define NETLINK_CAP_ACK 10
#endif

int nle_to_errno(int nle)
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

int route_nl_open(struct iovk_ctx *ctx, struct nl_sock **ret)
{
	_cleanup_nl_socket_ struct nl_sock *sk = nl_socket_alloc();
	struct timeval tv = { .tv_sec = ctx->timeout_ms / 1000, .tv_usec = (ctx->timeout_ms % 1000) * 1000 };
	int one = 1, r;

	if (!sk)
		return -ENOMEM;
	r = nl_connect(sk, NETLINK_ROUTE);
	if (r < 0)
		return set_error(ctx, nle_to_errno(r), "opening a NETLINK_ROUTE socket: %s", nl_geterror(r));
	/* A PF with many VFs answers with one large message (~350 bytes a
	 * VF): let libnl size its buffer from a peek instead of truncating. */
	nl_socket_enable_msg_peek(sk);
	nl_socket_enable_auto_ack(sk);
	/* The kernel's words for a refusal (since 4.12; older kernels ignore
	 * the option); and no copy of our request in its errors. */
	(void)setsockopt(nl_socket_get_fd(sk), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	(void)setsockopt(nl_socket_get_fd(sk), SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	if (setsockopt(nl_socket_get_fd(sk), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
		r = negative_errno();
		return set_error(ctx, r, "setting a timeout on the netlink socket: %s", strerror(-r));
	}
	*ret = TAKE_PTR(sk);
	return 0;
}

void route_nl_close_kept(struct iovk_ctx *ctx)
{
	/* a child closes its copy of the parent's descriptor: the parent's socket stays */
	if (ctx->nl)
		nl_socket_free(ctx->nl);
	ctx->nl = NULL;
	ctx->nl_lent = ctx->nl_broken = false;
}

void route_nl_retire_kept(struct iovk_ctx *ctx)
{
	if (ctx->nl_lent)
		ctx->nl_broken = true;
	else
		route_nl_close_kept(ctx);
}

/*
 * Whatever waits on the kept socket is dropped before it is lent: an
 * answer left by a call cut short is closed with the socket
 * (route_nl_put()), but a privileged process in the namespace can unicast
 * to any port id, and a stray message would otherwise be read as the next
 * call's answer (libnl's sequence check would fail that call). A
 * zero-length read consumes a datagram whole; one system call when the
 * queue is empty.
 */
static void drain(struct nl_sock *sk)
{
	while (recv(nl_socket_get_fd(sk), NULL, 0, MSG_DONTWAIT | MSG_TRUNC) >= 0)
		;
}

int route_nl_get(struct iovk_ctx *ctx, struct route_nl *ret)
{
	int r;

	*ret = (struct route_nl){ .ctx = ctx };
	if (!ctx->keep_nl || ctx->nl_lent)
		return route_nl_open(ctx, &ret->sk);
	if (ctx->nl && ctx->nl_pid != getpid())
		route_nl_close_kept(ctx);
	if (!ctx->nl) {
		r = route_nl_open(ctx, &ctx->nl);
		if (r < 0)
			return r;
		ctx->nl_pid = getpid();
	} else
		drain(ctx->nl);
	ctx->nl_lent = true;
	*ret = (struct route_nl){ .ctx = ctx, .sk = ctx->nl, .kept = true };
	return 0;
}

void route_nl_put(struct route_nl *nl)
{
	if (nl->kept) {
		nl->ctx->nl_lent = false;
		/* what a failed exchange left queued is not the next call's answer;
		 * or the context stopped keeping it, or changed its timeout, meanwhile */
		if (nl->ctx->nl_broken)
			route_nl_close_kept(nl->ctx);
	} else if (nl->sk)
		nl_socket_free(nl->sk);
	*nl = (struct route_nl){};
}

static int cb_ack(struct nl_msg *msg, void *arg)
{
	struct route_nl_answer *a = arg;

	a->done = true;
	return NL_STOP;
}

/*
 * libnl hands the error callback the nlmsgerr inside the message: the
 * header is right before it. With NETLINK_CAP_ACK the request is not
 * copied back, so the extended ACK's attributes follow the nlmsgerr and
 * the request's header only (NLM_F_CAPPED).
 */
static void read_ext_ack(const struct nlmsgerr *e, char *buf, size_t size)
{
	const struct nlmsghdr *h = (const struct nlmsghdr *)((const char *)e - NLMSG_HDRLEN);
	size_t off = NLMSG_HDRLEN + sizeof(*e);
	struct nlattr *tb[NLMSGERR_ATTR_MAX + 1];

	buf[0] = 0;
	if (!(h->nlmsg_flags & NLM_F_ACK_TLVS))
		return;
	if (!(h->nlmsg_flags & NLM_F_CAPPED))
		off += NLMSG_ALIGN(e->msg.nlmsg_len - NLMSG_HDRLEN);
	if (h->nlmsg_len <= off)
		return;
	if (nla_parse(tb, NLMSGERR_ATTR_MAX, (struct nlattr *)((char *)h + off), (int)(h->nlmsg_len - off), NULL) < 0 ||
	    !tb[NLMSGERR_ATTR_MSG])
		return;
	snprintf(buf, size, "%.*s", nla_len(tb[NLMSGERR_ATTR_MSG]), (const char *)nla_data(tb[NLMSGERR_ATTR_MSG]));
	/* the attribute counts its NUL */
	buf[strcspn(buf, "\n")] = 0;
}

static int cb_error(struct sockaddr_nl *who, struct nlmsgerr *e, void *arg)
{
	struct route_nl_answer *a = arg;

	a->error = e->error < 0 ? e->error : -EIO;
	read_ext_ack(e, a->reason, sizeof(a->reason));
	a->done = true;
	return NL_STOP;
}

static int cb_valid(struct nl_msg *msg, void *arg)
{
	struct route_nl_answer *a = arg;

	return a->valid ? a->valid(msg, a->userdata) : NL_OK;
}

int route_nl_exchange(struct iovk_ctx *ctx, struct nl_sock *sk, struct nl_msg *msg, const char *what,
		      struct route_nl_answer *a)
{
	struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);
	int r;

	if (!cb)
		return -ENOMEM;
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, cb_valid, a);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, cb_ack, a);
	nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, cb_ack, a);
	nl_cb_err(cb, NL_CB_CUSTOM, cb_error, a);
	r = nl_send_auto(sk, msg);
	if (r < 0) {
		ctx->nl_broken = ctx->nl_broken || sk == ctx->nl;
		nl_cb_put(cb);
		return set_error(ctx, nle_to_errno(r), "%s: sending the netlink request: %s", what, nl_geterror(r));
	}
	while (!a->done) {
		r = nl_recvmsgs(sk, cb);
		if (a->done)
			break;
		if (r < 0) {
			nl_cb_put(cb);
			ctx->nl_broken = ctx->nl_broken || sk == ctx->nl;
			if (nle_to_errno(r) == -ETIMEDOUT)
				return set_error(ctx, -ETIMEDOUT, "%s: no answer from the kernel within %u ms", what,
						 ctx->timeout_ms);
			return set_error(ctx, nle_to_errno(r), "%s: receiving the netlink answer: %s", what,
					 nl_geterror(r));
		}
	}
	nl_cb_put(cb);
	return 0;
}
