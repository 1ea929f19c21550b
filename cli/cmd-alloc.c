/* SPDX-License-Identifier: GPL-2.0-or-later */
/* iovctl pools, allocations, alloc, release: clients of iovd over D-Bus. */
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "common/bus-util.h"
#include "common/iovd-bus.h"
#include "common/strv.h"
#include "iovctl.h"

#define BUS_OPTIONS_HELP                                                                              \
	"  --bus-address ADDR  talk to iovd on this D-Bus address (default: $IOVKIT_BUS_ADDRESS,\n" \
	"                      else the system bus)\n"

static const char pools_help[] =
	"Usage: iovctl pools [--json] [--bus-address ADDR]\n"
	"\n"
	"List iovd's pools: their kind (vf: VFs of SR-IOV PFs; device: whole PCI devices\n"
	"with their IOMMU group), the driver what they hand out gets, their members (VFs\n"
	"or devices), allocated and free, their PFs or devices, and the VF settings an\n"
	"allocation gets unless 'iovctl alloc' says otherwise.\n"
	"\n" BUS_OPTIONS_HELP;

static const char allocations_help[] =
	"Usage: iovctl allocations [--json] [--bus-address ADDR]\n"
	"\n"
	"List the VFs iovd has handed out: allocation, pool, owner, VF address, IOMMU\n"
	"group and device node.\n"
	"\n" BUS_OPTIONS_HELP;

static const char alloc_help[] =
	"Usage: iovctl alloc [--json] [--driver vfio-pci|kernel] [--numa NODE] [--mac MAC]\n"
	"                    [--vlan VLANID [--qos QOS]] [--spoofchk on|off] [--trust on|off]\n"
	"                    [--failover bond|macvtap|guest [--bond BOND] [--standby NETDEV]\n"
	"                    [--macvtap-mode MODE]] [--bus-address ADDR] POOL OWNER\n"
	"\n"
	"Ask iovd for a free VF of POOL for OWNER (a name of the caller's choosing, e.g.\n"
	"an instance id; 'iovctl release' or ReleaseOwner gives the VFs back); from a\n"
	"device pool, for a free device with every endpoint of its IOMMU group, all of\n"
	"which the VMM must be given (printed, and \"devices\" in --json). Needs\n"
	"root or iovd's configured group. The VF is the caller's: only its uid and root\n"
	"may release or open it, and OWNER, while it holds the caller's allocations, is\n"
	"refused to other uids but root. iovd's limits.total, limits.per_owner and\n"
	"limits.per_user (all of one uid's allocations; root not counted) apply.\n"
	"\n"
	"  --driver D         vfio-pci (VFIO, for a guest) or kernel (its netdev driver);\n"
	"                     default: the pool's\n"
	"  --numa NODE        prefer a VF on this NUMA node\n"
	"\n"
	"VF settings, set through the PF before the VF is handed out and put back at\n"
	"release; each one given replaces the pool's default ('iovctl pools'):\n"
	"  --mac MAC          the VF's admin MAC (00:00:00:00:00:00 clears it)\n"
	"  --vlan VLANID      VLAN the PF enforces, 0 to 4095 (0: none)\n"
	"  --qos QOS          802.1p priority of that VLAN, 0 to 7 (default 0)\n"
	"  --spoofchk on|off  source MAC/VLAN anti-spoofing\n"
	"  --trust on|off     let the VF change its MAC, go promiscuous, ...\n"
	"\n"
	"A failover group, for live migration ('iovctl failover', iovd(8)):\n"
	"  --failover MODE    bond: the VF's netdev and --standby in an active-backup\n"
	"                     bond --bond (made when missing), the VF active;\n"
	"                     macvtap: a macvtap on the VF's netdev (--macvtap-mode\n"
	"                     passthru, the default, bridge, vepa or private);\n"
	"                     guest: QEMU's failover=on pairs it in the guest\n"
	"                     (bond and macvtap put the VF on its kernel driver)\n" BUS_OPTIONS_HELP;

static const char release_help[] =
	"Usage: iovctl release [--json] [--bus-address ADDR] ALLOCATION\n"
	"\n"
	"Give an allocation back to iovd. ALLOCATION is its object path, its number\n"
	"(the last part of the path) or the VF's PCI address. Only the uid that\n"
	"allocated it and root may.\n"
	"\n" BUS_OPTIONS_HELP;

static const char bus_address_opt_name[] = "bus-address";

#define NOT_RUNNING "iovd is not running (start it with systemctl start iovd, or give --bus-address or " \
		    "IOVKIT_BUS_ADDRESS of the bus it serves)"

/*
 * What the bus itself answers, said in the user's terms: the name has no
 * owner and nothing activates it (iovd is not running), activation failed
 * (iovd did not start), or the bus's policy refused the call. iovd's own
 * errors (org.iovkit.iovd1.Error.*, and System.Error.<ERRNO> for a kernel's
 * errno: a kernel's EACCES is System.Error.EACCES, not AccessDenied, so the
 * names here stay the bus's) already say what is wrong and pass as they are.
 */
static const char *bus_error_meaning(const char *name)
{
	if (!name)
		return NULL;
	if (strcmp(name, SD_BUS_ERROR_SERVICE_UNKNOWN) == 0 || strcmp(name, SD_BUS_ERROR_NAME_HAS_NO_OWNER) == 0)
		return NOT_RUNNING;
	if (strncmp(name, "org.freedesktop.DBus.Error.Spawn.", strlen("org.freedesktop.DBus.Error.Spawn.")) == 0 ||
	    strncmp(name, "org.freedesktop.systemd1.", strlen("org.freedesktop.systemd1.")) == 0)
		return "iovd did not start (journalctl -u iovd says why)";
	if (strcmp(name, SD_BUS_ERROR_ACCESS_DENIED) == 0)
		return "the bus refused the call: its policy for " IOVD_BUS_NAME " (org.iovkit.iovd1.conf in "
		       "/usr/share/dbus-1/system.d/, see iovd(8)) must let this user send to iovd";
	return NULL;
}

