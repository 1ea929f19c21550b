// SPDX-License-Identifier: GPL-2.0-or-later
/* lib/vfio against the fixture hosts: what it says where no kernel stands behind /dev. */
#include <sys/stat.h>

#include "fixture.h"

Test(vfio_fixture, container_node_missing_or_fake)
{
	struct iovk_ctx *ctx = fixture_ctx("sriov-nic");
	struct iovk_vfio_iommu *iommu = NULL;
	char root[PATH_MAX];

	/* the fixture's /dev/vfio/vfio is a plain file: no ioctl works on it */
	cr_assert_eq(iovk_vfio_iommu_new(ctx, IOVK_VFIO_MODE_AUTO, &iommu), -ENOTTY);
	cr_assert_null(iommu);
	cr_expect(strstr(iovk_ctx_get_error(ctx), "/dev/vfio/vfio is not a VFIO container"), "%s",
		  iovk_ctx_get_error(ctx));
	/* without the node: vfio is not loaded, and binding loads it */
	snprintf(root, sizeof(root), "%s/sriov-nic/sys", fixture_dir());
	cr_assert_eq(iovk_ctx_set_dev_root(ctx, root), 0); /* a directory without vfio/ */
	cr_assert_eq(iovk_vfio_iommu_new(ctx, IOVK_VFIO_MODE_TYPE1V2, &iommu), -ENOENT);
	cr_expect(strstr(iovk_ctx_get_error(ctx), "the vfio module is not loaded"), "%s", iovk_ctx_get_error(ctx));
	iovk_ctx_unref(ctx);
}

Test(vfio_fixture, iommufd_without_kernel_support)
{
	struct iovk_ctx *ctx = fixture_ctx("sriov-nic");
	struct iovk_vfio_iommu *iommu = NULL;

	/* the fixture has no /dev/iommu: a kernel without CONFIG_IOMMUFD */
	cr_assert_eq(iovk_vfio_iommu_new(ctx, IOVK_VFIO_MODE_IOMMUFD, &iommu), -ENOENT);
	cr_assert_null(iommu);
	cr_expect(strstr(iovk_ctx_get_error(ctx), "/dev/iommu does not exist: this kernel has no iommufd"), "%s",
		  iovk_ctx_get_error(ctx));
	cr_expect(strstr(iovk_ctx_get_error(ctx), "use the container backend"), "%s", iovk_ctx_get_error(ctx));
	cr_assert_eq(iovk_vfio_iommu_new(ctx, _IOVK_VFIO_MODE_MAX, &iommu), -EINVAL);
	cr_assert_null(iommu);
	iovk_ctx_unref(ctx);
}

Test(vfio_fixture, iommufd_node_fake_and_auto_fallback)
{
	const char *root = fixture_copy("sriov-nic");
	struct iovk_vfio_iommu *iommu = NULL;
	struct iovk_ctx *ctx;
	char path[PATH_MAX];
	FILE *f;

	/* /dev/iommu and /dev/vfio/devices present, but /dev/iommu is a plain file */
	snprintf(path, sizeof(path), "%s/dev/iommu", root);
	cr_assert_not_null(f = fopen(path, "we"));
	fclose(f);
	snprintf(path, sizeof(path), "%s/dev/vfio/devices", root);
	cr_assert_eq(mkdir(path, 0755), 0);
	ctx = fixture_ctx_at(root);
	cr_assert_eq(iovk_vfio_iommu_new(ctx, IOVK_VFIO_MODE_IOMMUFD, &iommu), -ENOTTY);
	cr_expect(strstr(iovk_ctx_get_error(ctx), "IOMMU_IOAS_ALLOC") && strstr(iovk_ctx_get_error(ctx), "not an iommufd"),
		  "%s", iovk_ctx_get_error(ctx));
	/* AUTO prefers iommufd here, finds it unusable and tries the container */
	cr_assert_eq(iovk_vfio_iommu_new(ctx, IOVK_VFIO_MODE_AUTO, &iommu), -ENOTTY);
	cr_assert_null(iommu);
	cr_expect(strstr(iovk_ctx_get_error(ctx), "/dev/vfio/vfio is not a VFIO container"), "%s",
		  iovk_ctx_get_error(ctx));
	iovk_ctx_unref(ctx);
}

Test(vfio_fixture, memfd_buffers)
{
	struct iovk_ctx *ctx = fixture_ctx("sriov-nic");
	struct iovk_vfio_buffer *b = NULL;
	long page = sysconf(_SC_PAGESIZE);
	struct stat st;
	uint8_t *p;

	cr_assert_eq(iovk_vfio_buffer_new(ctx, 1, 0, &b), 0);
	cr_expect_eq(iovk_vfio_buffer_get_size(b), (size_t)page);
	cr_expect(!iovk_vfio_buffer_is_hugetlb(b));
	p = iovk_vfio_buffer_get_addr(b);
	cr_expect_eq(p[0], 0);
	p[page - 1] = 0x5a;
	cr_assert_eq(fstat(iovk_vfio_buffer_get_fd(b), &st), 0);
	cr_expect_eq(st.st_size, page);
	iovk_vfio_buffer_free(b);
	cr_expect_null(iovk_vfio_buffer_free(NULL));

	cr_expect_eq(iovk_vfio_buffer_new(ctx, 0, 0, &b), -EINVAL);
	/* with huge pages asked for but none reserved, it falls back */
	cr_assert_eq(iovk_vfio_buffer_new(ctx, 3 * page, IOVK_VFIO_BUFFER_HUGETLB, &b), 0);
	cr_expect_geq(iovk_vfio_buffer_get_size(b), (size_t)(3 * page));
	iovk_vfio_buffer_free(b);
	iovk_ctx_unref(ctx);
}
