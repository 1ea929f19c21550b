/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * SR-IOV provisioning through sysfs: PFs, their VFs, sriov_numvfs.
 *
 * Kernel behaviour this follows (drivers/pci/iov.c, pci-sysfs.c, 6.1):
 *  - sriov_numvfs_store() refuses N -> M with both non-zero (-EBUSY), a
 *    value above sriov_totalvfs (-ERANGE), a PF without a driver or whose
 *    driver has no sriov_configure() (-ENOENT); writing the current value
 *    is a no-op that succeeds.
 *  - The driver's sriov_configure() runs inside the write(2), with the
 *    device lock held: VFs are created (virtfnN/physfn links, IOMMU groups)
 *    and probed synchronously before the write returns, but a VF driver
 *    that is loaded by udev later, or probes asynchronously, creates its
 *    netdev afterwards. Hence the bounded wait after each write.
 *  - pci_device_can_probe() lets a VF be probed only when the PF's
 *    drivers_autoprobe is set or the VF has a driver_override, at every
 *    probe, not only at creation: autoprobe 0 keeps VFs meant for VFIO away
 *    from their kernel driver for as long as it stays 0.
 */
#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "sriov-internal.h"

struct iovk_sriov_pf {
	int n_ref;
	struct iovk_ctx *ctx;
	struct iovk_device *device;
	char *syspath;
	int totalvfs, numvfs, offset, stride, vf_device_id, autoprobe;
	struct iovk_device **vfs; /* NULL-terminated, virtfnN order */
	size_t n_vfs;
};

/* ---- reading a PF -------------------------------------------------------- */

/* An optional sriov_* attribute: def when the file is missing. */
static int read_attr_int(struct iovk_sriov_pf *pf, const char *attr, int base, int def, int *ret)
{
	_cleanup_free_ char *p = root_path(pf->syspath, "/%s", attr), *s = NULL;
	const char *address = iovk_device_get_address(pf->device);
	char *end;
	long v;
	int r;

	if (!p)
		return -ENOMEM;
	r = read_text(p, &s);
	if (r == -ENOENT) {
		*ret = def;
		return 0;
	}
	if (r < 0)
		return set_error(pf->ctx, r, "%s: reading %s: %s", address, p, strerror(-r));
	errno = 0;
	v = strtol(s, &end, base);
	if (errno || end == s || *end || v < 0 || v > INT_MAX)
		return set_error(pf->ctx, -EBADMSG, "%s: %s holds '%s', not a number", address, p, s);
	*ret = (int)v;
	return 0;
}

static int read_pf(struct iovk_sriov_pf *pf)
{
	struct iovk_ctx *ctx = pf->ctx;
	const char *address = iovk_device_get_address(pf->device);
	const char *const *vf;
	size_t n = 0;
	int r;

	pf->syspath = sysfs_path(ctx, "/bus/pci/devices/%s", address);
	if (!pf->syspath)
		return -ENOMEM;
	r = read_attr_int(pf, "sriov_numvfs", 10, -1, &pf->numvfs);
	if (r < 0)
		return r;
	r = read_attr_int(pf, "sriov_totalvfs", 10, -1, &pf->totalvfs);
	if (r < 0)
		return r;
	/* The kernel shows the sriov_* files only on PFs (TotalVFs > 0). */
	if (pf->numvfs < 0 && pf->totalvfs <= 0) {
		const char *physfn = iovk_device_get_physfn(pf->device);

		if (physfn)
			return set_error(ctx, -ENOENT, "%s: not an SR-IOV physical function: it is a VF of %s",
					 address, physfn);
		return set_error(ctx, -ENOENT,
				 "%s: not an SR-IOV physical function (%s/sriov_numvfs does not exist)", address,
				 pf->syspath);
	}
	if (pf->numvfs < 0)
		pf->numvfs = 0;
	r = read_attr_int(pf, "sriov_offset", 10, -1, &pf->offset);
	if (r < 0)
		return r;
	r = read_attr_int(pf, "sriov_stride", 10, -1, &pf->stride);
	if (r < 0)
		return r;
	/* printed as "%x" without a prefix */
	r = read_attr_int(pf, "sriov_vf_device", 16, -1, &pf->vf_device_id);
	if (r < 0)
		return r;
	r = read_attr_int(pf, "sriov_drivers_autoprobe", 10, -1, &pf->autoprobe);
	if (r < 0)
		return r;
	if (pf->autoprobe > 1)
		pf->autoprobe = 1;

	for (vf = iovk_device_get_vfs(pf->device); *vf; vf++)
		n++;
	pf->vfs = calloc(n + 1, sizeof(*pf->vfs));
	if (!pf->vfs)
		return -ENOMEM;
	for (vf = iovk_device_get_vfs(pf->device); *vf; vf++) {
		r = iovk_device_new(ctx, *vf, &pf->vfs[pf->n_vfs]);
		/* Not -ENODEV: enumeration skips a PF that vanished, but a
		 * VF that vanished means its PF is being changed. */
		if (r == -ENODEV)
			return set_error(ctx, -EAGAIN, "%s: VF %s disappeared while it was read "
					 "(is the number of VFs being changed?)", address, *vf);
		if (r < 0)
			return r;
		device_set_vf_index(pf->vfs[pf->n_vfs], device_vf_index_at(pf->device, pf->n_vfs));
		pf->n_vfs++;
	}
	return 0;
}