/*
 * The errno of each of iovd's errors (iovd(8) ERRORS), for the JSON error's
 * errno triple: sd-bus maps the org.freedesktop.DBus.Error.* names itself
 * (ServiceUnknown EHOSTUNREACH, AccessDenied EACCES, ...), System.Error.<ERRNO>
 * (what iovd sends for a kernel's or library's errno: System.Error.EBUSY) to
 * that errno, and any other name to EIO. The numbers are systemd's for its
 * like errors (LimitsExceeded is ENOBUFS there) and the kernel's for an
 * exhausted ID space (ENOSPC). Failed, for a failure without an errno, is
 * EIO.
 */
static const sd_bus_error_map iovd_error_map[] = {
	SD_BUS_ERROR_MAP(IOVD_ERR_POOL_EXHAUSTED, ENOSPC),
	SD_BUS_ERROR_MAP(IOVD_ERR_LIMIT, ENOBUFS),
	SD_BUS_ERROR_MAP(IOVD_ERR_NOT_FOUND, ENOENT),
	SD_BUS_ERROR_MAP(IOVD_ERR_IN_USE, EBUSY),
	SD_BUS_ERROR_MAP(IOVD_ERR_ACCESS_DENIED, EACCES),
	SD_BUS_ERROR_MAP(IOVD_ERR_INVALID, EINVAL),
	SD_BUS_ERROR_MAP(IOVD_ERR_NOT_SUPPORTED, EOPNOTSUPP),
	SD_BUS_ERROR_MAP(IOVD_ERR_FAILED, EIO),
	SD_BUS_ERROR_MAP_END,
};

/*
 * A failed call: stderr names the D-Bus error, "(System.Error.EBUSY)" as busctl
 * shows it; --json prints it as well, with its errno (iovd_error_map).
 */
static int bus_fail(struct cli *cli, const char *cmd, const sd_bus_error *e, int r)
{
	const char *msg = e && sd_bus_error_is_set(e) ? e->message : strerror(r < 0 ? -r : EIO);
	const char *name = e && sd_bus_error_is_set(e) ? e->name : NULL;
	const char *meaning = bus_error_meaning(name);
	_cleanup_free_ char *joined = NULL;

	if (meaning && asprintf(&joined, "%s: %s", meaning, msg ?: "") >= 0)
		msg = joined;
	fprintf(stderr, "iovctl: %s: %s%s%s%s\n", cmd, msg ?: "", name ? " (" : "", name ?: "", name ? ")" : "");
	if (cli->json) {
		struct json_object *j = json_error_new(msg ?: "", name ? -sd_bus_error_get_errno(e) : r < 0 ? r : -EIO);

		if (name)
			json_object_object_add(j, "dbus_error", json_object_new_string(name));
		print_json_error(j);
	}
	return EXIT_FAILED;
}

/*
 * A connection refused for want of permission: the socket's owner, group
 * and mode next to our uid, so the message names the privilege missing
 * (connect() on a Unix socket needs write permission on it).
 */
static void connect_fail_permission(struct cli *cli, const char *cmd, const char *where, const char *socket_path,
				    int r)
{
	struct stat st;

	if (socket_path && stat(socket_path, &st) == 0) {
		struct passwd *pw = getpwuid(st.st_uid);
		struct group *gr = getgrgid(st.st_gid);
		char owner[32], group[32];

		snprintf(owner, sizeof(owner), "%u", (unsigned)st.st_uid);
		snprintf(group, sizeof(group), "%u", (unsigned)st.st_gid);
		fail(cli, r,
		     "%s: cannot connect to %s: connecting needs write permission on %s (owner %s, group %s, mode "
		     "%04o), which uid %u lacks: run as root or as a user the socket lets in",
		     cmd, where, socket_path, pw ? pw->pw_name : owner, gr ? gr->gr_name : group,
		     (unsigned)(st.st_mode & 07777), (unsigned)geteuid());
	} else
		fail(cli, r,
		     "%s: cannot connect to %s: uid %u may not reach its socket (it needs search permission on the "
		     "directories above it and write permission on the socket): run as root",
		     cmd, where, (unsigned)geteuid());
}

static int connect_bus(struct cli *cli, const char *cmd, const char *address, sd_bus **ret)
{
	const char *system = getenv("DBUS_SYSTEM_BUS_ADDRESS"), *used, *socket_path = NULL;
	char where[512];
	sd_bus *bus = NULL;
	int r;

	if (!address || !*address)
		address = getenv("IOVKIT_BUS_ADDRESS");
	if (!address || !*address)
		address = NULL;
	(void)sd_bus_error_add_map(iovd_error_map); /* once per process: sd-bus ignores a map it has */
	r = bus_connect(address, false, NULL, &bus);
	if (r >= 0) {
		*ret = bus;
		return 0;
	}
	/* the address sd-bus used: ours, else $DBUS_SYSTEM_BUS_ADDRESS, else the well-known socket */
	used = address ?: system && *system ? system : "unix:path=/run/dbus/system_bus_socket";
	snprintf(where, sizeof(where), "%s%s%s", address ? "" : "the system bus (", used, address ? "" : ")");
	if (strncmp(used, "unix:path=", strlen("unix:path=")) == 0 && !strchr(used, ','))
		socket_path = used + strlen("unix:path=");
	if (r == -ENOENT || r == -ECONNREFUSED)
		fail(cli, r, "%s: " NOT_RUNNING ": cannot connect to %s", cmd, where);
	else if (r == -EACCES || r == -EPERM)
		connect_fail_permission(cli, cmd, where, socket_path, r);
	else
		fail(cli, r, "%s: cannot connect to iovd's bus, %s", cmd, where);
	return -1;
}

