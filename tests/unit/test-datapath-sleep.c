// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * An idle worker sleeps (lib/datapath/datapath.c, interrupt mode): two
 * ports of the test's own whose queues have an eventfd (rx_wait_fd) and
 * say whether something arrived while being armed (rx_interrupts). What
 * must hold: with nothing to do the worker arms both and sleeps (its
 * sleeps counter grows, the queues are armed while it does); a written
 * eventfd wakes it at once (many more sleeps than the 100 ms bound alone
 * would allow in the time) and a frame that came with it is forwarded; a
 * queue that says something is pending is not slept on; a stop wakes it;
 * a sleep that times out re-arms and sleeps on without polling; and a port
 * without the hooks keeps its worker polling. The first test
 * makes the sleep bound 10 s (dp_sleep_ms), so that the 100 ms timeout
 * cannot stand in for the wake it checks.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <iovkit/datapath.h>

#include "lib/datapath/datapath-internal.h"

struct fake {
	int efd;
	int pending;   /* frames to receive */
	int armed;     /* rx_interrupts(on) without its off */
	int refused;   /* arms refused because something was pending */
	int arrive_on_arm; /* frames that become pending as the queue is armed */
	int polls;     /* rx_burst calls */
	int disarms;   /* rx_interrupts(off), each after its eventfd was drained */
	uint8_t frame[64];
	struct iovec seg;
};

static unsigned fake_rx(void *port, unsigned q, struct iovk_dp_pkt *pkts, unsigned n)
{
	struct fake *f = port;

	__atomic_fetch_add(&f->polls, 1, __ATOMIC_RELAXED);
	if (__atomic_load_n(&f->pending, __ATOMIC_ACQUIRE) <= 0 || n == 0)
		return 0;
	__atomic_fetch_sub(&f->pending, 1, __ATOMIC_ACQ_REL);
	f->seg = (struct iovec){ .iov_base = f->frame, .iov_len = sizeof(f->frame) };
	pkts[0] = (struct iovk_dp_pkt){ .seg = &f->seg, .len = sizeof(f->frame), .n_seg = 1 };
	return 1;
}

static void fake_release(void *port, unsigned q)
{
}

static unsigned fake_tx(void *port, unsigned q, const struct iovk_dp_pkt *pkts, unsigned n)
{
	return n;
}

static unsigned fake_n_queues(void *port)
{
	return 1;
}

static void fake_free(void *port)
{
}

static int fake_wait_fd(void *port, unsigned q)
{
	return ((struct fake *)port)->efd;
}

static bool fake_interrupts(void *port, unsigned q, bool on)
{
	struct fake *f = port;
	uint64_t v;

	if (!on) {
		__atomic_store_n(&f->armed, 0, __ATOMIC_RELAXED);
		if (read(f->efd, &v, sizeof(v)) < 0) {
		}
		__atomic_fetch_add(&f->disarms, 1, __ATOMIC_RELEASE);
		return true;
	}
	/* a frame the device wrote just as the worker armed: seen by the arm only */
	__atomic_fetch_add(&f->pending, __atomic_exchange_n(&f->arrive_on_arm, 0, __ATOMIC_ACQ_REL), __ATOMIC_ACQ_REL);
	if (__atomic_load_n(&f->pending, __ATOMIC_ACQUIRE) > 0) {
		__atomic_fetch_add(&f->refused, 1, __ATOMIC_RELAXED);
		return false;
	}
	__atomic_store_n(&f->armed, 1, __ATOMIC_RELAXED);
	return true;
}

static const struct iovk_dp_port_ops sleepy_ops = {
	.sz = sizeof(struct iovk_dp_port_ops), .kind = "fake", .rx_burst = fake_rx, .rx_release = fake_release,
	.tx_burst = fake_tx, .n_queues = fake_n_queues, .free = fake_free, .rx_wait_fd = fake_wait_fd,
	.rx_interrupts = fake_interrupts,
};

