// SPDX-License-Identifier: GPL-2.0-or-later
/* Points a library context at one of the fixture hosts that
 * tests/fixtures/mkfixtures.py generates (see tests/fixtures/README.md). */
#pragma once

#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <iovkit/iovkit.h>

static inline const char *fixture_dir(void)
{
	const char *d = getenv("IOVKIT_TEST_FIXTURES");

	cr_assert(d && *d, "IOVKIT_TEST_FIXTURES is not set: run the tests through 'make check-unit'");
	return d;
}

/* A context on <fixtures>/<host>, with a private run directory. When
 * writable, the host tree is first copied so the test may write to it. */
static inline struct iovk_ctx *fixture_ctx_at(const char *root)
{
	struct iovk_ctx *ctx = NULL;
	char path[PATH_MAX], run[PATH_MAX];
	const char *ids = getenv("IOVKIT_TEST_PCI_IDS");

	cr_assert_eq(iovk_ctx_new(&ctx), 0);
	snprintf(path, sizeof(path), "%s/sys", root);
	cr_assert_eq(iovk_ctx_set_sysfs_root(ctx, path), 0);
	snprintf(path, sizeof(path), "%s/dev", root);
	cr_assert_eq(iovk_ctx_set_dev_root(ctx, path), 0);
	snprintf(path, sizeof(path), "%s/proc", root);
	cr_assert_eq(iovk_ctx_set_proc_root(ctx, path), 0);
	snprintf(run, sizeof(run), "%s/iovkit-test-run-XXXXXX", getenv("TMPDIR") ?: "/tmp");
	cr_assert_not_null(mkdtemp(run));
	cr_assert_eq(iovk_ctx_set_run_dir(ctx, run), 0);
	if (ids)
		cr_assert_eq(iovk_ctx_set_pci_ids(ctx, ids), 0);
	return ctx;
}

static inline struct iovk_ctx *fixture_ctx(const char *host)
{
	char root[PATH_MAX];

	snprintf(root, sizeof(root), "%s/%s", fixture_dir(), host);
	return fixture_ctx_at(root);
}

/* Copies a fixture host to a fresh directory; returns its path (static). */
static inline const char *fixture_copy(const char *host)
{
	static char dst[PATH_MAX];
	char cmd[PATH_MAX * 2 + 32];

	snprintf(dst, sizeof(dst), "%s/iovkit-test-host-XXXXXX", getenv("TMPDIR") ?: "/tmp");
	cr_assert_not_null(mkdtemp(dst));
	snprintf(cmd, sizeof(cmd), "cp -a '%s/%s/.' '%s/'", fixture_dir(), host, dst);
	cr_assert_eq(system(cmd), 0);
	return dst;
}

static inline char *slurp(const char *root, const char *rel)
{
	char path[PATH_MAX];
	static char buf[4096];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s%s", root, rel);
	f = fopen(path, "re");
	cr_assert_not_null(f, "cannot open %s", path);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/* Editing a fixture copy: a file's contents, a directory, a symlink (root-relative). */
static inline void fixture_write(const char *root, const char *rel, const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s%s", root, rel);
	f = fopen(path, "we");
	cr_assert_not_null(f, "cannot create %s", path);
	fputs(text, f);
	cr_assert_eq(fclose(f), 0);
}

static inline void fixture_mkdir(const char *root, const char *rel)
{
	char cmd[PATH_MAX + 32];

	snprintf(cmd, sizeof(cmd), "mkdir -p '%s%s'", root, rel);
	cr_assert_eq(system(cmd), 0);
}

static inline void fixture_symlink(const char *root, const char *target, const char *rel)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s%s", root, rel);
	cr_assert_eq(symlink(target, path), 0, "symlink %s: %s", path, strerror(errno));
}
