// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Binding against fixture copies. Fixture files do not react like the
 * kernel (the driver link never moves), so a bind here always ends in the
 * "driver did not take the device" path: what these tests prove is the
 * rollback, the checks before anything is written and the error texts. The
 * successful moves are proven for real in the VM tier (tests/vm/cases).
 */
#include <fcntl.h>
#include <sys/file.h>

#include "fixture.h"

static const char *override_of(const char *root, const char *bdf)
{
	char rel[128];

	char *s;
	size_t n;

	/* sysfs ignores a trailing newline: compare without it */
	snprintf(rel, sizeof(rel), "/sys/bus/pci/devices/%s/driver_override", bdf);
	s = slurp(root, rel);
	n = strlen(s);
	if (n && s[n - 1] == '\n')
		s[n - 1] = '\0';
	return s;
}

static bool record_exists(struct iovk_ctx *ctx, const char *bdf)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/previous-driver/%s", iovk_ctx_get_run_dir(ctx), bdf);
	return access(path, F_OK) == 0;
}

Test(bind, failed_bind_rolls_back)
{
	const char *root = fixture_copy("sriov-nic");
	struct iovk_ctx *ctx = fixture_ctx_at(root);
	struct iovk_bind_result res = IOVK_BIND_RESULT_INIT;
	int r;

	/* forced: the PF carries the host's uplink (host_use_is_refused) */
	r = iovk_device_bind(ctx, "0000:01:00.0", "vfio-pci", IOVK_BIND_FORCE, &res);
	cr_assert_lt(r, 0);
	cr_assert(res.rolled_back, "error: %s", iovk_ctx_get_error(ctx));
	cr_assert_not(res.changed);
	cr_assert_str_eq(res.previous_driver, "ixgbe");
	cr_assert_str_eq(res.driver, "ixgbe");
	cr_assert(strstr(iovk_ctx_get_error(ctx), "vfio-pci"), "%s", iovk_ctx_get_error(ctx));
	cr_assert(strstr(iovk_ctx_get_error(ctx), "ixgbe restored"), "%s", iovk_ctx_get_error(ctx));
	/* the override it had (none) is back, and no stale record stays */
	cr_assert_str_eq(override_of(root, "0000:01:00.0"), "");
	cr_assert_not(record_exists(ctx, "0000:01:00.0"));
	/* the unbind was written to the old driver, the probe to drivers_probe */
	cr_assert_str_eq(slurp(root, "/sys/bus/pci/drivers/ixgbe/unbind"), "0000:01:00.0");
	cr_assert_str_eq(slurp(root, "/sys/bus/pci/drivers_probe"), "0000:01:00.0");
	iovk_ctx_unref(ctx);
}

Test(bind, unregistered_driver_changes_nothing)
{
	const char *root = fixture_copy("sriov-nic");
	struct iovk_ctx *ctx = fixture_ctx_at(root);

	cr_assert_eq(iovk_device_bind(ctx, "01:00.1", "no-such-driver", 0, NULL), -ENOENT);
	cr_assert(strstr(iovk_ctx_get_error(ctx), "no-such-driver is not registered"), "%s",
		  iovk_ctx_get_error(ctx));
	cr_assert_str_eq(override_of(root, "0000:01:00.1"), "(null)");
	cr_assert_str_eq(slurp(root, "/sys/bus/pci/drivers/ixgbe/unbind"), "");
	cr_assert_not(record_exists(ctx, "0000:01:00.1"));
	iovk_ctx_unref(ctx);
}

Test(bind, same_driver_is_idempotent_and_pins)
{
	const char *root = fixture_copy("sriov-nic");
	struct iovk_ctx *ctx = fixture_ctx_at(root);
	struct iovk_bind_result res = IOVK_BIND_RESULT_INIT;

	cr_assert_eq(iovk_device_bind(ctx, "01:00.0", "ixgbe", 0, &res), 0, "%s", iovk_ctx_get_error(ctx));
	cr_assert_not(res.changed);
	cr_assert_str_eq(res.driver, "ixgbe");
	cr_assert_str_eq(override_of(root, "0000:01:00.0"), "ixgbe");
	cr_assert_str_eq(slurp(root, "/sys/bus/pci/drivers/ixgbe/unbind"), "");
	iovk_ctx_unref(ctx);
}

