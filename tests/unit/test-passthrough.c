// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Passthrough against fixture copies. A fixture never probes, so a move to
 * vfio-pci always fails here: these tests prove the checks before anything
 * is written, the blockers and their reasons, the durable record and what
 * release does with it. The successful moves and releases are proven for
 * real in tests/vm/cases/75-passthrough.sh.
 */
#include <dirent.h>
#include <sys/stat.h>

#include "fixture.h"

static char *copy_host(const char *host)
{
	char *root = strdup(fixture_copy(host));

	cr_assert_not_null(root);
	return root;
}

/* The passthrough records in the context's run directory ("." files aside). */
static size_t n_records(struct iovk_ctx *ctx)
{
	char path[PATH_MAX];
	struct dirent *de;
	size_t n = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/passthrough", iovk_ctx_get_run_dir(ctx));
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void write_record(struct iovk_ctx *ctx, const char *name, const char *text)
{
	char dir[PATH_MAX], path[PATH_MAX * 2];
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/passthrough", iovk_ctx_get_run_dir(ctx));
	mkdir(dir, 0755);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "we");
	cr_assert_not_null(f);
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
}

static bool blocker_says(const struct iovk_passthrough *p, const char *address, const char *text)
{
	for (size_t i = 0; i < iovk_passthrough_get_n_blockers(p); i++) {
		const struct iovk_passthrough_blocker *b = iovk_passthrough_get_blocker(p, i);

		if (strcmp(b->address, address) == 0 && strstr(b->reason, text))
			return true;
	}
	return false;
}

/* The sysfs files a move writes, as one string, to compare before and after. */
static char *sysfs_writes(const char *root, const char *const *bdfs, const char *const *drivers)
{
	static char buf[8192];
	size_t len = 0;

	buf[0] = '\0';
	len += (size_t)snprintf(buf + len, sizeof(buf) - len, "probe=%s|", slurp(root, "/sys/bus/pci/drivers_probe"));
	for (; *bdfs; bdfs++) {
		char rel[128];

		snprintf(rel, sizeof(rel), "/sys/bus/pci/devices/%s/driver_override", *bdfs);
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s=%s|", *bdfs, slurp(root, rel));
	}
	for (; *drivers; drivers++) {
		char rel[128];

		snprintf(rel, sizeof(rel), "/sys/bus/pci/drivers/%s/unbind", *drivers);
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s=%s|", *drivers, slurp(root, rel));
	}
	return strdup(buf);
}

Test(passthrough, gpu_group_blockers_named)
{
	struct iovk_ctx *ctx = fixture_ctx("gpu");
	struct iovk_passthrough *p = NULL;

	cr_assert_eq(iovk_passthrough_check(ctx, "01:00.0", &p), 0, "%s", iovk_ctx_get_error(ctx));
	cr_assert_str_eq(iovk_passthrough_get_address(p), "0000:01:00.0");
	cr_assert_eq(iovk_passthrough_get_iommu_group(p), 1);
	/* the root port is not an endpoint: not listed, not a blocker */
	cr_assert_eq(iovk_passthrough_get_n_devices(p), 2);
	cr_assert_str_eq(iovk_passthrough_get_device(p, 0)->address, "0000:01:00.0");
	cr_assert(iovk_passthrough_get_device(p, 0)->requested);
	cr_assert_str_eq(iovk_passthrough_get_device(p, 1)->driver, "snd_hda_intel");
	cr_assert_not(iovk_passthrough_get_device(p, 1)->requested);
	cr_assert_eq(iovk_passthrough_get_n_blockers(p), 2);
	/* the other function on its kernel driver, and the GPU itself as the boot VGA device */
	cr_assert(blocker_says(p, "0000:01:00.1", "bound to snd_hda_intel"));
	cr_assert_str_eq(iovk_passthrough_get_blocker(p, 1)->driver, "snd_hda_intel");
	cr_assert(blocker_says(p, "0000:01:00.0", "boot VGA"));
	/* each with its kind: the host-use rule's for the GPU, a kernel driver for its sibling */
	cr_assert_eq(iovk_passthrough_get_blocker(p, 0)->kind, IOVK_IN_USE_BOOT_VGA);
	cr_assert_eq(iovk_passthrough_get_blocker(p, 1)->kind, IOVK_IN_USE_KERNEL_DRIVER);
	cr_assert_str_eq(iovk_passthrough_get_blocker(p, 1)->object, "");
	cr_assert_null(iovk_passthrough_get_record(p));
	cr_assert_null(iovk_passthrough_get_device(p, 2));
	iovk_passthrough_free(p);
	iovk_ctx_unref(ctx);
}

