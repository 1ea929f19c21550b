/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>

#include <json-c/json.h>

#include <iovkit/iovkit.h>

#include "../common/macro.h"

/* Stable exit codes, documented in iovctl(8). */
enum {
	EXIT_OK = 0,
	EXIT_FAILED = 1, /* the operation failed; stderr says why */
	EXIT_USAGE = 2,  /* bad command line or malformed argument */
};

struct cli {
	struct iovk_ctx *ctx;
	bool json;
	int verbose;
	/* the whole command line, for a usage error found before its --json */
	int argc;
	char **argv;
};

struct command {
	const char *name;
	int (*run)(struct cli *cli, int argc, char **argv);
	const char *summary;
};

/* Prints "iovctl: <text>" to stderr; with --json also {"error": ...} to stdout. */
int fail(struct cli *cli, int err, const char *format, ...) _printf_(3, 4);
/* Same, naming the library's description of the failure after the text. */
int fail_lib(struct cli *cli, int err, const char *format, ...) _printf_(3, 4);
/* fail_lib() for a failure that is the caller's input (a configuration file):
 * exit status 2, and the JSON error has "usage": true as usage_error()'s has. */
int fail_lib_usage(struct cli *cli, int err, const char *format, ...) _printf_(3, 4);
/* fail() whose text is the whole story: no strerror tail on stderr, err only for
 * the JSON error (the errno the library returns for the same refusal). */
int fail_text(struct cli *cli, int err, const char *format, ...) _printf_(3, 4);
/* Same, with the description given (the library's, saved before later calls cleared it). */
int fail_detail(struct cli *cli, int err, const char *detail, const char *format, ...) _printf_(4, 5);
int usage_error(struct cli *cli, const char *cmd, const char *format, ...) _printf_(3, 4);
/* The usage error for what getopt_long() refused (c is ':' or '?'), naming the option as typed:
 * "-x" from a cluster ("-vx"), where argv[optind - 1] is not the option. */
int getopt_error(struct cli *cli, const char *cmd, int c, char **argv);
/* Whether an option's argument is really iovctl's --json or -j: "--port --json" left the value out. */
bool optarg_is_json(const char *arg);

/* Prints a json object (and releases it) with a trailing newline. */
void print_json(struct json_object *o);
/* A JSON error object {message, errno, errno_name, errno_text} (err < 0) for a
 * command to add its details to; print_json_error() prints {"error": e} and releases it. */
struct json_object *json_error_new(const char *msg, int err);
void print_json_error(struct json_object *e);

/* A JSON array printed as its elements come, in the bytes print_json()
 * gives the whole array: begin, add (takes the element), end. For before
 * anything else is printed to stdout (begin sets its buffer). */
struct json_array_printer {
	struct json_object *holder;
	size_t n;
};
void json_array_printer_begin(struct json_array_printer *p);
void json_array_printer_add(struct json_array_printer *p, struct json_object *element);
void json_array_printer_end(struct json_array_printer *p);
/* A JSON string, or JSON null (a NULL object) for NULL. */
struct json_object *json_string_or_null(const char *s);

/*
 * Parses the options every subcommand accepts (--json, --help) plus the
 * command's own long options. Returns the index of the first operand, or
 * -1 after printing help (exit 0), or -2 on a usage error.
 */
struct cmd_opt {
	const char *name;
	bool has_arg;
	const char **value; /* set to the argument (or "1" for flags) */
};
int parse_cmd_opts(struct cli *cli, const char *cmd, const char *help, int argc, char **argv,
		   const struct cmd_opt *opts);

struct subcommand {
	const char *name;
	int (*run)(struct cli *cli, int argc, char **argv);
};

/*
 * Runs "iovctl CMD SUB ARGS": takes --json/-j before SUB as well as after
 * it, prints help for --help, and names the valid subcommands on a usage
 * error. argv[0] is CMD.
 */
int run_subcommand(struct cli *cli, const char *cmd, const char *help, const struct subcommand *subs,
		   size_t n_subs, int argc, char **argv);

struct json_object *device_to_json(struct cli *cli, struct iovk_device *d);

/*
 * A device argument (PCI address, libvirt's pci_DDDD_BB_DD_F or a network
 * interface) to its canonical address: EXIT_OK, or the usage error (a name
 * of no such form) or failure (no such interface) already reported.
 */
int resolve_device(struct cli *cli, const char *cmd, const char *arg, char canonical[static IOVK_PCI_ADDR_MAX]);

/*
 * The host-use rule before a command takes devices from their drivers
 * (iovk_device_check_in_use() on each of the n addresses): with reasons and
 * without force, prints "<action>: in use by the host: ..." (with --json an
 * error whose "blockers" list every reason) and returns EXIT_FAILED; with
 * force, warns on stderr naming what it overrides and returns EXIT_OK,
 * adding the reasons to *forced (a JSON array, created when NULL) if given.
 */
