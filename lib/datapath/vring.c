/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The ring walkers, split (virtio 1.2, 2.7) and packed (2.8), against a
 * hostile driver.
 *
 * What a guest can do to us, and what stops it:
 *  - an address outside its memory: every descriptor and indirect table
 *    goes through dp_mem_gpa(), which fails outside the table;
 *  - a loop (next pointing back) or a chain longer than the ring: the walk
 *    counts descriptors and breaks the ring past the ring size (or the
 *    indirect table's length), so it is bounded whatever the contents;
 *  - an index out of range (head, next) or an avail index that jumps more
 *    than a ring ahead: checked before use;
 *  - changing a descriptor while we read it: each descriptor is read once
 *    into locals (a volatile load), so a check and its use see one value;
 *  - lengths: summed in 64 bits and bounded; a chain too long for our
 *    segment array is dropped (-E2BIG), not trusted.
 * A broken ring is not touched again until the frontend sets it up anew
 * (dp_vq_init()), which is virtio's NEEDS_RESET; err_fd tells the frontend.
 *
 * Packed rings have no indices to check, so the rules there are: a chain
 * is at most the ring long (the walk counts, and positions wrap with the
 * wrap counter, never past the ring), an INDIRECT descriptor is a list on
 * its own (2.8.7: not with NEXT, not inside a chain), and the driver never
 * has more descriptors out than the ring holds (vq->pending): reusing one we
 * have not marked used is what a driver must not do (2.8, "A driver MUST NOT
 * change a descriptor unless it observes the VIRTQ_DESC_F_USED bit ...
 * changed"), and it is what would overrun the burst's used entries here.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vring.h"

uint8_t *dp_mem_uva(const struct dp_mem *m, uint64_t uva, uint64_t len)
{
	for (unsigned i = 0; i < m->n; i++) {
		const struct dp_mem_region *r = &m->r[i];
		uint64_t off = uva - r->uva;

		if (off < r->size && len <= r->size - off)
			return r->hva + off;
	}
	return NULL;
}

uint8_t *dp_mem_gpa_whole(const struct dp_mem *m, uint64_t gpa, uint64_t len)
{
	uint64_t got = len;
	uint8_t *p = dp_mem_gpa(m, gpa, &got);

	return p && got == len ? p : NULL;
}

uint64_t dp_mem_hva_to_gpa(const struct dp_mem *m, const void *p)
{
	for (unsigned i = 0; i < m->n; i++) {
		uint64_t off = (uint64_t)((const uint8_t *)p - m->r[i].hva);

		if ((const uint8_t *)p >= m->r[i].hva && off < m->r[i].size)
			return m->r[i].gpa + off;
	}
	return UINT64_MAX;
}

void dp_mem_unmap(struct dp_mem *m)
{
	for (unsigned i = 0; i < m->n; i++)
		if (m->r[i].map_base)
			munmap(m->r[i].map_base, m->r[i].map_size);
	memset(m, 0, sizeof(*m));
}

void dp_log_write(struct dp_log *log, uint64_t gpa, uint64_t len)
{
	if (!log || !log->bits || len == 0)
		return;
	for (uint64_t page = gpa / DP_LOG_PAGE, last = (gpa + len - 1) / DP_LOG_PAGE; page <= last; page++) {
		if (page / 8 >= log->size)
			return;
		/* atomic: workers of other queues log into the same bytes */
		__atomic_fetch_or(&log->bits[page / 8], (uint8_t)(1u << (page % 8)), __ATOMIC_RELAXED);
	}
}

void dp_log_unmap(struct dp_log *log)
{
	if (log->map_base)
		munmap(log->map_base, log->map_size);
	memset(log, 0, sizeof(*log));
}

void dp_vq_init(struct dp_vq *vq, const struct dp_mem *mem)
{
	vq->desc = NULL;
	vq->avail = NULL;
	vq->used = NULL;
	vq->pdesc = NULL;
	vq->driver_event = vq->device_event = NULL;
	vq->size = 0;
	vq->last_avail = vq->last_used = vq->signalled_used = 0;
	/* 2.8.1: both wrap counters start at 1 */
	vq->avail_wrap = vq->used_wrap = true;
	vq->pending = 0;
	vq->signalled_used_valid = false;
	vq->mem_hint = 0;
	vq->broken = false;
	vq->broken_reason[0] = '\0';
	vq->mem = mem;
}

int dp_vq_set_addr(struct dp_vq *vq, uint32_t size, uint64_t desc_uva, uint64_t avail_uva, uint64_t used_uva)
{
	/* the event fields (used_event, avail_event) are mapped whether or not
	 * EVENT_IDX is on: drivers always lay them out (2.7.2) */
	uint64_t desc_len = 16ull * size, avail_len = 6 + 2ull * size, used_len = 6 + 8ull * size;
	uint8_t *d, *a, *u;

	if (vq->packed) {
		/* 2.8.10.1: descriptors 16-aligned, each event suppression area 4 bytes, 4-aligned */
		if (size == 0 || size > DP_VQ_MAX_SIZE || (desc_uva & 15) || (avail_uva & 3) || (used_uva & 3))
			return -EINVAL;
		d = dp_mem_uva(vq->mem, desc_uva, desc_len);
		a = dp_mem_uva(vq->mem, avail_uva, sizeof(struct vring_packed_desc_event));
		u = dp_mem_uva(vq->mem, used_uva, sizeof(struct vring_packed_desc_event));
		if (!d || !a || !u)
			return -EFAULT;
		vq->pdesc = (struct vring_packed_desc *)d;
		vq->driver_event = (struct vring_packed_desc_event *)a;
		vq->device_event = (struct vring_packed_desc_event *)u;
		vq->size = size;
		return 0;
	}
	if (size == 0 || size > DP_VQ_MAX_SIZE || (size & (size - 1)))
		return -EINVAL;
	if ((desc_uva & 15) || (avail_uva & 1) || (used_uva & 3))
		return -EINVAL;
	d = dp_mem_uva(vq->mem, desc_uva, desc_len);
	a = dp_mem_uva(vq->mem, avail_uva, avail_len);
	u = dp_mem_uva(vq->mem, used_uva, used_len);
	if (!d || !a || !u)
		return -EFAULT;
	vq->desc = (struct vring_desc *)d;
	vq->avail = (struct vring_avail *)a;
	vq->used = (struct vring_used *)u;
	vq->size = size;
	return 0;
}

int dp_vq_break(struct dp_vq *vq, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(vq->broken_reason, sizeof(vq->broken_reason), fmt, ap);
	va_end(ap);
	if (!vq->broken)
		vq->n_broken++;
	vq->broken = true;
	if (vq->err_fd >= 0) {
		uint64_t one = 1;

		/* best effort: the frontend may have closed its end */
		if (write(vq->err_fd, &one, sizeof(one)) < 0) {
		}
	}
	return -EPROTO;
}

struct desc_copy {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next; /* split: the next descriptor; packed: the buffer id */
};

static inline struct desc_copy desc_read(const struct vring_desc *p)
{
	/* once, into locals: the guest may rewrite it meanwhile */
	const volatile struct vring_desc *v = p;

	return (struct desc_copy){ .addr = v->addr, .len = v->len, .flags = v->flags, .next = v->next };
}

/* A chain's segments as the walk gathers them. */
struct walk {
	struct iovec *iov;
	unsigned max_iov, n;
	uint64_t total;
	uint16_t want; /* VRING_DESC_F_WRITE for DEVICE_WRITES, else 0 */
	bool writable_seen, too_many;
};

/*
 * One descriptor of a chain into the walk: its buffer, if of the direction
 * wanted, through the memory table, split at region ends. -EPROTO (the ring
 * broken, naming the chain by `head`) for a readable descriptor after a
 * writable one or a buffer outside guest memory.
 */
static int walk_desc(struct dp_vq *vq, struct walk *w, uint32_t head, uint32_t idx, uint64_t addr, uint32_t len,
		     uint16_t flags)
{
	uint64_t left = len;

	if (flags & VRING_DESC_F_WRITE)
		w->writable_seen = true;
	else if (w->writable_seen)
		/* 2.7.4.2, 2.8 "Scatter-Gather Support": device-readable descriptors come first */
		return dp_vq_break(vq, "chain at head %u: readable descriptor %u after a writable one", head, idx);
	if ((flags & VRING_DESC_F_WRITE) != w->want || len == 0)
		return 0;
	w->total += len;
	while (left > 0) {
		uint64_t got = left;
		uint8_t *p = dp_mem_gpa(vq->mem, addr, &got);

		if (!p)
			return dp_vq_break(vq, "chain at head %u: buffer 0x%llx+%u outside guest memory", head,
					   (unsigned long long)(addr - (len - left)), len);
		if (w->n < w->max_iov) {
			w->iov[w->n].iov_base = p;
			w->iov[w->n].iov_len = got;
			w->n++;
		} else {
			/* keep walking: the rest of the chain must still be checked */
			w->too_many = true;
		}
		addr += got;
		left -= got;
	}
	return 0;
}

/* An indirect table's place in our memory (*ret): whole in one region,
 * 16-aligned, a whole number of 16-byte descriptors, at most a ring's worth
 * (2.7.5.3.1, and 2.8.5's default limit). Else the ring breaks: -EPROTO. */
static int indirect_table(struct dp_vq *vq, uint32_t head, uint64_t addr, uint32_t len, const void **ret)
{
	uint64_t tlen = len;
	const void *t;

	if (len == 0 || len % 16 || len / 16 > vq->size)
		return dp_vq_break(vq, "chain at head %u: indirect table of %u bytes", head, len);
	t = dp_mem_gpa(vq->mem, addr, &tlen);
	if (!t || tlen != len || (addr & 15))
		return dp_vq_break(vq, "chain at head %u: indirect table at 0x%llx+%u outside guest memory", head,
				   (unsigned long long)addr, len);
	*ret = t;
	return 0;
}

/* The walk's result: -E2BIG for a chain too long for the caller's segments. */
static int walk_done(const struct walk *w, unsigned *ret_n, uint32_t *ret_len)
{
	if (w->too_many || w->total > UINT32_MAX) {
		*ret_n = 0;
		*ret_len = 0;
		return -E2BIG;
	}
	*ret_n = w->n;
	*ret_len = (uint32_t)w->total;
	return 0;
}

static int pop_split(struct dp_vq *vq, enum dp_vq_dir dir, struct iovec *iov, unsigned max_iov, unsigned *ret_n,
		     uint32_t *ret_len, dp_chain_t *ret_head)
{
	const struct vring_desc *table = vq->desc;
	uint16_t head = __atomic_load_n(&vq->avail->ring[vq->last_avail & (vq->size - 1)], __ATOMIC_RELAXED);
	uint32_t table_size = vq->size, idx = head, seen = 0;
	struct walk w = { .iov = iov, .max_iov = max_iov, .want = dir == DP_VQ_DEVICE_WRITES ? VRING_DESC_F_WRITE : 0 };
	bool indirect = false;

	if (head >= vq->size)
		return dp_vq_break(vq, "avail entry %u: head %u outside the ring of %u", vq->last_avail, head, vq->size);
	vq->last_avail++;

	for (;;) {
		struct desc_copy d;

		if (idx >= table_size)
			return dp_vq_break(vq, "chain at head %u: next %u outside the %s of %u", head, idx,
					   indirect ? "indirect table" : "ring", table_size);
		/* more descriptors than the table holds can only be a loop */
		if (++seen > table_size)
			return dp_vq_break(vq, "chain at head %u: loop (more than %u descriptors)", head, table_size);
		d = desc_read(&table[idx]);

		if (d.flags & VRING_DESC_F_INDIRECT) {
			if (indirect)
				return dp_vq_break(vq, "chain at head %u: indirect descriptor inside an indirect table", head);
			if (d.flags & VRING_DESC_F_NEXT)
				return dp_vq_break(vq, "chain at head %u: descriptor %u is both INDIRECT and NEXT", head, idx);
			if (indirect_table(vq, head, d.addr, d.len, (const void **)&table) < 0)
				return -EPROTO;
			table_size = d.len / sizeof(struct vring_desc);
			indirect = true;
			idx = 0;
			seen = 0;
			continue;
		}
		if (walk_desc(vq, &w, head, idx, d.addr, d.len, d.flags) < 0)
			return -EPROTO;
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
		idx = d.next;
	}
	*ret_head = head;
	return walk_done(&w, ret_n, ret_len);
}

int dp_vq_pop_chain(struct dp_vq *vq, enum dp_vq_dir dir, struct iovec *iov, unsigned max_iov, unsigned *ret_n,
		    uint32_t *ret_len, dp_chain_t *ret_head)
{
	if (vq->broken)
		return -EPROTO;
	if (vq->packed)
		return dp_vq_pop_packed(vq, dir, iov, max_iov, ret_n, ret_len, ret_head);
	return pop_split(vq, dir, iov, max_iov, ret_n, ret_len, ret_head);
}

static inline struct desc_copy pdesc_read(const struct vring_packed_desc *p)
{
	/* once, into locals, as desc_read() */
	const volatile struct vring_packed_desc *v = p;

	return (struct desc_copy){ .addr = v->addr, .len = v->len, .flags = v->flags, .next = v->id };
}

int dp_vq_pop_packed(struct dp_vq *vq, enum dp_vq_dir dir, struct iovec *iov, unsigned max_iov, unsigned *ret_n,
		     uint32_t *ret_len, dp_chain_t *ret_head)
{
	struct walk w = { .iov = iov, .max_iov = max_iov, .want = dir == DP_VQ_DEVICE_WRITES ? VRING_DESC_F_WRITE : 0 };
	uint16_t first = vq->last_avail, pos = first, id;
	bool wrap = vq->avail_wrap;
	uint32_t ndesc = 0;

	if (vq->broken)
		return -EPROTO;
	/* the driver makes a list's first descriptor available last (2.8.6):
	 * once it is, the whole list is there; acquire orders the reads after */
	if (!dp_packed_desc_avail(__atomic_load_n(&vq->pdesc[first].flags, __ATOMIC_ACQUIRE), wrap))
		return -EAGAIN;
	for (;;) {
		struct desc_copy d = pdesc_read(&vq->pdesc[pos]);

		/* the list is at most the ring long, and with what we hold
		 * unpublished never more than the ring: past that the driver
		 * reuses descriptors it has not got back, or loops */
		if (vq->pending + ++ndesc > vq->size)
			return dp_vq_break(vq, "chain at head %u: %u descriptors with %u not yet used, ring of %u", first, ndesc,
					   vq->pending, vq->size);
		if (d.flags & VRING_DESC_F_INDIRECT) {
			const struct vring_packed_desc *table;

			/* 2.8.7: an indirect descriptor is a list on its own */
			if (ndesc > 1 || (d.flags & VRING_DESC_F_NEXT))
				return dp_vq_break(vq, "chain at head %u: INDIRECT descriptor %u in a list linked by NEXT", first, pos);
			if (indirect_table(vq, first, d.addr, d.len, (const void **)&table) < 0)
				return -EPROTO;
			/* every entry, in order; WRITE is their only flag (2.8.7), the rest are ignored */
			for (uint32_t i = 0; i < d.len / sizeof(*table); i++) {
				struct desc_copy e = pdesc_read(&table[i]);

				if (walk_desc(vq, &w, first, i, e.addr, e.len, e.flags & VRING_DESC_F_WRITE) < 0)
					return -EPROTO;
			}
			id = d.next;
			break;
		}
		if (walk_desc(vq, &w, first, pos, d.addr, d.len, d.flags) < 0)
			return -EPROTO;
		if (!(d.flags & VRING_DESC_F_NEXT)) {
			/* the buffer id is the last descriptor's (2.8.6) */
			id = d.next;
			break;
		}
		if (++pos == vq->size) {
			pos = 0;
			wrap = !wrap;
		}
	}
	if (++pos == vq->size) {
		pos = 0;
		wrap = !wrap;
	}
	vq->last_avail = pos;
	vq->avail_wrap = wrap;
	vq->pending += ndesc;
	*ret_head = ndesc << 16 | id;
	return walk_done(&w, ret_n, ret_len);
}

/*
 * A full barrier for the one order x86 does not keep, a store then a load:
 * a locked add of 0 to a stack word does it (DPDK's rte_smp_mb() and the
 * Linux kernel's x86-64 smp_mb() do the same; 128 bytes down, away from
 * the locals just written, as DPDK has it), where
 * __atomic_thread_fence(SEQ_CST) emits mfence, which also drains
 * non-temporal stores we never make and costs several times more.
 * lib/datapath is x86 only (datapath-internal.h).
 */
static inline void dp_store_load_barrier(void)
{
#if defined(__x86_64__)
	__asm__ __volatile__("lock; addl $0,-128(%%rsp)" ::: "memory", "cc");
#else
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}

static void notify_driver(const struct dp_vq *vq)
{
	uint64_t one = 1;

	/* EAGAIN only when the counter is full: the driver has plenty to read */
	if (vq->call_fd >= 0 && write(vq->call_fd, &one, sizeof(one)) < 0) {
	}
}

/*
 * Packed: the used descriptors in place, each at the position of its
 * list's first descriptor (2.8.6), the burst's first one's flags last so
 * the driver, which polls that one, sees the burst whole (as 2.8.9 asks of
 * multi-buffer requests). Flags: AVAIL and USED both our wrap counter
 * (2.8.1), WRITE when len counts bytes written (2.8.3).
 */
static void publish_packed(struct dp_vq *vq, unsigned n)
{
	uint16_t first = vq->last_used, pos = first, old = vq->signalled_used, first_flags = 0, flags;
	bool wrap = vq->used_wrap, notify;

	for (unsigned i = 0; i < n; i++) {
		const struct dp_used_elem *e = &vq->shadow[i];
		struct vring_packed_desc *d = &vq->pdesc[pos];
		uint16_t f = (uint16_t)((e->len ? VRING_DESC_F_WRITE : 0) |
					(wrap ? (1u << VRING_PACKED_DESC_F_AVAIL | 1u << VRING_PACKED_DESC_F_USED) : 0));

		d->id = e->id;
		d->len = e->len;
		if (i == 0)
			first_flags = f;
		else
			__atomic_store_n(&d->flags, f, __ATOMIC_RELEASE);
		/* the first one is logged after its flags store, below */
		if (_dp_unlikely(vq->log_used && vq->log) && i)
			dp_log_write(vq->log, dp_mem_hva_to_gpa(vq->mem, d), sizeof(*d));
		/* ndesc is 1..size: the walker counted it, and vq->pending bounds the sum */
		pos = (uint16_t)(pos + e->ndesc);
		if (pos >= vq->size) {
			pos = (uint16_t)(pos - vq->size);
			wrap = !wrap;
		}
		vq->pending = vq->pending > e->ndesc ? vq->pending - e->ndesc : 0;
	}
	__atomic_store_n(&vq->pdesc[first].flags, first_flags, __ATOMIC_RELEASE);
	/* logged after the store, not before: QEMU may sync the bitmap in
	 * between, and would then copy the page without these flags and never
	 * see it dirty again (the log is written after the data it covers) */
	if (_dp_unlikely(vq->log_used && vq->log))
		dp_log_write(vq->log, dp_mem_hva_to_gpa(vq->mem, &vq->pdesc[first]), sizeof(vq->pdesc[first]));
	vq->last_used = pos;
	vq->used_wrap = wrap;

	/* the flags stores before the driver's event area load (2.8,
	 * "Receiving Used Buffers": the driver re-checks after enabling) */
	dp_store_load_barrier();
	flags = __atomic_load_n(&vq->driver_event->flags, __ATOMIC_RELAXED) & 3;
	if (flags == VRING_PACKED_EVENT_FLAG_DISABLE) {
		notify = false;
	} else if (flags != VRING_PACKED_EVENT_FLAG_DESC || !vq->event_idx || !vq->signalled_used_valid) {
		notify = true;
	} else {
		/* EVENT_IDX in packed form: off_wrap names a ring position and the
		 * lap it is in; the positions are made one linear count (a lap
		 * back is size back) so vring_need_event() can compare them */
		uint16_t off_wrap = __atomic_load_n(&vq->driver_event->off_wrap, __ATOMIC_RELAXED);
		uint16_t off = off_wrap & 0x7fff;

		if (pos <= old)
			old = (uint16_t)(old - vq->size);
		if (!!(off_wrap >> VRING_PACKED_EVENT_F_WRAP_CTR) != wrap)
			off = (uint16_t)(off - vq->size);
		notify = vring_need_event(off, pos, old);
	}
	vq->signalled_used = pos;
	vq->signalled_used_valid = true;
	if (notify)
		notify_driver(vq);
}

void dp_vq_used_publish(struct dp_vq *vq, unsigned n)
{
	uint16_t old = vq->last_used, new_idx = (uint16_t)(old + n);
	bool notify;

	if (n == 0)
		return;
	if (vq->packed) {
		publish_packed(vq, n);
		return;
	}
	if (_dp_unlikely(vq->log_used && vq->log)) {
		/* the entries, then the index (2.7.8's layout: flags, idx, ring) */
		for (unsigned i = 0; i < n; i++) {
			uint64_t slot = (uint16_t)(old + i) & (vq->size - 1);

			dp_log_write(vq->log, vq->used_gpa + 4 + slot * sizeof(struct vring_used_elem),
				     sizeof(struct vring_used_elem));
		}
	}
	/* 2.7.14: the used entries are visible before the index that covers them */
	__atomic_store_n(&vq->used->idx, new_idx, __ATOMIC_RELEASE);
	vq->last_used = new_idx;
	if (_dp_unlikely(vq->log_used && vq->log))
		dp_log_write(vq->log, vq->used_gpa + 2, 2);

	if (vq->event_idx) {
		uint16_t event;

		/* 2.7.10: the index store before the used_event load (a full barrier:
		 * store-load order is the one x86 does not keep on its own) */
		dp_store_load_barrier();
		event = __atomic_load_n(&vq->avail->ring[vq->size], __ATOMIC_RELAXED);
		/* old: what the driver saw at our last interrupt, so a burst
		 * crossing used_event between two interrupts still signals */
		if (!vq->signalled_used_valid)
			notify = true;
		else
			notify = vring_need_event(event, new_idx, vq->signalled_used);
		vq->signalled_used = new_idx;
		vq->signalled_used_valid = true;
	} else {
		dp_store_load_barrier();
		notify = !(__atomic_load_n(&vq->avail->flags, __ATOMIC_RELAXED) & VRING_AVAIL_F_NO_INTERRUPT);
	}
	if (notify)
		notify_driver(vq);
}
