// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * iovd's D-Bus API without a bus daemon: iovd's manager serves one end of a
 * socketpair (in a child process, on its own sd-event loop), the test calls
 * it through the other end, as a direct peer. The caller's credentials are
 * then the socket's SO_PEERCRED. tests/daemon/ runs the same API end to end
 * on a private dbus-daemon.
 *
 * VF settings go through the PF's netdev over netlink, which no fixture can
 * answer: here iovd's vf_ops are a fake that keeps each VF's settings in a
 * file of the state directory (fake-vf/<VF>: "mac vlan qos spoofchk trust"),
 * refuses a field named in fake-vf/refuse, and finds a VF's index from the
 * fixture's virtfnN links as the kernel would. The real netlink path is
 * libiovkit's, tested in tests/unit/test-vf.c and tests/vm.
 */
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <systemd/sd-bus.h>

#include "fixture.h"
#include "common/strict-json.h"
#include "common/time-util.h"
#include "daemon/iovd.h"

struct peer {
	pid_t pid;
	sd_bus *bus;
	char state[PATH_MAX];
	char root[PATH_MAX];
	char config[PATH_MAX];
	char log[PATH_MAX]; /* iovd's side logs here when set, else to the test's stderr */
	bool no_bind;
	uid_t caller; /* the uid iovd sees calling (root: 0, the default) */
};

/* ---- the fake VF settings (in the child, iovd's side) ---------------------------- */

static char fake_dir[PATH_MAX];

static void fake_path(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/fake-vf/%s", fake_dir, name);
}

static void fake_load(const char *vf, struct iovk_vf_settings *c)
{
	char path[PATH_MAX];
	unsigned mac[6], vlan, qos, spoofchk, trust;
	FILE *f;

	*c = (struct iovk_vf_settings){ .fields = IOVD_VF_FIELDS, .spoofchk = true };
	fake_path(path, sizeof(path), vf);
	f = fopen(path, "re");
	if (!f)
		return;
	if (fscanf(f, "%x:%x:%x:%x:%x:%x %u %u %u %u", &mac[0], &mac[1], &mac[2], &mac[3], &mac[4], &mac[5], &vlan,
		   &qos, &spoofchk, &trust) == 10) {
		for (int i = 0; i < 6; i++)
			c->mac[i] = (uint8_t)mac[i];
		c->vlan = (uint16_t)vlan;
		c->qos = (uint8_t)qos;
		c->spoofchk = spoofchk;
		c->trust = trust;
	}
	fclose(f);
}

static int fake_index(struct manager *m, const char *pf, const char *vf, unsigned *ret)
{
	for (unsigned i = 0; i < 64; i++) {
		char link[PATH_MAX], target[PATH_MAX];
		ssize_t n;

		snprintf(link, sizeof(link), "%s/bus/pci/devices/%s/virtfn%u", iovk_ctx_get_sysfs_root(m->ctx), pf, i);
		n = readlink(link, target, sizeof(target) - 1);
		if (n < 0)
			continue;
		target[n] = '\0';
		if (strcmp(strrchr(target, '/') ? strrchr(target, '/') + 1 : target, vf) == 0) {
			*ret = i;
			return 0;
		}
	}
	return -ENOENT;
}

static int fake_read(struct manager *m, const char *pf, const char *vf, unsigned *ret_index, struct iovk_vf_settings *ret,
		     char *err, size_t size)
{
	if (fake_index(m, pf, vf, ret_index) < 0) {
		snprintf(err, size, "fake: PF %s has no VF %s", pf, vf);
		return -ENOENT;
	}
	fake_load(vf, ret);
	return 0;
}

static int fake_write(struct manager *m, const char *pf, unsigned index, const struct iovk_vf_settings *c, char *err,
		      size_t size)
{
	char path[PATH_MAX], refuse[32] = "", vf[PATH_MAX], link[PATH_MAX];
	struct iovk_vf_settings now;
	ssize_t n;
	FILE *f;

	snprintf(link, sizeof(link), "%s/bus/pci/devices/%s/virtfn%u", iovk_ctx_get_sysfs_root(m->ctx), pf, index);
	n = readlink(link, vf, sizeof(vf) - 1);
	if (n < 0) {
		snprintf(err, size, "fake: PF %s has no VF %u", pf, index);
		return -ERANGE;
	}
	vf[n] = '\0';
	memmove(vf, strrchr(vf, '/') + 1, strlen(strrchr(vf, '/')));
	fake_path(path, sizeof(path), "refuse");
	f = fopen(path, "re");
	if (f) {
		if (!fgets(refuse, sizeof(refuse), f))
			refuse[0] = '\0';
		refuse[strcspn(refuse, "\n")] = '\0';
		fclose(f);
	}
	fake_load(vf, &now);
	/* as iovk_vf_set(): only what differs is written, so only that is refused */
	for (unsigned bit = 1; bit <= IOVK_VF_TRUST; bit <<= 1) {
		struct iovk_vf_settings one = *c, cur = now;

		one.fields = cur.fields = bit;
		if ((c->fields & bit) && !vf_settings_equal(&one, &cur) && refuse[0] &&
		    strcmp(refuse, iovk_vf_field_name(bit)) == 0) {
			snprintf(err, size, "fake: the driver refuses %s", refuse);
			return -EOPNOTSUPP;
		}
	}
	if (c->fields & IOVK_VF_MAC)
		memcpy(now.mac, c->mac, 6);
	if (c->fields & IOVK_VF_VLAN) {
		now.vlan = c->vlan;
		now.qos = c->qos;
	}
	if (c->fields & IOVK_VF_SPOOFCHK)
		now.spoofchk = c->spoofchk;
	if (c->fields & IOVK_VF_TRUST)
		now.trust = c->trust;
	fake_path(path, sizeof(path), vf);
	f = fopen(path, "we");
	if (!f) {
		snprintf(err, size, "fake: %s: %m", path);
		return -errno;
	}
	fprintf(f, "%02x:%02x:%02x:%02x:%02x:%02x %u %u %u %u\n", now.mac[0], now.mac[1], now.mac[2], now.mac[3],
		now.mac[4], now.mac[5], now.vlan, now.qos, now.spoofchk, now.trust);
	fclose(f);
	return 0;
}

static const struct vf_ops fake_vf_ops = { .read = fake_read, .write = fake_write };

/* The test's side: the fake's settings of a VF, "mac vlan qos spoofchk trust". */
static const char *fake_settings(const char *state, const char *vf)
{
	static char buf[128];
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/fake-vf/%s", state, vf);
	f = fopen(path, "re");
	if (!f)
		return "00:00:00:00:00:00 0 0 1 0"; /* as the fake reads a VF never written */
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return buf;
}

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
	m->vf_ops = &fake_vf_ops;
	snprintf(fake_dir, sizeof(fake_dir), "%s", state);
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

/*
 * Starts iovd's side on p's host, state and configuration (again, after
 * stop()); the client's bus is not started yet: an iovd's side that must
 * refuse to start may have exited and closed its end already.
 */
static void close_fault_pipe_ends(void);

