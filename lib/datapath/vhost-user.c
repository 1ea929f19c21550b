/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The vhost-user backend's messages (QEMU's docs/interop/vhost-user.rst),
 * apart from the socket: vu_handle_message() takes a message and its fds,
 * changes the device, and prepares the reply. The frontend is as untrusted
 * as the guest: every size is checked against the request before the
 * payload is read, ring indices against the device's rings, memory
 * regions for overflow, and every fd a message does not consume is closed
 * by the caller. A message we refuse gets REPLY_ACK's error reply when the
 * frontend asked for one, else the connection is closed; nothing aborts.
 *
 * Rings and workers: a worker walks a ring under its lock (vring.h's
 * dp_vq), so every change here that a worker could see (addresses, memory
 * table, start/stop, features) is made with that ring's lock held. Chains a
 * worker takes are always completed within its burst, so when
 * GET_VRING_BASE takes the lock, last_avail is exactly what the frontend
 * must resume from: a frontend restart loses no ring state.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../internal.h"
#include "datapath-internal.h"

enum {
	VU_GET_FEATURES = 1,
	VU_SET_FEATURES = 2,
	VU_SET_OWNER = 3,
	VU_RESET_OWNER = 4,
	VU_SET_MEM_TABLE = 5,
	VU_SET_LOG_BASE = 6,
	VU_SET_LOG_FD = 7,
	VU_SET_VRING_NUM = 8,
	VU_SET_VRING_ADDR = 9,
	VU_SET_VRING_BASE = 10,
	VU_GET_VRING_BASE = 11,
	VU_SET_VRING_KICK = 12,
	VU_SET_VRING_CALL = 13,
	VU_SET_VRING_ERR = 14,
	VU_GET_PROTOCOL_FEATURES = 15,
	VU_SET_PROTOCOL_FEATURES = 16,
	VU_GET_QUEUE_NUM = 17,
	VU_SET_VRING_ENABLE = 18,
	VU_SEND_RARP = 19,
	VU_NET_SET_MTU = 20,
};

#define F_PROTOCOL_FEATURES (1ull << 30)
#define F_LOG_ALL (1ull << 26)
#define F_VERSION_1 (1ull << 32)
#define F_MRG_RXBUF (1ull << 15)
#define F_EVENT_IDX (1ull << 29)
#define F_RING_PACKED (1ull << 34)
#define PF_REPLY_ACK (1ull << 3)
#define PF_LOG_SHMFD (1ull << 1)
/* u64 payload of SET_VRING_KICK/CALL/ERR: ring index and "no fd" */
#define VRING_IDX_MASK 0xffu
#define VRING_NOFD (1ull << 8)

static void ring_close_fds(struct vu_ring *r)
{
	if (r->kick_fd >= 0)
		close(r->kick_fd);
	if (r->vq.call_fd >= 0)
		close(r->vq.call_fd);
	if (r->vq.err_fd >= 0)
		close(r->vq.err_fd);
	r->kick_fd = r->vq.call_fd = r->vq.err_fd = -1;
}

int vu_dev_init(struct vu_dev *d, unsigned max_queue_pairs)
{
	memset(d, 0, sizeof(*d));
	if (max_queue_pairs == 0 || max_queue_pairs > IOVK_DP_MAX_QUEUES)
		return -EINVAL;
	d->max_queue_pairs = max_queue_pairs;
	d->rings = calloc(2 * max_queue_pairs, sizeof(*d->rings));
	if (!d->rings)
		return -ENOMEM;
	for (unsigned i = 0; i < 2 * max_queue_pairs; i++) {
		struct vu_ring *r = &d->rings[i];

		r->kick_fd = r->vq.call_fd = r->vq.err_fd = -1;
		dp_vq_init(&r->vq, &d->mem);
	}
	d->hdr_len = 10;
	return 0;
}

static void lock_all(struct vu_dev *d)
{
	for (unsigned i = 0; i < 2 * d->max_queue_pairs; i++)
		dp_lock(&d->rings[i].lock);
}

static void unlock_all(struct vu_dev *d)
{
	for (unsigned i = 0; i < 2 * d->max_queue_pairs; i++)
		dp_unlock(&d->rings[i].lock);
}

