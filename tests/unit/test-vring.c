// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The ring walkers against hostile rings, split (suite vring) and packed
 * (vring_packed, virtio 1.2 2.8): every rule lib/datapath/vring.c enforces
 * is broken here once, and the ring must end up broken (NEEDS_RESET) with a
 * reason naming the rule, the error eventfd signalled, and nothing outside
 * guest memory handed out. Well-formed rings, including wrapped indices
 * (packed: both wrap counters turning), indirect tables, in-place used
 * descriptors and event suppression, must still pass. For packed rings the
 * test is the driver, writing descriptors as 2.8's "Supplying Buffers" says.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lib/datapath/vring.h"

#define MEM_SIZE (1u << 20)
#define GPA_BASE 0x100000ull
#define UVA_BASE 0x7f0000000000ull
#define QSZ 8u
/* layout inside guest memory (offsets from GPA_BASE) */
#define DESC_OFF 0x0
#define AVAIL_OFF 0x1000
#define USED_OFF 0x2000
#define INDIRECT_OFF 0x3000
#define BUF_OFF 0x10000

static uint8_t *guest;
static struct dp_mem mem;
static struct dp_vq vq;

/* One region of zeroed guest memory and a ring not yet placed in it. */
static void mem_setup(void)
{
	guest = aligned_alloc(4096, MEM_SIZE);
	cr_assert_not_null(guest);
	memset(guest, 0, MEM_SIZE);
	memset(&mem, 0, sizeof(mem));
	mem.n = 1;
	mem.r[0] = (struct dp_mem_region){ .gpa = GPA_BASE, .size = MEM_SIZE, .uva = UVA_BASE, .hva = guest };
	memset(&vq, 0, sizeof(vq));
	vq.call_fd = vq.err_fd = -1;
	dp_vq_init(&vq, &mem);
}

static void setup(void)
{
	mem_setup();
	cr_assert_eq(dp_vq_set_addr(&vq, QSZ, UVA_BASE + DESC_OFF, UVA_BASE + AVAIL_OFF, UVA_BASE + USED_OFF), 0);
}

static void teardown(void)
{
	if (vq.err_fd >= 0)
		close(vq.err_fd);
	if (vq.call_fd >= 0)
		close(vq.call_fd);
	free(guest);
}

static struct vring_desc *desc(unsigned i)
{
	return &((struct vring_desc *)(guest + DESC_OFF))[i];
}

static struct vring_avail *avail(void)
{
	return (struct vring_avail *)(guest + AVAIL_OFF);
}

static struct vring_used *used(void)
{
	return (struct vring_used *)(guest + USED_OFF);
}

static void set_desc(struct vring_desc *d, uint64_t gpa, uint32_t len, uint16_t flags, uint16_t next)
{
	d->addr = gpa;
	d->len = len;
	d->flags = flags;
	d->next = next;
}

/* Makes head available at the driver's next slot. */
static void make_avail(uint16_t head)
{
	avail()->ring[avail()->idx & (QSZ - 1)] = head;
	avail()->idx++;
}

static int pop(enum dp_vq_dir dir, struct iovec *iov, unsigned max, unsigned *n, uint32_t *len, dp_chain_t *head)
{
	int r = dp_vq_avail(&vq, 32);

	if (r <= 0)
		return r < 0 ? r : -ENOENT;
	return dp_vq_pop(&vq, dir, iov, max, n, len, head);
}

static void assert_broken(int r, const char *reason_part)
{
	struct iovec iov[4];
	unsigned n;
	uint32_t len;
	dp_chain_t head;

	cr_assert_eq(r, -EPROTO, "got %d, wanted -EPROTO", r);
	cr_assert(vq.broken);
	cr_assert(strstr(vq.broken_reason, reason_part), "reason '%s' lacks '%s'", vq.broken_reason, reason_part);
	/* stays broken: nothing more is taken from it */
	make_avail(0);
	cr_assert_eq(dp_vq_pop(&vq, DP_VQ_DEVICE_READS, iov, 4, &n, &len, &head), -EPROTO);
}

TestSuite(vring, .init = setup, .fini = teardown);

Test(vring, good_chain_two_segments)
{
	struct iovec iov[4];
	unsigned n;
	uint32_t len;
	dp_chain_t head;

	set_desc(desc(3), GPA_BASE + BUF_OFF, 12, VRING_DESC_F_NEXT, 5);
	set_desc(desc(5), GPA_BASE + BUF_OFF + 100, 60, 0, 0);
	make_avail(3);
	cr_assert_eq(pop(DP_VQ_DEVICE_READS, iov, 4, &n, &len, &head), 0);
	cr_assert_eq(head, 3);
	cr_assert_eq(n, 2);
	cr_assert_eq(len, 72);
	cr_assert_eq(iov[0].iov_base, guest + BUF_OFF);
	cr_assert_eq(iov[1].iov_base, guest + BUF_OFF + 100);
	cr_assert_eq(iov[1].iov_len, 60);
	cr_assert_not(vq.broken);
	cr_assert_eq(dp_vq_avail(&vq, 32), 0);
}

Test(vring, address_outside_memory)
{
	struct iovec iov[4];
	unsigned n;
	uint32_t len;
	dp_chain_t head;
	int efd = eventfd(0, EFD_NONBLOCK);
	uint64_t v = 0;

	vq.err_fd = efd;
	set_desc(desc(0), GPA_BASE + MEM_SIZE + 4096, 64, 0, 0);
	make_avail(0);
	assert_broken(pop(DP_VQ_DEVICE_READS, iov, 4, &n, &len, &head), "outside guest memory");
	/* the frontend hears about it on the error eventfd */
	cr_assert_eq(read(efd, &v, sizeof(v)), sizeof(v));
	cr_assert_eq(v, 1);
	cr_assert_eq(vq.n_broken, 1);
}

Test(vring, buffer_running_off_the_end)
{
	struct iovec iov[4];
	unsigned n;
	uint32_t len;
	dp_chain_t head;

	/* starts inside, ends past the region: no partial trust */
	set_desc(desc(0), GPA_BASE + MEM_SIZE - 10, 64, 0, 0);
	make_avail(0);
	assert_broken(pop(DP_VQ_DEVICE_READS, iov, 4, &n, &len, &head), "outside guest memory");
}

