/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * VF settings without I/O: iproute2's words parsed into struct
 * iovk_vf_settings, the checks every setting passes before anything is
 * written, and the comparison with what a PF reports. Apart from vf.c so the
 * unit tests reach all of it without netlink.
 *
 * The limits are the kernel's (net/core/rtnetlink.c, do_setvfinfo() and the
 * drivers' ndo_set_vf_*): VLAN IDs are 12 bits and QoS (PCP) 3 bits, most
 * drivers refuse more with EINVAL; only 802.1Q and 802.1ad pass
 * IFLA_VF_VLAN_LIST (else EPROTONOSUPPORT); rtnl_set_vf_rate() refuses a
 * non-zero max_tx_rate below min_tx_rate and hands both to the driver as int.
 */
#include <ctype.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "vf-internal.h"

/* The size of the first version of struct iovk_vf_settings: callers built
 * against it pass this sz, and must keep working when members are added. */
#define SETTINGS_SZ_V1 (offsetof(struct iovk_vf_settings, max_tx_rate) + sizeof(uint32_t))

static const struct {
	unsigned field;
	const char *word;
} field_words[] = {
	{ IOVK_VF_MAC, "mac" },
	{ IOVK_VF_VLAN, "vlan" },
	{ IOVK_VF_MIN_TX_RATE, "min_tx_rate" },
	{ IOVK_VF_MAX_TX_RATE, "max_tx_rate" },
	{ IOVK_VF_SPOOFCHK, "spoofchk" },
	{ IOVK_VF_LINK_STATE, "state" },
	{ IOVK_VF_TRUST, "trust" },
};

static const char *const link_state_names[] = {
	[IOVK_VF_LINK_STATE_AUTO] = "auto",
	[IOVK_VF_LINK_STATE_ENABLE] = "enable",
	[IOVK_VF_LINK_STATE_DISABLE] = "disable",
};

_public_ const char *iovk_vf_field_name(unsigned field)
{
	for (size_t i = 0; i < ELEMENTSOF(field_words); i++)
		if (field_words[i].field == field)
			return field_words[i].word;
	return NULL;
}

_public_ const char *iovk_vf_link_state_name(int state)
{
	if (state < 0 || (size_t)state >= ELEMENTSOF(link_state_names))
		return NULL;
	return link_state_names[state];
}

_public_ int iovk_vf_parse_link_state(const char *s, int *ret_state)
{
	assert_return(s && ret_state, -EINVAL);

	for (size_t i = 0; s && i < ELEMENTSOF(link_state_names); i++)
		if (strcmp(s, link_state_names[i]) == 0) {
			*ret_state = (int)i;
			return 0;
		}
	return -EINVAL;
}

_public_ const char *iovk_vf_vlan_proto_name(uint16_t proto)
{
	switch (proto) {
	case IOVK_VF_VLAN_PROTO_8021Q:
		return "802.1Q";
	case IOVK_VF_VLAN_PROTO_8021AD:
		return "802.1ad";
	default:
		return NULL;
	}
}

