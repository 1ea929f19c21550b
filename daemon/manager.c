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
#include <signal.h>
#include <stdarg.h>
#include <string.h>

#include "common/time-util.h"
#include "iovd.h"

/* ---- the table -------------------------------------------------------------- */

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
	free(a);
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
 * equal VFs.
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

static struct allocation **index_slot(struct allocation **slots, size_t cap, const char *address)
{
	for (size_t i = address_hash(address) & (cap - 1);; i = (i + 1) & (cap - 1))
		if (!slots[i] || strcmp(slots[i]->address, address) == 0)
			return &slots[i];
}

static int index_add(struct manager *m, struct allocation *a)
{
	struct allocation **slot;

	if ((m->index_n + 1) * 2 > m->index_cap) {
		size_t cap = m->index_cap ? m->index_cap * 2 : 64;
		struct allocation **slots = calloc(cap, sizeof(*slots));

		if (!slots)
			return -ENOMEM;
		for (size_t i = 0; i < m->index_cap; i++)
			if (m->index[i])
				*index_slot(slots, cap, m->index[i]->address) = m->index[i];
		free(m->index);
		m->index = slots;
		m->index_cap = cap;
	}
	slot = index_slot(m->index, m->index_cap, a->address);
	if (*slot)
		return -EEXIST;
	*slot = a;
	m->index_n++;
	return 0;
}

static void index_remove(struct manager *m, struct allocation *a)
{
	size_t mask = m->index_cap - 1, i, j;

	if (!m->index_cap || *index_slot(m->index, m->index_cap, a->address) != a)
		return;
	i = (size_t)(index_slot(m->index, m->index_cap, a->address) - m->index);
	m->index[i] = NULL;
	m->index_n--;
	/* pull back each later entry of the run that may no longer be found past the hole */
	for (j = (i + 1) & mask; m->index[j]; j = (j + 1) & mask) {
		size_t home = address_hash(m->index[j]->address) & mask;

		if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
			m->index[i] = m->index[j];
			m->index[j] = NULL;
			i = j;
		}
	}
}

/* Pending ones included: a VF taken by a request in flight is taken. */
struct allocation *manager_find_by_address(struct manager *m, const char *address)
{
	return m->index_cap ? *index_slot(m->index, m->index_cap, address) : NULL;
}

/* Index in m->allocs of the allocation with id, or where it would go. */
static size_t find_id(struct manager *m, uint64_t id)
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
	r = index_add(m, a);
	if (r < 0)
		return r;
	m->allocs[m->n_allocs++] = a;
	return 0;
}

void manager_remove_allocation(struct manager *m, struct allocation *a)
{
	size_t i = find_id(m, a->id);

	if (i < m->n_allocs && m->allocs[i] == a) {
		memmove(m->allocs + i, m->allocs + i + 1, (m->n_allocs - i - 1) * sizeof(*m->allocs));
		m->n_allocs--;
		index_remove(m, a);
	}
	allocation_free(a);
}

static struct allocation *find_by_path(struct manager *m, const char *path)
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
	i = find_id(m, id);
	if (i < m->n_allocs && m->allocs[i]->id == id && m->allocs[i]->committed)
		return m->allocs[i];
	return NULL;
}

/* What an Allocate by uid under owner counts against, pending allocations included: they are taken. */
struct holdings {
	unsigned owner;                  /* allocations under the owner name */
	unsigned user;                   /* allocations of uid, under any owner name */
	const struct allocation *other;  /* one under the owner name of another uid (or of none known) */
};

static void count_holdings(struct manager *m, const char *owner, uid_t uid, struct holdings *ret)
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

/* Drift logged one line each up to this many; all of it is in the Drift property. */
#define DRIFT_LOG_MAX 64

void manager_add_drift(struct manager *m, const char *format, ...)
{
	char *s;
	va_list ap;
	int k;

	va_start(ap, format);
	k = vasprintf(&s, format, ap);
	va_end(ap);
	if (k < 0)
		return;
	if (m->n_drift < DRIFT_LOG_MAX)
		log_warning("Drift: %s", s);
	if (m->n_drift + 2 > m->drift_cap) {
		size_t cap = m->drift_cap ? m->drift_cap * 2 : 16;
		char **n = realloc(m->drift, cap * sizeof(char *));

		if (!n) {
			free(s);
			return;
		}
		m->drift = n;
		m->drift_cap = cap;
	}
	m->drift[m->n_drift++] = s;
	m->drift[m->n_drift] = NULL;
}

