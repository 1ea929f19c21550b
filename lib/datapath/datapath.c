/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The forwarder: ports in pairs, poll-mode workers, the control thread.
 *
 * Work is cut into units, one per (port, rx queue): take a burst from that
 * queue, give it to the paired port's tx queue, give the burst back. Units
 * are dealt round-robin to the workers, so several queue pairs share a
 * worker and several workers share the ports. A busy worker makes no
 * system call of its own: the ports' rings carry everything (see
 * vhost-port.c), and counters are plain per-queue words added once per
 * burst (relaxed atomics: a tx queue may be fed by two workers).
 *
 * An idle one may sleep, as DPDK's l3fwd-power does: after DP_IDLE_POLLS
 * rounds in which none of its queues had anything, a worker whose every
 * queue has an interrupt fd (rx_wait_fd: the vfio port's MSI-X eventfds,
 * a tap's own fd) arms them all and waits in epoll_wait() until one fires,
 * at most DP_SLEEP_MS, then polls again. A queue that says something came
 * while it was being armed keeps the worker polling. With one queue
 * without an fd (vhost-user, af-xdp) the worker always polls.
 *
 * The control thread (iovk_datapath_run()'s caller) owns the sockets: the
 * vhost-user ones, a one-second tick for reconnects and for reporting rings
 * the workers found broken, and the control socket that answers "stats".
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include <iovkit/vfio.h>

#include "../internal.h"
#include "datapath-internal.h"

struct dp_qstats {
	uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes, tx_dropped;
	uint64_t rx_errors, rx_dropped, tx_errors; /* sums only */
	uint64_t reported_broken; /* control thread: n_broken already logged */
} __attribute__((aligned(64)));

struct dp_port {
	struct iovk_dp_port_ops ops;
	void *impl;
	char *name;
	unsigned n_queues;
	struct dp_qstats *qs;
	int watched_fd; /* control thread: what epoll has for this port */
	/* control thread: a "failed" port is tried again on the first tick from
	 * retry_at (CLOCK_MONOTONIC ms), and rests retry_ms longer after each
	 * failure: a device that hangs its set-up holds the thread that long
	 * only now and then, not every second */
	uint64_t retry_at;
	unsigned retry_ms;
};

struct dp_unit {
	struct dp_port *rx, *tx;
	unsigned rxq, txq;
};

struct dp_worker {
	struct iovk_datapath *dp;
	pthread_t thread;
	bool thread_started;
	int cpu; /* -1: not pinned */
	struct dp_unit *units;
	unsigned n_units;
	int sleep_fd;         /* epoll over the units' rx_wait_fd and stop_fd; -1: always polls */
	bool interrupt_mode;  /* had a sleep_fd: kept for the counters after the run closed it */
	uint64_t sleeps;      /* times it waited for an interrupt */
	uint64_t packets;     /* forwarded (received) */
	uint64_t busy_cycles; /* TSC cycles in bursts that moved packets */
	uint64_t cycles;      /* TSC cycles since the worker started */
} __attribute__((aligned(64)));

struct iovk_datapath {
	int n_ref;
	struct iovk_ctx *ctx;
	struct dp_port *ports;
	unsigned n_ports;
	unsigned *cpus;
	size_t n_cpus;
	char *control_path;
	int control_fd;
	unsigned burst;
	int stop_fd;
	int stopping;
	bool running;
	struct dp_worker *workers;
	unsigned n_workers;
};

/* calloc() for the cache-line aligned counters: workers write them, so no two share a line. */
static void *calloc_lines(size_t n, size_t size)
{
	size_t bytes = (n * size + 63) & ~(size_t)63;
	void *p;

	if (n && size > SIZE_MAX / n - 64)
		return NULL;
	p = aligned_alloc(64, bytes ? bytes : 64);
	if (p)
		memset(p, 0, bytes);
	return p;
}

/* ---- port specs ---- */

static const char *const kind_names[] = {
	[IOVK_DP_PORT_VHOST_USER] = "vhost-user",
	[IOVK_DP_PORT_TAP] = "tap",
	[IOVK_DP_PORT_AF_XDP] = "af-xdp",
	[IOVK_DP_PORT_VFIO] = "vfio",
};

_public_ const char *iovk_dp_port_kind_to_string(enum iovk_dp_port_kind kind)
{
	return (unsigned)kind < ELEMENTSOF(kind_names) ? kind_names[kind] : NULL;
}

static int parse_uint(const char *s, unsigned min, unsigned max, unsigned *ret)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*ret = (unsigned)v;
	return 0;
}

/* The first struct iovk_dp_port_spec with a sz: callers built against it
 * pass this sz, and must keep working when members are appended. */
#define PORT_SPEC_SZ_V1 offsetofend(struct iovk_dp_port_spec, vfio_mode)

_public_ int iovk_dp_port_spec_parse(const char *text, struct iovk_dp_port_spec *ret_spec)
{
	struct iovk_dp_port_spec spec = { .sz = sizeof(spec), .queues = 1 };
	_cleanup_free_ char *copy = NULL;
	struct iovk_pci_addr addr;
	const char *colon;
	char *opt, *save = NULL, *name;
	bool found = false;

	assert_return(text, -EINVAL);
	assert_return(ret_spec, -EINVAL);
	/* no context to name the error in: the caller's -EINVAL it is */
	if (opts_valid(NULL, ret_spec, ret_spec->sz, PORT_SPEC_SZ_V1, sizeof(spec), "iovk_dp_port_spec",
		       "IOVK_DP_PORT_SPEC_INIT") < 0)
		return -EINVAL;
	colon = strchr(text, ':');
	if (!colon)
		return -EINVAL;
	for (unsigned k = 0; k < ELEMENTSOF(kind_names); k++)
		if (strlen(kind_names[k]) == (size_t)(colon - text) && !strncmp(text, kind_names[k], (size_t)(colon - text))) {
			spec.kind = (enum iovk_dp_port_kind)k;
			found = true;
		}
	if (!found)
		return -EINVAL;
	copy = strdup(colon + 1);
	if (!copy)
		return -ENOMEM;
	name = strtok_r(copy, ",", &save);
	if (!name || colon[1] == ',' || strlen(name) >= sizeof(spec.name))
		return -EINVAL;
	memcpy(spec.name, name, strlen(name) + 1);
	/* a malformed address is the caller's error, found here rather than
	 * after VFIO's container was opened for it */
	if (spec.kind == IOVK_DP_PORT_VFIO && iovk_pci_addr_parse(spec.name, &addr) < 0)
		return -EINVAL;
	while ((opt = strtok_r(NULL, ",", &save))) {
		bool vhost = spec.kind == IOVK_DP_PORT_VHOST_USER, xdp = spec.kind == IOVK_DP_PORT_AF_XDP;

		if (vhost && !strcmp(opt, "client"))
			spec.client = true;
		else if (xdp && !strcmp(opt, "zero-copy"))
			spec.zero_copy = true;
		else if ((vhost || spec.kind == IOVK_DP_PORT_VFIO) && !strncmp(opt, "queues=", 7)) {
			if (parse_uint(opt + 7, 1, IOVK_DP_MAX_QUEUES, &spec.queues) < 0)
				return -EINVAL;
		} else if (spec.kind == IOVK_DP_PORT_VFIO && !strncmp(opt, "mode=", 5)) {
			enum iovk_vfio_mode mode;

			if (iovk_vfio_mode_from_string(opt + 5, &mode) < 0)
				return -EINVAL;
			spec.vfio_mode = (int)mode;
		} else if (xdp && !strncmp(opt, "queue=", 6)) {
			if (parse_uint(opt + 6, 0, 1023, &spec.queue) < 0)
				return -EINVAL;
		} else
			return -EINVAL;
	}
	/* Back in the caller's layout, no more than the sz it knows; what lies
	 * past ours is zero (checked above) and stays so. */
	result_store(ret_spec, &spec, sizeof(spec));
	return 0;
}

/* ---- the object ---- */

_public_ int iovk_datapath_new(struct iovk_ctx *ctx, const struct iovk_datapath_options *opts,
			       struct iovk_datapath **ret_dp)
{
	struct iovk_datapath *dp;

	assert_return(ctx, -EINVAL);
	assert_return(ret_dp, -EINVAL);
	if (opts && opts->sz < offsetofend(struct iovk_datapath_options, burst))
		return -EINVAL;
	if (opts && (opts->burst > DP_BURST_MAX || (opts->n_cpus && !opts->cpus)))
		return -EINVAL;
	dp = calloc(1, sizeof(*dp));
	if (!dp)
		return -ENOMEM;
	dp->n_ref = 1;
	dp->ctx = iovk_ctx_ref(ctx);
	dp->control_fd = -1;
	dp->burst = opts && opts->burst ? opts->burst : 32;
	dp->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (dp->stop_fd < 0)
		goto oom;
	if (opts && opts->n_cpus) {
		dp->cpus = malloc(opts->n_cpus * sizeof(unsigned));
		if (!dp->cpus)
			goto oom;
		memcpy(dp->cpus, opts->cpus, opts->n_cpus * sizeof(unsigned));
		dp->n_cpus = opts->n_cpus;
	}
	if (opts && opts->control_path && !(dp->control_path = strdup(opts->control_path)))
		goto oom;
	*ret_dp = dp;
	return 0;
oom:
	iovk_datapath_unref(dp);
	return -ENOMEM;
}

static void workers_free(struct iovk_datapath *dp);

static void datapath_free(struct iovk_datapath *dp)
{
	for (unsigned i = 0; i < dp->n_ports; i++) {
		dp->ports[i].ops.free(dp->ports[i].impl);
		free(dp->ports[i].name);
		free(dp->ports[i].qs);
	}
	free(dp->ports);
	workers_free(dp);
	if (dp->stop_fd >= 0)
		close(dp->stop_fd);
	free(dp->cpus);
	free(dp->control_path);
	iovk_ctx_unref(dp->ctx);
	free(dp);
}

DEFINE_PUBLIC_REF_UNREF(struct iovk_datapath, iovk_datapath, datapath_free)

_public_ int iovk_datapath_add_port_ops(struct iovk_datapath *dp, const struct iovk_dp_port_ops *ops, void *port,
					const char *name, unsigned *ret_index)
{
	struct iovk_dp_port_ops full = { 0 };
	struct dp_port *ports, *p;

	assert_return(dp, -EINVAL);
	assert_return(ops, -EINVAL);
	assert_return(name, -EINVAL);
	if (ops->sz < offsetofend(struct iovk_dp_port_ops, free) || !ops->rx_burst || !ops->rx_release ||
	    !ops->tx_burst || !ops->n_queues || !ops->free)
		return -EINVAL;
	if (dp->running)
		return -EBUSY;
	/* an older caller's smaller ops: the hooks it does not know stay NULL;
	 * a newer caller's larger one: the hooks we do not know are not read */
	memcpy(&full, ops, ops->sz < sizeof(full) ? ops->sz : sizeof(full));
	ports = realloc(dp->ports, (dp->n_ports + 1) * sizeof(*ports));
	if (!ports)
		return -ENOMEM;
	dp->ports = ports;
	p = &ports[dp->n_ports];
	*p = (struct dp_port){ .ops = full, .impl = port, .watched_fd = -1 };
	p->n_queues = ops->n_queues(port);
	if (p->n_queues == 0 || p->n_queues > IOVK_DP_MAX_QUEUES)
		return -EINVAL;
	p->name = strdup(name);
	p->qs = calloc_lines(p->n_queues, sizeof(*p->qs));
	if (!p->name || !p->qs) {
		free(p->name);
		free(p->qs);
		return -ENOMEM;
	}
	if (ret_index)
		*ret_index = dp->n_ports;
	dp->n_ports++;
	return 0;
}

_public_ int iovk_datapath_add_port(struct iovk_datapath *dp, const char *spec_text, unsigned *ret_index)
{
	struct iovk_dp_port_spec spec = IOVK_DP_PORT_SPEC_INIT;
	const struct iovk_dp_port_ops *ops;
	void *impl = NULL;
	int r;

	assert_return(dp, -EINVAL);
	assert_return(spec_text, -EINVAL);
	if (dp->running)
		return -EBUSY;
	r = iovk_dp_port_spec_parse(spec_text, &spec);
	if (r < 0)
		return set_error(dp->ctx, r, "%s: not a port (vhost-user:PATH[,client][,queues=N], tap:IFNAME, "
				 "af-xdp:IFNAME[,queue=Q][,zero-copy], vfio:BDF[,queues=N][,mode=MODE])", spec_text);
	switch (spec.kind) {
	case IOVK_DP_PORT_VHOST_USER:
		ops = &dp_vhost_port_ops;
		r = dp_vhost_port_new(dp->ctx, &spec, &impl);
		break;
	case IOVK_DP_PORT_TAP:
		ops = &dp_tap_port_ops;
		r = dp_tap_port_new(dp->ctx, &spec, &impl);
		break;
	case IOVK_DP_PORT_AF_XDP:
		ops = &dp_af_xdp_port_ops;
		r = dp_af_xdp_port_new(dp->ctx, &spec, &impl);
		break;
	case IOVK_DP_PORT_VFIO:
		ops = &dp_vfio_port_ops;
		r = dp_vfio_port_new(dp->ctx, &spec, &dp->stopping, &impl);
		break;
	default:
		return set_error(dp->ctx, -EOPNOTSUPP, "%s: the %s port is not built",
				 spec_text, iovk_dp_port_kind_to_string(spec.kind));
	}
	if (r < 0)
		return r;
	r = iovk_datapath_add_port_ops(dp, ops, impl, spec_text, ret_index);
	if (r < 0) {
		ops->free(impl);
		return set_error(dp->ctx, r, "%s: %s", spec_text, strerror(-r));
	}
	return 0;
}

/* ---- workers ---- */

/* Empty rounds over all of a worker's queues before it sleeps: long enough
 * that a burst still arriving is not met by a system call (a round of a
 * few queues is well under a microsecond), short enough that an idle
 * worker leaves its CPU within about a millisecond. */
#define DP_IDLE_POLLS 2048
/* The longest sleep: a port whose device was reset re-arms within it. */
#define DP_SLEEP_MS 100
/* DP_SLEEP_MS; the unit tests make it long, so that only the wakes they
 * test (an eventfd, the stop) can make them pass */
int dp_sleep_ms = DP_SLEEP_MS;

/*
 * Interrupt mode for one idle spell: arm every queue, wait, disarm. A
 * sleep that times out re-arms (a device reset may have undone the arm,
 * and the arm also says whether something came that raised nothing) and
 * sleeps again, the queues still armed: going back to the poll loop
 * instead meant DP_IDLE_POLLS rounds with interrupts off every 100 ms
 * (2048 tap reads, tens of ms under TCG), and a frame that came then was
 * taken without the interrupt VM case 78 checks for.
 */
static void worker_sleep(struct dp_worker *w, uint64_t start)
{
	struct epoll_event ev[8];
	unsigned armed = 0;

	while (!__atomic_load_n(&w->dp->stopping, __ATOMIC_RELAXED)) {
		bool quiet = true;
		unsigned u = 0;
		int n;

		for (; u < w->n_units && quiet; u++) {
			struct dp_unit *unit = &w->units[u];

			quiet = unit->rx->ops.rx_interrupts(unit->rx->impl, unit->rxq, true);
		}
		if (u > armed)
			armed = u;
		if (!quiet)
			break;
		/* armed first, then asleep: what arrives in between makes an fd readable */
		n = epoll_wait(w->sleep_fd, ev, ELEMENTSOF(ev), dp_sleep_ms);
		__atomic_store_n(&w->sleeps, w->sleeps + 1, __ATOMIC_RELAXED);
		__atomic_store_n(&w->cycles, __builtin_ia32_rdtsc() - start, __ATOMIC_RELAXED);
		if (n != 0)
			break; /* an fd (or a signal): back to the bursts */
	}
	for (unsigned u = 0; u < armed; u++) {
		struct dp_unit *unit = &w->units[u];

		unit->rx->ops.rx_interrupts(unit->rx->impl, unit->rxq, false);
	}
}

static void *worker_main(void *arg)
{
	struct dp_worker *w = arg;
	struct iovk_datapath *dp = w->dp;
	struct iovk_dp_pkt pkts[DP_BURST_MAX];
	unsigned burst = dp->burst, idle = 0;
	uint64_t start = __builtin_ia32_rdtsc(), busy = 0, packets = 0;

	while (!__atomic_load_n(&dp->stopping, __ATOMIC_RELAXED)) {
		uint64_t before = packets;

		for (unsigned u = 0; u < w->n_units; u++) {
			struct dp_unit *unit = &w->units[u];
			uint64_t t0 = __builtin_ia32_rdtsc(), bytes = 0;
			unsigned n = unit->rx->ops.rx_burst(unit->rx->impl, unit->rxq, pkts, burst), sent;
			struct dp_qstats *rq, *tq;

			if (n == 0)
				continue;
			sent = unit->tx->ops.tx_burst(unit->tx->impl, unit->txq, pkts, n);
			for (unsigned i = 0; i < n; i++)
				bytes += pkts[i].len;
			unit->rx->ops.rx_release(unit->rx->impl, unit->rxq);
			rq = &unit->rx->qs[unit->rxq];
			tq = &unit->tx->qs[unit->txq];
			__atomic_fetch_add(&rq->rx_packets, n, __ATOMIC_RELAXED);
			__atomic_fetch_add(&rq->rx_bytes, bytes, __ATOMIC_RELAXED);
			/* bytes sent: the frames are sent in order, so the first `sent` ones */
			if (sent == n) {
				__atomic_fetch_add(&tq->tx_bytes, bytes, __ATOMIC_RELAXED);
			} else {
				uint64_t sb = 0;

				for (unsigned i = 0; i < sent; i++)
					sb += pkts[i].len;
				__atomic_fetch_add(&tq->tx_bytes, sb, __ATOMIC_RELAXED);
				__atomic_fetch_add(&tq->tx_dropped, n - sent, __ATOMIC_RELAXED);
			}
			__atomic_fetch_add(&tq->tx_packets, sent, __ATOMIC_RELAXED);
			packets += n;
			busy += __builtin_ia32_rdtsc() - t0;
		}
		__atomic_store_n(&w->packets, packets, __ATOMIC_RELAXED);
		__atomic_store_n(&w->busy_cycles, busy, __ATOMIC_RELAXED);
		__atomic_store_n(&w->cycles, __builtin_ia32_rdtsc() - start, __ATOMIC_RELAXED);
		if (packets != before)
			idle = 0;
		else if (w->sleep_fd >= 0 && ++idle >= DP_IDLE_POLLS) {
			worker_sleep(w, start);
			idle = 0;
		}
	}
	return NULL;
}

/* The worker's epoll for interrupt mode, when every one of its queues has an fd; else it polls. */
static int worker_sleep_setup(struct iovk_datapath *dp, struct dp_worker *w)
{
	_cleanup_close_ int ep = -1;

	w->sleep_fd = -1;
	if (w->n_units == 0)
		return 0;
	for (unsigned u = 0; u < w->n_units; u++) {
		struct dp_port *p = w->units[u].rx;

		if (!p->ops.rx_wait_fd || !p->ops.rx_interrupts || p->ops.rx_wait_fd(p->impl, w->units[u].rxq) < 0)
			return 0;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return set_error(dp->ctx, negative_errno(), "epoll_create1: %m");
	/* stop_fd stays readable once iovk_datapath_stop() wrote it: a sleeping worker wakes */
	if (epoll_ctl(ep, EPOLL_CTL_ADD, dp->stop_fd, &(struct epoll_event){ .events = EPOLLIN }) < 0)
		return set_error(dp->ctx, negative_errno(), "epoll_ctl: %m");
	for (unsigned u = 0; u < w->n_units; u++) {
		struct dp_port *p = w->units[u].rx;
		int fd = p->ops.rx_wait_fd(p->impl, w->units[u].rxq);

		/* two queues may share an fd (a device's one vector): once is enough */
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &(struct epoll_event){ .events = EPOLLIN, .data.u32 = u }) < 0 &&
		    errno != EEXIST)
			return set_error(dp->ctx, negative_errno(), "%s queue %u: epoll_ctl: %m", p->name, w->units[u].rxq);
	}
	w->sleep_fd = TAKE_FD(ep);
	w->interrupt_mode = true;
	return 0;
}

