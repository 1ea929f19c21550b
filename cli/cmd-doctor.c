/* SPDX-License-Identifier: GPL-2.0-or-later */
/* iovctl doctor: host validation in the spirit of virt-host-validate. */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "iovctl.h"

enum status { PASS, WARN, FAIL };
static const char *const status_name[] = { "PASS", "WARN", "FAIL" };

struct report {
	struct cli *cli;
	struct json_object *checks;
	unsigned count[3];
};

static void check(struct report *rep, const char *name, enum status st, const char *hint, const char *format, ...)
	_printf_(5, 6);

static void check(struct report *rep, const char *name, enum status st, const char *hint, const char *format, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, format);
	vsnprintf(msg, sizeof(msg), format, ap);
	va_end(ap);
	rep->count[st]++;
	if (rep->cli->json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "name", json_object_new_string(name));
		json_object_object_add(o, "status", json_object_new_string(status_name[st]));
		json_object_object_add(o, "message", json_object_new_string(msg));
		json_object_object_add(o, "hint", hint ? json_object_new_string(hint) : NULL);
		json_object_array_add(rep->checks, o);
	} else {
		printf("%-4s %-22s %s\n", status_name[st], name, msg);
		if (hint && st != PASS)
			printf("     %-22s hint: %s\n", "", hint);
	}
}

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
	struct report rep = { .cli = cli };
	struct iovk_iommu_host_state hs;
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
	rep.checks = json_object_new_array();

	if (hs.enabled)
		check(&rep, "iommu", PASS, NULL, "IOMMU enabled (%s, %u groups%s)", hs.vendor[0] ? hs.vendor : "unknown vendor",
		      hs.n_groups, hs.passthrough ? ", passthrough default domains" : "");
	else if (hs.n_units > 0)
		check(&rep, "iommu", FAIL, "boot with intel_iommu=on (Intel) or check amd_iommu= (AMD)",
		      "IOMMU hardware found (%s) but no IOMMU groups: the kernel does not use it", hs.vendor);
	else if (strcmp(hs.cmdline_intel_iommu, "on") == 0 || strncmp(hs.cmdline_intel_iommu, "on,", 3) == 0)
		check(&rep, "iommu", FAIL, "enable VT-d / AMD-Vi (IOMMU) in the firmware setup",
		      "IOMMU is off: intel_iommu=on is set, but the firmware exposes no IOMMU (DMAR table)");
	else
		check(&rep, "iommu", FAIL,
		      "enable VT-d / AMD-Vi in the firmware and add intel_iommu=on (Intel; AMD enables it by default) "
		      "to the kernel command line",
		      "IOMMU is off: no IOMMU groups%s", hs.cmdline_intel_iommu[0] ? "" : ", and intel_iommu= is not on the kernel command line");

	if (!hs.enabled)
		check(&rep, "interrupt-remapping", WARN, "enable the IOMMU first", "cannot tell without an IOMMU");
	else if (hs.intremap == IOVK_YES)
		check(&rep, "interrupt-remapping", PASS, NULL, "interrupt remapping in use");
	else if (hs.allow_unsafe_interrupts == IOVK_YES)
		check(&rep, "interrupt-remapping", WARN, "only acceptable for trusted guests",
		      "no interrupt remapping; vfio_iommu_type1 allow_unsafe_interrupts=1 lets VFIO run without it");
	else if (hs.intremap == IOVK_NO)
		check(&rep, "interrupt-remapping", FAIL,
		      "enable interrupt remapping (x2APIC/IR in firmware; do not boot with intremap=off), or as a last "
		      "resort set vfio_iommu_type1 allow_unsafe_interrupts=1",
		      "no interrupt remapping: VFIO refuses to attach groups (EPERM) without it");
	else
		check(&rep, "interrupt-remapping", WARN, "check 'dmesg | grep -i remapping'",
		      "could not tell whether interrupt remapping is in use");

	if (hs.vfio_pci_loaded && hs.vfio_container)
		check(&rep, "vfio", PASS, NULL, "vfio and vfio-pci loaded, container device present");
	else if (hs.vfio_pci_loaded || hs.vfio_loaded)
		check(&rep, "vfio", WARN, "modprobe vfio-pci", "vfio loaded, but %s",
		      hs.vfio_pci_loaded ? "no container device node" : "vfio-pci is not");
	else
		check(&rep, "vfio", WARN, "iovctl bind DEV vfio-pci loads it on demand, or: modprobe vfio-pci",
		      "vfio-pci is not loaded");
	if (hs.iommufd)
		check(&rep, "iommufd", PASS, NULL, "iommufd available");

	if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0) {
		if (rl.rlim_cur == RLIM_INFINITY)
			check(&rep, "memlock", PASS, NULL, "memlock limit unlimited");
		else if (geteuid() == 0)
			check(&rep, "memlock", PASS, NULL,
			      "memlock limit %llu KiB, but root (CAP_IPC_LOCK) may pin beyond it",
			      (unsigned long long)rl.rlim_cur / 1024);
		else
			check(&rep, "memlock", WARN,
			      "a VMM pins all guest memory: raise it (LimitMEMLOCK= in its unit, or ulimit -l)",
			      "memlock limit %llu KiB", (unsigned long long)rl.rlim_cur / 1024);
	}

	huge = meminfo_value(cli, "HugePages_Total");
	hsize = meminfo_value(cli, "Hugepagesize");
	if (huge > 0)
		check(&rep, "hugepages", PASS, NULL, "%lld hugepages of %lld KiB reserved", huge, hsize);
	else if (huge == 0)
		check(&rep, "hugepages", WARN, "reserve some: sysctl vm.nr_hugepages=N, or hugepages=N at boot",
		      "no hugepages reserved (guests and the DMA benchmark fall back to 4 KiB pages)");
	else
		check(&rep, "hugepages", WARN, NULL, "cannot read %s/meminfo", iovk_ctx_get_proc_root(cli->ctx));

	if (cli->json) {
		struct json_object *o = json_object_new_object(), *s = json_object_new_object();

		json_object_object_add(o, "checks", rep.checks);
		json_object_object_add(s, "pass", json_object_new_int((int)rep.count[PASS]));
		json_object_object_add(s, "warn", json_object_new_int((int)rep.count[WARN]));
		json_object_object_add(s, "fail", json_object_new_int((int)rep.count[FAIL]));
		json_object_object_add(o, "summary", s);
		print_json(o);
	} else {
		json_object_put(rep.checks);
		printf("\nPASS %u, WARN %u, FAIL %u\n", rep.count[PASS], rep.count[WARN], rep.count[FAIL]);
	}
	return rep.count[FAIL] ? EXIT_FAILED : EXIT_OK;
}
