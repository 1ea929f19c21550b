/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The arguments of the methods: owner names, and Allocate's a{sv} of
 * options, each checked and refused with an InvalidArgument that names it.
 */
#include <inttypes.h>
#include <string.h>

#include "iovd.h"

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("._:@/+=-", c);
}

bool owner_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > IOVD_NAME_MAX)
		return false;
	for (; *s; s++)
		if (!name_char(*s))
			return false;
	return true;
}

int check_name(const char *what, const char *s, sd_bus_error *error)
{
	size_t n = strlen(s);

	if (owner_name_valid(s))
		return 0;
	if (n == 0 || n > IOVD_NAME_MAX)
		return sd_bus_error_setf(error, IOVD_ERR_INVALID, "%s must be 1 to %d characters long, not %zu", what,
					 IOVD_NAME_MAX, n);
	return sd_bus_error_setf(error, IOVD_ERR_INVALID,
				 "%s '%.64s%s' has a character other than A-Z a-z 0-9 . _ : @ / + = -", what, s,
				 n > 64 ? "..." : "");
}

/* Reads a variant holding one basic value of the given type, or fails naming the option. */
static int read_variant(sd_bus_message *msg, const char *key, char type, void *ret, sd_bus_error *error)
{
	const char sig[2] = { type, 0 };
	int r;

	r = sd_bus_message_enter_container(msg, 'v', sig);
	if (r < 0) {
		const char *contents = NULL;

		(void)sd_bus_message_peek_type(msg, NULL, &contents);
		return sd_bus_error_setf(error, IOVD_ERR_INVALID, "option %s must hold type '%c', not '%s'", key, type,
					 strna(contents));
	}
	r = sd_bus_message_read_basic(msg, type, ret);
	if (r < 0)
		return r;
	return sd_bus_message_exit_container(msg);
}

/*
 * Reads a variant holding an integer of any D-Bus type (busctl's "q 100" and
 * gdbus's "<100>", an int32, mean the same VLAN) into [min, max].
 */
static int read_integer_variant(sd_bus_message *msg, const char *key, int64_t min, int64_t max, int64_t *ret,
				sd_bus_error *error)
{
	const char *contents = NULL;
	union {
		uint8_t y;
		int16_t n;
		uint16_t q;
		int32_t i;
		uint32_t u;
		int64_t x;
		uint64_t t;
	} v;
	int64_t value;
	int r;

	r = sd_bus_message_peek_type(msg, NULL, &contents);
	if (r < 0)
		return r;
	if (!contents || strlen(contents) != 1 || !strchr("ynqiuxt", contents[0]))
		return sd_bus_error_setf(error, IOVD_ERR_INVALID, "option %s must hold an integer, not '%s'", key,
					 strna(contents));
	r = read_variant(msg, key, contents[0], &v, error);
	if (r < 0)
		return r;
	switch (contents[0]) {
	case 'y': value = v.y; break;
	case 'n': value = v.n; break;
	case 'q': value = v.q; break;
	case 'i': value = v.i; break;
	case 'u': value = v.u; break;
	case 'x': value = v.x; break;
	default: value = v.t > INT64_MAX ? INT64_MAX : (int64_t)v.t; break;
	}
	if (value < min || value > max)
		return sd_bus_error_setf(error, IOVD_ERR_INVALID, "option %s must be %" PRId64 " to %" PRId64 ", not %" PRId64,
					 key, min, max, value);
	*ret = value;
	return 0;
}