bool manager_stop_requested(void)
{
	sigset_t pending;

	return sigpending(&pending) == 0 && (sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1);
}

static char *device_node(struct manager *m, const struct allocation *a)
{
	char *s;

	if (!iovk_driver_is_vfio(a->driver) || a->iommu_group < 0)
		return strdup("");
	if (asprintf(&s, "%s/vfio/%d", iovk_ctx_get_dev_root(m->ctx), a->iommu_group) < 0)
		return NULL;
	return s;
}

/* ---- reconciliation at start ---------------------------------------------------- */

static void allocation_drift(struct manager *m, struct allocation *a, const char *format, ...) _printf_(3, 4);
static void allocation_drift(struct manager *m, struct allocation *a, const char *format, ...)
{
	_cleanup_free_ char *s = NULL;
	char *joined;
	va_list ap;
	int k;

	va_start(ap, format);
	k = vasprintf(&s, format, ap);
	va_end(ap);
	if (k < 0)
		return;
	if (asprintf(&joined, "%s%s%s", a->drift, a->drift[0] ? "; " : "", s) >= 0) {
		free(a->drift);
		a->drift = joined;
	}
	manager_add_drift(m, "%s (VF %s, owner %s): %s", a->path, a->address, a->owner, s);
}

/*
 * Compares what the state file says with sysfs. Every allocation is kept,
 * whatever drifted: its owner may still use the VF, and only a Release may
 * give it back. A VF that vanished stays taken, so a VF that comes back at
 * the same address is not handed out behind its old owner's back.
 *
 * One sysfs read per allocation, and stops at SIGTERM (-EINTR), having
 * changed nothing but the table in memory.
 */
int manager_reconcile(struct manager *m)
{
	size_t n_drift_before = m->n_drift, n_other = 0;
	/* Whether each allocation's VF is in its pool: one pass over the pools' VFs. */
	_cleanup_free_ bool *in_pool = calloc(m->n_allocs ?: 1, sizeof(bool));

	if (!in_pool)
		return -ENOMEM;
	for (size_t i = 0; i < m->config.n_pools; i++) {
		struct pool *p = &m->config.pools[i];

		for (size_t j = 0; j < p->n_vfs; j++) {
			struct allocation *a = manager_find_by_address(m, p->vfs[j]);

			if (a && strcmp(a->pool, p->name) == 0)
				in_pool[find_id(m, a->id)] = true;
		}
	}
	for (size_t i = 0; i < m->n_allocs; i++) {
		struct allocation *a = m->allocs[i];
		struct pool *p = config_find_pool(&m->config, a->pool);
		struct iovk_device *d = NULL;
		const char *drv;
		int r;

		if (i % 256 == 0 && manager_stop_requested())
			return -EINTR;
		if (!p)
			allocation_drift(m, a, "pool %s is not configured any more", a->pool);

		r = iovk_device_new(m->ctx, a->address, &d);
		if (r == -ENODEV) {
			allocation_drift(m, a, "the VF vanished (were its PF's VFs removed or renumbered?)");
			continue;
		}
		if (r < 0) {
			allocation_drift(m, a, "cannot read the VF: %s", iovk_ctx_get_error(m->ctx));
			continue;
		}
		if (p && !in_pool[i])
			allocation_drift(m, a, "the VF is not among the VFs of pool %s any more", a->pool);
		a->iommu_group = iovk_device_get_iommu_group(d);
		a->numa_node = iovk_device_get_numa_node(d);
		drv = iovk_device_get_driver(d) ?: "";
		if (!iovk_device_get_physfn(d))
			allocation_drift(m, a, "the device is not a VF any more");
		if (strcmp(drv, a->driver) != 0)
			allocation_drift(m, a, "its driver changed from %s to %s", a->driver[0] ? a->driver : "none",
					 drv[0] ? drv : "none");
		iovk_device_unref(d);
	}
	if (m->n_drift > DRIFT_LOG_MAX)
		n_other = m->n_drift - (n_drift_before > DRIFT_LOG_MAX ? n_drift_before : DRIFT_LOG_MAX);
	if (n_other)
		log_warning("Drift: %zu findings more, not logged one by one: see the Drift property", n_other);
	log_info("Loaded %zu allocations from %s, %zu drifted from sysfs", m->n_allocs, m->state_dir, m->n_drift);
	return 0;
}