Test(passthrough, refused_prepare_writes_nothing)
{
	char *root = copy_host("gpu");
	struct iovk_ctx *ctx = fixture_ctx_at(root);
	struct iovk_passthrough *p = (void *)0x1;
	static const char *const bdfs[] = { "0000:00:01.0", "0000:01:00.0", "0000:01:00.1", NULL };
	static const char *const drivers[] = { "nouveau", "snd_hda_intel", "pcieport", NULL };
	char *before = sysfs_writes(root, bdfs, drivers), *after;
	const char *err;

	cr_assert_eq(iovk_passthrough_prepare(ctx, "0000:01:00.0", 0, &p), -EBUSY);
	cr_assert_eq(p, (void *)0x1, "ret_ untouched on failure");
	err = iovk_ctx_get_error(ctx);
	cr_assert(strstr(err, "0000:01:00.1 (snd_hda_intel)"), "%s", err);
	cr_assert(strstr(err, "IOMMU group 1"), "%s", err);
	cr_assert(strstr(err, "nothing was changed"), "%s", err);
	after = sysfs_writes(root, bdfs, drivers);
	cr_assert_str_eq(after, before);
	cr_assert_eq(n_records(ctx), 0);
	free(before);
	free(after);
	free(root);
	iovk_ctx_unref(ctx);
}

Test(passthrough, group_on_vfio_pci_changes_nothing)
{
	char *root = copy_host("sriov-nic");
	struct iovk_ctx *ctx = fixture_ctx_at(root);
	struct iovk_passthrough *p = NULL;
	static const char *const bdfs[] = { "0000:01:10.2", NULL };
	static const char *const drivers[] = { "vfio-pci", NULL };
	char *before = sysfs_writes(root, bdfs, drivers), *after;
	const struct iovk_passthrough_device *d;

	cr_assert_eq(iovk_passthrough_prepare(ctx, "01:10.2", 0, &p), 0, "%s", iovk_ctx_get_error(ctx));
	cr_assert_eq(iovk_passthrough_get_iommu_group(p), 6);
	cr_assert_eq(iovk_passthrough_get_n_devices(p), 1);
	cr_assert_eq(iovk_passthrough_get_n_blockers(p), 0);
	d = iovk_passthrough_get_device(p, 0);
	cr_assert_str_eq(d->address, "0000:01:10.2");
	cr_assert_str_eq(d->driver, "vfio-pci");
	cr_assert_str_eq(d->previous_driver, "vfio-pci");
	cr_assert(d->requested);
	cr_assert_not(d->changed);
	/* nothing moved: nothing to undo, so no record */
	cr_assert_null(iovk_passthrough_get_record(p));
	cr_assert_eq(n_records(ctx), 0);
	after = sysfs_writes(root, bdfs, drivers);
	cr_assert_str_eq(after, before);
	iovk_passthrough_free(p);

	/* and so nothing to release */
	p = (void *)0x1;
	cr_assert_eq(iovk_passthrough_release(ctx, "0000:01:10.2", &p), 0, "%s", iovk_ctx_get_error(ctx));
	cr_assert_null(p);
	free(before);
	free(after);
	free(root);
	iovk_ctx_unref(ctx);
}

