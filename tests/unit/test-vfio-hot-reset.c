// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * VFIO_DEVICE_GET_PCI_HOT_RESET_INFO answers, crafted: who a hot reset
 * would reset and whether the asking address space owns each function,
 * with group ids (the container) and with devids (a cdev on iommufd).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <string.h>

#include <linux/vfio.h>

#include <iovkit/vfio.h>

/* The kernel's values (include/uapi/linux/vfio.h, 6.6+); the 6.1 headers lack them. */
#define DEV_ID (1u << 0)
#define DEV_ID_OWNED (1u << 1)
#define DEVID_OWNED 0u
#define DEVID_NOT_OWNED 0xffffffffu

struct answer {
	struct vfio_pci_hot_reset_info hdr;
	struct vfio_pci_dependent_device dev[8];
};

static size_t answer(struct answer *a, uint32_t flags, uint32_t count)
{
	memset(a, 0, sizeof(*a));
	a->hdr = (struct vfio_pci_hot_reset_info){ .argsz = sizeof(*a), .flags = flags, .count = count };
	return sizeof(a->hdr) + count * sizeof(a->dev[0]);
}

static void put(struct answer *a, unsigned i, uint32_t id, uint8_t bus, uint8_t dev, uint8_t fn)
{
	a->dev[i] = (struct vfio_pci_dependent_device){
		.group_id = id, .segment = 0, .bus = bus, .devfn = (uint8_t)(dev << 3 | fn)
	};
}

Test(vfio_hot_reset, group_ids_owned_by_held_groups)
{
	/* an NVMe PF (group 12) and two VFs (13, 14) on one bus; the container holds group 13 */
	struct iovk_vfio_hot_reset_info info = {};
	const int held[] = { 9, 13 };
	struct answer a;
	size_t size = answer(&a, 0, 3);

	put(&a, 0, 12, 4, 0, 0);
	put(&a, 1, 13, 4, 0, 1);
	put(&a, 2, 14, 4, 0, 2);
	cr_assert_eq(iovk_vfio_parse_hot_reset_info(&a, size, held, 2, &info), 0);
	cr_assert_eq(info.n_devices, 3);
	cr_expect_eq(info.flags, 0);
	cr_expect_str_eq(info.devices[0].address, "0000:04:00.0");
	cr_expect_str_eq(info.devices[2].address, "0000:04:00.2");
	cr_expect_eq(info.devices[0].iommu_group, 12);
	cr_expect_eq(info.devices[1].iommu_group, 13);
	cr_expect(!info.devices[0].owned);
	cr_expect(info.devices[1].owned);
	cr_expect(!info.devices[2].owned);
	cr_expect_eq(info.devices[1].devid, -1);
	cr_expect_str_eq(info.devices[1].driver, "", "the parser leaves the driver to sysfs");
	cr_expect_eq(info.n_unowned, 2);
	iovk_vfio_hot_reset_info_clear(&info);
	cr_expect_null(info.devices);
	cr_expect_eq(info.n_devices, 0);

	/* nothing held: nothing owned */
	cr_assert_eq(iovk_vfio_parse_hot_reset_info(&a, size, NULL, 0, &info), 0);
	cr_expect_eq(info.n_unowned, 3);
	iovk_vfio_hot_reset_info_clear(&info);
	iovk_vfio_hot_reset_info_clear(NULL);
}

