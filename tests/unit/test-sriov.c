// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * SR-IOV PFs read from the fixture hosts, and the checks of
 * iovk_sriov_set_numvfs() against fixture copies. A fixture does not react
 * like the kernel (writing sriov_numvfs creates or removes no VF), so every
 * write here ends in the bounded wait timing out: what these tests prove is
 * the reading, the refusals before anything is written, the order of the
 * writes and the error texts. The kernel's side is proven in the VM tier
 * (tests/vm/cases/50-sriov-nvme.sh).
 */
#include <sys/stat.h>

#include "fixture.h"

#define PF0 "/sys/bus/pci/devices/0000:01:00.0"
#define PF1 "/sys/bus/pci/devices/0000:01:00.1"

static struct iovk_sriov_pf *pf_read(struct iovk_ctx *ctx, const char *bdf)
{
	struct iovk_sriov_pf *pf = NULL;
	int r = iovk_sriov_pf_new(ctx, bdf, &pf);

	cr_assert_eq(r, 0, "reading %s: %d (%s)", bdf, r, iovk_ctx_get_error(ctx));
	return pf;
}

static bool has(struct iovk_ctx *ctx, const char *text)
{
	return strstr(iovk_ctx_get_error(ctx), text) != NULL;
}

static bool run_file_exists(struct iovk_ctx *ctx, const char *rel)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", iovk_ctx_get_run_dir(ctx), rel);
	return access(path, F_OK) == 0;
}

Test(sriov, enumerate_pfs_of_the_nic_host)
{
	struct iovk_ctx *ctx = fixture_ctx("sriov-nic");
	struct iovk_sriov_pf **pfs = NULL;
	struct iovk_device *const *vfs;
	size_t n = 0;

	cr_assert_eq(iovk_sriov_enumerate_pfs(ctx, &pfs, &n), 0, "%s", iovk_ctx_get_error(ctx));
	cr_assert_eq(n, 2);
	cr_assert_str_eq(iovk_sriov_pf_get_address(pfs[0]), "0000:01:00.0");
	cr_assert_str_eq(iovk_sriov_pf_get_address(pfs[1]), "0000:01:00.1");
	cr_assert_null(pfs[2]);

	cr_assert_eq(iovk_sriov_pf_get_totalvfs(pfs[0]), 63);
	cr_assert_eq(iovk_sriov_pf_get_numvfs(pfs[0]), 2);
	cr_assert_eq(iovk_sriov_pf_get_offset(pfs[0]), 128);
	cr_assert_eq(iovk_sriov_pf_get_stride(pfs[0]), 2);
	cr_assert_eq(iovk_sriov_pf_get_vf_device_id(pfs[0]), 0x10ed);
	cr_assert_eq(iovk_sriov_pf_get_drivers_autoprobe(pfs[0]), 1);
	cr_assert_str_eq(iovk_device_get_driver(iovk_sriov_pf_get_device(pfs[0])), "ixgbe");
	cr_assert_str_eq(iovk_device_get_netdevs(iovk_sriov_pf_get_device(pfs[0]))[0], "enp1s0f0");

	cr_assert_eq(iovk_sriov_pf_get_n_vfs(pfs[0]), 2);
	vfs = iovk_sriov_pf_get_vfs(pfs[0]);
	cr_assert_str_eq(iovk_device_get_address(vfs[0]), "0000:01:10.0");
	cr_assert_str_eq(iovk_device_get_driver(vfs[0]), "ixgbevf");
	cr_assert_eq(iovk_device_get_iommu_group(vfs[0]), 5);
	cr_assert_str_eq(iovk_device_get_netdevs(vfs[0])[0], "enp1s0f0v0");
	cr_assert_str_eq(iovk_device_get_address(vfs[1]), "0000:01:10.2");
	cr_assert_str_eq(iovk_device_get_driver(vfs[1]), "vfio-pci");
	cr_assert_eq(iovk_device_get_iommu_group(vfs[1]), 6);
	cr_assert_null(iovk_device_get_netdevs(vfs[1])[0]);
	cr_assert_null(vfs[2]);
	/* offset and stride locate the VFs: RID 0x100 + 128 + i * 2 */
	for (size_t i = 0; i < 2; i++) {
		const struct iovk_pci_addr *a = iovk_device_get_addr(vfs[i]);
		unsigned rid = (unsigned)(a->bus << 8 | a->dev << 3 | a->fn);

		cr_assert_eq(rid, 0x100u + 128 + i * 2);
	}

	cr_assert_eq(iovk_sriov_pf_get_numvfs(pfs[1]), 0);
	cr_assert_eq(iovk_sriov_pf_get_n_vfs(pfs[1]), 0);
	cr_assert_null(iovk_sriov_pf_get_vfs(pfs[1])[0]);
	iovk_sriov_pf_list_free(pfs);
	iovk_ctx_unref(ctx);
}

