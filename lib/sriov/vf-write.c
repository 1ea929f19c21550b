/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * iovk_vf_set(): VF settings written through the PF's rtnetlink, checked
 * and read back (lib/sriov/vf.c's head comment has what libnl covers and the
 * kernel's order of applying them).
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

/* ---- writing ---------------------------------------------------------------- */

/*
 * The value of vf_vlan_proto that makes this libnl put `proto` on the wire
 * in network order (see the top of this file). Learnt once by building a
 * request and looking at the bytes libnl wrote.
 */
static uint16_t vlan_proto_for_libnl(uint16_t proto)
{
	static int swaps = -1; /* -1 unknown, 0 libnl converts, 1 we must */
	int learnt = 1;

	if (proto == IOVK_VF_VLAN_PROTO_8021Q)
		return proto; /* libnl sends that one as IFLA_VF_VLAN, which has no proto */
	if (swaps < 0) {
		struct rtnl_link *orig = rtnl_link_alloc(), *changes = rtnl_link_alloc();
		struct rtnl_link_vf *vf = rtnl_link_vf_alloc();
		nl_vf_vlans_t *vlans = NULL;
		struct nl_msg *msg = NULL;

		if (orig && changes && vf && rtnl_link_vf_vlan_alloc(&vlans, 1) >= 0) {
			rtnl_link_set_ifindex(orig, 1);
			rtnl_link_vf_set_index(vf, 0);
			vlans->vlans[0].vf_vlan = 1;
			vlans->vlans[0].vf_vlan_proto = IOVK_VF_VLAN_PROTO_8021AD;
			rtnl_link_vf_set_vlans(vf, vlans);
			rtnl_link_vf_vlan_put(vlans);
			if (rtnl_link_vf_add(changes, vf) >= 0 &&
			    rtnl_link_build_change_request(orig, changes, 0, &msg) >= 0) {
				struct nlattr *l = nlmsg_find_attr(nlmsg_hdr(msg), sizeof(struct ifinfomsg),
								   IFLA_VFINFO_LIST);
				struct nlattr *i = l ? nla_find(nla_data(l), nla_len(l), IFLA_VF_INFO) : NULL;
				struct nlattr *v = i ? nla_find(nla_data(i), nla_len(i), IFLA_VF_VLAN_LIST) : NULL;
				struct nlattr *e = v ? nla_find(nla_data(v), nla_len(v), IFLA_VF_VLAN_INFO) : NULL;

				if (e && nla_len(e) >= (int)sizeof(struct ifla_vf_vlan_info))
					learnt = ((struct ifla_vf_vlan_info *)nla_data(e))->vlan_proto !=
						 htons(IOVK_VF_VLAN_PROTO_8021AD);
				nlmsg_free(msg);
			}
		}
		if (vf)
			rtnl_link_vf_put(vf);
		if (changes)
			rtnl_link_put(changes);
		if (orig)
			rtnl_link_put(orig);
		swaps = learnt;
	}
	return swaps ? htons(proto) : proto;
}

/* Puts one field (or the min/max rate pair) of s into a change request
 * for VF index and sends it. Returns 0, the kernel's -errno (no error text:
 * the caller words it), or -errno with the text set when netlink failed. */
static int write_field(struct iovk_ctx *ctx, struct nl_sock *sk, struct rtnl_link *orig, const struct pf_ref *ref,
		       unsigned index, unsigned field, const struct iovk_vf_settings *s, bool *ret_kernel_refused)
{
	_cleanup_rtnl_link_ struct rtnl_link *changes = rtnl_link_alloc();
	_cleanup_nlmsg_ struct nl_msg *msg = NULL;
	struct rtnl_link_vf *vf = rtnl_link_vf_alloc();
	struct nl_answer a = {};
	char what[sizeof(ref->label) + 128], desc[96];
	int r;

	*ret_kernel_refused = false;
	if (!changes || !vf) {
		if (vf)
			rtnl_link_vf_put(vf);
		return -ENOMEM;
	}
	rtnl_link_vf_set_index(vf, index);
	switch (field) {
	case IOVK_VF_MAC: {
		struct nl_addr *addr = nl_addr_build(AF_LLC, s->mac, 6);

		if (!addr) {
			rtnl_link_vf_put(vf);
			return -ENOMEM;
		}
		rtnl_link_vf_set_addr(vf, addr);
		nl_addr_put(addr);
		break;
	}
	case IOVK_VF_VLAN: {
		nl_vf_vlans_t *vlans = NULL;

		r = rtnl_link_vf_vlan_alloc(&vlans, 1);
		if (r < 0) {
			rtnl_link_vf_put(vf);
			return nle_to_errno(r);
		}
		vlans->vlans[0].vf_vlan = s->vlan;
		vlans->vlans[0].vf_vlan_qos = s->qos;
		vlans->vlans[0].vf_vlan_proto = vlan_proto_for_libnl(vf_vlan_proto_or_default(s->vlan_proto));
		rtnl_link_vf_set_vlans(vf, vlans);
		rtnl_link_vf_vlan_put(vlans);
		break;
	}
	case IOVK_VF_MIN_TX_RATE | IOVK_VF_MAX_TX_RATE: {
		/* The new API (IFLA_VF_RATE) sets both at once. */
		struct nl_vf_rate rate = {
			.api = RTNL_LINK_VF_RATE_API_NEW,
			.min_tx_rate = s->min_tx_rate,
			.max_tx_rate = s->max_tx_rate,
		};

		rtnl_link_vf_set_rate(vf, &rate);
		break;
	}
	case IOVK_VF_SPOOFCHK:
		rtnl_link_vf_set_spoofchk(vf, s->spoofchk);
		break;
	case IOVK_VF_LINK_STATE:
		rtnl_link_vf_set_linkstate(vf, (uint32_t)s->link_state);
		break;
	case IOVK_VF_TRUST:
		rtnl_link_vf_set_trust(vf, s->trust);
		break;
	default:
		rtnl_link_vf_put(vf);
		return -EINVAL;
	}
	r = rtnl_link_vf_add(changes, vf);
	rtnl_link_vf_put(vf);
	if (r < 0)
		return nle_to_errno(r);
	vf_describe_settings(field, s, desc, sizeof(desc));
	snprintf(what, sizeof(what), "%s VF %u: setting %s", ref->label, index, desc);
	r = rtnl_link_build_change_request(orig, changes, 0, &msg);
	if (r < 0)
		return set_error(ctx, nle_to_errno(r), "%s: building the netlink request: %s", what, nl_geterror(r));
	r = vf_nl_exchange(ctx, sk, msg, what, &a);
	if (r >= 0 && a.error < 0) {
		r = a.error;
		*ret_kernel_refused = true;
	}
	vf_answer_done(&a);
	if (r >= 0)
		log_info(ctx, "%s", what);
	return r;
}

/*
 * The groups written in one request each: the kernel's order, except that
 * the MAC goes last. A MAC write is the one that cannot be undone as it
 * was: igb, ixgbe, i40e and ice report the MAC a VF chose for itself in the
 * same place as an admin MAC, and writing that MAC back makes it an admin
 * MAC, which an untrusted VF then can no longer change (shown on igb by
 * tests/vm/cases/62-vf-igb.sh). Last, it is written only when every other
 * setting was accepted, so a refusal never has a MAC to put back.
 */
static const unsigned write_groups[] = {
	IOVK_VF_VLAN,
	IOVK_VF_MIN_TX_RATE | IOVK_VF_MAX_TX_RATE,
	IOVK_VF_SPOOFCHK,
	IOVK_VF_LINK_STATE,
	IOVK_VF_TRUST,
	IOVK_VF_MAC,
};

/*
 * Whether writing a MAC that the PF driver already reports can still change
 * something, and does no harm. igb and ixgbe keep one MAC per VF
 * (vf_mac_addresses), which the VF driver's own "set MAC" mailbox request
 * overwrites while no admin MAC is set, and report it as the VF's MAC; only
 * a write through the PF sets their pf_set_mac flag, which makes an
 * untrusted VF's own change fail and keeps the MAC over a function reset
 * (igb_vf_reset_event() clears a MAC the VF chose), and both take the same
 * MAC again without disturbing the VF. i40e and ice report a VF's own MAC
 * too, but i40e resets the VF on every MAC write and ice ignores one that
 * reads the same, so neither is listed.
 */
static bool mac_rewrite_makes_it_admin(const char *pf_driver)
{
	return strcmp(pf_driver, "igb") == 0 || strcmp(pf_driver, "ixgbe") == 0;
}

/* Settings that put back what info shows. */
static void append(char *buf, size_t size, const char *fmt, ...) _printf_(3, 4);
static void append(char *buf, size_t size, const char *fmt, ...)
{
	size_t len = strlen(buf);
	va_list ap;

	if (len + 1 >= size)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + len, size - len, fmt, ap);
	va_end(ap);
}

