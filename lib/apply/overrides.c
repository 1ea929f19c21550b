/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Persisted driver overrides: the drivers a configuration (iovkit.json(5))
 * gives VFs and devices, as the system shows them now. What driverctl keeps
 * one file per device for (/etc/driverctl.d/pci-ADDRESS), iovkit keeps in
 * the configuration, where a VF is named by its PF and index and a devices[]
 * entry may be a selector; so which override a device that just appeared
 * has is a question to the configuration, asked here.
 *
 * driverctl's lesson: the override is applied when the device appears (its
 * udev rule, on "add"), not once at boot, so hotplugged devices and VFs
 * created at any time get it too (contrib/udev/, iovctl overrides apply).
 * The question for one device must be cheap, because udev asks it for every
 * PCI function at coldplug: it reads that device, its PF and the PFs the
 * configuration names, never the whole bus.
 */
#include <fnmatch.h>
#include <string.h>

#include "config-internal.h"

bool cfg_device_selects(const struct cfg_device *d, struct iovk_device *dev)
{
	uint32_t cls = iovk_device_get_class(dev);

	/* Bridges and ports (0x0604, 0x0609) are never selected: vfio-pci refuses
	 * any device whose header is not type 0, and unbinding pcieport takes
	 * hotplug and AER away. */
	if (iovk_device_is_bridge(dev))
		return false;
	if (d->glob && fnmatch(d->glob, iovk_device_get_address(dev), 0) != 0)
		return false;
	if (d->vendor >= 0 && d->vendor != iovk_device_get_vendor_id(dev))
		return false;
	if (d->device_id >= 0 && d->device_id != iovk_device_get_device_id(dev))
		return false;
	if (d->class_code >= 0 && (uint32_t)d->class_code != cls >> 8)
		return false;
	return true;
}

/* The PCI address of the PF entry's PF into buf; 0 when it is not there (an
 * interface that does not exist now, or that is not a PCI function). */
static int pf_entry_address(struct iovk_ctx *ctx, const struct cfg_pf *pf, char buf[static IOVK_PCI_ADDR_MAX])
{
	int r;

	if (pf->by_address) {
		snprintf(buf, IOVK_PCI_ADDR_MAX, "%s", pf->name);
		return 1;
	}
	r = iovk_device_resolve_name(ctx, pf->name, buf);
	if (r == -ENODEV || r == -EINVAL) {
		clear_error(ctx);
		return 0;
	}
	return r < 0 ? r : 1;
}

/* The VF entry of pf with index and a driver, or NULL. */
static const struct cfg_vf *vf_entry(const struct cfg_pf *pf, unsigned index)
{
	for (size_t i = 0; i < pf->n_vfs; i++)
		if (pf->vfs[i].index == index && pf->vfs[i].driver)
			return &pf->vfs[i];
	return NULL;
}

/* The PF entry whose PF is address, or NULL (*ret_r: a negative errno of resolving). */
static const struct cfg_pf *pf_entry_of(struct iovk_ctx *ctx, const struct iovk_config *c, const char *address,
					int *ret_r)
{
	char buf[IOVK_PCI_ADDR_MAX];

	*ret_r = 0;
	if (!address)
		return NULL;
	for (size_t i = 0; i < c->n_pfs; i++) {
		int r = pf_entry_address(ctx, &c->pfs[i], buf);

		if (r < 0) {
			*ret_r = r;
			return NULL;
		}
		if (r > 0 && strcmp(buf, address) == 0)
			return &c->pfs[i];
	}
	return NULL;
}

int cfg_device_free_for_selectors(struct iovk_ctx *ctx, const struct iovk_config *c, struct iovk_device *dev)
{
	const char *address = iovk_device_get_address(dev);
	const struct cfg_pf *pf;
	int r, index;

	if (pf_entry_of(ctx, c, address, &r) || r < 0)
		return r;
	pf = pf_entry_of(ctx, c, iovk_device_get_physfn(dev), &r);
	if (r < 0)
		return r;
	if (pf) {
		index = iovk_device_get_vf_index(dev);
		if (index < 0)
			return index;
		if (vf_entry(pf, (unsigned)index))
			return 0;
	}
	for (size_t i = 0; i < c->n_devices; i++)
		if (c->devices[i].address && strcmp(c->devices[i].address, address) == 0)
			return 0;
	return 1;
}

/* ---- the list --------------------------------------------------------------- */

struct override {
	struct iovk_override pub;
	char *pf, *device, *current_driver;
};

struct iovk_overrides {
	int n_ref;
	struct iovk_config *config;
	struct override *items;
	size_t n, alloc;
};

