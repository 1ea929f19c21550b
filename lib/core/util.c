/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include "../internal.h"

/* One vsnprintf and one malloc: iovctl list builds a path for each device,
 * and vasprintf then asprintf cost ~3,000 instructions each time (callgrind,
 * bench/list-bench's 1,041 functions). */
char *root_path(const char *root, const char *fmt, ...)
{
	size_t root_len = strlen(root);
	char rel[256], *out;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(rel, sizeof(rel), fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	out = malloc(root_len + (size_t)n + 1);
	if (!out)
		return NULL;
	memcpy(out, root, root_len);
	if ((size_t)n < sizeof(rel))
		memcpy(out + root_len, rel, (size_t)n + 1);
	else {
		va_start(ap, fmt);
		vsnprintf(out + root_len, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	return out;
}

/* sysfs attributes are at most a page; larger files are not attributes. */
#define ATTR_MAX 65536

int read_text(const char *path, char **ret)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, size = 4096;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	buf = malloc(size + 1);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = read(fd, buf + len, size - len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negative_errno();
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == size) {
			char *nbuf;

			if (size >= ATTR_MAX)
				return -EFBIG;
			size *= 2;
			nbuf = realloc(buf, size + 1);
			if (!nbuf)
				return -ENOMEM;
			buf = nbuf;
		}
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	buf[len] = '\0';
	*ret = TAKE_PTR(buf);
	return 0;
}

int read_int(const char *path, long long *ret)
{
	_cleanup_free_ char *s = NULL;
	char *end;
	long long v;
	int r;

	r = read_text(path, &s);
	if (r < 0)
		return r;
	errno = 0;
	v = strtoll(s, &end, 0);
	if (errno != 0 || end == s || *end != '\0')
		return -EBADMSG;
	*ret = v;
	return 0;
}

int write_text(const char *path, const char *value)
{
	_cleanup_close_ int fd = -1;
	size_t len = strlen(value);
	ssize_t n;

	/* O_TRUNC is ignored by sysfs and keeps fixture files honest. No
	 * O_CREAT: a missing attribute is an error, not a file to make. */
	fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	if (fd < 0)
		return negative_errno();
	do
		n = write(fd, value, len);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return negative_errno();
	if ((size_t)n != len)
		return -EIO;
	return 0;
}

int read_link_name(const char *path, char *buf, size_t size)
{
	return read_link_name_at(AT_FDCWD, path, buf, size);
}

int read_link_name_at(int dfd, const char *path, char *buf, size_t size)
{
	char target[PATH_MAX];
	const char *base;
	ssize_t n;

	n = readlinkat(dfd, path, target, sizeof(target) - 1);
	if (n < 0)
		return negative_errno();
	target[n] = '\0';
	base = strrchr(target, '/');
	base = base ? base + 1 : target;
	if (strlen(base) >= size)
		return -ENAMETOOLONG;
	strcpy(buf, base);
	return 0;
}

bool path_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

bool ifname_valid(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len >= IFNAMSIZ || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (const char *p = s; *p; p++)
		if (*p == '/' || *p == ':' || isspace((unsigned char)*p))
			return false;
	return true;
}

int lock_file(struct iovk_ctx *ctx, const char *dir, const char *name, int *ret_fd)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;
	struct timespec start, now;
	int r;

	r = mkdir_p(dir, 0755);
	if (r < 0)
		return set_error(ctx, r, "creating %s: %s", dir, strerror(-r));
	if (asprintf(&path, "%s/%s", dir, name) < 0)
		return -ENOMEM;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0) {
		r = negative_errno();
		return set_error(ctx, r, "opening lock file %s: %s", path, strerror(-r));
	}
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		long long ms;

		if (errno != EWOULDBLOCK && errno != EINTR) {
			r = negative_errno();
			return set_error(ctx, r, "locking %s: %s", path, strerror(-r));
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		ms = (now.tv_sec - start.tv_sec) * 1000LL + (now.tv_nsec - start.tv_nsec) / 1000000;
		if (ms >= ctx->timeout_ms)
			return set_error(ctx, -ETIMEDOUT,
					 "another iovkit process held %s for longer than %u ms", path,
					 ctx->timeout_ms);
		nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000 * 1000 }, NULL);
	}
	*ret_fd = TAKE_FD(fd);
	return 0;
}

int run_lock(struct iovk_ctx *ctx, int *ret_fd)
{
	return lock_file(ctx, iovk_ctx_get_run_dir(ctx), "lock", ret_fd);
}

int opts_valid(struct iovk_ctx *ctx, const void *opts, size_t sz, size_t min_sz, size_t known_sz, const char *name,
	       const char *init)
{
	if (sz < min_sz) {
		if (ctx)
			set_error(ctx, -EINVAL, "struct %s: sz %zu is too small, at least %zu (initialise it with %s)",
				  name, sz, min_sz, init);
		return -EINVAL;
	}
	for (size_t i = known_sz; i < sz; i++)
		if (((const uint8_t *)opts)[i] != 0) {
			if (ctx)
				set_error(ctx, -EINVAL, "struct %s: the caller sets members this libiovkit does not "
					  "know (sz %zu, this library knows %zu bytes)", name, sz, known_sz);
			return -EINVAL;
		}
	return 0;
}

int result_valid(struct iovk_ctx *ctx, const void *result, size_t min_sz, const char *name)
{
	size_t sz;

	if (!result)
		return 0;
	memcpy(&sz, result, sizeof(sz));
	if (sz >= min_sz)
		return 0;
	if (ctx)
		set_error(ctx, -EINVAL, "struct %s: sz %zu is too small, at least %zu (initialise it with its _INIT macro)",
			  name, sz, min_sz);
	return -EINVAL;
}

void result_store(void *dst, const void *src, size_t known_sz)
{
	size_t sz;

	if (!dst)
		return;
	memcpy(&sz, dst, sizeof(sz));
	if (sz > known_sz)
		sz = known_sz;
	if (sz > sizeof(size_t))
		memcpy((char *)dst + sizeof(size_t), (const char *)src + sizeof(size_t), sz - sizeof(size_t));
}
