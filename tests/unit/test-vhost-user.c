// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The vhost-user backend's message handling and rings (lib/datapath), as a
 * frontend drives them: a memfd for guest memory, rings laid out in it by
 * the test as a driver would. What must hold: the handshake a frontend does
 * (features, protocol features, memory table, rings); refusals that reply
 * with REPLY_ACK's error when asked and otherwise close; a memory table the
 * fd does not back is refused (it would fault later); GET_VRING_BASE stops a
 * ring where a restarted frontend resumes, losing and repeating nothing;
 * received frames lose their virtio-net header; MRG_RXBUF spreads a frame
 * over buffers with num_buffers in its header.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/datapath/datapath-internal.h"

#define MEMSZ (1u << 20)
#define UVA 0x7f0000000000ull
#define QSZ 16u
/* ring 1 (guest TX of queue 0) and ring 0 (guest RX) in guest memory */
#define TX_DESC 0x0000
#define TX_AVAIL 0x1000
#define TX_USED 0x2000
#define RX_DESC 0x3000
#define RX_AVAIL 0x4000
#define RX_USED 0x5000
#define BUF 0x10000

static struct vu_dev dev;
static int memfd = -1;
static uint8_t *guest;

static int send_msg(uint32_t req, uint32_t flags, const void *payload, uint32_t size, int fd, struct vu_msg *out,
		    bool *reply)
{
	struct vu_msg m = { .hdr = { .request = req, .flags = flags, .size = size } };
	int fds[1] = { fd >= 0 ? dup(fd) : -1 };
	char err[256];
	int r;

	if (size)
		memcpy(m.payload.bytes, payload, size);
	r = vu_handle_message(&dev, &m, fds, fd >= 0 ? 1 : 0, reply, err, sizeof(err));
	if (fds[0] >= 0)
		close(fds[0]);
	if (out)
		*out = m;
	return r;
}

static int msg_u64(uint32_t req, uint64_t v, int fd)
{
	bool reply;

	return send_msg(req, 1, &v, 8, fd, NULL, &reply);
}

static int msg_state(uint32_t req, uint32_t index, uint32_t num)
{
	uint32_t p[2] = { index, num };
	bool reply;

	return send_msg(req, 1, p, 8, -1, NULL, &reply);
}

static void mem_table(void)
{
	struct {
		uint32_t n, pad;
		uint64_t gpa, size, uva, off;
	} mt = { 1, 0, 0, MEMSZ, UVA, 0 };
	bool reply;

	cr_assert_eq(send_msg(5, 1, &mt, sizeof(mt), memfd, NULL, &reply), 0);
}

static void ring_setup(uint32_t index, uint64_t desc, uint64_t avail, uint64_t used, uint16_t base)
{
	struct {
		uint32_t index, flags;
		uint64_t desc, used, avail, log;
	} a = { index, 0, UVA + desc, UVA + used, UVA + avail, 0 };
	int efd = eventfd(0, 0);
	bool reply;

	cr_assert_eq(msg_state(8, index, QSZ), 0);
	cr_assert_eq(msg_state(10, index, base), 0);
	cr_assert_eq(send_msg(9, 1, &a, sizeof(a), -1, NULL, &reply), 0);
	cr_assert_eq(msg_u64(13, index, efd), 0);
	cr_assert_eq(msg_u64(12, index, efd), 0);
	cr_assert_eq(msg_state(18, index, 1), 0);
	close(efd);
}

