/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The steps of a live migration with a VF, on the failover groups of an
 * owner (failover.c builds them): PrepareMigration and AbortMigration on
 * the source, PrepareIncoming (manager.c, an Allocate) and
 * CompleteMigration on either side.
 *
 *   source:       active --Prepare--> prepared --Complete--> released (as Release)
 *                          <--Abort--
 *   destination:  (PrepareIncoming) incoming --Complete--> active
 *                                            --Abort--> released
 *
 * Each step moves the kernel first (a bond's switch is waited for until the
 * kernel reports it), then the state, and its reply waits for the state
 * file (commit.c, COMMIT_UPDATE). A step asked for again finds its work
 * done and answers the same; a step cut by a crash is rolled back at the
 * next start (failover_recover()).
 *
 * What the caller waits for is the switch, the commit and two trips through
 * the bus daemon; nothing else is on that path (issue 11's benchmark: in the
 * test guest, under TCG on one vCPU, each of these cost about a millisecond
 * of PrepareMigration's ~12 ms at p50, measured with timestamps in iovd and
 * the client): the reply names the active slave the switch's wait has just
 * read from the kernel rather than reading the bond again, and the
 * MigrationStep signal goes after the reply (commit.c), so the bus daemon
 * routes the reply first; it also means a signal reports a step on disk.
 * Measured again (per-phase timestamps, 100 rounds): the switch's own
 * notification socket and the writer thread's two hand-offs were another
 * ~1 ms each; a switch now subscribes only when it has to wait
 * (lib/link/bond.c), and a lone step is committed on the loop's thread
 * (commit_now()). And the switch's requests go over the one NETLINK_ROUTE
 * socket iovd's context keeps (main.c): opening and closing one per switch
 * was 0.4 + 0.2 ms at p50 (2 runs of 100 interleaved, under load 4.5; 0.06
 * ms left, the check that nothing waits on the kept socket).
 *
 * Where a PrepareMigration's time went then, on the igb VF and virtio-net
 * standby of bench/failover-run (timestamps in the client and in iovd, one
 * vCPU, p50 of 2 runs of 100 under load ~4.5; the call 10.8 and 11.6 ms):
 * the call reaching iovd through the bus daemon 2.3-2.4 ms; the switch
 * 5.0-5.4 ms, of which the kernel's IFLA_BOND_ACTIVE_SLAVE request alone
 * is 3.5-3.7 (profiled below), the two reads before it 1.0 and the one
 * after it 0.5; the reply and the signal built 0.6; the commit, the reply
 * sent and its way back to the client 2.3-2.5. A Peer.Ping in the same
 * runs: 5.4 and 6.6 ms. The switch has since read the bond once, after
 * its request (iovk_bond_switch()'s switch_at_once()), and its bond sends
 * the kernel's one peer notification (below).
 *
 * As it is now (bench/failover-run, 6 runs of 100, quiet machine, load
 * 0.1-1.1, 2026-12-07 21:47-21:59), against the same bond's own miimon
 * failover (its VF's netdev set down at a random moment of the MII
 * period: p50 51-63, p99 102-111 ms): PrepareMigration from the call to
 * the standby active (the reply's switch_confirmed_monotonic_usec) p50
 * 4.7-6.6, p99 8.0-14.4 ms: 8.8, 13.9, 10.2, 9.3, 7.1 and 9.2x at p99,
 * issue 11's 10x in two runs of six; to the reply p99 12.2-16.6 ms. The
 * switch alone (iovk_bond_switch, its look at the slave to the bond's
 * read) p50 3.8-4.8, p99 6.4-12.7 ms: in two runs the kernel's work on
 * these two emulated devices took more than the budget (a tenth of that
 * run's anchor) by itself. What comes before it, the call's way to iovd
 * through the bus daemon and iovd's checks: p50 0.8-1.3, p99 2.5-4.8 ms.
 * A Peer.Ping p50 1.9-3.0 ms. No packet lost (one frame a millisecond,
 * read on a third port of the hub) over 40 PrepareMigration and
 * AbortMigration switches in each of the last three runs; 56-68 a miimon
 * failover.
 *
 * The kernel's part, profiled (ftrace function_graph in that guest,
 * bench/failover-ftrace; medians of 30 switches both ways, host load
 * 3.5-3.8, so loose): rtnl_newlink 4.1 ms, of which
 * bond_change_active_slave() 3.7:
 *  - 2.2 ms, the four receive-filter updates of bond_hw_addr_swap(): the
 *    bond's unicast and multicast lists unsynced from the old slave and
 *    synced to the new one, each calling the slave's ndo_set_rx_mode
 *    whatever the lists hold. igbvf 0.63 ms a call (two mailbox messages,
 *    the multicast then the unicast list, each polled until the PF's igb
 *    acks), virtio-net 0.33 (three control-queue commands: promisc,
 *    allmulti, MAC table, each a trap to QEMU and a busy wait);
 *  - 0.8 ms, netdev_lower_state_changed() of both slaves (an RTM_NEWLINK
 *    built and broadcast for each), and 0.3 more for the bond's own
 *    (do_setlink());
 *  - 0.2 each: NETDEV_BONDING_FAILOVER's notifiers, the "making interface
 *    ... the new active one" printk, the three works queued. Off the CPU
 *    inside the request (a full trace with sched events): 0.3-0.6 ms, a
 *    kworker woken by it running at a cond_resched().
 * Nothing iovkit chooses shortens this without weakening a failover
 * (untraced, iovk-link switch with its five reads and its own socket; 40 each,
 * p50, same load): the filter updates come with every active-backup
 * switch, short lists or long (IPv6 off on the bond, fewer multicast
 * entries: 6.7 against 5.3-5.7 ms as built);
 * fail_over_mac active or follow would add a MAC change per switch
 * through the same mailbox and control queue (from the kernel's code, not
 * measured); resend_igmp 0 moves nothing (5.5: its resend is a delayed
 * work, outside the request); an IPv4 address on the bond nothing (5.9).
 * Peer notification: the kernel's default, num_peer_notif 1, sends a
 * gratuitous ARP and an unsolicited NA for the bond's own addresses from
 * inside the request: +2.6 ms (7.9), traced as ndisc's NA of the
 * link-local 0.9-1.1 and, with an IPv4 address, the gratuitous ARP
 * 0.2-1.0 (under TCG; on hardware, one transmit each). iovd's bonds were
 * made with 0 until 2026-12-07, not by choice (iovk_bond_create() without
 * options sent the zero of its options): an operator who puts the host's
 * address on a bond iovd made would have had inbound traffic sent to the
 * old slave's port after a switch, until the switch in the network
 * learned the bond's MAC again (the host's next frame out, or its aging
 * time, minutes). They are made with 1 now,
 * as `ip link add type bond` makes them, and the switch is timed with it.
 */
#include <inttypes.h>
#include <string.h>

#include "common/time-util.h"
#include "iovd.h"

/* ---- what a group reports ------------------------------------------------------------- */

/*
 * The group's entries, inside an a{sv} already open. active: the bond's
 * active slave as the kernel reported it a moment ago (a step's switch
 * waited for it); NULL reads it now.
 */
static int append_group(struct manager *m, struct allocation *a, const char *active, sd_bus_message *reply)
{
	struct failover *f = a->failover;
	int r;

	r = sd_bus_message_append(reply, "{sv}{sv}{sv}{sv}", "allocation", "o", a->path, "address", "s", a->address,
				  "failover", "s", failover_mode_to_string(f->mode), "failover_state", "s",
				  failover_state_to_string(f->state));
	if (r >= 0 && f->netdev)
		r = sd_bus_message_append(reply, "{sv}", "vf_netdev", "s", f->netdev);
	if (r >= 0 && f->mode == FAILOVER_BOND) {
		struct iovk_bond *b = NULL;

		/* what the kernel says, not what iovd last asked for */
		if (!active)
			active = iovk_bond_read(m->ctx, f->bond, &b) >= 0 ? iovk_bond_get_active_slave(b) ?: "" : "";
		r = sd_bus_message_append(reply, "{sv}{sv}{sv}", "bond", "s", f->bond, "standby", "s", f->standby,
					  "active_slave", "s", active);
		iovk_bond_unref(b);
	}
	if (r >= 0 && f->mode == FAILOVER_MACVTAP && f->macvtap) {
		struct iovk_macvtap_info mi = IOVK_MACVTAP_INFO_INIT;

		r = sd_bus_message_append(reply, "{sv}{sv}{sv}", "macvtap", "s", f->macvtap, "macvtap_mode", "s",
					  iovk_macvtap_mode_to_string(f->macvtap_mode) ?: "", "tap_node", "s",
					  iovk_macvtap_get(m->ctx, f->macvtap, &mi) >= 0 ? mi.tap_node : "");
	}
	if (r >= 0 && f->mode == FAILOVER_GUEST)
		r = sd_bus_message_append(reply, "{sv}", "unplug", "b", (int)(f->state == FAILOVER_PREPARED));
	if (r >= 0 && f->last_step[0])
		r = sd_bus_message_append(reply, "{sv}{sv}{sv}{sv}", "last_step", "s", f->last_step, "last_step_usec", "t",
					  f->last_step_usec, "switch_usec", "t", f->switch_usec,
					  "switch_confirmed_monotonic_usec", "t", f->switch_confirmed_monotonic_usec);
	return r;
}

int property_failover_state(sd_bus *bus, const char *path, const char *interface, const char *property,
			    sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct allocation *a = userdata;
	int r;

	r = sd_bus_message_open_container(reply, 'a', "{sv}");
	if (r >= 0 && a->failover)
		r = append_group(a->manager, a, NULL, reply);
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	return r;
}

/* The MigrationStep signal, sent after the step's reply once the step is on disk (commit_queue_signal()). */
static int step_signal(struct manager *m, const char *owner, const char *step, const char *state, uint64_t usec,
		       sd_bus_message **ret)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *s = NULL;
	int r;

	r = sd_bus_message_new_signal(m->bus, &s, IOVD_PATH, IOVD_MANAGER_IFACE, "MigrationStep");
	if (r >= 0)
		r = sd_bus_message_append(s, "ssst", owner, step, state, usec);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(s);
	return 0;
}