/* Reads the PF, checks the VF index and that the VF reports its settings. */
static int read_vf(struct iovk_ctx *ctx, struct nl_sock *sk, struct pf_ref *ref, unsigned index,
		   struct iovk_vf_list **ret_list, struct rtnl_link **ret_link, const struct iovk_vf_info **ret_info)
{
	struct iovk_vf_list *list = NULL;
	struct rtnl_link *link = NULL;
	const struct iovk_vf_info *info = NULL;
	int r;

	r = vf_read_vfs(ctx, sk, ref, &list, ret_link ? &link : NULL);
	if (r < 0)
		return r;
	if (list->numvfs < 0)
		r = set_error(ctx, -ENOENT, "%s: not an SR-IOV PF: the kernel reports no VFs for this interface",
			      ref->label);
	else if (index >= (unsigned)list->numvfs) {
		if (list->numvfs == 0)
			r = set_error(ctx, -ERANGE, "%s: VF %u does not exist: the PF has no VFs enabled", ref->label,
				      index);
		else
			r = set_error(ctx, -ERANGE, "%s: VF %u does not exist: the PF has %d VFs (0 to %d)",
				      ref->label, index, list->numvfs, list->numvfs - 1);
	} else if (!(info = iovk_vf_list_find(list, index)))
		r = set_error(ctx, -EOPNOTSUPP,
			      "%s: the PF driver reports no settings for VF %u, so nothing written could be "
			      "checked; not writing", ref->label, index);
	if (r < 0) {
		if (link)
			rtnl_link_put(link);
		iovk_vf_list_unref(list);
		return r;
	}
	*ret_list = list;
	if (ret_link)
		*ret_link = link;
	*ret_info = info;
	return 0;
}

