/* SPDX-License-Identifier: GPL-2.0-or-later */
/* iovctl passthrough prepare, release */
#include <stdio.h>
#include <string.h>

#include "iovctl.h"

static const char passthrough_help[] =
	"Usage: iovctl passthrough prepare [--json] [--force] [--failover STANDBY_MAC] BDF\n"
	"       iovctl passthrough release [--json] BDF\n"
	"\n"
	"Hand a device's IOMMU group to a VMM (every endpoint on vfio-pci, with the QEMU\n"
	"and libvirt lines to use it), and give it back to the host.\n"
	"'iovctl passthrough COMMAND --help' describes each command.\n";

static const char prepare_help[] =
	"Usage: iovctl passthrough prepare [--json] [--force] [--failover STANDBY_MAC] BDF\n"
	"\n"
	"BDF: a PCI address (0000:3b:00.0, 3b:00.0), libvirt's pci_0000_3b_00_0, or a\n"
	"network interface of the device.\n"
	"\n"
	"Check the device's IOMMU group, then bind every endpoint of it to vfio-pci (all\n"
	"or nothing; bridges stay on pcieport) and print the QEMU -device arguments and\n"
	"the libvirt <hostdev> elements for every endpoint of the group.\n"
	"\n"
	"Refused, naming the device and why, with nothing changed, when:\n"
	"  - another endpoint of the group is on a kernel driver (only BDF itself is\n"
	"    taken from its driver: bind or unbind the others first);\n"
	"  - BDF is in use by the host: a network interface of it is up, addressed,\n"
	"    routed or in a bond or bridge, a block device below it is mounted, swap or\n"
	"    held by device-mapper/md, it is the boot VGA device on a kernel driver, it\n"
	"    is a PF with VFs enabled, or iovd allocated it (as 'iovctl bind' refuses).\n"
	"\n"
	"  --force   take BDF although the host uses it (says what it overrides); the\n"
	"            other endpoints' drivers still block\n"
	"  --failover STANDBY_MAC\n"
	"            guest failover for live migration (QEMU's virtio-net failover=on,\n"
	"            the guest's net_failover): the lines pair BDF with a virtio-net\n"
	"            standby of that MAC (QEMU failover_pair_id, libvirt <teaming>); QEMU\n"
	"            unplugs the VF when a migration starts (iovd(8), FAILOVER GROUPS)\n"
	"\n"
	"The previous drivers are recorded durably in /run/iovkit/passthrough/ before\n"
	"anything moves; 'iovctl passthrough release' puts them back, from any process.\n";

static const char release_help[] =
	"Usage: iovctl passthrough release [--json] BDF\n"
	"\n"
	"Put the endpoints of the group that 'iovctl passthrough prepare' moved back on\n"
	"their previous drivers (from its record; BDF may be any endpoint of the group,\n"
	"by PCI address or libvirt name: on vfio-pci it has no network interface)\n"
	"and remove the record. Devices that were on vfio-pci before prepare stay there.\n"
	"Without a record there is nothing to release: exit status 0.\n";

/*
 * The libvirt element of one function, managed='no': the binding is ours,
 * not libvirt's. With a failover MAC (the requested device only) it is the
 * transient member of a <teaming> pair, an <interface type='hostdev'>
 * (libvirt's formatdomain: a VF in a failover pair must be an interface).
 */
static int append_hostdev(char **xml, const char *address, const char *failover_mac)
{
	struct iovk_pci_addr a;
	char *s;
	int n;

	if (iovk_pci_addr_parse(address, &a) < 0)
		return -EINVAL;
	if (failover_mac)
		n = asprintf(&s,
			     "%s<interface type='network'>\n"
			     "  <mac address='%s'/>\n"
			     "  <source network='default'/>\n"
			     "  <model type='virtio'/>\n"
			     "  <teaming type='persistent'/>\n"
			     "  <alias name='ua-standby0'/>\n"
			     "</interface>\n"
			     "<interface type='hostdev' managed='no'>\n"
			     "  <mac address='%s'/>\n"
			     "  <source>\n"
			     "    <address type='pci' domain='0x%04x' bus='0x%02x' slot='0x%02x' function='0x%x'/>\n"
			     "  </source>\n"
			     "  <teaming type='transient' persistent='ua-standby0'/>\n"
			     "</interface>\n",
			     *xml ? *xml : "", failover_mac, failover_mac, a.domain, a.bus, a.dev, a.fn);
	else
		n = asprintf(&s,
		     "%s<hostdev mode='subsystem' type='pci' managed='no'>\n"
		     "  <source>\n"
		     "    <address domain='0x%04x' bus='0x%02x' slot='0x%02x' function='0x%x'/>\n"
		     "  </source>\n"
		     "</hostdev>\n",
		     *xml ? *xml : "", a.domain, a.bus, a.dev, a.fn);
	if (n < 0)
		return -ENOMEM;
	free(*xml);
	*xml = s;
	return 0;
}

