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
 * anchor/planned ratio (issue 11's target: 10x at p99). The context keeps
 * its NETLINK_ROUTE socket (iovk_ctx_set_keep_netlink()), as iovd's does
 * (daemon/main.c), so the planned switch here is the code path of iovd's
 * PrepareMigration, without the bus and the state file.
 *
 * Then the packets each loses (the target: 0 for a planned switch): a
 * thread writes a numbered frame on the bond every STREAM_GAP_US
 * (AF_PACKET, EtherType 0x88b5), another reads both slaves' veth peers,
 * and a frame read on neither is lost; LOSS_ROUNDS planned switches there
 * and back, then LOSS_ROUNDS miimon failovers, each phase counted apart.
 * The timing rounds run without the stream: on the guest's one vCPU its
 * threads would be timed too.
 *
 *   failover-bench BOND VF STANDBY VF_PEER STANDBY_PEER ROUNDS [LOSS_ROUNDS]
 *   failover-bench --dbus BUS_ADDRESS OWNER ROUNDS [ANCHOR_P50_US ANCHOR_P99_US]
 *   failover-bench --dbus BUS_ADDRESS OWNER ROUNDS --same-bond BOND VF STANDBY [RECEIVER LOSS_ROUNDS]
 *
 * The second form is the whole path an orchestrator sees: PrepareMigration
 * and AbortMigration of OWNER's bond group through iovd, each timed two ways:
 *  - issue 11's metric, from the call to the standby being active (the
 *    kernel's confirmation): the latest switch_confirmed_monotonic_usec
 *    of the reply's failover_groups, the moment iovd read the kernel's
 *    word, less this process's CLOCK_MONOTONIC at the call (one guest,
 *    one clock);
 *  - from the call to its reply, what a caller waits for: that, and then
 *    the state file's fdatasync and the reply's way back through the bus.
 * Both are printed, each with its ratio to the anchor the first form
 * measured in the same run when its p50 and p99 are given: the miimon
 * failover of the veth bond: the quickest miimon failover there is, with
 * no driver work in its switch. With --same-bond, the anchor is iovd's
 * bond's own, as issue 11 asks ("the same bond left to its own link
 * monitoring after the VF's link drops"): after each D-Bus round the VF's
 * netdev is set down (its driver drops the carrier) at a random moment
 * of the bond's 100 ms MII period, the bond's miimon failover to STANDBY
 * is timed, and the VF is brought back and made active again; ROUNDS of
 * these after the D-Bus rounds, not between them: D-Bus rounds that
 * followed a round of this (even 200 ms later) switched ~1.5x slower,
 * the igbvf VF just reopened (2026-12-07, 2 runs each way); and a miimon
 * failover is the poll's timer first, which the machine's swings hardly
 * move. Beside them the switch's own time from the reply (the sum of
 * the groups' switch_usec), the metric less it (the call reaching iovd
 * through the bus daemon, and iovd's checks before the switch), and
 * the rest of the call (its time less the switch's), next to the floor of
 * any call: a Peer.Ping to iovd, a round trip through the bus daemon with
 * no work in iovd, one before each round. With RECEIVER, an interface on
 * the bond's wire (in the guest, a third port of QEMU's hub), the packets
 * lost through iovd's bond: the stream below read there, first for a
 * second with no switch (the path's own loss), then over LOSS_ROUNDS
 * PrepareMigration and AbortMigration, then over LOSS_ROUNDS of the
 * bond's miimon failover.
 *
 * VF and STANDBY are the bond's slaves (veths here); VF_PEER is the other
 * end of VF's veth: setting it down drops VF's carrier as a VF's link going
 * away would, and the bond notices only at its next MII poll. Run by
 * bench/failover-run in the test guest (this host has no bonding module).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <linux/if_packet.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "common/bus-util.h"
#include <time.h>
#include <unistd.h>

#include <iovkit/iovkit.h>

#define STREAM_ETHERTYPE 0x88b5 /* IEEE local experimental */
#define STREAM_GAP_US 1000
#define STREAM_MAX (1u << 22)

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

/* The bond and its slaves, as the command line names them. */
struct bench {
	struct iovk_ctx *ctx;
	const char *bond, *vf, *standby, *peer;
	/* --same-bond: a link drop at a random moment of the MII poll's period
	 * (up to phase_ms before it); 0 in the first form, whose rounds the
	 * restore locks to the poll (the drop right after one: its worst case,
	 * a full period) */
	unsigned phase_ms;
	/* --same-bond's RECEIVER: an interface on the bond's wire, where the
	 * stream's frames are read whichever slave sent them (NULL: none) */
	const char *receiver;
};

static void pause_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	if (ms)
		nanosleep(&ts, NULL);
}

