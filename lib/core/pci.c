/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>

#include <pci/pci.h>

#include "../internal.h"

struct iovk_device {
	int n_ref;
	struct iovk_ctx *ctx;
	struct iovk_pci_addr addr;
	char address[IOVK_PCI_ADDR_MAX];
	char *syspath;
	uint16_t vendor_id, device_id, subsystem_vendor_id, subsystem_device_id;
	uint32_t class;
	bool names_done;
	char *vendor_name, *device_name, *class_name;
	char *driver, *driver_override;
	int numa_node;
	int iommu_group;
	bool is_bridge;
	int totalvfs, numvfs;
	char **vfs;
	char *physfn;
	int vf_index; /* VF_INDEX_UNREAD until iovk_device_get_vf_index() asks */
	char **netdevs;
	char *parent;
	char *unsafe_reason;
};

#define VF_INDEX_UNREAD INT_MIN

/* ---- addresses ------------------------------------------------------------ */

static int parse_hex(const char **p, unsigned min_digits, unsigned max_digits, uint32_t *ret)
{
	uint32_t v = 0;
	unsigned n = 0;

	while (isxdigit((unsigned char)**p)) {
		if (++n > max_digits)
			return -EINVAL;
		v = v * 16 + (uint32_t)(isdigit((unsigned char)**p) ? **p - '0'
								    : tolower((unsigned char)**p) - 'a' + 10);
		(*p)++;
	}
	if (n < min_digits)
		return -EINVAL;
	*ret = v;
	return 0;
}

_public_ int iovk_pci_addr_parse(const char *s, struct iovk_pci_addr *ret_addr)
{
	uint32_t a, b, dev, fn, domain = 0, bus;
	const char *p = s;

	assert_return(s && ret_addr, -EINVAL);
	if (!s)
		return -EINVAL;
	/* Either DDDD:BB:DD.F or BB:DD.F: count the colons to know which. */
	if (parse_hex(&p, 2, 8, &a) < 0 || *p++ != ':')
		return -EINVAL;
	if (parse_hex(&p, 2, 2, &b) < 0)
		return -EINVAL;
	if (*p == ':') {
		/* the first field was the domain: 4 to 8 digits */
		if (p - s < 4 + 1 + 2)
			return -EINVAL;
		p++;
		domain = a;
		bus = b;
		if (parse_hex(&p, 2, 2, &dev) < 0)
			return -EINVAL;
	} else {
		if (p - s != 2 + 1 + 2)
			return -EINVAL;
		bus = a;
		dev = b;
	}
	if (*p++ != '.')
		return -EINVAL;
	if (parse_hex(&p, 1, 1, &fn) < 0 || *p != '\0')
		return -EINVAL;
	if (dev > 31 || fn > 7 || bus > 0xff)
		return -EINVAL;
	*ret_addr = (struct iovk_pci_addr){ .domain = domain, .bus = (uint8_t)bus, .dev = (uint8_t)dev,
					    .fn = (uint8_t)fn };
	return 0;
}

_public_ char *iovk_pci_addr_format(const struct iovk_pci_addr *addr, char buf[static IOVK_PCI_ADDR_MAX])
{
	snprintf(buf, IOVK_PCI_ADDR_MAX, "%04x:%02x:%02x.%x", addr->domain, addr->bus, addr->dev,
		 addr->fn);
	return buf;
}

_public_ int iovk_pci_addr_compare(const struct iovk_pci_addr *a, const struct iovk_pci_addr *b)
{
	if (a->domain != b->domain)
		return a->domain < b->domain ? -1 : 1;
	if (a->bus != b->bus)
		return a->bus < b->bus ? -1 : 1;
	if (a->dev != b->dev)
		return a->dev < b->dev ? -1 : 1;
	if (a->fn != b->fn)
		return a->fn < b->fn ? -1 : 1;
	return 0;
}

/* ---- reading a device ---------------------------------------------------- */

static int read_id(struct iovk_device *d, const char *attr, long long max, long long *ret)
{
	_cleanup_free_ char *p = root_path(d->syspath, "/%s", attr);
	int r;

	if (!p)
		return -ENOMEM;
	r = read_int(p, ret);
	if (r < 0)
		return set_error(d->ctx, r, "%s: reading %s: %s", d->address, p,
				 r == -EBADMSG ? "not a number" : strerror(-r));
	if (*ret < 0 || *ret > max)
		return set_error(d->ctx, -EBADMSG, "%s: %s holds an out-of-range value", d->address, p);
	return 0;
}

