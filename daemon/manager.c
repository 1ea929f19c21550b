/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The D-Bus API of iovd (iovd(8)): org.iovkit.iovd1.Manager at
 * /org/iovkit/iovd1, one org.iovkit.iovd1.Allocation object per allocation.
 *
 * Allocate, Release and ReleaseOwner change the table in memory and hand
 * their reply to commit.c, which sends it once the change is on disk.
 *
 * A VF taken by an uncommitted Allocate is already taken for every later
 * request; a VF given back by an uncommitted Release is free only once the
 * release is on disk. So the table on disk never shows a VF twice, whatever
 * moment a crash picks.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>

#include "common/bus-util.h"
#include "common/time-util.h"
#include "iovd.h"

/* ---- dictionaries ---------------------------------------------------------------- */

/* Opens the entry key of an a{sv} and its variant of signature sig; close_entry() closes both. */
static int open_entry(sd_bus_message *reply, const char *key, const char *sig)
{
	int r = sd_bus_message_open_container(reply, 'e', "sv");

	if (r >= 0)
		r = sd_bus_message_append(reply, "s", key);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'v', sig);
	return r;
}

static int close_entry(sd_bus_message *reply)
{
	int r = sd_bus_message_close_container(reply);

	return r < 0 ? r : sd_bus_message_close_container(reply);
}

/* ---- Allocate ------------------------------------------------------------------- */

/* Index in p->vfs of the VF at address, -1 when the pool has none. */
static ssize_t pool_find_vf(struct pool *p, const char *address)
{
	struct iovk_pci_addr want, have;

	if (iovk_pci_addr_parse(address, &want) < 0)
		return -1;
	for (size_t i = 0; i < p->n_vfs; i++)
		if (iovk_pci_addr_parse(p->vfs[i], &have) == 0 && iovk_pci_addr_compare(&want, &have) == 0)
			return (ssize_t)i;
	return -1;
}

/* The first free VF of the pool, on the preferred NUMA node when there is one; -1 when none is free. */
static ssize_t pick_vf(struct manager *m, struct pool *p, int numa)
{
	ssize_t any = -1;

	for (size_t i = 0; i < p->n_vfs; i++) {
		if (manager_find_by_address(m, p->vfs[i]))
			continue;
		if (numa < 0 || p->vf_numa[i] == numa)
			return (ssize_t)i;
		if (any < 0 && !p->numa_strict)
			any = (ssize_t)i;
	}
	return any;
}

/*
 * What an Allocate answers: Allocate's (o allocation, s address,
 * i iommu_group, s device_node), which version 1's VF clients read and
 * which cannot grow without breaking them; AllocateEx's a{sv}, which names
 * every endpoint of a device allocation and can take more keys later (the
 * D-Bus way: a new method, never a changed signature, as systemd's
 * RegisterMachineEx beside RegisterMachine); PrepareIncoming's a{sv}, a
 * migration's destination, whose failover group starts on its standby.
 */
enum allocate_reply {
	REPLY_ALLOCATE,
	REPLY_ALLOCATE_EX,
	REPLY_INCOMING,
};

static const char *const allocate_methods[] = { "Allocate", "AllocateEx", "PrepareIncoming" };

/* AllocateEx's reply: the allocation, every endpoint the VMM must be given, the group and its node. */
static int allocate_ex_reply(const struct allocation *a, const char *node, sd_bus_message *reply)
{
	int r = sd_bus_message_open_container(reply, 'a', "{sv}");

	if (r >= 0)
		r = sd_bus_message_append(reply, "{sv}{sv}{sv}{sv}{sv}{sv}{sv}", "allocation", "o", a->path, "pool", "s",
					  a->pool, "owner", "s", a->owner, "pool_kind", "s",
					  pool_kind_to_string(a->devices ? POOL_KIND_DEVICE : POOL_KIND_VF), "address", "s",
					  a->address, "iommu_group", "i", a->iommu_group, "device_node", "s", node);
	if (r >= 0)
		r = open_entry(reply, "devices", "as");
	if (r >= 0)
		r = sd_bus_message_append_strv(reply, a->devices ?: (char *[]){ a->address, NULL });
	if (r >= 0)
		r = close_entry(reply);
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	return r;
}

