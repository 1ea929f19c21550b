/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Device pools: whole PCI devices handed out with their IOMMU group, as
 * Nova's [pci] device_spec, KubeVirt's permittedHostDevices and libvirt's
 * managed <hostdev> do, through libiovkit's passthrough module (the same
 * checks, the same durable record as `iovctl passthrough prepare`).
 *
 * One allocation holds one IOMMU group: the device asked for and every
 * other endpoint of its group (a GPU and its HDMI audio function), each of
 * which must be a free member of the pool or already on a VFIO driver
 * (the library refuses the rest, naming them). The library's record names
 * iovd's allocation as its holder ("iovd /org/iovkit/iovd1/allocation/7
 * (owner vm-1)"), so iovctl passthrough and iovd refuse each other's groups.
 *
 * Crash safety, step by step (iovd(8)):
 *  - Allocate: prepare (record first, then the moves), then the commit of
 *    the state file, then the reply. A record whose holder is an
 *    allocation the state file lacks is an Allocate that died before its
 *    commit: the next start releases it (rolls back) and says so.
 *  - Release: <run dir>/iovd-releasing/<id> first (tmpfs, like the
 *    records: a reboot clears both along with the bindings they
 *    describe), then the library's release, then the commit, then the
 *    file goes. An allocation with that file at start is a Release that
 *    died halfway: the start finishes it (release again, which does what
 *    is left, then drops the allocation) and says so.
 */
#include <fcntl.h>
#include <dirent.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>

#include "common/time-util.h"
#include "iovd.h"

#define HOLDER_PREFIX "iovd " IOVD_ALLOC_PREFIX "/"

/* ---- holders ---------------------------------------------------------------------------- */

/* The allocation id a holder names, 0 when it is not iovd's. */
static uint64_t holder_id(const char *holder)
{
	uint64_t id;
	int n = 0;

	if (!holder || strncmp(holder, HOLDER_PREFIX, strlen(HOLDER_PREFIX)) != 0)
		return 0;
	if (sscanf(holder + strlen(HOLDER_PREFIX), "%" SCNu64 " (owner %*[^)])%n", &id, &n) != 1 || n == 0 ||
	    holder[strlen(HOLDER_PREFIX) + (size_t)n] != '\0')
		return 0;
	return id;
}

/* "0000:01:00.0 (virtio-pci), 0000:01:00.1 (none)": what a release put back. */
static void describe_devices(const struct iovk_passthrough *pt, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < iovk_passthrough_get_n_devices(pt) && len < size; i++) {
		const struct iovk_passthrough_device *d = iovk_passthrough_get_device(pt, i);
		int k = snprintf(buf + len, size - len, "%s%s on %s", i ? ", " : "", d->address,
				 d->driver[0] ? d->driver : "no driver");

		if (k < 0)
			break;
		len += (size_t)k;
	}
}

/* ---- Allocate ---------------------------------------------------------------------------- */

/*
 * The other endpoints of address's group that the pool may take from their
 * kernel drivers (its free members), into take (NULL-terminated); InUse
 * when one is allocated already.
 */
static int group_take_list(struct manager *m, const struct pool *p, const char *address, char ***ret_take,
			   sd_bus_error *error)
{
	struct iovk_passthrough *plan = NULL;
	char **take = calloc(1, sizeof(char *));
	size_t n = 0;
	int r;

	if (!take)
		return -ENOMEM;
	r = iovk_passthrough_check(m->ctx, address, &plan);
	if (r < 0) {
		free(take);
		return error_set_errnof(error, r == -ENOENT || r == -EINVAL ? IOVD_ERR_NOT_SUPPORTED : NULL, r,
					"pool %s: device %s: %s", p->name, address, iovk_ctx_get_error(m->ctx));
	}
	for (size_t i = 0; i < iovk_passthrough_get_n_devices(plan) && r >= 0; i++) {
		const char *other = iovk_passthrough_get_device(plan, i)->address;
		struct allocation *b = manager_find_by_address(m, other);

		if (strcmp(other, address) == 0)
			continue;
		if (b)
			r = sd_bus_error_setf(error, IOVD_ERR_IN_USE,
					      "device %s of pool %s: IOMMU group %d also holds %s, which is allocated to %s (%s)",
					      address, p->name, iovk_passthrough_get_iommu_group(plan), other, b->owner,
					      b->path);
		else if (device_pool_find(p, other) >= 0)
			r = strv_push(&take, &n, other);
	}
	iovk_passthrough_free(plan);
	if (r < 0) {
		strv_free(take);
		return r;
	}
	*ret_take = take;
	return 0;
}