static void spawn(struct peer *p)
{
	int sv[2];

	/* A socketpair's SO_PEERCRED, on both ends, is the effective uid of
	 * its maker: made under p->caller (as root), it is that uid's connection. */
	if (p->caller != 0)
		cr_assert_eq(setresuid((uid_t)-1, p->caller, (uid_t)-1), 0, "%m");
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	if (p->caller != 0)
		cr_assert_eq(setresuid((uid_t)-1, 0, (uid_t)-1), 0, "%m");
	p->pid = fork();
	cr_assert_geq(p->pid, 0);
	if (p->pid == 0) {
		close(sv[0]);
		/* the test's ends of the fault pipes (declared below): a test
		 * that died leaves a held fdatasync the hang-up, not 60 s */
		close_fault_pipe_ends();
		if (p->log[0]) {
			int fd = open(p->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

			if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
				_exit(9);
		}
		serve(sv[1], p->root, p->state, p->config, p->no_bind);
	}
	close(sv[1]);
	p->bus = NULL;
	cr_assert_geq(sd_bus_new(&p->bus), 0);
	cr_assert_geq(sd_bus_set_fd(p->bus, sv[0], sv[0]), 0);
}

/* spawn(), and the client's bus started. */
static void restart(struct peer *p)
{
	spawn(p);
	cr_assert_geq(sd_bus_start(p->bus), 0);
}

/* Starts iovd with pool p0 on enp1s0f0, pool_extra added to its JSON object. */
static struct peer *start_pool(const char *extra_config, const char *pool_extra, bool no_bind)
{
	static struct peer p;
	struct group *g = getgrgid(getgid());
	char dir[PATH_MAX];
	FILE *f;

	snprintf(p.root, sizeof(p.root), "%s", fixture_copy("sriov-nic"));
	snprintf(p.state, sizeof(p.state), "%s/iovd-state-XXXXXX", getenv("TMPDIR") ?: "/tmp");
	cr_assert_not_null(mkdtemp(p.state));
	snprintf(dir, sizeof(dir), "%s/fake-vf", p.state);
	cr_assert_eq(mkdir(dir, 0755), 0);
	snprintf(p.config, sizeof(p.config), "%s/iovd.json", p.state);
	f = fopen(p.config, "we");
	cr_assert_not_null(f);
	/* our own primary group: allowed whether the tests run as root or not */
	fprintf(f, "{ \"group\": \"%s\", %s \"pools\": [ { \"name\": \"p0\", \"pfs\": [\"enp1s0f0\"]%s } ] }\n",
		g->gr_name, extra_config ?: "", pool_extra ?: "");
	fclose(f);
	p.no_bind = no_bind;
	p.caller = 0;
	restart(&p);
	return &p;
}

static struct peer *start(const char *extra_config, bool no_bind)
{
	return start_pool(extra_config, NULL, no_bind);
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

/* Calls Allocate with options given as sd_bus_message_append() arguments of "a{sv}": n, key, type, value, ... */
static int allocate_with(struct peer *p, const char *owner, sd_bus_error *error, char **ret_path, char **ret_address,
			 ...)
{
	sd_bus_message *m = NULL, *reply = NULL;
	const char *path, *address, *node;
	int32_t group;
	va_list ap;
	int r;

	cr_assert_geq(sd_bus_message_new_method_call(p->bus, &m, NULL, IOVD_PATH, IOVD_MANAGER_IFACE, "Allocate"), 0);
	cr_assert_geq(sd_bus_message_append(m, "ss", "p0", owner), 0);
	va_start(ap, ret_address);
	r = sd_bus_message_appendv(m, "a{sv}", ap);
	va_end(ap);
	cr_assert_geq(r, 0);
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

/*
 * A failure with the kernel's errno: its name is sd-bus's for that errno
 * (System.Error.EBUSY), which a client's sd_bus_error_get_errno() turns back
 * into the errno.
 */
static void assert_errno_error(const sd_bus_error *e, int err, const char *text)
{
	char name[64];

	snprintf(name, sizeof(name), "System.Error.%s", strerrorname_np(err));
	assert_error(e, name, text);
	cr_assert_eq(sd_bus_error_get_errno(e), err, "%s: errno %d, wanted %d", e->name, sd_bus_error_get_errno(e), err);
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
	cr_assert_lt(allocate(p, "vm-1", "mac", 's', "01:00:5e:00:00:01", &e, NULL, NULL), 0);
	assert_error(&e, IOVD_ERR_INVALID, "option mac: '01:00:5e:00:00:01' is not a unicast MAC address");
	sd_bus_error_free(&e);
	cr_assert_lt(allocate_with(p, "vm-1", &e, NULL, NULL, 1, "vlan", "q", 4096), 0);
	assert_error(&e, IOVD_ERR_INVALID, "option vlan must be 0 to 4095, not 4096");
	sd_bus_error_free(&e);
	cr_assert_lt(allocate_with(p, "vm-1", &e, NULL, NULL, 1, "vlan", "s", "100"), 0);
	assert_error(&e, IOVD_ERR_INVALID, "option vlan must hold an integer, not 's'");
	sd_bus_error_free(&e);
	cr_assert_lt(allocate_with(p, "vm-1", &e, NULL, NULL, 1, "qos", "y", 3), 0);
	assert_error(&e, IOVD_ERR_INVALID, "option qos needs option vlan");
	sd_bus_error_free(&e);
	cr_assert_lt(allocate_with(p, "vm-1", &e, NULL, NULL, 2, "vlan", "i", 10, "qos", "u", 8), 0);
	assert_error(&e, IOVD_ERR_INVALID, "option qos must be 0 to 7, not 8");
	sd_bus_error_free(&e);
	cr_assert_lt(allocate_with(p, "vm-1", &e, NULL, NULL, 1, "trust", "s", "yes"), 0);
	assert_error(&e, IOVD_ERR_INVALID, "option trust must hold type 'b', not 's'");
	sd_bus_error_free(&e);
	/* nothing was applied by the refused calls */
	cr_assert_str_eq(fake_settings(p->state, "0000:01:10.0"), "00:00:00:00:00:00 0 0 1 0");
	cr_assert_eq(allocate(p, "vm-1", "mac", 's', s, &e, NULL, NULL), 0, "%s", e.message);
	cr_assert_str_eq(fake_settings(p->state, "0000:01:10.0"), "52:54:00:00:00:01 0 0 1 0");
	cr_assert_lt(allocate(p, "bad owner", NULL, 0, NULL, &e, NULL, NULL), 0);
	assert_error(&e, IOVD_ERR_INVALID, "owner 'bad owner'");
	sd_bus_error_free(&e);
	cr_assert_eq(allocate(p, "vm-1", "numa", 'i', &numa, &e, NULL, NULL), 0, "%s", e.message);
	stop(p);
}

/* The fixture's VF 0000:01:10.0 has its interface up, which the host-use
 * rule refuses (iovd_refuses_a_vf_the_host_uses): down, only the bind fails. */
static void vf0_netdev_down(struct peer *p)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/sys/class/net/enp1s0f0v0/operstate", p->root);
	f = fopen(path, "we");
	cr_assert_not_null(f, "%s", path);
	fputs("down\n", f);
	fclose(f);
}

Test(iovd, iovd_refuses_a_vf_the_host_uses)
{
	struct peer *p = start(NULL, false);
	sd_bus_error e = SD_BUS_ERROR_NULL;
	char path[PATH_MAX];

	cr_assert_lt(allocate(p, "vm-1", NULL, 0, NULL, &e, NULL, NULL), 0);
	assert_error(&e, IOVD_ERR_IN_USE, "VF 0000:01:10.0 of pool p0 is in use by the host");
	cr_assert(strstr(e.message, "its network interface enp1s0f0v0 is up"), "%s", e.message);
	sd_bus_error_free(&e);
	/* nothing written: no marker, no bind, no commit */
	snprintf(path, sizeof(path), "%s/run/iovd-allocated/0000:01:10.0", p->state);
	cr_assert_neq(access(path, F_OK), 0);
	cr_assert_str_eq(slurp(p->root, "/sys/bus/pci/drivers/ixgbevf/unbind"), "");
	stop(p);
	snprintf(path, sizeof(path), "%s/allocations.json", p->state);
	cr_assert_neq(access(path, F_OK), 0);
}

Test(iovd, failed_bind_allocates_nothing)
{
	/* binding on: 0000:01:10.0 is on ixgbevf, and no fixture ever probes */
	struct peer *p = start("\"limits\": { \"per_owner\": 1 },", false);
	sd_bus_error e = SD_BUS_ERROR_NULL;
	const char *vf = "0000:01:10.2";
	char *vf2 = NULL;

	vf0_netdev_down(p);
	cr_assert_lt(allocate(p, "vm-1", NULL, 0, NULL, &e, NULL, NULL), 0);
	/* the driver link stays on ixgbevf: the kernel's EBUSY, not an EIO */
	assert_errno_error(&e, EBUSY, "Failed to bind VF 0000:01:10.0 of pool p0 for vm-1 to vfio-pci");
	cr_assert(strstr(e.message, "ixgbevf took the device instead of vfio-pci; ixgbevf restored"), "%s", e.message);
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

/* ---- VF settings and putting VFs back ---------------------------------------------------- */

static void release(struct peer *p, const char *path)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;

	cr_assert_geq(sd_bus_call_method(p->bus, NULL, IOVD_PATH, IOVD_MANAGER_IFACE, "Release", &e, NULL, "o", path), 0,
		      "%s", e.message);
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "we");
	cr_assert_not_null(f, "%s", path);
	fputs(text, f);
	fclose(f);
}

Test(iovd, settings_are_applied_kept_and_put_back_at_release_after_a_restart)
{
	/* binding on: 01:10.2 is on vfio-pci already, so its bind is a no-op */
	struct peer *p = start(NULL, false);
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	const char *vf = "0000:01:10.2", *state, *k[4], *mac;
	char *path = NULL, *address = NULL;
	uint16_t vlan;
	uint8_t qos;
	int trust;

	/* what the VF had before: an admin MAC, spoof checking off */
	write_file(p->state, "fake-vf/0000:01:10.2", "02:00:00:00:00:aa 0 0 0 0\n");
	cr_assert_eq(allocate_with(p, "vm-1", &e, &path, &address, 5, "address", "s", vf, "mac", "s", "52:54:00:12:34:56",
				   "vlan", "q", 100, "qos", "y", 3, "trust", "b", 1),
		     0, "%s", e.message);
	cr_assert_str_eq(address, vf);
	cr_assert_str_eq(fake_settings(p->state, vf), "52:54:00:12:34:56 100 3 0 1");
	/* shown on the bus */
	cr_assert_geq(sd_bus_get_property(p->bus, NULL, path, IOVD_ALLOC_IFACE, "VfSettings", &e, &reply, "a{sv}"), 0);
	cr_assert_geq(sd_bus_message_read(reply, "a{sv}", 4, &k[0], "s", &mac, &k[1], "q", &vlan, &k[2], "y", &qos, &k[3],
					  "b", &trust),
		      0);
	cr_assert(strcmp(k[0], "mac") == 0 && strcmp(k[1], "vlan") == 0 && strcmp(k[2], "qos") == 0 &&
		  strcmp(k[3], "trust") == 0);
	cr_assert_str_eq(mac, "52:54:00:12:34:56");
	cr_assert(vlan == 100 && qos == 3 && trust == 1);
	reply = sd_bus_message_unref(reply);
	/* kept in the state file: what was applied and what it replaced */
	state = slurp(p->state, "/allocations.json");
	cr_assert(strstr(state, "\"vf\":{\"pf\":\"0000:01:00.0\",\"index\":1,\"applied\":{\"mac\":\"52:54:00:12:34:56\","
				"\"vlan\":100,\"qos\":3,\"vlan_proto\":\"802.1Q\",\"trust\":true},\"previous\":{\"mac\":"
				"\"02:00:00:00:00:aa\",\"vlan\":0,\"qos\":0,\"vlan_proto\":\"802.1Q\",\"trust\":false}}"),
		  "%s", state);
	/* no bind happened, so there is nothing to undo for the driver */
	cr_assert_null(strstr(state, "\"bind\""), "%s", state);
	cr_assert(strstr(state, "\"uid\":"), "%s", state);

	/* a restart: the saved settings come from the state file */
	stop(p);
	restart(p);
	release(p, path);
	/* spoofchk was not asked for: left as it is */
	cr_assert_str_eq(fake_settings(p->state, vf), "02:00:00:00:00:aa 0 0 0 0");
	stop(p);
	free(path), free(address);
}

Test(iovd, a_failed_bind_puts_the_settings_back)
{
	/* binding on: 0000:01:10.0 is on ixgbevf, and no fixture ever probes */
	struct peer *p = start(NULL, false);
	sd_bus_error e = SD_BUS_ERROR_NULL;
	char path[PATH_MAX];

	vf0_netdev_down(p);
	cr_assert_lt(allocate_with(p, "vm-1", &e, NULL, NULL, 2, "mac", "s", "52:54:00:12:34:56", "spoofchk", "b", 0), 0);
	assert_errno_error(&e, EBUSY, "Failed to bind VF 0000:01:10.0 of pool p0 for vm-1 to vfio-pci");
	cr_assert(strstr(e.message, "ixgbevf restored; its VF settings are back as they were"), "%s", e.message);
	sd_bus_error_free(&e);
	cr_assert_str_eq(fake_settings(p->state, "0000:01:10.0"), "00:00:00:00:00:00 0 0 1 0");
	/* no marker left behind */
	snprintf(path, sizeof(path), "%s/run/iovd-allocated/0000:01:10.0", p->state);
	cr_assert_neq(access(path, F_OK), 0);
	stop(p);
	/* nothing was ever committed */
	snprintf(path, sizeof(path), "%s/allocations.json", p->state);
	cr_assert_neq(access(path, F_OK), 0);
}

Test(iovd, kernel_driver_for_a_vf_that_never_had_one)
{
	/*
	 * A VF on no driver, with no previous-driver record (its PF's VFs
	 * came with autoprobe off): nothing to restore, so iovd names the
	 * kernel driver from the VF's modalias and binds it (igbvf in
	 * tests/vm/cases/82-iovd-igb.sh). No fixture is described by the
	 * running kernel's module index: the lookup fails here, and the VF is
	 * left as it was: settings back, and the driver_override that the
	 * restore had cleared.
	 */
	struct peer *p = start(NULL, false);
	sd_bus_error e = SD_BUS_ERROR_NULL;
	const char *vf = "0000:01:10.2";
	char link[PATH_MAX];

	snprintf(link, sizeof(link), "%s/sys/bus/pci/devices/%s/driver", p->root, vf);
	cr_assert_eq(unlink(link), 0, "%s: %m", link);
	cr_assert_lt(allocate_with(p, "ctr-1", &e, NULL, NULL, 3, "address", "s", vf, "driver", "s", "kernel", "mac", "s",
				   "52:54:00:12:34:56"),
		     0);
	assert_errno_error(&e, EOPNOTSUPP,
			   "Failed to bind VF 0000:01:10.2 of pool p0 for ctr-1 to its kernel driver: 0000:01:10.2: the "
			   "kernel driver for modalias pci:v00008086d000010ED");
	cr_assert(strstr(e.message, "; its VF settings are back as they were"), "%s", e.message);
	sd_bus_error_free(&e);
	cr_assert_str_eq(fake_settings(p->state, vf), "00:00:00:00:00:00 0 0 1 0");
	snprintf(link, sizeof(link), "/sys/bus/pci/devices/%s/driver_override", vf);
	cr_assert_str_eq(slurp(p->root, link), "vfio-pci");
	stop(p);
}

Test(iovd, a_refused_setting_changes_nothing)
{
	struct peer *p = start(NULL, true);
	sd_bus_error e = SD_BUS_ERROR_NULL;
	char *path = NULL;

	write_file(p->state, "fake-vf/refuse", "trust\n");
	cr_assert_lt(allocate_with(p, "vm-1", &e, NULL, NULL, 3, "mac", "s", "52:54:00:12:34:56", "vlan", "q", 7, "trust",
				   "b", 1),
		     0);
	assert_error(&e, IOVD_ERR_NOT_SUPPORTED,
		     "Failed to apply mac 52:54:00:12:34:56 vlan 7 qos 0 trust on to VF 0000:01:10.0 (VF 0 of PF "
		     "0000:01:00.0) of pool p0 for vm-1: fake: the driver refuses trust; the previous settings are back");
	sd_bus_error_free(&e);
	cr_assert_str_eq(fake_settings(p->state, "0000:01:10.0"), "00:00:00:00:00:00 0 0 1 0");
	/* the same VF, without trust: fine */
	cr_assert_eq(allocate_with(p, "vm-1", &e, &path, NULL, 1, "vlan", "q", 7), 0, "%s", e.message);
	cr_assert_str_eq(fake_settings(p->state, "0000:01:10.0"), "00:00:00:00:00:00 7 0 1 0");
	/* ReleaseOwner puts back too */
	cr_assert_geq(sd_bus_call_method(p->bus, NULL, IOVD_PATH, IOVD_MANAGER_IFACE, "ReleaseOwner", &e, NULL, "s",
					 "vm-1"),
		      0, "%s", e.message);
	cr_assert_str_eq(fake_settings(p->state, "0000:01:10.0"), "00:00:00:00:00:00 0 0 1 0");
	stop(p);
	free(path);
}

/* An a{sv} of VF settings read from m, as "key=value ..." in the order sent. */
static const char *vf_settings_text(sd_bus_message *m)
{
	static char buf[256];
	size_t len = 0;

	buf[0] = '\0';
	cr_assert_geq(sd_bus_message_enter_container(m, 'a', "{sv}"), 0);
	while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
		union {
			const char *s;
			uint16_t q;
			uint8_t y;
			int b;
		} v;
		const char *key, *type;

		cr_assert_geq(sd_bus_message_read(m, "s", &key), 0);
		cr_assert_geq(sd_bus_message_peek_type(m, NULL, &type), 0);
		cr_assert_geq(sd_bus_message_enter_container(m, 'v', type), 0);
		cr_assert_geq(sd_bus_message_read_basic(m, type[0], &v), 0);
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s%s=", len ? " " : "", key);
		if (type[0] == 's')
			len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s", v.s);
		else
			len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%s:%u", type,
						type[0] == 'q' ? v.q : type[0] == 'y' ? v.y : (unsigned)v.b);
		cr_assert_geq(sd_bus_message_exit_container(m), 0);
		cr_assert_geq(sd_bus_message_exit_container(m), 0);
	}
	cr_assert_geq(sd_bus_message_exit_container(m), 0);
	return buf;
}

