// SPDX-License-Identifier: GPL-2.0-or-later
/* Device inventory, IOMMU groups and host state read from fixture hosts. */
#include <systemd/sd-hwdb.h>

#include "fixture.h"

static struct iovk_device *dev(struct iovk_ctx *ctx, const char *bdf)
{
	struct iovk_device *d = NULL;
	int r = iovk_device_new(ctx, bdf, &d);

	cr_assert_eq(r, 0, "reading %s: %d (%s)", bdf, r, iovk_ctx_get_error(ctx));
	return d;
}

Test(inventory, sriov_pf_and_vfs)
{
	struct iovk_ctx *ctx = fixture_ctx("sriov-nic");
	struct iovk_device *pf = dev(ctx, "01:00.0"), *vf;
	const char *const *vfs = iovk_device_get_vfs(pf);

	cr_assert_str_eq(iovk_device_get_address(pf), "0000:01:00.0");
	cr_assert_eq(iovk_device_get_vendor_id(pf), 0x8086);
	cr_assert_eq(iovk_device_get_device_id(pf), 0x10fb);
	cr_assert_eq(iovk_device_get_class(pf), 0x020000);
	cr_assert_str_eq(iovk_device_get_driver(pf), "ixgbe");
	cr_assert_null(iovk_device_get_driver_override(pf));
	cr_assert_eq(iovk_device_get_numa_node(pf), 0);
	cr_assert_eq(iovk_device_get_iommu_group(pf), 3);
	cr_assert_eq(iovk_device_get_sriov_totalvfs(pf), 63);
	cr_assert_eq(iovk_device_get_sriov_numvfs(pf), 2);
	cr_assert_str_eq(vfs[0], "0000:01:10.0");
	cr_assert_str_eq(vfs[1], "0000:01:10.2");
	cr_assert_null(vfs[2]);
	cr_assert_str_eq(iovk_device_get_netdevs(pf)[0], "enp1s0f0");
	cr_assert_null(iovk_device_get_physfn(pf));
	cr_assert_str_eq(iovk_device_get_parent(pf), "0000:00:01.0");
	cr_assert_not(iovk_device_is_bridge(pf));
	cr_assert_str_eq(iovk_device_get_vendor_name(pf), "Intel Corporation");
	cr_assert_not_null(iovk_device_get_device_name(pf));
	cr_assert_str_eq(iovk_device_get_class_name(pf), "Ethernet controller");

	vf = dev(ctx, "0000:01:10.2");
	cr_assert_str_eq(iovk_device_get_physfn(vf), "0000:01:00.0");
	cr_assert_str_eq(iovk_device_get_driver(vf), "vfio-pci");
	cr_assert_str_eq(iovk_device_get_driver_override(vf), "vfio-pci");
	cr_assert_eq(iovk_device_get_sriov_numvfs(vf), -1);
	cr_assert_null(iovk_device_get_vfs(vf)[0]);
	cr_assert_null(iovk_device_get_netdevs(vf)[0]);
	cr_assert(iovk_device_is_vfio_safe(vf, NULL));
	iovk_device_unref(vf);

	vf = dev(ctx, "0000:01:10.0");
	cr_assert_str_eq(iovk_device_get_netdevs(vf)[0], "enp1s0f0v0");
	iovk_device_unref(vf);
	iovk_device_unref(pf);
	iovk_ctx_unref(ctx);
}

/* A VF's index: from First VF Offset and VF Stride, checked against virtfnN;
 * without those attributes, by the PF's virtfn links; a stride that points at
 * another VF is not believed. */