/* A: planned, from the VF to the standby (timed, returned), then back after dwell_ms. */
static uint64_t planned_round(const struct bench *b, unsigned dwell_ms)
{
	uint64_t t0 = now_us(), t;
	int r = iovk_bond_switch(b->ctx, b->bond, b->standby, 5000, NULL);

	if (r < 0)
		die(b->ctx, "planned switch", r);
	t = now_us() - t0;
	pause_ms(dwell_ms);
	r = iovk_bond_switch(b->ctx, b->bond, b->vf, 5000, NULL);
	if (r < 0)
		die(b->ctx, "switching back", r);
	return t;
}

/* B: the anchor, the VF's link dropped and miimon left to notice (timed, returned); then the VF again. */
static uint64_t anchor_round(const struct bench *b)
{
	uint64_t t0, t;
	int r;

	if (b->phase_ms)
		pause_ms((unsigned)random() % b->phase_ms);
	t0 = now_us();
	r = iovk_link_set_up(b->ctx, b->peer, false);

	if (r >= 0)
		r = iovk_bond_wait_active(b->ctx, b->bond, b->standby, 10000, NULL);
	if (r < 0)
		die(b->ctx, "miimon failover", r);
	t = now_us() - t0;
	/* the VF's link back, seen by the bond, the VF active again (not timed) */
	r = iovk_link_set_up(b->ctx, b->peer, true);
	if (r >= 0)
		r = iovk_bond_switch(b->ctx, b->bond, b->vf, 10000, NULL);
	if (r < 0)
		die(b->ctx, "restoring the VF", r);
	return t;
}

/* ---- the stream ---------------------------------------------------------------------- */

static struct {
	int tx, rx[2];
	uint8_t src[6];       /* the bond's MAC: a VF's anti-spoofing passes it */
	atomic_uint next;     /* the next frame's number */
	atomic_bool stop;
	uint8_t *seen;        /* by number: read on a peer */
} stream;

static int packet_socket(const char *ifname)
{
	struct sockaddr_ll a = { .sll_family = AF_PACKET, .sll_protocol = htons(STREAM_ETHERTYPE) };
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(STREAM_ETHERTYPE));

	a.sll_ifindex = (int)if_nametoindex(ifname);
	if (fd < 0 || !a.sll_ifindex || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		fprintf(stderr, "failover-bench: a packet socket on %s: %m\n", ifname);
		exit(1);
	}
	return fd;
}

static void *stream_send(void *arg)
{
	uint8_t f[64] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0,
			  STREAM_ETHERTYPE >> 8, STREAM_ETHERTYPE & 0xff };
	struct timespec next;

	memcpy(f + 6, stream.src, sizeof(stream.src));
	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!atomic_load(&stream.stop)) {
		uint32_t n = atomic_load(&stream.next);

		if (n < STREAM_MAX) {
			memcpy(f + 14, &n, sizeof(n));
			/* a frame the bond drops (its active slave's peer is down) is a lost one, as on a wire */
			(void)send(stream.tx, f, sizeof(f), 0);
			atomic_store(&stream.next, n + 1);
		}
		next.tv_nsec += STREAM_GAP_US * 1000;
		if (next.tv_nsec >= 1000000000) {
			next.tv_sec++;
			next.tv_nsec -= 1000000000;
		}
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
	}
	return NULL;
}

