/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The split-ring walker (virtio 1.2, 2.7) against a hostile driver.
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
	vq->size = 0;
	vq->last_avail = vq->last_used = vq->signalled_used = 0;
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
	uint16_t next;
};

static inline struct desc_copy desc_read(const struct vring_desc *p)
{
	/* once, into locals: the guest may rewrite it meanwhile */
	const volatile struct vring_desc *v = p;

	return (struct desc_copy){ .addr = v->addr, .len = v->len, .flags = v->flags, .next = v->next };
}

int dp_vq_pop_chain(struct dp_vq *vq, enum dp_vq_dir dir, struct iovec *iov, unsigned max_iov, unsigned *ret_n,
		    uint32_t *ret_len, uint16_t *ret_head)
{
	const struct vring_desc *table = vq->desc;
	uint16_t head = __atomic_load_n(&vq->avail->ring[vq->last_avail & (vq->size - 1)], __ATOMIC_RELAXED);
	uint32_t table_size = vq->size, idx = head, seen = 0;
	uint16_t want = dir == DP_VQ_DEVICE_WRITES ? VRING_DESC_F_WRITE : 0;
	bool indirect = false, writable_seen = false, too_many = false;
	uint64_t total = 0;
	unsigned n = 0;

	if (vq->broken)
		return -EPROTO;
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
			uint64_t tlen = d.len;

			if (indirect)
				return dp_vq_break(vq, "chain at head %u: indirect descriptor inside an indirect table", head);
			if (d.flags & VRING_DESC_F_NEXT)
				return dp_vq_break(vq, "chain at head %u: descriptor %u is both INDIRECT and NEXT", head, idx);
			if (d.len == 0 || d.len % sizeof(struct vring_desc) || d.len / sizeof(struct vring_desc) > vq->size)
				return dp_vq_break(vq, "chain at head %u: indirect table of %u bytes", head, d.len);
			table = (const struct vring_desc *)dp_mem_gpa(vq->mem, d.addr, &tlen);
			if (!table || tlen != d.len || (d.addr & 15))
				return dp_vq_break(vq, "chain at head %u: indirect table at 0x%llx+%u outside guest memory",
						   head, (unsigned long long)d.addr, d.len);
			table_size = d.len / sizeof(struct vring_desc);
			indirect = true;
			idx = 0;
			seen = 0;
			continue;
		}

		if (d.flags & VRING_DESC_F_WRITE)
			writable_seen = true;
		else if (writable_seen)
			/* 2.7.4.2: device-readable descriptors come first */
			return dp_vq_break(vq, "chain at head %u: readable descriptor %u after a writable one", head, idx);

		if ((d.flags & VRING_DESC_F_WRITE) == want && d.len > 0) {
			uint64_t addr = d.addr, left = d.len;

			total += d.len;
			while (left > 0) {
				uint64_t got = left;
				uint8_t *p = dp_mem_gpa(vq->mem, addr, &got);

				if (!p)
					return dp_vq_break(vq, "chain at head %u: buffer 0x%llx+%u outside guest memory", head,
							   (unsigned long long)d.addr, d.len);
				if (n < max_iov) {
					iov[n].iov_base = p;
					iov[n].iov_len = got;
					n++;
				} else {
					/* keep walking: the rest of the chain must still be checked */
					too_many = true;
				}
				addr += got;
				left -= got;
			}
		}
		if (!(d.flags & VRING_DESC_F_NEXT))
			break;
		idx = d.next;
	}
	*ret_head = head;
	if (too_many || total > UINT32_MAX) {
		*ret_n = 0;
		*ret_len = 0;
		return -E2BIG;
	}
	*ret_n = n;
	*ret_len = (uint32_t)total;
	return 0;
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

void dp_vq_used_publish(struct dp_vq *vq, unsigned n)
{
	uint16_t old = vq->last_used, new_idx = (uint16_t)(old + n);
	bool notify;

	if (n == 0)
		return;
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
	if (notify && vq->call_fd >= 0) {
		uint64_t one = 1;

		/* EAGAIN only when the counter is full: the driver has plenty to read */
		if (write(vq->call_fd, &one, sizeof(one)) < 0) {
		}
	}
}