/* iproute2 (ll_proto_a2n) compares these names without case. */
_public_ int iovk_vf_parse_vlan_proto(const char *s, uint16_t *ret_proto)
{
	assert_return(s && ret_proto, -EINVAL);

	if (s && strcasecmp(s, "802.1Q") == 0)
		*ret_proto = IOVK_VF_VLAN_PROTO_8021Q;
	else if (s && strcasecmp(s, "802.1ad") == 0)
		*ret_proto = IOVK_VF_VLAN_PROTO_8021AD;
	else
		return -EINVAL;
	return 0;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Only the syntax: six octets of one or two hex digits, ':' between. */
static int mac_syntax(const char *s, uint8_t ret_mac[static 6])
{
	uint8_t mac[6];
	const char *p = s;

	if (!s)
		return -EINVAL;
	for (size_t i = 0; i < 6; i++) {
		int hi = hex_value(p[0]), lo;

		if (hi < 0)
			return -EINVAL;
		lo = hex_value(p[1]);
		if (lo >= 0) {
			mac[i] = (uint8_t)(hi << 4 | lo);
			p += 2;
		} else {
			mac[i] = (uint8_t)hi;
			p += 1;
		}
		if (i < 5 && *p++ != ':')
			return -EINVAL;
	}
	if (*p)
		return -EINVAL;
	memcpy(ret_mac, mac, 6);
	return 0;
}

static bool mac_is_zero(const uint8_t mac[static 6])
{
	static const uint8_t zero[6];

	return memcmp(mac, zero, 6) == 0;
}

_public_ int iovk_vf_parse_mac(const char *s, uint8_t ret_mac[static 6])
{
	uint8_t mac[6];

	assert_return(s && ret_mac, -EINVAL);
	if (mac_syntax(s, mac) < 0)
		return -EINVAL;
	/* The I/G bit: multicast, broadcast included. No PF driver takes one. */
	if (mac[0] & 1)
		return -EINVAL;
	memcpy(ret_mac, mac, 6);
	return mac_is_zero(mac) ? 1 : 0;
}

_public_ char *iovk_vf_format_mac(const uint8_t mac[static 6], char buf[static IOVK_VF_MAC_STRING_MAX])
{
	snprintf(buf, IOVK_VF_MAC_STRING_MAX, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
		 mac[4], mac[5]);
	return buf;
}

int vf_settings_copy(struct iovk_ctx *ctx, const struct iovk_vf_settings *in, struct iovk_vf_settings *out)
{
	struct iovk_vf_settings s = { .sz = sizeof(s) };

	if (!in) {
		if (ctx)
			set_error(ctx, -EINVAL, "struct iovk_vf_settings: NULL");
		return -EINVAL;
	}
	if (opts_valid(ctx, in, in->sz, SETTINGS_SZ_V1, sizeof(s), "iovk_vf_settings", "IOVK_VF_SETTINGS_INIT") < 0)
		return -EINVAL;
	memcpy(&s, in, in->sz < sizeof(s) ? in->sz : sizeof(s));
	s.sz = sizeof(s);
	*out = s;
	return 0;
}

_public_ int iovk_vf_settings_check(struct iovk_ctx *ctx, const struct iovk_vf_settings *settings)
{
	struct iovk_vf_settings s;
	char mac[IOVK_VF_MAC_STRING_MAX];
	int r;

	clear_error(ctx);
	r = vf_settings_copy(ctx, settings, &s);
	if (r < 0)
		return r;
	if (s.fields & ~IOVK_VF_ALL_FIELDS)
		return set_error(ctx, -EINVAL, "unknown VF setting bits 0x%x", s.fields & ~IOVK_VF_ALL_FIELDS);
	if (s.fields & IOVK_VF_MAC) {
		if (s.mac[0] & 1)
			return set_error(ctx, -EINVAL, "mac: %s is a multicast address; a VF needs a unicast one",
					 iovk_vf_format_mac(s.mac, mac));
		if (mac_is_zero(s.mac) && !s.clear_mac)
			return set_error(ctx, -EINVAL, "mac: 00:00:00:00:00:00 clears the admin MAC; say so "
					 "(clear_mac) if that is meant");
	}
	if (s.fields & IOVK_VF_VLAN) {
		if (s.vlan > IOVK_VF_VLAN_MAX)
			return set_error(ctx, -EINVAL, "vlan: %u is not a VLAN ID (0 to %u)", s.vlan, IOVK_VF_VLAN_MAX);
		if (s.qos > IOVK_VF_QOS_MAX)
			return set_error(ctx, -EINVAL, "qos: %u is not a QoS priority (0 to %u)", s.qos,
					 IOVK_VF_QOS_MAX);
		if (!iovk_vf_vlan_proto_name(vf_vlan_proto_or_default(s.vlan_proto)))
			return set_error(ctx, -EINVAL, "proto: 0x%04x is not a VLAN protocol (802.1Q or 802.1ad)",
					 s.vlan_proto);
	}
	if ((s.fields & IOVK_VF_LINK_STATE) && !iovk_vf_link_state_name(s.link_state))
		return set_error(ctx, -EINVAL, "state: %d is not a link state (auto, enable or disable)",
				 s.link_state);
	if ((s.fields & IOVK_VF_MIN_TX_RATE) && s.min_tx_rate > IOVK_VF_RATE_MAX)
		return set_error(ctx, -EINVAL, "min_tx_rate: %u is above %u Mbit/s", s.min_tx_rate, IOVK_VF_RATE_MAX);
	if ((s.fields & IOVK_VF_MAX_TX_RATE) && s.max_tx_rate > IOVK_VF_RATE_MAX)
		return set_error(ctx, -EINVAL, "max_tx_rate: %u is above %u Mbit/s", s.max_tx_rate, IOVK_VF_RATE_MAX);
	/* max_tx_rate 0 is "no limit", which any guarantee fits under. */
	if ((s.fields & IOVK_VF_MIN_TX_RATE) && (s.fields & IOVK_VF_MAX_TX_RATE) && s.max_tx_rate &&
	    s.min_tx_rate > s.max_tx_rate)
		return set_error(ctx, -EINVAL, "min_tx_rate %u is above max_tx_rate %u", s.min_tx_rate,
				 s.max_tx_rate);
	return 0;
}

/* A decimal number 0..max: digits only, no sign, blanks or prefix. */
static bool parse_number(const char *s, unsigned long max, unsigned long *ret)
{
	unsigned long v = 0;

	if (!s || !*s || strlen(s) > 10)
		return false;
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9')
			return false;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v > max)
		return false;
	*ret = v;
	return true;
}

