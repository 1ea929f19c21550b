// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The vfio port's pure parts (lib/datapath/virtio-pci.c): the virtio
 * capability walk on config-space blobs laid out as QEMU's virtio-net-pci
 * lays them out, and broken ones (loops, capabilities outside config space
 * or their BAR); feature choice; and the driver-owned split rings against
 * a device played by the test, well-behaved and hostile (used index too far
 * ahead, ids out of range or not the device's, duplicates, oversized
 * lengths), where the ring must end up broken with the rule named.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/pci_regs.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>

#include <iovkit/datapath.h>
#include <iovkit/vfio.h>

#include "lib/datapath/virtio-pci.h"

/* ---- capabilities ---- */

static uint8_t cfg[VP_CFG_SIZE];
static const uint64_t bars[VP_BAR_COUNT] = { 0, 0x1000, 0, 0, 0x4000, 0 };
static char err[256];

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void vcap(unsigned pos, unsigned next, unsigned type, unsigned bar, uint32_t off, uint32_t len, unsigned cap_len)
{
	cfg[pos] = PCI_CAP_ID_VNDR;
	cfg[pos + 1] = (uint8_t)next;
	cfg[pos + 2] = (uint8_t)cap_len;
	cfg[pos + 3] = (uint8_t)type;
	cfg[pos + 4] = (uint8_t)bar;
	put32(cfg + pos + 8, off);
	put32(cfg + pos + 12, len);
}

/* QEMU 7.2's virtio-net-pci (modern only): MSI-X at 0x98, then the virtio structures in BAR4 */
static void qemu_layout(void)
{
	memset(cfg, 0, sizeof(cfg));
	cfg[PCI_STATUS] = PCI_STATUS_CAP_LIST;
	cfg[PCI_CAPABILITY_LIST] = 0x98;
	cfg[0x98] = PCI_CAP_ID_MSIX;
	cfg[0x99] = 0x84;
	vcap(0x84, 0x70, VIRTIO_PCI_CAP_PCI_CFG, 0, 0, 0, 20);
	vcap(0x70, 0x60, VIRTIO_PCI_CAP_NOTIFY_CFG, 4, 0x3000, 0x1000, 20);
	put32(cfg + 0x70 + 16, 4);
	vcap(0x60, 0x50, VIRTIO_PCI_CAP_DEVICE_CFG, 4, 0x2000, 0x1000, 16);
	vcap(0x50, 0x40, VIRTIO_PCI_CAP_ISR_CFG, 4, 0x1000, 0x1000, 16);
	vcap(0x40, 0, VIRTIO_PCI_CAP_COMMON_CFG, 4, 0, 0x1000, 16);
}

Test(virtio_pci, caps_qemu_layout)
{
	struct vp_caps c;

	qemu_layout();
	cr_assert_eq(vp_caps_parse(cfg, sizeof(cfg), bars, &c, err, sizeof(err)), 0, "%s", err);
	cr_assert(c.common.present && c.common.bar == 4 && c.common.offset == 0 && c.common.length == 0x1000);
	cr_assert(c.notify.present && c.notify.offset == 0x3000);
	cr_assert_eq(c.notify_off_multiplier, 4);
	cr_assert(c.isr.present && c.isr.offset == 0x1000);
	cr_assert(c.device.present && c.device.offset == 0x2000 && c.device.cap_offset == 0x60);
}