void vu_dev_reset(struct vu_dev *d)
{
	if (!d->rings)
		return;
	lock_all(d);
	for (unsigned i = 0; i < 2 * d->max_queue_pairs; i++) {
		struct vu_ring *r = &d->rings[i];
		uint64_t n_broken = r->vq.n_broken;
		char reason[sizeof(r->vq.broken_reason)];

		ring_close_fds(r);
		/* the counters and the last reason outlive the connection */
		memcpy(reason, r->vq.broken_reason, sizeof(reason));
		dp_vq_init(&r->vq, &d->mem);
		r->vq.n_broken = n_broken;
		memcpy(r->vq.broken_reason, reason, sizeof(reason));
		r->vq.log = NULL;
		r->num = 0;
		r->base = 0;
		r->addr_set = r->started = r->enabled = false;
		r->n_heads = 0;
	}
	dp_mem_unmap(&d->mem);
	dp_log_unmap(&d->log);
	d->features = d->protocol_features = 0;
	d->hdr_len = 10;
	d->mrg_rxbuf = false;
	unlock_all(d);
}

void vu_dev_done(struct vu_dev *d)
{
	if (!d->rings)
		return;
	vu_dev_reset(d);
	for (unsigned i = 0; i < 2 * d->max_queue_pairs; i++) {
		free(d->rings[i].iov);
		free(d->rings[i].shadow);
	}
	free(d->rings);
	d->rings = NULL;
}

int vu_msg_check_header(const struct vu_msg_hdr *hdr)
{
	if ((hdr->flags & VU_FLAG_VERSION_MASK) != VU_VERSION)
		return -EPROTO;
	if (hdr->flags & VU_FLAG_REPLY)
		return -EPROTO;
	if (hdr->size > VU_MSG_MAX_PAYLOAD)
		return -EMSGSIZE;
	return 0;
}

static int bad(char *err, size_t size, int r, const char *fmt, ...) _printf_(4, 5);
static int bad(char *err, size_t size, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, size, fmt, ap);
	va_end(ap);
	return r;
}

/* Translates a ring's addresses against the current memory table; the lock is held. */
static int ring_map(struct vu_dev *d, struct vu_ring *r)
{
	if (!r->addr_set || r->num == 0)
		return -EINVAL;
	r->vq.mem = &d->mem;
	return dp_vq_set_addr(&r->vq, r->num, r->desc_uva, r->avail_uva, r->used_uva);
}

static void ring_apply_features(struct vu_dev *d, struct vu_ring *r)
{
	r->vq.event_idx = d->features & F_EVENT_IDX;
	r->vq.log = (d->features & F_LOG_ALL) && d->log.bits ? &d->log : NULL;
	r->vq.log_used = r->addr_flags & (1u << 0 /* VHOST_VRING_F_LOG */);
	r->vq.used_gpa = r->log_gpa;
}

/* A ring starts when it has addresses, a size and its kick fd (the spec's
 * "start ring upon receiving a kick": we poll, so the fd is the sign). */
static int ring_start(struct vu_dev *d, struct vu_ring *r, char *err, size_t err_size)
{
	uint64_t n_broken = r->vq.n_broken;
	int call_fd = r->vq.call_fd, err_fd = r->vq.err_fd, k;

	/* the receive side's segments of a burst (256 KiB): made when first needed */
	if ((r - d->rings) % 2 && !r->iov) {
		r->iov = calloc((size_t)DP_BURST_MAX * DP_CHAIN_MAX_SEGS, sizeof(struct iovec));
		if (!r->iov)
			return bad(err, err_size, -ENOMEM, "ring %td: %s", r - d->rings, strerror(ENOMEM));
	}
	dp_vq_init(&r->vq, &d->mem);
	r->vq.n_broken = n_broken;
	r->vq.call_fd = call_fd;
	r->vq.err_fd = err_fd;
	/* the layout is fixed while the ring runs: a SET_FEATURES meanwhile does not change it */
	r->vq.packed = d->features & F_RING_PACKED;
	if (r->vq.packed) {
		uint16_t at = r->base & 0x7fff;

		/* a burst's used entries: never more than the ring's descriptors */
		if (r->shadow_size < r->num) {
			struct dp_used_elem *sh = realloc(r->shadow, r->num * sizeof(*sh));

			if (!sh)
				return bad(err, err_size, -ENOMEM, "ring %td: %s", r - d->rings, strerror(ENOMEM));
			r->shadow = sh;
			r->shadow_size = r->num;
		}
		r->vq.shadow = r->shadow;
		if (at >= r->num) {
			r->started = false;
			return bad(err, err_size, -EINVAL, "ring %td: base %u outside the packed ring of %u", r - d->rings,
				   at, r->num);
		}
	}
	k = ring_map(d, r);
	if (k < 0) {
		r->started = false;
		return bad(err, err_size, k, "ring %td: addresses outside guest memory or bad size %u",
			   r - d->rings, r->num);
	}
	if (r->vq.packed) {
		/* packed: the position and the avail wrap counter in bit 15; every
		 * chain taken was used before the ring stopped, so used is there too */
		r->vq.last_avail = r->vq.last_used = r->base & 0x7fff;
		r->vq.avail_wrap = r->vq.used_wrap = r->base >> 15;
	} else {
		r->vq.last_avail = r->vq.last_used = r->base;
	}
	ring_apply_features(d, r);
	dp_vq_suppress_kicks(&r->vq);
	r->n_heads = 0;
	r->started = true;
	return 0;
}