static int units_build(struct iovk_datapath *dp)
{
	unsigned n_units = 0, k = 0;

	workers_free(dp); /* the last run's, kept for its counters */
	dp->n_workers = dp->n_cpus ? (unsigned)dp->n_cpus : 1;
	dp->workers = calloc_lines(dp->n_workers, sizeof(*dp->workers));
	if (!dp->workers)
		return -ENOMEM;
	for (unsigned i = 0; i < dp->n_ports; i++)
		n_units += dp->ports[i].n_queues;
	for (unsigned w = 0; w < dp->n_workers; w++)
		dp->workers[w].sleep_fd = -1; /* before anything can fail: workers_free() closes it */
	for (unsigned w = 0; w < dp->n_workers; w++) {
		dp->workers[w].dp = dp;
		dp->workers[w].cpu = dp->n_cpus ? (int)dp->cpus[w] : -1;
		dp->workers[w].units = calloc(n_units, sizeof(struct dp_unit));
		if (!dp->workers[w].units)
			return -ENOMEM;
	}
	/* port 2i <-> 2i+1: each rx queue q to the peer's queue q modulo its count */
	for (unsigned i = 0; i < dp->n_ports; i++) {
		struct dp_port *a = &dp->ports[i], *b = &dp->ports[i ^ 1];

		for (unsigned q = 0; q < a->n_queues; q++, k++) {
			struct dp_worker *w = &dp->workers[k % dp->n_workers];

			w->units[w->n_units++] = (struct dp_unit){ .rx = a, .tx = b, .rxq = q, .txq = q % b->n_queues };
		}
	}
	for (unsigned w = 0; w < dp->n_workers; w++) {
		int r = worker_sleep_setup(dp, &dp->workers[w]);

		if (r < 0)
			return r;
	}
	return 0;
}

