/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Plans: what a configuration (config.c) asks for that the running system
 * does not show yet, as steps in a safe order, and applying them.
 *
 * The order, and why:
 *  1. autoprobe, before VFs are created: with sriov_drivers_autoprobe 0 the
 *     kernel never probes a VF's kernel driver (pci_device_can_probe()), so a
 *     VF meant for VFIO is never seen by the host's network stack;
 *  2. numvfs: the VFs have to exist before anything else can be said about
 *     them;
 *  3. VF settings: they are set through the PF's network interface, so they
 *     work whatever driver the VF has, and a VF handed to a guest afterwards
 *     already has its MAC, VLAN and trust;
 *  4. driver binding, last: nothing uses a VF before it is configured.
 * Each phase runs over every PF in the configuration's order before the next
 * phase starts. Each step goes through the library's own call for it, which
 * re-reads what it changes under the lock and undoes its partial work when
 * it fails, and does nothing when the system already is as asked, so a plan
 * that stops midway can be recomputed and applied again.
 *
 * A plan reads the system once. The VFs that a numvfs step creates are new
 * devices: their addresses and settings are unknown until that step ran, so
 * their settings and bindings are planned whole and resolved when applied.
 */
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <string.h>

#include "config-internal.h"
#include "../sriov/vf-internal.h"

struct step {
	struct iovk_plan_step pub;
	/* owned strings the public members point to */
	char *path, *pf_address, *device, *driver_from, *blocked, *forced, *description, *error_message;
	const struct cfg_pf *cpf;        /* NULL for a device entry */
	const struct cfg_vf *cvf;        /* NULL when not about a VF */
	const struct cfg_device *cdev;   /* only for a device entry */
	size_t creator;                  /* 1 + index of the numvfs step creating the VF, 0: none */
};

struct iovk_plan {
	int n_ref;
	struct iovk_ctx *ctx;
	struct iovk_config *config;
	unsigned flags;
	struct step *steps;
	size_t n_steps;
	bool applied; /* iovk_plan_apply() ran */
	size_t n_applied;
};

/* One PF of the configuration as the system shows it now. */
struct pf_state {
	const struct cfg_pf *cfg;
	char *address;             /* PCI address; NULL: not a PCI device */
	char label[IFNAMSIZ + IOVK_PCI_ADDR_MAX + 8];
	struct iovk_sriov_pf *sp;  /* PCI PFs */
	struct iovk_vf_list *vl;   /* read when VF settings are compared */
	int numvfs;                /* now */
	int target;                /* after the plan */
	int autoprobe;             /* now; -1 unknown or not PCI */
	int autoprobe_after;       /* for the VFs the plan creates */
	int record;                /* value recorded by IOVK_SRIOV_NO_AUTOPROBE, -1 none */
	bool changes_numvfs;
	size_t numvfs_step;        /* 1 + index of its numvfs step, 0: none */
};

static void pf_state_done(struct pf_state *s)
{
	free(s->address);
	iovk_sriov_pf_unref(s->sp);
	iovk_vf_list_unref(s->vl);
}

static void step_done(struct step *s)
{
	free(s->path);
	free(s->pf_address);
	free(s->device);
	free(s->driver_from);
	free(s->blocked);
	free(s->forced);
	free(s->description);
	free(s->error_message);
}

/* Frees what the last reference held (DEFINE_PUBLIC_REF_UNREF below). */
static void plan_free(struct iovk_plan *plan)
{
	for (size_t i = 0; i < plan->n_steps; i++)
		step_done(&plan->steps[i]);
	free(plan->steps);
	iovk_config_unref(plan->config);
	iovk_ctx_unref(plan->ctx);
	free(plan);
}

DEFINE_PUBLIC_REF_UNREF(struct iovk_plan, iovk_plan, plan_free);

_public_ size_t iovk_plan_get_n_steps(const struct iovk_plan *plan)
{
	return plan->n_steps;
}

_public_ const struct iovk_plan_step *iovk_plan_get_step(const struct iovk_plan *plan, size_t i)
{
	return i < plan->n_steps ? &plan->steps[i].pub : NULL;
}

_public_ int iovk_plan_get_first_blocked(const struct iovk_plan *plan)
{
	for (size_t i = 0; i < plan->n_steps; i++)
		if (plan->steps[i].pub.blocked)
			return (int)i;
	return -1;
}

_public_ size_t iovk_plan_get_n_applied(const struct iovk_plan *plan)
{
	return plan->n_applied;
}

_public_ const char *iovk_plan_action_name(enum iovk_plan_action action)
{
	switch (action) {
	case IOVK_PLAN_AUTOPROBE:
		return "autoprobe";
	case IOVK_PLAN_NUMVFS:
		return "numvfs";
	case IOVK_PLAN_VF_SETTINGS:
		return "vf-settings";
	case IOVK_PLAN_BIND:
		return "bind";
	}
	return NULL;
}

