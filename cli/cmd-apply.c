/* SPDX-License-Identifier: GPL-2.0-or-later */
/* iovctl apply: bring PFs, VFs and drivers to what JSON files declare */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "iovctl.h"

static const char apply_help[] =
	"Usage: iovctl apply [--json] [--dry-run] [--force] [--wait SECONDS] FILE|DIR...\n"
	"\n"
	"Bring SR-IOV PFs, their VFs and device drivers to what the JSON files say\n"
	"(format: iovkit.json(5)); a directory stands for its *.json files, in name\n"
	"order; only regular files are read (a FIFO, socket or device is refused).\n"
	"Every file is parsed and checked first: a malformed or invalid file\n"
	"is a usage error (exit 2) that names the file and the line, or the JSON path\n"
	"and the problem, and nothing is changed. Then a plan is computed against the\n"
	"running system and printed: only what differs, in a safe order (autoprobe,\n"
	"numvfs, VF settings, drivers). Then it is applied, step by step; when a step\n"
	"fails, the rest is left untouched, the report says which steps were applied\n"
	"and which were not, and the exit status is 1. Applying the same files again\n"
	"finds nothing to do.\n"
	"\n"
	"  --dry-run   print the plan and change nothing (exit 1 if it would be refused)\n"
	"  --force     let a numvfs change remove VFs in use, and a driver step take a\n"
	"              device the host uses (as 'iovctl bind --force'); \"force\": true\n"
	"              on a PF or device entry does it for that entry alone\n"
	"  --wait SECONDS  while a PF, interface or device is missing, or a PF has no\n"
	"              driver yet, plan again until it appears, up to SECONDS (at boot:\n"
	"              instead of waiting for all of udev's coldplug)\n"
	"  -j, --json  {\"plan\": [steps], \"applied\": N, \"failed\": {...} or null,\n"
	"              \"dry_run\": bool} (see iovctl(8))\n";

static struct json_object *settings_to_json(const struct iovk_vf_settings *s)
{
	struct json_object *o = json_object_new_object();
	char mac[IOVK_VF_MAC_STRING_MAX];

	if (s->fields & IOVK_VF_MAC)
		json_object_object_add(o, "mac", json_object_new_string(iovk_vf_format_mac(s->mac, mac)));
	if (s->fields & IOVK_VF_VLAN) {
		json_object_object_add(o, "vlan", json_object_new_int(s->vlan));
		json_object_object_add(o, "qos", json_object_new_int(s->qos));
		json_object_object_add(o, "proto", json_object_new_string(
			iovk_vf_vlan_proto_name(s->vlan_proto ? s->vlan_proto : IOVK_VF_VLAN_PROTO_8021Q) ?: "?"));
	}
	if (s->fields & IOVK_VF_MIN_TX_RATE)
		json_object_object_add(o, "min_tx_rate", json_object_new_int64(s->min_tx_rate));
	if (s->fields & IOVK_VF_MAX_TX_RATE)
		json_object_object_add(o, "max_tx_rate", json_object_new_int64(s->max_tx_rate));
	if (s->fields & IOVK_VF_SPOOFCHK)
		json_object_object_add(o, "spoofchk", json_object_new_boolean(s->spoofchk));
	if (s->fields & IOVK_VF_TRUST)
		json_object_object_add(o, "trust", json_object_new_boolean(s->trust));
	if (s->fields & IOVK_VF_LINK_STATE)
		json_object_object_add(o, "state", json_object_new_string(iovk_vf_link_state_name(s->link_state) ?: "?"));
	return o;
}

static const char *status_word(const struct iovk_plan_step *s, bool dry_run)
{
	if (dry_run)
		return "planned";
	switch (s->status) {
	case IOVK_PLAN_APPLIED:
		return "applied";
	case IOVK_PLAN_FAILED:
		return "failed";
	default:
		return "not-applied";
	}
}

static struct json_object *step_to_json(const struct iovk_plan_step *s, size_t i, bool dry_run)
{
	struct json_object *o = json_object_new_object(), *from = NULL, *to = NULL;