static int allocate(sd_bus_message *msg, struct manager *m, enum allocate_reply kind, sd_bus_error *error)
{
	bool incoming = kind == REPLY_INCOMING;
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL, *signal = NULL;
	uint64_t start = now_usec(CLOCK_MONOTONIC);
	_cleanup_free_ char *node = NULL;
	struct allocation *a = NULL, **list;
	struct alloc_options o;
	struct iovk_vf_settings want;
	const char *pool_name, *owner;
	struct holdings held;
	char driver[64] = "";
	ssize_t vf = -1;
	struct pool *p;
	uid_t uid;
	int r;

	r = check_access(m, msg, allocate_methods[kind], &uid, error);
	if (r < 0)
		return r;
	r = sd_bus_message_read(msg, "ss", &pool_name, &owner);
	if (r < 0)
		return r;
	r = parse_options(msg, &o, error);
	if (r < 0)
		return r;
	if (incoming && !o.failover.mode)
		return sd_bus_error_setf(error, IOVD_ERR_INVALID, "PrepareIncoming needs option failover (bond, "
					 "macvtap or guest)");
	r = check_name("owner", owner, error);
	if (r < 0)
		return r;
	p = config_find_pool(&m->config, pool_name);
	if (!p)
		return sd_bus_error_setf(error, IOVD_ERR_NOT_FOUND, "no pool named '%.64s%s'", pool_name,
					 strlen(pool_name) > 64 ? "..." : "");
	if (m->next_id == UINT64_MAX) /* never in practice: state_load() refuses it, and 2^64 Allocates */
		return sd_bus_error_setf(error, IOVD_ERR_LIMIT, "pool %s, owner %s: iovd has no allocation id left",
					 p->name, owner);
	if (m->n_allocs >= m->config.max_total)
		return sd_bus_error_setf(error, IOVD_ERR_LIMIT,
					 "pool %s, owner %s: iovd holds %zu allocations, its limit (limits.total)",
					 p->name, owner, m->n_allocs);
	count_holdings(m, owner, uid, &held);
	/*
	 * An owner name belongs to the uid that holds allocations under it,
	 * until they are all released: another uid (root aside) that takes
	 * the name would count against its limit, and its ReleaseOwner, and
	 * the name in markers and signals would stand for two users. Not one
	 * namespace of owner names per uid: "vm-1" would then name two
	 * owners for everything that reads names (ListAllocations, signals,
	 * libiovkit's markers, root's ReleaseOwner).
	 */
	if (uid != 0 && held.other) {
		char whose[64] = "a uid not recorded";

		if (held.other->uid != (uid_t)-1)
			snprintf(whose, sizeof(whose), "uid %u", (unsigned)held.other->uid);
		return sd_bus_error_setf(error, IOVD_ERR_ACCESS_DENIED,
					 "Allocate: owner %s holds allocations of %s (%s, VF %s); an owner name belongs "
					 "to the uid that holds allocations under it, so uid %u may not use it: choose "
					 "another owner name", owner, whose, held.other->path, held.other->address,
					 (unsigned)uid);
	}
	if (held.owner >= m->config.max_per_owner)
		return sd_bus_error_setf(error, IOVD_ERR_LIMIT,
					 "pool %s: owner %s holds %u allocations, the limit per owner (limits.per_owner)",
					 p->name, owner, m->config.max_per_owner);
	/* Root is not counted: it may rewrite the configuration anyway, and
	 * the system libvirtd serving every tenant runs as root. */
	if (uid != 0 && held.user >= m->config.max_per_user)
		return sd_bus_error_setf(error, IOVD_ERR_LIMIT,
					 "pool %s, owner %s: uid %u holds %u allocations, the limit per user "
					 "(limits.per_user)", p->name, owner, (unsigned)uid, m->config.max_per_user);
	if (p->kind == POOL_KIND_DEVICE) {
		/* a failover group builds on a VF's netdev and its PF's settings */
		if (o.failover.mode)
			return sd_bus_error_setf(error, IOVD_ERR_INVALID,
						 "pool %s hands out whole devices: option failover needs a pool of VFs",
						 p->name);
		r = devpool_allocate(m, p, owner, uid, &o, &a, error);
		if (r < 0)
			return r;
		goto publish;
	}

	/* The inventory may be old: a VF that vanished means it is, so read
	 * sysfs again; when nothing is free, perhaps VFs were added, but scan
	 * at most once a second, so a client that hammers an exhausted pool
	 * cannot keep iovd reading sysfs. Only the VF's driver link is read
	 * here (iovk_device_read_driver(), a fourteenth of iovk_device_new()'s
	 * cost): the pool's scan knows its PF and NUMA node. */
	for (int attempt = 0;; attempt++) {
		bool vanished = false;

		if (o.address) {
			vf = pool_find_vf(p, o.address);
			if (vf >= 0 && manager_find_by_address(m, p->vfs[vf]))
				return sd_bus_error_setf(error, IOVD_ERR_IN_USE, "VF %s of pool %s is allocated to %s",
							 p->vfs[vf], p->name, manager_find_by_address(m, p->vfs[vf])->owner);
		} else {
			vf = pick_vf(m, p, o.numa);
		}
		if (vf >= 0) {
			r = iovk_device_read_driver(m->ctx, p->vfs[vf], driver, sizeof(driver));
			if (r >= 0)
				break;
			if (r != -ENODEV)
				return error_set_errnof(error, NULL, r, "pool %s: reading VF %s: %s", p->name,
							p->vfs[vf], iovk_ctx_get_error(m->ctx));
			vanished = true;
			vf = -1;
		}
		if (attempt > 0 || (!vanished && now_usec(CLOCK_REALTIME) - p->scanned_usec < 1000000))
			break;
		r = pool_scan(m->ctx, p);
		if (r < 0)
			return error_set_errnof(error, NULL, r, "pool %s: reading its VFs: %s", p->name,
						iovk_ctx_get_error(m->ctx));
		p->scanned_usec = now_usec(CLOCK_REALTIME);
	}
	if (vf < 0) {
		if (o.address)
			return sd_bus_error_setf(error, IOVD_ERR_NOT_FOUND, "pool %s has no VF %s", p->name, o.address);
		if (p->numa_strict && o.numa >= 0)
			return sd_bus_error_setf(error, IOVD_ERR_POOL_EXHAUSTED,
						 "pool %s has no free VF on NUMA node %d for %s (its numa is strict)", p->name,
						 o.numa, owner);
		return sd_bus_error_setf(error, IOVD_ERR_POOL_EXHAUSTED, "pool %s has no free VF for %s (%zu VFs, all allocated)",
					 p->name, owner, p->n_vfs);
	}
	r = refuse_vf_in_use(m, p, p->vfs[vf], driver, o.driver >= 0 ? (enum pool_driver)o.driver : p->driver, error);
	if (r < 0)
		return r;

	a = allocation_new(m, m->next_id);
	if (!a)
		return -ENOMEM;
	a->pool = strdup(p->name);
	a->owner = strdup(owner);
	a->address = strdup(p->vfs[vf]);
	if (!a->pool || !a->owner || !a->address) {
		allocation_free(a);
		return -ENOMEM;
	}
	a->uid = uid;
	/* -1: no group (the IOMMU is off) or unreadable; the reply says so */
	a->iommu_group = iovk_device_read_iommu_group(m->ctx, a->address);
	if (a->iommu_group < 0)
		a->iommu_group = -1;
	a->numa_node = p->vf_numa[vf];
	/* Marked before anything changes: libiovkit refuses to remove the VF
	 * from now on, also while the allocation waits for its commit. */
	marker_set(m, a, true);
	/* Settings before the driver: a guest never gets the VF unconfigured.
	 * The caller's options override the pool's defaults field by field. */
	want = p->vf_defaults;
	vf_settings_merge(&want, &o.vf);
	if (want.fields) {
		r = vf_settings_apply(m, a, p->pfs[p->vf_pf[vf]], &want, error);
		if (r < 0) {
			if (p->vf_defaults.fields)
				error_append(error, "; the settings include the vf_defaults of pool %s", p->name);
			goto fail;
		}
	}
	r = apply_driver(m, a, o.driver >= 0 ? (enum pool_driver)o.driver : p->driver, driver, error);
	if (r < 0) {
		char err[1024];

		if (a->vf_pf && vf_settings_restore(m, a, err, sizeof(err)) < 0)
			error_append(error, "; putting back its VF settings failed too: %s", err);
		else if (a->vf_pf)
			error_append(error, "; its VF settings are back as they were");
		goto fail;
	}
	a->driver = strdup(driver);
	if (!a->driver) {
		r = -ENOMEM;
		goto fail_undo;
	}
	/* the failover group on the VF as its driver left it; Release takes it down first */
	r = failover_setup(m, a, &o.failover, incoming, error);
	if (r < 0)
		goto fail_undo;
publish:
	a->created_usec = now_usec(CLOCK_REALTIME);
	node = allocation_device_node(m, a);
	if (!a->driver || !node) {
		r = -ENOMEM;
		goto fail_undo;
	}
	r = sd_bus_message_new_method_return(msg, &reply);
	if (r >= 0 && incoming)
		r = migration_incoming_reply(m, a, reply, now_usec(CLOCK_MONOTONIC) - start, &signal);
	else if (r >= 0 && kind == REPLY_ALLOCATE_EX)
		r = allocate_ex_reply(a, node, reply);
	else if (r >= 0)
		r = sd_bus_message_append(reply, "osis", a->path, a->address, a->iommu_group, node);
	if (r < 0)
		goto fail_undo;
	list = malloc(sizeof(*list));
	if (!list) {
		r = -ENOMEM;
		goto fail_undo;
	}
	list[0] = a;
	r = manager_add_allocation(m, a);
	if (r < 0) {
		free(list);
		goto fail_undo;
	}
	m->next_id++;
	return commit_queue_signal(m, COMMIT_ALLOCATE, msg, TAKE_PTR(reply), TAKE_PTR(signal), list, 1);

fail_undo:
	(void)allocation_put_back(m, a);
fail:
	marker_set(m, a, false);
	allocation_free(a);
	return r;
}

