// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * VF settings without netlink: MAC, VLAN, rates and link state parsed and
 * checked, iproute2's grammar, the comparison that finds settings a driver
 * ignored, and how a PF given by PCI address is turned into its interface
 * (against the fixture hosts; the netlink request that follows then fails
 * for the fixture's interface name, which is what these tests check). The
 * kernel's side is proven in tests/host (a private network namespace) and
 * tests/vm/cases/60-vf-netdevsim.sh.
 */
#include "fixture.h"

static bool has(struct iovk_ctx *ctx, const char *text)
{
	return strstr(iovk_ctx_get_error(ctx), text) != NULL;
}

static struct iovk_ctx *plain_ctx(void)
{
	struct iovk_ctx *ctx = NULL;

	cr_assert_eq(iovk_ctx_new(&ctx), 0);
	return ctx;
}

/* Parses a settings line given as one string, words split at blanks. */
static int parse_line(struct iovk_ctx *ctx, const char *line, struct iovk_vf_settings *s)
{
	char buf[512], *argv[64];
	int argc = 0;

	snprintf(buf, sizeof(buf), "%s", line);
	for (char *tok = strtok(buf, " "); tok && argc < 64; tok = strtok(NULL, " "))
		argv[argc++] = tok;
	return iovk_vf_settings_parse(ctx, argc, argv, s);
}

Test(vf, parse_mac)
{
	uint8_t mac[6], keep[6] = { 9, 9, 9, 9, 9, 9 };
	char buf[IOVK_VF_MAC_STRING_MAX];
	static const char *const bad[] = {
		"", "02:00:00:00:00", "02:00:00:00:00:00:00", "0g:00:00:00:00:01", "002:00:00:00:00:01",
		"02-00-00-00-00-01", "02:00:00:00:00:01:", ":02:00:00:00:00:01", "02::00:00:00:01", "020000000001",
		"02:00:00:00:00:01 ", " 02:00:00:00:00:01",
		"01:00:5e:00:00:01", /* multicast */
		"ff:ff:ff:ff:ff:ff", /* broadcast */
		"03:00:00:00:00:00", /* the I/G bit alone */
	};

	cr_assert_eq(iovk_vf_parse_mac("02:1A:b2:03:04:ff", mac), 0);
	cr_assert_str_eq(iovk_vf_format_mac(mac, buf), "02:1a:b2:03:04:ff");
	/* iproute2 takes single-digit octets too */
	cr_assert_eq(iovk_vf_parse_mac("2:0:0:0:a:1", mac), 0);
	cr_assert_str_eq(iovk_vf_format_mac(mac, buf), "02:00:00:00:0a:01");
	cr_assert_eq(iovk_vf_parse_mac("00:00:00:00:00:00", mac), 1, "all-zero is told apart");
	cr_assert_str_eq(iovk_vf_format_mac(mac, buf), "00:00:00:00:00:00");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(mac, keep, 6);
		cr_assert_eq(iovk_vf_parse_mac(bad[i], mac), -EINVAL, "'%s' must be refused", bad[i]);
		cr_assert_eq(memcmp(mac, keep, 6), 0, "'%s': ret_mac touched on failure", bad[i]);
	}
	cr_assert_eq(iovk_vf_parse_mac(NULL, mac), -EINVAL);
}