/* ---- errors ----------------------------------------------------------------- */

/* "FILE: PATH: " before the context's error from a library call. */
static int entry_error(struct iovk_ctx *ctx, int r, const char *file, const char *path)
{
	char msg[sizeof(ctx->error)];

	snprintf(msg, sizeof(msg), "%s", ctx->error[0] ? ctx->error : strerror(-r));
	return set_error(ctx, r, "%s: %s: %s", file, path, msg);
}

static int entry_fail(struct iovk_ctx *ctx, int r, const char *file, const char *path, const char *format, ...)
	_printf_(5, 6);
static int entry_fail(struct iovk_ctx *ctx, int r, const char *file, const char *path, const char *format, ...)
{
	char msg[sizeof(ctx->error)];
	va_list ap;

	va_start(ap, format);
	vsnprintf(msg, sizeof(msg), format, ap);
	va_end(ap);
	return set_error(ctx, r, "%s: %s: %s", file, path, msg);
}

static char *join(const char *a, const char *b)
{
	char *s;

	return asprintf(&s, "%s%s", a, b) < 0 ? NULL : s;
}

/* ---- steps ------------------------------------------------------------------- */

/* --force for the whole plan, or "force": true on the entry the step comes from. */
static bool step_forced(const struct iovk_plan *plan, const struct step *s)
{
	return (plan->flags & IOVK_PLAN_FORCE) || (s->cpf && s->cpf->force) || (s->cdev && s->cdev->force);
}

/* Why the step would be refused (text, taken): blocked, or when the step is
 * forced, what the force overrides, so that the report can say so. */
static void block_or_force(const struct iovk_plan *plan, struct step *s, char *text)
{
	char **slot = step_forced(plan, s) ? &s->forced : &s->blocked;

	free(*slot);
	*slot = text;
}

static struct step *step_add(struct iovk_plan *plan, enum iovk_plan_action action, const struct pf_state *st,
			     const char *file, const char *path_suffix, const char *base_path)
{
	struct step *steps = realloc(plan->steps, (plan->n_steps + 1) * sizeof(*steps)), *s;

	if (!steps)
		return NULL;
	plan->steps = steps;
	s = &steps[plan->n_steps];
	*s = (struct step){ .pub = { .action = action, .file = file, .vf = -1, .from = -1, .to = -1,
				     .autoprobe_restored = -1, .settings = IOVK_VF_SETTINGS_INIT,
				     .current = IOVK_VF_SETTINGS_INIT } };
	s->path = join(base_path, path_suffix);
	if (!s->path)
		return NULL;
	if (st) {
		s->cpf = st->cfg;
		s->pub.pf = st->cfg->name;
		if (st->address && !(s->pf_address = strdup(st->address))) {
			step_done(s);
			return NULL;
		}
	}
	plan->n_steps++;
	return s;
}

/* Points the public members at the owned strings (after the array moved). */
static void steps_publish(struct iovk_plan *plan)
{
	for (size_t i = 0; i < plan->n_steps; i++) {
		struct step *s = &plan->steps[i];

		s->pub.path = s->path;
		s->pub.pf_address = s->pf_address;
		s->pub.device = s->device;
		s->pub.driver_from = s->driver_from;
		s->pub.blocked = s->blocked;
		s->pub.forced = s->forced;
		s->pub.description = s->description;
		s->pub.error_message = s->error_message;
	}
}

static int set_str(char **dst, const char *src)
{
	char *n = NULL;

	if (src && !(n = strdup(src)))
		return -ENOMEM;
	free(*dst);
	*dst = n;
	return 0;
}

/* Appends "word value" pairs of the fields in settings, in the kernel's order. */
static void describe_fields(unsigned fields, const struct iovk_vf_settings *s, char *buf, size_t size)
{
	static const unsigned order[] = {
		IOVK_VF_MAC, IOVK_VF_VLAN, IOVK_VF_MIN_TX_RATE, IOVK_VF_MAX_TX_RATE,
		IOVK_VF_SPOOFCHK, IOVK_VF_LINK_STATE, IOVK_VF_TRUST,
	};
	size_t len = strlen(buf);

	for (size_t i = 0; i < ELEMENTSOF(order); i++) {
		char one[96];
		int n;

		if (!(fields & order[i]))
			continue;
		vf_describe_settings(order[i], s, one, sizeof(one));
		n = snprintf(buf + len, size - len, "%s%s", buf[len - 1] == ' ' ? "" : ", ", one);
		if (n < 0 || (size_t)n >= size - len)
			return;
		len += (size_t)n;
	}
}

static const char *drv_word(const char *driver)
{
	return driver ?: "none";
}

