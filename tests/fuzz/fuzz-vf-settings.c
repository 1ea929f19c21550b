/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The words of `iovctl vf set PF N ...` (iproute2's: mac, vlan/qos/proto,
 * min_tx_rate, max_tx_rate, spoofchk, trust, state) through
 * iovk_vf_settings_parse(), the input split at blanks; and the input whole
 * as a MAC through iovk_vf_parse_mac(). Oracles: settings that parse pass
 * iovk_vf_settings_check(), and written back as words they parse to the same
 * settings; a MAC that parses formats to one that parses to the same octets.
 */
#include <errno.h>
#include <inttypes.h>

#include <iovkit/iovkit.h>

#include "fuzz.h"

#define WORDS_MAX 64

/* The settings as the words that set them. */
static int settings_words(const struct iovk_vf_settings *s, char bufs[][24], const char **argv)
{
	int argc = 0, nb = 0;

	if (s->fields & IOVK_VF_MAC) {
		argv[argc++] = "mac";
		argv[argc++] = iovk_vf_format_mac(s->mac, bufs[nb++]);
	}
	if (s->fields & IOVK_VF_VLAN) {
		argv[argc++] = "vlan";
		snprintf(bufs[nb], 24, "%u", s->vlan);
		argv[argc++] = bufs[nb++];
		argv[argc++] = "qos";
		snprintf(bufs[nb], 24, "%u", s->qos);
		argv[argc++] = bufs[nb++];
		argv[argc++] = "proto";
		argv[argc++] = iovk_vf_vlan_proto_name(s->vlan_proto ? s->vlan_proto : IOVK_VF_VLAN_PROTO_8021Q);
	}
	if (s->fields & IOVK_VF_MIN_TX_RATE) {
		argv[argc++] = "min_tx_rate";
		snprintf(bufs[nb], 24, "%" PRIu32, s->min_tx_rate);
		argv[argc++] = bufs[nb++];
	}
	if (s->fields & IOVK_VF_MAX_TX_RATE) {
		argv[argc++] = "max_tx_rate";
		snprintf(bufs[nb], 24, "%" PRIu32, s->max_tx_rate);
		argv[argc++] = bufs[nb++];
	}
	if (s->fields & IOVK_VF_SPOOFCHK) {
		argv[argc++] = "spoofchk";
		argv[argc++] = s->spoofchk ? "on" : "off";
	}
	if (s->fields & IOVK_VF_TRUST) {
		argv[argc++] = "trust";
		argv[argc++] = s->trust ? "on" : "off";
	}
	if (s->fields & IOVK_VF_LINK_STATE) {
		argv[argc++] = "state";
		argv[argc++] = iovk_vf_link_state_name(s->link_state);
	}
	return argc;
}

static void same_settings(const struct iovk_vf_settings *a, const struct iovk_vf_settings *b)
{
	FUZZ_CHECK(a->fields == b->fields, "fields %#x, written back %#x", a->fields, b->fields);
	if (a->fields & IOVK_VF_MAC)
		FUZZ_CHECK(memcmp(a->mac, b->mac, 6) == 0 && a->clear_mac == b->clear_mac, "mac");
	if (a->fields & IOVK_VF_VLAN)
		FUZZ_CHECK(a->vlan == b->vlan && a->qos == b->qos &&
				   (a->vlan_proto ?: IOVK_VF_VLAN_PROTO_8021Q) == (b->vlan_proto ?: IOVK_VF_VLAN_PROTO_8021Q),
			   "vlan %u qos %u proto %#x, written back %u %u %#x", a->vlan, a->qos, a->vlan_proto, b->vlan,
			   b->qos, b->vlan_proto);
	if (a->fields & IOVK_VF_MIN_TX_RATE)
		FUZZ_CHECK(a->min_tx_rate == b->min_tx_rate, "min_tx_rate");
	if (a->fields & IOVK_VF_MAX_TX_RATE)
		FUZZ_CHECK(a->max_tx_rate == b->max_tx_rate, "max_tx_rate");
	if (a->fields & IOVK_VF_SPOOFCHK)
		FUZZ_CHECK(a->spoofchk == b->spoofchk, "spoofchk");
	if (a->fields & IOVK_VF_TRUST)
		FUZZ_CHECK(a->trust == b->trust, "trust");
	if (a->fields & IOVK_VF_LINK_STATE)
		FUZZ_CHECK(a->link_state == b->link_state, "state");
}

static void fuzz_mac(const char *s)
{
	char buf[IOVK_VF_MAC_STRING_MAX];
	uint8_t mac[6], again[6];
	int r = iovk_vf_parse_mac(s, mac), r2;

	FUZZ_CHECK(r == 0 || r == 1 || r == -EINVAL, "%d", r);
	if (r < 0)
		return;
	FUZZ_CHECK(!(mac[0] & 1), "'%s': a multicast MAC accepted", s);
	iovk_vf_format_mac(mac, buf);
	r2 = iovk_vf_parse_mac(buf, again);
	FUZZ_CHECK(r2 == r && memcmp(mac, again, 6) == 0, "'%s' -> '%s' -> %d", s, buf, r2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_string(data, size), *argv[WORDS_MAX], *save = NULL, bufs[8][24];
	const char *words[24];
	struct iovk_ctx *ctx = NULL;
	IOVK_VF_SETTINGS(s);
	IOVK_VF_SETTINGS(again);
	int argc = 0, n, r;

	fuzz_mac(text);
	if (iovk_ctx_new(&ctx) < 0)
		abort();
	for (char *w = strtok_r(text, " \t\n", &save); w && argc < WORDS_MAX; w = strtok_r(NULL, " \t\n", &save))
		argv[argc++] = w;
	r = iovk_vf_settings_parse(ctx, argc, argv, &s);
	FUZZ_CHECK(r == 0 || r == -EINVAL, "%d", r);
	FUZZ_CHECK(r == 0 || *iovk_ctx_get_error(ctx), "an error without a message");
	if (r == 0) {
		FUZZ_CHECK(iovk_vf_settings_check(ctx, &s) == 0, "parsed, but the check refuses it: %s",
			   iovk_ctx_get_error(ctx));
		n = settings_words(&s, bufs, words);
		r = iovk_vf_settings_parse(ctx, n, (char *const *)words, &again);
		FUZZ_CHECK(r == 0, "written back, refused: %s", iovk_ctx_get_error(ctx));
		same_settings(&s, &again);
	}
	iovk_ctx_unref(ctx);
	free(text);
	return 0;
}
