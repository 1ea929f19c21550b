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