/* A virtfn link missing while VFs change (kernels before ~5.15 remove them one
 * at a time) closes the list up: a VF is found by its index, not its
 * position, and keeps the index its link gives it. */
Test(sriov, vf_by_index_across_a_missing_virtfn_link)
{
	const char *root = fixture_copy("sriov-nic");
	struct iovk_ctx *ctx = fixture_ctx_at(root);
	struct iovk_sriov_pf *pf;
	char path[PATH_MAX];

	pf = pf_read(ctx, "0000:01:00.0");
	cr_assert_str_eq(iovk_device_get_address(iovk_sriov_pf_get_vf(pf, 0)), "0000:01:10.0");
	cr_assert_str_eq(iovk_device_get_address(iovk_sriov_pf_get_vf(pf, 1)), "0000:01:10.2");
	cr_assert_null(iovk_sriov_pf_get_vf(pf, 2));
	iovk_sriov_pf_unref(pf);

	snprintf(path, sizeof(path), "%s" PF0 "/virtfn0", root);
	cr_assert_eq(unlink(path), 0, "%s: %s", path, strerror(errno));
	pf = pf_read(ctx, "0000:01:00.0");
	cr_assert_eq(iovk_sriov_pf_get_n_vfs(pf), 1);
	cr_assert_null(iovk_sriov_pf_get_vf(pf, 0));
	cr_assert_str_eq(iovk_device_get_address(iovk_sriov_pf_get_vf(pf, 1)), "0000:01:10.2");
	cr_assert_eq(iovk_device_get_vf_index(iovk_sriov_pf_get_vfs(pf)[0]), 1);
	iovk_sriov_pf_unref(pf);
	iovk_ctx_unref(ctx);
}

Test(sriov, hosts_without_pfs_and_ref_counting)
{
	struct iovk_ctx *ctx = fixture_ctx("gpu");
	struct iovk_sriov_pf **pfs = NULL, *pf;
	size_t n = 99;

	cr_assert_eq(iovk_sriov_enumerate_pfs(ctx, &pfs, &n), 0, "%s", iovk_ctx_get_error(ctx));
	cr_assert_eq(n, 0);
	cr_assert_null(pfs[0]);
	iovk_sriov_pf_list_free(pfs);
	iovk_sriov_pf_list_free(NULL);
	cr_assert_null(iovk_sriov_pf_unref(NULL));
	iovk_ctx_unref(ctx);

	/* the IOMMU-off host has the same PFs; its VFs have no group */
	ctx = fixture_ctx("iommu-off");
	pf = pf_read(ctx, "01:00.0");
	cr_assert_eq(iovk_sriov_pf_ref(pf), pf);
	cr_assert_null(iovk_sriov_pf_unref(pf));
	cr_assert_eq(iovk_device_get_iommu_group(iovk_sriov_pf_get_vfs(pf)[0]), -1);
	cr_assert_null(iovk_device_get_driver(iovk_sriov_pf_get_vfs(pf)[1]));
	iovk_sriov_pf_unref(pf);
	iovk_ctx_unref(ctx);
}