_public_ int iovk_sriov_pf_new(struct iovk_ctx *ctx, const char *address, struct iovk_sriov_pf **ret_pf)
{
	struct iovk_sriov_pf *pf;
	int r;

	assert_return(ctx && address && ret_pf, -EINVAL);
	clear_error(ctx);
	pf = calloc(1, sizeof(*pf));
	if (!pf)
		return -ENOMEM;
	pf->n_ref = 1;
	pf->ctx = iovk_ctx_ref(ctx);
	r = iovk_device_new(ctx, address, &pf->device);
	if (r >= 0)
		r = read_pf(pf);
	if (r < 0) {
		iovk_sriov_pf_unref(pf);
		return r;
	}
	*ret_pf = pf;
	return 0;
}

/* Frees what the last reference held (DEFINE_PUBLIC_REF_UNREF below). */
static void sriov_pf_free(struct iovk_sriov_pf *pf)
{
	iovk_device_list_free(pf->vfs);
	iovk_device_unref(pf->device);
	free(pf->syspath);
	iovk_ctx_unref(pf->ctx);
	free(pf);
}

DEFINE_PUBLIC_REF_UNREF(struct iovk_sriov_pf, iovk_sriov_pf, sriov_pf_free);

/* The cheap test before reading a whole device; the same rule as read_pf(). */
static bool looks_like_pf(struct iovk_ctx *ctx, const char *name)
{
	_cleanup_free_ char *a = sysfs_path(ctx, "/bus/pci/devices/%s/sriov_numvfs", name);
	_cleanup_free_ char *b = sysfs_path(ctx, "/bus/pci/devices/%s/sriov_totalvfs", name);
	long long total;

	/* On OOM say yes: iovk_sriov_pf_new() then reports it. */
	if (!a || !b || path_exists(a))
		return true;
	return read_int(b, &total) < 0 ? path_exists(b) : total > 0;
}

_public_ int iovk_sriov_enumerate_pfs(struct iovk_ctx *ctx, struct iovk_sriov_pf ***ret_pfs, size_t *ret_n)
{
	_cleanup_free_ char *p = NULL;
	_cleanup_strv_free_ char **names = NULL;
	struct iovk_sriov_pf **list;
	size_t n, k = 0;
	int r;

	assert_return(ctx && ret_pfs, -EINVAL);
	p = sysfs_path(ctx, "/bus/pci/devices");
	clear_error(ctx);
	if (!p)
		return -ENOMEM;
	r = list_pci_addresses(p, &names, &n);
	if (r < 0)
		return set_error(ctx, r, "reading %s: %s", p, strerror(-r));
	list = calloc(n + 1, sizeof(*list));
	if (!list)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (!looks_like_pf(ctx, names[i]))
			continue;
		r = iovk_sriov_pf_new(ctx, names[i], &list[k]);
		if (r == -ENODEV)
			continue; /* hot-unplugged while we looked */
		if (r < 0) {
			iovk_sriov_pf_list_free(list);
			return r;
		}
		k++;
	}
	*ret_pfs = list;
	if (ret_n)
		*ret_n = k;
	return 0;
}