static void workers_stop(struct iovk_datapath *dp)
{
	__atomic_store_n(&dp->stopping, 1, __ATOMIC_RELAXED);
	for (unsigned w = 0; w < dp->n_workers; w++)
		if (dp->workers[w].thread_started)
			pthread_join(dp->workers[w].thread, NULL);
}

/* What a stopped worker holds, but not its counters: iovk_datapath_stats_json()
 * after the run (iovctl's final counters) still shows them. */
static void workers_release(struct iovk_datapath *dp)
{
	for (unsigned w = 0; w < dp->n_workers; w++) {
		free(dp->workers[w].units);
		dp->workers[w].units = NULL;
		if (dp->workers[w].sleep_fd >= 0)
			close(dp->workers[w].sleep_fd);
		dp->workers[w].sleep_fd = -1;
	}
}

static void workers_free(struct iovk_datapath *dp)
{
	workers_release(dp);
	free(dp->workers);
	dp->workers = NULL;
	dp->n_workers = 0;
}

static int workers_start(struct iovk_datapath *dp)
{
	for (unsigned w = 0; w < dp->n_workers; w++) {
		struct dp_worker *wk = &dp->workers[w];
		pthread_attr_t attr;
		int r;

		pthread_attr_init(&attr);
		if (wk->cpu >= 0) {
			cpu_set_t set;

			CPU_ZERO(&set);
			CPU_SET(wk->cpu, &set);
			r = pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
			if (r) {
				pthread_attr_destroy(&attr);
				return set_error(dp->ctx, -r, "worker on CPU %d: %s", wk->cpu, strerror(r));
			}
		}
		r = pthread_create(&wk->thread, &attr, worker_main, wk);
		pthread_attr_destroy(&attr);
		if (r)
			return set_error(dp->ctx, -r, "worker %u%s: %s", w, wk->cpu >= 0 ? " (pinned)" : "",
					 strerror(r));
		wk->thread_started = true;
		if (wk->cpu >= 0)
			log_info(dp->ctx, "worker %u on CPU %d: %u queue(s)", w, wk->cpu, wk->n_units);
	}
	return 0;
}

