/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Private to lib/: the device-binding steps of lib/core/bind.c that the
 * group binding (lib/iommu/group-bind.c) composes into one transaction.
 * The caller holds the run lock (run_lock()) around all of them.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "../internal.h"

#define DRIVER_MAX 64

/* A device's binding as read before a change: what putting it back needs. */
struct dev_state {
	char address[IOVK_PCI_ADDR_MAX];
	uint16_t vendor_id, device_id;
	bool has_override; /* driver_override exists (kernel >= 3.16) */
	char driver[DRIVER_MAX];   /* "" = none */
	char override[DRIVER_MAX]; /* "" = unset */
	bool recorded; /* this call wrote the previous-driver record */
};

/* -EINVAL for flags other than IOVK_BIND_*, or a name iovk_driver_name_is_valid() refuses. */
int bind_check_flags(struct iovk_ctx *ctx, unsigned flags);
int bind_check_driver_name(struct iovk_ctx *ctx, const char *driver);
/* Both, flags first: what a bind to driver checks before it reads anything. */
int bind_check_args(struct iovk_ctx *ctx, unsigned flags, const char *driver);
/* Reads the device's binding; -EINVAL malformed address, -ENODEV no such device. */
int bind_read_state(struct iovk_ctx *ctx, const char *address, struct dev_state *ret);
/*
 * iovk_device_bind() under the lock: the host-use rule (unless
 * IOVK_BIND_FORCE), the module, the record, the move; a failed move is
 * rolled back. before->recorded tells whether this call wrote the record.
 */
int bind_locked(struct iovk_ctx *ctx, struct dev_state *before, const char *driver, unsigned flags,
		struct iovk_bind_result *res);
/* Puts the device back as before says (driver, override) and drops the
 * record this change wrote; 0 or the first -errno. */
int bind_put_back(struct iovk_ctx *ctx, const struct dev_state *before);
