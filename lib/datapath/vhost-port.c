/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The vhost-user port: the socket (server, or client that reconnects) on
 * the control thread, and the rings on the workers.
 *
 * The hot path is built for 64-byte packets: a burst takes the ring's
 * avail index once, walks every chain first (prefetching each frame), and
 * hands the frames to the other port as pointers into this guest's memory;
 * the other vhost-user port copies each one straight into its guest's
 * buffer (one copy, guest to guest), and each side publishes its used
 * index once per burst, with at most one eventfd write when the driver
 * wants an interrupt (EVENT_IDX). Nothing per packet makes a system call.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../internal.h"
#include "datapath-internal.h"

struct vhost_port {
	struct iovk_ctx *ctx;
	struct vu_dev dev;
	char path[IOVK_DP_NAME_MAX];
	bool client;
	int listen_fd;
	int conn_fd;
	const char *state;
};

/* ---- hot path ---- */

static bool ring_ready(const struct vu_ring *r)
{
	return r->started && r->enabled && !r->vq.broken;
}

static void log_writes(struct vu_dev *d, const struct iovec *iov, unsigned n, size_t bytes)
{
	for (unsigned i = 0; i < n && bytes > 0; i++) {
		size_t len = iov[i].iov_len < bytes ? iov[i].iov_len : bytes;
		uint64_t gpa = dp_mem_hva_to_gpa(&d->mem, iov[i].iov_base);

		if (gpa != UINT64_MAX)
			dp_log_write(&d->log, gpa, len);
		bytes -= len;
	}
}

unsigned vu_rx_burst(struct vu_dev *d, unsigned q, struct iovk_dp_pkt *pkts, unsigned n)
{
	struct vu_ring *r = &d->rings[2 * q + 1];
	unsigned hdr = d->hdr_len, got = 0;
	int avail;

	/* r->iov holds DP_CHAIN_MAX_SEGS segments for each of DP_BURST_MAX chains */
	if (n > DP_BURST_MAX)
		n = DP_BURST_MAX;
	if (!dp_trylock(&r->lock))
		return 0;
	if (!ring_ready(r))
		goto none;
	avail = dp_vq_avail(&r->vq, n);
	if (avail <= 0)
		goto none;
	r->n_heads = 0;
	/* chains' segments packed one after the other, not DP_CHAIN_MAX_SEGS
	 * apart: a burst of one-segment chains then reads a few cache lines, not
	 * one line per 1 KiB (which all fell in the same few L1 sets) */
	for (struct iovec *next = r->iov; avail > 0; avail--) {
		struct iovec *iov = next;
		unsigned nseg = 0, left = hdr;
		uint32_t len = 0;
		dp_chain_t head;
		int k = dp_vq_pop(&r->vq, DP_VQ_DEVICE_READS, iov, DP_CHAIN_MAX_SEGS, &nseg, &len, &head);

		/* -EAGAIN: a packed ring has no more (dp_vq_avail() could not count them) */
		if (_unlikely_(k == -EPROTO || k == -EAGAIN))
			break;
		r->heads[r->n_heads++] = head;
		if (_unlikely_(k < 0 || len <= hdr)) {
			r->rx_errors++;
			continue;
		}
		/* at most DP_CHAIN_MAX_SEGS per chain and at most DP_BURST_MAX chains: in bounds */
		next += nseg;
		/* the virtio-net header: no offloads were negotiated, so it says nothing */
		if (_likely_(iov->iov_len > left)) {
			iov->iov_base = (uint8_t *)iov->iov_base + left;
			iov->iov_len -= left;
			left = 0;
		}
		while (left > 0) {
			if (iov->iov_len <= left) {
				left -= (unsigned)iov->iov_len;
				iov++;
				nseg--;
			} else {
				iov->iov_base = (uint8_t *)iov->iov_base + left;
				iov->iov_len -= left;
				left = 0;
			}
		}
		__builtin_prefetch(iov->iov_base);
		pkts[got++] = (struct iovk_dp_pkt){ .seg = iov, .len = len - hdr, .n_seg = (uint16_t)nseg };
	}
	if (got > 0)
		return got; /* the lock stays held until vu_rx_release() */
	vu_rx_release(d, q);
	return 0;
none:
	dp_unlock(&r->lock);
	return 0;
}