/* ---- statistics ---- */

static struct json_object *json_u64(uint64_t v)
{
	return json_object_new_uint64(v);
}

static struct json_object *queue_json(struct dp_port *p, unsigned q, struct dp_qstats *sum)
{
	struct json_object *o = json_object_new_object();
	struct dp_qstats *s = &p->qs[q];
	struct iovk_dp_queue_state st = { 0 };
	uint64_t v[5] = {
		__atomic_load_n(&s->rx_packets, __ATOMIC_RELAXED), __atomic_load_n(&s->rx_bytes, __ATOMIC_RELAXED),
		__atomic_load_n(&s->tx_packets, __ATOMIC_RELAXED), __atomic_load_n(&s->tx_bytes, __ATOMIC_RELAXED),
		__atomic_load_n(&s->tx_dropped, __ATOMIC_RELAXED),
	};

	if (p->ops.queue_state)
		p->ops.queue_state(p->impl, q, &st);
	sum->rx_packets += v[0];
	sum->rx_bytes += v[1];
	sum->tx_packets += v[2];
	sum->tx_bytes += v[3];
	sum->tx_dropped += v[4];
	sum->rx_errors += st.rx_errors;
	sum->rx_dropped += st.rx_dropped;
	sum->tx_errors += st.tx_errors;
	json_object_object_add(o, "queue", json_object_new_int((int)q));
	json_object_object_add(o, "rx_packets", json_u64(v[0]));
	json_object_object_add(o, "rx_bytes", json_u64(v[1]));
	json_object_object_add(o, "tx_packets", json_u64(v[2]));
	json_object_object_add(o, "tx_bytes", json_u64(v[3]));
	json_object_object_add(o, "tx_dropped", json_u64(v[4]));
	json_object_object_add(o, "rx_errors", json_u64(st.rx_errors));
	json_object_object_add(o, "rx_dropped", json_u64(st.rx_dropped));
	json_object_object_add(o, "tx_errors", json_u64(st.tx_errors));
	json_object_object_add(o, "ready", json_object_new_boolean(st.ready));
	json_object_object_add(o, "broken", json_object_new_boolean(st.broken));
	json_object_object_add(o, "broken_count", json_u64(st.n_broken));
	json_object_object_add(o, "broken_reason", st.reason[0] ? json_object_new_string(st.reason) : NULL);
	return o;
}