Test(passthrough, failed_bind_puts_back_and_drops_the_record)
{
	char *root = copy_host("sriov-nic");
	struct iovk_ctx *ctx = fixture_ctx_at(root);
	struct iovk_passthrough *p = NULL;
	const char *err;

	/* 01:00.1: a PF without VFs, its interface down: nothing blocks, but a
	 * fixture's vfio-pci never takes it, so the group bind fails and is undone */
	cr_assert_eq(iovk_passthrough_check(ctx, "01:00.1", &p), 0);
	cr_assert_eq(iovk_passthrough_get_n_blockers(p), 0, "%s", iovk_passthrough_get_blocker(p, 0)->reason);
	iovk_passthrough_free(p);
	p = NULL;
	cr_assert_lt(iovk_passthrough_prepare(ctx, "01:00.1", 0, &p), 0);
	cr_assert_null(p);
	err = iovk_ctx_get_error(ctx);
	cr_assert(strstr(err, "0000:01:00.1"), "%s", err);
	cr_assert(strstr(err, "put back"), "%s", err);
	cr_assert_not(strstr(err, "stay recorded"), "%s", err);
	/* it was moved (unbind written) and put back (override cleared again) */
	cr_assert_str_eq(slurp(root, "/sys/bus/pci/drivers/ixgbe/unbind"), "0000:01:00.1");
	cr_assert_str_eq(slurp(root, "/sys/bus/pci/devices/0000:01:00.1/driver_override"), "\n");
	cr_assert_eq(n_records(ctx), 0);
	free(root);
	iovk_ctx_unref(ctx);
}

Test(passthrough, record_is_written_before_any_sysfs_write)
{
	char *root = copy_host("sriov-nic");
	struct iovk_ctx *ctx = fixture_ctx_at(root);
	struct iovk_passthrough *p = NULL;
	char path[PATH_MAX];
	const char *err;

	/* the temporary file cannot be created: the record fails, and the
	 * device must not have been touched */
	snprintf(path, sizeof(path), "%s/passthrough/0000:01:00.1.tmp", iovk_ctx_get_run_dir(ctx));
	fixture_mkdir("", path);
	cr_assert_lt(iovk_passthrough_prepare(ctx, "01:00.1", 0, &p), 0);
	err = iovk_ctx_get_error(ctx);
	cr_assert(strstr(err, "writing passthrough record"), "%s", err);
	cr_assert_str_eq(slurp(root, "/sys/bus/pci/drivers/ixgbe/unbind"), "");
	cr_assert_str_eq(slurp(root, "/sys/bus/pci/devices/0000:01:00.1/driver_override"), "(null)\n");
	free(root);
	iovk_ctx_unref(ctx);
}

