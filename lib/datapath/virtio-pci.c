/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Modern virtio-pci, driver side, the parts that need no device: the
 * capability walk, feature choice and driver-owned split rings (see
 * virtio-pci.h). Section numbers are virtio 1.2's.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <linux/pci_regs.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <linux/virtio_pci.h>

#include "virtio-pci.h"

static uint32_t le32_at(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static const char *cfg_type_name(unsigned t)
{
	switch (t) {
	case VIRTIO_PCI_CAP_COMMON_CFG:
		return "common";
	case VIRTIO_PCI_CAP_NOTIFY_CFG:
		return "notify";
	case VIRTIO_PCI_CAP_ISR_CFG:
		return "ISR";
	case VIRTIO_PCI_CAP_DEVICE_CFG:
		return "device";
	default:
		return "?";
	}
}

int vp_caps_parse(const uint8_t *cfg, size_t len, const uint64_t bar_sizes[VP_BAR_COUNT], struct vp_caps *ret,
		  char *err, size_t err_size)
{
	struct vp_caps caps = { 0 };
	bool seen[VP_CFG_SIZE] = { 0 };
	unsigned pos, hops = 0;

	if (len < 0x40) {
		snprintf(err, err_size, "config space of %zu bytes: shorter than a PCI header", len);
		return -EBADMSG;
	}
	if (len > VP_CFG_SIZE)
		len = VP_CFG_SIZE;
	if (!(cfg[PCI_STATUS] & PCI_STATUS_CAP_LIST)) {
		snprintf(err, err_size, "no PCI capability list: not a modern virtio-pci device");
		return -ENODEV;
	}
	/* the low two bits of every pointer are reserved (PCI 3.0, 6.7) */
	for (pos = cfg[PCI_CAPABILITY_LIST] & ~3u; pos; pos = cfg[pos + PCI_CAP_LIST_NEXT] & ~3u) {
		struct vp_cap_loc *loc = NULL;
		unsigned type, bar, cap_len;
		uint32_t off, length;

		if (pos < 0x40 || pos + 2 > len) {
			snprintf(err, err_size, "capability pointer 0x%02x outside the capability area", pos);
			return -EBADMSG;
		}
		if (seen[pos] || ++hops > VP_CAPS_MAX) {
			snprintf(err, err_size, "capability list loops at 0x%02x", pos);
			return -ELOOP;
		}
		seen[pos] = true;
		if (cfg[pos] != PCI_CAP_ID_VNDR)
			continue;
		/* struct virtio_pci_cap: 16 bytes (4.1.4); its length byte may
		 * itself be past the end (pos + 2 == len) */
		cap_len = pos + VIRTIO_PCI_CAP_LEN < len ? cfg[pos + VIRTIO_PCI_CAP_LEN] : 0;
		if (pos + 16 > len || cap_len < 16 || pos + cap_len > len) {
			snprintf(err, err_size, "vendor capability at 0x%02x: length %u does not fit", pos, cap_len);
			return -EBADMSG;
		}
		type = cfg[pos + VIRTIO_PCI_CAP_CFG_TYPE];
		bar = cfg[pos + VIRTIO_PCI_CAP_BAR];
		off = le32_at(cfg + pos + VIRTIO_PCI_CAP_OFFSET);
		length = le32_at(cfg + pos + VIRTIO_PCI_CAP_LENGTH);
		switch (type) {
		case VIRTIO_PCI_CAP_COMMON_CFG:
			loc = &caps.common;
			break;
		case VIRTIO_PCI_CAP_NOTIFY_CFG:
			loc = &caps.notify;
			break;
		case VIRTIO_PCI_CAP_ISR_CFG:
			loc = &caps.isr;
			break;
		case VIRTIO_PCI_CAP_DEVICE_CFG:
			loc = &caps.device;
			break;
		default:
			continue; /* PCI config access, shared memory, vendor: not ours */
		}
		/* 4.1.4: reserved BAR values are ignored; later instances are alternatives */
		if (loc->present || bar >= VP_BAR_COUNT)
			continue;
		if (type == VIRTIO_PCI_CAP_NOTIFY_CFG && cap_len < 20) {
			snprintf(err, err_size, "notify capability at 0x%02x: %u bytes, needs 20", pos, cap_len);
			return -EBADMSG;
		}
		if ((type == VIRTIO_PCI_CAP_COMMON_CFG && length < VP_COMMON_CFG_MIN) ||
		    (type == VIRTIO_PCI_CAP_NOTIFY_CFG && length < 2) || (type == VIRTIO_PCI_CAP_ISR_CFG && length < 1)) {
			snprintf(err, err_size, "%s structure at 0x%02x: %u bytes is too short", cfg_type_name(type), pos,
				 length);
			return -EBADMSG;
		}
		if ((uint64_t)off + length > bar_sizes[bar]) {
			snprintf(err, err_size, "%s structure (capability 0x%02x): BAR%u offset 0x%x length 0x%x lies outside "
				 "the BAR (0x%llx bytes)", cfg_type_name(type), pos, bar, off, length,
				 (unsigned long long)bar_sizes[bar]);
			return -EBADMSG;
		}
		*loc = (struct vp_cap_loc){ .present = true, .bar = (uint8_t)bar, .cap_offset = (uint8_t)pos,
					    .offset = off, .length = length };
		if (type == VIRTIO_PCI_CAP_NOTIFY_CFG)
			caps.notify_off_multiplier = le32_at(cfg + pos + 16);
	}
	if (!caps.common.present || !caps.notify.present) {
		snprintf(err, err_size, "no virtio %s configuration capability: not a modern virtio-pci device",
			 caps.common.present ? "notify" : "common");
		return -ENODEV;
	}
	*ret = caps;
	return 0;
}

int vp_net_features(uint64_t offered, unsigned queue_pairs, uint64_t *ret_features, char *err, size_t err_size)
{
	if (!(offered & (1ull << VIRTIO_F_VERSION_1))) {
		snprintf(err, err_size, "the device does not offer VIRTIO_F_VERSION_1 (features 0x%llx): only modern "
			 "(virtio 1.x) devices are driven", (unsigned long long)offered);
		return -EOPNOTSUPP;
	}
	/* without it the device may take our IOVAs for physical addresses and
	 * bypass the IOMMU (QEMU's virtio-net-pci behind a vIOMMU without
	 * iommu_platform=on): it would DMA to whatever memory they name */
	if (!(offered & (1ull << VIRTIO_F_ACCESS_PLATFORM))) {
		snprintf(err, err_size, "the device does not offer VIRTIO_F_ACCESS_PLATFORM (features 0x%llx): it may "
			 "bypass the IOMMU and use the IOVAs as physical addresses (QEMU: iommu_platform=on)",
			 (unsigned long long)offered);
		return -EOPNOTSUPP;
	}
	if (queue_pairs > 1 && (offered & VP_NET_MQ_FEATURES) != VP_NET_MQ_FEATURES) {
		snprintf(err, err_size, "%u queue pairs: the device does not offer VIRTIO_NET_F_%s (features 0x%llx), "
			 "so it has one (QEMU: mq=on and a netdev with queues=N)", queue_pairs,
			 offered & (1ull << VIRTIO_NET_F_MQ) ? "CTRL_VQ" : "MQ", (unsigned long long)offered);
		return -EOPNOTSUPP;
	}
	*ret_features = offered & (VP_NET_FEATURES | (queue_pairs > 1 ? VP_NET_MQ_FEATURES : 0));
	return 0;
}

int vp_net_mq_check(uint16_t max_pairs, uint16_t num_queues, unsigned want, uint16_t *ret_ctrl_index, char *err,
		    size_t err_size)
{
	/* 5.1.4: max_virtqueue_pairs is 1 to 0x8000 (VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN..MAX) */
	if (max_pairs < VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN || max_pairs > VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MAX) {
		snprintf(err, err_size, "the device says max_virtqueue_pairs %u (the spec allows 1 to 32768)", max_pairs);
		return -EPROTO;
	}
	/* the control queue after every pair: 2 * max_pairs + 1 virtqueues */
	if ((unsigned)num_queues < 2u * max_pairs + 1) {
		snprintf(err, err_size, "the device says max_virtqueue_pairs %u but has %u virtqueues (%u needed with "
			 "the control queue)", max_pairs, num_queues, 2u * max_pairs + 1);
		return -EPROTO;
	}
	if (want > max_pairs) {
		snprintf(err, err_size, "%u queue pairs asked: the device has %u", want, max_pairs);
		return -EOPNOTSUPP;
	}
	*ret_ctrl_index = (uint16_t)(2u * max_pairs);
	return 0;
}

uint16_t vp_vq_pick_size(uint16_t max, uint16_t want)
{
	uint16_t lim = max < want ? max : want, s = 1;

	if (lim == 0)
		return 0;
	if (lim > VP_VQ_MAX)
		lim = VP_VQ_MAX;
	while ((uint16_t)(s << 1) <= lim && (s << 1) <= VP_VQ_MAX)
		s <<= 1;
	return s;
}

static uint64_t round_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

void vp_vq_layout(uint16_t size, uint64_t page, struct vp_vq_layout *ret)
{
	/* 2.7: descriptor table 16-aligned, available ring 2, used ring 4 */
	*ret = (struct vp_vq_layout){
		.desc_off = 0,
		.avail_off = 16ull * size,
		.driver_size = round_up(16ull * size + 6 + 2ull * size, page),
		.used_off = 0,
		.device_size = round_up(6 + 8ull * size, page),
	};
}

void vp_vq_init(struct vp_vq *vq, uint16_t size, void *driver_area, void *device_area,
		const struct vp_vq_layout *layout, uint64_t buf_iova, uint32_t buf_size, bool device_writes)
{
	uint64_t n_broken = vq->n_broken;
	char reason[sizeof(vq->broken_reason)];

	memcpy(reason, vq->broken_reason, sizeof(reason));
	memset(driver_area, 0, layout->driver_size);
	memset(device_area, 0, layout->device_size);
	*vq = (struct vp_vq){
		.desc = (struct vring_desc *)((uint8_t *)driver_area + layout->desc_off),
		.avail = (struct vring_avail *)((uint8_t *)driver_area + layout->avail_off),
		.used = (struct vring_used *)((uint8_t *)device_area + layout->used_off),
		.size = size,
		.device_writes = device_writes,
		.buf_size = buf_size,
		.n_broken = n_broken,
	};
	memcpy(vq->broken_reason, reason, sizeof(reason));
	for (uint16_t i = 0; i < size; i++) {
		vq->desc[i] = (struct vring_desc){
			.addr = buf_iova + (uint64_t)i * buf_size,
			.len = buf_size,
			.flags = device_writes ? VRING_DESC_F_WRITE : 0,
		};
		/* popped from the top: buffer 0 first */
		vq->free_ids[i] = (uint16_t)(size - 1 - i);
	}
	vq->n_free = size;
	vq->avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
}

void vp_ctrl_init(struct vp_vq *vq, uint16_t size, void *driver_area, void *device_area,
		  const struct vp_vq_layout *layout, uint64_t cmd_iova, uint64_t ack_iova)
{
	vp_vq_init(vq, size, driver_area, device_area, layout, cmd_iova, VP_CTRL_CMD_MAX, false);
	vq->desc[0] = (struct vring_desc){ .addr = cmd_iova, .len = VP_CTRL_CMD_MAX, .flags = VRING_DESC_F_NEXT,
					   .next = 1 };
	vq->desc[1] = (struct vring_desc){ .addr = ack_iova, .len = 1, .flags = VRING_DESC_F_WRITE };
	/* the other descriptors stay as vp_vq_init() wrote them, never posted */
	vq->free_ids[0] = 0;
	vq->n_free = 1;
}

int vp_vq_break(struct vp_vq *vq, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(vq->broken_reason, sizeof(vq->broken_reason), fmt, ap);
	va_end(ap);
	vq->broken = true;
	vq->n_broken++;
	return -EPROTO;
}

bool vp_vq_publish(struct vp_vq *vq)
{
	/* 2.7.13.3.1: the ring entries and descriptors before the index */
	__atomic_store_n(&vq->avail->idx, vq->avail_idx, __ATOMIC_RELEASE);
	/* 2.7.13.4 / 2.7.7: our index store before the read of the device's flags */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return !(__atomic_load_n(&vq->used->flags, __ATOMIC_RELAXED) & VRING_USED_F_NO_NOTIFY);
}

bool vp_vq_interrupts_on(struct vp_vq *vq)
{
	__atomic_store_n(&vq->avail->flags, 0, __ATOMIC_RELAXED);
	/* our flag store before the read of the device's index (the mirror of
	 * vp_vq_publish()'s rule), so the device sees the flag or we see its entry */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(&vq->used->idx, __ATOMIC_RELAXED) != vq->last_used) {
		vp_vq_interrupts_off(vq);
		return false;
	}
	return true;
}

