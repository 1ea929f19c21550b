// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The host-use rule (iovk_device_check_in_use()) on fixture copies: every
 * reason, and every path that takes a device from its driver refusing it
 * with nothing written, and going through with IOVK_BIND_FORCE.
 */
#include "fixture.h"

#define PF0 "/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0"

static struct iovk_in_use *check(struct iovk_ctx *ctx, const char *address, unsigned flags)
{
	struct iovk_in_use *u = NULL;

	cr_assert_eq(iovk_device_check_in_use(ctx, address, flags, &u), 0, "%s", iovk_ctx_get_error(ctx));
	cr_assert_not_null(u);
	return u;
}

/* The reason of that kind for that device, or NULL. */
static const struct iovk_in_use_reason *find(const struct iovk_in_use *u, const char *address,
					     enum iovk_in_use_kind kind)
{
	for (size_t i = 0; i < iovk_in_use_get_n_reasons(u); i++) {
		const struct iovk_in_use_reason *r = iovk_in_use_get_reason(u, i);

		if (strcmp(r->address, address) == 0 && r->kind == kind)
			return r;
	}
	return NULL;
}

static void mark_allocated(struct iovk_ctx *ctx, const char *address)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s/iovd-allocated", iovk_ctx_get_run_dir(ctx));
	fixture_mkdir("", dir);
	snprintf(dir, sizeof(dir), "%s/iovd-allocated/%s", iovk_ctx_get_run_dir(ctx), address);
	fixture_write("", dir, "");
}

Test(in_use, every_reason_of_a_pf_and_its_vfs)
{
	const char *root = fixture_copy("sriov-nic");
	struct iovk_ctx *ctx = fixture_ctx_at(root);
	struct iovk_in_use *u;
	const struct iovk_in_use_reason *r;

	/* what the host configured on the PF's interface, as a fixture's
	 * /proc has it: an IPv4 default route, a global and a link-local
	 * IPv6 address (the latter comes by itself and does not count) */
	fixture_mkdir(root, "/proc/net");
	fixture_write(root, "/proc/net/route",
		      "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
		      "enp1s0f0\t00000000\t0102000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
		      "enp1s0f9\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n");
	fixture_write(root, "/proc/net/if_inet6",
		      "20010db8000000000000000000000001 02 40 00 80 enp1s0f0\n"
		      "fe80000000000000928e2bafe5d3ca00 02 40 20 80 enp1s0f0\n");
	/* the VF's interface is a bond's slave */
	fixture_symlink(root, "../bond0", "/sys/class/net/enp1s0f0v0/master");

	u = check(ctx, "01:00.0", 0);
	r = find(u, "0000:01:00.0", IOVK_IN_USE_PF_WITH_VFS);
	cr_assert(r && strstr(r->reason, "PF with 2 VFs enabled, which unbinding ixgbe removes"), "%s",
		  iovk_in_use_get_text(u));
	cr_assert_str_eq(r->driver, "ixgbe");
	r = find(u, "0000:01:00.0", IOVK_IN_USE_NETDEV_UP);
	cr_assert(r && strcmp(r->object, "enp1s0f0") == 0, "%s", iovk_in_use_get_text(u));
	r = find(u, "0000:01:00.0", IOVK_IN_USE_NETDEV_ROUTE);
	cr_assert(r && strstr(r->reason, "1 route goes through its network interface enp1s0f0 (default)"), "%s",
		  iovk_in_use_get_text(u));
	r = find(u, "0000:01:00.0", IOVK_IN_USE_NETDEV_ADDRESS);
	cr_assert(r && strstr(r->reason, "carries 1 IP address (2001:db8::1/64)"), "%s", iovk_in_use_get_text(u));
	/* the VFs that unbinding the PF destroys, each with its own reasons */
	cr_assert(find(u, "0000:01:10.0", IOVK_IN_USE_NETDEV_UP), "%s", iovk_in_use_get_text(u));
	r = find(u, "0000:01:10.0", IOVK_IN_USE_NETDEV_MASTER);
	cr_assert(r && strstr(r->reason, "enp1s0f0v0 is enslaved to bond0"), "%s", iovk_in_use_get_text(u));
	cr_assert(find(u, "0000:01:10.2", IOVK_IN_USE_VF_ON_VFIO), "%s", iovk_in_use_get_text(u));
	cr_assert_eq(iovk_in_use_get_n_reasons(u), 7, "%s", iovk_in_use_get_text(u));
	/* the one-line text starts with the device asked about */
	cr_assert_eq(strncmp(iovk_in_use_get_text(u), "0000:01:00.0 (ixgbe): its network interface enp1s0f0 is up", 58),
		     0, "%s", iovk_in_use_get_text(u));
	iovk_in_use_free(u);

	/* a VF on vfio-pci is free to move; about to vanish it is not; iovd's
	 * marker makes it in use whatever its driver */
	u = check(ctx, "01:10.2", 0);
	cr_assert_eq(iovk_in_use_get_n_reasons(u), 0, "%s", iovk_in_use_get_text(u));
	cr_assert_str_eq(iovk_in_use_get_text(u), "");
	iovk_in_use_free(u);
	u = check(ctx, "01:10.2", IOVK_IN_USE_REMOVAL);
	cr_assert_eq(iovk_in_use_get_n_reasons(u), 1);
	cr_assert_eq(iovk_in_use_get_reason(u, 0)->kind, IOVK_IN_USE_VF_ON_VFIO);
	iovk_in_use_free(u);
	mark_allocated(ctx, "0000:01:10.2");
	u = check(ctx, "01:10.2", 0);
	cr_assert_eq(iovk_in_use_get_n_reasons(u), 1);
	cr_assert_eq(iovk_in_use_get_reason(u, 0)->kind, IOVK_IN_USE_ALLOCATED);
	cr_assert(strstr(iovk_in_use_get_reason(u, 0)->reason, "iovd has allocated it"));
	iovk_in_use_free(u);

	/* the second PF: down, no VFs, nothing configured */
	u = check(ctx, "01:00.1", 0);
	cr_assert_eq(iovk_in_use_get_n_reasons(u), 0, "%s", iovk_in_use_get_text(u));
	iovk_in_use_free(u);
	iovk_ctx_unref(ctx);
}