Test(vfio_hot_reset, devids_from_iommufd)
{
	/* 6.6+ with a cdev: devids, ownership decided by the kernel */
	struct iovk_vfio_hot_reset_info info = {};
	const int held[] = { 12, 13, 14 }; /* ignored with devids */
	struct answer a;
	size_t size = answer(&a, DEV_ID, 3);

	put(&a, 0, DEVID_NOT_OWNED, 4, 0, 0);
	put(&a, 1, 7, 4, 0, 1);
	put(&a, 2, DEVID_OWNED, 4, 0, 2);
	cr_assert_eq(iovk_vfio_parse_hot_reset_info(&a, size, held, 3, &info), 0);
	cr_expect_eq(info.flags, IOVK_VFIO_HOT_RESET_BY_DEVID);
	cr_expect(!info.devices[0].owned);
	cr_expect_eq(info.devices[0].devid, -1);
	cr_expect(info.devices[1].owned);
	cr_expect_eq(info.devices[1].devid, 7);
	cr_expect(info.devices[2].owned, "owned through the IOMMU group of a bound device");
	cr_expect_eq(info.devices[2].devid, 0);
	for (size_t i = 0; i < 3; i++)
		cr_expect_eq(info.devices[i].iommu_group, -1, "a devid says nothing of the group");
	cr_expect_eq(info.n_unowned, 1);
	iovk_vfio_hot_reset_info_clear(&info);

	/* all owned: the kernel's summary flag comes through */
	size = answer(&a, DEV_ID | DEV_ID_OWNED, 1);
	put(&a, 0, 3, 1, 0, 0);
	cr_assert_eq(iovk_vfio_parse_hot_reset_info(&a, size, NULL, 0, &info), 0);
	cr_expect_eq(info.flags, IOVK_VFIO_HOT_RESET_BY_DEVID | IOVK_VFIO_HOT_RESET_DEVID_OWNED);
	cr_expect_eq(info.n_unowned, 0);
	iovk_vfio_hot_reset_info_clear(&info);
}

Test(vfio_hot_reset, addresses_from_segment_bus_devfn)
{
	struct iovk_vfio_hot_reset_info info = {};
	struct answer a;
	size_t size = answer(&a, 0, 1);

	a.dev[0] = (struct vfio_pci_dependent_device){ .group_id = 1, .segment = 0x10, .bus = 0xab,
						       .devfn = 0x1f << 3 | 7 };
	cr_assert_eq(iovk_vfio_parse_hot_reset_info(&a, size, (const int[]){ 1 }, 1, &info), 0);
	cr_expect_str_eq(info.devices[0].address, "0010:ab:1f.7");
	cr_expect(info.devices[0].owned);
	iovk_vfio_hot_reset_info_clear(&info);
}

Test(vfio_hot_reset, malformed_answers)
{
	struct iovk_vfio_hot_reset_info info = { .n_devices = 42 };
	struct answer a;
	size_t size = answer(&a, 0, 2);

	put(&a, 0, 1, 1, 0, 0);
	put(&a, 1, 2, 1, 0, 1);
	/* shorter than the header, or than its count */
	cr_expect_eq(iovk_vfio_parse_hot_reset_info(&a, sizeof(a.hdr) - 1, NULL, 0, &info), -EBADMSG);
	cr_expect_eq(iovk_vfio_parse_hot_reset_info(&a, size - 1, NULL, 0, &info), -EBADMSG);
	cr_expect_eq(iovk_vfio_parse_hot_reset_info(&a, sizeof(a.hdr), NULL, 0, &info), -EBADMSG);
	/* no device at all: the kernel always names at least the one asked about */
	a.hdr.count = 0;
	cr_expect_eq(iovk_vfio_parse_hot_reset_info(&a, size, NULL, 0, &info), -EBADMSG);
	/* more than we accept, whatever the buffer */
	a.hdr.count = IOVK_VFIO_HOT_RESET_DEVICES_MAX + 1;
	cr_expect_eq(iovk_vfio_parse_hot_reset_info(&a, size, NULL, 0, &info), -E2BIG);
	/* a group id that no int holds */
	a.hdr.count = 2;
	a.dev[1].group_id = (uint32_t)INT_MAX + 1;
	cr_expect_eq(iovk_vfio_parse_hot_reset_info(&a, size, NULL, 0, &info), -EBADMSG);
	/* the same value is a devid's NOT_OWNED neighbour, fine with devids */
	a.hdr.flags = DEV_ID;
	cr_assert_eq(iovk_vfio_parse_hot_reset_info(&a, size, NULL, 0, &info), 0);
	cr_expect_eq(info.devices[1].devid, (int64_t)INT_MAX + 1);
	iovk_vfio_hot_reset_info_clear(&info);
	/* failures leave the result untouched */
	info.n_devices = 42;
	cr_expect_eq(iovk_vfio_parse_hot_reset_info(&a, 3, NULL, 0, &info), -EBADMSG);
	cr_expect_eq(info.n_devices, 42);
}
