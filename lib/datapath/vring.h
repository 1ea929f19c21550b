/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Guest memory and virtqueues, split (virtio 1.2, 2.7) and packed (2.8),
 * as a vhost-user backend sees them.
 *
 * Everything the guest controls is reached through one bounds-checked
 * translation (guest address and length -> host pointer, or fail), as
 * libvhost-user's vu_gpa_to_va() does, and a descriptor chain is walked
 * with a hard bound (virtio 1.2, 2.7.5.3.1: the driver must not create a
 * loop or a chain longer than the queue; the device must not trust that).
 * A ring that breaks a rule is marked broken, the virtio NEEDS_RESET state:
 * it is not touched again until the frontend sets it up anew, and the
 * reason is kept for the log and the counters.
 *
 * Private to lib/datapath (the unit tests and fuzzers include it too).
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include <linux/virtio_ring.h>

#define _dp_unlikely(x) __builtin_expect(!!(x), 0)

/* vhost-user's baseline table size (VHOST_MEMORY_BASELINE_NREGIONS); more
 * needs CONFIGURE_MEM_SLOTS, which we do not offer. */
#define DP_MEM_MAX_REGIONS 8
/* The largest ring virtio allows (2.7 and 2.8: up to 32768 entries; a
 * packed ring's size need not be a power of two, a split ring's must). */
#define DP_VQ_MAX_SIZE 32768
/* Segments one chain may yield; a longer chain is legal but dropped. */
#define DP_CHAIN_MAX_SEGS 64

struct dp_mem_region {
	uint64_t gpa;  /* guest physical address of the first byte */
	uint64_t size; /* bytes */
	uint64_t uva;  /* the frontend's virtual address of the first byte */
	uint8_t *hva;  /* our mapping of the first byte */
	void *map_base;
	size_t map_size;
};

struct dp_mem {
	unsigned n;
	struct dp_mem_region r[DP_MEM_MAX_REGIONS];
};

/*
 * Guest physical address -> our pointer. On success *len is clipped to the
 * bytes contiguous in our mapping (at least 1); NULL when gpa is in no region.
 */
static inline uint8_t *dp_mem_gpa(const struct dp_mem *m, uint64_t gpa, uint64_t *len)
{
	for (unsigned i = 0; i < m->n; i++) {
		const struct dp_mem_region *r = &m->r[i];
		uint64_t off = gpa - r->gpa;

		/* unsigned: gpa below the region wraps to a huge offset */
		if (off < r->size) {
			if (*len > r->size - off)
				*len = r->size - off;
			return r->hva + off;
		}
	}
	return NULL;
}

/* A whole [uva, uva+len) of the frontend's address space inside one region, or NULL. */
uint8_t *dp_mem_uva(const struct dp_mem *m, uint64_t uva, uint64_t len);
/* A whole [gpa, gpa+len) inside one region, or NULL. */
uint8_t *dp_mem_gpa_whole(const struct dp_mem *m, uint64_t gpa, uint64_t len);
/* Our pointer back to a guest physical address (for the dirty log); UINT64_MAX if none. */
uint64_t dp_mem_hva_to_gpa(const struct dp_mem *m, const void *p);
/* Unmaps every region; the table is empty afterwards. */
void dp_mem_unmap(struct dp_mem *m);

/* The dirty log of live migration (LOG_SHMFD): one bit per 4 KiB page of guest memory. */
struct dp_log {
	uint8_t *bits;
	uint64_t size; /* bytes of bits */
	void *map_base;
	size_t map_size;
};
#define DP_LOG_PAGE 4096
void dp_log_write(struct dp_log *log, uint64_t gpa, uint64_t len);
void dp_log_unmap(struct dp_log *log);

enum dp_vq_dir {
	DP_VQ_DEVICE_READS,  /* the guest transmits: we read its buffers */
	DP_VQ_DEVICE_WRITES, /* the guest receives: we fill its buffers */
};

/* A used entry of a packed ring, kept until the burst publishes it. */
struct dp_used_elem {
	uint16_t id;    /* the buffer id the driver gave the chain's last descriptor */
	uint16_t ndesc; /* ring descriptors the chain took: the used position moves by as many */
	uint32_t len;   /* bytes written */
};

/*
 * A chain as the walker hands it out and dp_vq_used_put() takes it back:
 * split rings, the head index; packed rings, the buffer id in the low 16
 * bits and the ring descriptors the chain took in the high 16.
 */
