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
 *  - the loop serialises the table (a snapshot: every request in the table
 *    not yet written belongs to this batch) and a writer thread does the
 *    slow part, while the loop goes on taking requests into the next batch;
 *  - when the writer is done (an eventfd), the loop sends the batch's
 *    replies and signals. A failed batch is undone first (its VFs put back,
 *    its allocations dropped) and only then is the next batch serialised:
 *    no record holds an Allocate or Release whose reply said it failed. A
 *    failover step (COMMIT_UPDATE) is not undone: the kernel has it, so
 *    the table keeps it and the next commit writes it; its error says so.
 *
 * When the next batch starts depends on what a write costs (write_usec, a
 * moving average of the writer's time, each sample capped at 4 DELAY_USEC
 * so that one checkpoint does not count for dozens of records):
 *
 *  - quick writes (below commit_pipeline_below_usec, DELAY_USEC; "pipelined"
 *    in the code): a batch is written as soon as no bus message waits (the
 *    idle-priority start below), on the loop's own thread (commit_now()),
 *    unless it is a checkpoint, which goes to the writer thread. A
 *    journal record is one fdatasync of 0.1 to 0.3 ms on the quiet ext4
 *    here; the writer thread's way added a wake-up and a hand-back to each
 *    commit, which on a busy 2-CPU machine cost as much as the write (see
 *    on_start() for the figures). Requests that come during the write wait
 *    in the socket and join the next batch;
 *  - slow writes (a loaded or rotating disk, checkpoints): a batch is
 *    written once it has as many requests as were in flight when the last
 *    write ended (the clients that are busy now), or after a wait as long
 *    as a write (write_usec, DELAY_USEC at least) from the last write's
 *    replies, whichever comes first. Without that wait the clients split
 *    into two groups that take turns, each write carrying half of them;
 *    with it one write carries all, which halves the writes when a write
 *    costs more than the requests. Waiting longer than a write would cost
 *    more than the write it saves. A lone client never waits: its batch is
 *    complete with its one request. BATCH_MAX bounds a batch.
 *
 * The wait is a timer of 1 us accuracy: sd-event's default (0) is 250 ms,
 * and the timer then fired only when something else woke the loop, so a
 * lone request after a burst of 8 could wait up to a quarter of a second.
 *
 * The start goes through a defer source of idle priority, which sd-event
 * runs only when no bus message is waiting, so a burst already in the
 * socket joins the batch.
 *
 * A failover step alone, with the writer idle and writes quick, is written
 * at once, without waiting for the idle start (commit_now() from
 * commit_queue_signal()): a VM's migration waits for it.
 */
#include <inttypes.h>
#include <pthread.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

#include "common/time-util.h"
#include "iovd.h"

#define BATCH_MAX 64
#define DELAY_USEC 500

uint64_t commit_pipeline_below_usec = DELAY_USEC;

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
	uint64_t write_usec;  /* how long a write takes: a moving average */
	bool pipelined;       /* writes are quick: a batch starts without waiting for stragglers */
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

	uint64_t n_commits, n_requests, n_pipelined;
	/* where a commit's time goes, summed for the notice at exit: from the
	 * job's start to the writer taking it, the write, and from the write's
	 * end to the loop taking its result */
	uint64_t queued_usec, written_usec; /* CLOCK_MONOTONIC, of the job in flight */
	uint64_t sum_wake_usec, sum_write_usec, sum_done_usec;
};

/* A write took t us: into the exit notice's sum and write_usec's moving
 * average. The lock is held. */
static void write_time_add(struct committer *c, uint64_t t)
{
	c->sum_write_usec += t;
	/* capped: one checkpoint (tens of ms) would end pipelining for dozens of commits */
	t = t < 4 * DELAY_USEC ? t : 4 * DELAY_USEC;
	c->write_usec = c->write_usec ? (7 * c->write_usec + t) / 8 : t;
}