static const char *allocation_vf_settings(struct peer *p, const char *path)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	const char *text;

	cr_assert_geq(sd_bus_get_property(p->bus, NULL, path, IOVD_ALLOC_IFACE, "VfSettings", &e, &reply, "a{sv}"), 0,
		      "%s", e.message);
	text = vf_settings_text(reply);
	sd_bus_message_unref(reply);
	return text;
}

Test(iovd, pool_vf_defaults_apply_unless_the_options_say_otherwise)
{
	struct peer *p = start_pool(NULL, ", \"vf_defaults\": { \"vlan\": 100, \"qos\": 2, \"spoofchk\": false, "
				    "\"trust\": true }", true);
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	char *path1 = NULL, *path2 = NULL, *vf1 = NULL, *vf2 = NULL;
	const char *name, *key, *defaults = NULL;

	/* ListPools shows them */
	cr_assert_geq(sd_bus_call_method(p->bus, NULL, IOVD_PATH, IOVD_MANAGER_IFACE, "ListPools", &e, &reply, ""), 0);
	cr_assert_geq(sd_bus_message_enter_container(reply, 'a', "(sa{sv})"), 0);
	cr_assert_geq(sd_bus_message_enter_container(reply, 'r', "sa{sv}"), 0);
	cr_assert_geq(sd_bus_message_read(reply, "s", &name), 0);
	cr_assert_str_eq(name, "p0");
	cr_assert_geq(sd_bus_message_enter_container(reply, 'a', "{sv}"), 0);
	while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
		cr_assert_geq(sd_bus_message_read(reply, "s", &key), 0);
		if (strcmp(key, "VfDefaults") == 0) {
			cr_assert_geq(sd_bus_message_enter_container(reply, 'v', "a{sv}"), 0);
			defaults = vf_settings_text(reply);
			cr_assert_geq(sd_bus_message_exit_container(reply), 0);
		} else
			cr_assert_geq(sd_bus_message_skip(reply, "v"), 0);
		cr_assert_geq(sd_bus_message_exit_container(reply), 0);
	}
	cr_assert_str_eq(defaults, "vlan=q:100 qos=y:2 spoofchk=b:0 trust=b:1");
	reply = sd_bus_message_unref(reply);

	/* no options: the pool's settings, applied and shown */
	cr_assert_eq(allocate(p, "vm-1", NULL, 0, NULL, &e, &path1, &vf1), 0, "%s", e.message);
	cr_assert_str_eq(fake_settings(p->state, vf1), "00:00:00:00:00:00 100 2 0 1");
	cr_assert_str_eq(allocation_vf_settings(p, path1), "vlan=q:100 qos=y:2 spoofchk=b:0 trust=b:1");
	/* options win, each field whole: vlan 200 has QoS 0, not the pool's 2 */
	cr_assert_eq(allocate_with(p, "vm-2", &e, &path2, &vf2, 3, "mac", "s", "52:54:00:00:00:02", "vlan", "q", 200,
				   "spoofchk", "b", 1),
		     0, "%s", e.message);
	cr_assert_str_eq(fake_settings(p->state, vf2), "52:54:00:00:00:02 200 0 1 1");
	cr_assert_str_eq(allocation_vf_settings(p, path2),
			 "mac=52:54:00:00:00:02 vlan=q:200 qos=y:0 spoofchk=b:1 trust=b:1");
	/* Release puts back what was applied, defaults included, after a restart too */
	release(p, path1);
	cr_assert_str_eq(fake_settings(p->state, vf1), "00:00:00:00:00:00 0 0 1 0");
	stop(p);
	restart(p);
	release(p, path2);
	cr_assert_str_eq(fake_settings(p->state, vf2), "00:00:00:00:00:00 0 0 1 0");
	stop(p);
	free(path1), free(path2), free(vf1), free(vf2);
}

/* ---- OpenDevice ------------------------------------------------------------------------------ */

Test(iovd, open_device_passes_the_vfio_group)
{
	struct peer *p = start(NULL, true);
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	char *path1 = NULL, *path2 = NULL, link[64], target[PATH_MAX], want[PATH_MAX];
	struct stat st;
	ssize_t n;
	int fd;

	/* 01:10.0 stays on ixgbevf (no bind): no VFIO device to hand out */
	cr_assert_eq(allocate(p, "vm-1", NULL, 0, NULL, &e, &path1, NULL), 0, "%s", e.message);
	cr_assert_lt(sd_bus_call_method(p->bus, NULL, IOVD_PATH, IOVD_MANAGER_IFACE, "OpenDevice", &e, &reply, "o", path1),
		     0);
	assert_error(&e, IOVD_ERR_NOT_SUPPORTED, "VF 0000:01:10.0, owner vm-1) has no VFIO device: the VF is on ixgbevf");
	sd_bus_error_free(&e);
	/* 01:10.2 on vfio-pci, group 6 */
	cr_assert_eq(allocate(p, "vm-2", NULL, 0, NULL, &e, &path2, NULL), 0, "%s", e.message);
	cr_assert_geq(sd_bus_call_method(p->bus, NULL, IOVD_PATH, IOVD_MANAGER_IFACE, "OpenDevice", &e, &reply, "o",
					 path2),
		      0, "%s", e.message);
	cr_assert_geq(sd_bus_message_read(reply, "h", &fd), 0);
	fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	cr_assert_geq(fd, 0);
	reply = sd_bus_message_unref(reply);
	cr_assert_eq(fstat(fd, &st), 0);
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	cr_assert_gt(n, 0);
	target[n] = '\0';
	snprintf(want, sizeof(want), "%s/dev/vfio/6", p->root);
	cr_assert_str_eq(target, want);
	cr_assert_eq(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDWR);
	close(fd);
	/* no such allocation */
	cr_assert_lt(sd_bus_call_method(p->bus, NULL, IOVD_PATH, IOVD_MANAGER_IFACE, "OpenDevice", &e, NULL, "o",
					"/org/iovkit/iovd1/allocation/99"),
		     0);
	assert_error(&e, IOVD_ERR_NOT_FOUND, "no allocation /org/iovkit/iovd1/allocation/99");
	sd_bus_error_free(&e);
	stop(p);
	free(path1), free(path2);
}

/* ---- commits that fail ----------------------------------------------------------------------- */

/* Makes the state directory refuse new names, and its journal (once there
 * is one) writes, even to root: chattr +i. */
static bool state_immutable(struct peer *p, bool on)
{
	char cmd[3 * PATH_MAX];
	char op = on ? '+' : '-';

	snprintf(cmd, sizeof(cmd),
		 "chattr %ci '%s' 2>/dev/null && { ! test -e '%s/allocations.journal' || chattr %ci '%s/allocations.journal'; }",
		 op, p->state, p->state, op, p->state);
	return system(cmd) == 0;
}