Test(vf, names_of_protocols_states_and_fields)
{
	uint16_t proto = 7;
	int state = 7;

	cr_assert_eq(iovk_vf_parse_vlan_proto("802.1Q", &proto), 0);
	cr_assert_eq(proto, IOVK_VF_VLAN_PROTO_8021Q);
	cr_assert_eq(iovk_vf_parse_vlan_proto("802.1AD", &proto), 0);
	cr_assert_eq(proto, IOVK_VF_VLAN_PROTO_8021AD);
	cr_assert_eq(iovk_vf_parse_vlan_proto("802.1q", &proto), 0);
	cr_assert_eq(proto, IOVK_VF_VLAN_PROTO_8021Q);
	cr_assert_eq(iovk_vf_parse_vlan_proto("0x8100", &proto), -EINVAL);
	cr_assert_eq(iovk_vf_parse_vlan_proto("802.1x", &proto), -EINVAL);
	cr_assert_eq(proto, IOVK_VF_VLAN_PROTO_8021Q, "untouched on failure");
	cr_assert_str_eq(iovk_vf_vlan_proto_name(0x8100), "802.1Q");
	cr_assert_str_eq(iovk_vf_vlan_proto_name(0x88a8), "802.1ad");
	cr_assert_null(iovk_vf_vlan_proto_name(0x9100));

	cr_assert_eq(iovk_vf_parse_link_state("disable", &state), 0);
	cr_assert_eq(state, IOVK_VF_LINK_STATE_DISABLE);
	cr_assert_eq(iovk_vf_parse_link_state("enable", &state), 0);
	cr_assert_eq(state, IOVK_VF_LINK_STATE_ENABLE);
	cr_assert_eq(iovk_vf_parse_link_state("auto", &state), 0);
	cr_assert_eq(state, IOVK_VF_LINK_STATE_AUTO);
	cr_assert_eq(iovk_vf_parse_link_state("up", &state), -EINVAL);
	cr_assert_eq(iovk_vf_parse_link_state("Auto", &state), -EINVAL);
	cr_assert_str_eq(iovk_vf_link_state_name(2), "disable");
	cr_assert_null(iovk_vf_link_state_name(3));
	cr_assert_null(iovk_vf_link_state_name(-1));

	cr_assert_str_eq(iovk_vf_field_name(IOVK_VF_MAC), "mac");
	cr_assert_str_eq(iovk_vf_field_name(IOVK_VF_LINK_STATE), "state");
	cr_assert_str_eq(iovk_vf_field_name(IOVK_VF_MIN_TX_RATE), "min_tx_rate");
	cr_assert_null(iovk_vf_field_name(IOVK_VF_MAC | IOVK_VF_VLAN));
	cr_assert_null(iovk_vf_field_name(1u << 7));
}

Test(vf, iproute2_grammar)
{
	struct iovk_ctx *ctx = plain_ctx();
	IOVK_VF_SETTINGS(s);

	cr_assert_eq(parse_line(ctx, "mac 02:11:22:33:44:55 vlan 10 qos 3 proto 802.1ad spoofchk off trust on "
				     "state disable min_tx_rate 10 max_tx_rate 100", &s), 0, "%s",
		     iovk_ctx_get_error(ctx));
	cr_assert_eq(s.sz, sizeof(s));
	cr_assert_eq(s.fields, IOVK_VF_ALL_FIELDS);
	cr_assert_eq(memcmp(s.mac, (uint8_t[]){ 2, 0x11, 0x22, 0x33, 0x44, 0x55 }, 6), 0);
	cr_assert_not(s.clear_mac);
	cr_assert_eq(s.vlan, 10);
	cr_assert_eq(s.qos, 3);
	cr_assert_eq(s.vlan_proto, IOVK_VF_VLAN_PROTO_8021AD);
	cr_assert_not(s.spoofchk);
	cr_assert(s.trust);
	cr_assert_eq(s.link_state, IOVK_VF_LINK_STATE_DISABLE);
	cr_assert_eq(s.min_tx_rate, 10);
	cr_assert_eq(s.max_tx_rate, 100);

	/* order of words is free; vlan alone means qos 0, 802.1Q */
	s = (struct iovk_vf_settings)IOVK_VF_SETTINGS_INIT;
	cr_assert_eq(parse_line(ctx, "trust off vlan 4095 max_tx_rate 0", &s), 0, "%s", iovk_ctx_get_error(ctx));
	cr_assert_eq(s.fields, IOVK_VF_TRUST | IOVK_VF_VLAN | IOVK_VF_MAX_TX_RATE);
	cr_assert_eq(s.vlan, 4095);
	cr_assert_eq(s.qos, 0);
	cr_assert_eq(s.vlan_proto, IOVK_VF_VLAN_PROTO_8021Q);
	s = (struct iovk_vf_settings)IOVK_VF_SETTINGS_INIT;
	cr_assert_eq(parse_line(ctx, "vlan 0 proto 802.1Q", &s), 0, "%s", iovk_ctx_get_error(ctx));
	cr_assert_eq(s.vlan, 0);

	/* six zero octets are typed on purpose: they clear */
	s = (struct iovk_vf_settings)IOVK_VF_SETTINGS_INIT;
	cr_assert_eq(parse_line(ctx, "mac 00:00:00:00:00:00", &s), 0, "%s", iovk_ctx_get_error(ctx));
	cr_assert(s.clear_mac);

	/* min 0 under any max, min == max, max 0 (no limit) over any min */
	s = (struct iovk_vf_settings)IOVK_VF_SETTINGS_INIT;
	cr_assert_eq(parse_line(ctx, "min_tx_rate 100 max_tx_rate 100", &s), 0);
	s = (struct iovk_vf_settings)IOVK_VF_SETTINGS_INIT;
	cr_assert_eq(parse_line(ctx, "min_tx_rate 500 max_tx_rate 0", &s), 0);
	s = (struct iovk_vf_settings)IOVK_VF_SETTINGS_INIT;
	cr_assert_eq(parse_line(ctx, "max_tx_rate 2147483647", &s), 0);
	iovk_ctx_unref(ctx);
}

