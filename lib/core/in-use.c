/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Whether taking a device from its driver would hurt the host: the one rule
 * that bind, unbind, restore, group binds, passthrough, SR-IOV VF removal,
 * apply and iovd all follow (issue 9).
 *
 * What the peers taught: dpdk-devbind refuses to unbind an interface that
 * has routes ("*Active*") unless forced; libvirt refuses a device another
 * domain holds; `ip link` has nothing, and operators lose their uplink by
 * unbinding the PF that carries it, and every VF with it. So the check
 * looks at what an operator would: the device's interfaces (up, addressed,
 * routed, enslaved to a bond or bridge), its disks (mounted, swap, held by
 * device-mapper), the boot console, and for a PF the VFs that unbinding it
 * destroys. Every reason is returned, not the first, so one refusal says
 * all there is to undo.
 *
 * Addresses and routes come from the kernel over rtnetlink (libnl-route)
 * when the context reads the live /proc, in the caller's network namespace,
 * which is where a host's interfaces are; a fixture tree supplies
 * <proc>/net/route and <proc>/net/if_inet6 instead.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <string.h>

#include <linux/rtnetlink.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/route.h>

#include "netlink.h"

/* A host with more reasons than this has told the operator enough. */
#define REASONS_MAX 64

struct iovk_in_use {
	size_t n;
	struct iovk_in_use_reason *reasons;
	char *text;
	/* rtnetlink, dumped once per check and only when an interface asks:
	 * a PF with 64 VF interfaces on a router with a full table must not
	 * dump the routes 64 times. Freed when the check ends. */
	struct nl_cache *addrs, *routes;
};

static void nl_caches_free(struct iovk_in_use *u)
{
	if (u->addrs)
		nl_cache_free(u->addrs);
	if (u->routes)
		nl_cache_free(u->routes);
	u->addrs = u->routes = NULL;
}

_public_ struct iovk_in_use *iovk_in_use_free(struct iovk_in_use *u)
{
	if (u) {
		nl_caches_free(u);
		free(u->reasons);
		free(u->text);
		free(u);
	}
	return NULL;
}

static void iovk_in_use_freep(struct iovk_in_use **u)
{
	iovk_in_use_free(*u);
}

_public_ size_t iovk_in_use_get_n_reasons(const struct iovk_in_use *u)
{
	return u ? u->n : 0;
}

_public_ const struct iovk_in_use_reason *iovk_in_use_get_reason(const struct iovk_in_use *u, size_t i)
{
	return u && i < u->n ? &u->reasons[i] : NULL;
}

_public_ const char *iovk_in_use_kind_to_string(enum iovk_in_use_kind kind)
{
	static const char *const names[] = {
		[IOVK_IN_USE_NETDEV_UP] = "netdev-up",
		[IOVK_IN_USE_NETDEV_ADDRESS] = "netdev-address",
		[IOVK_IN_USE_NETDEV_ROUTE] = "netdev-route",
		[IOVK_IN_USE_NETDEV_MASTER] = "netdev-master",
		[IOVK_IN_USE_BLOCK_MOUNTED] = "block-mounted",
		[IOVK_IN_USE_BLOCK_SWAP] = "block-swap",
		[IOVK_IN_USE_BLOCK_HELD] = "block-held",
		[IOVK_IN_USE_BOOT_VGA] = "boot-vga",
		[IOVK_IN_USE_PF_WITH_VFS] = "pf-with-vfs",
		[IOVK_IN_USE_ALLOCATED] = "allocated",
		[IOVK_IN_USE_VF_ON_VFIO] = "vf-on-vfio",
		[IOVK_IN_USE_KERNEL_DRIVER] = "kernel-driver",
	};

	if ((unsigned)kind >= sizeof(names) / sizeof(names[0]) || !names[kind])
		return NULL;
	return names[kind];
}

static int add_reason(struct iovk_in_use *u, const char *address, const char *driver, enum iovk_in_use_kind kind,
		      const char *object, const char *format, ...) _printf_(6, 7);

