/* SPDX-License-Identifier: GPL-2.0-or-later */
/* iovctl vf list, set: VF settings through the PF's netdev (rtnetlink) */
#include <stdio.h>
#include <string.h>

#include "iovctl.h"

static const char vf_help[] =
	"Usage: iovctl vf list [--json] PF\n"
	"       iovctl vf set [--json] PF N [mac LLADDR] [vlan VLANID [qos QOS] [proto 802.1Q|802.1ad]]\n"
	"                     [spoofchk on|off] [trust on|off] [state auto|enable|disable]\n"
	"                     [min_tx_rate MBPS] [max_tx_rate MBPS]\n"
	"\n"
	"VF settings that the PF's driver enforces, read and written through the PF's\n"
	"network interface (rtnetlink), with iproute2's words. PF is a PCI address,\n"
	"libvirt's pci_DDDD_BB_DD_F or the PF's network interface name.\n"
	"'iovctl vf COMMAND --help' describes each command.\n";

static const char list_help[] =
	"Usage: iovctl vf list [--json] PF\n"
	"\n"
	"List the VFs of PF (a PCI address, libvirt's name or a network interface) as its driver\n"
	"reports them: admin MAC, VLAN (with QoS and protocol), spoof checking, trust,\n"
	"link state, min/max tx rate, and in JSON the VF's stats. Where the VF has its\n"
	"own network interface, its effective MAC too: an admin MAC takes effect only\n"
	"when the VF driver re-initialises, and an untrusted VF cannot override it.\n"
	"An interface without SR-IOV lists no VFs.\n"
	"\n"
	"  -j, --json   one JSON object: address, net, numvfs, vfs (see iovctl(8))\n";

static const char set_help[] =
	"Usage: iovctl vf set [--json] PF N [mac LLADDR] [vlan VLANID [qos QOS] [proto 802.1Q|802.1ad]]\n"
	"                     [spoofchk on|off] [trust on|off] [state auto|enable|disable]\n"
	"                     [min_tx_rate MBPS] [max_tx_rate MBPS]\n"
	"\n"
	"Change the settings of VF N of PF, as 'ip link set DEV vf N ...' does. Words\n"
	"are written in full and each at most once; qos and proto follow vlan, and\n"
	"vlan alone resets them to 0 and 802.1Q. Everything is checked before anything\n"
	"is written (a malformed value is a usage error, exit 2); only the settings\n"
	"that differ are written, one request each, the MAC last (it cannot be put\n"
	"back as it was: see iovctl(8)); when the kernel refuses one, those already\n"
	"written are put back. Then the VF is read back: a setting that the driver\n"
	"accepted but did not apply fails the command (exit 1) and is named.\n"
	"\n"
	"  mac LLADDR        admin MAC, unicast; 00:00:00:00:00:00 clears it\n"
	"  vlan VLANID       0 to 4095 (0: no VLAN)\n"
	"  qos QOS           802.1p priority, 0 to 7\n"
	"  proto P           802.1Q (default) or 802.1ad\n"
	"  spoofchk on|off   source MAC/VLAN anti-spoofing\n"
	"  trust on|off      let the VF change its MAC, go promiscuous, ...\n"
	"  state S           auto (follow the PF's link), enable or disable\n"
	"  min_tx_rate MBPS  guaranteed rate in Mbit/s (0: none)\n"
	"  max_tx_rate MBPS  rate limit in Mbit/s (0: none); min <= max when both are set\n";

static struct json_object *json_tristate(int v)
{
	return v < 0 ? NULL : json_object_new_boolean(v);
}

/* An interface name as the vocabulary has interfaces: an array ("net"). */
static struct json_object *net_json(const char *netdev)
{
	struct json_object *a = json_object_new_array();

	if (netdev)
		json_object_array_add(a, json_object_new_string(netdev));
	return a;
}

static struct json_object *fields_to_json(unsigned fields)
{
	struct json_object *a = json_object_new_array();

	for (unsigned b = 0; b < 32; b++)
		if (fields & (1u << b))
			json_object_array_add(a, json_object_new_string(iovk_vf_field_name(1u << b) ?: "?"));
	return a;
}

static struct json_object *vf_to_json(const struct iovk_vf_info *vf)
{
	struct json_object *o = json_object_new_object(), *vlans = json_object_new_array();
	char mac[IOVK_VF_MAC_STRING_MAX];