Test(iovd, failed_commits_put_the_vf_back)
{
	struct peer *p = start(NULL, true);
	sd_bus_error e = SD_BUS_ERROR_NULL;
	const char *vf = "0000:01:10.0";
	char *path = NULL, marker[PATH_MAX];

	snprintf(marker, sizeof(marker), "%s/run/iovd-allocated/%s", p->state, vf);
	/* a round trip: iovd's side has made its directories */
	cr_assert_geq(sd_bus_call_method(p->bus, NULL, IOVD_PATH, IOVD_MANAGER_IFACE, "ListPools", &e, NULL, ""), 0);
	if (!state_immutable(p, true)) {
		stop(p);
		cr_skip_test("chattr +i does not work here (needs root and a file system with the attribute)");
	}
	/* Allocate: settings applied, then the commit fails: they are put back */
	cr_assert_lt(allocate_with(p, "vm-1", &e, NULL, NULL, 1, "mac", "s", "52:54:00:00:00:99"), 0);
	state_immutable(p, false);
	/* an immutable file or directory refuses the write with EPERM: that errno, not AccessDenied's EACCES */
	assert_errno_error(&e, EPERM, "Failed to record the allocation in");
	cr_assert(strstr(e.message, "nothing changed (the VF is back as it was)"), "%s", e.message);
	sd_bus_error_free(&e);
	cr_assert_str_eq(fake_settings(p->state, vf), "00:00:00:00:00:00 0 0 1 0");
	cr_assert_neq(access(marker, F_OK), 0, "marker left by a failed commit");

	/* Release: put back first, then the commit fails: the allocation stays, and says so */
	cr_assert_eq(allocate_with(p, "vm-1", &e, &path, NULL, 1, "mac", "s", "52:54:00:00:00:99"), 0, "%s", e.message);
	cr_assert_str_eq(fake_settings(p->state, vf), "52:54:00:00:00:99 0 0 1 0");
	cr_assert(state_immutable(p, true));
	cr_assert_lt(sd_bus_call_method(p->bus, NULL, IOVD_PATH, IOVD_MANAGER_IFACE, "Release", &e, NULL, "o", path), 0);
	state_immutable(p, false);
	assert_errno_error(&e, EPERM, "the allocation stays, but its VF was put back as it was before it");
	sd_bus_error_free(&e);
	cr_assert_str_eq(fake_settings(p->state, vf), "00:00:00:00:00:00 0 0 1 0");
	cr_assert_eq(access(marker, F_OK), 0, "the allocation stays, so does its marker");
	/* again: nothing left to put back, the release goes through */
	release(p, path);
	cr_assert_neq(access(marker, F_OK), 0);
	stop(p);
	free(path);
}

/*
 * Faults on the flushes of iovd's side (a forked child of this binary), or
 * of this process in the journal's own tests: these definitions take the
 * place of libc's for every object linked here. The fault_sync_at-th
 * fdatasync (counted from 1) writes a byte to fault_sync_started[1] (so a
 * test knows that commit is under way, however slow the machine), then
 * sleeps fault_sync_usec, or with fault_sync_pipe() waits until the test
 * calls fault_sync_release(): a test that checks what iovd does while a
 * commit is written holds the commit for as long as its checks take, not
 * for a time they were assumed to fit in (1 s for a property read under
 * ASan on a loaded machine). With fault_sync_fails it fails with
 * fault_sync_errno (EIO unless a test sets another), and so do the
 * fault_sync_fails - 1 fdatasyncs after it and the next fsync of a regular
 * file (the checkpoint that takes the commit instead), so that the commit
 * fails as a whole.
 */
static unsigned fault_sync_at, fault_sync_fails, fault_sync_calls, fault_fsyncs_left;
static int fault_sync_errno = EIO;
static long fault_sync_usec;
static int fault_sync_started[2] = { -1, -1 }, fault_sync_hold[2] = { -1, -1 };

/* Until the test's fault_sync_release(); bounded, so that a test that
 * failed before its release still ends. */
static void fault_sync_held(void)
{
	struct pollfd pfd = { .fd = fault_sync_hold[0], .events = POLLIN };
	char c;

	if (poll(&pfd, 1, 60 * 1000) == 1)
		(void)!read(fault_sync_hold[0], &c, 1);
}

int fdatasync(int fd)
{
	if (fault_sync_at && ++fault_sync_calls >= fault_sync_at) {
		if (fault_sync_calls == fault_sync_at) {
			if (fault_sync_started[1] >= 0)
				(void)!write(fault_sync_started[1], "s", 1);
			if (fault_sync_hold[0] >= 0)
				fault_sync_held();
			else
				usleep((useconds_t)fault_sync_usec);
		}
		if (fault_sync_calls < fault_sync_at + fault_sync_fails) {
			if (fault_sync_calls == fault_sync_at)
				fault_fsyncs_left = 1;
			errno = fault_sync_errno;
			return -1;
		}
	}
	return (int)syscall(SYS_fdatasync, fd);
}

int fsync(int fd)
{
	struct stat st;

	if (fault_fsyncs_left > 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		fault_fsyncs_left--;
		errno = fault_sync_errno;
		return -1;
	}
	return (int)syscall(SYS_fsync, fd);
}

/* In iovd's side: the ends it does not use. */
static void close_fault_pipe_ends(void)
{
	if (fault_sync_hold[1] >= 0)
		close(fault_sync_hold[1]);
	if (fault_sync_started[0] >= 0)
		close(fault_sync_started[0]);
}

/* The pipes for fault_sync_at's fdatasync to say it started and to wait for
 * fault_sync_release(); made before iovd is forked. */
static void fault_sync_pipe(void)
{
	cr_assert_eq(pipe2(fault_sync_started, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(fault_sync_hold, O_CLOEXEC), 0);
}

/* Lets the held fdatasync go on. */
static void fault_sync_release(void)
{
	cr_assert_eq(write(fault_sync_hold[1], "r", 1), 1);
}

/* Waits until iovd's fault_sync_at-th fdatasync started (that commit is being written). */
static void fault_sync_wait_started(void)
{
	struct pollfd pfd = { .fd = fault_sync_started[0], .events = POLLIN };
	char c;

	cr_assert_eq(poll(&pfd, 1, 60 * 1000), 1, "iovd's slow fdatasync did not start within 60 s");
	cr_assert_eq(read(fault_sync_started[0], &c, 1), 1);
}

struct async_allocate {
	bool done;
	unsigned order; /* of its reply among the replies, from 1 */
	char error[512];
	char address[64];
};

static int on_allocate_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
	struct async_allocate *a = userdata;
	const sd_bus_error *e = sd_bus_message_get_error(reply);
	const char *path, *address, *node;
	int32_t group;
	static unsigned replies;

	a->done = true;
	a->order = ++replies;
	if (e)
		snprintf(a->error, sizeof(a->error), "%s: %s", e->name, e->message);
	else if (sd_bus_message_read(reply, "osis", &path, &address, &group, &node) >= 0)
		snprintf(a->address, sizeof(a->address), "%s", address);
	return 0;
}

/* Whether path exists within 10 s. */
static bool appears(const char *path)
{
	for (int i = 0; i < 10000 && access(path, F_OK) != 0; i++)
		usleep(1000);
	return access(path, F_OK) == 0;
}

/*
 * Two Allocates: the first one's commit is held (fault_sync_pipe()) while the
 * second is sent, which joins the next batch. Pipelined, the loop writes the
 * first itself and reads the second only after it; through the writer, the
 * loop takes the second (its marker, VF 0000:01:10.2, is written) while the
 * first is held.
 */
static void two_allocates_one_slow_commit(struct peer *p, bool pipelined, struct async_allocate *first,
					  struct async_allocate *second)
{
	sd_bus_slot *s1 = NULL, *s2 = NULL;
	char marker[PATH_MAX];

	cr_assert_geq(sd_bus_call_method_async(p->bus, &s1, NULL, IOVD_PATH, IOVD_MANAGER_IFACE, "Allocate",
					       on_allocate_reply, first, "ssa{sv}", "p0", "vm-1", 0), 0);
	cr_assert_geq(sd_bus_flush(p->bus), 0);
	fault_sync_wait_started(); /* the first batch is being written */
	cr_assert_geq(sd_bus_call_method_async(p->bus, &s2, NULL, IOVD_PATH, IOVD_MANAGER_IFACE, "Allocate",
					       on_allocate_reply, second, "ssa{sv}", "p0", "vm-2", 0), 0);
	cr_assert_geq(sd_bus_flush(p->bus), 0);
	if (!pipelined) {
		snprintf(marker, sizeof(marker), "%s/run/iovd-allocated/0000:01:10.2", p->state);
		cr_assert(appears(marker), "vm-2's Allocate was not taken while vm-1's commit was written");
	}
	fault_sync_release();
	while (!first->done || !second->done) {
		int r = sd_bus_process(p->bus, NULL);

		cr_assert_geq(r, 0);
		if (r == 0)
			cr_assert_geq(sd_bus_wait(p->bus, 5 * 1000000), 0);
	}
	sd_bus_slot_unref(s1);
	sd_bus_slot_unref(s2);
}

/* The durable state of a stopped iovd: its clean stop leaves allocations.json alone current. */
static char *durable_state(struct peer *p)
{
	char path[PATH_MAX], *text = NULL;
	size_t len = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/allocations.json", p->state);
	f = fopen(path, "re");
	if (!f)
		return NULL;
	if (getdelim(&text, &len, '\0', f) < 0) {
		free(text);
		text = NULL;
	}
	fclose(f);
	return text;
}

/* Allocate and Release by vm-0: the first commit makes the journal (its header: fdatasync 1), the second is
 * its first record (fdatasync 2). */
static void two_commits(struct peer *p)
{
	char *path = NULL;

	cr_assert_eq(allocate(p, "vm-0", NULL, 0, NULL, NULL, &path, NULL), 0);
	release(p, path);
	free(path);
}

/* Starts iovd, makes two commits, then two Allocates whose first commit (the third
 * fdatasync) is held while the second comes, and fails when fails; pipelined or not as asked. */
static struct peer *two_allocates_after_two_commits(bool pipelined, bool fails, struct async_allocate *first,
						     struct async_allocate *second)
{
	struct peer *p;

	commit_pipeline_below_usec = pipelined ? UINT64_MAX : 0;
	fault_sync_at = 3;
	fault_sync_fails = fails;
	fault_sync_pipe();
	p = start(NULL, true);
	two_commits(p);
	two_allocates_one_slow_commit(p, pipelined, first, second);
	return p;
}

/*
 * The commit in flight fails while the next batch waits: its reply fails
 * and its VF is free again; the next batch is written without it, and its
 * reply succeeds. A later batch never carries a failed one's changes,
 * whether it is written on the loop's thread once the failed one is done
 * (pipelined: quick writes) or through the writer after its stragglers
 * (slow writes).
 */