static void *run_thread(void *dp)
{
	return (void *)(intptr_t)iovk_datapath_run(dp);
}

static struct json_object *stats(struct iovk_datapath *dp)
{
	char *json;
	struct json_object *o;

	cr_assert_eq(iovk_datapath_stats_json(dp, &json), 0);
	o = json_tokener_parse(json);
	free(json);
	cr_assert(o);
	return o;
}

static uint64_t worker_u64(struct iovk_datapath *dp, const char *key)
{
	struct json_object *o = stats(dp);
	struct json_object *w = json_object_array_get_idx(json_object_object_get(o, "workers"), 0);
	uint64_t v = json_object_get_uint64(json_object_object_get(w, key));

	json_object_put(o);
	return v;
}

static uint64_t port_tx(struct iovk_datapath *dp, unsigned port)
{
	struct json_object *o = stats(dp);
	struct json_object *p = json_object_array_get_idx(json_object_object_get(o, "ports"), port);
	uint64_t v = json_object_get_uint64(json_object_object_get(p, "tx_packets"));

	json_object_put(o);
	return v;
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* Waits up to 5 s for cond; returns whether it came. */
#define WAIT_FOR(cond)                                             \
	({                                                         \
		double until_ = now() + 5;                         \
		while (!(cond) && now() < until_)                  \
			usleep(1000);                              \
		(cond);                                            \
	})

static bool both_armed(struct fake *a, struct fake *b)
{
	return __atomic_load_n(&a->armed, __ATOMIC_RELAXED) && __atomic_load_n(&b->armed, __ATOMIC_RELAXED);
}

/*
 * Asleep again after a wake (da, db: the disarm counts before it): both
 * queues disarmed since, which drained their eventfds, and armed after
 * that. The worker counts a sleep as it wakes, before that disarm: a write
 * that came in between was drained with the wake's, and the worker then
 * slept its whole sleep with nothing to wake it. The write that follows
 * this wakes it.
 */
static bool asleep_again(struct fake *a, struct fake *b, int da, int db)
{
	return __atomic_load_n(&a->disarms, __ATOMIC_ACQUIRE) > da && __atomic_load_n(&b->disarms, __ATOMIC_ACQUIRE) > db &&
	       both_armed(a, b);
}

/* A datapath over port a (sleepy_ops) and port b (ops_b), with its context. */
static struct iovk_datapath *two_ports(struct iovk_ctx **ret_ctx, void *a, const struct iovk_dp_port_ops *ops_b, void *b)
{
	struct iovk_datapath_options opts = IOVK_DATAPATH_OPTIONS_INIT;
	struct iovk_datapath *dp;

	cr_assert_eq(iovk_ctx_new(ret_ctx), 0);
	cr_assert_eq(iovk_datapath_new(*ret_ctx, &opts, &dp), 0);
	cr_assert_eq(iovk_datapath_add_port_ops(dp, &sleepy_ops, a, "fake:a", NULL), 0);
	cr_assert_eq(iovk_datapath_add_port_ops(dp, ops_b, b, "fake:b", NULL), 0);
	return dp;
}

/* Two sleepy ports' datapath running on *th, once its worker armed both queues. */
static struct iovk_datapath *run_until_armed(struct iovk_ctx **ret_ctx, struct fake *a, struct fake *b, pthread_t *th)
{
	struct iovk_datapath *dp;

	cr_assert(a->efd >= 0 && b->efd >= 0);
	dp = two_ports(ret_ctx, a, &sleepy_ops, b);
	cr_assert_eq(pthread_create(th, NULL, run_thread, dp), 0);
	cr_assert(WAIT_FOR(both_armed(a, b)), "the idle worker never armed both queues");
	return dp;
}

Test(datapath_sleep, idle_worker_sleeps_and_wakes_on_its_eventfd)
{
	struct fake a = { .efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) }, b = { .efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) };
	struct iovk_datapath *dp;
	struct iovk_ctx *ctx;
	pthread_t th;
	void *ret;
	uint64_t one = 1, s0, n_sleeps;
	double t0, elapsed;
	int da, db;

	/* sleeps of 10 s, not 100 ms: every wake below must come from an fd */
	dp_sleep_ms = 10000;
	dp = run_until_armed(&ctx, &a, &b, &th);
	da = __atomic_load_n(&a.disarms, __ATOMIC_ACQUIRE);
	db = __atomic_load_n(&b.disarms, __ATOMIC_ACQUIRE);
	cr_assert_eq(write(b.efd, &one, sizeof(one)), (ssize_t)sizeof(one));
	cr_assert(WAIT_FOR(worker_u64(dp, "sleeps") >= 1), "the idle worker never slept");
	cr_assert_eq(worker_u64(dp, "interrupt_mode"), 1);

	/* each write wakes it, and it sleeps again after its idle rounds: with
	 * the 10 s bound, a next sleep within WAIT_FOR's 5 s is the eventfd's
	 * doing, however loaded the host (a count of sleeps per elapsed time
	 * failed at load 6) */
	for (int i = 0; i < 5; i++) {
		cr_assert(WAIT_FOR(asleep_again(&a, &b, da, db)), "write %d: the worker did not sleep again after the wake before it",
			  i);
		s0 = worker_u64(dp, "sleeps");
		da = __atomic_load_n(&a.disarms, __ATOMIC_ACQUIRE);
		db = __atomic_load_n(&b.disarms, __ATOMIC_ACQUIRE);
		cr_assert_eq(write(b.efd, &one, sizeof(one)), (ssize_t)sizeof(one));
		n_sleeps = 0;
		cr_assert(WAIT_FOR((n_sleeps = worker_u64(dp, "sleeps") - s0) >= 1),
			  "write %d: no sleep after it (%" PRIu64 "): not woken by its eventfd", i, n_sleeps);
	}

	/* a frame arrives and the eventfd fires: forwarded, and the worker sleeps again */
	__atomic_store_n(&a.pending, 1, __ATOMIC_RELEASE);
	cr_assert_eq(write(a.efd, &one, sizeof(one)), (ssize_t)sizeof(one));
	cr_assert(WAIT_FOR(port_tx(dp, 1) == 1), "the frame was not forwarded");
	/* the disarm after the wake cleared the flags: set again, it is going back to sleep */
	cr_assert(WAIT_FOR(both_armed(&a, &b)),
		  "it did not go back to sleep");

	/* frames that arrive as the worker arms (after a wake through a's fd):
	 * the arm says so and the worker polls them instead of sleeping; one
	 * that slept anyway would forward them after its 10 s, past WAIT_FOR's 5 s */
	__atomic_store_n(&b.arrive_on_arm, 3, __ATOMIC_RELEASE);
	cr_assert_eq(write(a.efd, &one, sizeof(one)), (ssize_t)sizeof(one));
	cr_assert(WAIT_FOR(port_tx(dp, 0) == 3), "frames pending while arming were not forwarded");
	cr_assert_gt(__atomic_load_n(&b.refused, __ATOMIC_RELAXED), 0);

	/* a stop wakes the sleeping worker through stop_fd: well within the 10 s sleep */
	cr_assert(WAIT_FOR(both_armed(&a, &b)),
		  "it did not go back to sleep");
	usleep(20000);
	t0 = now();
	cr_assert_eq(iovk_datapath_stop(dp), 0);
	cr_assert_eq(pthread_join(th, &ret), 0);
	elapsed = now() - t0;
	cr_assert(elapsed < 3, "stopping a sleeping worker took %.3f s", elapsed);
	cr_assert_eq((intptr_t)ret, 0);
	iovk_datapath_unref(dp);
	iovk_ctx_unref(ctx);
	close(a.efd);
	close(b.efd);
}