Test(vf, iproute2_grammar_errors_name_the_word)
{
	static const struct {
		const char *line, *error;
	} cases[] = {
		{ "", "no VF setting given" },
		{ "mac 01:00:00:00:00:01", "mac: '01:00:00:00:00:01' is a multicast address" },
		{ "mac ff:ff:ff:ff:ff:ff", "is a multicast address" },
		{ "mac 02:00:00:00:00", "mac: '02:00:00:00:00' is not a MAC address" },
		{ "mac zz", "is not a MAC address" },
		{ "vlan 4096", "vlan: '4096' is not a VLAN ID (0 to 4095)" },
		{ "vlan -1", "vlan: '-1' is not a VLAN ID" },
		{ "vlan 0x10", "vlan: '0x10' is not a VLAN ID" },
		{ "vlan 10 qos 8", "qos: '8' is not a QoS priority (0 to 7)" },
		{ "vlan 10 qos", "qos: needs a value" },
		{ "vlan 10 proto 802.1x", "proto: '802.1x' is not a VLAN protocol (802.1Q or 802.1ad)" },
		{ "vlan 10 proto 802.1ad qos 3", "qos: only right after 'vlan VLANID'" },
		{ "qos 3", "qos: only right after 'vlan VLANID'" },
		{ "proto 802.1ad", "proto: only right after" },
		{ "vlan 10 trust on qos 2", "qos: only right after" },
		{ "vlan", "vlan: needs a value" },
		{ "trust on trust off", "trust: given twice" },
		{ "vlan 1 vlan 2", "vlan: given twice" },
		{ "spoofchk yes", "spoofchk: 'yes' is not on or off" },
		{ "trust 1", "trust: '1' is not on or off" },
		{ "state up", "state: 'up' is not a link state (auto, enable or disable)" },
		{ "min_tx_rate 10 max_tx_rate 5", "min_tx_rate 10 is above max_tx_rate 5" },
		{ "max_tx_rate 2147483648", "max_tx_rate: '2147483648' is not a rate in Mbit/s" },
		{ "min_tx_rate 1.5", "min_tx_rate: '1.5' is not a rate" },
		{ "rate 100", "use max_tx_rate" },
		{ "spoof on", "'spoof' is not a VF setting" },
		{ "query_rss on", "'query_rss' is not a VF setting" },
	};
	struct iovk_ctx *ctx = plain_ctx();

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		IOVK_VF_SETTINGS(s);
		struct iovk_vf_settings before;

		s.fields = IOVK_VF_TRUST; /* what the caller had must survive a failure */
		before = s;
		cr_assert_eq(parse_line(ctx, cases[i].line, &s), -EINVAL, "'%s' must be refused", cases[i].line);
		cr_assert(has(ctx, cases[i].error), "'%s': error '%s' lacks '%s'", cases[i].line, iovk_ctx_get_error(ctx),
			  cases[i].error);
		cr_assert_eq(memcmp(&s, &before, sizeof(s)), 0, "'%s': settings touched on failure", cases[i].line);
	}
	iovk_ctx_unref(ctx);
}