static void a_failed_commit_fails_its_batch_only(bool pipelined)
{
	struct async_allocate first = {}, second = {};
	struct peer *p;
	char marker[PATH_MAX], *state;

	p = two_allocates_after_two_commits(pipelined, true, &first, &second);
	cr_assert(strstr(first.error, "System.Error.EIO: Failed to record the allocation in the state directory ") &&
		  strstr(first.error, ": Input/output error; nothing changed"), "first: '%s'", first.error);
	cr_assert_str_empty(second.error, "second: %s", second.error);
	if (pipelined) {
		/* quick writes are written on the loop's thread: vm-2's Allocate was
		 * read after vm-1's failed commit had freed the pool's first VF */
		cr_assert_str_eq(second.address, "0000:01:10.0");
	} else {
		/* through the writer: vm-1 held the first VF when vm-2 came, so
		 * vm-2 got the second, which stays taken */
		cr_assert_str_eq(second.address, "0000:01:10.2");
		snprintf(marker, sizeof(marker), "%s/run/iovd-allocated/0000:01:10.0", p->state);
		cr_assert_neq(access(marker, F_OK), 0, "marker of the failed Allocate left");
	}
	stop(p);
	state = durable_state(p);
	cr_assert_not_null(state);
	cr_assert(strstr(state, "\"vm-2\"") && !strstr(state, "\"vm-1\"") && !strstr(state, "\"vm-0\""), "%s", state);
	free(state);
}

/*
 * With quick writes (pipelined), a checkpoint still goes to the writer
 * thread: iovd's first commit replaces allocations.json and makes the
 * journal (its header's fdatasync is held until the test lets it go), and
 * while it is written the loop answers a property read. Written on the
 * loop's thread, the read would wait for the whole checkpoint, which waits
 * for the test: the read fails at its 10 s timeout.
 */
Test(iovd, a_checkpoint_is_written_off_the_loop)
{
	struct async_allocate first = {};
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_slot *slot = NULL;
	char *version = NULL;
	struct peer *p;

	commit_pipeline_below_usec = UINT64_MAX;
	fault_sync_at = 1;
	fault_sync_pipe();
	p = start(NULL, true);
	cr_assert_geq(sd_bus_set_method_call_timeout(p->bus, 10 * 1000000), 0);
	cr_assert_geq(sd_bus_call_method_async(p->bus, &slot, NULL, IOVD_PATH, IOVD_MANAGER_IFACE, "Allocate",
					       on_allocate_reply, &first, "ssa{sv}", "p0", "vm-1", 0), 0);
	cr_assert_geq(sd_bus_flush(p->bus), 0);
	fault_sync_wait_started(); /* the checkpoint is being written, until the release below */
	cr_assert_geq(sd_bus_get_property_string(p->bus, NULL, IOVD_PATH, IOVD_MANAGER_IFACE, "Version", &e, &version),
		      0, "the property read was not answered during the checkpoint: %s", e.message);
	/* the call above queued what came before its reply: an Allocate reply sent first is dispatched now */
	while (sd_bus_process(p->bus, NULL) > 0)
		;
	cr_assert_not(first.done, "the Allocate was answered before its checkpoint was written");
	fault_sync_release();
	while (!first.done) {
		int r = sd_bus_process(p->bus, NULL);

		cr_assert_geq(r, 0);
		if (r == 0)
			cr_assert_geq(sd_bus_wait(p->bus, 5 * 1000000), 0);
	}
	cr_assert_str_empty(first.error, "%s", first.error);
	sd_bus_slot_unref(slot);
	free(version);
	stop(p);
}

Test(iovd, a_failed_commit_fails_its_batch_only_pipelined)
{
	a_failed_commit_fails_its_batch_only(true);
}

Test(iovd, a_failed_commit_fails_its_batch_only_after_stragglers)
{
	a_failed_commit_fails_its_batch_only(false);
}

/*
 * A commit's reply carries the errno of the write that failed: a full disk
 * (ENOSPC from the record's fdatasync and from the checkpoint's fsync) is
 * System.Error.ENOSPC, which a client reads back as ENOSPC, not as the EIO
 * that org.iovkit.iovd1.Error.Failed stood for.
 */
Test(iovd, a_failed_commit_replies_with_the_write_errno)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	struct peer *p;

	fault_sync_at = 3; /* after two_commits(): the journal's header, then its first record */
	fault_sync_fails = 1;
	fault_sync_errno = ENOSPC;
	p = start(NULL, true);
	two_commits(p);
	cr_assert_lt(allocate(p, "vm-1", NULL, 0, NULL, &e, NULL, NULL), 0);
	assert_errno_error(&e, ENOSPC, "Failed to record the allocation in the state directory ");
	cr_assert(strstr(e.message, ": No space left on device; nothing changed"), "%s", e.message);
	sd_bus_error_free(&e);
	/* the next commit is written: the journal's fault was a moment's */
	two_commits(p);
	stop(p);
}

/* Both commits succeed: the second batch is written while the first one's replies go out, in order. */
Test(iovd, a_batch_written_during_a_slow_commit_is_committed)
{
	struct async_allocate first = {}, second = {};
	struct peer *p;
	char *state;

	p = two_allocates_after_two_commits(true, false, &first, &second);
	cr_assert_str_empty(first.error, "first: %s", first.error);
	cr_assert_str_empty(second.error, "second: %s", second.error);
	cr_assert_str_eq(first.address, "0000:01:10.0");
	cr_assert_str_eq(second.address, "0000:01:10.2");
	cr_assert(first.order == 1 && second.order == 2, "replies out of order: first %u, second %u", first.order,
		  second.order);
	stop(p);
	state = durable_state(p);
	cr_assert_not_null(state);
	cr_assert(strstr(state, "\"vm-1\"") && strstr(state, "\"vm-2\"") && !strstr(state, "\"vm-0\""), "%s", state);
	free(state);
}

/* A failover step of owner; 0 and its failover_state, or the negative errno with *error set. */
static int migration_step(struct peer *p, const char *method, const char *owner, sd_bus_error *error,
			  char state[static 32])
{
	sd_bus_message *reply = NULL;
	const char *key, *s;
	int r;

	r = sd_bus_call_method(p->bus, NULL, IOVD_PATH, IOVD_MANAGER_IFACE, method, error, &reply, "s", owner);
	if (r < 0)
		return r;
	state[0] = 0;
	cr_assert_gt(sd_bus_message_enter_container(reply, 'a', "{sv}"), 0);
	while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
		cr_assert_geq(sd_bus_message_read(reply, "s", &key), 0);
		if (strcmp(key, "failover_state") == 0) {
			cr_assert_geq(sd_bus_message_read(reply, "v", "s", &s), 0);
			snprintf(state, 32, "%s", s);
		} else
			cr_assert_geq(sd_bus_message_skip(reply, "v"), 0);
		cr_assert_geq(sd_bus_message_exit_container(reply), 0);
	}
	sd_bus_message_unref(reply);
	return 0;
}

/*
 * A failover step alone, with quick writes, is written on the loop's thread
 * (commit_now()): its reply still waits for its fdatasync (0.3 s here), a
 * failed one answers the error that says the next commit writes it, and
 * the next commit (here the clean stop's) does.
 */
Test(iovd, a_failover_step_written_on_the_loop_waits_for_its_flush)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	char state[32], *text;
	struct peer *p;
	uint64_t t;

	commit_pipeline_below_usec = UINT64_MAX;
	fault_sync_at = 3;
	fault_sync_usec = 300000;
	fault_sync_fails = 1;
	p = start(NULL, true);
	/* a checkpoint and the journal's header (fdatasync 1), then record 1 (fdatasync 2) */
	cr_assert_eq(allocate(p, "vm-f", "failover", 's', "guest", NULL, NULL, NULL), 0);
	cr_assert_eq(migration_step(p, "PrepareMigration", "vm-f", &e, state), 0, "%s", e.message);
	cr_assert_str_eq(state, "prepared");
	/* fdatasync 3: 0.3 s, then EIO, and the checkpoint that takes the commit fails too */
	t = now_usec(CLOCK_MONOTONIC);
	cr_assert_lt(migration_step(p, "AbortMigration", "vm-f", &e, state), 0);
	t = now_usec(CLOCK_MONOTONIC) - t;
	cr_assert_geq(t, 300000, "the failed step answered after %" PRIu64 " us, before its fdatasync ended", t);
	cr_assert(strstr(e.message ?: "", "Failed to record the failover step") &&
		  strstr(e.message ?: "", "the next commit"), "%s", e.message);
	sd_bus_error_free(&e);
	stop(p);
	text = durable_state(p);
	cr_assert_not_null(text);
	cr_assert(strstr(text, "\"vm-f\"") && strstr(text, "\"state\":\"active\""), "%s", text);
	free(text);
}

/*
 * vm-a's Release is acknowledged while the journal alone holds it (record 1);
 * then an Allocate's record fails, and so does the checkpoint that takes it
 * instead. The Release must survive: a failed record once took the whole
 * journal with it, and allocations.json listed vm-a again (the inverse, a
 * lost Allocate, hands its VF out twice). Returns with iovd still running.
 */
static struct peer *a_failed_commit_after_an_acknowledged_record(unsigned fails)
{
	struct peer *p;
	char *path = NULL;
	sd_bus_error e = SD_BUS_ERROR_NULL;

	commit_pipeline_below_usec = UINT64_MAX;
	fault_sync_at = 3;
	fault_sync_usec = 1000;
	fault_sync_fails = fails;
	p = start(NULL, true);
	cr_assert_eq(allocate(p, "vm-a", NULL, 0, NULL, NULL, &path, NULL), 0); /* checkpoint, header: fdatasync 1 */
	release(p, path); /* record 1, fdatasync 2: acknowledged */
	free(path);
	path = NULL;
	/* fdatasync 3 fails (and with fails 2 the zeros over its record too), then the checkpoint's fsync */
	cr_assert_lt(allocate(p, "vm-c", NULL, 0, NULL, &e, &path, NULL), 0);
	cr_assert(strstr(e.message ?: "", "Failed to record the allocation"), "%s", e.message);
	sd_bus_error_free(&e);
	free(path);
	return p;
}

static void assert_durable_without_vm_a_and_vm_c(struct peer *p)
{
	char *state = durable_state(p);

	cr_assert_not_null(state);
	cr_assert(!strstr(state, "\"vm-a\""), "vm-a's acknowledged Release is lost: %s", state);
	cr_assert(!strstr(state, "\"vm-c\""), "vm-c's failed Allocate is committed: %s", state);
	free(state);
}

Test(iovd, a_failed_record_keeps_the_acknowledged_records_before_it_at_a_clean_stop)
{
	struct peer *p = a_failed_commit_after_an_acknowledged_record(1);

	stop(p);
	assert_durable_without_vm_a_and_vm_c(p);
}

/* Even the zeros over the failed record fail to reach the disk: the journal stays for record 1. */
Test(iovd, a_failed_record_that_cannot_be_dropped_keeps_the_journal)
{
	struct peer *p = a_failed_commit_after_an_acknowledged_record(2);

	stop(p);
	assert_durable_without_vm_a_and_vm_c(p);
}