/* Prepares the group of a->address for a; fills a->devices, a->iommu_group and a->driver. */
static int devpool_prepare(struct manager *m, const struct pool *p, struct allocation *a, sd_bus_error *error)
{
	_cleanup_free_ char *holder = allocation_holder(a);
	struct iovk_passthrough *pt = NULL;
	char **take = NULL, **devices = NULL;
	size_t n = 0;
	int r;

	if (!holder)
		return -ENOMEM;
	r = group_take_list(m, p, a->address, &take, error);
	if (r < 0)
		return r;
	struct iovk_passthrough_opts o = { .sz = sizeof(o), .holder = holder, .take = (const char *const *)take,
					   .driver = p->device_driver };
	r = iovk_passthrough_prepare_opts(m->ctx, a->address, &o, &pt);
	strv_free(take);
	if (r < 0)
		return error_set_errnof(error, r == -EBUSY ? IOVD_ERR_IN_USE : NULL, r,
					"pool %s, device %s for %s: %s", p->name, a->address, a->owner,
					iovk_ctx_get_error(m->ctx));
	devices = calloc(1, sizeof(char *));
	r = devices ? strv_push(&devices, &n, a->address) : -ENOMEM;
	for (size_t i = 0; r >= 0 && i < iovk_passthrough_get_n_devices(pt); i++) {
		const struct iovk_passthrough_device *d = iovk_passthrough_get_device(pt, i);

		if (d->requested) {
			free(a->driver);
			a->driver = strdup(d->driver);
			if (!a->driver)
				r = -ENOMEM;
		} else
			r = strv_push(&devices, &n, d->address);
	}
	a->iommu_group = iovk_passthrough_get_iommu_group(pt);
	a->devices = devices;
	a->passthrough = true;
	iovk_passthrough_free(pt);
	if (r < 0)
		(void)allocation_put_back(m, a); /* prepared, but not to be handed out */
	return r;
}

int devpool_allocate(struct manager *m, struct pool *p, const char *owner, uid_t uid, const struct alloc_options *o,
		     struct allocation **ret, sd_bus_error *error)
{
	_cleanup_(sd_bus_error_free) sd_bus_error first = SD_BUS_ERROR_NULL;
	struct allocation *a = NULL;
	char canonical[IOVK_PCI_ADDR_MAX] = "";
	size_t tried = 0;
	int r;

	if (o->vf.fields)
		return sd_bus_error_setf(error, IOVD_ERR_INVALID, "pool %s is a device pool: VF settings (mac, vlan, qos, "
					 "spoofchk, trust) do not apply to it", p->name);
	if (o->driver >= 0 && o->driver != POOL_DRIVER_VFIO)
		return sd_bus_error_setf(error, IOVD_ERR_INVALID, "pool %s is a device pool: its devices go to %s, "
					 "not to a kernel driver", p->name, p->device_driver);
	/* The inventory may be old: rescan at most once a second, as for VFs. */
	if (now_usec(CLOCK_REALTIME) - p->scanned_usec >= 1000000) {
		r = pool_scan(m->ctx, p);
		if (r < 0)
			return error_set_errnof(error, NULL, r, "pool %s: reading its devices: %s", p->name,
						iovk_ctx_get_error(m->ctx));
		p->scanned_usec = now_usec(CLOCK_REALTIME);
	}
	if (o->address) {
		struct iovk_pci_addr pa;
		struct allocation *b;

		if (iovk_pci_addr_parse(o->address, &pa) < 0 || device_pool_find(p, iovk_pci_addr_format(&pa, canonical)) < 0)
			return sd_bus_error_setf(error, IOVD_ERR_NOT_FOUND, "pool %s has no device %s", p->name, o->address);
		b = manager_find_by_address(m, canonical);
		if (b)
			return sd_bus_error_setf(error, IOVD_ERR_IN_USE, "device %s of pool %s is allocated to %s (%s)",
						 canonical, p->name, b->owner, b->path);
	}