_public_ void iovk_sriov_pf_list_free(struct iovk_sriov_pf **pfs)
{
	if (!pfs)
		return;
	for (struct iovk_sriov_pf **p = pfs; *p; p++)
		iovk_sriov_pf_unref(*p);
	free(pfs);
}

/* ---- getters --------------------------------------------------------------- */

_public_ const char *iovk_sriov_pf_get_address(const struct iovk_sriov_pf *pf)
{
	return iovk_device_get_address(pf->device);
}

_public_ struct iovk_device *iovk_sriov_pf_get_device(const struct iovk_sriov_pf *pf)
{
	return pf->device;
}

_public_ int iovk_sriov_pf_get_totalvfs(const struct iovk_sriov_pf *pf)
{
	return pf->totalvfs;
}

_public_ int iovk_sriov_pf_get_numvfs(const struct iovk_sriov_pf *pf)
{
	return pf->numvfs;
}

_public_ int iovk_sriov_pf_get_offset(const struct iovk_sriov_pf *pf)
{
	return pf->offset;
}

_public_ int iovk_sriov_pf_get_stride(const struct iovk_sriov_pf *pf)
{
	return pf->stride;
}

_public_ int iovk_sriov_pf_get_vf_device_id(const struct iovk_sriov_pf *pf)
{
	return pf->vf_device_id;
}

_public_ int iovk_sriov_pf_get_drivers_autoprobe(const struct iovk_sriov_pf *pf)
{
	return pf->autoprobe;
}

_public_ struct iovk_device *const *iovk_sriov_pf_get_vfs(const struct iovk_sriov_pf *pf)
{
	return pf->vfs;
}

_public_ size_t iovk_sriov_pf_get_n_vfs(const struct iovk_sriov_pf *pf)
{
	return pf->n_vfs;
}

_public_ struct iovk_device *iovk_sriov_pf_get_vf(const struct iovk_sriov_pf *pf, unsigned index)
{
	/* Not vfs[index]: a virtfn link missing while VFs change closes the
	 * list up, and the VFs after the gap sit below their index. */
	for (size_t k = 0; k < pf->n_vfs; k++)
		if ((unsigned)iovk_device_get_vf_index(pf->vfs[k]) == index)
			return pf->vfs[k];
	return NULL;
}

/* ---- records of sriov_drivers_autoprobe, for n = 0 ------------------------ */

static char *autoprobe_record_path(struct iovk_ctx *ctx, const char *address)
{
	return root_path(ctx->run_dir, "/sriov-autoprobe/%s", address);
}

/* Returns 1 with the recorded value, 0 when there is no record. */
int autoprobe_record_read(struct iovk_ctx *ctx, const char *address, int *ret_value)
{
	_cleanup_free_ char *p = autoprobe_record_path(ctx, address), *s = NULL;
	int r;

	if (!p)
		return -ENOMEM;
	r = read_text(p, &s);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return set_error(ctx, r, "%s: reading %s: %s", address, p, strerror(-r));
	if (strcmp(s, "0") != 0 && strcmp(s, "1") != 0)
		return set_error(ctx, -EBADMSG, "%s: %s holds '%s', not 0 or 1", address, p, s);
	*ret_value = s[0] - '0';
	return 1;
}