Test(inventory, vf_index)
{
	struct iovk_ctx *ctx = fixture_ctx("sriov-nic");
	struct iovk_device *pf = dev(ctx, "01:00.0"), *vf0 = dev(ctx, "01:10.0"), *vf1 = dev(ctx, "01:10.2");
	const char *root;

	cr_assert_eq(iovk_device_get_vf_index(vf0), 0);
	cr_assert_eq(iovk_device_get_vf_index(vf1), 1);
	cr_assert_eq(iovk_device_get_vf_index(pf), -ENOENT);
	cr_assert_eq(iovk_device_get_vf_index(NULL), -EINVAL);
	iovk_device_unref(vf0);
	iovk_device_unref(vf1);
	iovk_device_unref(pf);
	iovk_ctx_unref(ctx);

	root = fixture_copy("sriov-nic");
	ctx = fixture_ctx_at(root);
	fixture_write(root, "/sys/bus/pci/devices/0000:01:00.0/sriov_stride", "4\n"); /* would say VF 0 for 01:10.2 */
	vf1 = dev(ctx, "01:10.2");
	cr_assert_eq(iovk_device_get_vf_index(vf1), 1, "%s", iovk_ctx_get_error(ctx));
	iovk_device_unref(vf1);
	fixture_write(root, "/sys/bus/pci/devices/0000:01:00.0/sriov_stride", "junk\n");
	vf1 = dev(ctx, "01:10.2");
	cr_assert_eq(iovk_device_get_vf_index(vf1), 1, "%s", iovk_ctx_get_error(ctx));
	iovk_device_unref(vf1);
	{
		char path[4096];

		snprintf(path, sizeof(path), "%s/sys/bus/pci/devices/0000:01:00.0/virtfn1", root);
		cr_assert_eq(unlink(path), 0, "%s: %s", path, strerror(errno));
	}
	vf1 = dev(ctx, "01:10.2");
	cr_assert_eq(iovk_device_get_vf_index(vf1), -ENODATA);
	cr_assert(strstr(iovk_ctx_get_error(ctx), "lists no virtfn link"), "%s", iovk_ctx_get_error(ctx));
	iovk_device_unref(vf1);
	iovk_ctx_unref(ctx);
}

/* The names operators use: address forms, libvirt's node device name, a netdev. */
Test(inventory, resolve_name)
{
	struct iovk_ctx *ctx = fixture_ctx("sriov-nic");
	char a[IOVK_PCI_ADDR_MAX];

	cr_assert_eq(iovk_device_resolve_name(ctx, "01:10.2", a), 0);
	cr_assert_str_eq(a, "0000:01:10.2");
	cr_assert_eq(iovk_device_resolve_name(ctx, "pci_0000_01_10_2", a), 0);
	cr_assert_str_eq(a, "0000:01:10.2");
	cr_assert_eq(iovk_device_resolve_name(ctx, "pci_0001_3B_00_1", a), 0, "not checked for existence");
	cr_assert_str_eq(a, "0001:3b:00.1");
	cr_assert_eq(iovk_device_resolve_name(ctx, "enp1s0f0v0", a), 0, "%s", iovk_ctx_get_error(ctx));
	cr_assert_str_eq(a, "0000:01:10.0");
	cr_assert_eq(iovk_device_resolve_name(ctx, "enp9s0", a), -ENODEV);
	cr_assert(strstr(iovk_ctx_get_error(ctx), "enp9s0: no such network interface"), "%s", iovk_ctx_get_error(ctx));
	cr_assert_eq(iovk_device_resolve_name(ctx, "a b", a), -EINVAL);
	cr_assert_eq(iovk_device_resolve_name(ctx, "0000:zz:00.0", a), -EINVAL);
	cr_assert_eq(iovk_device_resolve_name(ctx, "", a), -EINVAL);
	cr_assert_eq(iovk_device_resolve_name(ctx, "0123456789abcdef", a), -EINVAL, "16 bytes: no interface name");
	/* pci_ and too few parts: an interface name, which does not exist */
	cr_assert_eq(iovk_device_resolve_name(ctx, "pci_0000_01_10", a), -ENODEV);
	iovk_ctx_unref(ctx);
}