/* Optional attributes: a missing file gives def. */
static int read_optional_int(struct iovk_device *d, const char *attr, int def, int *ret)
{
	_cleanup_free_ char *p = root_path(d->syspath, "/%s", attr);
	long long v;
	int r;

	if (!p)
		return -ENOMEM;
	r = read_int(p, &v);
	if (r == -ENOENT) {
		*ret = def;
		return 0;
	}
	if (r < 0)
		return set_error(d->ctx, r, "%s: reading %s: %s", d->address, p,
				 r == -EBADMSG ? "not a number" : strerror(-r));
	if (v < INT_MIN || v > INT_MAX)
		return set_error(d->ctx, -EBADMSG, "%s: %s holds an out-of-range value", d->address, p);
	*ret = (int)v;
	return 0;
}

static int strcmp_ptr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int read_netdevs(struct iovk_device *d)
{
	_cleanup_free_ char *p = root_path(d->syspath, "/net");
	_cleanup_closedir_ DIR *dir = NULL;
	size_t n = 0;
	struct dirent *de;
	int r;

	if (!p)
		return -ENOMEM;
	dir = opendir(p);
	if (dir) {
		while ((de = readdir(dir))) {
			if (de->d_name[0] == '.')
				continue;
			r = strv_push(&d->netdevs, &n, de->d_name);
			if (r < 0)
				return r;
		}
	}
	if (!d->netdevs) {
		d->netdevs = calloc(1, sizeof(char *));
		return d->netdevs ? 0 : -ENOMEM;
	}
	qsort(d->netdevs, n, sizeof(char *), strcmp_ptr);
	return 0;
}

struct vf_link {
	unsigned index;
	char name[IOVK_PCI_ADDR_MAX];
};

static int vf_link_cmp(const void *a, const void *b)
{
	const struct vf_link *x = a, *y = b;

	return x->index < y->index ? -1 : x->index > y->index;
}

static int read_vfs(struct iovk_device *d)
{
	_cleanup_closedir_ DIR *dir = opendir(d->syspath);
	_cleanup_free_ struct vf_link *links = NULL;
	size_t n = 0, alloc = 0, nv = 0;
	struct dirent *de;
	int r;

	if (!dir)
		return set_error(d->ctx, negative_errno(), "%s: reading %s: %m", d->address, d->syspath);
	while ((de = readdir(dir))) {
		_cleanup_free_ char *p = NULL;
		char *end;
		unsigned long idx;

		if (strncmp(de->d_name, "virtfn", 6) != 0 || !isdigit((unsigned char)de->d_name[6]))
			continue;
		idx = strtoul(de->d_name + 6, &end, 10);
		if (*end)
			continue;
		if (n == alloc) {
			struct vf_link *nl;

			alloc = alloc ? alloc * 2 : 8;
			nl = realloc(links, alloc * sizeof(*links));
			if (!nl)
				return -ENOMEM;
			links = nl;
		}
		p = root_path(d->syspath, "/%s", de->d_name);
		if (!p)
			return -ENOMEM;
		r = read_link_name(p, links[n].name, sizeof(links[n].name));
		if (r < 0)
			return set_error(d->ctx, r, "%s: reading link %s: %s", d->address, p, strerror(-r));
		links[n++].index = (unsigned)idx;
	}
	if (n > 0)
		qsort(links, n, sizeof(*links), vf_link_cmp);
	d->vfs = calloc(1, sizeof(char *));
	if (!d->vfs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		r = strv_push(&d->vfs, &nv, links[i].name);
		if (r < 0)
			return r;
	}
	return 0;
}

