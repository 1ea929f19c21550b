/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>

#include <pci/pci.h>
#include <systemd/sd-hwdb.h>

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
	unsigned *vf_indices; /* each of vfs' virtfn index */
	char *physfn;
	int vf_index; /* VF_INDEX_UNREAD until iovk_device_get_vf_index() asks */
	char **netdevs;
	char *parent;
	bool parent_done; /* a VF's parent is read on first use, or set from its PF's */
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

/* Writes v's low digits hex digits to p; returns p past them. */
static char *put_hex(char *p, uint32_t v, int digits)
{
	static const char hex[] = "0123456789abcdef";

	for (int i = digits - 1; i >= 0; i--, v >>= 4)
		p[i] = hex[v & 0xf];
	return p + digits;
}

/* "%04x:%02x:%02x.%x" without snprintf, which took ~2,000 instructions of
 * each of the 1,041 devices bench/list-bench lists (callgrind) */
_public_ char *iovk_pci_addr_format(const struct iovk_pci_addr *addr, char buf[static IOVK_PCI_ADDR_MAX])
{
	/* what "%04x:%02x:%02x.%x" gives, snprintf's truncation included: a
	 * function above 0xf (out of range, but public callers fill the struct)
	 * takes two digits, and with an 8-digit domain the 17th byte is cut */
	char tmp[IOVK_PCI_ADDR_MAX + 1];
	int domain_digits = 4;
	char *p;

	while (domain_digits < 8 && addr->domain >> (4 * domain_digits))
		domain_digits++;
	p = put_hex(tmp, addr->domain, domain_digits);
	*p++ = ':';
	p = put_hex(p, addr->bus, 2);
	*p++ = ':';
	p = put_hex(p, addr->dev, 2);
	*p++ = '.';
	p = put_hex(p, addr->fn, addr->fn > 0xf ? 2 : 1);
	*p = '\0';
	memcpy(buf, tmp, IOVK_PCI_ADDR_MAX - 1);
	buf[IOVK_PCI_ADDR_MAX - 1] = '\0';
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

/*
 * A listing of 1,000 functions reads ~20,000 sysfs attributes, so each device
 * is read through one directory fd (short lookups, no path strings built),
 * optional attributes are probed (read_device()), and the identity comes
 * from `uevent`, where the kernel's pci_uevent() prints vendor, device,
 * subsystem and class in one read instead of five. A listing also takes
 * each VF's physfn from its PF (read_devices()). iovctl list --json on
 * bench/list-bench's 1,041 functions: 17,118 syscalls (strace -c), 16.4 a
 * function, ~4.5 of them the open/close pairs of uevent, numa_node and
 * driver_override, which no other attribute or link gives.
 */

static int attr_error(struct iovk_device *d, int r, const char *what, const char *name)
{
	return set_error(d->ctx, r, "%s: %s %s/%s: %s", d->address, what, d->syspath, name,
			 r == -EBADMSG ? "not a number" : strerror(-r));
}

/* One sysfs attribute of the device into buf, without its trailing newline.
 * sysfs hands an attribute over in one read; a full buffer is an error. */
static ssize_t read_attr_at(int dfd, const char *name, char *buf, size_t size)
{
	_cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	ssize_t n;

	if (fd < 0)
		return negative_errno();
	do
		n = read(fd, buf, size - 1);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return negative_errno();
	if ((size_t)n == size - 1) {
		char more;
		ssize_t k = read(fd, &more, 1); /* full: an exact fit ends here */

		if (k != 0)
			return k < 0 ? negative_errno() : -EFBIG;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	return n;
}

static int read_int_at(struct iovk_device *d, int dfd, const char *name, int *ret)
{
	char buf[64], *end;
	ssize_t n = read_attr_at(dfd, name, buf, sizeof(buf));
	long long v;

	if (n == -ENOENT)
		return -ENOENT; /* optional: the caller decides, no error set */
	if (n < 0)
		return attr_error(d, (int)n, "reading", name);
	errno = 0;
	v = strtoll(buf, &end, 0);
	if (errno != 0 || end == buf || *end != '\0')
		return attr_error(d, -EBADMSG, "reading", name);
	if (v < INT_MIN || v > INT_MAX)
		return set_error(d->ctx, -EBADMSG, "%s: %s/%s holds an out-of-range value", d->address,
				 d->syspath, name);
	*ret = (int)v;
	return 0;
}

/* The last component of a symlink in the device's directory. */
static int read_link_at(struct iovk_device *d, int dfd, const char *name, char *buf, size_t size)
{
	int r = read_link_name_at(dfd, name, buf, size);

	if (r == -ENOENT)
		return -ENOENT; /* optional: the caller decides, no error set */
	return r < 0 ? attr_error(d, r, "reading link", name) : 0;
}

/* "VVVV:DDDD" as pci_uevent() prints PCI_ID and PCI_SUBSYS_ID. */
static bool parse_id_pair(const char *s, uint16_t *a, uint16_t *b)
{
	uint32_t x, y;

	if (parse_hex(&s, 1, 4, &x) < 0 || *s++ != ':' || parse_hex(&s, 1, 4, &y) < 0 || *s)
		return false;
	*a = (uint16_t)x;
	*b = (uint16_t)y;
	return true;
}

static int read_uevent(struct iovk_device *d, int dfd)
{
	char buf[2048], *line, *save = NULL;
	ssize_t n = read_attr_at(dfd, "uevent", buf, sizeof(buf));
	bool id = false, subsys = false, class = false;

	if (n == -ENOENT) /* the directory is open, its files gone: removed while we read it */
		return set_error(d->ctx, -ENODEV, "%s: removed while it was read (%s/uevent is gone)", d->address,
				 d->syspath);
	if (n < 0)
		return attr_error(d, (int)n, "reading", "uevent");
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "PCI_ID=", 7) == 0)
			id = parse_id_pair(line + 7, &d->vendor_id, &d->device_id);
		else if (strncmp(line, "PCI_SUBSYS_ID=", 14) == 0)
			subsys = parse_id_pair(line + 14, &d->subsystem_vendor_id, &d->subsystem_device_id);
		else if (strncmp(line, "PCI_CLASS=", 10) == 0) {
			const char *p = line + 10;

			class = parse_hex(&p, 1, 6, &d->class) >= 0 && !*p;
		}
	}
	if (!id || !subsys || !class)
		return set_error(d->ctx, -EBADMSG, "%s: %s/uevent lacks a valid %s", d->address, d->syspath,
				 !id ? "PCI_ID" : !subsys ? "PCI_SUBSYS_ID" : "PCI_CLASS");
	return 0;
}

