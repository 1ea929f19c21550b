// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * iovd's D-Bus API without a bus daemon: iovd's manager serves one end of a
 * socketpair (in a child process, on its own sd-event loop), the test calls
 * it through the other end, as a direct peer. The caller's credentials are
 * then the socket's SO_PEERCRED. tests/daemon/ runs the same API end to end
 * on a private dbus-daemon.
 */
#include <grp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <systemd/sd-bus.h>

#include "fixture.h"
#include "daemon/iovd.h"

struct peer {
	pid_t pid;
	sd_bus *bus;
	char state[PATH_MAX];
	char root[PATH_MAX];
};

/* The child: iovd's start-up sequence (main.c) on one end of the pair. */
_Noreturn static void serve(int fd, const char *root, const char *state, const char *config, bool no_bind)
{
	struct manager *m = NULL;
	char path[PATH_MAX], run[PATH_MAX];
	sd_id128_t id;
	sd_bus *bus = NULL;
	int r;

	log_max_priority = LOG_WARNING;
	r = manager_new(&m);
	if (r >= 0)
		r = iovk_ctx_new(&m->ctx);
	if (r < 0)
		_exit(10);
	m->no_bind = no_bind;
	snprintf(path, sizeof(path), "%s/sys", root);
	iovk_ctx_set_sysfs_root(m->ctx, path);
	snprintf(path, sizeof(path), "%s/dev", root);
	iovk_ctx_set_dev_root(m->ctx, path);
	snprintf(run, sizeof(run), "%s/run", state);
	iovk_ctx_set_run_dir(m->ctx, run);
	if (config_load(config, &m->config) < 0)
		_exit(11);
	for (size_t i = 0; i < m->config.n_pools; i++)
		if (pool_scan(m->ctx, &m->config.pools[i]) < 0)
			_exit(12);
	if (state_open(m, state) < 0 || state_load(m) < 0 || commit_init(m) < 0 || manager_reconcile(m) < 0 ||
	    markers_rebuild(m) < 0)
		_exit(13);
	if (sd_bus_new(&bus) < 0 || sd_bus_set_fd(bus, fd, fd) < 0 || sd_id128_randomize(&id) < 0 ||
	    sd_bus_set_server(bus, 1, id) < 0 || sd_bus_start(bus) < 0 || manager_attach_bus(m, bus) < 0)
		_exit(14);
	r = sd_event_loop(m->event);
	commit_flush(m);
	manager_free(m);
	_exit(r < 0 ? 15 : 0);
}

static struct peer *start(const char *extra_config, bool no_bind)
{
	static struct peer p;
	char config[PATH_MAX];
	struct group *g = getgrgid(getgid());
	int sv[2];
	FILE *f;

	snprintf(p.root, sizeof(p.root), "%s", fixture_copy("sriov-nic"));
	snprintf(p.state, sizeof(p.state), "%s/iovd-state-XXXXXX", getenv("TMPDIR") ?: "/tmp");
	cr_assert_not_null(mkdtemp(p.state));
	snprintf(config, sizeof(config), "%s/iovd.json", p.state);
	f = fopen(config, "we");
	cr_assert_not_null(f);
	/* our own primary group: allowed whether the tests run as root or not */
	fprintf(f, "{ \"group\": \"%s\", %s \"pools\": [ { \"name\": \"p0\", \"pfs\": [\"enp1s0f0\"] } ] }\n",
		g->gr_name, extra_config ?: "");
	fclose(f);
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	p.pid = fork();
	cr_assert_geq(p.pid, 0);
	if (p.pid == 0) {
		close(sv[0]);
		serve(sv[1], p.root, p.state, config, no_bind);
	}
	close(sv[1]);
	p.bus = NULL;
	cr_assert_geq(sd_bus_new(&p.bus), 0);
	cr_assert_geq(sd_bus_set_fd(p.bus, sv[0], sv[0]), 0);
	cr_assert_geq(sd_bus_start(p.bus), 0);
	return &p;
}