Test(sriov, not_a_pf_unknown_and_malformed)
{
	struct iovk_ctx *ctx = fixture_ctx("sriov-nic");
	struct iovk_sriov_pf *pf = (struct iovk_sriov_pf *)0x1;

	cr_assert_eq(iovk_sriov_pf_new(ctx, "01:10.0", &pf), -ENOENT);
	cr_assert(has(ctx, "0000:01:10.0: not an SR-IOV physical function: it is a VF of 0000:01:00.0"), "%s",
		  iovk_ctx_get_error(ctx));
	cr_assert_eq(iovk_sriov_pf_new(ctx, "00:1f.0", &pf), -ENOENT);
	cr_assert(has(ctx, "0000:00:1f.0: not an SR-IOV physical function"), "%s", iovk_ctx_get_error(ctx));
	cr_assert(has(ctx, "0000:00:1f.0/sriov_numvfs does not exist"), "%s", iovk_ctx_get_error(ctx));
	cr_assert_eq(iovk_sriov_pf_new(ctx, "0000:42:00.0", &pf), -ENODEV);
	cr_assert(has(ctx, "0000:42:00.0: no such PCI device"), "%s", iovk_ctx_get_error(ctx));
	cr_assert_eq(iovk_sriov_pf_new(ctx, "01:00", &pf), -EINVAL);
	cr_assert(has(ctx, "'01:00' is not a PCI address"), "%s", iovk_ctx_get_error(ctx));
	cr_assert_eq(iovk_sriov_pf_new(ctx, NULL, &pf), -EINVAL);
	cr_assert_eq(pf, (struct iovk_sriov_pf *)0x1, "ret_pf untouched on failure");

	cr_assert_eq(iovk_sriov_set_numvfs(ctx, "01:10.0", 1, 0, 0), -ENOENT);
	cr_assert_eq(iovk_sriov_set_numvfs(ctx, "0000:42:00.0", 1, 0, 0), -ENODEV);
	cr_assert_eq(iovk_sriov_set_numvfs(ctx, "0000:01:00.0.1", 1, 0, 0), -EINVAL);
	cr_assert_eq(iovk_sriov_set_numvfs(ctx, "01:00.0", 2, 1u << 7, 0), -EINVAL);
	cr_assert(has(ctx, "unknown SR-IOV flags"), "%s", iovk_ctx_get_error(ctx));
	iovk_ctx_unref(ctx);
}

Test(sriov, above_total_is_refused_before_anything_is_written)
{
	const char *root = fixture_copy("sriov-nic");
	struct iovk_ctx *ctx = fixture_ctx_at(root);

	cr_assert_eq(iovk_sriov_set_numvfs(ctx, "01:00.1", 64, IOVK_SRIOV_NO_AUTOPROBE, 0), -ERANGE);
	cr_assert(has(ctx, "0000:01:00.1: 64 VFs requested, but the PF supports at most 63"), "%s",
		  iovk_ctx_get_error(ctx));
	cr_assert_str_eq(slurp(root, PF1 "/sriov_numvfs"), "0\n");
	cr_assert_str_eq(slurp(root, PF1 "/sriov_drivers_autoprobe"), "1\n");
	cr_assert_not(run_file_exists(ctx, "sriov-autoprobe/0000:01:00.1"));
	/* and with VFs in use, the range is checked first */
	cr_assert_eq(iovk_sriov_set_numvfs(ctx, "01:00.0", 1000, 0, 0), -ERANGE);
	cr_assert_str_eq(slurp(root, PF0 "/sriov_numvfs"), "2\n");
	iovk_ctx_unref(ctx);
}

