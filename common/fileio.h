/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Files and directories, for the library and the programs alike. Nothing
 * here takes the library's context: each returns 0 or a negative errno and
 * the caller words the error. Nothing here is public ABI.
 */
#pragma once

#include <sys/types.h>

/* mkdir -p: path and each missing parent, with mode; an existing one is fine. 0 or -errno. */
int mkdir_p(const char *path, mode_t mode);

/*
 * Replaces path with content durably: temporary file beside it, fsync,
 * rename, fsync of the directory (created when missing). 0 or -errno.
 */
int write_file_atomic(const char *path, const char *content);