/* Common option parsing: --json, --help and --bus-address plus extras. */
static int parse(struct cli *cli, const char *cmd, const char *help, int argc, char **argv, struct cmd_opt *opts,
		 int n_operands, const char *operands)
{
	int first = parse_cmd_opts(cli, cmd, help, argc, argv, opts);

	if (first == -1)
		return -EXIT_OK - 1;
	if (first < 0)
		return -EXIT_USAGE - 1;
	if (argc - first != n_operands) {
		if (n_operands == 0)
			usage_error(cli, cmd, "unexpected argument '%s'", argv[first]);
		else
			usage_error(cli, cmd, "needs %s", operands);
		return -EXIT_USAGE - 1;
	}
	return first;
}

#define PARSE_OR_RETURN(first)                    \
	do {                                      \
		if ((first) < 0)                  \
			return -(first) - 1;      \
	} while (0)

static uint64_t id_of(const char *path)
{
	return strncmp(path, IOVD_ALLOC_PREFIX "/", strlen(IOVD_ALLOC_PREFIX "/")) == 0
		       ? strtoull(path + strlen(IOVD_ALLOC_PREFIX "/"), NULL, 10)
		       : 0;
}

/* ---- pools ------------------------------------------------------------------ */

/* o[key], an array of addresses, as [{"address": ...}, ...]. */
static void addresses_to_objects(struct json_object *o, const char *key)
{
	struct json_object *list, *objects;

	if (!json_object_object_get_ex(o, key, &list) || !json_object_is_type(list, json_type_array))
		return;
	objects = json_object_new_array();
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		struct json_object *d = json_object_new_object();

		json_object_object_add(d, "address", json_object_get(json_object_array_get_idx(list, i)));
		json_object_array_add(objects, d);
	}
	json_object_object_add(o, key, objects);
}

/* ListPools' keys as iovctl's JSON names them; others as they are. */
static const char *json_key(const char *key)
{
	static const char *const names[][2] = {
		{ "Driver", "driver" }, { "VFs", "n_vfs" }, { "Allocated", "allocated" },
		{ "Free", "free" },     { "PFs", "pfs" },   { "VfDefaults", "vf_defaults" },
		{ "Kind", "pool_kind" }, { "Devices", "devices" }, { "FreeDevices", "free_devices" },
		{ "Numa", "numa_policy" },
	};

	for (size_t i = 0; i < ELEMENTSOF(names); i++)
		if (strcmp(key, names[i][0]) == 0)
			return names[i][1];
	return key;
}

static int read_dict(sd_bus_message *m, struct json_object *o);

/* A variant of the types iovd's dictionaries hold, as JSON; *ret stays NULL for other types (skipped). */
static int read_variant_json(sd_bus_message *m, struct json_object **ret)
{
	union {
		const char *s;
		uint64_t t;
		uint32_t u;
		int32_t i;
		uint16_t q;
		uint8_t y;
		int b;
	} x;
	const char *contents;
	int r;

	r = sd_bus_message_peek_type(m, NULL, &contents);
	if (r >= 0)
		r = sd_bus_message_enter_container(m, 'v', contents);
	if (r < 0)
		return r;
	if (strcmp(contents, "a{sv}") == 0) {
		*ret = json_object_new_object();
		r = read_dict(m, *ret);
	} else if (strcmp(contents, "as") == 0) {
		*ret = json_object_new_array();
		r = sd_bus_message_enter_container(m, 'a', "s");
		while (r >= 0 && (r = sd_bus_message_read(m, "s", &x.s)) > 0)
			json_object_array_add(*ret, json_object_new_string(x.s));
		if (r >= 0)
			r = sd_bus_message_exit_container(m);
	} else if (strcmp(contents, "aa{sv}") == 0) {
		/* failover groups: a list of dictionaries */
		*ret = json_object_new_array();
		r = sd_bus_message_enter_container(m, 'a', "a{sv}");
		while (r >= 0 && sd_bus_message_at_end(m, false) == 0) {
			struct json_object *d = json_object_new_object();

			json_object_array_add(*ret, d);
			r = read_dict(m, d);
		}
		if (r >= 0)
			r = sd_bus_message_exit_container(m);
	} else if (strlen(contents) == 1 && strchr("soituqyb", contents[0])) {
		r = sd_bus_message_read_basic(m, contents[0], &x);
		if (r >= 0)
			*ret = contents[0] == 's' || contents[0] == 'o' ? json_object_new_string(x.s)
			       : contents[0] == 't' ? json_object_new_uint64(x.t)
			       : contents[0] == 'i' ? json_object_new_int(x.i)
			       : contents[0] == 'u' ? json_object_new_int64(x.u)
			       : contents[0] == 'q' ? json_object_new_int(x.q)
			       : contents[0] == 'y' ? json_object_new_int(x.y)
						    : json_object_new_boolean(x.b);
	} else
		r = sd_bus_message_skip(m, contents);
	if (r >= 0)
		r = sd_bus_message_exit_container(m);
	return r;
}

