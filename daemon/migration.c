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
 * next start (failover_recover()). The MigrationStep signal is sent when a
 * step has changed the kernel, before the state file has it: the reply is
 * the word that counts.
 */
#include <inttypes.h>
#include <string.h>

#include "common/time-util.h"
#include "iovd.h"

/* ---- what a group reports ------------------------------------------------------------- */

/* The group's entries, inside an a{sv} already open. */
static int append_group(struct manager *m, struct allocation *a, sd_bus_message *reply)
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
		const char *active = "";

		/* what the kernel says now, not what iovd last asked for */
		if (iovk_bond_read(m->ctx, f->bond, &b) >= 0)
			active = iovk_bond_get_active_slave(b) ?: "";
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
		r = sd_bus_message_append(reply, "{sv}{sv}{sv}", "last_step", "s", f->last_step, "last_step_usec", "t",
					  f->last_step_usec, "switch_usec", "t", f->switch_usec);
	return r;
}

int property_failover_state(sd_bus *bus, const char *path, const char *interface, const char *property,
			    sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct allocation *a = userdata;
	int r;

	r = sd_bus_message_open_container(reply, 'a', "{sv}");
	if (r >= 0 && a->failover)
		r = append_group(a->manager, a, reply);
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	return r;
}

int migration_incoming_reply(struct manager *m, struct allocation *a, sd_bus_message *reply, uint64_t usec)
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
		r = append_group(m, a, reply);
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	if (r >= 0)
		(void)sd_bus_emit_signal(m->bus, IOVD_PATH, IOVD_MANAGER_IFACE, "MigrationStep", "ssst", a->owner,
					 "incoming", failover_state_to_string(a->failover->state), usec);
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

/* What a step does to one group: 0 nothing, 1 the state changes, 2 the VF is released. */
static int step_one(struct manager *m, enum step step, struct allocation *a, sd_bus_error *error)
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
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	_cleanup_free_ struct allocation **list = NULL, **released = NULL;
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
	if (!list || !released)
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

		r = step_one(m, step, list[i], error);
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
			r = append_group(m, list[i], reply);
		if (r >= 0)
			r = sd_bus_message_close_container(reply);
	}
	for (int k = 0; r >= 0 && k < 4; k++)
		r = sd_bus_message_close_container(reply);
	if (r < 0)
		return r;
	log_info("%s %s: %zu failover group%s, now %s, in %" PRIu64 " us", method_names[step], owner, n, n == 1 ? "" : "s",
		 state, usec);
	(void)sd_bus_emit_signal(m->bus, IOVD_PATH, IOVD_MANAGER_IFACE, "MigrationStep", "ssst", owner, step_names[step],
				 state, usec);
	if (n == 0)
		return sd_bus_send(NULL, reply, NULL);
	/* a released VF goes back exactly as Release puts it (its group first) */
	for (size_t i = 0; i < n_released; i++)
		(void)allocation_put_back(m, released[i]);
	if (n_released)
		return commit_queue(m, COMMIT_RELEASE, msg, TAKE_PTR(reply), TAKE_PTR(released), n_released);
	return commit_queue(m, COMMIT_UPDATE, msg, TAKE_PTR(reply), NULL, 0);
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