/* ---- state files ------------------------------------------------------------------------------ */

Test(iovd, a_state_file_without_uid_bind_or_settings_still_loads)
{
	struct peer *p = start(NULL, true);
	sd_bus_error e = SD_BUS_ERROR_NULL;
	const char *path = "/org/iovkit/iovd1/allocation/4";
	uint32_t uid = 0;
	int status;

	stop(p);
	/* as iovd wrote it before it kept the uid, the bind and VF settings */
	write_file(p->state, "allocations.json",
		   "{\"version\":1,\"next_id\":5,\"allocations\":[{\"id\":4,\"pool\":\"p0\",\"owner\":\"vm-old\","
		   "\"address\":\"0000:01:10.2\",\"driver\":\"vfio-pci\",\"created_usec\":1}]}\n");
	restart(p);
	cr_assert_geq(sd_bus_get_property_trivial(p->bus, NULL, path, IOVD_ALLOC_IFACE, "Uid", &e, 'u', &uid), 0, "%s",
		      e.message);
	cr_assert_eq(uid, UINT32_MAX);
	release(p, path);
	stop(p);

	/* a malformed member is never taken for an absent one, in any entry: iovd does not start */
	write_file(p->state, "allocations.json",
		   "{\"version\":1,\"next_id\":5,\"allocations\":[{\"id\":3,\"pool\":\"p0\",\"owner\":\"vm-1\","
		   "\"address\":\"0000:01:10.0\",\"driver\":\"ixgbevf\",\"created_usec\":1},{\"id\":4,\"pool\":"
		   "\"p0\",\"owner\":\"vm-old\",\"address\":\"0000:01:10.2\",\"driver\":\"vfio-pci\",\"created_usec\":1,"
		   "\"bind\":{\"driver\":7}}]}\n");
	spawn(p);
	p->bus = sd_bus_flush_close_unref(p->bus);
	cr_assert_eq(waitpid(p->pid, &status, 0), p->pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 13, "iovd's side exited with status 0x%x", status);
}

/* Starts iovd's side on state file text; returns its exit status (13: it refused the state) and its log. */
static int start_on_state(struct peer *p, const char *text, const char **ret_log)
{
	int status;

	write_file(p->state, "allocations.json", text);
	snprintf(p->log, sizeof(p->log), "%s/iovd.log", p->state);
	spawn(p);
	p->bus = sd_bus_flush_close_unref(p->bus);
	cr_assert_eq(waitpid(p->pid, &status, 0), p->pid);
	p->log[0] = '\0';
	*ret_log = slurp(p->state, "/iovd.log");
	cr_assert(WIFEXITED(status), "iovd's side ended with status 0x%x", status);
	return WEXITSTATUS(status);
}

#define ENTRY(id, pool, owner, address, driver, extra)                                                          \
	"{\"id\":" #id ",\"pool\":\"" pool "\",\"owner\":\"" owner "\",\"address\":\"" address "\",\"driver\":\"" \
	driver "\",\"created_usec\":1" extra "}"
#define STATE(next_id, ...) "{\"version\":1,\"next_id\":" #next_id ",\"allocations\":[" __VA_ARGS__ "]}\n"

Test(iovd, a_state_file_is_checked_for_meaning)
{
	static const struct {
		const char *text, *reason;
	} bad[] = {
		/* an address is the name of a marker file, written as root */
		{ STATE(5, ENTRY(3, "p0", "vm-1", "../../escape", "vfio-pci", "")),
		  "allocation #0 (id 3): its address is not a PCI address as sysfs writes it" },
		{ STATE(5, ENTRY(3, "p0", "vm-1", "01:10.2", "vfio-pci", "")), "its address is not a PCI address" },
		{ STATE(5, ENTRY(3, "p0", "vm-1", "0000:01:10.0", "ixgbevf", "") ","
			   ENTRY(3, "p0", "vm-2", "0000:01:10.2", "vfio-pci", "")),
		  "id 3 is given to two allocations (VFs 0000:01:10.0 and 0000:01:10.2)" },
		{ STATE(5, ENTRY(3, "p0", "vm-1", "0000:01:10.2", "vfio-pci", "") ","
			   ENTRY(4, "p0", "vm-2", "0000:01:10.2", "vfio-pci", "")),
		  "allocation #1 (id 4): VF 0000:01:10.2 is given to /org/iovkit/iovd1/allocation/3 too" },
		{ STATE(5, ENTRY(3, "p0", "vm 1\\nx", "0000:01:10.2", "vfio-pci", "")),
		  "its owner is not an owner name that Allocate takes" },
		{ STATE(5, ENTRY(3, "../p0", "vm-1", "0000:01:10.2", "vfio-pci", "")), "its pool is not a pool name" },
		{ STATE(5, ENTRY(3, "p0", "vm-1", "0000:01:10.2", "../../x", "")), "its driver is not a driver name" },
		{ STATE(5, ENTRY(3, "p0", "vm-1", "0000:01:10.2", "vfio-pci",
				 ",\"bind\":{\"previous_driver\":\"../x\",\"previous_override\":\"\",\"driver\":\"vfio-pci\","
				 "\"record_created\":false}")),
		  "its bind member holds something other than driver names" },
		{ STATE(5, ENTRY(3, "p0", "vm-1", "0000:01:10.2", "vfio-pci",
				 ",\"vf\":{\"pf\":\"../x\",\"index\":1,\"applied\":{},\"previous\":{}}")),
		  "its vf.pf is not a PCI address" },
		/* Allocate takes next_id and adds one */
		{ STATE(18446744073709551615, ENTRY(3, "p0", "vm-1", "0000:01:10.2", "vfio-pci", "")),
		  "next_id 18446744073709551615 is not an id iovd can go on from" },
		{ STATE(5, ENTRY(3, "p0", "vm-1", "0000:01:10.2", "vfio-pci", ",\"id\":4")),
		  "allocations.json:1:138: this key appears twice in one object: \"id\"" },
		{ "{\"version\":1,\"next_id\":5,\"allocations\":[]} x", "allocations.json:1:44: not valid JSON" },
	};
	struct peer *p = start(NULL, true);
	sd_bus_error e = SD_BUS_ERROR_NULL;
	const char *log;
	char **drift = NULL, escape[PATH_MAX];

	stop(p);
	snprintf(escape, sizeof(escape), "%s/escape", p->state);
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		int code = start_on_state(p, bad[i].text, &log);

		cr_assert_eq(code, 13, "%s: iovd's side exited with %d, wanted 13 (refused): %s", bad[i].text, code, log);
		cr_assert(strstr(log, bad[i].reason), "'%s' not in: %s", bad[i].reason, log);
		cr_assert(strstr(log, "iovd does not start on it"), "%s", log);
		cr_assert_neq(access(escape, F_OK), 0, "%s was written", escape);
	}
	/* a pool no longer configured is not an error: the allocation stays, as drift */
	write_file(p->state, "allocations.json", STATE(5, ENTRY(3, "gone", "vm-1", "0000:01:10.2", "vfio-pci", "")));
	restart(p);
	cr_assert_geq(sd_bus_get_property_strv(p->bus, NULL, IOVD_PATH, IOVD_MANAGER_IFACE, "Drift", &e, &drift), 0);
	cr_assert(drift && drift[0] && strstr(drift[0], "pool gone is not configured any more"), "%s",
		  drift && drift[0] ? drift[0] : "no drift");
	strv_free(drift);
	stop(p);
}

/* ---- strict JSON (common/strict-json.c) --------------------------------------------------- */

static int parse(const char *text, unsigned flags, struct strict_json_error *err)
{
	struct json_object *o = NULL;
	int r = strict_json_parse(text, strlen(text), 8, flags, &o, err);

	json_object_put(o);
	return r;
}

Test(strict_json, keys_are_compared_decoded)
{
	static const struct {
		const char *text, *message;
		unsigned line, column;
	} dup[] = {
		{ "{\"numvfs\": 1, \"numvfs\": 2}", "this key appears twice in one object: \"numvfs\"", 1, 15 },
		{ "{\"numvfs\": 1, \"\\u006eumvfs\": 2}", "\"numvfs\"", 1, 15 },
		{ "{\"a/b\": 1,\n\"a\\/b\": 2}", "\"a/b\"", 2, 1 },
		{ "{\"\\u00e9\": 1, \"\xc3\xa9\": 2}", "\"\xc3\xa9\"", 1, 15 },
		/* a pair is one character, json-c's decoding */
		{ "{\"\\ud83d\\ude00\": 1, \"\xf0\x9f\x98\x80\": 2}", "appears twice", 1, 21 },
		/* lone surrogates are all U+FFFD to json-c, so equal */
		{ "{\"\\ud800\": 1, \"\\udbff\": 2}", "appears twice", 1, 15 },
		{ "[{\"a\": {\"b\": 1}, \"c\": [{\"b\": 2, \"b\": 3}]}]", "\"b\"", 1, 33 },
	};
	struct strict_json_error err;

	for (size_t i = 0; i < ELEMENTSOF(dup); i++) {
		cr_assert_eq(parse(dup[i].text, 0, &err), -EBADMSG, "%s: accepted", dup[i].text);
		cr_assert(strstr(err.message, dup[i].message), "%s: '%s' not in: %s", dup[i].text, dup[i].message,
			  err.message);
		cr_assert(err.line == dup[i].line && err.column == dup[i].column, "%s: at %u:%u, wanted %u:%u",
			  dup[i].text, err.line, err.column, dup[i].line, dup[i].column);
	}
	/* equal keys in different objects, and keys that only look alike, are fine */
	cr_assert_eq(parse("{\"a\": {\"b\": 1}, \"c\": {\"b\": 2}, \"b\": 3}", 0, &err), 0, "%s", err.message);
	cr_assert_eq(parse("{\"\\u00e9\": 1, \"e\\u0301\": 2, \"\\ud83d\\ude01\": 3, \"\\ud83d\\ude00\": 4}", 0, &err), 0,
		     "%s", err.message);
	cr_assert_eq(parse("{\"a\": \"a\", \"b\": {\"a\": \"b\"}, \"\": 1}", 0, &err), 0, "%s", err.message);
}