static int method_allocate(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	return allocate(msg, userdata, REPLY_ALLOCATE, error);
}

static int method_allocate_ex(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	return allocate(msg, userdata, REPLY_ALLOCATE_EX, error);
}

static int method_prepare_incoming(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	return allocate(msg, userdata, REPLY_INCOMING, error);
}

/* ---- Release, ReleaseOwner ---------------------------------------------------------- */

static int method_release(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	struct allocation *a, **list;
	const char *path;
	uid_t uid;
	int r;

	r = check_access(m, msg, "Release", &uid, error);
	if (r < 0)
		return r;
	r = sd_bus_message_read(msg, "o", &path);
	if (r < 0)
		return r;
	a = manager_find_by_path(m, path);
	if (!a || a->releasing)
		return sd_bus_error_setf(error, IOVD_ERR_NOT_FOUND, "no allocation %.128s%s", path,
					 a ? " (it is being released)" : "");
	r = check_owner(a, uid, "Release", "release", error);
	if (r < 0)
		return r;
	r = check_group_closed(m, a, error);
	if (r < 0)
		return r;
	r = sd_bus_message_new_method_return(msg, &reply);
	if (r < 0)
		return r;
	list = malloc(sizeof(*list));
	if (!list)
		return -ENOMEM;
	list[0] = a;
	/* Back as before, then the commit: a crash in between leaves an
	 * allocation whose Release was not answered, and a second Release
	 * finds the VF back already. A group that does not go back keeps
	 * its allocation: nothing else could put it back (the record names
	 * iovd as its holder). */
	if (a->devices) {
		r = devpool_release(m, a, error);
		if (r < 0) {
			free(list);
			return r;
		}
	} else
		(void)allocation_put_back(m, a);
	return commit_queue(m, COMMIT_RELEASE, msg, TAKE_PTR(reply), list, 1);
}