static void *stream_recv(void *arg)
{
	struct pollfd p[2] = { { .fd = stream.rx[0], .events = POLLIN }, { .fd = stream.rx[1], .events = POLLIN } };
	uint8_t f[128];

	while (!atomic_load(&stream.stop)) {
		if (poll(p, 2, 50) <= 0)
			continue;
		for (int i = 0; i < 2; i++)
			while (p[i].revents & POLLIN) {
				ssize_t k = recv(p[i].fd, f, sizeof(f), MSG_DONTWAIT);
				uint32_t n;

				if (k < 18)
					break;
				memcpy(&n, f + 14, sizeof(n));
				if (n < STREAM_MAX)
					stream.seen[n] = 1;
			}
	}
	return NULL;
}

static pthread_t stream_tx_thread, stream_rx_thread;

/* The stream from bond, read on rx0 and rx1 (NULL: rx0 alone), running
 * when it returns; once per process (its counters are not reset). */
static void stream_start(const char *bond, const char *rx0, const char *rx1)
{
	struct ifreq ifr = { 0 };

	stream.seen = calloc(STREAM_MAX, 1);
	if (!stream.seen)
		exit(1);
	stream.tx = packet_socket(bond);
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", bond);
	if (ioctl(stream.tx, SIOCGIFHWADDR, &ifr) < 0) {
		fprintf(stderr, "failover-bench: the MAC of %s: %m\n", bond);
		exit(1);
	}
	if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER) {
		fprintf(stderr, "failover-bench: %s is not an Ethernet link\n", bond);
		exit(1);
	}
	memcpy(stream.src, ifr.ifr_hwaddr.sa_data, sizeof(stream.src));
	stream.rx[0] = packet_socket(rx0);
	stream.rx[1] = rx1 ? packet_socket(rx1) : -1;
	if (pthread_create(&stream_rx_thread, NULL, stream_recv, NULL) != 0 ||
	    pthread_create(&stream_tx_thread, NULL, stream_send, NULL) != 0)
		exit(1);
	pause_ms(100);
}

/* Stops the stream once the frames in flight have been read; stream.seen stays for stream_lost(). */
static void stream_stop(void)
{
	pause_ms(200);
	atomic_store(&stream.stop, true);
	pthread_join(stream_tx_thread, NULL);
	pthread_join(stream_rx_thread, NULL);
	close(stream.tx);
	close(stream.rx[0]);
	if (stream.rx[1] >= 0)
		close(stream.rx[1]);
}

/* Frames numbered [from, to) that neither peer read. */
static unsigned stream_lost(uint32_t from, uint32_t to)
{
	unsigned lost = 0;

	for (uint32_t n = from; n < to; n++)
		lost += !stream.seen[n];
	return lost;
}

/* ---- through iovd ---------------------------------------------------------------------- */

/* The members key_a and key_b of an a{sv} the reader is in, as uint64s ("t"); the rest skipped. */
static int read_dict_u64(sd_bus_message *m, const char *key_a, uint64_t *ret_a, const char *key_b, uint64_t *ret_b)
{
	const char *k;
	int r;

	while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
		r = sd_bus_message_read(m, "s", &k);
		if (r >= 0 && strcmp(k, key_a) == 0)
			r = sd_bus_message_read(m, "v", "t", ret_a);
		else if (r >= 0 && strcmp(k, key_b) == 0)
			r = sd_bus_message_read(m, "v", "t", ret_b);
		else if (r >= 0)
			r = sd_bus_message_skip(m, "v");
		if (r >= 0)
			r = sd_bus_message_exit_container(m);
		if (r < 0)
			return r;
	}
	return r;
}

/* One step's times, in us. */
struct step_times {
	uint64_t reply;     /* the call to its reply */
	uint64_t confirmed; /* the call to the kernel's confirmation that the switch took effect (issue 11's metric) */
	uint64_t sw;        /* the switch as iovd timed it */
};

