/* SPDX-License-Identifier: GPL-2.0-or-later */
/* iovctl datapath run, stats */
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "../common/fileio.h"
#include "iovctl.h"

static const char datapath_help[] =
	"Usage: iovctl datapath run --port SPEC --port SPEC [--port SPEC --port SPEC ...]\n"
	"                           [--cpus LIST] [--control PATH] [--json]\n"
	"       iovctl datapath stats [--json] [--control PATH]\n"
	"\n"
	"A userspace virtio-net datapath: forwards port 1 <-> port 2, port 3 <-> port 4, ...\n"
	"on poll-mode workers. 'iovctl datapath COMMAND --help' describes each command.\n";

static const char run_help[] =
	"Usage: iovctl datapath run --port SPEC --port SPEC [--port SPEC --port SPEC ...]\n"
	"                           [--cpus LIST] [--control PATH] [--json]\n"
	"\n"
	"Forward port 1 <-> port 2, port 3 <-> port 4, ... until SIGTERM or SIGINT, then\n"
	"hand the rings back and print the final counters. SPEC is one of:\n"
	"  vhost-user:PATH[,client][,queues=N]  a VM's virtio-net over vhost-user: listen on\n"
	"                                       PATH (a VMM connects), or with client connect\n"
	"                                       to it, reconnecting; N queue pairs (1-16)\n"
	"  tap:IFNAME                           a TAP device (created if missing; bring it up)\n"
	"  af-xdp:IFNAME[,queue=Q][,zero-copy]  an AF_XDP socket on queue Q (default 0) of a\n"
	"                                       netdev (a VF's): copy mode, or the driver's\n"
	"                                       zero-copy when asked (an error without it)\n"
	"  vfio:BDF[,queues=N][,mode=MODE]      a virtio-net PCI function bound to vfio-pci (a\n"
	"                                       virtio VF), driven from userspace, polled; N queue\n"
	"                                       pairs (1-16; more than 1 needs the device's MQ);\n"
	"                                       MODE is the VFIO backend as for 'iovctl vfio'\n"
	"                                       (auto, container, iommufd, ...)\n"
	"\n"
	"  --cpus LIST      one worker per CPU, pinned (e.g. 2,3 or 2-5); default one\n"
	"                   unpinned worker. Workers poll; one whose queues are all\n"
	"                   vfio (with MSI-X) or tap sleeps on their interrupts when idle.\n"
	"  --control PATH   the control socket 'iovctl datapath stats' reads\n"
	"                   (default $IOVKIT_RUN_DIR/datapath.sock, /run/iovkit/datapath.sock)\n"
	"  --json           the final counters as JSON\n";

/*
 * The fewest packets for which the text form divides busy cycles by packets.
 * A worker's first bursts pay once for what later bursts find warm (the
 * rings' and buffers' first touch: page faults, cache misses; the wake from
 * its sleep): tools/demo-datapath's 32 frames showed 36.9 million busy
 * cycles, "1151706 busy cycles/packet", against the ~200-30,000 of a long
 * run (bench/). Below this the total is shown; --json has both counters.
 * stats_help and iovctl(8) spell the number out.
 */
#define DP_PER_PACKET_MIN 1000

static const char stats_help[] =
	"Usage: iovctl datapath stats [--json] [--control PATH]\n"
	"\n"
	"Read a running datapath's counters through its control socket: per port and per\n"
	"queue packets and bytes received and sent, frames dropped (no room on the other\n"
	"side), frames the port's device dropped before the datapath took them (af-xdp:\n"
	"the kernel's), malformed frames, and rings a guest broke (stopped until its driver resets\n"
	"the device); per worker the packets it moved and its CPU cycles per packet (the busy\n"
	"cycles in all until it has moved 1000 packets: before that, its first bursts' fixed cost\n"
	"would pass for a cost per packet).\n";

static struct iovk_datapath *running;

static void on_signal(int sig)
{
	iovk_datapath_stop(running);
}