	json_object_object_add(o, "vf", json_object_new_int((int)vf->index));
	json_object_object_add(o, "address", json_string_or_null(vf->address));
	json_object_object_add(o, "net", net_json(vf->netdev));
	json_object_object_add(o, "mac", json_object_new_string(iovk_vf_format_mac(vf->mac, mac)));
	json_object_object_add(o, "effective_mac",
			       vf->has_effective_mac ? json_object_new_string(iovk_vf_format_mac(vf->effective_mac, mac))
						     : NULL);
	json_object_object_add(o, "mac_differs", json_object_new_boolean(vf->mac_differs));
	for (size_t i = 0; i < vf->n_vlans; i++) {
		struct json_object *v = json_object_new_object();
		const char *proto = iovk_vf_vlan_proto_name(vf->vlans[i].proto);
		char hex[8];

		snprintf(hex, sizeof(hex), "0x%04x", vf->vlans[i].proto);
		json_object_object_add(v, "vlan", json_object_new_int(vf->vlans[i].vlan));
		json_object_object_add(v, "qos", json_object_new_int(vf->vlans[i].qos));
		json_object_object_add(v, "proto", json_object_new_string(proto ?: hex));
		json_object_array_add(vlans, v);
	}
	json_object_object_add(o, "vlans", vlans);
	json_object_object_add(o, "spoofchk", json_tristate(vf->spoofchk));
	json_object_object_add(o, "trust", json_tristate(vf->trust));
	json_object_object_add(o, "state", json_object_new_string(iovk_vf_link_state_name(vf->link_state) ?: "?"));
	json_object_object_add(o, "min_tx_rate", json_object_new_int64(vf->min_tx_rate));
	json_object_object_add(o, "max_tx_rate", json_object_new_int64(vf->max_tx_rate));
	if (vf->has_stats) {
		struct json_object *s = json_object_new_object();
		const struct iovk_vf_stats *st = &vf->stats;

		json_object_object_add(s, "rx_packets", json_object_new_uint64(st->rx_packets));
		json_object_object_add(s, "rx_bytes", json_object_new_uint64(st->rx_bytes));
		json_object_object_add(s, "tx_packets", json_object_new_uint64(st->tx_packets));
		json_object_object_add(s, "tx_bytes", json_object_new_uint64(st->tx_bytes));
		json_object_object_add(s, "broadcast", json_object_new_uint64(st->broadcast));
		json_object_object_add(s, "multicast", json_object_new_uint64(st->multicast));
		json_object_object_add(s, "rx_dropped", st->has_dropped ? json_object_new_uint64(st->rx_dropped) : NULL);
		json_object_object_add(s, "tx_dropped", st->has_dropped ? json_object_new_uint64(st->tx_dropped) : NULL);
		json_object_object_add(o, "stats", s);
	} else
		json_object_object_add(o, "stats", NULL);
	return o;
}

static struct json_object *list_to_json(const struct iovk_vf_list *list)
{
	struct json_object *o = json_object_new_object(), *vfs = json_object_new_array();
	int numvfs = iovk_vf_list_get_numvfs(list);

	json_object_object_add(o, "address", json_string_or_null(iovk_vf_list_get_pf_address(list)));
	json_object_object_add(o, "net", net_json(iovk_vf_list_get_pf_netdev(list)));
	json_object_object_add(o, "numvfs", numvfs >= 0 ? json_object_new_int(numvfs) : NULL);
	for (size_t i = 0; i < iovk_vf_list_get_n_vfs(list); i++)
		json_object_array_add(vfs, vf_to_json(iovk_vf_list_get_vf(list, i)));
	json_object_object_add(o, "vfs", vfs);
	return o;
}

static const char *on_off(int v)
{
	return v < 0 ? "-" : v ? "on" : "off";
}

static void format_vlans(const struct iovk_vf_info *vf, char *buf, size_t size)
{
	size_t len = 0;

	snprintf(buf, size, "-");
	for (size_t i = 0; i < vf->n_vlans && len < size; i++) {
		const char *proto = iovk_vf_vlan_proto_name(vf->vlans[i].proto);
		int k = snprintf(buf + len, size - len, "%s%u", i ? "," : "", vf->vlans[i].vlan);

		len += k > 0 ? (size_t)k : 0;
		if (vf->vlans[i].qos && len < size) {
			k = snprintf(buf + len, size - len, " qos %u", vf->vlans[i].qos);
			len += k > 0 ? (size_t)k : 0;
		}
		if (vf->vlans[i].proto != IOVK_VF_VLAN_PROTO_8021Q && len < size) {
			k = snprintf(buf + len, size - len, " %s", proto ?: "?");
			len += k > 0 ? (size_t)k : 0;
		}
	}
}

static void print_mac_notes(const struct iovk_vf_info *vf)
{
	char a[IOVK_VF_MAC_STRING_MAX], b[IOVK_VF_MAC_STRING_MAX];

	if (!vf->mac_differs)
		return;
	printf("  VF %u: admin MAC %s is not in use yet: its interface %s uses %s. The admin MAC\n"
	       "        takes effect when the VF driver re-initialises (reload or rebind it);\n"
	       "        an untrusted VF cannot override it.\n",
	       vf->index, iovk_vf_format_mac(vf->mac, a), vf->netdev ?: "?", iovk_vf_format_mac(vf->effective_mac, b));
}