static void dbus_step(sd_bus *bus, const char *method, const char *owner, struct step_times *ret)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	uint64_t t0 = now_us(), confirmed = 0;
	int r;

	r = sd_bus_call_method(bus, "org.iovkit.iovd1", "/org/iovkit/iovd1", "org.iovkit.iovd1.Manager", method, &e,
			       &reply, "s", owner);
	ret->reply = now_us() - t0;
	if (r < 0) {
		fprintf(stderr, "failover-bench: %s %s: %s\n", method, owner, e.message ?: strerror(-r));
		exit(1);
	}
	/* the reply's failover_groups, aa{sv}: an owner with several bond groups
	 * is switched when the last of them is, and iovd switches them one
	 * after another: the latest switch_confirmed_monotonic_usec, and the
	 * sum of the switch_usec of the groups this call switched (a group
	 * reports its last switch's, maybe an older call's). The containers
	 * left open at the break go with the message. */
	ret->sw = 0;
	r = sd_bus_message_enter_container(reply, 'a', "{sv}");
	while (r > 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
		const char *k;

		r = sd_bus_message_read(reply, "s", &k);
		if (r >= 0 && strcmp(k, "failover_groups") == 0) {
			r = sd_bus_message_enter_container(reply, 'v', "aa{sv}");
			if (r >= 0)
				r = sd_bus_message_enter_container(reply, 'a', "a{sv}");
			while (r > 0 && (r = sd_bus_message_enter_container(reply, 'a', "{sv}")) > 0) {
				uint64_t sw = 0, c = 0;

				r = read_dict_u64(reply, "switch_usec", &sw, "switch_confirmed_monotonic_usec", &c);
				if (r >= 0)
					r = sd_bus_message_exit_container(reply);
				if (r >= 0 && c >= t0) {
					ret->sw += sw;
					if (c > confirmed)
						confirmed = c;
				}
			}
			break;
		}
		if (r >= 0)
			r = sd_bus_message_skip(reply, "v");
		if (r >= 0)
			r = sd_bus_message_exit_container(reply);
	}
	sd_bus_message_unref(reply);
	if (r < 0) {
		fprintf(stderr, "failover-bench: %s %s: reading the reply: %s\n", method, owner, strerror(-r));
		exit(1);
	}
	/* iovd's clock and ours are the guest's one CLOCK_MONOTONIC; a confirmation before the call is a stale one */
	if (confirmed < t0 || confirmed - t0 > ret->reply) {
		fprintf(stderr, "failover-bench: %s %s: switch_confirmed_monotonic_usec %llu is not within the call "
			"(%llu to %llu us): an iovd without it, or a step that switched nothing\n", method, owner,
			(unsigned long long)confirmed, (unsigned long long)t0, (unsigned long long)(t0 + ret->reply));
		exit(1);
	}
	ret->confirmed = confirmed - t0;
}

/* Sorts v and prints "LABEL: p50 X us, p99 Y us", and the anchor's ratio to them when anchor50/99 are given. */
/* Whose miimon failover the ratios of --dbus are to: the veth bond's of the first form, or iovd's bond's own. */
static const char *anchor_name = "the veth bond's miimon failover";

static void print_dist(const char *label, uint64_t *v, unsigned n, uint64_t anchor50, uint64_t anchor99)
{
	qsort(v, n, sizeof(*v), cmp_u64);
	printf("%s, %u rounds: p50 %llu us, p99 %llu us", label, n, (unsigned long long)pct(v, n, 50),
	       (unsigned long long)pct(v, n, 99));
	if (anchor50 && anchor99)
		printf("; ratio anchor (%s)/this: p50 %.1fx, p99 %.1fx", anchor_name,
		       (double)anchor50 / (double)pct(v, n, 50),
		       (double)anchor99 / (double)pct(v, n, 99));
	printf("\n");
}

/* dbus_loss()'s result, printed after the timings */
static char loss_line[512];

/*
 * The packets lost through iovd's bond (b), read on b->receiver: first a
 * second with no switch (the path's own loss), then loss_rounds
 * PrepareMigration and AbortMigration, then loss_rounds of the bond's
 * miimon failover.
 */