Test(sriov, tearing_down_vfs_on_vfio_is_refused_without_force)
{
	const char *root = fixture_copy("sriov-nic");
	struct iovk_ctx *ctx = fixture_ctx_at(root);

	/* the VF on ixgbevf is not the host's either (tests/unit/test-in-use.c has that) */
	fixture_write(root, "/sys/class/net/enp1s0f0v0/operstate", "down\n");
	cr_assert_eq(iovk_sriov_set_numvfs(ctx, "01:00.0", 0, 0, 0), -EBUSY);
	cr_assert(has(ctx, "0000:01:00.0: not removing its 2 VFs"), "%s", iovk_ctx_get_error(ctx));
	cr_assert(has(ctx, "VF 0000:01:10.2 (vfio-pci) is in use"), "%s", iovk_ctx_get_error(ctx));
	cr_assert_not(has(ctx, "0000:01:10.0"), "the VF on ixgbevf is not in use: %s", iovk_ctx_get_error(ctx));
	cr_assert(has(ctx, "force"), "%s", iovk_ctx_get_error(ctx));
	cr_assert_str_eq(slurp(root, PF0 "/sriov_numvfs"), "2\n");
	/* N -> M goes through 0: refused the same way, nothing written */
	cr_assert_eq(iovk_sriov_set_numvfs(ctx, "01:00.0", 4, IOVK_SRIOV_NO_AUTOPROBE, 0), -EBUSY);
	cr_assert_str_eq(slurp(root, PF0 "/sriov_numvfs"), "2\n");
	cr_assert_str_eq(slurp(root, PF0 "/sriov_drivers_autoprobe"), "1\n");
	iovk_ctx_unref(ctx);
}

Test(sriov, forced_teardown_writes_zero_and_waits_bounded)
{
	const char *root = fixture_copy("sriov-nic");
	struct iovk_ctx *ctx = fixture_ctx_at(root);
	char rec[PATH_MAX];
	FILE *f;

	/* a previous-driver record of a VF about to vanish */
	snprintf(rec, sizeof(rec), "%s/previous-driver", iovk_ctx_get_run_dir(ctx));
	cr_assert_eq(mkdir(rec, 0755), 0);
	snprintf(rec, sizeof(rec), "%s/previous-driver/0000:01:10.2", iovk_ctx_get_run_dir(ctx));
	f = fopen(rec, "we");
	cr_assert_not_null(f);
	fputs("ixgbevf\n", f);
	fclose(f);

	/* The fixture keeps its virtfn links: the wait must end at its bound. */
	cr_assert_eq(iovk_sriov_set_numvfs(ctx, "01:00.0", 0, IOVK_SRIOV_FORCE, 50), -ETIMEDOUT);
	cr_assert(has(ctx, "0000:01:00.0: sriov_numvfs was set to 0, but after 50 ms"), "%s",
		  iovk_ctx_get_error(ctx));
	cr_assert(has(ctx, "0000:01:00.0/virtfn"), "%s", iovk_ctx_get_error(ctx));
	cr_assert(has(ctx, "still exists"), "%s", iovk_ctx_get_error(ctx));
	cr_assert_str_eq(slurp(root, PF0 "/sriov_numvfs"), "0");
	/* the VFs did not go away, so their records stay */
	cr_assert(run_file_exists(ctx, "previous-driver/0000:01:10.2"));
	iovk_ctx_unref(ctx);
}

Test(sriov, enabling_with_no_autoprobe_then_back_to_zero_restores_autoprobe)
{
	const char *root = fixture_copy("sriov-nic");
	struct iovk_ctx *ctx = fixture_ctx_at(root);
	int r;

	/* Autoprobe goes to 0 before sriov_numvfs is written; no VF appears
	 * in a fixture, so the wait times out naming the first missing link. */
	r = iovk_sriov_set_numvfs(ctx, "01:00.1", 2, IOVK_SRIOV_NO_AUTOPROBE, 30);
	cr_assert_eq(r, -ETIMEDOUT, "%d %s", r, iovk_ctx_get_error(ctx));
	cr_assert(has(ctx, "0000:01:00.1: sriov_numvfs was set to 2, but after 30 ms"), "%s",
		  iovk_ctx_get_error(ctx));
	cr_assert(has(ctx, "0000:01:00.1/virtfn0 does not exist"), "%s", iovk_ctx_get_error(ctx));
	cr_assert_str_eq(slurp(root, PF1 "/sriov_drivers_autoprobe"), "0");
	cr_assert_str_eq(slurp(root, PF1 "/sriov_numvfs"), "2");
	cr_assert_str_eq(slurp(iovk_ctx_get_run_dir(ctx), "/sriov-autoprobe/0000:01:00.1"), "1\n");

	/* Again: autoprobe is 0 now, the record keeps the original 1. */
	cr_assert_eq(iovk_sriov_set_numvfs(ctx, "01:00.1", 2, IOVK_SRIOV_NO_AUTOPROBE, 10), -ETIMEDOUT);
	cr_assert_str_eq(slurp(iovk_ctx_get_run_dir(ctx), "/sriov-autoprobe/0000:01:00.1"), "1\n");

	/* To 0 (no VF links exist, so "removing" them is complete at once):
	 * the recorded autoprobe value comes back and the record goes. */
	r = iovk_sriov_set_numvfs(ctx, "01:00.1", 0, 0, 30);
	cr_assert_eq(r, 1, "%d %s", r, iovk_ctx_get_error(ctx));
	cr_assert_str_eq(slurp(root, PF1 "/sriov_numvfs"), "0");
	cr_assert_str_eq(slurp(root, PF1 "/sriov_drivers_autoprobe"), "1");
	cr_assert_not(run_file_exists(ctx, "sriov-autoprobe/0000:01:00.1"));

	/* nothing left to do */
	cr_assert_eq(iovk_sriov_set_numvfs(ctx, "01:00.1", 0, 0, 30), 0, "%s", iovk_ctx_get_error(ctx));
	iovk_ctx_unref(ctx);
}

