/* SPDX-License-Identifier: GPL-2.0-or-later */
/* iovctl sriov list, show, set */
#include <stdio.h>
#include <string.h>

#include "iovctl.h"

static const char sriov_help[] =
	"Usage: iovctl sriov list [--json]\n"
	"       iovctl sriov show [--json] PF\n"
	"       iovctl sriov set [--json] PF --numvfs N [--no-autoprobe] [--force] [--timeout MS]\n"
	"\n"
	"SR-IOV physical functions (PFs) and their virtual functions (VFs).\n"
	"'iovctl sriov COMMAND --help' describes each command.\n";

static const char list_help[] =
	"Usage: iovctl sriov list [--json]\n"
	"\n"
	"List SR-IOV PFs: driver, VFs enabled of the total, whether new VFs are probed\n"
	"by their kernel driver (autoprobe), network interfaces.\n"
	"\n"
	"  -j, --json   JSON array of PF objects (see iovctl(8))\n";

static const char show_help[] =
	"Usage: iovctl sriov show [--json] PF\n"
	"\n"
	"PF: a PCI address (0000:3b:00.0, 3b:00.0), libvirt's pci_0000_3b_00_0, or a\n"
	"network interface of the PF (ens1f0).\n"
	"\n"
	"Show one SR-IOV PF: total and enabled VFs, routing-ID offset and stride, VF\n"
	"device id, autoprobe, network interfaces, and each VF with its driver, IOMMU\n"
	"group and network interfaces.\n";

static const char set_help[] =
	"Usage: iovctl sriov set [--json] PF --numvfs N [--no-autoprobe] [--force] [--timeout MS]\n"
	"\n"
	"PF: a PCI address, libvirt's pci_DDDD_BB_DD_F or a network interface of it.\n"
	"\n"
	"Set the number of VFs of PF to N (0 removes them). The kernel changes a\n"
	"non-zero count only through 0, so N -> M removes all VFs first. Removing\n"
	"VFs (N -> M or N -> 0) is refused while a VF is in use (bound to vfio-pci\n"
	"or a vfio variant driver, taken as assigned to a guest) unless --force is\n"
	"given. N above sriov_totalvfs fails (exit 1) before anything is written.\n"
	"Then waits until\n"
	"every VF exists and, where a kernel network driver took a VF, its network\n"
	"interface has appeared.\n"
	"\n"
	"  --numvfs N        number of VFs, 0 to sriov_totalvfs (a number 0 to 65535)\n"
	"  --no-autoprobe    set sriov_drivers_autoprobe to 0 before enabling VFs, so no\n"
	"                    kernel driver takes them (for VFs meant for vfio-pci; bind\n"
	"                    them with 'iovctl bind'); the old value comes back with\n"
	"                    --numvfs 0. Without it autoprobe is left as it is.\n"
	"  --force           remove VFs even when they are in use\n"
	"  --timeout MS      bound each wait for the kernel (default: the global\n"
	"                    --timeout, 30000). The write to sriov_numvfs itself cannot\n"
	"                    be interrupted: a PF driver that hangs in it hangs iovctl.\n";

static struct json_object *json_int_or_null(int v)
{
	return v >= 0 ? json_object_new_int(v) : NULL;
}

static struct json_object *json_strv(const char *const *v)
{
	struct json_object *a = json_object_new_array();

	for (; v && *v; v++)
		json_object_array_add(a, json_object_new_string(*v));
	return a;
}

static struct json_object *pf_to_json(struct iovk_sriov_pf *pf)
{
	struct json_object *o = json_object_new_object(), *vfs = json_object_new_array();
	struct iovk_device *d = iovk_sriov_pf_get_device(pf);
	int id = iovk_sriov_pf_get_vf_device_id(pf), ap = iovk_sriov_pf_get_drivers_autoprobe(pf);