Test(vring, address_below_memory_and_wrapping)
{
	struct iovec iov[4];
	unsigned n;
	uint32_t len;
	dp_chain_t head;

	set_desc(desc(0), UINT64_MAX - 8, 64, 0, 0);
	make_avail(0);
	assert_broken(pop(DP_VQ_DEVICE_READS, iov, 4, &n, &len, &head), "outside guest memory");
}

Test(vring, descriptor_loop)
{
	struct iovec iov[64];
	unsigned n;
	uint32_t len;
	dp_chain_t head;

	set_desc(desc(0), GPA_BASE + BUF_OFF, 10, VRING_DESC_F_NEXT, 1);
	set_desc(desc(1), GPA_BASE + BUF_OFF, 10, VRING_DESC_F_NEXT, 0);
	make_avail(0);
	assert_broken(pop(DP_VQ_DEVICE_READS, iov, 64, &n, &len, &head), "loop");
}

Test(vring, self_loop_in_indirect_table)
{
	struct vring_desc *ind = (struct vring_desc *)(guest + INDIRECT_OFF);
	struct iovec iov[64];
	unsigned n;
	uint32_t len;
	dp_chain_t head;

	set_desc(desc(0), GPA_BASE + INDIRECT_OFF, 4 * sizeof(struct vring_desc), VRING_DESC_F_INDIRECT, 0);
	set_desc(&ind[0], GPA_BASE + BUF_OFF, 10, VRING_DESC_F_NEXT, 2);
	set_desc(&ind[2], GPA_BASE + BUF_OFF, 10, VRING_DESC_F_NEXT, 2);
	make_avail(0);
	assert_broken(pop(DP_VQ_DEVICE_READS, iov, 64, &n, &len, &head), "loop");
}

Test(vring, next_out_of_range)
{
	struct iovec iov[4];
	unsigned n;
	uint32_t len;
	dp_chain_t head;

	set_desc(desc(0), GPA_BASE + BUF_OFF, 10, VRING_DESC_F_NEXT, QSZ);
	make_avail(0);
	assert_broken(pop(DP_VQ_DEVICE_READS, iov, 4, &n, &len, &head), "outside the ring");
}

Test(vring, head_out_of_range)
{
	struct iovec iov[4];
	unsigned n;
	uint32_t len;
	dp_chain_t head;

	make_avail(QSZ + 3);
	assert_broken(pop(DP_VQ_DEVICE_READS, iov, 4, &n, &len, &head), "outside the ring");
}

