/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private to lib/datapath: the ports' constructors and the vhost-user device. */
#pragma once

#include <iovkit/datapath.h>

#include "vring.h"

/* x86 only: the workers use x86 intrinsics (pause in dp_lock, rdtsc for the
 * busy figures), and the vfio port takes VIRTIO_F_ORDER_PLATFORM while
 * ordering its rings against the device with plain __atomic barriers, which
 * x86's total store order makes enough (see virtio-pci.h). An arm64 port
 * would need yield/isb and the generic timer (cntvct_el0) here, and device
 * barriers (dmb oshst before avail->idx, dmb oshld after reading used->idx,
 * dsb st before the notify MMIO write) in virtio-pci.c. */
#if !defined(__x86_64__) && !defined(__i386__)
#error "lib/datapath is x86 only: see the comment above for what another architecture needs"
#endif

/* Packets per burst at most (the options' burst is clipped to it). */
#define DP_BURST_MAX 256

/* A lock the control thread holds briefly while it changes a ring that a
 * worker may be walking; workers take it once per burst (trylock on rx). */
static inline bool dp_trylock(int *l)
{
	return __atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE) == 0;
}

static inline void dp_lock(int *l)
{
	while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(l, __ATOMIC_RELAXED))
			__builtin_ia32_pause();
}

static inline void dp_unlock(int *l)
{
	__atomic_store_n(l, 0, __ATOMIC_RELEASE);
}

/* ---- vhost-user (vhost-user.c: messages; vhost-port.c: socket and rings) ---- */

/* Message header (vhost-user spec, "Message Specification"). */
struct vu_msg_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
} __attribute__((packed));

#define VU_MSG_MAX_PAYLOAD 4096
#define VU_MSG_MAX_FDS 8
#define VU_VERSION 0x1
#define VU_FLAG_VERSION_MASK 0x3
#define VU_FLAG_REPLY (1u << 2)
#define VU_FLAG_NEED_REPLY (1u << 3)

struct vu_msg {
	struct vu_msg_hdr hdr;
	union {
		uint64_t u64;
		struct {
			uint32_t index;
			uint32_t num;
		} state;
		struct {
			uint32_t index;
			uint32_t flags;
			uint64_t desc, used, avail, log;
		} addr;
		struct {
			uint32_t nregions;
			uint32_t padding;
			struct {
				uint64_t gpa, size, uva, mmap_offset;
			} regions[DP_MEM_MAX_REGIONS];
		} memory;
		struct {
			uint64_t size, offset;
		} log;
		uint8_t bytes[VU_MSG_MAX_PAYLOAD];
	} payload;
};

/* One vring of a vhost-user device: even index = guest RX (we transmit), odd = guest TX. */
struct vu_ring {
	int lock;
	struct dp_vq vq;
	/* as the frontend set them; applied when the ring starts */
	uint32_t num;
	uint16_t base;
	bool addr_set, started, enabled;
	uint32_t addr_flags;
	uint64_t desc_uva, avail_uva, used_uva, log_gpa;
	int kick_fd;
	/* receive side (odd rings): the chains of the burst in flight */
	unsigned n_heads;
	dp_chain_t heads[DP_BURST_MAX];
	/* packed rings: the used entries of a burst, num of them */
	struct dp_used_elem *shadow;
	uint32_t shadow_size;
	struct iovec *iov; /* DP_BURST_MAX * DP_CHAIN_MAX_SEGS */
	uint64_t rx_errors;
};

struct vu_dev {
	struct dp_mem mem;
	struct dp_log log;
	uint64_t features;          /* acked by the frontend */
	uint64_t protocol_features; /* acked */
	unsigned max_queue_pairs;
	unsigned hdr_len;          /* virtio-net header: 12 with VERSION_1 or MRG_RXBUF, else 10 */
	bool mrg_rxbuf;
	struct vu_ring *rings;     /* 2 * max_queue_pairs */
};

/*
 * What we offer. VIRTIO_F_IN_ORDER (virtio 1.2, 2.7.9) promises what the
 * rings already do: a burst takes chains in avail order and hands every one
 * back in that order (a frame that finds too few receive buffers returns
 * them unused, still in order). A driver that has it skips its free-list
 * bookkeeping: DPDK's virtio PMD then takes its "inorder" paths, which it
 * takes with DPDK's own vhost too, so a frontend costs the same behind
 * either backend (benchmark 1's generator is one).
 *
 * VIRTIO_F_RING_PACKED (2.8): the driver's choice; with it a ring is one
 * array of descriptors both sides write, which costs a burst fewer cache
 * lines moving between the two cores than split's three parts do.
 */
#define VU_FEATURES                                                                                  \
	((1ull << 32 /* VIRTIO_F_VERSION_1 */) | (1ull << 15 /* VIRTIO_NET_F_MRG_RXBUF */) |           \
	 (1ull << 29 /* VIRTIO_RING_F_EVENT_IDX */) | (1ull << 28 /* VIRTIO_RING_F_INDIRECT_DESC */) | \
	 (1ull << 22 /* VIRTIO_NET_F_MQ */) | (1ull << 30 /* VHOST_USER_F_PROTOCOL_FEATURES */) |      \
	 (1ull << 26 /* VHOST_F_LOG_ALL */) | (1ull << 35 /* VIRTIO_F_IN_ORDER */) |          \
	 (1ull << 34 /* VIRTIO_F_RING_PACKED */))
