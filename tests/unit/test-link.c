// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * lib/link's reading of what libnl 3.7 cannot read (a bond's IFLA_INFO_DATA,
 * a bond slave's IFLA_INFO_SLAVE_DATA), on attributes built here as the
 * kernel lays them out; the macvtap mode words; and the checks the public
 * calls make before they send anything. The calls themselves meet the
 * kernel in tests/host/run-tests (macvtap, links) and the VM tier (bonds);
 * here only reads of lo, for the socket a context keeps.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/if.h>

#include <iovkit/iovkit.h>

#include "lib/link/link-internal.h"

/* An IFLA_LINKINFO nest built by fill(), parsed into s. */
static int parse(void (*fill)(struct nl_msg *msg), struct link_state *s)
{
	struct nl_msg *msg = nlmsg_alloc();
	struct nlattr *info;
	int r;

	cr_assert_not_null(msg);
	info = nla_nest_start(msg, IFLA_LINKINFO);
	fill(msg);
	nla_nest_end(msg, info);
	*s = (struct link_state){ .info = IOVK_LINK_INFO_INIT };
	r = link_parse_linkinfo(info, s);
	nlmsg_free(msg);
	return r;
}

static void fill_bond(struct nl_msg *msg)
{
	struct nlattr *data, *targets;

	nla_put_string(msg, IFLA_INFO_KIND, "bond");
	data = nla_nest_start(msg, IFLA_INFO_DATA);
	nla_put_u8(msg, IFLA_BOND_MODE, 1);
	nla_put_u32(msg, IFLA_BOND_ACTIVE_SLAVE, 7);
	nla_put_u32(msg, IFLA_BOND_MIIMON, 100);
	nla_put_u32(msg, IFLA_BOND_UPDELAY, 200);
	nla_put_u32(msg, IFLA_BOND_ARP_INTERVAL, 0);
	nla_put_u8(msg, IFLA_BOND_FAIL_OVER_MAC, 1);
	nla_put_u8(msg, IFLA_BOND_NUM_PEER_NOTIF, 3);
	targets = nla_nest_start(msg, IFLA_BOND_ARP_IP_TARGET);
	nla_put_u32(msg, 0, 0x0100000a);
	nla_put_u32(msg, 1, 0x0200000a);
	nla_nest_end(msg, targets);
	nla_nest_end(msg, data);
}

Test(link, bond_data)
{
	struct link_state s;

	cr_assert_eq(parse(fill_bond, &s), 0);
	cr_assert_str_eq(s.info.kind, "bond");
	cr_assert_str_eq(s.info.slave_kind, "");
	cr_assert(s.bond.present && !s.slave.present);
	cr_assert_eq(s.bond.mode, 1);
	cr_assert_eq(s.bond.active_slave, 7);
	cr_assert_eq(s.bond.miimon, 100);
	cr_assert_eq(s.bond.updelay, 200);
	cr_assert_eq(s.bond.fail_over_mac, 1);
	cr_assert_eq(s.bond.num_peer_notif, 3);
	cr_assert_eq(s.bond.n_arp_targets, 2);
	cr_assert_eq(s.bond.arp_targets[1], 0x0200000a);
}

static void fill_slave(struct nl_msg *msg)
{
	static const uint8_t mac[6] = { 2, 0, 0, 0, 0, 0x42 };
	struct nlattr *data;

	nla_put_string(msg, IFLA_INFO_KIND, "veth");
	nla_put_string(msg, IFLA_INFO_SLAVE_KIND, "bond");
	data = nla_nest_start(msg, IFLA_INFO_SLAVE_DATA);
	nla_put_u8(msg, IFLA_BOND_SLAVE_STATE, 1);
	nla_put_u8(msg, IFLA_BOND_SLAVE_MII_STATUS, 0);
	nla_put_u32(msg, IFLA_BOND_SLAVE_LINK_FAILURE_COUNT, 3);
	nla_put(msg, IFLA_BOND_SLAVE_PERM_HWADDR, 6, mac);
	nla_nest_end(msg, data);
}

Test(link, bond_slave_data)
{
	struct link_state s;

	cr_assert_eq(parse(fill_slave, &s), 0);
	cr_assert_str_eq(s.info.kind, "veth");
	cr_assert_str_eq(s.info.slave_kind, "bond");
	cr_assert(s.slave.present && !s.bond.present);
	cr_assert_eq(s.slave.state, 1); /* backup */
	cr_assert_eq(s.slave.mii_status, 0);
	cr_assert_eq(s.slave.link_failure_count, 3);
	cr_assert_eq(s.slave.perm_mac[5], 0x42);
}