/* A sleep that times out re-arms and sleeps on, the queues armed: it does
 * not go back to polling with interrupts off (a frame then came without
 * its interrupt; VM case 78 failed on it), yet an arm a reset undid is
 * made again and a frame that raised nothing is taken at the re-arm. */
Test(datapath_sleep, a_timed_out_sleep_rearms_without_polling)
{
	struct fake a = { .efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) }, b = { .efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) };
	struct iovk_datapath *dp;
	struct iovk_ctx *ctx;
	pthread_t th;
	uint64_t s0, n_sleeps;
	int p0, n_polls;

	dp_sleep_ms = 10;
	dp = run_until_armed(&ctx, &a, &b, &th);
	cr_assert(WAIT_FOR(worker_u64(dp, "sleeps") >= 1), "the idle worker never slept");

	/* 300 ms of 10 ms sleeps with nothing written: timeouts only. At least
	 * 3 of them, however long a loaded host keeps the worker off its CPU
	 * (WAIT_FOR's 5 s; "3 in 300 ms" assumed it ran): a worker that left its
	 * sleep for the poll loop after a timeout polls 2048 rounds after the
	 * first, so 3 timed-out sleeps without a poll still prove it stayed */
	s0 = worker_u64(dp, "sleeps");
	p0 = __atomic_load_n(&a.polls, __ATOMIC_RELAXED);
	usleep(300000);
	n_sleeps = 0;
	cr_assert(WAIT_FOR((n_sleeps = worker_u64(dp, "sleeps") - s0) >= 3),
		  "only %" PRIu64 " timed-out sleeps (of 10 ms each, unless they are longer: no test bounds them) in 5.3 s",
		  n_sleeps);
	n_polls = __atomic_load_n(&a.polls, __ATOMIC_RELAXED) - p0;
	cr_assert_eq(n_polls, 0, "%d polls over %" PRIu64 " timed-out sleeps: the worker left its sleep", n_polls, n_sleeps);
	cr_assert(both_armed(&a, &b),
		  "a queue disarmed between timed-out sleeps");

	/* a reset cleared the arm behind the worker's back: armed again at the next timeout */
	__atomic_store_n(&a.armed, 0, __ATOMIC_RELAXED);
	cr_assert(WAIT_FOR(__atomic_load_n(&a.armed, __ATOMIC_RELAXED)), "not re-armed after a timeout");

	/* a frame that raised no interrupt: the re-arm sees it and the worker polls it */
	__atomic_store_n(&a.pending, 1, __ATOMIC_RELEASE);
	cr_assert(WAIT_FOR(port_tx(dp, 1) == 1), "a frame that came without an interrupt was not forwarded");

	cr_assert_eq(iovk_datapath_stop(dp), 0);
	cr_assert_eq(pthread_join(th, NULL), 0);
	iovk_datapath_unref(dp);
	iovk_ctx_unref(ctx);
	close(a.efd);
	close(b.efd);
}