static int describe(struct step *s, const struct pf_state *st)
{
	const struct iovk_plan_step *p = &s->pub;
	char buf[1024], who[128];

	if (st && p->vf >= 0) {
		if (s->device)
			snprintf(who, sizeof(who), "%s VF %d (%s)", st->label, p->vf, s->device);
		else if (s->creator)
			snprintf(who, sizeof(who), "%s VF %d (created by step %zu)", st->label, p->vf, s->creator);
		else
			snprintf(who, sizeof(who), "%s VF %d", st->label, p->vf);
	} else
		snprintf(who, sizeof(who), "%s%s%s%s", st ? st->label : s->device, s->cdev && s->cdev->match ? " (" : "",
			 s->cdev && s->cdev->match ? s->cdev->match : "", s->cdev && s->cdev->match ? ")" : "");

	switch (p->action) {
	case IOVK_PLAN_AUTOPROBE:
		if (p->from == p->to)
			snprintf(buf, sizeof(buf), "%s: autoprobe stays %s (and the earlier value recorded by "
				 "'sriov set --no-autoprobe' is dropped, so numvfs 0 keeps it)", who,
				 p->to ? "on" : "off");
		else
			snprintf(buf, sizeof(buf), "%s: autoprobe %s -> %s", who, p->from ? "on" : "off",
				 p->to ? "on" : "off");
		break;
	case IOVK_PLAN_NUMVFS:
		snprintf(buf, sizeof(buf), "%s: numvfs %d -> %d%s%s%s", who, p->from, p->to,
			 p->through_zero ? " (through 0: the kernel changes a non-zero count only through 0)" : "",
			 p->autoprobe_restored < 0 ? "" : ", then autoprobe back to ",
			 p->autoprobe_restored < 0 ? "" : p->autoprobe_restored ? "on (recorded)" : "off (recorded)");
		break;
	case IOVK_PLAN_VF_SETTINGS:
		snprintf(buf, sizeof(buf), "%s: ", who);
		describe_fields(p->settings.fields, &p->settings, buf, sizeof(buf));
		if (p->has_current) {
			size_t len = strlen(buf);

			snprintf(buf + len, sizeof(buf) - len, "; now ");
			describe_fields(p->settings.fields, &p->current, buf, sizeof(buf));
		}
		break;
	case IOVK_PLAN_BIND:
		if (s->creator)
			snprintf(buf, sizeof(buf), "%s: driver -> %s", who, drv_word(p->driver_to));
		else
			snprintf(buf, sizeof(buf), "%s: driver %s -> %s", who, drv_word(s->driver_from),
				 drv_word(p->driver_to));
		break;
	}
	return set_str(&s->description, buf);
}

/* ---- reading the PFs ------------------------------------------------------------ */

static int resolve_pf(struct iovk_plan *plan, struct pf_state *st, struct iovk_sriov_pf ***all)
{
	struct iovk_ctx *ctx = plan->ctx;
	const struct cfg_pf *c = st->cfg;
	_cleanup_free_ char *kp = join(c->path, ".pf");
	int r;

	if (!kp)
		return -ENOMEM;
	if (c->by_address) {
		r = iovk_sriov_pf_new(ctx, c->name, &st->sp);
		if (r < 0)
			return entry_error(ctx, r, c->file, kp);
	} else {
		/* An interface of a PCI PF is found through sysfs, like the
		 * rest of the PF; only one without a PCI device (netdevsim)
		 * needs netlink. */
		if (!*all) {
			r = iovk_sriov_enumerate_pfs(ctx, all, NULL);
			if (r < 0)
				return entry_error(ctx, r, c->file, kp);
		}
		for (struct iovk_sriov_pf **p = *all; *p && !st->sp; p++)
			for (const char *const *n = iovk_device_get_netdevs(iovk_sriov_pf_get_device(*p)); *n; n++)
				if (strcmp(*n, c->name) == 0) {
					st->sp = iovk_sriov_pf_ref(*p);
					break;
				}
		if (!st->sp) {
			r = iovk_vf_list_new(ctx, c->name, &st->vl);
			if (r < 0)
				return entry_error(ctx, r, c->file, kp);
			if (iovk_vf_list_get_numvfs(st->vl) < 0)
				return entry_fail(ctx, -ENOENT, c->file, kp,
						  "%s: not an SR-IOV PF: the kernel reports no VFs for this interface",
						  c->name);
			if (iovk_vf_list_get_pf_address(st->vl)) {
				r = iovk_sriov_pf_new(ctx, iovk_vf_list_get_pf_address(st->vl), &st->sp);
				if (r < 0)
					return entry_error(ctx, r, c->file, kp);
			}
		}
	}
	if (st->sp) {
		st->address = strdup(iovk_sriov_pf_get_address(st->sp));
		if (!st->address)
			return -ENOMEM;
		st->numvfs = iovk_sriov_pf_get_numvfs(st->sp);
		st->autoprobe = iovk_sriov_pf_get_drivers_autoprobe(st->sp);
	} else {
		st->numvfs = iovk_vf_list_get_numvfs(st->vl);
		st->autoprobe = -1;
	}
	if (c->by_address || !st->address)
		snprintf(st->label, sizeof(st->label), "%s", c->name);
	else
		snprintf(st->label, sizeof(st->label), "%s (%s)", c->name, st->address);
	st->record = -1;
	return 0;
}