	json_object_object_add(o, "address", json_object_new_string(iovk_sriov_pf_get_address(pf)));
	json_object_object_add(o, "driver", json_string_or_null(iovk_device_get_driver(d)));
	json_object_object_add(o, "totalvfs", json_int_or_null(iovk_sriov_pf_get_totalvfs(pf)));
	json_object_object_add(o, "numvfs", json_object_new_int(iovk_sriov_pf_get_numvfs(pf)));
	json_object_object_add(o, "offset", json_int_or_null(iovk_sriov_pf_get_offset(pf)));
	json_object_object_add(o, "stride", json_int_or_null(iovk_sriov_pf_get_stride(pf)));
	if (id >= 0) {
		char buf[8];

		snprintf(buf, sizeof(buf), "%04x", (unsigned)id);
		json_object_object_add(o, "vf_device_id", json_object_new_string(buf));
	} else
		json_object_object_add(o, "vf_device_id", NULL);
	json_object_object_add(o, "drivers_autoprobe", ap >= 0 ? json_object_new_boolean(ap) : NULL);
	json_object_object_add(o, "net", json_strv(iovk_device_get_netdevs(d)));
	for (struct iovk_device *const *v = iovk_sriov_pf_get_vfs(pf); *v; v++) {
		struct json_object *vo = json_object_new_object();
		int group = iovk_device_get_iommu_group(*v);

		json_object_object_add(vo, "vf", json_int_or_null(iovk_device_get_vf_index(*v)));
		json_object_object_add(vo, "address", json_object_new_string(iovk_device_get_address(*v)));
		json_object_object_add(vo, "driver", json_string_or_null(iovk_device_get_driver(*v)));
		json_object_object_add(vo, "iommu_group", json_int_or_null(group));
		json_object_object_add(vo, "net", json_strv(iovk_device_get_netdevs(*v)));
		json_object_array_add(vfs, vo);
	}
	json_object_object_add(o, "vfs", vfs);
	return o;
}

static void print_netdevs(const char *const *v)
{
	if (!*v) {
		fputs("-", stdout);
		return;
	}
	for (const char *sep = ""; *v; v++, sep = ",")
		printf("%s%s", sep, *v);
}

static const char *autoprobe_text(int ap)
{
	return ap < 0 ? "unknown" : ap ? "on" : "off";
}

/* -1 means the kernel does not say (no such sysfs file) */
static const char *num_or_unknown(int v, char buf[static 16])
{
	if (v < 0)
		return "?";
	snprintf(buf, 16, "%d", v);
	return buf;
}

static void print_pf(struct iovk_sriov_pf *pf)
{
	char buf[3][16];
	struct iovk_device *d = iovk_sriov_pf_get_device(pf);
	int id = iovk_sriov_pf_get_vf_device_id(pf);

	printf("%s  driver %s, net ", iovk_sriov_pf_get_address(pf), driver_or_none(iovk_device_get_driver(d)));
	print_netdevs(iovk_device_get_netdevs(d));
	putchar('\n');
	printf("  vfs:          %d of %s enabled\n", iovk_sriov_pf_get_numvfs(pf),
	       num_or_unknown(iovk_sriov_pf_get_totalvfs(pf), buf[0]));
	printf("  vf rid:       offset %s, stride %s\n", num_or_unknown(iovk_sriov_pf_get_offset(pf), buf[1]),
	       num_or_unknown(iovk_sriov_pf_get_stride(pf), buf[2]));
	if (id >= 0)
		printf("  vf device:    %04x:%04x\n", iovk_device_get_vendor_id(d), (unsigned)id);
	printf("  autoprobe:    %s\n", autoprobe_text(iovk_sriov_pf_get_drivers_autoprobe(pf)));
	if (iovk_sriov_pf_get_n_vfs(pf) == 0)
		return;
	printf("  %-4s %-13s %-14s %-5s %s\n", "VF", "ADDRESS", "DRIVER", "GROUP", "NET");
	for (struct iovk_device *const *v = iovk_sriov_pf_get_vfs(pf); *v; v++) {
		char grp[12] = "-", idx[12] = "?";

		if (iovk_device_get_iommu_group(*v) >= 0)
			snprintf(grp, sizeof(grp), "%d", iovk_device_get_iommu_group(*v));
		if (iovk_device_get_vf_index(*v) >= 0)
			snprintf(idx, sizeof(idx), "%d", iovk_device_get_vf_index(*v));
		printf("  %-4s %-13s %-14s %-5s ", idx, iovk_device_get_address(*v),
		       driver_or_none(iovk_device_get_driver(*v)), grp);
		print_netdevs(iovk_device_get_netdevs(*v));
		putchar('\n');
	}
}

