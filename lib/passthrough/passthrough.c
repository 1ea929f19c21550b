/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Passthrough: a device's IOMMU group made ready for a VMM, and undone.
 *
 * The order is what makes it safe to interrupt: check every member of the
 * group first (nothing written when one blocks), then write the record of
 * the previous drivers durably, then move the devices. A prepare that dies
 * after the record leaves devices that are either still on their previous
 * driver (release leaves them alone) or on vfio-pci (release puts them
 * back), so release works from the record alone, in any later process.
 *
 * The moves themselves are bind.c's (iovk_iommu_group_bind(),
 * iovk_device_bind_undo()), with their own lock and previous-driver records.
 * Those take <run dir>/lock per call, and flock(2) locks conflict between
 * two descriptors of one process, so prepare and release cannot hold it
 * across the calls; they serialise with each other on a second lock,
 * <run dir>/passthrough/.lock, which bind.c never takes (no lock-order
 * inversion).
 */
#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include "../internal.h"

#define DRIVER_MAX 64
#define RECORD_DIR "/passthrough"
#define RECORD_MAGIC "iovkit-passthrough 1"
/* A group larger than this is not a real machine's (switch groups hold tens). */
#define RECORD_MAX_DEVICES 256

struct entry {
	char address[IOVK_PCI_ADDR_MAX];
	char driver[DRIVER_MAX];   /* "" = none */
	char override[DRIVER_MAX]; /* "" = unset */
};

struct record {
	char address[IOVK_PCI_ADDR_MAX]; /* the device prepare was asked for */
	int group;
	char holder[IOVK_PASSTHROUGH_HOLDER_MAX]; /* "" = none (iovctl's) */
	size_t n;
	struct entry *entries;
};

struct iovk_passthrough {
	char address[IOVK_PCI_ADDR_MAX];
	int group;
	char *record; /* path, or NULL */
	char *holder; /* the record's, or NULL */
	size_t n_devices, n_blockers;
	struct iovk_passthrough_device *devices;
	struct entry *current; /* per device: driver and override when read */
	struct iovk_passthrough_blocker *blockers;
};

_public_ struct iovk_passthrough *iovk_passthrough_free(struct iovk_passthrough *p)
{
	if (!p)
		return NULL;
	free(p->record);
	free(p->holder);
	free(p->devices);
	free(p->current);
	free(p->blockers);
	free(p);
	return NULL;
}

static inline void passthrough_freep(struct iovk_passthrough **p)
{
	iovk_passthrough_free(*p);
}

static inline void record_done(struct record *rec)
{
	free(rec->entries);
	rec->entries = NULL;
	rec->n = 0;
}

/* ---- small helpers -------------------------------------------------------- */

static bool driver_name_ok(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len >= DRIVER_MAX)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
			return false;
	return true;
}

/* A holder: one line of printable ASCII, not empty, that fits the record. */
static bool holder_valid(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len >= IOVK_PASSTHROUGH_HOLDER_MAX)
		return false;
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e)
			return false;
	return true;
}

static int canonical_address(struct iovk_ctx *ctx, const char *address, char buf[static IOVK_PCI_ADDR_MAX])
{
	struct iovk_pci_addr a;

	if (!address || iovk_pci_addr_parse(address, &a) < 0)
		return set_error(ctx, -EINVAL, "'%s' is not a PCI address (expected DDDD:BB:DD.F or BB:DD.F, hex)",
				 address ? address : "(null)");
	iovk_pci_addr_format(&a, buf);
	return 0;
}

/* The driver and override of a device, as its iovk_device shows them. */
static int read_binding(struct iovk_ctx *ctx, const char *address, struct entry *ret)
{
	struct iovk_device *d;
	int r;

	r = iovk_device_new(ctx, address, &d);
	if (r < 0)
		return r;
	snprintf(ret->address, sizeof(ret->address), "%s", iovk_device_get_address(d));
	snprintf(ret->driver, sizeof(ret->driver), "%s", iovk_device_get_driver(d) ?: "");
	snprintf(ret->override, sizeof(ret->override), "%s", iovk_device_get_driver_override(d) ?: "");
	iovk_device_unref(d);
	return 0;
}

static char *record_dir(struct iovk_ctx *ctx)
{
	return root_path(ctx->run_dir, RECORD_DIR);
}

static char *record_path(struct iovk_ctx *ctx, const char *address)
{
	return root_path(ctx->run_dir, RECORD_DIR "/%s", address);
}

/* Exclusive lock on <run dir>/passthrough/.lock, bounded by the context timeout. */
static int passthrough_lock(struct iovk_ctx *ctx, int *ret_fd)
{
	_cleanup_free_ char *dir = record_dir(ctx);

	if (!dir)
		return -ENOMEM;
	return lock_file(ctx, dir, ".lock", ret_fd);
}

/* ---- the record ------------------------------------------------------------ */

static int fsync_dir(const char *dir)
{
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) < 0)
		return negative_errno();
	return 0;
}