/* An a{sv} of iovd's (a pool, VF settings) into the JSON object o. */
static int read_dict(sd_bus_message *m, struct json_object *o)
{
	int r = sd_bus_message_enter_container(m, 'a', "{sv}");

	while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
		struct json_object *v = NULL;
		const char *key;

		r = sd_bus_message_read(m, "s", &key);
		if (r >= 0)
			r = read_variant_json(m, &v);
		if (v)
			json_object_object_add(o, json_key(key), v);
		if (r >= 0)
			r = sd_bus_message_exit_container(m);
	}
	if (r >= 0)
		r = sd_bus_message_exit_container(m);
	return r;
}

/* VF settings in JSON as iproute2's words: "vlan 100 qos 0 trust on". */
static void format_vf_settings(struct json_object *o, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	if (!o)
		return;
	json_object_object_foreach(o, key, val) {
		const char *word = json_object_get_string(val);

		if (json_object_is_type(val, json_type_boolean))
			word = json_object_get_boolean(val) ? "on" : "off";
		if (len < size)
			len += (size_t)snprintf(buf + len, size - len, "%s%s %s", len ? " " : "", key, word);
	}
}

int cmd_pools(struct cli *cli, int argc, char **argv)
{
	const char *address = NULL;
	struct cmd_opt opts[] = { { bus_address_opt_name, true, &address }, {} };
	_cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	_cleanup_(sd_bus_unrefp) sd_bus *bus = NULL;
	struct json_object *list = json_object_new_array();
	int first, r;

	first = parse(cli, "pools", pools_help, argc, argv, opts, 0, NULL);
	if (first < 0)
		json_object_put(list);
	PARSE_OR_RETURN(first);
	if (connect_bus(cli, "pools", address, &bus) < 0) {
		json_object_put(list);
		return EXIT_FAILED;
	}
	r = sd_bus_call_method(bus, IOVD_BUS_NAME, IOVD_PATH, IOVD_MANAGER_IFACE, "ListPools", &e, &reply, "");
	if (r < 0) {
		json_object_put(list);
		return bus_fail(cli, "pools", &e, r);
	}
	r = sd_bus_message_enter_container(reply, 'a', "(sa{sv})");
	while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'r', "sa{sv}")) > 0) {
		struct json_object *o = json_object_new_object();
		const char *name;

		r = sd_bus_message_read(reply, "s", &name);
		if (r >= 0) {
			json_object_object_add(o, "name", json_object_new_string(name));
			r = read_dict(reply, o);
		}
		/* a device pool's members: device objects, as everywhere in the vocabulary */
		addresses_to_objects(o, "devices");
		addresses_to_objects(o, "free_devices");
		json_object_array_add(list, o);
		if (r >= 0)
			r = sd_bus_message_exit_container(reply);
	}
	if (r < 0) {
		json_object_put(list);
		return fail(cli, r, "pools: cannot parse iovd's reply");
	}
	if (cli->json) {
		print_json(list);
		return EXIT_OK;
	}
	printf("%-16s %-6s %-9s %7s %5s  %-14s %s\n", "POOL", "KIND", "DRIVER", "MEMBERS", "FREE", "PFS/DEVICES",
	       "VF DEFAULTS");
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		struct json_object *o = json_object_array_get_idx(list, i), *v, *pf = NULL;
		bool device = json_object_object_get_ex(o, "devices", &pf);
		char pfs[512] = "", defaults[256];
		size_t len = 0;

		if (!device)
			json_object_object_get_ex(o, "pfs", &pf);
		for (size_t j = 0; pf && j < json_object_array_length(pf) && len < sizeof(pfs); j++) {
			struct json_object *member = json_object_array_get_idx(pf, j), *a = member;

			if (device)
				json_object_object_get_ex(member, "address", &a);
			len += (size_t)snprintf(pfs + len, sizeof(pfs) - len, "%s%s", j ? "," : "", json_object_get_string(a));
		}
		printf("%-16s %-6s %-9s", json_object_get_string(json_object_object_get_ex(o, "name", &v) ? v : NULL),
		       json_object_get_string(json_object_object_get_ex(o, "pool_kind", &v) ? v : NULL),
		       json_object_get_string(json_object_object_get_ex(o, "driver", &v) ? v : NULL));
		printf(" %7d", device ? (int)json_object_array_length(pf)
				      : json_object_get_int(json_object_object_get_ex(o, "n_vfs", &v) ? v : NULL));
		format_vf_settings(json_object_object_get_ex(o, "vf_defaults", &v) ? v : NULL, defaults, sizeof(defaults));
		printf(" %5d  %-14s %s\n", json_object_get_int(json_object_object_get_ex(o, "free", &v) ? v : NULL),
		       pfs[0] ? pfs : "-", defaults[0] ? defaults : "-");
	}
	json_object_put(list);
	return EXIT_OK;
}

/* ---- allocations ------------------------------------------------------------------ */

