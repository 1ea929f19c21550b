/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Clocks in microseconds (systemd's now()). Nothing here is public ABI. */
#pragma once

#include <stdint.h>
#include <time.h>

#define USEC_PER_SEC 1000000ULL
#define USEC_PER_MSEC 1000ULL

/* clock_gettime() of clock in µs; CLOCK_REALTIME for what is stored, CLOCK_MONOTONIC for intervals. */
uint64_t now_usec(clockid_t clock);