static int read_device(struct iovk_device *d)
{
	_cleanup_free_ char *link = NULL, *p = NULL;
	struct iovk_ctx *ctx = d->ctx;
	char name[256];
	long long v;
	int r;

	r = read_id(d, "vendor", 0xffff, &v);
	if (r < 0)
		return r;
	d->vendor_id = (uint16_t)v;
	r = read_id(d, "device", 0xffff, &v);
	if (r < 0)
		return r;
	d->device_id = (uint16_t)v;
	r = read_id(d, "subsystem_vendor", 0xffff, &v);
	if (r < 0)
		return r;
	d->subsystem_vendor_id = (uint16_t)v;
	r = read_id(d, "subsystem_device", 0xffff, &v);
	if (r < 0)
		return r;
	d->subsystem_device_id = (uint16_t)v;
	r = read_id(d, "class", 0xffffff, &v);
	if (r < 0)
		return r;
	d->class = (uint32_t)v;
	/* 0x0604 PCI-to-PCI bridge, 0x0609 semi-transparent: the ports
	 * pcieport drives. Host/ISA bridges are functions like any other. */
	d->is_bridge = (d->class >> 8) == 0x0604 || (d->class >> 8) == 0x0609;

	r = read_optional_int(d, "numa_node", -1, &d->numa_node);
	if (r < 0)
		return r;

	p = root_path(d->syspath, "/driver");
	if (!p)
		return -ENOMEM;
	r = read_link_name(p, name, sizeof(name));
	if (r >= 0) {
		d->driver = strdup(name);
		if (!d->driver)
			return -ENOMEM;
	} else if (r != -ENOENT)
		return set_error(ctx, r, "%s: reading link %s: %s", d->address, p, strerror(-r));
	free(p);

	p = root_path(d->syspath, "/driver_override");
	if (!p)
		return -ENOMEM;
	r = read_text(p, &d->driver_override);
	if (r == -ENOENT)
		d->driver_override = NULL;
	else if (r < 0)
		return set_error(ctx, r, "%s: reading %s: %s", d->address, p, strerror(-r));
	else if (d->driver_override[0] == '\0' || strcmp(d->driver_override, "(null)") == 0) {
		free(d->driver_override);
		d->driver_override = NULL;
	}
	free(p);

	p = root_path(d->syspath, "/iommu_group");
	if (!p)
		return -ENOMEM;
	r = read_link_name(p, name, sizeof(name));
	if (r >= 0) {
		char *end;
		long g = strtol(name, &end, 10);

		if (*end || g < 0 || g > INT_MAX)
			return set_error(ctx, -EBADMSG, "%s: %s points to '%s', not a group number",
					 d->address, p, name);
		d->iommu_group = (int)g;
	} else if (r == -ENOENT)
		d->iommu_group = -1;
	else
		return set_error(ctx, r, "%s: reading link %s: %s", d->address, p, strerror(-r));
	free(p);

	r = read_optional_int(d, "sriov_numvfs", -1, &d->numvfs);
	if (r < 0)
		return r;
	/* netdevsim and some PFs have sriov_numvfs without sriov_totalvfs */
	r = read_optional_int(d, "sriov_totalvfs", d->numvfs >= 0 ? 0 : -1, &d->totalvfs);
	if (r < 0)
		return r;
	r = read_vfs(d);
	if (r < 0)
		return r;

	p = root_path(d->syspath, "/physfn");
	if (!p)
		return -ENOMEM;
	r = read_link_name(p, name, sizeof(name));
	if (r >= 0) {
		d->physfn = strdup(name);
		if (!d->physfn)
			return -ENOMEM;
	} else if (r != -ENOENT)
		return set_error(ctx, r, "%s: reading link %s: %s", d->address, p, strerror(-r));

	r = read_netdevs(d);
	if (r < 0)
		return r;

	/* The parent is the directory above ours in /sys/devices. */
	link = realpath(d->syspath, NULL);
	if (link) {
		char *slash = strrchr(link, '/');
		struct iovk_pci_addr pa;

		if (slash) {
			*slash = '\0';
			slash = strrchr(link, '/');
			if (slash && iovk_pci_addr_parse(slash + 1, &pa) >= 0) {
				d->parent = strdup(slash + 1);
				if (!d->parent)
					return -ENOMEM;
			}
		}
	}
	return 0;
}

/* libvirt's node device name of a PCI function: pci_DDDD_BB_DD_F (virNodeDeviceObj names). */
static int libvirt_name_parse(const char *name, struct iovk_pci_addr *ret)
{
	char text[IOVK_PCI_ADDR_MAX + 4];
	size_t len = strlen(name);

	if (strncmp(name, "pci_", 4) != 0 || len - 4 >= sizeof(text) || len < 4 + 10)
		return -EINVAL;
	/* pci_0000_3b_00_0 -> 0000:3b:00.0: the last '_' is the '.', the others ':' */
	memcpy(text, name + 4, len - 4 + 1);
	for (char *p = text; *p; p++)
		if (*p == '_')
			*p = strchr(p + 1, '_') ? ':' : '.';
	return iovk_pci_addr_parse(text, ret);
}