Test(inventory, enumerate_sorted)
{
	struct iovk_ctx *ctx = fixture_ctx("switch-noacs");
	struct iovk_device **list = NULL;
	size_t n = 0;

	cr_assert_eq(iovk_device_enumerate(ctx, &list, &n), 0);
	cr_assert_eq(n, 11);
	cr_assert_null(list[n]);
	for (size_t i = 1; i < n; i++)
		cr_assert_lt(iovk_pci_addr_compare(iovk_device_get_addr(list[i - 1]), iovk_device_get_addr(list[i])),
			     0);
	cr_assert_str_eq(iovk_device_get_address(list[0]), "0000:00:00.0");
	iovk_device_list_free(list);
	iovk_ctx_unref(ctx);
}

/* A listing hands each VF its physfn from the PF's virtfn link, read first
 * (no readlinkat of the VF's own): a VF whose physfn link the kernel has not
 * made yet (pci_iov_sysfs_link() links virtfnN first) is one already, while
 * a lone read of it still goes by its own link. */
Test(inventory, enumerate_takes_physfn_from_the_pf)
{
	const char *root = fixture_copy("sriov-nic");
	struct iovk_ctx *ctx = fixture_ctx_at(root);
	struct iovk_device **list = NULL, *lone;
	char path[4096];
	size_t n = 0, seen = 0;

	snprintf(path, sizeof(path), "%s/sys/bus/pci/devices/0000:01:10.2/physfn", root);
	cr_assert_eq(unlink(path), 0, "%s: %s", path, strerror(errno));
	cr_assert_eq(iovk_device_enumerate(ctx, &list, &n), 0, "%s", iovk_ctx_get_error(ctx));
	for (size_t i = 0; i < n; i++) {
		const char *a = iovk_device_get_address(list[i]), *pf = iovk_device_get_physfn(list[i]);

		if (strcmp(a, "0000:01:10.0") == 0 || strcmp(a, "0000:01:10.2") == 0) {
			cr_assert_str_eq(pf, "0000:01:00.0", "%s", a);
			cr_assert_eq(iovk_device_get_vf_index(list[i]), strcmp(a, "0000:01:10.0") == 0 ? 0 : 1, "%s", a);
			cr_assert_str_eq(iovk_device_get_parent(list[i]), "0000:00:01.0", "%s", a);
			seen++;
		} else if (strcmp(a, "0000:01:00.0") == 0 || strcmp(a, "0000:01:00.1") == 0)
			cr_assert_null(pf, "%s", a);
	}
	cr_assert_eq(seen, 2);
	iovk_device_list_free(list);
	lone = dev(ctx, "01:10.2");
	cr_assert_null(iovk_device_get_physfn(lone));
	iovk_device_unref(lone);
	iovk_ctx_unref(ctx);
}

/* Without a pci.ids named, names come from udev's hwdb (as libvirt's node
 * devices and udevadm show them); the vendors and classes there are the ones
 * pci.ids has. Device names may lag pci.ids where hwdb.bin is older. */