/* What the configuration asks of one PF that it cannot do, before any step. */
static int check_pf(struct iovk_plan *plan, struct pf_state *st)
{
	struct iovk_ctx *ctx = plan->ctx;
	const struct cfg_pf *c = st->cfg;
	_cleanup_free_ char *kn = join(c->path, ".numvfs"), *ka = join(c->path, ".autoprobe");
	int r, value;

	if (!kn || !ka)
		return -ENOMEM;
	if (c->numvfs >= 0 && !st->sp && c->numvfs != st->numvfs)
		return entry_fail(ctx, -EOPNOTSUPP, c->file, kn,
				  "%s is not a PCI device, and iovkit sets the number of VFs through PCI sysfs only "
				  "(it has %d VFs, the file asks for %d)", c->name, st->numvfs, c->numvfs);
	if (c->numvfs >= 0 && st->sp) {
		int total = iovk_sriov_pf_get_totalvfs(st->sp);

		if (total >= 0 && c->numvfs > total)
			return entry_fail(ctx, -ERANGE, c->file, kn,
					  "%d VFs asked for, but %s supports at most %d (sriov_totalvfs)", c->numvfs,
					  st->label, total);
		if (c->numvfs != st->numvfs && !iovk_device_get_driver(iovk_sriov_pf_get_device(st->sp)))
			return entry_fail(ctx, -ENOENT, c->file, kn,
					  "no driver is bound to the PF %s, and only the PF driver can change its VFs",
					  st->label);
	}
	st->changes_numvfs = c->numvfs >= 0 && c->numvfs != st->numvfs;
	st->target = c->numvfs >= 0 ? c->numvfs : st->numvfs;

	for (size_t i = 0; i < c->n_vfs; i++) {
		const struct cfg_vf *v = &c->vfs[i];
		_cleanup_free_ char *kv = join(v->path, ".vf"), *kd = join(v->path, ".driver");

		if (!kv || !kd)
			return -ENOMEM;
		/* With numvfs in the file, config.c checked the index. */
		if (v->index >= (unsigned)st->target)
			return entry_fail(ctx, -ERANGE, c->file, kv,
					  "VF %u does not exist: %s has %d VFs (set numvfs to create more)", v->index,
					  st->label, st->target);
		if (v->driver && !st->sp)
			return entry_fail(ctx, -EOPNOTSUPP, c->file, kd,
					  "%s is not a PCI device: its VFs have no PCI functions to bind", c->name);
	}

	if (c->autoprobe >= 0) {
		if (!st->sp)
			return entry_fail(ctx, -EOPNOTSUPP, c->file, ka,
					  "%s is not a PCI device: it has no sriov_drivers_autoprobe", c->name);
		if (st->autoprobe < 0)
			return entry_fail(ctx, -EOPNOTSUPP, c->file, ka,
					  "%s: the kernel has no sriov_drivers_autoprobe (before Linux 4.12)", st->label);
	}
	if (st->sp) {
		r = autoprobe_record_read(ctx, st->address, &value);
		if (r < 0)
			return entry_error(ctx, r, c->file, c->path);
		if (r > 0)
			st->record = value;
	}
	st->autoprobe_after = c->autoprobe >= 0 ? c->autoprobe : st->autoprobe;
	return 0;
}

/* ---- the phases ----------------------------------------------------------------- */

static int plan_autoprobe(struct iovk_plan *plan, struct pf_state *st)
{
	const struct cfg_pf *c = st->cfg;
	struct step *s;

	if (c->autoprobe < 0)
		return 0;
	/* The same value, but numvfs 0 would write back an older one: the
	 * step drops that record, so the file's value stays. */
	if (st->autoprobe == c->autoprobe && !(st->record >= 0 && st->changes_numvfs && st->target == 0))
		return 0;
	s = step_add(plan, IOVK_PLAN_AUTOPROBE, st, c->file, ".autoprobe", c->path);
	if (!s)
		return -ENOMEM;
	s->pub.from = st->autoprobe;
	s->pub.to = c->autoprobe;
	if (set_str(&s->device, st->address) < 0)
		return -ENOMEM;
	return describe(s, st);
}