	/* Free members in order, the preferred NUMA node first; the first whose group prepares wins. */
	for (int pass = 0; pass < 2 && !a; pass++)
		for (size_t i = 0; i < p->n_devices && !a; i++) {
			const char *dev = p->devices[i];
			_cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
			bool preferred = o->numa < 0 || p->device_numa[i] == o->numa;

			if (o->address ? strcmp(dev, canonical) != 0 || pass > 0
				       : manager_find_by_address(m, dev) || (pass == 0) != preferred ||
					 (p->numa_strict && !preferred))
				continue;
			tried++;
			a = allocation_new(m, m->next_id);
			if (!a)
				return -ENOMEM;
			a->pool = strdup(p->name);
			a->owner = strdup(owner);
			a->address = strdup(dev);
			if (!a->pool || !a->owner || !a->address) {
				allocation_free(a);
				return -ENOMEM;
			}
			a->uid = uid;
			a->numa_node = p->device_numa[i];
			r = devpool_prepare(m, p, a, &e);
			if (r < 0) {
				allocation_free(a);
				a = NULL;
				if (r == -ENOMEM)
					return r;
				if (!sd_bus_error_is_set(&first))
					sd_bus_error_move(&first, &e);
			}
		}
	if (!a) {
		if (tried == 0)
			return sd_bus_error_setf(error, IOVD_ERR_POOL_EXHAUSTED,
						 "pool %s has no free device for %s (%zu devices, all allocated)", p->name,
						 owner, p->n_devices);
		r = sd_bus_error_set(error, first.name, first.message);
		if (tried > 1)
			error_append(error, " (and %zu other free devices of the pool could not go either)", tried - 1);
		return r;
	}
	/* Marked once prepared (before, libiovkit's host-use rule would have
	 * counted iovd's own marker against the prepare): every endpoint. */
	marker_set(m, a, true);
	*ret = a;
	return 0;
}

/* ---- Release ------------------------------------------------------------------------------ */

int devpool_release(struct manager *m, struct allocation *a, sd_bus_error *error)
{
	int r;

	r = release_intent_set(m, a, true);
	if (r < 0)
		return error_set_errnof(error, NULL, r, "%s: Failed to record the release intent in %s: %s",
					a->path, iovk_ctx_get_run_dir(m->ctx), strerror(-r));
	r = allocation_put_back(m, a);
	if (r < 0) {
		r = error_set_errnof(error, r == -EBUSY ? IOVD_ERR_IN_USE : NULL, r,
				     "%s (device %s, owner %s): %s; the allocation stays", a->path, a->address, a->owner,
				     iovk_ctx_get_error(m->ctx));
		(void)release_intent_set(m, a, false);
	}
	return r;
}

/* ---- at start: finish or roll back what a crash interrupted ------------------------------------ */

static void drop_released_intent(struct manager *m, const char *dir, int dir_fd, const char *name, uint64_t id,
				 bool known)
{
	if (id && !known)
		unlinkat(dir_fd, name, 0);
}

