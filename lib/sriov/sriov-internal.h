/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private to lib/sriov/: what sriov.c shares with config.c. */
#pragma once

#include "../internal.h"

/*
 * The VFs of pf that are in use, by the rule iovk_sriov_set_numvfs() refuses
 * to remove them by (bound to vfio-pci or a vfio variant driver, or allocated
 * by iovd), written into buf as "0000:01:10.2 (vfio-pci), ..." (truncated
 * to size). Returns how many, or -errno.
 */
int sriov_vfs_in_use(struct iovk_ctx *ctx, const struct iovk_sriov_pf *pf, char *buf, size_t size);

/*
 * The value of sriov_drivers_autoprobe that IOVK_SRIOV_NO_AUTOPROBE recorded
 * for the PF at address (canonical), which n = 0 writes back. Returns 1 with
 * it, 0 when there is no record, or -errno (error text set).
 */
int autoprobe_record_read(struct iovk_ctx *ctx, const char *address, int *ret_value);
