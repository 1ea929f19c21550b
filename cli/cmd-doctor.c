/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * iovctl doctor: host validation in the spirit of virt-host-validate, and
 * what it checks for a VMM too: /dev/kvm, the cgroup controllers, and ACS on
 * the ports above assignable devices. It reads the IOMMU from sysfs groups
 * and DMAR units and interrupt remapping from the kernel's own state, so an
 * emulated VT-d (QEMU's intel-iommu) reads right where virt-host-validate,
 * looking for ACPI DMAR flags, warns.
 */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

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
	"remapping, VFIO modules and device nodes, the memlock limit, hugepages; and\n"
	"for a VMM, as virt-host-validate does: /dev/kvm, the cgroup controllers (cpu,\n"
	"cpuset, memory, devices, io, pids), and ACS on every PCIe port above an\n"
	"assignable device (naming the devices that share an IOMMU group for want of\n"
	"it). Each check is PASS, WARN or FAIL with a hint. Exit status 1 when any\n"
	"check FAILs.\n";

/* /dev/kvm as virt-host-validate asks: there, and open for reading and writing. */
static void check_kvm(struct cli *cli, struct report *rep)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/kvm", iovk_ctx_get_dev_root(cli->ctx));
	if (access(path, F_OK) < 0)
		report_add(rep, "kvm", REPORT_WARN,
			   "a VMM needs it: enable VT-x/AMD-V in the firmware and load kvm_intel or kvm_amd "
			   "(user-space drivers through VFIO do not)",
			   "%s does not exist: no hardware virtualization", path);
	else if (access(path, R_OK | W_OK) < 0)
		report_add(rep, "kvm", REPORT_WARN, "add the VMM's user to the kvm group (or run it as root)",
			   "%s exists, but this user cannot open it for reading and writing: %m", path);
	else
		report_add(rep, "kvm", REPORT_PASS, NULL, "%s exists and is accessible", path);
}

/*
 * The controllers virt-host-validate's QEMU checks ask for (cpu, cpuacct,
 * cpuset, memory, devices, blkio; libvirt's virHostValidateCGroupControllers),
 * with pids, which systemd and libvirt use to bound a VMM's tasks. On cgroup
 * v2 cpuacct is part of cpu, blkio is io, and devices is no controller: device
 * access is a BPF program (BPF_PROG_TYPE_CGROUP_DEVICE) the manager attaches.
 */
static void check_cgroups(struct cli *cli, struct report *rep)
{
	static const struct {
		const char *v2, *v1;
	} ctrls[] = { { "cpu", "cpu" }, { "cpuset", "cpuset" }, { "memory", "memory" },
		      { NULL, "devices" }, { "io", "blkio" }, { "pids", "pids" } };
	_cleanup_free_ char *have = NULL;
	char path[4096], name[32];
	size_t size = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/fs/cgroup/cgroup.controllers", iovk_ctx_get_sysfs_root(cli->ctx));
	f = fopen(path, "re");
	if (f) {
		ssize_t n = getline(&have, &size, f);

		fclose(f);
		if (n < 0) {
			free(have);
			have = strdup("");
		}
	}
	for (size_t i = 0; i < ELEMENTSOF(ctrls); i++) {
		snprintf(name, sizeof(name), "cgroup-%s", ctrls[i].v2 ?: ctrls[i].v1);
		if (have && !ctrls[i].v2) {
			report_add(rep, name, REPORT_PASS, NULL,
				   "cgroup v2: device access is a BPF program the VMM's manager attaches, not a "
				   "controller");
			continue;
		}
		if (have) {
			size_t len = strlen(ctrls[i].v2);
			bool found = false;

			for (const char *p = have; (p = strstr(p, ctrls[i].v2)); p += len)
				if ((p == have || p[-1] == ' ') && (p[len] == ' ' || p[len] == '\n' || !p[len]))
					found = true;
			if (found)
				report_add(rep, name, REPORT_PASS, NULL, "cgroup v2 controller %s available", ctrls[i].v2);
			else
				report_add(rep, name, REPORT_WARN,
					   "enable it in the kernel (CONFIG_CGROUP_*) or stop binding it to cgroup v1",
					   "cgroup v2 controller %s is not in %s", ctrls[i].v2, path);
			continue;
		}
		snprintf(path, sizeof(path), "%s/fs/cgroup/%s", iovk_ctx_get_sysfs_root(cli->ctx), ctrls[i].v1);
		if (access(path, F_OK) == 0)
			report_add(rep, name, REPORT_PASS, NULL, "cgroup v1 controller %s mounted at %s", ctrls[i].v1,
				   path);
		else
			report_add(rep, name, REPORT_WARN,
				   "mount the cgroup hierarchy (systemd does), or enable the controller in the kernel",
				   "no cgroup v2 hierarchy and no v1 %s controller at %s", ctrls[i].v1, path);
	}
}