static void dbus_loss(sd_bus *bus, const char *owner, const struct bench *b, unsigned loss_rounds)
{
	struct step_times st;
	uint32_t s0, s1, s2, s3;
	unsigned quiet, planned, anchor;

	stream_start(b->bond, b->receiver, NULL);
	s0 = atomic_load(&stream.next);
	pause_ms(1000);
	s1 = atomic_load(&stream.next);
	for (unsigned i = 0; i < loss_rounds; i++) {
		dbus_step(bus, "PrepareMigration", owner, &st);
		pause_ms(20);
		dbus_step(bus, "AbortMigration", owner, &st);
		pause_ms(20);
	}
	s2 = atomic_load(&stream.next);
	for (unsigned i = 0; i < loss_rounds; i++) {
		(void)anchor_round(b);
		pause_ms(20);
	}
	s3 = atomic_load(&stream.next);
	stream_stop();
	quiet = stream_lost(s0, s1);
	planned = stream_lost(s1, s2);
	anchor = stream_lost(s2, s3);
	snprintf(loss_line, sizeof(loss_line),
		 "packets lost through %s, one frame every %u us, read on %s: with no switch %u of %u (1 s); "
		 "PrepareMigration and AbortMigration %u of %u over %u switches (%.2f a switch); its miimon "
		 "failover %u of %u over %u failovers (%.2f a failover)", b->bond, STREAM_GAP_US, b->receiver, quiet,
		 s1 - s0, planned, s2 - s1, 2 * loss_rounds, (double)planned / (2 * loss_rounds), anchor, s3 - s2,
		 loss_rounds, (double)anchor / loss_rounds);
	free(stream.seen);
}

/*
 * b: iovd's bond, its VF and standby, for an anchor of its own, ROUNDS of
 * it after the D-Bus rounds (NULL: anchor50/99 as given).
 */
