/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libiovkit datapath: a userspace virtio-net forwarder. A VM keeps a plain
 * virtio-net device served over vhost-user while its packets leave through
 * a host port: an AF_XDP socket on a VF's netdev, a TAP device, or a
 * virtio-net PCI function (a virtio VF) driven from userspace through VFIO.
 *
 * A datapath holds ports, numbered from 0 in the order they are added, and
 * forwards port 0 <-> port 1, port 2 <-> port 3, ... queue by queue, on
 * poll-mode worker threads pinned to the CPUs it is given. iovk_datapath_run()
 * is the control thread: it serves vhost-user sockets, reconnects, and
 * answers statistics requests on an optional control socket.
 *
 * Threads: iovk_datapath_run() blocks its caller; iovk_datapath_stop() may
 * be called from a signal handler or another thread. Everything else is for
 * the thread that made the datapath, before run() or after it returns.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <iovkit/core.h>

#ifdef __cplusplus
extern "C" {
#endif

struct iovk_datapath;

/* ---- ports ------------------------------------------------------------- */

/*
 * A packet as ports hand it to each other: an Ethernet frame (no virtio-net
 * header) in n_seg segments that the receiving port owns until it is given
 * back (rx_release). Segments may point straight into guest memory, so a
 * vhost-user -> vhost-user forward copies each frame once, guest to guest.
 */
struct iovk_dp_pkt {
	struct iovec *seg;
	uint32_t len; /* bytes, the sum of the segments' lengths */
	uint16_t n_seg;
};

struct iovk_dp_queue_state {
	bool ready;        /* the queue can move packets now */
	bool broken;       /* a ring of this queue broke the virtio rules (NEEDS_RESET) */
	uint64_t n_broken; /* times a ring of this queue broke */
	uint64_t rx_errors; /* frames received but malformed (too short, too many segments) */
	char reason[128];  /* why it broke last, "" when it never did */
	uint64_t rx_dropped; /* frames the port's device dropped before the datapath took them
			      * (af-xdp: the kernel found the socket's rx ring full or no fill buffer) */
	uint64_t tx_errors;  /* transmit completions the port's device returned that name no
			      * buffer the port gave it (af-xdp: a completion-ring address
			      * outside the UMEM's transmit half): ignored, the buffer not reused */
};

/*
 * The port interface: what a kind of port (vhost-user, tap, af-xdp, vfio)
 * gives the forwarder. `port` is the implementation's own object.
 * Queues are numbered 0..n_queues-1; queue q of one port of a pair is
 * forwarded to queue q (modulo its own count) of the other. A worker calls
 * rx_burst, hands the packets to the other port's tx_burst, then rx_release,
 * all for one queue before the next: no system call is needed per packet,
 * and a port publishes its ring updates once per burst.
 *
 * The hot-path hooks run on worker threads, one worker per (port, rx queue),
 * but a tx queue may be fed by two workers: tx_burst must serialise itself.
 * The control hooks run on the control thread, concurrently with the workers.
 */
struct iovk_dp_port_ops {
	size_t sz; /* sizeof(struct iovk_dp_port_ops): hooks may be appended */
	const char *kind; /* "vhost-user", "tap", ... */

	/* Up to n packets received on queue q into pkts[]: returns how many
	 * (0 when the queue is not ready, e.g. no frontend), never an error;
	 * problems are counted in the queue's state. When it returns > 0 the
	 * packets are borrowed until rx_release() for the same queue. */
	unsigned (*rx_burst)(void *port, unsigned q, struct iovk_dp_pkt *pkts, unsigned n);
	/* Gives back all the packets of the last rx_burst() of queue q. */
	void (*rx_release)(void *port, unsigned q);
	/* Copies out pkts[0..n) on queue q: returns how many were sent; the
	 * caller counts the rest as dropped. */
	unsigned (*tx_burst)(void *port, unsigned q, const struct iovk_dp_pkt *pkts, unsigned n);

	/* Queue pairs (rx + tx) the port has; fixed once added. */
	unsigned (*n_queues)(void *port);

	/* Control thread: the fd to watch for this port (a vhost-user socket),
	 * -1 for none; asked again after every control() call. */
	int (*control_fd)(void *port);
	/* Control thread: called when control_fd() is readable and once a
	 * second (reconnects, timeouts). Returns 0 or a negative errno, which
	 * is logged; the port stays. */
	int (*control)(void *port, bool readable);

	/* A word for the port's state ("connected", "listening", "up"...), and
	 * the state of queue q: written by the port, read by the control thread. */
	const char *(*state)(void *port);
	void (*queue_state)(void *port, unsigned q, struct iovk_dp_queue_state *ret);

	/* Releases the port (rings handed back, fds closed). */
	void (*free)(void *port);

	/* Optional, both or neither: interrupt mode. A worker whose every rx
	 * queue found nothing for a while sleeps on these fds instead of
	 * polling, when each of its queues has one. rx_wait_fd: an fd that
	 * becomes readable (epoll) when queue q may have something to receive,
	 * or -1 (this queue is only polled); asked once, before the workers
	 * start. rx_interrupts(on=true): from now on make that fd readable on
	 * arrival; returns false when something already arrived (or the queue
	 * cannot say now), and the worker polls instead; called again on an
	 * armed queue each time a sleep times out (100 ms), so it must be
	 * harmless twice. on=false: back to polling, the fd drained. Worker
	 * thread, the queue's own. */
	int (*rx_wait_fd)(void *port, unsigned q);
	bool (*rx_interrupts)(void *port, unsigned q, bool on);
};


/*
 * A port as the command line names it:
 *   vhost-user:PATH[,client][,queues=N]   (server mode listens on PATH; client connects, reconnecting)
 *   tap:IFNAME
 *   af-xdp:IFNAME[,queue=Q][,zero-copy]   (an AF_XDP socket on queue Q of a netdev, copy mode or zero-copy)
 *   vfio:BDF[,queues=N][,mode=MODE]       (a virtio-net PCI function on vfio-pci, driven from
 *                                          userspace; MODE as iovk_vfio_mode_from_string() takes it;
 *                                          N > 1 needs a device offering VIRTIO_NET_F_MQ and CTRL_VQ)
 */
enum iovk_dp_port_kind {
	IOVK_DP_PORT_VHOST_USER,
	IOVK_DP_PORT_TAP,
	IOVK_DP_PORT_AF_XDP,
	IOVK_DP_PORT_VFIO,
};

#define IOVK_DP_MAX_QUEUES 16
#define IOVK_DP_NAME_MAX 108 /* sun_path */

/*
 * Filled by iovk_dp_port_spec_parse(). It starts with its size, set by the
 * caller (IOVK_DP_PORT_SPEC_INIT), so members can be appended without a
 * program built against this header overflowing its copy (libbpf's .sz).
 */
struct iovk_dp_port_spec {
	size_t sz; /* sizeof(struct iovk_dp_port_spec) */
	enum iovk_dp_port_kind kind;
	char name[IOVK_DP_NAME_MAX]; /* socket path, interface name or PCI address */
	bool client;                 /* vhost-user: connect instead of listening */
	bool zero_copy;              /* af-xdp */
	unsigned queues;             /* queue pairs, 1..IOVK_DP_MAX_QUEUES */
	unsigned queue;              /* af-xdp: the netdev's queue */
	int vfio_mode;               /* vfio: enum iovk_vfio_mode (<iovkit/vfio.h>), 0: auto */
};
#define IOVK_DP_PORT_SPEC_INIT { .sz = sizeof(struct iovk_dp_port_spec) }

/* Parses a SPEC into *ret_spec, as far as its sz reaches (sz is kept).
 * Returns 0, or -EINVAL for text that is not one (kind, option or number
 * unknown or out of range, a name too long or empty), or for a ret_spec
 * whose sz is too small or which has non-zero bytes past the members this
 * library knows; *ret_spec is untouched then. */
int iovk_dp_port_spec_parse(const char *text, struct iovk_dp_port_spec *ret_spec);
/* "vhost-user", "tap", "af-xdp", "vfio"; NULL for an unknown kind. */
const char *iovk_dp_port_kind_to_string(enum iovk_dp_port_kind kind);

/* ---- the datapath ------------------------------------------------------ */

struct iovk_datapath_options {
	size_t sz;            /* sizeof(struct iovk_datapath_options) */
	const unsigned *cpus; /* one worker per CPU, pinned; NULL: one unpinned worker */
	size_t n_cpus;
	const char *control_path; /* UNIX socket for iovk_datapath_query_stats(); NULL: none */
	unsigned burst;       /* packets per burst, 1..256; 0: 32 */
};
#define IOVK_DATAPATH_OPTIONS_INIT { .sz = sizeof(struct iovk_datapath_options) }

/* Returns 0, -EINVAL (options too small or out of range), -ENOMEM. */
int iovk_datapath_new(struct iovk_ctx *ctx, const struct iovk_datapath_options *opts,
		      struct iovk_datapath **ret_dp);
struct iovk_datapath *iovk_datapath_ref(struct iovk_datapath *dp);
/* Drops a reference; the last one frees the ports. NULL is fine. */
struct iovk_datapath *iovk_datapath_unref(struct iovk_datapath *dp);

/*
 * Adds a port from its SPEC: a vhost-user server socket is bound here (so a
 * frontend can connect as soon as this returns), a TAP device opened.
 * Returns 0 and its index in *ret_index (may be NULL), -EOPNOTSUPP for what
 * a port cannot do (a vfio port with more queue pairs than its device
 * has, a legacy virtio device), -EINVAL for a bad spec, -EBUSY after run() started, or
 * the errno of the socket or device.
 */
int iovk_datapath_add_port(struct iovk_datapath *dp, const char *spec, unsigned *ret_index);
/* Adds a port implemented by the caller (ops is copied, port is not: it is
 * released with ops->free when the datapath goes). Same returns. */
int iovk_datapath_add_port_ops(struct iovk_datapath *dp, const struct iovk_dp_port_ops *ops, void *port,
			       const char *name, unsigned *ret_index);

/*
 * Starts the workers and serves the control side until iovk_datapath_stop().
 * Needs an even number of ports (>= 2). Returns 0 after a stop, -EINVAL for
 * an odd number of ports, or the errno of a thread, the CPU pinning or the
 * control socket.
 */
int iovk_datapath_run(struct iovk_datapath *dp);
/* Makes run() return: async-signal-safe (one write(2) to an eventfd). */
int iovk_datapath_stop(struct iovk_datapath *dp);

/*
 * The counters as JSON text: {"ports": [{"index", "name", "type", "state", "peer",
 * "queues": [{"queue", "rx_packets", "rx_bytes", "tx_packets", "tx_bytes",
 * "tx_dropped", "rx_errors", "rx_dropped", "tx_errors", "ready", "broken", "broken_count", "broken_reason"}],
 * and the same counters summed}], "workers": [{"worker", "cpu", "units", "packets",
 * "busy_cycles", "cycles", "interrupt_mode", "sleeps"}]} (iovctl's vocabulary, doc/iovctl.schema.json). Counters are read while the workers run, so one queue's are
 * consistent only with themselves. After iovk_datapath_run() returned, "workers" are
 * that run's, stopped, until the next run. Returns 0 or -ENOMEM; *ret_json is malloc'd.
 */
int iovk_datapath_stats_json(struct iovk_datapath *dp, char **ret_json);
/* The same from a running datapath, over its control socket at path.
 * Returns 0, or the errno of connecting or reading (-ECONNREFUSED, -ENOENT...). */
int iovk_datapath_query_stats(const char *control_path, char **ret_json);

#ifdef __cplusplus
}
#endif
