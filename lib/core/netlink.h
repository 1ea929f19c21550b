/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Private to lib/: the rtnetlink exchange every module that speaks to the
 * kernel's links shares (lib/sriov's VF settings, lib/link's macvtap, bond
 * and link calls). libnl-route builds and parses the messages; the exchange
 * runs through our own callbacks, because libnl's nl_wait_for_ack() and
 * rtnl_link_add()/change() turn the kernel's errno into an NLE_* code (EBUSY,
 * EADDRNOTAVAIL and ENODEV all become NLE_FAILURE or worse) and drop the
 * extended ACK's text ("Device can not be enslaved while up"), which is the
 * best reason there is to show a user.
 */
#pragma once

#include <stdbool.h>

#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/socket.h>

#include "../internal.h"

static inline void nl_socket_freep(struct nl_sock **sk)
{
	if (*sk)
		nl_socket_free(*sk);
}
#define _cleanup_nl_socket_ _cleanup_(nl_socket_freep)

static inline void nlmsg_freep(struct nl_msg **m)
{
	if (*m)
		nlmsg_free(*m);
}
#define _cleanup_nlmsg_ _cleanup_(nlmsg_freep)

static inline void rtnl_link_putp(struct rtnl_link **l)
{
	if (*l)
		rtnl_link_put(*l);
}
#define _cleanup_rtnl_link_ _cleanup_(rtnl_link_putp)

/* A libnl NLE_* code as the nearest -errno. */
int nle_to_errno(int nle);

/*
 * A NETLINK_ROUTE socket with auto-ACK, message peeking (large answers are
 * not truncated), extended ACKs asked for and every receive bounded by the
 * context's timeout (rtnl_lock can be held long by a driver in trouble).
 */
int route_nl_open(struct iovk_ctx *ctx, struct nl_sock **ret);

/* One call's socket: sk, and whether it is the context's kept one (given back, not closed). */
struct route_nl {
	struct iovk_ctx *ctx;
	struct nl_sock *sk;
	bool kept;
};

/*
 * The socket for one call into *ret: the context's kept socket when it
 * keeps one (iovk_ctx_set_keep_netlink(); opened at first use, anything
 * queued on it since dropped), else a new one as route_nl_open() makes. A
 * call that holds the kept socket already, and a child after fork(), get a
 * new one. Give it back with route_nl_put() (_cleanup_route_nl_).
 */
int route_nl_get(struct iovk_ctx *ctx, struct route_nl *ret);
/* Gives a socket back: a kept one stays open unless an exchange on it failed; any other is closed. */
void route_nl_put(struct route_nl *nl);
#define _cleanup_route_nl_ _cleanup_(route_nl_put)
/* Closes the context's kept socket, if any (the next call opens another). */
void route_nl_close_kept(struct iovk_ctx *ctx);
/* The same, or when a call holds it now, once that call gives it back. */
void route_nl_retire_kept(struct iovk_ctx *ctx);

/* What came back for one request. */
struct route_nl_answer {
	/* Called for each reply message (RTM_NEWLINK of a GET, each part of a dump); NULL: none wanted. */
	int (*valid)(struct nl_msg *msg, void *userdata);
	void *userdata;
	bool done;        /* the ACK, the end of the dump or an error arrived */
	int error;        /* the kernel's -errno, 0 */
	char reason[256]; /* the kernel's extended ACK text, "" when it gave none */
};

/*
 * Sends msg and reads the answer until the kernel's ACK, NLMSG_DONE or
 * error. Returns 0 with the answer in a (a->error holds the kernel's
 * refusal, a->reason its words), or -errno when the exchange itself failed
 * (error text set, naming what).
 */
int route_nl_exchange(struct iovk_ctx *ctx, struct nl_sock *sk, struct nl_msg *msg, const char *what,
		      struct route_nl_answer *a);
