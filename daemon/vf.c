/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * VF settings of an allocation (the Allocate options mac, vlan, qos,
 * spoofchk, trust), written through the PF's network interface over
 * rtnetlink with libiovkit's iovk_vf_set().
 *
 * They are written before the VF's driver is changed, so a VF bound to
 * vfio-pci is never handed to a guest unconfigured, and settings through the
 * PF work whatever the VF's driver. What they replace is read first and kept
 * with the allocation, in the state file too: a failed Allocate and Release
 * write it back, before the driver goes back, so a kernel driver that probes
 * the VF again finds its old admin MAC. libvirt does the same for a hostdev
 * VF (<interface type='hostdev'>): it saves the VF's MAC and VLAN when it
 * attaches the VF and restores them when it detaches it. Resetting them to
 * fixed values instead (VLAN 0, an all-zero MAC, which some drivers refuse)
 * would lose an admin MAC the operator set before.
 */
#include <string.h>

#include "iovd.h"

static int netlink_read(struct manager *m, const char *pf, const char *vf, unsigned *ret_index,
			struct iovk_vf_settings *ret, char *err, size_t size)
{
	struct iovk_vf_list *list = NULL;
	int r;

	r = iovk_vf_list_new(m->ctx, pf, &list);
	if (r < 0) {
		snprintf(err, size, "%s", iovk_ctx_get_error(m->ctx));
		return r;
	}
	for (size_t i = 0; i < iovk_vf_list_get_n_vfs(list); i++) {
		const struct iovk_vf_info *info = iovk_vf_list_get_vf(list, i);
		struct iovk_vf_settings c = { .fields = IOVD_VF_FIELDS };

		if (!info->address || strcmp(info->address, vf) != 0)
			continue;
		memcpy(c.mac, info->mac, sizeof(c.mac));
		if (info->n_vlans > 0) {
			c.vlan = info->vlans[0].vlan;
			c.qos = info->vlans[0].qos;
			c.vlan_proto = info->vlans[0].proto;
		}
		/* A driver that does not report them has the kernel's defaults,
		 * which every VF starts with: spoof checking on, trust off. */
		c.spoofchk = info->spoofchk != 0;
		c.trust = info->trust == 1;
		*ret_index = info->index;
		*ret = c;
		iovk_vf_list_unref(list);
		return 0;
	}
	snprintf(err, size, "PF %s (%s) does not report VF %s (%d VFs enabled)", pf, iovk_vf_list_get_pf_netdev(list),
		 vf, iovk_vf_list_get_numvfs(list));
	iovk_vf_list_unref(list);
	return -ENOENT;
}

static int netlink_write(struct manager *m, const char *pf, unsigned index, const struct iovk_vf_settings *c,
			 char *err, size_t size)
{
	static const uint8_t zero[6];
	struct iovk_vf_set_result res = IOVK_VF_SET_RESULT_INIT;
	struct iovk_vf_settings s = *c;
	int r;

	s.sz = sizeof(s);
	/* an all-zero MAC is "no admin MAC": writing it back clears the one set */
	s.clear_mac = memcmp(c->mac, zero, sizeof(zero)) == 0;
	r = iovk_vf_set(m->ctx, pf, index, &s, &res);
	if (r < 0)
		snprintf(err, size, "%s", iovk_ctx_get_error(m->ctx));
	return r;
}

const struct vf_ops vf_ops_netlink = {
	.read = netlink_read,
	.write = netlink_write,
};

bool vf_settings_equal(const struct iovk_vf_settings *a, const struct iovk_vf_settings *b)
{
	if (a->fields != b->fields)
		return false;
	if ((a->fields & IOVK_VF_MAC) && memcmp(a->mac, b->mac, sizeof(a->mac)) != 0)
		return false;
	if ((a->fields & IOVK_VF_VLAN) &&
	    (a->vlan != b->vlan || a->qos != b->qos || (a->vlan_proto ?: IOVK_VF_VLAN_PROTO_8021Q) !=
								(b->vlan_proto ?: IOVK_VF_VLAN_PROTO_8021Q)))
		return false;
	if ((a->fields & IOVK_VF_SPOOFCHK) && a->spoofchk != b->spoofchk)
		return false;
	if ((a->fields & IOVK_VF_TRUST) && a->trust != b->trust)
		return false;
	return true;
}

