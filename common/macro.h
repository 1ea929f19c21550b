/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Small macros shared by the library, iovctl and iovd (kmod keeps the same
 * kind of folder). Nothing here is public ABI.
 */
#pragma once

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>
#include <stdio.h>
#include <dirent.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _public_ __attribute__((visibility("default")))
#define _likely_(x) __builtin_expect(!!(x), 1)
#define _unlikely_(x) __builtin_expect(!!(x), 0)

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
/* The end of a member: how big a sized struct must be to hold it. */
#define offsetofend(type, member) (offsetof(type, member) + sizeof(((type *)0)->member))

static inline void freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

static inline void closedirp(DIR **d)
{
	if (*d)
		closedir(*d);
}
#define _cleanup_closedir_ _cleanup_(closedirp)

/* Hands ownership of a pointer to the caller: `*ret = TAKE_PTR(p);`. */
#define TAKE_PTR(p)                          \
	({                                   \
		__typeof__(p) _tp_ = (p);    \
		(p) = NULL;                  \
		_tp_;                        \
	})

#define TAKE_FD(fd)                  \
	({                           \
		int _tf_ = (fd);     \
		(fd) = -1;           \
		_tf_;                \
	})

static inline const char *strna(const char *s)
{
	return s ? s : "n/a";
}

static inline int negative_errno(void)
{
	/* errno is never 0 after a failed libc call, but guard anyway so a
	 * caller that checks `r < 0` cannot be told "success". */
	return errno > 0 ? -errno : -EIO;
}
