/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the vfio port reads from a device it does not trust
 * (lib/datapath/virtio-pci.c): its config space and its used rings.
 * The input's first 256 bytes are config space (shorter inputs are a
 * truncated config space, copied to an allocation of exactly their size),
 * walked by vp_caps_parse() against fixed BAR sizes; the rest plays the
 * device on a receive ring and a transmit ring that the harness keeps
 * full: each 8-byte record is a used entry (id, length) and a byte saying
 * how far to move used->idx. Oracles: a structure found lies inside its
 * BAR, ids handed back are ones the driver gave and are never handed back
 * twice without being posted again, receive lengths fit the buffer, and a
 * ring that refused an entry stays broken. The config space's first five
 * bytes also play the MQ fields (max_virtqueue_pairs, num_queues, the
 * pairs asked): a control queue accepted exists and lies after every pair.
 */
#include <errno.h>

#include "lib/datapath/virtio-pci.h"

#include "fuzz.h"

#define QSZ 16u
#define BUF 2048u

static const uint64_t bars[VP_BAR_COUNT] = { 0x100, 0x1000, 0, 0, 0x4000, 0x10000 };

static void check_loc(const struct vp_cap_loc *l)
{
	if (!l->present)
		return;
	FUZZ_CHECK(l->bar < VP_BAR_COUNT, "BAR %u", l->bar);
	FUZZ_CHECK((uint64_t)l->offset + l->length <= bars[l->bar], "structure 0x%x+0x%x outside BAR%u", l->offset,
		   l->length, l->bar);
}

static void fuzz_caps(const uint8_t *data, size_t size)
{
	size_t n = size < VP_CFG_SIZE ? size : VP_CFG_SIZE;
	uint8_t *cfg = malloc(n ? n : 1);
	struct vp_caps c;
	char err[256];

	if (!cfg)
		abort();
	memcpy(cfg, data, n);
	if (vp_caps_parse(cfg, n, bars, &c, err, sizeof(err)) == 0) {
		FUZZ_CHECK(c.common.present && c.notify.present, "success without common or notify");
		FUZZ_CHECK(c.common.length >= VP_COMMON_CFG_MIN, "common structure of %u bytes", c.common.length);
		check_loc(&c.common);
		check_loc(&c.notify);
		check_loc(&c.isr);
		check_loc(&c.device);
	}
	free(cfg);
}

static void fuzz_mq(const uint8_t *data, size_t size)
{
	uint16_t max_pairs, numq, ctrl = 0xabcd;
	unsigned want;
	char err[256];
	int r;

	if (size < 5)
		return;
	memcpy(&max_pairs, data, 2);
	memcpy(&numq, data + 2, 2);
	want = data[4] % 20;
	r = vp_net_mq_check(max_pairs, numq, want, &ctrl, err, sizeof(err));
	if (r == 0) {
		FUZZ_CHECK(ctrl == 2u * max_pairs && ctrl < numq, "control queue %u of %u virtqueues", ctrl, numq);
		FUZZ_CHECK(want <= max_pairs, "%u pairs accepted of %u", want, max_pairs);
	} else {
		FUZZ_CHECK((r == -EPROTO || r == -EOPNOTSUPP) && ctrl == 0xabcd, "refusal %d touched the index", r);
	}
}

struct ring {
	struct vp_vq vq;
	struct vp_vq_layout lay;
	uint8_t *drv, *dev;
	uint8_t given[QSZ]; /* the harness's own view: 1 = with the device */
};

static void ring_init(struct ring *r, bool rx)
{
	vp_vq_layout(QSZ, 4096, &r->lay);
	r->drv = aligned_alloc(4096, r->lay.driver_size);
	r->dev = aligned_alloc(4096, r->lay.device_size);
	if (!r->drv || !r->dev)
		abort();
	memset(&r->vq, 0, sizeof(r->vq));
	vp_vq_init(&r->vq, QSZ, r->drv, r->dev, &r->lay, 0x100000, BUF, rx);
	memset(r->given, 0, sizeof(r->given));
}

/* Posts every free buffer: the driver keeps the ring full. */
static void ring_fill(struct ring *r)
{
	for (int id; (id = vp_vq_get_free(&r->vq)) >= 0;) {
		vp_vq_post(&r->vq, (uint16_t)id, 64);
		r->given[id] = 1;
	}
	vp_vq_publish(&r->vq);
}

static void ring_step(struct ring *r, const uint8_t *rec)
{
	uint16_t ids[QSZ];
	uint32_t lens[QSZ], id, len;
	bool was_broken = r->vq.broken;
	int n;

	memcpy(&id, rec, 4);
	memcpy(&len, rec + 4, 4);
	/* the device writes an entry where it likes and moves the index as it likes */
	r->vq.used->ring[(r->vq.used->idx + (rec[0] >> 4)) % QSZ] = (struct vring_used_elem){ .id = id % 64, .len = len };
	r->vq.used->idx = (uint16_t)(r->vq.used->idx + (rec[1] & 7));
	if (was_broken)
		return;
	n = vp_vq_used(&r->vq, ids, lens, QSZ);
	if (n < 0) {
		FUZZ_CHECK(n == -EPROTO && r->vq.broken, "refused without breaking: %d", n);
		return;
	}
	for (int i = 0; i < n; i++) {
		FUZZ_CHECK(ids[i] < QSZ, "id %u out of range handed back", ids[i]);
		FUZZ_CHECK(r->given[ids[i]], "id %u handed back but not with the device", ids[i]);
		FUZZ_CHECK(!r->vq.device_writes || lens[i] <= BUF, "length %u over the buffer", lens[i]);
		r->given[ids[i]] = 0;
		vp_vq_put_free(&r->vq, ids[i]);
	}
	ring_fill(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ring rx, tx;

	fuzz_caps(data, size);
	fuzz_mq(data, size);
	if (size <= VP_CFG_SIZE)
		return 0;
	data += VP_CFG_SIZE;
	size -= VP_CFG_SIZE;
	ring_init(&rx, true);
	ring_init(&tx, false);
	ring_fill(&rx);
	ring_fill(&tx);
	for (size_t off = 0; off + 8 <= size; off += 8)
		ring_step(off / 8 % 2 ? &tx : &rx, data + off);
	FUZZ_CHECK(rx.vq.n_inflight <= QSZ && tx.vq.n_inflight <= QSZ, "more in flight than the ring holds");
	free(rx.drv);
	free(rx.dev);
	free(tx.drv);
	free(tx.dev);
	return 0;
}