static int method_release_owner(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	struct allocation **list;
	const char *owner;
	uint32_t n = 0;
	uid_t uid;
	int r;

	r = check_access_owner(m, msg, "ReleaseOwner", &owner, &uid, error);
	if (r < 0)
		return r;
	list = calloc(m->n_allocs ?: 1, sizeof(*list));
	if (!list)
		return -ENOMEM;
	/* the caller's own only, unless root: check_owner() for each */
	for (size_t i = 0; i < m->n_allocs; i++)
		if (owner_may_act(m->allocs[i], owner, uid))
			list[n++] = m->allocs[i];
	if (n == 0) {
		free(list);
		return sd_bus_reply_method_return(msg, "u", 0);
	}
	/* all or nothing: one VF in use refuses the lot, before any moves */
	for (uint32_t i = 0; i < n; i++) {
		r = check_group_closed(m, list[i], error);
		if (r < 0) {
			free(list);
			return r;
		}
	}
	/* A device allocation whose group does not go back stays (logged,
	 * and still listed): the reply counts those released. */
	for (uint32_t i = 0; i < n;) {
		_cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;

		if (!list[i]->devices) {
			(void)allocation_put_back(m, list[i]);
			i++;
		} else if (devpool_release(m, list[i], &e) >= 0)
			i++;
		else {
			log_warning("ReleaseOwner %s: %s", owner, e.message);
			list[i] = list[--n];
		}
	}
	if (n == 0) {
		free(list);
		return sd_bus_reply_method_return(msg, "u", 0);
	}
	r = sd_bus_message_new_method_return(msg, &reply);
	if (r >= 0)
		r = sd_bus_message_append(reply, "u", n);
	if (r < 0) {
		free(list);
		return r;
	}
	return commit_queue(m, COMMIT_RELEASE, msg, TAKE_PTR(reply), list, n);
}

/* ---- OpenDevice ------------------------------------------------------------------------ */

/*
 * Hands the caller the VF's VFIO group, /dev/vfio/N, opened by iovd, so an
 * unprivileged VMM needs no access to /dev/vfio. Only to the uid that
 * allocated the VF, and root: the group is the device.
 *
 * A group holds every device behind the same IOMMU isolation: whoever has
 * its descriptor can open each of them (VFIO_GROUP_GET_DEVICE_FD). So the
 * group is handed out only when each of its endpoints is this VF or another
 * VF allocated to the same uid.
 */
/* The allocation OpenDevice or OpenDeviceCdevs (what) names, when the caller may open it; *ret_uid the caller's. */
static int open_allowed(struct manager *m, sd_bus_message *msg, const char *what, struct allocation **ret,
			uid_t *ret_uid, sd_bus_error *error)
{
	struct allocation *a;
	const char *path;
	int r;

	r = sd_bus_message_read(msg, "o", &path);
	if (r < 0)
		return r;
	a = manager_find_by_path(m, path);
	if (!a || a->releasing)
		return sd_bus_error_setf(error, IOVD_ERR_NOT_FOUND, "no allocation %.128s%s", path,
					 a ? " (it is being released)" : "");
	r = sender_uid(m, msg, what, ret_uid, error);
	if (r < 0)
		return r;
	r = check_owner(a, *ret_uid, what, "open", error);
	if (r < 0)
		return r;
	if (!sd_bus_message_get_bus(msg) || !sd_bus_can_send(sd_bus_message_get_bus(msg), 'h'))
		return sd_bus_error_setf(error, IOVD_ERR_NOT_SUPPORTED,
					 "%s: the connection does not pass file descriptors", what);
	*ret = a;
	return 0;
}

