/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Group commit: a reply to Allocate, Release or ReleaseOwner is sent only
 * once the state file that includes its change is on disk.
 *
 * One commit (a journal record and its fdatasync, journal.c; or the state
 * file replaced at a checkpoint) costs 0.1 to 15 ms on the ext4 here, so one
 * commit per request would cap iovd at a few hundred to a few thousand
 * requests per second. Instead requests join a batch, and one write commits
 * the whole batch:
 *
 *  - a batch is written once it has as many requests as were in flight when
 *    the last write ended (the clients that are busy now), or DELAY_USEC
 *    after its first request, whichever comes first. Without that wait the
 *    clients split into two groups that take turns, each write carrying half
 *    of them; with it one write carries all. A lone client never waits:
 *    its batch is complete with its one request. BATCH_MAX bounds a batch;
 *  - the loop serialises the table (a snapshot: every request in the table
 *    not yet written belongs to this batch) and a writer thread does the
 *    slow part, while the loop goes on taking requests into the next batch;
 *  - when the writer is done (an eventfd), the loop sends the batch's
 *    replies and signals.
 *
 * The start goes through a defer source of idle priority, which sd-event
 * runs only when no bus message is waiting, so a burst already in the
 * socket joins the batch.
 */
#include <inttypes.h>
#include <pthread.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "iovd.h"

#define BATCH_MAX 64
#define DELAY_USEC 500

struct pending {
	enum commit_kind kind;
	sd_bus_message *call;
	sd_bus_message *reply;
	sd_bus_message *signal; /* after the reply, NULL none */
	struct allocation **allocs;
	size_t n_allocs;
};

struct batch {
	struct pending *items;
	size_t n, n_alloc;
};

struct committer {
	struct batch open;    /* taking requests */
	struct batch writing; /* on its way to disk */
	bool busy;            /* the writer thread has a job */
	size_t target;        /* requests in flight when the last write ended */
	sd_event_source *start_source, *done_source, *timer_source;
	int done_fd;          /* eventfd: the writer finished a job */

	pthread_t thread;
	bool thread_started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	char *text; /* the job, owned by the thread while job is set */
	size_t len;
	bool job, quit;
	int result;

	uint64_t n_commits, n_requests;
};