Test(strict_json, what_json_c_lets_through)
{
	struct strict_json_error err;
	struct json_object *o = NULL;

	cr_assert_eq(parse("{\"a\\u0000b\": 1, \"a\": 2}", 0, &err), -EBADMSG);
	cr_assert(strstr(err.message, "a key holds \\u0000"), "%s", err.message);
	cr_assert_eq(parse("{\"a\": \"x\\u0000\"}", 0, &err), 0, "%s", err.message);
	cr_assert_eq(parse("{\"a\": \"x\\u0000\"}", STRICT_JSON_NO_NUL_IN_STRINGS, &err), -EBADMSG);
	cr_assert(strstr(err.message, "a string holds \\u0000") && err.column == 7, "%u %s", err.column, err.message);
	/* an escaped backslash before "u0000" is no escape */
	cr_assert_eq(parse("{\"a\": \"x\\\\u0000\"}", STRICT_JSON_NO_NUL_IN_STRINGS, &err), 0, "%s", err.message);
	cr_assert_eq(parse("{} {}", 0, &err), -EBADMSG);
	cr_assert(strstr(err.message, "not valid JSON") && err.column == 4, "%u %s", err.column, err.message);
	cr_assert_eq(parse("{\"a\": 1 // c\n}", 0, &err), -EBADMSG);
	cr_assert_eq(parse("{\"a\": 1,}", 0, &err), -EBADMSG);
	cr_assert_eq(parse("[[[[[[[[[1]]]]]]]]]", 0, &err), -EBADMSG);
	cr_assert(strstr(err.message, "nested too deep"), "%s", err.message);
	cr_assert_eq(parse(" \n ", 0, &err), -EBADMSG);
	cr_assert(strstr(err.message, "empty") && err.line == 0, "%s", err.message);
	cr_assert_eq(strict_json_parse("{}\0{}", 5, 8, 0, &o, &err), -EBADMSG);
	cr_assert(strstr(err.message, "holds a NUL byte") && err.column == 3, "%s", err.message);
	cr_assert_eq(parse("12", 0, &err), 0, "%s", err.message);
}

Test(strict_json, many_keys_in_one_object)
{
	/* 100,000 keys, the last one twice: one hash set, not every pair compared */
	size_t n = 100000, len = 0;
	char *text = malloc(n * 24 + 64);
	struct strict_json_error err;

	cr_assert_not_null(text);
	text[len++] = '{';
	for (size_t i = 0; i < n; i++)
		len += (size_t)sprintf(text + len, "\"key-%zu\": %zu, ", i, i);
	len += (size_t)sprintf(text + len, "\"key-%zu\": 0}", n - 1);
	cr_assert_eq(parse(text, 0, &err), -EBADMSG);
	cr_assert(strstr(err.message, "\"key-99999\""), "%s", err.message);
	text[len - 5] = '0'; /* "key-99990": also there already */
	cr_assert_eq(parse(text, 0, &err), -EBADMSG);
	free(text);
}

/* ---- the table's index by VF address (manager.c) ------------------------------------------- */

Test(iovd, the_address_index_follows_adds_and_removes)
{
	/* 4,096 VF addresses taken and given back at random, against a plain array */
	enum { N = 4096 };
	static struct allocation *held[N];
	struct manager *m = NULL;
	unsigned seed = 1;
	uint64_t id = 1;

	cr_assert_geq(manager_new(&m), 0);
	for (int step = 0; step < 100000; step++) {
		unsigned i = (unsigned)rand_r(&seed) % N;
		char address[IOVK_PCI_ADDR_MAX];

		snprintf(address, sizeof(address), "%04x:%02x:%02x.%x", 0x100 + (i >> 16), (i >> 8) & 0xff, (i >> 3) & 0x1f,
			 i & 7);
		cr_assert_eq(manager_find_by_address(m, address), held[i], "step %d: %s", step, address);
		if (held[i]) {
			manager_remove_allocation(m, held[i]);
			held[i] = NULL;
		} else {
			struct allocation *a = allocation_new(m, id++);

			cr_assert_not_null(a);
			a->address = strdup(address);
			a->owner = strdup("vm");
			a->pool = strdup("p0");
			cr_assert_eq(manager_add_allocation(m, a), 0);
			held[i] = a;
		}
	}
	for (unsigned i = 0; i < N; i++)
		if (held[i]) {
			cr_assert_eq(manager_find_by_address(m, held[i]->address), held[i]);
			cr_assert_eq(manager_add_allocation(m, held[i]), -EEXIST, "a VF twice");
		}
	manager_free(m);
}

Test(strict_json, what_json_c_takes_in_strict_mode_and_rfc_8259_does_not)
{
	static const char *const bad[] = {
		"{'a': 1}",
		"{\"a\": 1, 'b\"': 2}",
		"[NaN]",
		"{\"a\": Infinity}",
		"[1, -Infinity]",
	};
	struct strict_json_error err;

	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		cr_assert_eq(parse(bad[i], 0, &err), -EBADMSG, "%s: accepted", bad[i]);
		cr_assert(strstr(err.message, "not valid JSON"), "%s: %s", bad[i], err.message);
	}
	cr_assert_eq(parse("[1E5, 1e-5, \"NaN\", \"'\"]", 0, &err), 0, "%s", err.message);
}

static int stops;
static bool stop_at_second_call(void)
{
	return ++stops >= 2;
}

Test(strict_json, stop_ends_a_long_parse)
{
	/* 40 MiB of one array: pieces of 4 MiB, stop() asked between them */
	size_t n = 40u << 20, len = 0;
	char *text = malloc(n + 16);
	struct strict_json_error err;
	struct json_object *o = NULL;

	cr_assert_not_null(text);
	text[len++] = '[';
	while (len < n)
		len += (size_t)sprintf(text + len, "%s1", len > 1 ? "," : "");
	text[len++] = ']';
	text[len] = '\0';
	stops = 0;
	cr_assert_eq(strict_json_parse_until(text, len, 8, 0, stop_at_second_call, &o, &err), -EINTR);
	cr_assert_eq(stops, 2);
	cr_assert_null(o);
	/* text after the document in a later piece than the document's end */
	memset(text, ' ', len);
	memcpy(text, "{}", 2);
	text[len - 1] = 'x';
	cr_assert_eq(strict_json_parse(text, len, 8, 0, &o, &err), -EBADMSG);
	cr_assert(strstr(err.message, "text after the end of the document"), "%s", err.message);
	free(text);
}

/* ---- an allocation belongs to its uid ------------------------------------------------------- */

/* Calls method with one argument of type sig; 0, or the negative errno with *error set. */
static int call1(struct peer *p, const char *method, const char *sig, const char *arg, uint32_t *ret_count,
		 sd_bus_error *error)
{
	sd_bus_message *reply = NULL;
	int r;

	r = sd_bus_call_method(p->bus, NULL, IOVD_PATH, IOVD_MANAGER_IFACE, method, error, &reply, sig, arg);
	if (r >= 0 && ret_count)
		cr_assert_geq(sd_bus_message_read(reply, "u", ret_count), 0);
	sd_bus_message_unref(reply);
	return r;
}

/*
 * A configured group that does not exist (the "iovkit" of the docs before
 * systemd-sysusers made it): iovd starts, root may allocate, any other uid
 * is refused as if no group were configured, never let in by a made-up gid.
 */
Test(iovd, a_group_that_does_not_exist_lets_root_only)
{
	struct peer *p = start(NULL, true);
	sd_bus_error e = SD_BUS_ERROR_NULL;
	char *path = NULL;

	if (geteuid() != 0) {
		stop(p);
		cr_skip_test("needs root, to call iovd as another uid");
	}
	stop(p);
	write_file(p->state, "iovd.json",
		   "{ \"group\": \"iovkit-no-such-group\", \"pools\": [ { \"name\": \"p0\", \"pfs\": [\"enp1s0f0\"] } ] }\n");
	restart(p);
	cr_assert_eq(allocate(p, "vm-root", NULL, 0, NULL, &e, &path, NULL), 0, "%s", e.message);
	stop(p);
	p->caller = 65534;
	restart(p);
	cr_assert_lt(allocate(p, "vm-nobody", NULL, 0, NULL, &e, NULL, NULL), 0);
	assert_error(&e, IOVD_ERR_ACCESS_DENIED, "uid 65534 may not do this: only root and members of group "
		     "iovkit-no-such-group may (a group that does not exist)");
	sd_bus_error_free(&e);
	stop(p);
	p->caller = 0;
	restart(p);
	cr_assert_geq(call1(p, "Release", "o", path, NULL, &e), 0, "%s", e.message);
	stop(p);
	free(path);
}

Test(iovd, a_uid_acts_on_its_own_allocations_only)
{
	/* root allocates; then uid 65534, in the configured group nogroup, calls */
	struct peer *p = start(NULL, true);
	sd_bus_error e = SD_BUS_ERROR_NULL;
	char *root_path = NULL, *own_path = NULL, text[512];
	uint32_t n = 99;

	if (geteuid() != 0) {
		stop(p);
		cr_skip_test("needs root, to call iovd as another uid");
	}
	cr_assert_eq(allocate(p, "vm-root", NULL, 0, NULL, &e, &root_path, NULL), 0, "%s", e.message);
	stop(p);
	snprintf(text, sizeof(text), "{ \"group\": \"nogroup\", \"limits\": { \"per_user\": 1 }, \"pools\": [ { \"name\": "
		 "\"p0\", \"pfs\": [\"enp1s0f0\"] } ] }\n");
	write_file(p->state, "iovd.json", text);
	p->caller = 65534;
	restart(p);
	cr_assert_lt(call1(p, "Release", "o", root_path, NULL, &e), 0);
	assert_error(&e, IOVD_ERR_ACCESS_DENIED, "Release: uid 65534 may not release /org/iovkit/iovd1/allocation/1 (VF "
		     "0000:01:10.0, owner vm-root): only uid 0, which allocated it, and root may");
	sd_bus_error_free(&e);
	cr_assert_geq(call1(p, "ReleaseOwner", "s", "vm-root", &n, &e), 0, "%s", e.message);
	cr_assert_eq(n, 0);
	cr_assert_lt(allocate(p, "vm-root", NULL, 0, NULL, &e, NULL, NULL), 0);
	assert_error(&e, IOVD_ERR_ACCESS_DENIED, "owner vm-root holds allocations of uid 0 "
		     "(/org/iovkit/iovd1/allocation/1, VF 0000:01:10.0)");
	sd_bus_error_free(&e);
	cr_assert_eq(allocate(p, "vm-nobody", NULL, 0, NULL, &e, &own_path, NULL), 0, "%s", e.message);
	cr_assert_lt(allocate(p, "vm-other", NULL, 0, NULL, &e, NULL, NULL), 0);
	assert_error(&e, IOVD_ERR_LIMIT, "uid 65534 holds 1 allocations, the limit per user (limits.per_user)");
	sd_bus_error_free(&e);
	stop(p);
	cr_assert(strstr(slurp(p->state, "/allocations.json"), "\"owner\":\"vm-nobody\",\"address\":\"0000:01:10.2\","
				"\"driver\":\"vfio-pci\",\"created_usec\":"),
		  "%s", slurp(p->state, "/allocations.json"));
	cr_assert(strstr(slurp(p->state, "/allocations.json"), "\"uid\":65534"), "%s",
		  slurp(p->state, "/allocations.json"));
	/* root: any allocation, any owner name */
	p->caller = 0;
	restart(p);
	cr_assert_geq(call1(p, "ReleaseOwner", "s", "vm-nobody", &n, &e), 0, "%s", e.message);
	cr_assert_eq(n, 1);
	cr_assert_geq(call1(p, "Release", "o", root_path, NULL, &e), 0, "%s", e.message);
	stop(p);
	free(root_path), free(own_path);
}