/*
 * Parses a record:
 *     iovkit-passthrough 1
 *     address 0000:01:00.0
 *     group 9
 *     device 0000:01:00.0 virtio-pci -
 *     device 0000:01:00.1 - vfio-pci
 *     holder iovd /org/iovkit/iovd1/allocation/7 (owner vm-1)
 * (device ADDRESS PREVIOUS-DRIVER PREVIOUS-OVERRIDE, "-" for none; the
 * holder line only when the preparing program named one). The
 * file is ours, but it sits in a directory root may edit by hand: anything
 * else is rejected rather than guessed at.
 */
static int record_parse(char *text, struct record *ret)
{
	struct record rec = { .group = -1 };
	char *save = NULL, *line;
	bool magic = false;

	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char a[32], drv[DRIVER_MAX + 1], ovr[DRIVER_MAX + 1], extra[2];
		struct iovk_pci_addr pa;
		struct entry *e;
		int group, n;

		if (!magic) {
			if (strcmp(line, RECORD_MAGIC) != 0)
				goto bad;
			magic = true;
			continue;
		}
		if (sscanf(line, "address %31s %1s", a, extra) == 1) {
			if (rec.address[0] || iovk_pci_addr_parse(a, &pa) < 0)
				goto bad;
			iovk_pci_addr_format(&pa, rec.address);
			continue;
		}
		if (strncmp(line, "holder ", 7) == 0) {
			if (rec.holder[0] || !holder_valid(line + 7))
				goto bad;
			snprintf(rec.holder, sizeof(rec.holder), "%s", line + 7);
			continue;
		}
		if (sscanf(line, "group %d%n", &group, &n) == 1 && line[n] == '\0') {
			if (rec.group >= 0 || group < 0)
				goto bad;
			rec.group = group;
			continue;
		}
		if (sscanf(line, "device %31s %64s %64s %1s", a, drv, ovr, extra) != 3)
			goto bad;
		if (iovk_pci_addr_parse(a, &pa) < 0 || rec.n >= RECORD_MAX_DEVICES)
			goto bad;
		if ((strcmp(drv, "-") != 0 && !driver_name_ok(drv)) || (strcmp(ovr, "-") != 0 && !driver_name_ok(ovr)))
			goto bad;
		e = realloc(rec.entries, (rec.n + 1) * sizeof(*e));
		if (!e) {
			record_done(&rec);
			return -ENOMEM;
		}
		rec.entries = e;
		e = &rec.entries[rec.n++];
		iovk_pci_addr_format(&pa, e->address);
		snprintf(e->driver, sizeof(e->driver), "%s", strcmp(drv, "-") == 0 ? "" : drv);
		snprintf(e->override, sizeof(e->override), "%s", strcmp(ovr, "-") == 0 ? "" : ovr);
	}
	if (!magic || !rec.address[0] || rec.group < 0 || rec.n == 0)
		goto bad;
	*ret = rec;
	return 0;
bad:
	record_done(&rec);
	return -EBADMSG;
}

/* Returns 1 with the record at path, 0 when there is none. */
static int record_load(struct iovk_ctx *ctx, const char *path, struct record *ret)
{
	_cleanup_free_ char *text = NULL;
	int r;

	r = read_text(path, &text);
	if (r == -ENOENT)
		return 0;
	if (r < 0)
		return set_error(ctx, r, "reading passthrough record %s: %s", path, strerror(-r));
	r = record_parse(text, ret);
	if (r == -EBADMSG)
		return set_error(ctx, r, "%s is not a passthrough record iovkit wrote (remove it by hand after "
				 "checking the devices it names)", path);
	return r < 0 ? r : 1;
}

static const struct entry *record_find_entry(const struct record *rec, const char *address)
{
	for (size_t i = 0; i < rec->n; i++)
		if (strcmp(rec->entries[i].address, address) == 0)
			return &rec->entries[i];
	return NULL;
}

/*
 * Finds the record covering any of the addresses: first the one named after
 * each address, then any record listing one of them (release may be asked
 * for another endpoint of the group than prepare was). Returns 1 with the
 * record and its path, 0 when there is none.
 */
static int record_find(struct iovk_ctx *ctx, const char *const *addresses, size_t n, struct record *ret,
		       char **ret_path)
{
	_cleanup_free_ char *dir = record_dir(ctx);
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int r;

	if (!dir)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *p = record_path(ctx, addresses[i]);

		if (!p)
			return -ENOMEM;
		r = record_load(ctx, p, ret);
		if (r != 0) {
			if (r > 0)
				*ret_path = TAKE_PTR(p);
			return r;
		}
	}
	d = opendir(dir);
	if (!d) {
		r = negative_errno();
		return r == -ENOENT ? 0 : set_error(ctx, r, "reading %s: %s", dir, strerror(-r));
	}
	while ((de = readdir(d))) {
		_cleanup_free_ char *p = NULL;
		struct iovk_pci_addr pa;
		struct record rec;

		/* records are named after an address; ".lock" and ".*.tmp" are not */
		if (de->d_name[0] == '.' || iovk_pci_addr_parse(de->d_name, &pa) < 0)
			continue;
		if (asprintf(&p, "%s/%s", dir, de->d_name) < 0)
			return -ENOMEM;
		r = record_load(ctx, p, &rec);
		if (r < 0) {
			/* Someone else's broken record must not stop this device. */
			log_warn(ctx, "%s", ctx->error);
			clear_error(ctx);
			continue;
		}
		if (r == 0)
			continue;
		for (size_t i = 0; i < n; i++)
			if (record_find_entry(&rec, addresses[i])) {
				*ret = rec;
				*ret_path = TAKE_PTR(p);
				return 1;
			}
		record_done(&rec);
	}
	return 0;
}