Test(passthrough, host_uses_of_the_device_block)
{
	char *root = copy_host("sriov-nic");
	struct iovk_ctx *ctx = fixture_ctx_at(root);
	struct iovk_passthrough *p = NULL;
	const char *dev1 = "/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.1";

	/* PF with VFs, its interface up */
	cr_assert_eq(iovk_passthrough_check(ctx, "01:00.0", &p), 0);
	cr_assert_eq(iovk_passthrough_get_n_blockers(p), 4);
	cr_assert(blocker_says(p, "0000:01:00.0", "PF with 2 VFs enabled"));
	cr_assert(blocker_says(p, "0000:01:00.0", "network interface enp1s0f0 is up"));
	/* and the VFs it would destroy (the host-use rule, lib/core/in-use.c) */
	cr_assert(blocker_says(p, "0000:01:10.0", "enp1s0f0v0 is up"));
	cr_assert(blocker_says(p, "0000:01:10.2", "there to be assigned to a guest"));
	p = iovk_passthrough_free(p);
	/* a VF whose interface is up */
	cr_assert_eq(iovk_passthrough_check(ctx, "01:10.0", &p), 0);
	cr_assert_eq(iovk_passthrough_get_n_blockers(p), 1);
	cr_assert(blocker_says(p, "0000:01:10.0", "enp1s0f0v0 is up"));
	p = iovk_passthrough_free(p);

	/* an interface of a child device (virtio-net's sits below virtioN/),
	 * up by IFF_UP in flags whatever operstate says */
	fixture_mkdir(root, "/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.1/virtio3/net/eth9");
	fixture_write(root, "/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.1/virtio3/net/eth9/flags", "0x1003\n");
	fixture_write(root, "/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.1/virtio3/net/eth9/operstate", "down\n");
	fixture_symlink(root, "../../devices/pci0000:00/0000:00:01.0/0000:01:00.1/virtio3/net/eth9", "/sys/class/net/eth9");
	cr_assert_eq(iovk_passthrough_check(ctx, "01:00.1", &p), 0);
	cr_assert_eq(iovk_passthrough_get_n_blockers(p), 1);
	cr_assert(blocker_says(p, "0000:01:00.1", "eth9 is up"));
	p = iovk_passthrough_free(p);
	fixture_write(root, "/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.1/virtio3/net/eth9/flags", "0x1002\n");
	cr_assert_eq(iovk_passthrough_check(ctx, "01:00.1", &p), 0);
	cr_assert_eq(iovk_passthrough_get_n_blockers(p), 0);
	p = iovk_passthrough_free(p);

	/* block devices below it: mounted (by number, and by name as btrfs
	 * shows it), swap, held by device-mapper; an unused one is fine */
	{
		static const char *const parts[][2] = { { "sdb", "8:16" }, { "sdb1", "8:17" }, { "sdb2", "8:18" },
							{ "sdb3", "8:19" }, { "sdb4", "8:20" }, { "sdb5", "8:21" } };
		char rel[PATH_MAX], target[PATH_MAX];

		for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
			snprintf(rel, sizeof(rel), "%s/host2/target2:0:0/2:0:0:0/block/%s", dev1, parts[i][0]);
			fixture_mkdir(root, rel);
			snprintf(rel, sizeof(rel), "%s/host2/target2:0:0/2:0:0:0/block/%s/holders", dev1, parts[i][0]);
			fixture_mkdir(root, rel);
			snprintf(rel, sizeof(rel), "%s/host2/target2:0:0/2:0:0:0/block/%s/dev", dev1, parts[i][0]);
			fixture_write(root, rel, parts[i][1]);
			if (i == 0)
				fixture_mkdir(root, "/sys/class/block");
			snprintf(target, sizeof(target), "../../%s/host2/target2:0:0/2:0:0:0/block/%s", dev1 + 5,
				 parts[i][0]);
			snprintf(rel, sizeof(rel), "/sys/class/block/%s", parts[i][0]);
			fixture_symlink(root, target, rel);
		}
		snprintf(rel, sizeof(rel), "%s/host2/target2:0:0/2:0:0:0/block/sdb4/holders/dm-0", dev1);
		fixture_mkdir(root, rel);
		fixture_mkdir(root, "/proc/self");
		fixture_write(root, "/proc/self/mountinfo",
			   "22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
			   "29 1 8:17 / /srv rw,relatime shared:1 - ext4 /dev/sdb1 rw\n"
			   "30 1 0:45 / /data rw,relatime shared:2 - btrfs /dev/sdb2 rw\n");
		fixture_write(root, "/proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n/dev/sdb3 partition 1000 0 -2\n");
	}
	cr_assert_eq(iovk_passthrough_check(ctx, "01:00.1", &p), 0);
	cr_assert(blocker_says(p, "0000:01:00.1", "sdb1 is mounted on /srv"));
	cr_assert(blocker_says(p, "0000:01:00.1", "sdb2 is mounted on /data"));
	cr_assert(blocker_says(p, "0000:01:00.1", "sdb3 is in use as swap"));
	cr_assert(blocker_says(p, "0000:01:00.1", "sdb4 is held by dm-0"));
	cr_assert_eq(iovk_passthrough_get_n_blockers(p), 4);
	cr_assert_eq(iovk_passthrough_prepare(ctx, "01:00.1", 0, &(struct iovk_passthrough *){ NULL }), -EBUSY);
	cr_assert(strstr(iovk_ctx_get_error(ctx), "sdb1 is mounted on /srv"), "%s", iovk_ctx_get_error(ctx));
	cr_assert_str_eq(slurp(root, "/sys/bus/pci/drivers/ixgbe/unbind"), "");
	iovk_passthrough_free(p);
	free(root);
	iovk_ctx_unref(ctx);
}