static void stop(struct peer *p)
{
	int status;

	p->bus = sd_bus_flush_close_unref(p->bus);
	cr_assert_eq(waitpid(p->pid, &status, 0), p->pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "iovd's side exited with status 0x%x", status);
}

/* Calls Allocate; returns 0 and the path and address, or the negative errno with *error set. */
static int allocate(struct peer *p, const char *owner, const char *opt_key, char type, const void *opt_value,
		    sd_bus_error *error, char **ret_path, char **ret_address)
{
	sd_bus_message *m = NULL, *reply = NULL;
	const char *path, *address, *node;
	int32_t group;
	int r;

	cr_assert_geq(sd_bus_message_new_method_call(p->bus, &m, NULL, IOVD_PATH, IOVD_MANAGER_IFACE, "Allocate"), 0);
	cr_assert_geq(sd_bus_message_append(m, "ss", "p0", owner), 0);
	cr_assert_geq(sd_bus_message_open_container(m, 'a', "{sv}"), 0);
	if (opt_key) {
		char sig[2] = { type, 0 };

		cr_assert_geq(sd_bus_message_open_container(m, 'e', "sv"), 0);
		cr_assert_geq(sd_bus_message_append_basic(m, 's', opt_key), 0);
		cr_assert_geq(sd_bus_message_open_container(m, 'v', sig), 0);
		cr_assert_geq(sd_bus_message_append_basic(m, type, opt_value), 0);
		cr_assert_geq(sd_bus_message_close_container(m), 0);
		cr_assert_geq(sd_bus_message_close_container(m), 0);
	}
	cr_assert_geq(sd_bus_message_close_container(m), 0);
	r = sd_bus_call(p->bus, m, 0, error, &reply);
	sd_bus_message_unref(m);
	if (r < 0)
		return r;
	cr_assert_geq(sd_bus_message_read(reply, "osis", &path, &address, &group, &node), 0);
	if (ret_path)
		*ret_path = strdup(path);
	if (ret_address)
		*ret_address = strdup(address);
	sd_bus_message_unref(reply);
	return 0;
}

static void assert_error(const sd_bus_error *e, const char *name, const char *text)
{
	cr_assert(sd_bus_error_has_name(e, name), "got %s (%s), wanted %s", e->name, e->message, name);
	cr_assert(strstr(e->message, text), "'%s' not in: %s", text, e->message);
}

Test(iovd, allocate_release_over_a_socketpair)
{
	struct peer *p = start(NULL, true);
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	char *path1, *vf1, *path2, *vf2, *owner = NULL;
	uint32_t n;

	cr_assert_eq(allocate(p, "vm-1", NULL, 0, NULL, &e, &path1, &vf1), 0, "%s", e.message);
	cr_assert_str_eq(path1, "/org/iovkit/iovd1/allocation/1");
	cr_assert_str_eq(vf1, "0000:01:10.0");
	cr_assert_eq(allocate(p, "vm-2", NULL, 0, NULL, &e, &path2, &vf2), 0, "%s", e.message);
	cr_assert_str_eq(vf2, "0000:01:10.2");
	cr_assert_lt(allocate(p, "vm-3", NULL, 0, NULL, &e, NULL, NULL), 0);
	assert_error(&e, IOVD_ERR_POOL_EXHAUSTED, "pool p0 has no free VF for vm-3");
	sd_bus_error_free(&e);

	cr_assert_geq(sd_bus_get_property_string(p->bus, NULL, path2, IOVD_ALLOC_IFACE, "Owner", &e, &owner), 0);
	cr_assert_str_eq(owner, "vm-2");
	cr_assert_geq(sd_bus_call_method(p->bus, NULL, IOVD_PATH, IOVD_MANAGER_IFACE, "Release", &e, NULL, "o", path1),
		      0);
	cr_assert_lt(sd_bus_call_method(p->bus, NULL, IOVD_PATH, IOVD_MANAGER_IFACE, "Release", &e, NULL, "o", path1),
		     0);
	assert_error(&e, IOVD_ERR_NOT_FOUND, "no allocation /org/iovkit/iovd1/allocation/1");
	sd_bus_error_free(&e);
	cr_assert_geq(sd_bus_call_method(p->bus, NULL, IOVD_PATH, IOVD_MANAGER_IFACE, "ReleaseOwner", &e, &reply, "s",
					 "vm-2"),
		      0);
	cr_assert_geq(sd_bus_message_read(reply, "u", &n), 0);
	cr_assert_eq(n, 1);
	sd_bus_message_unref(reply);
	stop(p);
	/* the state file holds no allocation and the next id */
	cr_assert(strstr(slurp(p->state, "/allocations.json"), "\"next_id\":3,\"allocations\":[]"), "%s",
		  slurp(p->state, "/allocations.json"));
	free(path1), free(vf1), free(path2), free(vf2), free(owner);
}