static int parse_on_off(const char *s, bool *ret)
{
	if (strcmp(s, "on") == 0)
		*ret = true;
	else if (strcmp(s, "off") == 0)
		*ret = false;
	else
		return -EINVAL;
	return 0;
}

_public_ int iovk_vf_settings_parse(struct iovk_ctx *ctx, int argc, char *const *argv,
				    struct iovk_vf_settings *settings)
{
	struct iovk_vf_settings s;
	unsigned long v;
	unsigned seen = 0;
	size_t sz;
	int r;

	assert_return((argv || argc == 0) && settings, -EINVAL);
	clear_error(ctx);
	r = vf_settings_copy(ctx, settings, &s);
	if (r < 0)
		return r;
	if (argc <= 0)
		return set_error(ctx, -EINVAL,
				 "no VF setting given (mac, vlan, min_tx_rate, max_tx_rate, spoofchk, trust, state)");

	for (int i = 0; i < argc; i++) {
		const char *word = argv[i], *arg;
		unsigned field = 0;

		for (size_t k = 0; k < ELEMENTSOF(field_words); k++)
			if (strcmp(word, field_words[k].word) == 0)
				field = field_words[k].field;
		if (!field) {
			if (strcmp(word, "qos") == 0 || strcmp(word, "proto") == 0)
				return set_error(ctx, -EINVAL, "%s: only right after 'vlan VLANID' (qos before proto)",
						 word);
			if (strcmp(word, "rate") == 0)
				return set_error(ctx, -EINVAL, "rate: the old word for max_tx_rate; use max_tx_rate");
			return set_error(ctx, -EINVAL,
					 "'%s' is not a VF setting (mac, vlan, min_tx_rate, max_tx_rate, spoofchk, "
					 "trust, state)", word);
		}
		/* iproute2 lets a later word win; for settings that an
		 * operator means once, a repeat is more likely a mistake. */
		if (seen & field)
			return set_error(ctx, -EINVAL, "%s: given twice", word);
		seen |= field;
		if (i + 1 >= argc)
			return set_error(ctx, -EINVAL, "%s: needs a value", word);
		arg = argv[++i];

		switch (field) {
		case IOVK_VF_MAC:
			if (mac_syntax(arg, s.mac) < 0)
				return set_error(ctx, -EINVAL, "mac: '%s' is not a MAC address (xx:xx:xx:xx:xx:xx)", arg);
			if (s.mac[0] & 1)
				return set_error(ctx, -EINVAL, "mac: '%s' is a multicast address; a VF needs a unicast one",
						 arg);
			/* Typing six zero octets is deliberate: it clears. */
			s.clear_mac = mac_is_zero(s.mac);
			break;
		case IOVK_VF_VLAN:
			if (!parse_number(arg, IOVK_VF_VLAN_MAX, &v))
				return set_error(ctx, -EINVAL, "vlan: '%s' is not a VLAN ID (0 to %u)", arg,
						 IOVK_VF_VLAN_MAX);
			/* As iproute2: vlan resets qos and proto to their defaults. */
			s.vlan = (uint16_t)v;
			s.qos = 0;
			s.vlan_proto = IOVK_VF_VLAN_PROTO_8021Q;
			if (i + 1 < argc && strcmp(argv[i + 1], "qos") == 0) {
				if (i + 2 >= argc)
					return set_error(ctx, -EINVAL, "qos: needs a value");
				if (!parse_number(argv[i + 2], IOVK_VF_QOS_MAX, &v))
					return set_error(ctx, -EINVAL, "qos: '%s' is not a QoS priority (0 to %u)",
							 argv[i + 2], IOVK_VF_QOS_MAX);
				s.qos = (uint8_t)v;
				i += 2;
			}
			if (i + 1 < argc && strcmp(argv[i + 1], "proto") == 0) {
				if (i + 2 >= argc)
					return set_error(ctx, -EINVAL, "proto: needs a value");
				if (iovk_vf_parse_vlan_proto(argv[i + 2], &s.vlan_proto) < 0)
					return set_error(ctx, -EINVAL,
							 "proto: '%s' is not a VLAN protocol (802.1Q or 802.1ad)",
							 argv[i + 2]);
				i += 2;
			}
			break;
		case IOVK_VF_MIN_TX_RATE:
		case IOVK_VF_MAX_TX_RATE:
			if (!parse_number(arg, IOVK_VF_RATE_MAX, &v))
				return set_error(ctx, -EINVAL, "%s: '%s' is not a rate in Mbit/s (0 to %u)", word, arg,
						 IOVK_VF_RATE_MAX);
			if (field == IOVK_VF_MIN_TX_RATE)
				s.min_tx_rate = (uint32_t)v;
			else
				s.max_tx_rate = (uint32_t)v;
			break;
		case IOVK_VF_SPOOFCHK:
		case IOVK_VF_TRUST:
			if (parse_on_off(arg, field == IOVK_VF_SPOOFCHK ? &s.spoofchk : &s.trust) < 0)
				return set_error(ctx, -EINVAL, "%s: '%s' is not on or off", word, arg);
			break;
		case IOVK_VF_LINK_STATE:
			if (iovk_vf_parse_link_state(arg, &s.link_state) < 0)
				return set_error(ctx, -EINVAL, "state: '%s' is not a link state (auto, enable or disable)",
						 arg);
			break;
		}
		s.fields |= field;
	}