Test(inventory, names_from_hwdb_agree_with_pci_ids)
{
	const char *ids = "/usr/share/misc/pci.ids";
	struct iovk_ctx *hw = fixture_ctx("gpu"), *pci = fixture_ctx("gpu");
	struct iovk_device **a = NULL, **b = NULL;
	sd_hwdb *hwdb = NULL;
	const char *model;
	char modalias[64];
	size_t n = 0, m = 0;

	if (sd_hwdb_new(&hwdb) < 0)
		cr_skip_test("no udev hwdb.bin on this machine");
	if (access(ids, R_OK) < 0)
		cr_skip_test("no %s on this machine", ids);
	iovk_ctx_unref(hw);
	cr_assert_eq(iovk_ctx_new(&hw), 0);
	{
		char path[PATH_MAX];

		snprintf(path, sizeof(path), "%s/gpu/sys", fixture_dir());
		cr_assert_eq(iovk_ctx_set_sysfs_root(hw, path), 0);
	}
	cr_assert_eq(iovk_ctx_set_pci_ids(pci, ids), 0);
	cr_assert_eq(iovk_device_enumerate(hw, &a, &n), 0);
	cr_assert_eq(iovk_device_enumerate(pci, &b, &m), 0);
	cr_assert_eq(n, m);
	for (size_t i = 0; i < n; i++) {
		const char *addr = iovk_device_get_address(a[i]);

		cr_assert_not_null(iovk_device_get_vendor_name(a[i]), "%s", addr);
		cr_assert_str_eq(iovk_device_get_vendor_name(a[i]), iovk_device_get_vendor_name(b[i]), "%s", addr);
		cr_assert_str_eq(iovk_device_get_class_name(a[i]), iovk_device_get_class_name(b[i]), "%s", addr);
		cr_assert_not_null(iovk_device_get_device_name(a[i]), "%s", addr);
		/* and the model is hwdb's, not a fallback to pci.ids (which
		 * differs for some of these on a Debian 12 machine) */
		snprintf(modalias, sizeof(modalias), "pci:v%08Xd%08X", iovk_device_get_vendor_id(a[i]),
			 iovk_device_get_device_id(a[i]));
		cr_assert_eq(sd_hwdb_get(hwdb, modalias, "ID_MODEL_FROM_DATABASE", &model), 0, "%s", addr);
		cr_assert_str_eq(iovk_device_get_device_name(a[i]), model, "%s", addr);
	}
	sd_hwdb_unref(hwdb);
	iovk_device_list_free(a);
	iovk_device_list_free(b);
	iovk_ctx_unref(hw);
	iovk_ctx_unref(pci);
}

Test(inventory, bridges_and_acs)
{
	struct iovk_ctx *ctx = fixture_ctx("switch-noacs"), *gpu = fixture_ctx("gpu");
	struct iovk_device *rp = dev(ctx, "00:1c.0"), *dn = dev(ctx, "03:08.0"), *nvme = dev(ctx, "05:00.0");
	struct iovk_device *acs_rp = dev(gpu, "00:1c.0");
	uint16_t cap = 0, ctrl = 0;

	cr_assert(iovk_device_is_bridge(rp));
	cr_assert(iovk_device_is_bridge(dn));
	cr_assert(iovk_device_is_bridge(acs_rp));
	cr_assert_not(iovk_device_is_bridge(nvme));
	/* a root port with ACS: the gpu host's PCH root port */
	cr_assert_eq(iovk_device_get_acs(acs_rp, &cap, &ctrl), 0);
	cr_assert_eq(ctrl & 0x1d, 0x1d, "root port ACS control %04x", ctrl);
	/* switch-noacs: neither its PCH root port nor the downstream port has ACS */
	cr_assert_eq(iovk_device_get_acs(rp, &cap, &ctrl), -ENODATA);
	cr_assert_eq(iovk_device_get_acs(dn, &cap, &ctrl), -ENODATA);
	cr_assert_str_eq(iovk_device_get_parent(nvme), "0000:03:10.0");
	cr_assert_str_eq(iovk_device_get_parent(dn), "0000:02:00.0");
	cr_assert_null(iovk_device_get_parent(rp));
	cr_assert_null(iovk_device_get_parent(acs_rp));
	iovk_device_unref(rp);
	iovk_device_unref(dn);
	iovk_device_unref(nvme);
	iovk_device_unref(acs_rp);
	iovk_ctx_unref(gpu);
	iovk_ctx_unref(ctx);
}

Test(inventory, unknown_and_malformed_devices)
{
	struct iovk_ctx *ctx = fixture_ctx("sriov-nic");
	struct iovk_device *d = (void *)0x1;

	cr_assert_eq(iovk_device_new(ctx, "0000:09:00.0", &d), -ENODEV);
	cr_assert(strstr(iovk_ctx_get_error(ctx), "0000:09:00.0"), "%s", iovk_ctx_get_error(ctx));
	cr_assert(strstr(iovk_ctx_get_error(ctx), "/bus/pci/devices/0000:09:00.0"));
	cr_assert_eq(d, (void *)0x1, "ret_ must stay untouched");
	cr_assert_eq(iovk_device_new(ctx, "not-a-bdf", &d), -EINVAL);
	cr_assert(strstr(iovk_ctx_get_error(ctx), "not-a-bdf"));
	iovk_ctx_unref(ctx);
}

