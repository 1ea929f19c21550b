/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VF settings through rtnetlink, with libnl-route's rtnl_link_vf_* API.
 *
 * What libnl 3.7 covers, and where this file steps around it:
 *  - Every setting iproute2 has for a VF (mac, vlan + qos + proto, min/max tx
 *    rate, spoofchk, trust, link state) has an rtnl_link_vf_set_*() setter
 *    that rtnl_link_build_change_request() puts into IFLA_VFINFO_LIST, and a
 *    getter for the reply to rtnl_link_build_get_request(), which asks with
 *    IFLA_EXT_MASK = RTEXT_FILTER_VF. No setter is missing.
 *  - VLAN protocol: libnl copies nl_vf_vlan_info_t.vf_vlan_proto into
 *    IFLA_VF_VLAN_INFO unconverted, but the kernel reads that field as
 *    __be16 (and libnl's own parser ntohs()es it on the way back): 802.1ad
 *    given in host order reaches the kernel as 0xa888 and fails with
 *    EPROTONOSUPPORT. vlan_proto_for_libnl() checks once how this libnl
 *    encodes the field and hands it the value the kernel needs, so a libnl
 *    that fixes this keeps working.
 *  - VF stats: libnl parses rx/tx packets and bytes, broadcast and multicast,
 *    but not IFLA_VF_STATS_RX_DROPPED/TX_DROPPED (kernel 5.x): those two are
 *    read from the same reply with libnl's attribute parser (nla_*).
 *  - Errors: libnl turns the kernel's errno into its own NLE_* codes and loses
 *    it (EPROTONOSUPPORT, ERANGE, ENODEV all get vaguer). Requests go out
 *    with nl_send_auto() and the answers come through our own callbacks,
 *    which keep the kernel's errno for the caller and the message.
 *  - rtnl_link_vf_get() walks the link's VF list without checking that there
 *    is one: it is only called after rtnl_link_has_vf_list().
 *  - References: rtnl_link_vf_add(), rtnl_link_vf_set_vlans() and
 *    rtnl_link_vf_set_addr() take their own reference (whatever the
 *    documentation of set_vlans says), so ours is dropped after handing the
 *    object over; checked leak-free under ASan.
 *
 * Kernel facts (net/core/rtnetlink.c, 6.1): do_setvfinfo() applies the
 * attributes of one request in a fixed order and stops at the first error,
 * leaving the earlier ones applied; the driver checks the VF index (the core
 * only refuses >= INT_MAX). A GETLINK reply carries IFLA_NUM_VF only for a
 * device with a parent, and a VF only when the driver's ndo_get_vf_config()
 * answers for it; spoofchk, trust and rss_query_en read -1 when the driver
 * does not report them.
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

struct vf_entry {
	struct iovk_vf_info info;
	struct iovk_vf_vlan *vlans;
	char *address;
	char *netdev;
};

struct iovk_vf_list {
	int n_ref;
	char *pf_netdev;
	char *pf_address; /* NULL: not a PCI device */
	int numvfs;       /* -1: no IFLA_NUM_VF */
	struct vf_entry *vfs;
	size_t n_vfs;
};

/* The PF as resolved from what the caller gave. */
struct pf_ref {
	char netdev[IFNAMSIZ];
	char address[IOVK_PCI_ADDR_MAX]; /* "" when not a PCI device, or unknown */
	char driver[64];                 /* the PF's kernel driver, "" when address is */
	bool by_address;                 /* the caller named the PCI device */
	char *sysfs_netdev;              /* sysfs dir of the interface, to check it against netlink */
	char label[IFNAMSIZ + IOVK_PCI_ADDR_MAX + 8]; /* "eth0 (PF 0000:01:00.0)" for messages */
};

static void pf_ref_done(struct pf_ref *ref)
{
	free(ref->sysfs_netdev);
	ref->sysfs_netdev = NULL;
}

static void vf_entry_done(struct vf_entry *e)
{
	free(e->vlans);
	free(e->address);
	free(e->netdev);
}

/* Frees what the last reference held (DEFINE_PUBLIC_REF_UNREF below). */
static void vf_list_free(struct iovk_vf_list *list)
{
	for (size_t i = 0; i < list->n_vfs; i++)
		vf_entry_done(&list->vfs[i]);
	free(list->vfs);
	free(list->pf_netdev);
	free(list->pf_address);
	free(list);
}

DEFINE_PUBLIC_REF_UNREF(struct iovk_vf_list, iovk_vf_list, vf_list_free);

_public_ const char *iovk_vf_list_get_pf_netdev(const struct iovk_vf_list *list)
{
	return list->pf_netdev;
}

_public_ const char *iovk_vf_list_get_pf_address(const struct iovk_vf_list *list)
{
	return list->pf_address;
}

_public_ int iovk_vf_list_get_numvfs(const struct iovk_vf_list *list)
{
	return list->numvfs;
}

_public_ size_t iovk_vf_list_get_n_vfs(const struct iovk_vf_list *list)
{
	return list->n_vfs;
}

_public_ const struct iovk_vf_info *iovk_vf_list_get_vf(const struct iovk_vf_list *list, size_t i)
{
	return i < list->n_vfs ? &list->vfs[i].info : NULL;
}

_public_ const struct iovk_vf_info *iovk_vf_list_find(const struct iovk_vf_list *list, unsigned index)
{
	for (size_t i = 0; i < list->n_vfs; i++)
		if (list->vfs[i].info.index == index)
			return &list->vfs[i].info;
	return NULL;
}

/* ---- naming the PF ------------------------------------------------------ */

/* The kernel's dev_valid_name(), so a bad name is refused before netlink. */
static bool ifname_valid(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len >= IFNAMSIZ || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (const char *p = s; *p; p++)
		if (*p == '/' || *p == ':' || isspace((unsigned char)*p))
			return false;
	return true;
}

/* First entry of a directory by name, "" when empty or missing. */
static void first_entry(const char *path, char *buf, size_t size)
{
	_cleanup_closedir_ DIR *dir = opendir(path);
	struct dirent *de;

	buf[0] = '\0';
	if (!dir)
		return;
	while ((de = readdir(dir)))
		if (de->d_name[0] != '.' && (!buf[0] || strcmp(de->d_name, buf) < 0))
			snprintf(buf, size, "%s", de->d_name);
}

static int resolve_pf(struct iovk_ctx *ctx, const char *pf, struct pf_ref *ret)
{
	struct pf_ref ref = {};

	if (!pf || !*pf)
		return set_error(ctx, -EINVAL, "no PF given (a PCI address or a network interface name)");
	if (strchr(pf, ':')) {
		struct iovk_sriov_pf *sp = NULL;
		struct iovk_pci_addr addr;
		const char *const *netdevs;
		int r;

		if (iovk_pci_addr_parse(pf, &addr) < 0)
			return set_error(ctx, -EINVAL, "'%s' is not a PCI address (or a network interface name)", pf);
		r = iovk_sriov_pf_new(ctx, pf, &sp);
		if (r < 0)
			return r;
		snprintf(ref.address, sizeof(ref.address), "%s", iovk_sriov_pf_get_address(sp));
		netdevs = iovk_device_get_netdevs(iovk_sriov_pf_get_device(sp));
		if (!netdevs[0]) {
			const char *drv = iovk_device_get_driver(iovk_sriov_pf_get_device(sp));

			r = set_error(ctx, -ENOENT,
				      "%s: the PF has no network interface (driver %s): VF settings are made "
				      "through the PF's interface", ref.address, drv ?: "none");
			iovk_sriov_pf_unref(sp);
			return r;
		}
		snprintf(ref.netdev, sizeof(ref.netdev), "%s", netdevs[0]);
		snprintf(ref.driver, sizeof(ref.driver), "%s",
			 iovk_device_get_driver(iovk_sriov_pf_get_device(sp)) ?: "");
		iovk_sriov_pf_unref(sp);
		ref.by_address = true;
		ref.sysfs_netdev = sysfs_path(ctx, "/bus/pci/devices/%s/net/%s", ref.address, ref.netdev);
		if (!ref.sysfs_netdev)
			return -ENOMEM;
	} else {
		_cleanup_free_ char *link = NULL, *dev = NULL;
		struct iovk_pci_addr addr;

		if (!ifname_valid(pf))
			return set_error(ctx, -EINVAL, "'%s' is neither a PCI address nor a network interface name",
					 pf);
		snprintf(ref.netdev, sizeof(ref.netdev), "%s", pf);
		ref.sysfs_netdev = sysfs_path(ctx, "/class/net/%s", pf);
		link = sysfs_path(ctx, "/class/net/%s/device", pf);
		if (!ref.sysfs_netdev || !link) {
			free(ref.sysfs_netdev);
			return -ENOMEM;
		}
		/* Only a hint: the interface may have no device (veth), a
		 * non-PCI one (netdevsim), or live in another namespace than
		 * the one sysfs shows; read_vfs() checks it against netlink. */
		/* Resolved, not read: the link's last component may be "..". */
		dev = realpath(link, NULL);
		if (dev && iovk_pci_addr_parse(strrchr(dev, '/') + 1, &addr) >= 0) {
			_cleanup_free_ char *drv = sysfs_path(ctx, "/class/net/%s/device/driver", pf);

			iovk_pci_addr_format(&addr, ref.address);
			if (!drv || read_link_name(drv, ref.driver, sizeof(ref.driver)) < 0)
				ref.driver[0] = '\0';
		}
	}
	if (ref.address[0])
		snprintf(ref.label, sizeof(ref.label), "%s (PF %s)", ref.netdev, ref.address);
	else
		snprintf(ref.label, sizeof(ref.label), "%s", ref.netdev);
	*ret = ref;
	return 0;
}

/* ---- netlink -------------------------------------------------------------- */

static int nle_to_errno(int nle)
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

static void nl_socket_freep(struct nl_sock **sk)
{
	if (*sk)
		nl_socket_free(*sk);
}
#define _cleanup_nl_socket_ _cleanup_(nl_socket_freep)

static void nlmsg_freep(struct nl_msg **m)
{
	if (*m)
		nlmsg_free(*m);
}
#define _cleanup_nlmsg_ _cleanup_(nlmsg_freep)

static void rtnl_link_putp(struct rtnl_link **l)
{
	if (*l)
		rtnl_link_put(*l);
}
#define _cleanup_rtnl_link_ _cleanup_(rtnl_link_putp)

static int nl_open(struct iovk_ctx *ctx, struct nl_sock **ret)
{
	_cleanup_nl_socket_ struct nl_sock *sk = nl_socket_alloc();
	struct timeval tv = { .tv_sec = ctx->timeout_ms / 1000, .tv_usec = (ctx->timeout_ms % 1000) * 1000 };
	int r;

	if (!sk)
		return -ENOMEM;
	r = nl_connect(sk, NETLINK_ROUTE);
	if (r < 0)
		return set_error(ctx, nle_to_errno(r), "opening a NETLINK_ROUTE socket: %s", nl_geterror(r));
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

struct vf_drops {
	uint32_t index;
	uint64_t rx, tx;
};

/* What came back for one request. */
struct nl_answer {
	bool done;              /* the ACK or an error arrived */
	int error;              /* the kernel's -errno, 0 */
	int parse_error;        /* libnl could not parse the reply (NLE) */
	struct rtnl_link *link; /* the reply to RTM_GETLINK */
	struct vf_drops *drops; /* IFLA_VF_STATS_{RX,TX}_DROPPED, which libnl skips */
	size_t n_drops;
};

static void answer_done(struct nl_answer *a)
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
static int nl_exchange(struct iovk_ctx *ctx, struct nl_sock *sk, struct nl_msg *msg, const char *what,
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
		return set_error(ctx, nle_to_errno(r), "%s: sending the netlink request: %s", what, nl_geterror(r));
	}
	while (!a->done) {
		r = nl_recvmsgs(sk, cb);
		if (a->done)
			break;
		if (r < 0) {
			nl_cb_put(cb);
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

static const char *errno_hint(int err, unsigned field)
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

/* ---- reading the VFs ------------------------------------------------------ */

/* Whether the interface sysfs shows is the one netlink found (same ifindex
 * and MAC): sysfs shows the namespace it was mounted in. */
static bool sysfs_matches_link(const struct pf_ref *ref, struct rtnl_link *link)
{
	_cleanup_free_ char *pi = root_path(ref->sysfs_netdev, "/ifindex");
	_cleanup_free_ char *pa = root_path(ref->sysfs_netdev, "/address");
	_cleanup_free_ char *addr = NULL;
	struct nl_addr *lladdr = rtnl_link_get_addr(link);
	char buf[64];
	long long ifindex;

	if (!pi || !pa || read_int(pi, &ifindex) < 0 || ifindex != rtnl_link_get_ifindex(link))
		return false;
	if (read_text(pa, &addr) < 0 || !lladdr)
		return false;
	return strcasecmp(addr, nl_addr2str(lladdr, buf, sizeof(buf))) == 0;
}

/* The VF's PCI address, own interface and that interface's MAC, from sysfs. */
static int fill_pci_facts(struct iovk_ctx *ctx, const struct pf_ref *ref, struct vf_entry *e)
{
	_cleanup_free_ char *link = sysfs_path(ctx, "/bus/pci/devices/%s/virtfn%u", ref->address, e->info.index);
	_cleanup_free_ char *net = NULL, *ap = NULL, *text = NULL;
	char vf[IOVK_PCI_ADDR_MAX + 8], name[256];
	uint8_t mac[6];

	if (!link)
		return -ENOMEM;
	if (read_link_name(link, vf, sizeof(vf)) < 0)
		return 0;
	e->address = strdup(vf);
	net = sysfs_path(ctx, "/bus/pci/devices/%s/net", vf);
	if (!e->address || !net)
		return -ENOMEM;
	first_entry(net, name, sizeof(name));
	if (!name[0])
		return 0;
	e->netdev = strdup(name);
	ap = root_path(net, "/%s/address", name);
	if (!e->netdev || !ap)
		return -ENOMEM;
	if (read_text(ap, &text) >= 0 && iovk_vf_parse_mac(text, mac) >= 0) {
		memcpy(e->info.effective_mac, mac, 6);
		e->info.has_effective_mac = true;
	}
	return 0;
}

static int fill_entry(struct rtnl_link_vf *vf, const struct nl_answer *a, struct vf_entry *e)
{
	struct nl_vf_rate rate = {};
	struct nl_addr *addr;
	nl_vf_vlans_t *vlans = NULL;
	uint32_t u;
	uint64_t v;

	if (rtnl_link_vf_get_addr(vf, &addr) >= 0 && nl_addr_get_len(addr) >= 6)
		memcpy(e->info.mac, nl_addr_get_binary_addr(addr), 6);
	if (rtnl_link_vf_get_vlans(vf, &vlans) >= 0) {
		e->vlans = calloc(vlans->size > 0 ? (size_t)vlans->size : 1, sizeof(*e->vlans));
		if (!e->vlans) {
			rtnl_link_vf_vlan_put(vlans);
			return -ENOMEM;
		}
		for (int i = 0; i < vlans->size; i++) {
			const nl_vf_vlan_info_t *vi = &vlans->vlans[i];

			if (vi->vf_vlan == 0 && vi->vf_vlan_qos == 0)
				continue;
			/* libnl already turned vlan_proto to host order (0 read as 802.1Q). */
			e->vlans[e->info.n_vlans++] = (struct iovk_vf_vlan){
				.vlan = (uint16_t)vi->vf_vlan,
				.qos = (uint8_t)vi->vf_vlan_qos,
				.proto = vf_vlan_proto_or_default(vi->vf_vlan_proto),
			};
		}
		rtnl_link_vf_vlan_put(vlans);
		e->info.vlans = e->vlans;
	}
	e->info.spoofchk = rtnl_link_vf_get_spoofchk(vf, &u) >= 0 ? (int)(u != 0) : -1;
	e->info.trust = rtnl_link_vf_get_trust(vf, &u) >= 0 ? (int)(u != 0) : -1;
	e->info.link_state = rtnl_link_vf_get_linkstate(vf, &u) >= 0 ? (int)u : IOVK_VF_LINK_STATE_AUTO;
	/* -NLE_NOATTR when both rates are 0 */
	if (rtnl_link_vf_get_rate(vf, &rate) >= 0) {
		if (rate.api == RTNL_LINK_VF_RATE_API_NEW) {
			e->info.min_tx_rate = rate.min_tx_rate;
			e->info.max_tx_rate = rate.max_tx_rate;
		} else if (rate.api == RTNL_LINK_VF_RATE_API_OLD)
			e->info.max_tx_rate = rate.rate;
	}
	if (rtnl_link_vf_get_stat(vf, RTNL_LINK_VF_STATS_RX_PACKETS, &v) >= 0) {
		struct iovk_vf_stats *s = &e->info.stats;

		e->info.has_stats = true;
		s->rx_packets = v;
		rtnl_link_vf_get_stat(vf, RTNL_LINK_VF_STATS_TX_PACKETS, &s->tx_packets);
		rtnl_link_vf_get_stat(vf, RTNL_LINK_VF_STATS_RX_BYTES, &s->rx_bytes);
		rtnl_link_vf_get_stat(vf, RTNL_LINK_VF_STATS_TX_BYTES, &s->tx_bytes);
		rtnl_link_vf_get_stat(vf, RTNL_LINK_VF_STATS_BROADCAST, &s->broadcast);
		rtnl_link_vf_get_stat(vf, RTNL_LINK_VF_STATS_MULTICAST, &s->multicast);
		for (size_t i = 0; i < a->n_drops; i++)
			if (a->drops[i].index == e->info.index) {
				s->has_dropped = true;
				s->rx_dropped = a->drops[i].rx;
				s->tx_dropped = a->drops[i].tx;
			}
	}
	return 0;
}

/*
 * One RTM_GETLINK for the PF's interface: the VF list, and the link itself
 * (its ifindex addresses the change requests) in *ret_link if asked.
 */
static int read_vfs(struct iovk_ctx *ctx, struct nl_sock *sk, struct pf_ref *ref, struct iovk_vf_list **ret_list,
		    struct rtnl_link **ret_link)
{
	_cleanup_nlmsg_ struct nl_msg *msg = NULL;
	struct nl_answer a = {};
	struct iovk_vf_list *list = NULL;
	char what[sizeof(ref->label) + 32];
	uint32_t num;
	bool pci_facts;
	int r;

	snprintf(what, sizeof(what), "%s: reading its VFs", ref->label);
	r = rtnl_link_build_get_request(0, ref->netdev, &msg);
	if (r < 0)
		return set_error(ctx, nle_to_errno(r), "%s: building the netlink request: %s", what, nl_geterror(r));
	r = nl_exchange(ctx, sk, msg, what, &a);
	if (r < 0)
		goto fail;
	if (a.error == -ENODEV) {
		r = set_error(ctx, -ENODEV, "%s: no such network interface in this network namespace (%s)",
			      ref->label, strerror(-a.error));
		goto fail;
	}
	if (a.error < 0) {
		const char *hint = errno_hint(a.error, 0);

		r = set_error(ctx, a.error, "%s: RTM_GETLINK: %s%s", what, strerror(-a.error), hint ?: "");
		goto fail;
	}
	if (!a.link) {
		r = set_error(ctx, -EBADMSG, "%s: the kernel's answer could not be parsed%s%s", what,
			      a.parse_error ? ": " : "", a.parse_error ? nl_geterror(a.parse_error) : "");
		goto fail;
	}

	/* Sysfs facts only when sysfs shows this very interface. */
	pci_facts = ref->address[0] && sysfs_matches_link(ref, a.link);
	if (ref->by_address && !pci_facts) {
		r = set_error(ctx, -ENODEV,
			      "%s: the interface %s in this network namespace is not the PF's (the sysfs of "
			      "another namespace, or the interface was renamed or moved)", ref->label, ref->netdev);
		goto fail;
	}
	if (!pci_facts && ref->address[0]) {
		ref->address[0] = '\0';
		ref->driver[0] = '\0';
		snprintf(ref->label, sizeof(ref->label), "%s", ref->netdev);
	}

	list = calloc(1, sizeof(*list));
	if (!list) {
		r = -ENOMEM;
		goto fail;
	}
	list->n_ref = 1;
	list->pf_netdev = strdup(rtnl_link_get_name(a.link) ?: ref->netdev);
	list->pf_address = ref->address[0] ? strdup(ref->address) : NULL;
	if (!list->pf_netdev || (ref->address[0] && !list->pf_address)) {
		r = -ENOMEM;
		goto fail;
	}
	list->numvfs = rtnl_link_get_num_vf(a.link, &num) >= 0 && num <= INT_MAX ? (int)num : -1;
	if (list->numvfs > 0 && rtnl_link_has_vf_list(a.link)) {
		list->vfs = calloc((size_t)list->numvfs, sizeof(*list->vfs));
		if (!list->vfs) {
			r = -ENOMEM;
			goto fail;
		}
		for (unsigned i = 0; i < (unsigned)list->numvfs; i++) {
			struct rtnl_link_vf *vf = rtnl_link_vf_get(a.link, i);
			struct vf_entry *e;

			if (!vf)
				continue;
			e = &list->vfs[list->n_vfs++];
			e->info.index = i;
			r = fill_entry(vf, &a, e);
			rtnl_link_vf_put(vf);
			if (r >= 0 && pci_facts)
				r = fill_pci_facts(ctx, ref, e);
			if (r < 0)
				goto fail;
			e->info.address = e->address;
			e->info.netdev = e->netdev;
			e->info.mac_differs = e->info.has_effective_mac && memcmp(e->info.mac, (uint8_t[6]){}, 6) != 0 &&
					      memcmp(e->info.mac, e->info.effective_mac, 6) != 0;
		}
	}
	if (ret_link)
		*ret_link = TAKE_PTR(a.link);
	answer_done(&a);
	*ret_list = list;
	return 0;
fail:
	iovk_vf_list_unref(list);
	answer_done(&a);
	return r;
}

_public_ int iovk_vf_list_new(struct iovk_ctx *ctx, const char *pf, struct iovk_vf_list **ret_list)
{
	_cleanup_nl_socket_ struct nl_sock *sk = NULL;
	struct pf_ref ref;
	int r;

	clear_error(ctx);
	r = resolve_pf(ctx, pf, &ref);
	if (r < 0)
		return r;
	r = nl_open(ctx, &sk);
	if (r >= 0)
		r = read_vfs(ctx, sk, &ref, ret_list, NULL);
	pf_ref_done(&ref);
	return r;
}

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
	r = nl_exchange(ctx, sk, msg, what, &a);
	if (r >= 0 && a.error < 0) {
		r = a.error;
		*ret_kernel_refused = true;
	}
	answer_done(&a);
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
static void settings_from_info(const struct iovk_vf_info *info, struct iovk_vf_settings *ret)
{
	*ret = (struct iovk_vf_settings){ .sz = sizeof(*ret), .fields = IOVK_VF_ALL_FIELDS };
	memcpy(ret->mac, info->mac, 6);
	ret->clear_mac = true;
	if (info->n_vlans > 0) {
		ret->vlan = info->vlans[0].vlan;
		ret->qos = info->vlans[0].qos;
		ret->vlan_proto = info->vlans[0].proto;
	}
	ret->min_tx_rate = info->min_tx_rate;
	ret->max_tx_rate = info->max_tx_rate;
	ret->spoofchk = info->spoofchk > 0;
	ret->trust = info->trust > 0;
	ret->link_state = info->link_state;
}

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

	r = read_vfs(ctx, sk, ref, &list, ret_link ? &link : NULL);
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
	_cleanup_nl_socket_ struct nl_sock *sk = NULL;
	_cleanup_close_ int lock = -1;
	struct iovk_vf_set_result res = {};
	struct iovk_vf_list *before = NULL, *after = NULL;
	struct rtnl_link *link = NULL;
	const struct iovk_vf_info *cur, *now;
	struct iovk_vf_settings want, old;
	struct pf_ref ref = {};
	char msg[sizeof(ctx->error)], d1[96], d2[96];
	unsigned todo, unverifiable, written = 0;
	int r;

	clear_error(ctx);
	r = vf_settings_copy(ctx, settings, &want);
	if (r < 0)
		goto out;
	r = iovk_vf_settings_check(ctx, &want);
	if (r < 0)
		goto out;
	r = resolve_pf(ctx, pf, &ref);
	if (r < 0)
		goto out;
	r = nl_open(ctx, &sk);
	if (r < 0)
		goto out;
	/* Check first, so a bad request does not wait for the lock... */
	r = read_vf(ctx, sk, &ref, index, &before, &link, &cur);
	if (r < 0)
		goto out;
	before = iovk_vf_list_unref(before);
	rtnl_link_put(link);
	link = NULL;
	r = run_lock(ctx, &lock);
	if (r < 0)
		goto out;
	/* ...and again under it: another process may have changed the VF. */
	r = read_vf(ctx, sk, &ref, index, &before, &link, &cur);
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
	settings_from_info(cur, &old);
	for (size_t g = 0; g < ELEMENTSOF(write_groups); g++) {
		unsigned group = write_groups[g];
		bool refused;

		if (!(todo & group))
			continue;
		r = write_field(ctx, sk, link, &ref, index, group, &want, &refused);
		if (r >= 0) {
			written |= group;
			res.changed |= todo & group;
			continue;
		}
		res.failed = group;
		if (refused) {
			const char *hint = errno_hint(r, group);

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
			k = write_field(ctx, sk, link, &ref, index, back, &old, &refused_back);
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
	r = read_vf(ctx, sk, &ref, index, &after, NULL, &now);
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
	if (result)
		*result = res;
	iovk_vf_list_unref(before);
	iovk_vf_list_unref(after);
	if (link)
		rtnl_link_put(link);
	pf_ref_done(&ref);
	return r;
}
