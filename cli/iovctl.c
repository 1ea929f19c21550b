/* SPDX-License-Identifier: GPL-2.0-or-later */
/* iovctl: command-line front end of libiovkit. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "iovctl.h"

static const struct command commands[] = {
	{ "list", cmd_list, "list PCI devices" },
	{ "show", cmd_show, "show one PCI device in detail" },
	{ "groups", cmd_groups, "list IOMMU groups with their VFIO viability" },
	{ "bind", cmd_bind, "bind a device (or its whole IOMMU group) to a driver" },
	{ "unbind", cmd_unbind, "unbind a device from its driver" },
	{ "restore", cmd_restore, "put a device back on the driver it had before iovctl" },
	{ "doctor", cmd_doctor, "check the host for VFIO device assignment" },
	{ "sriov", cmd_sriov, "list SR-IOV PFs and their VFs, set the number of VFs" },
	{ "pools", cmd_pools, "list iovd's pools of VFs (D-Bus client of iovd)" },
	{ "allocations", cmd_allocations, "list the VFs iovd has handed out" },
	{ "alloc", cmd_alloc, "ask iovd for a VF of a pool" },
	{ "release", cmd_release, "give a VF back to iovd" },
	{ "failover", cmd_failover, "live migration steps on an owner's failover groups (bond, macvtap, guest)" },
	{ "vf", cmd_vf, "show and change VF settings (MAC, VLAN, trust, rates, ...) through the PF" },
	{ "apply", cmd_apply, "bring PFs, VFs and drivers to what JSON files declare (iovkit.json(5))" },
	{ "cdi", cmd_cdi, "write a CDI spec of the VFIO devices and iovd's pools for container engines" },
	{ "overrides", cmd_overrides, "list the driver overrides iovkit.json(5) persists; apply one (udev)" },
	{ "vfio", cmd_vfio, "open a device through VFIO: describe it, prove it usable, reset it" },
	{ "passthrough", cmd_passthrough, "hand a device's IOMMU group to a VMM (vfio-pci, QEMU/libvirt lines) and back" },
	{ "datapath", cmd_datapath, "forward a VM's vhost-user virtio-net to a host port (userspace datapath)" },
};

static void help(FILE *f)
{
	fprintf(f,
		"Usage: iovctl [OPTIONS] COMMAND [ARGS...]\n"
		"\n"
		"Control PCI device assignment: VFIO, IOMMU groups and SR-IOV.\n"
		"\n"
		"Commands:\n");
	for (size_t i = 0; i < ELEMENTSOF(commands); i++)
		fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fprintf(f,
		"\n"
		"Options:\n"
		"  -j, --json          JSON output (also accepted after the command)\n"
		"  -v, --verbose       log what the library does to stderr (twice: debug)\n"
		"      --timeout MS    bound the wait for the lock held by another iovkit process\n"
		"                      and for VFs to appear (default 30000)\n"
		"  -h, --help          this help; 'iovctl COMMAND --help' for a command\n"
		"      --version       print the version\n"
		"\n"
		"Exit status: 0 success, 1 the operation failed, 2 usage error.\n"
		"Environment: IOVKIT_SYSFS_ROOT, IOVKIT_DEV_ROOT, IOVKIT_PROC_ROOT, IOVKIT_RUN_DIR,\n"
		"IOVKIT_PCI_IDS point iovctl at another root (tests, containers).\n"
		"See iovctl(8).\n");
}

void cli_log_stderr(void *userdata, int priority, const char *file, int line, const char *fn,
		       const char *format, va_list args)
{
	fprintf(stderr, "iovctl: %s: ", priority <= LOG_ERR       ? "error"
					: priority <= LOG_WARNING ? "warning"
					: priority <= LOG_INFO    ? "info"
								  : "debug");
	vfprintf(stderr, format, args);
	fputc('\n', stderr);
}

/* What every command prints: indented for the people who read it, and
 * "/" unescaped (sysfs paths). */
#define PRINT_FLAGS (JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE)

void print_json(struct json_object *o)
{
	puts(json_object_to_json_string_ext(o, PRINT_FLAGS));
	json_object_put(o);
}