_public_ int iovk_device_resolve_name(struct iovk_ctx *ctx, const char *name,
				      char ret_address[static IOVK_PCI_ADDR_MAX])
{
	_cleanup_free_ char *link = NULL, *dev = NULL;
	struct iovk_pci_addr addr;

	assert_return(ctx && name && ret_address, -EINVAL);
	clear_error(ctx);
	if (iovk_pci_addr_parse(name, &addr) >= 0 || libvirt_name_parse(name, &addr) >= 0) {
		iovk_pci_addr_format(&addr, ret_address);
		return 0;
	}
	if (!ifname_valid(name))
		return set_error(ctx, -EINVAL,
				 "'%s' is not a PCI address (DDDD:BB:DD.F or BB:DD.F, hex), a libvirt PCI device "
				 "name (pci_DDDD_BB_DD_F) or a network interface name", name);
	link = sysfs_path(ctx, "/class/net/%s/device", name);
	if (!link)
		return -ENOMEM;
	/* Resolved, not read: the link's last component may be ".." */
	dev = realpath(link, NULL);
	if (!dev) {
		int r = negative_errno();

		if (r != -ENOENT)
			return set_error(ctx, r, "%s: reading %s: %s", name, link, strerror(-r));
		link[strlen(link) - strlen("/device")] = '\0';
		return set_error(ctx, -ENODEV, "%s: no such network interface (%s %s)", name, link,
				 path_exists(link) ? "has no device: a virtual interface" : "does not exist");
	}
	if (iovk_pci_addr_parse(strrchr(dev, '/') + 1, &addr) < 0)
		return set_error(ctx, -ENODEV, "%s: the network interface's device %s is not a PCI function", name,
				 dev);
	iovk_pci_addr_format(&addr, ret_address);
	return 0;
}

_public_ int iovk_device_new(struct iovk_ctx *ctx, const char *address, struct iovk_device **ret_device)
{
	struct iovk_device *d;
	struct iovk_pci_addr addr;
	int r;

	assert_return(ctx && address && ret_device, -EINVAL);
	clear_error(ctx);
	if (iovk_pci_addr_parse(address, &addr) < 0)
		return set_error(ctx, -EINVAL,
				 "'%s' is not a PCI address (expected DDDD:BB:DD.F or BB:DD.F, hex)",
				 address ? address : "(null)");
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->n_ref = 1;
	d->ctx = iovk_ctx_ref(ctx);
	d->addr = addr;
	d->vf_index = VF_INDEX_UNREAD;
	iovk_pci_addr_format(&addr, d->address);
	d->syspath = sysfs_path(ctx, "/bus/pci/devices/%s", d->address);
	if (!d->syspath) {
		iovk_device_unref(d);
		return -ENOMEM;
	}
	if (!path_exists(d->syspath)) {
		r = set_error(ctx, -ENODEV, "%s: no such PCI device (%s does not exist)", d->address,
			      d->syspath);
		iovk_device_unref(d);
		return r;
	}
	r = read_device(d);
	if (r < 0) {
		iovk_device_unref(d);
		return r;
	}
	*ret_device = d;
	return 0;
}

/* Frees what the last reference held (DEFINE_PUBLIC_REF_UNREF below). */
static void device_free(struct iovk_device *d)
{
	free(d->syspath);
	free(d->vendor_name);
	free(d->device_name);
	free(d->class_name);
	free(d->driver);
	free(d->driver_override);
	strv_free(d->vfs);
	free(d->physfn);
	strv_free(d->netdevs);
	free(d->parent);
	free(d->unsafe_reason);
	iovk_ctx_unref(d->ctx);
	free(d);
}

DEFINE_PUBLIC_REF_UNREF(struct iovk_device, iovk_device, device_free);