static int parse_cpus(const char *text, unsigned **ret, size_t *ret_n)
{
	_cleanup_free_ char *copy = strdup(text);
	_cleanup_free_ unsigned *cpus = NULL;
	size_t n = 0;
	char *tok, *save = NULL;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		unsigned a, b;
		int used = 0;

		if (sscanf(tok, "%u-%u%n", &a, &b, &used) == 2 && tok[used] == '\0') {
		} else if (sscanf(tok, "%u%n", &a, &used) == 1 && tok[used] == '\0') {
			b = a;
		} else {
			return -EINVAL;
		}
		if (b < a || b >= CPU_SETSIZE || b - a > 1024)
			return -EINVAL;
		for (unsigned c = a; c <= b; c++) {
			unsigned *nc = realloc(cpus, (n + 1) * sizeof(*cpus));

			if (!nc)
				return -ENOMEM;
			cpus = nc;
			cpus[n++] = c;
		}
	}
	if (n == 0)
		return -EINVAL;
	*ret = TAKE_PTR(cpus);
	*ret_n = n;
	return 0;
}

static char *default_control(struct cli *cli)
{
	char *p;

	return asprintf(&p, "%s/datapath.sock", iovk_ctx_get_run_dir(cli->ctx)) < 0 ? NULL : p;
}

static void print_stats_text(struct json_object *root)
{
	struct json_object *ports = json_object_object_get(root, "ports"), *workers = json_object_object_get(root, "workers");

#define U64(o, k) ((unsigned long long)json_object_get_uint64(json_object_object_get(o, k)))
	for (size_t i = 0; i < json_object_array_length(ports); i++) {
		struct json_object *p = json_object_array_get_idx(ports, i), *qs = json_object_object_get(p, "queues");

		printf("port %d %s (%s, %s, peer port %d): rx %llu packets %llu bytes, tx %llu packets %llu bytes, "
		       "dropped %llu, errors %llu\n",
		       json_object_get_int(json_object_object_get(p, "index")) + 1,
		       json_object_get_string(json_object_object_get(p, "name")),
		       json_object_get_string(json_object_object_get(p, "type")),
		       json_object_get_string(json_object_object_get(p, "state")),
		       json_object_get_int(json_object_object_get(p, "peer")) + 1, U64(p, "rx_packets"),
		       U64(p, "rx_bytes"), U64(p, "tx_packets"), U64(p, "tx_bytes"), U64(p, "tx_dropped"),
		       U64(p, "rx_errors"));
		if (U64(p, "rx_dropped"))
			printf("  %llu frame(s) dropped by the device before the datapath took them\n", U64(p, "rx_dropped"));
		if (U64(p, "tx_errors"))
			printf("  %llu transmit completion(s) from the device that named no buffer of the port: ignored\n",
			       U64(p, "tx_errors"));
		for (size_t q = 0; q < json_object_array_length(qs); q++) {
			struct json_object *o = json_object_array_get_idx(qs, q);
			const char *reason = json_object_get_string(json_object_object_get(o, "broken_reason"));

			printf("  queue %d: %s, rx %llu/%llu B, tx %llu/%llu B, dropped %llu, errors %llu", (int)q,
			       json_object_get_boolean(json_object_object_get(o, "broken")) ? "BROKEN"
			       : json_object_get_boolean(json_object_object_get(o, "ready")) ? "ready"
											 : "not ready",
			       U64(o, "rx_packets"), U64(o, "rx_bytes"), U64(o, "tx_packets"), U64(o, "tx_bytes"),
			       U64(o, "tx_dropped"), U64(o, "rx_errors"));
			if (U64(o, "broken_count"))
				printf(", broken %llu time(s), last: %s", U64(o, "broken_count"), reason ? reason : "?");
			putchar('\n');
		}
	}
	for (size_t i = 0; i < json_object_array_length(workers); i++) {
		struct json_object *w = json_object_array_get_idx(workers, i), *cpu = json_object_object_get(w, "cpu");
		unsigned long long pk = U64(w, "packets");

		printf("worker %zu (%s%s%s): %llu packets", i, cpu ? "CPU " : "unpinned", cpu ? json_object_get_string(cpu) : "",
		       "", pk);
		if (pk >= DP_PER_PACKET_MIN)
			printf(", %.0f busy cycles/packet", (double)U64(w, "busy_cycles") / (double)pk);
		else if (pk)
			printf(", %llu busy cycles in all (per packet from %d packets)", U64(w, "busy_cycles"),
			       DP_PER_PACKET_MIN);
		if (json_object_get_boolean(json_object_object_get(w, "interrupt_mode")))
			printf(", sleeps when idle (%llu time(s) so far)", U64(w, "sleeps"));
		putchar('\n');
	}
#undef U64
}