	json_object_object_add(o, "step", json_object_new_int((int)i + 1));
	json_object_object_add(o, "action", json_object_new_string(iovk_plan_action_name(s->action) ?: "?"));
	json_object_object_add(o, "file", json_object_new_string(s->file));
	json_object_object_add(o, "path", json_object_new_string(s->path));
	/* the vocabulary's pf: a PCI address (the file may name the PF by interface) */
	json_object_object_add(o, "pf", json_string_or_null(s->pf_address));
	json_object_object_add(o, "vf", s->vf >= 0 ? json_object_new_int(s->vf) : NULL);
	json_object_object_add(o, "device", json_string_or_null(s->device));
	switch (s->action) {
	case IOVK_PLAN_AUTOPROBE:
		from = json_object_new_boolean(s->from);
		to = json_object_new_boolean(s->to);
		break;
	case IOVK_PLAN_NUMVFS:
		from = json_object_new_int(s->from);
		to = json_object_new_int(s->to);
		json_object_object_add(o, "through_zero", json_object_new_boolean(s->through_zero));
		json_object_object_add(o, "autoprobe_restored",
				       s->autoprobe_restored >= 0 ? json_object_new_boolean(s->autoprobe_restored) : NULL);
		break;
	case IOVK_PLAN_VF_SETTINGS:
		from = s->has_current ? settings_to_json(&s->current) : NULL;
		to = settings_to_json(&s->settings);
		break;
	case IOVK_PLAN_BIND:
		from = json_string_or_null(s->driver_from);
		to = json_string_or_null(s->driver_to);
		break;
	}
	json_object_object_add(o, "from", from);
	json_object_object_add(o, "to", to);
	json_object_object_add(o, "blocked", json_string_or_null(s->blocked));
	json_object_object_add(o, "forced", json_string_or_null(s->forced));
	json_object_object_add(o, "description", json_object_new_string(s->description));
	json_object_object_add(o, "status", json_object_new_string(status_word(s, dry_run)));
	if (!dry_run && s->status == IOVK_PLAN_APPLIED)
		json_object_object_add(o, "changed", json_object_new_boolean(s->changed));
	return o;
}

static struct json_object *failure_to_json(const struct iovk_plan_step *s, size_t i, int err, const char *message)
{
	struct json_object *f = json_object_new_object();
	const char *name = strerrorname_np(-err);

	json_object_object_add(f, "step", json_object_new_int((int)i + 1));
	json_object_object_add(f, "file", json_object_new_string(s->file));
	json_object_object_add(f, "path", json_object_new_string(s->path));
	json_object_object_add(f, "message", json_object_new_string(message));
	json_object_object_add(f, "errno", json_object_new_int(-err));
	json_object_object_add(f, "errno_name", json_object_new_string(name ?: "?"));
	json_object_object_add(f, "errno_text", json_object_new_string(strerror(-err)));
	return f;
}

static void print_result_json(const struct iovk_plan *plan, bool dry_run, struct json_object *failed)
{
	struct json_object *o = json_object_new_object(), *steps = json_object_new_array();

	for (size_t i = 0; i < iovk_plan_get_n_steps(plan); i++)
		json_object_array_add(steps, step_to_json(iovk_plan_get_step(plan, i), i, dry_run));
	json_object_object_add(o, "plan", steps);
	json_object_object_add(o, "applied", json_object_new_int((int)iovk_plan_get_n_applied(plan)));
	json_object_object_add(o, "failed", failed);
	json_object_object_add(o, "dry_run", json_object_new_boolean(dry_run));
	print_json(o);
}

/* "[pfs[0].numvfs]", with the file when there are several: its name alone
 * when that tells the files apart (JSON has the whole path). */
static void print_source(const struct iovk_config *config, const struct iovk_plan_step *s)
{
	size_t n = iovk_config_get_n_files(config);
	const char *base = strrchr(s->file, '/') ? strrchr(s->file, '/') + 1 : s->file;

	if (n <= 1) {
		printf("[%s]", s->path);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const char *f = iovk_config_get_file(config, i), *b = strrchr(f, '/') ? strrchr(f, '/') + 1 : f;

		if (strcmp(f, s->file) != 0 && strcmp(b, base) == 0) {
			base = s->file;
			break;
		}
	}
	printf("[%s: %s]", base, s->path);
}