/* Keeps an existing record: it holds the value from before iovkit's first change. */
static int autoprobe_record_write(struct iovk_ctx *ctx, const char *address, int value)
{
	_cleanup_free_ char *p = autoprobe_record_path(ctx, address);
	char text[16];
	int r, old;

	if (!p)
		return -ENOMEM;
	r = autoprobe_record_read(ctx, address, &old);
	if (r != 0)
		return r < 0 ? r : 0;
	snprintf(text, sizeof(text), "%d\n", value);
	r = write_file_atomic(p, text);
	if (r < 0)
		return set_error(ctx, r, "%s: recording sriov_drivers_autoprobe in %s: %s", address, p,
				 strerror(-r));
	return 0;
}

/* The VF is gone, so is the device the record was about. */
static void previous_driver_record_remove(struct iovk_ctx *ctx, const char *vf_address)
{
	if (previous_driver_forget(ctx, vf_address))
		log_debug(ctx, "%s: dropped the previous-driver record of the removed VF", vf_address);
}

/* ---- writing ---------------------------------------------------------------- */

static int write_pf_attr(struct iovk_ctx *ctx, const struct iovk_sriov_pf *pf, const char *attr,
			 const char *value)
{
	_cleanup_free_ char *p = root_path(pf->syspath, "/%s", attr);
	int r;

	if (!p)
		return -ENOMEM;
	r = write_text(p, value);
	if (r < 0)
		return set_error(ctx, r, "%s: writing '%s' to %s: %s", iovk_sriov_pf_get_address(pf), value, p,
				 strerror(-r));
	log_debug(ctx, "%s: wrote '%s' to %s", iovk_sriov_pf_get_address(pf), value, p);
	return 0;
}

static const char *numvfs_hint(int err)
{
	switch (err) {
	case -ERANGE:
		return "more VFs than the PF supports";
	case -ENOMEM:
		return "the PF driver may need a module parameter to allow this many VFs, e.g. max_vfs, "
		       "or the firmware reserved too few bus numbers or too little MMIO space for them "
		       "(try pci=realloc)";
	case -EBUSY:
		return "VFs are enabled or still in use; the kernel changes the number of VFs only "
		       "through 0, and PF drivers refuse while VFs are assigned";
	case -ENOENT:
		return "no SR-IOV: the PF's driver cannot enable VFs through sysfs";
	case -EPERM:
	case -EACCES:
		return "needs root, or SR-IOV is disabled in the firmware or the PF driver";
	default:
		return NULL;
	}
}

/*
 * The kernel does the whole change inside this write(2), uninterruptibly:
 * no timeout can bound it (see iovk_sriov_set_numvfs() in sriov.h). Running
 * it in a helper thread or process that we abandon would only leave a task
 * in D state holding the PF's device lock, with the PF in an unknown state,
 * behind our back; better to wait and report.
 */
static int write_numvfs(struct iovk_ctx *ctx, const struct iovk_sriov_pf *pf, unsigned n)
{
	_cleanup_free_ char *p = root_path(pf->syspath, "/sriov_numvfs");
	const char *hint;
	char value[16];
	int r;

	if (!p)
		return -ENOMEM;
	snprintf(value, sizeof(value), "%u", n);
	r = write_text(p, value);
	if (r >= 0) {
		log_info(ctx, "%s: wrote %u to %s", iovk_sriov_pf_get_address(pf), n, p);
		return 0;
	}
	hint = numvfs_hint(r);
	return set_error(ctx, r, "%s: writing '%u' to %s: %s%s%s%s", iovk_sriov_pf_get_address(pf), n, p,
			 strerror(-r), hint ? " (" : "", hint ?: "", hint ? ")" : "");
}

/* ---- waiting for the kernel --------------------------------------------------- */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static bool dir_has_entries(const char *path)
{
	_cleanup_closedir_ DIR *dir = opendir(path);
	struct dirent *de;

	if (!dir)
		return false;
	while ((de = readdir(dir)))
		if (de->d_name[0] != '.')
			return true;
	return false;
}

/*
 * Whether VF link_name of the PF is there and, if a kernel network driver
 * took it, has its netdev. Returns 1 ready, 0 not yet (why filled), <0 error.
 */