Test(datapath_sleep, a_queue_without_an_fd_keeps_the_worker_polling)
{
	struct iovk_dp_port_ops polled = sleepy_ops;
	struct fake a = { .efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) }, b = { .efd = -1 };
	struct iovk_datapath *dp;
	struct iovk_ctx *ctx;
	pthread_t th;

	polled.rx_wait_fd = NULL;
	polled.rx_interrupts = NULL;
	dp = two_ports(&ctx, &a, &polled, &b);
	cr_assert_eq(pthread_create(&th, NULL, run_thread, dp), 0);
	usleep(200000);
	cr_assert_eq(worker_u64(dp, "interrupt_mode"), 0);
	cr_assert_eq(worker_u64(dp, "sleeps"), 0);
	cr_assert_eq(a.armed, 0);
	cr_assert_eq(iovk_datapath_stop(dp), 0);
	cr_assert_eq(pthread_join(th, NULL), 0);
	iovk_datapath_unref(dp);
	iovk_ctx_unref(ctx);
	close(a.efd);
}

/* iovk_datapath_stop() leaves its eventfd readable: a second run must not
 * take that for a new stop (it returned at once, and its workers' epoll
 * woke at once) */
Test(datapath_sleep, a_second_run_after_a_stop_forwards)
{
	struct fake a = { .efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) }, b = { .efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) };
	struct iovk_datapath *dp;
	struct iovk_ctx *ctx;
	pthread_t th;
	void *ret;

	cr_assert(a.efd >= 0 && b.efd >= 0);
	dp = two_ports(&ctx, &a, &sleepy_ops, &b);
	cr_assert_eq(pthread_create(&th, NULL, run_thread, dp), 0);
	cr_assert(WAIT_FOR(worker_u64(dp, "sleeps") >= 1), "the idle worker never slept");
	cr_assert_eq(iovk_datapath_stop(dp), 0);
	cr_assert_eq(pthread_join(th, &ret), 0);
	cr_assert_eq((intptr_t)ret, 0);

	cr_assert_eq(pthread_create(&th, NULL, run_thread, dp), 0);
	usleep(300000);
	cr_assert_eq(pthread_tryjoin_np(th, &ret), EBUSY, "the second run returned at once");
	__atomic_store_n(&a.pending, 2, __ATOMIC_RELEASE);
	cr_assert_eq(write(a.efd, &(uint64_t){ 1 }, sizeof(uint64_t)), (ssize_t)sizeof(uint64_t));
	cr_assert(WAIT_FOR(port_tx(dp, 1) == 2), "the second run did not forward");
	cr_assert_eq(iovk_datapath_stop(dp), 0);
	cr_assert_eq(pthread_join(th, &ret), 0);
	cr_assert_eq((intptr_t)ret, 0);
	iovk_datapath_unref(dp);
	iovk_ctx_unref(ctx);
	close(a.efd);
	close(b.efd);
}

