/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The ring walkers (lib/datapath/vring.c), split and packed (the first
 * byte's top bit), on guest memory the input fills: descriptors, avail
 * ring, indirect tables, indices and wrap counters are all the fuzzer's. Guest memory is two regions, adjacent in guest physical
 * addresses but apart in ours, so buffers that straddle them are split.
 * Oracles: every segment handed out lies inside guest memory and their
 * lengths add up to the chain's; a chain never has more segments than
 * asked for; a broken ring stays broken and hands out nothing more; the
 * walk ends (libFuzzer's timeout catches an unbounded one). Packed rings
 * also: a chain takes 1..size ring descriptors, never more out at once than
 * the ring holds (the used entries kept for a burst cannot overflow), and
 * the positions stay inside the ring.
 */
#include <errno.h>

#include "lib/datapath/vring.h"

#include "fuzz.h"

#define REGION 32768u
#define GPA 0x40000ull

static uint8_t *region[2];
static struct dp_used_elem shadow[256];

static int inside(const void *p, size_t len)
{
	for (unsigned i = 0; i < 2; i++) {
		const uint8_t *b = p;

		if (b >= region[i] && b + len <= region[i] + REGION && len > 0)
			return 1;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dp_mem mem = { 0 };
	struct dp_vq vq = { .call_fd = -1, .err_fd = -1 };
	struct iovec iov[DP_CHAIN_MAX_SEGS];
	uint32_t qsz;
	unsigned max_iov, rounds = 0;
	enum dp_vq_dir dir;
	uint16_t start;
	bool packed, event_idx;

	if (size < 4)
		return 0;
	if (!region[0]) {
		region[0] = aligned_alloc(4096, REGION);
		region[1] = aligned_alloc(4096, REGION);
		if (!region[0] || !region[1])
			abort();
	}
	/* packed rings need not be a power of two */
	packed = data[0] & 0x80;
	qsz = packed ? 1u + (data[0] & 0x7f) * 2u : 1u << (data[0] % 9); /* 1 .. 255, 1 .. 256 */
	dir = data[1] & 1 ? DP_VQ_DEVICE_WRITES : DP_VQ_DEVICE_READS;
	max_iov = 1 + (data[1] >> 1) % DP_CHAIN_MAX_SEGS;
	event_idx = data[1] & 0x80; /* a bit max_iov does not use */
	start = (uint16_t)(data[2] | data[3] << 8);
	data += 4;
	size -= 4;
	for (unsigned i = 0; i < 2; i++) {
		size_t n = size > REGION ? REGION : size;

		memset(region[i], 0, REGION);
		memcpy(region[i], data, n);
		data += n;
		size -= n;
	}
	mem.n = 2;
	mem.r[0] = (struct dp_mem_region){ .gpa = GPA, .size = REGION, .uva = 0x1000000, .hva = region[0] };
	mem.r[1] = (struct dp_mem_region){ .gpa = GPA + REGION, .size = REGION, .uva = 0x3000000, .hva = region[1] };
	dp_vq_init(&vq, &mem);
	vq.packed = packed;
	vq.shadow = shadow;
	/* descriptors at the start of region 0, avail (driver area) at 8 KiB, used (device area) at 12 KiB */
	FUZZ_CHECK(dp_vq_set_addr(&vq, qsz, 0x1000000, 0x1000000 + 8192, 0x1000000 + 12288) == 0, "size %u", qsz);
	if (packed) {
		/* as vhost-user's SET_VRING_BASE gives it: position, and the wrap counter in bit 15 */
		vq.last_avail = vq.last_used = (uint16_t)((start & 0x7fff) % qsz);
		vq.avail_wrap = vq.used_wrap = start >> 15;
	} else {
		vq.last_avail = vq.last_used = start;
	}
	vq.event_idx = event_idx;

	for (;;) {
		int n = dp_vq_avail(&vq, 32);

		if (n <= 0 || ++rounds > 4)
			break;
		for (int i = 0; i < n; i++) {
			unsigned segs = 0;
			uint32_t len = 0;
			dp_chain_t head = 0;
			uint64_t sum = 0;
			int r = dp_vq_pop(&vq, dir, iov, max_iov, &segs, &len, &head);

			if (r == -EAGAIN) {
				FUZZ_CHECK(packed, "-EAGAIN from a split ring");
				n = i; /* the burst ends at the first descriptor not available */
				break;
			}
			if (r == -EPROTO) {
				FUZZ_CHECK(vq.broken, "-EPROTO without a broken ring");
				FUZZ_CHECK(dp_vq_pop(&vq, dir, iov, max_iov, &segs, &len, &head) == -EPROTO,
					   "a broken ring handed out another chain");
				return 0;
			}
			FUZZ_CHECK(r == 0 || r == -E2BIG, "pop returned %d", r);
			if (packed) {
				FUZZ_CHECK((head >> 16) >= 1 && (head >> 16) <= qsz, "chain of %u descriptors, ring %u",
					   head >> 16, qsz);
				FUZZ_CHECK(vq.pending <= qsz && (unsigned)i < qsz, "%u descriptors out, %d chains, ring %u",
					   vq.pending, i + 1, qsz);
				FUZZ_CHECK(vq.last_avail < qsz, "position %u, ring %u", vq.last_avail, qsz);
			} else {
				FUZZ_CHECK(head < qsz, "head %u, ring %u", head, qsz);
			}
			FUZZ_CHECK(segs <= max_iov, "%u segments, room for %u", segs, max_iov);
			for (unsigned k = 0; k < segs; k++) {
				FUZZ_CHECK(inside(iov[k].iov_base, iov[k].iov_len), "segment %u outside guest memory", k);
				sum += iov[k].iov_len;
			}
			FUZZ_CHECK(sum == len, "segments add to %llu, chain says %u", (unsigned long long)sum, len);
			dp_vq_used_put(&vq, (unsigned)i, head, dir == DP_VQ_DEVICE_WRITES ? len : 0);
		}
		dp_vq_used_publish(&vq, (unsigned)n);
		FUZZ_CHECK(!packed || (vq.last_used < qsz && vq.pending == 0), "used position %u, %u still out",
			   vq.last_used, vq.pending);
	}
	return 0;
}