static void setup(void)
{
	memfd = memfd_create("test-guest", MFD_CLOEXEC);
	cr_assert(memfd >= 0);
	cr_assert_eq(ftruncate(memfd, MEMSZ), 0);
	guest = mmap(NULL, MEMSZ, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	cr_assert(guest != MAP_FAILED);
	cr_assert_eq(vu_dev_init(&dev, 2), 0);
}

static void teardown(void)
{
	vu_dev_done(&dev);
	munmap(guest, MEMSZ);
	close(memfd);
}

TestSuite(vhost_user, .init = setup, .fini = teardown);

static void handshake(uint64_t features)
{
	struct vu_msg m;
	bool reply;

	cr_assert_eq(send_msg(3, 1, NULL, 0, -1, NULL, &reply), 0);
	cr_assert_eq(send_msg(1, 1, NULL, 0, -1, &m, &reply), 0);
	cr_assert(reply);
	cr_assert_eq(m.hdr.flags, VU_VERSION | VU_FLAG_REPLY);
	cr_assert_eq(m.hdr.size, 8);
	cr_assert_eq(m.payload.u64 & features, features, "offered 0x%llx", (unsigned long long)m.payload.u64);
	cr_assert_eq(msg_u64(16, 1u << 3 /* REPLY_ACK */, -1), 0);
	cr_assert_eq(msg_u64(2, features, -1), 0);
	mem_table();
}

#define FEATURES ((1ull << 32) | (1ull << 15) | (1ull << 29) | (1ull << 28) | (1ull << 30))

Test(vhost_user, offers_what_the_issue_asks)
{
	struct vu_msg m;
	bool reply;

	cr_assert_eq(send_msg(1, 1, NULL, 0, -1, &m, &reply), 0);
	/* VERSION_1, MRG_RXBUF, EVENT_IDX, INDIRECT_DESC, MQ, PROTOCOL_FEATURES, LOG_ALL, IN_ORDER, RING_PACKED */
	cr_assert_eq(m.payload.u64, FEATURES | (1ull << 22) | (1ull << 26) | (1ull << 35) | (1ull << 34));
	cr_assert_eq(send_msg(15, 1, NULL, 0, -1, &m, &reply), 0);
	cr_assert_eq(m.payload.u64, (1ull << 0) | (1ull << 1) | (1ull << 3)); /* MQ, LOG_SHMFD, REPLY_ACK */
	cr_assert_eq(send_msg(17, 1, NULL, 0, -1, &m, &reply), 0);
	cr_assert_eq(m.payload.u64, 2);
}

Test(vhost_user, refusals_reply_with_ack_or_close)
{
	struct vu_msg m;
	uint64_t bad = 1ull << 40;
	bool reply = true;

	/* before REPLY_ACK is negotiated: refused, nothing to send, the caller closes */
	cr_assert_eq(send_msg(2, 1 | VU_FLAG_NEED_REPLY, &bad, 8, -1, &m, &reply), -EINVAL);
	cr_assert_not(reply);
	cr_assert_eq(msg_u64(16, 1u << 3, -1), 0);
	/* with it: an error reply (non-zero u64), the connection stays */
	cr_assert_eq(send_msg(2, 1 | VU_FLAG_NEED_REPLY, &bad, 8, -1, &m, &reply), -EINVAL);
	cr_assert(reply);
	cr_assert_eq(m.payload.u64, 1);
	/* and success acked with 0 */
	cr_assert_eq(send_msg(2, 1 | VU_FLAG_NEED_REPLY, &(uint64_t){ FEATURES }, 8, -1, &m, &reply), 0);
	cr_assert(reply);
	cr_assert_eq(m.payload.u64, 0);
	/* unknown request, wrong sizes, ring out of range, bad version, oversize */
	cr_assert_eq(send_msg(77, 1, NULL, 0, -1, &m, &reply), -EOPNOTSUPP);
	cr_assert_eq(send_msg(8, 1, &bad, 4, -1, &m, &reply), -EINVAL);
	cr_assert_eq(msg_state(8, 4, QSZ), -EINVAL);
	cr_assert_eq(msg_state(8, 0, 24), -EINVAL);
	cr_assert_eq(send_msg(1, 2, NULL, 0, -1, &m, &reply), -EPROTO);
	m.hdr = (struct vu_msg_hdr){ .request = 1, .flags = 1, .size = VU_MSG_MAX_PAYLOAD + 1 };
	cr_assert_eq(vu_msg_check_header(&m.hdr), -EMSGSIZE);
	/* a kick without its fd */
	cr_assert_eq(msg_u64(12, 0, -1), -EINVAL);
}

Test(vhost_user, memory_table_must_be_backed)
{
	struct {
		uint32_t n, pad;
		uint64_t gpa, size, uva, off;
	} mt = { 1, 0, 0, 2 * MEMSZ, UVA, 0 };
	bool reply;

	/* twice the memfd's size: mapping it would work, touching the end would SIGBUS */
	cr_assert_eq(send_msg(5, 1, &mt, sizeof(mt), memfd, NULL, &reply), -EINVAL);
	/* fds and regions must match */
	mt.size = MEMSZ;
	cr_assert_eq(send_msg(5, 1, &mt, sizeof(mt), -1, NULL, &reply), -EINVAL);
	mt.n = 9;
	cr_assert_eq(send_msg(5, 1, &mt, sizeof(mt), memfd, NULL, &reply), -EINVAL);
	/* overflowing guest addresses */
	mt.n = 1;
	mt.gpa = UINT64_MAX - 4095;
	cr_assert_eq(send_msg(5, 1, &mt, sizeof(mt), memfd, NULL, &reply), -EINVAL);
	cr_assert_eq(dev.mem.n, 0);
}

static void tx_chain(unsigned slot, uint16_t head, const char *text)
{
	struct vring_desc *d = (struct vring_desc *)(guest + TX_DESC);
	struct vring_avail *a = (struct vring_avail *)(guest + TX_AVAIL);
	uint8_t *buf = guest + BUF + head * 256u;

	memset(buf, 0, 12); /* the virtio-net header, all zero */
	memcpy(buf + 12, text, strlen(text));
	d[head] = (struct vring_desc){ .addr = BUF + head * 256u, .len = 12 + (uint32_t)strlen(text) };
	a->ring[slot % QSZ] = head;
	__atomic_store_n(&a->idx, (uint16_t)(slot + 1), __ATOMIC_RELEASE);
}

/* A running transmit ring (ring 1) from position 0 that has taken and used one frame, "first frame". */
static void first_frame_used(struct iovk_dp_pkt pkts[static 8])
{
	handshake(FEATURES);
	ring_setup(1, TX_DESC, TX_AVAIL, TX_USED, 0);
	tx_chain(0, 3, "first frame");
	cr_assert_eq(vu_rx_burst(&dev, 0, pkts, 8), 1);
	cr_assert_eq(pkts[0].len, strlen("first frame"));
	cr_assert_eq(memcmp(pkts[0].seg[0].iov_base, "first frame", pkts[0].len), 0);
	vu_rx_release(&dev, 0);
	cr_assert_eq(((struct vring_used *)(guest + TX_USED))->idx, 1);
}

Test(vhost_user, ring_base_survives_a_frontend_restart)
{
	struct iovk_dp_pkt pkts[8];
	struct vu_msg m;
	uint32_t st[2] = { 1, 0 };
	bool reply;

	first_frame_used(pkts);

	/* the frontend stops the ring: where are we? */
	cr_assert_eq(send_msg(11, 1, st, 8, -1, &m, &reply), 0);
	cr_assert(reply);
	cr_assert_eq(m.payload.state.index, 1);
	cr_assert_eq(m.payload.state.num, 1);
	/* stopped: a new chain waits */
	tx_chain(1, 5, "second frame");
	cr_assert_eq(vu_rx_burst(&dev, 0, pkts, 8), 0);
	/* a restarted frontend resumes at 1: the second frame, once, not the first again */
	ring_setup(1, TX_DESC, TX_AVAIL, TX_USED, (uint16_t)m.payload.state.num);
	cr_assert_eq(vu_rx_burst(&dev, 0, pkts, 8), 1);
	cr_assert_eq(memcmp(pkts[0].seg[0].iov_base, "second frame", pkts[0].len), 0);
	vu_rx_release(&dev, 0);
	cr_assert_eq(vu_rx_burst(&dev, 0, pkts, 8), 0);
}

Test(vhost_user, disabled_ring_moves_nothing)
{
	struct iovk_dp_pkt pkts[8];

	handshake(FEATURES);
	ring_setup(1, TX_DESC, TX_AVAIL, TX_USED, 0);
	cr_assert_eq(msg_state(18, 1, 0), 0);
	tx_chain(0, 0, "x frame");
	cr_assert_eq(vu_rx_burst(&dev, 0, pkts, 8), 0);
	cr_assert_eq(msg_state(18, 1, 1), 0);
	cr_assert_eq(vu_rx_burst(&dev, 0, pkts, 8), 1);
	vu_rx_release(&dev, 0);
}

Test(vhost_user, mergeable_buffers_carry_a_big_frame)
{
	struct vring_desc *d = (struct vring_desc *)(guest + RX_DESC);
	struct vring_avail *a = (struct vring_avail *)(guest + RX_AVAIL);
	struct vring_used *u = (struct vring_used *)(guest + RX_USED);
	static uint8_t frame[3000];
	struct iovec seg[2] = { { frame, 1000 }, { frame + 1000, 2000 } };
	struct iovk_dp_pkt pkt = { .seg = seg, .len = 3000, .n_seg = 2 };
	uint8_t *b0 = guest + BUF, *b1 = guest + BUF + 2048;

	for (unsigned i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(i * 7);
	handshake(FEATURES);
	ring_setup(0, RX_DESC, RX_AVAIL, RX_USED, 0);
	for (unsigned i = 0; i < 4; i++) {
		d[i] = (struct vring_desc){ .addr = BUF + 2048u * i, .len = 2048, .flags = VRING_DESC_F_WRITE };
		a->ring[i] = (uint16_t)i;
	}
	a->idx = 4;
	cr_assert_eq(vu_tx_burst(&dev, 0, &pkt, 1), 1);
	cr_assert_eq(u->idx, 2);
	cr_assert_eq(u->ring[0].len, 2048);
	cr_assert_eq(u->ring[1].len, 12 + 3000 - 2048);
	/* num_buffers (the header's last field) says 2 */
	cr_assert_eq(b0[10] | b0[11] << 8, 2);
	cr_assert_eq(memcmp(b0 + 12, frame, 2036), 0);
	cr_assert_eq(memcmp(b1, frame + 2036, 3000 - 2036), 0);
}

Test(vhost_user, frame_without_room_is_not_sent)
{
	struct vring_desc *d = (struct vring_desc *)(guest + RX_DESC);
	struct vring_avail *a = (struct vring_avail *)(guest + RX_AVAIL);
	struct vring_used *u = (struct vring_used *)(guest + RX_USED);
	static uint8_t frame[3000];
	struct iovec seg = { frame, sizeof(frame) };
	struct iovk_dp_pkt pkt = { .seg = &seg, .len = 3000, .n_seg = 1 };

	handshake(FEATURES);
	ring_setup(0, RX_DESC, RX_AVAIL, RX_USED, 0);
	/* one 2 KiB buffer for a 3000-byte frame: it waits for more, nothing is half-written */
	d[0] = (struct vring_desc){ .addr = BUF, .len = 2048, .flags = VRING_DESC_F_WRITE };
	a->ring[0] = 0;
	a->idx = 1;
	cr_assert_eq(vu_tx_burst(&dev, 0, &pkt, 1), 0);
	cr_assert_eq(u->idx, 0);
	cr_assert_eq(dev.rings[0].vq.last_avail, 0);
}

/* IN_ORDER (2.7.9) is offered because every path already keeps it: chains come
 * back in avail order whether forwarded, dropped, or returned for want of room. */
Test(vhost_user, in_order_buffers_are_used_in_avail_order)
{
	struct vring_used *tu = (struct vring_used *)(guest + TX_USED);
	struct vring_desc *d = (struct vring_desc *)(guest + RX_DESC);
	struct vring_avail *a = (struct vring_avail *)(guest + RX_AVAIL);
	struct vring_used *u = (struct vring_used *)(guest + RX_USED);
	static uint8_t big[3000];
	struct iovec seg[2] = { { (void *)"a small frame", 13 }, { big, sizeof(big) } };
	struct iovk_dp_pkt out[3] = { { .seg = &seg[0], .len = 13, .n_seg = 1 },
				      { .seg = &seg[0], .len = 13, .n_seg = 1 },
				      { .seg = &seg[1], .len = 3000, .n_seg = 1 } };
	struct iovk_dp_pkt pkts[8];
	const uint16_t heads[] = { 3, 0, 7, 1 };

	handshake(FEATURES | (1ull << 35));
	/* guest TX: heads out of order, one chain only a header (an rx error): used follows avail */
	ring_setup(1, TX_DESC, TX_AVAIL, TX_USED, 0);
	for (unsigned i = 0; i < 4; i++)
		tx_chain(i, heads[i], i == 2 ? "" : "frame");
	cr_assert_eq(vu_rx_burst(&dev, 0, pkts, 8), 3);
	vu_rx_release(&dev, 0);
	cr_assert_eq(tu->idx, 4);
	for (unsigned i = 0; i < 4; i++)
		cr_assert_eq(tu->ring[i].id, heads[i], "used entry %u: head %u, avail had %u", i, tu->ring[i].id, heads[i]);

	/* guest RX: a buffer too small for the header (frame dropped), a good one,
	 * then a frame needing two buffers finds one: it is handed back untouched */
	ring_setup(0, RX_DESC, RX_AVAIL, RX_USED, 0);
	d[0] = (struct vring_desc){ .addr = BUF, .len = 4, .flags = VRING_DESC_F_WRITE };
	for (unsigned i = 1; i < 4; i++)
		d[i] = (struct vring_desc){ .addr = BUF + 2048u * i, .len = 2048, .flags = VRING_DESC_F_WRITE };
	for (unsigned i = 0; i < 3; i++)
		a->ring[i] = (uint16_t)i;
	a->idx = 3;
	cr_assert_eq(vu_tx_burst(&dev, 0, out, 3), 1);
	cr_assert_eq(u->idx, 2);
	cr_assert_eq(u->ring[0].id, 0);
	cr_assert_eq(u->ring[0].len, 0);
	cr_assert_eq(u->ring[1].id, 1);
	cr_assert_eq(u->ring[1].len, 12 + 13);
	cr_assert_eq(dev.rings[0].vq.last_avail, 2);
	/* one more buffer: the big frame takes 2 and 3, in that order */
	a->ring[3] = 3;
	a->idx = 4;
	cr_assert_eq(vu_tx_burst(&dev, 0, &out[2], 1), 1);
	cr_assert_eq(u->idx, 4);
	cr_assert_eq(u->ring[2].id, 2);
	cr_assert_eq(u->ring[2].len, 2048);
	cr_assert_eq(u->ring[3].id, 3);
	cr_assert_eq(u->ring[3].len, 12 + 3000 - 2048);
}

Test(vhost_user, hostile_ring_breaks_only_its_queue)
{
	struct vring_desc *d = (struct vring_desc *)(guest + TX_DESC);
	struct vring_avail *a = (struct vring_avail *)(guest + TX_AVAIL);
	struct iovk_dp_pkt pkts[8];
	int err = eventfd(0, EFD_NONBLOCK);
	uint64_t v;

	handshake(FEATURES);
	ring_setup(1, TX_DESC, TX_AVAIL, TX_USED, 0);
	/* queue 1's guest TX ring: a healthy ring in the other half of memory */
	ring_setup(3, 0x6000, 0x7000, 0x8000, 0);
	cr_assert_eq(msg_u64(14, 1, err), 0);
	d[0] = (struct vring_desc){ .addr = BUF, .len = 64, .flags = VRING_DESC_F_NEXT, .next = 0 };
	a->ring[0] = 0;
	a->idx = 1;
	cr_assert_eq(vu_rx_burst(&dev, 0, pkts, 8), 0);
	cr_assert(dev.rings[1].vq.broken);
	cr_assert(strstr(dev.rings[1].vq.broken_reason, "loop"));
	cr_assert_eq(read(err, &v, 8), 8);
	/* the other queue is untouched and works */
	((struct vring_desc *)(guest + 0x6000))[0] = (struct vring_desc){ .addr = BUF + 4096, .len = 80 };
	((struct vring_avail *)(guest + 0x7000))->ring[0] = 0;
	((struct vring_avail *)(guest + 0x7000))->idx = 1;
	cr_assert_eq(vu_rx_burst(&dev, 1, pkts, 8), 1);
	vu_rx_release(&dev, 1);
	/* the frontend resets the broken ring (stops it first, as QEMU does:
	 * a running ring's size may not change): it works again */
	cr_assert_eq(msg_state(11, 1, 0), 0);
	ring_setup(1, TX_DESC, TX_AVAIL, TX_USED, 1);
	cr_assert_not(dev.rings[1].vq.broken);
	close(err);
}

/* The spec is sized (IOVK_DP_PORT_SPEC_INIT): a smaller one, or a larger
 * one asking for members this library does not know, is refused and left
 * alone; a larger one with those members zero is filled, its tail kept. */
Test(vhost_user, port_spec_sz)
{
	struct iovk_dp_port_spec s = { .sz = 0, .kind = IOVK_DP_PORT_VFIO };
	struct {
		struct iovk_dp_port_spec s;
		uint64_t newer;
	} big;

	cr_expect_eq(iovk_dp_port_spec_parse("tap:t0", &s), -EINVAL);
	s.sz = offsetof(struct iovk_dp_port_spec, vfio_mode);
	cr_expect_eq(iovk_dp_port_spec_parse("tap:t0", &s), -EINVAL);
	cr_expect_eq(s.kind, IOVK_DP_PORT_VFIO, "untouched on failure");

	memset(&big, 0, sizeof(big));
	big.s.sz = sizeof(big);
	cr_assert_eq(iovk_dp_port_spec_parse("vhost-user:/run/vm1.sock,queues=2", &big.s), 0);
	cr_expect_eq(big.s.sz, sizeof(big));
	cr_expect_eq(big.s.kind, IOVK_DP_PORT_VHOST_USER);
	cr_expect_eq(big.s.queues, 2);
	cr_expect_eq(big.newer, 0);
	big.newer = 1;
	big.s.queues = 7;
	cr_expect_eq(iovk_dp_port_spec_parse("tap:t0", &big.s), -EINVAL);
	cr_expect_eq(big.s.queues, 7, "untouched on failure");
}

Test(vhost_user, port_specs)
{
	struct iovk_dp_port_spec s = IOVK_DP_PORT_SPEC_INIT;

	cr_assert_eq(iovk_dp_port_spec_parse("vhost-user:/run/vm1.sock,client,queues=4", &s), 0);
	cr_assert_eq(s.kind, IOVK_DP_PORT_VHOST_USER);
	cr_assert_str_eq(s.name, "/run/vm1.sock");
	cr_assert(s.client);
	cr_assert_eq(s.queues, 4);
	cr_assert_eq(iovk_dp_port_spec_parse("tap:tap0", &s), 0);
	cr_assert_eq(s.kind, IOVK_DP_PORT_TAP);
	cr_assert_eq(s.queues, 1);
	cr_assert_eq(iovk_dp_port_spec_parse("af-xdp:eth1,queue=3,zero-copy", &s), 0);
	cr_assert(s.zero_copy);
	cr_assert_eq(s.queue, 3);
	cr_assert_eq(iovk_dp_port_spec_parse("vfio:0000:03:00.1,queues=2", &s), 0);
	cr_assert_str_eq(s.name, "0000:03:00.1");
	cr_assert_str_eq(iovk_dp_port_kind_to_string(IOVK_DP_PORT_AF_XDP), "af-xdp");
	const char *bad[] = { "vhost-user:", "vhost-user:/x,queues=0", "vhost-user:/x,queues=17", "tap:t0,client",
			      "nic:eth0", "tap", "vhost-user:/x,queues=1x", "af-xdp:e,queue=-1", "vhost-user:,client" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(iovk_dp_port_spec_parse(bad[i], &s), -EINVAL, "'%s' parsed", bad[i]);
}

/* ---- packed rings (VIRTIO_F_RING_PACKED): the same frontend's view ---- */

#define F_PACKED (1ull << 34)
#define P_AVAIL (1u << VRING_PACKED_DESC_F_AVAIL)
#define P_USED (1u << VRING_PACKED_DESC_F_USED)

/* One descriptor made available at pos in the colour of the driver's wrap counter, flags last. */
static void packed_post(uint64_t ring, uint16_t pos, bool wrap, uint64_t addr, uint32_t len, uint16_t flags, uint16_t id)
{
	struct vring_packed_desc *d = &((struct vring_packed_desc *)(guest + ring))[pos];

	d->addr = addr;
	d->len = len;
	d->id = id;
	__atomic_store_n(&d->flags, (uint16_t)(flags | (wrap ? P_AVAIL : P_USED)), __ATOMIC_RELEASE);
}

static void packed_tx_frame(uint16_t pos, bool wrap, uint16_t id, const char *text)
{
	uint8_t *buf = guest + BUF + id * 256u;

	memset(buf, 0, 12);
	memcpy(buf + 12, text, strlen(text));
	packed_post(TX_DESC, pos, wrap, BUF + id * 256u, 12 + (uint32_t)strlen(text), 0, id);
}

Test(vhost_user, packed_ring_base_keeps_the_wrap_counter_across_a_restart)
{
	struct vring_packed_desc *td = (struct vring_packed_desc *)(guest + TX_DESC);
	struct iovk_dp_pkt pkts[8];
	struct vu_msg m;
	uint32_t st[2] = { 1, 0 };
	bool reply;

	handshake(FEATURES | F_PACKED);
	/* resume at the ring's last position, wrap counter 1 (bit 15) */
	ring_setup(1, TX_DESC, TX_AVAIL, TX_USED, 0x8000 | (QSZ - 1));
	cr_assert(dev.rings[1].vq.packed);
	packed_tx_frame(QSZ - 1, true, 4, "last of a lap");
	packed_tx_frame(0, false, 5, "first of the next");
	cr_assert_eq(vu_rx_burst(&dev, 0, pkts, 8), 2);
	cr_assert_eq(memcmp(pkts[0].seg[0].iov_base, "last of a lap", pkts[0].len), 0);
	cr_assert_eq(memcmp(pkts[1].seg[0].iov_base, "first of the next", pkts[1].len), 0);
	vu_rx_release(&dev, 0);
	/* used in place, each in the colour of its lap */
	cr_assert_eq(td[QSZ - 1].id, 4);
	cr_assert_eq(td[QSZ - 1].flags & (P_AVAIL | P_USED), P_AVAIL | P_USED);
	cr_assert_eq(td[0].id, 5);
	cr_assert_eq(td[0].flags & (P_AVAIL | P_USED), 0);

	/* stopped: position 1, wrap counter 0, for avail (bits 0-15) and used (16-31) */
	cr_assert_eq(send_msg(11, 1, st, 8, -1, &m, &reply), 0);
	cr_assert(reply);
	cr_assert_eq(m.payload.state.num, 0x00010001, "state 0x%x", m.payload.state.num);
	packed_tx_frame(1, false, 6, "after the restart");
	cr_assert_eq(vu_rx_burst(&dev, 0, pkts, 8), 0, "a stopped ring moves nothing");
	/* a restarted frontend (QEMU sends both halves) resumes there: the new frame, once */
	ring_setup(1, TX_DESC, TX_AVAIL, TX_USED, 0);
	/* SET_VRING_BASE as QEMU sends it, then the kick that starts the ring */
	cr_assert_eq(send_msg(11, 1, st, 8, -1, NULL, &reply), 0);
	cr_assert_eq(msg_state(10, 1, m.payload.state.num), 0);
	{
		int efd = eventfd(0, 0);

		cr_assert_eq(msg_u64(12, 1, efd), 0);
		close(efd);
	}
	cr_assert_eq(vu_rx_burst(&dev, 0, pkts, 8), 1);
	cr_assert_eq(memcmp(pkts[0].seg[0].iov_base, "after the restart", pkts[0].len), 0);
	vu_rx_release(&dev, 0);
	cr_assert_eq(vu_rx_burst(&dev, 0, pkts, 8), 0);
	/* a base past the ring's end is refused, not walked */
	cr_assert_eq(send_msg(11, 1, st, 8, -1, &m, &reply), 0);
	cr_assert_eq(msg_state(10, 1, QSZ), 0);
	{
		int efd = eventfd(0, 0);

		cr_assert_lt(msg_u64(12, 1, efd), 0);
		close(efd);
	}
	cr_assert_not(dev.rings[1].started);
}

Test(vhost_user, packed_mergeable_buffers_and_a_frame_that_waits)
{
	struct vring_packed_desc *rd = (struct vring_packed_desc *)(guest + RX_DESC);
	static uint8_t frame[3000];
	struct iovec seg = { frame, sizeof(frame) };
	struct iovk_dp_pkt pkt = { .seg = &seg, .len = 3000, .n_seg = 1 };
	uint8_t *b0 = guest + BUF, *b1 = guest + BUF + 2048;

	for (unsigned i = 0; i < sizeof(frame); i++)
		frame[i] = (uint8_t)(i * 7);
	handshake(FEATURES | F_PACKED);
	ring_setup(0, RX_DESC, RX_AVAIL, RX_USED, 0x8000);
	/* one 2 KiB buffer for a 3000-byte frame: it waits, the ring untouched */
	packed_post(RX_DESC, 0, true, BUF, 2048, VRING_DESC_F_WRITE, 10);
	cr_assert_eq(vu_tx_burst(&dev, 0, &pkt, 1), 0);
	cr_assert_eq(rd[0].len, 2048);
	cr_assert_eq(rd[0].flags, VRING_DESC_F_WRITE | P_AVAIL, "the driver's descriptor was overwritten");
	cr_assert_eq(dev.rings[0].vq.last_avail, 0);
	cr_assert_eq(dev.rings[0].vq.pending, 0);
	/* a second buffer: the frame goes out in both, num_buffers 2 */
	packed_post(RX_DESC, 1, true, BUF + 2048, 2048, VRING_DESC_F_WRITE, 11);
	cr_assert_eq(vu_tx_burst(&dev, 0, &pkt, 1), 1);
	cr_assert_eq(rd[0].id, 10);
	cr_assert_eq(rd[0].len, 2048);
	cr_assert_eq(rd[0].flags, VRING_DESC_F_WRITE | P_AVAIL | P_USED);
	cr_assert_eq(rd[1].id, 11);
	cr_assert_eq(rd[1].len, 12 + 3000 - 2048);
	cr_assert_eq(b0[10] | b0[11] << 8, 2);
	cr_assert_eq(memcmp(b0 + 12, frame, 2036), 0);
	cr_assert_eq(memcmp(b1, frame + 2036, 3000 - 2036), 0);
}

Test(vhost_user, packed_hostile_ring_breaks_only_its_queue)
{
	struct iovk_dp_pkt pkts[8];
	int err = eventfd(0, EFD_NONBLOCK);
	uint64_t v;

	handshake(FEATURES | F_PACKED);
	ring_setup(1, TX_DESC, TX_AVAIL, TX_USED, 0x8000);
	ring_setup(3, 0x6000, 0x7000, 0x8000, 0x8000);
	cr_assert_eq(msg_u64(14, 1, err), 0);
	/* a buffer outside the memory table */
	packed_post(TX_DESC, 0, true, MEMSZ + 4096, 64, 0, 1);
	cr_assert_eq(vu_rx_burst(&dev, 0, pkts, 8), 0);
	cr_assert(dev.rings[1].vq.broken);
	cr_assert(strstr(dev.rings[1].vq.broken_reason, "outside guest memory"), "%s", dev.rings[1].vq.broken_reason);
	cr_assert_eq(read(err, &v, 8), 8);
	/* queue 1 keeps going */
	memset(guest + BUF + 4096, 0, 12);
	packed_post(0x6000, 0, true, BUF + 4096, 80, 0, 1);
	cr_assert_eq(vu_rx_burst(&dev, 1, pkts, 8), 1);
	cr_assert_eq(pkts[0].len, 80 - 12);
	vu_rx_release(&dev, 1);
	close(err);
}

/*
 * A running packed ring keeps its size: SET_VRING_NUM then is refused, and a
 * memory table sent after it remaps the ring at the size it started with.
 * Accepted, a larger size let a burst take more chains than the shadow holds
 * (a heap overflow in dp_vq_used_put() from the release); the assertions come
 * after the burst so ASan sees that before they fail.
 */
Test(vhost_user, packed_ring_cannot_grow_while_it_runs, .timeout = 10)
{
	struct iovk_dp_pkt pkts[2 * QSZ];
	unsigned got;
	int k;

	handshake(FEATURES | F_PACKED);
	ring_setup(1, TX_DESC, TX_AVAIL, TX_USED, 0x8000);
	k = msg_state(8, 1, 2 * QSZ);
	mem_table();
	for (uint16_t i = 0; i < 2 * QSZ; i++)
		packed_tx_frame(i, true, i, "grown");
	got = vu_rx_burst(&dev, 0, pkts, 2 * QSZ);
	vu_rx_release(&dev, 0);
	cr_assert_eq(k, -EBUSY);
	cr_assert_eq(dev.rings[1].vq.size, QSZ);
	cr_assert_eq(got, QSZ, "%u chains taken from a ring of %u", got, QSZ);
	cr_assert_not(dev.rings[1].vq.broken);
}

/* Smaller: the position (12) would be past the new ring's end, and the packed
 * indices are not masked, so the device would walk outside the checked ring. */
Test(vhost_user, packed_ring_cannot_shrink_while_it_runs, .timeout = 10)
{
	struct iovk_dp_pkt pkts[8];
	int k;

	handshake(FEATURES | F_PACKED);
	ring_setup(1, TX_DESC, TX_AVAIL, TX_USED, 0x8000 | 12);
	k = msg_state(8, 1, 4);
	mem_table();
	packed_tx_frame(12, true, 1, "shrunk");
	cr_assert_eq(vu_rx_burst(&dev, 0, pkts, 8), 1);
	vu_rx_release(&dev, 0);
	cr_assert_eq(k, -EBUSY);
	cr_assert_eq(dev.rings[1].vq.size, QSZ);
	cr_assert_eq(dev.rings[1].vq.last_avail, 13);
	cr_assert_eq(dev.rings[1].vq.last_used, 13);
	/* stopped, the size may change; the next start checks the base against it */
	cr_assert_eq(msg_state(11, 1, 0), 0);
	cr_assert_eq(msg_state(8, 1, 4), 0);
}

/* Should a running ring's size and its recorded one ever differ, a new memory
 * table breaks the ring rather than remap it at a size its shadow and
 * positions were not checked against. */
Test(vhost_user, packed_ring_remapped_at_another_size_breaks, .timeout = 10)
{
	struct iovk_dp_pkt pkts[2 * QSZ];

	handshake(FEATURES | F_PACKED);
	ring_setup(1, TX_DESC, TX_AVAIL, TX_USED, 0x8000);
	dev.rings[1].num = 2 * QSZ;
	mem_table();
	for (uint16_t i = 0; i < 2 * QSZ; i++)
		packed_tx_frame(i, true, i, "remapped");
	cr_assert_eq(vu_rx_burst(&dev, 0, pkts, 2 * QSZ), 0);
	cr_assert(dev.rings[1].vq.broken);
	cr_assert(strstr(dev.rings[1].vq.broken_reason, "remapped at size"), "%s", dev.rings[1].vq.broken_reason);
}

/* Stopped in a lap whose avail wrap counter is 1, the base carries bit 15
 * (and bit 31 for used): a frontend resuming from it sees the lap. */
Test(vhost_user, packed_ring_base_carries_wrap_counter_one)
{
	struct iovk_dp_pkt pkts[8];
	struct vu_msg m;
	uint32_t st[2] = { 1, 0 };
	bool reply;

	handshake(FEATURES | F_PACKED);
	ring_setup(1, TX_DESC, TX_AVAIL, TX_USED, 0x8000 | 2);
	packed_tx_frame(2, true, 3, "in lap one");
	cr_assert_eq(vu_rx_burst(&dev, 0, pkts, 8), 1);
	vu_rx_release(&dev, 0);
	cr_assert_eq(send_msg(11, 1, st, 8, -1, &m, &reply), 0);
	cr_assert(reply);
	cr_assert_eq(m.payload.state.num, 0x80038003, "state 0x%x", m.payload.state.num);
}

/* QEMU turns dirty logging on at a migration's start by sending every
 * running ring its addresses again with VHOST_VRING_F_LOG: the ring goes on
 * where it is, logging its used ring, and takes no chain twice. */
Test(vhost_user, new_addresses_of_a_running_ring_keep_its_place, .timeout = 10)
{
	struct iovk_dp_pkt pkts[8];
	struct {
		uint32_t index, flags;
		uint64_t desc, used, avail, log;
	} a = { 1, 1 /* VHOST_VRING_F_LOG */, UVA + TX_DESC, UVA + TX_USED, UVA + TX_AVAIL, TX_USED };
	struct vu_msg m;
	uint32_t st[2] = { 1, 0 };
	bool reply;

	first_frame_used(pkts);
	cr_assert_eq(send_msg(9, 1, &a, sizeof(a), -1, NULL, &reply), 0);
	cr_assert(dev.rings[1].started);
	cr_assert(dev.rings[1].vq.log_used, "the ring's VHOST_VRING_F_LOG was not taken");
	/* the first frame is not taken again; the second one is */
	cr_assert_eq(vu_rx_burst(&dev, 0, pkts, 8), 0, "a used chain was taken again");
	tx_chain(1, 5, "second frame");
	cr_assert_eq(vu_rx_burst(&dev, 0, pkts, 8), 1);
	cr_assert_eq(memcmp(pkts[0].seg[0].iov_base, "second frame", pkts[0].len), 0);
	vu_rx_release(&dev, 0);
	cr_assert_eq(((struct vring_used *)(guest + TX_USED))->idx, 2);
	cr_assert_eq(send_msg(11, 1, st, 8, -1, &m, &reply), 0);
	cr_assert_eq(m.payload.state.num, 2);
	/* addresses outside guest memory break the running ring, and only it */
	a.desc = UVA + MEMSZ;
	ring_setup(1, TX_DESC, TX_AVAIL, TX_USED, 2);
	cr_assert_eq(send_msg(9, 1, &a, sizeof(a), -1, NULL, &reply), 0);
	cr_assert(dev.rings[1].vq.broken);
}