Test(vf, settings_check)
{
	struct iovk_ctx *ctx = plain_ctx();
	IOVK_VF_SETTINGS(s);
	struct {
		struct iovk_vf_settings s;
		uint64_t future;
	} bigger = { IOVK_VF_SETTINGS_INIT, 0 };

	cr_assert_eq(iovk_vf_settings_check(ctx, &s), 0, "nothing to change is fine");
	s.fields = IOVK_VF_MAC;
	cr_assert_eq(iovk_vf_settings_check(ctx, &s), -EINVAL);
	cr_assert(has(ctx, "00:00:00:00:00:00 clears the admin MAC"), "%s", iovk_ctx_get_error(ctx));
	s.clear_mac = true;
	cr_assert_eq(iovk_vf_settings_check(ctx, &s), 0);
	s.mac[0] = 0x01;
	cr_assert_eq(iovk_vf_settings_check(ctx, &s), -EINVAL);
	cr_assert(has(ctx, "01:00:00:00:00:00 is a multicast address"), "%s", iovk_ctx_get_error(ctx));

	s = (struct iovk_vf_settings)IOVK_VF_SETTINGS_INIT;
	s.fields = IOVK_VF_VLAN;
	s.vlan = 4096;
	cr_assert_eq(iovk_vf_settings_check(ctx, &s), -EINVAL);
	s.vlan = 1;
	s.qos = 8;
	cr_assert_eq(iovk_vf_settings_check(ctx, &s), -EINVAL);
	s.qos = 7;
	s.vlan_proto = 0x9100;
	cr_assert_eq(iovk_vf_settings_check(ctx, &s), -EINVAL);
	cr_assert(has(ctx, "0x9100 is not a VLAN protocol"), "%s", iovk_ctx_get_error(ctx));
	s.vlan_proto = 0; /* default: 802.1Q */
	cr_assert_eq(iovk_vf_settings_check(ctx, &s), 0);

	s = (struct iovk_vf_settings)IOVK_VF_SETTINGS_INIT;
	s.fields = IOVK_VF_LINK_STATE;
	s.link_state = 3;
	cr_assert_eq(iovk_vf_settings_check(ctx, &s), -EINVAL);
	s.fields = IOVK_VF_MIN_TX_RATE | IOVK_VF_MAX_TX_RATE;
	s.min_tx_rate = 20;
	s.max_tx_rate = 10;
	cr_assert_eq(iovk_vf_settings_check(ctx, &s), -EINVAL);
	/* only min given: the max it is compared to is the VF's, at set time */
	s.fields = IOVK_VF_MIN_TX_RATE;
	cr_assert_eq(iovk_vf_settings_check(ctx, &s), 0);
	s.fields = IOVK_VF_MAX_TX_RATE;
	s.max_tx_rate = IOVK_VF_RATE_MAX + 1u;
	cr_assert_eq(iovk_vf_settings_check(ctx, &s), -EINVAL);
	s.fields = 1u << 9;
	cr_assert_eq(iovk_vf_settings_check(ctx, &s), -EINVAL);
	cr_assert(has(ctx, "unknown VF setting bits 0x200"), "%s", iovk_ctx_get_error(ctx));

	/* sz: too small is refused; a newer caller passes if it leaves what
	 * this library does not know at 0 */
	s = (struct iovk_vf_settings)IOVK_VF_SETTINGS_INIT;
	s.sz = 8;
	cr_assert_eq(iovk_vf_settings_check(ctx, &s), -EINVAL);
	cr_assert(has(ctx, "IOVK_VF_SETTINGS_INIT"), "%s", iovk_ctx_get_error(ctx));
	bigger.s.sz = sizeof(bigger);
	cr_assert_eq(iovk_vf_settings_check(ctx, &bigger.s), 0);
	bigger.future = 1;
	cr_assert_eq(iovk_vf_settings_check(ctx, &bigger.s), -EINVAL);
	iovk_ctx_unref(ctx);
}