_public_ int iovk_vf_set(struct iovk_ctx *ctx, const char *pf, unsigned index, const struct iovk_vf_settings *settings,
			 struct iovk_vf_set_result *result)
{
	_cleanup_route_nl_ struct route_nl nl = {};
	_cleanup_close_ int lock = -1;
	struct iovk_vf_set_result res = IOVK_VF_SET_RESULT_INIT;
	struct iovk_vf_list *before = NULL, *after = NULL;
	struct rtnl_link *link = NULL;
	const struct iovk_vf_info *cur, *now;
	struct iovk_vf_settings want, old;
	struct pf_ref ref = {};
	char msg[sizeof(ctx->error)], d1[96], d2[96];
	unsigned todo, unverifiable, written = 0;
	int r;

	assert_return(ctx && pf && settings, -EINVAL);
	clear_error(ctx);
	r = result_valid(ctx, result, sizeof(*result), "iovk_vf_set_result");
	if (r < 0)
		return r;
	r = vf_settings_copy(ctx, settings, &want);
	if (r < 0)
		goto out;
	r = iovk_vf_settings_check(ctx, &want);
	if (r < 0)
		goto out;
	r = vf_resolve_pf(ctx, pf, &ref);
	if (r < 0)
		goto out;
	r = route_nl_get(ctx, &nl);
	if (r < 0)
		goto out;
	/* Check first, so a bad request does not wait for the lock... */
	r = read_vf(ctx, nl.sk, &ref, index, &before, &link, &cur);
	if (r < 0)
		goto out;
	before = iovk_vf_list_unref(before);
	rtnl_link_put(link);
	link = NULL;
	r = run_lock(ctx, &lock);
	if (r < 0)
		goto out;
	/* ...and again under it: another process may have changed the VF. */
	r = read_vf(ctx, nl.sk, &ref, index, &before, &link, &cur);
	if (r < 0)
		goto out;

