/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The af-xdp port: an AF_XDP socket on one queue of a kernel netdev (a VF
 * that keeps its kernel driver: iavf, mlx5, ice, igbvf...), through Debian's
 * libxdp, which loads and shares the XDP program that redirects the queue's
 * frames to the socket (and detaches it when the last socket goes).
 *
 * One UMEM of FRAMES chunks of FRAME_SIZE bytes, split once: the first half
 * only ever circulates fill ring -> kernel -> rx ring -> the forwarder ->
 * fill ring, the second half is the transmit pool: tx ring -> kernel ->
 * completion ring -> free stack. Each ring is as large as the frames that
 * can be in it, so a reserve on the fill or tx ring never fails and nothing
 * is ever lost between them. The other port reads received frames straight
 * from the UMEM (no copy here) and gives them back in rx_release, which
 * returns them to the fill ring, once per burst.
 *
 * Copy mode (XDP_COPY) is the default: every driver has it, through native
 * XDP where the driver has that (veth, ice, mlx5...) and generic (skb) XDP
 * elsewhere (igbvf). Zero-copy only when asked, and then it is that or an
 * error: a driver without it is named with the kernel's errno text.
 *
 * need_wakeup (XDP_USE_NEED_WAKEUP, kernel 5.4): the kernel tells through a
 * ring flag when it needs a system call to carry on, so the hot path makes
 * one only then: sendto() after a transmit burst when the tx ring asks (in
 * copy mode it always does: the copy is made in that call), recvfrom() when
 * a receive found nothing and the fill ring asks (zero-copy drivers whose
 * fill ring ran dry). Nothing is per packet.
 *
 * Frames larger than a chunk (jumbo frames: AF_XDP multi-buffer is 6.6+ and
 * not used here) cannot be sent: one ends its burst, it and the frames
 * after it count as dropped.
 */
#include <errno.h>
#include <linux/ethtool.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <xdp/libxdp.h>
#include <xdp/xsk.h>

#include "../internal.h"
#include "datapath-internal.h"

/* rx_addr[] of a receive descriptor that was not ours: not recycled (not chunk-aligned) */
#define XP_RX_BAD_ADDR UINT64_MAX
/* a sendto() in copy mode sends at most 32 frames (the kernel's TX_BATCH_SIZE)
 * and says EAGAIN when more are left: a burst of DP_BURST_MAX needs 8 */
#define XP_KICKS_MAX (DP_BURST_MAX / 32 + 1)

struct xp_port {
	struct iovk_ctx *ctx; /* borrowed: the datapath's, which outlives its ports */
	char ifname[IFNAMSIZ];
	unsigned queue;
	bool zero_copy;
	bool generic_xdp; /* the driver has no native XDP: skb mode */
	int ioctl_fd;     /* for the link flags, on the control thread */
	uint8_t *area;
	struct xsk_umem *umem;
	struct xsk_socket *xsk;
	int fd;
	struct xsk_ring_prod fq;
	struct xsk_ring_cons cq;
	struct xsk_ring_cons rx;
	struct xsk_ring_prod tx;

	/* receive side (one worker): the burst lent to the other port */
	unsigned rx_lent;
	uint64_t rx_addr[DP_BURST_MAX];
	struct iovec rx_seg[DP_BURST_MAX];
	uint64_t rx_errors;

	/* transmit side (any worker, under tx_lock) */
	int tx_lock;
	uint32_t tx_free_n;
	uint32_t tx_unsent; /* in the tx ring, the kernel not told yet (a kick said EAGAIN) */
	uint64_t tx_bad_completions; /* completion addresses that are not a transmit chunk: dropped */
	uint64_t tx_free[XP_TX_FRAMES];
	uint64_t tx_out[XP_TX_FRAMES / 64]; /* bit i: transmit chunk i is with the kernel */
};

/* ---- hot path ---- */

