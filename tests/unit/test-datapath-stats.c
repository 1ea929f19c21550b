// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The datapath's counters as ports report them, and the af-xdp port's
 * completion ring read against a kernel that returns addresses it was never
 * given: what must hold is that such an address is counted (tx_errors) and
 * never reaches the free stack, where a transmit would then overwrite a
 * receive buffer lent to the other port or write past the UMEM; and that
 * the count a port reports reaches `stats` per queue and summed per port.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include <xdp/xsk.h>

#include "common/macro.h"
#include "lib/datapath/datapath-internal.h"

#define CQ_SIZE 8u

Test(datapath_stats, af_xdp_completions_outside_the_transmit_half_are_counted_not_reused)
{
	uint32_t prod = 0, cons = 0, flags = 0, n_free = 0;
	uint64_t ring[CQ_SIZE], free_stack[XP_TX_FRAMES], out[XP_TX_FRAMES / 64] = { 0 }, bad = 0;
	struct xsk_ring_cons cq = { .mask = CQ_SIZE - 1, .size = CQ_SIZE, .producer = &prod, .consumer = &cons,
				    .ring = ring, .flags = &flags };
	const uint64_t tx0 = (uint64_t)XP_RX_FRAMES * XP_FRAME_SIZE;
	const uint64_t in[] = {
		tx0,                                   /* the first transmit chunk: good */
		0,                                     /* a receive chunk */
		tx0 + 1,                               /* not chunk-aligned */
		(uint64_t)XP_FRAMES * XP_FRAME_SIZE,   /* one past the UMEM */
		tx0 + 5 * XP_FRAME_SIZE,               /* good */
		UINT64_MAX - XP_FRAME_SIZE + 1,        /* far past it, aligned */
	};

	/* chunks 0 and 5 were sent */
	dp_xsk_out(out, tx0);
	dp_xsk_out(out, tx0 + 5 * XP_FRAME_SIZE);
	for (unsigned i = 0; i < ELEMENTSOF(in); i++)
		ring[i] = in[i];
	__atomic_store_n(&prod, ELEMENTSOF(in), __ATOMIC_RELEASE);
	dp_xsk_complete(&cq, free_stack, &n_free, out, &bad);
	cr_assert_eq(n_free, 2);
	cr_assert_eq(free_stack[0], tx0);
	cr_assert_eq(free_stack[1], tx0 + 5 * XP_FRAME_SIZE);
	cr_assert_eq(bad, 4);
	/* every entry consumed, the good and the bad */
	cr_assert_eq(cons, ELEMENTSOF(in));

	cr_assert_eq(out[0], 0, "completed chunks still marked out: %#" PRIx64, out[0]);

	/* chunk 0 completed again while the stack has room: not handed out twice */
	ring[ELEMENTSOF(in) % CQ_SIZE] = tx0;
	__atomic_store_n(&prod, ELEMENTSOF(in) + 1, __ATOMIC_RELEASE);
	dp_xsk_complete(&cq, free_stack, &n_free, out, &bad);
	cr_assert_eq(n_free, 2);
	cr_assert_eq(bad, 5);

	/* a transmit chunk never sent (tx0 + 7): the same */
	ring[(ELEMENTSOF(in) + 1) % CQ_SIZE] = tx0 + 7 * XP_FRAME_SIZE;
	__atomic_store_n(&prod, ELEMENTSOF(in) + 2, __ATOMIC_RELEASE);
	dp_xsk_complete(&cq, free_stack, &n_free, out, &bad);
	cr_assert_eq(n_free, 2);
	cr_assert_eq(bad, 6);

	/* sent again, completed once: back on the stack */
	n_free = 1;
	dp_xsk_out(out, tx0 + (XP_TX_FRAMES - 1) * (uint64_t)XP_FRAME_SIZE);
	ring[(ELEMENTSOF(in) + 2) % CQ_SIZE] = tx0 + (XP_TX_FRAMES - 1) * (uint64_t)XP_FRAME_SIZE;
	__atomic_store_n(&prod, ELEMENTSOF(in) + 3, __ATOMIC_RELEASE);
	dp_xsk_complete(&cq, free_stack, &n_free, out, &bad);
	cr_assert_eq(n_free, 2);
	cr_assert_eq(free_stack[1], tx0 + (XP_TX_FRAMES - 1) * (uint64_t)XP_FRAME_SIZE);
	cr_assert_eq(bad, 6);
}

/* A port of two queues whose device returned 3 and 4 bad completions. */
static unsigned fake_rx(void *port, unsigned q, struct iovk_dp_pkt *pkts, unsigned n)
{
	return 0;
}

static void fake_release(void *port, unsigned q)
{
}

static unsigned fake_tx(void *port, unsigned q, const struct iovk_dp_pkt *pkts, unsigned n)
{
	return n;
}

static unsigned fake_n_queues(void *port)
{
	return 2;
}

static void fake_queue_state(void *port, unsigned q, struct iovk_dp_queue_state *ret)
{
	*ret = (struct iovk_dp_queue_state){ .ready = true, .tx_errors = 3 + q, .rx_dropped = 10 * (q + 1) };
}

static void fake_free(void *port)
{
}

static uint64_t get_u64(struct json_object *o, const char *key)
{
	struct json_object *v = json_object_object_get(o, key);

	cr_assert(v, "no \"%s\" in %s", key, json_object_to_json_string(o));
	return json_object_get_uint64(v);
}