_public_ int iovk_datapath_stats_json(struct iovk_datapath *dp, char **ret_json)
{
	struct json_object *root, *ports, *workers;
	char *text;

	assert_return(dp, -EINVAL);
	assert_return(ret_json, -EINVAL);
	root = json_object_new_object();
	ports = json_object_new_array();
	workers = json_object_new_array();
	for (unsigned i = 0; i < dp->n_ports; i++) {
		struct dp_port *p = &dp->ports[i];
		struct json_object *o = json_object_new_object(), *qs = json_object_new_array();
		struct dp_qstats sum = { 0 };

		for (unsigned q = 0; q < p->n_queues; q++)
			json_object_array_add(qs, queue_json(p, q, &sum));
		json_object_object_add(o, "index", json_object_new_int((int)i));
		json_object_object_add(o, "name", json_object_new_string(p->name));
		json_object_object_add(o, "type", json_object_new_string(p->ops.kind ? p->ops.kind : "?"));
		json_object_object_add(o, "state", json_object_new_string(p->ops.state ? p->ops.state(p->impl) : "?"));
		json_object_object_add(o, "peer", json_object_new_int((int)(i ^ 1)));
		json_object_object_add(o, "rx_packets", json_u64(sum.rx_packets));
		json_object_object_add(o, "rx_bytes", json_u64(sum.rx_bytes));
		json_object_object_add(o, "tx_packets", json_u64(sum.tx_packets));
		json_object_object_add(o, "tx_bytes", json_u64(sum.tx_bytes));
		json_object_object_add(o, "tx_dropped", json_u64(sum.tx_dropped));
		json_object_object_add(o, "rx_errors", json_u64(sum.rx_errors));
		json_object_object_add(o, "rx_dropped", json_u64(sum.rx_dropped));
		json_object_object_add(o, "tx_errors", json_u64(sum.tx_errors));
		json_object_object_add(o, "queues", qs);
		json_object_array_add(ports, o);
	}
	for (unsigned w = 0; w < dp->n_workers; w++) {
		struct dp_worker *wk = &dp->workers[w];
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "worker", json_object_new_int((int)w));
		json_object_object_add(o, "cpu", wk->cpu >= 0 ? json_object_new_int(wk->cpu) : NULL);
		json_object_object_add(o, "units", json_object_new_int((int)wk->n_units));
		json_object_object_add(o, "packets", json_u64(__atomic_load_n(&wk->packets, __ATOMIC_RELAXED)));
		json_object_object_add(o, "busy_cycles", json_u64(__atomic_load_n(&wk->busy_cycles, __ATOMIC_RELAXED)));
		json_object_object_add(o, "cycles", json_u64(__atomic_load_n(&wk->cycles, __ATOMIC_RELAXED)));
		json_object_object_add(o, "interrupt_mode", json_object_new_boolean(wk->interrupt_mode));
		json_object_object_add(o, "sleeps", json_u64(__atomic_load_n(&wk->sleeps, __ATOMIC_RELAXED)));
		json_object_array_add(workers, o);
	}
	json_object_object_add(root, "ports", ports);
	json_object_object_add(root, "workers", workers);
	text = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
	json_object_put(root);
	if (!text)
		return -ENOMEM;
	*ret_json = text;
	return 0;
}