void vp_vq_interrupts_off(struct vp_vq *vq)
{
	__atomic_store_n(&vq->avail->flags, VRING_AVAIL_F_NO_INTERRUPT, __ATOMIC_RELAXED);
}

int vp_vq_used(struct vp_vq *vq, uint16_t *ids, uint32_t *lens, unsigned max)
{
	/* acquire: the entries the index covers are read after it (2.7.14) */
	uint16_t idx = __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
	uint16_t n = (uint16_t)(idx - vq->last_used);

	if (n > vq->n_inflight)
		return vp_vq_break(vq, "device: used index %u is %u entries ahead of %u, with %u buffers in flight", idx,
				   n, vq->last_used, vq->n_inflight);
	if (n > max)
		n = (uint16_t)max;
	for (unsigned i = 0; i < n; i++) {
		const struct vring_used_elem *e = &vq->used->ring[(uint16_t)(vq->last_used + i) & (vq->size - 1)];
		/* each word read once: the device may be rewriting them */
		uint32_t id = __atomic_load_n(&e->id, __ATOMIC_RELAXED);
		uint32_t len = __atomic_load_n(&e->len, __ATOMIC_RELAXED);

		if (id >= vq->size)
			return vp_vq_break(vq, "device: used id %u out of range (ring size %u)", id, vq->size);
		if (!vq->inflight[id])
			return vp_vq_break(vq, "device: used id %u was not handed to the device", id);
		if (vq->device_writes && len > vq->buf_size)
			return vp_vq_break(vq, "device: used length %u over the %u-byte buffer %u", len, vq->buf_size, id);
		/* claimed now, so a duplicate later in this burst is caught as not in flight */
		vq->inflight[id] = 0;
		ids[i] = (uint16_t)id;
		if (lens)
			lens[i] = len;
	}
	vq->last_used = (uint16_t)(vq->last_used + n);
	vq->n_inflight = (uint16_t)(vq->n_inflight - n);
	return n;
}