static void print_list(const struct iovk_vf_list *list)
{
	const char *address = iovk_vf_list_get_pf_address(list);
	int numvfs = iovk_vf_list_get_numvfs(list);
	size_t n = iovk_vf_list_get_n_vfs(list);

	printf("%s", iovk_vf_list_get_pf_netdev(list));
	if (address)
		printf(" (PF %s)", address);
	if (numvfs < 0) {
		printf(": no VFs (the interface has no SR-IOV)\n");
		return;
	}
	if (numvfs == 0) {
		printf(": no VFs enabled\n");
		return;
	}
	printf(": %d VFs\n", numvfs);
	if ((size_t)numvfs > n)
		printf("  (the driver reports settings for %zu of them)\n", n);
	if (n == 0)
		return;
	printf("%-4s %-17s %-16s %-8s %-5s %-7s %-6s %-6s %-13s %s\n", "VF", "MAC", "VLAN", "SPOOFCHK", "TRUST",
	       "STATE", "MINTX", "MAXTX", "ADDRESS", "NETDEV");
	for (size_t i = 0; i < n; i++) {
		const struct iovk_vf_info *vf = iovk_vf_list_get_vf(list, i);
		char mac[IOVK_VF_MAC_STRING_MAX], vlans[64];

		format_vlans(vf, vlans, sizeof(vlans));
		printf("%-4u %-17s %-16s %-8s %-5s %-7s %-6u %-6u %-13s %s\n", vf->index, iovk_vf_format_mac(vf->mac, mac),
		       vlans, on_off(vf->spoofchk), on_off(vf->trust), iovk_vf_link_state_name(vf->link_state) ?: "?",
		       vf->min_tx_rate, vf->max_tx_rate, vf->address ?: "-", vf->netdev ?: "-");
	}
	for (size_t i = 0; i < n; i++)
		print_mac_notes(iovk_vf_list_get_vf(list, i));
}

/*
 * libvirt's pci_DDDD_BB_DD_F as the PF's canonical address, as the other
 * commands take it; anything else as given: an interface name stays a name,
 * since the PF may have no PCI device (netdevsim) and is looked up over
 * rtnetlink.
 */
static const char *pf_arg(struct cli *cli, const char *arg, char buf[static IOVK_PCI_ADDR_MAX])
{
	if (strncmp(arg, "pci_", 4) == 0 && iovk_device_resolve_name(cli->ctx, arg, buf) >= 0)
		return buf;
	return arg;
}

/* Reads the VFs of pf; a malformed PF name is a usage error. */
static int read_list(struct cli *cli, const char *cmd, const char *pf, struct iovk_vf_list **ret_list)
{
	int r = iovk_vf_list_new(cli->ctx, pf, ret_list);

	if (r == -EINVAL)
		return usage_error(cli, cmd, "%s", iovk_ctx_get_error(cli->ctx));
	if (r < 0)
		return fail_lib(cli, r, "Failed to read the VFs of %s", pf);
	return EXIT_OK;
}

static int vf_list(struct cli *cli, int argc, char **argv)
{
	struct iovk_vf_list *list = NULL;
	char address[IOVK_PCI_ADDR_MAX];
	int r, i;

	i = parse_cmd_opts(cli, "vf list", list_help, argc, argv, NULL);
	if (i < 0)
		return i == -1 ? EXIT_OK : EXIT_USAGE;
	if (argc - i != 1)
		return usage_error(cli, "vf list", "expected one PF (a PCI address or a network interface name)");
	r = read_list(cli, "vf list", pf_arg(cli, argv[i], address), &list);
	if (r != EXIT_OK)
		return r;
	if (cli->json)
		print_json(list_to_json(list));
	else
		print_list(list);
	iovk_vf_list_unref(list);
	return EXIT_OK;
}

/* A VF index: decimal, nothing else. */
static bool parse_index(const char *s, unsigned *ret)
{
	unsigned long v;
	char *end;

	if (!s || !*s || strspn(s, "0123456789") != strlen(s) || strlen(s) > 9)
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end)
		return false;
	*ret = (unsigned)v;
	return true;
}