/* PCI Express Capability: the Device/Port Type (PCIe r6.0 7.5.3.2), -1 without it. */
static int pcie_type(struct iovk_device *d)
{
	uint8_t cfg[256];
	ssize_t n = iovk_device_read_config(d, 0, cfg, sizeof(cfg));
	unsigned pos, hops = 0;

	if (n < 0x40 || !(cfg[0x06] & 0x10)) /* Status: Capabilities List */
		return -1;
	for (pos = cfg[0x34] & ~3u; pos >= 0x40 && pos + 3 < (size_t)n && hops++ < 48; pos = cfg[pos + 1] & ~3u)
		if (cfg[pos] == 0x10)
			return (cfg[pos + 2] >> 4) & 0xf;
	return -1;
}

#define PCIE_TYPE_UPSTREAM 0x5

/*
 * Whether the bridge stops peer-to-peer between the devices below it: what
 * the kernel's pci_acs_enabled() asks of a port (Source Validation, Request
 * and Completion Redirect, Upstream Forwarding). A switch's upstream port
 * needs no ACS; every other bridge does (PCIe r6.0 6.12.1.1).
 */
static bool port_isolates(struct iovk_device *port)
{
	uint16_t cap, ctrl;

	if (pcie_type(port) == PCIE_TYPE_UPSTREAM)
		return true;
	return iovk_device_get_acs(port, &cap, &ctrl) >= 0 && (ctrl & 0x1d) == 0x1d;
}

/* Appends "a, b" style to a bounded buffer, skipping a name already there. */
static void add_name(char *buf, size_t size, const char *name)
{
	size_t len = strlen(buf);

	if (strstr(buf, name))
		return;
	snprintf(buf + len, size - len, "%s%s", len ? ", " : "", name);
}

/*
 * ACS: every IOMMU group with endpoints of more than one device (not only
 * the functions of one) shares because some port above them lets peers talk
 * to each other: name the group's endpoints and the ports without ACS above
 * them. A group of functions of one device is what that device's own lack of
 * ACS makes: assign its functions together, nothing to fix on the host.
 */
static void check_acs(struct cli *cli, struct report *rep, bool iommu)
{
	struct iovk_iommu_group **groups = NULL;
	char text[1024] = "", funcs[512] = "";
	size_t n = 0, n_endpoints = 0, n_bad = 0;
	int r;

	if (!iommu) {
		report_add(rep, "acs", REPORT_WARN, "enable the IOMMU first", "cannot tell without IOMMU groups");
		return;
	}
	r = iovk_iommu_group_enumerate(cli->ctx, &groups, &n);
	if (r < 0) {
		report_add(rep, "acs", REPORT_WARN, NULL, "cannot list the IOMMU groups: %s", iovk_ctx_get_error(cli->ctx));
		return;
	}
	for (size_t g = 0; g < n; g++) {
		struct iovk_device *const *devs = iovk_iommu_group_get_devices(groups[g]);
		char members[512] = "", ports[256] = "";
		const struct iovk_pci_addr *first = NULL;
		size_t k = 0;
		bool one_device = true;

		for (; devs[k]; k++) {
			const struct iovk_pci_addr *a = iovk_device_get_addr(devs[k]);

			if (iovk_device_is_bridge(devs[k]))
				continue;
			n_endpoints++;
			add_name(members, sizeof(members), iovk_device_get_address(devs[k]));
			if (!first)
				first = a;
			else if (a->domain != first->domain || a->bus != first->bus || a->dev != first->dev)
				one_device = false;
		}
		if (!first || strchr(members, ',') == NULL)
			continue;
		if (one_device) {
			snprintf(funcs + strlen(funcs), sizeof(funcs) - strlen(funcs), "%sgroup %d",
				 funcs[0] ? ", " : "", iovk_iommu_group_get_number(groups[g]));
			continue;
		}
		for (k = 0; devs[k]; k++) {
			char parent[IOVK_PCI_ADDR_MAX] = "";

			snprintf(parent, sizeof(parent), "%s", iovk_device_get_parent(devs[k]) ?: "");
			for (int depth = 0; parent[0] && depth < 32; depth++) {
				struct iovk_device *up = NULL;

				if (iovk_device_new(cli->ctx, parent, &up) < 0)
					break;
				if (!port_isolates(up))
					add_name(ports, sizeof(ports), iovk_device_get_address(up));
				snprintf(parent, sizeof(parent), "%s", iovk_device_get_parent(up) ?: "");
				iovk_device_unref(up);
			}
		}
		n_bad++;
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s%s share IOMMU group %d: no ACS on %s",
			 text[0] ? "; " : "", members, iovk_iommu_group_get_number(groups[g]),
			 ports[0] ? ports : "any port above them (a conventional PCI bridge?)");
	}
	iovk_iommu_group_list_free(groups);
	if (n_bad)
		report_add(rep, "acs", REPORT_WARN,
			   "a group goes to one VM whole: assign them together, or move a device behind a port "
			   "with ACS (pcie_acs_override= only pretends, and lets them reach each other)",
			   "%s", text);
	else
		report_add(rep, "acs", REPORT_PASS, NULL,
			   "%zu endpoints: every port above devices of different groups isolates them (ACS)%s%s%s",
			   n_endpoints, funcs[0] ? "; functions of one device share " : "", funcs,
			   funcs[0] ? " (the device's own: assign them together)" : "");
}

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
	check_acs(cli, &rep, hs.enabled);
	check_kvm(cli, &rep);
	check_cgroups(cli, &rep);

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
