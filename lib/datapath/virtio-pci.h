/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The driver side of a modern virtio-pci network device, the pure parts:
 * finding the virtio structures through the PCI capability list, choosing
 * features, and split virtqueues that this process owns and a device (the
 * other side of the IOMMU) fills. vfio-port.c puts them on real hardware.
 *
 * The device is not trusted any more than a guest is (vring.h): every
 * capability must lie inside config space and its BAR, the capability
 * list is walked with a bound and loop detection, and every used-ring
 * entry is checked (index not ahead by more than the ring, id in range and
 * actually handed to the device, length inside the buffer). A ring that
 * breaks a rule is marked broken and left alone until the port resets the
 * device (virtio 1.2, 2.1.2: the driver's answer to DEVICE_NEEDS_RESET).
 *
 * Private to lib/datapath (the unit tests include it too).
 */
#pragma once

/* The rings are ordered against the device with __atomic barriers, and
 * VIRTIO_F_ORDER_PLATFORM is taken: on x86 the CPU's barriers order DMA and
 * MMIO as well. Not so on arm64: there the release/acquire of the ring
 * indexes need device barriers (dmb oshst / dmb oshld) and the notify write
 * a dsb st before it (the Linux kernel's virtio_wmb/virtio_rmb with
 * weak_barriers off). Until that is written, no other architecture. */
#if !defined(__x86_64__) && !defined(__i386__)
#error "the userspace virtio-pci driver is x86 only: its device barriers are x86's (see above)"
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/virtio_ring.h>

#define VP_BAR_COUNT 6
/* Standard PCI config space: the capability list lives in it. */
#define VP_CFG_SIZE 256
/* Every capability is 4-byte aligned after the 64-byte header: at most 48. */
#define VP_CAPS_MAX ((VP_CFG_SIZE - 0x40) / 4)

/* What the common configuration structure must cover: the 1.0 layout up to
 * queue_device (we touch neither queue_notify_data nor queue_reset). */
#define VP_COMMON_CFG_MIN 56

struct vp_cap_loc {
	bool present;
	uint8_t bar;
	uint8_t cap_offset; /* of the capability in config space */
	uint32_t offset;    /* of the structure in the BAR */
	uint32_t length;
};

struct vp_caps {
	struct vp_cap_loc common, notify, isr, device;
	uint32_t notify_off_multiplier;
};

/*
 * Finds the virtio structures (virtio 1.2, 4.1.4) in cfg[0..len) (config
 * space as read; len >= 64), taking the first of each type whose BAR index
 * is valid (4.1.4: "the driver SHOULD use the first instance"; BAR values
 * 6..255 are reserved and skipped). bar_sizes[i] is BAR i's size, 0 when it
 * is not implemented. Returns 0, -ENODEV when the function has no
 * capability list or lacks the common or notify structure (not a modern
 * virtio-pci device), -EBADMSG for a capability outside config space,
 * shorter than its type needs, or whose structure does not lie inside its
 * BAR, -ELOOP for a list that loops or runs past VP_CAPS_MAX entries. err
 * gets the reason.
 */
int vp_caps_parse(const uint8_t *cfg, size_t len, const uint64_t bar_sizes[VP_BAR_COUNT], struct vp_caps *ret,
		  char *err, size_t err_size);

/* The features we take when offered; VERSION_1 and ACCESS_PLATFORM are required. */
#define VP_NET_FEATURES                                                                                      \
	((1ull << 32 /* VIRTIO_F_VERSION_1 */) | (1ull << 33 /* VIRTIO_F_ACCESS_PLATFORM */) |                    \
	 (1ull << 36 /* VIRTIO_F_ORDER_PLATFORM */) | (1ull << 5 /* VIRTIO_NET_F_MAC */) |                        \
	 (1ull << 16 /* VIRTIO_NET_F_STATUS */))

/* Taken only for more than one queue pair (5.1.3: MQ needs CTRL_VQ). */
#define VP_NET_MQ_FEATURES ((1ull << 17 /* VIRTIO_NET_F_CTRL_VQ */) | (1ull << 22 /* VIRTIO_NET_F_MQ */))

/*
 * The features to write back for a device offering `offered`: VERSION_1
 * (a legacy-only device is -EOPNOTSUPP), ACCESS_PLATFORM (required too,
 * -EOPNOTSUPP without it: we give the device IOVAs, and a device without
 * it may treat them as physical addresses and bypass the IOMMU; 6.1: a
 * device offering it may refuse a driver that does not take it), ORDER_PLATFORM (our barriers are the hardware's),
 * MAC and STATUS; no offloads, no merged buffers, no EVENT_IDX (we poll
 * and suppress interrupts with VRING_AVAIL_F_NO_INTERRUPT), no packed
 * ring. More than one queue pair needs MQ and CTRL_VQ (VP_NET_MQ_FEATURES),
 * taken then and only then: a device without both is -EOPNOTSUPP. err
 * gets the reason.
 */
int vp_net_features(uint64_t offered, unsigned queue_pairs, uint64_t *ret_features, char *err, size_t err_size);

/* Offset of max_virtqueue_pairs (le16) in the device configuration (5.1.4). */
#define VP_NET_CFG_MAX_VQ_PAIRS 8

/*
 * With MQ negotiated: checks what the device says against what we want.
 * max_pairs is its max_virtqueue_pairs (5.1.4: 1..0x8000), num_queues its
 * common configuration's num_queues; the control queue is virtqueue
 * 2 * max_pairs (5.1.2), which must exist. Returns 0 and the control
 * queue's index, -EPROTO for a device that breaks those rules, -EOPNOTSUPP
 * for one with fewer queue pairs than `want`. err gets the reason.
 */
int vp_net_mq_check(uint16_t max_pairs, uint16_t num_queues, unsigned want, uint16_t *ret_ctrl_index, char *err,
		    size_t err_size);

/* The largest ring we set up, and the one we prefer (QEMU's default for virtio-net). */
#define VP_VQ_MAX 1024
#define VP_VQ_DEFAULT 256

/*
 * The ring size to use for a queue whose device maximum is `max`
 * (queue_size as read, 0: the queue does not exist): the largest power of
 * two <= min(max, want), since split rings are powers of two (2.7). 0 when
 * max is 0.
 */
uint16_t vp_vq_pick_size(uint16_t max, uint16_t want);

/*
 * Where the parts of one split ring go in memory the driver writes (the
 * descriptor table and the available ring, which the device only reads)
 * and memory the device writes (the used ring), so the IOMMU can map the
 * first read-only for the device. Offsets are from the start of each area;
 * sizes are rounded up to page.
 */
struct vp_vq_layout {
	uint64_t desc_off, avail_off, driver_size; /* driver area: desc (16-aligned) + avail (2) */
	uint64_t used_off, device_size;            /* device area: used (4) */
};
void vp_vq_layout(uint16_t size, uint64_t page, struct vp_vq_layout *ret);

/* A split virtqueue the driver owns: descriptor i always points at buffer i. */
struct vp_vq {
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t size;
	bool device_writes; /* receive queue: the device fills our buffers */
	uint32_t buf_size;
	uint16_t avail_idx; /* next avail->idx we publish */
	uint16_t last_used; /* used entries consumed */
	uint16_t n_inflight;
	uint16_t n_free;
	uint16_t free_ids[VP_VQ_MAX];
	uint8_t inflight[VP_VQ_MAX]; /* 1: buffer i is the device's */
	bool broken;
	uint64_t n_broken;
	char broken_reason[128];
};

/*
 * Sets up the ring in the areas given (zeroed here) for `size` buffers of
 * buf_size bytes at IOVA buf_iova, buf_iova + buf_size, ...: descriptors
 * written, every buffer free, interrupts suppressed
 * (VRING_AVAIL_F_NO_INTERRUPT, 2.7.10: we poll). Not broken afterwards.
 * size must be a power of two <= VP_VQ_MAX.
 */
void vp_vq_init(struct vp_vq *vq, uint16_t size, void *driver_area, void *device_area,
		const struct vp_vq_layout *layout, uint64_t buf_iova, uint32_t buf_size, bool device_writes);

/* Marks the ring broken and keeps the reason. Returns -EPROTO. */
int vp_vq_break(struct vp_vq *vq, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Takes a free buffer id (the lowest freed last first); -1 when none is free. */
static inline int vp_vq_get_free(struct vp_vq *vq)
{
	return vq->n_free ? vq->free_ids[--vq->n_free] : -1;
}

/*
 * Hands buffer id (free, taken by vp_vq_get_free() or returned by
 * vp_vq_used()) to the device with len bytes (the device may write
 * buf_size into a receive buffer; len is what a transmit buffer holds).
 * Not visible to the device before vp_vq_publish().
 */
static inline void vp_vq_post(struct vp_vq *vq, uint16_t id, uint32_t len)
{
	vq->desc[id].len = vq->device_writes ? vq->buf_size : len;
	vq->avail->ring[vq->avail_idx & (vq->size - 1)] = id;
	vq->avail_idx++;
	vq->inflight[id] = 1;
	vq->n_inflight++;
}

/*
 * Publishes what vp_vq_post() queued with one store of avail->idx (the
 * entries and descriptors first: 2.7.13.3.1), then says whether the device
 * wants a notification (2.7.7: VRING_USED_F_NO_NOTIFY clear, read after a
 * full barrier so the device cannot miss both our index and our kick).
 */
bool vp_vq_publish(struct vp_vq *vq);

/*
 * Up to max used entries the device returned since the last call, checked:
 * ids and lengths into ids[]/lens[] (lens may be NULL), the buffers free
 * again (for the caller to reuse or post back; they are not put on the
 * free list). Returns how many, or -EPROTO when the device broke the ring
 * (used index more than the ring ahead, an id out of range or not the
 * device's, a receive length over the buffer): then nothing is returned.
 */
int vp_vq_used(struct vp_vq *vq, uint16_t *ids, uint32_t *lens, unsigned max);

/*
 * The control virtqueue (5.1.6.5): one command in flight at a time, a
 * two-descriptor chain (descriptor 0: the class, command and its data,
 * which the device reads; descriptor 1: the ack byte it writes) since the
 * device reads one part and writes the other. Sets the ring up as
 * vp_vq_init() does, with size >= 2, the command buffer at cmd_iova (up to
 * VP_CTRL_CMD_MAX bytes) and the ack byte at ack_iova; only id 0 is ever
 * posted.
 */
#define VP_CTRL_CMD_MAX 64
void vp_ctrl_init(struct vp_vq *vq, uint16_t size, void *driver_area, void *device_area,
		  const struct vp_vq_layout *layout, uint64_t cmd_iova, uint64_t ack_iova);

/*
 * Interrupt mode for an idle receive ring (no EVENT_IDX: 2.7.10, the flag
 * is the driver's whole say). vp_vq_interrupts_on() clears
 * VRING_AVAIL_F_NO_INTERRUPT, then reads used->idx after a full barrier:
 * an entry the device added before it could see the flag would raise no
 * interrupt, so then the flag goes back and it returns false (poll
 * instead); true: the device will interrupt on the next entry.
 * vp_vq_interrupts_off() sets the flag again.
 */
bool vp_vq_interrupts_on(struct vp_vq *vq);
void vp_vq_interrupts_off(struct vp_vq *vq);

/* Puts buffer id back on the free list (a transmit buffer the device is done with). */
static inline void vp_vq_put_free(struct vp_vq *vq, uint16_t id)
{
	vq->free_ids[vq->n_free++] = id;
}