static void *writer_main(void *userdata)
{
	struct manager *m = userdata;
	struct committer *c = m->commit;
	uint64_t one = 1;

	pthread_mutex_lock(&c->lock);
	for (;;) {
		uint64_t t;
		int r;

		while (!c->job && !c->quit)
			pthread_cond_wait(&c->cond, &c->lock);
		if (!c->job)
			break;
		pthread_mutex_unlock(&c->lock);
		t = now_usec(CLOCK_MONOTONIC);
		r = state_commit(m, c->text, c->len);
		pthread_mutex_lock(&c->lock);
		c->sum_wake_usec += t - c->queued_usec;
		c->written_usec = now_usec(CLOCK_MONOTONIC);
		write_time_add(c, c->written_usec - t);
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

/*
 * The allocation is on disk. Before the reply: what a caller or another
 * program can see once it has the reply (the failover intent file; the
 * marker is there since Allocate). After the replies: the signals.
 */
static void allocation_commit(struct manager *m, struct allocation *a)
{
	a->committed = true;
	failover_intent_remove(m, a);
}

static void allocation_publish(struct manager *m, struct allocation *a)
{
	(void)sd_bus_emit_object_added(m->bus, a->path);
	(void)emit_allocation_signal(m, "AllocationAdded", a);
	log_info("Allocated %s %s of pool %s to %s (%s)", a->devices ? "device" : "VF", a->address, a->pool, a->owner,
		 a->path);
}

/* Its release is on disk. Before the reply: the VF's marker goes, so that
 * libiovkit lets the caller use the VF again as soon as it has the reply. */
static void allocation_release_commit(struct manager *m, struct allocation *a)
{
	marker_set(m, a, false);
}

/* After the replies: the signals, and the VF is free again. Frees a. */
static void allocation_retire(struct manager *m, struct allocation *a)
{
	/* while manager_find_by_path() still sees it, so the signal lists its interfaces */
	(void)sd_bus_emit_object_removed(m->bus, a->path);
	(void)emit_allocation_signal(m, "AllocationRemoved", a);
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

/*
 * The reply to a request whose commit failed with r: the write's errno
 * (System.Error.EIO for a failed fdatasync, ENOSPC for a full disk), which
 * a client's sd_bus_error_get_errno() returns.
 */
static void reply_commit_failed(struct manager *m, const struct pending *p, int r)
{
	_cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
	bool put_back = false;

	if (p->kind == COMMIT_UPDATE)
		(void)error_set_errnof(&e, NULL, r,
				       "Failed to record the failover step in the state directory %s: %s; the kernel "
				       "has it, and the state file gets it with the next commit: call the step again to "
				       "be sure", m->state_dir, strerror(-r));
	else if (p->kind == COMMIT_ALLOCATE)
		(void)error_set_errnof(&e, NULL, r,
				       "Failed to record the allocation in the state directory %s: %s; nothing changed "
				       "(the VF is back as it was)", m->state_dir, strerror(-r));
	else {
		/* Release put the VFs back before the commit (manager.c) */
		for (size_t j = 0; j < p->n_allocs; j++)
			put_back = put_back || p->allocs[j]->put_back;
		(void)error_set_errnof(&e, NULL, r,
				       "Failed to record the release in the state directory %s: %s; the allocation "
				       "stays%s: call Release again", m->state_dir, strerror(-r),
				       put_back ? ", but its VF was put back as it was before it (VF settings and "
						  "driver)" : "");
	}
	(void)sd_bus_reply_method_error(p->call, &e);
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
		/*
		 * Every reply first, then the signals: InterfacesAdded lists
		 * all 14 properties of an allocation, and sd-bus builds it in
		 * about 90,000 instructions (callgrind), more than half of all
		 * that iovd spends on an Allocate. Sent before the replies, a
		 * batch's signals held back every reply after the first. The
		 * wire order changes, not what a caller finds: what is outside
		 * iovd (marker and intent files) is done before the replies,
		 * and a call about the new object after its reply is answered
		 * after the signals, with the object published.
		 */
		for (size_t i = 0; i < b->n; i++)
			for (size_t j = 0; j < b->items[i].n_allocs; j++)
				if (b->items[i].kind == COMMIT_ALLOCATE)
					allocation_commit(m, b->items[i].allocs[j]);
				else if (b->items[i].kind == COMMIT_RELEASE)
					allocation_release_commit(m, b->items[i].allocs[j]);
		for (size_t i = 0; i < b->n; i++)
			(void)sd_bus_send(NULL, b->items[i].reply, NULL);
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
			if (p->signal)
				(void)sd_bus_send(NULL, p->signal, NULL);
		} else
			reply_commit_failed(m, p, r);
		sd_bus_message_unref(p->call);
		sd_bus_message_unref(p->reply);
		sd_bus_message_unref(p->signal);
		free(p->allocs);
	}
	free(b->items);
	*b = (struct batch){};
}

/* Gives the writer thread the open batch, serialised as text (taken). */
static void commit_hand_off(struct manager *m, char *text, size_t len)
{
	struct committer *c = m->commit;

	c->writing = c->open;
	c->open = (struct batch){};
	c->busy = true;
	pthread_mutex_lock(&c->lock);
	free(c->text);
	c->text = text;
	c->len = len;
	c->job = true;
	c->queued_usec = now_usec(CLOCK_MONOTONIC);
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
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
	commit_hand_off(m, text, len);
}

static void commit_now(struct manager *m);

/*
 * Quick writes (pipelined) are written here, on the loop's thread: the
 * writer thread's way cost a wake-up and a hand-back per commit, and on a
 * busy 2-CPU machine those took as long as the write itself (the exit
 * notice's split: 26-41 us until the writer took a job, 40-56 us until the
 * loop took its result, against 250-480 us writing, with 8 clients). 8
 * clients' allocate+release cycles on ext4, interleaved, 7 rounds each
 * (bench/iovd-bench): median 3,844 cycles/s written here against 2,927
 * through the writer, p99 of a cycle 3.7-5.4 ms against 4.4-7.3 ms. The
 * loop does not take requests during the write, but the requests waiting
 * in the socket join the next batch all the same. Slow writes go through
 * the writer, which batches stragglers (maybe_start()).
 */
static int on_start(sd_event_source *s, void *userdata)
{
	struct manager *m = userdata;
	struct committer *c = m->commit;

	if (c->pipelined && !c->busy && c->open.n > 0)
		commit_now(m);
	else
		commit_start(m);
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
	uint64_t now, wait;
	int enabled = SD_EVENT_OFF;

	if (c->busy || c->open.n == 0)
		return;
	if (c->open.n >= c->target || c->open.n >= BATCH_MAX || c->pipelined) {
		if (sd_event_source_set_enabled(c->start_source, SD_EVENT_ONESHOT) < 0)
			commit_start(m);
		return;
	}
	(void)sd_event_source_get_enabled(c->timer_source, &enabled);
	if (enabled != SD_EVENT_OFF)
		return;
	/* waiting longer than a write takes costs more than the write it saves */
	wait = c->write_usec > DELAY_USEC ? c->write_usec : DELAY_USEC;
	if (sd_event_now(m->event, CLOCK_MONOTONIC, &now) < 0 ||
	    sd_event_source_set_time(c->timer_source, now + wait) < 0 ||
	    sd_event_source_set_enabled(c->timer_source, SD_EVENT_ONESHOT) < 0)
		commit_start(m);
}

static int on_done(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct manager *m = userdata;
	struct committer *c = m->commit;
	struct batch done;
	uint64_t n;
	int r;

	if (read(fd, &n, sizeof(n)) < 0)
		return 0; /* EAGAIN: a wakeup commit_flush() already took */
	pthread_mutex_lock(&c->lock);
	r = c->result;
	c->sum_done_usec += now_usec(CLOCK_MONOTONIC) - c->written_usec;
	c->pipelined = c->write_usec < commit_pipeline_below_usec;
	pthread_mutex_unlock(&c->lock);
	done = c->writing;
	c->writing = (struct batch){};
	c->busy = false;
	c->target = done.n + c->open.n;
	/* the disk gets the next batch before this one's replies go out; a
	 * failed batch is undone first, as the next record must not hold it */
	if (r >= 0 && c->pipelined) {
		commit_start(m);
		c->n_pipelined += c->busy;
	}
	finish_batch(m, &done, r);
	maybe_start(m);
	return 0;
}

/*
 * A failover step alone, with the writer idle and writes quick: written
 * here, on the loop's thread, and answered. The step is waited for by a
 * VM's migration (issue 11), and the writer thread's way costs two
 * hand-offs between threads and a turn of the loop at idle priority: in
 * the test guest (one vCPU under TCG) ~1 ms of a PrepareMigration, more
 * than the write (~0.1 ms, a journal record on tmpfs). A quick write
 * (write_usec below commit_pipeline_below_usec) blocks the loop no longer
 * than that; a slow disk goes through the writer as before. The same
 * state_commit(), so the reply still follows the fdatasync.
 *
 * Only a journal record is written here. A checkpoint (the record does not
 * fit, about every thousandth commit; or the journal took no records since
 * one failed) replaces allocations.json: two fsyncs and a rename, 0.7 ms at
 * the median and 2 to 20 ms at times on the ext4 here, for which the loop
 * would answer nothing, not even a property read. It goes to the writer
 * thread. The one exception: the record written here fails, and
 * state_commit() makes the checkpoint that takes the commit at once, on
 * this thread (an I/O error: rare, and the commits after it go through
 * the writer until a record succeeds).
 */
static void commit_now(struct manager *m)
{
	struct committer *c = m->commit;
	uint64_t t;
	char *text;
	size_t len;
	int r;

	r = state_serialize(m, &text, &len);
	if (r >= 0 && !journal_fits(m, len)) {
		(void)sd_event_source_set_enabled(c->timer_source, SD_EVENT_OFF);
		commit_hand_off(m, text, len);
		return;
	}
	if (r >= 0) {
		/* what the writer measures: the write alone */
		t = now_usec(CLOCK_MONOTONIC);
		r = state_commit(m, text, len);
		free(text);
		t = now_usec(CLOCK_MONOTONIC) - t;
		pthread_mutex_lock(&c->lock);
		/* the exit notice's split: all of it the write (no wake-up, no hand-back) */
		write_time_add(c, t);
		c->pipelined = c->write_usec < commit_pipeline_below_usec;
		pthread_mutex_unlock(&c->lock);
	}
	c->target = 1;
	finish_batch(m, &c->open, r);
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
	if (kind == COMMIT_UPDATE && b->n == 1 && !c->busy && c->pipelined)
		commit_now(m);
	else
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
	c->pipelined = true;
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
	/* ahead of the bus (SD_EVENT_PRIORITY_NORMAL): sd-event dispatches one
	 * source a turn, and at the same priority a finished write could wait
	 * for a bus message that became ready with it; the next write and this
	 * one's replies waited with it */
	if (r >= 0)
		r = sd_event_source_set_priority(c->done_source, SD_EVENT_PRIORITY_IMPORTANT);
	if (r >= 0)
		r = sd_event_add_time(m->event, &c->timer_source, CLOCK_MONOTONIC, 0, 1, on_timer, m);
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
		log_msg(LOG_NOTICE,
			"Committed %" PRIu64 " requests in %" PRIu64 " commits (%" PRIu64 " started before the replies of "
			"the one before; a write takes %" PRIu64 " us, a moving average; a commit's mean: %" PRIu64
			" us until the writer took it, %" PRIu64 " us writing, %" PRIu64 " us until the loop took its "
			"result)",
			c->n_requests, c->n_commits, c->n_pipelined, c->write_usec, c->sum_wake_usec / c->n_commits,
			c->sum_write_usec / c->n_commits, c->sum_done_usec / c->n_commits);
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