void vu_rx_release(struct vu_dev *d, unsigned q)
{
	struct vu_ring *r = &d->rings[2 * q + 1];

	if (!r->vq.broken) {
		for (unsigned i = 0; i < r->n_heads; i++)
			dp_vq_used_put(&r->vq, i, r->heads[i], 0);
		dp_vq_used_publish(&r->vq, r->n_heads);
	}
	r->n_heads = 0;
	dp_unlock(&r->lock);
}

/* Copies len bytes from src (at *si, *soff) into dst[0..nd), as far as they go; returns bytes copied. */
static size_t sg_copy(const struct iovec *dst, unsigned nd, size_t dst_skip, const struct iovec *src, unsigned ns,
		      unsigned *si, size_t *soff, size_t len)
{
	size_t done = 0;
	unsigned di = 0;

	while (di < nd && dst_skip >= dst[di].iov_len)
		dst_skip -= dst[di++].iov_len;
	while (done < len && di < nd && *si < ns) {
		size_t room = dst[di].iov_len - dst_skip, have = src[*si].iov_len - *soff;
		size_t c = room < have ? room : have;

		if (c > len - done)
			c = len - done;
		memcpy((uint8_t *)dst[di].iov_base + dst_skip, (const uint8_t *)src[*si].iov_base + *soff, c);
		done += c;
		dst_skip += c;
		*soff += c;
		if (dst_skip == dst[di].iov_len) {
			di++;
			dst_skip = 0;
		}
		if (*soff == src[*si].iov_len) {
			(*si)++;
			*soff = 0;
		}
	}
	return done;
}

/* A frame into a buffer it fits: up to 64 bytes (the benchmark's and most
 * control traffic) as two overlapping fixed-size copies the compiler inlines,
 * not a call into the C library for a length it cannot know. */
static inline void copy_frame(uint8_t *dst, const uint8_t *src, size_t len)
{
	if (len >= 32 && len <= 64) {
		memcpy(dst, src, 32);
		memcpy(dst + len - 32, src + len - 32, 32);
	} else {
		memcpy(dst, src, len);
	}
}

/* The 12-byte header (VERSION_1 or MRG_RXBUF) with num_buffers 1, or the legacy
 * 10-byte one, as whole-word stores (x86 only, see datapath-internal.h: little endian). */
static inline void put_header_one(uint8_t *dst, unsigned hdr_len)
{
	uint64_t zero = 0;
	uint32_t last = 1u << 16; /* bytes 8-9 csum_offset 0, bytes 10-11 num_buffers 1 */
	uint16_t zero16 = 0;

	memcpy(dst, &zero, 8);
	if (_likely_(hdr_len == 12))
		memcpy(dst + 8, &last, 4);
	else
		memcpy(dst + 8, &zero16, 2);
}

/* The virtio-net header (5.1.6) of a received frame: no offloads, num_buffers with MRG_RXBUF. */
static void put_header(const struct iovec *dst, unsigned nd, unsigned hdr_len, uint16_t num_buffers)
{
	uint8_t h[12] = { 0 };
	struct iovec src = { .iov_base = h, .iov_len = hdr_len };
	unsigned si = 0;
	size_t soff = 0;

	h[10] = (uint8_t)num_buffers;
	h[11] = (uint8_t)(num_buffers >> 8);
	if (_likely_(dst[0].iov_len >= hdr_len))
		memcpy(dst[0].iov_base, h, hdr_len);
	else
		sg_copy(dst, nd, 0, &src, 1, &si, &soff, hdr_len);
}