/* A stop before the run (SIGTERM between iovctl's sigaction and the run)
 * ends the run at once rather than being lost. */
Test(datapath_sleep, a_stop_before_the_run_ends_it)
{
	struct fake a = { .efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) }, b = { .efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) };
	struct iovk_datapath *dp;
	struct iovk_ctx *ctx;
	pthread_t th;
	void *ret;
	int j;

	cr_assert(a.efd >= 0 && b.efd >= 0);
	dp = two_ports(&ctx, &a, &sleepy_ops, &b);
	cr_assert_eq(iovk_datapath_stop(dp), 0);
	cr_assert_eq(pthread_create(&th, NULL, run_thread, dp), 0);
	/* not WAIT_FOR: it evaluates its condition once more, and a thread joins once */
	for (double until = now() + 5; (j = pthread_tryjoin_np(th, &ret)) == EBUSY && now() < until;)
		usleep(1000);
	cr_assert_eq(j, 0, "a stop before the run was lost");
	cr_assert_eq((intptr_t)ret, 0);
	iovk_datapath_unref(dp);
	iovk_ctx_unref(ctx);
	close(a.efd);
	close(b.efd);
}

/* ---- the control thread's waits and retries ---- */

static bool never(void *arg)
{
	__atomic_fetch_add((int *)arg, 1, __ATOMIC_RELAXED);
	return false;
}

static bool always(void *arg)
{
	return true;
}

struct stopper {
	int *flag;
	unsigned after_ms;
};

static void *stop_later(void *arg)
{
	struct stopper *s = arg;

	usleep(s->after_ms * 1000);
	__atomic_store_n(s->flag, 1, __ATOMIC_RELAXED);
	return NULL;
}

/* vfio-port.c's reset and control-command waits: a device that never
 * answers must not hold a stop back for the whole wait */