static const char *or_none(const char *driver)
{
	return driver[0] ? driver : "no driver";
}

static struct json_object *string_or_null(const char *s)
{
	return s && s[0] ? json_object_new_string(s) : NULL;
}

static struct json_object *devices_json(const struct iovk_passthrough *p)
{
	struct json_object *a = json_object_new_array();

	for (size_t i = 0; i < iovk_passthrough_get_n_devices(p); i++) {
		const struct iovk_passthrough_device *d = iovk_passthrough_get_device(p, i);
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "address", json_object_new_string(d->address));
		json_object_object_add(o, "previous_driver", string_or_null(d->previous_driver));
		json_object_object_add(o, "driver", string_or_null(d->driver));
		json_object_object_add(o, "requested", json_object_new_boolean(d->requested));
		json_object_object_add(o, "changed", json_object_new_boolean(d->changed));
		json_object_array_add(a, o);
	}
	return a;
}

/*
 * A refused prepare: the usual error on stderr, and in JSON every blocker.
 * text is the library's error, saved before the check cleared it.
 */
/* A blocker that --force overrode: one of the host-use reasons. */
static bool overridden(const struct iovk_in_use *forced, const struct iovk_passthrough_blocker *b)
{
	for (size_t i = 0; i < iovk_in_use_get_n_reasons(forced); i++) {
		const struct iovk_in_use_reason *r = iovk_in_use_get_reason(forced, i);

		if (strcmp(r->address, b->address) == 0 && strcmp(r->reason, b->reason) == 0)
			return true;
	}
	return false;
}

static int fail_blocked(struct cli *cli, int err, const char *address, const char *text,
			const struct iovk_passthrough *plan, const struct iovk_in_use *forced)
{
	const char *detail = text, *colon = strstr(text, ": ");
	char msg[2048];

	/* The library's text starts with the address our words already name (see vfail()). */
	if (colon && strncmp(text, address, (size_t)(colon - text)) == 0)
		detail = colon + 2;
	snprintf(msg, sizeof(msg), "Failed to prepare %s for passthrough: %s", address, detail);
	fprintf(stderr, "iovctl: %s\n", msg);
	if (cli->json) {
		struct json_object *e = json_error_new(msg, err), *a = json_object_new_array();

		json_object_object_add(e, "iommu_group", json_object_new_int(iovk_passthrough_get_iommu_group(plan)));
		for (size_t i = 0; i < iovk_passthrough_get_n_blockers(plan); i++) {
			const struct iovk_passthrough_blocker *b = iovk_passthrough_get_blocker(plan, i);

			if (!overridden(forced, b))
				json_object_array_add(a, blocker_to_json(b->address, b->driver, b->kind, b->object,
									 b->reason));
		}
		json_object_object_add(e, "blockers", a);
		print_json_error(e);
	}
	return EXIT_FAILED;
}

/* Parses "[--json] BDF"; returns the operand index, or an exit status (negative: help printed). */
static int parse_one_bdf(struct cli *cli, const char *cmd, const char *help, int argc, char **argv, int *ret_i)
{
	int i = parse_cmd_opts(cli, cmd, help, argc, argv, NULL);

	if (i < 0)
		return i == -1 ? -1 : EXIT_USAGE;
	if (argc - i != 1)
		return usage_error(cli, cmd, "expected one device address");
	*ret_i = i;
	return EXIT_OK;
}