/*
 * A mapping longer than its file maps fine and faults (SIGBUS) when the
 * guest's ring points past the end: a frontend could crash us that way, so
 * a file (memfd, hugetlbfs, tmpfs) must cover what it maps.
 */
static int check_backing(int fd, uint64_t len)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return negative_errno();
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < len)
		return -EINVAL;
	return 0;
}

static int set_mem_table(struct vu_dev *d, struct vu_msg *m, int *fds, unsigned n_fds, char *err, size_t es)
{
	struct dp_mem mem = { 0 };
	uint32_t n = m->payload.memory.nregions;
	int k = 0;

	if (m->hdr.size < 8 || n == 0 || n > DP_MEM_MAX_REGIONS || m->hdr.size < 8 + 32 * n)
		return bad(err, es, -EINVAL, "SET_MEM_TABLE: %u regions in %u bytes", n, m->hdr.size);
	if (n_fds != n)
		return bad(err, es, -EINVAL, "SET_MEM_TABLE: %u regions, %u fds", n, n_fds);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t gpa = m->payload.memory.regions[i].gpa, size = m->payload.memory.regions[i].size;
		uint64_t uva = m->payload.memory.regions[i].uva, off = m->payload.memory.regions[i].mmap_offset;
		void *p;

		if (size == 0 || gpa + size < gpa || uva + size < uva || off + size < off || off + size > SIZE_MAX) {
			k = bad(err, es, -EINVAL, "SET_MEM_TABLE: region %u: gpa 0x%llx size 0x%llx offset 0x%llx", i,
				(unsigned long long)gpa, (unsigned long long)size, (unsigned long long)off);
			goto fail;
		}
		for (uint32_t j = 0; j < i; j++)
			if (gpa < mem.r[j].gpa + mem.r[j].size && mem.r[j].gpa < gpa + size) {
				k = bad(err, es, -EINVAL, "SET_MEM_TABLE: regions %u and %u overlap", j, i);
				goto fail;
			}
		k = check_backing(fds[i], off + size);
		if (k < 0) {
			bad(err, es, k, "SET_MEM_TABLE: region %u: 0x%llx bytes past the end of its file", i,
			    (unsigned long long)(off + size));
			goto fail;
		}
		p = mmap(NULL, off + size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[i], 0);
		if (p == MAP_FAILED) {
			k = negative_errno();
			bad(err, es, k, "SET_MEM_TABLE: mmap of region %u (0x%llx bytes): %s", i,
			    (unsigned long long)(off + size), strerror(-k));
			goto fail;
		}
		mem.r[i] = (struct dp_mem_region){ .gpa = gpa, .size = size, .uva = uva, .hva = (uint8_t *)p + off,
						   .map_base = p, .map_size = off + size };
		mem.n = i + 1;
	}
	/* the fds may be closed now: the mappings keep the memory */
	lock_all(d);
	dp_mem_unmap(&d->mem);
	d->mem = mem;
	for (unsigned i = 0; i < 2 * d->max_queue_pairs; i++) {
		struct vu_ring *r = &d->rings[i];

		if (!r->started)
			continue;
		/* memory hotplug moves rings: translate again, keep the indices.
		 * The size cannot change under a running ring (SET_VRING_NUM is
		 * refused then), but the positions and the packed shadow were
		 * checked against vq.size at start: a remap at any other size
		 * would let them point past the ring, so it breaks it instead */
		if (r->num != r->vq.size ||
		    (r->vq.packed && (r->shadow_size < r->num || r->vq.last_avail >= r->num || r->vq.last_used >= r->num)))
			dp_vq_break(&r->vq, "ring of %u entries remapped at size %u", r->vq.size, r->num);
		else if (ring_map(d, r) < 0)
			dp_vq_break(&r->vq, "ring no longer inside the new memory table");
	}
	unlock_all(d);
	return 0;