Test(virtio_pci, caps_first_usable_instance_wins)
{
	struct vp_caps c;

	qemu_layout();
	/* a second common structure after the first is an alternative, not a replacement */
	cfg[0x41] = 0xa8;
	vcap(0xa8, 0, VIRTIO_PCI_CAP_COMMON_CFG, 1, 0x100, 0x100, 16);
	cr_assert_eq(vp_caps_parse(cfg, sizeof(cfg), bars, &c, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(c.common.bar, 4);
	/* one with a reserved BAR value is skipped (4.1.4), the next one taken */
	qemu_layout();
	cfg[0x40 + 4] = 7;
	cfg[0x41] = 0xa8;
	vcap(0xa8, 0, VIRTIO_PCI_CAP_COMMON_CFG, 1, 0x100, 0x100, 16);
	cr_assert_eq(vp_caps_parse(cfg, sizeof(cfg), bars, &c, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(c.common.bar, 1);
	cr_assert_eq(c.common.offset, 0x100);
}

Test(virtio_pci, caps_not_modern)
{
	struct vp_caps c;

	qemu_layout();
	cfg[PCI_STATUS] = 0;
	cr_assert_eq(vp_caps_parse(cfg, sizeof(cfg), bars, &c, err, sizeof(err)), -ENODEV);
	/* a transitional device without the notify structure */
	qemu_layout();
	cfg[0x84 + 1] = 0x60;
	cr_assert_eq(vp_caps_parse(cfg, sizeof(cfg), bars, &c, err, sizeof(err)), -ENODEV);
	cr_assert(strstr(err, "notify"), "%s", err);
	cr_assert_eq(vp_caps_parse(cfg, 32, bars, &c, err, sizeof(err)), -EBADMSG);
}

Test(virtio_pci, caps_hostile)
{
	struct vp_caps c;

	/* a loop back to an earlier capability */
	qemu_layout();
	cfg[0x41] = 0x70;
	cr_assert_eq(vp_caps_parse(cfg, sizeof(cfg), bars, &c, err, sizeof(err)), -ELOOP);
	/* a capability pointing to itself */
	qemu_layout();
	cfg[0x41] = 0x40;
	cr_assert_eq(vp_caps_parse(cfg, sizeof(cfg), bars, &c, err, sizeof(err)), -ELOOP);
	/* into the header */
	qemu_layout();
	cfg[PCI_CAPABILITY_LIST] = 0x10;
	cr_assert_eq(vp_caps_parse(cfg, sizeof(cfg), bars, &c, err, sizeof(err)), -EBADMSG);
	/* a vendor capability running past config space */
	qemu_layout();
	cfg[0x41] = 0xf8;
	cfg[0xf8] = PCI_CAP_ID_VNDR;
	cfg[0xfa] = 16;
	cfg[0xfb] = VIRTIO_PCI_CAP_DEVICE_CFG;
	cr_assert_eq(vp_caps_parse(cfg, sizeof(cfg), bars, &c, err, sizeof(err)), -EBADMSG);
	/* cap_len shorter than struct virtio_pci_cap, and a notify capability without its multiplier */
	qemu_layout();
	cfg[0x50 + 2] = 8;
	cr_assert_eq(vp_caps_parse(cfg, sizeof(cfg), bars, &c, err, sizeof(err)), -EBADMSG);
	qemu_layout();
	cfg[0x70 + 2] = 16;
	cr_assert_eq(vp_caps_parse(cfg, sizeof(cfg), bars, &c, err, sizeof(err)), -EBADMSG);
	/* a structure outside its BAR, one wrapping past 4 GiB, one in a BAR that does not exist */
	qemu_layout();
	put32(cfg + 0x70 + 8, 0x3800);
	cr_assert_eq(vp_caps_parse(cfg, sizeof(cfg), bars, &c, err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "outside the BAR"), "%s", err);
	qemu_layout();
	put32(cfg + 0x40 + 8, 0xfffff000);
	cr_assert_eq(vp_caps_parse(cfg, sizeof(cfg), bars, &c, err, sizeof(err)), -EBADMSG);
	qemu_layout();
	cfg[0x40 + 4] = 2;
	cr_assert_eq(vp_caps_parse(cfg, sizeof(cfg), bars, &c, err, sizeof(err)), -EBADMSG);
	/* a common structure too short to hold the queue registers */
	qemu_layout();
	put32(cfg + 0x40 + 12, 32);
	cr_assert_eq(vp_caps_parse(cfg, sizeof(cfg), bars, &c, err, sizeof(err)), -EBADMSG);
}

Test(virtio_pci, caps_every_pointer)
{
	struct vp_caps c;

	/* whatever the list holds, the walk ends within bounds */
	for (unsigned v = 0; v < 256; v++) {
		qemu_layout();
		cfg[0x61] = (uint8_t)v;
		int r = vp_caps_parse(cfg, sizeof(cfg), bars, &c, err, sizeof(err));
		cr_assert(r == 0 || r == -EBADMSG || r == -ELOOP || r == -ENODEV, "next 0x%02x: %d", v, r);
	}
}

/* ---- features and specs ---- */

Test(virtio_pci, features)
{
	uint64_t f, qemu = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_ACCESS_PLATFORM) | (1ull << 5) |
			   (1ull << 15) | (1ull << 16) | (1ull << 17) | (1ull << 22) | (1ull << 29) | (1ull << 0) |
			   (1ull << VIRTIO_F_RING_PACKED);

	cr_assert_eq(vp_net_features(qemu, 1, &f, err, sizeof(err)), 0);
	cr_assert_eq(f, (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_ACCESS_PLATFORM) | (1ull << 5) | (1ull << 16));
	cr_assert_eq(vp_net_features(qemu & ~(1ull << VIRTIO_F_VERSION_1), 1, &f, err, sizeof(err)), -EOPNOTSUPP);
	cr_assert(strstr(err, "VERSION_1"), "%s", err);
	/* QEMU's virtio-net-pci without iommu_platform=on: it would bypass the IOMMU */
	err[0] = 0;
	cr_assert_eq(vp_net_features(qemu & ~(1ull << VIRTIO_F_ACCESS_PLATFORM), 1, &f, err, sizeof(err)), -EOPNOTSUPP);
	cr_assert(strstr(err, "VIRTIO_F_ACCESS_PLATFORM"), "%s", err);
	/* more than one pair: MQ and CTRL_VQ taken, and only then */
	cr_assert_eq(vp_net_features(qemu, 2, &f, err, sizeof(err)), 0);
	cr_assert_eq(f, (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_ACCESS_PLATFORM) | (1ull << 5) | (1ull << 16) |
			       (1ull << 17) | (1ull << 22));
	err[0] = 0;
	cr_assert_eq(vp_net_features(qemu & ~(1ull << 22), 2, &f, err, sizeof(err)), -EOPNOTSUPP);
	cr_assert(strstr(err, "VIRTIO_NET_F_MQ"), "%s", err);
	err[0] = 0;
	cr_assert_eq(vp_net_features(qemu & ~(1ull << 17), 2, &f, err, sizeof(err)), -EOPNOTSUPP);
	cr_assert(strstr(err, "VIRTIO_NET_F_CTRL_VQ"), "%s", err);
}

Test(virtio_pci, mq_config_is_checked)
{
	uint16_t ctrl = 0;

	/* QEMU's virtio-net-pci with queues=4: 4 pairs, 9 virtqueues, control queue 8 */
	cr_assert_eq(vp_net_mq_check(4, 9, 2, &ctrl, err, sizeof(err)), 0);
	cr_assert_eq(ctrl, 8);
	cr_assert_eq(vp_net_mq_check(4, 9, 4, &ctrl, err, sizeof(err)), 0);
	cr_assert_eq(vp_net_mq_check(0x7fff, 0xffff, 16, &ctrl, err, sizeof(err)), 0);
	cr_assert_eq(ctrl, 0xfffe);
	/* the spec's largest, 0x8000 pairs, needs virtqueue 0x10000: num_queues (le16) cannot have it */
	cr_assert_eq(vp_net_mq_check(0x8000, 0xffff, 16, &ctrl, err, sizeof(err)), -EPROTO);
	/* fewer pairs than asked */
	err[0] = 0;
	cr_assert_eq(vp_net_mq_check(2, 5, 3, &ctrl, err, sizeof(err)), -EOPNOTSUPP);
	cr_assert(strstr(err, "3 queue pairs asked: the device has 2"), "%s", err);
	/* hostile: outside the spec's range, or a control queue that is not there */
	ctrl = 77;
	cr_assert_eq(vp_net_mq_check(0, 9, 2, &ctrl, err, sizeof(err)), -EPROTO);
	cr_assert_eq(vp_net_mq_check(0x8001, 0xffff, 2, &ctrl, err, sizeof(err)), -EPROTO);
	cr_assert_eq(vp_net_mq_check(4, 8, 2, &ctrl, err, sizeof(err)), -EPROTO);
	cr_assert(strstr(err, "has 8 virtqueues"), "%s", err);
	cr_assert_eq(vp_net_mq_check(0xffff, 0xffff, 2, &ctrl, err, sizeof(err)), -EPROTO);
	cr_assert_eq(ctrl, 77, "untouched on failure");
}

Test(virtio_pci, port_spec_mode)
{
	struct iovk_dp_port_spec s = IOVK_DP_PORT_SPEC_INIT;

	cr_assert_eq(iovk_dp_port_spec_parse("vfio:0000:01:00.0,mode=iommufd", &s), 0);
	cr_assert_eq(s.kind, IOVK_DP_PORT_VFIO);
	cr_assert_eq(s.vfio_mode, IOVK_VFIO_MODE_IOMMUFD);
	cr_assert_eq(iovk_dp_port_spec_parse("vfio:0000:01:00.0", &s), 0);
	cr_assert_eq(s.vfio_mode, IOVK_VFIO_MODE_AUTO);
	cr_assert_eq(iovk_dp_port_spec_parse("vfio:0000:01:00.0,mode=vdpa", &s), -EINVAL);
	cr_assert_eq(iovk_dp_port_spec_parse("tap:t0,mode=container", &s), -EINVAL);
	/* the address is checked with the spec, before any VFIO object is opened for it */
	cr_assert_eq(iovk_dp_port_spec_parse("vfio:zz", &s), -EINVAL);
	cr_assert_eq(iovk_dp_port_spec_parse("vfio:0000:01:00.8", &s), -EINVAL);
	cr_assert_eq(iovk_dp_port_spec_parse("vfio:01:00.0,queues=2", &s), 0);
}

Test(virtio_pci, ring_sizes)
{
	cr_assert_eq(vp_vq_pick_size(256, 256), 256);
	cr_assert_eq(vp_vq_pick_size(1024, 256), 256);
	cr_assert_eq(vp_vq_pick_size(100, 256), 64);
	cr_assert_eq(vp_vq_pick_size(32768, 32768), VP_VQ_MAX);
	cr_assert_eq(vp_vq_pick_size(0, 256), 0);
	cr_assert_eq(vp_vq_pick_size(1, 256), 1);

	struct vp_vq_layout l;

	vp_vq_layout(256, 4096, &l);
	cr_assert_eq(l.avail_off, 4096);
	cr_assert_eq(l.driver_size, 8192);
	cr_assert_eq(l.device_size, 4096);
	cr_assert_eq(l.avail_off % 2, 0);
}

/* ---- driver-owned rings against a test device ---- */

#define QSZ 8u
#define BUF 2048u
#define IOVA 0x100000ull

static struct vp_vq vq;
static struct vp_vq_layout lay;
static uint8_t *drv, *dev;
static uint16_t dev_last_avail;

static void ring_setup(bool device_writes)
{
	vp_vq_layout(QSZ, 4096, &lay);
	drv = aligned_alloc(4096, lay.driver_size);
	dev = aligned_alloc(4096, lay.device_size);
	memset(&vq, 0, sizeof(vq));
	vp_vq_init(&vq, QSZ, drv, dev, &lay, IOVA, BUF, device_writes);
	dev_last_avail = 0;
}

static void ring_teardown(void)
{
	free(drv);
	free(dev);
}

/* The device takes the next available id. */
static uint16_t dev_take(void)
{
	cr_assert_neq(vq.avail->idx, dev_last_avail, "nothing available");
	return vq.avail->ring[dev_last_avail++ % QSZ];
}

/* The device returns an id with a length, publishing it. */
static void dev_used(uint32_t id, uint32_t len)
{
	uint16_t i = vq.used->idx;

	vq.used->ring[i % QSZ] = (struct vring_used_elem){ .id = id, .len = len };
	vq.used->idx = (uint16_t)(i + 1);
}

Test(virtio_pci, rx_ring_round_trip)
{
	uint16_t ids[QSZ];
	uint32_t lens[QSZ];

	ring_setup(true);
	cr_assert_eq(vq.avail->flags, VRING_AVAIL_F_NO_INTERRUPT);
	for (unsigned i = 0; i < QSZ; i++) {
		cr_assert_eq(vq.desc[i].addr, IOVA + i * BUF);
		cr_assert_eq(vq.desc[i].flags, VRING_DESC_F_WRITE);
	}
	for (int id; (id = vp_vq_get_free(&vq)) >= 0;)
		vp_vq_post(&vq, (uint16_t)id, 0);
	cr_assert(vp_vq_publish(&vq), "a device that did not say NO_NOTIFY wants a kick");
	cr_assert_eq(vq.avail->idx, QSZ);
	cr_assert_eq(vp_vq_used(&vq, ids, lens, QSZ), 0);
	/* many laps: indices wrap past 65535 */
	for (unsigned lap = 0; lap < 70000 / QSZ; lap++) {
		for (unsigned k = 0; k < 3; k++)
			dev_used(dev_take(), 60 + k);
		cr_assert_eq(vp_vq_used(&vq, ids, lens, 2), 2);
		cr_assert_eq(lens[1], 61);
		cr_assert_eq(vp_vq_used(&vq, ids + 2, lens + 2, QSZ), 1);
		for (unsigned k = 0; k < 3; k++)
			vp_vq_post(&vq, ids[k], 0);
		vp_vq_publish(&vq);
	}
	cr_assert_not(vq.broken);
	vq.used->flags = VRING_USED_F_NO_NOTIFY;
	cr_assert_not(vp_vq_publish(&vq), "the device said it polls");
	ring_teardown();
}

Test(virtio_pci, ctrl_queue_posts_one_chain_and_takes_back_only_it)
{
	uint16_t id;
	uint32_t len;

	vp_vq_layout(QSZ, 4096, &lay);
	drv = aligned_alloc(4096, lay.driver_size);
	dev = aligned_alloc(4096, lay.device_size);
	memset(&vq, 0, sizeof(vq));
	vp_ctrl_init(&vq, QSZ, drv, dev, &lay, 0x5000, 0x6000);
	/* the command the device reads, chained to the ack byte it writes */
	cr_assert_eq(vq.desc[0].addr, 0x5000);
	cr_assert_eq(vq.desc[0].flags, VRING_DESC_F_NEXT);
	cr_assert_eq(vq.desc[0].next, 1);
	cr_assert_eq(vq.desc[1].addr, 0x6000);
	cr_assert_eq(vq.desc[1].len, 1);
	cr_assert_eq(vq.desc[1].flags, VRING_DESC_F_WRITE);
	cr_assert_eq(vp_vq_get_free(&vq), 0);
	cr_assert_eq(vp_vq_get_free(&vq), -1, "one command in flight at a time");
	for (unsigned round = 0; round < 3; round++) {
		vp_vq_post(&vq, 0, 4);
		cr_assert_eq(vq.desc[0].len, 4);
		vp_vq_publish(&vq);
		cr_assert_eq(vq.avail->ring[round % QSZ], 0);
		cr_assert_eq(vp_vq_used(&vq, &id, &len, 1), 0, "nothing answered yet");
		vq.used->ring[round % QSZ] = (struct vring_used_elem){ .id = 0, .len = 1 };
		vq.used->idx = (uint16_t)(round + 1);
		cr_assert_eq(vp_vq_used(&vq, &id, &len, 1), 1);
		cr_assert_eq(id, 0);
		vp_vq_put_free(&vq, id);
		cr_assert_eq(vp_vq_get_free(&vq), 0);
	}
	/* hostile: the device answers with the ack's descriptor, which was never a head */
	vp_vq_post(&vq, 0, 4);
	vp_vq_publish(&vq);
	vq.used->ring[3] = (struct vring_used_elem){ .id = 1, .len = 1 };
	vq.used->idx = 4;
	cr_assert_eq(vp_vq_used(&vq, &id, &len, 1), -EPROTO);
	cr_assert(vq.broken);
	cr_assert(strstr(vq.broken_reason, "used id 1 was not handed to the device"), "%s", vq.broken_reason);
	ring_teardown();
}

Test(virtio_pci, interrupts_armed_only_when_nothing_is_pending)
{
	uint16_t ids[QSZ];
	uint32_t lens[QSZ];

	ring_setup(true);
	for (int id; (id = vp_vq_get_free(&vq)) >= 0;)
		vp_vq_post(&vq, (uint16_t)id, 0);
	vp_vq_publish(&vq);
	cr_assert(vp_vq_interrupts_on(&vq), "an empty ring sleeps");
	cr_assert_eq(vq.avail->flags, 0, "the device is asked to interrupt");
	vp_vq_interrupts_off(&vq);
	cr_assert_eq(vq.avail->flags, VRING_AVAIL_F_NO_INTERRUPT);
	/* an entry the device added before it could see the flag: no interrupt would come */
	dev_used(dev_take(), 60);
	cr_assert_not(vp_vq_interrupts_on(&vq), "a pending entry keeps the worker polling");
	cr_assert_eq(vq.avail->flags, VRING_AVAIL_F_NO_INTERRUPT, "and the flag is back");
	cr_assert_eq(vp_vq_used(&vq, ids, lens, QSZ), 1);
	cr_assert(vp_vq_interrupts_on(&vq), "taken: empty again");
	ring_teardown();
}

Test(virtio_pci, tx_ring_free_list)
{
	uint16_t ids[QSZ];
	int id;

	ring_setup(false);
	cr_assert_eq(vq.desc[0].flags, 0);
	for (unsigned i = 0; i < QSZ; i++) {
		id = vp_vq_get_free(&vq);
		cr_assert_eq(id, (int)i, "buffer %u handed out first", i);
		vp_vq_post(&vq, (uint16_t)id, 100 + i);
	}
	cr_assert_eq(vp_vq_get_free(&vq), -1, "all in flight");
	cr_assert_eq(vq.desc[3].len, 103);
	vp_vq_publish(&vq);
	/* completed out of order: the device may */
	dev_take();
	dev_take();
	dev_used(1, 0);
	dev_used(0, 0);
	cr_assert_eq(vp_vq_used(&vq, ids, NULL, QSZ), 2);
	cr_assert_eq(ids[0], 1);
	vp_vq_put_free(&vq, ids[0]);
	vp_vq_put_free(&vq, ids[1]);
	cr_assert_eq(vp_vq_get_free(&vq), 0);
	cr_assert_not(vq.broken);
	ring_teardown();
}

static void rx_all_posted(void)
{
	ring_setup(true);
	for (int id; (id = vp_vq_get_free(&vq)) >= 0;)
		vp_vq_post(&vq, (uint16_t)id, 0);
	vp_vq_publish(&vq);
}

Test(virtio_pci, hostile_used_index_ahead)
{
	uint16_t ids[QSZ];

	rx_all_posted();
	vq.used->idx = QSZ + 1;
	cr_assert_eq(vp_vq_used(&vq, ids, NULL, QSZ), -EPROTO);
	cr_assert(vq.broken);
	cr_assert(strstr(vq.broken_reason, "ahead"), "%s", vq.broken_reason);
	cr_assert_eq(vq.n_broken, 1);
	ring_teardown();
}

Test(virtio_pci, hostile_used_more_than_in_flight)
{
	uint16_t ids[QSZ];

	ring_setup(false);
	vp_vq_post(&vq, (uint16_t)vp_vq_get_free(&vq), 64);
	vp_vq_publish(&vq);
	/* one buffer given, two returned */
	dev_used(0, 0);
	dev_used(0, 0);
	cr_assert_eq(vp_vq_used(&vq, ids, NULL, QSZ), -EPROTO);
	cr_assert(vq.broken);
	ring_teardown();
}

Test(virtio_pci, hostile_used_id_out_of_range)
{
	uint16_t ids[QSZ];
	uint32_t lens[QSZ];

	rx_all_posted();
	dev_used(QSZ, 64);
	cr_assert_eq(vp_vq_used(&vq, ids, lens, QSZ), -EPROTO);
	cr_assert(strstr(vq.broken_reason, "out of range"), "%s", vq.broken_reason);
	ring_teardown();
}

Test(virtio_pci, hostile_used_id_twice)
{
	uint16_t ids[QSZ];
	uint32_t lens[QSZ];

	rx_all_posted();
	dev_used(2, 64);
	dev_used(2, 64);
	cr_assert_eq(vp_vq_used(&vq, ids, lens, QSZ), -EPROTO);
	cr_assert(strstr(vq.broken_reason, "not handed"), "%s", vq.broken_reason);
	ring_teardown();
}

Test(virtio_pci, hostile_used_id_already_returned)
{
	uint16_t ids[QSZ];
	uint32_t lens[QSZ];

	rx_all_posted();
	dev_used(5, 64);
	cr_assert_eq(vp_vq_used(&vq, ids, lens, QSZ), 1);
	/* the driver still holds buffer 5: the device returns it again */
	dev_used(5, 64);
	cr_assert_eq(vp_vq_used(&vq, ids, lens, QSZ), -EPROTO);
	ring_teardown();
}

Test(virtio_pci, hostile_used_len_over_buffer)
{
	uint16_t ids[QSZ];
	uint32_t lens[QSZ];

	rx_all_posted();
	dev_used(0, BUF);
	cr_assert_eq(vp_vq_used(&vq, ids, lens, QSZ), 1, "a full buffer is fine");
	dev_used(1, BUF + 1);
	cr_assert_eq(vp_vq_used(&vq, ids, lens, QSZ), -EPROTO);
	cr_assert(strstr(vq.broken_reason, "length"), "%s", vq.broken_reason);
	/* a transmit queue's length is the device's business: ignored */
	ring_teardown();
	ring_setup(false);
	vp_vq_post(&vq, (uint16_t)vp_vq_get_free(&vq), 64);
	vp_vq_publish(&vq);
	dev_used(0, 0xffffffffu);
	cr_assert_eq(vp_vq_used(&vq, ids, NULL, QSZ), 1);
	ring_teardown();
}

Test(virtio_pci, reinit_keeps_the_count)
{
	uint16_t ids[QSZ];

	rx_all_posted();
	dev_used(QSZ + 3, 0);
	cr_assert_eq(vp_vq_used(&vq, ids, NULL, QSZ), -EPROTO);
	/* the port resets the device and sets the ring up again */
	vp_vq_init(&vq, QSZ, drv, dev, &lay, IOVA, BUF, true);
	cr_assert_not(vq.broken);
	cr_assert_eq(vq.n_broken, 1);
	cr_assert_eq(vq.used->idx, 0);
	cr_assert_eq(vq.n_free, QSZ);
	ring_teardown();
}