/* A failed set: the usual error, and in JSON what was and was not applied. */
static int fail_set(struct cli *cli, int err, const struct iovk_vf_set_result *res, unsigned index, const char *pf)
{
	bool json = cli->json;
	char msg[2048];

	cli->json = false;
	fail_lib(cli, err, "Failed to set %s VF %u", pf, index);
	cli->json = json;
	if (json) {
		struct json_object *e;
		const char *detail = iovk_ctx_get_error(cli->ctx);
		const char *colon = strstr(detail, ": ");
		char prefix[256];

		/* The same text as on stderr: the library's "eth3 VF 2: " goes
		 * when our own words already name the VF (see vfail()). */
		snprintf(prefix, sizeof(prefix), "Failed to set %s VF %u", pf, index);
		if (colon && colon - detail < 24 && memmem(prefix, strlen(prefix), detail, (size_t)(colon - detail)))
			detail = colon + 2;
		snprintf(msg, sizeof(msg), "%s: %s", prefix, detail);
		e = json_error_new(msg, err);
		json_object_object_add(e, "applied_settings", fields_to_json(res->changed & ~res->ignored));
		json_object_object_add(e, "ignored_settings", fields_to_json(res->ignored));
		json_object_object_add(e, "failed_settings", fields_to_json(res->failed));
		json_object_object_add(e, "rolled_back", json_object_new_boolean(res->rolled_back));
		print_json_error(e);
	}
	return EXIT_FAILED;
}

static int vf_set(struct cli *cli, int argc, char **argv)
{
	IOVK_VF_SETTINGS(settings);
	struct iovk_vf_set_result res = IOVK_VF_SET_RESULT_INIT;
	struct iovk_vf_list *list = NULL;
	const struct iovk_vf_info *vf;
	char address[IOVK_PCI_ADDR_MAX];
	const char *pf;
	unsigned index;
	int r, i;

	i = parse_cmd_opts(cli, "vf set", set_help, argc, argv, NULL);
	if (i < 0)
		return i == -1 ? EXIT_OK : EXIT_USAGE;
	if (argc - i < 2)
		return usage_error(cli, "vf set", "expected a PF, a VF number and settings");
	pf = pf_arg(cli, argv[i], address);
	if (!parse_index(argv[i + 1], &index))
		return usage_error(cli, "vf set", "'%s' is not a VF number", argv[i + 1]);
	if (iovk_vf_settings_parse(cli->ctx, argc - i - 2, argv + i + 2, &settings) < 0)
		return usage_error(cli, "vf set", "%s", iovk_ctx_get_error(cli->ctx));

	/* Read first: a malformed PF is a usage error, an unknown one a
	 * failure before anything is written. */
	r = read_list(cli, "vf set", pf, &list);
	if (r != EXIT_OK)
		return r;
	list = iovk_vf_list_unref(list);

	r = iovk_vf_set(cli->ctx, pf, index, &settings, &res);
	if (r < 0)
		return fail_set(cli, r, &res, index, pf);
	for (unsigned b = 0; b < 32; b++)
		if (res.unverified & (1u << b))
			fprintf(stderr, "iovctl: warning: %s VF %u: the PF driver does not report %s back, so the "
				"write could not be checked\n", pf, index, iovk_vf_field_name(1u << b));

	r = read_list(cli, "vf set", pf, &list);
	if (r != EXIT_OK)
		return r;
	vf = iovk_vf_list_find(list, index);
	if (cli->json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "address", json_string_or_null(iovk_vf_list_get_pf_address(list)));
		json_object_object_add(o, "net", net_json(iovk_vf_list_get_pf_netdev(list)));
		json_object_object_add(o, "vf", json_object_new_int((int)index));
		json_object_object_add(o, "changed", json_object_new_boolean(res.changed != 0));
		json_object_object_add(o, "changed_settings", fields_to_json(res.changed));
		json_object_object_add(o, "unverified_settings", fields_to_json(res.unverified));
		json_object_object_add(o, "settings", vf ? vf_to_json(vf) : NULL);
		print_json(o);
	} else {
		char mac[IOVK_VF_MAC_STRING_MAX], vlans[64];

		printf("%s VF %u: ", iovk_vf_list_get_pf_netdev(list), index);
		if (res.changed) {
			printf("changed");
			for (unsigned b = 0, n = 0; b < 32; b++)
				if (res.changed & (1u << b))
					printf("%s %s", n++ ? "," : "", iovk_vf_field_name(1u << b));
			putchar('\n');
		} else
			printf("already as asked\n");
		if (vf) {
			format_vlans(vf, vlans, sizeof(vlans));
			printf("  mac %s, vlan %s, spoofchk %s, trust %s, state %s, min_tx_rate %u, max_tx_rate %u\n",
			       iovk_vf_format_mac(vf->mac, mac), vlans, on_off(vf->spoofchk), on_off(vf->trust),
			       iovk_vf_link_state_name(vf->link_state) ?: "?", vf->min_tx_rate, vf->max_tx_rate);
			print_mac_notes(vf);
		}
	}
	iovk_vf_list_unref(list);
	return EXIT_OK;
}

int cmd_vf(struct cli *cli, int argc, char **argv)
{
	static const struct subcommand subs[] = {
		{ "list", vf_list },
		{ "set", vf_set },
	};

	return run_subcommand(cli, "vf", vf_help, subs, ELEMENTSOF(subs), argc, argv);
}