Test(inventory, unreadable_attribute_is_named)
{
	const char *root = fixture_copy("sriov-nic");
	struct iovk_ctx *ctx = fixture_ctx_at(root);
	struct iovk_device *d = NULL;
	char path[PATH_MAX];
	FILE *f;

	/* a uevent file (where the identity is read) with garbage for its
	 * vendor, as a broken driver or a race could leave */
	snprintf(path, sizeof(path), "%s/sys/bus/pci/devices/0000:01:00.0/uevent", root);
	f = fopen(path, "we");
	cr_assert_not_null(f);
	fputs("DRIVER=ixgbe\nPCI_CLASS=20000\nPCI_ID=garbage\nPCI_SUBSYS_ID=8086:0003\n", f);
	fclose(f);
	cr_assert_eq(iovk_device_new(ctx, "01:00.0", &d), -EBADMSG);
	cr_assert(strstr(iovk_ctx_get_error(ctx), "0000:01:00.0/uevent lacks a valid PCI_ID"), "%s",
		  iovk_ctx_get_error(ctx));
	cr_assert_null(d);
	iovk_ctx_unref(ctx);
}

static struct iovk_iommu_group *group_of(struct iovk_ctx *ctx, const char *bdf)
{
	struct iovk_device *d = dev(ctx, bdf);
	struct iovk_iommu_group *g = NULL;

	cr_assert_geq(iovk_device_get_iommu_group(d), 0);
	cr_assert_eq(iovk_iommu_group_new(ctx, iovk_device_get_iommu_group(d), &g), 0, "%s", iovk_ctx_get_error(ctx));
	iovk_device_unref(d);
	return g;
}

static void assert_members(struct iovk_iommu_group *g, const char *const *expect)
{
	struct iovk_device *const *devs = iovk_iommu_group_get_devices(g);
	size_t i = 0;

	for (; expect[i]; i++) {
		cr_assert_not_null(devs[i], "group %d lacks %s", iovk_iommu_group_get_number(g), expect[i]);
		cr_assert_str_eq(iovk_device_get_address(devs[i]), expect[i]);
	}
	cr_assert_null(devs[i]);
	cr_assert_eq(iovk_iommu_group_get_n_devices(g), i);
}

/* The blocking devices of a group, in address order, against expect. */
static void assert_blockers(struct iovk_iommu_group *g, const char *const *expect)
{
	size_t n = 0, k = 0;
	bool viable = iovk_iommu_group_is_viable(g, &n);

	for (struct iovk_device *const *p = iovk_iommu_group_get_devices(g); *p; p++) {
		const char *reason = NULL;

		if (iovk_device_is_vfio_safe(*p, &reason))
			continue;
		cr_assert_not_null(expect[k], "unexpected blocker %s", iovk_device_get_address(*p));
		cr_assert_str_eq(iovk_device_get_address(*p), expect[k]);
		cr_assert(strstr(reason, iovk_device_get_driver(*p)), "reason must name the driver: %s", reason);
		k++;
	}
	cr_assert_null(expect[k], "missing blocker %s", expect[k]);
	cr_assert_eq(n, k);
	cr_assert_eq(viable, k == 0);
}