static void overrides_free(struct iovk_overrides *o)
{
	for (size_t i = 0; i < o->n; i++) {
		free(o->items[i].pf);
		free(o->items[i].device);
		free(o->items[i].current_driver);
	}
	free(o->items);
	iovk_config_unref(o->config);
	free(o);
}

DEFINE_PUBLIC_REF_UNREF(struct iovk_overrides, iovk_overrides, overrides_free);

_public_ size_t iovk_overrides_get_n(const struct iovk_overrides *overrides)
{
	return overrides->n;
}

_public_ const struct iovk_override *iovk_overrides_get(const struct iovk_overrides *overrides, size_t i)
{
	return i < overrides->n ? &overrides->items[i].pub : NULL;
}

static int dup_or_null(char **dst, const char *src)
{
	*dst = NULL;
	if (src && !(*dst = strdup(src)))
		return -ENOMEM;
	return 0;
}

/*
 * Appends a row: the entry (file, path, match, driver asked, force), the PF
 * and VF index for a VF entry, and the device when present (dev, or the
 * address of one to read the driver of).
 */
static int add_row(struct iovk_ctx *ctx, struct iovk_overrides *o, const char *file, const char *path,
		   const char *match, const char *driver, bool force, const char *pf, int vf, const char *device)
{
	struct override *it;
	char drv[128] = "";
	int r;

	if (device) {
		r = iovk_device_read_driver(ctx, device, drv, sizeof(drv));
		if (r == -ENODEV) {
			clear_error(ctx);
			device = NULL;
		} else if (r < 0)
			return r;
	}
	if (o->n == o->alloc) {
		size_t na = o->alloc ? o->alloc * 2 : 8;
		struct override *ni = realloc(o->items, na * sizeof(*ni));

		if (!ni)
			return -ENOMEM;
		o->items = ni;
		o->alloc = na;
	}
	it = &o->items[o->n];
	*it = (struct override){ 0 };
	if (dup_or_null(&it->pf, pf) < 0 || dup_or_null(&it->device, device) < 0 ||
	    dup_or_null(&it->current_driver, device && drv[0] ? drv : NULL) < 0) {
		free(it->pf);
		free(it->device);
		return -ENOMEM;
	}
	o->n++;
	/* "none" asks for no driver: NULL, as every driver member of the library. */
	if (strcmp(driver, CFG_DRIVER_NONE) == 0)
		driver = NULL;
	it->pub = (struct iovk_override){
		.file = file,
		.path = path,
		.match = match,
		.pf = it->pf,
		.vf = vf,
		.device = it->device,
		.driver = driver,
		.current_driver = it->current_driver,
		.in_effect = it->device && (driver ? it->current_driver && strcmp(driver, it->current_driver) == 0
						   : !it->current_driver),
		.force = force,
	};
	return 0;
}

