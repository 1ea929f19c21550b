/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Allocations: the objects, the table that holds them (by id, and by VF
 * address), and what an allocation changes on its VF, its driver and its
 * settings, and how that is put back. Below the state file, the commits
 * and the methods: nothing here calls up into them, so that data flows one
 * way (iovd.h lists the layers).
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "iovd.h"

/* ---- the objects and the table ---------------------------------------------------- */

struct allocation *allocation_new(struct manager *m, uint64_t id)
{
	struct allocation *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->manager = m;
	a->id = id;
	a->uid = (uid_t)-1;
	a->iommu_group = -1;
	a->numa_node = -1;
	if (asprintf(&a->path, IOVD_ALLOC_PREFIX "/%" PRIu64, id) < 0)
		a->path = NULL;
	a->drift = strdup("");
	if (!a->path || !a->drift) {
		allocation_free(a);
		return NULL;
	}
	return a;
}

void allocation_free(struct allocation *a)
{
	if (!a)
		return;
	free(a->path);
	free(a->pool);
	free(a->owner);
	free(a->address);
	free(a->driver);
	free(a->drift);
	free(a->vf_pf);
	strv_free(a->devices);
	failover_free(a->failover);
	free(a->fixed_json);
	free(a);
}

char *allocation_holder(const struct allocation *a)
{
	char *s;

	return asprintf(&s, "iovd %s (owner %s)", a->path, a->owner) < 0 ? NULL : s;
}

/*
 * The table is m->allocs sorted by id (ids only grow, so appending keeps it
 * sorted; state_load() sorts what it read), plus a hash index by VF address.
 * Finding an allocation by scanning the table made loading quadratic: with
 * 16,384 allocations, the start spent most of its 1.8 s in strcmp() (the
 * check for a VF given twice), and every Allocate scanned the table once
 * per VF of its pool.
 *
 * The index: open addressing, linear probing, at most half full, deletion
 * by backward shift; keys are canonical addresses (state_load() refuses
 * others, the pools' inventory comes from sysfs), so equal strings are
 * equal VFs. A device allocation is there under each endpoint of its
 * group: a device is taken whichever allocation holds it.
 */
static size_t address_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ULL;
	}
	return (size_t)h;
}

static struct index_entry *index_slot(struct index_entry *slots, size_t cap, const char *address)
{
	for (size_t i = address_hash(address) & (cap - 1);; i = (i + 1) & (cap - 1))
		if (!slots[i].a || strcmp(slots[i].key, address) == 0)
			return &slots[i];
}

static int index_add(struct manager *m, const char *key, struct allocation *a)
{
	struct index_entry *slot;

	if ((m->index_n + 1) * 2 > m->index_cap) {
		size_t cap = m->index_cap ? m->index_cap * 2 : 64;
		struct index_entry *slots = calloc(cap, sizeof(*slots));

		if (!slots)
			return -ENOMEM;
		for (size_t i = 0; i < m->index_cap; i++)
			if (m->index[i].a)
				*index_slot(slots, cap, m->index[i].key) = m->index[i];
		free(m->index);
		m->index = slots;
		m->index_cap = cap;
	}
	slot = index_slot(m->index, m->index_cap, key);
	if (slot->a)
		return -EEXIST;
	*slot = (struct index_entry){ .key = key, .a = a };
	m->index_n++;
	return 0;
}

static void index_remove(struct manager *m, const char *key, struct allocation *a)
{
	size_t mask = m->index_cap - 1, i, j;

	if (!m->index_cap || index_slot(m->index, m->index_cap, key)->a != a)
		return;
	i = (size_t)(index_slot(m->index, m->index_cap, key) - m->index);
	m->index[i] = (struct index_entry){};
	m->index_n--;
	/* pull back each later entry of the run that may no longer be found past the hole */
	for (j = (i + 1) & mask; m->index[j].a; j = (j + 1) & mask) {
		size_t home = address_hash(m->index[j].key) & mask;

		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			m->index[i] = m->index[j];
			m->index[j] = (struct index_entry){};
			i = j;
		}
	}
}