static int list_allocations(sd_bus *bus, sd_bus_error *e, struct json_object **ret)
{
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	struct json_object *list;
	const char *path, *pool, *owner, *address, *node, *driver;
	int32_t group;
	uint64_t created;
	int r;

	r = sd_bus_call_method(bus, IOVD_BUS_NAME, IOVD_PATH, IOVD_MANAGER_IFACE, "ListAllocations", e, &reply, "");
	if (r < 0)
		return r;
	r = sd_bus_message_enter_container(reply, 'a', "(osssisst)");
	if (r < 0)
		return r;
	list = json_object_new_array();
	while ((r = sd_bus_message_read(reply, "(osssisst)", &path, &pool, &owner, &address, &group, &node, &driver,
					&created)) > 0) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "allocation", json_object_new_string(path));
		json_object_object_add(o, "id", json_object_new_uint64(id_of(path)));
		json_object_object_add(o, "pool", json_object_new_string(pool));
		json_object_object_add(o, "owner", json_object_new_string(owner));
		json_object_object_add(o, "address", json_object_new_string(address));
		json_object_object_add(o, "iommu_group", group >= 0 ? json_object_new_int(group) : NULL);
		json_object_object_add(o, "device_node", node[0] ? json_object_new_string(node) : NULL);
		json_object_object_add(o, "driver", driver[0] ? json_object_new_string(driver) : NULL);
		json_object_object_add(o, "created_usec", json_object_new_uint64(created));
		json_object_array_add(list, o);
	}
	if (r < 0) {
		json_object_put(list);
		return r;
	}
	*ret = list;
	return 0;
}

static const char *jstr(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) && v ? json_object_get_string(v) : "-";
}

int iovd_allocations(const char *bus_address, struct json_object **ret)
{
	_cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
	_cleanup_(sd_bus_unrefp) sd_bus *bus = NULL;
	int r;

	if (!bus_address || !*bus_address)
		bus_address = getenv("IOVKIT_BUS_ADDRESS");
	r = bus_connect(bus_address && *bus_address ? bus_address : NULL, false, NULL, &bus);
	if (r < 0)
		return r;
	r = list_allocations(bus, &e, ret);
	/* iovd not running, with a bus there: the bus says so */
	if (r < 0 && (sd_bus_error_has_name(&e, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
		      sd_bus_error_has_name(&e, SD_BUS_ERROR_NAME_HAS_NO_OWNER)))
		return -ESRCH;
	return r;
}

int cmd_allocations(struct cli *cli, int argc, char **argv)
{
	const char *address = NULL;
	struct cmd_opt opts[] = { { bus_address_opt_name, true, &address }, {} };
	_cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
	_cleanup_(sd_bus_unrefp) sd_bus *bus = NULL;
	struct json_object *list = NULL;
	int first, r;

	first = parse(cli, "allocations", allocations_help, argc, argv, opts, 0, NULL);
	PARSE_OR_RETURN(first);
	if (connect_bus(cli, "allocations", address, &bus) < 0)
		return EXIT_FAILED;
	r = list_allocations(bus, &e, &list);
	if (r < 0)
		return bus_fail(cli, "allocations", &e, r);
	if (cli->json) {
		print_json(list);
		return EXIT_OK;
	}
	printf("%-6s %-16s %-24s %-13s %5s  %s\n", "ID", "POOL", "OWNER", "ADDRESS", "GROUP", "DEVICE");
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		struct json_object *o = json_object_array_get_idx(list, i);

		printf("%-6s %-16s %-24s %-13s %5s  %s\n", jstr(o, "id"), jstr(o, "pool"), jstr(o, "owner"),
		       jstr(o, "address"), jstr(o, "iommu_group"), jstr(o, "device_node"));
	}
	json_object_put(list);
	return EXIT_OK;
}

/* ---- failover ------------------------------------------------------------------------- */

static const char failover_help[] =
	"Usage: iovctl failover prepare [--json] [--bus-address ADDR] OWNER\n"
	"       iovctl failover complete [--json] [--bus-address ADDR] OWNER\n"
	"       iovctl failover abort [--json] [--bus-address ADDR] OWNER\n"
	"       iovctl failover status [--json] [--bus-address ADDR] OWNER\n"
	"       iovctl failover incoming [--json] --failover bond|macvtap|guest [alloc's options] POOL OWNER\n"
	"\n"
	"The steps of a live migration of a VM that holds a VF, on OWNER's failover\n"
	"groups (made by 'iovctl alloc --failover ...'; iovd(8), FAILOVER GROUPS):\n"
	"  prepare    source, before the migration: bond: switch to the standby and wait\n"
	"             until the kernel reports it active; guest: the VF may be unplugged\n"
	"  complete   source, after the VM left: release the VF as 'release' does;\n"
	"             destination, after the VM arrived: switch the bond to the VF\n"
	"  abort      source: back to the VF as before; destination: release the VF\n"
	"  incoming   destination, before the VM arrives: allocate a VF of POOL with the\n"
	"             MAC/VLAN the VM had (--mac, --vlan) and build its bond (on the\n"
	"             standby) or macvtap; prints the tap node, VF and IOMMU group\n"
	"  status     each group: mode, state, the bond's active slave, the tap node\n"
	"Each step says how long it took (usec) and is safe to repeat.\n"
	"\n" BUS_OPTIONS_HELP;

static void print_group_text(struct json_object *g)
{
	struct json_object *v;

	printf("  %s (VF %s): %s, %s", jstr(g, "allocation"), jstr(g, "address"), jstr(g, "failover"), jstr(g, "failover_state"));
	if (json_object_object_get_ex(g, "bond", &v))
		printf(", bond %s (VF %s, standby %s), active %s", json_object_get_string(v), jstr(g, "vf_netdev"),
		       jstr(g, "standby"), jstr(g, "active_slave"));
	if (json_object_object_get_ex(g, "tap_node", &v))
		printf(", macvtap %s on %s, %s", jstr(g, "macvtap"), jstr(g, "vf_netdev"), json_object_get_string(v));
	if (json_object_object_get_ex(g, "unplug", &v) && json_object_get_boolean(v))
		printf(", the VF may be unplugged");
	if (json_object_object_get_ex(g, "switch_usec", &v) && json_object_get_uint64(v))
		printf(", last switch %s us", json_object_get_string(v));
	printf("\n");
}

