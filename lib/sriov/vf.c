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

void vf_pf_ref_done(struct pf_ref *ref)
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

int vf_resolve_pf(struct iovk_ctx *ctx, const char *pf, struct pf_ref *ret)
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
		 * the one sysfs shows; vf_read_vfs() checks it against netlink. */
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
int vf_read_vfs(struct iovk_ctx *ctx, struct nl_sock *sk, struct pf_ref *ref, struct iovk_vf_list **ret_list,
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
	r = vf_nl_exchange(ctx, sk, msg, what, &a);
	if (r < 0)
		goto fail;
	if (a.error == -ENODEV) {
		r = set_error(ctx, -ENODEV, "%s: no such network interface in this network namespace (%s)",
			      ref->label, strerror(-a.error));
		goto fail;
	}
	if (a.error < 0) {
		const char *hint = vf_errno_hint(a.error, 0);

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
	vf_answer_done(&a);
	*ret_list = list;
	return 0;
fail:
	iovk_vf_list_unref(list);
	vf_answer_done(&a);
	return r;
}

_public_ int iovk_vf_list_new(struct iovk_ctx *ctx, const char *pf, struct iovk_vf_list **ret_list)
{
	_cleanup_route_nl_ struct route_nl nl = {};
	struct pf_ref ref;
	int r;

	assert_return(ctx && pf && ret_list, -EINVAL);
	clear_error(ctx);
	r = vf_resolve_pf(ctx, pf, &ref);
	if (r < 0)
		return r;
	r = route_nl_get(ctx, &nl);
	if (r >= 0)
		r = vf_read_vfs(ctx, nl.sk, &ref, ret_list, NULL);
	vf_pf_ref_done(&ref);
	return r;
}

