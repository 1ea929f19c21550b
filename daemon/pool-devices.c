/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Device pools in iovd's configuration: "devices" selectors and the
 * inventory they name. A selector is what operators already write for
 * Nova's [pci] device_spec and lspci -d: a PCI address ("0000:01:00.0"),
 * an address glob ("0000:3b:*", fnmatch(3)), or vendor:device with an
 * optional class ("10de:1e84", "10de:10f8:0403"). Anything else is a fatal
 * configuration error naming the pool and the selector: a typo that
 * matched nothing would leave a pool silently empty.
 */
#include <ctype.h>
#include <fnmatch.h>
#include <string.h>

#include "iovd.h"

/* An address glob: PCI address characters and at least one of * ? [ ]. */
static bool is_address_glob(const char *s)
{
	bool wild = false;

	for (const char *c = s; *c; c++) {
		if (strchr("*?[]!", *c))
			wild = true;
		else if (!isxdigit((unsigned char)*c) && !strchr(":.-", *c))
			return false;
	}
	return wild;
}

/* "VVVV:DDDD" or "VVVV:DDDD:CCCC" (class and subclass, as lspci -d takes it); *ret_class -1 for none. */
static bool parse_ids(const char *s, unsigned *ret_vendor, unsigned *ret_device, int *ret_class)
{
	size_t len = strlen(s);
	unsigned v, d, c = 0;

	if ((len != 9 && len != 14) || strspn(s, "0123456789abcdefABCDEF:") != len || s[4] != ':' ||
	    (len == 14 && s[9] != ':') || strchr(s + 5, ':') != (len == 14 ? s + 9 : NULL))
		return false;
	if (sscanf(s, len == 9 ? "%4x:%4x" : "%4x:%4x:%4x", &v, &d, &c) != (len == 9 ? 2 : 3))
		return false;
	*ret_vendor = v;
	*ret_device = d;
	*ret_class = len == 14 ? (int)c : -1;
	return true;
}

bool device_selector_valid(const char *s)
{
	struct iovk_pci_addr a;
	unsigned v, d;
	int c;

	return iovk_pci_addr_parse(s, &a) == 0 || is_address_glob(s) || parse_ids(s, &v, &d, &c);
}

static bool device_selector_matches(const char *sel, struct iovk_device *d)
{
	struct iovk_pci_addr a;
	unsigned v, dev;
	int c;

	if (iovk_pci_addr_parse(sel, &a) == 0)
		return iovk_pci_addr_compare(&a, iovk_device_get_addr(d)) == 0;
	if (parse_ids(sel, &v, &dev, &c))
		return v == iovk_device_get_vendor_id(d) && dev == iovk_device_get_device_id(d) &&
		       (c < 0 || (unsigned)c == iovk_device_get_class(d) >> 8);
	return fnmatch(sel, iovk_device_get_address(d), FNM_CASEFOLD) == 0;
}

void device_pool_clear(struct pool *p)
{
	strv_free(p->devices);
	free(p->device_numa);
	p->devices = NULL;
	p->device_numa = NULL;
	p->n_devices = 0;
}

ssize_t device_pool_find(const struct pool *p, const char *address)
{
	for (size_t i = 0; i < p->n_devices; i++)
		if (strcmp(p->devices[i], address) == 0)
			return (ssize_t)i;
	return -1;
}

int device_pool_scan(struct iovk_ctx *ctx, struct pool *p)
{
	struct iovk_device **devs = NULL;
	size_t n = 0, n_devs = 0;
	int r;

	r = iovk_device_enumerate(ctx, &devs, &n_devs);
	if (r < 0) {
		log_error("pool %s: reading the PCI devices: %s", p->name, iovk_ctx_get_error(ctx));
		return r;
	}
	device_pool_clear(p);
	p->devices = calloc(1, sizeof(char *));
	p->device_numa = calloc(n_devs ?: 1, sizeof(int));
	if (!p->devices || !p->device_numa) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n_devs; i++) {
		bool match = false;

		/* bridges stay with the host: VFIO takes them on pcieport */
		if (iovk_device_is_bridge(devs[i]))
			continue;
		for (char **sel = p->selectors; *sel && !match; sel++)
			match = device_selector_matches(*sel, devs[i]);
		if (!match)
			continue;
		p->device_numa[n] = iovk_device_get_numa_node(devs[i]);
		r = strv_push(&p->devices, &n, iovk_device_get_address(devs[i]));
		if (r < 0)
			goto out;
	}
	p->n_devices = n;
	if (n == 0)
		log_warning("pool %s: no PCI device matches its devices (%s%s)", p->name, p->selectors[0],
			    p->selectors[1] ? ", ..." : "");
	else
		log_debug("pool %s: %zu devices", p->name, n);
	r = 0;
out:
	iovk_device_list_free(devs);
	if (r < 0)
		device_pool_clear(p);
	return r;
}