/* Writes the record durably: temporary file, fsync, rename, fsync of the directory. */
static int record_write(struct iovk_ctx *ctx, const struct record *rec, const char *path)
{
	_cleanup_free_ char *text = NULL;
	size_t size = 0;
	FILE *f;
	int r;

	f = open_memstream(&text, &size);
	if (!f)
		return -ENOMEM;
	fprintf(f, RECORD_MAGIC "\naddress %s\ngroup %d\n", rec->address, rec->group);
	if (rec->holder[0])
		fprintf(f, "holder %s\n", rec->holder);
	for (size_t i = 0; i < rec->n; i++)
		fprintf(f, "device %s %s %s\n", rec->entries[i].address,
			rec->entries[i].driver[0] ? rec->entries[i].driver : "-",
			rec->entries[i].override[0] ? rec->entries[i].override : "-");
	if (fclose(f) != 0 || !text)
		return -ENOMEM;
	r = write_file_atomic(path, text);
	if (r < 0)
		return set_error(ctx, r, "%s: writing passthrough record %s: %s", rec->address, path, strerror(-r));
	return 0;
}

static int record_remove(struct iovk_ctx *ctx, const char *path)
{
	_cleanup_free_ char *dir = record_dir(ctx);
	int r;

	if (!dir)
		return -ENOMEM;
	if (unlink(path) < 0 && errno != ENOENT) {
		r = negative_errno();
		return set_error(ctx, r, "removing passthrough record %s: %s", path, strerror(-r));
	}
	/* Not durable is not wrong here: a record that comes back after a
	 * crash describes devices already on their previous drivers, which a
	 * release leaves alone before removing the record again. */
	(void)fsync_dir(dir);
	return 0;
}

/* ---- what the host still uses -------------------------------------------- */

static int add_blocker(struct iovk_passthrough *p, const char *address, const char *driver,
		       enum iovk_in_use_kind kind, const char *object, const char *format, ...) _printf_(6, 7);

static int add_blocker(struct iovk_passthrough *p, const char *address, const char *driver,
		       enum iovk_in_use_kind kind, const char *object, const char *format, ...)
{
	struct iovk_passthrough_blocker *b;
	va_list ap;

	b = realloc(p->blockers, (p->n_blockers + 1) * sizeof(*b));
	if (!b)
		return -ENOMEM;
	p->blockers = b;
	b = &b[p->n_blockers++];
	memset(b, 0, sizeof(*b));
	snprintf(b->address, sizeof(b->address), "%s", address);
	snprintf(b->driver, sizeof(b->driver), "%s", driver ?: "");
	b->kind = kind;
	snprintf(b->object, sizeof(b->object), "%s", object ?: "");
	va_start(ap, format);
	vsnprintf(b->reason, sizeof(b->reason), format, ap);
	va_end(ap);
	return 0;
}

/* The device asked for is the one iovkit itself takes from its driver: the
 * host-use rule (lib/core/in-use.c) decides, and --force may override it. */
static int check_requested(struct iovk_ctx *ctx, struct iovk_passthrough *p, struct iovk_device *d, unsigned flags)
{
	struct iovk_in_use *u = NULL;
	int r;

	r = in_use_collect(ctx, d, 0, &u);
	if (r < 0)
		return r;
	for (size_t i = 0; i < iovk_in_use_get_n_reasons(u) && r >= 0; i++) {
		const struct iovk_in_use_reason *why = iovk_in_use_get_reason(u, i);

		if (flags & IOVK_BIND_FORCE)
			log_warn(ctx, "%s (%s) in use by the host (forced): %s", why->address, why->driver,
				 why->reason);
		else
			r = add_blocker(p, why->address, why->driver, why->kind, why->object, "%s", why->reason);
	}
	iovk_in_use_free(u);
	return r;
}

/* ---- the plan ------------------------------------------------------------ */

static bool in_strv(const char *const *v, const char *s)
{
	for (; v && *v; v++)
		if (strcmp(*v, s) == 0)
			return true;
	return false;
}

/* take: other endpoints the caller may take from their kernel drivers (opts->take). */
static int plan_build(struct iovk_ctx *ctx, const char *address, unsigned flags, const char *const *take,
		      struct iovk_passthrough **ret)
{
	_cleanup_(passthrough_freep) struct iovk_passthrough *p = NULL;
	struct iovk_iommu_group *g = NULL;
	struct iovk_device *d = NULL;
	size_t n;
	int r;

