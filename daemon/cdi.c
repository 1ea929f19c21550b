/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The CDI specs of the allocations (common/cdi.h), kept current when
 * "cdi_spec_dir" is set: <cdi_spec_dir>/iovkit-pool.json, each pool with
 * devices handed out as iovkit.org/pool=NAME with their /dev/vfio nodes
 * (every owner's: a name for a pool that serves one tenant), and
 * iovkit-allocation.json, each committed allocation as
 * iovkit.org/allocation=ID with its own nodes (one owner's name).
 *
 * Why not a write in the commit: a spec write is an fsync'd rename
 * (write_file_atomic()), as costly as the state write that group commit
 * (commit.c) shares among a whole batch; writing it per commit would spend
 * what group commit saves. A committed batch marks the spec dirty
 * (cdi_mark_dirty(), from finish_batch()), which arms a one-shot timer of
 * CDI_DELAY_USEC unless one is armed already: the batches within it share
 * one write. The timer compares a fingerprint of the committed allocations
 * (id, pool and address of each, in id order: no system call) with the one the
 * spec was written from, and rewrites the spec only when it differs. A
 * container started within that delay after an Allocate may not see the
 * device yet. A failed write is logged once per fingerprint and tried again
 * every CDI_RETRY_USEC until it succeeds or nothing is allocated differently.
 */
#include <string.h>

#include "iovd.h"
#include "../common/cdi.h"

#define CDI_DELAY_USEC (100 * 1000)      /* 100 ms: the batches within it share one write */
#define CDI_RETRY_USEC (5 * 1000 * 1000) /* 5 s: after a failed write */

/* Each endpoint a committed allocation holds, as "id pool address\n", in id order. */
static char *fingerprint(struct manager *m)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	for (size_t i = 0; i < m->n_allocs; i++) {
		const struct allocation *a = m->allocs[i];

		if (!a->committed)
			continue;
		if (a->devices)
			for (char **d = a->devices; *d; d++)
				fprintf(f, "%" PRIu64 " %s %s\n", a->id, a->pool, *d);
		else
			fprintf(f, "%" PRIu64 " %s %s\n", a->id, a->pool, a->address);
	}
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

/* The spec of the committed allocations, pool by pool, written or removed. */
static int write_spec(struct manager *m)
{
	struct cdi_pool *pools = calloc(m->config.n_pools ?: 1, sizeof(*pools));
	struct json_object *spec = NULL;
	size_t n_pools = 0;
	int r = 0;

	if (!pools)
		return -ENOMEM;
	for (size_t k = 0; k < m->config.n_pools && r >= 0; k++) {
		struct cdi_pool *p = &pools[n_pools];
		const char **addrs = NULL;
		size_t n = 0, cap = 0;

		p->name = m->config.pools[k].name;
		for (size_t i = 0; i < m->n_allocs; i++) {
			const struct allocation *a = m->allocs[i];
			char *const one[] = { a->address, NULL };

			if (!a->committed || strcmp(a->pool, p->name) != 0)
				continue;
			for (char *const *d = a->devices ?: one; *d; d++) {
				if (n == cap) {
					const char **na = realloc(addrs, (cap = cap ? cap * 2 : 8) * sizeof(*na));

					if (!na) {
						r = -ENOMEM;
						break;
					}
					addrs = na;
				}
				addrs[n++] = *d;
			}
		}
		p->addresses = addrs;
		p->n_addresses = n;
		if (n > 0)
			n_pools++;
		else
			free(addrs);
	}
	if (r >= 0)
		r = cdi_pool_spec(m->ctx, pools, n_pools, &spec);
	if (r >= 0)
		r = cdi_spec_write(m->config.cdi_spec_dir, CDI_POOL_FILE, spec);
	json_object_put(spec);
	for (size_t k = 0; k < n_pools; k++)
		free((void *)pools[k].addresses);
	free(pools);
	return r;
}

/* The spec of each committed allocation, by its id (its owner's own name for it), written or removed. */
static int write_allocation_spec(struct manager *m)
{
	struct cdi_pool *sets = calloc(m->n_allocs ?: 1, sizeof(*sets));
	char (*names)[24] = calloc(m->n_allocs ?: 1, sizeof(*names));
	const char **ones = calloc(m->n_allocs ?: 1, sizeof(*ones));
	struct json_object *spec = NULL;
	size_t n = 0;
	int r = -ENOMEM;

	if (sets && names && ones) {
		for (size_t i = 0; i < m->n_allocs; i++) {
			const struct allocation *a = m->allocs[i];
			size_t k = 0;

			if (!a->committed)
				continue;
			snprintf(names[n], sizeof(names[n]), "%" PRIu64, a->id);
			sets[n].name = names[n];
			ones[n] = a->address;
			sets[n].addresses = a->devices ? (const char *const *)a->devices : &ones[n];
			while (a->devices && a->devices[k])
				k++;
			sets[n].n_addresses = a->devices ? k : 1;
			n++;
		}
		r = cdi_allocation_spec(m->ctx, sets, n, &spec);
		if (r >= 0)
			r = cdi_spec_write(m->config.cdi_spec_dir, CDI_ALLOCATION_FILE, spec);
		json_object_put(spec);
	}
	free(sets);
	free(names);
	free(ones);
	return r;
}

/* Both files: the first failure. */
static int write_specs(struct manager *m)
{
	int r = write_spec(m), k = write_allocation_spec(m);

	return r < 0 ? r : k;
}

/* The timer armed usec from now, unless it is armed for that or sooner already (a retry is brought forward). */
static void arm(struct manager *m, uint64_t usec)
{
	uint64_t now, when = 0;
	int enabled = SD_EVENT_OFF, r;

	if (!m->cdi_timer)
		return;
	r = sd_event_now(m->event, CLOCK_MONOTONIC, &now);
	if (r >= 0 && sd_event_source_get_enabled(m->cdi_timer, &enabled) >= 0 && enabled != SD_EVENT_OFF &&
	    sd_event_source_get_time(m->cdi_timer, &when) >= 0 && when <= now + usec)
		return;
	if (r >= 0)
		r = sd_event_source_set_time(m->cdi_timer, now + usec);
	if (r >= 0)
		r = sd_event_source_set_enabled(m->cdi_timer, SD_EVENT_ONESHOT);
	if (r < 0)
		log_warning("Failed to arm the CDI spec's timer: %s; %s/%s is written at the next change", strerror(-r),
			    m->config.cdi_spec_dir, CDI_POOL_FILE);
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct manager *m = userdata;
	char *now = fingerprint(m);
	int r;

	if (!now) {
		arm(m, CDI_RETRY_USEC);
		return 0;
	}
	if (m->cdi_written && strcmp(now, m->cdi_written) == 0) {
		free(now);
		return 0;
	}
	r = write_specs(m);
	if (r < 0) {
		/* said once per set of allocations (the last one that failed); tried again later */
		if (!m->cdi_failed || strcmp(m->cdi_failed, now) != 0)
			log_warning("Failed to write the CDI specs in %s (%s, %s): %s; tried again every %u s",
				    m->config.cdi_spec_dir, CDI_POOL_FILE, CDI_ALLOCATION_FILE, strerror(-r), (unsigned)(CDI_RETRY_USEC / 1000000));
		free(m->cdi_failed);
		m->cdi_failed = now;
		arm(m, CDI_RETRY_USEC);
		return 0;
	}
	if (m->cdi_failed) {
		log_info("Wrote the CDI specs in %s", m->config.cdi_spec_dir);
		free(m->cdi_failed);
		m->cdi_failed = NULL;
	}
	free(m->cdi_written);
	m->cdi_written = now;
	return 0;
}

void cdi_mark_dirty(struct manager *m)
{
	arm(m, CDI_DELAY_USEC);
}

int cdi_start(struct manager *m)
{
	uint64_t now;
	int r;

	if (!m->config.cdi_spec_dir)
		return 0;
	r = sd_event_now(m->event, CLOCK_MONOTONIC, &now);
	if (r < 0)
		return r;
	/* the first write at once: the spec matches the state iovd starts on.
	 * Accuracy 1 ms: sd-event's default (0) is 250 ms, which made "100 ms
	 * after a commit" up to 350 ms, as the commit timer was (commit.c). */
	r = sd_event_add_time(m->event, &m->cdi_timer, CLOCK_MONOTONIC, now, 1000, on_tick, m);
	if (r < 0)
		return r;
	return sd_event_source_set_enabled(m->cdi_timer, SD_EVENT_ONESHOT);
}

void cdi_stop(struct manager *m)
{
	m->cdi_timer = sd_event_source_disable_unref(m->cdi_timer);
	free(m->cdi_written);
	m->cdi_written = NULL;
	free(m->cdi_failed);
	m->cdi_failed = NULL;
}
