/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * iovd's D-Bus names (iovd(8)): iovd serves them; iovctl, the benchmark
 * and the test clients call them. Spelled here only, so a rename cannot
 * leave a client calling a name nobody serves. Nothing here is public ABI.
 */
#pragma once

#define IOVD_BUS_NAME "org.iovkit.iovd1"
#define IOVD_PATH "/org/iovkit/iovd1"
/* An allocation's object is IOVD_ALLOC_PREFIX "/<id>", id decimal from 1. */
#define IOVD_ALLOC_PREFIX "/org/iovkit/iovd1/allocation"
#define IOVD_MANAGER_IFACE "org.iovkit.iovd1.Manager"
#define IOVD_ALLOC_IFACE "org.iovkit.iovd1.Allocation"

#define IOVD_ERR_POOL_EXHAUSTED "org.iovkit.iovd1.Error.PoolExhausted"
#define IOVD_ERR_LIMIT "org.iovkit.iovd1.Error.LimitExceeded"
#define IOVD_ERR_NOT_FOUND "org.iovkit.iovd1.Error.NotFound"
#define IOVD_ERR_IN_USE "org.iovkit.iovd1.Error.InUse"
#define IOVD_ERR_ACCESS_DENIED "org.iovkit.iovd1.Error.AccessDenied"
#define IOVD_ERR_INVALID "org.iovkit.iovd1.Error.InvalidArgument"
#define IOVD_ERR_NOT_SUPPORTED "org.iovkit.iovd1.Error.NotSupported"
#define IOVD_ERR_FAILED "org.iovkit.iovd1.Error.Failed"