Test(datapath_control, a_wait_on_the_device_ends_when_the_datapath_stops)
{
	int stopping = 0, polls = 0;
	struct stopper s = { .flag = &stopping, .after_ms = 50 };
	pthread_t th;
	double t0 = now(), elapsed;

	cr_assert_eq(pthread_create(&th, NULL, stop_later, &s), 0);
	cr_assert_eq(dp_wait_for(&stopping, 20000, never, &polls), -ECANCELED);
	elapsed = now() - t0;
	cr_assert_eq(pthread_join(th, NULL), 0);
	/* 20 s without the flag: 10 s leaves room for any load */
	cr_assert(elapsed < 10, "the wait took %.3f s after a stop at 0.05 s", elapsed);
	cr_assert_gt(polls, 0);
	/* without a flag: the timeout; a condition already true: at once */
	polls = 0;
	cr_assert_eq(dp_wait_for(NULL, 5, never, &polls), 0);
	cr_assert_eq(polls, 6); /* before each of the 5 sleeps and after the last */
	/* what came is said even when the stop came too */
	cr_assert_eq(dp_wait_for(&stopping, 1000, always, NULL), 1);
}

Test(datapath_control, a_failed_port_is_retried_ever_later)
{
	unsigned ms = 0, seq[8];

	for (int i = 0; i < 8; i++)
		seq[i] = ms = dp_retry_next_ms(ms);
	cr_assert_eq(seq[0], 1000);
	cr_assert_eq(seq[1], 2000);
	cr_assert_eq(seq[2], 4000);
	cr_assert_eq(seq[4], 16000);
	cr_assert_eq(seq[5], DP_RETRY_MAX_MS);
	cr_assert_eq(seq[7], DP_RETRY_MAX_MS);
}

/* A port that stays "failed" and whose control() is slow (as vfio's
 * device_start() waiting for a device that never answers): the control
 * thread calls it on the ticks at 0, 1 and 3 s, not every second */
struct failing {
	int calls;
	const char *state;
};

static int failing_control(void *port, bool readable)
{
	struct failing *f = port;

	__atomic_fetch_add(&f->calls, 1, __ATOMIC_RELAXED);
	return 0;
}

static const char *failing_state(void *port)
{
	return ((struct failing *)port)->state;
}

static int no_fd(void *port)
{
	return -1;
}

/* the failing port is not a struct fake: fake_rx would write past it */
static unsigned no_rx(void *port, unsigned q, struct iovk_dp_pkt *pkts, unsigned n)
{
	return 0;
}

Test(datapath_control, a_failed_port_backs_off)
{
	struct iovk_dp_port_ops ops = sleepy_ops;
	struct fake a = { .efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) };
	struct failing f = { .state = "failed" };
	struct iovk_datapath *dp;
	struct iovk_ctx *ctx;
	pthread_t th;
	int calls;

	ops.rx_burst = no_rx;
	ops.rx_wait_fd = NULL;
	ops.rx_interrupts = NULL;
	ops.control = failing_control;
	ops.control_fd = no_fd;
	ops.state = failing_state;
	dp = two_ports(&ctx, &a, &ops, &f);
	cr_assert_eq(pthread_create(&th, NULL, run_thread, dp), 0);
	cr_assert(WAIT_FOR(__atomic_load_n(&f.calls, __ATOMIC_RELAXED) >= 1), "never tried");
	/* ticks at 1, 2, 3.x s after the first: every second would be 4 tries,
	 * a load that delays ticks only makes fewer */
	usleep(3500000);
	calls = __atomic_load_n(&f.calls, __ATOMIC_RELAXED);
	cr_assert(calls <= 3, "%d tries in 3.5 s: no back-off", calls);
	cr_assert_eq(iovk_datapath_stop(dp), 0);
	cr_assert_eq(pthread_join(th, NULL), 0);
	iovk_datapath_unref(dp);
	iovk_ctx_unref(ctx);
	close(a.efd);
}