static int addr_name_cmp(const void *a, const void *b)
{
	struct iovk_pci_addr x, y;

	/* both parsed before they were listed */
	iovk_pci_addr_parse(*(const char *const *)a, &x);
	iovk_pci_addr_parse(*(const char *const *)b, &y);
	return iovk_pci_addr_compare(&x, &y);
}

int list_pci_addresses(const char *dir, char ***ret_names, size_t *ret_n)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	_cleanup_strv_free_ char **names = NULL;
	struct iovk_pci_addr addr;
	struct dirent *de;
	size_t n = 0;
	int r;

	if (!d)
		return negative_errno();
	names = calloc(1, sizeof(char *));
	if (!names)
		return -ENOMEM;
	while ((de = readdir(d))) {
		if (iovk_pci_addr_parse(de->d_name, &addr) < 0)
			continue;
		r = strv_push(&names, &n, de->d_name);
		if (r < 0)
			return r;
	}
	qsort(names, n, sizeof(char *), addr_name_cmp);
	*ret_names = TAKE_PTR(names);
	*ret_n = n;
	return 0;
}

int read_devices(struct iovk_ctx *ctx, char *const *names, size_t n, struct iovk_device ***ret_devices,
		 size_t *ret_n)
{
	struct iovk_device **list = calloc(n + 1, sizeof(*list));
	size_t k = 0;
	int r;

	if (!list)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		r = iovk_device_new(ctx, names[i], &list[k]);
		if (r == -ENODEV)
			continue; /* hot-unplugged while we looked */
		if (r < 0) {
			iovk_device_list_free(list);
			return r;
		}
		k++;
	}
	*ret_devices = list;
	*ret_n = k;
	return 0;
}

_public_ int iovk_device_enumerate(struct iovk_ctx *ctx, struct iovk_device ***ret_devices, size_t *ret_n)
{
	_cleanup_free_ char *p = NULL;
	_cleanup_strv_free_ char **names = NULL;
	struct iovk_device **list;
	size_t n, k;
	int r;

	assert_return(ctx && ret_devices, -EINVAL);
	p = sysfs_path(ctx, "/bus/pci/devices");
	clear_error(ctx);
	if (!p)
		return -ENOMEM;
	r = list_pci_addresses(p, &names, &n);
	if (r < 0)
		return set_error(ctx, r, "reading %s: %s", p, strerror(-r));
	r = read_devices(ctx, names, n, &list, &k);
	if (r < 0)
		return r;
	*ret_devices = list;
	if (ret_n)
		*ret_n = k;
	return 0;
}

_public_ void iovk_device_list_free(struct iovk_device **devices)
{
	if (!devices)
		return;
	for (struct iovk_device **d = devices; *d; d++)
		iovk_device_unref(*d);
	free(devices);
}

/* ---- getters --------------------------------------------------------------- */

_public_ const char *iovk_device_get_address(const struct iovk_device *d)
{
	return d->address;
}

_public_ const struct iovk_pci_addr *iovk_device_get_addr(const struct iovk_device *d)
{
	return &d->addr;
}

_public_ uint16_t iovk_device_get_vendor_id(const struct iovk_device *d)
{
	return d->vendor_id;
}

_public_ uint16_t iovk_device_get_device_id(const struct iovk_device *d)
{
	return d->device_id;
}

_public_ uint16_t iovk_device_get_subsystem_vendor_id(const struct iovk_device *d)
{
	return d->subsystem_vendor_id;
}

_public_ uint16_t iovk_device_get_subsystem_device_id(const struct iovk_device *d)
{
	return d->subsystem_device_id;
}

_public_ uint32_t iovk_device_get_class(const struct iovk_device *d)
{
	return d->class;
}

static void lookup_names(struct iovk_device *d)
{
	struct pci_access *pacc;
	char buf[256];

	if (d->names_done)
		return;
	d->names_done = true;
	pacc = ctx_pci_access(d->ctx);
	if (!pacc)
		return;
	if (pci_lookup_name(pacc, buf, sizeof(buf), PCI_LOOKUP_VENDOR | PCI_LOOKUP_NO_NUMBERS,
			    d->vendor_id))
		d->vendor_name = strdup(buf);
	if (pci_lookup_name(pacc, buf, sizeof(buf), PCI_LOOKUP_DEVICE | PCI_LOOKUP_NO_NUMBERS,
			    d->vendor_id, d->device_id))
		d->device_name = strdup(buf);
	if (pci_lookup_name(pacc, buf, sizeof(buf), PCI_LOOKUP_CLASS | PCI_LOOKUP_NO_NUMBERS,
			    d->class >> 8))
		d->class_name = strdup(buf);
}