static void *writer_main(void *userdata)
{
	struct manager *m = userdata;
	struct committer *c = m->commit;
	uint64_t one = 1;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		int r;

		while (!c->job && !c->quit)
			pthread_cond_wait(&c->cond, &c->lock);
		if (!c->job)
			break;
		pthread_mutex_unlock(&c->lock);
		r = state_commit(m, c->text, c->len);
		pthread_mutex_lock(&c->lock);
		c->result = r;
		c->job = false;
		pthread_cond_broadcast(&c->cond);
		if (write(c->done_fd, &one, sizeof(one)) < 0)
			log_error("Failed to signal a finished commit: %m");
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* ---- what a commit makes true ---------------------------------------------------- */

static int emit_allocation_signal(struct manager *m, const char *member, const struct allocation *a)
{
	return sd_bus_emit_signal(m->bus, IOVD_PATH, IOVD_MANAGER_IFACE, member, "osss", a->path, a->pool, a->owner,
				  a->address);
}

/* The allocation is on disk: show it on the bus. Its marker is there since Allocate. */
static void allocation_publish(struct manager *m, struct allocation *a)
{
	a->committed = true;
	failover_intent_remove(m, a);
	(void)sd_bus_emit_object_added(m->bus, a->path);
	(void)emit_allocation_signal(m, "AllocationAdded", a);
	log_info("Allocated %s %s of pool %s to %s (%s)", a->devices ? "device" : "VF", a->address, a->pool, a->owner,
		 a->path);
}

/* Its release is on disk: the VF is free again. Frees a. */
static void allocation_retire(struct manager *m, struct allocation *a)
{
	/* while manager_find_by_path() still sees it, so the signal lists its interfaces */
	(void)sd_bus_emit_object_removed(m->bus, a->path);
	(void)emit_allocation_signal(m, "AllocationRemoved", a);
	marker_set(m, a, false);
	log_info("Released %s %s of pool %s from %s (%s)", a->devices ? "device" : "VF", a->address, a->pool, a->owner,
		 a->path);
	manager_remove_allocation(m, a);
}

/* Undoes an Allocate whose commit failed (or that failed after its changes). */
static void allocation_undo(struct manager *m, struct allocation *a)
{
	(void)allocation_put_back(m, a);
	marker_set(m, a, false);
}

/* Sends the replies of a written batch (r >= 0) or undoes it (r < 0). */
static void finish_batch(struct manager *m, struct batch *b, int r)
{
	struct committer *c = m->commit;

	if (r >= 0) {
		c->n_commits++;
		c->n_requests += b->n;
		/* the CDI spec follows (cdi.c) the allocations; a failover step changes none */
		for (size_t i = 0; i < b->n; i++)
			if (b->items[i].kind != COMMIT_UPDATE) {
				cdi_mark_dirty(m);
				break;
			}
	}
	for (size_t i = 0; i < b->n; i++) {
		struct pending *p = &b->items[i];

		for (size_t j = 0; j < p->n_allocs; j++) {
			struct allocation *a = p->allocs[j];

			if (p->kind == COMMIT_UPDATE)
				continue;
			if (p->kind == COMMIT_ALLOCATE && r >= 0)
				allocation_publish(m, a);
			else if (p->kind == COMMIT_ALLOCATE) {
				allocation_undo(m, a);
				manager_remove_allocation(m, a);
			} else if (r >= 0)
				allocation_retire(m, a);
			else
				a->releasing = false;
		}
		if (r >= 0) {
			(void)sd_bus_send(NULL, p->reply, NULL);
			if (p->signal)
				(void)sd_bus_send(NULL, p->signal, NULL);
		} else if (p->kind == COMMIT_UPDATE)
			(void)sd_bus_reply_method_errorf(p->call, IOVD_ERR_FAILED,
							 "Failed to record the failover step in the state directory %s: %s; "
							 "the kernel has it, the state file not: call the step again",
							 m->state_dir, strerror(-r));
		else if (p->kind == COMMIT_ALLOCATE)
			(void)sd_bus_reply_method_errorf(p->call, IOVD_ERR_FAILED,
							 "Failed to record the allocation in the state directory %s: %s; "
							 "nothing changed (the VF is back as it was)", m->state_dir,
							 strerror(-r));
		else {
			/* Release put the VFs back before the commit (manager.c) */
			bool put_back = false;

			for (size_t j = 0; j < p->n_allocs; j++)
				put_back = put_back || p->allocs[j]->put_back;
			(void)sd_bus_reply_method_errorf(p->call, IOVD_ERR_FAILED,
							 "Failed to record the release in the state directory %s: %s; the "
							 "allocation stays%s: call Release again", m->state_dir,
							 strerror(-r),
							 put_back ? ", but its VF was put back as it was before it (VF "
								    "settings and driver)" : "");
		}
		sd_bus_message_unref(p->call);
		sd_bus_message_unref(p->reply);
		sd_bus_message_unref(p->signal);
		free(p->allocs);
	}
	free(b->items);
	*b = (struct batch){};
}

static void commit_start(struct manager *m)
{
	struct committer *c = m->commit;
	char *text;
	size_t len;
	int r;

	if (c->busy || c->open.n == 0)
		return;
	(void)sd_event_source_set_enabled(c->timer_source, SD_EVENT_OFF);
	r = state_serialize(m, &text, &len);
	if (r < 0) {
		finish_batch(m, &c->open, r);
		return;
	}
	c->writing = c->open;
	c->open = (struct batch){};
	c->busy = true;
	pthread_mutex_lock(&c->lock);
	free(c->text);
	c->text = text;
	c->len = len;
	c->job = true;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static int on_start(sd_event_source *s, void *userdata)
{
	commit_start(userdata);
	return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	commit_start(userdata);
	return 0;
}

/* Starts the open batch when it is complete, or arms the timer that ends the wait. */
static void maybe_start(struct manager *m)
{
	struct committer *c = m->commit;
	uint64_t now;
	int enabled = SD_EVENT_OFF;

	if (c->busy || c->open.n == 0)
		return;
	if (c->open.n >= c->target || c->open.n >= BATCH_MAX) {
		if (sd_event_source_set_enabled(c->start_source, SD_EVENT_ONESHOT) < 0)
			commit_start(m);
		return;
	}
	(void)sd_event_source_get_enabled(c->timer_source, &enabled);
	if (enabled != SD_EVENT_OFF)
		return;
	if (sd_event_now(m->event, CLOCK_MONOTONIC, &now) < 0 ||
	    sd_event_source_set_time(c->timer_source, now + DELAY_USEC) < 0 ||
	    sd_event_source_set_enabled(c->timer_source, SD_EVENT_ONESHOT) < 0)
		commit_start(m);
}

static int on_done(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct manager *m = userdata;
	struct committer *c = m->commit;
	uint64_t n;
	int r;

	if (read(fd, &n, sizeof(n)) < 0)
		return 0; /* EAGAIN: a wakeup commit_flush() already took */
	pthread_mutex_lock(&c->lock);
	r = c->result;
	pthread_mutex_unlock(&c->lock);
	c->busy = false;
	c->target = c->writing.n + c->open.n;
	finish_batch(m, &c->writing, r);
	maybe_start(m);
	return 0;
}

int commit_queue(struct manager *m, enum commit_kind kind, sd_bus_message *call, sd_bus_message *reply,
		 struct allocation **allocs, size_t n_allocs)
{
	return commit_queue_signal(m, kind, call, reply, NULL, allocs, n_allocs);
}

int commit_queue_signal(struct manager *m, enum commit_kind kind, sd_bus_message *call, sd_bus_message *reply,
			sd_bus_message *signal, struct allocation **allocs, size_t n_allocs)
{
	struct committer *c = m->commit;
	struct batch *b = &c->open;

	if (b->n == b->n_alloc) {
		size_t na = b->n_alloc ? b->n_alloc * 2 : 16;
		struct pending *items = realloc(b->items, na * sizeof(*items));

		if (!items) {
			free(allocs);
			sd_bus_message_unref(reply);
			sd_bus_message_unref(signal);
			return -ENOMEM;
		}
		b->items = items;
		b->n_alloc = na;
	}
	b->items[b->n++] = (struct pending){
		.kind = kind,
		.call = sd_bus_message_ref(call),
		.reply = reply,
		.signal = signal,
		.allocs = allocs,
		.n_allocs = n_allocs,
	};
	if (kind == COMMIT_RELEASE)
		for (size_t i = 0; i < n_allocs; i++)
			allocs[i]->releasing = true;
	maybe_start(m);
	/* handled: the reply comes with the commit */
	return 1;
}

/* At exit: waits for the write in flight, then commits what is left. */
void commit_flush(struct manager *m)
{
	struct committer *c = m->commit;
	char *text;
	size_t len;
	uint64_t n;
	int r;

	if (!c)
		return;
	if (c->busy) {
		pthread_mutex_lock(&c->lock);
		while (c->job)
			pthread_cond_wait(&c->cond, &c->lock);
		r = c->result;
		pthread_mutex_unlock(&c->lock);
		(void)!read(c->done_fd, &n, sizeof(n));
		c->busy = false;
		finish_batch(m, &c->writing, r);
	}
	if (c->open.n > 0) {
		r = state_serialize(m, &text, &len);
		if (r >= 0) {
			r = state_commit(m, text, len);
			free(text);
		}
		finish_batch(m, &c->open, r);
	}
	/* a stopped iovd leaves allocations.json alone current */
	if (journal_records(m) > 0 && state_serialize(m, &text, &len) >= 0) {
		(void)state_checkpoint(m, text, len);
		free(text);
	}
}

int commit_init(struct manager *m)
{
	struct committer *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	m->commit = c;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	c->target = 1;
	c->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->done_fd < 0)
		return negative_errno();
	r = sd_event_add_defer(m->event, &c->start_source, on_start, m);
	if (r >= 0)
		r = sd_event_source_set_priority(c->start_source, SD_EVENT_PRIORITY_IDLE);
	if (r >= 0)
		r = sd_event_source_set_enabled(c->start_source, SD_EVENT_OFF);
	if (r >= 0)
		r = sd_event_add_io(m->event, &c->done_source, c->done_fd, EPOLLIN, on_done, m);
	if (r >= 0)
		r = sd_event_add_time(m->event, &c->timer_source, CLOCK_MONOTONIC, 0, 0, on_timer, m);
	if (r >= 0)
		r = sd_event_source_set_enabled(c->timer_source, SD_EVENT_OFF);
	if (r < 0)
		return r;
	r = -pthread_create(&c->thread, NULL, writer_main, m);
	if (r < 0)
		return r;
	c->thread_started = true;
	return 0;
}

void commit_free(struct manager *m)
{
	struct committer *c = m->commit;

	if (!c)
		return;
	if (c->thread_started) {
		pthread_mutex_lock(&c->lock);
		c->quit = true;
		pthread_cond_broadcast(&c->cond);
		pthread_mutex_unlock(&c->lock);
		pthread_join(c->thread, NULL);
	}
	if (c->n_commits)
		log_msg(LOG_NOTICE, "Committed %" PRIu64 " requests in %" PRIu64 " commits", c->n_requests, c->n_commits);
	/* nothing is left in the batches after commit_flush() */
	free(c->open.items);
	free(c->writing.items);
	free(c->text);
	sd_event_source_unref(c->start_source);
	sd_event_source_unref(c->done_source);
	sd_event_source_unref(c->timer_source);
	closep(&c->done_fd);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c);
	m->commit = NULL;
}