Test(vf, diff_finds_what_the_driver_did_not_apply)
{
	struct iovk_ctx *ctx = plain_ctx();
	IOVK_VF_SETTINGS(s);
	struct iovk_vf_vlan vlan = { .vlan = 10, .qos = 3, .proto = IOVK_VF_VLAN_PROTO_8021AD };
	struct iovk_vf_info info = {
		.index = 0,
		.mac = { 2, 0x11, 0x22, 0x33, 0x44, 0x55 },
		.vlans = &vlan,
		.n_vlans = 1,
		.spoofchk = 0,
		.trust = 1,
		.link_state = IOVK_VF_LINK_STATE_DISABLE,
		.min_tx_rate = 10,
		.max_tx_rate = 100,
	};
	unsigned unverifiable = 99;

	cr_assert_eq(parse_line(ctx, "mac 02:11:22:33:44:55 vlan 10 qos 3 proto 802.1ad spoofchk off trust on "
				     "state disable min_tx_rate 10 max_tx_rate 100", &s), 0);
	cr_assert_eq(iovk_vf_settings_diff(&s, &info, &unverifiable), 0);
	cr_assert_eq(unverifiable, 0);

	/* a driver that kept trust off and 802.1Q */
	info.trust = 0;
	vlan.proto = IOVK_VF_VLAN_PROTO_8021Q;
	cr_assert_eq(iovk_vf_settings_diff(&s, &info, NULL), IOVK_VF_TRUST | IOVK_VF_VLAN);
	/* one that does not report trust or spoofchk at all */
	info.trust = -1;
	info.spoofchk = -1;
	cr_assert_eq(iovk_vf_settings_diff(&s, &info, &unverifiable), IOVK_VF_VLAN);
	cr_assert_eq(unverifiable, IOVK_VF_TRUST | IOVK_VF_SPOOFCHK);
	info.min_tx_rate = 0;
	info.mac[5] = 0x56;
	cr_assert_eq(iovk_vf_settings_diff(&s, &info, NULL), IOVK_VF_VLAN | IOVK_VF_MIN_TX_RATE | IOVK_VF_MAC);

	/* only the fields asked for count */
	s = (struct iovk_vf_settings)IOVK_VF_SETTINGS_INIT;
	cr_assert_eq(parse_line(ctx, "state disable", &s), 0);
	cr_assert_eq(iovk_vf_settings_diff(&s, &info, NULL), 0);

	/* vlan 0 is "no VLAN", whatever the protocol the driver keeps */
	s = (struct iovk_vf_settings)IOVK_VF_SETTINGS_INIT;
	cr_assert_eq(parse_line(ctx, "vlan 0 proto 802.1ad", &s), 0);
	cr_assert_eq(iovk_vf_settings_diff(&s, &info, NULL), IOVK_VF_VLAN, "the VF still has VLAN 10");
	info.n_vlans = 0;
	cr_assert_eq(iovk_vf_settings_diff(&s, &info, NULL), 0);
	/* a priority tag: VLAN 0 with QoS is a VLAN entry */
	s = (struct iovk_vf_settings)IOVK_VF_SETTINGS_INIT;
	cr_assert_eq(parse_line(ctx, "vlan 0 qos 5", &s), 0);
	cr_assert_eq(iovk_vf_settings_diff(&s, &info, NULL), IOVK_VF_VLAN);
	vlan = (struct iovk_vf_vlan){ .vlan = 0, .qos = 5, .proto = IOVK_VF_VLAN_PROTO_8021Q };
	info.n_vlans = 1;
	cr_assert_eq(iovk_vf_settings_diff(&s, &info, NULL), 0);
	iovk_ctx_unref(ctx);
}

Test(vf, pf_by_pci_address_resolves_to_its_interface)
{
	struct iovk_ctx *ctx = fixture_ctx("sriov-nic");
	struct iovk_vf_list *list = (struct iovk_vf_list *)0x1;

	/* The fixture's enp1s0f0 is not an interface of the machine running
	 * the tests (or, if one has that name, not the fixture's): either way
	 * the request names the interface sysfs gave for the PF. */
	cr_assert_eq(iovk_vf_list_new(ctx, "01:00.0", &list), -ENODEV);
	cr_assert(has(ctx, "enp1s0f0 (PF 0000:01:00.0)"), "%s", iovk_ctx_get_error(ctx));
	cr_assert_eq(list, (struct iovk_vf_list *)0x1, "ret_list untouched on failure");
	cr_assert_eq(iovk_vf_list_new(ctx, "0000:01:00.1", &list), -ENODEV);
	cr_assert(has(ctx, "enp1s0f1 (PF 0000:01:00.1)"), "%s", iovk_ctx_get_error(ctx));

	cr_assert_eq(iovk_vf_list_new(ctx, "01:10.0", &list), -ENOENT);
	cr_assert(has(ctx, "not an SR-IOV physical function: it is a VF of 0000:01:00.0"), "%s",
		  iovk_ctx_get_error(ctx));
	cr_assert_eq(iovk_vf_list_new(ctx, "0000:42:00.0", &list), -ENODEV);
	cr_assert(has(ctx, "no such PCI device"), "%s", iovk_ctx_get_error(ctx));
	cr_assert_eq(iovk_vf_list_new(ctx, "01:00", &list), -EINVAL);
	cr_assert(has(ctx, "'01:00' is not a PCI address"), "%s", iovk_ctx_get_error(ctx));
	cr_assert_eq(iovk_vf_list_new(ctx, "a/b", &list), -EINVAL);
	cr_assert(has(ctx, "'a/b' is neither a PCI address nor a network interface name"), "%s",
		  iovk_ctx_get_error(ctx));
	cr_assert_eq(iovk_vf_list_new(ctx, "0123456789abcdef", &list), -EINVAL, "IFNAMSIZ");
	cr_assert_eq(iovk_vf_list_new(ctx, "", &list), -EINVAL);
	cr_assert_eq(iovk_vf_list_new(ctx, NULL, &list), -EINVAL);
	cr_assert_eq(list, (struct iovk_vf_list *)0x1);
	cr_assert_null(iovk_vf_list_unref(NULL));
	iovk_ctx_unref(ctx);
}