static int sriov_list(struct cli *cli, int argc, char **argv)
{
	struct iovk_sriov_pf **pfs = NULL;
	struct json_object *arr = NULL;
	int r, i;

	i = parse_cmd_opts(cli, "sriov list", list_help, argc, argv, NULL);
	if (i < 0)
		return i == -1 ? EXIT_OK : EXIT_USAGE;
	if (i < argc)
		return usage_error(cli, "sriov list", "unexpected argument '%s'", argv[i]);
	r = iovk_sriov_enumerate_pfs(cli->ctx, &pfs, NULL);
	if (r < 0)
		return fail_lib(cli, r, "Failed to list SR-IOV PFs");
	if (cli->json)
		arr = json_object_new_array();
	else
		printf("%-13s %-14s %-11s %-9s %s\n", "PF", "DRIVER", "VFS", "AUTOPROBE", "NET");
	for (struct iovk_sriov_pf **p = pfs; *p; p++) {
		struct iovk_device *d = iovk_sriov_pf_get_device(*p);
		char vfs[24];

		if (cli->json) {
			json_object_array_add(arr, pf_to_json(*p));
			continue;
		}
		snprintf(vfs, sizeof(vfs), "%d/%d", iovk_sriov_pf_get_numvfs(*p), iovk_sriov_pf_get_totalvfs(*p));
		printf("%-13s %-14s %-11s %-9s ", iovk_sriov_pf_get_address(*p),
		       driver_or_none(iovk_device_get_driver(d)), vfs,
		       autoprobe_text(iovk_sriov_pf_get_drivers_autoprobe(*p)));
		print_netdevs(iovk_device_get_netdevs(d));
		putchar('\n');
	}
	if (cli->json)
		print_json(arr);
	iovk_sriov_pf_list_free(pfs);
	return EXIT_OK;
}

/* Reads the PF at its canonical address; messages name it as the argument did. */
static int read_pf(struct cli *cli, const char *what, const char *arg, const char *address,
		   struct iovk_sriov_pf **ret_pf)
{
	int r = iovk_sriov_pf_new(cli->ctx, address, ret_pf);

	if (r < 0)
		return fail_lib(cli, r, "Failed to %s %s", what, arg);
	return EXIT_OK;
}

static int sriov_show(struct cli *cli, int argc, char **argv)
{
	struct iovk_sriov_pf *pf = NULL;
	char address[IOVK_PCI_ADDR_MAX];
	int r, i;

	i = parse_cmd_opts(cli, "sriov show", show_help, argc, argv, NULL);
	if (i < 0)
		return i == -1 ? EXIT_OK : EXIT_USAGE;
	if (argc - i != 1)
		return usage_error(cli, "sriov show", "expected one PF address");
	r = resolve_device(cli, "sriov show", argv[i], address);
	if (r != EXIT_OK)
		return r;
	r = read_pf(cli, "read", argv[i], address, &pf);
	if (r != EXIT_OK)
		return r;
	if (cli->json)
		print_json(pf_to_json(pf));
	else
		print_pf(pf);
	iovk_sriov_pf_unref(pf);
	return EXIT_OK;
}

/* A decimal number in [min, max], nothing else (no sign, blanks or suffix). */
static bool parse_uint(const char *s, unsigned long min, unsigned long max, unsigned *ret)
{
	unsigned long v;
	char *end;

	if (!s || !*s || strspn(s, "0123456789") != strlen(s))
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*ret = (unsigned)v;
	return true;
}

/*
 * Whether removing the PF's VFs would take one that is used (the host-use
 * rule); with ret_text, every reason in one line (malloc'd, NULL when none).
 */
static bool vfs_in_use(struct cli *cli, const char *address, char **ret_text)
{
	struct iovk_sriov_pf *pf = NULL;
	char *text = NULL;
	size_t size = 0;
	FILE *f = ret_text ? open_memstream(&text, &size) : NULL;
	bool busy = false;

	if (iovk_sriov_pf_new(cli->ctx, address, &pf) >= 0)
		for (size_t k = 0; (f || !busy) && k < iovk_sriov_pf_get_n_vfs(pf); k++) {
			struct iovk_in_use *u = NULL;

			if (iovk_device_check_in_use(cli->ctx, iovk_device_get_address(iovk_sriov_pf_get_vfs(pf)[k]),
						     IOVK_IN_USE_REMOVAL, &u) >= 0 && iovk_in_use_get_n_reasons(u) > 0) {
				if (f)
					fprintf(f, "%s%s", busy ? "; " : "", iovk_in_use_get_text(u));
				busy = true;
			}
			iovk_in_use_free(u);
		}
	iovk_sriov_pf_unref(pf);
	if (f && fclose(f) == 0 && busy)
		*ret_text = text;
	else
		free(text);
	return busy;
}

/* The library's text after "ADDRESS: " when it starts with the PF's address (the message names it already). */
static const char *skip_address(const char *text, const char *address)
{
	struct iovk_pci_addr a;
	char canonical[IOVK_PCI_ADDR_MAX];
	size_t len;

	if (iovk_pci_addr_parse(address, &a) < 0)
		return text;
	iovk_pci_addr_format(&a, canonical);
	len = strlen(canonical);
	return strncmp(text, canonical, len) == 0 && strncmp(text + len, ": ", 2) == 0 ? text + len + 2 : text;
}