/*
 * iovctl list --json on a 1,024-function host built the whole array, ~5 MB
 * of json-c objects (1,300 of its 1,860 page faults), and printed it from one
 * printbuf grown to its ~0.8 MB by doubling. Here json-c prints each element
 * inside a one-element array, "[\n" ELEMENT "\n]", at the array's own
 * indentation: the element goes out between the "[\n" or ",\n" and the
 * "\n]" json-c writes for a whole array, so the bytes are print_json()'s
 * (tests/cli: list_json_text_is_unchanged), and the element is freed at
 * once, its memory reused for the next.
 */
void json_array_printer_begin(struct json_array_printer *p)
{
	/* one write per 64 KiB, not per element nor per 4 KiB (a pipe's or
	 * /dev/null's st_blksize, which stdio takes): ~12 for the 1,024 functions */
	static char buf[1 << 16];

	setvbuf(stdout, buf, _IOFBF, sizeof(buf));
	*p = (struct json_array_printer){ .holder = json_object_new_array() };
}

void json_array_printer_add(struct json_array_printer *p, struct json_object *element)
{
	const char *s;
	size_t len;

	json_object_array_add(p->holder, element);
	s = json_object_to_json_string_length(p->holder, PRINT_FLAGS, &len);
	/* s: "[\n" ELEMENT "\n]"; the first element keeps the "[\n" */
	if (p->n++ == 0)
		fwrite(s, 1, len - 2, stdout);
	else {
		fputs(",\n", stdout);
		fwrite(s + 2, 1, len - 4, stdout);
	}
	json_object_array_del_idx(p->holder, 0, 1);
}

void json_array_printer_end(struct json_array_printer *p)
{
	if (p->n == 0) {
		print_json(p->holder); /* json-c's empty array */
		return;
	}
	fputs("\n]\n", stdout);
	fflush(stdout);
	json_object_put(p->holder);
}

/*
 * The error object every failure prints with --json (iovctl(8) JSON OUTPUT):
 * the message and the errno triple; the caller adds its details (blockers,
 * dbus_error, ...) before print_json_error(). Every failure has an errno: the
 * kernel's, or the one the library returns for what it refused (ENODEV, EBUSY),
 * so a script can branch on errno_name alone.
 */
struct json_object *json_error_new(const char *msg, int err)
{
	struct json_object *e = json_object_new_object();
	const char *name;

	if (err >= 0)
		err = -EIO; /* a caller's bug: still a number a script can read */
	name = strerrorname_np(-err);
	json_object_object_add(e, "message", json_object_new_string(msg));
	json_object_object_add(e, "errno", json_object_new_int(-err));
	json_object_object_add(e, "errno_name", json_object_new_string(name ? name : "?"));
	json_object_object_add(e, "errno_text", json_object_new_string(strerror(-err)));
	return e;
}

void print_json_error(struct json_object *e)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "error", e);
	print_json(o);
}

/* usage: the caller's input. */
static void print_json_error_msg(const char *msg, int err, bool usage)
{
	struct json_object *e = json_error_new(msg, err);

	if (usage)
		json_object_object_add(e, "usage", json_object_new_boolean(true));
	print_json_error(e);
}

/*
 * usage: the failure is the caller's input (exit 2); the JSON error says so as usage_error()'s does.
 * errno_tail: without a detail, stderr ends with strerror(err); false when the text is the whole story
 * and err only the number for scripts (a refusal of the library's, not a kernel error).
 */