/* a bridge port's slave data is not read as a bond slave's */
static void fill_bridge_port(struct nl_msg *msg)
{
	struct nlattr *data;

	nla_put_string(msg, IFLA_INFO_SLAVE_KIND, "bridge");
	data = nla_nest_start(msg, IFLA_INFO_SLAVE_DATA);
	nla_put_u8(msg, 1, 3);
	nla_nest_end(msg, data);
}

Test(link, other_slave_data_ignored)
{
	struct link_state s;

	cr_assert_eq(parse(fill_bridge_port, &s), 0);
	cr_assert(!s.slave.present && !s.bond.present);
	cr_assert_str_eq(s.info.slave_kind, "bridge");
}

static void fill_slave_without_state(struct nl_msg *msg)
{
	struct nlattr *data;

	nla_put_string(msg, IFLA_INFO_SLAVE_KIND, "bond");
	data = nla_nest_start(msg, IFLA_INFO_SLAVE_DATA);
	nla_put_u32(msg, IFLA_BOND_SLAVE_LINK_FAILURE_COUNT, 3);
	nla_nest_end(msg, data);
}

static void fill_long_kind(struct nl_msg *msg)
{
	nla_put_string(msg, IFLA_INFO_KIND, "a-kind-of-twenty-chars");
}

static void fill_short_arp_target(struct nl_msg *msg)
{
	struct nlattr *data, *targets;

	nla_put_string(msg, IFLA_INFO_KIND, "bond");
	data = nla_nest_start(msg, IFLA_INFO_DATA);
	targets = nla_nest_start(msg, IFLA_BOND_ARP_IP_TARGET);
	nla_put_u16(msg, 0, 10);
	nla_nest_end(msg, targets);
	nla_nest_end(msg, data);
}

/* "bond" without its NUL: not read as "bon" */
static void fill_unterminated_kind(struct nl_msg *msg)
{
	nla_put(msg, IFLA_INFO_KIND, 4, "bond");
}

Test(link, malformed_linkinfo_refused)
{
	struct link_state s;

	cr_assert_eq(parse(fill_unterminated_kind, &s), -EBADMSG);

	cr_assert_eq(parse(fill_slave_without_state, &s), -EBADMSG);
	cr_assert_eq(parse(fill_long_kind, &s), -EBADMSG);
	cr_assert_eq(parse(fill_short_arp_target, &s), -EBADMSG);
}

Test(link, macvtap_mode_words)
{
	static const char *const words[] = { "private", "vepa", "bridge", "passthru" };
	enum iovk_macvtap_mode m;

	for (unsigned i = 0; i < 4; i++) {
		cr_assert_eq(iovk_macvtap_mode_from_string(words[i], &m), 0);
		cr_assert_eq(m, 1u << i); /* the kernel's MACVLAN_MODE_* bits */
		cr_assert_str_eq(iovk_macvtap_mode_to_string(m), words[i]);
	}
	cr_assert_eq(iovk_macvtap_mode_from_string("source", &m), -EINVAL);
	cr_assert_eq(iovk_macvtap_mode_from_string("Bridge", &m), -EINVAL);
	cr_assert_null(iovk_macvtap_mode_to_string(3));
	cr_assert_null(iovk_macvtap_mode_to_string(16));
}