static void xp_kick_tx(struct xp_port *x)
{
	int err = EAGAIN;

	for (unsigned i = 0; i < XP_KICKS_MAX && err == EAGAIN; i++)
		err = sendto(x->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) >= 0 ? 0 : errno;
	/* EAGAIN: more than one call's budget, or no skb or completion slot
	 * for a moment; EBUSY, ENOBUFS: the driver's queue is full. The frames
	 * stay in the ring, and an idle receive (below) kicks again. A link
	 * down (ENETDOWN, ENXIO) waits for the next burst instead: no system
	 * call per idle poll for as long as it is down. */
	__atomic_store_n(&x->tx_unsent, err == EAGAIN || err == EBUSY || err == ENOBUFS, __ATOMIC_RELAXED);
}

/* A transmit chunk: aligned, in the upper half of the area (the lower half is the receive one). */
static bool xp_tx_addr_ok(uint64_t addr)
{
	return addr % XP_FRAME_SIZE == 0 && addr >= (uint64_t)XP_RX_FRAMES * XP_FRAME_SIZE &&
	       addr < (uint64_t)XP_FRAMES * XP_FRAME_SIZE;
}

/* Only addresses of transmit chunks that are out go back to the free stack:
 * anything else would have a transmit overwrite a receive buffer lent to the
 * other port, or write past the area, and a chunk completed twice would be
 * handed out twice (two frames in one buffer). The rest is counted. */
void dp_xsk_complete(struct xsk_ring_cons *cq, uint64_t *tx_free, uint32_t *tx_free_n, uint64_t *tx_out,
		     uint64_t *bad)
{
	uint32_t idx, n = xsk_ring_cons__peek(cq, XP_TX_FRAMES, &idx);

	for (uint32_t i = 0; i < n; i++) {
		uint64_t addr = *xsk_ring_cons__comp_addr(cq, idx + i);
		uint64_t c = xp_tx_addr_ok(addr) ? addr / XP_FRAME_SIZE - XP_RX_FRAMES : 0, bit = 1ull << (c % 64);

		/* out, so not on the stack: it has room */
		if (xp_tx_addr_ok(addr) && (tx_out[c / 64] & bit)) {
			tx_out[c / 64] &= ~bit;
			tx_free[(*tx_free_n)++] = addr;
		} else
			__atomic_store_n(bad, *bad + 1, __ATOMIC_RELAXED); /* read by the control thread */
	}
	if (n)
		xsk_ring_cons__release(cq, n);
}

/* Frames the kernel finished sending back to the free stack (tx_lock held). */
static void xp_complete(struct xp_port *x)
{
	dp_xsk_complete(&x->cq, x->tx_free, &x->tx_free_n, x->tx_out, &x->tx_bad_completions);
}

static void xp_rx_release(void *port, unsigned q);

