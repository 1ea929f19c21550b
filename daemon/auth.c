/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Who may change allocations: root, and members of the configured group.
 * Everyone may read (the D-Bus policy lets everyone call iovd).
 *
 * And an allocation belongs to the uid that made it: only that uid and root
 * may release it or open its device (check_owner()), as libvirt refuses a
 * device that another domain uses. Members of the group share the pools,
 * not each other's VFs. An owner name is bound to the uid that holds
 * allocations under it (manager.c, method_allocate()).
 */
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <string.h>

#include "iovd.h"

#define CREDS_CACHE_SIZE 128

/* A bus never reuses a unique name, and a connection's uid is fixed when
 * it connects: a decision holds for the connection's life. */
struct creds_cache_entry {
	char *sender;
	uid_t uid;
	bool allowed;
};

static bool uid_in_group(uid_t uid, gid_t gid)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	gid_t groups[256];
	int n = (int)ELEMENTSOF(groups);

	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) != 0 || !res)
		return false;
	if (pw.pw_gid == gid)
		return true;
	if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0)
		return false; /* more than 256 groups: deny rather than guess */
	for (int i = 0; i < n; i++)
		if (groups[i] == gid)
			return true;
	return false;
}

/*
 * Whom to trust. dbus-daemon (1.14) reports the uid it took from
 * SO_PEERCRED when the client connected (sd-bus shows it as the EUID) and
 * its pid, no groups. What the bus does not attest sd-bus may fill in from
 * /proc/<pid> of the sender ("augmented" credentials): read after the fact,
 * from a pid that may have been reused, and sd-bus's own documentation says
 * not to base security decisions on them. So: the uid comes from the bus,
 * never from /proc, and group membership is that of the uid in the user
 * database (what dbus-daemon's own <policy group=...> rules use), or the
 * groups the bus itself attests (dbus-broker sends them). On a direct
 * connection (the unit tests' socketpair) the uid is the socket's
 * SO_PEERCRED.
 */
static int sender_allowed(struct manager *m, sd_bus_message *msg, uid_t *ret_uid)
{
	_cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
	uint64_t augmented;
	const gid_t *gids;
	uid_t uid;
	int r, n;

	r = sd_bus_query_sender_creds(msg, SD_BUS_CREDS_UID | SD_BUS_CREDS_EUID | SD_BUS_CREDS_SUPPLEMENTARY_GIDS,
				      &creds);
	if (r < 0) {
		log_warning("Failed to get the credentials of %s: %s", strna(sd_bus_message_get_sender(msg)),
			    strerror(-r));
		return r;
	}
	augmented = sd_bus_creds_get_augmented_mask(creds);
	log_debug("Credentials of %s: mask 0x%" PRIx64 ", augmented from /proc 0x%" PRIx64,
		  strna(sd_bus_message_get_sender(msg)), sd_bus_creds_get_mask(creds), augmented);
	if (!(augmented & SD_BUS_CREDS_EUID) && sd_bus_creds_get_euid(creds, &uid) >= 0)
		;
	else if (!(augmented & SD_BUS_CREDS_UID) && sd_bus_creds_get_uid(creds, &uid) >= 0)
		;
	else
		return -ENODATA;
	*ret_uid = uid;
	if (uid == 0)
		return 1;
	if (!m->config.group || m->config.group_missing)
		return 0;
	if (!(augmented & SD_BUS_CREDS_SUPPLEMENTARY_GIDS) &&
	    (n = sd_bus_creds_get_supplementary_gids(creds, &gids)) >= 0)
		for (int i = 0; i < n; i++)
			if (gids[i] == m->config.gid)
				return 1;
	return uid_in_group(uid, m->config.gid);
}