static int vfail(struct cli *cli, int err, bool usage, bool errno_tail, const char *detail, const char *format,
		 va_list ap)
{
	char msg[2048];
	int n;

	n = vsnprintf(msg, sizeof(msg), format, ap);
	/* Library errors start with the device address; skip it when our own
	 * text already named that device. */
	if (detail && n >= 0) {
		const char *colon = strstr(detail, ": ");

		if (colon && colon - detail < 24 && memmem(msg, (size_t)n, detail, (size_t)(colon - detail)))
			detail = colon + 2;
	}
	if (detail && *detail && n >= 0 && (size_t)n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", detail);
	else if (errno_tail && err < 0 && n >= 0 && (size_t)n < sizeof(msg))
		snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", strerror(-err));
	fprintf(stderr, "iovctl: %s\n", msg);
	if (cli->json)
		print_json_error_msg(msg, err, usage);
	return usage ? EXIT_USAGE : EXIT_FAILED;
}

int fail(struct cli *cli, int err, const char *format, ...)
{
	va_list ap;
	int r;

	va_start(ap, format);
	r = vfail(cli, err, false, true, NULL, format, ap);
	va_end(ap);
	return r;
}

int fail_text(struct cli *cli, int err, const char *format, ...)
{
	va_list ap;
	int r;

	va_start(ap, format);
	r = vfail(cli, err, false, false, NULL, format, ap);
	va_end(ap);
	return r;
}

int fail_detail(struct cli *cli, int err, const char *detail, const char *format, ...)
{
	va_list ap;
	int r;

	va_start(ap, format);
	r = vfail(cli, err, false, true, detail, format, ap);
	va_end(ap);
	return r;
}

int fail_lib(struct cli *cli, int err, const char *format, ...)
{
	va_list ap;
	int r;

	va_start(ap, format);
	r = vfail(cli, err, false, true, cli->ctx ? iovk_ctx_get_error(cli->ctx) : NULL, format, ap);
	va_end(ap);
	return r;
}

int fail_lib_usage(struct cli *cli, int err, const char *format, ...)
{
	va_list ap;
	int r;

	va_start(ap, format);
	r = vfail(cli, err, true, true, cli->ctx ? iovk_ctx_get_error(cli->ctx) : NULL, format, ap);
	va_end(ap);
	return r;
}

struct json_object *blocker_to_json(const char *address, const char *driver, enum iovk_in_use_kind kind,
				    const char *object, const char *reason)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "address", json_object_new_string(address));
	json_object_object_add(o, "driver", driver && driver[0] ? json_object_new_string(driver) : NULL);
	json_object_object_add(o, "kind", json_object_new_string(iovk_in_use_kind_to_string(kind) ?: "?"));
	json_object_object_add(o, "object", object && object[0] ? json_object_new_string(object) : NULL);
	json_object_object_add(o, "reason", json_object_new_string(reason));
	return o;
}

static struct json_object *in_use_reason_json(const struct iovk_in_use_reason *why)
{
	return blocker_to_json(why->address, why->driver, why->kind, why->object, why->reason);
}

/* check_host_use(); force_hint: what takes the device anyway, for the refusal's words. */
static int host_use(struct cli *cli, const char *action, const char *const *addresses, size_t n, bool force,
		    struct json_object **forced, const char *force_hint)
{
	_cleanup_free_ char *text = NULL;
	struct json_object *blockers = json_object_new_array();
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);
	int r = 0;

	if (!f || !blockers) {
		if (f)
			fclose(f);
		json_object_put(blockers);
		return fail(cli, -ENOMEM, "%s", action);
	}
	for (size_t i = 0; i < n && r >= 0; i++) {
		struct iovk_in_use *u = NULL;

		r = iovk_device_check_in_use(cli->ctx, addresses[i], 0, &u);
		for (size_t k = 0; r >= 0 && k < iovk_in_use_get_n_reasons(u); k++)
			json_object_array_add(blockers, in_use_reason_json(iovk_in_use_get_reason(u, k)));
		if (r >= 0 && iovk_in_use_get_n_reasons(u) > 0)
			fprintf(f, "%s%s", ftell(f) > 0 ? "; " : "", iovk_in_use_get_text(u));
		iovk_in_use_free(u);
	}
	fclose(f);
	if (r < 0) {
		json_object_put(blockers);
		return fail_lib(cli, r, "%s", action);
	}
	if (json_object_array_length(blockers) == 0) {
		json_object_put(blockers);
		return EXIT_OK;
	}
	if (force) {
		fprintf(stderr, "iovctl: warning: %s although the host uses it (--force): %s\n", action, text);
		if (forced) {
			if (!*forced)
				*forced = json_object_new_array();
			for (size_t k = 0; k < json_object_array_length(blockers); k++)
				json_object_array_add(*forced, json_object_get(json_object_array_get_idx(blockers, k)));
		}
		json_object_put(blockers);
		return EXIT_OK;
	}
	fprintf(stderr, "iovctl: Failed to %s: in use by the host: %s; nothing was changed (%s takes it anyway)\n",
		action, text, force_hint);
	if (cli->json) {
		struct json_object *e;
		char msg[4096];

		snprintf(msg, sizeof(msg), "Failed to %s: in use by the host: %s", action, text);
		e = json_error_new(msg, -EBUSY);
		json_object_object_add(e, "blockers", blockers);
		print_json_error(e);
	} else
		json_object_put(blockers);
	return EXIT_FAILED;
}