static int plan_numvfs(struct iovk_plan *plan, struct pf_state *st)
{
	struct iovk_ctx *ctx = plan->ctx;
	const struct cfg_pf *c = st->cfg;
	struct step *s;

	if (!st->changes_numvfs)
		return 0;
	s = step_add(plan, IOVK_PLAN_NUMVFS, st, c->file, ".numvfs", c->path);
	if (!s)
		return -ENOMEM;
	s->pub.from = st->numvfs;
	s->pub.to = c->numvfs;
	s->pub.through_zero = st->numvfs > 0 && c->numvfs > 0;
	/* iovk_sriov_set_numvfs(0) writes back a recorded autoprobe; an
	 * autoprobe in the file drops the record first (plan_autoprobe()). */
	if (c->numvfs == 0 && c->autoprobe < 0)
		s->pub.autoprobe_restored = st->record;
	if (set_str(&s->device, st->address) < 0)
		return -ENOMEM;
	if (st->numvfs > 0) {
		char busy[512], *text;
		int n = sriov_vfs_in_use(ctx, st->sp, busy, sizeof(busy));

		if (n < 0)
			return entry_error(ctx, n, c->file, s->path);
		if (n > 0) {
			if (asprintf(&text, "would remove VF%s %s, in use (a VF on VFIO is taken as assigned to a "
				     "guest)", n > 1 ? "s" : "", busy) < 0)
				return -ENOMEM;
			block_or_force(plan, s, text);
		}
	}
	st->numvfs_step = plan->n_steps;
	return describe(s, st);
}

static int plan_vf_settings(struct iovk_plan *plan, struct pf_state *st)
{
	struct iovk_ctx *ctx = plan->ctx;
	const struct cfg_pf *c = st->cfg;
	int r;

	for (size_t i = 0; i < c->n_vfs; i++) {
		const struct cfg_vf *v = &c->vfs[i];
		const struct iovk_vf_info *info = NULL;
		unsigned differ, unverifiable = 0;
		struct step *s;

		if (!v->settings.fields)
			continue;
		if (st->changes_numvfs) {
			/* New VFs: nothing to compare with yet, but the PF must
			 * have the interface their settings go through. */
			if (st->sp && !iovk_device_get_netdevs(iovk_sriov_pf_get_device(st->sp))[0])
				return entry_fail(ctx, -ENOENT, c->file, v->path,
						  "VF settings go through the PF's network interface, and %s has none "
						  "(driver %s)", st->label,
						  drv_word(iovk_device_get_driver(iovk_sriov_pf_get_device(st->sp))));
			differ = v->settings.fields;
		} else {
			if (!st->vl) {
				r = iovk_vf_list_new(ctx, c->name, &st->vl);
				if (r < 0)
					return entry_error(ctx, r, c->file, v->path);
			}
			if (iovk_vf_list_get_numvfs(st->vl) < 0)
				return entry_fail(ctx, -ENOENT, c->file, v->path,
						  "%s: not an SR-IOV PF: the kernel reports no VFs for its interface %s",
						  st->label, iovk_vf_list_get_pf_netdev(st->vl));
			info = iovk_vf_list_find(st->vl, v->index);
			if (!info)
				return entry_fail(ctx, -EOPNOTSUPP, c->file, v->path,
						  "%s: the PF driver reports no settings for VF %u", st->label, v->index);
			differ = iovk_vf_settings_diff(&v->settings, info, &unverifiable);
			/* What the driver does not report cannot be compared:
			 * written along with the rest, never alone (a plan that
			 * always had a step would never be empty). */
			if (!differ)
				continue;
			differ |= unverifiable;
		}
		s = step_add(plan, IOVK_PLAN_VF_SETTINGS, st, c->file, "", v->path);
		if (!s)
			return -ENOMEM;
		s->cvf = v;
		s->pub.vf = (int)v->index;
		s->pub.settings = v->settings;
		s->pub.settings.fields = differ;
		if (info) {
			vf_settings_from_info(info, &s->pub.current);
			s->pub.current.fields = differ;
			s->pub.has_current = true;
			if (set_str(&s->device, info->address) < 0)
				return -ENOMEM;
		}
		if (!s->device && !st->changes_numvfs && st->sp && iovk_sriov_pf_get_vf(st->sp, v->index) &&
		    set_str(&s->device, iovk_device_get_address(iovk_sriov_pf_get_vf(st->sp, v->index))) < 0)
			return -ENOMEM;
		s->creator = st->numvfs_step;
		r = describe(s, st);
		if (r < 0)
			return r;
	}
	return 0;
}

/* A step that takes a device from a driver the host uses through it is
 * blocked, as iovk_device_bind() would refuse it, unless the plan is forced. */