static int strcmp_ptr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The entries of the "net" directory below dirfd/path ("net" or "virtioN/net") pushed to d->netdevs. */
static int push_net_entries(struct iovk_device *d, int dirfd, const char *path, size_t *n)
{
	_cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char buf[4096] __attribute__((aligned(8)));
	ssize_t len;
	int r;

	if (fd >= 0)
		while ((len = getdents64(fd, buf, sizeof(buf))) > 0)
			for (ssize_t off = 0; off < len;) {
				struct dirent64 *de = (struct dirent64 *)(buf + off);

				off += de->d_reclen;
				if (de->d_name[0] == '.')
					continue;
				r = strv_push(&d->netdevs, n, de->d_name);
				if (r < 0)
					return r;
			}
	return 0;
}

static int read_netdevs(struct iovk_device *d, int dfd, bool may_have)
{
	size_t n = 0;
	int r;

	if (may_have) {
		r = push_net_entries(d, dfd, "net", &n);
		if (r < 0)
			return r;
	}
	/* virtio-pci makes a virtio device, virtioN/, and virtio-net's interface
	 * is that device's (the PCI function's "net" is empty): read it there,
	 * as the host-use check does (in-use.c), or "show" would list none for
	 * the interface that carries the host's traffic in most VMs */
	if (may_have && strcmp(d->driver, "virtio-pci") == 0) {
		_cleanup_closedir_ DIR *dir = NULL;
		int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		struct dirent *de;

		dir = fd >= 0 ? fdopendir(fd) : NULL;
		if (!dir && fd >= 0)
			close(fd);
		while (dir && (de = readdir(dir)))
			if (strncmp(de->d_name, "virtio", 6) == 0 && isdigit((unsigned char)de->d_name[6])) {
				char path[NAME_MAX + 8];

				snprintf(path, sizeof(path), "%s/net", de->d_name);
				r = push_net_entries(d, dfd, path, &n);
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

/*
 * A PF's virtfnN links, N from 0 to sriov_numvfs - 1 (the kernel makes them
 * so in pci_iov_add_virtfn()): one readlinkat each, no listing of the PF's
 * directory. One that is missing (VFs being added or removed, on kernels
 * before ~5.15 one at a time) is skipped, as a listing of the directory did:
 * the list then closes up, so a VF's position is not its index after the gap;
 * vf_indices holds the real ones (iovk_device_get_vf_index(),
 * iovk_sriov_pf_get_vf()).
 */
static int read_vfs(struct iovk_device *d, int dfd)
{
	size_t nv = 0;
	int r;

	d->vfs = calloc(1, sizeof(char *));
	if (!d->vfs)
		return -ENOMEM;
	if (d->numvfs <= 0)
		return 0;
	d->vf_indices = calloc((size_t)d->numvfs, sizeof(*d->vf_indices));
	if (!d->vf_indices)
		return -ENOMEM;
	for (int i = 0; i < d->numvfs && i <= 65535; i++) {
		char link[32], name[IOVK_PCI_ADDR_MAX], *end = link + sizeof(link) - 1;

		/* "virtfn%d" without snprintf, which cost ~700 instructions a link */
		*end = '\0';
		for (unsigned v = (unsigned)i;; v /= 10) {
			*--end = (char)('0' + v % 10);
			if (v < 10)
				break;
		}
		memcpy(end - 6, "virtfn", 6);
		r = read_link_at(d, dfd, end - 6, name, sizeof(name));
		if (r == -ENOENT)
			continue;
		if (r < 0)
			return r;
		d->vf_indices[nv] = (unsigned)i;
		r = strv_push(&d->vfs, &nv, name);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The parent is the directory above ours in /sys/devices: the bus entry is
 * a symlink whose target names it (the kernel writes it without "./" or
 * symlinks below /sys/devices); realpath() where the entry is no link. */
static int read_parent(struct iovk_device *d)
{
	char target[PATH_MAX];
	_cleanup_free_ char *real = NULL;
	char *slash, *path = target;
	struct iovk_pci_addr pa;
	ssize_t n = readlink(d->syspath, target, sizeof(target) - 1);

	if (n >= 0)
		target[n] = '\0';
	else {
		real = realpath(d->syspath, NULL);
		if (!real)
			return 0;
		path = real;
	}
	slash = strrchr(path, '/');
	if (!slash)
		return 0;
	*slash = '\0';
	slash = strrchr(path, '/');
	if (slash && iovk_pci_addr_parse(slash + 1, &pa) >= 0) {
		d->parent = strdup(slash + 1);
		if (!d->parent)
			return -ENOMEM;
	}
	return 0;
}

/*
 * Reads the device through its directory fd. Optional attributes are
 * probed (a missing one is one failed lookup: cheaper than listing the
 * directory, which sysfs builds entry by entry). known_pf: the PF whose
 * virtfn link names this device, when a listing read that PF already
 * (read_devices()), or NULL.
 */
static int read_device(struct iovk_device *d, int dfd, const char *known_pf)
{
	char name[256], override[4097];
	ssize_t n;
	int r;

	r = read_uevent(d, dfd);
	if (r < 0)
		return r;
	/* 0x0604 PCI-to-PCI bridge, 0x0609 semi-transparent: the ports
	 * pcieport drives. Host/ISA bridges are functions like any other. */
	d->is_bridge = (d->class >> 8) == 0x0604 || (d->class >> 8) == 0x0609;

	r = read_link_at(d, dfd, "driver", name, sizeof(name));
	if (r >= 0) {
		d->driver = strdup(name);
		if (!d->driver)
			return -ENOMEM;
	} else if (r != -ENOENT)
		return r;

	r = read_int_at(d, dfd, "numa_node", &d->numa_node);
	if (r == -ENOENT)
		d->numa_node = -1;
	else if (r < 0)
		return r;

	/* the kernel takes an override of up to a page */
	n = read_attr_at(dfd, "driver_override", override, sizeof(override));
	if (n < 0 && n != -ENOENT)
		return attr_error(d, (int)n, "reading", "driver_override");
	if (n > 0 && strcmp(override, "(null)") != 0) {
		d->driver_override = strdup(override);
		if (!d->driver_override)
			return -ENOMEM;
	}

	d->iommu_group = -1;
	r = read_link_at(d, dfd, "iommu_group", name, sizeof(name));
	if (r >= 0) {
		char *end;
		long g = strtol(name, &end, 10);

		if (*end || end == name || g < 0 || g > INT_MAX)
			return set_error(d->ctx, -EBADMSG, "%s: %s/iommu_group points to '%s', not a group number",
					 d->address, d->syspath, name);
		d->iommu_group = (int)g;
	} else if (r != -ENOENT)
		return r;

	/* the kernel links virtfnN before physfn (pci_iov_sysfs_link()) and
	 * unlinks it first: a PF's virtfn link names a VF whose physfn is that
	 * PF, one readlinkat fewer for each VF a listing holds */
	r = known_pf ? 0 : read_link_at(d, dfd, "physfn", name, sizeof(name));
	if (r >= 0) {
		d->physfn = strdup(known_pf ?: name);
		if (!d->physfn)
			return -ENOMEM;
	} else if (r != -ENOENT)
		return r;

	/* a VF has no SR-IOV capability of its own (SR-IOV 1.1, 3.1) */
	r = d->physfn ? -ENOENT : read_int_at(d, dfd, "sriov_numvfs", &d->numvfs);
	if (r == -ENOENT)
		d->numvfs = d->totalvfs = -1;
	else if (r < 0)
		return r;
	else {
		/* netdevsim and some PFs have sriov_numvfs without sriov_totalvfs */
		r = read_int_at(d, dfd, "sriov_totalvfs", &d->totalvfs);
		if (r == -ENOENT)
			d->totalvfs = 0;
		else if (r < 0)
			return r;
	}
	r = read_vfs(d, dfd);
	if (r < 0)
		return r;

	/* a network interface is made by the driver that binds the device:
	 * none without one, nor under vfio-pci or pci-stub */
	r = read_netdevs(d, dfd, d->driver && !driver_is_vfio_friendly(d->driver));
	if (r < 0)
		return r;
	/* a VF's parent is its PF's (pci_iov_add_virtfn() gives it the PF's):
	 * a listing takes it from there, a lone VF reads it when asked */
	return d->physfn ? 0 : read_parent(d);
}

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

/* 1 when the sysfs device directory dev is on the virtio bus, 0 when not (or it has no bus), or -errno. */
static int is_virtio_device(const char *dev)
{
	_cleanup_free_ char *link = NULL, *target = NULL;
	const char *base;

	if (asprintf(&link, "%s/subsystem", dev) < 0)
		return -ENOMEM;
	target = realpath(link, NULL);
	if (!target)
		return errno == ENOENT ? 0 : negative_errno();
	base = strrchr(target, '/');
	return base && strcmp(base + 1, "virtio") == 0;
}

_public_ int iovk_device_resolve_name(struct iovk_ctx *ctx, const char *name,
				      char ret_address[static IOVK_PCI_ADDR_MAX])
{
	_cleanup_free_ char *link = NULL, *dev = NULL, *parent = NULL;
	struct iovk_pci_addr addr;
	const char *base;
	int r;

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
		r = negative_errno();
		if (r != -ENOENT)
			return set_error(ctx, r, "%s: reading %s: %s", name, link, strerror(-r));
		link[strlen(link) - strlen("/device")] = '\0';
		return set_error(ctx, -ENODEV, "%s: no such network interface (%s %s)", name, link,
				 path_exists(link) ? "has no device: a virtual interface" : "does not exist");
	}
	/* realpath() gives an absolute path: there is a '/' */
	base = strrchr(dev, '/');
	if (iovk_pci_addr_parse(base + 1, &addr) >= 0) {
		iovk_pci_addr_format(&addr, ret_address);
		return 0;
	}
	/* virtio-net's interface belongs to the virtio device virtio-pci made,
	 * virtioN/ below the PCI function: that function is the device
	 * (dpdk-devbind takes a VM's virtio NIC by interface name too). Only
	 * virtio's: any other parent (a USB NIC's controller) is not it. */
	r = is_virtio_device(dev);
	if (r < 0)
		return set_error(ctx, r, "%s: reading %s/subsystem: %s", name, dev, strerror(-r));
	if (r == 0)
		return set_error(ctx, -ENODEV, "%s: the network interface's device %s is not a PCI function", name,
				 dev);
	parent = base > dev ? strndup(dev, (size_t)(base - dev)) : strdup("/");
	if (!parent)
		return -ENOMEM;
	if (iovk_pci_addr_parse(strrchr(parent, '/') + 1, &addr) < 0)
		/* virtio-mmio, vDPA: a virtio device, but not one a PCI function made */
		return set_error(ctx, -ENODEV,
				 "%s: the network interface's device %s is a virtio device on %s, not on a PCI function",
				 name, dev, parent);
	iovk_pci_addr_format(&addr, ret_address);
	return 0;
}

static int device_new(struct iovk_ctx *ctx, const char *address, const char *known_pf,
		      struct iovk_device **ret_device)
{
	_cleanup_close_ int dfd = -1;
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
	dfd = open(d->syspath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		r = negative_errno();
		r = r == -ENOENT ? set_error(ctx, -ENODEV, "%s: no such PCI device (%s does not exist)", d->address,
					     d->syspath)
				 : set_error(ctx, r, "%s: opening %s: %s", d->address, d->syspath, strerror(-r));
		iovk_device_unref(d);
		return r;
	}
	r = read_device(d, dfd, known_pf);
	if (r < 0) {
		iovk_device_unref(d);
		return r;
	}
	*ret_device = d;
	return 0;
}

_public_ int iovk_device_new(struct iovk_ctx *ctx, const char *address, struct iovk_device **ret_device)
{
	return device_new(ctx, address, NULL, ret_device);
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
	free(d->vf_indices);
	free(d->physfn);
	strv_free(d->netdevs);
	free(d->parent);
	free(d->unsafe_reason);
	iovk_ctx_unref(d->ctx);
	free(d);
}

DEFINE_PUBLIC_REF_UNREF(struct iovk_device, iovk_device, device_free);

struct addr_name {
	struct iovk_pci_addr addr;
	char *name;
};

static int addr_name_cmp(const void *a, const void *b)
{
	return iovk_pci_addr_compare(&((const struct addr_name *)a)->addr, &((const struct addr_name *)b)->addr);
}

/* The PCI addresses among dir's entries, in address order (parsed once, not
 * on every comparison). */
int list_pci_addresses(const char *dir, char ***ret_names, size_t *ret_n)
{
	_cleanup_closedir_ DIR *d = opendir(dir);
	_cleanup_free_ struct addr_name *v = NULL;
	char **names;
	size_t n = 0, alloc = 0;
	struct dirent *de;

	if (!d)
		return negative_errno();
	while ((de = readdir(d))) {
		struct iovk_pci_addr addr;

		if (iovk_pci_addr_parse(de->d_name, &addr) < 0)
			continue;
		if (n == alloc) {
			struct addr_name *nv;

			alloc = alloc ? alloc * 2 : 64;
			nv = realloc(v, alloc * sizeof(*v));
			if (!nv)
				goto nomem;
			v = nv;
		}
		v[n].addr = addr;
		v[n].name = strdup(de->d_name);
		if (!v[n].name)
			goto nomem;
		n++;
	}
	if (n > 0)
		qsort(v, n, sizeof(*v), addr_name_cmp);
	names = calloc(n + 1, sizeof(char *));
	if (!names)
		goto nomem;
	for (size_t i = 0; i < n; i++)
		names[i] = v[i].name;
	*ret_names = names;
	*ret_n = n;
	return 0;
nomem:
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	return -ENOMEM;
}

static int device_addr_cmp(const void *key, const void *elem)
{
	return iovk_pci_addr_compare(key, &(*(struct iovk_device *const *)elem)->addr);
}

/*
 * Each VF's index from its PF's virtfn links, and its parent from its PF's,
 * which the PF's read gave already: a list of 1,000 VFs needs no further read
 * (on a lone VF, iovk_device_get_vf_index reads the PF's sriov_offset/stride
 * and one link, iovk_device_get_parent one link). list is in address order.
 */
static void set_vf_indices(struct iovk_device **list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct iovk_device *pf = list[i];

		for (size_t k = 0; pf->vfs && pf->vfs[k]; k++) {
			struct iovk_device **vf;
			struct iovk_pci_addr a;

			if (iovk_pci_addr_parse(pf->vfs[k], &a) < 0)
				continue;
			vf = bsearch(&a, list, n, sizeof(*list), device_addr_cmp);
			if (!vf || !(*vf)->physfn || strcmp((*vf)->physfn, pf->address) != 0)
				continue;
			(*vf)->vf_index = (int)pf->vf_indices[k];
			if (!(*vf)->parent_done && pf->parent) {
				(*vf)->parent = strdup(pf->parent);
				(*vf)->parent_done = (*vf)->parent != NULL;
			}
		}
	}
}

static int addr_cmp(const void *a, const void *b)
{
	return iovk_pci_addr_compare(a, b);
}

/* Marks the VFs pf lists among names (addrs: names parsed, in address
 * order) as pf's, for their read. */
static void note_vfs(const struct iovk_device *pf, const struct iovk_pci_addr *addrs, size_t n,
		     const struct iovk_device **pf_of)
{
	for (size_t k = 0; pf->vfs && pf->vfs[k]; k++) {
		struct iovk_pci_addr a;
		const struct iovk_pci_addr *at;

		if (iovk_pci_addr_parse(pf->vfs[k], &a) < 0)
			continue;
		at = bsearch(&a, addrs, n, sizeof(*addrs), addr_cmp);
		if (at)
			pf_of[at - addrs] = pf;
	}
}

/*
 * names in address order (list_pci_addresses()): a VF's routing ID is its
 * PF's plus First VF Offset (SR-IOV 1.1, 3.3.9), so a PF is read before its
 * VFs and hands each its physfn (read_device()). Names in another order
 * are read as well, each VF probing its own link.
 */
int read_devices(struct iovk_ctx *ctx, char *const *names, size_t n, struct iovk_device ***ret_devices,
		 size_t *ret_n)
{
	struct iovk_device **list = calloc(n + 1, sizeof(*list));
	_cleanup_free_ struct iovk_pci_addr *addrs = calloc(n + 1, sizeof(*addrs));
	_cleanup_free_ const struct iovk_device **pf_of = calloc(n + 1, sizeof(*pf_of));
	size_t k = 0;
	bool sorted = true;
	int r;

	if (!list || !addrs || !pf_of) {
		free(list);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		if (iovk_pci_addr_parse(names[i], &addrs[i]) < 0 ||
		    (i > 0 && iovk_pci_addr_compare(&addrs[i - 1], &addrs[i]) >= 0))
			sorted = false;
	for (size_t i = 0; i < n; i++) {
		r = device_new(ctx, names[i], pf_of[i] ? pf_of[i]->address : NULL, &list[k]);
		if (r == -ENODEV)
			continue; /* hot-unplugged while we looked */
		if (r < 0) {
			iovk_device_list_free(list);
			return r;
		}
		if (sorted && list[k]->numvfs > 0)
			note_vfs(list[k], addrs, n, pf_of);
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
	set_vf_indices(list, k);
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

/*
 * Names from udev's hardware database, which systemd builds from the same
 * pci.ids (20-pci-vendor-model.hwdb, 20-pci-classes.hwdb): no parse of all of
 * pci.ids (~25 M instructions) the first time libpci is asked. The model is
 * looked up by vendor and device only, as libpci does (hwdb also has "device
 * (subsystem)" entries); the class by the whole modalias. A hwdb lookup walks
 * the class patterns' wildcards (~0.5 M instructions), so each
 * vendor:device:class is looked up once per context. Anything missing: libpci
 * and pci.ids decide.
 */
static bool lookup_names_hwdb(struct iovk_device *d, struct pci_names *n)
{
	sd_hwdb *hwdb = ctx_hwdb(d->ctx);
	const char *key, *value, *class = NULL, *subclass = NULL;
	char modalias[80];

	if (!hwdb)
		return false;
	snprintf(modalias, sizeof(modalias), "pci:v%08Xd%08X", d->vendor_id, d->device_id);
	SD_HWDB_FOREACH_PROPERTY(hwdb, modalias, key, value) {
		if (strcmp(key, "ID_VENDOR_FROM_DATABASE") == 0 && !n->vendor_name)
			n->vendor_name = strdup(value);
		else if (strcmp(key, "ID_MODEL_FROM_DATABASE") == 0 && !n->device_name)
			n->device_name = strdup(value);
	}
	snprintf(modalias, sizeof(modalias), "pci:v%08Xd%08Xsv%08Xsd%08Xbc%02Xsc%02Xi%02X", d->vendor_id,
		 d->device_id, d->subsystem_vendor_id, d->subsystem_device_id, d->class >> 16,
		 (d->class >> 8) & 0xff, d->class & 0xff);
	SD_HWDB_FOREACH_PROPERTY(hwdb, modalias, key, value) {
		if (strcmp(key, "ID_PCI_CLASS_FROM_DATABASE") == 0)
			class = value;
		else if (strcmp(key, "ID_PCI_SUBCLASS_FROM_DATABASE") == 0)
			subclass = value;
	}
	if (subclass || class)
		n->class_name = strdup(subclass ? subclass : class);
	if (n->vendor_name && n->device_name && n->class_name)
		return true;
	free(n->vendor_name);
	free(n->device_name);
	free(n->class_name);
	n->vendor_name = n->device_name = n->class_name = NULL;
	return false;
}

static void lookup_names_libpci(struct iovk_device *d, struct pci_names *n)
{
	struct pci_access *pacc = ctx_pci_access(d->ctx);
	char buf[256];

	if (!pacc)
		return;
	if (pci_lookup_name(pacc, buf, sizeof(buf), PCI_LOOKUP_VENDOR | PCI_LOOKUP_NO_NUMBERS, d->vendor_id))
		n->vendor_name = strdup(buf);
	if (pci_lookup_name(pacc, buf, sizeof(buf), PCI_LOOKUP_DEVICE | PCI_LOOKUP_NO_NUMBERS, d->vendor_id,
			    d->device_id))
		n->device_name = strdup(buf);
	if (pci_lookup_name(pacc, buf, sizeof(buf), PCI_LOOKUP_CLASS | PCI_LOOKUP_NO_NUMBERS, d->class >> 8))
		n->class_name = strdup(buf);
}

static void lookup_names(struct iovk_device *d)
{
	struct iovk_ctx *ctx = d->ctx;
	struct pci_names *n = NULL;

	if (d->names_done)
		return;
	d->names_done = true;
	for (size_t i = ctx->n_names; i > 0; i--)
		if (ctx->names[i - 1].vendor_id == d->vendor_id && ctx->names[i - 1].device_id == d->device_id &&
		    ctx->names[i - 1].class == d->class) {
			n = &ctx->names[i - 1];
			break;
		}
	if (!n) {
		struct pci_names *nv = realloc(ctx->names, (ctx->n_names + 1) * sizeof(*nv));

		if (!nv)
			return;
		ctx->names = nv;
		n = &nv[ctx->n_names++];
		*n = (struct pci_names){ .vendor_id = d->vendor_id, .device_id = d->device_id, .class = d->class };
		if (!lookup_names_hwdb(d, n))
			lookup_names_libpci(d, n);
	}
	d->vendor_name = n->vendor_name ? strdup(n->vendor_name) : NULL;
	d->device_name = n->device_name ? strdup(n->device_name) : NULL;
	d->class_name = n->class_name ? strdup(n->class_name) : NULL;
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

unsigned device_vf_index_at(const struct iovk_device *pf, size_t k)
{
	return pf->vf_indices[k];
}

void device_set_vf_index(struct iovk_device *vf, unsigned index)
{
	vf->vf_index = (int)index;
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
	struct iovk_device *m = (struct iovk_device *)d; /* read on first use (VFs) */

	if (d->physfn && !d->parent_done) {
		m->parent_done = true;
		(void)read_parent(m);
	}
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