	r = iovk_device_new(ctx, address, &d);
	if (r < 0)
		return r;
	p = calloc(1, sizeof(*p));
	if (!p) {
		r = -ENOMEM;
		goto out;
	}
	snprintf(p->address, sizeof(p->address), "%s", iovk_device_get_address(d));
	p->group = iovk_device_get_iommu_group(d);
	if (iovk_device_is_bridge(d)) {
		r = set_error(ctx, -EINVAL, "%s: it is a PCI bridge; bridges stay with the host (VFIO accepts them "
			      "on pcieport): pass through the devices below it", p->address);
		goto out;
	}
	if (p->group < 0) {
		r = set_error(ctx, -ENOENT, "%s: no IOMMU group: the IOMMU is off, and VFIO needs it",
			      p->address);
		goto out;
	}
	r = iovk_iommu_group_new(ctx, p->group, &g);
	if (r < 0)
		goto out;
	n = iovk_iommu_group_get_n_devices(g);
	p->devices = calloc(n ? n : 1, sizeof(*p->devices));
	p->current = calloc(n ? n : 1, sizeof(*p->current));
	if (!p->devices || !p->current) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		struct iovk_device *m = iovk_iommu_group_get_devices(g)[i];
		const char *maddr = iovk_device_get_address(m), *drv = iovk_device_get_driver(m);
		struct iovk_passthrough_device *pd;
		struct entry *cur;

		if (iovk_device_is_bridge(m)) {
			/* iovk_iommu_group_bind() leaves bridges alone: one on
			 * a driver that owns DMA would stay a blocker. */
			if (!iovk_device_is_vfio_safe(m, NULL)) {
				r = add_blocker(p, maddr, drv, IOVK_IN_USE_KERNEL_DRIVER, NULL,
						"a bridge bound to %s, which keeps DMA ownership of the group; "
						"iovkit does not move bridges", drv);
				if (r < 0)
					goto out;
			}
			continue;
		}
		pd = &p->devices[p->n_devices];
		cur = &p->current[p->n_devices];
		p->n_devices++;
		snprintf(pd->address, sizeof(pd->address), "%s", maddr);
		snprintf(pd->driver, sizeof(pd->driver), "%s", drv ?: "");
		snprintf(pd->previous_driver, sizeof(pd->previous_driver), "%s", drv ?: "");
		pd->requested = strcmp(maddr, p->address) == 0;
		snprintf(cur->address, sizeof(cur->address), "%s", maddr);
		snprintf(cur->driver, sizeof(cur->driver), "%s", drv ?: "");
		snprintf(cur->override, sizeof(cur->override), "%s", iovk_device_get_driver_override(m) ?: "");

		if (pd->requested || in_strv(take, maddr))
			r = check_requested(ctx, p, m, flags);
		else if (!iovk_device_is_vfio_safe(m, NULL))
			/* Only the device asked for is taken from its kernel
			 * driver: the operator decides about the others. */
			r = add_blocker(p, maddr, drv, IOVK_IN_USE_KERNEL_DRIVER, NULL,
					"bound to %s, which keeps DMA ownership of the group; bind it to vfio-pci "
					"or unbind it first, if the host can do without it", drv);
		else
			r = 0;
		if (r < 0)
			goto out;
	}
	*ret = TAKE_PTR(p);
	r = 0;
out:
	iovk_iommu_group_unref(g);
	iovk_device_unref(d);
	return r;
}

_public_ int iovk_passthrough_check(struct iovk_ctx *ctx, const char *address, struct iovk_passthrough **ret_p)
{
	assert_return(ctx && address && ret_p, -EINVAL);

	clear_error(ctx);
	return plan_build(ctx, address, 0, NULL, ret_p);
}

/* "0000:01:00.1 (snd_hda_intel): bound to ...; 0000:01:00.0 (nouveau): ..." into buf. */
static void blockers_text(const struct iovk_passthrough *p, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < p->n_blockers && len < size; i++) {
		const struct iovk_passthrough_blocker *b = &p->blockers[i];
		int n;

		n = snprintf(buf + len, size - len, "%s%s%s%s%s: %s", i ? "; " : "", b->address,
			     b->driver[0] ? " (" : "", b->driver, b->driver[0] ? ")" : "", b->reason);
		if (n < 0)
			break;
		len += (size_t)n;
	}
}

/* ---- prepare -------------------------------------------------------------- */

/* vfio-pci or a variant driver (mlx5_vfio_pci, ...): a VMM can use it as it is. */
static bool all_on_vfio_drivers(const struct iovk_passthrough *p)
{
	for (size_t i = 0; i < p->n_devices; i++)
		if (!iovk_driver_is_vfio(p->current[i].driver))
			return false;
	return true;
}

static int entry_compare(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	return strcmp(x->address, y->address);
}

/*
 * The record for this prepare: an existing one for the group, completed
 * with endpoints it does not list, or a new one from the current bindings.
 * Returns 1 when the record must be (re)written.
 */