static int block_if_in_use(struct iovk_plan *plan, struct step *s, struct iovk_device *dev)
{
	struct iovk_in_use *u = NULL;
	int r;

	r = in_use_collect(plan->ctx, dev, 0, &u);
	if (r < 0)
		return r;
	if (iovk_in_use_get_n_reasons(u) > 0) {
		char *text;

		if (asprintf(&text, "would take a device the host uses: %s", iovk_in_use_get_text(u)) < 0)
			r = -ENOMEM;
		else
			block_or_force(plan, s, text);
	}
	iovk_in_use_free(u);
	return r;
}

static int plan_vf_drivers(struct iovk_plan *plan, struct pf_state *st)
{
	struct iovk_ctx *ctx = plan->ctx;
	const struct cfg_pf *c = st->cfg;
	int r;

	for (size_t i = 0; i < c->n_vfs; i++) {
		const struct cfg_vf *v = &c->vfs[i];
		const char *want, *now = NULL;
		struct iovk_device *vf = NULL;
		struct step *s;

		if (!v->driver)
			continue;
		want = strcmp(v->driver, CFG_DRIVER_NONE) == 0 ? NULL : v->driver;
		if (st->changes_numvfs) {
			/* With autoprobe off the new VFs come without a driver. */
			if (!want && st->autoprobe_after == 0)
				continue;
		} else {
			vf = iovk_sriov_pf_get_vf(st->sp, v->index);
			if (!vf)
				return entry_fail(ctx, -EAGAIN, c->file, v->path,
						  "%s: VF %u is not in sysfs yet (virtfn%u is missing)", st->label, v->index,
						  v->index);
			now = iovk_device_get_driver(vf);
			if (streq_null(now, want))
				continue;
		}
		s = step_add(plan, IOVK_PLAN_BIND, st, c->file, ".driver", v->path);
		if (!s)
			return -ENOMEM;
		s->cvf = v;
		s->pub.vf = (int)v->index;
		s->pub.driver_to = want;
		s->creator = st->numvfs_step;
		if (vf && (set_str(&s->device, iovk_device_get_address(vf)) < 0 || set_str(&s->driver_from, now) < 0))
			return -ENOMEM;
		if (vf && now) {
			r = block_if_in_use(plan, s, vf);
			if (r < 0)
				return r;
		}
		r = describe(s, st);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The driver step of one device that entry d names or selects. */
static int plan_device_at(struct iovk_plan *plan, const struct cfg_device *d, struct iovk_device *dev)
{
	const char *want = strcmp(d->driver, CFG_DRIVER_NONE) == 0 ? NULL : d->driver;
	const char *now = iovk_device_get_driver(dev);
	struct step *s;
	int r = -ENOMEM;

	if (streq_null(now, want))
		return 0;
	s = step_add(plan, IOVK_PLAN_BIND, NULL, d->file, ".driver", d->path);
	if (s) {
		s->cdev = d;
		s->pub.driver_to = want;
		if (set_str(&s->device, iovk_device_get_address(dev)) >= 0 && set_str(&s->driver_from, now) >= 0)
			r = now ? block_if_in_use(plan, s, dev) : 0;
		if (r >= 0)
			r = describe(s, NULL);
	}
	return r;
}

static int plan_device(struct iovk_plan *plan, const struct cfg_device *d, const struct pf_state *states, size_t n)
{
	struct iovk_ctx *ctx = plan->ctx;
	_cleanup_free_ char *kp = join(d->path, ".device");
	struct iovk_device *dev = NULL;
	const char *physfn;
	int r;

	if (!kp)
		return -ENOMEM;
	r = iovk_device_new(ctx, d->address, &dev);
	if (r < 0)
		return entry_error(ctx, r, d->file, kp);
	physfn = iovk_device_get_physfn(dev);
	for (size_t i = 0; i < n; i++) {
		const char *where = states[i].cfg->file;

		if (!states[i].address)
			continue;
		if (strcmp(states[i].address, d->address) == 0)
			r = entry_fail(ctx, -EINVAL, d->file, kp, "%s is the PF of %s: %s: one or the other", d->address,
				       where, states[i].cfg->path);
		else if (physfn && strcmp(physfn, states[i].address) == 0)
			r = entry_fail(ctx, -EINVAL, d->file, kp,
				       "%s is a VF of %s, which %s: %s declares: give the VF's driver there "
				       "(\"vfs\": [{\"vf\": N, \"driver\": ...}])", d->address, states[i].label, where,
				       states[i].cfg->path);
		if (r < 0) {
			iovk_device_unref(dev);
			return r;
		}
	}
	r = plan_device_at(plan, d, dev);
	iovk_device_unref(dev);
	return r;
}

/*
 * The devices that selector entries match, among those present now (a VF
 * that a numvfs step creates is met by the udev rule when it appears, see
 * iovctl overrides apply). A device two selectors match is an error: which
 * driver wins must not depend on the order of files.
 */
static int plan_selected_devices(struct iovk_plan *plan, const struct iovk_config *c)
{
	struct iovk_ctx *ctx = plan->ctx;
	struct iovk_device **all = NULL;
	size_t n_all = 0;
	int r = 0;

	for (size_t i = 0; i < c->n_devices && !all; i++)
		if (!c->devices[i].address) {
			r = iovk_device_enumerate(ctx, &all, &n_all);
			if (r < 0)
				return r;
		}
	for (size_t k = 0; k < n_all && r >= 0; k++) {
		const struct cfg_device *chosen = NULL;

		for (size_t i = 0; i < c->n_devices; i++) {
			const struct cfg_device *d = &c->devices[i];

			if (d->address || !cfg_device_selects(d, all[k]))
				continue;
			if (chosen) {
				r = entry_fail(ctx, -EINVAL, d->file, d->path,
					       "%s is matched by \"%s\" here and by \"%s\" (%s: %s): one entry per device",
					       iovk_device_get_address(all[k]), d->match, chosen->match, chosen->file,
					       chosen->path);
				break;
			}
			chosen = d;
		}
		if (r >= 0 && chosen) {
			r = cfg_device_free_for_selectors(ctx, c, all[k]);
			if (r > 0)
				r = plan_device_at(plan, chosen, all[k]);
		}
	}
	iovk_device_list_free(all);
	return r;
}

_public_ int iovk_plan_new(struct iovk_ctx *ctx, const struct iovk_config *config, unsigned flags,
			   struct iovk_plan **ret_plan)
{
	struct iovk_sriov_pf **all = NULL;
	struct pf_state *states = NULL;
	struct iovk_plan *plan;
	size_t n;
	int r;

	assert_return(ctx && config && ret_plan, -EINVAL);
	n = config->n_pfs;
	clear_error(ctx);
	if (flags & ~(unsigned)IOVK_PLAN_FORCE)
		return set_error(ctx, -EINVAL, "unknown plan flags 0x%x", flags);
	plan = calloc(1, sizeof(*plan));
	states = calloc(n ? n : 1, sizeof(*states));
	if (!plan || !states) {
		free(plan);
		free(states);
		return -ENOMEM;
	}
	plan->n_ref = 1;
	plan->ctx = iovk_ctx_ref(ctx);
	/* The steps point into it (file names, paths, settings). */
	plan->config = iovk_config_ref((struct iovk_config *)config);
	plan->flags = flags;

	for (size_t i = 0; i < n; i++) {
		states[i].cfg = &config->pfs[i];
		r = resolve_pf(plan, &states[i], &all);
		if (r < 0)
			goto fail;
		/* Two names of one PF (its address and its interface). */
		for (size_t k = 0; k < i; k++)
			if (states[i].address ? streq_null(states[k].address, states[i].address)
					      : !states[k].address && strcmp(states[k].cfg->name, states[i].cfg->name) == 0) {
				_cleanup_free_ char *kp = join(states[i].cfg->path, ".pf");
				char other[PATH_MAX + 64];

				if (strcmp(states[k].cfg->file, states[i].cfg->file) == 0)
					snprintf(other, sizeof(other), "%s", states[k].cfg->path);
				else
					snprintf(other, sizeof(other), "%s: %s", states[k].cfg->file, states[k].cfg->path);
				r = entry_fail(ctx, -EINVAL, states[i].cfg->file, kp ?: states[i].cfg->path,
					       "the PF %s is declared twice (%s too, as %s)",
					       states[i].address ?: states[i].cfg->name, other, states[k].cfg->name);
				goto fail;
			}
		r = check_pf(plan, &states[i]);
		if (r < 0)
			goto fail;
	}
	for (size_t i = 0; i < n; i++)
		if ((r = plan_autoprobe(plan, &states[i])) < 0)
			goto fail;
	for (size_t i = 0; i < n; i++)
		if ((r = plan_numvfs(plan, &states[i])) < 0)
			goto fail;
	for (size_t i = 0; i < n; i++)
		if ((r = plan_vf_settings(plan, &states[i])) < 0)
			goto fail;
	for (size_t i = 0; i < n; i++)
		if ((r = plan_vf_drivers(plan, &states[i])) < 0)
			goto fail;
	for (size_t i = 0; i < config->n_devices; i++)
		if (config->devices[i].address && (r = plan_device(plan, &config->devices[i], states, n)) < 0)
			goto fail;
	if ((r = plan_selected_devices(plan, config)) < 0)
		goto fail;
	steps_publish(plan);
	for (size_t i = 0; i < n; i++)
		pf_state_done(&states[i]);
	free(states);
	iovk_sriov_pf_list_free(all);
	*ret_plan = plan;
	return 0;
fail:
	for (size_t i = 0; i < n; i++)
		pf_state_done(&states[i]);
	free(states);
	iovk_sriov_pf_list_free(all);
	iovk_plan_unref(plan);
	return r;
}

/* ---- applying --------------------------------------------------------------------- */

/* The address of a VF that an earlier step created. */
static int resolve_vf(struct iovk_plan *plan, struct step *s)
{
	struct iovk_sriov_pf *pf = NULL;
	struct iovk_device *vf;
	int r;

	if (s->device || !s->pf_address)
		return 0;
	r = iovk_sriov_pf_new(plan->ctx, s->pf_address, &pf);
	if (r < 0)
		return r;
	vf = s->pub.vf >= 0 ? iovk_sriov_pf_get_vf(pf, (unsigned)s->pub.vf) : NULL;
	if (!vf)
		r = set_error(plan->ctx, -ENODEV, "%s: VF %d does not exist (the PF has %zu VFs in sysfs)",
			      s->pf_address, s->pub.vf, iovk_sriov_pf_get_n_vfs(pf));
	else
		r = set_str(&s->device, iovk_device_get_address(vf));
	iovk_sriov_pf_unref(pf);
	return r;
}

static int apply_step(struct iovk_plan *plan, struct step *s)
{
	/* Blocked steps never get here unforced (iovk_plan_apply()); the
	 * bind's own check is the same rule, read again. */
	unsigned force = step_forced(plan, s) ? IOVK_BIND_FORCE : 0;
	struct iovk_ctx *ctx = plan->ctx;
	struct iovk_bind_result br = IOVK_BIND_RESULT_INIT;
	struct iovk_vf_set_result vr = IOVK_VF_SET_RESULT_INIT;
	int r;

	switch (s->pub.action) {
	case IOVK_PLAN_AUTOPROBE:
		r = iovk_sriov_set_drivers_autoprobe(ctx, s->pf_address, s->pub.to);
		s->pub.changed = r > 0;
		return r;
	case IOVK_PLAN_NUMVFS:
		r = iovk_sriov_set_numvfs(ctx, s->pf_address, (unsigned)s->pub.to,
					  step_forced(plan, s) ? IOVK_SRIOV_FORCE : 0, 0);
		s->pub.changed = r > 0;
		return r;
	case IOVK_PLAN_VF_SETTINGS:
		/* Only to name the VF in the report; iovk_vf_set() finds it itself. */
		if (resolve_vf(plan, s) < 0)
			clear_error(ctx);
		/* The whole entry: iovk_vf_set() writes what differs now. */
		r = iovk_vf_set(ctx, s->cpf->name, s->cvf->index, &s->cvf->settings, &vr);
		s->pub.changed = r > 0;
		s->pub.vf_unverified = vr.unverified;
		return r;
	case IOVK_PLAN_BIND:
		r = resolve_vf(plan, s);
		if (r < 0)
			return r;
		if (s->pub.driver_to)
			r = iovk_device_bind(ctx, s->device, s->pub.driver_to, force, &br);
		else
			r = iovk_device_unbind(ctx, s->device, force, &br);
		s->pub.changed = br.changed;
		if (s->creator && br.previous_driver[0] && set_str(&s->driver_from, br.previous_driver) < 0)
			return -ENOMEM;
		return r;
	}
	return set_error(ctx, -EINVAL, "unknown plan step %d", (int)s->pub.action);
}

_public_ int iovk_plan_apply(struct iovk_plan *plan)
{
	struct iovk_ctx *ctx;
	int blocked, r = 0;

	assert_return(plan, -EINVAL);
	ctx = plan->ctx;
	clear_error(ctx);
	if (plan->applied)
		return set_error(ctx, -EALREADY, "this plan was applied before: compute a new one");
	blocked = iovk_plan_get_first_blocked(plan);
	if (blocked >= 0) {
		const struct step *s = &plan->steps[blocked];

		return set_error(ctx, -EBUSY, "%s: %s: step %d refused, nothing applied: %s", s->pub.file, s->path,
				 blocked + 1, s->blocked);
	}
	plan->applied = true;
	for (size_t i = 0; i < plan->n_steps; i++) {
		struct step *s = &plan->steps[i];

		r = apply_step(plan, s);
		if (r < 0) {
			char msg[sizeof(ctx->error)];

			snprintf(msg, sizeof(msg), "%s", ctx->error[0] ? ctx->error : strerror(-r));
			s->pub.status = IOVK_PLAN_FAILED;
			s->pub.error = r;
			if (set_str(&s->error_message, msg) < 0) {
				steps_publish(plan);
				return -ENOMEM;
			}
			steps_publish(plan);
			return set_error(ctx, r, "%s: %s: %s", s->pub.file, s->path, msg);
		}
		s->pub.status = IOVK_PLAN_APPLIED;
		plan->n_applied++;
		steps_publish(plan);
	}
	return (int)plan->n_applied;
}