/* ---- the control socket ---- */

static int control_listen(struct iovk_datapath *dp)
{
	int r = dp_listen_unix(dp->ctx, dp->control_path, 8, &dp->control_fd);

	/* counters are not secret, but the socket is for the host's administrator */
	if (r >= 0 && chmod(dp->control_path, 0600) < 0)
		return set_error(dp->ctx, negative_errno(), "%s: chmod: %m", dp->control_path);
	return r;
}

static void control_serve(struct iovk_datapath *dp)
{
	/* a client's request follows its connect() at once, but on a loaded
	 * machine it was seen to come more than 200 ms later (the client then
	 * got EPIPE): a second, bounded, is what a silent client may cost */
	struct timeval tv = { .tv_sec = 1 };
	_cleanup_close_ int fd = accept4(dp->control_fd, NULL, NULL, SOCK_CLOEXEC);
	_cleanup_free_ char *json = NULL;
	char req[64] = { 0 };
	ssize_t n;

	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	n = recv(fd, req, sizeof(req) - 1, 0);
	if (n <= 0)
		return;
	if (strncmp(req, "stats", 5) || iovk_datapath_stats_json(dp, &json) < 0) {
		if (send(fd, "{\"error\": \"unknown request\"}\n", 29, MSG_NOSIGNAL) < 0) {
		}
		return;
	}
	for (size_t off = 0, len = strlen(json); off < len;) {
		ssize_t k = send(fd, json + off, len - off, MSG_NOSIGNAL);

		if (k <= 0)
			return;
		off += (size_t)k;
	}
}