/* The cached decision for the sender of msg, or a fresh one: 1 allowed, 0 not, < 0 unknown uid. */
static int sender_lookup(struct manager *m, sd_bus_message *msg, uid_t *ret_uid)
{
	const char *sender = sd_bus_message_get_sender(msg);
	struct creds_cache_entry *e = NULL;
	uid_t uid = (uid_t)-1;
	int r;

	if (!m->creds_cache)
		m->creds_cache = calloc(CREDS_CACHE_SIZE, sizeof(*m->creds_cache));
	for (size_t i = 0; sender && i < m->n_creds_cache; i++)
		if (strcmp(m->creds_cache[i].sender, sender) == 0)
			e = &m->creds_cache[i];
	if (e) {
		*ret_uid = e->uid;
		return e->allowed;
	}
	r = sender_allowed(m, msg, &uid);
	if (r >= 0 && sender && m->creds_cache) {
		char *s = strdup(sender);

		if (s) {
			if (m->n_creds_cache < CREDS_CACHE_SIZE)
				e = &m->creds_cache[m->n_creds_cache++];
			else {
				e = &m->creds_cache[m->creds_cache_next];
				m->creds_cache_next = (m->creds_cache_next + 1) % CREDS_CACHE_SIZE;
				free(e->sender);
			}
			*e = (struct creds_cache_entry){ .sender = s, .uid = uid, .allowed = r > 0 };
		}
	}
	*ret_uid = uid;
	return r;
}

static int refuse_unknown(sd_bus_message *msg, const char *what, sd_bus_error *error)
{
	return sd_bus_error_setf(error, IOVD_ERR_ACCESS_DENIED,
				 "%s: the credentials of %s cannot be established, so it is refused", what,
				 strna(sd_bus_message_get_sender(msg)));
}

int check_access(struct manager *m, sd_bus_message *msg, const char *what, uid_t *ret_uid, sd_bus_error *error)
{
	uid_t uid = (uid_t)-1;
	int r;

	r = sender_lookup(m, msg, &uid);
	if (r < 0)
		return refuse_unknown(msg, what, error);
	if (r > 0) {
		if (ret_uid)
			*ret_uid = uid;
		return 0;
	}
	if (m->config.group)
		return sd_bus_error_setf(error, IOVD_ERR_ACCESS_DENIED,
					 "%s: uid %u may not do this: only root and members of group %s may%s", what,
					 (unsigned)uid, m->config.group,
					 m->config.group_missing ? " (a group that does not exist)" : "");
	return sd_bus_error_setf(error, IOVD_ERR_ACCESS_DENIED, "%s: uid %u may not do this: only root may", what,
				 (unsigned)uid);
}

int check_access_owner(struct manager *m, sd_bus_message *msg, const char *what, const char **ret_owner, uid_t *ret_uid,
		       sd_bus_error *error)
{
	const char *owner;
	int r;

	r = check_access(m, msg, what, ret_uid, error);
	if (r < 0)
		return r;
	r = sd_bus_message_read(msg, "s", &owner);
	if (r < 0)
		return r;
	r = check_name("owner", owner, error);
	if (r < 0)
		return r;
	*ret_owner = owner;
	return 0;
}

int sender_uid(struct manager *m, sd_bus_message *msg, const char *what, uid_t *ret_uid, sd_bus_error *error)
{
	uid_t uid = (uid_t)-1;

	if (sender_lookup(m, msg, &uid) < 0)
		return refuse_unknown(msg, what, error);
	*ret_uid = uid;
	return 0;
}

void auth_free(struct manager *m)
{
	for (size_t i = 0; i < m->n_creds_cache; i++)
		free(m->creds_cache[i].sender);
	free(m->creds_cache);
	m->creds_cache = NULL;
	m->n_creds_cache = 0;
}

int check_owner(const struct allocation *a, uid_t uid, const char *what, const char *verb, sd_bus_error *error)
{
	if (uid == 0 || (a->uid != (uid_t)-1 && uid == a->uid))
		return 0;
	if (a->uid == (uid_t)-1)
		return sd_bus_error_setf(error, IOVD_ERR_ACCESS_DENIED,
					 "%s: uid %u may not %s %s (VF %s, owner %s): only root may (the allocation "
					 "does not record which uid made it)", what, (unsigned)uid, verb, a->path,
					 a->address, a->owner);
	return sd_bus_error_setf(error, IOVD_ERR_ACCESS_DENIED,
				 "%s: uid %u may not %s %s (VF %s, owner %s): only uid %u, which allocated it, and root "
				 "may", what, (unsigned)uid, verb, a->path, a->address, a->owner, (unsigned)a->uid);
}