	r = iovk_vf_settings_check(ctx, &s);
	if (r < 0)
		return r;
	/* Back in the caller's layout: no more than the sz it knows. */
	sz = settings->sz;
	memcpy(settings, &s, sz < sizeof(s) ? sz : sizeof(s));
	settings->sz = sz;
	return 0;
}

static bool vlan_matches(const struct iovk_vf_settings *s, const struct iovk_vf_info *info)
{
	if (s->vlan == 0 && s->qos == 0)
		return info->n_vlans == 0;
	return info->n_vlans == 1 && info->vlans[0].vlan == s->vlan && info->vlans[0].qos == s->qos &&
	       vf_vlan_proto_or_default(info->vlans[0].proto) == vf_vlan_proto_or_default(s->vlan_proto);
}

_public_ unsigned iovk_vf_settings_diff(const struct iovk_vf_settings *settings, const struct iovk_vf_info *info,
					unsigned *ret_unverifiable)
{
	struct iovk_vf_settings s;
	unsigned differ = 0, unverifiable = 0;

	if (vf_settings_copy(NULL, settings, &s) < 0)
		return IOVK_VF_ALL_FIELDS;
	if ((s.fields & IOVK_VF_MAC) && memcmp(s.mac, info->mac, 6) != 0)
		differ |= IOVK_VF_MAC;
	if ((s.fields & IOVK_VF_VLAN) && !vlan_matches(&s, info))
		differ |= IOVK_VF_VLAN;
	if ((s.fields & IOVK_VF_MIN_TX_RATE) && s.min_tx_rate != info->min_tx_rate)
		differ |= IOVK_VF_MIN_TX_RATE;
	if ((s.fields & IOVK_VF_MAX_TX_RATE) && s.max_tx_rate != info->max_tx_rate)
		differ |= IOVK_VF_MAX_TX_RATE;
	/* The kernel reports -1 when the driver does not say. */
	if (s.fields & IOVK_VF_SPOOFCHK) {
		if (info->spoofchk < 0)
			unverifiable |= IOVK_VF_SPOOFCHK;
		else if ((info->spoofchk != 0) != s.spoofchk)
			differ |= IOVK_VF_SPOOFCHK;
	}
	if ((s.fields & IOVK_VF_LINK_STATE) && s.link_state != info->link_state)
		differ |= IOVK_VF_LINK_STATE;
	if (s.fields & IOVK_VF_TRUST) {
		if (info->trust < 0)
			unverifiable |= IOVK_VF_TRUST;
		else if ((info->trust != 0) != s.trust)
			differ |= IOVK_VF_TRUST;
	}
	if (ret_unverifiable)
		*ret_unverifiable = unverifiable;
	return differ;
}