typedef uint32_t dp_chain_t;

/* Where the walk is (dp_vq_tell()): a caller that took chains it cannot use
 * after all gives them back with dp_vq_seek(), as if never taken. */
struct dp_vq_pos {
	uint16_t last_avail;
	bool avail_wrap;
	uint32_t pending;
};

struct dp_vq {
	/* the ring, translated; NULL until set up */
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	/* packed (2.8): the descriptor ring and the two event suppression areas,
	 * the driver's (vhost-user's "avail" address) and ours ("used") */
	struct vring_packed_desc *pdesc;
	struct vring_packed_desc_event *driver_event;
	struct vring_packed_desc_event *device_event;
	struct dp_used_elem *shadow; /* packed: size entries, the caller's memory */
	uint32_t size; /* split: a power of two */
	/* split: free-running indices; packed: positions in the ring (< size)
	 * with their wrap counters (2.8.1) */
	uint16_t last_avail; /* next avail entry we take */
	uint16_t last_used;  /* used->idx as we last published it */
	bool packed;
	bool avail_wrap, used_wrap;
	/* packed: ring descriptors taken and not yet published; a driver that
	 * makes more than the ring available (reusing descriptors we have not
	 * handed back) breaks the ring, so shadow[] cannot overflow */
	uint32_t pending;
	uint16_t signalled_used; /* used idx at our last interrupt (EVENT_IDX) */
	bool signalled_used_valid;
	bool event_idx;
	bool broken;
	const struct dp_mem *mem;
	struct dp_log *log;    /* non-NULL while dirty logging (VHOST_F_LOG_ALL) */
	uint64_t used_gpa;     /* where the used ring is in guest memory, for the log */
	bool log_used;
	int call_fd;           /* interrupt eventfd, -1: none */
	int err_fd;            /* error eventfd (SET_VRING_ERR), -1: none */
	unsigned mem_hint;     /* the region the last single-descriptor chain was in */
	char broken_reason[128];
	uint64_t n_broken;     /* times this ring was marked broken */
};

/* Resets the walking state (not fds); the ring is not broken anymore. */
void dp_vq_init(struct dp_vq *vq, const struct dp_mem *mem);
/*
 * Points vq at a ring in the frontend's address space (uva) whose three
 * parts are checked to lie whole in the memory table with their alignment
 * (2.7: 16 for descriptors, 2 avail, 4 used; 2.8.10: packed rings 16 for
 * descriptors, 4 for each event suppression area, which is what avail_uva
 * and used_uva point at). vq->packed says which layout; a packed ring also
 * needs vq->shadow of size entries before it is walked. Returns 0 or
 * -EINVAL/-EFAULT.
 */
int dp_vq_set_addr(struct dp_vq *vq, uint32_t size, uint64_t desc_uva, uint64_t avail_uva, uint64_t used_uva);
/* Marks the ring broken (NEEDS_RESET), keeps the reason, signals err_fd. Returns -EPROTO. */
int dp_vq_break(struct dp_vq *vq, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * 2.8.1: a packed descriptor is available when its AVAIL bit equals the
 * driver's wrap counter and its USED bit does not.
 */
static inline bool dp_packed_desc_avail(uint16_t flags, bool wrap)
{
	return !!(flags & (1u << VRING_PACKED_DESC_F_AVAIL)) == wrap &&
	       !!(flags & (1u << VRING_PACKED_DESC_F_USED)) != wrap;
}

/*
 * How many chains the driver made available since the last call took some:
 * at most max. Reads avail->idx once (acquire: the entries it covers are
 * read after it, 2.7.13). An index more than the ring size ahead breaks the
 * ring: -EPROTO. Packed rings: max when the next descriptor is available, 0
 * when not.
 */
static inline int dp_vq_avail(struct dp_vq *vq, unsigned max)
{
	if (vq->packed) {
		/* packed rings have no index to count: whether the next descriptor
		 * is available, and the walk stops at the first one that is not
		 * (dp_vq_pop() returns -EAGAIN) */
		uint16_t flags = __atomic_load_n(&vq->pdesc[vq->last_avail].flags, __ATOMIC_ACQUIRE);

		return dp_packed_desc_avail(flags, vq->avail_wrap) ? (int)max : 0;
	}
	uint16_t idx = __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE);
	uint16_t n = (uint16_t)(idx - vq->last_avail);

	if (_dp_unlikely(n > vq->size))
		return dp_vq_break(vq, "avail index %u is %u entries ahead of %u, ring size %u", idx, n,
				   vq->last_avail, vq->size);
	return n < max ? n : (int)max;
}

