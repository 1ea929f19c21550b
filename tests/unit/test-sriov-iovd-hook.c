// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The markers iovd keeps for the VFs it allocated (<run dir>/iovd-allocated/
 * <VF>, iovd(8)) make iovk_sriov_set_numvfs() refuse to remove those VFs,
 * whatever their driver: a VF iovd handed out for a container sits on its
 * kernel driver, which alone would not count as in use. On a copy of the
 * sriov-nic fixture: VF 0000:01:10.0 of PF 0000:01:00.0 is on ixgbevf (not in
 * use by itself), VF 0000:01:10.2 on vfio-pci (in use by itself).
 */
#include <sys/stat.h>

#include "fixture.h"

#define PF0 "/sys/bus/pci/devices/0000:01:00.0"

static void marker(struct iovk_ctx *ctx, const char *vf, bool present)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/iovd-allocated", iovk_ctx_get_run_dir(ctx));
	cr_assert(mkdir(path, 0755) == 0 || errno == EEXIST);
	snprintf(path, sizeof(path), "%s/iovd-allocated/%s", iovk_ctx_get_run_dir(ctx), vf);
	if (!present) {
		cr_assert_eq(unlink(path), 0);
		return;
	}
	/* what iovd writes: owner, then allocation path */
	f = fopen(path, "we");
	cr_assert_not_null(f);
	fputs("vm-1\n/org/iovkit/iovd1/allocation/1\n", f);
	fclose(f);
}

static bool has(struct iovk_ctx *ctx, const char *text)
{
	return strstr(iovk_ctx_get_error(ctx), text) != NULL;
}

Test(sriov_iovd_hook, teardown_of_a_vf_allocated_by_iovd_is_refused_without_force)
{
	const char *root = fixture_copy("sriov-nic");
	struct iovk_ctx *ctx = fixture_ctx_at(root);

	/* VF 01:10.2 on vfio-pci out of the way: only the marker is left to refuse */
	/* the VF on ixgbevf is not the host's either (tests/unit/test-in-use.c has that) */
	fixture_write(root, "/sys/class/net/enp1s0f0v0/operstate", "down\n");
	marker(ctx, "0000:01:10.0", true);
	cr_assert_eq(iovk_sriov_set_numvfs(ctx, "01:00.0", 0, 0, 0), -EBUSY);
	cr_assert(has(ctx, "0000:01:00.0: not removing its 2 VFs"), "%s", iovk_ctx_get_error(ctx));
	cr_assert(has(ctx, "0000:01:10.0 (allocated by iovd)"), "%s", iovk_ctx_get_error(ctx));
	cr_assert(has(ctx, "0000:01:10.2 (vfio-pci)"), "%s", iovk_ctx_get_error(ctx));
	cr_assert(has(ctx, "VFs 0000:01:10.0 (allocated by iovd), 0000:01:10.2 (vfio-pci) are in use"), "%s",
		  iovk_ctx_get_error(ctx));
	cr_assert_str_eq(slurp(root, PF0 "/sriov_numvfs"), "2\n");
	/* N -> M goes through 0: refused the same way */
	cr_assert_eq(iovk_sriov_set_numvfs(ctx, "01:00.0", 1, 0, 0), -EBUSY);
	cr_assert(has(ctx, "allocated by iovd"), "%s", iovk_ctx_get_error(ctx));
	cr_assert_str_eq(slurp(root, PF0 "/sriov_numvfs"), "2\n");

	/* the marker gone (iovd released it): the VF on ixgbevf is not in use */
	marker(ctx, "0000:01:10.0", false);
	cr_assert_eq(iovk_sriov_set_numvfs(ctx, "01:00.0", 0, 0, 0), -EBUSY);
	cr_assert_not(has(ctx, "0000:01:10.0"), "%s", iovk_ctx_get_error(ctx));
	cr_assert(has(ctx, "VF 0000:01:10.2 (vfio-pci) is in use"), "%s", iovk_ctx_get_error(ctx));
	iovk_ctx_unref(ctx);
}

Test(sriov_iovd_hook, a_marker_alone_refuses_and_force_overrides_it)
{
	const char *root = fixture_copy("sriov-nic");
	struct iovk_ctx *ctx = fixture_ctx_at(root);
	char path[PATH_MAX];

	/* 01:10.2 off vfio-pci: without the marker nothing would stop the teardown */
	/* the VF on ixgbevf is not the host's either (tests/unit/test-in-use.c has that) */
	fixture_write(root, "/sys/class/net/enp1s0f0v0/operstate", "down\n");
	snprintf(path, sizeof(path), "%s/sys/bus/pci/devices/0000:01:10.2/driver", root);
	cr_assert_eq(unlink(path), 0);
	marker(ctx, "0000:01:10.2", true);
	cr_assert_eq(iovk_sriov_set_numvfs(ctx, "01:00.0", 0, 0, 0), -EBUSY);
	cr_assert(has(ctx, "VF 0000:01:10.2 (allocated by iovd) is in use"), "%s", iovk_ctx_get_error(ctx));
	cr_assert(has(ctx, "force"), "%s", iovk_ctx_get_error(ctx));
	cr_assert_str_eq(slurp(root, PF0 "/sriov_numvfs"), "2\n");

	/* forced: written; a fixture keeps its virtfn links, so the wait times out */
	cr_assert_eq(iovk_sriov_set_numvfs(ctx, "01:00.0", 0, IOVK_SRIOV_FORCE, 20), -ETIMEDOUT);
	cr_assert_str_eq(slurp(root, PF0 "/sriov_numvfs"), "0");
	iovk_ctx_unref(ctx);
}