static int dbus_main(const char *address, const char *owner, unsigned rounds, uint64_t anchor50, uint64_t anchor99,
		     const struct bench *b, unsigned loss_rounds)
{
	uint64_t *call = calloc(rounds, sizeof(*call)), *confirmed = calloc(rounds, sizeof(*confirmed));
	uint64_t *sw = calloc(rounds, sizeof(*sw)), *rest = calloc(rounds, sizeof(*rest));
	uint64_t *ping = calloc(rounds, sizeof(*ping)), *before = calloc(rounds, sizeof(*before));
	uint64_t *back = calloc(rounds, sizeof(*back)), *back_confirmed = calloc(rounds, sizeof(*back_confirmed));
	uint64_t *anchor = calloc(rounds, sizeof(*anchor));
	sd_bus *bus = NULL;
	int r;

	if (!call || !confirmed || !sw || !rest || !ping || !before || !back || !back_confirmed || !anchor || rounds == 0)
		return 2;
	r = bus_connect(address, false, "failover-bench", &bus);
	if (r < 0) {
		fprintf(stderr, "failover-bench: the bus at %s: %s\n", address, strerror(-r));
		return 1;
	}
	for (unsigned i = 0; i < rounds; i++) {
		/* the floor: a round trip through the bus daemon to iovd that does no work there */
		uint64_t t0 = now_us();
		struct step_times st;

		r = sd_bus_call_method(bus, "org.iovkit.iovd1", "/org/iovkit/iovd1", "org.freedesktop.DBus.Peer", "Ping",
				       NULL, NULL, "");
		ping[i] = now_us() - t0;
		if (r < 0) {
			fprintf(stderr, "failover-bench: Peer.Ping: %s\n", strerror(-r));
			return 1;
		}
		dbus_step(bus, "PrepareMigration", owner, &st);
		call[i] = st.reply;
		confirmed[i] = st.confirmed;
		sw[i] = st.sw;
		rest[i] = st.reply > st.sw ? st.reply - st.sw : 0;
		before[i] = st.confirmed > st.sw ? st.confirmed - st.sw : 0;
		dbus_step(bus, "AbortMigration", owner, &st);
		back[i] = st.reply;
		back_confirmed[i] = st.confirmed;
	}
	/* the same bond left to miimon, after the D-Bus rounds: see the head */
	for (unsigned i = 0; b && i < rounds; i++)
		anchor[i] = anchor_round(b);
	if (b) {
		qsort(anchor, rounds, sizeof(*anchor), cmp_u64);
		anchor50 = pct(anchor, rounds, 50);
		anchor99 = pct(anchor, rounds, 99);
		anchor_name = "this bond's own miimon failover";
		printf("anchor: %s's miimon failover after %s's link drops (set down, at a random moment of the MII "
		       "period), after the D-Bus rounds, %u rounds: p50 %llu us, p99 %llu us\n", b->bond, b->vf, rounds, (unsigned long long)anchor50,
		       (unsigned long long)anchor99);
	}
	if (b && b->receiver && loss_rounds)
		dbus_loss(bus, owner, b, loss_rounds);
	print_dist("PrepareMigration through iovd, issue 11's metric: the D-Bus call to the standby active "
		   "(iovd's switch_confirmed_monotonic_usec, the kernel's word read)", confirmed, rounds, anchor50, anchor99);
	print_dist("PrepareMigration through iovd, the D-Bus call to its reply (the above, then the state file's "
		   "fdatasync and the bus back)", call, rounds, anchor50, anchor99);
	print_dist("AbortMigration through iovd, the D-Bus call to the VF active again (the kernel's word read)",
		   back_confirmed, rounds, 0, 0);
	print_dist("AbortMigration through iovd, the D-Bus call to its reply", back, rounds, 0, 0);
	print_dist("PrepareMigration's switch as iovd timed it (iovk_bond_switch: the request to the kernel's word)", sw,
		   rounds, 0, 0);
	print_dist("the rest of PrepareMigration's call (call to reply less the switch: D-Bus, iovd, the state file)",
		   rest, rounds, 0, 0);
	print_dist("the call to PrepareMigration's switch (the metric less the switch: the bus daemon's hop to iovd, "
		   "iovd's checks)", before, rounds, 0, 0);
	print_dist("a D-Bus round trip to iovd doing nothing (Peer.Ping)", ping, rounds, 0, 0);
	if (loss_line[0])
		printf("%s\n", loss_line);
	sd_bus_flush_close_unref(bus);
	free(call);
	free(confirmed);
	free(sw);
	free(rest);
	free(ping);
	free(before);
	free(back);
	free(back_confirmed);
	free(anchor);
	return 0;
}