/* An RTM_NEWLINK as rtnl_fill_ifinfo() lays one out (what matters of it), for link_parse_msg(). */
static struct nl_msg *newlink(const char *name, bool with_linkinfo)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = 9, .ifi_flags = IFF_UP | IFF_LOWER_UP };
	static const uint8_t mac[6] = { 0x02, 0, 0, 0, 0x85, 1 };
	struct nl_msg *msg = nlmsg_alloc_simple(RTM_NEWLINK, 0);
	struct nlattr *info, *data;

	cr_assert_not_null(msg);
	cr_assert_eq(nlmsg_append(msg, &ifi, sizeof(ifi), NLMSG_ALIGNTO), 0);
	if (name)
		nla_put_string(msg, IFLA_IFNAME, name);
	nla_put_u32(msg, IFLA_MTU, 9000);
	nla_put_u32(msg, IFLA_LINK, 4);
	nla_put_u32(msg, IFLA_MASTER, 7);
	nla_put_u8(msg, IFLA_OPERSTATE, 6);
	nla_put(msg, IFLA_ADDRESS, 6, mac);
	nla_put_u32(msg, IFLA_MAX + 5, 1); /* an attribute newer than these headers: skipped */
	if (with_linkinfo) {
		info = nla_nest_start(msg, IFLA_LINKINFO);
		nla_put_string(msg, IFLA_INFO_KIND, "macvtap");
		data = nla_nest_start(msg, IFLA_INFO_DATA);
		nla_put_u32(msg, IFLA_MACVLAN_MODE, IOVK_MACVTAP_PASSTHRU);
		nla_nest_end(msg, data);
		nla_nest_end(msg, info);
	}
	return msg;
}

Test(link, newlink_message_read_raw)
{
	struct nl_msg *msg = newlink("iovtap1", true);
	struct link_state s;

	cr_assert_eq(link_parse_msg(msg, &s), 0);
	cr_assert_str_eq(s.info.name, "iovtap1");
	cr_assert_eq(s.info.ifindex, 9);
	cr_assert_eq(s.info.mtu, 9000);
	cr_assert_eq(s.info.lower_ifindex, 4);
	cr_assert_eq(s.info.master_ifindex, 7);
	cr_assert_eq(s.info.operstate, 6);
	cr_assert(s.info.up && s.info.carrier);
	cr_assert_eq(s.info.mac[4], 0x85);
	cr_assert(s.is_macvtap);
	cr_assert_eq(s.macvtap_mode, IOVK_MACVTAP_PASSTHRU);
	cr_assert_str_eq(s.info.kind, "macvtap");
	nlmsg_free(msg);

	msg = newlink("eth0", false);
	cr_assert_eq(link_parse_msg(msg, &s), 0);
	cr_assert(!s.is_macvtap && !s.bond.present && !s.slave.present && s.info.kind[0] == 0);
	nlmsg_free(msg);

	/* no name, or one longer than IFNAMSIZ: not a link this code can name */
	msg = newlink(NULL, true);
	cr_assert_eq(link_parse_msg(msg, &s), -EBADMSG);
	nlmsg_free(msg);
	msg = newlink("a-name-of-20-chars-x", true);
	cr_assert_eq(link_parse_msg(msg, &s), -EBADMSG);
	nlmsg_free(msg);
}

/* ---- the context's kept NETLINK_ROUTE socket (iovk_ctx_set_keep_netlink()) ---------- */

/* The inode of the one socket descriptor in /proc/self/fd that is not in before[] (0: none). */
static unsigned long new_socket(const unsigned long *before, size_t n_before, size_t *ret_n)
{
	unsigned long found = 0;
	size_t n = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	cr_assert_not_null(d);
	while ((e = readdir(d))) {
		char path[64], target[64];
		unsigned long ino;
		ssize_t k;
		bool old = false;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		k = readlink(path, target, sizeof(target) - 1);
		if (k <= 0)
			continue;
		target[k] = 0;
		if (sscanf(target, "socket:[%lu]", &ino) != 1)
			continue;
		n++;
		for (size_t i = 0; i < n_before; i++)
			old = old || before[i] == ino;
		if (!old) {
			cr_assert_eq(found, 0, "two new sockets");
			found = ino;
		}
	}
	closedir(d);
	if (ret_n)
		*ret_n = n;
	return found;
}

/* Every socket open now into ino[] (at most max); returns how many. */
static size_t sockets_now(unsigned long *ino, size_t max)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	size_t n = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d))) {
		char path[64], target[64];
		ssize_t k;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		k = readlink(path, target, sizeof(target) - 1);
		if (k <= 0)
			continue;
		target[k] = 0;
		if (n < max && sscanf(target, "socket:[%lu]", &ino[n]) == 1)
			n++;
	}
	closedir(d);
	return n;
}

static struct iovk_ctx *ctx_reading_lo(void)
{
	struct iovk_link_info l = IOVK_LINK_INFO_INIT;
	struct iovk_ctx *ctx = NULL;
	int r;