static int method_open_device(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;
	struct iovk_iommu_group *g = NULL;
	_cleanup_free_ char *node = NULL;
	_cleanup_close_ int fd = -1;
	char now[64];
	uid_t uid;
	struct allocation *a;
	int r;

	r = open_allowed(m, msg, "OpenDevice", &a, &uid, error);
	if (r < 0)
		return r;
	node = allocation_device_node(m, a);
	if (!node)
		return -ENOMEM;
	if (!node[0])
		return sd_bus_error_setf(error, IOVD_ERR_NOT_SUPPORTED,
					 "%s (VF %s, owner %s) has no VFIO device: the VF is on %s%s; allocate it with "
					 "driver vfio-pci", a->path, a->address, a->owner, a->driver[0] ? a->driver : "no driver",
					 a->iommu_group < 0 ? " and has no IOMMU group" : "");
	r = iovk_device_read_driver(m->ctx, a->address, now, sizeof(now));
	/* unreadable: the errno says why; on another driver: no errno, Failed */
	if (r < 0 || strcmp(now, a->driver) != 0)
		return error_set_errnof(error, NULL, r, "%s: VF %s is %s%s, not on %s where it was allocated",
					a->path, a->address, r < 0 ? "unreadable: " : "on ",
					r < 0 ? iovk_ctx_get_error(m->ctx) : now[0] ? now : "no driver", a->driver);

	r = iovk_iommu_group_new(m->ctx, a->iommu_group, &g);
	if (r < 0)
		return error_set_errnof(error, NULL, r, "%s: reading IOMMU group %d of VF %s: %s", a->path,
					a->iommu_group, a->address, iovk_ctx_get_error(m->ctx));
	for (struct iovk_device *const *d = iovk_iommu_group_get_devices(g); *d; d++) {
		const char *other = iovk_device_get_address(*d);
		struct allocation *b;

		if (iovk_device_is_bridge(*d) || strcmp(other, a->address) == 0)
			continue;
		b = manager_find_by_address(m, other);
		if (!b || !b->committed || b->uid != a->uid) {
			r = sd_bus_error_setf(error, IOVD_ERR_NOT_SUPPORTED,
					      "%s: IOMMU group %d of VF %s also holds %s, %s: its descriptor would give "
					      "access to that device too", a->path, a->iommu_group, a->address, other,
					      b ? "allocated to another uid" : "which is not allocated to this uid");
			iovk_iommu_group_unref(g);
			return r;
		}
	}
	iovk_iommu_group_unref(g);

	fd = open(node, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		r = negative_errno();
		if (r == -EBUSY)
			return sd_bus_error_setf(error, IOVD_ERR_IN_USE,
						 "%s: %s is open already (a VFIO group opens once: a VM, or the holder of "
						 "an earlier OpenDevice descriptor, has it)", a->path, node);
		return error_set_errnof(error, NULL, r, "%s: Failed to open %s: %s", a->path, node, strerror(-r));
	}
	log_info("Handing VFIO group %d of VF %s (%s, owner %s) to uid %u", a->iommu_group, a->address, a->path,
		 a->owner, (unsigned)uid);
	/* sd-bus sends a duplicate: ours closes on return */
	return sd_bus_reply_method_return(msg, "h", fd);
}

/*
 * The iommufd way in: each endpoint's VFIO cdev (/dev/vfio/devices/vfioN),
 * opened by iovd, as (address, descriptor) pairs, to the same callers as
 * OpenDevice. A VMM binds each to its iommufd (VFIO_DEVICE_BIND_IOMMUFD);
 * the endpoints are all of the allocation's (a device pool's whole group),
 * so nothing of another owner comes with them.
 */
static int method_open_device_cdevs(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	struct allocation *a;
	char **devices;
	uid_t uid;
	int r;

	r = open_allowed(m, msg, "OpenDeviceCdevs", &a, &uid, error);
	if (r < 0)
		return r;
	devices = a->devices ?: (char *[]){ a->address, NULL };
	r = sd_bus_message_new_method_return(msg, &reply);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "(sh)");
	for (char **d = devices; r >= 0 && *d; d++) {
		_cleanup_free_ char *node = NULL;
		_cleanup_close_ int fd = -1;

		r = iovk_device_vfio_cdev_node(m->ctx, *d, &node);
		if (r < 0)
			return error_set_errnof(error, r == -ENOENT ? IOVD_ERR_NOT_SUPPORTED : NULL, r,
						"%s: %s", a->path, iovk_ctx_get_error(m->ctx));
		fd = open(node, O_RDWR | O_CLOEXEC);
		if (fd < 0) {
			r = negative_errno();
			return error_set_errnof(error, r == -EBUSY ? IOVD_ERR_IN_USE : NULL, r,
						"%s: Failed to open %s (%s): %s", a->path, node, *d, strerror(-r));
		}
		/* sd-bus keeps a duplicate: ours closes here */
		r = sd_bus_message_append(reply, "(sh)", *d, fd);
	}
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	if (r < 0)
		return r;
	log_info("Handing the VFIO cdevs of %s (%s, owner %s) to uid %u", a->address, a->path, a->owner,
		 (unsigned)uid);
	return sd_bus_send(NULL, reply, NULL);
}

/* ---- lists ----------------------------------------------------------------------------- */