Test(sriov, same_count_is_a_no_op_once_vfs_are_ready)
{
	const char *root = fixture_copy("sriov-nic");
	struct iovk_ctx *ctx = fixture_ctx_at(root);
	char cmd[PATH_MAX + 16];
	int r;

	/* 2 VFs exist, the ixgbevf one has its netdev, vfio-pci needs none */
	cr_assert_eq(iovk_sriov_set_numvfs(ctx, "01:00.0", 2, 0, 30), 0, "%s", iovk_ctx_get_error(ctx));
	cr_assert_str_eq(slurp(root, PF0 "/sriov_numvfs"), "2\n");

	/* a VF on a network driver without its netdev yet: waited for, bounded */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/sys/bus/pci/devices/0000:01:10.0/net/enp1s0f0v0'", root);
	cr_assert_eq(system(cmd), 0);
	r = iovk_sriov_set_numvfs(ctx, "01:00.0", 2, 0, 20);
	cr_assert_eq(r, -ETIMEDOUT, "%d %s", r, iovk_ctx_get_error(ctx));
	cr_assert(has(ctx, "VF 0000:01:10.0 is bound to ixgbevf but has no network interface"), "%s",
		  iovk_ctx_get_error(ctx));
	iovk_ctx_unref(ctx);
}

Test(sriov, pf_without_driver_and_kernel_without_autoprobe)
{
	const char *root = fixture_copy("sriov-nic");
	struct iovk_ctx *ctx = fixture_ctx_at(root);
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s" PF1 "/sriov_drivers_autoprobe", root);
	cr_assert_eq(unlink(path), 0);
	cr_assert_eq(iovk_sriov_set_numvfs(ctx, "01:00.1", 1, IOVK_SRIOV_NO_AUTOPROBE, 0), -EOPNOTSUPP);
	cr_assert(has(ctx, "sriov_drivers_autoprobe does not exist"), "%s", iovk_ctx_get_error(ctx));
	cr_assert_str_eq(slurp(root, PF1 "/sriov_numvfs"), "0\n");

	snprintf(path, sizeof(path), "%s" PF1 "/driver", root);
	cr_assert_eq(unlink(path), 0);
	cr_assert_eq(iovk_sriov_set_numvfs(ctx, "01:00.1", 1, 0, 0), -ENOENT);
	cr_assert(has(ctx, "0000:01:00.1: no driver is bound to the PF"), "%s", iovk_ctx_get_error(ctx));
	cr_assert_str_eq(slurp(root, PF1 "/sriov_numvfs"), "0\n");
	/* asking for what it has needs no driver */
	cr_assert_eq(iovk_sriov_set_numvfs(ctx, "01:00.1", 0, 0, 0), 0, "%s", iovk_ctx_get_error(ctx));
	iovk_ctx_unref(ctx);
}
