/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private to lib/sriov/vf*.c. */
#pragma once

#include "../internal.h"

/*
 * Copies a caller's struct iovk_vf_settings, of whatever sz it was built
 * with, into this library's layout (members the caller does not know are 0).
 * Returns 0, or -EINVAL when sz is smaller than the first version of the
 * struct or the caller set members this library does not know; the reason
 * goes to ctx's error when ctx is not NULL.
 */
int vf_settings_copy(struct iovk_ctx *ctx, const struct iovk_vf_settings *in, struct iovk_vf_settings *out);

/* VLAN protocol with 0 read as 802.1Q, as the kernel does. */
static inline uint16_t vf_vlan_proto_or_default(uint16_t proto)
{
	return proto ? proto : IOVK_VF_VLAN_PROTO_8021Q;
}

/*
 * "vlan 10 qos 3 proto 802.1ad", "trust on", ...: the value of one field (or
 * of the min/max rate pair) in iproute2's words, from settings or from what a
 * VF reports. Returns buf.
 */
char *vf_describe_settings(unsigned field, const struct iovk_vf_settings *s, char *buf, size_t size);
char *vf_describe_info(unsigned field, const struct iovk_vf_info *info, char *buf, size_t size);

/* What a VF reports, as settings of every field (the first VLAN of a
 * list; a setting the driver does not report reads as off). */
void vf_settings_from_info(const struct iovk_vf_info *info, struct iovk_vf_settings *ret);

/* ---- lib/sriov/vf.c, vf-netlink.c, vf-write.c share these ------------------ */

#include <net/if.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/socket.h>

#include "../core/netlink.h"

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

/* vf.c: the PF named by address or interface, and its VFs as netlink reports them */
void vf_pf_ref_done(struct pf_ref *ref);
int vf_resolve_pf(struct iovk_ctx *ctx, const char *pf, struct pf_ref *ret);
int vf_read_vfs(struct iovk_ctx *ctx, struct nl_sock *sk, struct pf_ref *ref, struct iovk_vf_list **ret_list,
		struct rtnl_link **ret_link);

/* vf-netlink.c: one request, one answer, the kernel's errno kept */
void vf_answer_done(struct nl_answer *a);
const char *vf_errno_hint(int err, unsigned field);
int vf_nl_exchange(struct iovk_ctx *ctx, struct nl_sock *sk, struct nl_msg *msg, const char *what,
		   struct nl_answer *a);