int check_host_use(struct cli *cli, const char *action, const char *const *addresses, size_t n, bool force,
		   struct json_object **forced)
{
	return host_use(cli, action, addresses, n, force, forced, "--force");
}

/*
 * The library failed with -EBUSY: when the host-use rule is why, name every
 * reason (with --json, as "blockers"); when it is not (another driver took
 * the device), the library's text. Asks the public check again rather than
 * reading the text. force_hint: what takes it anyway. Returns EXIT_FAILED.
 */
int fail_refused(struct cli *cli, int err, const char *action, const char *const *addresses, size_t n,
		 const char *force_hint)
{
	_cleanup_free_ char *text = strdup(iovk_ctx_get_error(cli->ctx));
	struct iovk_in_use *u = NULL;
	const char *detail, *colon;
	size_t reasons = 0;

	for (size_t k = 0; k < n; k++) {
		if (iovk_device_check_in_use(cli->ctx, addresses[k], 0, &u) >= 0)
			reasons += iovk_in_use_get_n_reasons(u);
		u = iovk_in_use_free(u);
	}
	if (reasons > 0)
		return host_use(cli, action, addresses, n, false, NULL, force_hint);
	/* The library's text starts with the address the action names already. */
	detail = text ?: "";
	colon = strstr(detail, ": ");
	if (n == 1 && colon && strncmp(detail, addresses[0], (size_t)(colon - detail)) == 0)
		detail = colon + 2;
	return fail(cli, err, "Failed to %s: %s", action, detail);
}

int resolve_device(struct cli *cli, const char *cmd, const char *arg, char canonical[static IOVK_PCI_ADDR_MAX])
{
	int r = iovk_device_resolve_name(cli->ctx, arg, canonical);

	if (r == -EINVAL)
		return usage_error(cli, cmd, "%s", iovk_ctx_get_error(cli->ctx));
	/* "sriov set: cannot find ens9: no such network interface (...)": cmd is
	 * a command's name, not a verb ("Failed to sriov set ens9") */
	if (r < 0)
		return fail_lib(cli, r, "%s: cannot find %s", cmd, arg);
	return EXIT_OK;
}

/*
 * Whether the command line asks for JSON anywhere (up to "--"): a usage
 * error can be found before getopt reaches a --json after it ("iovctl list
 * --bogus --json"), and a script that asked for JSON reads stdout.
 */
static bool json_asked(const struct cli *cli)
{
	if (cli->json)
		return true;
	for (int i = 1; i < cli->argc && strcmp(cli->argv[i], "--") != 0; i++) {
		const char *a = cli->argv[i];
		size_t n = strlen(a);

		/* as getopt_long() takes it: --json or an abbreviation (--js), -j alone or in a cluster (-vj) */
		if ((n >= 3 && n <= 6 && strncmp(a, "--json", n) == 0) ||
		    (a[0] == '-' && a[1] != '-' && strchr(a + 1, 'j')))
			return true;
	}
	return false;
}

bool optarg_is_json(const char *arg)
{
	return arg && (strcmp(arg, "--json") == 0 || strcmp(arg, "-j") == 0);
}

int getopt_error(struct cli *cli, const char *cmd, int c, char **argv)
{
	const char *typed = argv[optind - 1];
	char shortopt[3] = { '-', (char)optopt, '\0' };

	/* a long option is argv[optind - 1] itself; a short one may sit in a
	 * cluster, or be its last letter (optind moved past it) */
	if (strncmp(typed, "--", 2) != 0 && optopt > 0 && optopt < 0x80)
		typed = shortopt;
	if (c == ':')
		return usage_error(cli, cmd, "option '%s' needs an argument", typed);
	return usage_error(cli, cmd, "unknown option '%s'", typed);
}

int usage_error(struct cli *cli, const char *cmd, const char *format, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, format);
	vsnprintf(msg, sizeof(msg), format, ap);
	va_end(ap);
	fprintf(stderr, "iovctl: %s%s%s\nTry 'iovctl %s%s--help'.\n", cmd ?: "", cmd ? ": " : "", msg, cmd ?: "",
		cmd ? " " : "");
	if (json_asked(cli))
		print_json_error_msg(msg, -EINVAL, true);
	return EXIT_USAGE;
}