Test(passthrough, other_hosts_and_bad_arguments)
{
	struct iovk_ctx *ctx = fixture_ctx("switch-noacs");
	struct iovk_passthrough *p = NULL;

	/* bridges and the unbound 04:00.1 are fine; the NVMe drive on nvme is not */
	cr_assert_eq(iovk_passthrough_check(ctx, "04:00.0", &p), 0);
	cr_assert_eq(iovk_passthrough_get_n_devices(p), 3);
	cr_assert_eq(iovk_passthrough_get_n_blockers(p), 1);
	cr_assert(blocker_says(p, "0000:05:00.0", "bound to nvme"));
	p = iovk_passthrough_free(p);
	cr_assert_eq(iovk_passthrough_check(ctx, "00:1c.0", &p), -EINVAL);
	cr_assert(strstr(iovk_ctx_get_error(ctx), "PCI bridge"), "%s", iovk_ctx_get_error(ctx));
	cr_assert_eq(iovk_passthrough_prepare(ctx, "0000:09:00.0", 0, &p), -ENODEV);
	cr_assert_eq(iovk_passthrough_prepare(ctx, "0000:zz:00.0", 0, &p), -EINVAL);
	cr_assert_eq(iovk_passthrough_release(ctx, "0000:zz:00.0", &p), -EINVAL);
	cr_assert_eq(iovk_passthrough_release(ctx, "0000:09:00.0", &p), -ENODEV);
	cr_assert_eq(iovk_passthrough_release(ctx, NULL, &p), -EINVAL);
	cr_assert_null(p);
	iovk_passthrough_free(NULL);
	iovk_ctx_unref(ctx);

	ctx = fixture_ctx("iommu-off");
	cr_assert_eq(iovk_passthrough_prepare(ctx, "01:10.2", 0, &p), -ENOENT);
	cr_assert(strstr(iovk_ctx_get_error(ctx), "no IOMMU group"), "%s", iovk_ctx_get_error(ctx));
	iovk_ctx_unref(ctx);
}

Test(passthrough, release_from_the_record_alone)
{
	char *root = copy_host("gpu");
	struct iovk_ctx *ctx = fixture_ctx_at(root), *other;
	struct iovk_passthrough *p = NULL;
	char path[PATH_MAX];

	/* What a prepare that died would leave: a record, nothing else. The
	 * devices are on vfio-pci, as recorded before: nothing to move back.
	 * Found from the other function's address. */
	write_record(ctx, "0000:02:00.0",
		     "iovkit-passthrough 1\naddress 0000:02:00.0\ngroup 4\n"
		     "device 0000:02:00.0 vfio-pci vfio-pci\ndevice 0000:02:00.1 vfio-pci vfio-pci\n");
	cr_assert_eq(iovk_ctx_new(&other), 0);
	snprintf(path, sizeof(path), "%s/sys", root);
	cr_assert_eq(iovk_ctx_set_sysfs_root(other, path), 0);
	cr_assert_eq(iovk_ctx_set_run_dir(other, iovk_ctx_get_run_dir(ctx)), 0);
	cr_assert_eq(iovk_passthrough_release(other, "02:00.1", &p), 1, "%s", iovk_ctx_get_error(other));
	cr_assert_eq(iovk_passthrough_get_iommu_group(p), 4);
	cr_assert_eq(iovk_passthrough_get_n_devices(p), 2);
	cr_assert(iovk_passthrough_get_device(p, 1)->requested);
	cr_assert_not(iovk_passthrough_get_device(p, 0)->changed);
	cr_assert_str_eq(iovk_passthrough_get_device(p, 0)->previous_driver, "vfio-pci");
	cr_assert(strstr(iovk_passthrough_get_record(p), "/passthrough/0000:02:00.0"), "%s",
		  iovk_passthrough_get_record(p));
	cr_assert_eq(n_records(ctx), 0);
	cr_assert_str_eq(slurp(root, "/sys/bus/pci/drivers_probe"), "");
	p = iovk_passthrough_free(p);
	/* released once: the second time there is nothing */
	cr_assert_eq(iovk_passthrough_release(other, "02:00.1", &p), 0);
	cr_assert_null(p);
	iovk_ctx_unref(other);

	/* A record saying 01:00.1 was on no driver: release tries to move it
	 * there (unbind written) and checks the driver link, which a fixture
	 * never changes: the failure names the device and the record stays
	 * for another try. */
	write_record(ctx, "0000:01:00.1",
		     "iovkit-passthrough 1\naddress 0000:01:00.1\ngroup 1\ndevice 0000:01:00.1 - -\n");
	cr_assert_lt(iovk_passthrough_release(ctx, "01:00.1", &p), 0);
	cr_assert_null(p);
	cr_assert(strstr(iovk_ctx_get_error(ctx), "0000:01:00.1"), "%s", iovk_ctx_get_error(ctx));
	cr_assert(strstr(iovk_ctx_get_error(ctx), "is kept"), "%s", iovk_ctx_get_error(ctx));
	cr_assert_str_eq(slurp(root, "/sys/bus/pci/drivers/snd_hda_intel/unbind"), "0000:01:00.1");
	cr_assert_eq(n_records(ctx), 1);
	free(root);
	iovk_ctx_unref(ctx);
}