/* A step's a{sv} reply: JSON, or a line and one per group. */
static int print_step(struct cli *cli, const char *cmd, sd_bus_message *reply)
{
	struct json_object *o = json_object_new_object(), *groups;
	int r = read_dict(reply, o);

	if (r < 0) {
		json_object_put(o);
		return fail(cli, r, "%s: cannot read iovd's reply", cmd);
	}
	if (cli->json) {
		print_json(o);
		return EXIT_OK;
	}
	if (json_object_object_get_ex(o, "failover_groups", &groups)) {
		printf("%s %s: %s in %s us (%s group%s)\n", jstr(o, "migration_step"), jstr(o, "owner"),
		       jstr(o, "failover_state"), jstr(o, "usec"), jstr(o, "n_groups"), strcmp(jstr(o, "n_groups"), "1") == 0 ? "" : "s");
		for (size_t i = 0; i < json_object_array_length(groups); i++)
			print_group_text(json_object_array_get_idx(groups, i));
	} else {
		printf("incoming: %s in %s us, IOMMU group %s%s%s\n", jstr(o, "allocation"), jstr(o, "usec"),
		       jstr(o, "iommu_group"), *jstr(o, "device_node") ? ", " : "", jstr(o, "device_node"));
		print_group_text(o);
	}
	json_object_put(o);
	return EXIT_OK;
}

static int failover_step(struct cli *cli, const char *method, const char *cmd, int argc, char **argv)
{
	const char *address = NULL;
	struct cmd_opt opts[] = { { bus_address_opt_name, true, &address }, {} };
	_cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
	_cleanup_(sd_bus_unrefp) sd_bus *bus = NULL;
	int first, r;

	first = parse(cli, cmd, failover_help, argc, argv, opts, 1, "OWNER");
	PARSE_OR_RETURN(first);
	if (connect_bus(cli, cmd, address, &bus) < 0)
		return EXIT_FAILED;
	r = sd_bus_call_method(bus, IOVD_BUS_NAME, IOVD_PATH, IOVD_MANAGER_IFACE, method, &e, &reply, "s", argv[first]);
	if (r < 0)
		return bus_fail(cli, cmd, &e, r);
	return print_step(cli, cmd, reply);
}

static int failover_prepare(struct cli *cli, int argc, char **argv)
{
	return failover_step(cli, "PrepareMigration", "failover prepare", argc, argv);
}

static int failover_complete(struct cli *cli, int argc, char **argv)
{
	return failover_step(cli, "CompleteMigration", "failover complete", argc, argv);
}

static int failover_abort(struct cli *cli, int argc, char **argv)
{
	return failover_step(cli, "AbortMigration", "failover abort", argc, argv);
}

static int alloc_common(struct cli *cli, const char *cmd, const char *help, bool incoming, int argc, char **argv);

static int failover_incoming(struct cli *cli, int argc, char **argv)
{
	return alloc_common(cli, "failover incoming", failover_help, true, argc, argv);
}

/* The FailoverState of each of OWNER's allocations that has a group. */
static int failover_status(struct cli *cli, int argc, char **argv)
{
	const char *address = NULL;
	struct cmd_opt opts[] = { { bus_address_opt_name, true, &address }, {} };
	_cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
	_cleanup_(sd_bus_unrefp) sd_bus *bus = NULL;
	struct json_object *list = NULL, *groups = json_object_new_array(), *out;
	int first, r = -EIO;

	first = parse(cli, "failover status", failover_help, argc, argv, opts, 1, "OWNER");
	if (first < 0)
		json_object_put(groups);
	PARSE_OR_RETURN(first);
	if (connect_bus(cli, "failover status", address, &bus) < 0 || (r = list_allocations(bus, &e, &list)) < 0) {
		json_object_put(groups);
		return bus ? bus_fail(cli, "failover status", &e, r) : EXIT_FAILED;
	}
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		struct json_object *a = json_object_array_get_idx(list, i), *g;
		_cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;

		if (strcmp(jstr(a, "owner"), argv[first]) != 0)
			continue;
		r = sd_bus_get_property(bus, IOVD_BUS_NAME, jstr(a, "allocation"), IOVD_ALLOC_IFACE, "FailoverState", &e,
					&reply, "a{sv}");
		if (r < 0) {
			json_object_put(list);
			json_object_put(groups);
			return bus_fail(cli, "failover status", &e, r);
		}
		g = json_object_new_object();
		if (read_dict(reply, g) < 0 || json_object_object_length(g) == 0) {
			json_object_put(g);
			continue;
		}
		json_object_array_add(groups, g);
	}
	json_object_put(list);
	out = json_object_new_object();
	json_object_object_add(out, "owner", json_object_new_string(argv[first]));
	json_object_object_add(out, "failover_groups", groups);
	if (cli->json)
		print_json(out);
	else {
		printf("%s: %zu failover group%s\n", argv[first], json_object_array_length(groups),
		       json_object_array_length(groups) == 1 ? "" : "s");
		for (size_t i = 0; i < json_object_array_length(groups); i++)
			print_group_text(json_object_array_get_idx(groups, i));
		json_object_put(out);
	}
	return EXIT_OK;
}

int cmd_failover(struct cli *cli, int argc, char **argv)
{
	static const struct subcommand subs[] = {
		{ "prepare", failover_prepare },   { "complete", failover_complete }, { "abort", failover_abort },
		{ "incoming", failover_incoming }, { "status", failover_status },
	};

	return run_subcommand(cli, "failover", failover_help, subs, ELEMENTSOF(subs), argc, argv);
}