_public_ const char *iovk_device_get_vendor_name(struct iovk_device *d)
{
	lookup_names(d);
	return d->vendor_name;
}

_public_ const char *iovk_device_get_device_name(struct iovk_device *d)
{
	lookup_names(d);
	return d->device_name;
}

_public_ const char *iovk_device_get_class_name(struct iovk_device *d)
{
	lookup_names(d);
	return d->class_name;
}

_public_ const char *iovk_device_get_driver(const struct iovk_device *d)
{
	return d->driver;
}

_public_ const char *iovk_device_get_driver_override(const struct iovk_device *d)
{
	return d->driver_override;
}

_public_ int iovk_device_get_numa_node(const struct iovk_device *d)
{
	return d->numa_node;
}

_public_ int iovk_device_get_iommu_group(const struct iovk_device *d)
{
	return d->iommu_group;
}

_public_ bool iovk_device_is_bridge(const struct iovk_device *d)
{
	return d->is_bridge;
}

_public_ int iovk_device_get_sriov_totalvfs(const struct iovk_device *d)
{
	return d->totalvfs;
}

_public_ int iovk_device_get_sriov_numvfs(const struct iovk_device *d)
{
	return d->numvfs;
}

_public_ const char *const *iovk_device_get_vfs(const struct iovk_device *d)
{
	return (const char *const *)d->vfs;
}

_public_ const char *iovk_device_get_physfn(const struct iovk_device *d)
{
	return d->physfn;
}

/* PCIe routing ID within the domain: bus, device, function (SR-IOV spec 2.1.2, 3.3.10-11). */
static int routing_id(const struct iovk_pci_addr *a)
{
	return (int)(a->bus << 8 | a->dev << 3 | a->fn);
}

/* Whether the PF's virtfn<index> link names this VF. */
static bool virtfn_is(const char *pf_path, long index, const char *address)
{
	_cleanup_free_ char *p = root_path(pf_path, "/virtfn%ld", index);
	char name[IOVK_PCI_ADDR_MAX];

	return p && read_link_name(p, name, sizeof(name)) >= 0 && strcmp(name, address) == 0;
}

/*
 * The VF's index from its PF's First VF Offset and VF Stride (what the kernel
 * computes in pci_iov_virtfn_bus/devfn), checked against the virtfn link: one
 * readlink, not a scan of the PF's directory per VF (a list of 1,000 VFs
 * would read a million links). A PF without those attributes (old kernels,
 * netdevsim) is scanned.
 */
static int find_vf_index(struct iovk_device *d)
{
	_cleanup_free_ char *pf = sysfs_path(d->ctx, "/bus/pci/devices/%s", d->physfn);
	_cleanup_free_ char *po = NULL, *ps = NULL;
	_cleanup_closedir_ DIR *dir = NULL;
	struct iovk_pci_addr pa;
	long long offset, stride;
	struct dirent *de;

	if (!pf || !(po = root_path(pf, "/sriov_offset")) || !(ps = root_path(pf, "/sriov_stride")))
		return -ENOMEM;
	if (iovk_pci_addr_parse(d->physfn, &pa) >= 0 && read_int(po, &offset) >= 0 && read_int(ps, &stride) >= 0 &&
	    stride > 0) {
		long long diff = routing_id(&d->addr) - routing_id(&pa) - offset;

		if (diff >= 0 && diff % stride == 0 && diff / stride <= 65535 &&
		    virtfn_is(pf, (long)(diff / stride), d->address))
			return (int)(diff / stride);
	}
	dir = opendir(pf);
	if (!dir)
		return set_error(d->ctx, negative_errno(), "%s: reading %s: %m", d->address, pf);
	while ((de = readdir(dir))) {
		char *end;
		long idx;

		if (strncmp(de->d_name, "virtfn", 6) != 0 || !isdigit((unsigned char)de->d_name[6]))
			continue;
		idx = strtol(de->d_name + 6, &end, 10);
		if (!*end && idx <= 65535 && virtfn_is(pf, idx, d->address))
			return (int)idx;
	}
	return set_error(d->ctx, -ENODATA, "%s: its PF %s lists no virtfn link to it", d->address, d->physfn);
}