Test(groups, gpu_with_audio_and_root_port_not_viable)
{
	struct iovk_ctx *ctx = fixture_ctx("gpu");
	struct iovk_iommu_group *g = group_of(ctx, "01:00.0");
	const struct iovk_reserved_region *rr;
	size_t n;

	assert_members(g, (const char *[]){ "0000:00:01.0", "0000:01:00.0", "0000:01:00.1", NULL });
	assert_blockers(g, (const char *[]){ "0000:01:00.0", "0000:01:00.1", NULL });
	rr = iovk_iommu_group_get_reserved_regions(g, &n);
	cr_assert_geq(n, 2);
	cr_assert_str_eq(rr[0].type, "direct-relaxable");
	cr_assert_str_eq(iovk_iommu_group_get_type(g), "DMA");
	iovk_iommu_group_unref(g);

	g = group_of(ctx, "02:00.1");
	assert_members(g, (const char *[]){ "0000:02:00.0", "0000:02:00.1", NULL });
	assert_blockers(g, (const char *[]){ NULL });
	iovk_iommu_group_unref(g);
	iovk_ctx_unref(ctx);
}

Test(groups, switch_without_acs_shares_one_group)
{
	struct iovk_ctx *ctx = fixture_ctx("switch-noacs");
	struct iovk_iommu_group *g = group_of(ctx, "04:00.1");

	/* no ACS on the root port either: it joins the switch's group */
	assert_members(g, (const char *[]){ "0000:00:1c.0", "0000:02:00.0", "0000:03:08.0", "0000:03:10.0",
					    "0000:04:00.0", "0000:04:00.1", "0000:05:00.0", NULL });
	cr_assert_eq(iovk_iommu_group_get_number(g), 1);
	/* ports on pcieport, 04:00.0 on vfio-pci and 04:00.1 unbound are fine */
	assert_blockers(g, (const char *[]){ "0000:05:00.0", NULL });
	iovk_iommu_group_unref(g);
	iovk_ctx_unref(ctx);
}

Test(groups, ich_functions_share_a_blocked_group)
{
	struct iovk_ctx *ctx = fixture_ctx("sriov-nic");
	struct iovk_iommu_group *g = group_of(ctx, "00:1f.3");

	assert_members(g, (const char *[]){ "0000:00:1f.0", "0000:00:1f.3", "0000:00:1f.4", NULL });
	assert_blockers(g, (const char *[]){ "0000:00:1f.0", "0000:00:1f.3", "0000:00:1f.4", NULL });
	iovk_iommu_group_unref(g);
	iovk_ctx_unref(ctx);
}

Test(groups, enumerate_and_missing_group)
{
	struct iovk_ctx *ctx = fixture_ctx("sriov-nic");
	struct iovk_iommu_group **list = NULL, *g = (void *)0x1;
	size_t n = 0;

	cr_assert_eq(iovk_iommu_group_enumerate(ctx, &list, &n), 0);
	cr_assert_eq(n, 7);
	for (size_t i = 1; i < n; i++)
		cr_assert_lt(iovk_iommu_group_get_number(list[i - 1]), iovk_iommu_group_get_number(list[i]));
	iovk_iommu_group_list_free(list);
	cr_assert_eq(iovk_iommu_group_new(ctx, 999, &g), -ENOENT);
	cr_assert_eq(g, (void *)0x1);
	cr_assert_eq(iovk_iommu_group_new(ctx, -1, &g), -EINVAL);
	iovk_ctx_unref(ctx);
}

Test(groups, iommu_off_has_none)
{
	struct iovk_ctx *ctx = fixture_ctx("iommu-off");
	struct iovk_iommu_group **list = NULL;
	struct iovk_device *d = dev(ctx, "01:00.0");
	size_t n = 99;

	cr_assert_eq(iovk_iommu_group_enumerate(ctx, &list, &n), 0);
	cr_assert_eq(n, 0);
	cr_assert_null(list[0]);
	cr_assert_eq(iovk_device_get_iommu_group(d), -1);
	iovk_iommu_group_list_free(list);
	iovk_device_unref(d);
	iovk_ctx_unref(ctx);
}