int main(int argc, char **argv)
{
	struct iovk_ctx *ctx = NULL;
	struct bench b;
	const char *standby_peer;
	uint64_t *planned, *anchor;
	unsigned rounds, loss_rounds, lost_planned, lost_anchor;
	uint32_t s0, s1, s2;

	if ((argc == 5 || argc == 7) && strcmp(argv[1], "--dbus") == 0)
		return dbus_main(argv[2], argv[3], (unsigned)strtoul(argv[4], NULL, 10),
				 argc == 7 ? strtoull(argv[5], NULL, 10) : 0, argc == 7 ? strtoull(argv[6], NULL, 10) : 0,
				 NULL, 0);
	if ((argc == 9 || argc == 11) && strcmp(argv[1], "--dbus") == 0 && strcmp(argv[5], "--same-bond") == 0) {
		if (iovk_ctx_new(&ctx) < 0)
			return 2;
		iovk_ctx_set_keep_netlink(ctx, true);
		/* the VF's link drops as the first form's veth peer's does: its netdev set down, its carrier gone */
		b = (struct bench){ .ctx = ctx, .bond = argv[6], .vf = argv[7], .standby = argv[8], .peer = argv[7],
				    .phase_ms = 100, .receiver = argc == 11 ? argv[9] : NULL };
		srandom((unsigned)now_us());
		return dbus_main(argv[2], argv[3], (unsigned)strtoul(argv[4], NULL, 10), 0, 0, &b,
				 argc == 11 ? (unsigned)strtoul(argv[10], NULL, 10) : 0);
	}
	if (argc != 7 && argc != 8) {
		fprintf(stderr, "usage: failover-bench BOND VF STANDBY VF_PEER STANDBY_PEER ROUNDS [LOSS_ROUNDS]\n"
				"       failover-bench --dbus BUS_ADDRESS OWNER ROUNDS [ANCHOR_P50_US ANCHOR_P99_US]\n"
				"       failover-bench --dbus BUS_ADDRESS OWNER ROUNDS --same-bond BOND VF STANDBY "
				"[RECEIVER LOSS_ROUNDS]\n");
		return 2;
	}
	standby_peer = argv[5];
	rounds = (unsigned)strtoul(argv[6], NULL, 10);
	loss_rounds = argc == 8 ? (unsigned)strtoul(argv[7], NULL, 10) : 20;
	if (rounds == 0 || iovk_ctx_new(&ctx) < 0)
		return 2;
	/* one NETLINK_ROUTE socket for the run, as iovd keeps one (daemon/main.c): the switch timed is iovd's */
	iovk_ctx_set_keep_netlink(ctx, true);
	b = (struct bench){ .ctx = ctx, .bond = argv[1], .vf = argv[2], .standby = argv[3], .peer = argv[4] };
	planned = calloc(rounds, sizeof(*planned));
	anchor = calloc(rounds, sizeof(*anchor));
	if (!planned || !anchor)
		return 1;
	for (unsigned i = 0; i < rounds; i++) {
		planned[i] = planned_round(&b, 0);
		anchor[i] = anchor_round(&b);
	}
	/* the packets lost: planned switches there and back, then miimon failovers */
	stream_start(b.bond, b.peer, standby_peer);
	s0 = atomic_load(&stream.next);
	for (unsigned i = 0; i < loss_rounds; i++) {
		(void)planned_round(&b, 20);
		pause_ms(20);
	}
	s1 = atomic_load(&stream.next);
	for (unsigned i = 0; i < loss_rounds; i++) {
		(void)anchor_round(&b);
		pause_ms(20);
	}
	s2 = atomic_load(&stream.next);
	stream_stop();
	lost_planned = stream_lost(s0, s1);
	lost_anchor = stream_lost(s1, s2);

	qsort(planned, rounds, sizeof(*planned), cmp_u64);
	qsort(anchor, rounds, sizeof(*anchor), cmp_u64);
	printf("planned switch (iovk_bond_switch on a kept netlink socket, as iovd: IFLA_BOND_ACTIVE_SLAVE + the kernel's word), %u rounds: p50 %llu us, p99 %llu us\n",
	       rounds, (unsigned long long)pct(planned, rounds, 50), (unsigned long long)pct(planned, rounds, 99));
	printf("anchor: miimon failover after the link drops, %u rounds: p50 %llu us, p99 %llu us\n", rounds,
	       (unsigned long long)pct(anchor, rounds, 50), (unsigned long long)pct(anchor, rounds, 99));
	printf("packets lost, one frame every %u us: planned %u of %u over %u switches (%.2f a switch); "
	       "anchor %u of %u over %u miimon failovers (%.2f a failover)\n", STREAM_GAP_US, lost_planned, s1 - s0,
	       2 * loss_rounds, loss_rounds ? (double)lost_planned / (2 * loss_rounds) : 0.0, lost_anchor, s2 - s1,
	       loss_rounds, loss_rounds ? (double)lost_anchor / loss_rounds : 0.0);
	printf("ratio anchor/planned: p50 %.1fx, p99 %.1fx\n", (double)pct(anchor, rounds, 50) / (double)pct(planned, rounds, 50),
	       (double)pct(anchor, rounds, 99) / (double)pct(planned, rounds, 99));
	free(planned);
	free(anchor);
	free(stream.seen);
	iovk_ctx_unref(ctx);
	return 0;
}