Test(datapath_stats, tx_errors_reach_stats_per_queue_and_per_port)
{
	const struct iovk_dp_port_ops ops = {
		.sz = sizeof(ops), .kind = "fake", .rx_burst = fake_rx, .rx_release = fake_release,
		.tx_burst = fake_tx, .n_queues = fake_n_queues, .queue_state = fake_queue_state, .free = fake_free,
	};
	struct iovk_datapath_options opts = IOVK_DATAPATH_OPTIONS_INIT;
	struct iovk_datapath *dp;
	struct iovk_ctx *ctx;
	struct json_object *root, *port, *queues;
	char *json;

	cr_assert_eq(iovk_ctx_new(&ctx), 0);
	cr_assert_eq(iovk_datapath_new(ctx, &opts, &dp), 0);
	cr_assert_eq(iovk_datapath_add_port_ops(dp, &ops, NULL, "fake:a", NULL), 0);
	cr_assert_eq(iovk_datapath_stats_json(dp, &json), 0);
	root = json_tokener_parse(json);
	cr_assert(root, "not JSON: %s", json);
	port = json_object_array_get_idx(json_object_object_get(root, "ports"), 0);
	queues = json_object_object_get(port, "queues");
	cr_assert_eq(json_object_array_length(queues), 2);
	cr_assert_eq(get_u64(json_object_array_get_idx(queues, 0), "tx_errors"), 3);
	cr_assert_eq(get_u64(json_object_array_get_idx(queues, 1), "tx_errors"), 4);
	cr_assert_eq(get_u64(port, "tx_errors"), 7);
	/* not mixed up with its neighbour */
	cr_assert_eq(get_u64(port, "rx_dropped"), 30);
	json_object_put(root);
	free(json);
	iovk_datapath_unref(dp);
	iovk_ctx_unref(ctx);
}

/*
 * A port that receives `left` one-frame bursts and stops the datapath after
 * the last: what a run forwarded must still be in the workers' counters
 * when iovctl prints its final counters, after iovk_datapath_run() returned
 * (it used to free the workers first: "workers": []).
 */
struct counted_port {
	struct iovk_datapath *dp;
	unsigned left;
	uint8_t frame[60];
	struct iovec seg;
};

static unsigned counted_rx(void *port, unsigned q, struct iovk_dp_pkt *pkts, unsigned n)
{
	struct counted_port *p = port;

	if (!p->left || !n)
		return 0;
	p->seg = (struct iovec){ .iov_base = p->frame, .iov_len = sizeof(p->frame) };
	pkts[0] = (struct iovk_dp_pkt){ .seg = &p->seg, .len = sizeof(p->frame), .n_seg = 1 };
	if (--p->left == 0)
		iovk_datapath_stop(p->dp);
	return 1;
}

static unsigned one_queue(void *port)
{
	return 1;
}

Test(datapath_stats, final_counters_keep_the_workers_of_the_run)
{
	const struct iovk_dp_port_ops ops = {
		.sz = sizeof(ops), .kind = "fake", .rx_burst = counted_rx, .rx_release = fake_release,
		.tx_burst = fake_tx, .n_queues = one_queue, .free = fake_free,
	};
	struct iovk_datapath_options opts = IOVK_DATAPATH_OPTIONS_INIT;
	struct counted_port a = { .left = 100 }, b = { .left = 0 };
	struct json_object *root, *workers, *w;
	struct iovk_datapath *dp;
	struct iovk_ctx *ctx;
	char *json;

	cr_assert_eq(iovk_ctx_new(&ctx), 0);
	cr_assert_eq(iovk_datapath_new(ctx, &opts, &dp), 0);
	a.dp = b.dp = dp;
	cr_assert_eq(iovk_datapath_add_port_ops(dp, &ops, &a, "fake:a", NULL), 0);
	cr_assert_eq(iovk_datapath_add_port_ops(dp, &ops, &b, "fake:b", NULL), 0);
	cr_assert_eq(iovk_datapath_run(dp), 0);
	cr_assert_eq(a.left, 0);
	cr_assert_eq(iovk_datapath_stats_json(dp, &json), 0);
	root = json_tokener_parse(json);
	cr_assert(root, "not JSON: %s", json);
	workers = json_object_object_get(root, "workers");
	cr_assert_eq(json_object_array_length(workers), 1, "workers after the run: %s", json);
	w = json_object_array_get_idx(workers, 0);
	cr_assert_eq(get_u64(w, "packets"), 100);
	cr_assert_gt(get_u64(w, "busy_cycles"), 0);
	cr_assert_eq(get_u64(json_object_array_get_idx(json_object_object_get(root, "ports"), 1), "tx_packets"), 100);
	json_object_put(root);
	free(json);

	/* a second run starts from new workers, the first's freed */
	a.left = 5;
	cr_assert_eq(iovk_datapath_run(dp), 0);
	cr_assert_eq(iovk_datapath_stats_json(dp, &json), 0);
	root = json_tokener_parse(json);
	cr_assert(root, "not JSON: %s", json);
	workers = json_object_object_get(root, "workers");
	cr_assert_eq(json_object_array_length(workers), 1);
	cr_assert_eq(get_u64(json_object_array_get_idx(workers, 0), "packets"), 5);
	json_object_put(root);
	free(json);
	iovk_datapath_unref(dp);
	iovk_ctx_unref(ctx);
}