char *vf_describe_settings(unsigned field, const struct iovk_vf_settings *s, char *buf, size_t size)
{
	char mac[IOVK_VF_MAC_STRING_MAX];

	switch (field) {
	case IOVK_VF_MAC:
		snprintf(buf, size, "mac %s", iovk_vf_format_mac(s->mac, mac));
		break;
	case IOVK_VF_VLAN:
		snprintf(buf, size, "vlan %u qos %u proto %s", s->vlan, s->qos,
			 iovk_vf_vlan_proto_name(vf_vlan_proto_or_default(s->vlan_proto)) ?: "?");
		break;
	case IOVK_VF_MIN_TX_RATE:
		snprintf(buf, size, "min_tx_rate %u", s->min_tx_rate);
		break;
	case IOVK_VF_MAX_TX_RATE:
		snprintf(buf, size, "max_tx_rate %u", s->max_tx_rate);
		break;
	case IOVK_VF_MIN_TX_RATE | IOVK_VF_MAX_TX_RATE:
		snprintf(buf, size, "min_tx_rate %u max_tx_rate %u", s->min_tx_rate, s->max_tx_rate);
		break;
	case IOVK_VF_SPOOFCHK:
		snprintf(buf, size, "spoofchk %s", s->spoofchk ? "on" : "off");
		break;
	case IOVK_VF_LINK_STATE:
		snprintf(buf, size, "state %s", iovk_vf_link_state_name(s->link_state) ?: "?");
		break;
	case IOVK_VF_TRUST:
		snprintf(buf, size, "trust %s", s->trust ? "on" : "off");
		break;
	default:
		snprintf(buf, size, "?");
	}
	return buf;
}

static const char *on_off_unknown(int v)
{
	return v < 0 ? "unreported" : v ? "on" : "off";
}

char *vf_describe_info(unsigned field, const struct iovk_vf_info *info, char *buf, size_t size)
{
	char mac[IOVK_VF_MAC_STRING_MAX];

	switch (field) {
	case IOVK_VF_MAC:
		snprintf(buf, size, "mac %s", iovk_vf_format_mac(info->mac, mac));
		break;
	case IOVK_VF_VLAN:
		if (info->n_vlans == 0)
			snprintf(buf, size, "vlan 0");
		else
			snprintf(buf, size, "vlan %u qos %u proto %s", info->vlans[0].vlan, info->vlans[0].qos,
				 iovk_vf_vlan_proto_name(vf_vlan_proto_or_default(info->vlans[0].proto)) ?: "?");
		break;
	case IOVK_VF_MIN_TX_RATE:
		snprintf(buf, size, "min_tx_rate %u", info->min_tx_rate);
		break;
	case IOVK_VF_MAX_TX_RATE:
		snprintf(buf, size, "max_tx_rate %u", info->max_tx_rate);
		break;
	case IOVK_VF_MIN_TX_RATE | IOVK_VF_MAX_TX_RATE:
		snprintf(buf, size, "min_tx_rate %u max_tx_rate %u", info->min_tx_rate, info->max_tx_rate);
		break;
	case IOVK_VF_SPOOFCHK:
		snprintf(buf, size, "spoofchk %s", on_off_unknown(info->spoofchk));
		break;
	case IOVK_VF_LINK_STATE:
		snprintf(buf, size, "state %s", iovk_vf_link_state_name(info->link_state) ?: "?");
		break;
	case IOVK_VF_TRUST:
		snprintf(buf, size, "trust %s", on_off_unknown(info->trust));
		break;
	default:
		snprintf(buf, size, "?");
	}
	return buf;
}

void vf_settings_from_info(const struct iovk_vf_info *info, struct iovk_vf_settings *ret)
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

_public_ char *iovk_vf_settings_format(const struct iovk_vf_settings *s, char *buf, size_t size)
{
	/* iproute2's order (ip link set DEV vf N mac .. vlan .. qos .. proto
	 * .. min_tx_rate .. max_tx_rate .. spoofchk .. state .. trust ..);
	 * 802.1Q, the default protocol, goes unsaid as ip link says it. */
	static const unsigned order[] = { IOVK_VF_MAC, IOVK_VF_VLAN, IOVK_VF_MIN_TX_RATE, IOVK_VF_MAX_TX_RATE,
					  IOVK_VF_SPOOFCHK, IOVK_VF_LINK_STATE, IOVK_VF_TRUST };
	size_t len = 0;

	if (!buf || size == 0)
		return buf;
	buf[0] = '\0';
	for (size_t i = 0; s && i < ELEMENTSOF(order); i++) {
		char word[64];
		int k;

		if (!(s->fields & order[i]))
			continue;
		if (order[i] == IOVK_VF_VLAN && vf_vlan_proto_or_default(s->vlan_proto) == IOVK_VF_VLAN_PROTO_8021Q)
			snprintf(word, sizeof(word), "vlan %u qos %u", s->vlan, s->qos);
		else
			vf_describe_settings(order[i], s, word, sizeof(word));
		k = snprintf(buf + len, size - len, "%s%s", len ? " " : "", word);
		if (k < 0 || (size_t)k >= size - len) {
			buf[len] = '\0'; /* whole words only */
			break;
		}
		len += (size_t)k;
	}
	return buf;
}