static int add_reason(struct iovk_in_use *u, const char *address, const char *driver, enum iovk_in_use_kind kind,
		      const char *object, const char *format, ...)
{
	struct iovk_in_use_reason *r;
	va_list ap;

	if (u->n >= REASONS_MAX)
		return 0;
	r = realloc(u->reasons, (u->n + 1) * sizeof(*r));
	if (!r)
		return -ENOMEM;
	u->reasons = r;
	r = &r[u->n++];
	memset(r, 0, sizeof(*r));
	snprintf(r->address, sizeof(r->address), "%s", address);
	snprintf(r->driver, sizeof(r->driver), "%s", driver ?: "");
	r->kind = kind;
	snprintf(r->object, sizeof(r->object), "%s", object ?: "");
	va_start(ap, format);
	vsnprintf(r->reason, sizeof(r->reason), format, ap);
	va_end(ap);
	return 0;
}

/*
 * Names of the entries of <sysfs>/class/<class> whose device sits below the
 * PCI device's directory: a netdev or disk of the device itself or of a
 * child (virtio-net's is below virtioN/, a SATA disk below ataN/hostN/...).
 */
static int class_members_below(struct iovk_ctx *ctx, const char *class, const char *devdir, char ***ret)
{
	_cleanup_free_ char *dir = sysfs_path(ctx, "/class/%s", class);
	_cleanup_closedir_ DIR *d = NULL;
	_cleanup_strv_free_ char **names = NULL;
	size_t n = 0, len = strlen(devdir);
	struct dirent *de;
	int r;

	if (!dir)
		return -ENOMEM;
	d = opendir(dir);
	if (d) {
		while ((de = readdir(d))) {
			_cleanup_free_ char *p = NULL, *real = NULL;

			if (de->d_name[0] == '.')
				continue;
			if (asprintf(&p, "%s/%s", dir, de->d_name) < 0)
				return -ENOMEM;
			real = realpath(p, NULL);
			if (!real || strncmp(real, devdir, len) != 0 || real[len] != '/')
				continue;
			r = strv_push(&names, &n, de->d_name);
			if (r < 0)
				return r;
		}
	}
	*ret = TAKE_PTR(names);
	return 0;
}

/* ---- addresses and routes ---------------------------------------------------- */

struct ip_use {
	unsigned n_addrs, n_routes;
	char addr[INET6_ADDRSTRLEN + 5]; /* the first one, with its prefix length */
	char route[INET6_ADDRSTRLEN + 5];
};

struct nl_walk {
	int ifindex;
	struct ip_use *use;
};

static void addr_seen(struct nl_object *obj, void *arg)
{
	struct rtnl_addr *a = (struct rtnl_addr *)obj;
	struct nl_walk *w = arg;

	/* Link-local and host-scope addresses come by themselves: only
	 * what somebody configured says the host relies on the interface. */
	if (rtnl_addr_get_ifindex(a) != w->ifindex || rtnl_addr_get_scope(a) >= RT_SCOPE_LINK)
		return;
	if (w->use->n_addrs++ == 0 && rtnl_addr_get_local(a))
		nl_addr2str(rtnl_addr_get_local(a), w->use->addr, sizeof(w->use->addr));
}

static void nexthop_seen(struct rtnl_nexthop *nh, void *arg)
{
	int *hit = arg;

	*hit |= rtnl_route_nh_get_ifindex(nh) == hit[1];
}

static void route_seen(struct nl_object *obj, void *arg)
{
	struct rtnl_route *rt = (struct rtnl_route *)obj;
	struct nl_walk *w = arg;
	int hit[2] = { 0, w->ifindex };

	/* Routes the kernel derives from an address (proto kernel) are said
	 * by the address already; what counts is what was set up on top:
	 * a default route, static routes, DHCP's. */
	if (rtnl_route_get_table(rt) != RT_TABLE_MAIN || rtnl_route_get_type(rt) != RTN_UNICAST ||
	    rtnl_route_get_protocol(rt) == RTPROT_KERNEL)
		return;
	rtnl_route_foreach_nexthop(rt, nexthop_seen, hit);
	if (!hit[0])
		return;
	if (w->use->n_routes++ == 0 && rtnl_route_get_dst(rt)) {
		struct nl_addr *dst = rtnl_route_get_dst(rt);

		if (nl_addr_get_prefixlen(dst) == 0)
			snprintf(w->use->route, sizeof(w->use->route), "default");
		else
			nl_addr2str(dst, w->use->route, sizeof(w->use->route));
	}
}