Test(bind, bad_arguments)
{
	struct iovk_ctx *ctx = fixture_ctx("sriov-nic");

	cr_assert_eq(iovk_device_bind(ctx, "01:00.0", "../../evil", 0, NULL), -EINVAL);
	cr_assert_eq(iovk_device_bind(ctx, "01:00.0", "", 0, NULL), -EINVAL);
	cr_assert_eq(iovk_device_bind(ctx, "01:00.0", NULL, 0, NULL), -EINVAL);
	cr_assert_eq(iovk_device_bind(ctx, "01:00.0", "vfio-pci\n", 0, NULL), -EINVAL);
	cr_assert_eq(iovk_device_bind(ctx, "1:0.0", "vfio-pci", 0, NULL), -EINVAL);
	cr_assert_eq(iovk_device_bind(ctx, "0000:42:00.0", "vfio-pci", 0, NULL), -ENODEV);
	cr_assert_eq(iovk_device_unbind(ctx, "0000:42:00.0", 0, NULL), -ENODEV);
	cr_assert_eq(iovk_device_restore(ctx, "zz", 0, NULL), -EINVAL);
	iovk_ctx_unref(ctx);
}

Test(bind, unbind_without_driver_is_a_no_op)
{
	const char *root = fixture_copy("switch-noacs");
	struct iovk_ctx *ctx = fixture_ctx_at(root);
	struct iovk_bind_result res = IOVK_BIND_RESULT_INIT;

	cr_assert_eq(iovk_device_unbind(ctx, "04:00.1", 0, &res), 0);
	cr_assert_not(res.changed);
	cr_assert_str_eq(res.driver, "");
	cr_assert_not(record_exists(ctx, "0000:04:00.1"));
	iovk_ctx_unref(ctx);
}

Test(bind, restore_without_record_clears_override)
{
	const char *root = fixture_copy("sriov-nic");
	struct iovk_ctx *ctx = fixture_ctx_at(root);

	cr_assert_eq(iovk_device_restore(ctx, "01:10.2", 0, NULL), 0, "%s", iovk_ctx_get_error(ctx));
	cr_assert_str_eq(override_of(root, "0000:01:10.2"), "");
	cr_assert_str_eq(slurp(root, "/sys/bus/pci/drivers/vfio-pci/unbind"), "0000:01:10.2");
	cr_assert_str_eq(slurp(root, "/sys/bus/pci/drivers_probe"), "0000:01:10.2");
	iovk_ctx_unref(ctx);
}

Test(bind, lock_held_elsewhere_times_out)
{
	struct iovk_ctx *ctx = fixture_ctx("sriov-nic");
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/lock", iovk_ctx_get_run_dir(ctx));
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(flock(fd, LOCK_EX), 0);
	cr_assert_eq(iovk_ctx_set_timeout_ms(ctx, 50), 0);
	cr_assert_eq(iovk_device_unbind(ctx, "01:00.0", 0, NULL), -ETIMEDOUT);
	cr_assert(strstr(iovk_ctx_get_error(ctx), path), "%s", iovk_ctx_get_error(ctx));
	close(fd);
	iovk_ctx_unref(ctx);
}

Test(bind, group_bind_is_all_or_nothing)
{
	const char *root = fixture_copy("switch-noacs");
	struct iovk_ctx *ctx = fixture_ctx_at(root);
	size_t changed = 99;
	int r;

	/* 04:00.0 is on vfio-pci already; 04:00.1 does not get taken (a
	 * fixture does not probe), 05:00.0 is never reached: all put back. */
	r = iovk_iommu_group_bind(ctx, 1, "vfio-pci", 0, &changed);
	cr_assert_lt(r, 0);
	cr_assert_eq(changed, 99, "ret_ untouched on failure");
	cr_assert(strstr(iovk_ctx_get_error(ctx), "IOMMU group 1"), "%s", iovk_ctx_get_error(ctx));
	cr_assert(strstr(iovk_ctx_get_error(ctx), "0000:04:00.1"), "%s", iovk_ctx_get_error(ctx));
	cr_assert(strstr(iovk_ctx_get_error(ctx), "put back"), "%s", iovk_ctx_get_error(ctx));
	cr_assert_str_eq(override_of(root, "0000:04:00.0"), "vfio-pci");
	cr_assert_str_eq(override_of(root, "0000:04:00.1"), "");
	cr_assert_str_eq(override_of(root, "0000:05:00.0"), "(null)");
	/* bridges are never touched: root port, upstream and downstream ports */
	cr_assert_str_eq(override_of(root, "0000:00:1c.0"), "(null)");
	cr_assert_str_eq(override_of(root, "0000:02:00.0"), "(null)");
	cr_assert_str_eq(override_of(root, "0000:03:08.0"), "(null)");
	cr_assert_str_eq(override_of(root, "0000:03:10.0"), "(null)");
	iovk_ctx_unref(ctx);
}

