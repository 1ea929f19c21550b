/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* NULL-terminated string vectors (systemd's strv). Nothing here is public ABI. */
#pragma once

#include <stddef.h>

#include "common/macro.h"

/* Appends a copy of s to *strv, which holds *n strings; 0 or -ENOMEM (*strv as it was). */
int strv_push(char ***strv, size_t *n, const char *s);
/* Frees each string and the vector; NULL is fine. */
void strv_free(char **strv);
static inline void strv_freep(char ***p)
{
	strv_free(*p);
}
#define _cleanup_strv_free_ _cleanup_(strv_freep)