static void print_plan_text(const struct iovk_config *config, const struct iovk_plan *plan, bool dry_run)
{
	size_t n = iovk_plan_get_n_steps(plan), n_files = iovk_config_get_n_files(config);

	printf("Plan: %zu step%s", n, n == 1 ? "" : "s");
	if (n_files == 1)
		printf(" for %s", iovk_config_get_file(config, 0));
	else
		printf(" for %zu files", n_files);
	printf("%s\n", dry_run ? " (dry run: nothing is changed)" : "");
	for (size_t i = 0; i < n; i++) {
		const struct iovk_plan_step *s = iovk_plan_get_step(plan, i);

		printf("  %2zu. ", i + 1);
		print_source(config, s);
		printf(" %s\n", s->description);
		if (s->blocked)
			printf("      refused: %s; --force overrides it\n", s->blocked);
		if (s->forced)
			printf("      forced: it %s\n", s->forced);
	}
	fflush(stdout);
}

static void print_report_text(const struct iovk_config *config, const struct iovk_plan *plan, size_t failed)
{
	size_t n = iovk_plan_get_n_steps(plan);

	printf("Applied %zu of %zu steps; step %zu failed%s:\n", iovk_plan_get_n_applied(plan), n, failed + 1,
	       failed + 1 < n ? ", the steps after it were not applied" : "");
	for (size_t i = 0; i < n; i++) {
		const struct iovk_plan_step *s = iovk_plan_get_step(plan, i);

		printf("  %-12s %2zu. ", s->status == IOVK_PLAN_APPLIED ? "applied"
					 : s->status == IOVK_PLAN_FAILED ? "FAILED"
									 : "not applied",
		       i + 1);
		print_source(config, s);
		printf(" %s\n", s->description);
	}
}

static void warn_unverified(const struct iovk_plan *plan)
{
	for (size_t i = 0; i < iovk_plan_get_n_steps(plan); i++) {
		const struct iovk_plan_step *s = iovk_plan_get_step(plan, i);

		for (unsigned b = 0; b < 32; b++)
			if (s->vf_unverified & (1u << b))
				fprintf(stderr, "iovctl: warning: %s VF %d: the PF driver does not report %s back, so "
					"the write could not be checked\n", s->pf, s->vf, iovk_vf_field_name(1u << b));
	}
}

/* The text of a failure on stderr only: --json reports it in the result. */
static void fail_text_only(struct cli *cli, const char *message)
{
	bool json = cli->json;

	cli->json = false;
	fail(cli, 0, "%s", message);
	cli->json = json;
}

int fail_config(struct cli *cli, int err, const char *what)
{
	if (err == -EINVAL)
		return fail_lib_usage(cli, err, "Invalid configuration");
	return fail_lib(cli, err, "%s", what);
}