/* ---- alloc -------------------------------------------------------------------------- */

/* AllocateEx, or PrepareIncoming (incoming); both answer an a{sv}. */
static int alloc_common(struct cli *cli, const char *cmd, const char *help, bool incoming, int argc, char **argv)
{
	const char *address = NULL, *driver = NULL, *numa = NULL, *mac = NULL, *vlan = NULL, *qos = NULL,
		   *spoofchk = NULL, *trust = NULL, *failover = NULL, *bond = NULL, *standby = NULL,
		   *macvtap_mode = NULL;
	struct cmd_opt opts[] = {
		{ "failover", true, &failover },
		{ "bond", true, &bond },
		{ "standby", true, &standby },
		{ "macvtap-mode", true, &macvtap_mode },
		{ bus_address_opt_name, true, &address },
		{ "driver", true, &driver },
		{ "numa", true, &numa },
		{ "mac", true, &mac },
		{ "vlan", true, &vlan },
		{ "qos", true, &qos },
		{ "spoofchk", true, &spoofchk },
		{ "trust", true, &trust },
		{},
	};
	_cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
	_cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL, *reply = NULL;
	_cleanup_(sd_bus_unrefp) sd_bus *bus = NULL;
	struct json_object *res, *devices;
	IOVK_VF_SETTINGS(settings);
	const char *path, *node, *words[10];
	char mac_text[IOVK_VF_MAC_STRING_MAX];
	int32_t group;
	long numa_node = -1;
	int first, r, n_words = 0;

	first = parse(cli, cmd, help, argc, argv, opts, 2, "POOL and OWNER");
	PARSE_OR_RETURN(first);
	if ((bond || standby || macvtap_mode) && !failover)
		return usage_error(cli, cmd, "--bond, --standby and --macvtap-mode need --failover");
	if (incoming && !failover)
		return usage_error(cli, cmd, "needs --failover bond|macvtap|guest");
	if (driver && strcmp(driver, "vfio-pci") != 0 && strcmp(driver, "kernel") != 0)
		return usage_error(cli, cmd, "--driver takes vfio-pci or kernel, not '%s'", driver);
	if (numa) {
		char *end;

		errno = 0;
		numa_node = strtol(numa, &end, 10);
		if (errno || *end || !*numa || numa_node < 0 || numa_node > 4095)
			return usage_error(cli, cmd, "--numa takes a NUMA node, 0 to 4095");
	}
	/* iproute2's words, checked by libiovkit as for 'iovctl vf set'; its
	 * error names the word first, which is the option's name here. */
	if (qos && !vlan)
		return usage_error(cli, cmd, "--qos needs --vlan (qos is the priority of the VLAN's tags)");
	for (const char *const *w = (const char *const[]){ "mac", mac, "vlan", vlan, "qos", qos, "spoofchk", spoofchk,
							   "trust", trust, NULL };
	     *w; w += 2)
		if (w[1]) {
			words[n_words++] = w[0];
			words[n_words++] = w[1];
		}
	if (n_words > 0 && iovk_vf_settings_parse(cli->ctx, n_words, (char *const *)words, &settings) < 0)
		return usage_error(cli, cmd, "--%s", iovk_ctx_get_error(cli->ctx));
	if (connect_bus(cli, cmd, address, &bus) < 0)
		return EXIT_FAILED;
	/* AllocateEx: its reply names every endpoint, in the one call that made the allocation */
	r = sd_bus_message_new_method_call(bus, &call, IOVD_BUS_NAME, IOVD_PATH, IOVD_MANAGER_IFACE,
						   incoming ? "PrepareIncoming" : "AllocateEx");
	if (r >= 0)
		r = sd_bus_message_append(call, "ss", argv[first], argv[first + 1]);
	if (r >= 0)
		r = sd_bus_message_open_container(call, 'a', "{sv}");
	if (r >= 0 && driver)
		r = sd_bus_message_append(call, "{sv}", "driver", "s", driver);
	if (r >= 0 && numa)
		r = sd_bus_message_append(call, "{sv}", "numa", "i", (int32_t)numa_node);
	/* the types iovd's Allocate takes (iovd(8)) */
	if (r >= 0 && (settings.fields & IOVK_VF_MAC))
		r = sd_bus_message_append(call, "{sv}", "mac", "s", iovk_vf_format_mac(settings.mac, mac_text));
	if (r >= 0 && (settings.fields & IOVK_VF_VLAN))
		r = sd_bus_message_append(call, "{sv}{sv}", "vlan", "q", settings.vlan, "qos", "y", settings.qos);
	if (r >= 0 && (settings.fields & IOVK_VF_SPOOFCHK))
		r = sd_bus_message_append(call, "{sv}", "spoofchk", "b", (int)settings.spoofchk);
	if (r >= 0 && (settings.fields & IOVK_VF_TRUST))
		r = sd_bus_message_append(call, "{sv}", "trust", "b", (int)settings.trust);
	/* iovd checks the words (InvalidArgument names the option) */
	for (const char *const *w = (const char *const[]){ "failover", failover, "bond", bond, "standby", standby,
							   "macvtap_mode", macvtap_mode, NULL };
	     r >= 0 && *w; w += 2)
		if (w[1])
			r = sd_bus_message_append(call, "{sv}", w[0], "s", w[1]);
	if (r >= 0)
		r = sd_bus_message_close_container(call);
	if (r < 0)
		return fail(cli, r, "%s: cannot build the call", cmd);
	r = sd_bus_call(bus, call, 0, &e, &reply);
	if (r >= 0 && incoming)
		return print_step(cli, cmd, reply);
	if (r < 0)
		return bus_fail(cli, cmd, &e, r);
	res = json_object_new_object();
	r = read_dict(reply, res);
	if (r < 0) {
		json_object_put(res);
		return fail(cli, r, "%s: cannot read iovd's reply", cmd);
	}
	if (!json_object_object_get_ex(res, "devices", &devices) || !json_object_is_type(devices, json_type_array) ||
	    !json_object_object_get_ex(res, "allocation", NULL) || !json_object_object_get_ex(res, "device_node", NULL)) {
		json_object_put(res);
		return fail(cli, -EBADMSG, "%s: iovd's reply lacks allocation, devices or device_node", cmd);
	}
	path = jstr(res, "allocation");
	group = json_object_get_int(json_object_object_get(res, "iommu_group"));
	node = jstr(res, "device_node");
	if (cli->json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "allocation", json_object_new_string(path));
		json_object_object_add(o, "id", json_object_new_uint64(id_of(path)));
		json_object_object_add(o, "pool", json_object_new_string(argv[first]));
		json_object_object_add(o, "owner", json_object_new_string(argv[first + 1]));
		json_object_object_add(o, "address", json_object_new_string(jstr(res, "address")));
		json_object_object_add(o, "iommu_group", group >= 0 ? json_object_new_int(group) : NULL);
		json_object_object_add(o, "device_node", node[0] ? json_object_new_string(node) : NULL);
		json_object_object_add(o, "pool_kind", json_object_new_string(jstr(res, "pool_kind")));
		json_object_object_add(o, "devices", json_object_get(devices));
		addresses_to_objects(o, "devices");
		print_json(o);
	} else if (strcmp(jstr(res, "pool_kind"), "device") == 0) {
		printf("%s: device %s, IOMMU group %d%s%s; give the VMM:", path, jstr(res, "address"), group,
		       node[0] ? ", " : "", node);
		for (size_t i = 0; i < json_object_array_length(devices); i++)
			printf(" %s", json_object_get_string(json_object_array_get_idx(devices, i)));
		printf("\n");
	} else {
		printf("%s: VF %s, IOMMU group %d%s%s\n", path, jstr(res, "address"), group, node[0] ? ", " : "", node);
	}
	json_object_put(res);
	return EXIT_OK;
}