	cr_assert_eq(iovk_ctx_new(&ctx), 0);
	r = iovk_link_get(ctx, "lo", &l);
	if (r == -EPERM || r == -EACCES || r == -EAFNOSUPPORT)
		cr_skip_test("no NETLINK_ROUTE here: %s", iovk_ctx_get_error(ctx));
	cr_assert_eq(r, 0, "%s", iovk_ctx_get_error(ctx));
	cr_assert_str_eq(l.name, "lo");
	return ctx;
}

Test(link, kept_socket_serves_every_call_until_let_go)
{
	struct iovk_link_info l = IOVK_LINK_INFO_INIT;
	struct iovk_ctx *ctx = ctx_reading_lo();
	unsigned long before[256], kept;
	size_t n0 = sockets_now(before, 256), n;

	/* by default a call leaves no socket behind */
	cr_assert_eq(iovk_link_get(ctx, "lo", &l), 0);
	cr_assert_eq(new_socket(before, n0, &n), 0);
	cr_assert_eq(n, n0);

	iovk_ctx_set_keep_netlink(ctx, true);
	cr_assert_eq(iovk_link_get(ctx, "lo", &l), 0);
	kept = new_socket(before, n0, &n);
	cr_assert_neq(kept, 0, "the kept socket is open after the call");
	cr_assert_eq(n, n0 + 1);
	/* the next calls use it, and a kernel's refusal (no such link) keeps it */
	cr_assert_eq(iovk_link_get(ctx, "lo", &l), 0);
	cr_assert_eq(iovk_link_get(ctx, "iovk-no-such0", &l), -ENODEV);
	cr_assert_eq(new_socket(before, n0, &n), kept);
	cr_assert_eq(n, n0 + 1);
	cr_assert_eq(iovk_link_get(ctx, "lo", &l), 0);
	cr_assert_str_eq(l.name, "lo");

	/* a new timeout needs a new socket (SO_RCVTIMEO): the next call opens it */
	cr_assert_eq(iovk_ctx_set_timeout_ms(ctx, 5000), 0);
	cr_assert_eq(new_socket(before, n0, &n), 0);
	cr_assert_eq(iovk_link_get(ctx, "lo", &l), 0);
	kept = new_socket(before, n0, &n);
	cr_assert_neq(kept, 0);

	iovk_ctx_set_keep_netlink(ctx, false);
	cr_assert_eq(new_socket(before, n0, &n), 0);
	cr_assert_eq(n, n0);
	iovk_ctx_set_keep_netlink(ctx, true);
	cr_assert_eq(iovk_link_get(ctx, "lo", &l), 0);
	cr_assert_neq(new_socket(before, n0, NULL), 0);
	/* the last unref closes it */
	iovk_ctx_unref(ctx);
	cr_assert_eq(new_socket(before, n0, &n), 0);
	cr_assert_eq(n, n0);
}

Test(link, kept_socket_is_not_shared_with_a_child)
{
	struct iovk_link_info l = IOVK_LINK_INFO_INIT;
	struct iovk_ctx *ctx = ctx_reading_lo();
	unsigned long before[256], kept;
	size_t n0 = sockets_now(before, 256);
	int status;
	pid_t pid;

	iovk_ctx_set_keep_netlink(ctx, true);
	cr_assert_eq(iovk_link_get(ctx, "lo", &l), 0);
	kept = new_socket(before, n0, NULL);
	cr_assert_neq(kept, 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		unsigned long mine[256];
		size_t n;
		bool parents = false, own = false;

		/* its own socket for its calls, and its copy of the parent's closed
		 * (plain checks: no criterion asserts in a child of the test) */
		if (iovk_link_get(ctx, "lo", &l) < 0 || strcmp(l.name, "lo") != 0)
			_exit(1);
		n = sockets_now(mine, 256);
		for (size_t i = 0; i < n; i++) {
			bool old = false;

			for (size_t j = 0; j < n0; j++)
				old = old || mine[i] == before[j];
			parents = parents || mine[i] == kept;
			own = own || (!old && mine[i] != kept);
		}
		_exit(parents ? 2 : own ? 0 : 3);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status));
	cr_assert_eq(WEXITSTATUS(status), 0, "child: 1 its call failed, 2 it still holds the parent's socket, 3 it kept none of its own");
	/* the parent's socket is its own still */
	cr_assert_eq(iovk_link_get(ctx, "lo", &l), 0);
	cr_assert_eq(new_socket(before, n0, NULL), kept);
	iovk_ctx_unref(ctx);
}