static int print_stats(struct cli *cli, const char *json, const char *from)
{
	struct json_object *root = json_tokener_parse(json);

	if (!root || !json_object_object_get(root, "ports"))
		return fail(cli, -EPROTO, "%s: not a datapath's statistics", from);
	if (cli->json)
		print_json(root);
	else {
		print_stats_text(root);
		json_object_put(root);
	}
	return EXIT_OK;
}

/*
 * While the ports open, each failure the library logs at LOG_ERR (set_error())
 * is also returned, and fail_detail() prints it with the port's number and
 * spec: the log's copy would say it twice. So those are held back, and
 * when a port fails, the ones that are not the error returned (one a
 * rollback's error replaced) are printed before it. Warnings pass, and
 * once running everything does (a worker's failure is not returned until
 * the end).
 */
static bool opening;
static char held[4][512];
static size_t n_held;

static void datapath_log(void *userdata, int priority, const char *file, int line, const char *fn,
			 const char *format, va_list args)
{
	if (opening && priority <= LOG_ERR) {
		if (n_held < ELEMENTSOF(held))
			vsnprintf(held[n_held++], sizeof(held[0]), format, args);
		return;
	}
	cli_log_stderr(userdata, priority, file, line, fn, format, args);
}

/* The held-back errors that are not error (the one about to be printed), printed; the rest dropped. */
static void print_held(const char *error)
{
	for (size_t i = 0; i < n_held; i++)
		if (strcmp(held[i], error) != 0)
			fprintf(stderr, "iovctl: %s\n", held[i]);
	n_held = 0;
}

/* The library's text of a port that failed to open, without the head that
 * names the port ("tap:x: ", "PATH: "): "port 1 (SPEC)" names it already. */
static const char *port_error_detail(const char *spec, const char *text)
{
	const char *name = strchr(spec, ':');
	/* the whole spec, the spec without its options, the name or path without them */
	const char *heads[] = { spec, spec, name ? name + 1 : NULL };
	size_t lens[] = { strlen(spec), strcspn(spec, ","), name ? strcspn(name + 1, ",") : 0 };

	for (size_t k = 0; k < ELEMENTSOF(heads); k++)
		if (heads[k] && lens[k] > 0 && strncmp(text, heads[k], lens[k]) == 0 &&
		    strncmp(text + lens[k], ": ", 2) == 0)
			return text + lens[k] + 2;
	return text;
}