/* The keys of a: its address, and the other endpoints of a device allocation's group. */
static void index_remove_all(struct manager *m, struct allocation *a, size_t n_devices)
{
	index_remove(m, a->address, a);
	for (size_t i = 0; a->devices && i < n_devices && a->devices[i]; i++)
		if (strcmp(a->devices[i], a->address) != 0)
			index_remove(m, a->devices[i], a);
}

/* Pending ones included: a VF taken by a request in flight is taken. */
struct allocation *manager_find_by_address(struct manager *m, const char *address)
{
	return m->index_cap ? index_slot(m->index, m->index_cap, address)->a : NULL;
}

/* Index in m->allocs of the allocation with id, or where it would go. */
size_t manager_find_id(struct manager *m, uint64_t id)
{
	size_t lo = 0, hi = m->n_allocs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->allocs[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Appends a to the table (its id above every id there, or the table is
 * sorted later: state_load()); on failure the caller still owns it.
 * -EEXIST: its VF is in the table already.
 */
int manager_add_allocation(struct manager *m, struct allocation *a)
{
	int r;

	if (m->n_allocs == m->allocs_cap) {
		size_t cap = m->allocs_cap ? m->allocs_cap * 2 : 64;
		struct allocation **n = realloc(m->allocs, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		m->allocs = n;
		m->allocs_cap = cap;
	}
	r = index_add(m, a->address, a);
	if (r < 0)
		return r;
	for (size_t i = 0; a->devices && a->devices[i]; i++) {
		if (strcmp(a->devices[i], a->address) == 0)
			continue;
		r = index_add(m, a->devices[i], a);
		if (r < 0) {
			index_remove_all(m, a, i);
			return r;
		}
	}
	m->allocs[m->n_allocs++] = a;
	return 0;
}

void manager_remove_allocation(struct manager *m, struct allocation *a)
{
	size_t i = manager_find_id(m, a->id);

	if (i < m->n_allocs && m->allocs[i] == a) {
		memmove(m->allocs + i, m->allocs + i + 1, (m->n_allocs - i - 1) * sizeof(*m->allocs));
		m->n_allocs--;
		index_remove_all(m, a, SIZE_MAX);
	}
	allocation_free(a);
}

struct allocation *manager_find_by_path(struct manager *m, const char *path)
{
	const char *digits = path + strlen(IOVD_ALLOC_PREFIX "/");
	char *end;
	uint64_t id;
	size_t i;

	/* the form allocation_new() gives: decimal, no sign, no leading zero */
	if (strncmp(path, IOVD_ALLOC_PREFIX "/", strlen(IOVD_ALLOC_PREFIX "/")) != 0 ||
	    !(*digits >= '1' && *digits <= '9'))
		return NULL;
	errno = 0;
	id = strtoull(digits, &end, 10);
	if (errno != 0 || *end)
		return NULL;
	i = manager_find_id(m, id);
	if (i < m->n_allocs && m->allocs[i]->id == id && m->allocs[i]->committed)
		return m->allocs[i];
	return NULL;
}

bool owner_may_act(const struct allocation *a, const char *owner, uid_t uid)
{
	return a->committed && !a->releasing && strcmp(a->owner, owner) == 0 && (uid == 0 || a->uid == uid);
}

void count_holdings(struct manager *m, const char *owner, uid_t uid, struct holdings *ret)
{
	*ret = (struct holdings){};
	for (size_t i = 0; i < m->n_allocs; i++) {
		const struct allocation *a = m->allocs[i];

		ret->user += a->uid == uid;
		if (strcmp(a->owner, owner) != 0)
			continue;
		ret->owner++;
		if (a->uid != uid && !ret->other)
			ret->other = a;
	}
}

char *allocation_device_node(struct manager *m, const struct allocation *a)
{
	char *s;

	if (!iovk_driver_is_vfio(a->driver) || a->iommu_group < 0)
		return strdup("");
	s = iovk_iommu_group_vfio_node(m->ctx, a->iommu_group);
	return s;
}

/* ---- what an allocation changes on its VF, and putting it back ------------------- */

/*
 * Puts the VF of a back as it was before Allocate: the VF settings first,
 * then the driver (iovk_device_bind_undo(): driver, driver_override and
 * libiovkit's previous-driver record, exactly), so that a kernel driver that
 * probes the VF again finds its old admin MAC. The driver is moved only
 * while the VF is still on the driver Allocate gave it: one changed since
 * was changed by someone else (drift), or by an earlier Release whose
 * commit failed. Failures are logged, naming the VF; returns the first.
 */
static int put_back_group(struct manager *m, struct allocation *a)
{
	_cleanup_free_ char *holder = allocation_holder(a);
	struct iovk_passthrough *pt = NULL;
	int r;

	if (!holder)
		return -ENOMEM;
	r = iovk_passthrough_release_opts(m->ctx, a->address,
					  &(struct iovk_passthrough_opts){ .sz = sizeof(struct iovk_passthrough_opts),
									   .holder = holder },
					  &pt);
	if (r < 0) {
		log_warning("Device %s (%s): Failed to put IOMMU group %d back: %s", a->address, a->path, a->iommu_group,
			    iovk_ctx_get_error(m->ctx));
		return r;
	}
	log_debug("Device %s (%s): IOMMU group %d %s", a->address, a->path, a->iommu_group,
		  pt ? "put back as recorded" : "had no record left: nothing to put back");
	iovk_passthrough_free(pt);
	a->put_back = true;
	return 0;
}

int allocation_put_back(struct manager *m, struct allocation *a)
{
	char err[1024], now[64];
	int r = 0, k;

	/* the group first: the VF's netdev leaves its bond or macvtap before its driver goes */
	failover_teardown(m, a);
	if (a->devices)
		return a->passthrough ? put_back_group(m, a) : 0;

	if (a->vf_pf) {
		char words[256];

		iovk_vf_settings_format(&a->vf_previous, words, sizeof(words));
		k = vf_settings_restore(m, a, err, sizeof(err));
		if (k < 0) {
			log_warning("VF %s (%s): Failed to put back its settings (%s): %s", a->address, a->path, words,
				    err);
			r = k;
		} else
			log_debug("VF %s (%s): settings put back: %s", a->address, a->path, words);
	}
	if (a->has_bind) {
		k = iovk_device_read_driver(m->ctx, a->address, now, sizeof(now));
		if (k >= 0 && strcmp(now, a->bind.driver) != 0) {
			log_info("VF %s (%s): left on %s: it is not on %s, where the allocation put it, any more",
				 a->address, a->path, now[0] ? now : "no driver", a->bind.driver[0] ? a->bind.driver : "no driver");
			k = 0;
		} else if (k >= 0)
			k = iovk_device_bind_undo(m->ctx, a->address, &a->bind);
		if (k < 0) {
			log_warning("VF %s (%s): Failed to put it back on %s: %s", a->address, a->path,
				    a->bind.previous_driver[0] ? a->bind.previous_driver : "no driver",
				    iovk_ctx_get_error(m->ctx));
			r = r ?: k;
		}
	}
	a->put_back = a->vf_pf || a->has_bind;
	return r;
}


/*
 * Putting a VF back from vfio-pci to another driver unbinds vfio-pci, which
 * waits, without a timeout, until the VFIO user lets go of the device: iovd
 * would hang. So Release refuses while the VF's group is open (a legacy
 * VFIO group opens once: our own open says EBUSY), as
 * iovk_passthrough_release() does.
 */
int check_group_closed(struct manager *m, struct allocation *a, sd_bus_error *error)
{
	_cleanup_free_ char *node = NULL;
	char now[64];
	int r;

	if (a->devices && a->iommu_group >= 0)
		goto check; /* the library refuses too, but only once the Release is under way */
	if (!a->has_bind || !iovk_driver_is_vfio(a->bind.driver) || iovk_driver_is_vfio(a->bind.previous_driver) ||
	    a->iommu_group < 0)
		return 0;
	if (iovk_device_read_driver(m->ctx, a->address, now, sizeof(now)) < 0 || strcmp(now, a->bind.driver) != 0)
		return 0;
check:
	r = iovk_iommu_group_vfio_is_open(m->ctx, a->iommu_group);
	if (r <= 0)
		return r;
	node = iovk_iommu_group_vfio_node(m->ctx, a->iommu_group);
	return sd_bus_error_setf(error, IOVD_ERR_IN_USE,
				 "%s (%s %s, owner %s): IOMMU group %d is open (%s: a VM, or whoever holds the "
				 "descriptor from OpenDevice, uses the %s); Release would put %s back on %s, and "
				 "vfio-pci does not let go of a device in use: close it first", a->path,
				 a->devices ? "device" : "VF", a->address, a->owner, a->iommu_group, node ?: "its VFIO node",
				 a->devices ? "device" : "VF", a->devices ? "its group" : "the VF",
				 a->devices ? "the drivers it had" : a->bind.previous_driver[0] ? a->bind.previous_driver
											  : "no driver");
}

/* Adds to the text of a D-Bus error already set. */
void error_append(sd_bus_error *error, const char *format, ...)
{
	_cleanup_free_ char *more = NULL, *name = NULL, *text = NULL;
	va_list ap;
	int k;

	if (!sd_bus_error_is_set(error))
		return;
	va_start(ap, format);
	k = vasprintf(&more, format, ap);
	va_end(ap);
	name = strdup(error->name);
	if (k < 0 || !name || asprintf(&text, "%s%s", error->message ?: "", more) < 0)
		return;
	sd_bus_error_free(error);
	sd_bus_error_set(error, name, text);
}

/*
 * iovd's own marker says "allocated" from Allocate's start, and libiovkit
 * counts that as in use: so the host-use rule is asked once, before the
 * marker (refuse_vf_in_use()), and the moves after it are forced.
 */
#define IOVD_BIND_FLAGS IOVK_BIND_FORCE

/*
 * A VF that leaves a kernel driver for vfio-pci may take what the host
 * uses through it (its netdev up, addressed, in a bond): libiovkit's rule
 * decides, as for iovctl bind. Other moves take nothing from the host.
 */
int refuse_vf_in_use(struct manager *m, const struct pool *p, const char *address, const char *driver,
		     enum pool_driver want, sd_bus_error *error)
{
	struct iovk_in_use *u = NULL;
	int r;

	if (m->no_bind || want != POOL_DRIVER_VFIO || !driver[0] || iovk_driver_is_vfio(driver) ||
	    strcmp(driver, "pci-stub") == 0)
		return 0;
	r = iovk_device_check_in_use(m->ctx, address, 0, &u);
	if (r < 0)
		return error_set_errnof(error, NULL, r, "pool %s: checking whether the host uses VF %s: %s",
					p->name, address, iovk_ctx_get_error(m->ctx));
	if (iovk_in_use_get_n_reasons(u) > 0)
		r = sd_bus_error_setf(error, IOVD_ERR_IN_USE, "VF %s of pool %s is in use by the host: %s", address,
				      p->name, iovk_in_use_get_text(u));
	iovk_in_use_free(u);
	return r;
}

/*
 * A VF on no driver that neither a previous-driver record nor an override
 * sends anywhere has never had a kernel driver: its PF's VFs came with
 * sriov_drivers_autoprobe 0 (`iovctl sriov set --no-autoprobe`, as a
 * vfio-pci pool wants them), and then the kernel probes no driver for a VF
 * by itself, or the driver's module was not loaded. So bind the driver its
 * modalias names, what udev and autoprobe would have done (igbvf for an
 * 82576 VF). *res is what iovk_device_restore() did before (at most it
 * cleared an override): on success the result becomes the bind's, with that
 * override as the one to put back; on failure the override is back and
 * error says why.
 */
static int bind_kernel_driver(struct manager *m, struct allocation *a, struct iovk_bind_result *res,
			      sd_bus_error *error)
{
	struct iovk_bind_result bound = IOVK_BIND_RESULT_INIT;
	char name[64];
	int r;

	r = iovk_device_find_kernel_driver(m->ctx, a->address, 0, name, sizeof(name));
	if (r >= 0)
		r = iovk_device_bind(m->ctx, a->address, name, IOVD_BIND_FLAGS, &bound);
	if (r < 0) {
		r = error_set_errnof(error, NULL, r,
				     "Failed to bind VF %s of pool %s for %s to its kernel driver: %s", a->address,
				     a->pool, a->owner, iovk_ctx_get_error(m->ctx));
		if (res->previous_override[0] && iovk_device_bind_undo(m->ctx, a->address, res) < 0)
			error_append(error, "; putting back its driver_override %s failed: %s", res->previous_override,
				     iovk_ctx_get_error(m->ctx));
		return r;
	}
	snprintf(bound.previous_override, sizeof(bound.previous_override), "%s", res->previous_override);
	*res = bound;
	return 0;
}

/*
 * Puts the VF on the driver the allocation wants; *driver is the VF's driver,
 * and after the call the one it ends on. On failure the VF is as before:
 * libiovkit rolls a failed bind back itself, and says so in the error text.
 * What a successful move changed goes to a->bind, for
 * iovk_device_bind_undo().
 */
int apply_driver(struct manager *m, struct allocation *a, enum pool_driver want, char driver[static 64],
		 sd_bus_error *error)
{
	struct iovk_bind_result res = IOVK_BIND_RESULT_INIT;
	int r;

	if (m->no_bind || want == POOL_DRIVER_NONE)
		return 0;
	if (want == POOL_DRIVER_VFIO) {
		if (strcmp(driver, "vfio-pci") == 0)
			return 0; /* already there: spare the lock file and the sysfs writes */
		r = iovk_device_bind(m->ctx, a->address, "vfio-pci", IOVD_BIND_FLAGS, &res);
	} else {
		if (driver[0] && !iovk_driver_is_vfio(driver) && strcmp(driver, "pci-stub") != 0)
			return 0;
		r = iovk_device_restore(m->ctx, a->address, IOVD_BIND_FLAGS, &res);
		if (r >= 0 && !res.changed && !res.driver[0]) {
			r = bind_kernel_driver(m, a, &res, error);
			if (r < 0)
				return r;
		}
		if (r >= 0 && (!res.driver[0] || iovk_driver_is_vfio(res.driver) || strcmp(res.driver, "pci-stub") == 0)) {
			int r2 = iovk_device_bind_undo(m->ctx, a->address, &res);

			return sd_bus_error_setf(error, IOVD_ERR_FAILED,
						 "VF %s of pool %s for %s: no kernel driver took it (it is on %s)%s", a->address,
						 a->pool, a->owner, res.driver[0] ? res.driver : "no driver",
						 r2 < 0 ? "; putting it back failed" : "");
		}
	}
	if (r < 0)
		return error_set_errnof(error, NULL, r, "Failed to bind VF %s of pool %s for %s to %s: %s",
					a->address, a->pool, a->owner, want == POOL_DRIVER_VFIO ? "vfio-pci" : "its kernel driver",
					iovk_ctx_get_error(m->ctx));
	/* The result names the driver the VF ended on: nothing to reread. A
	 * restore's result serves iovk_device_bind_undo() as well: driver and
	 * driver_override come back; the previous-driver record that restore
	 * consumed does not, and needs not: without it, a restore clears the
	 * override and lets the kernel pick the VF's driver. */
	a->has_bind = true;
	a->bind = res;
	snprintf(driver, 64, "%s", res.driver);
	return 0;
}