static int vf_ready(struct iovk_ctx *ctx, const struct iovk_sriov_pf *pf, unsigned i, char *why, size_t size)
{
	_cleanup_free_ char *link = root_path(pf->syspath, "/virtfn%u", i);
	_cleanup_free_ char *drv_path = NULL, *class_path = NULL, *net_path = NULL;
	char vf[IOVK_PCI_ADDR_MAX + 8], drv[256];
	long long class;
	int r;

	if (!link)
		return -ENOMEM;
	r = read_link_name(link, vf, sizeof(vf));
	if (r == -ENOENT) {
		snprintf(why, size, "%s does not exist", link);
		return 0;
	}
	if (r < 0)
		return set_error(ctx, r, "%s: reading link %s: %s", iovk_sriov_pf_get_address(pf), link,
				 strerror(-r));
	drv_path = sysfs_path(ctx, "/bus/pci/devices/%s/driver", vf);
	class_path = sysfs_path(ctx, "/bus/pci/devices/%s/class", vf);
	net_path = sysfs_path(ctx, "/bus/pci/devices/%s/net", vf);
	if (!drv_path || !class_path || !net_path)
		return -ENOMEM;
	r = read_link_name(drv_path, drv, sizeof(drv));
	if (r == -ENOENT)
		return 1; /* no driver (autoprobe off, or none matches): nothing more to come */
	if (r < 0)
		return set_error(ctx, r, "%s: reading link %s: %s", vf, drv_path, strerror(-r));
	/* VFIO and pci-stub never make a netdev. */
	if (driver_is_vfio_friendly(drv))
		return 1;
	r = read_int(class_path, &class);
	if (r < 0)
		return set_error(ctx, r, "%s: reading %s: %s", vf, class_path,
				 r == -EBADMSG ? "not a number" : strerror(-r));
	if ((class >> 16) != 0x02) /* only network controllers get a netdev */
		return 1;
	if (dir_has_entries(net_path))
		return 1;
	snprintf(why, size, "VF %s is bound to %s but has no network interface (%s is empty)", vf, drv, net_path);
	return 0;
}

/* Returns 1 when the PF shows n VFs ready, 0 when not yet (why filled), <0 on error. */
static int vfs_ready(struct iovk_ctx *ctx, const struct iovk_sriov_pf *pf, unsigned n, char *why, size_t size)
{
	_cleanup_free_ char *p = root_path(pf->syspath, "/sriov_numvfs");
	long long cur;
	int r;

	if (!p)
		return -ENOMEM;
	r = read_int(p, &cur);
	if (r < 0)
		return set_error(ctx, r, "%s: reading %s: %s", iovk_sriov_pf_get_address(pf), p,
				 r == -EBADMSG ? "not a number" : strerror(-r));
	if (cur != n) {
		snprintf(why, size, "%s reads %lld", p, cur);
		return 0;
	}
	if (n == 0) {
		_cleanup_closedir_ DIR *dir = opendir(pf->syspath);
		struct dirent *de;

		if (!dir) {
			r = negative_errno();
			return set_error(ctx, r, "%s: reading %s: %s", iovk_sriov_pf_get_address(pf), pf->syspath,
					 strerror(-r));
		}
		while ((de = readdir(dir)))
			if (strncmp(de->d_name, "virtfn", 6) == 0 && isdigit((unsigned char)de->d_name[6])) {
				snprintf(why, size, "%s/%s still exists", pf->syspath, de->d_name);
				return 0;
			}
		return 1;
	}
	for (unsigned i = 0; i < n; i++) {
		r = vf_ready(ctx, pf, i, why, size);
		if (r <= 0)
			return r;
	}
	return 1;
}