static int ip_use_netlink(struct iovk_ctx *ctx, struct iovk_in_use *u, const char *ifname, struct ip_use *ret)
{
	struct nl_walk w = { .use = ret };
	int r = 0;

	w.ifindex = (int)if_nametoindex(ifname);
	if (w.ifindex == 0)
		return 0; /* not in this network namespace: nothing of ours uses it */
	if (!u->addrs) {
		_cleanup_(nl_socket_freep) struct nl_sock *sk = nl_socket_alloc();

		if (!sk)
			return -ENOMEM;
		r = nl_connect(sk, NETLINK_ROUTE);
		if (r >= 0)
			r = rtnl_addr_alloc_cache(sk, &u->addrs);
		if (r >= 0)
			r = rtnl_route_alloc_cache(sk, AF_UNSPEC, 0, &u->routes);
		if (r < 0) {
			nl_caches_free(u);
			return set_error(ctx, -EIO, "reading the addresses and routes of %s over rtnetlink: %s",
					 ifname, nl_geterror(r));
		}
	}
	nl_cache_foreach(u->addrs, addr_seen, &w);
	nl_cache_foreach(u->routes, route_seen, &w);
	return 0;
}

/* The fixture's stand-in: <proc>/net/route (IPv4 routes by interface name)
 * and <proc>/net/if_inet6 (IPv6 addresses with their scope). */
static void ip_use_proc(struct iovk_ctx *ctx, const char *ifname, struct ip_use *ret)
{
	_cleanup_free_ char *rp = proc_path(ctx, "/net/route"), *ap = proc_path(ctx, "/net/if_inet6");
	_cleanup_free_ char *line = NULL;
	_cleanup_fclose_ FILE *rf = NULL, *af = NULL;
	size_t size = 0;

	if (rp && (rf = fopen(rp, "re")))
		while (getline(&line, &size, rf) > 0) {
			char name[IF_NAMESIZE + 1];
			unsigned dst, mask;

			if (sscanf(line, "%16s %x %*x %*x %*d %*d %*d %x", name, &dst, &mask) != 3 ||
			    strcmp(name, ifname) != 0)
				continue;
			if (ret->n_routes++ == 0) {
				struct in_addr in = { .s_addr = dst };
				char buf[INET_ADDRSTRLEN];

				snprintf(ret->route, sizeof(ret->route), "%s/%d",
					 inet_ntop(AF_INET, &in, buf, sizeof(buf)) ?: "?", __builtin_popcount(mask));
				if (dst == 0 && mask == 0)
					snprintf(ret->route, sizeof(ret->route), "default");
			}
		}
	if (ap && (af = fopen(ap, "re")))
		while (getline(&line, &size, af) > 0) {
			char hex[33], name[IF_NAMESIZE + 1], buf[INET6_ADDRSTRLEN];
			unsigned plen, scope;
			struct in6_addr in6;

			if (sscanf(line, "%32s %*x %x %x %*x %16s", hex, &plen, &scope, name) != 4 ||
			    strcmp(name, ifname) != 0 || scope != 0 || strlen(hex) != 32)
				continue;
			for (int i = 0; i < 16; i++)
				if (sscanf(hex + 2 * i, "%2hhx", &in6.s6_addr[i]) != 1)
					goto next;
			if (ret->n_addrs++ == 0)
				snprintf(ret->addr, sizeof(ret->addr), "%s/%u",
					 inet_ntop(AF_INET6, &in6, buf, sizeof(buf)) ?: "?", plen);
		next:;
		}
}

/* ---- interfaces and disks ------------------------------------------------------ */

