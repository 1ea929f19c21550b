// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Public entry points check their arguments: a NULL where an object, an
 * address or a place for the result belongs is -EINVAL, never a crash
 * (systemd's assert_return()). One test per module, so a crash names it.
 */
#include "fixture.h"

Test(args, context_and_config)
{
	struct iovk_ctx *ctx = fixture_ctx("sriov-nic");
	struct iovk_config *config = NULL;
	struct iovk_plan *plan = NULL;

	cr_assert_eq(iovk_ctx_new(NULL), -EINVAL);
	cr_assert_eq(iovk_ctx_set_sysfs_root(NULL, "/sys"), -EINVAL);
	cr_assert_eq(iovk_ctx_set_sysfs_root(ctx, NULL), -EINVAL);
	cr_assert_eq(iovk_ctx_set_dev_root(NULL, "/dev"), -EINVAL);
	cr_assert_eq(iovk_ctx_set_proc_root(NULL, "/proc"), -EINVAL);
	cr_assert_eq(iovk_ctx_set_run_dir(NULL, "/run/iovkit"), -EINVAL);
	cr_assert_eq(iovk_ctx_set_pci_ids(NULL, NULL), -EINVAL);
	cr_assert_eq(iovk_ctx_set_timeout_ms(NULL, 10), -EINVAL);
	cr_assert_eq(iovk_config_new(NULL, &config), -EINVAL);
	cr_assert_eq(iovk_config_new(ctx, NULL), -EINVAL);
	cr_assert_eq(iovk_config_new(ctx, &config), 0);
	cr_assert_eq(iovk_config_add_file(NULL, "x"), -EINVAL);
	cr_assert_eq(iovk_config_add_file(config, NULL), -EINVAL);
	cr_assert_eq(iovk_config_add_string(config, "x", NULL), -EINVAL);
	cr_assert_eq(iovk_config_add_string(config, NULL, "{}"), -EINVAL);
	cr_assert_eq(iovk_config_add_directory(config, NULL), -EINVAL);
	cr_assert_eq(iovk_plan_new(NULL, config, 0, &plan), -EINVAL);
	cr_assert_eq(iovk_plan_new(ctx, NULL, 0, &plan), -EINVAL);
	cr_assert_eq(iovk_plan_new(ctx, config, 0, NULL), -EINVAL);
	cr_assert_eq(iovk_plan_apply(NULL), -EINVAL);
	iovk_config_unref(config);
	iovk_ctx_unref(ctx);
}

Test(args, devices_and_binding)
{
	struct iovk_ctx *ctx = fixture_ctx("sriov-nic");
	struct iovk_device *d = NULL, **list = NULL;
	struct iovk_pci_addr a;
	char buf[64];
	size_t n;

	cr_assert_eq(iovk_pci_addr_parse(NULL, &a), -EINVAL);
	cr_assert_eq(iovk_pci_addr_parse("01:00.0", NULL), -EINVAL);
	cr_assert_eq(iovk_device_new(NULL, "01:00.0", &d), -EINVAL);
	cr_assert_eq(iovk_device_new(ctx, NULL, &d), -EINVAL);
	cr_assert_eq(iovk_device_new(ctx, "01:00.0", NULL), -EINVAL);
	cr_assert_eq(iovk_device_enumerate(NULL, &list, &n), -EINVAL);
	cr_assert_eq(iovk_device_enumerate(ctx, NULL, &n), -EINVAL);
	cr_assert_eq(iovk_device_check_in_use(NULL, "01:00.0", 0, &(struct iovk_in_use *){ NULL }), -EINVAL);
	cr_assert_eq(iovk_device_bind(NULL, "01:00.0", "vfio-pci", 0, NULL), -EINVAL);
	cr_assert_eq(iovk_device_bind(ctx, NULL, "vfio-pci", 0, NULL), -EINVAL);
	cr_assert_eq(iovk_device_unbind(NULL, "01:00.0", 0, NULL), -EINVAL);
	cr_assert_eq(iovk_device_unbind(ctx, NULL, 0, NULL), -EINVAL);
	cr_assert_eq(iovk_device_restore(NULL, "01:00.0", 0, NULL), -EINVAL);
	cr_assert_eq(iovk_device_restore(ctx, NULL, 0, NULL), -EINVAL);
	cr_assert_eq(iovk_device_bind_undo(NULL, "01:00.0", &(struct iovk_bind_result)IOVK_BIND_RESULT_INIT), -EINVAL);
	cr_assert_eq(iovk_device_read_driver(NULL, "01:00.0", buf, sizeof(buf)), -EINVAL);
	cr_assert_eq(iovk_device_read_driver(ctx, "01:00.0", NULL, sizeof(buf)), -EINVAL);
	cr_assert_eq(iovk_device_read_iommu_group(NULL, "01:00.0"), -EINVAL);
	cr_assert_eq(iovk_device_read_iommu_group(ctx, NULL), -EINVAL);
	cr_assert_eq(iovk_device_find_kernel_driver(NULL, "01:00.0", 0, buf, sizeof(buf)), -EINVAL);
	cr_assert_eq(iovk_device_find_kernel_driver(ctx, "01:00.0", 0, NULL, 0), -EINVAL);
	cr_assert_eq(iovk_device_get_vf_index(NULL), -EINVAL);
	cr_assert_eq(iovk_device_resolve_name(NULL, "01:00.0", buf), -EINVAL);
	cr_assert_eq(iovk_device_resolve_name(ctx, NULL, buf), -EINVAL);
	iovk_ctx_unref(ctx);
}

Test(args, iommu_and_passthrough)
{
	struct iovk_ctx *ctx = fixture_ctx("sriov-nic");
	struct iovk_iommu_group *g = NULL, **groups = NULL;
	struct iovk_passthrough *p = NULL, **list = NULL;
	char *path = NULL;
	struct iovk_reserved_region *regions = NULL;
	size_t n;

	cr_assert_eq(iovk_iommu_group_new(NULL, 3, &g), -EINVAL);
	cr_assert_eq(iovk_iommu_group_new(ctx, 3, NULL), -EINVAL);
	cr_assert_eq(iovk_iommu_group_enumerate(NULL, &groups, &n), -EINVAL);
	cr_assert_eq(iovk_iommu_group_enumerate(ctx, NULL, &n), -EINVAL);
	cr_assert_eq(iovk_iommu_parse_reserved_regions(NULL, &regions, &n), -EINVAL);
	cr_assert_eq(iovk_iommu_parse_reserved_regions("", NULL, &n), -EINVAL);
	cr_assert_eq(iovk_iommu_group_bind(NULL, 3, "vfio-pci", 0, NULL), -EINVAL);
	cr_assert_eq(iovk_iommu_group_vfio_is_open(NULL, 3), -EINVAL);
	cr_assert_eq(iovk_passthrough_check(NULL, "01:00.0", &p), -EINVAL);
	cr_assert_eq(iovk_passthrough_check(ctx, NULL, &p), -EINVAL);
	cr_assert_eq(iovk_passthrough_check(ctx, "01:00.0", NULL), -EINVAL);
	cr_assert_eq(iovk_passthrough_prepare(NULL, "01:00.0", 0, &p), -EINVAL);
	cr_assert_eq(iovk_passthrough_prepare(ctx, "01:00.0", 0, NULL), -EINVAL);
	cr_assert_eq(iovk_passthrough_release(NULL, "01:00.0", &p), -EINVAL);
	cr_assert_eq(iovk_passthrough_release(ctx, NULL, &p), -EINVAL);
	cr_assert_eq(iovk_passthrough_release(ctx, "01:00.0", NULL), -EINVAL);
	cr_assert_eq(iovk_passthrough_prepare_opts(NULL, "01:00.0", NULL, &p), -EINVAL);
	cr_assert_eq(iovk_passthrough_prepare_opts(ctx, NULL, NULL, &p), -EINVAL);
	cr_assert_eq(iovk_passthrough_prepare_opts(ctx, "01:00.0", NULL, NULL), -EINVAL);
	cr_assert_eq(iovk_passthrough_release_opts(NULL, "01:00.0", NULL, &p), -EINVAL);
	cr_assert_eq(iovk_passthrough_release_opts(ctx, NULL, NULL, &p), -EINVAL);
	cr_assert_eq(iovk_passthrough_release_opts(ctx, "01:00.0", NULL, NULL), -EINVAL);
	cr_assert_eq(iovk_passthrough_list_records(NULL, &list), -EINVAL);
	cr_assert_eq(iovk_passthrough_list_records(ctx, NULL), -EINVAL);
	cr_assert_eq(iovk_device_vfio_cdev_node(NULL, "01:00.0", &path), -EINVAL);
	cr_assert_eq(iovk_device_vfio_cdev_node(ctx, NULL, &path), -EINVAL);
	cr_assert_eq(iovk_device_vfio_cdev_node(ctx, "01:00.0", NULL), -EINVAL);
	cr_assert_eq(iovk_device_vfio_cdev_node(ctx, "01:00.0", &path), -ENOENT);
	iovk_ctx_unref(ctx);
}

Test(args, sriov_and_vfs)
{
	struct iovk_ctx *ctx = fixture_ctx("sriov-nic");
	struct iovk_sriov_pf *pf = NULL, **pfs = NULL;
	struct iovk_vf_list *list = NULL;
	struct iovk_vf_settings s = IOVK_VF_SETTINGS_INIT;
	size_t n;

	cr_assert_eq(iovk_sriov_pf_new(NULL, "01:00.0", &pf), -EINVAL);
	cr_assert_eq(iovk_sriov_pf_new(ctx, NULL, &pf), -EINVAL);
	cr_assert_eq(iovk_sriov_pf_new(ctx, "01:00.0", NULL), -EINVAL);
	cr_assert_eq(iovk_sriov_enumerate_pfs(NULL, &pfs, &n), -EINVAL);
	cr_assert_eq(iovk_sriov_enumerate_pfs(ctx, NULL, &n), -EINVAL);
	cr_assert_eq(iovk_sriov_set_numvfs(NULL, "01:00.0", 0, 0, 0), -EINVAL);
	cr_assert_eq(iovk_sriov_set_numvfs(ctx, NULL, 0, 0, 0), -EINVAL);
	cr_assert_eq(iovk_sriov_set_drivers_autoprobe(NULL, "01:00.0", true), -EINVAL);
	cr_assert_eq(iovk_sriov_set_drivers_autoprobe(ctx, NULL, true), -EINVAL);
	cr_assert_eq(iovk_vf_list_new(NULL, "lo", &list), -EINVAL);
	cr_assert_eq(iovk_vf_list_new(ctx, NULL, &list), -EINVAL);
	cr_assert_eq(iovk_vf_list_new(ctx, "lo", NULL), -EINVAL);
	cr_assert_eq(iovk_vf_set(NULL, "lo", 0, &s, NULL), -EINVAL);
	cr_assert_eq(iovk_vf_set(ctx, NULL, 0, &s, NULL), -EINVAL);
	cr_assert_eq(iovk_vf_set(ctx, "lo", 0, NULL, NULL), -EINVAL);
	cr_assert_eq(iovk_vf_settings_parse(ctx, 1, NULL, &s), -EINVAL);
	cr_assert_eq(iovk_vf_settings_parse(ctx, 0, (char *const[]){ NULL }, NULL), -EINVAL);
	cr_assert_eq(iovk_vf_parse_mac(NULL, (uint8_t[6]){ 0 }), -EINVAL);
	cr_assert_eq(iovk_vf_parse_vlan_proto(NULL, &(uint16_t){ 0 }), -EINVAL);
	cr_assert_eq(iovk_vf_parse_link_state(NULL, &(int){ 0 }), -EINVAL);
	iovk_ctx_unref(ctx);
}

Test(args, vfio)
{
	struct iovk_ctx *ctx = fixture_ctx("sriov-nic");
	struct iovk_vfio_iommu *iommu = NULL;
	struct iovk_vfio_device *dev = NULL;
	struct iovk_vfio_buffer *buf = NULL;
	struct iovk_iova_allocator *a = NULL;
	enum iovk_vfio_mode mode;
	uint64_t iova;

	cr_assert_eq(iovk_vfio_iommu_new(NULL, IOVK_VFIO_MODE_AUTO, &iommu), -EINVAL);
	cr_assert_eq(iovk_vfio_iommu_new(ctx, IOVK_VFIO_MODE_AUTO, NULL), -EINVAL);
	cr_assert_eq(iovk_vfio_device_open(NULL, "01:10.2", NULL, &dev), -EINVAL);
	cr_assert_eq(iovk_vfio_buffer_new(NULL, 4096, 0, &buf), -EINVAL);
	cr_assert_eq(iovk_vfio_buffer_new(ctx, 4096, 0, NULL), -EINVAL);
	cr_assert_eq(iovk_vfio_dma_map(NULL, NULL, 4096, NULL, &iova), -EINVAL);
	cr_assert_eq(iovk_vfio_dma_unmap(NULL, 0, 4096), -EINVAL);
	cr_assert_eq(iovk_vfio_mode_from_string(NULL, &mode), -EINVAL);
	cr_assert_eq(iovk_vfio_mode_from_string("auto", NULL), -EINVAL);
	cr_assert_eq(iovk_iova_allocator_new(NULL, 1, &a), -EINVAL);
	cr_assert_eq(iovk_iova_alloc(NULL, 4096, 4096, &iova), -EINVAL);
	cr_assert_eq(iovk_vfio_mapping_list_new(NULL), -EINVAL);
	iovk_ctx_unref(ctx);
}

Test(args, links)
{
	struct iovk_ctx *ctx = fixture_ctx("sriov-nic");
	struct iovk_link_info info = IOVK_LINK_INFO_INIT;
	struct iovk_macvtap_info mv = IOVK_MACVTAP_INFO_INIT;
	struct iovk_macvtap_opts mo = IOVK_MACVTAP_OPTS_INIT;
	struct iovk_bond_opts bo = IOVK_BOND_OPTS_INIT;
	struct iovk_bond_slave slave = IOVK_BOND_SLAVE_INIT;
	struct iovk_bond *b = NULL;
	enum iovk_macvtap_mode mode;
	const uint8_t mac[6] = { 2, 0, 0, 0, 0, 1 };

	cr_assert_eq(iovk_link_get(NULL, "lo", &info), -EINVAL);
	cr_assert_eq(iovk_link_get(ctx, NULL, &info), -EINVAL);
	cr_assert_eq(iovk_link_get(ctx, "lo", NULL), -EINVAL);
	cr_assert_eq(iovk_link_set_up(NULL, "lo", true), -EINVAL);
	cr_assert_eq(iovk_link_set_up(ctx, NULL, true), -EINVAL);
	cr_assert_eq(iovk_link_set_mac(ctx, NULL, mac), -EINVAL);
	cr_assert_eq(iovk_link_set_mac(ctx, "lo", NULL), -EINVAL);
	cr_assert_eq(iovk_link_set_mtu(NULL, "lo", 1500), -EINVAL);
	cr_assert_eq(iovk_link_delete(ctx, NULL), -EINVAL);
	cr_assert_eq(iovk_macvtap_create(NULL, "lo", NULL, NULL), -EINVAL);
	cr_assert_eq(iovk_macvtap_create(ctx, NULL, NULL, NULL), -EINVAL);
	cr_assert_eq(iovk_macvtap_get(ctx, NULL, &mv), -EINVAL);
	cr_assert_eq(iovk_macvtap_get(ctx, "lo", NULL), -EINVAL);
	cr_assert_eq(iovk_macvtap_mode_from_string(NULL, &mode), -EINVAL);
	cr_assert_eq(iovk_macvtap_mode_from_string("bridge", NULL), -EINVAL);
	cr_assert_eq(iovk_bond_create(NULL, "bond0", NULL), -EINVAL);
	cr_assert_eq(iovk_bond_create(ctx, NULL, NULL), -EINVAL);
	cr_assert_eq(iovk_bond_enslave(ctx, NULL, "eth0"), -EINVAL);
	cr_assert_eq(iovk_bond_enslave(ctx, "bond0", NULL), -EINVAL);
	cr_assert_eq(iovk_bond_release(ctx, NULL), -EINVAL);
	cr_assert_eq(iovk_bond_set_active_slave(ctx, "bond0", NULL), -EINVAL);
	cr_assert_eq(iovk_bond_wait_active(ctx, NULL, "eth0", 10, NULL), -EINVAL);
	cr_assert_eq(iovk_bond_wait_link_up(ctx, "bond0", NULL, 10, NULL), -EINVAL);
	cr_assert_eq(iovk_bond_read(ctx, "bond0", NULL), -EINVAL);
	cr_assert_eq(iovk_bond_read(NULL, "bond0", &b), -EINVAL);
	cr_assert_eq(iovk_bond_get_ifindex(NULL), -EINVAL);
	cr_assert_eq(iovk_bond_get_mode(NULL), -EINVAL);
	cr_assert_null(iovk_bond_get_name(NULL));
	cr_assert_null(iovk_bond_get_active_slave(NULL));
	cr_assert_eq(iovk_bond_get_n_slaves(NULL), 0);
	cr_assert_eq(iovk_bond_get_opts(NULL, &bo), -EINVAL);
	cr_assert_eq(iovk_bond_get_slave(NULL, 0, &slave), -EINVAL);
	cr_assert_null(iovk_bond_unref(NULL));
	/* sized structs: too small, or members this library does not know, refused before any request */
	mo.sz = 4;
	cr_assert_eq(iovk_macvtap_create(ctx, "lo", &mo, NULL), -EINVAL);
	cr_assert(strstr(iovk_ctx_get_error(ctx), "iovk_macvtap_opts"));
	bo.sz = sizeof(bo) + 8;
	{
		char big[sizeof(bo) + 8] = { 0 };

		memcpy(big, &bo, sizeof(bo));
		big[sizeof(bo) + 1] = 1;
		cr_assert_eq(iovk_bond_create(ctx, "bond0", (struct iovk_bond_opts *)big), -EINVAL);
	}
	info.sz = 2;
	cr_assert_eq(iovk_link_get(ctx, "lo", &info), -EINVAL);
	iovk_ctx_unref(ctx);
}

Test(args, datapath)
{
	struct iovk_ctx *ctx = fixture_ctx("sriov-nic");
	struct iovk_datapath_options small = { .sz = 8 };
	struct iovk_datapath *dp = NULL;
	struct iovk_dp_port_spec spec = IOVK_DP_PORT_SPEC_INIT;
	char *json = NULL;

	cr_assert_eq(iovk_dp_port_spec_parse(NULL, &spec), -EINVAL);
	cr_assert_eq(iovk_dp_port_spec_parse("tap:t0", NULL), -EINVAL);
	cr_assert_eq(iovk_datapath_new(NULL, NULL, &dp), -EINVAL);
	cr_assert_eq(iovk_datapath_new(ctx, NULL, NULL), -EINVAL);
	cr_assert_eq(iovk_datapath_new(ctx, &small, &dp), -EINVAL);
	cr_assert_eq(iovk_datapath_new(ctx, NULL, &dp), 0);
	cr_assert_eq(iovk_datapath_add_port(NULL, "tap:t0", NULL), -EINVAL);
	cr_assert_eq(iovk_datapath_add_port(dp, NULL, NULL), -EINVAL);
	cr_assert_eq(iovk_datapath_add_port_ops(dp, NULL, NULL, "x", NULL), -EINVAL);
	cr_assert_eq(iovk_datapath_run(NULL), -EINVAL);
	/* an odd number of ports (none) cannot run */
	cr_assert_eq(iovk_datapath_run(dp), -EINVAL);
	cr_assert_eq(iovk_datapath_stop(NULL), -EINVAL);
	cr_assert_eq(iovk_datapath_stats_json(NULL, &json), -EINVAL);
	cr_assert_eq(iovk_datapath_stats_json(dp, NULL), -EINVAL);
	cr_assert_eq(iovk_datapath_query_stats(NULL, &json), -EINVAL);
	cr_assert_eq(iovk_datapath_query_stats("/nonexistent/dp.sock", NULL), -EINVAL);
	/* the vfio port is built: on a host without VFIO it fails opening it, and says so */
	int r = iovk_datapath_add_port(dp, "vfio:0000:01:00.0", NULL);
	cr_assert(r < 0 && r != -EOPNOTSUPP, "%d", r);
	cr_assert(strstr(iovk_ctx_get_error(ctx), "vfio"), "%s", iovk_ctx_get_error(ctx));
	/* af-xdp names the interface it cannot find before anything else */
	cr_assert_eq(iovk_datapath_add_port(dp, "af-xdp:iovk-nosuch0", NULL), -ENODEV);
	cr_assert_str_eq(iovk_ctx_get_error(ctx), "af-xdp:iovk-nosuch0: no such network interface");
	cr_assert_eq(iovk_datapath_add_port(dp, "af-xdp:a/b", NULL), -EINVAL);
	cr_assert_eq(iovk_datapath_query_stats("/nonexistent/dp.sock", &json), -ENOENT);
	cr_assert_null(iovk_datapath_unref(dp));
	cr_assert_null(iovk_datapath_unref(NULL));
	iovk_ctx_unref(ctx);
}
