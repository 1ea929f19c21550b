/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The tap port: a TAP device (IFF_TAP | IFF_NO_PI, no vnet header), one
 * queue. The kernel's TAP interface moves one frame per read(2)/write(2),
 * so this port costs a system call per packet: it is for tests and for
 * VFs that have nothing better, not for speed. The device is attached if
 * it exists (made persistent with `ip tuntap add`) or created; bringing it
 * up is the administrator's business, as with any other netdev.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../internal.h"
#include "datapath-internal.h"

/* an Ethernet frame with a VLAN tag and jumbo payload */
#define TAP_FRAME_MAX 9216

struct tap_port {
	int fd;
	int tx_lock;
	char ifname[IFNAMSIZ];
	uint64_t rx_errors;
	struct iovec seg[DP_BURST_MAX];
	uint8_t *buf; /* DP_BURST_MAX * TAP_FRAME_MAX */
};

static unsigned tap_rx_burst(void *port, unsigned q, struct iovk_dp_pkt *pkts, unsigned n)
{
	struct tap_port *t = port;
	unsigned got = 0;

	while (got < n) {
		uint8_t *b = t->buf + (size_t)got * TAP_FRAME_MAX;
		ssize_t k = read(t->fd, b, TAP_FRAME_MAX);

		if (k <= 0) {
			if (k < 0 && errno != EAGAIN && errno != EINTR)
				t->rx_errors++;
			break;
		}
		t->seg[got] = (struct iovec){ .iov_base = b, .iov_len = (size_t)k };
		pkts[got] = (struct iovk_dp_pkt){ .seg = &t->seg[got], .len = (uint32_t)k, .n_seg = 1 };
		got++;
	}
	return got;
}

static void tap_rx_release(void *port, unsigned q)
{
}

static unsigned tap_tx_burst(void *port, unsigned q, const struct iovk_dp_pkt *pkts, unsigned n)
{
	struct tap_port *t = port;
	unsigned sent = 0;

	dp_lock(&t->tx_lock);
	for (unsigned i = 0; i < n; i++)
		/* a full queue or a device that is down drops the frame, as a NIC would */
		if (writev(t->fd, pkts[i].seg, pkts[i].n_seg) == (ssize_t)pkts[i].len)
			sent++;
	dp_unlock(&t->tx_lock);
	return sent;
}

static unsigned tap_n_queues(void *port)
{
	return 1;
}

static int tap_control_fd(void *port)
{
	return -1;
}

static int tap_control(void *port, bool readable)
{
	return 0;
}

static const char *tap_state(void *port)
{
	return "attached";
}

static void tap_queue_state(void *port, unsigned q, struct iovk_dp_queue_state *ret)
{
	struct tap_port *t = port;

	*ret = (struct iovk_dp_queue_state){ .ready = true, .rx_errors = t->rx_errors };
}

/* Interrupt mode is the fd itself: readable while a frame waits (level-triggered). */
static int tap_rx_wait_fd(void *port, unsigned q)
{
	return ((struct tap_port *)port)->fd;
}

static bool tap_rx_interrupts(void *port, unsigned q, bool on)
{
	return true;
}

static void tap_free(void *port)
{
	struct tap_port *t = port;

	if (!t)
		return;
	if (t->fd >= 0)
		close(t->fd);
	free(t->buf);
	free(t);
}

const struct iovk_dp_port_ops dp_tap_port_ops = {
	.sz = sizeof(struct iovk_dp_port_ops),
	.kind = "tap",
	.rx_burst = tap_rx_burst,
	.rx_release = tap_rx_release,
	.tx_burst = tap_tx_burst,
	.n_queues = tap_n_queues,
	.control_fd = tap_control_fd,
	.control = tap_control,
	.state = tap_state,
	.queue_state = tap_queue_state,
	.free = tap_free,
	.rx_wait_fd = tap_rx_wait_fd,
	.rx_interrupts = tap_rx_interrupts,
};

int dp_tap_port_new(struct iovk_ctx *ctx, const struct iovk_dp_port_spec *spec, void **ret_port)
{
	struct tap_port *t;
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI };
	int r;

	if (strlen(spec->name) >= IFNAMSIZ)
		return set_error(ctx, -EINVAL, "tap:%s: interface name too long", spec->name);
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->buf = malloc((size_t)DP_BURST_MAX * TAP_FRAME_MAX);
	t->fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (!t->buf || t->fd < 0) {
		r = t->buf ? set_error(ctx, negative_errno(), "tap:%s: opening /dev/net/tun: %m", spec->name) : -ENOMEM;
		tap_free(t);
		return r;
	}
	memcpy(ifr.ifr_name, spec->name, strlen(spec->name));
	if (ioctl(t->fd, TUNSETIFF, &ifr) < 0) {
		r = set_error(ctx, negative_errno(), "tap:%s: TUNSETIFF: %m", spec->name);
		tap_free(t);
		return r;
	}
	snprintf(t->ifname, sizeof(t->ifname), "%s", spec->name);
	*ret_port = t;
	return 0;
}