unsigned vu_tx_burst(struct vu_dev *d, unsigned q, const struct iovk_dp_pkt *pkts, unsigned n)
{
	struct vu_ring *r = &d->rings[2 * q];
	struct iovec first[DP_CHAIN_MAX_SEGS], more[DP_CHAIN_MAX_SEGS];
	unsigned hdr = d->hdr_len, slots = 0, sent = 0;
	bool logging = d->log.bits && r->vq.log;
	int avail;

	dp_lock(&r->lock);
	if (!ring_ready(r))
		goto out;
	avail = dp_vq_avail(&r->vq, 0xffff);
	for (unsigned p = 0; p < n && avail > 0; p++) {
		const struct iovk_dp_pkt *pkt = &pkts[p];
		unsigned nf = 0, nm = 0, si = 0, chains = 1, slot0 = slots;
		struct dp_vq_pos pos0 = dp_vq_tell(&r->vq);
		uint32_t cap = 0;
		dp_chain_t head;
		size_t soff = 0, in_first;
		int k = dp_vq_pop(&r->vq, DP_VQ_DEVICE_WRITES, first, DP_CHAIN_MAX_SEGS, &nf, &cap, &head);

		avail--;
		if (k == -EPROTO || k == -EAGAIN)
			goto out;
		if (k < 0 || cap < hdr || (!d->mrg_rxbuf && cap < hdr + pkt->len)) {
			/* a buffer we cannot use: handed back empty, the frame dropped */
			dp_vq_used_put(&r->vq, slots++, head, 0);
			continue;
		}
		/* fast path, the 64-byte case: one segment in, room in the first descriptor */
		if (_likely_(pkt->n_seg == 1 && first[0].iov_len >= hdr + pkt->len)) {
			put_header_one(first[0].iov_base, hdr);
			copy_frame((uint8_t *)first[0].iov_base + hdr, pkt->seg[0].iov_base, pkt->len);
			if (_unlikely_(logging))
				log_writes(d, first, nf, hdr + pkt->len);
			dp_vq_used_put(&r->vq, slots++, head, hdr + pkt->len);
			sent++;
			continue;
		}
		in_first = sg_copy(first, nf, hdr, pkt->seg, pkt->n_seg, &si, &soff, pkt->len);
		if (_unlikely_(logging))
			log_writes(d, first, nf, hdr + in_first);
		dp_vq_used_put(&r->vq, slots++, head, (uint32_t)(hdr + in_first));
		/* MRG_RXBUF: the rest of the frame in more buffers (5.1.6.4) */
		for (size_t left = pkt->len - in_first; left > 0;) {
			size_t c;

			if (avail > 0)
				k = dp_vq_pop(&r->vq, DP_VQ_DEVICE_WRITES, more, DP_CHAIN_MAX_SEGS, &nm, &cap, &head);
			if (avail == 0 || k == -EAGAIN) {
				/* not enough buffers for this frame: give back what it took */
				dp_vq_seek(&r->vq, pos0);
				slots = slot0;
				goto out;
			}
			avail--;
			if (k == -EPROTO)
				goto out;
			chains++;
			c = k < 0 ? 0 : sg_copy(more, nm, 0, pkt->seg, pkt->n_seg, &si, &soff, left);
			if (_unlikely_(logging))
				log_writes(d, more, nm, c);
			dp_vq_used_put(&r->vq, slots++, head, (uint32_t)c);
			left -= c;
			if (c == 0)
				break; /* an unusable buffer: the frame ends short */
		}
		put_header(first, nf, hdr, (uint16_t)chains);
		sent++;
	}
out:
	if (!r->vq.broken)
		dp_vq_used_publish(&r->vq, slots);
	dp_unlock(&r->lock);
	return sent;
}

/* ---- port interface ---- */

static unsigned port_rx_burst(void *port, unsigned q, struct iovk_dp_pkt *pkts, unsigned n)
{
	return vu_rx_burst(&((struct vhost_port *)port)->dev, q, pkts, n);
}

static void port_rx_release(void *port, unsigned q)
{
	vu_rx_release(&((struct vhost_port *)port)->dev, q);
}

static unsigned port_tx_burst(void *port, unsigned q, const struct iovk_dp_pkt *pkts, unsigned n)
{
	return vu_tx_burst(&((struct vhost_port *)port)->dev, q, pkts, n);
}

static unsigned port_n_queues(void *port)
{
	return ((struct vhost_port *)port)->dev.max_queue_pairs;
}

static int port_control_fd(void *port)
{
	struct vhost_port *p = port;

	return p->conn_fd >= 0 ? p->conn_fd : p->listen_fd;
}

