// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * bench/failover-bench: how long an active-backup bond takes to move its
 * traffic to the standby, planned (what iovd's PrepareMigration does:
 * iovk_bond_switch(), IFLA_BOND_ACTIVE_SLAVE and the kernel's RTM_NEWLINK
 * confirmation) against the anchor, the same bond left to its own link
 * monitoring (miimon) after the active slave's link drops. Timed from the
 * call (the switch, or the link drop) to the kernel's word that the standby
 * is active (iovk_bond_switch() returning; iovk_bond_wait_active() for the
 * anchor), interleaved A/B/A/B in one run; p50 and p99 of each and the
 * anchor/planned ratio (issue 11's target: 10x at p99).
 *
 *   failover-bench BOND VF STANDBY VF_PEER ROUNDS
 *
 * VF and STANDBY are the bond's slaves (veths here); VF_PEER is the other
 * end of VF's veth: setting it down drops VF's carrier as a VF's link going
 * away would, and the bond notices only at its next MII poll. Run by
 * bench/failover-run in the test guest (this host has no bonding module).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <iovkit/iovkit.h>

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t pct(uint64_t *v, size_t n, unsigned p)
{
	size_t i = (n * p + 99) / 100;

	return v[i ? i - 1 : 0];
}

static void die(struct iovk_ctx *ctx, const char *what, int r)
{
	fprintf(stderr, "failover-bench: %s: %s\n", what, iovk_ctx_get_error(ctx)[0] ? iovk_ctx_get_error(ctx) : strerror(-r));
	exit(1);
}

int main(int argc, char **argv)
{
	struct iovk_ctx *ctx = NULL;
	const char *bond, *vf, *standby, *peer;
	uint64_t *planned, *anchor, t0, waited;
	unsigned rounds;
	int r;

	if (argc != 6) {
		fprintf(stderr, "usage: failover-bench BOND VF STANDBY VF_PEER ROUNDS\n");
		return 2;
	}
	bond = argv[1], vf = argv[2], standby = argv[3], peer = argv[4];
	rounds = (unsigned)strtoul(argv[5], NULL, 10);
	if (rounds == 0 || iovk_ctx_new(&ctx) < 0)
		return 2;
	planned = calloc(rounds, sizeof(*planned));
	anchor = calloc(rounds, sizeof(*anchor));
	if (!planned || !anchor)
		return 1;
	for (unsigned i = 0; i < rounds; i++) {
		/* A: planned, from the VF to the standby */
		t0 = now_us();
		r = iovk_bond_switch(ctx, bond, standby, 5000, NULL);
		if (r < 0)
			die(ctx, "planned switch", r);
		planned[i] = now_us() - t0;
		r = iovk_bond_switch(ctx, bond, vf, 5000, NULL);
		if (r < 0)
			die(ctx, "switching back", r);
		/* B: the anchor, the VF's link dropped and miimon left to notice */
		t0 = now_us();
		r = iovk_link_set_up(ctx, peer, false);
		if (r >= 0)
			r = iovk_bond_wait_active(ctx, bond, standby, 10000, &waited);
		if (r < 0)
			die(ctx, "miimon failover", r);
		anchor[i] = now_us() - t0;
		/* the VF's link back, seen by the bond, the VF active again (not timed) */
		r = iovk_link_set_up(ctx, peer, true);
		if (r >= 0)
			r = iovk_bond_switch(ctx, bond, vf, 10000, NULL);
		if (r < 0)
			die(ctx, "restoring the VF", r);
	}
	qsort(planned, rounds, sizeof(*planned), cmp_u64);
	qsort(anchor, rounds, sizeof(*anchor), cmp_u64);
	printf("planned switch (iovk_bond_switch: IFLA_BOND_ACTIVE_SLAVE + the kernel's word), %u rounds: p50 %llu us, p99 %llu us\n",
	       rounds, (unsigned long long)pct(planned, rounds, 50), (unsigned long long)pct(planned, rounds, 99));
	printf("anchor: miimon failover after the link drops, %u rounds: p50 %llu us, p99 %llu us\n", rounds,
	       (unsigned long long)pct(anchor, rounds, 50), (unsigned long long)pct(anchor, rounds, 99));
	printf("ratio anchor/planned: p50 %.1fx, p99 %.1fx\n", (double)pct(anchor, rounds, 50) / (double)pct(planned, rounds, 50),
	       (double)pct(anchor, rounds, 99) / (double)pct(planned, rounds, 99));
	free(planned);
	free(anchor);
	iovk_ctx_unref(ctx);
	return 0;
}