static int wait_vfs(struct iovk_ctx *ctx, const struct iovk_sriov_pf *pf, unsigned n, unsigned timeout_ms)
{
	long long start = now_ms(), waited;
	long delay_ms = 5;
	char why[PATH_MAX + 128] = "";
	int r;

	for (;;) {
		r = vfs_ready(ctx, pf, n, why, sizeof(why));
		if (r != 0)
			return r < 0 ? r : 0;
		waited = now_ms() - start;
		if (waited >= timeout_ms)
			break;
		/* Probes and netdev registration take milliseconds to
		 * seconds: poll fast first, then back off. */
		if (delay_ms > (long)(timeout_ms - waited))
			delay_ms = (long)(timeout_ms - waited);
		nanosleep(&(struct timespec){ .tv_sec = delay_ms / 1000, .tv_nsec = (delay_ms % 1000) * 1000000L },
			  NULL);
		delay_ms = delay_ms * 2 > 100 ? 100 : delay_ms * 2;
	}
	return set_error(ctx, -ETIMEDOUT, "%s: sriov_numvfs was set to %u, but after %u ms %s",
			 iovk_sriov_pf_get_address(pf), n, timeout_ms, why);
}

/* ---- setting the number of VFs ---------------------------------------------- */

/*
 * The VFs that removing them would take from somebody, by the host-use rule
 * (lib/core/in-use.c) for a device about to vanish: allocated by iovd, on
 * VFIO (there to be assigned: a guest may hold it, or be starting), or used
 * by the host through its kernel driver. "ADDR (allocated by iovd), ADDR
 * (vfio-pci), ADDR (ixgbevf: its network interface ... is up)" into buf.
 */
int sriov_vfs_in_use(struct iovk_ctx *ctx, const struct iovk_sriov_pf *pf, char *buf, size_t size)
{
	size_t len = 0;
	int n_busy = 0, r;

	if (size)
		buf[0] = '\0';
	for (size_t i = 0; i < pf->n_vfs; i++) {
		const char *vf = iovk_device_get_address(pf->vfs[i]);
		const char *drv = iovk_device_get_driver(pf->vfs[i]);
		const struct iovk_in_use_reason *why;
		struct iovk_in_use *u = NULL;
		int k;

		r = in_use_collect(ctx, pf->vfs[i], IOVK_IN_USE_REMOVAL, &u);
		if (r < 0)
			return r;
		why = iovk_in_use_get_reason(u, 0);
		if (why) {
			n_busy++;
			if (why->kind == IOVK_IN_USE_ALLOCATED)
				k = snprintf(buf + len, size - len, "%s%s (allocated by iovd)", len ? ", " : "", vf);
			else if (why->kind == IOVK_IN_USE_VF_ON_VFIO)
				k = snprintf(buf + len, size - len, "%s%s (%s)", len ? ", " : "", vf, drv);
			else
				k = snprintf(buf + len, size - len, "%s%s (%s: %s)", len ? ", " : "", vf, drv ?: "no driver",
					     why->reason);
			if (len < size)
				len += k > 0 ? (size_t)k : 0;
			if (len > size)
				len = size;
		}
		iovk_in_use_free(u);
	}
	return n_busy;
}

/* Fails with -EBUSY naming every VF in use, unless force. */
static int check_vfs_unused(struct iovk_ctx *ctx, const struct iovk_sriov_pf *pf, bool force)
{
	char busy[512];
	int n_busy;

	n_busy = sriov_vfs_in_use(ctx, pf, busy, sizeof(busy));
	if (n_busy <= 0)
		return n_busy;
	if (force) {
		log_warn(ctx, "%s: removing VFs in use (forced): %s", iovk_sriov_pf_get_address(pf), busy);
		return 0;
	}
	return set_error(ctx, -EBUSY,
			 "%s: not removing its %d VFs: VF%s %s %s in use (a VF on VFIO is taken as assigned "
			 "to a guest); force to remove them anyway",
			 iovk_sriov_pf_get_address(pf), pf->numvfs, n_busy > 1 ? "s" : "", busy,
			 n_busy > 1 ? "are" : "is");
}

/* Reads the PF and checks the request, before anything is written. */
static int check_request(struct iovk_ctx *ctx, const char *address, unsigned n, unsigned flags,
			 struct iovk_sriov_pf **ret_pf)
{
	struct iovk_sriov_pf *pf = NULL;
	int r;