static void disconnect(struct vhost_port *p, const char *why)
{
	log_info(p->ctx, "%s: frontend disconnected%s%s", p->path, why ? ": " : "", why ?: "");
	vu_dev_reset(&p->dev);
	if (p->conn_fd >= 0)
		close(p->conn_fd);
	p->conn_fd = -1;
	p->state = p->client ? "connecting" : "listening";
}

static int set_conn(struct vhost_port *p, int fd)
{
	/* a frontend that stops in the middle of a message must not hold the control thread for long */
	struct timeval tv = { .tv_sec = 2 };

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
		int r = negative_errno();

		close(fd);
		return r;
	}
	p->conn_fd = fd;
	p->state = "connected";
	log_info(p->ctx, "%s: frontend connected", p->path);
	return 0;
}

/* Reads one message with its fds. Returns 0, -ECONNRESET at end of stream, or -errno. */
static int read_message(int fd, struct vu_msg *m, int *fds, unsigned *n_fds)
{
	char control[CMSG_SPACE(VU_MSG_MAX_FDS * sizeof(int))];
	struct iovec iov = { .iov_base = &m->hdr, .iov_len = sizeof(m->hdr) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof(control) };
	ssize_t n;
	int r;

	*n_fds = 0;
	n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_WAITALL);
	if (n < 0)
		return negative_errno();
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
			unsigned k = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));

			for (unsigned i = 0; i < k; i++) {
				int f;

				memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				if (*n_fds < VU_MSG_MAX_FDS)
					fds[(*n_fds)++] = f;
				else
					close(f);
			}
		}
	if (n == 0)
		return -ECONNRESET;
	if ((size_t)n != sizeof(m->hdr) || (mh.msg_flags & MSG_CTRUNC))
		return -EPROTO;
	r = vu_msg_check_header(&m->hdr);
	if (r < 0)
		return r;
	if (m->hdr.size > 0) {
		n = recv(fd, m->payload.bytes, m->hdr.size, MSG_WAITALL);
		if (n < 0)
			return negative_errno();
		if ((size_t)n != m->hdr.size)
			return -EPROTO;
	}
	return 0;
}

static int port_control(void *port, bool readable)
{
	struct vhost_port *p = port;
	int fds[VU_MSG_MAX_FDS], r, fd;
	unsigned n_fds = 0;
	struct vu_msg m;
	char err[256];
	bool reply;

	if (p->conn_fd < 0) {
		if (p->client) {
			struct sockaddr_un sa = { .sun_family = AF_UNIX };

			if (readable)
				return 0;
			fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
			if (fd < 0)
				return negative_errno();
			memcpy(sa.sun_path, p->path, strlen(p->path));
			if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
				/* the frontend is not there (yet, or again): try at the next tick */
				close(fd);
				return 0;
			}
			return set_conn(p, fd);
		}
		if (!readable)
			return 0;
		fd = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			return errno == EAGAIN ? 0 : negative_errno();
		return set_conn(p, fd);
	}
	if (!readable)
		return 0;

	memset(&m.hdr, 0, sizeof(m.hdr));
	r = read_message(p->conn_fd, &m, fds, &n_fds);
	if (r < 0) {
		for (unsigned i = 0; i < n_fds; i++)
			close(fds[i]);
		disconnect(p, r == -ECONNRESET ? NULL : strerror(-r));
		return r == -ECONNRESET ? 0 : r;
	}
	log_debug(p->ctx, "%s: message %u flags 0x%x size %u fds %u", p->path, m.hdr.request, m.hdr.flags,
		  m.hdr.size, n_fds);
	r = vu_handle_message(&p->dev, &m, fds, n_fds, &reply, err, sizeof(err));
	if (r >= 0 && m.hdr.request == 2 /* SET_FEATURES */)
		/* the ring layout is the frontend's choice: the log says which it made */
		log_info(p->ctx, "%s: features 0x%llx acked: %s rings", p->path, (unsigned long long)p->dev.features,
			 p->dev.features & (1ull << 34 /* VIRTIO_F_RING_PACKED */) ? "packed" : "split");
	for (unsigned i = 0; i < n_fds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (r < 0)
		log_warn(p->ctx, "%s: refused message %u: %s%s", p->path, m.hdr.request, err,
			 reply ? "" : "; closing the connection");
	if (reply) {
		/* header and payload apart: the payload is 8-aligned in struct vu_msg, not on the wire */
		struct iovec iov[2] = { { &m.hdr, sizeof(m.hdr) }, { m.payload.bytes, m.hdr.size } };
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
		size_t len = sizeof(m.hdr) + m.hdr.size;

		if (sendmsg(p->conn_fd, &mh, MSG_NOSIGNAL) != (ssize_t)len) {
			disconnect(p, "reply not sent");
			return 0;
		}
	}
	if (r < 0 && !reply)
		disconnect(p, err);
	return 0;
}

