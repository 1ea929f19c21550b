// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The split-ring walker against hostile rings: every rule lib/datapath/vring.c
 * enforces is broken here once, and the ring must end up broken (NEEDS_RESET)
 * with a reason naming the rule, the error eventfd signalled, and nothing
 * outside guest memory handed out. Well-formed rings, including wrapped
 * indices and indirect tables, must still pass.
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

static void setup(void)
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

static int pop(enum dp_vq_dir dir, struct iovec *iov, unsigned max, unsigned *n, uint32_t *len, uint16_t *head)
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
	uint16_t head;

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
	uint16_t head;

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
	uint16_t head;
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
	uint16_t head;

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
	uint16_t head;

	set_desc(desc(0), UINT64_MAX - 8, 64, 0, 0);
	make_avail(0);
	assert_broken(pop(DP_VQ_DEVICE_READS, iov, 4, &n, &len, &head), "outside guest memory");
}

Test(vring, descriptor_loop)
{
	struct iovec iov[64];
	unsigned n;
	uint32_t len;
	uint16_t head;

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
	uint16_t head;

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
	uint16_t head;

	set_desc(desc(0), GPA_BASE + BUF_OFF, 10, VRING_DESC_F_NEXT, QSZ);
	make_avail(0);
	assert_broken(pop(DP_VQ_DEVICE_READS, iov, 4, &n, &len, &head), "outside the ring");
}

Test(vring, head_out_of_range)
{
	struct iovec iov[4];
	unsigned n;
	uint32_t len;
	uint16_t head;

	make_avail(QSZ + 3);
	assert_broken(pop(DP_VQ_DEVICE_READS, iov, 4, &n, &len, &head), "outside the ring");
}

Test(vring, oversize_chain_is_dropped_not_broken)
{
	struct iovec iov[2];
	unsigned n = 99;
	uint32_t len = 99;
	uint16_t head = 99;

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
	uint16_t head;

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
	uint16_t head;

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
	uint16_t head;

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
	uint16_t head;

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
	uint16_t head;

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
	uint16_t head;

	set_desc(desc(0), GPA_BASE + INDIRECT_OFF, 24, VRING_DESC_F_INDIRECT, 0);
	make_avail(0);
	assert_broken(pop(DP_VQ_DEVICE_READS, iov, 4, &n, &len, &head), "indirect table of 24 bytes");
}

Test(vring, indirect_table_outside_memory)
{
	struct iovec iov[4];
	unsigned n;
	uint32_t len;
	uint16_t head;

	set_desc(desc(0), GPA_BASE + MEM_SIZE - 16, 64, VRING_DESC_F_INDIRECT, 0);
	make_avail(0);
	assert_broken(pop(DP_VQ_DEVICE_READS, iov, 4, &n, &len, &head), "outside guest memory");
}

Test(vring, readable_after_writable)
{
	struct iovec iov[4];
	unsigned n;
	uint32_t len;
	uint16_t head;

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
	uint16_t head;

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

Test(vring, dirty_log_marks_used_ring)
{
	struct dp_log log = { 0 };
	uint8_t bits[64] = { 0 };

	log.bits = bits;
	log.size = sizeof(bits);
	vq.log = &log;
	vq.log_used = true;
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
	uint16_t head;

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
	uint16_t head;

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