	r = iovk_sriov_pf_new(ctx, address, &pf);
	if (r < 0)
		return r;
	if (pf->totalvfs >= 0 && n > (unsigned)pf->totalvfs)
		r = set_error(ctx, -ERANGE, "%s: %u VFs requested, but the PF supports at most %d (sriov_totalvfs)",
			      iovk_sriov_pf_get_address(pf), n, pf->totalvfs);
	else if ((unsigned)pf->numvfs != n && !iovk_device_get_driver(pf->device))
		r = set_error(ctx, -ENOENT,
			      "%s: no driver is bound to the PF, and only the PF driver can change its VFs",
			      iovk_sriov_pf_get_address(pf));
	else if ((flags & IOVK_SRIOV_NO_AUTOPROBE) && n > 0 && pf->autoprobe < 0)
		r = set_error(ctx, -EOPNOTSUPP,
			      "%s: cannot keep VFs from their kernel driver: %s/sriov_drivers_autoprobe does not "
			      "exist (kernel before 4.12)", iovk_sriov_pf_get_address(pf), pf->syspath);
	if (r < 0) {
		iovk_sriov_pf_unref(pf);
		return r;
	}
	*ret_pf = pf;
	return 0;
}

static int set_numvfs_locked(struct iovk_ctx *ctx, const struct iovk_sriov_pf *pf, unsigned n, unsigned flags,
			     unsigned timeout_ms)
{
	const char *address = iovk_sriov_pf_get_address(pf);
	unsigned cur = (unsigned)pf->numvfs;
	bool changed = false;
	int r, saved;

	if (cur > 0 && n != cur) {
		r = check_vfs_unused(ctx, pf, flags & IOVK_SRIOV_FORCE);
		if (r < 0)
			return r;
		/* N -> M with both non-zero is -EBUSY: go through 0. */
		r = write_numvfs(ctx, pf, 0);
		if (r < 0)
			return r;
		changed = true;
		r = wait_vfs(ctx, pf, 0, timeout_ms);
		if (r < 0)
			return r;
		for (size_t i = 0; i < pf->n_vfs; i++)
			previous_driver_record_remove(ctx, iovk_device_get_address(pf->vfs[i]));
	}

	if (n > 0 && (flags & IOVK_SRIOV_NO_AUTOPROBE) && pf->autoprobe != 0) {
		r = autoprobe_record_write(ctx, address, pf->autoprobe);
		if (r < 0)
			return r;
		r = write_pf_attr(ctx, pf, "sriov_drivers_autoprobe", "0");
		if (r < 0)
			return r;
		changed = true;
	}

	if (n > 0 && n != cur) {
		_cleanup_free_ char *p = root_path(pf->syspath, "/sriov_numvfs");
		long long now;

		if (!p)
			return -ENOMEM;
		r = write_numvfs(ctx, pf, n);
		if (r < 0) {
			if (cur > 0) {
				char reason[sizeof(ctx->error)];

				snprintf(reason, sizeof(reason), "%s", ctx->error);
				return set_error(ctx, r, "%s; its %u VFs were removed before, so it has none now",
						 reason, cur);
			}
			return r;
		}
		changed = true;
		/* sriov_configure() may enable fewer VFs than asked and still
		 * succeed; num_VFs is final once the write returns. */
		r = read_int(p, &now);
		if (r < 0)
			return set_error(ctx, r, "%s: reading %s: %s", address, p,
					 r == -EBADMSG ? "not a number" : strerror(-r));
		if (now != n)
			return set_error(ctx, -EIO, "%s: the PF driver enabled %lld VFs instead of %u "
					 "(the kernel log says why)", address, now, n);
	}
	if (n > 0) {
		/* Also when nothing was written: the VFs of an earlier call may
		 * still be coming up. */
		r = wait_vfs(ctx, pf, n, timeout_ms);
		if (r < 0)
			return r;
	}

	if (n == 0) {
		_cleanup_free_ char *rp = autoprobe_record_path(ctx, address);

		if (!rp)
			return -ENOMEM;
		r = autoprobe_record_read(ctx, address, &saved);
		if (r < 0)
			return r;
		if (r > 0) {
			if (saved != pf->autoprobe) {
				r = write_pf_attr(ctx, pf, "sriov_drivers_autoprobe", saved ? "1" : "0");
				if (r < 0)
					return r;
				changed = true;
			}
			if (unlink(rp) < 0 && errno != ENOENT) {
				r = negative_errno();
				return set_error(ctx, r, "%s: removing %s: %s", address, rp, strerror(-r));
			}
		}
	}
	return changed;
}