/* ---- publishing what is committed (commit.c calls these) ------------------------- */

static int emit_allocation_signal(struct manager *m, const char *member, const struct allocation *a)
{
	return sd_bus_emit_signal(m->bus, IOVD_PATH, IOVD_MANAGER_IFACE, member, "osss", a->path, a->pool, a->owner,
				  a->address);
}

/* The allocation is on disk: show it on the bus. Its marker is there since Allocate. */
void allocation_publish(struct manager *m, struct allocation *a)
{
	a->committed = true;
	(void)sd_bus_emit_object_added(m->bus, a->path);
	(void)emit_allocation_signal(m, "AllocationAdded", a);
	log_info("Allocated VF %s of pool %s to %s (%s)", a->address, a->pool, a->owner, a->path);
}

/* Its release is on disk: the VF is free again. Frees a. */
void allocation_retire(struct manager *m, struct allocation *a)
{
	/* while find_by_path() still sees it, so the signal lists its interfaces */
	(void)sd_bus_emit_object_removed(m->bus, a->path);
	(void)emit_allocation_signal(m, "AllocationRemoved", a);
	marker_set(m, a, false);
	log_info("Released VF %s of pool %s from %s (%s)", a->address, a->pool, a->owner, a->path);
	manager_remove_allocation(m, a);
}

/*
 * Puts the VF of a back as it was before Allocate: the VF settings first,
 * then the driver (iovk_device_bind_undo(): driver, driver_override and
 * libiovkit's previous-driver record, exactly), so that a kernel driver that
 * probes the VF again finds its old admin MAC. The driver is moved only
 * while the VF is still on the driver Allocate gave it: one changed since
 * was changed by someone else (drift), or by an earlier Release whose
 * commit failed. Failures are logged, naming the VF; returns the first.
 */
static int allocation_put_back(struct manager *m, struct allocation *a)
{
	char err[1024], now[64];
	int r = 0, k;

	if (a->vf_pf) {
		char words[256];

		vf_config_format(&a->vf_previous, words, sizeof(words));
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

/* Undoes an Allocate whose commit failed (or that failed after its changes). */
void allocation_undo(struct manager *m, struct allocation *a)
{
	(void)allocation_put_back(m, a);
	marker_set(m, a, false);
}

/*
 * Putting a VF back from vfio-pci to another driver unbinds vfio-pci, which
 * waits, without a timeout, until the VFIO user lets go of the device: iovd
 * would hang. So Release refuses while the VF's group is open (a legacy
 * VFIO group opens once: our own open says EBUSY), as
 * iovk_passthrough_release() does.
 */
static int check_group_closed(struct manager *m, struct allocation *a, sd_bus_error *error)
{
	_cleanup_free_ char *node = NULL;
	char now[64];
	int fd;

	if (!a->has_bind || !iovk_driver_is_vfio(a->bind.driver) || iovk_driver_is_vfio(a->bind.previous_driver) ||
	    a->iommu_group < 0)
		return 0;
	if (iovk_device_read_driver(m->ctx, a->address, now, sizeof(now)) < 0 || strcmp(now, a->bind.driver) != 0)
		return 0;
	if (asprintf(&node, "%s/vfio/%d", iovk_ctx_get_dev_root(m->ctx), a->iommu_group) < 0)
		return -ENOMEM;
	fd = open(node, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (errno != EBUSY)
		return 0;
	return sd_bus_error_setf(error, IOVD_ERR_IN_USE,
				 "%s (VF %s, owner %s): IOMMU group %d is open (%s: a VM, or whoever holds the "
				 "descriptor from OpenDevice, uses the VF); Release would put the VF back on %s, and "
				 "vfio-pci does not let go of a device in use: close it first", a->path, a->address,
				 a->owner, a->iommu_group, node,
				 a->bind.previous_driver[0] ? a->bind.previous_driver : "no driver");
}

/* Adds to the text of a D-Bus error already set. */
static void error_append(sd_bus_error *error, const char *format, ...) _printf_(2, 3);
static void error_append(sd_bus_error *error, const char *format, ...)
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

/* ---- argument checks ------------------------------------------------------------ */

static bool name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("._:@/+=-", c);
}

bool owner_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > IOVD_NAME_MAX)
		return false;
	for (; *s; s++)
		if (!name_char(*s))
			return false;
	return true;
}