Test(bind, undo_restores_the_previous_override)
{
	const char *root = fixture_copy("sriov-nic");
	struct iovk_ctx *ctx = fixture_ctx_at(root);
	struct iovk_bind_result res = IOVK_BIND_RESULT_INIT;

	/* binding to the driver it has pins the override: the one change a
	 * fixture can show, and undo must take it back */
	cr_assert_eq(iovk_device_bind(ctx, "01:00.0", "ixgbe", 0, &res), 0, "%s", iovk_ctx_get_error(ctx));
	cr_assert_str_eq(res.previous_override, "");
	cr_assert_not(res.record_created);
	cr_assert_str_eq(override_of(root, "0000:01:00.0"), "ixgbe");
	cr_assert_eq(iovk_device_bind_undo(ctx, "01:00.0", &res), 0, "%s", iovk_ctx_get_error(ctx));
	cr_assert_str_eq(override_of(root, "0000:01:00.0"), "");

	/* a result without its size is refused before anything is done */
	memset(&res, 0, sizeof(res));
	cr_assert_eq(iovk_device_bind(ctx, "01:10.2", "vfio-pci", 0, &res), -EINVAL);
	cr_assert(strstr(iovk_ctx_get_error(ctx), "struct iovk_bind_result: sz 0 is too small"), "%s",
		  iovk_ctx_get_error(ctx));
	cr_assert_eq(iovk_device_bind_undo(ctx, "01:10.2", &res), -EINVAL);
	cr_assert_eq(iovk_device_bind_undo(ctx, "01:10.2", NULL), -EINVAL);

	/* a device whose override was set keeps it through bind + undo */
	res = (struct iovk_bind_result)IOVK_BIND_RESULT_INIT;
	cr_assert_eq(iovk_device_bind(ctx, "01:10.2", "vfio-pci", 0, &res), 0);
	cr_assert_str_eq(res.previous_override, "vfio-pci");
	cr_assert_eq(iovk_device_bind_undo(ctx, "01:10.2", &res), 0);
	cr_assert_str_eq(override_of(root, "0000:01:10.2"), "vfio-pci");

	strcpy(res.previous_driver, "../evil");
	cr_assert_eq(iovk_device_bind_undo(ctx, "01:10.2", &res), -EINVAL);
	iovk_ctx_unref(ctx);
}