/* VF settings as an a{sv} of Allocate's option names and types. */
static int append_vf_settings(sd_bus_message *reply, const struct iovk_vf_settings *c)
{
	char mac[IOVK_VF_MAC_STRING_MAX];
	int r;

	r = sd_bus_message_open_container(reply, 'a', "{sv}");
	if (r >= 0 && (c->fields & IOVK_VF_MAC))
		r = sd_bus_message_append(reply, "{sv}", "mac", "s", iovk_vf_format_mac(c->mac, mac));
	if (r >= 0 && (c->fields & IOVK_VF_VLAN))
		r = sd_bus_message_append(reply, "{sv}{sv}", "vlan", "q", c->vlan, "qos", "y", c->qos);
	if (r >= 0 && (c->fields & IOVK_VF_SPOOFCHK))
		r = sd_bus_message_append(reply, "{sv}", "spoofchk", "b", (int)c->spoofchk);
	if (r >= 0 && (c->fields & IOVK_VF_TRUST))
		r = sd_bus_message_append(reply, "{sv}", "trust", "b", (int)c->trust);
	if (r >= 0)
		r = sd_bus_message_close_container(reply);
	return r;
}

/*
 * Opens a pool's (sa{sv}) in ListPools and fills what every kind has: Kind,
 * Numa, Driver, Allocated and Free. close_entry() closes the dictionary and
 * the struct.
 */
static int open_pool_entry(sd_bus_message *reply, const struct pool *p, const char *driver, size_t allocated,
			   size_t n_free)
{
	int r = sd_bus_message_open_container(reply, 'r', "sa{sv}");

	if (r >= 0)
		r = sd_bus_message_append(reply, "s", p->name);
	if (r >= 0)
		r = sd_bus_message_open_container(reply, 'a', "{sv}");
	if (r >= 0)
		r = sd_bus_message_append(reply, "{sv}{sv}{sv}{sv}{sv}", "Kind", "s", pool_kind_to_string(p->kind), "Numa",
					  "s", p->numa_strict ? "strict" : "preferred", "Driver", "s", driver, "Allocated",
					  "u", (uint32_t)allocated, "Free", "u", (uint32_t)n_free);
	return r;
}

/* A device pool in ListPools: its kind, driver, members and which of them are free. */
static int append_device_pool(struct manager *m, sd_bus_message *reply, const struct pool *p)
{
	_cleanup_free_ char **free_devs = calloc(p->n_devices + 1, sizeof(char *));
	size_t n_free = 0;
	int r;

	if (!free_devs)
		return -ENOMEM;
	for (size_t j = 0; j < p->n_devices; j++)
		if (!manager_find_by_address(m, p->devices[j]))
			free_devs[n_free++] = p->devices[j];
	r = open_pool_entry(reply, p, p->device_driver, p->n_devices - n_free, n_free);
	if (r >= 0)
		r = open_entry(reply, "Devices", "as");
	if (r >= 0)
		r = sd_bus_message_append_strv(reply, p->devices ?: (char *[]){ NULL });
	if (r >= 0)
		r = close_entry(reply);
	if (r >= 0)
		r = open_entry(reply, "FreeDevices", "as");
	if (r >= 0)
		r = sd_bus_message_append_strv(reply, free_devs);
	if (r >= 0)
		r = close_entry(reply);
	if (r >= 0)
		r = close_entry(reply); /* the dictionary and the pool's struct */
	return r;
}

static int method_list_pools(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	int r;

	r = sd_bus_message_new_method_return(msg, &reply);
	if (r < 0)
		return r;
	r = sd_bus_message_open_container(reply, 'a', "(sa{sv})");
	if (r < 0)
		return r;
	for (size_t i = 0; i < m->config.n_pools; i++) {
		struct pool *p = &m->config.pools[i];
		uint32_t allocated = 0;

		if (p->kind == POOL_KIND_DEVICE) {
			r = append_device_pool(m, reply, p);
			if (r < 0)
				return r;
			continue;
		}
		for (size_t j = 0; j < p->n_vfs; j++)
			allocated += manager_find_by_address(m, p->vfs[j]) != NULL;
		r = open_pool_entry(reply, p, pool_driver_to_string(p->driver), allocated, p->n_vfs - allocated);
		if (r >= 0)
			r = sd_bus_message_append(reply, "{sv}", "VFs", "u", (uint32_t)p->n_vfs);
		if (r >= 0)
			r = open_entry(reply, "PFs", "as");
		if (r >= 0)
			r = sd_bus_message_append_strv(reply, p->pfs ?: (char *[]){ NULL });
		if (r >= 0)
			r = close_entry(reply);
		if (r >= 0)
			r = open_entry(reply, "VfDefaults", "a{sv}");
		if (r >= 0)
			r = append_vf_settings(reply, &p->vf_defaults);
		if (r >= 0)
			r = close_entry(reply);
		if (r >= 0)
			r = close_entry(reply); /* the dictionary and the pool's struct */
		if (r < 0)
			return r;
	}
	r = sd_bus_message_close_container(reply);
	if (r < 0)
		return r;
	return sd_bus_send(NULL, reply, NULL);
}

