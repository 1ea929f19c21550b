/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Failover groups: what lets a VM that holds a VF be live-migrated
 * (iovd(8), FAILOVER GROUPS). A group belongs to one allocation, is built
 * when it is allocated (Allocate, PrepareIncoming), kept in the state file
 * with it, and taken down when the VF is put back:
 *
 *  - bond: the VF's netdev and a standby port (virtio, tap, veth, another
 *    VF) in an active-backup bond on the host, which iovd makes when it is
 *    missing; the VF is the active slave, the standby takes over for a
 *    migration;
 *  - macvtap: a macvtap on the VF's netdev (the VM sees virtio-net only);
 *  - guest: nothing on the host (QEMU's failover=on pairs a virtio-net
 *    standby with the VF in the guest); the group records the steps.
 *
 * The state file is the truth (state.c writes the group with its
 * allocation before any reply): a step changes the kernel, then the state,
 * then answers. A step cut by a crash between the kernel and the disk was
 * never answered; at the next start failover_recover() puts the kernel
 * back as the file says (the step is rolled back, and the client that got
 * no answer repeats it: every step is idempotent), and logs it.
 *
 * This file is below allocation.c (which takes a group down with its VF)
 * and state.c; the methods that move a group are in migration.c.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/fileio.h"
#include "common/strict-json.h"
#include "common/time-util.h"
#include "iovd.h"

static const char *const mode_names[] = {
	[FAILOVER_BOND] = "bond",
	[FAILOVER_MACVTAP] = "macvtap",
	[FAILOVER_GUEST] = "guest",
};

static const char *const state_names[] = {
	[FAILOVER_ACTIVE] = "active",
	[FAILOVER_PREPARED] = "prepared",
	[FAILOVER_INCOMING] = "incoming",
};

const char *failover_mode_to_string(enum failover_mode m)
{
	return (unsigned)m < ELEMENTSOF(mode_names) ? mode_names[m] : NULL;
}

const char *failover_state_to_string(enum failover_state s)
{
	return (unsigned)s < ELEMENTSOF(state_names) ? state_names[s] : NULL;
}

