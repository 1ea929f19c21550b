/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The vfio port: a virtio-net PCI function (a virtio VF of a vDPA-capable
 * NIC; QEMU's virtio-net-pci in the tests) driven from userspace through
 * lib/vfio, as DPDK's virtio PMD and SPDK's virtio driver do it, without
 * their hugepages: the rings and packet buffers are memfd buffers mapped
 * through the IOMMU at IOVAs from the library's allocator.
 *
 * Bring-up follows virtio 1.2, 3.1.1: reset (write 0, wait until it reads
 * 0), ACKNOWLEDGE, DRIVER, features (virtio-pci.c chooses), FEATURES_OK
 * read back, each queue (size, MSI-X vector or none, addresses, enable),
 * DRIVER_OK, and only then the first notification. We poll while there is
 * traffic: interrupts are suppressed in the available rings
 * (VRING_AVAIL_F_NO_INTERRUPT); the notify BAR is written once per burst
 * at most, and not at all while the device says VRING_USED_F_NO_NOTIFY.
 * When the device has MSI-X vectors enough, each receive queue gets one
 * (queue_msix_vector, 4.1.4.3; enabled through VFIO_DEVICE_SET_IRQS with
 * an eventfd each, for the port's whole life): a worker that found its
 * queues idle arms them (the flag cleared) and sleeps on the eventfds
 * (datapath.c), and the flag is set again when it wakes. Transmit and
 * control queues and configuration changes get no vector: the transmit
 * ring is reaped on the next burst, the status read once a second.
 *
 * The IOMMU is our fence against the device: descriptor tables, available
 * rings and transmit buffers are mapped read-only for it, only the used
 * rings and receive buffers writable, and everything it writes back is
 * checked (virtio-pci.c). A ring it breaks, or DEVICE_NEEDS_RESET in its
 * status (read once a second on the control thread), gets the device reset
 * and set up again with the same memory; the other ports keep running.
 * Freeing the port resets the device, puts the PCI command register back
 * as it was found (bus mastering off, as vfio-pci leaves it; off in any
 * case when the reset failed, since the device may still be doing DMA) and
 * releases it (vfio-pci then resets the function itself when the last fd
 * closes).
 *
 * Queue pair k is receiveq(k+1), virtqueue 2k, and transmitq(k+1), 2k+1
 * (5.1.2). More than one (queues=N) takes VIRTIO_NET_F_MQ with the control
 * queue (virtqueue 2 * max_virtqueue_pairs), every pair set up before
 * DRIVER_OK and N of them switched on after it with
 * VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET (5.1.6.5.5: until then the device uses
 * only the first), at open and again after every reset. The device then
 * spreads what it receives over the pairs (by flow, its own choice); the
 * forwarder gives each pair to a unit of its own. Frames up to
 * VP_BUF_SIZE - 12 bytes (no merged receive buffers).
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/pci_regs.h>
#include <linux/vfio.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <linux/virtio_pci.h>

#include <iovkit/vfio.h>

#include "../internal.h"
#include "datapath-internal.h"
#include "virtio-pci.h"

/* Every buffer: the 12-byte virtio-net header (VERSION_1, 5.1.6) and a
 * frame of up to 2036 bytes: a 1500-byte MTU with VLAN tags fits. */
#define VP_BUF_SIZE 2048u
#define VP_NET_HDR_LEN 12u
/* How long the device may take to show a reset (4.1.4.3.2: the driver waits for 0). */
#define VP_RESET_WAIT_MS 1000
/* How long a control command may take (QEMU answers at once; hardware within microseconds). */
#define VP_CTRL_WAIT_MS 1000
/* The control queue's size: one command is in flight at a time, so the smallest that holds a chain. */
#define VP_CTRL_QSIZE 8
#define VP_STATUS_GONE 0xff /* a read of a function that is gone */

struct vp_bar {
	uint8_t *map; /* NULL: reached through pread/pwrite of the region */
	bool used;
};

struct vfio_queue {
	int rx_lock, tx_lock;
	struct vp_vq rx, tx;
	uint32_t rx_notify, tx_notify; /* offsets in the notify BAR */
	uint16_t rx_index, tx_index;   /* virtqueue numbers */
	uint8_t *rx_buf, *tx_buf;
	/* receive side: the buffers of the burst in flight, posted back on release */
	unsigned n_held;
	uint16_t held[DP_BURST_MAX];
	struct iovec seg[DP_BURST_MAX];
	uint64_t rx_errors;
};

struct vfio_port {
	struct iovk_ctx *ctx;
	char bdf[IOVK_PCI_ADDR_MAX];
	struct iovk_vfio_iommu *iommu;
	struct iovk_vfio_device *dev;
	struct vp_caps caps;
	struct vp_bar bars[VP_BAR_COUNT];
	uint16_t pci_command; /* as we found it */
	bool pci_command_set; /* we changed it: put it back on release */
	uint64_t features;
	uint16_t qsize;
	unsigned n_queues;
	struct vp_vq_layout layout;
	struct iovk_vfio_buffer *drv_mem, *dev_mem, *rx_mem, *tx_mem;
	uint64_t drv_iova, dev_iova, rx_iova, tx_iova;
	struct vfio_queue *q;
	/* the control queue (n_queues > 1 only): set up at ctrl_off in drv_mem/dev_mem,
	 * the command buffer and the ack byte in the page after each */
	bool mq;
	uint16_t ctrl_index, ctrl_size;
	struct vp_vq_layout ctrl_layout;
	struct vp_vq ctrl;
	uint32_t ctrl_notify;
	uint64_t ctrl_drv_off, ctrl_dev_off;
	bool irq; /* MSI-X vector q for receive queue q, one eventfd each */
	bool started;    /* DRIVER_OK set by us and not reset since */
	const int *stopping; /* the datapath's: ends our waits on the device (dp_wait_for()) */
	int ctrl_n;          /* ctrl_command()'s wait: what vp_vq_used() said */
	uint16_t ctrl_id;
	uint32_t ctrl_written;
	const char *state;
	char err[256];
};

/* ---- BAR access: mmap'ed MMIO of the field's width, or the region's pread/pwrite ---- */

/* One access of the field's width (4.1.3.1: the driver accesses each field with its own width). */
static int bar_access(struct vfio_port *p, unsigned bar, uint64_t off, uint32_t *v, unsigned size, bool write)
{
	volatile uint8_t *a = p->bars[bar].map ? p->bars[bar].map + off : NULL;
	uint8_t v8 = (uint8_t)*v;
	uint16_t v16 = (uint16_t)*v;
	void *buf = size == 1 ? (void *)&v8 : size == 2 ? (void *)&v16 : (void *)v;
	int r = 0;

	if (!a && write)
		return iovk_vfio_device_region_write(p->dev, bar, off, buf, size);
	if (!a)
		r = iovk_vfio_device_region_read(p->dev, bar, off, buf, size);
	else if (write && size == 1)
		*a = v8;
	else if (write && size == 2)
		*(volatile uint16_t *)a = v16;
	else if (write)
		*(volatile uint32_t *)a = *v;
	else if (size == 1)
		v8 = *a;
	else if (size == 2)
		v16 = *(volatile uint16_t *)a;
	else
		*v = *(volatile uint32_t *)a;
	if (!write && size < 4)
		*v = size == 1 ? v8 : v16;
	return r;
}

static int bar_write(struct vfio_port *p, unsigned bar, uint64_t off, uint32_t v, unsigned size)
{
	return bar_access(p, bar, off, &v, size, true);
}

static int cc_read(struct vfio_port *p, unsigned field, unsigned size, uint32_t *ret)
{
	uint32_t v = 0;
	int r = bar_access(p, p->caps.common.bar, p->caps.common.offset + field, &v, size, false);

	*ret = r < 0 ? 0 : v;
	return r;
}

static int cc_write(struct vfio_port *p, unsigned field, unsigned size, uint32_t v)
{
	return bar_write(p, p->caps.common.bar, p->caps.common.offset + field, v, size);
}

static uint8_t status_read(struct vfio_port *p)
{
	uint32_t v;

	return cc_read(p, VIRTIO_PCI_COMMON_STATUS, 1, &v) < 0 ? VP_STATUS_GONE : (uint8_t)v;
}

/* The hot path's kick: one posted MMIO write (or a pwrite when the BAR cannot be mapped). */
static void notify(struct vfio_port *p, uint32_t off, uint16_t vq_index)
{
	bar_write(p, p->caps.notify.bar, off, vq_index, 2);
}

static bool reset_done(void *arg)
{
	return status_read(arg) == 0;
}

/* 0, -EIO, -ETIMEDOUT, or -ECANCELED when the datapath stops meanwhile. */
static int device_reset(struct vfio_port *p)
{
	int r;

	__atomic_store_n(&p->started, false, __ATOMIC_RELEASE);
	if (cc_write(p, VIRTIO_PCI_COMMON_STATUS, 1, 0) < 0)
		return -EIO;
	r = dp_wait_for(p->stopping, VP_RESET_WAIT_MS, reset_done, p);
	return r > 0 ? 0 : r == 0 ? -ETIMEDOUT : r;
}

static int status_set(struct vfio_port *p, uint8_t bits)
{
	return cc_write(p, VIRTIO_PCI_COMMON_STATUS, 1, status_read(p) | bits);
}

static int fail(struct vfio_port *p, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(struct vfio_port *p, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->err, sizeof(p->err), fmt, ap);
	va_end(ap);
	/* 3.1.1: a driver that gives up says so */
	if (p->dev)
		status_set(p, VIRTIO_CONFIG_S_FAILED);
	return r;
}

/* ---- bring-up ---- */

static int read_features(struct vfio_port *p, uint64_t *ret)
{
	uint32_t lo, hi;

	if (cc_write(p, VIRTIO_PCI_COMMON_DFSELECT, 4, 0) < 0 || cc_read(p, VIRTIO_PCI_COMMON_DF, 4, &lo) < 0 ||
	    cc_write(p, VIRTIO_PCI_COMMON_DFSELECT, 4, 1) < 0 || cc_read(p, VIRTIO_PCI_COMMON_DF, 4, &hi) < 0)
		return -EIO;
	*ret = (uint64_t)hi << 32 | lo;
	return 0;
}

static int write_features(struct vfio_port *p, uint64_t f)
{
	if (cc_write(p, VIRTIO_PCI_COMMON_GFSELECT, 4, 0) < 0 || cc_write(p, VIRTIO_PCI_COMMON_GF, 4, (uint32_t)f) < 0 ||
	    cc_write(p, VIRTIO_PCI_COMMON_GFSELECT, 4, 1) < 0 ||
	    cc_write(p, VIRTIO_PCI_COMMON_GF, 4, (uint32_t)(f >> 32)) < 0)
		return -EIO;
	return 0;
}

static int write64(struct vfio_port *p, unsigned lo_field, uint64_t v)
{
	/* 4.1.3.1: 64-bit fields may be written as two 32-bit halves, low first */
	if (cc_write(p, lo_field, 4, (uint32_t)v) < 0 || cc_write(p, lo_field + 4, 4, (uint32_t)(v >> 32)) < 0)
		return -EIO;
	return 0;
}

/* Reset, features, FEATURES_OK: the first half of 3.1.1, the same at open and at every recovery. */
static int negotiate(struct vfio_port *p)
{
	char why[sizeof(p->err)];
	uint64_t offered, want;
	uint32_t numq;
	int r;

	r = device_reset(p);
	if (r == -ECANCELED)
		return fail(p, r, "the datapath stopped while the device was resetting");
	if (r < 0)
		return fail(p, r, "the device did not reset (device_status still 0x%02x after %d ms)", status_read(p),
			    VP_RESET_WAIT_MS);
	if (status_set(p, VIRTIO_CONFIG_S_ACKNOWLEDGE) < 0 || status_set(p, VIRTIO_CONFIG_S_DRIVER) < 0 ||
	    read_features(p, &offered) < 0)
		return fail(p, -EIO, "reading the common configuration failed");
	/* the reason into a buffer of its own: fail() formats into p->err */
	r = vp_net_features(offered, p->n_queues, &want, why, sizeof(why));
	if (r < 0)
		return fail(p, r, "%s", why);
	if (write_features(p, want) < 0 || status_set(p, VIRTIO_CONFIG_S_FEATURES_OK) < 0)
		return fail(p, -EIO, "writing the features failed");
	if (!(status_read(p) & VIRTIO_CONFIG_S_FEATURES_OK))
		return fail(p, -EPROTO, "the device refused features 0x%" PRIx64 " (offered 0x%" PRIx64 ")", want,
			    offered);
	p->features = want;
	cc_read(p, VIRTIO_PCI_COMMON_NUMQ, 2, &numq);
	if (numq < 2 * p->n_queues)
		return fail(p, -EPROTO, "the device has %u virtqueues, %u queue pair(s) need %u", numq, p->n_queues,
			    2 * p->n_queues);
	p->mq = want & (1ull << VIRTIO_NET_F_MQ);
	if (p->mq) {
		uint32_t max_pairs = 0;

		/* 5.1.4: max_virtqueue_pairs exists when MQ is offered; the device
		 * structure was checked to lie in its BAR, not to be this long */
		if (!p->caps.device.present || p->caps.device.length < VP_NET_CFG_MAX_VQ_PAIRS + 2)
			return fail(p, -EPROTO, "the device offers VIRTIO_NET_F_MQ without a device configuration "
				    "holding max_virtqueue_pairs");
		if (bar_access(p, p->caps.device.bar, p->caps.device.offset + VP_NET_CFG_MAX_VQ_PAIRS, &max_pairs, 2,
			       false) < 0)
			return fail(p, -EIO, "reading max_virtqueue_pairs failed");
		r = vp_net_mq_check((uint16_t)max_pairs, (uint16_t)numq, p->n_queues, &p->ctrl_index, why, sizeof(why));
		if (r < 0)
			return fail(p, r, "%s", why);
	}
	/* no MSI-X vector for configuration changes: we poll the status */
	cc_write(p, VIRTIO_PCI_COMMON_MSIX, 2, VIRTIO_MSI_NO_VECTOR);
	return 0;
}

static int queue_max(struct vfio_port *p, uint16_t index, uint16_t *ret)
{
	uint32_t v;

	if (cc_write(p, VIRTIO_PCI_COMMON_Q_SELECT, 2, index) < 0 || cc_read(p, VIRTIO_PCI_COMMON_Q_SIZE, 2, &v) < 0)
		return -EIO;
	*ret = (uint16_t)v;
	return 0;
}

static int queue_setup(struct vfio_port *p, uint16_t index, uint16_t size, uint16_t vector, uint64_t desc,
		       uint64_t avail, uint64_t used, uint32_t *ret_notify)
{
	uint32_t noff, v;
	uint64_t at;
	uint16_t max;

	if (queue_max(p, index, &max) < 0)
		return fail(p, -EIO, "virtqueue %u: selecting it failed", index);
	if (max < size)
		return fail(p, -EPROTO, "virtqueue %u: the device now allows %u entries, we set up %u", index, max,
			    size);
	if (cc_write(p, VIRTIO_PCI_COMMON_Q_SIZE, 2, size) < 0 ||
	    cc_write(p, VIRTIO_PCI_COMMON_Q_MSIX, 2, vector) < 0 ||
	    write64(p, VIRTIO_PCI_COMMON_Q_DESCLO, desc) < 0 || write64(p, VIRTIO_PCI_COMMON_Q_AVAILLO, avail) < 0 ||
	    write64(p, VIRTIO_PCI_COMMON_Q_USEDLO, used) < 0 || cc_read(p, VIRTIO_PCI_COMMON_Q_NOFF, 2, &noff) < 0)
		return fail(p, -EIO, "virtqueue %u: writing its configuration failed", index);
	/* 4.1.5.1.2: a vector the device could not map reads back as NO_VECTOR */
	if (vector != VIRTIO_MSI_NO_VECTOR && (cc_read(p, VIRTIO_PCI_COMMON_Q_MSIX, 2, &v) < 0 || v != vector))
		return fail(p, -EIO, "virtqueue %u: the device did not take MSI-X vector %u (reads 0x%x)", index, vector, v);
	/* 4.1.4.4: cap.offset + queue_notify_off * notify_off_multiplier, 2 bytes inside the structure */
	at = (uint64_t)noff * p->caps.notify_off_multiplier;
	if (at + 2 > p->caps.notify.length)
		return fail(p, -EPROTO, "virtqueue %u: notify offset %u x %u lies outside the %u-byte notify structure",
			    index, noff, p->caps.notify_off_multiplier, p->caps.notify.length);
	*ret_notify = p->caps.notify.offset + (uint32_t)at;
	return cc_write(p, VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1) < 0 ? fail(p, -EIO, "virtqueue %u: enabling failed", index) : 0;
}

static bool ctrl_answered(void *arg)
{
	struct vfio_port *p = arg;

	p->ctrl_n = vp_vq_used(&p->ctrl, &p->ctrl_id, &p->ctrl_written, 1);
	return p->ctrl_n != 0;
}

/*
 * One command on the control queue (5.1.6.5), waited for: the control
 * thread sends it at start-up and after a reset, never while the workers
 * move packets on the pairs it changes. Returns 0 when the device acked
 * VIRTIO_NET_OK, -EPROTO for another ack or a broken ring, -ETIMEDOUT,
 * -ECANCELED when the datapath stops meanwhile (the command stays posted:
 * the next device_start() resets the device and the ring).
 */
static int ctrl_command(struct vfio_port *p, uint8_t class, uint8_t cmd, const void *data, size_t len)
{
	uint8_t *buf = (uint8_t *)iovk_vfio_buffer_get_addr(p->drv_mem) + p->ctrl_drv_off + p->ctrl_layout.driver_size;
	volatile uint8_t *ack =
		(uint8_t *)iovk_vfio_buffer_get_addr(p->dev_mem) + p->ctrl_dev_off + p->ctrl_layout.device_size;
	int id_free = vp_vq_get_free(&p->ctrl), n;

	if (id_free != 0 || len > VP_CTRL_CMD_MAX - 2)
		return fail(p, -EPROTO, "control queue: command %u.%u cannot be posted", class, cmd);
	buf[0] = class;
	buf[1] = cmd;
	memcpy(buf + 2, data, len);
	/* anything but VIRTIO_NET_OK (0) until the device writes it */
	*ack = 0xff;
	vp_vq_post(&p->ctrl, 0, (uint32_t)(2 + len));
	if (vp_vq_publish(&p->ctrl))
		notify(p, p->ctrl_notify, p->ctrl_index);
	p->ctrl_n = 0;
	if (dp_wait_for(p->stopping, VP_CTRL_WAIT_MS, ctrl_answered, p) == -ECANCELED)
		return fail(p, -ECANCELED, "control queue: the datapath stopped before command %u.%u was answered",
			    class, cmd);
	n = p->ctrl_n;
	if (n < 0)
		return fail(p, -EPROTO, "control queue: %s", p->ctrl.broken_reason);
	if (n == 0)
		return fail(p, -ETIMEDOUT, "control queue: command %u.%u not answered within %d ms", class, cmd,
			    VP_CTRL_WAIT_MS);
	vp_vq_put_free(&p->ctrl, p->ctrl_id);
	/* acquire on used->idx in vp_vq_used(): the ack byte was written before it */
	if (*ack != VIRTIO_NET_OK)
		return fail(p, -EPROTO, "control queue: command %u.%u refused (ack %u)", class, cmd, *ack);
	return 0;
}

/* 5.1.6.5.5: VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET with our n_queues (le16). */
static int mq_pairs_set(struct vfio_port *p)
{
	struct virtio_net_ctrl_mq mq = { .virtqueue_pairs = htole16((uint16_t)p->n_queues) };

	return ctrl_command(p, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &mq, sizeof(mq));
}

/* The whole of 3.1.1 on memory that is already mapped: at open and at every recovery. */
static int device_start(struct vfio_port *p)
{
	uint8_t *drv = iovk_vfio_buffer_get_addr(p->drv_mem), *devm = iovk_vfio_buffer_get_addr(p->dev_mem);
	int r = negotiate(p);

	if (r < 0)
		return r;
	for (unsigned i = 0; i < p->n_queues; i++) {
		struct vfio_queue *q = &p->q[i];
		uint64_t rx_buf = p->rx_iova + (uint64_t)i * p->qsize * VP_BUF_SIZE;
		uint64_t tx_buf = p->tx_iova + (uint64_t)i * p->qsize * VP_BUF_SIZE;
		uint64_t d_rx = (uint64_t)(2 * i) * p->layout.driver_size, d_tx = d_rx + p->layout.driver_size;
		uint64_t u_rx = (uint64_t)(2 * i) * p->layout.device_size, u_tx = u_rx + p->layout.device_size;

		vp_vq_init(&q->rx, p->qsize, drv + d_rx, devm + u_rx, &p->layout, rx_buf, VP_BUF_SIZE, true);
		vp_vq_init(&q->tx, p->qsize, drv + d_tx, devm + u_tx, &p->layout, tx_buf, VP_BUF_SIZE, false);
		q->n_held = 0;
		/* receive queue i raises vector i; transmit queues none (reaped on the next burst) */
		r = queue_setup(p, q->rx_index, p->qsize, p->irq ? (uint16_t)i : VIRTIO_MSI_NO_VECTOR,
				p->drv_iova + d_rx + p->layout.desc_off, p->drv_iova + d_rx + p->layout.avail_off,
				p->dev_iova + u_rx + p->layout.used_off, &q->rx_notify);
		if (r >= 0)
			r = queue_setup(p, q->tx_index, p->qsize, VIRTIO_MSI_NO_VECTOR,
					p->drv_iova + d_tx + p->layout.desc_off, p->drv_iova + d_tx + p->layout.avail_off,
					p->dev_iova + u_tx + p->layout.used_off, &q->tx_notify);
		if (r < 0)
			return r;
		/* every receive buffer to the device */
		for (int id; (id = vp_vq_get_free(&q->rx)) >= 0;)
			vp_vq_post(&q->rx, (uint16_t)id, 0);
		vp_vq_publish(&q->rx);
	}
	if (p->mq) {
		/* 3.1.1: every virtqueue, the control queue too, before DRIVER_OK */
		vp_ctrl_init(&p->ctrl, p->ctrl_size, drv + p->ctrl_drv_off, devm + p->ctrl_dev_off, &p->ctrl_layout,
			     p->drv_iova + p->ctrl_drv_off + p->ctrl_layout.driver_size,
			     p->dev_iova + p->ctrl_dev_off + p->ctrl_layout.device_size);
		r = queue_setup(p, p->ctrl_index, p->ctrl_size, VIRTIO_MSI_NO_VECTOR,
				p->drv_iova + p->ctrl_drv_off + p->ctrl_layout.desc_off,
				p->drv_iova + p->ctrl_drv_off + p->ctrl_layout.avail_off,
				p->dev_iova + p->ctrl_dev_off + p->ctrl_layout.used_off, &p->ctrl_notify);
		if (r < 0)
			return r;
	}
	if (status_set(p, VIRTIO_CONFIG_S_DRIVER_OK) < 0)
		return fail(p, -EIO, "setting DRIVER_OK failed");
	if (status_read(p) & (VIRTIO_CONFIG_S_NEEDS_RESET | VIRTIO_CONFIG_S_FAILED))
		return fail(p, -EPROTO, "the device needs a reset right after DRIVER_OK (status 0x%02x)", status_read(p));
	/* 3.1.1: no notification before DRIVER_OK */
	/* 5.1.6.5.5: the device uses the first pair only until it is told more */
	if (p->mq && (r = mq_pairs_set(p)) < 0)
		return r;
	for (unsigned i = 0; i < p->n_queues; i++)
		notify(p, p->q[i].rx_notify, p->q[i].rx_index);
	/* publishes the rings set up above to the workers (queue_ok()'s acquire) */
	__atomic_store_n(&p->started, true, __ATOMIC_RELEASE);
	return 0;
}

static int map_buffer(struct vfio_port *p, size_t size, unsigned flags, struct iovk_vfio_buffer **ret_buf,
		      uint64_t *ret_iova)
{
	struct iovk_vfio_dma_map_opts o = IOVK_OPTS(iovk_vfio_dma_map_opts, .flags = flags);
	int r = iovk_vfio_buffer_new(p->ctx, size, 0, ret_buf);

	if (r < 0)
		return r;
	return iovk_vfio_dma_map(p->iommu, iovk_vfio_buffer_get_addr(*ret_buf),
				 iovk_vfio_buffer_get_size(*ret_buf), &o, ret_iova);
}

static int map_bars(struct vfio_port *p)
{
	const struct vp_cap_loc *locs[] = { &p->caps.common, &p->caps.notify, &p->caps.isr, &p->caps.device };

	for (size_t i = 0; i < ELEMENTSOF(locs); i++)
		if (locs[i]->present)
			p->bars[locs[i]->bar].used = true;
	for (unsigned b = 0; b < VP_BAR_COUNT; b++) {
		const struct iovk_vfio_region *reg = iovk_vfio_device_get_region(p->dev, b);
		void *addr;
		bool ok = true;

		if (!p->bars[b].used || iovk_vfio_device_map_region(p->dev, b, &addr) < 0)
			continue; /* pread/pwrite it is */
		/* with a sparse mmap only the areas are backed: every structure must be in one */
		for (size_t i = 0; i < ELEMENTSOF(locs) && reg->has_sparse_mmap; i++) {
			bool inside = false;

			if (!locs[i]->present || locs[i]->bar != b)
				continue;
			for (size_t k = 0; k < reg->n_sparse_areas; k++) {
				const struct iovk_vfio_sparse_area *a = &reg->sparse_areas[k];

				inside |= locs[i]->offset >= a->offset &&
					  (uint64_t)locs[i]->offset + locs[i]->length <= a->offset + a->size;
			}
			ok &= inside;
		}
		p->bars[b].map = ok ? addr : NULL;
	}
	clear_error(p->ctx);
	return 0;
}

/* ---- the port interface ---- */

static bool queue_ok(const struct vfio_port *p, const struct vp_vq *vq)
{
	return __atomic_load_n(&p->started, __ATOMIC_ACQUIRE) && !vq->broken;
}

static void vfio_rx_release(void *port, unsigned qi)
{
	struct vfio_port *p = port;
	struct vfio_queue *q = &p->q[qi];

	if (queue_ok(p, &q->rx)) {
		for (unsigned i = 0; i < q->n_held; i++)
			vp_vq_post(&q->rx, q->held[i], 0);
		/* one kick per burst at most, none while the device polls */
		if (q->n_held && vp_vq_publish(&q->rx))
			notify(p, q->rx_notify, q->rx_index);
	}
	q->n_held = 0;
	dp_unlock(&q->rx_lock);
}

static unsigned vfio_rx_burst(void *port, unsigned qi, struct iovk_dp_pkt *pkts, unsigned n)
{
	struct vfio_port *p = port;
	struct vfio_queue *q = &p->q[qi];
	uint32_t lens[DP_BURST_MAX];
	unsigned got = 0;
	int k;

	if (!dp_trylock(&q->rx_lock))
		return 0;
	if (!queue_ok(p, &q->rx))
		goto none;
	k = vp_vq_used(&q->rx, q->held, lens, n);
	if (k <= 0)
		goto none;
	q->n_held = (unsigned)k;
	for (int i = 0; i < k; i++) {
		uint16_t id = q->held[i];

		if (lens[i] <= VP_NET_HDR_LEN) {
			q->rx_errors++;
			continue;
		}
		/* the header says nothing we asked for: no offloads, no merged buffers */
		q->seg[got] = (struct iovec){ .iov_base = q->rx_buf + (size_t)id * VP_BUF_SIZE + VP_NET_HDR_LEN,
					      .iov_len = lens[i] - VP_NET_HDR_LEN };
		__builtin_prefetch(q->seg[got].iov_base);
		pkts[got] = (struct iovk_dp_pkt){ .seg = &q->seg[got], .len = lens[i] - VP_NET_HDR_LEN, .n_seg = 1 };
		got++;
	}
	if (got > 0)
		return got; /* the lock stays held until rx_release */
	vfio_rx_release(p, qi); /* only runts: their buffers go straight back */
	return 0;
none:
	dp_unlock(&q->rx_lock);
	return 0;
}

static unsigned vfio_tx_burst(void *port, unsigned qi, const struct iovk_dp_pkt *pkts, unsigned n)
{
	struct vfio_port *p = port;
	struct vfio_queue *q = &p->q[qi];
	uint16_t done[VP_VQ_MAX];
	unsigned sent = 0;
	int k;

	/* no spinning on the lock while the control thread resets the device: drop */
	if (!__atomic_load_n(&p->started, __ATOMIC_ACQUIRE))
		return 0;
	dp_lock(&q->tx_lock);
	if (!queue_ok(p, &q->tx))
		goto out;
	/* take back what the device sent */
	k = vp_vq_used(&q->tx, done, NULL, q->tx.size);
	if (k < 0)
		goto out;
	for (int i = 0; i < k; i++)
		vp_vq_put_free(&q->tx, done[i]);
	for (unsigned i = 0; i < n; i++) {
		const struct iovk_dp_pkt *pkt = &pkts[i];
		uint8_t *b;
		size_t off = VP_NET_HDR_LEN;
		int id;

		/* the forwarder counts the first `sent` frames as sent and the rest as
		 * dropped: an oversize frame ends the burst, it is not skipped */
		if (pkt->len > VP_BUF_SIZE - VP_NET_HDR_LEN)
			break;
		id = vp_vq_get_free(&q->tx);
		if (id < 0)
			break; /* the device is behind: the rest is dropped, as a full NIC queue would */
		b = q->tx_buf + (size_t)id * VP_BUF_SIZE;
		memset(b, 0, VP_NET_HDR_LEN);
		for (unsigned s = 0; s < pkt->n_seg; s++) {
			size_t l = pkt->seg[s].iov_len;

			if (l > VP_BUF_SIZE - off)
				l = VP_BUF_SIZE - off;
			memcpy(b + off, pkt->seg[s].iov_base, l);
			off += l;
		}
		vp_vq_post(&q->tx, (uint16_t)id, (uint32_t)off);
		sent++;
	}
	if (sent && vp_vq_publish(&q->tx))
		notify(p, q->tx_notify, q->tx_index);
out:
	dp_unlock(&q->tx_lock);
	return sent;
}

/* Interrupt mode (datapath.c's worker_sleep()): receive queue q's MSI-X eventfd. */
static int vfio_rx_wait_fd(void *port, unsigned qi)
{
	struct vfio_port *p = port;

	return p->irq ? iovk_vfio_device_irq_get_eventfd(p->dev, VFIO_PCI_MSIX_IRQ_INDEX, qi) : -1;
}

static bool vfio_rx_interrupts(void *port, unsigned qi, bool on)
{
	struct vfio_port *p = port;
	struct vfio_queue *q = &p->q[qi];
	bool quiet = true;
	uint64_t n;

	/* the lock busy: a burst of another worker, or the control thread's
	 * vfio_control() passing through it. It does not hold the locks while
	 * it resets the rings (device_start() runs unlocked): what keeps us off
	 * rings being set up is `started`, false through the reset and checked
	 * in queue_ok() under the lock. So the worker polls (on), or leaves the
	 * flag to whoever holds the lock or to the reset, which sets it (off) */
	if (dp_trylock(&q->rx_lock)) {
		if (queue_ok(p, &q->rx))
			quiet = on ? vp_vq_interrupts_on(&q->rx) : (vp_vq_interrupts_off(&q->rx), true);
		dp_unlock(&q->rx_lock);
	} else {
		quiet = !on;
	}
	/* interrupts that came while armed, or before (a device may ignore the flag: it is a hint) */
	if (!on && read(vfio_rx_wait_fd(p, qi), &n, sizeof(n)) < 0) {
	}
	return quiet;
}

static unsigned vfio_n_queues(void *port)
{
	return ((struct vfio_port *)port)->n_queues;
}

static int vfio_control_fd(void *port)
{
	return -1;
}

/*
 * Once a second: the device's status. DEVICE_NEEDS_RESET (2.1.2), a ring
 * the workers found broken, or a device that lost DRIVER_OK (reset behind
 * our back) gets it reset and set up again. The reset may wait up to
 * VP_RESET_WAIT_MS, so no queue lock is held through it: `started` goes
 * false first, each queue lock is taken and dropped once so that a worker
 * inside a burst has left it (workers check `started` under the lock and
 * stay out from then on), and device_start() sets it true again at the end.
 * Its waits on the device end early when the datapath stops, and a port left
 * "failed" is called less and less often (datapath.c): a device that never
 * answers does not keep the control thread, and so the other ports'
 * vhost-user messages, the stats socket and a stop, waiting.
 */
static int vfio_control(void *port, bool readable)
{
	struct vfio_port *p = port;
	uint8_t s = status_read(p);
	const char *why = NULL;
	bool from_status = true, was_failed = !strcmp(p->state, "failed");
	int r;

	if (s == VP_STATUS_GONE) {
		p->state = "gone";
		return 0;
	}
	if (s & VIRTIO_CONFIG_S_NEEDS_RESET)
		why = "the device set DEVICE_NEEDS_RESET";
	else if (p->started && !(s & VIRTIO_CONFIG_S_DRIVER_OK))
		why = "the device was reset behind the driver's back";
	for (unsigned i = 0; i < p->n_queues && !why; i++)
		if (p->q[i].rx.broken || p->q[i].tx.broken) {
			why = p->q[i].rx.broken ? p->q[i].rx.broken_reason : p->q[i].tx.broken_reason;
			from_status = false;
		}
	if (!why && p->started)
		return 0;
	if (!why) {
		why = "setting it up failed before";
		from_status = false;
	}
	__atomic_store_n(&p->started, false, __ATOMIC_RELEASE);
	for (unsigned i = 0; i < p->n_queues; i++) {
		dp_lock(&p->q[i].rx_lock);
		dp_unlock(&p->q[i].rx_lock);
		dp_lock(&p->q[i].tx_lock);
		dp_unlock(&p->q[i].tx_lock);
	}
	/* the status is the device's word for all queues: counted on queue 0's receive ring */
	if (from_status)
		vp_vq_break(&p->q[0].rx, "%s (status 0x%02x)", why, s);
	if (!was_failed)
		log_warn(p->ctx, "vfio:%s: %s: resetting the device", p->bdf, why);
	p->state = "resetting";
	r = device_start(p);
	if (r < 0) {
		/* tried again later (datapath.c backs off from 1 s to 30 s), said once */
		if (!was_failed)
			log_warn(p->ctx, "vfio:%s: %s", p->bdf, p->err);
		p->state = "failed";
		return 0;
	}
	p->state = "running";
	return 0;
}

static const char *vfio_state(void *port)
{
	return ((struct vfio_port *)port)->state;
}

static void vfio_queue_state(void *port, unsigned qi, struct iovk_dp_queue_state *ret)
{
	struct vfio_port *p = port;
	struct vfio_queue *q = &p->q[qi];
	const struct vp_vq *b = q->tx.broken || (!q->rx.broken && q->tx.n_broken > q->rx.n_broken) ? &q->tx : &q->rx;

	/* read without the lock: words a worker may be changing, each read whole */
	*ret = (struct iovk_dp_queue_state){
		.ready = queue_ok(p, &q->rx) && queue_ok(p, &q->tx),
		.broken = q->rx.broken || q->tx.broken,
		.n_broken = q->rx.n_broken + q->tx.n_broken,
		.rx_errors = q->rx_errors,
	};
	snprintf(ret->reason, sizeof(ret->reason), "%s", b->broken_reason);
}

static void vfio_free(void *port)
{
	struct vfio_port *p = port;

	if (!p)
		return;
	if (p->dev) {
		uint16_t cmd = p->pci_command;

		/* DMA stops before the memory goes: virtio reset, then the command
		 * register as we found it; a device that did not reset may still be
		 * doing DMA, so bus mastering goes off whatever we found */
		if (p->caps.common.present && device_reset(p) < 0) {
			log_warn(p->ctx, "vfio:%s: the device did not reset; bus mastering off, releasing it anyway",
				 p->bdf);
			cmd &= (uint16_t)~PCI_COMMAND_MASTER;
		}
		if (p->pci_command_set)
			iovk_vfio_device_config_write(p->dev, PCI_COMMAND, &cmd, 2);
	}
	iovk_vfio_device_unref(p->dev);
	/* the last reference unmaps every buffer */
	iovk_vfio_iommu_unref(p->iommu);
	iovk_vfio_buffer_free(p->drv_mem);
	iovk_vfio_buffer_free(p->dev_mem);
	iovk_vfio_buffer_free(p->rx_mem);
	iovk_vfio_buffer_free(p->tx_mem);
	free(p->q);
	iovk_ctx_unref(p->ctx);
	free(p);
}

const struct iovk_dp_port_ops dp_vfio_port_ops = {
	.sz = sizeof(struct iovk_dp_port_ops),
	.kind = "vfio",
	.rx_burst = vfio_rx_burst,
	.rx_release = vfio_rx_release,
	.tx_burst = vfio_tx_burst,
	.n_queues = vfio_n_queues,
	.control_fd = vfio_control_fd,
	.control = vfio_control,
	.state = vfio_state,
	.queue_state = vfio_queue_state,
	.free = vfio_free,
	.rx_wait_fd = vfio_rx_wait_fd,
	.rx_interrupts = vfio_rx_interrupts,
};

static int open_device(struct vfio_port *p, const struct iovk_dp_port_spec *spec)
{
	uint8_t cfg[VP_CFG_SIZE];
	uint64_t bar_sizes[VP_BAR_COUNT] = { 0 };
	uint16_t cmd;
	int r;

	r = iovk_vfio_iommu_new(p->ctx, (enum iovk_vfio_mode)spec->vfio_mode, &p->iommu);
	if (r >= 0)
		r = iovk_vfio_device_open(p->iommu, spec->name, NULL, &p->dev);
	if (r < 0)
		return r; /* the library's error stands: it names the device */
	snprintf(p->bdf, sizeof(p->bdf), "%s", iovk_vfio_device_get_address(p->dev));
	r = iovk_vfio_device_config_read(p->dev, 0, cfg, sizeof(cfg));
	if (r < 0)
		return r;
	for (unsigned b = 0; b < VP_BAR_COUNT; b++) {
		const struct iovk_vfio_region *reg = iovk_vfio_device_get_region(p->dev, b);

		bar_sizes[b] = reg ? reg->size : 0;
	}
	r = vp_caps_parse(cfg, sizeof(cfg), bar_sizes, &p->caps, p->err, sizeof(p->err));
	if (r < 0)
		return r;
	map_bars(p);
	/* memory decoding and bus mastering on (vfio-pci leaves DMA off), INTx off: we poll */
	memcpy(&p->pci_command, cfg + PCI_COMMAND, 2);
	cmd = p->pci_command | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_INTX_DISABLE;
	p->pci_command_set = true;
	return iovk_vfio_device_config_write(p->dev, PCI_COMMAND, &cmd, 2);
}

/* One MSI-X vector per receive queue, when the device has them; else the port only polls. */
static void irq_setup(struct vfio_port *p)
{
	const struct iovk_vfio_irq *irq = iovk_vfio_device_get_irq(p->dev, VFIO_PCI_MSIX_IRQ_INDEX);
	int r;

	if (!irq || !(irq->flags & VFIO_IRQ_INFO_EVENTFD) || irq->count < p->n_queues) {
		log_info(p->ctx, "vfio:%s: %u MSI-X vector(s) for %u receive queue(s): polling only", p->bdf,
			 irq ? irq->count : 0, p->n_queues);
		return;
	}
	r = iovk_vfio_device_irq_enable(p->dev, VFIO_PCI_MSIX_IRQ_INDEX, p->n_queues);
	if (r < 0) {
		log_info(p->ctx, "vfio:%s: enabling %u MSI-X vector(s): %s: polling only", p->bdf, p->n_queues,
			 strerror(-r));
		clear_error(p->ctx);
		return;
	}
	p->irq = true;
}

int dp_vfio_port_new(struct iovk_ctx *ctx, const struct iovk_dp_port_spec *spec, const int *stopping,
		     void **ret_port)
{
	struct vfio_port *p = calloc(1, sizeof(*p));
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	uint16_t qsize = VP_VQ_DEFAULT;
	int r;

	if (!p)
		return -ENOMEM;
	p->ctx = iovk_ctx_ref(ctx);
	p->stopping = stopping;
	p->state = "starting";
	p->n_queues = spec->queues;
	snprintf(p->bdf, sizeof(p->bdf), "%s", spec->name);
	p->q = calloc(p->n_queues, sizeof(*p->q));
	if (!p->q) {
		vfio_free(p);
		return -ENOMEM;
	}
	r = open_device(p, spec);
	if (r >= 0)
		r = negotiate(p);
	/* one ring size for every queue: the smallest any of them allows */
	for (unsigned i = 0; r >= 0 && i < p->n_queues; i++) {
		p->q[i].rx_index = (uint16_t)(2 * i);
		p->q[i].tx_index = (uint16_t)(2 * i + 1);
		for (unsigned k = 0; k < 2 && r >= 0; k++) {
			uint16_t max = 0;

			if (queue_max(p, (uint16_t)(2 * i + k), &max) < 0 || !(qsize = vp_vq_pick_size(max, qsize)))
				r = fail(p, -EPROTO, "virtqueue %u does not exist (queue_size 0)", 2 * i + k);
		}
	}
	if (r >= 0 && p->mq) {
		uint16_t max = 0;

		/* two descriptors per command: a ring of 1 cannot hold one */
		if (queue_max(p, p->ctrl_index, &max) < 0 || (p->ctrl_size = vp_vq_pick_size(max, VP_CTRL_QSIZE)) < 2)
			r = fail(p, -EPROTO, "the control queue (virtqueue %u) allows %u entries: a command needs 2",
				 p->ctrl_index, max);
	}
	if (r >= 0) {
		size_t bufs = (size_t)p->n_queues * qsize * VP_BUF_SIZE;
		size_t drv_size, dev_size;

		p->qsize = qsize;
		vp_vq_layout(qsize, page, &p->layout);
		drv_size = 2 * p->n_queues * p->layout.driver_size;
		dev_size = 2 * p->n_queues * p->layout.device_size;
		if (p->mq) {
			/* the control ring, then a page for the command (device: read) or the ack (device: write) */
			vp_vq_layout(p->ctrl_size, page, &p->ctrl_layout);
			p->ctrl_drv_off = drv_size;
			p->ctrl_dev_off = dev_size;
			drv_size += p->ctrl_layout.driver_size + page;
			dev_size += p->ctrl_layout.device_size + page;
		}
		/* None of these lands at IOVA 0, which QEMU takes for a queue
		 * not set up: lib/vfio's allocator never hands it out. */
		r = map_buffer(p, drv_size, IOVK_VFIO_DMA_READ, &p->drv_mem, &p->drv_iova);
		if (r >= 0)
			r = map_buffer(p, dev_size, IOVK_VFIO_DMA_READ | IOVK_VFIO_DMA_WRITE, &p->dev_mem, &p->dev_iova);
		if (r >= 0)
			r = map_buffer(p, bufs, IOVK_VFIO_DMA_READ | IOVK_VFIO_DMA_WRITE, &p->rx_mem, &p->rx_iova);
		if (r >= 0)
			r = map_buffer(p, bufs, IOVK_VFIO_DMA_READ, &p->tx_mem, &p->tx_iova);
	}
	for (unsigned i = 0; r >= 0 && i < p->n_queues; i++) {
		p->q[i].rx_buf = (uint8_t *)iovk_vfio_buffer_get_addr(p->rx_mem) + (size_t)i * qsize * VP_BUF_SIZE;
		p->q[i].tx_buf = (uint8_t *)iovk_vfio_buffer_get_addr(p->tx_mem) + (size_t)i * qsize * VP_BUF_SIZE;
	}
	if (r >= 0)
		irq_setup(p);
	if (r >= 0)
		r = device_start(p);
	if (r < 0) {
		char msg[sizeof(p->err)];

		/* our own reasons are in p->err; a library call's error is in the context already */
		memcpy(msg, p->err, sizeof(msg));
		vfio_free(p);
		return msg[0] ? set_error(ctx, r, "vfio:%s: %s", spec->name, msg) : r;
	}
	p->state = "running";
	log_info(ctx, "vfio:%s: virtio-net driven from userspace: %u queue pair(s) of %u entries%s, features 0x%" PRIx64
		 ", %s backend, %s", p->bdf, p->n_queues, qsize, p->mq ? " (MQ, set through the control queue)" : "",
		 p->features, iovk_vfio_iommu_get_backend(p->iommu),
		 p->irq ? "MSI-X when idle" : "polling only");
	*ret_port = p;
	return 0;
}