Test(passthrough, corrupt_records_are_refused)
{
	struct iovk_ctx *ctx = fixture_ctx("gpu");
	struct iovk_passthrough *p = NULL;
	static const char *const bad[] = {
		"",
		"iovkit-passthrough 2\naddress 0000:02:00.0\ngroup 4\ndevice 0000:02:00.0 vfio-pci -\n",
		"iovkit-passthrough 1\naddress 0000:02:00.0\ngroup 4\n",
		"iovkit-passthrough 1\naddress 0000:02:00.0\ngroup 4\ndevice 0000:02:00.0 ../evil -\n",
		"iovkit-passthrough 1\naddress 0000:02:00.0\ngroup -4\ndevice 0000:02:00.0 vfio-pci -\n",
		"iovkit-passthrough 1\naddress 0000:02:00.0\ngroup 4\ndevice 0000:02:00.0 vfio-pci - extra\n",
		"iovkit-passthrough 1\naddress zz\ngroup 4\ndevice 0000:02:00.0 vfio-pci -\n",
		"iovkit-passthrough 1\naddress 0000:02:00.0\ngroup 4x\ndevice 0000:02:00.0 vfio-pci -\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		write_record(ctx, "0000:02:00.0", bad[i]);
		cr_assert_eq(iovk_passthrough_release(ctx, "02:00.0", &p), -EBADMSG, "record %zu", i);
		cr_assert(strstr(iovk_ctx_get_error(ctx), "is not a passthrough record"), "%s",
			  iovk_ctx_get_error(ctx));
		cr_assert_eq(n_records(ctx), 1, "a corrupt record is never removed");
	}
	/* a broken record of another device does not stop this one */
	cr_assert_eq(iovk_passthrough_release(ctx, "02:00.1", &p), 0, "%s", iovk_ctx_get_error(ctx));
	cr_assert_null(p);
	iovk_ctx_unref(ctx);
}

/*
 * A holder (iovd) and iovctl never undo each other's passthrough: a record
 * names its holder, and prepare and release refuse a group another holder
 * (or iovctl, the holder of none) prepared, naming it.
 */