static int record_merge(const struct iovk_passthrough *p, struct record *rec, bool have)
{
	bool grew = false;

	if (!have) {
		*rec = (struct record){ .group = p->group };
		snprintf(rec->address, sizeof(rec->address), "%s", p->address);
	}
	for (size_t i = 0; i < p->n_devices; i++) {
		struct entry *e;

		if (record_find_entry(rec, p->current[i].address))
			continue;
		e = realloc(rec->entries, (rec->n + 1) * sizeof(*e));
		if (!e)
			return -ENOMEM;
		rec->entries = e;
		rec->entries[rec->n++] = p->current[i];
		grew = true;
	}
	if (grew)
		qsort(rec->entries, rec->n, sizeof(*rec->entries), entry_compare);
	/* Group numbers change across reboots: the one of now is the one
	 * that goes with the bindings of now. */
	if (rec->group != p->group) {
		rec->group = p->group;
		grew = true;
	}
	return grew;
}

/* True when every device the record lists is on its recorded driver and override. */
static bool record_matches_host(struct iovk_ctx *ctx, const struct record *rec)
{
	for (size_t i = 0; i < rec->n; i++) {
		struct entry now;

		if (read_binding(ctx, rec->entries[i].address, &now) < 0)
			return false;
		if (strcmp(now.driver, rec->entries[i].driver) != 0 || strcmp(now.override, rec->entries[i].override) != 0)
			return false;
	}
	return true;
}

/* The options as this library knows them, defaults for NULL; -EINVAL (error set) for bad ones. */
static int opts_read(struct iovk_ctx *ctx, const struct iovk_passthrough_opts *opts, struct iovk_passthrough_opts *ret)
{
	*ret = (struct iovk_passthrough_opts){ .sz = sizeof(*ret), .driver = "vfio-pci" };
	if (!opts)
		return 0;
	if (opts_valid(ctx, opts, opts->sz, offsetofend(struct iovk_passthrough_opts, driver), sizeof(*opts),
		       "iovk_passthrough_opts", "IOVK_OPTS()") < 0)
		return -EINVAL;
	ret->flags = opts->flags;
	ret->take = opts->take;
	if (opts->holder && !holder_valid(opts->holder))
		return set_error(ctx, -EINVAL, "a passthrough holder must be 1 to %d printable ASCII characters",
				 IOVK_PASSTHROUGH_HOLDER_MAX - 1);
	ret->holder = opts->holder;
	if (opts->driver) {
		if (!driver_name_ok(opts->driver) || !iovk_driver_is_vfio(opts->driver))
			return set_error(ctx, -EINVAL, "'%s' is not vfio-pci or a vfio variant driver", opts->driver);
		ret->driver = opts->driver;
	}
	return 0;
}

/* -EBUSY naming the holder when the record's holder is not the caller's ("" for none). */
static int check_holder(struct iovk_ctx *ctx, const struct record *rec, const char *path, const char *holder,
			const char *verb)
{
	if (strcmp(rec->holder, holder ?: "") == 0)
		return 0;
	if (!rec->holder[0])
		return set_error(ctx, -EBUSY, "%s: IOMMU group %d was prepared by iovctl passthrough prepare (record %s), "
				 "not by %s: it cannot %s it; `iovctl passthrough release %s` gives it back first",
				 rec->address, rec->group, path, holder, verb, rec->address);
	return set_error(ctx, -EBUSY, "%s: IOMMU group %d is held by %s (record %s): %s it there, not here",
			 rec->address, rec->group, rec->holder, path, verb);
}

_public_ int iovk_passthrough_prepare(struct iovk_ctx *ctx, const char *address, unsigned flags,
				      struct iovk_passthrough **ret_p)
{
	struct iovk_passthrough_opts o = { .sz = sizeof(o), .flags = flags };

	assert_return(ctx && address && ret_p, -EINVAL);
	return iovk_passthrough_prepare_opts(ctx, address, &o, ret_p);
}