/*
 * The descriptor chain of the next available entry: its segments of the
 * direction we want (readable ones for DEVICE_READS, writable for
 * DEVICE_WRITES; the others are skipped) into iov[0..max_iov), their total
 * length, and the chain to hand back. Advances last_avail. Returns 0;
 * -E2BIG when the chain is well formed but has more than max_iov segments
 * (the caller drops the packet and still returns the chain); -EAGAIN on a
 * packed ring whose next descriptor is not available (nothing taken);
 * -EPROTO when the ring is broken (head or next out of range, a loop or a
 * chain longer than the ring, an address outside guest memory, a bad
 * indirect table, a readable descriptor after a writable one, a packed
 * driver making more descriptors available than the ring holds).
 */
int dp_vq_pop_chain(struct dp_vq *vq, enum dp_vq_dir dir, struct iovec *iov, unsigned max_iov, unsigned *ret_n,
		    uint32_t *ret_len, dp_chain_t *ret_head);
/* The same for packed rings (2.8), which dp_vq_pop_chain() hands to. */
int dp_vq_pop_packed(struct dp_vq *vq, enum dp_vq_dir dir, struct iovec *iov, unsigned max_iov, unsigned *ret_n,
		     uint32_t *ret_len, dp_chain_t *ret_head);

static inline struct dp_vq_pos dp_vq_tell(const struct dp_vq *vq)
{
	return (struct dp_vq_pos){ .last_avail = vq->last_avail, .avail_wrap = vq->avail_wrap, .pending = vq->pending };
}

static inline void dp_vq_seek(struct dp_vq *vq, struct dp_vq_pos pos)
{
	vq->last_avail = pos.last_avail;
	vq->avail_wrap = pos.avail_wrap;
	vq->pending = pos.pending;
}

/*
 * A region that holds all of [gpa, gpa+len), trying *hint first (rings keep
 * their buffers in one region: one compare instead of a table walk). The
 * hint is only where to look first, checked like any other region, so a
 * memory table that changed under it cannot make it wrong. NULL if none.
 */
static inline uint8_t *dp_mem_gpa_hint(const struct dp_mem *m, unsigned *hint, uint64_t gpa, uint64_t len)
{
	unsigned h = *hint;

	if (__builtin_expect(h < m->n, 1)) {
		const struct dp_mem_region *r = &m->r[h];
		uint64_t off = gpa - r->gpa;

		if (__builtin_expect(off < r->size && len <= r->size - off, 1))
			return r->hva + off;
	}
	for (unsigned i = 0; i < m->n; i++) {
		const struct dp_mem_region *r = &m->r[i];
		uint64_t off = gpa - r->gpa;

		if (off < r->size && len <= r->size - off) {
			*hint = i;
			return r->hva + off;
		}
	}
	return NULL;
}

/*
 * The chain almost every packet is (a virtio-net driver pushes the header
 * in front of the frame: one descriptor, no NEXT, no INDIRECT, of the
 * direction wanted, whole inside one region), taken without the general
 * walk; anything else goes to dp_vq_pop_chain(), which reads the chain
 * again from its head (nothing was consumed here). The rules are the same:
 * the head is checked against the ring, the descriptor read once (one load
 * for len, flags and next), its buffer checked against the memory table.
 */