static int method_list_allocations(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	int r;

	r = sd_bus_message_new_method_return(msg, &reply);
	if (r < 0)
		return r;
	r = sd_bus_message_open_container(reply, 'a', "(osssisst)");
	if (r < 0)
		return r;
	for (size_t i = 0; i < m->n_allocs; i++) {
		struct allocation *a = m->allocs[i];
		_cleanup_free_ char *node = NULL;

		if (!a->committed)
			continue;
		node = allocation_device_node(m, a);
		if (!node)
			return -ENOMEM;
		r = sd_bus_message_append(reply, "(osssisst)", a->path, a->pool, a->owner, a->address, a->iommu_group,
					  node, a->driver, a->created_usec);
		if (r < 0)
			return r;
	}
	r = sd_bus_message_close_container(reply);
	if (r < 0)
		return r;
	return sd_bus_send(NULL, reply, NULL);
}

/* ---- properties and vtables -------------------------------------------------------- */

static int property_drift(sd_bus *bus, const char *path, const char *interface, const char *property,
			  sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;

	return sd_bus_message_append_strv(reply, m->drift ?: (char *[]){ NULL });
}

static int property_device_node(sd_bus *bus, const char *path, const char *interface, const char *property,
				sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct allocation *a = userdata;
	_cleanup_free_ char *node = allocation_device_node(a->manager, a);

	if (!node)
		return -ENOMEM;
	return sd_bus_message_append(reply, "s", node);
}

static int property_vf_settings(sd_bus *bus, const char *path, const char *interface, const char *property,
				sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct allocation *a = userdata;

	return append_vf_settings(reply, a->vf_pf ? &a->vf_applied : &(struct iovk_vf_settings){});
}

static int property_kind(sd_bus *bus, const char *path, const char *interface, const char *property,
			 sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct allocation *a = userdata;

	return sd_bus_message_append(reply, "s", pool_kind_to_string(a->devices ? POOL_KIND_DEVICE : POOL_KIND_VF));
}

/* Every endpoint the VMM must be given: the group of a device allocation, the VF alone otherwise. */
static int property_devices(sd_bus *bus, const char *path, const char *interface, const char *property,
			    sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct allocation *a = userdata;

	return sd_bus_message_append_strv(reply, a->devices ?: (char *[]){ a->address, NULL });
}