int devpool_recover(struct manager *m)
{
	struct iovk_passthrough **records = NULL;
	bool changed = false;
	char what[1024];
	int r;

	/* Releases that died halfway: finish them. */
	for (size_t i = 0; i < m->n_allocs;) {
		struct allocation *a = m->allocs[i];

		if (!a->devices || !release_intent_exists(m, a->id)) {
			i++;
			continue;
		}
		/* the state file does not keep the group: reconciliation reads it, after this */
		if (a->iommu_group < 0) {
			int g = iovk_device_read_iommu_group(m->ctx, a->address);

			a->iommu_group = g >= 0 ? g : -1;
		}
		r = allocation_put_back(m, a);
		if (r < 0) {
			log_error("%s (device %s, owner %s): its Release was interrupted, and finishing it failed: %s; "
				  "the allocation stays (Release it again)", a->path, a->address, a->owner,
				  iovk_ctx_get_error(m->ctx));
			(void)release_intent_set(m, a, false);
			i++;
			continue;
		}
		log_msg(LOG_NOTICE, "Finished the Release of %s (device %s, IOMMU group %d, owner %s) that was interrupted: "
			   "its devices are back as before", a->path, a->address, a->iommu_group, a->owner);
		(void)release_intent_set(m, a, false);
		marker_set(m, a, false);
		manager_remove_allocation(m, a);
		changed = true;
	}

	/* Allocates that died before their commit: roll them back. */
	r = iovk_passthrough_list_records(m->ctx, &records);
	if (r < 0) {
		log_error("Failed to read the passthrough records: %s", iovk_ctx_get_error(m->ctx));
		return r;
	}
	for (size_t i = 0; records[i]; i++) {
		const char *holder = iovk_passthrough_get_holder(records[i]);
		uint64_t id = holder_id(holder);
		size_t k = manager_find_id(m, id);
		struct iovk_passthrough *pt = NULL;
		_cleanup_free_ char *mine = NULL;

		if (id == 0)
			continue;
		if (k < m->n_allocs && m->allocs[k]->id == id && (mine = allocation_holder(m->allocs[k])) &&
		    strcmp(mine, holder) == 0)
			continue;
		struct iovk_passthrough_opts o = { .sz = sizeof(o), .holder = holder };
		r = iovk_passthrough_release_opts(m->ctx, iovk_passthrough_get_address(records[i]), &o, &pt);
		if (r < 0) {
			log_error("IOMMU group %d (%s): an Allocate for %s was interrupted before it was recorded, and "
				  "rolling it back failed: %s", iovk_passthrough_get_iommu_group(records[i]),
				  iovk_passthrough_get_address(records[i]), holder, iovk_ctx_get_error(m->ctx));
			continue;
		}
		describe_devices(pt ?: records[i], what, sizeof(what));
		log_msg(LOG_NOTICE, "Rolled back an Allocate interrupted before it was recorded (%s): IOMMU group %d is back: %s",
			   holder, iovk_passthrough_get_iommu_group(records[i]), what);
		iovk_passthrough_free(pt);
		/* its id was in a record and in the log: never reused (iovd(8)) */
		if (id >= m->next_id && id < UINT64_MAX) {
			m->next_id = id + 1;
			changed = true;
		}
	}
	iovk_passthrough_list_free(records);

	/* Release intents of allocations already gone: the commit made it, the unlink did not. */
	if (run_records_foreach(m, "iovd-releasing", drop_released_intent) < 0)
		return -ENOMEM;
	return changed;
}

/* ---- reconciliation ------------------------------------------------------------------------- */

/* What differs for a device allocation: an endpoint off VFIO, the record gone. Into buf, "" when nothing. */
void devpool_drift(struct manager *m, const struct allocation *a, char *buf, size_t size)
{
	_cleanup_free_ char *holder = allocation_holder(a);
	struct iovk_passthrough **records = NULL;
	bool found = false;
	size_t len = 0;

	buf[0] = '\0';
	/* the device asked for: reconcile.c compares its driver with the allocation's */
	for (char **d = a->devices + 1; *d && len < size; d++) {
		char drv[64];
		int k;

		if (iovk_device_read_driver(m->ctx, *d, drv, sizeof(drv)) < 0)
			k = snprintf(buf + len, size - len, "%sendpoint %s vanished", len ? "; " : "", *d);
		else if (!iovk_driver_is_vfio(drv))
			k = snprintf(buf + len, size - len, "%sendpoint %s is on %s, not on a VFIO driver", len ? "; " : "",
				     *d, drv[0] ? drv : "no driver");
		else
			k = 0;
		if (k > 0)
			len += (size_t)k;
	}
	if (iovk_passthrough_list_records(m->ctx, &records) >= 0) {
		for (size_t i = 0; records[i] && !found; i++)
			found = holder && iovk_passthrough_get_holder(records[i]) &&
				strcmp(iovk_passthrough_get_holder(records[i]), holder) == 0;
		iovk_passthrough_list_free(records);
		if (!found && len < size)
			snprintf(buf + len, size - len, "%sits passthrough record is gone (a reboot clears %s/passthrough): "
				 "Release it; nothing is put back then", len ? "; " : "", iovk_ctx_get_run_dir(m->ctx));
	}
}