static int passthrough_prepare(struct cli *cli, int argc, char **argv)
{
	struct iovk_ctx *ctx = cli->ctx;
	struct iovk_passthrough *p = NULL;
	_cleanup_free_ char *xml = NULL;
	struct json_object *args;
	char canonical[IOVK_PCI_ADDR_MAX];
	const char *address, *force = NULL, *failover = NULL;
	const struct cmd_opt opts[] = { { "force", false, &force }, { "failover", true, &failover }, {} };
	char mac[IOVK_VF_MAC_STRING_MAX];
	uint8_t mac_bytes[6];
	int r, i = 0, ex;

	i = parse_cmd_opts(cli, "passthrough prepare", prepare_help, argc, argv, opts);
	if (i < 0)
		return i == -1 ? EXIT_OK : EXIT_USAGE;
	if (argc - i != 1)
		return usage_error(cli, "passthrough prepare", "expected one device address");
	/* a malformed name is a usage error before anything is read; messages use the canonical form */
	ex = resolve_device(cli, "passthrough prepare", argv[i], canonical);
	if (ex != EXIT_OK)
		return ex;
	address = canonical;
	if (failover) {
		if (iovk_vf_parse_mac(failover, mac_bytes) < 0 || !memcmp(mac_bytes, "\0\0\0\0\0\0", 6))
			return usage_error(cli, "passthrough prepare", "--failover: '%s' is not a unicast MAC address",
					   failover);
		failover = iovk_vf_format_mac(mac_bytes, mac);
	}

	if (force && check_host_use(cli, "prepare it for passthrough", &address, 1, true, NULL) != EXIT_OK)
		return EXIT_FAILED;
	r = iovk_passthrough_prepare(ctx, address, force ? IOVK_BIND_FORCE : 0, &p);
	if (r == -EBUSY) {
		struct iovk_passthrough *plan = NULL;
		char text[1024];

		/* The blockers, for --json: what prepare found, checked again
		 * (iovk_passthrough_check() changes nothing). */
		snprintf(text, sizeof(text), "%s", iovk_ctx_get_error(ctx));
		if (iovk_passthrough_check(ctx, address, &plan) >= 0) {
			struct iovk_in_use *forced = NULL;
			size_t n_blocking = 0;

			/* check() knows no --force: leave out what it overrode */
			if (force && iovk_device_check_in_use(ctx, address, 0, &forced) < 0)
				forced = NULL;
			for (size_t k = 0; k < iovk_passthrough_get_n_blockers(plan); k++)
				n_blocking += !overridden(forced, iovk_passthrough_get_blocker(plan, k));
			/* EBUSY with nothing in the way is the bind's (another driver
			 * took the device, rolled back): a failure, not a refusal, and
			 * without "blockers", as bind prints it */
			ex = n_blocking > 0
				     ? fail_blocked(cli, r, iovk_passthrough_get_address(plan), text, plan, forced)
				     : fail_detail(cli, r, text, "Failed to prepare %s for passthrough", address);
			iovk_in_use_free(forced);
			iovk_passthrough_free(plan);
			return ex;
		}
		return fail_detail(cli, r, text, "Failed to prepare %s for passthrough", address);
	}
	if (r < 0)
		return fail_lib(cli, r, "Failed to prepare %s for passthrough", address);

	args = json_object_new_array();
	if (failover) {
		char standby[128];

		/* the standby first: QEMU pairs by id; its -netdev standby0 is the VM's own backend */
		snprintf(standby, sizeof(standby), "virtio-net-pci,netdev=standby0,id=standby0,mac=%s,failover=on", failover);
		json_object_array_add(args, json_object_new_string("-device"));
		json_object_array_add(args, json_object_new_string(standby));
	}
	for (size_t k = 0; k < iovk_passthrough_get_n_devices(p); k++) {
		const struct iovk_passthrough_device *d = iovk_passthrough_get_device(p, k);
		bool paired = failover && d->requested;
		char dev[96];

		snprintf(dev, sizeof(dev), "vfio-pci,host=%s%s", d->address, paired ? ",id=hostdev0,failover_pair_id=standby0" : "");
		json_object_array_add(args, json_object_new_string("-device"));
		json_object_array_add(args, json_object_new_string(dev));
		if (append_hostdev(&xml, d->address, paired ? failover : NULL) < 0) {
			json_object_put(args);
			iovk_passthrough_free(p);
			return fail(cli, -ENOMEM, "Failed to prepare %s for passthrough", address);
		}
	}

	if (cli->json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "address", json_object_new_string(iovk_passthrough_get_address(p)));
		json_object_object_add(o, "iommu_group", json_object_new_int(iovk_passthrough_get_iommu_group(p)));
		json_object_object_add(o, "devices", devices_json(p));
		json_object_object_add(o, "qemu_args", args);
		json_object_object_add(o, "libvirt_xml", json_object_new_string(xml ?: ""));
		json_object_object_add(o, "record", string_or_null(iovk_passthrough_get_record(p)));
		print_json(o);
	} else {
		printf("%s: IOMMU group %d is ready for a VMM: every endpoint is on vfio-pci\n",
		       iovk_passthrough_get_address(p), iovk_passthrough_get_iommu_group(p));
		for (size_t k = 0; k < iovk_passthrough_get_n_devices(p); k++) {
			const struct iovk_passthrough_device *d = iovk_passthrough_get_device(p, k);

			printf("  %s  %s (%s %s)%s\n", d->address, or_none(d->driver), d->changed ? "was" : "before prepare:",
			       or_none(d->previous_driver), d->requested ? "  <- requested" : "");
		}
		printf("QEMU, every endpoint of the group (one VM owns the whole group):\n  ");
		for (size_t k = 0; k < json_object_array_length(args); k++)
			printf("%s%s", k ? " " : "", json_object_get_string(json_object_array_get_idx(args, k)));
		printf("\nlibvirt, in <devices> (managed='no': the binding stays with iovctl):\n");
		for (char *line = xml, *nl; line && *line; line = nl + 1) {
			nl = strchr(line, '\n');
			printf("  %.*s\n", (int)(nl - line), line);
		}
		if (iovk_passthrough_get_record(p))
			printf("Previous drivers recorded in %s; give the group back with: iovctl passthrough release %s\n",
			       iovk_passthrough_get_record(p), iovk_passthrough_get_address(p));
		else
			printf("Nothing moved and nothing recorded: the group was on vfio-pci already.\n");
		json_object_put(args);
	}
	iovk_passthrough_free(p);
	return EXIT_OK;
}