static int datapath_run(struct cli *cli, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "port", required_argument, NULL, 'p' }, { "cpus", required_argument, NULL, 'c' },
		{ "control", required_argument, NULL, 'C' }, { "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },       {},
	};
	struct iovk_datapath_options opts = IOVK_DATAPATH_OPTIONS_INIT;
	_cleanup_free_ char *control = NULL, *json = NULL;
	_cleanup_free_ unsigned *cpus = NULL;
	const char *specs[2 * 64];
	struct iovk_datapath *dp = NULL;
	struct sigaction sa = { .sa_handler = on_signal };
	size_t n_specs = 0, n_cpus = 0;
	int c, r, ex, li = 0;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":jh", longopts, &li)) >= 0) {
		struct iovk_dp_port_spec spec = IOVK_DP_PORT_SPEC_INIT;

		if (c != ':' && c != '?' && longopts[li].has_arg && optarg_is_json(optarg))
			return usage_error(cli, "datapath run", "option '--%s' needs an argument", longopts[li].name);
		switch (c) {
		case 'p':
			if (iovk_dp_port_spec_parse(optarg, &spec) < 0)
				return usage_error(cli, "datapath run",
						   "'%s' is not a port: vhost-user:PATH[,client][,queues=N], tap:IFNAME, "
						   "af-xdp:IFNAME[,queue=Q][,zero-copy] or vfio:BDF[,queues=N][,mode=MODE]",
						   optarg);
			if (n_specs == ELEMENTSOF(specs))
				return usage_error(cli, "datapath run", "more than %zu ports", ELEMENTSOF(specs));
			specs[n_specs++] = optarg;
			break;
		case 'c':
			free(cpus);
			cpus = NULL;
			if (parse_cpus(optarg, &cpus, &n_cpus) < 0)
				return usage_error(cli, "datapath run", "'%s' is not a CPU list (e.g. 2,3 or 2-5)", optarg);
			break;
		case 'C':
			free(control);
			control = strdup(optarg);
			if (!control)
				return fail(cli, -ENOMEM, "datapath run");
			break;
		case 'j':
			cli->json = true;
			break;
		case 'h':
			fputs(run_help, stdout);
			return EXIT_OK;
		default:
			return getopt_error(cli, "datapath run", c, argv);
		}
	}
	if (optind < argc)
		return usage_error(cli, "datapath run", "unexpected argument '%s'", argv[optind]);
	if (n_specs < 2 || n_specs % 2)
		return usage_error(cli, "datapath run", "%zu port(s): ports forward in pairs, give 2, 4, 6 ...", n_specs);
	if (!control) {
		control = default_control(cli);
		if (!control)
			return fail(cli, -ENOMEM, "datapath run");
		r = mkdir_p(iovk_ctx_get_run_dir(cli->ctx), 0755);
		if (r < 0)
			return fail(cli, r, "creating %s", iovk_ctx_get_run_dir(cli->ctx));
	}
	/* a guest breaking its ring is worth a line even without --verbose */
	iovk_ctx_set_log_fn(cli->ctx, datapath_log, NULL);
	if (iovk_ctx_get_log_priority(cli->ctx) < LOG_WARNING)
		iovk_ctx_set_log_priority(cli->ctx, LOG_WARNING);
	opening = true;

	opts.cpus = cpus;
	opts.n_cpus = n_cpus;
	opts.control_path = control;
	r = iovk_datapath_new(cli->ctx, &opts, &dp);
	if (r < 0) {
		opening = false;
		print_held(iovk_ctx_get_error(cli->ctx));
		return fail_lib(cli, r, "datapath run");
	}
	n_held = 0;
	for (size_t i = 0; i < n_specs; i++) {
		r = iovk_datapath_add_port(dp, specs[i], NULL);
		if (r < 0) {
			opening = false;
			print_held(iovk_ctx_get_error(cli->ctx));
			ex = fail_detail(cli, r, port_error_detail(specs[i], iovk_ctx_get_error(cli->ctx)), "port %zu (%s)",
					 i + 1, specs[i]);
			iovk_datapath_unref(dp);
			return ex;
		}
		n_held = 0;
	}
	opening = false;
	running = dp;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	fprintf(stderr, "iovctl: datapath: %zu ports, %zu worker(s); counters: iovctl datapath stats --control %s\n",
		n_specs, n_cpus ? n_cpus : 1, control);
	r = iovk_datapath_run(dp);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	running = NULL;
	if (r < 0) {
		iovk_datapath_unref(dp);
		return fail_lib(cli, r, "datapath run");
	}
	r = iovk_datapath_stats_json(dp, &json);
	/* rings handed back, sockets closed, control socket removed */
	iovk_datapath_unref(dp);
	if (r < 0)
		return fail(cli, r, "datapath run: final counters");
	return print_stats(cli, json, "datapath run");
}

static int datapath_stats(struct cli *cli, int argc, char **argv)
{
	const char *control = NULL;
	const struct cmd_opt opts[] = { { "control", true, &control }, {} };
	_cleanup_free_ char *def = NULL, *json = NULL;
	int r = parse_cmd_opts(cli, "datapath stats", stats_help, argc, argv, opts);

	if (r == -1)
		return EXIT_OK;
	if (r < 0)
		return EXIT_USAGE;
	if (r < argc)
		return usage_error(cli, "datapath stats", "unexpected argument '%s'", argv[r]);
	if (!control) {
		control = def = default_control(cli);
		if (!def)
			return fail(cli, -ENOMEM, "datapath stats");
	}
	r = iovk_datapath_query_stats(control, &json);
	if (r < 0)
		return fail(cli, r, "reading the datapath's counters from %s", control);
	return print_stats(cli, json, control);
}

int cmd_datapath(struct cli *cli, int argc, char **argv)
{
	static const struct subcommand subs[] = {
		{ "run", datapath_run },
		{ "stats", datapath_stats },
	};

	return run_subcommand(cli, "datapath", datapath_help, subs, ELEMENTSOF(subs), argc, argv);
}