static int check_netdevs(struct iovk_ctx *ctx, struct iovk_in_use *u, const char *address, const char *driver,
			 const char *devdir)
{
	_cleanup_strv_free_ char **names = NULL;
	bool live = strcmp(ctx->proc_root, "/proc") == 0;
	int r;

	r = class_members_below(ctx, "net", devdir, &names);
	if (r < 0)
		return r;
	for (char **n = names; n && *n; n++) {
		_cleanup_free_ char *fp = sysfs_path(ctx, "/class/net/%s/flags", *n);
		_cleanup_free_ char *op = sysfs_path(ctx, "/class/net/%s/operstate", *n), *state = NULL;
		_cleanup_free_ char *mp = sysfs_path(ctx, "/class/net/%s/master", *n);
		char master[IF_NAMESIZE + 1];
		struct ip_use ip = {};
		long long flags;
		bool up;

		if (!fp || !op || !mp)
			return -ENOMEM;
		/* IFF_UP is the administrator's "in use"; operstate (no flags
		 * file: old fixtures) is the next best thing. */
		if (read_int(fp, &flags) >= 0)
			up = flags & 0x1;
		else
			up = read_text(op, &state) >= 0 && strcmp(state, "up") == 0;
		if (up) {
			r = add_reason(u, address, driver, IOVK_IN_USE_NETDEV_UP, *n,
				       "its network interface %s is up; take it down first (ip link set %s down) "
				       "if the host can do without it", *n, *n);
			if (r < 0)
				return r;
		}
		if (read_link_name(mp, master, sizeof(master)) >= 0) {
			r = add_reason(u, address, driver, IOVK_IN_USE_NETDEV_MASTER, *n,
				       "its network interface %s is enslaved to %s (a bond or bridge); release it "
				       "first (ip link set %s nomaster)", *n, master, *n);
			if (r < 0)
				return r;
		}
		if (live) {
			r = ip_use_netlink(ctx, u, *n, &ip);
			if (r < 0)
				return r;
		} else
			ip_use_proc(ctx, *n, &ip);
		if (ip.n_addrs > 0) {
			r = add_reason(u, address, driver, IOVK_IN_USE_NETDEV_ADDRESS, *n,
				       "its network interface %s carries %u IP address%s (%s%s)", *n, ip.n_addrs,
				       ip.n_addrs > 1 ? "es" : "", ip.addr, ip.n_addrs > 1 ? ", ..." : "");
			if (r < 0)
				return r;
		}
		if (ip.n_routes > 0) {
			r = add_reason(u, address, driver, IOVK_IN_USE_NETDEV_ROUTE, *n,
				       "%u route%s go%s through its network interface %s (%s%s)", ip.n_routes,
				       ip.n_routes > 1 ? "s" : "", ip.n_routes > 1 ? "" : "es", *n, ip.route,
				       ip.n_routes > 1 ? ", ..." : "");
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* Mount point of the block device, from mountinfo: by device number, or by
 * source name (btrfs shows an anonymous device number). */
static char *find_mount(struct iovk_ctx *ctx, const char *name, const char *devnum)
{
	_cleanup_free_ char *path = proc_path(ctx, "/self/mountinfo"), *line = NULL;
	_cleanup_fclose_ FILE *f = NULL;
	char src[PATH_MAX];
	size_t size = 0;

	if (!path)
		return NULL;
	snprintf(src, sizeof(src), "/dev/%s", name);
	f = fopen(path, "re");
	if (!f)
		return NULL;
	while (getline(&line, &size, f) > 0) {
		char mnt_devnum[32], mountpoint[PATH_MAX], source[PATH_MAX];
		const char *sep = strstr(line, " - ");

		if (sscanf(line, "%*d %*d %31s %*s %4095s", mnt_devnum, mountpoint) != 2)
			continue;
		if (strcmp(mnt_devnum, devnum) == 0 ||
		    (sep && sscanf(sep, " - %*s %4095s", source) == 1 && strcmp(source, src) == 0))
			return strdup(mountpoint);
	}
	return NULL;
}

static bool is_swap(struct iovk_ctx *ctx, const char *name)
{
	_cleanup_free_ char *path = proc_path(ctx, "/swaps"), *line = NULL;
	_cleanup_fclose_ FILE *f = NULL;
	char want[PATH_MAX], file[PATH_MAX];
	size_t size = 0;

	if (!path)
		return false;
	snprintf(want, sizeof(want), "/dev/%s", name);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (getline(&line, &size, f) > 0)
		if (sscanf(line, "%4095s", file) == 1 && strcmp(file, want) == 0)
			return true;
	return false;
}

static int check_block_devices(struct iovk_ctx *ctx, struct iovk_in_use *u, const char *address,
			       const char *driver, const char *devdir)
{
	_cleanup_strv_free_ char **names = NULL;
	int r;

	r = class_members_below(ctx, "block", devdir, &names);
	if (r < 0)
		return r;
	for (char **n = names; n && *n; n++) {
		_cleanup_free_ char *dp = sysfs_path(ctx, "/class/block/%s/dev", *n), *devnum = NULL, *mnt = NULL;
		_cleanup_free_ char *hp = sysfs_path(ctx, "/class/block/%s/holders", *n);
		_cleanup_closedir_ DIR *holders = NULL;
		struct dirent *de;

		if (!dp || !hp)
			return -ENOMEM;
		if (read_text(dp, &devnum) < 0)
			continue;
		mnt = find_mount(ctx, *n, devnum);
		if (mnt)
			r = add_reason(u, address, driver, IOVK_IN_USE_BLOCK_MOUNTED, *n,
				       "its block device %s is mounted on %s", *n, mnt);
		else if (is_swap(ctx, *n))
			r = add_reason(u, address, driver, IOVK_IN_USE_BLOCK_SWAP, *n,
				       "its block device %s is in use as swap", *n);
		else
			r = 0;
		if (r < 0)
			return r;
		holders = opendir(hp);
		while (holders && (de = readdir(holders)))
			if (de->d_name[0] != '.') {
				r = add_reason(u, address, driver, IOVK_IN_USE_BLOCK_HELD, *n,
					       "its block device %s is held by %s (device-mapper, md or bcache)", *n,
					       de->d_name);
				if (r < 0)
					return r;
				break;
			}
	}
	return 0;
}

/* ---- the rule ------------------------------------------------------------------- */

/* iovd keeps <run dir>/iovd-allocated/<address> while it has handed the
 * device out (iovd(8)): no D-Bus round trip, and no iovd needed to see it. */
static bool allocated_by_iovd(struct iovk_ctx *ctx, const char *address)
{
	_cleanup_free_ char *p = root_path(ctx->run_dir, "/iovd-allocated/%s", address);

	return p && path_exists(p);
}

static int check_device(struct iovk_ctx *ctx, struct iovk_in_use *u, struct iovk_device *d, unsigned flags,
			int depth);

/* A PF on a driver: unbinding that driver removes every VF with it. */
static int check_vfs(struct iovk_ctx *ctx, struct iovk_in_use *u, struct iovk_device *pf, int depth)
{
	const char *address = iovk_device_get_address(pf), *driver = iovk_device_get_driver(pf);
	int numvfs = iovk_device_get_sriov_numvfs(pf), r;

	if (numvfs <= 0 || !driver)
		return 0;
	r = add_reason(u, address, driver, IOVK_IN_USE_PF_WITH_VFS, NULL,
		       "it is a PF with %d VFs enabled, which unbinding %s removes; set its VFs to 0 first "
		       "(iovctl sriov set %s --numvfs 0)", numvfs, driver, address);
	if (r < 0 || depth > 0)
		return r;
	for (const char *const *vf = iovk_device_get_vfs(pf); vf && *vf; vf++) {
		struct iovk_device *v = NULL;

		r = iovk_device_new(ctx, *vf, &v);
		if (r == -ENODEV)
			continue; /* going away by itself */
		if (r < 0)
			return r;
		r = check_device(ctx, u, v, IOVK_IN_USE_REMOVAL, depth + 1);
		iovk_device_unref(v);
		if (r < 0)
			return r;
	}
	return 0;
}

static int check_device(struct iovk_ctx *ctx, struct iovk_in_use *u, struct iovk_device *d, unsigned flags,
			int depth)
{
	const char *address = iovk_device_get_address(d), *driver = iovk_device_get_driver(d);
	_cleanup_free_ char *link = sysfs_path(ctx, "/bus/pci/devices/%s", address), *devdir = NULL;
	_cleanup_free_ char *vga_path = sysfs_path(ctx, "/bus/pci/devices/%s/boot_vga", address);
	long long boot_vga = 0;
	int r;

	if (!link || !vga_path)
		return -ENOMEM;
	if (allocated_by_iovd(ctx, address)) {
		r = add_reason(u, address, driver, IOVK_IN_USE_ALLOCATED, NULL,
			       "iovd has allocated it to an owner (iovctl allocations names it; release it there)");
		if (r < 0)
			return r;
	}
	if (!driver)
		return 0;
	if (driver_is_vfio_friendly(driver)) {
		/* Nothing of the host's runs on vfio-pci or pci-stub; but a
		 * VF on VFIO that is about to vanish is there to be assigned,
		 * and a guest may hold it open right now (or be starting). */
		if ((flags & IOVK_IN_USE_REMOVAL) && strcmp(driver, "pci-stub") != 0) {
			r = add_reason(u, address, driver, IOVK_IN_USE_VF_ON_VFIO, NULL,
				       "it is bound to %s, so it is there to be assigned to a guest, which may "
				       "hold it now", driver);
			if (r < 0)
				return r;
		}
		return check_vfs(ctx, u, d, depth);
	}
	if (read_int(vga_path, &boot_vga) >= 0 && boot_vga == 1) {
		r = add_reason(u, address, driver, IOVK_IN_USE_BOOT_VGA, NULL,
			       "it is the boot VGA device and %s drives it, most likely the host's console; "
			       "unbind it first if the host can run without it", driver);
		if (r < 0)
			return r;
	}
	devdir = realpath(link, NULL);
	if (!devdir) {
		r = negative_errno();
		return set_error(ctx, r, "%s: resolving %s: %s", address, link, strerror(-r));
	}
	r = check_netdevs(ctx, u, address, driver, devdir);
	if (r >= 0)
		r = check_block_devices(ctx, u, address, driver, devdir);
	if (r >= 0)
		r = check_vfs(ctx, u, d, depth);
	return r;
}

static void text_build(struct iovk_in_use *u)
{
	size_t size = 0;
	FILE *f = open_memstream(&u->text, &size);

	if (!f)
		return;
	for (size_t i = 0; i < u->n; i++) {
		const struct iovk_in_use_reason *r = &u->reasons[i];

		fprintf(f, "%s%s%s%s%s: %s", i ? "; " : "", r->address, r->driver[0] ? " (" : "", r->driver,
			r->driver[0] ? ")" : "", r->reason);
	}
	if (fclose(f) != 0) {
		free(u->text);
		u->text = NULL;
	}
}

_public_ const char *iovk_in_use_get_text(const struct iovk_in_use *u)
{
	return u && u->text ? u->text : "";
}

int in_use_collect(struct iovk_ctx *ctx, struct iovk_device *d, unsigned flags, struct iovk_in_use **ret)
{
	_cleanup_(iovk_in_use_freep) struct iovk_in_use *u = calloc(1, sizeof(*u));
	int r;

	if (!u)
		return -ENOMEM;
	r = check_device(ctx, u, d, flags, 0);
	nl_caches_free(u);
	if (r < 0)
		return r;
	text_build(u);
	*ret = TAKE_PTR(u);
	return 0;
}

_public_ int iovk_device_check_in_use(struct iovk_ctx *ctx, const char *address, unsigned flags,
				      struct iovk_in_use **ret)
{
	struct iovk_device *d = NULL;
	int r;

	if (!ctx || !address || !ret || (flags & ~IOVK_IN_USE_REMOVAL))
		return -EINVAL;
	clear_error(ctx);
	r = iovk_device_new(ctx, address, &d);
	if (r < 0)
		return r;
	r = in_use_collect(ctx, d, flags, ret);
	iovk_device_unref(d);
	return r;
}

int in_use_refuse(struct iovk_ctx *ctx, const char *address, unsigned flags, bool force, const char *what)
{
	_cleanup_(iovk_in_use_freep) struct iovk_in_use *u = NULL;
	int r;

	r = iovk_device_check_in_use(ctx, address, flags, &u);
	if (r < 0)
		return r;
	if (u->n == 0)
		return 0;
	if (force) {
		log_warn(ctx, "%s in use by the host (forced): %s", what, iovk_in_use_get_text(u));
		return 0;
	}
	return set_error(ctx, -EBUSY, "in use by the host: %s; force to take it anyway", iovk_in_use_get_text(u));
}