static int check_name(const char *what, const char *s, sd_bus_error *error)
{
	size_t n = strlen(s);

	if (owner_name_valid(s))
		return 0;
	if (n == 0 || n > IOVD_NAME_MAX)
		return sd_bus_error_setf(error, IOVD_ERR_INVALID, "%s must be 1 to %d characters long, not %zu", what,
					 IOVD_NAME_MAX, n);
	return sd_bus_error_setf(error, IOVD_ERR_INVALID,
				 "%s '%.64s%s' has a character other than A-Z a-z 0-9 . _ : @ / + = -", what, s,
				 n > 64 ? "..." : "");
}

struct alloc_options {
	int driver; /* enum pool_driver, -1 for the pool's */
	int numa;   /* -1: no preference */
	const char *address;
	struct vf_config vf; /* settings asked for; fields 0: none */
};

/* Reads a variant holding one basic value of the given type, or fails naming the option. */
static int read_variant(sd_bus_message *msg, const char *key, char type, void *ret, sd_bus_error *error)
{
	const char sig[2] = { type, 0 };
	int r;

	r = sd_bus_message_enter_container(msg, 'v', sig);
	if (r < 0) {
		const char *contents = NULL;

		(void)sd_bus_message_peek_type(msg, NULL, &contents);
		return sd_bus_error_setf(error, IOVD_ERR_INVALID, "option %s must hold type '%c', not '%s'", key, type,
					 strna(contents));
	}
	r = sd_bus_message_read_basic(msg, type, ret);
	if (r < 0)
		return r;
	return sd_bus_message_exit_container(msg);
}

/*
 * Reads a variant holding an integer of any D-Bus type (busctl's "q 100" and
 * gdbus's "<100>", an int32, mean the same VLAN) into [min, max].
 */
static int read_integer_variant(sd_bus_message *msg, const char *key, int64_t min, int64_t max, int64_t *ret,
				sd_bus_error *error)
{
	const char *contents = NULL;
	union {
		uint8_t y;
		int16_t n;
		uint16_t q;
		int32_t i;
		uint32_t u;
		int64_t x;
		uint64_t t;
	} v;
	int64_t value;
	int r;

	r = sd_bus_message_peek_type(msg, NULL, &contents);
	if (r < 0)
		return r;
	if (!contents || strlen(contents) != 1 || !strchr("ynqiuxt", contents[0]))
		return sd_bus_error_setf(error, IOVD_ERR_INVALID, "option %s must hold an integer, not '%s'", key,
					 strna(contents));
	r = read_variant(msg, key, contents[0], &v, error);
	if (r < 0)
		return r;
	switch (contents[0]) {
	case 'y': value = v.y; break;
	case 'n': value = v.n; break;
	case 'q': value = v.q; break;
	case 'i': value = v.i; break;
	case 'u': value = v.u; break;
	case 'x': value = v.x; break;
	default: value = v.t > INT64_MAX ? INT64_MAX : (int64_t)v.t; break;
	}
	if (value < min || value > max)
		return sd_bus_error_setf(error, IOVD_ERR_INVALID, "option %s must be %" PRId64 " to %" PRId64 ", not %" PRId64,
					 key, min, max, value);
	*ret = value;
	return 0;
}