#define VU_PROTOCOL_FEATURES                                                                     \
	((1ull << 0 /* MQ */) | (1ull << 1 /* LOG_SHMFD */) | (1ull << 3 /* REPLY_ACK */))

/* Sets up an empty device of max_queue_pairs (1..IOVK_DP_MAX_QUEUES). -ENOMEM. */
int vu_dev_init(struct vu_dev *d, unsigned max_queue_pairs);
/* The frontend went away: every ring stopped, memory and log unmapped, fds closed. */
void vu_dev_reset(struct vu_dev *d);
void vu_dev_done(struct vu_dev *d);

/*
 * A header as read from the socket: 0, or -EPROTO for a version we do not
 * speak, a reply flag from the frontend, or a payload over VU_MSG_MAX_PAYLOAD.
 */
int vu_msg_check_header(const struct vu_msg_hdr *hdr);
/*
 * Handles one message with its fds (fds[i] set to -1 for each one the
 * device keeps; the caller closes the rest). On return *ret_reply says
 * whether msg now holds a reply to send (its header set). Returns 0, or a
 * negative errno for a message we refuse: the caller closes the connection
 * unless a reply (REPLY_ACK's error) was prepared.
 */
int vu_handle_message(struct vu_dev *d, struct vu_msg *msg, int *fds, unsigned n_fds, bool *ret_reply,
		      char *err, size_t err_size);

/* The hot path of vhost-port.c, for the fuzzers and tests too. */
unsigned vu_rx_burst(struct vu_dev *d, unsigned q, struct iovk_dp_pkt *pkts, unsigned n);
void vu_rx_release(struct vu_dev *d, unsigned q);
unsigned vu_tx_burst(struct vu_dev *d, unsigned q, const struct iovk_dp_pkt *pkts, unsigned n);

/* A listening UNIX socket at path (non-blocking; a stale socket there is replaced). */
int dp_listen_unix(struct iovk_ctx *ctx, const char *path, int backlog, int *ret_fd);

/* ---- af-xdp (af-xdp.c) ---- */

/* 2048 is the smallest chunk the kernel takes (XDP_UMEM_MIN_CHUNK_SIZE) and
 * holds a 1500-byte MTU frame even behind a zero-copy driver's 256 bytes of
 * XDP headroom; 4096 chunks are 8 MiB, what DPDK's af_xdp driver uses too. */
#define XP_FRAME_SIZE 2048u
#define XP_RX_FRAMES 2048u /* = fill ring = rx ring */
#define XP_TX_FRAMES 2048u /* = tx ring = completion ring */
#define XP_FRAMES (XP_RX_FRAMES + XP_TX_FRAMES)

struct xsk_ring_cons;
/*
 * Takes what the kernel put in the completion ring cq: addresses of
 * transmit chunks (aligned, in the UMEM's upper half) that are out (their
 * bit set in tx_out, XP_TX_FRAMES bits) onto the free stack
 * tx_free[0..*tx_free_n) (at most XP_TX_FRAMES), their bit cleared; every
 * other one (a second completion of a chunk too) counted in *bad and
 * dropped. The ring's entries are all consumed.
 */
void dp_xsk_complete(struct xsk_ring_cons *cq, uint64_t *tx_free, uint32_t *tx_free_n, uint64_t *tx_out,
		     uint64_t *bad);
/* Marks the transmit chunk at addr (a tx_free entry) as handed to the kernel. */
static inline void dp_xsk_out(uint64_t *tx_out, uint64_t addr)
{
	uint64_t c = addr / XP_FRAME_SIZE - XP_RX_FRAMES;

	tx_out[c / 64] |= 1ull << (c % 64);
}

/* ---- the workers' sleeps and the control thread's waits (datapath.c) ---- */

/* The longest an idle worker sleeps, in ms (100); for the tests. */
extern int dp_sleep_ms;

/*
 * Waits up to ms milliseconds, in 1 ms sleeps, for done(arg). Returns 1
 * when it came, 0 at the timeout, -ECANCELED as soon as *stopping (the
 * datapath's flag; NULL: none) is set: a port waiting on its device on the
 * control thread must not hold iovk_datapath_stop() back by that long.
 */
int dp_wait_for(const int *stopping, unsigned ms, bool (*done)(void *arg), void *arg);
/* How long a port whose state is "failed" rests before its next try, given
 * the rest before (0: it just failed): 1 s, doubled each time, at most
 * DP_RETRY_MAX_MS. */
#define DP_RETRY_MAX_MS 30000u
unsigned dp_retry_next_ms(unsigned prev_ms);

/* ---- ports ---- */
int dp_vhost_port_new(struct iovk_ctx *ctx, const struct iovk_dp_port_spec *spec, void **ret_port);
extern const struct iovk_dp_port_ops dp_vhost_port_ops;
int dp_tap_port_new(struct iovk_ctx *ctx, const struct iovk_dp_port_spec *spec, void **ret_port);
extern const struct iovk_dp_port_ops dp_tap_port_ops;
int dp_af_xdp_port_new(struct iovk_ctx *ctx, const struct iovk_dp_port_spec *spec, void **ret_port);
extern const struct iovk_dp_port_ops dp_af_xdp_port_ops;
/* stopping: the datapath's flag, which ends the port's waits on the device early */
int dp_vfio_port_new(struct iovk_ctx *ctx, const struct iovk_dp_port_spec *spec, const int *stopping,
		     void **ret_port);
extern const struct iovk_dp_port_ops dp_vfio_port_ops;