int migration_incoming_reply(struct manager *m, struct allocation *a, sd_bus_message *reply, uint64_t usec,
			     sd_bus_message **ret_signal)
{
	_cleanup_free_ char *node = allocation_device_node(m, a);
	int r;

	if (!node)
		return -ENOMEM;
	snprintf(a->failover->last_step, sizeof(a->failover->last_step), "incoming");
	a->failover->last_step_usec = usec;
	r = sd_bus_message_open_container(reply, 'a', "{sv}");
	if (r >= 0)
		r = sd_bus_message_append(reply, "{sv}{sv}{sv}{sv}", "migration_step", "s", "incoming", "iommu_group", "i",
					  a->iommu_group, "device_node", "s", node, "usec", "t", usec);
	if (r >= 0)
		r = append_group(m, a, NULL, reply);
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	if (r >= 0)
		r = step_signal(m, a->owner, "incoming", failover_state_to_string(a->failover->state), usec, ret_signal);
	return r;
}

/* ---- the steps ------------------------------------------------------------------------- */

enum step {
	STEP_PREPARE,
	STEP_COMPLETE,
	STEP_ABORT,
};

static const char *const step_names[] = { "prepare", "complete", "abort" };
static const char *const method_names[] = { "PrepareMigration", "CompleteMigration", "AbortMigration" };