_public_ int iovk_passthrough_prepare_opts(struct iovk_ctx *ctx, const char *address,
					   const struct iovk_passthrough_opts *opts, struct iovk_passthrough **ret_p)
{
	_cleanup_(passthrough_freep) struct iovk_passthrough *p = NULL;
	_cleanup_close_ int lock = -1;
	_cleanup_free_ char *path = NULL;
	struct iovk_passthrough_opts o;
	struct record rec = {};
	const char **addresses = NULL;
	bool have = false;
	unsigned flags;
	int r;

	assert_return(ctx && address && ret_p, -EINVAL);
	clear_error(ctx);
	r = opts_read(ctx, opts, &o);
	if (r < 0)
		return r;
	flags = o.flags;
	r = plan_build(ctx, address, flags, o.take, &p); /* a malformed or unknown address fails before any lock */
	if (r < 0)
		return r;
	p = iovk_passthrough_free(p);
	r = passthrough_lock(ctx, &lock);
	if (r < 0)
		return r;
	/* Again under the lock: another prepare or release may have run. */
	r = plan_build(ctx, address, flags, o.take, &p);
	if (r < 0)
		return r;
	if (p->n_blockers > 0) {
		char text[sizeof(ctx->error)];

		blockers_text(p, text, sizeof(text));
		return set_error(ctx, -EBUSY, "%s: IOMMU group %d cannot go to a VMM, nothing was changed: %s",
				 p->address, p->group, text);
	}

	addresses = calloc(p->n_devices + 1, sizeof(*addresses));
	if (!addresses)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_devices; i++)
		addresses[i] = p->devices[i].address;
	r = record_find(ctx, addresses, p->n_devices, &rec, &path);
	free(addresses);
	if (r < 0)
		return r;
	have = r > 0;
	if (have) {
		r = check_holder(ctx, &rec, path, o.holder, "prepare");
		if (r < 0)
			goto out;
	}

	if (!have && all_on_vfio_drivers(p) && !o.holder) {
		/* Nothing to move, nothing to undo: no record. (A holder gets
		 * one all the same: it is how others see who holds the group.) */
		*ret_p = TAKE_PTR(p);
		return 0;
	}
	r = record_merge(p, &rec, have);
	if (r < 0)
		goto out;
	if (!have && o.holder) {
		snprintf(rec.holder, sizeof(rec.holder), "%s", o.holder);
		r = 1;
	}
	if (!path) {
		path = record_path(ctx, p->address);
		if (!path) {
			r = -ENOMEM;
			goto out;
		}
	}
	if (r > 0) {
		/* Before the first write to sysfs: this is what lets a later
		 * release undo a prepare that died halfway. */
		r = record_write(ctx, &rec, path);
		if (r < 0)
			goto out;
	}

	if (!all_on_vfio_drivers(p)) {
		size_t changed = 0;

		r = iovk_iommu_group_bind(ctx, p->group, o.driver, flags, &changed);
		if (r < 0) {
			char reason[sizeof(ctx->error)];

			snprintf(reason, sizeof(reason), "%s", ctx->error);
			if (!have && record_matches_host(ctx, &rec) && record_remove(ctx, path) >= 0)
				set_error(ctx, r, "%s", reason);
			else
				set_error(ctx, r, "%s; the previous drivers stay recorded in %s: release the group "
					  "to put them back", reason, path);
			goto out;
		}
	}

	/* What the group looks like now, with the previous drivers from the record. */
	for (size_t i = 0; i < p->n_devices; i++) {
		struct iovk_passthrough_device *pd = &p->devices[i];
		const struct entry *e = record_find_entry(&rec, pd->address);
		struct entry now;

		r = read_binding(ctx, pd->address, &now);
		if (r < 0)
			goto out;
		snprintf(pd->driver, sizeof(pd->driver), "%s", now.driver);
		if (e)
			snprintf(pd->previous_driver, sizeof(pd->previous_driver), "%s", e->driver);
		pd->changed = strcmp(p->current[i].driver, now.driver) != 0;
		p->current[i] = now;
	}
	if (rec.holder[0]) {
		p->holder = strdup(rec.holder);
		if (!p->holder) {
			r = -ENOMEM;
			goto out;
		}
	}
	p->record = TAKE_PTR(path);
	*ret_p = TAKE_PTR(p);
	r = 0;
out:
	record_done(&rec);
	return r;
}

/* ---- release -------------------------------------------------------------- */

/*
 * Drops bind.c's previous-driver record of a device that is back on the
 * driver it names: the group bind of prepare wrote it, and left behind it
 * would make a later `iovctl restore` act on a device that is already
 * restored. A record naming another driver is older than prepare (an
 * earlier bind or unbind) and still describes the device: it stays.
 */
static void forget_bind_record(struct iovk_ctx *ctx, const struct entry *e)
{
	_cleanup_free_ char *p = root_path(ctx->run_dir, "/previous-driver/%s", e->address), *s = NULL;

	if (p && read_text(p, &s) >= 0 && strcmp(s, e->driver) == 0)
		previous_driver_forget(ctx, e->address);
}

/*
 * Refuses when a VFIO user (a running VM) holds the device's group open:
 * unbinding vfio-pci then blocks until the user lets go of the device
 * (vfio-pci's remove waits for it, with no timeout), which would hang
 * release. A legacy group opens only once, so our own open says EBUSY.
 */
static int check_group_closed(struct iovk_ctx *ctx, const char *address)
{
	_cleanup_free_ char *path = NULL;
	struct iovk_device *d;
	int group, r;

	r = iovk_device_new(ctx, address, &d);
	if (r < 0)
		return r;
	group = iovk_device_get_iommu_group(d);
	iovk_device_unref(d);
	if (group < 0)
		return 0;
	r = iovk_iommu_group_vfio_is_open(ctx, group);
	if (r <= 0)
		return r;
	path = iovk_iommu_group_vfio_node(ctx, group);
	return set_error(ctx, -EBUSY, "%s: IOMMU group %d is in use (%s is open: a VM or another VFIO user "
			 "holds it); stop it first, or vfio-pci would not let go of the device",
			 address, group, path ?: "its VFIO node");
}

_public_ int iovk_passthrough_release(struct iovk_ctx *ctx, const char *address, struct iovk_passthrough **ret_p)
{
	assert_return(ctx && address && ret_p, -EINVAL);
	return iovk_passthrough_release_opts(ctx, address, NULL, ret_p);
}

