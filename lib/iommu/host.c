/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <string.h>

#include "../internal.h"

/* Copies the value of "key=" from the kernel command line into buf. */
static void cmdline_value(const char *cmdline, const char *key, char *buf, size_t size)
{
	size_t klen = strlen(key);
	const char *p = cmdline;

	buf[0] = '\0';
	while (p && *p) {
		const char *end;

		while (*p == ' ' || *p == '\t')
			p++;
		end = p;
		while (*end && *end != ' ' && *end != '\t')
			end++;
		/* The last occurrence wins, as in the kernel's parser. */
		if ((size_t)(end - p) > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
			size_t vlen = (size_t)(end - p) - klen - 1;

			if (vlen >= size)
				vlen = size - 1;
			memcpy(buf, p + klen + 1, vlen);
			buf[vlen] = '\0';
		}
		p = end;
	}
}

static bool list_has(const char *list, const char *word)
{
	size_t wlen = strlen(word);

	for (const char *p = list; p && *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);

		if (len == wlen && strncmp(p, word, wlen) == 0)
			return true;
		p = comma ? comma + 1 : NULL;
	}
	return false;
}

static unsigned count_entries(const char *path, char *first, size_t first_size)
{
	_cleanup_closedir_ DIR *dir = opendir(path);
	struct dirent *de;
	unsigned n = 0;

	if (first_size)
		first[0] = '\0';
	if (!dir)
		return 0;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		if (n++ == 0 && first_size)
			snprintf(first, first_size, "%s", de->d_name);
	}
	return n;
}

static enum iovk_tristate read_bool_param(const char *path)
{
	_cleanup_free_ char *s = NULL;

	if (read_text(path, &s) < 0)
		return IOVK_UNKNOWN;
	return (s[0] == 'Y' || s[0] == 'y' || s[0] == '1') ? IOVK_YES : IOVK_NO;
}

static bool module_present(struct iovk_ctx *ctx, const char *name)
{
	_cleanup_free_ char *p = sysfs_path(ctx, "/module/%s", name);

	return p && path_exists(p);
}

_public_ int iovk_iommu_get_host_state(struct iovk_ctx *ctx, struct iovk_iommu_host_state *ret_state)
{
	_cleanup_free_ char *cmdline = NULL, *interrupts = NULL, *p = NULL;
	struct iovk_iommu_host_state s = IOVK_IOMMU_HOST_STATE_INIT;
	char unit[64], pt[32];
	int r;

	clear_error(ctx);
	if (!ret_state || result_valid(ctx, ret_state, sizeof(*ret_state), "iovk_iommu_host_state") < 0)
		return -EINVAL;

	p = sysfs_path(ctx, "/kernel/iommu_groups");
	if (!p)
		return -ENOMEM;
	s.n_groups = count_entries(p, NULL, 0);
	s.enabled = s.n_groups > 0;
	free(p);

	p = sysfs_path(ctx, "/class/iommu");
	if (!p)
		return -ENOMEM;
	s.n_units = count_entries(p, unit, sizeof(unit));
	free(p);
	if (strncmp(unit, "dmar", 4) == 0)
		strcpy(s.vendor, "intel");
	else if (strncmp(unit, "ivhd", 4) == 0)
		strcpy(s.vendor, "amd");
	else if (strstr(unit, "smmu"))
		strcpy(s.vendor, "arm-smmu");
	else if (unit[0])
		snprintf(s.vendor, sizeof(s.vendor), "%.15s", unit);

	p = proc_path(ctx, "/cmdline");
	if (!p)
		return -ENOMEM;
	r = read_text(p, &cmdline);
	if (r < 0)
		return set_error(ctx, r, "reading %s: %s", p, strerror(-r));
	cmdline_value(cmdline, "intel_iommu", s.cmdline_intel_iommu, sizeof(s.cmdline_intel_iommu));
	cmdline_value(cmdline, "amd_iommu", s.cmdline_amd_iommu, sizeof(s.cmdline_amd_iommu));
	cmdline_value(cmdline, "iommu", s.cmdline_iommu, sizeof(s.cmdline_iommu));
	cmdline_value(cmdline, "iommu.passthrough", pt, sizeof(pt));
	s.passthrough = strcmp(s.cmdline_iommu, "pt") == 0 || strcmp(pt, "1") == 0 ||
			strcmp(pt, "y") == 0 || strcmp(pt, "on") == 0;

	/* The kernel names remapped interrupt chips "IR-PCI-MSI",
	 * "IR-IO-APIC" (Intel and AMD alike): the surest sign that interrupt
	 * remapping is in use, which VFIO needs unless
	 * allow_unsafe_interrupts is set. */
	s.intremap = IOVK_UNKNOWN;
	free(p);
	p = proc_path(ctx, "/interrupts");
	if (!p)
		return -ENOMEM;
	if (read_text(p, &interrupts) >= 0) {
		if (strstr(interrupts, "IR-"))
			s.intremap = IOVK_YES;
		else if (strstr(interrupts, "MSI") || strstr(interrupts, "IO-APIC"))
			s.intremap = IOVK_NO;
	}
	{
		char intremap[16];

		cmdline_value(cmdline, "intremap", intremap, sizeof(intremap));
		if (strcmp(intremap, "off") == 0 || list_has(s.cmdline_intel_iommu, "irqremap_off"))
			s.intremap = IOVK_NO;
	}
	free(p);

	p = sysfs_path(ctx, "/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts");
	if (!p)
		return -ENOMEM;
	s.allow_unsafe_interrupts = read_bool_param(p);
	s.vfio_loaded = module_present(ctx, "vfio");
	s.vfio_pci_loaded = module_present(ctx, "vfio_pci");
	free(p);

	p = dev_path(ctx, "/vfio/vfio");
	if (!p)
		return -ENOMEM;
	s.vfio_container = path_exists(p);
	free(p);
	p = dev_path(ctx, "/iommu");
	if (!p)
		return -ENOMEM;
	s.iommufd = path_exists(p);

	result_store(ret_state, &s, sizeof(s));
	return 0;
}