fail:
	dp_mem_unmap(&mem);
	return k;
}

static int set_log_base(struct vu_dev *d, struct vu_msg *m, int *fds, unsigned n_fds, char *err, size_t es)
{
	uint64_t size = m->payload.log.size, off = m->payload.log.offset;
	struct dp_log log = { 0 };
	void *p;

	if (!(d->protocol_features & PF_LOG_SHMFD))
		return bad(err, es, -EINVAL, "SET_LOG_BASE without LOG_SHMFD");
	if (m->hdr.size != 16 || n_fds != 1)
		return bad(err, es, -EINVAL, "SET_LOG_BASE: %u bytes, %u fds", m->hdr.size, n_fds);
	if (size == 0 || off + size < off || off + size > (1ull << 40))
		return bad(err, es, -EINVAL, "SET_LOG_BASE: size 0x%llx offset 0x%llx", (unsigned long long)size,
			   (unsigned long long)off);
	if (check_backing(fds[0], off + size) < 0)
		return bad(err, es, -EINVAL, "SET_LOG_BASE: 0x%llx bytes past the end of its file",
			   (unsigned long long)(off + size));
	p = mmap(NULL, off + size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
	if (p == MAP_FAILED) {
		int k = negative_errno();

		return bad(err, es, k, "SET_LOG_BASE: mmap: %s", strerror(-k));
	}
	log = (struct dp_log){ .bits = (uint8_t *)p + off, .size = size, .map_base = p, .map_size = off + size };
	lock_all(d);
	dp_log_unmap(&d->log);
	d->log = log;
	for (unsigned i = 0; i < 2 * d->max_queue_pairs; i++)
		ring_apply_features(d, &d->rings[i]);
	unlock_all(d);
	/* the spec's reply: an empty u64 once the log is in place */
	m->payload.u64 = 0;
	m->hdr.size = 8;
	return 1;
}

static struct vu_ring *ring_of(struct vu_dev *d, uint32_t index)
{
	return index < 2 * d->max_queue_pairs ? &d->rings[index] : NULL;
}

/* Returns > 0 when msg holds a reply, 0 done, < 0 refused. */
static int dispatch(struct vu_dev *d, struct vu_msg *m, int *fds, unsigned n_fds, char *err, size_t es)
{
	uint32_t size = m->hdr.size;
	struct vu_ring *r;
	int k;

#define WANT_SIZE(n)                                                                                     \
	do {                                                                                             \
		if (size != (n))                                                                         \
			return bad(err, es, -EINVAL, "request %u: payload of %u bytes, wanted %u", m->hdr.request, \
				   size, (unsigned)(n));                                                 \
	} while (0)

	switch (m->hdr.request) {
	case VU_GET_FEATURES:
		m->payload.u64 = VU_FEATURES;
		m->hdr.size = 8;
		return 1;
	case VU_SET_FEATURES:
		WANT_SIZE(8);
		if (m->payload.u64 & ~VU_FEATURES)
			return bad(err, es, -EINVAL, "SET_FEATURES: 0x%llx not offered",
				   (unsigned long long)(m->payload.u64 & ~VU_FEATURES));
		lock_all(d);
		d->features = m->payload.u64;
		d->mrg_rxbuf = d->features & F_MRG_RXBUF;
		d->hdr_len = (d->features & (F_VERSION_1 | F_MRG_RXBUF)) ? 12 : 10;
		for (unsigned i = 0; i < 2 * d->max_queue_pairs; i++) {
			ring_apply_features(d, &d->rings[i]);
			/* without the protocol features rings start enabled (spec: "Ring states") */
			if (!(d->features & F_PROTOCOL_FEATURES))
				d->rings[i].enabled = true;
		}
		unlock_all(d);
		return 0;
	case VU_SET_OWNER:
		return 0;
	case VU_RESET_OWNER:
		vu_dev_reset(d);
		return 0;
	case VU_GET_PROTOCOL_FEATURES:
		m->payload.u64 = VU_PROTOCOL_FEATURES;
		m->hdr.size = 8;
		return 1;
	case VU_SET_PROTOCOL_FEATURES:
		WANT_SIZE(8);
		if (m->payload.u64 & ~VU_PROTOCOL_FEATURES)
			return bad(err, es, -EINVAL, "SET_PROTOCOL_FEATURES: 0x%llx not offered",
				   (unsigned long long)(m->payload.u64 & ~VU_PROTOCOL_FEATURES));
		d->protocol_features = m->payload.u64;
		return 0;
	case VU_GET_QUEUE_NUM:
		m->payload.u64 = d->max_queue_pairs;
		m->hdr.size = 8;
		return 1;
	case VU_SET_MEM_TABLE:
		return set_mem_table(d, m, fds, n_fds, err, es);
	case VU_SET_LOG_BASE:
		return set_log_base(d, m, fds, n_fds, err, es);
	case VU_SET_LOG_FD:
		/* the caller closes the fd: we log through the shared memory only */
		return 0;
	case VU_SET_VRING_NUM:
	case VU_SET_VRING_BASE:
	case VU_SET_VRING_ENABLE:
	case VU_GET_VRING_BASE:
		WANT_SIZE(8);
		r = ring_of(d, m->payload.state.index);
		if (!r)
			return bad(err, es, -EINVAL, "request %u: ring %u of %u", m->hdr.request, m->payload.state.index,
				   2 * d->max_queue_pairs);
		dp_lock(&r->lock);
		k = 0;
		if (m->hdr.request == VU_SET_VRING_NUM) {
			uint32_t num = m->payload.state.num;

			/* a packed ring's size need not be a power of two (2.8.10.1) */
			/* the size is fixed while the ring runs (libvhost-user and DPDK
			 * apply it only before the start): the shadow, the positions
			 * and the walked descriptors were all checked against it */
			if (r->started)
				k = bad(err, es, -EBUSY, "SET_VRING_NUM: ring %u: size %u while the ring runs",
					m->payload.state.index, num);
			else if (num == 0 || num > DP_VQ_MAX_SIZE || (!(d->features & F_RING_PACKED) && (num & (num - 1))))
				k = bad(err, es, -EINVAL, "SET_VRING_NUM: ring %u: size %u", m->payload.state.index, num);
			else
				r->num = num;
		} else if (m->hdr.request == VU_SET_VRING_BASE) {
			/* packed: bits 16-31 say where used is; a frontend that stopped
			 * us left nothing in flight, so it is where avail is, and a
			 * frontend that says otherwise gets used = avail, as from DPDK */
			if (m->payload.state.num > 0xffff && !(d->features & F_RING_PACKED))
				k = bad(err, es, -EINVAL, "SET_VRING_BASE: ring %u: index %u", m->payload.state.index,
					m->payload.state.num);
			else
				r->base = (uint16_t)m->payload.state.num;
		} else if (m->hdr.request == VU_SET_VRING_ENABLE) {
			r->enabled = m->payload.state.num != 0;
		} else {
			/* stop the ring: where we are is where the frontend resumes.
			 * Packed: bits 0-14 the position, 15 the avail wrap counter,
			 * and the same for used in bits 16-31 (vhost-user's "vring
			 * descriptor indices for packed virtqueues"): all we took was
			 * used, so used stands where avail does */
			bool packed = r->started ? r->vq.packed : (d->features & F_RING_PACKED);

			if (r->started && packed)
				m->payload.state.num = (uint32_t)r->vq.last_avail | (uint32_t)r->vq.avail_wrap << 15;
			else
				m->payload.state.num = r->started ? r->vq.last_avail : r->base;
			if (packed)
				m->payload.state.num |= (m->payload.state.num & 0xffff) << 16;
			r->base = (uint16_t)m->payload.state.num;
			r->started = false;
			if (r->kick_fd >= 0)
				close(r->kick_fd);
			r->kick_fd = -1;
			k = 1;
		}
		dp_unlock(&r->lock);
		return k;
	case VU_SET_VRING_ADDR:
		WANT_SIZE(sizeof(m->payload.addr));
		r = ring_of(d, m->payload.addr.index);
		if (!r)
			return bad(err, es, -EINVAL, "SET_VRING_ADDR: ring %u of %u", m->payload.addr.index,
				   2 * d->max_queue_pairs);
		dp_lock(&r->lock);
		r->desc_uva = m->payload.addr.desc;
		r->avail_uva = m->payload.addr.avail;
		r->used_uva = m->payload.addr.used;
		r->log_gpa = m->payload.addr.log;
		r->addr_flags = m->payload.addr.flags;
		r->addr_set = true;
		/*
		 * A running ring gets new addresses when QEMU turns dirty
		 * logging on or off at a migration's start or end
		 * (vhost_dev_set_log() sends SET_VRING_ADDR with or without
		 * VHOST_VRING_F_LOG for every ring, running or not): translate
		 * them and keep where the ring is. Beginning it again at the
		 * base of its last start took chains again that were used long
		 * ago. Addresses outside guest memory break the ring.
		 */
		if (r->started && ring_map(d, r) < 0)
			dp_vq_break(&r->vq, "new addresses of a running ring outside guest memory");
		else if (r->started)
			ring_apply_features(d, r);
		dp_unlock(&r->lock);
		return 0;
	case VU_SET_VRING_KICK:
	case VU_SET_VRING_CALL:
	case VU_SET_VRING_ERR: {
		uint64_t v = m->payload.u64;
		int fd = -1;

		WANT_SIZE(8);
		r = ring_of(d, v & VRING_IDX_MASK);
		if (!r || (v & ~(VRING_IDX_MASK | VRING_NOFD)))
			return bad(err, es, -EINVAL, "request %u: bad ring word 0x%llx", m->hdr.request,
				   (unsigned long long)v);
		if (!(v & VRING_NOFD)) {
			if (n_fds != 1)
				return bad(err, es, -EINVAL, "request %u: %u fds, wanted 1", m->hdr.request, n_fds);
			fd = fds[0];
			fds[0] = -1;
		}
		dp_lock(&r->lock);
		k = 0;
		if (m->hdr.request == VU_SET_VRING_CALL) {
			if (r->vq.call_fd >= 0)
				close(r->vq.call_fd);
			r->vq.call_fd = fd;
		} else if (m->hdr.request == VU_SET_VRING_ERR) {
			if (r->vq.err_fd >= 0)
				close(r->vq.err_fd);
			r->vq.err_fd = fd;
		} else {
			if (r->kick_fd >= 0)
				close(r->kick_fd);
			r->kick_fd = fd;
			k = ring_start(d, r, err, es);
		}
		dp_unlock(&r->lock);
		return k;
	}
	case VU_SEND_RARP:
	case VU_NET_SET_MTU:
		/* we forward whatever comes; nothing to change */
		return 0;
	default:
		return bad(err, es, -EOPNOTSUPP, "request %u not supported", m->hdr.request);
	}
#undef WANT_SIZE
}

int vu_handle_message(struct vu_dev *d, struct vu_msg *msg, int *fds, unsigned n_fds, bool *ret_reply,
		      char *err, size_t err_size)
{
	bool need_ack = (d->protocol_features & PF_REPLY_ACK) && (msg->hdr.flags & VU_FLAG_NEED_REPLY);
	int r;

	err[0] = '\0';
	*ret_reply = false;
	r = vu_msg_check_header(&msg->hdr);
	if (r < 0)
		return bad(err, err_size, r, "bad header: flags 0x%x size %u", msg->hdr.flags, msg->hdr.size);
	/* what the payload does not cover reads as zeros, never as stale bytes */
	memset(msg->payload.bytes + msg->hdr.size, 0, sizeof(msg->payload) - msg->hdr.size);
	r = dispatch(d, msg, fds, n_fds, err, err_size);
	if (r > 0) {
		msg->hdr.flags = VU_VERSION | VU_FLAG_REPLY;
		*ret_reply = true;
		return 0;
	}
	if (need_ack) {
		/* REPLY_ACK: 0 for success, anything else for failure */
		msg->payload.u64 = r < 0 ? 1 : 0;
		msg->hdr.size = 8;
		msg->hdr.flags = VU_VERSION | VU_FLAG_REPLY;
		*ret_reply = true;
	}
	return r;
}