_public_ int iovk_device_get_vf_index(struct iovk_device *d)
{
	assert_return(d, -EINVAL);
	if (!d->physfn)
		return -ENOENT;
	if (d->vf_index == VF_INDEX_UNREAD) {
		int r = find_vf_index(d);

		if (r < 0)
			return r;
		d->vf_index = r;
	}
	return d->vf_index;
}

_public_ const char *const *iovk_device_get_netdevs(const struct iovk_device *d)
{
	return (const char *const *)d->netdevs;
}

_public_ const char *iovk_device_get_parent(const struct iovk_device *d)
{
	return d->parent;
}

_public_ ssize_t iovk_device_read_config(struct iovk_device *d, size_t offset, void *buf, size_t size)
{
	_cleanup_free_ char *p = NULL;
	_cleanup_close_ int fd = -1;
	ssize_t n;

	if (!d || (!buf && size))
		return -EINVAL;
	p = root_path(d->syspath, "/config");
	if (!p)
		return -ENOMEM;
	fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		n = negative_errno();
		return set_error(d->ctx, (int)n, "%s: opening %s: %s", d->address, p, strerror((int)-n));
	}
	/* sysfs config reads are not restartable at an offset we did not ask
	 * for: one pread, and what it gives (an unprivileged reader gets the
	 * first 64 bytes only, the rest of the header reads short). */
	n = pread(fd, buf, size, (off_t)offset);
	if (n < 0) {
		n = negative_errno();
		return set_error(d->ctx, (int)n, "%s: reading %s: %s", d->address, p, strerror((int)-n));
	}
	return n;
}

_public_ int iovk_device_get_acs(struct iovk_device *d, uint16_t *ret_cap, uint16_t *ret_ctrl)
{
	struct pci_access *pacc = ctx_pci_access(d->ctx);
	struct pci_dev *pdev;
	struct pci_cap *cap;
	uint16_t c, ctl;

	if (!pacc)
		return -ENOMEM;
	pdev = pci_get_dev(pacc, (int)d->addr.domain, d->addr.bus, d->addr.dev, d->addr.fn);
	if (!pdev)
		return -ENOMEM;
	cap = pci_find_cap(pdev, PCI_EXT_CAP_ID_ACS, PCI_CAP_EXTENDED);
	if (!cap) {
		pci_free_dev(pdev);
		return -ENODATA;
	}
	c = pci_read_word(pdev, cap->addr + PCI_ACS_CAP);
	ctl = pci_read_word(pdev, cap->addr + PCI_ACS_CTRL);
	pci_free_dev(pdev);
	*ret_cap = c;
	*ret_ctrl = ctl;
	return 0;
}

_public_ bool iovk_driver_is_vfio(const char *driver)
{
	/* Variant drivers are named <vendor>_vfio_pci by convention (and
	 * VFIO_PCI_CORE users all carry "vfio"); vfio-pci itself too. */
	return driver && strstr(driver, "vfio") != NULL;
}

bool driver_is_vfio_friendly(const char *driver)
{
	/* The drivers that set driver_managed_dma (or, before 5.19, were on
	 * vfio's allow-list): vfio-pci and its variant drivers
	 * (mlx5_vfio_pci, hisi_acc_vfio_pci, ...), pci-stub, pcieport. */
	return !driver || strcmp(driver, "pci-stub") == 0 || strcmp(driver, "pcieport") == 0 ||
	       iovk_driver_is_vfio(driver);
}

_public_ bool iovk_device_is_vfio_safe(const struct iovk_device *d, const char **ret_reason)
{
	struct iovk_device *m = (struct iovk_device *)d; /* the reason is cached */

	if (driver_is_vfio_friendly(d->driver))
		return true;
	if (ret_reason) {
		if (!m->unsafe_reason &&
		    asprintf(&m->unsafe_reason,
			     "%s is bound to %s, which keeps DMA ownership of the group; "
			     "move it to vfio-pci or pci-stub, or unbind it",
			     d->address, d->driver) < 0)
			m->unsafe_reason = NULL;
		*ret_reason = m->unsafe_reason ? m->unsafe_reason : "bound to a kernel driver";
	}
	return false;
}