static int lookup(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (names[i] && strcmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

void failover_free(struct failover *f)
{
	if (!f)
		return;
	free(f->bond);
	free(f->standby);
	free(f->netdev);
	free(f->macvtap);
	free(f);
}

/* Interface names as the kernel takes them: 1 to 15 characters, no '/', ':' or blank. */
static bool ifname_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= IOVK_IFNAMSIZ || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (; *s; s++)
		if (*s == '/' || *s == ':' || (unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

/* ---- Allocate's options ------------------------------------------------------------------ */

int failover_parse_option(sd_bus_message *msg, const char *key, struct failover_options *fo, sd_bus_error *error)
{
	static const char *const keys[] = { "failover", "bond", "standby", "macvtap_mode" };
	int i = lookup(keys, ELEMENTSOF(keys), key), r;
	const char *s;

	if (i < 0)
		return 0;
	if (fo->seen & (1u << i))
		return sd_bus_error_setf(error, IOVD_ERR_INVALID, "option %s given twice", key);
	fo->seen |= 1u << i;
	r = sd_bus_message_read(msg, "v", "s", &s);
	if (r < 0)
		return sd_bus_error_setf(error, IOVD_ERR_INVALID, "option %s must hold a string", key);
	switch (i) {
	case 0:
		fo->mode = lookup(mode_names, ELEMENTSOF(mode_names), s);
		if (fo->mode <= 0)
			return sd_bus_error_setf(error, IOVD_ERR_INVALID,
						 "option failover must be \"bond\", \"macvtap\" or \"guest\", not '%.64s'", s);
		break;
	case 1:
	case 2:
		if (!ifname_valid(s))
			return sd_bus_error_setf(error, IOVD_ERR_INVALID, "option %s: '%.64s' is not a network interface name",
						 key, s);
		if (i == 1)
			fo->bond = s;
		else
			fo->standby = s;
		break;
	default: {
		enum iovk_macvtap_mode mode;

		if (iovk_macvtap_mode_from_string(s, &mode) < 0)
			return sd_bus_error_setf(error, IOVD_ERR_INVALID,
						 "option macvtap_mode must be passthru, bridge, vepa or private, not '%.64s'", s);
		fo->macvtap_mode = (int)mode;
	}
	}
	return 1;
}

int failover_check_options(struct failover_options *fo, int *driver, sd_bus_error *error)
{
	if (!fo->mode) {
		if (fo->seen)
			return sd_bus_error_setf(error, IOVD_ERR_INVALID,
						 "options bond, standby and macvtap_mode need option failover");
		return 0;
	}
	if (fo->mode == FAILOVER_BOND && (!fo->bond || !fo->standby))
		return sd_bus_error_setf(error, IOVD_ERR_INVALID, "failover bond needs options bond and standby");
	if (fo->mode != FAILOVER_BOND && fo->bond)
		return sd_bus_error_setf(error, IOVD_ERR_INVALID, "option bond belongs to failover bond");
	if (fo->mode == FAILOVER_MACVTAP && fo->standby)
		return sd_bus_error_setf(error, IOVD_ERR_INVALID,
					 "failover macvtap has no standby: the VM's virtio-net is the macvtap");
	if (fo->mode != FAILOVER_MACVTAP && fo->macvtap_mode)
		return sd_bus_error_setf(error, IOVD_ERR_INVALID, "option macvtap_mode belongs to failover macvtap");
	if (fo->mode == FAILOVER_MACVTAP && !fo->macvtap_mode)
		fo->macvtap_mode = IOVK_MACVTAP_PASSTHRU;
	/* bond and macvtap are built on the VF's netdev: its kernel driver */
	if (fo->mode != FAILOVER_GUEST) {
		if (*driver == POOL_DRIVER_VFIO)
			return sd_bus_error_setf(error, IOVD_ERR_INVALID,
						 "failover %s builds on the VF's netdev: it needs driver kernel, not vfio-pci",
						 failover_mode_to_string(fo->mode));
		*driver = POOL_DRIVER_KERNEL;
	}
	return 0;
}

/* ---- building and taking down ----------------------------------------------------------- */

/* The VF's network interface, as sysfs names it under the device. */
static int vf_netdev(struct manager *m, const struct allocation *a, char **ret, sd_bus_error *error)
{
	struct iovk_device *d = NULL;
	const char *const *names;
	int r;

	r = iovk_device_new(m->ctx, a->address, &d);
	if (r < 0)
		return error_set_errnof(error, NULL, r, "failover: reading VF %s: %s", a->address,
					iovk_ctx_get_error(m->ctx));
	names = iovk_device_get_netdevs(d);
	if (!names || !names[0]) {
		r = sd_bus_error_setf(error, IOVD_ERR_FAILED,
				      "failover: VF %s has no network interface (its driver is %s): a bond or macvtap "
				      "needs one", a->address, a->driver && a->driver[0] ? a->driver : "none");
		iovk_device_unref(d);
		return r;
	}
	*ret = strdup(names[0]);
	iovk_device_unref(d);
	return *ret ? 0 : -ENOMEM;
}

/* The error of a failed libiovkit link call, naming the step and the group. */
static int link_error(struct manager *m, sd_bus_error *error, const char *step, const struct allocation *a, int r)
{
	return error_set_errnof(error, r == -ENODEV ? IOVD_ERR_NOT_FOUND : NULL, r,
				"%s (%s, VF %s, owner %s): %s", step, a->path, a->address, a->owner,
				iovk_ctx_get_error(m->ctx));
}

/* ---- an Allocate cut before its commit ----------------------------------------------- */

/*
 * <run dir>/iovd-failover/<allocation id>: what a group is about to build
 * (the group as the state file keeps it, and the owner), written before
 * the group changes the kernel and removed when its allocation is
 * committed or taken down. An Allocate or PrepareIncoming cut by a crash
 * before its commit is in no state file, so this record is how the next
 * start finds the macvtap or bond it made (failover_recover_uncommitted()).
 * On /run, like the markers: a reboot takes the links with it.
 */
static char *intent_path(struct manager *m, uint64_t id)
{
	char *s;

	return asprintf(&s, "%s/iovd-failover/%" PRIu64, iovk_ctx_get_run_dir(m->ctx), id) < 0 ? NULL : s;
}

static int intent_write(struct manager *m, struct allocation *a, sd_bus_error *error)
{
	_cleanup_free_ char *p = intent_path(m, a->id);
	struct json_object *o;
	int r;

	if (!p)
		return -ENOMEM;
	o = failover_to_json(a->failover);
	json_object_object_add(o, "owner", json_object_new_string(a->owner));
	r = write_file_atomic(p, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	if (r < 0)
		return error_set_errnof(error, NULL, r, "failover (%s, VF %s, owner %s): recording the group in "
					"%s before building it: %s", a->path, a->address, a->owner, p, strerror(-r));
	return 0;
}

void failover_intent_remove(struct manager *m, const struct allocation *a)
{
	_cleanup_free_ char *p = NULL;

	if (!a->failover || a->failover->mode == FAILOVER_GUEST || !(p = intent_path(m, a->id)))
		return;
	if (unlink(p) < 0 && errno != ENOENT)
		log_warning("Failed to remove %s: %m", p);
}

/* What one record names, taken down as failover_teardown() does a committed group's. */
static void intent_undo(struct manager *m, const char *dir, int dir_fd, const char *name, uint64_t id)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct strict_json_error err = {};
	struct json_object *o = NULL, *v;
	struct allocation a = { .id = id };
	char text[4096];
	ssize_t len = fd < 0 ? -1 : read(fd, text, sizeof(text) - 1);

	if (asprintf(&path, "uncommitted allocation %" PRIu64, id) < 0)
		return;
	a.path = path;
	if (len >= 0)
		text[len] = 0;
	if (len < 0 || strict_json_parse(text, (size_t)len, 4, STRICT_JSON_NO_NUL_IN_STRINGS, &o, &err) < 0 ||
	    !json_object_object_get_ex(o, "owner", &v) || !json_object_is_type(v, json_type_string) ||
	    !failover_from_json(o, &a)) {
		log_warning("failover: %s/%s: not a failover record iovd wrote; removed, nothing taken down", dir, name);
		failover_free(a.failover);
		json_object_put(o);
		return;
	}
	a.owner = (char *)json_object_get_string(v);
	a.address = (char *)"(none recorded)";
	log_notice("failover %s (%s): an Allocate cut before its commit (iovd stopped) had built a %s group on %s: "
		   "taking it down", a.owner, a.path, failover_mode_to_string(a.failover->mode), a.failover->netdev);
	failover_teardown(m, &a);
	failover_free(a.failover);
	json_object_put(o);
}

static void intent_recover(struct manager *m, const char *dir, int dir_fd, const char *name, uint64_t id,
			   bool known)
{
	if (!id) {
		log_warning("failover: %s/%s: not a failover record iovd wrote; left as it is", dir, name);
		return;
	}
	/* known: committed, the state file has the group, and failover_recover() saw to it */
	if (!known) {
		intent_undo(m, dir, dir_fd, name, id);
		/* its id was in a record and in the log (its iovtapN too): never reused, as devpool_recover() */
		if (id >= m->next_id && id < UINT64_MAX)
			m->next_id = id + 1;
	}
	if (unlinkat(dir_fd, name, 0) < 0 && errno != ENOENT)
		log_warning("Failed to remove %s/%s: %m", dir, name);
}

bool failover_recover_uncommitted(struct manager *m)
{
	uint64_t next_id = m->next_id;

	if (run_records_foreach(m, "iovd-failover", intent_recover) < 0)
		log_warning("failover: Failed to go through the records of groups being built: %s", strerror(ENOMEM));
	return m->next_id != next_id;
}

/* Makes want the bond's active slave and waits for the kernel to say so; *ret_usec the wait. */
int failover_switch(struct manager *m, struct allocation *a, const char *want, const char *step, uint64_t *ret_usec,
		    sd_bus_error *error)
{
	/* up first when it is down, then the switch and the kernel's word (libiovkit, <iovkit/link.h>) */
	int r = iovk_bond_switch(m->ctx, a->failover->bond, want, FAILOVER_WAIT_MS, ret_usec);

	return r < 0 ? link_error(m, error, step, a, r) : 0;
}

static int setup_bond(struct manager *m, struct allocation *a, bool incoming, sd_bus_error *error)
{
	struct failover *f = a->failover;
	struct iovk_link_info l = IOVK_LINK_INFO_INIT;
	int r;

	r = iovk_link_get(m->ctx, f->standby, &l);
	if (r < 0)
		return error_set_errnof(error, r == -ENODEV ? IOVD_ERR_NOT_FOUND : NULL, r,
					"failover bond %s: standby %s: %s", f->bond, f->standby, iovk_ctx_get_error(m->ctx));
	r = iovk_link_get(m->ctx, f->bond, &l);
	if (r == -ENODEV) {
		/* recorded as made before it is: a crash in between finds no bond to delete, and that is fine */
		f->bond_created = true;
		r = intent_write(m, a, error);
		if (r < 0) {
			/* not made: teardown must not delete a bond of that name (the record keeps it for a crash) */
			f->bond_created = false;
			return r;
		}
		r = iovk_bond_create(m->ctx, f->bond, NULL);
		f->bond_created = r >= 0;
	} else if (r >= 0 && strcmp(l.kind, "bond") == 0 && (r = intent_write(m, a, error)) < 0)
		return r;
	else if (r >= 0 && strcmp(l.kind, "bond") != 0)
		return sd_bus_error_setf(error, IOVD_ERR_INVALID, "failover bond %s: %s is a %s, not a bond", f->bond,
					 f->bond, l.kind[0] ? l.kind : "device's own interface");
	if (r < 0)
		return link_error(m, error, "failover bond: making the bond", a, r);
	r = iovk_bond_enslave(m->ctx, f->bond, f->netdev);
	if (r >= 0)
		r = iovk_bond_enslave(m->ctx, f->bond, f->standby);
	if (r >= 0)
		r = iovk_link_set_up(m->ctx, f->bond, true);
	if (r < 0)
		return link_error(m, error, "failover bond: enslaving the VF and the standby", a, r);
	/* a source starts on its VF; a destination on the standby until CompleteMigration */
	return failover_switch(m, a, incoming ? f->standby : f->netdev, "failover bond: the first switch", NULL, error);
}

static int setup_macvtap(struct manager *m, struct allocation *a, sd_bus_error *error)
{
	struct failover *f = a->failover;
	struct iovk_macvtap_opts o = IOVK_MACVTAP_OPTS_INIT;
	char name[IOVK_IFNAMSIZ];
	int r;

	/* one per allocation, named by its id so a restart finds it */
	snprintf(name, sizeof(name), "iovtap%" PRIu64, a->id % 100000000);
	o.name = name;
	o.mode = (enum iovk_macvtap_mode)f->macvtap_mode;
	/* named (and recorded) before it is made: a crash in between finds none to delete */
	free(f->macvtap);
	f->macvtap = strdup(name);
	if (!f->macvtap)
		return -ENOMEM;
	r = intent_write(m, a, error);
	if (r >= 0) {
		r = iovk_link_set_up(m->ctx, f->netdev, true);
		if (r >= 0)
			r = iovk_macvtap_create(m->ctx, f->netdev, &o, NULL);
		if (r < 0)
			r = link_error(m, error, "failover macvtap: making the macvtap", a, r);
	}
	if (r < 0) {
		/*
		 * Not made here (EEXIST: someone else's; any other failure: none
		 * made yet): teardown must not delete a link of that name. The
		 * record on disk keeps the name for a crash in between.
		 */
		free(f->macvtap);
		f->macvtap = NULL;
		return r;
	}
	r = iovk_link_set_up(m->ctx, name, true);
	return r < 0 ? link_error(m, error, "failover macvtap: making the macvtap", a, r) : 0;
}

int failover_setup(struct manager *m, struct allocation *a, const struct failover_options *fo, bool incoming,
		   sd_bus_error *error)
{
	struct failover *f;
	int r;

	if (!fo->mode)
		return 0;
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	a->failover = f;
	f->mode = (enum failover_mode)fo->mode;
	f->state = incoming ? FAILOVER_INCOMING : FAILOVER_ACTIVE;
	f->macvtap_mode = fo->macvtap_mode;
	if ((fo->bond && !(f->bond = strdup(fo->bond))) || (fo->standby && !(f->standby = strdup(fo->standby))))
		return -ENOMEM;
	if (f->mode == FAILOVER_GUEST)
		return 0;
	r = vf_netdev(m, a, &f->netdev, error);
	if (r >= 0)
		r = f->mode == FAILOVER_BOND ? setup_bond(m, a, incoming, error) : setup_macvtap(m, a, error);
	return r;
}

void failover_teardown(struct manager *m, struct allocation *a)
{
	struct failover *f = a->failover;
	struct iovk_link_info l = IOVK_LINK_INFO_INIT;
	int r = 0;

	if (!f)
		return;
	failover_intent_remove(m, a);
	if (f->macvtap) {
		r = iovk_link_delete(m->ctx, f->macvtap);
		if (r < 0 && r != -ENODEV)
			log_warning("failover %s (%s): Failed to delete macvtap %s: %s", a->owner, a->path, f->macvtap,
				    iovk_ctx_get_error(m->ctx));
		else
			log_info("failover %s (%s): macvtap %s deleted", a->owner, a->path, f->macvtap);
	}
	if (f->mode == FAILOVER_BOND && f->netdev && iovk_link_get(m->ctx, f->netdev, &l) >= 0 && l.master_ifindex) {
		r = iovk_bond_release(m->ctx, f->netdev);
		if (r < 0)
			log_warning("failover %s (%s): Failed to take VF netdev %s out of bond %s: %s", a->owner, a->path,
				    f->netdev, f->bond, iovk_ctx_get_error(m->ctx));
	}
	/* the bond iovd made goes with the group; a bond the host had stays, with the standby in it */
	if (f->mode == FAILOVER_BOND && f->bond_created) {
		r = iovk_link_delete(m->ctx, f->bond);
		if (r < 0 && r != -ENODEV)
			log_warning("failover %s (%s): Failed to delete bond %s: %s", a->owner, a->path, f->bond,
				    iovk_ctx_get_error(m->ctx));
	}
}

/* ---- the state file --------------------------------------------------------------------- */

struct json_object *failover_to_json(const struct failover *f)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "mode", json_object_new_string(failover_mode_to_string(f->mode)));
	json_object_object_add(o, "state", json_object_new_string(failover_state_to_string(f->state)));
	if (f->bond)
		json_object_object_add(o, "bond", json_object_new_string(f->bond));
	if (f->standby)
		json_object_object_add(o, "standby", json_object_new_string(f->standby));
	if (f->netdev)
		json_object_object_add(o, "netdev", json_object_new_string(f->netdev));
	if (f->macvtap)
		json_object_object_add(o, "macvtap", json_object_new_string(f->macvtap));
	if (f->macvtap_mode)
		json_object_object_add(o, "macvtap_mode",
				       json_object_new_string(iovk_macvtap_mode_to_string(f->macvtap_mode) ?: "bridge"));
	json_object_object_add(o, "bond_created", json_object_new_boolean(f->bond_created));
	return o;
}

/* An interface name member: absent is fine (NULL), present it must be a name. */
static bool name_member(struct json_object *o, const char *key, char **ret)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return true;
	if (!json_object_is_type(v, json_type_string) || !ifname_valid(json_object_get_string(v)))
		return false;
	*ret = strdup(json_object_get_string(v));
	return *ret != NULL;
}

bool failover_from_json(struct json_object *o, struct allocation *a)
{
	struct json_object *v;
	struct failover *f;
	enum iovk_macvtap_mode mode;
	int i;

	if (!json_object_is_type(o, json_type_object))
		return false;
	f = calloc(1, sizeof(*f));
	if (!f)
		return false;
	a->failover = f;
	if (!json_object_object_get_ex(o, "mode", &v) || !json_object_is_type(v, json_type_string) ||
	    (i = lookup(mode_names, ELEMENTSOF(mode_names), json_object_get_string(v))) <= 0)
		return false;
	f->mode = (enum failover_mode)i;
	if (!json_object_object_get_ex(o, "state", &v) || !json_object_is_type(v, json_type_string) ||
	    (i = lookup(state_names, ELEMENTSOF(state_names), json_object_get_string(v))) < 0)
		return false;
	f->state = (enum failover_state)i;
	if (!name_member(o, "bond", &f->bond) || !name_member(o, "standby", &f->standby) ||
	    !name_member(o, "netdev", &f->netdev) || !name_member(o, "macvtap", &f->macvtap))
		return false;
	if (json_object_object_get_ex(o, "macvtap_mode", &v)) {
		if (!json_object_is_type(v, json_type_string) ||
		    iovk_macvtap_mode_from_string(json_object_get_string(v), &mode) < 0)
			return false;
		f->macvtap_mode = (int)mode;
	}
	if (!json_object_object_get_ex(o, "bond_created", &v) || !json_object_is_type(v, json_type_boolean))
		return false;
	f->bond_created = json_object_get_boolean(v);
	/* what each mode needs to be taken down again */
	if (f->mode == FAILOVER_BOND && (!f->bond || !f->standby || !f->netdev))
		return false;
	if (f->mode == FAILOVER_MACVTAP && (!f->macvtap || !f->netdev))
		return false;
	return true;
}

/* ---- after a restart -------------------------------------------------------------------- */

/*
 * Puts the kernel where the state file says each group is (see the head
 * comment): a bond whose active slave is not the one the file's state
 * means, a macvtap that is gone. Logs, for each group, what it found and
 * whether it rolled back (the kernel had moved on, the file had not) or
 * finished (the file's step was not all in the kernel).
 */
void failover_recover(struct manager *m)
{
	for (size_t i = 0; i < m->n_allocs; i++) {
		struct allocation *a = m->allocs[i];
		struct failover *f = a->failover;
		_cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
		struct iovk_bond *b = NULL;
		const char *want, *active;

		if (!f || f->mode == FAILOVER_GUEST)
			continue;
		if (f->mode == FAILOVER_MACVTAP) {
			struct iovk_macvtap_info mi = IOVK_MACVTAP_INFO_INIT;

			if (iovk_macvtap_get(m->ctx, f->macvtap, &mi) >= 0)
				continue;
			free(f->macvtap);
			f->macvtap = NULL;
			if (setup_macvtap(m, a, &error) < 0)
				log_warning("failover %s (%s): macvtap gone, making it again failed: %s", a->owner, a->path,
					    error.message);
			else
				log_notice("failover %s (%s): macvtap %s was gone: finished (made again on %s)", a->owner,
					   a->path, f->macvtap, f->netdev);
			continue;
		}
		want = f->state == FAILOVER_ACTIVE ? f->netdev : f->standby;
		if (iovk_bond_read(m->ctx, f->bond, &b) < 0) {
			log_warning("failover %s (%s): bond %s: %s", a->owner, a->path, f->bond, iovk_ctx_get_error(m->ctx));
			continue;
		}
		active = iovk_bond_get_active_slave(b);
		if (active && strcmp(active, want) == 0)
			log_debug("failover %s (%s): bond %s has %s active, as the state file says (%s)", a->owner, a->path,
				  f->bond, want, failover_state_to_string(f->state));
		else if (failover_switch(m, a, want, "failover recovery", NULL, &error) < 0)
			log_warning("failover %s (%s): bond %s has %s active, the state file says %s (%s); switching back "
				    "failed: %s", a->owner, a->path, f->bond, active ?: "no slave", want,
				    failover_state_to_string(f->state), error.message);
		else
			log_notice("failover %s (%s): bond %s had %s active, the state file says %s (%s): an interrupted "
				   "step, rolled back (%s active again)", a->owner, a->path, f->bond, active ?: "no slave",
				   want, failover_state_to_string(f->state), want);
		iovk_bond_unref(b);
	}
}
