/* SPDX-License-Identifier: GPL-2.0-or-later */
/* iovctl doctor: host validation in the spirit of virt-host-validate. */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "iovctl.h"

static long long meminfo_value(struct cli *cli, const char *key)
{
	char path[4096], line[256];
	size_t klen = strlen(key);
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "%s/meminfo", iovk_ctx_get_proc_root(cli->ctx));
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			v = strtoll(line + klen + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static const char doctor_help[] =
	"Usage: iovctl doctor [--json]\n"
	"\n"
	"Check that this host can assign devices with VFIO: IOMMU enabled, interrupt\n"
	"remapping, VFIO modules and device nodes, the memlock limit, hugepages. Each\n"
	"check is PASS, WARN or FAIL with a hint. Exit status 1 when any check FAILs.\n";

int cmd_doctor(struct cli *cli, int argc, char **argv)
{
	struct report rep = {
		.cli = cli,
		.name_width = 22,
		.json_hint = true,
		.statuses = 1u << REPORT_PASS | 1u << REPORT_WARN | 1u << REPORT_FAIL,
	};
	struct iovk_iommu_host_state hs = IOVK_IOMMU_HOST_STATE_INIT;
	struct rlimit rl;
	long long huge, hsize;
	int r, i;

	i = parse_cmd_opts(cli, "doctor", doctor_help, argc, argv, NULL);
	if (i < 0)
		return i == -1 ? EXIT_OK : EXIT_USAGE;
	if (i < argc)
		return usage_error(cli, "doctor", "unexpected argument '%s'", argv[i]);
	r = iovk_iommu_get_host_state(cli->ctx, &hs);
	if (r < 0)
		return fail_lib(cli, r, "Failed to read the host's IOMMU state");

	if (hs.enabled)
		report_add(&rep, "iommu", REPORT_PASS, NULL, "IOMMU enabled (%s, %u groups%s)",
			   hs.vendor[0] ? hs.vendor : "unknown vendor", hs.n_groups,
			   hs.passthrough ? ", passthrough default domains" : "");
	else if (hs.n_units > 0)
		report_add(&rep, "iommu", REPORT_FAIL, "boot with intel_iommu=on (Intel) or check amd_iommu= (AMD)",
			   "IOMMU hardware found (%s) but no IOMMU groups: the kernel does not use it", hs.vendor);
	else if (strcmp(hs.cmdline_intel_iommu, "on") == 0 || strncmp(hs.cmdline_intel_iommu, "on,", 3) == 0)
		report_add(&rep, "iommu", REPORT_FAIL, "enable VT-d / AMD-Vi (IOMMU) in the firmware setup",
			   "IOMMU is off: intel_iommu=on is set, but the firmware exposes no IOMMU (DMAR table)");
	else
		report_add(&rep, "iommu", REPORT_FAIL,
			   "enable VT-d / AMD-Vi in the firmware and add intel_iommu=on (Intel; AMD enables it by "
			   "default) to the kernel command line",
			   "IOMMU is off: no IOMMU groups%s",
			   hs.cmdline_intel_iommu[0] ? "" : ", and intel_iommu= is not on the kernel command line");

	if (!hs.enabled)
		report_add(&rep, "interrupt-remapping", REPORT_WARN, "enable the IOMMU first",
			   "cannot tell without an IOMMU");
	else if (hs.intremap == IOVK_YES)
		report_add(&rep, "interrupt-remapping", REPORT_PASS, NULL, "interrupt remapping in use");
	else if (hs.allow_unsafe_interrupts == IOVK_YES)
		report_add(&rep, "interrupt-remapping", REPORT_WARN, "only acceptable for trusted guests",
			   "no interrupt remapping; vfio_iommu_type1 allow_unsafe_interrupts=1 lets VFIO run "
			   "without it");
	else if (hs.intremap == IOVK_NO)
		report_add(&rep, "interrupt-remapping", REPORT_FAIL,
			   "enable interrupt remapping (x2APIC/IR in firmware; do not boot with intremap=off), or as "
			   "a last resort set vfio_iommu_type1 allow_unsafe_interrupts=1",
			   "no interrupt remapping: VFIO refuses to attach groups (EPERM) without it");
	else
		report_add(&rep, "interrupt-remapping", REPORT_WARN, "check 'dmesg | grep -i remapping'",
			   "could not tell whether interrupt remapping is in use");

	if (hs.vfio_pci_loaded && hs.vfio_container)
		report_add(&rep, "vfio", REPORT_PASS, NULL, "vfio and vfio-pci loaded, container device present");
	else if (hs.vfio_pci_loaded || hs.vfio_loaded)
		report_add(&rep, "vfio", REPORT_WARN, "modprobe vfio-pci", "vfio loaded, but %s",
			   hs.vfio_pci_loaded ? "no container device node" : "vfio-pci is not");
	else
		report_add(&rep, "vfio", REPORT_WARN,
			   "iovctl bind DEV vfio-pci loads it on demand, or: modprobe vfio-pci",
			   "vfio-pci is not loaded");
	if (hs.iommufd)
		report_add(&rep, "iommufd", REPORT_PASS, NULL, "iommufd available");

	if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0) {
		if (rl.rlim_cur == RLIM_INFINITY)
			report_add(&rep, "memlock", REPORT_PASS, NULL, "memlock limit unlimited");
		else if (geteuid() == 0)
			report_add(&rep, "memlock", REPORT_PASS, NULL,
				   "memlock limit %llu KiB, but root (CAP_IPC_LOCK) may pin beyond it",
				   (unsigned long long)rl.rlim_cur / 1024);
		else
			report_add(&rep, "memlock", REPORT_WARN,
				   "a VMM pins all guest memory: raise it (LimitMEMLOCK= in its unit, or ulimit -l)",
				   "memlock limit %llu KiB", (unsigned long long)rl.rlim_cur / 1024);
	}

	huge = meminfo_value(cli, "HugePages_Total");
	hsize = meminfo_value(cli, "Hugepagesize");
	if (huge > 0)
		report_add(&rep, "hugepages", REPORT_PASS, NULL, "%lld hugepages of %lld KiB reserved", huge, hsize);
	else if (huge == 0)
		report_add(&rep, "hugepages", REPORT_WARN,
			   "reserve some: sysctl vm.nr_hugepages=N, or hugepages=N at boot",
			   "no hugepages reserved (guests and the DMA benchmark fall back to 4 KiB pages)");
	else
		report_add(&rep, "hugepages", REPORT_WARN, NULL, "cannot read %s/meminfo",
			   iovk_ctx_get_proc_root(cli->ctx));

	return report_finish(&rep, json_object_new_object(), "checks");
}