Test(iovd, options_are_checked)
{
	struct peer *p = start(NULL, true);
	sd_bus_error e = SD_BUS_ERROR_NULL;
	int32_t numa = 0;
	const char *s = "52:54:00:00:00:01";

	cr_assert_lt(allocate(p, "vm-1", "colour", 's', "blue", &e, NULL, NULL), 0);
	assert_error(&e, IOVD_ERR_INVALID, "unknown option 'colour'");
	sd_bus_error_free(&e);
	cr_assert_lt(allocate(p, "vm-1", "driver", 'i', &numa, &e, NULL, NULL), 0);
	assert_error(&e, IOVD_ERR_INVALID, "option driver must hold type 's', not 'i'");
	sd_bus_error_free(&e);
	cr_assert_lt(allocate(p, "vm-1", "mac", 's', s, &e, NULL, NULL), 0);
	assert_error(&e, IOVD_ERR_NOT_SUPPORTED, "netlink");
	sd_bus_error_free(&e);
	cr_assert_lt(allocate(p, "bad owner", NULL, 0, NULL, &e, NULL, NULL), 0);
	assert_error(&e, IOVD_ERR_INVALID, "owner 'bad owner'");
	sd_bus_error_free(&e);
	cr_assert_eq(allocate(p, "vm-1", "numa", 'i', &numa, &e, NULL, NULL), 0, "%s", e.message);
	stop(p);
}

Test(iovd, failed_bind_allocates_nothing)
{
	/* binding on: 0000:01:10.0 is on ixgbevf, and no fixture ever probes */
	struct peer *p = start("\"limits\": { \"per_owner\": 1 },", false);
	sd_bus_error e = SD_BUS_ERROR_NULL;
	const char *vf = "0000:01:10.2";
	char *vf2 = NULL;

	cr_assert_lt(allocate(p, "vm-1", NULL, 0, NULL, &e, NULL, NULL), 0);
	assert_error(&e, IOVD_ERR_FAILED, "Failed to bind VF 0000:01:10.0 of pool p0 for vm-1 to vfio-pci");
	cr_assert(strstr(e.message, "ixgbevf restored"), "%s", e.message);
	sd_bus_error_free(&e);
	/* the VF already on vfio-pci: nothing to bind */
	cr_assert_eq(allocate(p, "vm-1", "address", 's', vf, &e, NULL, &vf2), 0, "%s", e.message);
	cr_assert_str_eq(vf2, vf);
	cr_assert_lt(allocate(p, "vm-1", NULL, 0, NULL, &e, NULL, NULL), 0);
	assert_error(&e, IOVD_ERR_LIMIT, "owner vm-1 holds 1 allocations");
	sd_bus_error_free(&e);
	stop(p);
	cr_assert(strstr(slurp(p->state, "/allocations.json"), "\"address\":\"0000:01:10.2\""), "%s",
		  slurp(p->state, "/allocations.json"));
	cr_assert_null(strstr(slurp(p->state, "/allocations.json"), "0000:01:10.0"));
	free(vf2);
}
