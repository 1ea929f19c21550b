// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * tests/host/iovk-link: libiovkit's link calls (iovkit/link.h) from the
 * command line, for tests/host/run-tests and the VM tier's failover cases:
 * each command calls the library once and prints what it read back from
 * the kernel as one JSON object, which the tests compare with `ip -j -d
 * link`. An error is {"error": TEXT, "errno": N} and exit 1; bad usage
 * exit 2.
 *
 *   iovk-link get NAME
 *   iovk-link up|down|delete NAME
 *   iovk-link mac NAME MAC      iovk-link mtu NAME MTU
 *   iovk-link macvtap-create LOWER [NAME [MODE [MAC]]]     (NAME "-": the kernel's)
 *   iovk-link macvtap-get NAME
 *   iovk-link bond-create NAME [MIIMON_MS]
 *   iovk-link enslave BOND SLAVE       iovk-link release SLAVE
 *   iovk-link active BOND SLAVE        iovk-link wait BOND SLAVE TIMEOUT_MS
 *   iovk-link linkwait BOND SLAVE TIMEOUT_MS  iovk-link switch BOND SLAVE TIMEOUT_MS
 *   iovk-link bond NAME
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <iovkit/iovkit.h>

static struct iovk_ctx *ctx;

static void print_mac(const char *key, const uint8_t *mac)
{
	printf("\"%s\": \"%02x:%02x:%02x:%02x:%02x:%02x\"", key, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

static int fail(int r)
{
	const char *text = iovk_ctx_get_error(ctx);

	printf("{\"error\": \"");
	for (const char *p = text && *text ? text : strerror(-r); *p; p++)
		if (*p == '"' || *p == '\\')
			printf("\\%c", *p);
		else if ((unsigned char)*p >= 0x20)
			putchar(*p);
	printf("\", \"errno\": %d}\n", -r);
	return 1;
}

static int show_link(const char *name)
{
	struct iovk_link_info l = IOVK_LINK_INFO_INIT;
	int r = iovk_link_get(ctx, name, &l);

	if (r < 0)
		return fail(r);
	printf("{\"name\": \"%s\", \"ifindex\": %d, \"link\": %d, \"master\": %d, ", l.name, l.ifindex, l.lower_ifindex,
	       l.master_ifindex);
	print_mac("mac", l.mac);
	printf(", \"mtu\": %u, \"up\": %s, \"carrier\": %s, \"operstate\": %u, \"kind\": \"%s\", \"slave_kind\": \"%s\"}\n",
	       l.mtu, l.up ? "true" : "false", l.carrier ? "true" : "false", l.operstate, l.kind, l.slave_kind);
	return 0;
}

static int show_macvtap(const struct iovk_macvtap_info *m)
{
	printf("{\"name\": \"%s\", \"ifindex\": %d, \"lower\": \"%s\", \"lower_ifindex\": %d, \"mode\": \"%s\", ", m->name,
	       m->ifindex, m->lower, m->lower_ifindex, iovk_macvtap_mode_to_string(m->mode) ?: "?");
	print_mac("mac", m->mac);
	printf(", \"tap_node\": \"%s\", \"tap_dev\": \"%u:%u\"}\n", m->tap_node, m->tap_major, m->tap_minor);
	return 0;
}

static int show_bond(const char *name)
{
	struct iovk_bond_opts o = IOVK_BOND_OPTS_INIT;
	struct iovk_bond *b = NULL;
	int r = iovk_bond_read(ctx, name, &b);

	if (r < 0)
		return fail(r);
	iovk_bond_get_opts(b, &o);
	printf("{\"name\": \"%s\", \"ifindex\": %d, \"mode\": %d, \"active\": \"%s\", \"miimon\": %u, \"slaves\": [",
	       iovk_bond_get_name(b), iovk_bond_get_ifindex(b), iovk_bond_get_mode(b), iovk_bond_get_active_slave(b) ?: "",
	       o.miimon_ms);
	for (size_t i = 0; i < iovk_bond_get_n_slaves(b); i++) {
		struct iovk_bond_slave s = IOVK_BOND_SLAVE_INIT;

		iovk_bond_get_slave(b, i, &s);
		printf("%s{\"name\": \"%s\", \"ifindex\": %d, \"active\": %s, \"mii_up\": %s, \"carrier\": %s, "
		       "\"link_failures\": %u}", i ? ", " : "", s.name, s.ifindex, s.active ? "true" : "false",
		       s.mii_up ? "true" : "false", s.carrier ? "true" : "false", s.link_failure_count);
	}
	printf("]}\n");
	iovk_bond_unref(b);
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: iovk-link COMMAND ARGS (see tests/host/iovk-link.c)\n");
	return 2;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	int n = argc - 2, r;
	char **a = argv + 2;

	if (iovk_ctx_new(&ctx) < 0)
		return 1;
	if (strcmp(cmd, "get") == 0 && n == 1)
		r = show_link(a[0]);
	else if ((strcmp(cmd, "up") == 0 || strcmp(cmd, "down") == 0) && n == 1)
		r = (r = iovk_link_set_up(ctx, a[0], cmd[0] == 'u')) < 0 ? fail(r) : show_link(a[0]);
	else if (strcmp(cmd, "delete") == 0 && n == 1)
		r = (r = iovk_link_delete(ctx, a[0])) < 0 ? fail(r) : (puts("{}"), 0);
	else if (strcmp(cmd, "mac") == 0 && n == 2) {
		uint8_t mac[6];

		if (iovk_vf_parse_mac(a[1], mac) < 0)
			return usage();
		r = (r = iovk_link_set_mac(ctx, a[0], mac)) < 0 ? fail(r) : show_link(a[0]);
	} else if (strcmp(cmd, "mtu") == 0 && n == 2)
		r = (r = iovk_link_set_mtu(ctx, a[0], (unsigned)strtoul(a[1], NULL, 10))) < 0 ? fail(r) : show_link(a[0]);
	else if (strcmp(cmd, "macvtap-create") == 0 && n >= 1 && n <= 4) {
		struct iovk_macvtap_opts o = IOVK_MACVTAP_OPTS_INIT;
		struct iovk_macvtap_info m = IOVK_MACVTAP_INFO_INIT;

		if (n >= 2 && strcmp(a[1], "-") != 0)
			o.name = a[1];
		if (n >= 3 && iovk_macvtap_mode_from_string(a[2], &o.mode) < 0)
			return usage();
		if (n >= 4) {
			if (iovk_vf_parse_mac(a[3], o.mac) < 0)
				return usage();
			o.set_mac = true;
		}
		r = (r = iovk_macvtap_create(ctx, a[0], &o, &m)) < 0 ? fail(r) : show_macvtap(&m);
	} else if (strcmp(cmd, "macvtap-get") == 0 && n == 1) {
		struct iovk_macvtap_info m = IOVK_MACVTAP_INFO_INIT;

		r = (r = iovk_macvtap_get(ctx, a[0], &m)) < 0 ? fail(r) : show_macvtap(&m);
	} else if (strcmp(cmd, "bond-create") == 0 && (n == 1 || n == 2)) {
		struct iovk_bond_opts o = IOVK_BOND_OPTS_INIT;

		o.miimon_ms = n == 2 ? (unsigned)strtoul(a[1], NULL, 10) : 100;
		r = (r = iovk_bond_create(ctx, a[0], &o)) < 0 ? fail(r) : show_bond(a[0]);
	} else if (strcmp(cmd, "enslave") == 0 && n == 2)
		r = (r = iovk_bond_enslave(ctx, a[0], a[1])) < 0 ? fail(r) : show_bond(a[0]);
	else if (strcmp(cmd, "release") == 0 && n == 1)
		r = (r = iovk_bond_release(ctx, a[0])) < 0 ? fail(r) : show_link(a[0]);
	else if (strcmp(cmd, "active") == 0 && n == 2)
		r = (r = iovk_bond_set_active_slave(ctx, a[0], a[1])) < 0 ? fail(r) : show_bond(a[0]);
	else if (strcmp(cmd, "switch") == 0 && n == 3) {
		uint64_t usec = 0;

		r = iovk_bond_switch(ctx, a[0], a[1], (unsigned)strtoul(a[2], NULL, 10), &usec);
		r = r < 0 ? fail(r) : (printf("{\"switch_usec\": %llu}\n", (unsigned long long)usec), 0);
	} else if (strcmp(cmd, "wait") == 0 && n == 3) {
		uint64_t usec = 0;

		r = iovk_bond_wait_active(ctx, a[0], a[1], (unsigned)strtoul(a[2], NULL, 10), &usec);
		r = r < 0 ? fail(r) : (printf("{\"waited_usec\": %llu}\n", (unsigned long long)usec), 0);
	} else if (strcmp(cmd, "linkwait") == 0 && n == 3) {
		uint64_t usec = 0;

		r = iovk_bond_wait_link_up(ctx, a[0], a[1], (unsigned)strtoul(a[2], NULL, 10), &usec);
		r = r < 0 ? fail(r) : (printf("{\"waited_usec\": %llu}\n", (unsigned long long)usec), 0);
	} else if (strcmp(cmd, "bond") == 0 && n == 1)
		r = show_bond(a[0]);
	else
		r = usage();
	iovk_ctx_unref(ctx);
	return r;
}