Test(passthrough, holders_refuse_each_other)
{
	char *root = copy_host("gpu");
	struct iovk_ctx *ctx = fixture_ctx_at(root);
	struct iovk_passthrough *p = NULL, **list = NULL;
	const char *holder = "iovd /org/iovkit/iovd1/allocation/7 (owner vm-1)";
	struct iovk_passthrough_opts o = { .sz = sizeof(o), .holder = holder };
	struct iovk_passthrough_opts other = { .sz = sizeof(other), .holder = "iovd /org/iovkit/iovd1/allocation/8" };
	const char *err;

	/* group 4 is on vfio-pci already: a holder gets a record all the same */
	cr_assert_eq(iovk_passthrough_prepare_opts(ctx, "02:00.0", &o, &p), 0, "%s", iovk_ctx_get_error(ctx));
	cr_assert_str_eq(iovk_passthrough_get_holder(p), holder);
	cr_assert_not_null(iovk_passthrough_get_record(p));
	cr_assert(strstr(slurp(iovk_ctx_get_run_dir(ctx), "/passthrough/0000:02:00.0"),
			 "\nholder iovd /org/iovkit/iovd1/allocation/7 (owner vm-1)\n"));
	p = iovk_passthrough_free(p);
	/* the same holder again: idempotent */
	cr_assert_eq(iovk_passthrough_prepare_opts(ctx, "02:00.1", &o, &p), 0, "%s", iovk_ctx_get_error(ctx));
	p = iovk_passthrough_free(p);

	/* iovctl (no holder), and another holder: refused, the holder named */
	cr_assert_eq(iovk_passthrough_prepare(ctx, "02:00.1", 0, &p), -EBUSY);
	err = iovk_ctx_get_error(ctx);
	cr_assert(strstr(err, "held by iovd /org/iovkit/iovd1/allocation/7 (owner vm-1)"), "%s", err);
	cr_assert_eq(iovk_passthrough_release(ctx, "02:00.1", &p), -EBUSY);
	cr_assert(strstr(iovk_ctx_get_error(ctx), "allocation/7"), "%s", iovk_ctx_get_error(ctx));
	cr_assert_eq(iovk_passthrough_release_opts(ctx, "02:00.0", &other, &p), -EBUSY);
	cr_assert_eq(n_records(ctx), 1);

	/* listed with its holder */
	cr_assert_eq(iovk_passthrough_list_records(ctx, &list), 1, "%s", iovk_ctx_get_error(ctx));
	cr_assert_str_eq(iovk_passthrough_get_holder(list[0]), holder);
	cr_assert_eq(iovk_passthrough_get_iommu_group(list[0]), 4);
	cr_assert_eq(iovk_passthrough_get_n_devices(list[0]), 2);
	cr_assert_str_eq(iovk_passthrough_get_device(list[0], 1)->previous_driver, "vfio-pci");
	cr_assert_str_eq(iovk_passthrough_get_device(list[0], 1)->driver, "vfio-pci");
	cr_assert_null(list[1]);
	iovk_passthrough_list_free(list);

	/* its holder releases it */
	cr_assert_eq(iovk_passthrough_release_opts(ctx, "02:00.1", &o, &p), 1, "%s", iovk_ctx_get_error(ctx));
	p = iovk_passthrough_free(p);
	cr_assert_eq(n_records(ctx), 0);

	/* the other way round: iovctl's record refuses a holder */
	cr_assert_eq(iovk_passthrough_prepare(ctx, "02:00.0", 0, &p), 0, "%s", iovk_ctx_get_error(ctx));
	p = iovk_passthrough_free(p);
	write_record(ctx, "0000:02:00.0", "iovkit-passthrough 1\naddress 0000:02:00.0\ngroup 4\n"
		     "device 0000:02:00.0 vfio-pci vfio-pci\ndevice 0000:02:00.1 vfio-pci vfio-pci\n");
	cr_assert_eq(iovk_passthrough_prepare_opts(ctx, "02:00.1", &o, &p), -EBUSY);
	err = iovk_ctx_get_error(ctx);
	cr_assert(strstr(err, "prepared by iovctl passthrough prepare"), "%s", err);
	cr_assert_eq(iovk_passthrough_release_opts(ctx, "02:00.1", &o, &p), -EBUSY);
	cr_assert_eq(iovk_passthrough_release(ctx, "02:00.1", &p), 1, "%s", iovk_ctx_get_error(ctx));
	iovk_passthrough_free(p);

	/* a holder that would break the record's line format, a driver that is not VFIO's */
	o.holder = "two\nlines";
	cr_assert_eq(iovk_passthrough_prepare_opts(ctx, "02:00.1", &o, &p), -EINVAL);
	o.holder = holder;
	o.driver = "nouveau";
	cr_assert_eq(iovk_passthrough_prepare_opts(ctx, "02:00.1", &o, &p), -EINVAL);
	cr_assert(strstr(iovk_ctx_get_error(ctx), "vfio variant"), "%s", iovk_ctx_get_error(ctx));
	free(root);
	iovk_ctx_unref(ctx);
}

/* take: the other endpoints a caller may move from their kernel drivers are
 * judged by the host-use rule, not refused for being on one. */
Test(passthrough, take_lets_other_endpoints_go)
{
	struct iovk_ctx *ctx = fixture_ctx("gpu");
	static const char *const take[] = { "0000:01:00.1", NULL };
	struct iovk_passthrough_opts o = { .sz = sizeof(o), .take = take };
	struct iovk_passthrough *p = NULL;
	const char *err;

	cr_assert_eq(iovk_passthrough_prepare_opts(ctx, "01:00.0", &o, &p), -EBUSY);
	err = iovk_ctx_get_error(ctx);
	/* the GPU is still the boot VGA device; its audio function no longer blocks */
	cr_assert(strstr(err, "boot VGA"), "%s", err);
	cr_assert_null(strstr(err, "bound to snd_hda_intel"), "%s", err);
	iovk_ctx_unref(ctx);
}