static int parse_options(sd_bus_message *msg, struct alloc_options *o, sd_bus_error *error)
{
	static const char *const known[] = { "driver", "numa", "address", "mac", "vlan", "qos", "spoofchk", "trust" };
	unsigned seen = 0;
	bool has_qos = false;
	int r;

	*o = (struct alloc_options){ .driver = -1, .numa = -1 };
	r = sd_bus_message_enter_container(msg, 'a', "{sv}");
	if (r < 0)
		return r;
	while ((r = sd_bus_message_enter_container(msg, 'e', "sv")) > 0) {
		const char *key, *s;
		int64_t n;
		int b;

		r = sd_bus_message_read_basic(msg, 's', &key);
		if (r < 0)
			return r;
		/* Every key at most once, so the array is bounded by the keys known. */
		for (unsigned i = 0; i < ELEMENTSOF(known); i++)
			if (strcmp(key, known[i]) == 0) {
				if (seen & (1u << i))
					return sd_bus_error_setf(error, IOVD_ERR_INVALID, "option %s given twice", key);
				seen |= 1u << i;
			}
		if (strcmp(key, "driver") == 0) {
			r = read_variant(msg, key, 's', &s, error);
			if (r < 0)
				return r;
			if (strcmp(s, "vfio-pci") == 0)
				o->driver = POOL_DRIVER_VFIO;
			else if (strcmp(s, "kernel") == 0)
				o->driver = POOL_DRIVER_KERNEL;
			else
				return sd_bus_error_setf(error, IOVD_ERR_INVALID,
							 "option driver must be \"vfio-pci\" or \"kernel\", not '%.64s'", s);
		} else if (strcmp(key, "numa") == 0) {
			int32_t v;

			r = read_variant(msg, key, 'i', &v, error);
			if (r < 0)
				return r;
			if (v < -1 || v > 4095)
				return sd_bus_error_setf(error, IOVD_ERR_INVALID,
							 "option numa must be a NUMA node 0 to 4095 or -1, not %d", v);
			o->numa = v;
		} else if (strcmp(key, "address") == 0) {
			struct iovk_pci_addr addr;

			r = read_variant(msg, key, 's', &s, error);
			if (r < 0)
				return r;
			if (iovk_pci_addr_parse(s, &addr) < 0)
				return sd_bus_error_setf(error, IOVD_ERR_INVALID, "option address: '%.64s' is not a PCI address", s);
			o->address = s;
		} else if (strcmp(key, "mac") == 0) {
			r = read_variant(msg, key, 's', &s, error);
			if (r < 0)
				return r;
			/* all zero is accepted: it clears the admin MAC */
			if (iovk_vf_parse_mac(s, o->vf.mac) < 0)
				return sd_bus_error_setf(error, IOVD_ERR_INVALID,
							 "option mac: '%.64s' is not a unicast MAC address", s);
			o->vf.fields |= IOVK_VF_MAC;
		} else if (strcmp(key, "vlan") == 0) {
			r = read_integer_variant(msg, key, 0, IOVK_VF_VLAN_MAX, &n, error);
			if (r < 0)
				return r;
			o->vf.vlan = (uint16_t)n;
			o->vf.fields |= IOVK_VF_VLAN;
		} else if (strcmp(key, "qos") == 0) {
			r = read_integer_variant(msg, key, 0, IOVK_VF_QOS_MAX, &n, error);
			if (r < 0)
				return r;
			o->vf.qos = (uint8_t)n;
			has_qos = true;
		} else if (strcmp(key, "spoofchk") == 0 || strcmp(key, "trust") == 0) {
			r = read_variant(msg, key, 'b', &b, error);
			if (r < 0)
				return r;
			if (key[0] == 's') {
				o->vf.spoofchk = b;
				o->vf.fields |= IOVK_VF_SPOOFCHK;
			} else {
				o->vf.trust = b;
				o->vf.fields |= IOVK_VF_TRUST;
			}
		} else {
			return sd_bus_error_setf(error, IOVD_ERR_INVALID,
						 "unknown option '%.64s'; known: driver, numa, address, mac, vlan, qos, "
						 "spoofchk, trust", key);
		}
		r = sd_bus_message_exit_container(msg);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	if (has_qos && !(o->vf.fields & IOVK_VF_VLAN))
		return sd_bus_error_setf(error, IOVD_ERR_INVALID, "option qos needs option vlan (qos is the priority of "
					 "the VLAN's tags)");
	return sd_bus_message_exit_container(msg);
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
		if (any < 0)
			any = (ssize_t)i;
	}
	return any;
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
static int refuse_vf_in_use(struct manager *m, const struct pool *p, const char *address, const char *driver,
			    enum pool_driver want, sd_bus_error *error)
{
	struct iovk_in_use *u = NULL;
	int r;

	if (m->no_bind || want != POOL_DRIVER_VFIO || !driver[0] || iovk_driver_is_vfio(driver) ||
	    strcmp(driver, "pci-stub") == 0)
		return 0;
	r = iovk_device_check_in_use(m->ctx, address, 0, &u);
	if (r < 0)
		return sd_bus_error_setf(error, IOVD_ERR_FAILED, "pool %s: checking whether the host uses VF %s: %s",
					 p->name, address, iovk_ctx_get_error(m->ctx));
	if (iovk_in_use_get_n_reasons(u) > 0)
		r = sd_bus_error_setf(error, IOVD_ERR_IN_USE, "VF %s of pool %s is in use by the host: %s", address,
				      p->name, iovk_in_use_get_text(u));
	iovk_in_use_free(u);
	return r;
}

static int bind_kernel_driver(struct manager *m, struct allocation *a, struct iovk_bind_result *res,
			      sd_bus_error *error)
{
	struct iovk_bind_result bound = {};
	char name[64];
	int r;

	r = iovk_device_find_kernel_driver(m->ctx, a->address, 0, name, sizeof(name));
	if (r >= 0)
		r = iovk_device_bind(m->ctx, a->address, name, IOVD_BIND_FLAGS, &bound);
	if (r < 0) {
		r = sd_bus_error_setf(error, IOVD_ERR_FAILED,
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
static int apply_driver(struct manager *m, struct allocation *a, enum pool_driver want, char driver[static 64],
			sd_bus_error *error)
{
	struct iovk_bind_result res = {};
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
		return sd_bus_error_setf(error, IOVD_ERR_FAILED, "Failed to bind VF %s of pool %s for %s to %s: %s",
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

static int method_allocate(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	_cleanup_free_ char *node = NULL;
	struct allocation *a = NULL, **list;
	struct alloc_options o;
	struct vf_config want;
	const char *pool_name, *owner;
	struct holdings held;
	char driver[64] = "";
	ssize_t vf = -1;
	struct pool *p;
	uid_t uid;
	int r;

	r = check_access(m, msg, "Allocate", &uid, error);
	if (r < 0)
		return r;
	r = sd_bus_message_read(msg, "ss", &pool_name, &owner);
	if (r < 0)
		return r;
	r = parse_options(msg, &o, error);
	if (r < 0)
		return r;
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
				return sd_bus_error_setf(error, IOVD_ERR_FAILED, "pool %s: reading VF %s: %s", p->name,
							 p->vfs[vf], iovk_ctx_get_error(m->ctx));
			vanished = true;
			vf = -1;
		}
		if (attempt > 0 || (!vanished && now_usec(CLOCK_REALTIME) - p->scanned_usec < 1000000))
			break;
		r = pool_scan(m->ctx, p);
		if (r < 0)
			return sd_bus_error_setf(error, IOVD_ERR_FAILED, "pool %s: reading its VFs: %s", p->name,
						 iovk_ctx_get_error(m->ctx));
		p->scanned_usec = now_usec(CLOCK_REALTIME);
	}
	if (vf < 0) {
		if (o.address)
			return sd_bus_error_setf(error, IOVD_ERR_NOT_FOUND, "pool %s has no VF %s", p->name, o.address);
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
	vf_config_merge(&want, &o.vf);
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
	a->created_usec = now_usec(CLOCK_REALTIME);
	node = device_node(m, a);
	if (!a->driver || !node) {
		r = -ENOMEM;
		goto fail_undo;
	}
	r = sd_bus_message_new_method_return(msg, &reply);
	if (r >= 0)
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
	return commit_queue(m, COMMIT_ALLOCATE, msg, TAKE_PTR(reply), list, 1);

fail_undo:
	(void)allocation_put_back(m, a);
fail:
	marker_set(m, a, false);
	allocation_free(a);
	return r;
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
	a = find_by_path(m, path);
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
	 * finds the VF back already. */
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

	r = check_access(m, msg, "ReleaseOwner", &uid, error);
	if (r < 0)
		return r;
	r = sd_bus_message_read(msg, "s", &owner);
	if (r < 0)
		return r;
	r = check_name("owner", owner, error);
	if (r < 0)
		return r;
	list = calloc(m->n_allocs ?: 1, sizeof(*list));
	if (!list)
		return -ENOMEM;
	/* the caller's own only, unless root: check_owner() for each */
	for (size_t i = 0; i < m->n_allocs; i++)
		if (m->allocs[i]->committed && !m->allocs[i]->releasing && strcmp(m->allocs[i]->owner, owner) == 0 &&
		    (uid == 0 || m->allocs[i]->uid == uid))
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
	r = sd_bus_message_new_method_return(msg, &reply);
	if (r >= 0)
		r = sd_bus_message_append(reply, "u", n);
	if (r < 0) {
		free(list);
		return r;
	}
	for (uint32_t i = 0; i < n; i++)
		(void)allocation_put_back(m, list[i]);
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
static int method_open_device(sd_bus_message *msg, void *userdata, sd_bus_error *error)
{
	struct manager *m = userdata;
	struct iovk_iommu_group *g = NULL;
	_cleanup_free_ char *node = NULL;
	_cleanup_close_ int fd = -1;
	const char *path;
	char now[64];
	uid_t uid;
	struct allocation *a;
	int r;

	r = sd_bus_message_read(msg, "o", &path);
	if (r < 0)
		return r;
	a = find_by_path(m, path);
	if (!a || a->releasing)
		return sd_bus_error_setf(error, IOVD_ERR_NOT_FOUND, "no allocation %.128s%s", path,
					 a ? " (it is being released)" : "");
	r = sender_uid(m, msg, "OpenDevice", &uid, error);
	if (r < 0)
		return r;
	r = check_owner(a, uid, "OpenDevice", "open", error);
	if (r < 0)
		return r;
	if (!sd_bus_message_get_bus(msg) || !sd_bus_can_send(sd_bus_message_get_bus(msg), 'h'))
		return sd_bus_error_setf(error, IOVD_ERR_NOT_SUPPORTED,
					 "OpenDevice: the connection does not pass file descriptors");
	node = device_node(m, a);
	if (!node)
		return -ENOMEM;
	if (!node[0])
		return sd_bus_error_setf(error, IOVD_ERR_NOT_SUPPORTED,
					 "%s (VF %s, owner %s) has no VFIO device: the VF is on %s%s; allocate it with "
					 "driver vfio-pci", a->path, a->address, a->owner, a->driver[0] ? a->driver : "no driver",
					 a->iommu_group < 0 ? " and has no IOMMU group" : "");
	r = iovk_device_read_driver(m->ctx, a->address, now, sizeof(now));
	if (r < 0 || strcmp(now, a->driver) != 0)
		return sd_bus_error_setf(error, IOVD_ERR_FAILED, "%s: VF %s is %s%s, not on %s where it was allocated",
					 a->path, a->address, r < 0 ? "unreadable: " : "on ",
					 r < 0 ? iovk_ctx_get_error(m->ctx) : now[0] ? now : "no driver", a->driver);

	r = iovk_iommu_group_new(m->ctx, a->iommu_group, &g);
	if (r < 0)
		return sd_bus_error_setf(error, IOVD_ERR_FAILED, "%s: reading IOMMU group %d of VF %s: %s", a->path,
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
		return sd_bus_error_setf(error, IOVD_ERR_FAILED, "%s: Failed to open %s: %s", a->path, node, strerror(-r));
	}
	log_info("Handing VFIO group %d of VF %s (%s, owner %s) to uid %u", a->iommu_group, a->address, a->path,
		 a->owner, (unsigned)uid);
	/* sd-bus sends a duplicate: ours closes on return */
	return sd_bus_reply_method_return(msg, "h", fd);
}

/* ---- lists ----------------------------------------------------------------------------- */

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

/* VF settings as an a{sv} of Allocate's option names and types. */
static int append_vf_config(sd_bus_message *reply, const struct vf_config *c)
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

		for (size_t j = 0; j < p->n_vfs; j++)
			allocated += manager_find_by_address(m, p->vfs[j]) != NULL;
		r = sd_bus_message_open_container(reply, 'r', "sa{sv}");
		if (r >= 0)
			r = sd_bus_message_append(reply, "s", p->name);
		if (r >= 0)
			r = sd_bus_message_open_container(reply, 'a', "{sv}");
		if (r >= 0)
			r = sd_bus_message_append(reply, "{sv}{sv}{sv}{sv}", "Driver", "s", pool_driver_to_string(p->driver),
						  "VFs", "u", (uint32_t)p->n_vfs, "Allocated", "u", allocated, "Free", "u",
						  (uint32_t)p->n_vfs - allocated);
		if (r >= 0)
			r = open_entry(reply, "PFs", "as");
		if (r >= 0)
			r = sd_bus_message_append_strv(reply, p->pfs ?: (char *[]){ NULL });
		if (r >= 0)
			r = close_entry(reply);
		if (r >= 0)
			r = open_entry(reply, "VfDefaults", "a{sv}");
		if (r >= 0)
			r = append_vf_config(reply, &p->vf_defaults);
		if (r >= 0)
			r = close_entry(reply);
		if (r >= 0)
			r = sd_bus_message_close_container(reply);
		if (r >= 0)
			r = sd_bus_message_close_container(reply);
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
		node = device_node(m, a);
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
	_cleanup_free_ char *node = device_node(a->manager, a);

	if (!node)
		return -ENOMEM;
	return sd_bus_message_append(reply, "s", node);
}

static int property_vf_settings(sd_bus *bus, const char *path, const char *interface, const char *property,
				sd_bus_message *reply, void *userdata, sd_bus_error *error)
{
	struct allocation *a = userdata;

	return append_vf_config(reply, a->vf_pf ? &a->vf_applied : &(struct vf_config){});
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
	SD_BUS_METHOD_WITH_NAMES("Release", "o", SD_BUS_PARAM(allocation), "", , method_release,
				 SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("ReleaseOwner", "s", SD_BUS_PARAM(owner), "u", SD_BUS_PARAM(count),
				 method_release_owner, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD_WITH_NAMES("OpenDevice", "o", SD_BUS_PARAM(allocation), "h", SD_BUS_PARAM(fd),
				 method_open_device, SD_BUS_VTABLE_UNPRIVILEGED),
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
	SD_BUS_PROPERTY("IommuGroup", "i", NULL, offsetof(struct allocation, iommu_group), SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("NumaNode", "i", NULL, offsetof(struct allocation, numa_node), SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Driver", "s", NULL, offsetof(struct allocation, driver), SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("DeviceNode", "s", property_device_node, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Created", "t", NULL, offsetof(struct allocation, created_usec), SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("VfSettings", "a{sv}", property_vf_settings, 0, SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_PROPERTY("Drift", "s", NULL, offsetof(struct allocation, drift), SD_BUS_VTABLE_PROPERTY_CONST),
	SD_BUS_VTABLE_END,
};

static int allocation_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
			   sd_bus_error *error)
{
	struct allocation *a = find_by_path(userdata, path);

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
	m->state_dir_fd = m->lock_fd = -1;
	m->next_id = 1;
	m->version = IOVD_VERSION;
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
	commit_free(m);
	strv_free(m->drift);
	sd_bus_flush_close_unref(m->bus);
	sd_event_unref(m->event);
	config_done(&m->config);
	iovk_ctx_unref(m->ctx);
	free(m->state_dir);
	free(m->marker_dir);
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

	if (address) {
		r = sd_bus_new(&m->bus);
		if (r >= 0)
			r = sd_bus_set_address(m->bus, address);
		if (r >= 0)
			r = sd_bus_set_bus_client(m->bus, 1);
		if (r >= 0)
			r = sd_bus_start(m->bus);
	} else if (strcmp(bus_kind, "user") == 0) {
		r = sd_bus_open_user_with_description(&m->bus, "iovd");
	} else {
		r = sd_bus_open_system_with_description(&m->bus, "iovd");
	}
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