Test(in_use, boot_vga_disks_and_the_words)
{
	const char *root = fixture_copy("gpu");
	struct iovk_ctx *ctx = fixture_ctx_at(root);
	struct iovk_in_use *u;

	u = check(ctx, "01:00.0", 0);
	cr_assert(find(u, "0000:01:00.0", IOVK_IN_USE_BOOT_VGA), "%s", iovk_in_use_get_text(u));
	cr_assert_eq(iovk_in_use_get_n_reasons(u), 1, "%s", iovk_in_use_get_text(u));
	iovk_in_use_free(u);
	/* the same device on vfio-pci (02:00.0): the host has no console there */
	u = check(ctx, "02:00.0", 0);
	cr_assert_eq(iovk_in_use_get_n_reasons(u), 0, "%s", iovk_in_use_get_text(u));
	iovk_in_use_free(u);

	cr_assert_str_eq(iovk_in_use_kind_to_string(IOVK_IN_USE_NETDEV_UP), "netdev-up");
	cr_assert_str_eq(iovk_in_use_kind_to_string(IOVK_IN_USE_VF_ON_VFIO), "vf-on-vfio");
	cr_assert_str_eq(iovk_in_use_kind_to_string(IOVK_IN_USE_KERNEL_DRIVER), "kernel-driver");
	cr_assert_str_eq(iovk_in_use_kind_to_string(IOVK_IN_USE_BLOCK_HELD), "block-held");
	cr_assert_null(iovk_in_use_kind_to_string(0));
	cr_assert_null(iovk_in_use_kind_to_string(1000));
	cr_assert_eq(iovk_device_check_in_use(ctx, "01:00.0", 0x80, &u), -EINVAL);
	cr_assert_eq(iovk_device_check_in_use(ctx, "zz", 0, &u), -EINVAL);
	cr_assert_eq(iovk_device_check_in_use(ctx, "0000:42:00.0", 0, &u), -ENODEV);
	cr_assert_null(iovk_in_use_free(NULL));
	iovk_ctx_unref(ctx);
}