int check_host_use(struct cli *cli, const char *action, const char *const *addresses, size_t n, bool force,
		   struct json_object **forced);
/*
 * A library call failed with -EBUSY while moving the n addresses: when the
 * host-use rule is why, check_host_use()'s refusal (with --json, the error's
 * "blockers"; force_hint names what takes them anyway: "--force", or the
 * configuration's "force"); else the library's text. Returns EXIT_FAILED.
 */
int fail_refused(struct cli *cli, int err, const char *action, const char *const *addresses, size_t n,
		 const char *force_hint);
const char *driver_or_none(const char *driver);
/* A blocker as every command prints it: {address, driver, kind, object, reason}. */
struct json_object *blocker_to_json(const char *address, const char *driver, enum iovk_in_use_kind kind,
				    const char *object, const char *reason);

int cmd_list(struct cli *cli, int argc, char **argv);
int cmd_show(struct cli *cli, int argc, char **argv);
int cmd_groups(struct cli *cli, int argc, char **argv);
int cmd_bind(struct cli *cli, int argc, char **argv);
int cmd_unbind(struct cli *cli, int argc, char **argv);
int cmd_restore(struct cli *cli, int argc, char **argv);
int cmd_doctor(struct cli *cli, int argc, char **argv);
int cmd_sriov(struct cli *cli, int argc, char **argv);
int cmd_pools(struct cli *cli, int argc, char **argv);
int cmd_allocations(struct cli *cli, int argc, char **argv);
int cmd_alloc(struct cli *cli, int argc, char **argv);
int cmd_release(struct cli *cli, int argc, char **argv);
int cmd_failover(struct cli *cli, int argc, char **argv);
int cmd_vf(struct cli *cli, int argc, char **argv);
int cmd_apply(struct cli *cli, int argc, char **argv);
int cmd_overrides(struct cli *cli, int argc, char **argv);
int cmd_cdi(struct cli *cli, int argc, char **argv);

/* iovd's allocations as 'iovctl allocations --json' prints them, from the bus
 * at bus_address (NULL: $IOVKIT_BUS_ADDRESS, else the system bus); prints
 * nothing. -ENOENT/-ECONNREFUSED without a bus, -ESRCH when iovd is not on it. */
int iovd_allocations(const char *bus_address, struct json_object **ret);

/* The directory iovkit-apply.service applies, and the default of iovctl overrides. */
#define IOVKIT_APPLY_DIR "/etc/iovkit/apply.d"
/* Adds the file or directory at path to config: EXIT_OK, EXIT_USAGE for an
 * invalid configuration, EXIT_FAILED when it cannot be read (reported). */
int load_config(struct cli *cli, struct iovk_config *config, const char *path);
/* A failure of planning or reading a configuration: -EINVAL is the file's
 * fault (usage error, exit 2, "Invalid configuration: ..."), the rest is what. */
int fail_config(struct cli *cli, int err, const char *what);
int cmd_vfio(struct cli *cli, int argc, char **argv);
int cmd_passthrough(struct cli *cli, int argc, char **argv);
int cmd_datapath(struct cli *cli, int argc, char **argv);

/* The library log function that prints "iovctl: LEVEL: text" on stderr. */
void cli_log_stderr(void *userdata, int priority, const char *file, int line, const char *fn, const char *format,
		    va_list args);

/*
 * The report of checks that doctor and vfio selftest print: one line per
 * entry, "STATUS NAME MESSAGE" (name padded to name_width), and a hint line
 * under an entry that did not PASS; with --json the entries are collected as
 * objects {name, status, message[, hint]} for report_finish().
 */
enum report_status { REPORT_PASS, REPORT_WARN, REPORT_FAIL, REPORT_SKIP, _REPORT_STATUS_MAX };
struct report {
	struct cli *cli;
	int name_width;
	bool json_hint;    /* the JSON entries carry "hint" (null when none) */
	unsigned statuses; /* 1u << REPORT_*: what the summary counts, even when 0 */
	struct json_object *entries;
	unsigned count[_REPORT_STATUS_MAX];
};
void report_add(struct report *rep, const char *name, enum report_status st, const char *hint, const char *format,
		...) _printf_(5, 6);
/*
 * With --json adds the entries to o as key, then "summary" (a count per
 * status in rep->statuses), and prints o; else releases o and prints the
 * summary line. Returns EXIT_FAILED when an entry FAILed, else EXIT_OK.
 */
int report_finish(struct report *rep, struct json_object *o, const char *key);