int parse_options(sd_bus_message *msg, struct alloc_options *o, sd_bus_error *error)
{
	static const char *const known[] = { "driver", "numa", "address", "mac", "vlan", "qos", "spoofchk", "trust" };
	unsigned seen = 0;
	bool has_qos = false;
	int r;

	*o = (struct alloc_options){ .driver = -1, .numa = -1 };
	r = sd_bus_message_enter_container(msg, 'a', "{sv}");
	if (r < 0)
		return r;
	while ((r = sd_bus_message_enter_container(msg, 'e', "sv")) > 0) {
		const char *key, *s;
		int64_t n;
		int b;

		r = sd_bus_message_read_basic(msg, 's', &key);
		if (r < 0)
			return r;
		/* Every key at most once, so the array is bounded by the keys known. */
		for (unsigned i = 0; i < ELEMENTSOF(known); i++)
			if (strcmp(key, known[i]) == 0) {
				if (seen & (1u << i))
					return sd_bus_error_setf(error, IOVD_ERR_INVALID, "option %s given twice", key);
				seen |= 1u << i;
			}
		if (strcmp(key, "driver") == 0) {
			r = read_variant(msg, key, 's', &s, error);
			if (r < 0)
				return r;
			if (strcmp(s, "vfio-pci") == 0)
				o->driver = POOL_DRIVER_VFIO;
			else if (strcmp(s, "kernel") == 0)
				o->driver = POOL_DRIVER_KERNEL;
			else
				return sd_bus_error_setf(error, IOVD_ERR_INVALID,
							 "option driver must be \"vfio-pci\" or \"kernel\", not '%.64s'", s);
		} else if (strcmp(key, "numa") == 0) {
			int32_t v;

			r = read_variant(msg, key, 'i', &v, error);
			if (r < 0)
				return r;
			if (v < -1 || v > 4095)
				return sd_bus_error_setf(error, IOVD_ERR_INVALID,
							 "option numa must be a NUMA node 0 to 4095 or -1, not %d", v);
			o->numa = v;
		} else if (strcmp(key, "address") == 0) {
			struct iovk_pci_addr addr;

			r = read_variant(msg, key, 's', &s, error);
			if (r < 0)
				return r;
			if (iovk_pci_addr_parse(s, &addr) < 0)
				return sd_bus_error_setf(error, IOVD_ERR_INVALID, "option address: '%.64s' is not a PCI address", s);
			o->address = s;
		} else if (strcmp(key, "mac") == 0) {
			r = read_variant(msg, key, 's', &s, error);
			if (r < 0)
				return r;
			/* all zero is accepted: it clears the admin MAC */
			if (iovk_vf_parse_mac(s, o->vf.mac) < 0)
				return sd_bus_error_setf(error, IOVD_ERR_INVALID,
							 "option mac: '%.64s' is not a unicast MAC address", s);
			o->vf.fields |= IOVK_VF_MAC;
		} else if (strcmp(key, "vlan") == 0) {
			r = read_integer_variant(msg, key, 0, IOVK_VF_VLAN_MAX, &n, error);
			if (r < 0)
				return r;
			o->vf.vlan = (uint16_t)n;
			o->vf.fields |= IOVK_VF_VLAN;
		} else if (strcmp(key, "qos") == 0) {
			r = read_integer_variant(msg, key, 0, IOVK_VF_QOS_MAX, &n, error);
			if (r < 0)
				return r;
			o->vf.qos = (uint8_t)n;
			has_qos = true;
		} else if (strcmp(key, "spoofchk") == 0 || strcmp(key, "trust") == 0) {
			r = read_variant(msg, key, 'b', &b, error);
			if (r < 0)
				return r;
			if (key[0] == 's') {
				o->vf.spoofchk = b;
				o->vf.fields |= IOVK_VF_SPOOFCHK;
			} else {
				o->vf.trust = b;
				o->vf.fields |= IOVK_VF_TRUST;
			}
		} else if ((r = failover_parse_option(msg, key, &o->failover, error)) != 0) {
			if (r < 0)
				return r;
		} else {
			return sd_bus_error_setf(error, IOVD_ERR_INVALID,
						 "unknown option '%.64s'; known: driver, numa, address, mac, vlan, qos, "
						 "spoofchk, trust, failover, bond, standby, macvtap_mode", key);
		}
		r = sd_bus_message_exit_container(msg);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	if (has_qos && !(o->vf.fields & IOVK_VF_VLAN))
		return sd_bus_error_setf(error, IOVD_ERR_INVALID, "option qos needs option vlan (qos is the priority of "
					 "the VLAN's tags)");
	r = failover_check_options(&o->failover, &o->driver, error);
	if (r < 0)
		return r;
	return sd_bus_message_exit_container(msg);
}