Test(vf, pf_without_interface)
{
	const char *root = fixture_copy("sriov-nic");
	struct iovk_ctx *ctx = fixture_ctx_at(root);
	struct iovk_vf_list *list = NULL;
	char cmd[4096];

	snprintf(cmd, sizeof(cmd), "rm -r '%s/sys/bus/pci/devices/0000:01:00.1/net'", root);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(iovk_vf_list_new(ctx, "01:00.1", &list), -ENOENT);
	cr_assert(has(ctx, "0000:01:00.1: the PF has no network interface (driver ixgbe)"), "%s",
		  iovk_ctx_get_error(ctx));
	iovk_ctx_unref(ctx);
}

Test(vf, set_refuses_bad_input_before_netlink)
{
	struct iovk_ctx *ctx = fixture_ctx("sriov-nic");
	struct iovk_vf_set_result res = { .sz = sizeof(res), .changed = 77 };
	IOVK_VF_SETTINGS(s);

	s.fields = IOVK_VF_VLAN;
	s.vlan = 4096;
	cr_assert_eq(iovk_vf_set(ctx, "01:00.0", 0, &s, &res), -EINVAL);
	cr_assert(has(ctx, "vlan: 4096 is not a VLAN ID"), "%s", iovk_ctx_get_error(ctx));
	cr_assert_eq(res.changed, 0, "result filled on failure");
	cr_assert_eq(res.failed, 0);
	cr_assert_eq(iovk_vf_set(ctx, "01:00.0", 0, NULL, NULL), -EINVAL);
	s.vlan = 5;
	cr_assert_eq(iovk_vf_set(ctx, "zz:00.0", 0, &s, NULL), -EINVAL);
	cr_assert_eq(iovk_vf_set(ctx, "01:10.0", 0, &s, NULL), -ENOENT);
	/* good settings, the fixture's interface: stops at the first read */
	cr_assert_eq(iovk_vf_set(ctx, "01:00.0", 0, &s, &res), -ENODEV);
	cr_assert(has(ctx, "enp1s0f0 (PF 0000:01:00.0)"), "%s", iovk_ctx_get_error(ctx));
	iovk_ctx_unref(ctx);
}

Test(vf, settings_format_in_iproute2_words)
{
	struct iovk_vf_settings s = IOVK_VF_SETTINGS_INIT;
	char buf[256], small[24];

	cr_assert_str_eq(iovk_vf_settings_format(&s, buf, sizeof(buf)), "");
	s.fields = IOVK_VF_TRUST | IOVK_VF_MAC | IOVK_VF_VLAN | IOVK_VF_SPOOFCHK;
	memcpy(s.mac, (uint8_t[]){ 0x02, 0, 0, 0, 0, 1 }, 6);
	s.vlan = 10;
	s.qos = 3;
	s.trust = true;
	cr_assert_str_eq(iovk_vf_settings_format(&s, buf, sizeof(buf)),
			 "mac 02:00:00:00:00:01 vlan 10 qos 3 spoofchk off trust on");
	s.vlan_proto = IOVK_VF_VLAN_PROTO_8021AD;
	s.fields |= IOVK_VF_MAX_TX_RATE | IOVK_VF_LINK_STATE;
	s.max_tx_rate = 1000;
	s.link_state = IOVK_VF_LINK_STATE_DISABLE;
	cr_assert_str_eq(iovk_vf_settings_format(&s, buf, sizeof(buf)),
			 "mac 02:00:00:00:00:01 vlan 10 qos 3 proto 802.1ad max_tx_rate 1000 spoofchk off state disable "
			 "trust on");
	/* too small: whole words only */
	cr_assert_str_eq(iovk_vf_settings_format(&s, small, sizeof(small)), "mac 02:00:00:00:00:01");
}