static const char *port_state(void *port)
{
	return ((struct vhost_port *)port)->state;
}

static void port_queue_state(void *port, unsigned q, struct iovk_dp_queue_state *ret)
{
	struct vhost_port *p = port;
	struct vu_ring *rx = &p->dev.rings[2 * q + 1], *tx = &p->dev.rings[2 * q];
	const struct vu_ring *b = tx->vq.broken || (!rx->vq.broken && tx->vq.n_broken > rx->vq.n_broken) ? tx : rx;

	/* read without the lock: words a worker may be changing, each read whole */
	*ret = (struct iovk_dp_queue_state){
		.ready = ring_ready(rx) && ring_ready(tx),
		.broken = rx->vq.broken || tx->vq.broken,
		.n_broken = rx->vq.n_broken + tx->vq.n_broken,
		.rx_errors = rx->rx_errors,
	};
	snprintf(ret->reason, sizeof(ret->reason), "%s", b->vq.broken_reason);
}

static void port_free(void *port)
{
	struct vhost_port *p = port;

	if (!p)
		return;
	if (p->conn_fd >= 0)
		close(p->conn_fd);
	vu_dev_done(&p->dev);
	if (p->listen_fd >= 0) {
		close(p->listen_fd);
		unlink(p->path);
	}
	iovk_ctx_unref(p->ctx);
	free(p);
}

const struct iovk_dp_port_ops dp_vhost_port_ops = {
	.sz = sizeof(struct iovk_dp_port_ops),
	.kind = "vhost-user",
	.rx_burst = port_rx_burst,
	.rx_release = port_rx_release,
	.tx_burst = port_tx_burst,
	.n_queues = port_n_queues,
	.control_fd = port_control_fd,
	.control = port_control,
	.state = port_state,
	.queue_state = port_queue_state,
	.free = port_free,
};

int dp_listen_unix(struct iovk_ctx *ctx, const char *path, int backlog, int *ret_fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = -1;
	struct stat st;

	if (strlen(path) >= sizeof(sa.sun_path))
		return set_error(ctx, -ENAMETOOLONG, "%s: socket path too long", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return set_error(ctx, negative_errno(), "%s: socket: %m", path);
	/* a socket left by a datapath that died: ours to replace, anything else is not */
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	memcpy(sa.sun_path, path, strlen(path));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return set_error(ctx, negative_errno(), "%s: bind: %m", path);
	if (listen(fd, backlog) < 0)
		return set_error(ctx, negative_errno(), "%s: listen: %m", path);
	*ret_fd = TAKE_FD(fd);
	return 0;
}

int dp_vhost_port_new(struct iovk_ctx *ctx, const struct iovk_dp_port_spec *spec, void **ret_port)
{
	struct vhost_port *p = calloc(1, sizeof(*p));
	int r;

	if (!p)
		return -ENOMEM;
	p->ctx = iovk_ctx_ref(ctx);
	p->listen_fd = p->conn_fd = -1;
	p->client = spec->client;
	snprintf(p->path, sizeof(p->path), "%s", spec->name);
	p->state = p->client ? "connecting" : "listening";
	r = vu_dev_init(&p->dev, spec->queues);
	if (r < 0) {
		port_free(p);
		return set_error(ctx, r, "%s: %s", spec->name, strerror(-r));
	}
	if (!p->client) {
		r = dp_listen_unix(ctx, p->path, 1, &p->listen_fd);
		if (r < 0) {
			p->listen_fd = -1;
			port_free(p);
			return r;
		}
	}
	*ret_port = p;
	return 0;
}