_public_ int iovk_datapath_query_stats(const char *control_path, char **ret_json)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 5 };
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, size = 0;

	assert_return(control_path, -EINVAL);
	assert_return(ret_json, -EINVAL);
	if (strlen(control_path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return negative_errno();
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	memcpy(sa.sun_path, control_path, strlen(control_path));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return negative_errno();
	if (send(fd, "stats\n", 6, MSG_NOSIGNAL) != 6)
		return negative_errno();
	shutdown(fd, SHUT_WR);
	for (;;) {
		ssize_t k;

		if (len + 4096 + 1 > size) {
			char *nb;

			if (size > (64u << 20))
				return -EMSGSIZE;
			size = size ? size * 2 : 16384;
			nb = realloc(buf, size);
			if (!nb)
				return -ENOMEM;
			buf = nb;
		}
		k = recv(fd, buf + len, size - len - 1, 0);
		if (k < 0)
			return negative_errno();
		if (k == 0)
			break;
		len += (size_t)k;
	}
	if (len == 0)
		return -ECONNRESET;
	buf[len] = '\0';
	*ret_json = TAKE_PTR(buf);
	return 0;
}

/* ---- the control thread ---- */

#define EV_STOP 0xffff0000u
#define EV_TICK 0xffff0001u
#define EV_CONTROL 0xffff0002u

static void port_watch(struct iovk_datapath *dp, int ep, unsigned i)
{
	struct dp_port *p = &dp->ports[i];
	int fd = p->ops.control_fd ? p->ops.control_fd(p->impl) : -1;

	if (fd == p->watched_fd)
		return;
	if (p->watched_fd >= 0)
		epoll_ctl(ep, EPOLL_CTL_DEL, p->watched_fd, NULL);
	p->watched_fd = -1;
	if (fd >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, fd, &(struct epoll_event){ .events = EPOLLIN, .data.u32 = i }) == 0)
		p->watched_fd = fd;
}

int dp_wait_for(const int *stopping, unsigned ms, bool (*done)(void *arg), void *arg)
{
	struct timespec one = { .tv_nsec = 1000000 };

	for (unsigned i = 0;; i++) {
		if (done(arg))
			return 1;
		if (stopping && __atomic_load_n(stopping, __ATOMIC_RELAXED))
			return -ECANCELED;
		if (i >= ms)
			return 0;
		nanosleep(&one, NULL);
	}
}

unsigned dp_retry_next_ms(unsigned prev_ms)
{
	if (prev_ms == 0)
		return 1000;
	return prev_ms >= DP_RETRY_MAX_MS / 2 ? DP_RETRY_MAX_MS : 2 * prev_ms;
}

static uint64_t now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static bool port_failed(const struct dp_port *p)
{
	return p->ops.state && !strcmp(p->ops.state(p->impl), "failed");
}

static void port_control(struct iovk_datapath *dp, int ep, unsigned i, bool readable)
{
	struct dp_port *p = &dp->ports[i];
	int r;

	if (!p->ops.control)
		return;
	r = p->ops.control(p->impl, readable);
	if (r < 0)
		log_warn(dp->ctx, "port %u (%s): %s", i, p->name, strerror(-r));
	port_watch(dp, ep, i);
}