void vf_settings_merge(struct iovk_vf_settings *c, const struct iovk_vf_settings *over)
{
	if (over->fields & IOVK_VF_MAC)
		memcpy(c->mac, over->mac, sizeof(c->mac));
	if (over->fields & IOVK_VF_VLAN) {
		c->vlan = over->vlan;
		c->qos = over->qos;
		c->vlan_proto = over->vlan_proto;
	}
	if (over->fields & IOVK_VF_SPOOFCHK)
		c->spoofchk = over->spoofchk;
	if (over->fields & IOVK_VF_TRUST)
		c->trust = over->trust;
	c->fields |= over->fields;
}

/* -EOPNOTSUPP, or -ENOENT for a PF without a network interface: the PF cannot do it; else the errno's name. */
static const char *settings_error_name(int r)
{
	return r == -EOPNOTSUPP || r == -ENOENT ? IOVD_ERR_NOT_SUPPORTED : NULL;
}

int vf_settings_apply(struct manager *m, struct allocation *a, const char *pf,
		      const struct iovk_vf_settings *want, sd_bus_error *error)
{
	char err[1024], err2[1024], words[256];
	struct iovk_vf_settings now, previous;
	unsigned index;
	int r, r2;

	iovk_vf_settings_format(want, words, sizeof(words));
	r = m->vf_ops->read(m, pf, a->address, &index, &now, err, sizeof(err));
	if (r < 0)
		return error_set_errnof(error, settings_error_name(r), r,
					"VF %s of pool %s for %s: cannot apply %s: reading the VF through its PF %s: %s",
					a->address, a->pool, a->owner, words, pf, err);
	previous = now;
	previous.fields = want->fields;
	r = m->vf_ops->write(m, pf, index, want, err, sizeof(err));
	if (r < 0) {
		/* iovk_vf_set() undoes the writes before a refused one, but not
		 * a setting the driver accepted and ignored: write the old
		 * values back, which changes only what differs. */
		r2 = m->vf_ops->write(m, pf, index, &previous, err2, sizeof(err2));
		if (r2 < 0)
			log_error("VF %s: putting back its settings after a failed Allocate failed: %s", a->address, err2);
		return error_set_errnof(error, settings_error_name(r), r,
					"Failed to apply %s to VF %s (VF %u of PF %s) of pool %s for %s: %s; %s", words,
					a->address, index, pf, a->pool, a->owner, err,
					r2 < 0 ? "putting back the previous settings failed too" : "the previous settings are back");
	}
	a->vf_pf = strdup(pf);
	if (!a->vf_pf) {
		(void)m->vf_ops->write(m, pf, index, &previous, err2, sizeof(err2));
		return -ENOMEM;
	}
	a->vf_index = index;
	a->vf_applied = *want;
	a->vf_previous = previous;
	log_debug("VF %s (VF %u of PF %s): applied %s", a->address, index, pf, words);
	return 0;
}

int vf_settings_restore(struct manager *m, struct allocation *a, char *err, size_t size)
{
	struct iovk_vf_settings now;
	unsigned index;
	int r;

	if (!a->vf_pf)
		return 0;
	/* The index is what netlink takes: after the PF's VFs were changed it
	 * may name another VF, which is not ours to touch. */
	r = m->vf_ops->read(m, a->vf_pf, a->address, &index, &now, err, size);
	if (r < 0)
		return r;
	if (index != a->vf_index) {
		snprintf(err, size, "it is VF %u of PF %s now, not VF %u as at its allocation", index, a->vf_pf,
			 a->vf_index);
		return -ESTALE;
	}
	return m->vf_ops->write(m, a->vf_pf, index, &a->vf_previous, err, size);
}