int load_config(struct cli *cli, struct iovk_config *config, const char *path)
{
	struct stat st;
	int r;

	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		r = iovk_config_add_directory(config, path);
	else
		r = iovk_config_add_file(config, path);
	if (r == -EBADMSG || r == -EINVAL || r == -EFBIG || r == -E2BIG)
		return fail_lib_usage(cli, r, "Invalid configuration");
	if (r < 0)
		return fail_lib(cli, r, "Failed to read the configuration");
	return EXIT_OK;
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * The plan, planned again while what it needs is not there yet, up to wait
 * seconds: a PF or device udev has not announced (-ENODEV), a PF whose driver
 * is not bound yet (-ENOENT), a VF not in sysfs yet (-EAGAIN). At boot this
 * waits for the devices the configuration names, where
 * systemd-udev-settle.service waited for every device of the host.
 */
static int plan_waiting(struct cli *cli, struct iovk_config *config, unsigned flags, double wait,
			struct iovk_plan **ret)
{
	double deadline = now_seconds() + wait;
	int r;

	for (;;) {
		r = iovk_plan_new(cli->ctx, config, flags, ret);
		if ((r != -ENODEV && r != -ENOENT && r != -EAGAIN) || now_seconds() >= deadline)
			return r;
		nanosleep(&(struct timespec){ .tv_nsec = 200 * 1000 * 1000 }, NULL);
	}
}

int cmd_apply(struct cli *cli, int argc, char **argv)
{
	const char *dry_run_opt = NULL, *force = NULL, *wait_opt = NULL;
	const struct cmd_opt opts[] = { { "dry-run", false, &dry_run_opt }, { "force", false, &force },
					{ "wait", true, &wait_opt }, {} };
	double wait = 0;
	struct iovk_config *config = NULL;
	struct iovk_plan *plan = NULL;
	bool dry_run;
	int r, i, blocked, ret = EXIT_OK;

	i = parse_cmd_opts(cli, "apply", apply_help, argc, argv, opts);
	if (i < 0)
		return i == -1 ? EXIT_OK : EXIT_USAGE;
	if (i >= argc)
		return usage_error(cli, "apply", "expected one or more configuration files or directories");
	dry_run = dry_run_opt != NULL;
	if (wait_opt) {
		char *end;

		wait = strtod(wait_opt, &end);
		if (*end || end == wait_opt || !(wait >= 0 && wait <= 3600))
			return usage_error(cli, "apply", "--wait: '%s' is not a number of seconds (0 to 3600)", wait_opt);
	}

	r = iovk_config_new(cli->ctx, &config);
	if (r < 0)
		return fail(cli, r, "Failed to create a configuration");
	for (; i < argc; i++) {
		ret = load_config(cli, config, argv[i]);
		if (ret != EXIT_OK)
			goto out;
	}

	r = plan_waiting(cli, config, force ? IOVK_PLAN_FORCE : 0, wait, &plan);
	if (r < 0) {
		ret = fail_config(cli, r, "Failed to plan the configuration");
		goto out;
	}

	blocked = iovk_plan_get_first_blocked(plan);
	if (iovk_plan_get_n_steps(plan) == 0) {
		if (cli->json)
			print_result_json(plan, dry_run, NULL);
		else if (iovk_config_get_n_files(config) == 0)
			printf("Nothing to do: no configuration files.\n");
		else
			printf("Nothing to do: the system matches the configuration.\n");
		goto out;
	}
	if (!cli->json)
		print_plan_text(config, plan, dry_run);
	if (blocked >= 0) {
		const struct iovk_plan_step *s = iovk_plan_get_step(plan, (size_t)blocked);
		char msg[2048];

		snprintf(msg, sizeof(msg), "step %d (%s: %s) is refused: it %s; --force overrides it", blocked + 1, s->file, s->path,
			 s->blocked);
		if (cli->json)
			print_result_json(plan, dry_run, failure_to_json(s, (size_t)blocked, -EBUSY, msg));
		{
			char text[2200];

			snprintf(text, sizeof(text), "%s: %s", dry_run ? "The plan would not be applied" : "Nothing applied",
				 msg);
			fail_text_only(cli, text);
		}
		ret = EXIT_FAILED;
		goto out;
	}
	if (dry_run) {
		if (cli->json)
			print_result_json(plan, dry_run, NULL);
		goto out;
	}

	r = iovk_plan_apply(plan);
	if (r < 0) {
		size_t failed = iovk_plan_get_n_applied(plan);
		const struct iovk_plan_step *s = iovk_plan_get_step(plan, failed);

		if (!s || s->status != IOVK_PLAN_FAILED) {
			/* Refused before any step: not one step's failure. */
			ret = fail_lib(cli, r, "Failed to apply the configuration");
			goto out;
		}
		if (cli->json)
			print_result_json(plan, false, failure_to_json(s, failed, s->error, s->error_message ?: ""));
		else
			print_report_text(config, plan, failed);
		warn_unverified(plan);
		{
			char text[2200];

			snprintf(text, sizeof(text), "Failed to apply step %zu of %zu (%s: %s): %s", failed + 1,
				 iovk_plan_get_n_steps(plan), s->file, s->path, s->error_message ?: "");
			fail_text_only(cli, text);
		}
		ret = EXIT_FAILED;
		goto out;
	}
	warn_unverified(plan);
	if (cli->json)
		print_result_json(plan, false, NULL);
	else
		printf("Applied %zu of %zu steps.\n", iovk_plan_get_n_applied(plan), iovk_plan_get_n_steps(plan));
out:
	iovk_plan_unref(plan);
	iovk_config_unref(config);
	return ret;
}
