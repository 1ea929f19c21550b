/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * An IOMMU group bound to one driver as a single transaction. Above the
 * device binding of lib/core/bind.c (it uses its internals through
 * lib/core/bind-internal.h), so lib/core never reaches up into lib/iommu.
 */
#include <stdio.h>
#include <string.h>

#include "../internal.h"
#include "../core/bind-internal.h"

/* All or nothing needs every refusal up front: one line naming every
 * endpoint that would leave a driver the host uses. */
static int group_refuse_in_use(struct iovk_ctx *ctx, struct iovk_iommu_group *g, const char *driver, unsigned flags)
{
	_cleanup_free_ char *text = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);
	bool any = false;
	int r = 0;

	if (!f)
		return -ENOMEM;
	for (size_t i = 0; i < iovk_iommu_group_get_n_devices(g) && r >= 0; i++) {
		struct iovk_device *d = iovk_iommu_group_get_devices(g)[i];
		struct iovk_in_use *u = NULL;
		const char *drv = iovk_device_get_driver(d);

		if (iovk_device_is_bridge(d) || (drv && strcmp(drv, driver) == 0))
			continue;
		r = in_use_collect(ctx, d, 0, &u);
		if (r >= 0 && iovk_in_use_get_n_reasons(u) > 0) {
			fprintf(f, "%s%s", any ? "; " : "", iovk_in_use_get_text(u));
			any = true;
		}
		iovk_in_use_free(u);
	}
	if (fclose(f) != 0 && r >= 0)
		r = -ENOMEM;
	if (r < 0 || !any)
		return r;
	if (flags & IOVK_BIND_FORCE) {
		log_warn(ctx, "IOMMU group %d in use by the host (forced): %s", iovk_iommu_group_get_number(g), text);
		return 0;
	}
	return set_error(ctx, -EBUSY, "IOMMU group %d: in use by the host: %s; force to take it anyway",
			 iovk_iommu_group_get_number(g), text);
}

_public_ int iovk_iommu_group_bind(struct iovk_ctx *ctx, int group, const char *driver, unsigned flags,
				   size_t *ret_n_changed)
{
	_cleanup_close_ int lock = -1;
	struct iovk_iommu_group *g = NULL;
	struct dev_state *before = NULL;
	size_t n, moved = 0, changed = 0;
	int r;

	assert_return(ctx, -EINVAL);
	clear_error(ctx);
	r = bind_check_args(ctx, flags, driver);
	if (r < 0)
		return r;
	r = run_lock(ctx, &lock);
	if (r < 0)
		return r;
	r = iovk_iommu_group_new(ctx, group, &g);
	if (r < 0)
		return r;
	r = group_refuse_in_use(ctx, g, driver, flags);
	if (r < 0) {
		iovk_iommu_group_unref(g);
		return r;
	}
	n = iovk_iommu_group_get_n_devices(g);
	before = calloc(n ? n : 1, sizeof(*before));
	if (!before) {
		iovk_iommu_group_unref(g);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		struct iovk_device *d = iovk_iommu_group_get_devices(g)[i];
		struct iovk_bind_result res = IOVK_BIND_RESULT_INIT;

		/* Ports stay on pcieport: VFIO accepts them there, and taking
		 * them away would break hotplug and AER below them. */
		if (iovk_device_is_bridge(d))
			continue;
		r = bind_read_state(ctx, iovk_device_get_address(d), &before[moved]);
		if (r < 0)
			goto fail;
		r = bind_locked(ctx, &before[moved], driver, flags, &res);
		if (r < 0)
			goto fail;
		/* Keep the device on the undo list even when unchanged: its
		 * override may have been pinned. */
		moved++;
		if (res.changed)
			changed++;
	}
	free(before);
	iovk_iommu_group_unref(g);
	if (ret_n_changed)
		*ret_n_changed = changed;
	return 0;

fail: {
	char reason[sizeof(ctx->error)];
	bool undo_ok = true;

	snprintf(reason, sizeof(reason), "%s", ctx->error);
	while (moved-- > 0)
		if (bind_put_back(ctx, &before[moved]) < 0)
			undo_ok = false;
	set_error(ctx, r, "IOMMU group %d: %s; %s", group, reason,
		  undo_ok ? "the devices already moved were put back" : "putting the devices back failed");
	free(before);
	iovk_iommu_group_unref(g);
	return r;
}
}