int run_subcommand(struct cli *cli, const char *cmd, const char *help, const struct subcommand *subs,
		   size_t n_subs, int argc, char **argv)
{
	char names[256] = "";
	size_t len = 0;

	while (argc > 1 && (strcmp(argv[1], "--json") == 0 || strcmp(argv[1], "-j") == 0)) {
		cli->json = true;
		argv[1] = argv[0];
		argc--;
		argv++;
	}
	for (size_t i = 0; i < n_subs && len < sizeof(names); i++)
		len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s",
					i == 0 ? "" : i + 1 == n_subs ? " or " : ", ", subs[i].name);
	if (argc < 2)
		return usage_error(cli, cmd, "expected a command: %s", names);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(help, stdout);
		return EXIT_OK;
	}
	for (size_t i = 0; i < n_subs; i++)
		if (strcmp(argv[1], subs[i].name) == 0)
			return subs[i].run(cli, argc - 1, argv + 1);
	return usage_error(cli, cmd, "unknown command '%s' (%s)", argv[1], names);
}

struct json_object *json_string_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

int parse_cmd_opts(struct cli *cli, const char *cmd, const char *help_text, int argc, char **argv,
		   const struct cmd_opt *opts)
{
	struct option longopts[32];
	size_t n = 0;
	int c;

	longopts[n++] = (struct option){ "json", no_argument, NULL, 'j' };
	longopts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
	for (size_t i = 0; opts && opts[i].name && n < ELEMENTSOF(longopts) - 1; i++)
		longopts[n++] = (struct option){ opts[i].name, opts[i].has_arg ? required_argument : no_argument,
						 NULL, (int)(0x100 + i) };
	longopts[n] = (struct option){ 0 };

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":jh", longopts, NULL)) >= 0) {
		switch (c) {
		case 'j':
			cli->json = true;
			break;
		case 'h':
			fputs(help_text, stdout);
			return -1;
		case ':':
		case '?':
			getopt_error(cli, cmd, c, argv);
			return -2;
		default:
			if (opts[c - 0x100].has_arg && optarg_is_json(optarg)) {
				usage_error(cli, cmd, "option '--%s' needs an argument", opts[c - 0x100].name);
				return -2;
			}
			*opts[c - 0x100].value = opts[c - 0x100].has_arg ? optarg : "1";
		}
	}
	return optind;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{},
	};
	struct cli cli = { .argc = argc, .argv = argv };
	unsigned long timeout = 0;
	char *end;
	int c, r;

	opterr = 0;
	/* "+": global options stop at the command; the command parses the rest. */
	while ((c = getopt_long(argc, argv, "+:jvh", longopts, NULL)) >= 0) {
		switch (c) {
		case 'j':
			cli.json = true;
			break;
		case 'v':
			cli.verbose++;
			break;
		case 't':
			errno = 0;
			timeout = strtoul(optarg, &end, 10);
			if (errno || *end || timeout == 0 || timeout > 3600000 || optarg[0] == '-')
				return usage_error(&cli, NULL, "--timeout takes milliseconds, 1 to 3600000");
			break;
		case 'h':
			help(stdout);
			return EXIT_OK;
		case 'V':
			puts("iovctl " IOVKIT_VERSION);
			return EXIT_OK;
		default:
			return getopt_error(&cli, NULL, c, argv);
		}
	}
	if (optind >= argc) {
		/* with --json, the error document every other usage error prints */
		if (cli.json)
			return usage_error(&cli, NULL, "expected a command");
		help(stderr);
		return EXIT_USAGE;
	}
	for (size_t i = 0; i < ELEMENTSOF(commands); i++) {
		if (strcmp(argv[optind], commands[i].name) != 0)
			continue;
		r = iovk_ctx_new(&cli.ctx);
		if (r < 0)
			return fail(&cli, r, "cannot create the library context (check IOVKIT_* variables hold absolute paths)");
		if (timeout)
			iovk_ctx_set_timeout_ms(cli.ctx, (unsigned)timeout);
		if (cli.verbose) {
			iovk_ctx_set_log_fn(cli.ctx, cli_log_stderr, NULL);
			iovk_ctx_set_log_priority(cli.ctx, cli.verbose > 1 ? LOG_DEBUG : LOG_INFO);
		}
		r = commands[i].run(&cli, argc - optind, argv + optind);
		iovk_ctx_unref(cli.ctx);
		return r;
	}
	return usage_error(&cli, NULL, "unknown command '%s'", argv[optind]);
}