Test(bind, read_driver)
{
	struct iovk_ctx *ctx = fixture_ctx("switch-noacs");
	char buf[64] = "untouched", small[3];

	cr_assert_eq(iovk_device_read_driver(ctx, "05:00.0", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "nvme");
	cr_assert_eq(iovk_device_read_driver(ctx, "0000:04:00.1", buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "");
	cr_assert_eq(iovk_device_read_driver(ctx, "05:00.0", small, sizeof(small)), -ENAMETOOLONG);
	cr_assert_eq(iovk_device_read_driver(ctx, "0000:99:00.0", buf, sizeof(buf)), -ENODEV);
	cr_assert_eq(iovk_device_read_driver(ctx, "nope", buf, sizeof(buf)), -EINVAL);
	iovk_ctx_unref(ctx);
}

/* libkmod is opened on first use (lib/core/kmod-dl.h), not linked: on this
 * machine's own devices the lookup must reach the module index. */
Test(bind, find_kernel_driver_opens_libkmod_on_a_live_host)
{
	struct iovk_ctx *ctx = NULL;
	struct iovk_device **list = NULL;
	size_t n = 0, found = 0;
	char buf[64];

	cr_assert_eq(iovk_ctx_new(&ctx), 0);
	if (!iovk_ctx_is_live(ctx) || iovk_device_enumerate(ctx, &list, &n) < 0 || n == 0) {
		iovk_device_list_free(list);
		iovk_ctx_unref(ctx);
		cr_skip_test("no PCI devices in this machine's /sys");
	}
	for (size_t i = 0; i < n; i++) {
		const char *a = iovk_device_get_address(list[i]);
		int r = iovk_device_find_kernel_driver(ctx, a, IOVK_BIND_NO_MODULE_LOAD, buf, sizeof(buf));

		cr_assert(r == 0 || r == -ENOENT, "%s: %d %s", a, r, iovk_ctx_get_error(ctx));
		cr_assert(r == 0 || !strstr(iovk_ctx_get_error(ctx), "libkmod"), "%s: %s", a, iovk_ctx_get_error(ctx));
		found += r == 0;
	}
	cr_log_info("%zu of %zu devices have a kernel driver by modalias", found, n);
	iovk_device_list_free(list);
	iovk_ctx_unref(ctx);
}

/* The link first, the device only when the link is missing: a missing device is still -ENODEV, not "no group". */
Test(bind, read_iommu_group)
{
	struct iovk_ctx *ctx = fixture_ctx("switch-noacs"), *off = fixture_ctx("iommu-off");

	cr_assert_eq(iovk_device_read_iommu_group(ctx, "05:00.0"), 1);
	cr_assert_eq(iovk_device_read_iommu_group(ctx, "0000:99:00.0"), -ENODEV);
	cr_assert(strstr(iovk_ctx_get_error(ctx), "no such PCI device"), "%s", iovk_ctx_get_error(ctx));
	cr_assert_eq(iovk_device_read_iommu_group(ctx, "nope"), -EINVAL);
	cr_assert_eq(iovk_device_read_iommu_group(off, "01:00.0"), -ENOENT);
	cr_assert(strstr(iovk_ctx_get_error(off), "no IOMMU group"), "%s", iovk_ctx_get_error(off));
	cr_assert_eq(iovk_device_read_iommu_group(off, "0000:99:00.0"), -ENODEV);
	iovk_ctx_unref(ctx);
	iovk_ctx_unref(off);
}

Test(bind, find_kernel_driver_needs_the_live_module_index)
{
	/* The lookup itself (modalias -> igbvf, loaded) runs for real in
	 * tests/vm/cases/82-iovd-igb.sh; a fixture is not what the running
	 * kernel's module index describes, so it is refused, naming the modalias. */
	struct iovk_ctx *ctx = fixture_ctx("sriov-nic");
	char buf[64] = "untouched";

	cr_assert_eq(iovk_device_find_kernel_driver(ctx, "01:10.2", 0, buf, sizeof(buf)), -EOPNOTSUPP);
	cr_assert(strstr(iovk_ctx_get_error(ctx), "0000:01:10.2: the kernel driver for modalias pci:v00008086d000010ED"),
		  "%s", iovk_ctx_get_error(ctx));
	cr_assert_eq(iovk_device_find_kernel_driver(ctx, "0000:99:00.0", 0, buf, sizeof(buf)), -ENODEV);
	cr_assert_eq(iovk_device_find_kernel_driver(ctx, "nope", 0, buf, sizeof(buf)), -EINVAL);
	cr_assert_str_eq(buf, "untouched");
	iovk_ctx_unref(ctx);
}

Test(bind, cheap_reads_and_the_vfio_driver_rule)
{
	struct iovk_ctx *ctx = fixture_ctx("sriov-nic"), *off = fixture_ctx("iommu-off");
	char drv[64];

	cr_assert_eq(iovk_device_read_iommu_group(ctx, "01:00.0"), 3, "%s", iovk_ctx_get_error(ctx));
	cr_assert_eq(iovk_device_read_iommu_group(ctx, "0000:01:10.2"), 6);
	cr_assert_eq(iovk_device_read_iommu_group(ctx, "0000:42:00.0"), -ENODEV);
	cr_assert_eq(iovk_device_read_iommu_group(ctx, "zz"), -EINVAL);
	cr_assert_eq(iovk_device_read_iommu_group(off, "01:00.0"), -ENOENT);
	cr_assert(strstr(iovk_ctx_get_error(off), "no IOMMU group"), "%s", iovk_ctx_get_error(off));
	cr_assert_eq(iovk_device_read_driver(ctx, "01:10.2", drv, sizeof(drv)), 0);
	cr_assert(iovk_driver_is_vfio(drv));
	cr_assert(iovk_driver_is_vfio("mlx5_vfio_pci"));
	cr_assert_not(iovk_driver_is_vfio("ixgbe"));
	cr_assert_not(iovk_driver_is_vfio("pci-stub"));
	cr_assert_not(iovk_driver_is_vfio(""));
	cr_assert_not(iovk_driver_is_vfio(NULL));
	cr_assert(iovk_driver_name_is_valid("vfio-pci"));
	cr_assert_not(iovk_driver_name_is_valid("../evil"));
	cr_assert_not(iovk_driver_name_is_valid(NULL));
	iovk_ctx_unref(ctx);
	iovk_ctx_unref(off);
}

Test(bind, the_vfio_node_of_a_group)
{
	const char *root = fixture_copy("sriov-nic");
	struct iovk_ctx *ctx = fixture_ctx_at(root);
	char *node = iovk_iommu_group_vfio_node(ctx, 6), want[PATH_MAX];

	snprintf(want, sizeof(want), "%s/dev/vfio/6", root);
	cr_assert_str_eq(node, want);
	free(node);
	cr_assert_null(iovk_iommu_group_vfio_node(ctx, -1));
	/* a fixture's node is a plain file: opened, so nobody holds it */
	cr_assert_eq(iovk_iommu_group_vfio_is_open(ctx, 6), 0);
	/* no node (nothing of group 3 is on vfio-pci) */
	cr_assert_eq(iovk_iommu_group_vfio_is_open(ctx, 3), 0);
	cr_assert_eq(iovk_iommu_group_vfio_is_open(ctx, -1), -EINVAL);
	iovk_ctx_unref(ctx);
}