/* ---- the state journal (daemon/journal.c) --------------------------------------------------- */

/* A manager on a fresh state directory, nothing loaded. */
static struct manager *journal_manager(char dir[static PATH_MAX])
{
	struct manager *m = NULL;

	snprintf(dir, PATH_MAX, "%s/iovd-journal-XXXXXX", getenv("TMPDIR") ?: "/tmp");
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(manager_new(&m), 0);
	cr_assert_eq(state_open(m, dir), 0);
	return m;
}

/* What a restart would load: the newest record's text, or NULL for allocations.json. Read through a
 * manager of its own (and no lock), as a restarted iovd would: m's journal is left alone. */
static char *journal_newest(const char *dir, uint64_t *seq)
{
	const char *state = slurp(dir, "/allocations.json"); /* static */
	struct manager *m = NULL;
	char *text = NULL;
	size_t len = 0;
	int r;

	cr_assert_eq(manager_new(&m), 0);
	m->state_dir = strdup(dir);
	m->state_dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(m->state_dir_fd, 0);
	r = journal_read(m, true, journal_crc(0, state, strlen(state)), strlen(state), &text, &len, seq);
	manager_free(m);
	cr_assert_geq(r, 0);
	cr_assert_eq(r > 0, text != NULL);
	return text;
}

Test(iovd, journal_records_are_newer_than_the_state_file_until_a_checkpoint)
{
	char dir[PATH_MAX], path[PATH_MAX + 32], *text;
	struct manager *m = journal_manager(dir);
	uint64_t seq = 0;
	int fd;

	/* the first commit: no journal yet, so allocations.json and a new journal */
	cr_assert_eq(state_commit(m, "{\"a\":1}", 7), 0);
	cr_assert_str_eq(slurp(dir, "/allocations.json"), "{\"a\":1}\n");
	cr_assert_eq(journal_records(m), 0);
	/* then records: allocations.json stays as it was */
	cr_assert_eq(state_commit(m, "{\"b\":2}", 7), 0);
	cr_assert_eq(state_commit(m, "{\"c\":3}", 7), 0);
	cr_assert_eq(journal_records(m), 2);
	cr_assert_str_eq(slurp(dir, "/allocations.json"), "{\"a\":1}\n");
	text = journal_newest(dir, &seq);
	cr_assert_str_eq(text, "{\"c\":3}");
	cr_assert_eq(seq, 2);
	free(text);

	/* a torn last record (a crash in its write: never acknowledged) ends the run */
	snprintf(path, sizeof(path), "%s/allocations.journal", dir);
	fd = open(path, O_RDWR | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, "X", 1, 8192 + 32 + 3), 1);
	close(fd);
	text = journal_newest(dir, &seq);
	cr_assert_str_eq(text, "{\"b\":2}");
	cr_assert_eq(seq, 1);
	free(text);

	/* a state file edited by hand is never overridden by older records */
	write_file(dir, "allocations.json", "{\"edited\":true}\n");
	cr_assert_null(journal_newest(dir, &seq));
	manager_free(m);
}

Test(iovd, journal_checkpoint_makes_every_record_stale)
{
	char dir[PATH_MAX], big[3000];
	struct manager *m = journal_manager(dir);
	uint64_t seq = 0, most = 0;
	char *text;

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cr_assert_eq(state_commit(m, "{}", 2), 0);
	/* 4 MiB of 4 KiB records: the journal fills, and a checkpoint takes the commit that does not fit */
	for (int i = 0; i < 1100; i++) {
		big[0] = (char)('a' + i % 26);
		cr_assert_eq(state_commit(m, big, strlen(big)), 0);
		most = journal_records(m) > most ? journal_records(m) : most;
	}
	cr_assert_gt(most, 1000);
	cr_assert_lt(journal_records(m), most, "no checkpoint in %d records", 1100);
	/* the checkpoint's text is allocations.json; records after it are newer */
	text = journal_newest(dir, &seq);
	cr_assert_not_null(text);
	cr_assert_eq(seq, journal_records(m));
	cr_assert_eq(text[0], 'a' + 1099 % 26);
	free(text);
	/* a checkpoint now: allocations.json alone is current, the old records (still in the file) are stale */
	cr_assert_eq(state_checkpoint(m, "{\"last\":1}", 10), 0);
	cr_assert_str_eq(slurp(dir, "/allocations.json"), "{\"last\":1}\n");
	cr_assert_null(journal_newest(dir, &seq));
	cr_assert_eq(state_commit(m, "{\"next\":1}", 10), 0);
	text = journal_newest(dir, &seq);
	cr_assert_str_eq(text, "{\"next\":1}");
	cr_assert_eq(seq, 1);
	free(text);
	manager_free(m);
}

Test(iovd, journal_damage_before_a_later_record_stops_the_start)
{
	char dir[PATH_MAX], path[PATH_MAX + 32];
	struct manager *m = journal_manager(dir), *r = NULL;
	const char *state;
	char *text = NULL;
	uint64_t seq = 0;
	size_t len = 0;
	int fd;

	cr_assert_eq(state_commit(m, "{\"a\":1}", 7), 0);
	cr_assert_eq(state_commit(m, "{\"b\":2}", 7), 0);
	cr_assert_eq(state_commit(m, "{\"c\":3}", 7), 0);
	/* record 1's text rots; record 2 is whole: not a torn write (those are last), damage */
	snprintf(path, sizeof(path), "%s/allocations.journal", dir);
	fd = open(path, O_RDWR | O_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, "X", 1, 4096 + 32 + 3), 1);
	close(fd);
	state = slurp(dir, "/allocations.json");
	cr_assert_eq(manager_new(&r), 0);
	r->state_dir = strdup(dir);
	r->state_dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_eq(journal_read(r, true, journal_crc(0, state, strlen(state)), strlen(state), &text, &len, &seq),
		     -EBADMSG);
	cr_assert_null(text);
	manager_free(r);
	manager_free(m);
}

/* A record whose write failed may be on disk all the same: it must never be read as a commit. */
Test(iovd, journal_a_failed_write_is_never_read_as_a_commit)
{
	char dir[PATH_MAX], cmd[2 * PATH_MAX];
	struct manager *m = journal_manager(dir);
	uint64_t seq = 0;

	cr_assert_eq(state_commit(m, "{\"a\":1}", 7), 0);
	cr_assert_eq(state_commit(m, "{\"b\":2}", 7), 0);
	/* the journal refuses writes (chattr +i: a kernel that checks it on an open descriptor) */
	snprintf(cmd, sizeof(cmd), "chattr +i '%s/allocations.journal' 2>/dev/null", dir);
	if (system(cmd) != 0) {
		manager_free(m);
		cr_skip_test("chattr +i does not work here");
	}
	/* the commit goes to allocations.json instead, and the journal no longer counts */
	cr_assert_eq(state_commit(m, "{\"c\":3}", 7), 0);
	snprintf(cmd, sizeof(cmd), "chattr -i '%s/allocations.journal' 2>/dev/null", dir);
	if (system(cmd) != 0)
		cr_log_warn("%s failed", cmd);
	if (strstr(slurp(dir, "/allocations.json"), "{\"c\":3}") == NULL) {
		/* this kernel let the write through an open descriptor: nothing failed */
		cr_assert_str_eq(journal_newest(dir, &seq), "{\"c\":3}");
		manager_free(m);
		cr_skip_test("the kernel writes an immutable file through a descriptor opened before");
	}
	cr_assert_null(journal_newest(dir, &seq));
	/* and later commits go there too for a while (no new 4 MiB journal per commit) */
	cr_assert_eq(state_commit(m, "{\"d\":4}", 7), 0);
	cr_assert_str_eq(slurp(dir, "/allocations.json"), "{\"d\":4}\n");
	cr_assert_eq(journal_records(m), 0);
	manager_free(m);
}

/* A failed record is dropped alone: the record before it stays readable, and nothing counts it as damage. */
Test(iovd, journal_a_failed_record_is_dropped_and_the_ones_before_it_stay)
{
	char dir[PATH_MAX], path[PATH_MAX + 32];
	struct manager *m = journal_manager(dir);
	uint64_t seq = 0;
	char *text;

	fault_sync_at = 3; /* the header is fdatasync 1, record 1 is 2, record 2 fails */
	fault_sync_fails = 1;
	cr_assert_eq(state_commit(m, "{\"a\":1}", 7), 0);
	cr_assert_eq(state_commit(m, "{\"b\":2}", 7), 0);
	/* the record fails, and so does the checkpoint that takes it instead */
	cr_assert_eq(state_commit(m, "{\"c\":3}", 7), -EIO);
	cr_assert_str_eq(slurp(dir, "/allocations.json"), "{\"a\":1}\n");
	cr_assert_eq(journal_records(m), 1, "the acknowledged record is not counted: no checkpoint at exit");
	text = journal_newest(dir, &seq); /* asserts journal_read() >= 0: not refused as damage */
	cr_assert_str_eq(text, "{\"b\":2}");
	cr_assert_eq(seq, 1);
	free(text);
	/* no record appended meanwhile: the next commit is a checkpoint, and the journal's records are stale */
	cr_assert_eq(state_commit(m, "{\"d\":4}", 7), 0);
	cr_assert_str_eq(slurp(dir, "/allocations.json"), "{\"d\":4}\n");
	cr_assert_eq(journal_records(m), 0);
	cr_assert_null(journal_newest(dir, &seq));
	snprintf(path, sizeof(path), "%s/allocations.journal", dir);
	cr_assert_neq(access(path, F_OK), 0, "the journal of before the failure is left (within the retry time)");
	manager_free(m);
}

/* As a_failed_record_keeps_the_acknowledged_records_before_it_at_a_clean_stop, killed instead of stopped
 * (here, after the journal's helpers): what a restart loads has the Release and not the failed Allocate. */
Test(iovd, a_failed_record_keeps_the_acknowledged_records_before_it_after_a_crash)
{
	struct peer *p = a_failed_commit_after_an_acknowledged_record(1);
	uint64_t seq = 0;
	char *text;
	int status;

	cr_assert_eq(kill(p->pid, SIGKILL), 0);
	cr_assert_eq(waitpid(p->pid, &status, 0), p->pid);
	p->bus = sd_bus_flush_close_unref(p->bus);
	text = journal_newest(p->state, &seq);
	cr_assert_not_null(text, "the journal's acknowledged record is gone: a restart loads allocations.json: %s",
			   slurp(p->state, "/allocations.json"));
	cr_assert_eq(seq, 1);
	cr_assert(!strstr(text, "\"vm-a\"") && !strstr(text, "\"vm-c\""), "%s", text);
	free(text);
	/* and the restart is not refused (the zeroed record is no damage) */
	fault_sync_at = 0; /* the restarted iovd is forked from this process again: no faults there */
	restart(p);
	stop(p);
}