_public_ int iovk_passthrough_release_opts(struct iovk_ctx *ctx, const char *address,
					   const struct iovk_passthrough_opts *opts, struct iovk_passthrough **ret_p)
{
	_cleanup_(passthrough_freep) struct iovk_passthrough *p = NULL;
	struct iovk_passthrough_opts o;
	_cleanup_close_ int lock = -1;
	_cleanup_free_ char *path = NULL;
	char canonical[IOVK_PCI_ADDR_MAX], failures[sizeof(ctx->error)] = "";
	const char *addresses[1] = { canonical };
	struct record rec = {};
	size_t failed_len = 0;
	bool checked_open = false;
	int r, first_error = 0;

	assert_return(ctx && address && ret_p, -EINVAL);
	clear_error(ctx);
	r = opts_read(ctx, opts, &o);
	if (r < 0)
		return r;
	r = canonical_address(ctx, address, canonical);
	if (r < 0)
		return r;
	r = passthrough_lock(ctx, &lock);
	if (r < 0)
		return r;
	r = record_find(ctx, addresses, 1, &rec, &path);
	if (r < 0)
		return r;
	if (r == 0) {
		struct entry e;

		/* No record: fine for a device that exists, an error for a typo. */
		r = read_binding(ctx, canonical, &e);
		if (r < 0)
			return r;
		*ret_p = NULL;
		return 0;
	}
	r = check_holder(ctx, &rec, path, o.holder, "release");
	if (r < 0) {
		record_done(&rec);
		return r;
	}

	p = calloc(1, sizeof(*p));
	if (p) {
		p->devices = calloc(rec.n, sizeof(*p->devices));
		p->current = calloc(rec.n, sizeof(*p->current));
	}
	if (!p || !p->devices || !p->current) {
		record_done(&rec);
		return -ENOMEM;
	}
	snprintf(p->address, sizeof(p->address), "%s", canonical);
	p->group = rec.group;
	p->n_devices = rec.n;
	if (rec.holder[0] && !(p->holder = strdup(rec.holder))) {
		record_done(&rec);
		return -ENOMEM;
	}

	for (size_t i = 0; i < rec.n; i++) {
		const struct entry *e = &rec.entries[i];
		struct iovk_passthrough_device *pd = &p->devices[i];
		struct iovk_bind_result undo = IOVK_BIND_RESULT_INIT;
		struct entry now;
		int n = 0;

		clear_error(ctx);
		snprintf(pd->address, sizeof(pd->address), "%s", e->address);
		snprintf(pd->previous_driver, sizeof(pd->previous_driver), "%s", e->driver);
		pd->requested = strcmp(e->address, canonical) == 0;
		r = read_binding(ctx, e->address, &now);
		if (r == -ENODEV) {
			/* Gone (hot-unplugged, or a VF whose PF dropped it):
			 * nothing left to put back. */
			log_warn(ctx, "%s: no longer present, nothing to restore", e->address);
			continue;
		}
		if (r >= 0) {
			snprintf(pd->driver, sizeof(pd->driver), "%s", now.driver);
			p->current[i] = now;
			/* As before prepare: it was on vfio-pci already, or a
			 * dying prepare never reached it. */
			if (strcmp(now.driver, e->driver) == 0 && strcmp(now.override, e->override) == 0)
				continue;
			if (!checked_open) {
				/* Before the first change: nothing is half done. */
				r = check_group_closed(ctx, e->address);
				if (r < 0) {
					record_done(&rec);
					return r;
				}
				checked_open = true;
			}
			/* Exactly as recorded, driver and override, checked
			 * through the driver link; bind.c's own record is not
			 * needed (nor trusted: it may hold an older driver). */
			snprintf(undo.previous_driver, sizeof(undo.previous_driver), "%s", e->driver);
			snprintf(undo.previous_override, sizeof(undo.previous_override), "%s", e->override);
			r = iovk_device_bind_undo(ctx, e->address, &undo);
		}
		if (r >= 0) {
			r = read_binding(ctx, e->address, &now);
			if (r >= 0) {
				pd->changed = strcmp(now.driver, pd->driver) != 0;
				snprintf(pd->driver, sizeof(pd->driver), "%s", now.driver);
				p->current[i] = now;
				forget_bind_record(ctx, e);
			}
		}
		if (r < 0) {
			if (!first_error)
				first_error = r;
			if (failed_len < sizeof(failures))
				n = snprintf(failures + failed_len, sizeof(failures) - failed_len, "%s%s",
					     failed_len ? "; " : "", ctx->error[0] ? ctx->error : strerror(-r));
			if (n > 0)
				failed_len += (size_t)n;
		}
	}
	if (first_error) {
		record_done(&rec);
		return set_error(ctx, first_error, "%s: releasing IOMMU group %d: %s; the record %s is kept: release "
				 "again once the cause is fixed", canonical, p->group, failures, path);
	}
	r = record_remove(ctx, path);
	record_done(&rec);
	if (r < 0)
		return r;
	p->record = TAKE_PTR(path);
	*ret_p = TAKE_PTR(p);
	return 1;
}

/* ---- the records, listed ---------------------------------------------------- */