static inline int dp_vq_pop(struct dp_vq *vq, enum dp_vq_dir dir, struct iovec *iov, unsigned max_iov,
			    unsigned *ret_n, uint32_t *ret_len, dp_chain_t *ret_head)
{
	uint16_t want = dir == DP_VQ_DEVICE_WRITES ? VRING_DESC_F_WRITE : 0;

	if (vq->packed) {
		const volatile struct vring_packed_desc *v = &vq->pdesc[vq->last_avail];
		/* the driver writes flags last, after a barrier (2.8, "Updating
		 * flags"): flags first (acquire), the rest of the descriptor after */
		uint16_t flags = __atomic_load_n(&vq->pdesc[vq->last_avail].flags, __ATOMIC_ACQUIRE);
		const uint16_t kind = VRING_DESC_F_NEXT | VRING_DESC_F_WRITE | VRING_DESC_F_INDIRECT;

		if (__builtin_expect(!vq->broken && max_iov > 0 && vq->pending < vq->size &&
				     dp_packed_desc_avail(flags, vq->avail_wrap) && (flags & kind) == want, 1)) {
			uint64_t addr = v->addr;
			uint32_t len = v->len;
			uint16_t id = v->id;
			uint8_t *p;

			if (__builtin_expect(len > 0, 1) && (p = dp_mem_gpa_hint(vq->mem, &vq->mem_hint, addr, len))) {
				if (++vq->last_avail == vq->size) {
					vq->last_avail = 0;
					vq->avail_wrap = !vq->avail_wrap;
				}
				vq->pending++;
				iov[0].iov_base = p;
				iov[0].iov_len = len;
				*ret_n = 1;
				*ret_len = len;
				*ret_head = 1u << 16 | id;
				return 0;
			}
		}
		return dp_vq_pop_packed(vq, dir, iov, max_iov, ret_n, ret_len, ret_head);
	}

	uint16_t head = __atomic_load_n(&vq->avail->ring[vq->last_avail & (vq->size - 1)], __ATOMIC_RELAXED);

	if (__builtin_expect(!vq->broken && head < vq->size && max_iov > 0, 1)) {
		const volatile struct vring_desc *v = &vq->desc[head];
		/* len, flags and next are one 8-byte word (2.7.5): one read, no torn view */
		uint64_t lfn = *(const volatile uint64_t *)&v->len, addr = v->addr;
		uint32_t len = (uint32_t)lfn;
		uint16_t flags = (uint16_t)(lfn >> 32);
		uint8_t *p;

		if (__builtin_expect(flags == want && len > 0, 1) &&
		    (p = dp_mem_gpa_hint(vq->mem, &vq->mem_hint, addr, len))) {
			vq->last_avail++;
			iov[0].iov_base = p;
			iov[0].iov_len = len;
			*ret_n = 1;
			*ret_len = len;
			*ret_head = head;
			return 0;
		}
	}
	return dp_vq_pop_chain(vq, dir, iov, max_iov, ret_n, ret_len, ret_head);
}

/*
 * Fills used entry `slot` entries after the last published one. Packed
 * rings keep it aside until dp_vq_used_publish(): the slot's place in the
 * ring depends on the chains before it, and writing there early would
 * overwrite descriptors a caller may still give back (dp_vq_seek()).
 */
static inline void dp_vq_used_put(struct dp_vq *vq, unsigned slot, dp_chain_t head, uint32_t len)
{
	if (vq->packed) {
		vq->shadow[slot] = (struct dp_used_elem){ .id = (uint16_t)head, .ndesc = (uint16_t)(head >> 16), .len = len };
		return;
	}
	struct vring_used_elem *e = &vq->used->ring[(uint16_t)(vq->last_used + slot) & (vq->size - 1)];

	e->id = (uint16_t)head;
	e->len = len;
}

/*
 * Publishes n used entries filled by dp_vq_used_put() with one store of
 * used->idx (release: the entries are visible first, 2.7.14), logs the
 * used ring when migrating, and interrupts the driver unless it asked not
 * to be (VRING_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX). One
 * write(2) per burst at most. Packed rings: the used descriptors are
 * written in place, the first one's flags last, so the driver sees the
 * burst at once; the driver event suppression area decides the interrupt.
 */
void dp_vq_used_publish(struct dp_vq *vq, unsigned n);


/*
 * We poll: ask the driver not to kick. Without EVENT_IDX that is
 * VRING_USED_F_NO_NOTIFY (2.7.7); with it, avail_event one behind our
 * position, which the driver crosses only after 65535 more buffers. Packed
 * rings: the device event suppression area's flags say DISABLE.
 */
static inline void dp_vq_suppress_kicks(struct dp_vq *vq)
{
	if (vq->packed)
		/* 2.8.10: DISABLE is valid with or without EVENT_IDX */
		__atomic_store_n(&vq->device_event->flags, VRING_PACKED_EVENT_FLAG_DISABLE, __ATOMIC_RELAXED);
	else if (vq->event_idx)
		__atomic_store_n((uint16_t *)&vq->used->ring[vq->size], (uint16_t)(vq->last_avail - 1),
				 __ATOMIC_RELAXED);
	else
		__atomic_store_n(&vq->used->flags, VRING_USED_F_NO_NOTIFY, __ATOMIC_RELAXED);
}