Test(vring, oversize_chain_is_dropped_not_broken)
{
	struct iovec iov[2];
	unsigned n = 99;
	uint32_t len = 99;
	dp_chain_t head = 99;

	/* four well-formed segments, room for two: the packet is dropped, the head returned */
	for (unsigned i = 0; i < 4; i++)
		set_desc(desc(i), GPA_BASE + BUF_OFF + 64 * i, 64, i < 3 ? VRING_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	make_avail(0);
	cr_assert_eq(pop(DP_VQ_DEVICE_READS, iov, 2, &n, &len, &head), -E2BIG);
	cr_assert_eq(head, 0);
	cr_assert_eq(n, 0);
	cr_assert_not(vq.broken);
	/* the ring keeps working */
	set_desc(desc(6), GPA_BASE + BUF_OFF, 64, 0, 0);
	make_avail(6);
	cr_assert_eq(pop(DP_VQ_DEVICE_READS, iov, 2, &n, &len, &head), 0);
	cr_assert_eq(head, 6);
}

Test(vring, oversize_chain_rest_still_checked)
{
	struct iovec iov[1];
	unsigned n;
	uint32_t len;
	dp_chain_t head;

	/* past the segment limit, a bad address must still break the ring */
	set_desc(desc(0), GPA_BASE + BUF_OFF, 64, VRING_DESC_F_NEXT, 1);
	set_desc(desc(1), GPA_BASE + BUF_OFF, 64, VRING_DESC_F_NEXT, 2);
	set_desc(desc(2), 0x10, 64, 0, 0);
	make_avail(0);
	assert_broken(pop(DP_VQ_DEVICE_READS, iov, 1, &n, &len, &head), "outside guest memory");
}

Test(vring, wrapped_indices)
{
	struct iovec iov[4];
	unsigned n;
	uint32_t len;
	dp_chain_t head;

	/* both sides near 65535: the 16-bit indices wrap in the middle */
	vq.last_avail = 65534;
	vq.last_used = 65534;
	avail()->idx = 65534;
	used()->idx = 65534;
	for (unsigned i = 0; i < 4; i++) {
		set_desc(desc(i), GPA_BASE + BUF_OFF + 128 * i, 100 + i, 0, 0);
		make_avail((uint16_t)i);
	}
	cr_assert_eq(avail()->idx, 2);
	cr_assert_eq(dp_vq_avail(&vq, 32), 4);
	for (unsigned i = 0; i < 4; i++) {
		cr_assert_eq(dp_vq_pop(&vq, DP_VQ_DEVICE_READS, iov, 4, &n, &len, &head), 0);
		cr_assert_eq(head, i);
		cr_assert_eq(len, 100 + i);
		dp_vq_used_put(&vq, i, head, 0);
	}
	dp_vq_used_publish(&vq, 4);
	cr_assert_eq(used()->idx, 2);
	cr_assert_eq(used()->ring[65535 & (QSZ - 1)].id, 1);
	cr_assert_eq(used()->ring[0].id, 2);
	cr_assert_eq(vq.last_avail, 2);
}

Test(vring, avail_index_jumps_past_ring)
{
	avail()->idx = QSZ + 1;
	assert_broken(dp_vq_avail(&vq, 32), "ahead");
}

Test(vring, indirect_good)
{
	struct vring_desc *ind = (struct vring_desc *)(guest + INDIRECT_OFF);
	struct iovec iov[4];
	unsigned n;
	uint32_t len;
	dp_chain_t head;

	set_desc(desc(2), GPA_BASE + INDIRECT_OFF, 2 * sizeof(struct vring_desc), VRING_DESC_F_INDIRECT, 0);
	set_desc(&ind[0], GPA_BASE + BUF_OFF, 12, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	set_desc(&ind[1], GPA_BASE + BUF_OFF + 64, 1500, VRING_DESC_F_WRITE, 0);
	make_avail(2);
	cr_assert_eq(pop(DP_VQ_DEVICE_WRITES, iov, 4, &n, &len, &head), 0);
	cr_assert_eq(head, 2);
	cr_assert_eq(n, 2);
	cr_assert_eq(len, 1512);
}

Test(vring, indirect_nested)
{
	struct vring_desc *ind = (struct vring_desc *)(guest + INDIRECT_OFF);
	struct iovec iov[4];
	unsigned n;
	uint32_t len;
	dp_chain_t head;

	set_desc(desc(0), GPA_BASE + INDIRECT_OFF, sizeof(struct vring_desc), VRING_DESC_F_INDIRECT, 0);
	set_desc(&ind[0], GPA_BASE + INDIRECT_OFF, sizeof(struct vring_desc), VRING_DESC_F_INDIRECT, 0);
	make_avail(0);
	assert_broken(pop(DP_VQ_DEVICE_READS, iov, 4, &n, &len, &head), "indirect descriptor inside");
}

Test(vring, indirect_with_next)
{
	struct iovec iov[4];
	unsigned n;
	uint32_t len;
	dp_chain_t head;

	set_desc(desc(0), GPA_BASE + INDIRECT_OFF, sizeof(struct vring_desc), VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT,
		 1);
	make_avail(0);
	assert_broken(pop(DP_VQ_DEVICE_READS, iov, 4, &n, &len, &head), "both INDIRECT and NEXT");
}

Test(vring, indirect_bad_length)
{
	struct iovec iov[4];
	unsigned n;
	uint32_t len;
	dp_chain_t head;

	set_desc(desc(0), GPA_BASE + INDIRECT_OFF, 24, VRING_DESC_F_INDIRECT, 0);
	make_avail(0);
	assert_broken(pop(DP_VQ_DEVICE_READS, iov, 4, &n, &len, &head), "indirect table of 24 bytes");
}

Test(vring, indirect_table_outside_memory)
{
	struct iovec iov[4];
	unsigned n;
	uint32_t len;
	dp_chain_t head;

	set_desc(desc(0), GPA_BASE + MEM_SIZE - 16, 64, VRING_DESC_F_INDIRECT, 0);
	make_avail(0);
	assert_broken(pop(DP_VQ_DEVICE_READS, iov, 4, &n, &len, &head), "outside guest memory");
}

Test(vring, readable_after_writable)
{
	struct iovec iov[4];
	unsigned n;
	uint32_t len;
	dp_chain_t head;

	set_desc(desc(0), GPA_BASE + BUF_OFF, 12, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	set_desc(desc(1), GPA_BASE + BUF_OFF + 64, 64, 0, 0);
	make_avail(0);
	assert_broken(pop(DP_VQ_DEVICE_WRITES, iov, 4, &n, &len, &head), "readable descriptor 1 after a writable");
}

Test(vring, reinit_clears_broken)
{
	struct iovec iov[4];
	unsigned n;
	uint32_t len;
	dp_chain_t head;

	make_avail(QSZ);
	cr_assert_eq(pop(DP_VQ_DEVICE_READS, iov, 4, &n, &len, &head), -EPROTO);
	/* what the frontend's reset does: a fresh ring */
	memset(guest, 0, BUF_OFF);
	dp_vq_init(&vq, &mem);
	cr_assert_eq(dp_vq_set_addr(&vq, QSZ, UVA_BASE + DESC_OFF, UVA_BASE + AVAIL_OFF, UVA_BASE + USED_OFF), 0);
	cr_assert_not(vq.broken);
	set_desc(desc(1), GPA_BASE + BUF_OFF, 64, 0, 0);
	make_avail(1);
	cr_assert_eq(pop(DP_VQ_DEVICE_READS, iov, 4, &n, &len, &head), 0);
	cr_assert_eq(vq.n_broken, 1);
}

Test(vring, ring_addresses_checked)
{
	/* misaligned, outside memory, straddling its end, bad sizes */
	cr_assert_eq(dp_vq_set_addr(&vq, QSZ, UVA_BASE + 8, UVA_BASE + AVAIL_OFF, UVA_BASE + USED_OFF), -EINVAL);
	cr_assert_eq(dp_vq_set_addr(&vq, QSZ, UVA_BASE, UVA_BASE + AVAIL_OFF, UVA_BASE + USED_OFF + 2), -EINVAL);
	cr_assert_eq(dp_vq_set_addr(&vq, QSZ, 0x1000, UVA_BASE + AVAIL_OFF, UVA_BASE + USED_OFF), -EFAULT);
	cr_assert_eq(dp_vq_set_addr(&vq, QSZ, UVA_BASE, UVA_BASE + AVAIL_OFF, UVA_BASE + MEM_SIZE - 16), -EFAULT);
	cr_assert_eq(dp_vq_set_addr(&vq, 6, UVA_BASE, UVA_BASE + AVAIL_OFF, UVA_BASE + USED_OFF), -EINVAL);
	cr_assert_eq(dp_vq_set_addr(&vq, 65536, UVA_BASE, UVA_BASE + AVAIL_OFF, UVA_BASE + USED_OFF), -EINVAL);
	/* a big ring's descriptor table runs past guest memory */
	cr_assert_eq(dp_vq_set_addr(&vq, 32768, UVA_BASE + MEM_SIZE / 4 * 3, UVA_BASE + AVAIL_OFF, UVA_BASE + USED_OFF),
		     -EFAULT);
}

Test(vring, event_idx_suppresses_interrupts)
{
	int efd = eventfd(0, EFD_NONBLOCK);
	uint16_t *used_event = &avail()->ring[QSZ];
	uint64_t v;

	vq.call_fd = efd;
	vq.event_idx = true;
	/* first publish always signals: the driver's view is unknown */
	dp_vq_used_put(&vq, 0, 0, 0);
	dp_vq_used_publish(&vq, 1);
	cr_assert_eq(read(efd, &v, sizeof(v)), sizeof(v));
	/* the driver wants an interrupt only after entry 10 */
	*used_event = 10;
	dp_vq_used_put(&vq, 0, 0, 0);
	dp_vq_used_publish(&vq, 1);
	cr_assert_eq(read(efd, &v, sizeof(v)), -1);
	cr_assert_eq(errno, EAGAIN);
	for (unsigned i = 0; i < 9; i++)
		dp_vq_used_put(&vq, i, 0, 0);
	dp_vq_used_publish(&vq, 9); /* used idx 2 -> 11 crosses 10 */
	cr_assert_eq(read(efd, &v, sizeof(v)), sizeof(v));
	cr_assert_eq(v, 1);
}

Test(vring, no_interrupt_flag_without_event_idx)
{
	int efd = eventfd(0, EFD_NONBLOCK);
	uint64_t v;

	vq.call_fd = efd;
	avail()->flags = VRING_AVAIL_F_NO_INTERRUPT;
	dp_vq_used_put(&vq, 0, 0, 0);
	dp_vq_used_publish(&vq, 1);
	cr_assert_eq(read(efd, &v, sizeof(v)), -1);
	avail()->flags = 0;
	dp_vq_used_put(&vq, 0, 0, 0);
	dp_vq_used_publish(&vq, 1);
	cr_assert_eq(read(efd, &v, sizeof(v)), sizeof(v));
}

/* The used ring's writes logged into bits (one bit a 4 KiB page). */
static void log_used_into(struct dp_log *log, uint8_t *bits, size_t size)
{
	log->bits = bits;
	log->size = size;
	vq.log = log;
	vq.log_used = true;
}

Test(vring, dirty_log_marks_used_ring)
{
	struct dp_log log = { 0 };
	uint8_t bits[64] = { 0 };

	log_used_into(&log, bits, sizeof(bits));
	vq.used_gpa = GPA_BASE + USED_OFF;
	dp_vq_used_put(&vq, 0, 0, 0);
	dp_vq_used_publish(&vq, 1);
	/* page of the used ring: (0x100000 + 0x2000) / 4096 = 258 */
	cr_assert(bits[258 / 8] & (1u << (258 % 8)));
	cr_assert_eq(bits[257 / 8] & (1u << (257 % 8)), 0);
	/* a write past the log's end is ignored, not a crash */
	dp_log_write(&log, 1ull << 40, 4096);
}

/* dp_vq_pop()'s one-descriptor path starts at the region the last buffer was
 * in: that hint must never outlive the table it pointed into, and a buffer
 * it cannot place whole still gets the full walk (split, or refused). */
Test(vring, region_hint_never_outlives_the_memory_table)
{
	static uint8_t second[65536] __attribute__((aligned(4096)));
	struct iovec iov[4];
	unsigned n;
	uint32_t len;
	dp_chain_t head;

	/* a second region right after the first in guest addresses, apart in ours */
	mem.r[1] = (struct dp_mem_region){ .gpa = GPA_BASE + MEM_SIZE, .size = sizeof(second), .uva = UVA_BASE + (1ull << 32),
					   .hva = second };
	mem.n = 2;
	set_desc(desc(0), GPA_BASE + MEM_SIZE + 100, 64, 0, 0);
	make_avail(0);
	cr_assert_eq(pop(DP_VQ_DEVICE_READS, iov, 4, &n, &len, &head), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(iov[0].iov_base, second + 100);
	cr_assert_eq(vq.mem_hint, 1);
	/* straddling both regions: two segments, not one pointer running off the first */
	set_desc(desc(1), GPA_BASE + MEM_SIZE - 16, 64, 0, 0);
	make_avail(1);
	cr_assert_eq(pop(DP_VQ_DEVICE_READS, iov, 4, &n, &len, &head), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(iov[0].iov_base, guest + MEM_SIZE - 16);
	cr_assert_eq(iov[0].iov_len, 16);
	cr_assert_eq(iov[1].iov_base, second);
	cr_assert_eq(iov[1].iov_len, 48);
	cr_assert_eq(len, 64);
	/* the frontend drops the second region (memory unplugged): the hint still says 1 */
	set_desc(desc(2), GPA_BASE + MEM_SIZE + 100, 64, 0, 0);
	make_avail(2);
	cr_assert_eq(pop(DP_VQ_DEVICE_READS, iov, 4, &n, &len, &head), 0);
	cr_assert_eq(vq.mem_hint, 1);
	mem.n = 1;
	set_desc(desc(3), GPA_BASE + MEM_SIZE + 100, 64, 0, 0);
	make_avail(3);
	assert_broken(pop(DP_VQ_DEVICE_READS, iov, 4, &n, &len, &head), "outside guest memory");
}

Test(vring, single_descriptor_of_the_other_direction_is_not_handed_out)
{
	struct iovec iov[4] = { { 0 } };
	unsigned n = 9;
	uint32_t len = 9;
	dp_chain_t head;

	/* a writable buffer on a ring we read: skipped (no readable bytes), not a segment */
	set_desc(desc(0), GPA_BASE + BUF_OFF, 64, VRING_DESC_F_WRITE, 0);
	make_avail(0);
	cr_assert_eq(pop(DP_VQ_DEVICE_READS, iov, 4, &n, &len, &head), 0);
	cr_assert_eq(n, 0);
	cr_assert_eq(len, 0);
	cr_assert_eq(head, 0);
	/* and a readable one on a ring we write */
	set_desc(desc(1), GPA_BASE + BUF_OFF, 64, 0, 0);
	make_avail(1);
	cr_assert_eq(pop(DP_VQ_DEVICE_WRITES, iov, 4, &n, &len, &head), 0);
	cr_assert_eq(n, 0);
	cr_assert_eq(len, 0);
	cr_assert_eq(head, 1);
	cr_assert_not(vq.broken);
}

/* ---- packed rings ---- */

#define PQSZ 6u /* not a power of two: packed rings need not be */
#define DRIVER_OFF 0x1000
#define DEVICE_OFF 0x2000
#define F_AVAIL (1u << VRING_PACKED_DESC_F_AVAIL)
#define F_USED (1u << VRING_PACKED_DESC_F_USED)

static struct dp_used_elem shadow[PQSZ];
/* the driver's side: next descriptor to write and its wrap counter */
static uint16_t drv_next;
static bool drv_wrap;

static void setup_packed(void)
{
	mem_setup();
	vq.packed = true;
	vq.shadow = shadow;
	cr_assert_eq(dp_vq_set_addr(&vq, PQSZ, UVA_BASE + DESC_OFF, UVA_BASE + DRIVER_OFF, UVA_BASE + DEVICE_OFF), 0);
	drv_next = 0;
	drv_wrap = true;
}

static struct vring_packed_desc *pdesc(unsigned i)
{
	return &((struct vring_packed_desc *)(guest + DESC_OFF))[i];
}

static struct vring_packed_desc_event *driver_event(void)
{
	return (struct vring_packed_desc_event *)(guest + DRIVER_OFF);
}

static struct vring_packed_desc_event *device_event(void)
{
	return (struct vring_packed_desc_event *)(guest + DEVICE_OFF);
}

static uint16_t avail_flags(bool wrap)
{
	return wrap ? F_AVAIL : F_USED;
}

/*
 * Makes a list of n elements available as a driver does: every descriptor
 * written, the first one's flags last. flags[i] are WRITE/NEXT/INDIRECT;
 * NEXT is added for all but the last. Returns the first descriptor's index.
 */
static uint16_t post(unsigned n, const uint64_t *gpa, const uint32_t *len, const uint16_t *flags, uint16_t id)
{
	uint16_t first = drv_next, first_flags = 0;

	for (unsigned i = 0; i < n; i++) {
		struct vring_packed_desc *d = pdesc(drv_next);
		uint16_t f = (uint16_t)(flags[i] | (i + 1 < n ? VRING_DESC_F_NEXT : 0) | avail_flags(drv_wrap));

		d->addr = gpa[i];
		d->len = len[i];
		d->id = i + 1 == n ? id : 0xdead;
		if (i == 0)
			first_flags = f;
		else
			d->flags = f;
		if (++drv_next == PQSZ) {
			drv_next = 0;
			drv_wrap = !drv_wrap;
		}
	}
	__atomic_store_n(&pdesc(first)->flags, first_flags, __ATOMIC_RELEASE);
	return first;
}

static void post1(uint64_t gpa, uint32_t len, uint16_t flags, uint16_t id)
{
	post(1, &gpa, &len, &flags, id);
}

/* The chain ppop() took last: its segments, their count and length. */
static struct iovec piov[8];
static unsigned pn;
static uint32_t pgot;

static int ppop(enum dp_vq_dir dir, unsigned max_iov, dp_chain_t *head)
{
	return dp_vq_pop(&vq, dir, piov, max_iov, &pn, &pgot, head);
}

static void assert_packed_broken(int r, const char *reason_part)
{
	cr_assert_eq(r, -EPROTO, "got %d, wanted -EPROTO", r);
	cr_assert(vq.broken);
	cr_assert(strstr(vq.broken_reason, reason_part), "reason '%s' lacks '%s'", vq.broken_reason, reason_part);
}

TestSuite(vring_packed, .init = setup_packed, .fini = teardown);

Test(vring_packed, chain_then_used_in_place)
{
	uint64_t gpa[2] = { GPA_BASE + BUF_OFF, GPA_BASE + BUF_OFF + 100 };
	uint32_t len[2] = { 12, 60 };
	uint16_t fl[2] = { 0, 0 };
	dp_chain_t head;

	cr_assert_eq(dp_vq_avail(&vq, 32), 0, "nothing posted yet: the zeroed ring is not available");
	post(2, gpa, len, fl, 7);
	post1(GPA_BASE + BUF_OFF + 200, 40, 0, 9);
	cr_assert_eq(dp_vq_avail(&vq, 32), 32);
	cr_assert_eq(ppop(DP_VQ_DEVICE_READS, 4, &head), 0);
	cr_assert_eq(pn, 2);
	cr_assert_eq(pgot, 72);
	cr_assert_eq(piov[1].iov_base, guest + BUF_OFF + 100);
	cr_assert_eq((uint16_t)head, 7, "the buffer id is the list's last descriptor's");
	cr_assert_eq(head >> 16, 2);
	dp_vq_used_put(&vq, 0, head, 0);
	cr_assert_eq(ppop(DP_VQ_DEVICE_READS, 4, &head), 0);
	cr_assert_eq((uint16_t)head, 9);
	dp_vq_used_put(&vq, 1, head, 0);
	cr_assert_eq(ppop(DP_VQ_DEVICE_READS, 4, &head), -EAGAIN);
	cr_assert_eq(vq.last_avail, 3);
	/* nothing in the ring changes until the burst is published */
	cr_assert_eq(pdesc(0)->len, 12);
	dp_vq_used_publish(&vq, 2);
	/* used descriptors at each list's first position: 0 and 2, AVAIL = USED = wrap 1 */
	cr_assert_eq(pdesc(0)->id, 7);
	cr_assert_eq(pdesc(0)->flags, F_AVAIL | F_USED, "flags 0x%x", pdesc(0)->flags);
	cr_assert_eq(pdesc(2)->id, 9);
	cr_assert_eq(pdesc(2)->flags, F_AVAIL | F_USED);
	cr_assert_eq(vq.last_used, 3);
	cr_assert_not(vq.broken);
}

Test(vring_packed, written_length_and_write_flag)
{
	dp_chain_t head;

	post1(GPA_BASE + BUF_OFF, 1500, VRING_DESC_F_WRITE, 4);
	cr_assert_eq(ppop(DP_VQ_DEVICE_WRITES, 2, &head), 0);
	cr_assert_eq(pgot, 1500);
	dp_vq_used_put(&vq, 0, head, 76);
	dp_vq_used_publish(&vq, 1);
	cr_assert_eq(pdesc(0)->len, 76);
	/* 2.8.3: WRITE in a used descriptor says len counts bytes written */
	cr_assert_eq(pdesc(0)->flags, F_AVAIL | F_USED | VRING_DESC_F_WRITE);
}

Test(vring_packed, both_wrap_counters_turn)
{
	dp_chain_t head;

	/* three laps of the 6-descriptor ring, two buffers a burst */
	for (unsigned burst = 0; burst < 9; burst++) {
		for (unsigned i = 0; i < 2; i++)
			post1(GPA_BASE + BUF_OFF + 64 * i, 64, 0, (uint16_t)(burst * 2 + i));
		for (unsigned i = 0; i < 2; i++) {
			cr_assert_eq(ppop(DP_VQ_DEVICE_READS, 2, &head), 0, "burst %u", burst);
			cr_assert_eq((uint16_t)head, burst * 2 + i);
			dp_vq_used_put(&vq, i, head, 0);
		}
		cr_assert_eq(ppop(DP_VQ_DEVICE_READS, 2, &head), -EAGAIN,
			     "burst %u: a descriptor of the last lap taken again", burst);
		dp_vq_used_publish(&vq, 2);
		/* the used descriptors carry the wrap counter they were written in */
		{
			unsigned pos = (burst * 2) % PQSZ;
			bool lap_wrap = ((burst * 2) / PQSZ) % 2 == 0;
			uint16_t want = lap_wrap ? F_AVAIL | F_USED : 0;

			cr_assert_eq(pdesc(pos)->flags & (F_AVAIL | F_USED), want, "burst %u", burst);
		}
	}
	cr_assert_eq(vq.last_avail, 0);
	cr_assert_eq(vq.avail_wrap, false, "three laps: the counter turned three times");
	cr_assert_eq(vq.used_wrap, false);
	cr_assert_not(vq.broken);
}

Test(vring_packed, chain_across_the_ring_end)
{
	uint64_t gpa[3] = { GPA_BASE + BUF_OFF, GPA_BASE + BUF_OFF + 64, GPA_BASE + BUF_OFF + 128 };
	uint32_t len[3] = { 10, 20, 30 };
	uint16_t fl[3] = { 0, 0, 0 };
	dp_chain_t head;

	/* start at 4: the list takes 4, 5 and 0 (the next lap) */
	vq.last_avail = vq.last_used = drv_next = 4;
	post(3, gpa, len, fl, 3);
	cr_assert_eq(ppop(DP_VQ_DEVICE_READS, 4, &head), 0);
	cr_assert_eq(pgot, 60);
	cr_assert_eq(head >> 16, 3);
	cr_assert_eq(vq.last_avail, 1);
	cr_assert_eq(vq.avail_wrap, false);
	dp_vq_used_put(&vq, 0, head, 0);
	dp_vq_used_publish(&vq, 1);
	cr_assert_eq(pdesc(4)->id, 3);
	cr_assert_eq(vq.last_used, 1);
	cr_assert_eq(vq.used_wrap, false);
}

Test(vring_packed, address_outside_memory)
{
	dp_chain_t head;
	int efd = eventfd(0, EFD_NONBLOCK);
	uint64_t v = 0;

	vq.err_fd = efd;
	post1(0x10, 64, 0, 1);
	assert_packed_broken(ppop(DP_VQ_DEVICE_READS, 2, &head), "outside guest memory");
	cr_assert_eq(read(efd, &v, sizeof(v)), sizeof(v), "the error eventfd was not signalled");
	/* stays broken: a good buffer after it is not taken */
	post1(GPA_BASE + BUF_OFF, 64, 0, 2);
	cr_assert_eq(ppop(DP_VQ_DEVICE_READS, 2, &head), -EPROTO);
}

Test(vring_packed, buffer_running_past_memory_end)
{
	dp_chain_t head;

	post1(GPA_BASE + MEM_SIZE - 16, 64, 0, 1);
	assert_packed_broken(ppop(DP_VQ_DEVICE_READS, 2, &head), "outside guest memory");
}

Test(vring_packed, list_longer_than_the_ring)
{
	dp_chain_t head;

	/* every descriptor says NEXT, all available: the walk would go round forever */
	for (unsigned i = 0; i < PQSZ; i++) {
		pdesc(i)->addr = GPA_BASE + BUF_OFF;
		pdesc(i)->len = 8;
		pdesc(i)->flags = VRING_DESC_F_NEXT | F_AVAIL;
	}
	assert_packed_broken(ppop(DP_VQ_DEVICE_READS, 8, &head), "ring of 6");
}

Test(vring_packed, descriptors_reused_before_they_were_used)
{
	dp_chain_t head;
	unsigned taken = 0;
	int r;

	/* a driver that makes each slot available again, in the next lap's
	 * colour, before we published it used: more out than the ring holds */
	for (unsigned i = 0; i < PQSZ; i++)
		post1(GPA_BASE + BUF_OFF, 64, 0, (uint16_t)i);
	while ((r = ppop(DP_VQ_DEVICE_READS, 2, &head)) == 0) {
		dp_vq_used_put(&vq, taken, head, 0);
		taken++;
		cr_assert_leq(taken, PQSZ);
		post1(GPA_BASE + BUF_OFF, 64, 0, 99);
	}
	cr_assert_eq(taken, PQSZ);
	assert_packed_broken(r, "not yet used");
}

Test(vring_packed, oversize_chain_is_dropped_not_broken)
{
	uint64_t gpa[4] = { GPA_BASE + BUF_OFF, GPA_BASE + BUF_OFF + 64, GPA_BASE + BUF_OFF + 128,
			    GPA_BASE + BUF_OFF + 192 };
	uint32_t len[4] = { 64, 64, 64, 64 };
	uint16_t fl[4] = { 0, 0, 0, 0 };
	dp_chain_t head = 0;

	post(4, gpa, len, fl, 5);
	cr_assert_eq(ppop(DP_VQ_DEVICE_READS, 2, &head), -E2BIG);
	cr_assert_eq(pn, 0);
	cr_assert_eq((uint16_t)head, 5, "the dropped chain is still handed back");
	cr_assert_eq(head >> 16, 4);
	cr_assert_not(vq.broken);
	dp_vq_used_put(&vq, 0, head, 0);
	dp_vq_used_publish(&vq, 1);
	post1(GPA_BASE + BUF_OFF, 64, 0, 6);
	cr_assert_eq(ppop(DP_VQ_DEVICE_READS, 2, &head), 0);
	cr_assert_eq((uint16_t)head, 6);
}

Test(vring_packed, readable_after_writable)
{
	uint64_t gpa[2] = { GPA_BASE + BUF_OFF, GPA_BASE + BUF_OFF + 64 };
	uint32_t len[2] = { 64, 64 };
	uint16_t fl[2] = { VRING_DESC_F_WRITE, 0 };
	dp_chain_t head;

	post(2, gpa, len, fl, 1);
	assert_packed_broken(ppop(DP_VQ_DEVICE_WRITES, 2, &head), "readable descriptor");
}

static struct vring_packed_desc *itable(void)
{
	return (struct vring_packed_desc *)(guest + INDIRECT_OFF);
}

Test(vring_packed, indirect_table)
{
	dp_chain_t head;

	/* NEXT and a stray id in the table are reserved there and ignored (2.8.7) */
	itable()[0] = (struct vring_packed_desc){ .addr = GPA_BASE + BUF_OFF, .len = 12, .id = 77, .flags = VRING_DESC_F_NEXT };
	itable()[1] = (struct vring_packed_desc){ .addr = GPA_BASE + BUF_OFF + 64, .len = 64 };
	post1(GPA_BASE + INDIRECT_OFF, 2 * sizeof(struct vring_packed_desc), VRING_DESC_F_INDIRECT, 3);
	cr_assert_eq(ppop(DP_VQ_DEVICE_READS, 4, &head), 0);
	cr_assert_eq(pn, 2);
	cr_assert_eq(pgot, 76);
	cr_assert_eq((uint16_t)head, 3);
	cr_assert_eq(head >> 16, 1, "an indirect list takes one ring descriptor");
	cr_assert_eq(vq.last_avail, 1);
}

Test(vring_packed, indirect_table_outside_memory)
{
	dp_chain_t head;

	post1(GPA_BASE + MEM_SIZE - 16, 32, VRING_DESC_F_INDIRECT, 3);
	assert_packed_broken(ppop(DP_VQ_DEVICE_READS, 4, &head), "indirect table");
}

Test(vring_packed, indirect_table_bad_length)
{
	dp_chain_t head;

	post1(GPA_BASE + INDIRECT_OFF, 24, VRING_DESC_F_INDIRECT, 3);
	assert_packed_broken(ppop(DP_VQ_DEVICE_READS, 4, &head), "indirect table");
}

Test(vring_packed, indirect_table_longer_than_the_ring)
{
	dp_chain_t head;

	post1(GPA_BASE + INDIRECT_OFF, (PQSZ + 1) * 16, VRING_DESC_F_INDIRECT, 3);
	assert_packed_broken(ppop(DP_VQ_DEVICE_READS, 4, &head), "indirect table");
}

Test(vring_packed, indirect_inside_a_list)
{
	uint64_t gpa[2] = { GPA_BASE + BUF_OFF, GPA_BASE + INDIRECT_OFF };
	uint32_t len[2] = { 64, 32 };
	uint16_t fl[2] = { 0, VRING_DESC_F_INDIRECT };
	dp_chain_t head;

	post(2, gpa, len, fl, 1);
	assert_packed_broken(ppop(DP_VQ_DEVICE_READS, 4, &head), "INDIRECT");
}

Test(vring_packed, indirect_with_next)
{
	uint16_t f = VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT;
	dp_chain_t head;

	itable()[0] = (struct vring_packed_desc){ .addr = GPA_BASE + BUF_OFF, .len = 12 };
	post1(GPA_BASE + INDIRECT_OFF, 16, f, 1);
	assert_packed_broken(ppop(DP_VQ_DEVICE_READS, 4, &head), "INDIRECT");
}

Test(vring_packed, indirect_entry_outside_memory)
{
	dp_chain_t head;

	itable()[0] = (struct vring_packed_desc){ .addr = GPA_BASE + BUF_OFF, .len = 12 };
	itable()[1] = (struct vring_packed_desc){ .addr = 0x1000, .len = 64 };
	post1(GPA_BASE + INDIRECT_OFF, 32, VRING_DESC_F_INDIRECT, 1);
	assert_packed_broken(ppop(DP_VQ_DEVICE_READS, 4, &head), "outside guest memory");
}

Test(vring_packed, seek_gives_chains_back)
{
	dp_chain_t head;
	struct dp_vq_pos pos;

	vq.last_avail = vq.last_used = drv_next = 5;
	post1(GPA_BASE + BUF_OFF, 64, VRING_DESC_F_WRITE, 1);
	post1(GPA_BASE + BUF_OFF + 64, 64, VRING_DESC_F_WRITE, 2);
	pos = dp_vq_tell(&vq);
	cr_assert_eq(ppop(DP_VQ_DEVICE_WRITES, 2, &head), 0);
	cr_assert_eq(ppop(DP_VQ_DEVICE_WRITES, 2, &head), 0);
	cr_assert_eq(vq.avail_wrap, false);
	dp_vq_seek(&vq, pos);
	cr_assert_eq(vq.last_avail, 5);
	cr_assert_eq(vq.avail_wrap, true);
	cr_assert_eq(vq.pending, 0);
	cr_assert_eq(ppop(DP_VQ_DEVICE_WRITES, 2, &head), 0);
	cr_assert_eq((uint16_t)head, 1);
	/* the ring was not written: the driver's descriptors are as it left them */
	cr_assert_eq(pdesc(5)->len, 64);
}

Test(vring_packed, ring_addresses_checked)
{
	/* misaligned event areas and descriptors, outside memory, too big */
	cr_assert_eq(dp_vq_set_addr(&vq, PQSZ, UVA_BASE + 8, UVA_BASE + DRIVER_OFF, UVA_BASE + DEVICE_OFF), -EINVAL);
	cr_assert_eq(dp_vq_set_addr(&vq, PQSZ, UVA_BASE, UVA_BASE + DRIVER_OFF + 2, UVA_BASE + DEVICE_OFF), -EINVAL);
	cr_assert_eq(dp_vq_set_addr(&vq, PQSZ, UVA_BASE, UVA_BASE + DRIVER_OFF, UVA_BASE + DEVICE_OFF + 2), -EINVAL);
	cr_assert_eq(dp_vq_set_addr(&vq, PQSZ, 0x1000, UVA_BASE + DRIVER_OFF, UVA_BASE + DEVICE_OFF), -EFAULT);
	cr_assert_eq(dp_vq_set_addr(&vq, PQSZ, UVA_BASE, UVA_BASE + MEM_SIZE, UVA_BASE + DEVICE_OFF), -EFAULT);
	cr_assert_eq(dp_vq_set_addr(&vq, 32769, UVA_BASE, UVA_BASE + DRIVER_OFF, UVA_BASE + DEVICE_OFF), -EINVAL);
	cr_assert_eq(dp_vq_set_addr(&vq, 32768, UVA_BASE + MEM_SIZE / 4 * 3, UVA_BASE + DRIVER_OFF, UVA_BASE + DEVICE_OFF),
		     -EFAULT);
	cr_assert_eq(dp_vq_set_addr(&vq, 7, UVA_BASE, UVA_BASE + DRIVER_OFF, UVA_BASE + DEVICE_OFF), 0);
}

Test(vring_packed, kicks_suppressed)
{
	device_event()->flags = VRING_PACKED_EVENT_FLAG_ENABLE;
	dp_vq_suppress_kicks(&vq);
	cr_assert_eq(device_event()->flags, VRING_PACKED_EVENT_FLAG_DISABLE);
}

static void use_one(uint16_t id)
{
	dp_chain_t head;

	post1(GPA_BASE + BUF_OFF, 64, 0, id);
	cr_assert_eq(ppop(DP_VQ_DEVICE_READS, 2, &head), 0);
	dp_vq_used_put(&vq, 0, head, 0);
	dp_vq_used_publish(&vq, 1);
}

static bool signalled(int efd)
{
	uint64_t v;

	return read(efd, &v, sizeof(v)) == sizeof(v);
}

Test(vring_packed, driver_event_flags)
{
	int efd = eventfd(0, EFD_NONBLOCK);

	vq.call_fd = efd;
	driver_event()->flags = VRING_PACKED_EVENT_FLAG_DISABLE;
	use_one(1);
	cr_assert_not(signalled(efd), "DISABLE: no interrupt");
	driver_event()->flags = VRING_PACKED_EVENT_FLAG_ENABLE;
	use_one(2);
	cr_assert(signalled(efd), "ENABLE: an interrupt");
}

Test(vring_packed, event_idx_in_packed_form)
{
	int efd = eventfd(0, EFD_NONBLOCK);

	vq.call_fd = efd;
	vq.event_idx = true;
	driver_event()->flags = VRING_PACKED_EVENT_FLAG_DESC;
	/* the first publish always signals: the driver's view is unknown */
	use_one(0);
	cr_assert(signalled(efd));
	/* the driver wants an interrupt when position 3 of this lap (wrap 1) is used */
	driver_event()->off_wrap = 3 | 1u << VRING_PACKED_EVENT_F_WRAP_CTR;
	use_one(1); /* used position 1 */
	cr_assert_not(signalled(efd));
	use_one(2);
	cr_assert_not(signalled(efd));
	use_one(3); /* position 3 used: signal */
	cr_assert(signalled(efd));
	/* next: position 1 of the next lap (wrap 0); positions 4, 5 and 0 pass quietly */
	driver_event()->off_wrap = 1;
	use_one(4);
	use_one(5);
	cr_assert_eq(vq.used_wrap, false, "the ring wrapped");
	use_one(6);
	cr_assert_not(signalled(efd));
	use_one(7);
	cr_assert(signalled(efd), "position 1 of the second lap");
}

/*
 * off_wrap's wrap bit names the lap of its position: here the driver asks
 * for position 5 of the lap it is in (wrap 1) and the device publishes 4, 5
 * and 0 of the next lap in one burst, ending at position 1 in wrap 0. The
 * burst passed the event: signal. Read as the current lap's (wrap 0)
 * position 5, it would lie ahead and stay quiet.
 */
Test(vring_packed, event_idx_of_the_previous_lap_inside_a_burst)
{
	int efd = eventfd(0, EFD_NONBLOCK);
	dp_chain_t head;

	vq.call_fd = efd;
	vq.event_idx = true;
	driver_event()->flags = VRING_PACKED_EVENT_FLAG_DESC;
	vq.last_avail = vq.last_used = drv_next = 3;
	use_one(0); /* position 3, wrap 1: the first publish signals */
	cr_assert(signalled(efd));
	driver_event()->off_wrap = 5 | 1u << VRING_PACKED_EVENT_F_WRAP_CTR;
	for (unsigned i = 0; i < 3; i++)
		post1(GPA_BASE + BUF_OFF, 64, 0, (uint16_t)(1 + i));
	for (unsigned i = 0; i < 3; i++) {
		cr_assert_eq(ppop(DP_VQ_DEVICE_READS, 2, &head), 0);
		dp_vq_used_put(&vq, i, head, 0);
	}
	dp_vq_used_publish(&vq, 3);
	cr_assert_eq(vq.last_used, 1);
	cr_assert_eq(vq.used_wrap, false);
	cr_assert(signalled(efd), "position 5 of wrap 1 was used in the burst");
	close(efd);
}

/* 2.8.1: AVAIL == USED == the driver's wrap counter is a used descriptor
 * (the device's own write-back of this lap), never an available one. */
Test(vring_packed, used_descriptor_of_this_lap_is_not_available)
{
	dp_chain_t head;

	pdesc(0)->addr = GPA_BASE + BUF_OFF;
	pdesc(0)->len = 64;
	pdesc(0)->id = 1;
	__atomic_store_n(&pdesc(0)->flags, (uint16_t)(F_AVAIL | F_USED), __ATOMIC_RELEASE);
	cr_assert_eq(dp_vq_avail(&vq, 32), 0);
	cr_assert_eq(ppop(DP_VQ_DEVICE_READS, 2, &head), -EAGAIN);
	cr_assert_eq(vq.last_avail, 0);
	cr_assert_not(vq.broken);
}

/* A packed burst of one: its only used descriptor is the first, whose flags
 * are stored last, and its page is logged (after that store: the order
 * itself no single-threaded test can see, its presence this one does). */
Test(vring_packed, dirty_log_marks_the_first_used_descriptor)
{
	struct dp_log log = { 0 };
	uint8_t bits[64] = { 0 };

	log_used_into(&log, bits, sizeof(bits));
	use_one(1);
	/* page of the descriptors: (0x100000 + 0x0) / 4096 = 256 */
	cr_assert(bits[256 / 8] & (1u << (256 % 8)));
	cr_assert_eq(bits[257 / 8] & (1u << (257 % 8)), 0);
}
