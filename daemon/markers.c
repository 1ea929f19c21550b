/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Markers: <run dir>/iovd-allocated/<VF address> exists while the VF is
 * allocated, so libiovkit (and so `iovctl sriov set`) can refuse to remove
 * a VF that iovd handed out without talking D-Bus. Allocate writes it before
 * it changes anything on the VF, a failed Allocate and a committed release
 * remove it. They live on /run, are not fsynced and are rebuilt from the
 * state file at every start. A device allocation has one for each endpoint
 * of its group.
 *
 * <run dir>/iovd-releasing/<id> says that the Release of a device
 * allocation is under way (devpool.c): from before its group is put back
 * until the release is committed. On /run too: a reboot clears it along
 * with the bindings and passthrough records it is about.
 */
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "common/fileio.h"
#include "iovd.h"

static void marker_set_one(struct manager *m, const struct allocation *a, const char *address, bool present)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_close_ int fd = -1;

	/* a name in the directory opened at start: open and unlink by the
	 * full path were a tenth of iovd's perf samples in the allocate+release
	 * bench (bench/iovd-bench), each walking the path from / */
	if (m->marker_dir_fd < 0)
		return;
	if (!present) {
		if (unlinkat(m->marker_dir_fd, address, 0) < 0 && errno != ENOENT)
			log_warning("Failed to remove %s/%s: %m", m->marker_dir, address);
		return;
	}
	if (asprintf(&text, "%s\n%s\n", a->owner, a->path) < 0)
		return;
	/*
	 * A marker that says so already stays as it is: at every start each
	 * marker is written again (markers_rebuild()), and truncating a file
	 * that holds data makes ext4 write it back at close (auto_da_alloc),
	 * which made that rewrite most of the start-up time on a disk.
	 */
	fd = openat(m->marker_dir_fd, address, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0) {
		char buf[2 * IOVD_NAME_MAX + 64];
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n == (ssize_t)strlen(text) && memcmp(buf, text, (size_t)n) == 0)
			return;
		closep(&fd);
	}
	fd = openat(m->marker_dir_fd, address, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		log_warning("Failed to write %s/%s: %m", m->marker_dir, address);
}

void marker_set(struct manager *m, const struct allocation *a, bool present)
{
	marker_set_one(m, a, a->address, present);
	for (char **d = a->devices; d && *d; d++)
		if (strcmp(*d, a->address) != 0)
			marker_set_one(m, a, *d, present);
	if (!present && a->devices)
		(void)release_intent_set(m, a, false);
}

static char *intent_path(struct manager *m, uint64_t id)
{
	char *s;

	return asprintf(&s, "%s/iovd-releasing/%" PRIu64, iovk_ctx_get_run_dir(m->ctx), id) < 0 ? NULL : s;
}

int release_intent_set(struct manager *m, const struct allocation *a, bool present)
{
	_cleanup_free_ char *p = intent_path(m, a->id), *dir = NULL;
	int r;

	if (!p)
		return -ENOMEM;
	if (!present)
		return unlink(p) < 0 && errno != ENOENT ? negative_errno() : 0;
	dir = strndup(p, (size_t)(strrchr(p, '/') - p));
	if (!dir)
		return -ENOMEM;
	r = mkdir_p(dir, 0755);
	if (r >= 0)
		r = write_file_atomic(p, a->owner);
	if (r < 0)
		log_error("Failed to write %s: %s", p, strerror(-r));
	return r;
}

bool release_intent_exists(struct manager *m, uint64_t id)
{
	_cleanup_free_ char *p = intent_path(m, id);

	return p && access(p, F_OK) == 0;
}

int run_records_foreach(struct manager *m, const char *subdir,
			void (*fn)(struct manager *m, const char *dir, int dir_fd, const char *name, uint64_t id,
				   bool known))
{
	_cleanup_free_ char *dir = NULL;
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;

	if (asprintf(&dir, "%s/%s", iovk_ctx_get_run_dir(m->ctx), subdir) < 0)
		return -ENOMEM;
	d = opendir(dir);
	if (!d && errno != ENOENT)
		log_warning("Failed to open %s: %m; its records are not gone through", dir);
	while (d && (de = readdir(d))) {
		size_t n = strlen(de->d_name);
		char *end;
		uint64_t id;
		size_t k;

		if (de->d_name[0] == '.')
			continue;
		/* write_file_atomic()'s temporary file of a write a crash cut: never a record */
		if (n > 4 && strcmp(de->d_name + n - 4, ".tmp") == 0) {
			if (unlinkat(dirfd(d), de->d_name, 0) < 0 && errno != ENOENT)
				log_warning("Failed to remove %s/%s: %m", dir, de->d_name);
			continue;
		}
		errno = 0;
		id = strtoull(de->d_name, &end, 10);
		if (errno || *end || end == de->d_name)
			id = 0;
		k = manager_find_id(m, id);
		fn(m, dir, dirfd(d), de->d_name, id, id && k < m->n_allocs && m->allocs[k]->id == id);
	}
	return 0;
}

int markers_rebuild(struct manager *m)
{
	const char *run = iovk_ctx_get_run_dir(m->ctx);
	_cleanup_closedir_ DIR *d = NULL;
	struct dirent *de;
	int r;

	if (asprintf(&m->marker_dir, "%s/iovd-allocated", run) < 0) {
		m->marker_dir = NULL;
		return -ENOMEM;
	}
	r = mkdir_p(m->marker_dir, 0755);
	if (r < 0) {
		log_warning("Failed to create %s: %s; iovctl will not see which VFs iovd allocated",
			    m->marker_dir, strerror(-r));
		free(m->marker_dir);
		m->marker_dir = NULL;
		return 0;
	}
	closep(&m->marker_dir_fd);
	m->marker_dir_fd = open(m->marker_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (m->marker_dir_fd < 0) {
		log_warning("Failed to open %s: %m; iovctl will not see which VFs iovd allocated", m->marker_dir);
		free(m->marker_dir);
		m->marker_dir = NULL;
		return 0;
	}
	/*
	 * Every marker first, then away with the stale ones: stopped halfway
	 * (SIGTERM), the markers are more than the allocations, never fewer,
	 * so no allocated VF looks free to libiovkit in between.
	 */
	for (size_t i = 0; i < m->n_allocs; i++) {
		if (i % 256 == 0 && manager_stop_requested())
			return -EINTR;
		marker_set(m, m->allocs[i], true);
	}
	d = opendir(m->marker_dir);
	if (!d)
		log_warning("Failed to open %s: %m; stale markers stay", m->marker_dir);
	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.' && !manager_find_by_address(m, de->d_name))
			unlinkat(dirfd(d), de->d_name, 0);
	return 0;
}