/* Every path that takes a device from its driver refuses, writing nothing. */
Test(in_use, bind_unbind_restore_and_group_bind_refuse)
{
	const char *root = fixture_copy("sriov-nic");
	struct iovk_ctx *ctx = fixture_ctx_at(root);
	struct iovk_bind_result res = IOVK_BIND_RESULT_INIT;
	char path[PATH_MAX];

	cr_assert_eq(iovk_device_bind(ctx, "01:00.0", "vfio-pci", 0, &res), -EBUSY);
	cr_assert(strstr(iovk_ctx_get_error(ctx), "in use by the host: 0000:01:00.0 (ixgbe): its network "
						  "interface enp1s0f0 is up"), "%s", iovk_ctx_get_error(ctx));
	cr_assert(strstr(iovk_ctx_get_error(ctx), "PF with 2 VFs"), "%s", iovk_ctx_get_error(ctx));
	cr_assert(strstr(iovk_ctx_get_error(ctx), "force to take it anyway"), "%s", iovk_ctx_get_error(ctx));
	cr_assert_eq(iovk_device_unbind(ctx, "01:00.0", 0, &res), -EBUSY);
	cr_assert_eq(iovk_device_unbind(ctx, "01:10.0", 0, &res), -EBUSY);
	cr_assert_eq(iovk_iommu_group_bind(ctx, 3, "vfio-pci", 0, NULL), -EBUSY);
	cr_assert(strstr(iovk_ctx_get_error(ctx), "IOMMU group 3: in use by the host: 0000:01:00.0"), "%s",
		  iovk_ctx_get_error(ctx));
	/* nothing was written, nothing recorded */
	cr_assert_str_eq(slurp(root, "/sys/bus/pci/drivers/ixgbe/unbind"), "");
	cr_assert_str_eq(slurp(root, "/sys/bus/pci/drivers/ixgbevf/unbind"), "");
	cr_assert_str_eq(slurp(root, PF0 "/driver_override"), "(null)\n");
	snprintf(path, sizeof(path), "%s/previous-driver/0000:01:00.0", iovk_ctx_get_run_dir(ctx));
	cr_assert_neq(access(path, F_OK), 0);

	/* restore of a VF iovd holds: refused, then forced */
	mark_allocated(ctx, "0000:01:10.2");
	cr_assert_eq(iovk_device_restore(ctx, "01:10.2", 0, &res), -EBUSY);
	cr_assert(strstr(iovk_ctx_get_error(ctx), "iovd has allocated it"), "%s", iovk_ctx_get_error(ctx));
	cr_assert_str_eq(slurp(root, "/sys/bus/pci/drivers/vfio-pci/unbind"), "");
	cr_assert_eq(iovk_device_restore(ctx, "01:10.2", IOVK_BIND_FORCE, &res), 0, "%s", iovk_ctx_get_error(ctx));
	cr_assert_str_eq(slurp(root, "/sys/bus/pci/drivers/vfio-pci/unbind"), "0000:01:10.2");

	/* forced: the move is tried (a fixture never probes, so it rolls back) */
	cr_assert_lt(iovk_device_unbind(ctx, "01:10.0", IOVK_BIND_FORCE, &res), 0);
	cr_assert_str_eq(slurp(root, "/sys/bus/pci/drivers/ixgbevf/unbind"), "0000:01:10.0");
	cr_assert_eq(iovk_device_bind(ctx, "01:00.0", "vfio-pci", 0x100, &res), -EINVAL);
	iovk_ctx_unref(ctx);
}

/* sriov set: removing VFs names each one in use, with the reason. */
Test(in_use, removing_vfs_names_each_one)
{
	const char *root = fixture_copy("sriov-nic");
	struct iovk_ctx *ctx = fixture_ctx_at(root);

	cr_assert_eq(iovk_sriov_set_numvfs(ctx, "01:00.0", 0, 0, 0), -EBUSY);
	cr_assert(strstr(iovk_ctx_get_error(ctx), "0000:01:10.0 (ixgbevf: its network interface enp1s0f0v0 is up"),
		  "%s", iovk_ctx_get_error(ctx));
	cr_assert(strstr(iovk_ctx_get_error(ctx), "0000:01:10.2 (vfio-pci)"), "%s", iovk_ctx_get_error(ctx));
	cr_assert_str_eq(slurp(root, PF0 "/sriov_numvfs"), "2\n");
	iovk_ctx_unref(ctx);
}