/* The VF entries of every PF entry, with the VF each names now. */
static int list_vfs(struct iovk_ctx *ctx, struct iovk_overrides *o, const struct iovk_config *c)
{
	for (size_t i = 0; i < c->n_pfs; i++) {
		const struct cfg_pf *pf = &c->pfs[i];
		struct iovk_device *pfdev = NULL;
		char pfa[IOVK_PCI_ADDR_MAX];
		const char *const *vfs = NULL;
		size_t n_vfs = 0;
		bool have_pfa;
		int r;

		r = pf_entry_address(ctx, pf, pfa);
		if (r < 0)
			return r;
		have_pfa = r > 0;
		if (have_pfa) {
			r = iovk_device_new(ctx, pfa, &pfdev);
			if (r == -ENODEV) {
				/* no such PF (yet): its VFs' rows say so, with no device */
				clear_error(ctx);
				r = 0;
			} else if (r < 0)
				return r;
			else
				for (vfs = iovk_device_get_vfs(pfdev); vfs[n_vfs]; n_vfs++)
					;
		}
		for (size_t k = 0; k < pf->n_vfs && r >= 0; k++) {
			const struct cfg_vf *v = &pf->vfs[k];
			const char *vfa = NULL;

			/* by virtfn index, not position: a missing link closes the list up */
			for (size_t j = 0; j < n_vfs && !vfa; j++)
				if (device_vf_index_at(pfdev, j) == v->index)
					vfa = vfs[j];
			if (v->driver)
				r = add_row(ctx, o, pf->file, v->path, NULL, v->driver, pf->force, have_pfa ? pfa : NULL,
					    (int)v->index, vfa);
		}
		iovk_device_unref(pfdev);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The selector entry that matches dev, NULL when none; -EINVAL naming both when two do. */
static int selector_of(struct iovk_ctx *ctx, const struct iovk_config *c, struct iovk_device *dev,
		       const struct cfg_device **ret)
{
	const struct cfg_device *chosen = NULL;
	int r;

	for (size_t i = 0; i < c->n_devices; i++) {
		const struct cfg_device *d = &c->devices[i];

		if (d->address || !cfg_device_selects(d, dev))
			continue;
		if (chosen)
			return set_error(ctx, -EINVAL, "%s: %s: %s is matched by \"%s\" here and by \"%s\" (%s: %s): "
					 "one entry per device", d->file, d->path, iovk_device_get_address(dev), d->match,
					 chosen->match, chosen->file, chosen->path);
		chosen = d;
	}
	*ret = NULL;
	if (!chosen)
		return 0;
	r = cfg_device_free_for_selectors(ctx, c, dev);
	if (r > 0)
		*ret = chosen;
	return r < 0 ? r : 0;
}

static int list_all(struct iovk_ctx *ctx, struct iovk_overrides *o, const struct iovk_config *c)
{
	struct iovk_device **all = NULL;
	size_t n_all = 0;
	bool selectors = false;
	int r;

	r = list_vfs(ctx, o, c);
	for (size_t i = 0; i < c->n_devices && r >= 0; i++) {
		const struct cfg_device *d = &c->devices[i];

		if (d->address)
			r = add_row(ctx, o, d->file, d->path, NULL, d->driver, d->force, NULL, -1, d->address);
		else
			selectors = true;
	}
	if (r < 0 || !selectors)
		return r;
	r = iovk_device_enumerate(ctx, &all, &n_all);
	if (r < 0)
		return r;
	/* Entry by entry, so that the list reads in the configuration's order. */
	for (size_t i = 0; i < c->n_devices && r >= 0; i++) {
		const struct cfg_device *d = &c->devices[i];
		bool matched = false;

		if (d->address)
			continue;
		for (size_t k = 0; k < n_all && r >= 0; k++) {
			const struct cfg_device *chosen;

			if (!cfg_device_selects(d, all[k]))
				continue;
			r = selector_of(ctx, c, all[k], &chosen);
			if (r >= 0 && chosen == d) {
				matched = true;
				r = add_row(ctx, o, d->file, d->path, d->match, d->driver, d->force, NULL, -1,
					    iovk_device_get_address(all[k]));
			}
		}
		if (r >= 0 && !matched)
			r = add_row(ctx, o, d->file, d->path, d->match, d->driver, d->force, NULL, -1, NULL);
	}
	iovk_device_list_free(all);
	return r;
}

/* The one override of the device at address, if the configuration has one. */
static int list_one(struct iovk_ctx *ctx, struct iovk_overrides *o, const struct iovk_config *c,
		    const char *address)
{
	const struct cfg_device *chosen;
	struct iovk_device *dev = NULL;
	const struct cfg_pf *pf;
	int r;

	r = iovk_device_new(ctx, address, &dev);
	if (r < 0)
		return r;
	pf = pf_entry_of(ctx, c, iovk_device_get_physfn(dev), &r);
	if (r >= 0 && pf) {
		int index = iovk_device_get_vf_index(dev);
		const struct cfg_vf *v = index >= 0 ? vf_entry(pf, (unsigned)index) : NULL;

		r = index < 0 ? index : 0;
		if (v) {
			r = add_row(ctx, o, pf->file, v->path, NULL, v->driver, pf->force, iovk_device_get_physfn(dev),
				    index, iovk_device_get_address(dev));
			goto out;
		}
	}
	for (size_t i = 0; i < c->n_devices && r >= 0; i++) {
		const struct cfg_device *d = &c->devices[i];

		if (d->address && strcmp(d->address, iovk_device_get_address(dev)) == 0) {
			r = add_row(ctx, o, d->file, d->path, NULL, d->driver, d->force, NULL, -1, d->address);
			goto out;
		}
	}
	if (r >= 0)
		r = selector_of(ctx, c, dev, &chosen);
	if (r >= 0 && chosen)
		r = add_row(ctx, o, chosen->file, chosen->path, chosen->match, chosen->driver, chosen->force, NULL, -1,
			    iovk_device_get_address(dev));
out:
	iovk_device_unref(dev);
	return r;
}

_public_ int iovk_overrides_new(struct iovk_ctx *ctx, const struct iovk_config *config, const char *address,
				struct iovk_overrides **ret_overrides)
{
	struct iovk_overrides *o;
	int r;

	assert_return(ctx && config && ret_overrides, -EINVAL);
	clear_error(ctx);
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	o->n_ref = 1;
	/* The rows point into it (files, paths, selectors, drivers). */
	o->config = iovk_config_ref((struct iovk_config *)config);
	r = address ? list_one(ctx, o, config, address) : list_all(ctx, o, config);
	if (r < 0) {
		iovk_overrides_unref(o);
		return r;
	}
	*ret_overrides = o;
	return 0;
}