static int sriov_set(struct cli *cli, int argc, char **argv)
{
	const char *numvfs = NULL, *no_autoprobe = NULL, *force = NULL, *timeout = NULL;
	const struct cmd_opt opts[] = {
		{ "numvfs", true, &numvfs }, { "no-autoprobe", false, &no_autoprobe },
		{ "force", false, &force },  { "timeout", true, &timeout },
		{},
	};
	struct iovk_sriov_pf *pf = NULL;
	char address[IOVK_PCI_ADDR_MAX];
	unsigned n, timeout_ms = 0, flags = 0;
	bool changed;
	int r, i, before;

	i = parse_cmd_opts(cli, "sriov set", set_help, argc, argv, opts);
	if (i < 0)
		return i == -1 ? EXIT_OK : EXIT_USAGE;
	if (argc - i != 1)
		return usage_error(cli, "sriov set", "expected one PF address");
	if (!numvfs)
		return usage_error(cli, "sriov set", "--numvfs N is required");
	/* TotalVFs is a 16-bit field (SR-IOV spec 9.3.3.6). */
	if (!parse_uint(numvfs, 0, 65535, &n))
		return usage_error(cli, "sriov set", "--numvfs takes a number of VFs, 0 to 65535, not '%s'", numvfs);
	if (timeout && !parse_uint(timeout, 1, 3600000, &timeout_ms))
		return usage_error(cli, "sriov set", "--timeout takes milliseconds, 1 to 3600000, not '%s'", timeout);
	if (force)
		flags |= IOVK_SRIOV_FORCE;
	if (no_autoprobe)
		flags |= IOVK_SRIOV_NO_AUTOPROBE;

	/* Read first: a malformed name is a usage error, an unknown
	 * device or a non-PF a failure, and the text output says what was. */
	r = resolve_device(cli, "sriov set", argv[i], address);
	if (r != EXIT_OK)
		return r;
	r = read_pf(cli, "read", argv[i], address, &pf);
	if (r != EXIT_OK)
		return r;
	before = iovk_sriov_pf_get_numvfs(pf);
	pf = iovk_sriov_pf_unref(pf);

	if (force && (unsigned)before != n && before > 0) {
		_cleanup_free_ char *text = NULL;

		if (vfs_in_use(cli, address, &text) && text)
			fprintf(stderr, "iovctl: warning: removing the VFs of %s although they are in use (--force): %s\n",
				argv[i], text);
	}
	r = iovk_sriov_set_numvfs(cli->ctx, address, n, flags, timeout_ms);
	if (r == -EBUSY && !force) {
		/* Was it the VFs in use? The public check says, not the text. */
		_cleanup_free_ char *text = strdup(iovk_ctx_get_error(cli->ctx));

		if (vfs_in_use(cli, address, NULL))
			return fail(cli, r, "Failed to set %s to %u VFs (--force removes VFs in use): %s", argv[i], n,
				    text ? skip_address(text, argv[i]) : "");
		return fail(cli, r, "Failed to set %s to %u VFs: %s", argv[i], n, text ? skip_address(text, argv[i]) : "");
	}
	if (r < 0)
		return fail_lib(cli, r, "Failed to set %s to %u VFs", argv[i], n);
	changed = r > 0;

	r = read_pf(cli, "read back", argv[i], address, &pf);
	if (r != EXIT_OK)
		return r;
	if (cli->json) {
		struct json_object *o = pf_to_json(pf);

		json_object_object_add(o, "changed", json_object_new_boolean(changed));
		print_json(o);
	} else {
		int now = iovk_sriov_pf_get_numvfs(pf);

		if (changed && now != before)
			printf("%s: %d VFs (was %d), autoprobe %s\n", iovk_sriov_pf_get_address(pf), now, before,
			       autoprobe_text(iovk_sriov_pf_get_drivers_autoprobe(pf)));
		else
			printf("%s: %s %d VFs, autoprobe %s\n", iovk_sriov_pf_get_address(pf),
			       changed ? "still" : "already", now,
			       autoprobe_text(iovk_sriov_pf_get_drivers_autoprobe(pf)));
		for (struct iovk_device *const *v = iovk_sriov_pf_get_vfs(pf); *v; v++)
			printf("  %s %s\n", iovk_device_get_address(*v), driver_or_none(iovk_device_get_driver(*v)));
	}
	iovk_sriov_pf_unref(pf);
	return EXIT_OK;
}

int cmd_sriov(struct cli *cli, int argc, char **argv)
{
	static const struct subcommand subs[] = {
		{ "list", sriov_list },
		{ "show", sriov_show },
		{ "set", sriov_set },
	};

	return run_subcommand(cli, "sriov", sriov_help, subs, ELEMENTSOF(subs), argc, argv);
}