static const sd_bus_vtable manager_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_PROPERTY("Version", "s", NULL, offsetof(struct manager, version), SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Drift", "as", property_drift, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_METHOD_WITH_NAMES("ListPools", "", , "a(sa{sv})", SD_BUS_PARAM(pools), method_list_pools,
				 SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("ListAllocations", "", , "a(osssisst)", SD_BUS_PARAM(allocations),
				 method_list_allocations, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("Allocate", "ssa{sv}", SD_BUS_PARAM(pool) SD_BUS_PARAM(owner) SD_BUS_PARAM(options),
				 "osis", SD_BUS_PARAM(allocation) SD_BUS_PARAM(address) SD_BUS_PARAM(iommu_group)
					 SD_BUS_PARAM(device_node),
				 method_allocate, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("AllocateEx", "ssa{sv}", SD_BUS_PARAM(pool) SD_BUS_PARAM(owner) SD_BUS_PARAM(options),
				 "a{sv}", SD_BUS_PARAM(result), method_allocate_ex, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("Release", "o", SD_BUS_PARAM(allocation), "", , method_release,
				 SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("ReleaseOwner", "s", SD_BUS_PARAM(owner), "u", SD_BUS_PARAM(count),
				 method_release_owner, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("OpenDevice", "o", SD_BUS_PARAM(allocation), "h", SD_BUS_PARAM(fd),
				 method_open_device, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("OpenDeviceCdevs", "o", SD_BUS_PARAM(allocation), "a(sh)", SD_BUS_PARAM(cdevs),
				 method_open_device_cdevs, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("PrepareMigration", "s", SD_BUS_PARAM(owner), "a{sv}", SD_BUS_PARAM(result),
				 method_prepare_migration, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("CompleteMigration", "s", SD_BUS_PARAM(owner), "a{sv}", SD_BUS_PARAM(result),
				 method_complete_migration, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("AbortMigration", "s", SD_BUS_PARAM(owner), "a{sv}", SD_BUS_PARAM(result),
				 method_abort_migration, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("PrepareIncoming", "ssa{sv}", SD_BUS_PARAM(pool) SD_BUS_PARAM(owner) SD_BUS_PARAM(options),
				 "a{sv}", SD_BUS_PARAM(result), method_prepare_incoming, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_SIGNAL_WITH_NAMES("MigrationStep", "ssst",
				 SD_BUS_PARAM(owner) SD_BUS_PARAM(step) SD_BUS_PARAM(state) SD_BUS_PARAM(usec), 0),
	SD_BUS_SIGNAL_WITH_NAMES("AllocationAdded", "osss",
				 SD_BUS_PARAM(allocation) SD_BUS_PARAM(pool) SD_BUS_PARAM(owner) SD_BUS_PARAM(address), 0),
	SD_BUS_SIGNAL_WITH_NAMES("AllocationRemoved", "osss",
				 SD_BUS_PARAM(allocation) SD_BUS_PARAM(pool) SD_BUS_PARAM(owner) SD_BUS_PARAM(address), 0),
	SD_BUS_VTABLE_END,
};

static const sd_bus_vtable allocation_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_PROPERTY("Pool", "s", NULL, offsetof(struct allocation, pool), SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Owner", "s", NULL, offsetof(struct allocation, owner), SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Uid", "u", NULL, offsetof(struct allocation, uid), SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Address", "s", NULL, offsetof(struct allocation, address), SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Kind", "s", property_kind, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Devices", "as", property_devices, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("IommuGroup", "i", NULL, offsetof(struct allocation, iommu_group), SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("NumaNode", "i", NULL, offsetof(struct allocation, numa_node), SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Driver", "s", NULL, offsetof(struct allocation, driver), SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("DeviceNode", "s", property_device_node, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Created", "t", NULL, offsetof(struct allocation, created_usec), SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("VfSettings", "a{sv}", property_vf_settings, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Drift", "s", NULL, offsetof(struct allocation, drift), SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("FailoverState", "a{sv}", property_failover_state, 0, 0),
	SD_BUS_VTABLE_END,
};

static int allocation_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
			   sd_bus_error *error)
{
	struct allocation *a = manager_find_by_path(userdata, path);

	if (!a)
		return 0;
	*found = a;
	return 1;
}

static int allocation_enumerate(sd_bus *bus, const char *prefix, void *userdata, char ***ret_nodes,
				sd_bus_error *error)
{
	struct manager *m = userdata;
	char **v = calloc(m->n_allocs + 1, sizeof(char *));
	size_t n = 0;

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < m->n_allocs; i++) {
		if (!m->allocs[i]->committed)
			continue;
		v[n] = strdup(m->allocs[i]->path);
		if (!v[n]) {
			strv_free(v);
			return -ENOMEM;
		}
		n++;
	}
	*ret_nodes = v;
	return 0;
}

/* ---- setup ---------------------------------------------------------------------------- */

int manager_new(struct manager **ret)
{
	struct manager *m = calloc(1, sizeof(*m));
	int r;

	if (!m)
		return -ENOMEM;
	m->state_dir_fd = m->lock_fd = m->marker_dir_fd = -1;
	m->next_id = 1;
	m->version = IOVKIT_VERSION;
	m->vf_ops = &vf_ops_netlink;
	r = sd_event_default(&m->event);
	if (r < 0) {
		manager_free(m);
		return r;
	}
	*ret = m;
	return 0;
}

struct manager *manager_free(struct manager *m)
{
	if (!m)
		return NULL;
	for (size_t i = 0; i < m->n_allocs; i++)
		allocation_free(m->allocs[i]);
	free(m->allocs);
	free(m->index);
	auth_free(m);
	cdi_stop(m);
	commit_free(m);
	journal_free(m);
	strv_free(m->drift);
	sd_bus_flush_close_unref(m->bus);
	sd_event_unref(m->event);
	config_done(&m->config);
	iovk_ctx_unref(m->ctx);
	free(m->state_dir);
	free(m->marker_dir);
	closep(&m->marker_dir_fd);
	closep(&m->state_dir_fd);
	closep(&m->lock_fd);
	free(m);
	return NULL;
}

int manager_attach_bus(struct manager *m, sd_bus *bus)
{
	int r;

	m->bus = bus;
	r = sd_bus_add_object_vtable(m->bus, NULL, IOVD_PATH, IOVD_MANAGER_IFACE, manager_vtable, m);
	if (r >= 0)
		r = sd_bus_add_fallback_vtable(m->bus, NULL, IOVD_ALLOC_PREFIX, IOVD_ALLOC_IFACE, allocation_vtable,
					       allocation_find, m);
	if (r >= 0)
		r = sd_bus_add_node_enumerator(m->bus, NULL, IOVD_ALLOC_PREFIX, allocation_enumerate, m);
	if (r >= 0)
		r = sd_bus_add_object_manager(m->bus, NULL, IOVD_PATH);
	if (r < 0) {
		log_error("Failed to register the D-Bus objects: %s", strerror(-r));
		return r;
	}
	r = sd_bus_attach_event(m->bus, m->event, SD_EVENT_PRIORITY_NORMAL);
	if (r >= 0)
		r = sd_bus_set_exit_on_disconnect(m->bus, 1);
	return r;
}

int manager_start_bus(struct manager *m, const char *bus_kind, const char *address)
{
	int r;

	r = bus_connect(address, strcmp(bus_kind, "user") == 0, "iovd", &m->bus);
	if (r < 0) {
		log_error("Failed to connect to the %s bus%s%s: %s", address ? "given" : bus_kind, address ? " " : "",
			  address ?: "", strerror(-r));
		return r;
	}
	r = manager_attach_bus(m, TAKE_PTR(m->bus));
	if (r < 0)
		return r;
	/* Objects first, then the name: activated clients call right away. */
	r = sd_bus_request_name(m->bus, IOVD_BUS_NAME, 0);
	if (r < 0) {
		log_error("Failed to acquire the bus name %s: %s%s", IOVD_BUS_NAME, strerror(-r),
			  r == -EEXIST ? " (another iovd runs)" : r == -EACCES ? " (is the D-Bus policy file installed?)" : "");
		return r;
	}
	return 0;
}