/* The record as an object: its devices with their previous drivers and the drivers now. */
static int record_to_passthrough(struct iovk_ctx *ctx, const struct record *rec, const char *path,
				 struct iovk_passthrough **ret)
{
	_cleanup_(passthrough_freep) struct iovk_passthrough *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	p->devices = calloc(rec->n ?: 1, sizeof(*p->devices));
	p->current = calloc(rec->n ?: 1, sizeof(*p->current));
	p->record = strdup(path);
	if (!p->devices || !p->current || !p->record || (rec->holder[0] && !(p->holder = strdup(rec->holder))))
		return -ENOMEM;
	snprintf(p->address, sizeof(p->address), "%s", rec->address);
	p->group = rec->group;
	p->n_devices = rec->n;
	for (size_t i = 0; i < rec->n; i++) {
		struct iovk_passthrough_device *pd = &p->devices[i];

		snprintf(pd->address, sizeof(pd->address), "%s", rec->entries[i].address);
		snprintf(pd->previous_driver, sizeof(pd->previous_driver), "%s", rec->entries[i].driver);
		pd->requested = strcmp(pd->address, rec->address) == 0;
		if (read_binding(ctx, pd->address, &p->current[i]) >= 0)
			snprintf(pd->driver, sizeof(pd->driver), "%s", p->current[i].driver);
		clear_error(ctx);
	}
	*ret = TAKE_PTR(p);
	return 0;
}

static int path_compare(const void *a, const void *b)
{
	const struct iovk_passthrough *x = *(struct iovk_passthrough *const *)a, *y = *(struct iovk_passthrough *const *)b;

	return strcmp(x->record, y->record);
}

_public_ void iovk_passthrough_list_free(struct iovk_passthrough **list)
{
	for (size_t i = 0; list && list[i]; i++)
		iovk_passthrough_free(list[i]);
	free(list);
}

_public_ int iovk_passthrough_list_records(struct iovk_ctx *ctx, struct iovk_passthrough ***ret_list)
{
	_cleanup_free_ char *dir = NULL;
	_cleanup_closedir_ DIR *d = NULL;
	_cleanup_close_ int lock = -1;
	struct iovk_passthrough **list = NULL;
	struct dirent *de;
	size_t n = 0;
	int r;

	assert_return(ctx && ret_list, -EINVAL);
	clear_error(ctx);
	dir = record_dir(ctx);
	list = calloc(1, sizeof(*list));
	if (!dir || !list) {
		free(list);
		return -ENOMEM;
	}
	d = opendir(dir);
	if (!d) {
		r = negative_errno();
		if (r == -ENOENT) {
			*ret_list = list;
			return 0;
		}
		free(list);
		return set_error(ctx, r, "reading %s: %s", dir, strerror(-r));
	}
	/* not half a prepare's record: the same lock as prepare and release */
	r = passthrough_lock(ctx, &lock);
	if (r < 0) {
		free(list);
		return r;
	}
	while ((de = readdir(d))) {
		_cleanup_free_ char *path = NULL;
		struct iovk_passthrough **grown;
		struct iovk_pci_addr pa;
		struct record rec;

		if (de->d_name[0] == '.' || iovk_pci_addr_parse(de->d_name, &pa) < 0)
			continue;
		if (asprintf(&path, "%s/%s", dir, de->d_name) < 0) {
			r = -ENOMEM;
			break;
		}
		r = record_load(ctx, path, &rec);
		if (r < 0 && r != -ENOMEM) {
			log_warn(ctx, "%s", ctx->error);
			clear_error(ctx);
			continue;
		}
		if (r <= 0)
			break;
		grown = realloc(list, (n + 2) * sizeof(*list));
		r = grown ? record_to_passthrough(ctx, &rec, path, &grown[n]) : -ENOMEM;
		record_done(&rec);
		if (grown)
			list = grown;
		if (r < 0)
			break;
		list[++n] = NULL;
		r = 0;
	}
	if (r < 0) {
		list[n] = NULL;
		iovk_passthrough_list_free(list);
		return r;
	}
	qsort(list, n, sizeof(*list), path_compare);
	*ret_list = list;
	return (int)n;
}

/* ---- getters ---------------------------------------------------------------- */

_public_ const char *iovk_passthrough_get_address(const struct iovk_passthrough *p)
{
	return p->address;
}

_public_ int iovk_passthrough_get_iommu_group(const struct iovk_passthrough *p)
{
	return p->group;
}

_public_ const char *iovk_passthrough_get_record(const struct iovk_passthrough *p)
{
	return p->record;
}

_public_ const char *iovk_passthrough_get_holder(const struct iovk_passthrough *p)
{
	return p->holder;
}

_public_ size_t iovk_passthrough_get_n_devices(const struct iovk_passthrough *p)
{
	return p->n_devices;
}

_public_ const struct iovk_passthrough_device *iovk_passthrough_get_device(const struct iovk_passthrough *p, size_t i)
{
	return i < p->n_devices ? &p->devices[i] : NULL;
}

_public_ size_t iovk_passthrough_get_n_blockers(const struct iovk_passthrough *p)
{
	return p->n_blockers;
}

_public_ const struct iovk_passthrough_blocker *iovk_passthrough_get_blocker(const struct iovk_passthrough *p,
									     size_t i)
{
	return i < p->n_blockers ? &p->blockers[i] : NULL;
}
