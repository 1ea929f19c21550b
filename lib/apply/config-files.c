/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Adding iovkit.json(5) files to a configuration: regular files only (a
 * FIFO would hang the reader), a directory's *.json in name order, all or
 * nothing.
 */
#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "config-internal.h"

static int add_text(struct iovk_config *c, const char *name, const char *text, size_t len)
{
	_cleanup_json_ struct json_object *root = NULL;
	struct parse p = { .ctx = c->ctx, .file = name };
	char *file = NULL, **files;
	struct cfg_pf *pfs;
	struct cfg_device *devices;
	int r;

	if (c->n_files >= IOVK_CONFIG_FILES_MAX)
		return set_error(c->ctx, -E2BIG, "%s: more than %u files", name, IOVK_CONFIG_FILES_MAX);
	r = parse_text(c->ctx, name, text, len, &root);
	if (r < 0)
		return r;
	file = strdup(name);
	if (!file)
		return -ENOMEM;
	p.file = file;
	r = parse_document(&p, root, c);
	if (r < 0)
		goto fail;

	r = -ENOMEM;
	files = realloc(c->files, (c->n_files + 1) * sizeof(*files));
	if (!files)
		goto fail;
	c->files = files;
	pfs = realloc(c->pfs, (c->n_pfs + p.n_pfs + 1) * sizeof(*pfs));
	if (!pfs)
		goto fail;
	c->pfs = pfs;
	devices = realloc(c->devices, (c->n_devices + p.n_devices + 1) * sizeof(*devices));
	if (!devices)
		goto fail;
	c->devices = devices;
	c->files[c->n_files++] = file;
	memcpy(c->pfs + c->n_pfs, p.pfs, p.n_pfs * sizeof(*p.pfs));
	c->n_pfs += p.n_pfs;
	memcpy(c->devices + c->n_devices, p.devices, p.n_devices * sizeof(*p.devices));
	c->n_devices += p.n_devices;
	free(p.pfs);
	free(p.devices);
	return 0;
fail:
	parse_done(&p);
	free(file);
	return r;
}

_public_ int iovk_config_add_string(struct iovk_config *config, const char *name, const char *text)
{
	assert_return(config && name && text, -EINVAL);

	clear_error(config->ctx);
	if (!name || !text)
		return set_error(config->ctx, -EINVAL, "no name or no text given");
	if (strlen(text) > IOVK_CONFIG_FILE_MAX)
		return set_error(config->ctx, -EFBIG, "%s: larger than %d bytes", name, IOVK_CONFIG_FILE_MAX);
	return add_text(config, name, text, strlen(text));
}

static const char *file_type_words(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFIFO:
		return "a FIFO";
	case S_IFSOCK:
		return "a socket";
	case S_IFCHR:
		return "a character device";
	case S_IFBLK:
		return "a block device";
	case S_IFDIR:
		return "a directory";
	}
	return "not a regular file";
}

/* -EISDIR for a directory, -EINVAL for anything else that is not a regular file. */
static int refuse_not_regular(struct iovk_ctx *ctx, const char *path, mode_t mode)
{
	if (S_ISDIR(mode))
		return set_error(ctx, -EISDIR, "%s: is a directory", path);
	return set_error(ctx, -EINVAL, "%s: not a regular file (%s)", path, file_type_words(mode));
}

/*
 * Only regular files are read. Opening is not harmless for the rest: a FIFO
 * blocks open() and read() until a writer comes (iovctl apply hung on one),
 * a device may act on open. So the type is checked before opening, and
 * again on the descriptor (opened non-blocking), for a file replaced between
 * the two.
 */
static int read_file(struct iovk_ctx *ctx, const char *path, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	struct stat st;
	int r;

	if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
		return refuse_not_regular(ctx, path, st.st_mode);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0 || fstat(fd, &st) < 0) {
		r = negative_errno();
		return set_error(ctx, r, "%s: cannot read it: %s", path, strerror(-r));
	}
	if (!S_ISREG(st.st_mode))
		return refuse_not_regular(ctx, path, st.st_mode);
	/* One byte more than the limit tells a file that grew past it. */
	buf = malloc(IOVK_CONFIG_FILE_MAX + 2);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = read(fd, buf + len, IOVK_CONFIG_FILE_MAX + 1 - len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = negative_errno();
			return set_error(ctx, r, "%s: reading it: %s", path, strerror(-r));
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > IOVK_CONFIG_FILE_MAX)
			return set_error(ctx, -EFBIG, "%s: larger than %d bytes", path, IOVK_CONFIG_FILE_MAX);
	}
	buf[len] = '\0';
	*ret = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

_public_ int iovk_config_add_file(struct iovk_config *config, const char *path)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r;

	assert_return(config && path, -EINVAL);
	clear_error(config->ctx);
	if (!path || !*path)
		return set_error(config->ctx, -EINVAL, "no file name given");
	r = read_file(config->ctx, path, &text, &len);
	if (r < 0)
		return r;
	return add_text(config, path, text, len);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

_public_ int iovk_config_add_directory(struct iovk_config *config, const char *path)
{
	_cleanup_closedir_ DIR *dir = NULL;
	_cleanup_strv_free_ char **names = NULL;
	size_t n = 0, n_files, n_pfs, n_devices;
	struct dirent *de;
	int r;

	assert_return(config && path, -EINVAL);
	n_files = config->n_files, n_pfs = config->n_pfs, n_devices = config->n_devices;
	clear_error(config->ctx);
	dir = opendir(path);
	if (!dir) {
		r = negative_errno();
		return set_error(config->ctx, r, "%s: cannot read the directory: %s", path, strerror(-r));
	}
	while ((de = readdir(dir))) {
		_cleanup_free_ char *full = NULL;
		size_t len = strlen(de->d_name);

		if (de->d_name[0] == '.' || len <= 5 || strcmp(de->d_name + len - 5, ".json") != 0)
			continue;
		if (asprintf(&full, "%s%s%s", path, path[strlen(path) - 1] == '/' ? "" : "/", de->d_name) < 0)
			return -ENOMEM;
		/*
		 * Symlinks are followed, as in systemd's *.d directories. Every
		 * other *.json that is not a regular file (a FIFO, socket, device,
		 * directory, dangling link) fails the whole directory in
		 * iovk_config_add_file(), in name order: a file meant to be applied
		 * at boot that is skipped without a word would be worse.
		 */
		if (n >= IOVK_CONFIG_FILES_MAX)
			return set_error(config->ctx, -E2BIG, "%s: more than %u *.json files", path,
					 IOVK_CONFIG_FILES_MAX);
		r = strv_push(&names, &n, full);
		if (r < 0)
			return r;
	}
	if (n == 0)
		return 0;
	qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; i < n; i++) {
		r = iovk_config_add_file(config, names[i]);
		if (r < 0) {
			char msg[sizeof(config->ctx->error)];

			/* All or nothing: the files before go too. */
			snprintf(msg, sizeof(msg), "%s", iovk_ctx_get_error(config->ctx));
			config_truncate(config, n_files, n_pfs, n_devices);
			set_error(config->ctx, r, "%s", msg);
			return r;
		}
	}
	return (int)n;
}