	/* The kernel sets both rates at once: a rate not given keeps its value. */
	if (want.fields & (IOVK_VF_MIN_TX_RATE | IOVK_VF_MAX_TX_RATE)) {
		if (!(want.fields & IOVK_VF_MIN_TX_RATE))
			want.min_tx_rate = cur->min_tx_rate;
		if (!(want.fields & IOVK_VF_MAX_TX_RATE))
			want.max_tx_rate = cur->max_tx_rate;
		if (want.max_tx_rate && want.min_tx_rate > want.max_tx_rate) {
			r = set_error(ctx, -EINVAL, "%s VF %u: min_tx_rate %u would be above max_tx_rate %u%s", ref.label,
				      index, want.min_tx_rate, want.max_tx_rate,
				      (want.fields & IOVK_VF_MAX_TX_RATE) ? " (the one asked)" : " (the current one)");
			goto out;
		}
	}

	/* Write what differs; what the driver does not report, always. */
	todo = iovk_vf_settings_diff(&want, cur, &unverifiable) | unverifiable;
	/* A MAC that reads as asked may still be the VF's own choice. */
	if ((want.fields & IOVK_VF_MAC) && memcmp(want.mac, (uint8_t[6]){}, 6) != 0 &&
	    mac_rewrite_makes_it_admin(ref.driver))
		todo |= IOVK_VF_MAC;
	vf_settings_from_info(cur, &old);
	for (size_t g = 0; g < ELEMENTSOF(write_groups); g++) {
		unsigned group = write_groups[g];
		bool refused;

		if (!(todo & group))
			continue;
		r = write_field(ctx, nl.sk, link, &ref, index, group, &want, &refused);
		if (r >= 0) {
			written |= group;
			res.changed |= todo & group;
			continue;
		}
		res.failed = group;
		if (refused) {
			const char *hint = vf_errno_hint(r, group);

			vf_describe_settings(group, &want, d1, sizeof(d1));
			snprintf(msg, sizeof(msg), "%s VF %u: setting %s: %s%s", ref.label, index, d1, strerror(-r),
				 hint ?: "");
		} else
			snprintf(msg, sizeof(msg), "%s", ctx->error);
		/* do_setvfinfo() has no transaction: undo ours, newest first. */
		res.rolled_back = written != 0;
		for (size_t u = g; u-- > 0;) {
			unsigned back = write_groups[u];
			bool refused_back;
			int k;

			if (!(written & back))
				continue;
			vf_describe_settings(back, &old, d2, sizeof(d2));
			if ((back == IOVK_VF_SPOOFCHK && cur->spoofchk < 0) || (back == IOVK_VF_TRUST && cur->trust < 0)) {
				append(msg, sizeof(msg), "; %s was not put back: the driver does not report its "
				       "previous value", iovk_vf_field_name(back));
				res.rolled_back = false;
				continue;
			}
			k = write_field(ctx, nl.sk, link, &ref, index, back, &old, &refused_back);
			if (k < 0) {
				append(msg, sizeof(msg), "; putting back %s failed: %s", d2, strerror(-k));
				res.rolled_back = false;
			} else {
				append(msg, sizeof(msg), "; put back %s", d2);
				res.changed &= ~back;
			}
		}
		set_error(ctx, r, "%s", msg);
		goto out;
	}
	if (!written) {
		r = 0;
		goto out;
	}

	/* Drivers may accept a setting and not apply it: read back. */
	r = read_vf(ctx, nl.sk, &ref, index, &after, NULL, &now);
	if (r < 0)
		goto out;
	res.ignored = iovk_vf_settings_diff(&want, now, &unverifiable) & res.changed;
	res.unverified = unverifiable & res.changed;
	if (res.ignored) {
		unsigned n = 0;

		snprintf(msg, sizeof(msg), "%s VF %u: the PF driver accepted but did not apply", ref.label, index);
		for (size_t b = 0; b < 32; b++) {
			unsigned bit = 1u << b;

			if (!(res.ignored & bit))
				continue;
			append(msg, sizeof(msg), "%s %s (reads %s)", n++ ? ";" : ":",
			       vf_describe_settings(bit, &want, d1, sizeof(d1)), vf_describe_info(bit, now, d2, sizeof(d2)));
		}
		r = set_error(ctx, -EOPNOTSUPP, "%s", msg);
		goto out;
	}
	r = 1;
out:
	result_store(result, &res, sizeof(res));
	iovk_vf_list_unref(before);
	iovk_vf_list_unref(after);
	if (link)
		rtnl_link_put(link);
	vf_pf_ref_done(&ref);
	return r;
}