Test(host, iommu_on_with_intremap)
{
	struct iovk_ctx *ctx = fixture_ctx("sriov-nic");
	struct iovk_iommu_host_state s = IOVK_IOMMU_HOST_STATE_INIT;

	cr_assert_eq(iovk_iommu_get_host_state(ctx, &s), 0);
	cr_assert(s.enabled);
	cr_assert_eq(s.n_groups, 7);
	cr_assert_str_eq(s.vendor, "intel");
	cr_assert_str_eq(s.cmdline_intel_iommu, "on");
	cr_assert_str_eq(s.cmdline_iommu, "pt");
	cr_assert(s.passthrough);
	cr_assert_eq(s.intremap, IOVK_YES);
	cr_assert(s.vfio_pci_loaded);
	cr_assert(s.vfio_container);
	iovk_ctx_unref(ctx);
}

Test(host, iommu_off)
{
	struct iovk_ctx *ctx = fixture_ctx("iommu-off");
	struct iovk_iommu_host_state s = IOVK_IOMMU_HOST_STATE_INIT;

	cr_assert_eq(iovk_iommu_get_host_state(ctx, &s), 0);
	cr_assert_not(s.enabled);
	cr_assert_eq(s.n_groups, 0);
	cr_assert_eq(s.n_units, 0);
	cr_assert_str_eq(s.cmdline_intel_iommu, "");
	cr_assert_not(s.passthrough);
	cr_assert_eq(s.intremap, IOVK_NO);
	cr_assert_eq(s.allow_unsafe_interrupts, IOVK_UNKNOWN);
	iovk_ctx_unref(ctx);
}

Test(inventory, config_bytes_from_sysfs)
{
	struct iovk_ctx *ctx = fixture_ctx("sriov-nic");
	struct iovk_device *d = NULL;
	uint8_t cfg[64], tail[8];

	cr_assert_eq(iovk_device_new(ctx, "01:00.0", &d), 0);
	cr_assert_eq(iovk_device_read_config(d, 0, cfg, sizeof(cfg)), (ssize_t)sizeof(cfg), "%s", iovk_ctx_get_error(ctx));
	/* the ids the inventory reports are the header's */
	cr_assert_eq(cfg[0] | cfg[1] << 8, iovk_device_get_vendor_id(d));
	cr_assert_eq(cfg[2] | cfg[3] << 8, iovk_device_get_device_id(d));
	/* past the end: short, not an error */
	cr_assert_eq(iovk_device_read_config(d, 1 << 20, tail, sizeof(tail)), 0);
	cr_assert_eq(iovk_device_read_config(NULL, 0, tail, sizeof(tail)), -EINVAL);
	iovk_device_unref(d);
	iovk_ctx_unref(ctx);
}

Test(inventory, sized_results_are_written_up_to_what_the_library_knows)
{
	struct iovk_ctx *ctx = fixture_ctx("sriov-nic");
	/* a newer caller's result: members this library does not know follow */
	struct {
		struct iovk_iommu_host_state s;
		unsigned char future[16];
	} newer;

	memset(&newer, 0xa5, sizeof(newer));
	newer.s.sz = sizeof(newer);
	cr_assert_eq(iovk_iommu_get_host_state(ctx, &newer.s), 0, "%s", iovk_ctx_get_error(ctx));
	cr_assert(newer.s.enabled);
	cr_assert_gt(newer.s.n_groups, 0);
	cr_assert_eq(newer.s.sz, sizeof(newer), "sz is the caller's");
	for (size_t i = 0; i < sizeof(newer.future); i++)
		cr_assert_eq(newer.future[i], 0xa5, "byte %zu past what the library knows was written", i);
	/* smaller than the first version: refused, untouched */
	newer.s.sz = sizeof(size_t);
	newer.s.n_groups = 4242;
	cr_assert_eq(iovk_iommu_get_host_state(ctx, &newer.s), -EINVAL);
	cr_assert_eq(newer.s.n_groups, 4242);
	cr_assert_eq(iovk_iommu_get_host_state(ctx, NULL), -EINVAL);
	iovk_ctx_unref(ctx);
}