static unsigned xp_rx_burst(void *port, unsigned q, struct iovk_dp_pkt *pkts, unsigned n)
{
	struct xp_port *x = port;
	uint32_t idx;
	unsigned got = xsk_ring_cons__peek(&x->rx, n, &idx), out = 0;

	if (got == 0) {
		/* a zero-copy driver that found the fill ring empty waits for this */
		if (xsk_ring_prod__needs_wakeup(&x->fq))
			recvfrom(x->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
		/* frames a kick left in the tx ring: sent now that the port is idle */
		if (__atomic_load_n(&x->tx_unsent, __ATOMIC_RELAXED) && dp_trylock(&x->tx_lock)) {
			if (__atomic_load_n(&x->tx_unsent, __ATOMIC_RELAXED))
				xp_kick_tx(x);
			dp_unlock(&x->tx_lock);
		}
		return 0;
	}
	for (unsigned i = 0; i < got; i++) {
		const struct xdp_desc *d = xsk_ring_cons__rx_desc(&x->rx, idx + i);
		uint64_t addr = d->addr;

		/* aligned chunks: the address is the frame's, inside its chunk, and
		 * the chunk one of the receive half (the fill ring only had those) */
		x->rx_addr[i] = addr & ~(uint64_t)(XP_FRAME_SIZE - 1);
		if (addr >= (uint64_t)XP_RX_FRAMES * XP_FRAME_SIZE || d->len > XP_FRAME_SIZE - (addr - x->rx_addr[i])) {
			/* not what this kernel writes: counted, and the address is not
			 * given to the fill ring (xp_rx_release skips it) */
			x->rx_errors++;
			x->rx_addr[i] = XP_RX_BAD_ADDR;
			continue;
		}
		x->rx_seg[out] = (struct iovec){ .iov_base = x->area + addr, .iov_len = d->len };
		pkts[out] = (struct iovk_dp_pkt){ .seg = &x->rx_seg[out], .len = d->len, .n_seg = 1 };
		out++;
	}
	x->rx_lent = got;
	if (out == 0)
		xp_rx_release(x, q);
	return out;
}

static void xp_rx_release(void *port, unsigned q)
{
	struct xp_port *x = port;
	unsigned n = x->rx_lent, good = 0;
	uint32_t idx;

	if (!n)
		return;
	xsk_ring_cons__release(&x->rx, n);
	/* never fails: the fill ring has room for every receive frame; an
	 * invalid address (marked by xp_rx_burst) is not recycled */
	for (unsigned i = 0; i < n; i++)
		if (x->rx_addr[i] != XP_RX_BAD_ADDR)
			x->rx_addr[good++] = x->rx_addr[i];
	if (good && xsk_ring_prod__reserve(&x->fq, good, &idx) == good) {
		for (unsigned i = 0; i < good; i++)
			*xsk_ring_prod__fill_addr(&x->fq, idx + i) = x->rx_addr[i];
		xsk_ring_prod__submit(&x->fq, good);
	}
	x->rx_lent = 0;
}

static unsigned xp_tx_burst(void *port, unsigned q, const struct iovk_dp_pkt *pkts, unsigned n)
{
	struct xp_port *x = port;
	unsigned room, fits = 0, k = 0;
	uint32_t idx;

	dp_lock(&x->tx_lock);
	if (x->tx_free_n < n)
		xp_complete(x);
	room = n < x->tx_free_n ? n : x->tx_free_n;
	/* the forwarder counts the first `sent` frames as sent and the rest as
	 * dropped: an oversize frame ends the burst, it is not skipped */
	while (fits < room && pkts[fits].len <= XP_FRAME_SIZE)
		fits++;
	/* never fails: the tx ring has room for every transmit frame */
	if (fits == 0 || xsk_ring_prod__reserve(&x->tx, fits, &idx) != fits)
		goto out;
	for (unsigned i = 0; i < fits; i++) {
		struct xdp_desc *d;
		uint64_t addr;
		uint8_t *to;

		addr = x->tx_free[--x->tx_free_n];
		dp_xsk_out(x->tx_out, addr);
		to = x->area + addr;
		for (unsigned s = 0; s < pkts[i].n_seg; s++) {
			memcpy(to, pkts[i].seg[s].iov_base, pkts[i].seg[s].iov_len);
			to += pkts[i].seg[s].iov_len;
		}
		d = xsk_ring_prod__tx_desc(&x->tx, idx + k++);
		d->addr = addr;
		d->len = pkts[i].len;
		d->options = 0;
	}
	xsk_ring_prod__submit(&x->tx, k);
	if (xsk_ring_prod__needs_wakeup(&x->tx))
		xp_kick_tx(x);
out:
	dp_unlock(&x->tx_lock);
	return k;
}

static unsigned xp_n_queues(void *port)
{
	return 1;
}

static int xp_control_fd(void *port)
{
	return -1;
}

static int xp_control(void *port, bool readable)
{
	return 0;
}

static bool xp_link_running(struct xp_port *x)
{
	struct ifreq ifr = { 0 };

	memcpy(ifr.ifr_name, x->ifname, strlen(x->ifname));
	if (ioctl(x->ioctl_fd, SIOCGIFFLAGS, &ifr) < 0)
		return false;
	return (ifr.ifr_flags & (IFF_UP | IFF_RUNNING)) == (IFF_UP | IFF_RUNNING);
}

static const char *xp_state(void *port)
{
	struct xp_port *x = port;

	if (!xp_link_running(x))
		return "down";
	return x->zero_copy ? "zero-copy" : "copy";
}

static void xp_queue_state(void *port, unsigned q, struct iovk_dp_queue_state *ret)
{
	struct xp_port *x = port;
	struct xdp_statistics st = { 0 };
	socklen_t len = sizeof(st);

	*ret = (struct iovk_dp_queue_state){
		.ready = xp_link_running(x),
		.rx_errors = __atomic_load_n(&x->rx_errors, __ATOMIC_RELAXED),
		.tx_errors = __atomic_load_n(&x->tx_bad_completions, __ATOMIC_RELAXED),
	};
	/* the kernel's count of frames for this socket it had to drop: no
	 * fill buffer (rx_dropped; its rx_fill_ring_empty_descs counts the
	 * same events) or the rx ring full */
	if (getsockopt(x->fd, SOL_XDP, XDP_STATISTICS, &st, &len) == 0)
		ret->rx_dropped = st.rx_dropped + st.rx_ring_full;
}

static void xdp_log_begin(struct iovk_ctx *ctx);
static void xdp_log_end(void);

static void xp_free(void *port)
{
	struct xp_port *x = port;

	if (!x)
		return;
	/* the socket first: libxdp removes it from the XDP program's map and
	 * detaches the program when no other socket of this netdev uses it */
	xdp_log_begin(x->ctx);
	xsk_socket__delete(x->xsk);
	xsk_umem__delete(x->umem);
	xdp_log_end();
	if (x->area)
		munmap(x->area, (size_t)XP_FRAMES * XP_FRAME_SIZE);
	if (x->ioctl_fd >= 0)
		close(x->ioctl_fd);
	free(x);
}

const struct iovk_dp_port_ops dp_af_xdp_port_ops = {
	.sz = sizeof(struct iovk_dp_port_ops),
	.kind = "af-xdp",
	.rx_burst = xp_rx_burst,
	.rx_release = xp_rx_release,
	.tx_burst = xp_tx_burst,
	.n_queues = xp_n_queues,
	.control_fd = xp_control_fd,
	.control = xp_control,
	.state = xp_state,
	.queue_state = xp_queue_state,
	.free = xp_free,
};

/* ---- setup ---- */

/*
 * libxdp and libbpf print to stderr unless told otherwise, and only
 * process-wide: while this thread sets a port up their messages go to its
 * context's log at debug level (one is expected: inside a network namespace
 * without a BPF filesystem libxdp loads its program without the dispatcher
 * that lets programs share a netdev, and says so), and the last one is kept
 * for the error message.
 */
static __thread struct iovk_ctx *xdp_log_ctx;
static __thread char xdp_last_msg[256];

static int xdp_log_vprint(const char *format, va_list ap)
{
	char buf[512];
	size_t len;

	vsnprintf(buf, sizeof(buf), format, ap);
	len = strlen(buf);
	while (len && buf[len - 1] == '\n')
		buf[--len] = '\0';
	snprintf(xdp_last_msg, sizeof(xdp_last_msg), "%s", buf);
	if (xdp_log_ctx)
		log_debug(xdp_log_ctx, "%s", buf);
	return (int)len;
}

static int libxdp_print(enum libxdp_print_level level, const char *format, va_list ap)
{
	return xdp_log_vprint(format, ap);
}

static int libbpf_print(enum libbpf_print_level level, const char *format, va_list ap)
{
	/* libbpf's debug level is a program's whole load log: not even for debug */
	return level == LIBBPF_DEBUG ? 0 : xdp_log_vprint(format, ap);
}

static __thread libxdp_print_fn_t xdp_old_print;
static __thread libbpf_print_fn_t bpf_old_print;

static void xdp_log_begin(struct iovk_ctx *ctx)
{
	xdp_log_ctx = ctx;
	xdp_last_msg[0] = '\0';
	xdp_old_print = libxdp_set_print(libxdp_print);
	bpf_old_print = libbpf_set_print(libbpf_print);
}

static void xdp_log_end(void)
{
	libxdp_set_print(xdp_old_print);
	libbpf_set_print(bpf_old_print);
	xdp_log_ctx = NULL;
}

/* The netdev's driver, as ethtool names it ("veth", "igbvf"); "unknown" if it does not say. */
static void driver_name(struct xp_port *x, char *buf, size_t size)
{
	struct ethtool_drvinfo info = { .cmd = ETHTOOL_GDRVINFO };
	struct ifreq ifr = { .ifr_data = (void *)&info };

	memcpy(ifr.ifr_name, x->ifname, strlen(x->ifname));
	snprintf(buf, size, "%s", ioctl(x->ioctl_fd, SIOCETHTOOL, &ifr) == 0 && info.driver[0] ? info.driver : "unknown");
}

/* The netdev's receive queues as ethtool counts them; 0 if it does not say. */
static unsigned rx_queues(struct xp_port *x)
{
	struct ethtool_channels ch = { .cmd = ETHTOOL_GCHANNELS };
	struct ifreq ifr = { .ifr_data = (void *)&ch };

	memcpy(ifr.ifr_name, x->ifname, strlen(x->ifname));
	if (ioctl(x->ioctl_fd, SIOCETHTOOL, &ifr) < 0)
		return 0;
	/* NICs count queue pairs as combined channels, veth as rx */
	return ch.combined_count > ch.rx_count ? ch.combined_count : ch.rx_count;
}

/* One try at the UMEM and the socket, the XDP program in mode xdp_flags. */
static int xp_open(struct xp_port *x, uint32_t xdp_flags)
{
	const struct xsk_umem_config ucfg = {
		.fill_size = XP_RX_FRAMES,
		.comp_size = XP_TX_FRAMES,
		.frame_size = XP_FRAME_SIZE,
		.frame_headroom = 0,
	};
	const struct xsk_socket_config scfg = {
		.rx_size = XP_RX_FRAMES,
		.tx_size = XP_TX_FRAMES,
		.xdp_flags = xdp_flags,
		.bind_flags = (uint16_t)(XDP_USE_NEED_WAKEUP | (x->zero_copy ? XDP_ZEROCOPY : XDP_COPY)),
	};
	uint32_t idx;
	int r;

	r = xsk_umem__create(&x->umem, x->area, (uint64_t)XP_FRAMES * XP_FRAME_SIZE, &x->fq, &x->cq, &ucfg);
	if (r < 0) {
		x->umem = NULL;
		return r;
	}
	r = xsk_socket__create(&x->xsk, x->ifname, x->queue, x->umem, &x->rx, &x->tx, &scfg);
	if (r < 0) {
		x->xsk = NULL;
		xsk_umem__delete(x->umem);
		x->umem = NULL;
		return r;
	}
	x->fd = xsk_socket__fd(x->xsk);
	/* every receive frame to the kernel, every transmit frame free */
	if (xsk_ring_prod__reserve(&x->fq, XP_RX_FRAMES, &idx) != XP_RX_FRAMES)
		return -EIO;
	for (uint32_t i = 0; i < XP_RX_FRAMES; i++)
		*xsk_ring_prod__fill_addr(&x->fq, idx + i) = (uint64_t)i * XP_FRAME_SIZE;
	xsk_ring_prod__submit(&x->fq, XP_RX_FRAMES);
	for (uint32_t i = 0; i < XP_TX_FRAMES; i++)
		x->tx_free[i] = (uint64_t)(XP_RX_FRAMES + i) * XP_FRAME_SIZE;
	x->tx_free_n = XP_TX_FRAMES;
	return 0;
}

int dp_af_xdp_port_new(struct iovk_ctx *ctx, const struct iovk_dp_port_spec *spec, void **ret_port)
{
	char spec_text[IOVK_DP_NAME_MAX + 32], driver[32];
	struct xp_port *x;
	unsigned nq;
	int r;

	snprintf(spec_text, sizeof(spec_text), "af-xdp:%s%s%.0u%s", spec->name, spec->queue ? ",queue=" : "", spec->queue,
		 spec->zero_copy ? ",zero-copy" : "");
	if (!ifname_valid(spec->name))
		return set_error(ctx, -EINVAL, "%s: not an interface name", spec_text);
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->fd = -1;
	x->ctx = ctx;
	snprintf(x->ifname, sizeof(x->ifname), "%s", spec->name);
	x->queue = spec->queue;
	x->zero_copy = spec->zero_copy;
	/* any socket takes the netdev ioctls; AF_UNIX is one a sandbox allows */
	x->ioctl_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (x->ioctl_fd < 0) {
		r = set_error(ctx, negative_errno(), "%s: socket: %m", spec_text);
		goto fail;
	}
	if (if_nametoindex(x->ifname) == 0) {
		r = set_error(ctx, -ENODEV, "%s: no such network interface", spec_text);
		goto fail;
	}
	nq = rx_queues(x);
	if (nq && x->queue >= nq) {
		r = set_error(ctx, -EINVAL, "%s: no queue %u: %s has %u receive queue%s (0..%u)", spec_text, x->queue,
			      x->ifname, nq, nq == 1 ? "" : "s", nq - 1);
		goto fail;
	}
	x->area = mmap(NULL, (size_t)XP_FRAMES * XP_FRAME_SIZE, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (x->area == MAP_FAILED) {
		x->area = NULL;
		r = set_error(ctx, negative_errno(), "%s: %u KiB for the UMEM: %m", spec_text, XP_FRAMES * XP_FRAME_SIZE / 1024);
		goto fail;
	}

	xdp_log_begin(ctx);
	/* native XDP first; a driver without it (igbvf, lo) gets generic
	 * XDP, which copy mode works with: libxdp says EOPNOTSUPP or EBUSY
	 * ("XDP mode not supported"), and an error of the socket itself
	 * comes again. Zero-copy needs the driver's own. */
	r = xp_open(x, XDP_FLAGS_DRV_MODE);
	if ((r == -EOPNOTSUPP || r == -EBUSY) && !x->zero_copy) {
		log_debug(ctx, "%s: native XDP on %s: %s (%s): trying generic XDP", spec_text, x->ifname, strerror(-r),
			  xdp_last_msg);
		x->generic_xdp = true;
		/* the kernel lets go of the first socket's hold on the queue
		 * in a work item after close(): until then bind() says EBUSY */
		for (unsigned i = 0; (r = xp_open(x, XDP_FLAGS_SKB_MODE)) == -EBUSY && i < 100; i++)
			usleep(20000);
	}
	xdp_log_end();

	if (r < 0) {
		driver_name(x, driver, sizeof(driver));
		if (x->zero_copy && (r == -EOPNOTSUPP || r == -EPROTONOSUPPORT))
			r = set_error(ctx, r, "%s: %s's driver (%s) has no AF_XDP zero-copy: %s", spec_text, x->ifname,
				      driver, strerror(-r));
		else if (r == -EPERM)
			r = set_error(ctx, r, "%s: %s: %s (AF_XDP and XDP programs need CAP_NET_ADMIN, CAP_NET_RAW and CAP_BPF)",
				      spec_text, x->ifname, strerror(-r));
		else
			r = set_error(ctx, r, "%s: an AF_XDP socket on queue %u of %s (driver %s): %s%s%s%s", spec_text,
				      x->queue, x->ifname, driver, strerror(-r), xdp_last_msg[0] ? " (" : "",
				      xdp_last_msg, xdp_last_msg[0] ? ")" : "");
		goto fail;
	}
	log_info(ctx, "%s: queue %u of %s, %s mode, %s XDP", spec_text, x->queue, x->ifname,
		 x->zero_copy ? "zero-copy" : "copy", x->generic_xdp ? "generic" : "native");
	*ret_port = x;
	return 0;
fail:
	xp_free(x);
	return r;
}