/*
 * What a step does to one group: 0 nothing, 1 the state changes, 2 the VF is
 * released. *ret_active: the bond's active slave once its switch was
 * confirmed by the kernel, untouched when the step switched nothing.
 */
static int step_one(struct manager *m, enum step step, struct allocation *a, const char **ret_active,
		    sd_bus_error *error)
{
	struct failover *f = a->failover;
	char what[96];
	int r;

	snprintf(what, sizeof(what), "%s: switching bond %s", method_names[step], f->bond ?: "");
	switch (step) {
	case STEP_PREPARE:
		if (f->state == FAILOVER_INCOMING)
			return sd_bus_error_setf(error, IOVD_ERR_INVALID,
						 "PrepareMigration: %s (VF %s, owner %s) is a migration's destination "
						 "(incoming): CompleteMigration or AbortMigration it", a->path, a->address,
						 a->owner);
		if (f->mode == FAILOVER_BOND) {
			r = failover_switch(m, a, f->standby, what, &f->switch_usec, error);
			if (r < 0) {
				/* the VF again, as before the step; the error says whether that worked */
				sd_bus_error e2 = SD_BUS_ERROR_NULL;

				if (failover_switch(m, a, f->netdev, what, NULL, &e2) < 0)
					error_append(error, "; switching back to the VF failed too: %s", e2.message);
				else
					error_append(error, "; the VF %s is the active slave again", f->netdev);
				sd_bus_error_free(&e2);
				return r;
			}
			/* the moment the kernel's word was read: a client times its call to it (bench/failover-bench) */
			f->switch_confirmed_monotonic_usec = now_usec(CLOCK_MONOTONIC);
			*ret_active = f->standby;
		}
		if (f->state == FAILOVER_PREPARED)
			return 0;
		f->state = FAILOVER_PREPARED;
		return 1;
	case STEP_ABORT:
	case STEP_COMPLETE:
		/* the source's complete and the destination's abort release the VF */
		if (f->state == (step == STEP_ABORT ? FAILOVER_INCOMING : FAILOVER_PREPARED))
			return 2;
		/* the source's abort and the destination's complete: back to the VF */
		if (f->mode == FAILOVER_BOND) {
			r = failover_switch(m, a, f->netdev, what, &f->switch_usec, error);
			if (r < 0)
				return r;
			f->switch_confirmed_monotonic_usec = now_usec(CLOCK_MONOTONIC);
			*ret_active = f->netdev;
		}
		if (f->state == FAILOVER_ACTIVE)
			return 0;
		f->state = FAILOVER_ACTIVE;
		return 1;
	}
	return 0;
}