_public_ int iovk_sriov_set_numvfs(struct iovk_ctx *ctx, const char *address, unsigned n, unsigned flags,
				   unsigned timeout_ms)
{
	_cleanup_close_ int lock = -1;
	struct iovk_sriov_pf *pf = NULL;
	int r;

	assert_return(ctx && address, -EINVAL);
	clear_error(ctx);
	if (flags & ~(unsigned)(IOVK_SRIOV_FORCE | IOVK_SRIOV_NO_AUTOPROBE))
		return set_error(ctx, -EINVAL, "unknown SR-IOV flags 0x%x", flags);
	if (timeout_ms == 0)
		timeout_ms = ctx->timeout_ms;
	/* Check first, so a bad request does not wait for the lock... */
	r = check_request(ctx, address, n, flags, &pf);
	if (r < 0)
		return r;
	pf = iovk_sriov_pf_unref(pf);
	r = run_lock(ctx, &lock);
	if (r < 0)
		return r;
	/* ...and again under it: another process may have changed the PF. */
	r = check_request(ctx, address, n, flags, &pf);
	if (r < 0)
		return r;
	r = set_numvfs_locked(ctx, pf, n, flags, timeout_ms);
	iovk_sriov_pf_unref(pf);
	return r;
}

_public_ int iovk_sriov_set_drivers_autoprobe(struct iovk_ctx *ctx, const char *address, bool enabled)
{
	_cleanup_close_ int lock = -1;
	_cleanup_free_ char *rp = NULL;
	struct iovk_sriov_pf *pf = NULL;
	int r, changed = 0;

	assert_return(ctx && address, -EINVAL);
	clear_error(ctx);
	/* Check first, so a bad request does not wait for the lock... */
	r = iovk_sriov_pf_new(ctx, address, &pf);
	if (r < 0)
		return r;
	pf = iovk_sriov_pf_unref(pf);
	r = run_lock(ctx, &lock);
	if (r < 0)
		return r;
	/* ...and again under it: another process may have changed the PF. */
	r = iovk_sriov_pf_new(ctx, address, &pf);
	if (r < 0)
		return r;
	if (pf->autoprobe < 0) {
		r = set_error(ctx, -EOPNOTSUPP, "%s: %s/sriov_drivers_autoprobe does not exist (kernel before 4.12)",
			      iovk_sriov_pf_get_address(pf), pf->syspath);
		goto out;
	}
	if ((pf->autoprobe != 0) != enabled) {
		r = write_pf_attr(ctx, pf, "sriov_drivers_autoprobe", enabled ? "1" : "0");
		if (r < 0)
			goto out;
		changed = 1;
	}
	/* The value asked for now is the one to keep: a later n = 0 must not
	 * put back what an earlier IOVK_SRIOV_NO_AUTOPROBE recorded. */
	rp = autoprobe_record_path(ctx, iovk_sriov_pf_get_address(pf));
	if (!rp) {
		r = -ENOMEM;
		goto out;
	}
	if (unlink(rp) < 0 && errno != ENOENT) {
		r = negative_errno();
		r = set_error(ctx, r, "%s: removing %s: %s", iovk_sriov_pf_get_address(pf), rp, strerror(-r));
		goto out;
	}
	r = changed;
out:
	iovk_sriov_pf_unref(pf);
	return r;
}