int cmd_alloc(struct cli *cli, int argc, char **argv)
{
	return alloc_common(cli, "alloc", alloc_help, false, argc, argv);
}

/* ---- release -------------------------------------------------------------------------- */

/* ALLOCATION as a path, a number or a VF address, to the object path. */
static int resolve_allocation(struct cli *cli, sd_bus *bus, const char *arg, char **ret)
{
	_cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
	struct iovk_pci_addr want, have;
	struct json_object *list = NULL;
	char *end;
	int r;

	if (arg[0] == '/') {
		if (!sd_bus_object_path_is_valid(arg)) {
			usage_error(cli, "release", "'%s' is not a D-Bus object path", arg);
			return -EINVAL;
		}
		*ret = strdup(arg);
		return *ret ? 0 : -ENOMEM;
	}
	errno = 0;
	(void)strtoull(arg, &end, 10);
	if (!errno && *arg && !*end && arg[0] != '-')
		return asprintf(ret, IOVD_ALLOC_PREFIX "/%s", arg) < 0 ? -ENOMEM : 0;
	if (iovk_pci_addr_parse(arg, &want) < 0) {
		usage_error(cli, "release", "'%s' is not an allocation path, number or PCI address", arg);
		return -EINVAL;
	}
	r = list_allocations(bus, &e, &list);
	if (r < 0) {
		bus_fail(cli, "release", &e, r);
		return -EIO;
	}
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		struct json_object *o = json_object_array_get_idx(list, i);

		if (iovk_pci_addr_parse(jstr(o, "address"), &have) == 0 && iovk_pci_addr_compare(&want, &have) == 0) {
			*ret = strdup(jstr(o, "allocation"));
			json_object_put(list);
			return *ret ? 0 : -ENOMEM;
		}
	}
	json_object_put(list);
	fail_text(cli, -ENOENT, "release: VF %s is not allocated", arg);
	return -ENOENT;
}

int cmd_release(struct cli *cli, int argc, char **argv)
{
	const char *address = NULL;
	struct cmd_opt opts[] = { { bus_address_opt_name, true, &address }, {} };
	_cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
	_cleanup_(sd_bus_unrefp) sd_bus *bus = NULL;
	_cleanup_free_ char *path = NULL;
	int first, r;

	first = parse(cli, "release", release_help, argc, argv, opts, 1, "ALLOCATION");
	PARSE_OR_RETURN(first);
	if (connect_bus(cli, "release", address, &bus) < 0)
		return EXIT_FAILED;
	r = resolve_allocation(cli, bus, argv[first], &path);
	if (r == -EINVAL)
		return EXIT_USAGE;
	if (r < 0)
		return EXIT_FAILED;
	r = sd_bus_call_method(bus, IOVD_BUS_NAME, IOVD_PATH, IOVD_MANAGER_IFACE, "Release", &e, NULL, "o", path);
	if (r < 0)
		return bus_fail(cli, "release", &e, r);
	if (cli->json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "allocation", json_object_new_string(path));
		json_object_object_add(o, "released", json_object_new_boolean(true));
		print_json(o);
	} else {
		printf("%s: released\n", path);
	}
	return EXIT_OK;
}