/* Rings the workers found broken: said once each, the other ports carry on. */
static void report_broken(struct iovk_datapath *dp)
{
	for (unsigned i = 0; i < dp->n_ports; i++) {
		struct dp_port *p = &dp->ports[i];

		for (unsigned q = 0; q < p->n_queues && p->ops.queue_state; q++) {
			struct iovk_dp_queue_state st = { 0 };

			p->ops.queue_state(p->impl, q, &st);
			if (st.n_broken > p->qs[q].reported_broken) {
				p->qs[q].reported_broken = st.n_broken;
				bool vhost = p->ops.kind && !strcmp(p->ops.kind, "vhost-user");

				log_warn(dp->ctx, "port %u (%s) queue %u: the %s broke the ring (%s); it stays stopped "
					 "until %s, other queues and ports keep running", i, p->name, q,
					 vhost ? "guest" : "device", st.reason,
					 vhost ? "the frontend resets it" : "the port has reset the device");
			}
		}
	}
}

static int control_loop(struct iovk_datapath *dp)
{
	struct itimerspec tick = { .it_interval = { .tv_sec = 1 }, .it_value = { .tv_nsec = 1 } };
	_cleanup_close_ int ep = epoll_create1(EPOLL_CLOEXEC), tfd = -1;

	if (ep < 0)
		return set_error(dp->ctx, negative_errno(), "epoll_create1: %m");
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (tfd < 0 || timerfd_settime(tfd, 0, &tick, NULL) < 0)
		return set_error(dp->ctx, negative_errno(), "timerfd: %m");
	if (epoll_ctl(ep, EPOLL_CTL_ADD, dp->stop_fd, &(struct epoll_event){ .events = EPOLLIN, .data.u32 = EV_STOP }) < 0 ||
	    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &(struct epoll_event){ .events = EPOLLIN, .data.u32 = EV_TICK }) < 0 ||
	    (dp->control_fd >= 0 &&
	     epoll_ctl(ep, EPOLL_CTL_ADD, dp->control_fd, &(struct epoll_event){ .events = EPOLLIN, .data.u32 = EV_CONTROL }) < 0))
		return set_error(dp->ctx, negative_errno(), "epoll_ctl: %m");
	for (unsigned i = 0; i < dp->n_ports; i++)
		port_watch(dp, ep, i);

	for (;;) {
		struct epoll_event ev[16];
		int n = epoll_wait(ep, ev, ELEMENTSOF(ev), -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return set_error(dp->ctx, negative_errno(), "epoll_wait: %m");
		}
		for (int k = 0; k < n; k++) {
			uint32_t id = ev[k].data.u32;

			if (id == EV_STOP)
				return 0;
			if (id == EV_TICK) {
				uint64_t v;

				if (read(tfd, &v, sizeof(v)) < 0) {
				}
				for (unsigned i = 0; i < dp->n_ports; i++) {
					struct dp_port *p = &dp->ports[i];

					/* a tick early by a few ms is no reason to wait a whole second more */
					if (port_failed(p) && now_ms() + 10 < p->retry_at)
						continue;
					port_control(dp, ep, i, false);
					if (port_failed(p)) {
						p->retry_ms = dp_retry_next_ms(p->retry_ms);
						p->retry_at = now_ms() + p->retry_ms;
					} else {
						p->retry_ms = 0;
					}
				}
				report_broken(dp);
			} else if (id == EV_CONTROL) {
				control_serve(dp);
			} else if (id < dp->n_ports) {
				port_control(dp, ep, id, true);
			}
		}
	}
}

_public_ int iovk_datapath_run(struct iovk_datapath *dp)
{
	int r;

	assert_return(dp, -EINVAL);
	if (dp->running)
		return -EBUSY;
	if (dp->n_ports < 2 || dp->n_ports % 2)
		return set_error(dp->ctx, -EINVAL, "%u port(s): ports forward in pairs (1<->2, 3<->4, ...)", dp->n_ports);
	/* A stop that came before the run (SIGTERM while iovctl sets up, once
	 * its handler is in) is kept: the control loop ends at once. */
	dp->running = true;
	r = units_build(dp);
	if (r >= 0 && dp->control_path)
		r = control_listen(dp);
	if (r >= 0)
		r = workers_start(dp);
	if (r >= 0)
		r = control_loop(dp);
	workers_stop(dp);
	if (dp->control_fd >= 0) {
		close(dp->control_fd);
		dp->control_fd = -1;
		unlink(dp->control_path);
	}
	workers_release(dp);
	/* the flag also ends a port's waits on its device (dp_wait_for()): down
	 * again, so that those of port_free() and of ports added before the next
	 * run are whole; and stop_fd read, or the next run's control loop would
	 * return at once and its workers never sleep */
	__atomic_store_n(&dp->stopping, 0, __ATOMIC_RELAXED);
	if (read(dp->stop_fd, &(uint64_t){ 0 }, sizeof(uint64_t)) < 0 && errno != EAGAIN)
		log_warn(dp->ctx, "reading the stop eventfd: %m");
	dp->running = false;
	return r < 0 ? r : 0;
}

_public_ int iovk_datapath_stop(struct iovk_datapath *dp)
{
	uint64_t one = 1;

	assert_return(dp, -EINVAL);
	/* async-signal-safe: an atomic store and a write(2) */
	__atomic_store_n(&dp->stopping, 1, __ATOMIC_RELAXED);
	return write(dp->stop_fd, &one, sizeof(one)) == sizeof(one) ? 0 : negative_errno();
}