static int passthrough_release(struct cli *cli, int argc, char **argv)
{
	struct iovk_ctx *ctx = cli->ctx;
	struct iovk_passthrough *p = NULL;
	char canonical[IOVK_PCI_ADDR_MAX];
	const char *address;
	int r, i = 0, ex;

	r = parse_one_bdf(cli, "passthrough release", release_help, argc, argv, &i);
	if (r != EXIT_OK)
		return r < 0 ? EXIT_OK : r;
	ex = resolve_device(cli, "passthrough release", argv[i], canonical);
	if (ex != EXIT_OK)
		return ex;
	address = canonical;
	r = iovk_passthrough_release(ctx, address, &p);
	if (r < 0)
		return fail_lib(cli, r, "Failed to release %s from passthrough", address);

	if (cli->json) {
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "address", json_object_new_string(address));
		json_object_object_add(o, "released", json_object_new_boolean(p != NULL));
		json_object_object_add(o, "iommu_group", p ? json_object_new_int(iovk_passthrough_get_iommu_group(p)) : NULL);
		json_object_object_add(o, "devices", p ? devices_json(p) : json_object_new_array());
		json_object_object_add(o, "record", p ? string_or_null(iovk_passthrough_get_record(p)) : NULL);
		print_json(o);
	} else if (!p) {
		printf("%s: nothing to release (no passthrough record under %s/passthrough)\n", address,
		       iovk_ctx_get_run_dir(ctx));
	} else {
		printf("%s: IOMMU group %d released; record %s removed\n", iovk_passthrough_get_address(p),
		       iovk_passthrough_get_iommu_group(p), iovk_passthrough_get_record(p));
		for (size_t k = 0; k < iovk_passthrough_get_n_devices(p); k++) {
			const struct iovk_passthrough_device *d = iovk_passthrough_get_device(p, k);

			if (d->changed)
				printf("  %s  back on %s\n", d->address, or_none(d->driver));
			else
				printf("  %s  left on %s (its driver before prepare: %s)\n", d->address,
				       or_none(d->driver), or_none(d->previous_driver));
		}
	}
	iovk_passthrough_free(p);
	return EXIT_OK;
}

int cmd_passthrough(struct cli *cli, int argc, char **argv)
{
	static const struct subcommand subs[] = {
		{ "prepare", passthrough_prepare },
		{ "release", passthrough_release },
	};

	return run_subcommand(cli, "passthrough", passthrough_help, subs, ELEMENTSOF(subs), argc, argv);
}
