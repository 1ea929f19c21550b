/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Reconciliation at start: what the state file says against what sysfs
 * shows. Findings ("drift") are logged, kept for the Drift properties, and
 * change nothing on the host.
 */
#include <stdarg.h>
#include <string.h>

#include "iovd.h"

/* Drift logged one line each up to this many; all of it is in the Drift property. */
#define DRIFT_LOG_MAX 64

/* Adds line (taken) to the Drift property; logs it while there are few. */
static void drift_add(struct manager *m, char *line)
{
	if (m->n_drift < DRIFT_LOG_MAX)
		log_warning("Drift: %s", line);
	if (m->n_drift + 2 > m->drift_cap) {
		size_t cap = m->drift_cap ? m->drift_cap * 2 : 16;
		char **n = realloc(m->drift, cap * sizeof(char *));

		if (!n) {
			free(line);
			return;
		}
		m->drift = n;
		m->drift_cap = cap;
	}
	m->drift[m->n_drift++] = line;
	m->drift[m->n_drift] = NULL;
}

static void allocation_drift(struct manager *m, struct allocation *a, const char *format, ...) _printf_(3, 4);
static void allocation_drift(struct manager *m, struct allocation *a, const char *format, ...)
{
	_cleanup_free_ char *s = NULL;
	char *joined, *line;
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
	if (asprintf(&line, "%s (VF %s, owner %s): %s", a->path, a->address, a->owner, s) >= 0)
		drift_add(m, line);
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

		for (size_t j = 0; j < p->n_devices; j++) {
			struct allocation *a = manager_find_by_address(m, p->devices[j]);

			if (a && strcmp(a->pool, p->name) == 0 && strcmp(a->address, p->devices[j]) == 0)
				in_pool[manager_find_id(m, a->id)] = true;
		}
		for (size_t j = 0; j < p->n_vfs; j++) {
			struct allocation *a = manager_find_by_address(m, p->vfs[j]);

			if (a && strcmp(a->pool, p->name) == 0)
				in_pool[manager_find_id(m, a->id)] = true;
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
			allocation_drift(m, a, "the %s is not among the %s of pool %s any more", a->devices ? "device" : "VF",
					 a->devices ? "devices" : "VFs", a->pool);
		a->iommu_group = iovk_device_get_iommu_group(d);
		a->numa_node = iovk_device_get_numa_node(d);
		drv = iovk_device_get_driver(d) ?: "";
		if (a->devices) {
			char what[1024];

			devpool_drift(m, a, what, sizeof(what));
			if (what[0])
				allocation_drift(m, a, "%s", what);
		} else if (!iovk_device_get_physfn(d))
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