static int migration_step(sd_bus_message *msg, struct manager *m, enum step step, sd_bus_error *error)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL, *signal = NULL;
	_cleanup_free_ struct allocation **list = NULL, **released = NULL;
	_cleanup_free_ const char **active = NULL;
	uint64_t start = now_usec(CLOCK_MONOTONIC), usec;
	size_t n = 0, n_released = 0;
	const char *owner, *state = "none";
	uid_t uid;
	int r;

	r = check_access_owner(m, msg, method_names[step], &owner, &uid, error);
	if (r < 0)
		return r;
	list = calloc(m->n_allocs ?: 1, sizeof(*list));
	released = calloc(m->n_allocs ?: 1, sizeof(*released));
	active = calloc(m->n_allocs ?: 1, sizeof(*active));
	if (!list || !released || !active)
		return -ENOMEM;
	/* the caller's own only, unless root (as ReleaseOwner) */
	for (size_t i = 0; i < m->n_allocs; i++) {
		struct allocation *a = m->allocs[i];

		if (a->failover && owner_may_act(a, owner, uid))
			list[n++] = a;
	}
	/* nothing, or released already: a step asked for again after its work is done */
	if (n == 0 && step == STEP_PREPARE)
		return sd_bus_error_setf(error, IOVD_ERR_NOT_FOUND, "PrepareMigration: owner %s holds no allocation "
					 "with a failover group%s", owner, uid ? " of this uid" : "");
	for (size_t i = 0; i < n; i++)
		if (list[i]->failover->state == (step == STEP_COMPLETE ? FAILOVER_PREPARED : FAILOVER_INCOMING) &&
		    step != STEP_PREPARE) {
			r = check_group_closed(m, list[i], error);
			if (r < 0)
				return r;
		}
	for (size_t i = 0; i < n; i++) {
		struct failover *f = list[i]->failover;
		uint64_t t = now_usec(CLOCK_MONOTONIC);

		r = step_one(m, step, list[i], &active[i], error);
		if (r < 0) {
			error_append(error, " (group %zu of %zu of owner %s; the ones before it are done)", i + 1, n, owner);
			return r;
		}
		snprintf(f->last_step, sizeof(f->last_step), "%s", step_names[step]);
		f->last_step_usec = now_usec(CLOCK_MONOTONIC) - t;
		if (r == 2)
			released[n_released++] = list[i];
		else
			state = failover_state_to_string(f->state);
	}
	if (n_released == n && n > 0)
		state = "released";
	usec = now_usec(CLOCK_MONOTONIC) - start;
	r = sd_bus_message_new_method_return(msg, &reply);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "{sv}");
	if (r >= 0)
		r = sd_bus_message_append(reply, "{sv}{sv}{sv}{sv}{sv}", "owner", "s", owner, "migration_step", "s",
					  step_names[step], "failover_state", "s", state, "usec", "t", usec, "n_groups", "u",
					  (uint32_t)n);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'e', "sv");
	if (r >= 0)
		r = sd_bus_message_append(reply, "s", "failover_groups");
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'v', "aa{sv}");
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "a{sv}");
	for (size_t i = 0; r >= 0 && i < n; i++) {
		r = sd_bus_message_open_container(reply, 'a', "{sv}");
		if (r >= 0)
			r = append_group(m, list[i], active[i], reply);
		if (r >= 0)
			r = sd_bus_message_close_container(reply);
	}
	for (int k = 0; r >= 0 && k < 4; k++)
		r = sd_bus_message_close_container(reply);
	if (r < 0)
		return r;
	log_info("%s %s: %zu failover group%s, now %s, in %" PRIu64 " us", method_names[step], owner, n, n == 1 ? "" : "s",
		 state, usec);
	r = step_signal(m, owner, step_names[step], state, usec, &signal);
	if (r < 0)
		return r;
	if (n == 0) {
		r = sd_bus_send(NULL, reply, NULL);
		(void)sd_bus_send(NULL, signal, NULL);
		return r;
	}
	/* a released VF goes back exactly as Release puts it (its group first) */
	for (size_t i = 0; i < n_released; i++)
		(void)allocation_put_back(m, released[i]);
	if (n_released)
		return commit_queue_signal(m, COMMIT_RELEASE, msg, TAKE_PTR(reply), TAKE_PTR(signal), TAKE_PTR(released),
					   n_released);
	return commit_queue_signal(m, COMMIT_UPDATE, msg, TAKE_PTR(reply), TAKE_PTR(signal), NULL, 0);
}

int method_prepare_migration(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	return migration_step(msg, userdata, STEP_PREPARE, error);
}

int method_complete_migration(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	return migration_step(msg, userdata, STEP_COMPLETE, error);
}

int method_abort_migration(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	return migration_step(msg, userdata, STEP_ABORT, error);
}
