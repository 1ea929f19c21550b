/* SPDX-License-Identifier: GPL-2.0-or-later */
/* iovd: hands out SR-IOV VFs and whole devices over D-Bus, once each, and never forgets. */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>

#include "iovd.h"

static void help(void)
{
	printf("Usage: iovd [OPTIONS]\n"
	       "\n"
	       "Hand out SR-IOV virtual functions, and whole PCI devices with their IOMMU group,\n"
	       "over D-Bus (org.iovkit.iovd1). See iovd(8).\n"
	       "\n"
	       "  --bus system|user     bus to serve on (default: system)\n"
	       "  --bus-address ADDR    connect to this D-Bus address instead (tests)\n"
	       "  --config FILE         pools and limits (default /etc/iovkit/iovd.json)\n"
	       "  --state-dir DIR       where allocations are kept (default /var/lib/iovkit)\n"
	       "  --no-bind             never change a VF's driver (tests on fixture sysfs trees,\n"
	       "                        where no bind can succeed)\n"
	       "  -v, --verbose         log debug messages\n"
	       "  -q, --quiet           no line per allocation and release\n"
	       "  -h, --help            this help\n"
	       "      --version         print the version\n"
	       "\n"
	       "Environment: IOVKIT_SYSFS_ROOT, IOVKIT_DEV_ROOT, IOVKIT_RUN_DIR point iovd at another root.\n");
}

/* The table as it is now into allocations.json (a new epoch). */
static int checkpoint(struct manager *m)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r = state_serialize(m, &text, &len);

	return r < 0 ? r : state_checkpoint(m, text, len);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "bus", required_argument, NULL, 'b' },
		{ "bus-address", required_argument, NULL, 'a' },
		{ "config", required_argument, NULL, 'c' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "no-bind", no_argument, NULL, 'n' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{},
	};
	const char *bus_kind = "system", *bus_address = NULL, *config = "/etc/iovkit/iovd.json";
	const char *state_dir = "/var/lib/iovkit";
	struct manager *m = NULL;
	sigset_t mask;
	bool no_bind = false;
	int c, r;

	log_setup();
	while ((c = getopt_long(argc, argv, "vqh", longopts, NULL)) >= 0) {
		switch (c) {
		case 'b':
			if (strcmp(optarg, "system") != 0 && strcmp(optarg, "user") != 0) {
				log_error("--bus takes system or user, not '%s'", optarg);
				return 2;
			}
			bus_kind = optarg;
			break;
		case 'a':
			bus_address = optarg;
			break;
		case 'c':
			config = optarg;
			break;
		case 's':
			state_dir = optarg;
			break;
		case 'n':
			no_bind = true;
			break;
		case 'v':
			log_max_priority = LOG_DEBUG;
			break;
		case 'q':
			log_max_priority = LOG_NOTICE;
			break;
		case 'h':
			help();
			return 0;
		case 'V':
			puts("iovd " IOVKIT_VERSION);
			return 0;
		default:
			return 2;
		}
	}
	if (optind < argc) {
		log_error("unexpected argument '%s'", argv[optind]);
		return 2;
	}

	/* Before any thread exists, so the writer thread inherits the mask
	 * and the signals reach sd-event's signalfd only. Until the loop
	 * runs, loading looks for them (manager_stop_requested()): a start
	 * on a large state file stops at SIGTERM. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);

	r = manager_new(&m);
	if (r < 0) {
		log_error("Failed to set up: %s", strerror(-r));
		return 1;
	}
	m->no_bind = no_bind;
	r = iovk_ctx_new(&m->ctx);
	if (r < 0) {
		log_error("Failed to create the libiovkit context (IOVKIT_* variables must be absolute paths): %s",
			  strerror(-r));
		goto out;
	}
	iovk_ctx_set_log_fn(m->ctx, log_library, NULL);
	iovk_ctx_set_log_priority(m->ctx, log_max_priority == LOG_DEBUG ? LOG_DEBUG : LOG_WARNING);
	/* A bind waits for the lock other iovkit processes hold; bound it
	 * well below D-Bus's default 25 s method timeout. */
	iovk_ctx_set_timeout_ms(m->ctx, 10000);
	/* One NETLINK_ROUTE socket for the daemon's life (it never forks or
	 * changes namespace): a failover step's switch skips a socket's set-up
	 * and close, ~0.5 ms of a PrepareMigration in the test guest (issue 11). */
	iovk_ctx_set_keep_netlink(m->ctx, true);

	r = config_load(config, &m->config);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < m->config.n_pools; i++) {
		r = pool_scan(m->ctx, &m->config.pools[i]);
		if (r < 0)
			goto out;
	}
	r = state_open(m, state_dir);
	if (r < 0)
		goto out;
	r = state_load(m);
	if (r < 0)
		goto out;
	r = commit_init(m);
	if (r < 0) {
		log_error("Failed to start the state writer: %s", strerror(-r));
		goto out;
	}
	/* Before reconciliation: what a crash interrupted is finished or rolled back first. */
	r = devpool_recover(m);
	/* and what a journal replayed becomes allocations.json, with a new epoch */
	if (r > 0 || (r >= 0 && state_needs_checkpoint(m)))
		r = checkpoint(m);
	if (r < 0)
		goto out;
	r = manager_reconcile(m);
	if (r < 0)
		goto out;
	failover_recover(m);
	/* the ids of cut Allocates are not handed out again, after a restart either */
	if (failover_recover_uncommitted(m)) {
		r = checkpoint(m);
		if (r < 0)
			goto out;
	}
	r = markers_rebuild(m);
	if (r < 0)
		goto out;

	if (manager_stop_requested()) {
		r = -EINTR;
		goto out;
	}
	r = sd_event_add_signal(m->event, NULL, SIGTERM, NULL, NULL);
	if (r >= 0)
		r = sd_event_add_signal(m->event, NULL, SIGINT, NULL, NULL);
	if (r < 0) {
		log_error("Failed to watch signals: %s", strerror(-r));
		goto out;
	}
	r = manager_start_bus(m, bus_kind, bus_address);
	if (r < 0)
		goto out;
	r = cdi_start(m);
	if (r < 0) {
		log_error("Failed to keep the CDI spec: %s", strerror(-r));
		goto out;
	}
	log_info("Serving %s on the %s bus: %zu pools, %zu allocations%s", IOVD_BUS_NAME,
		 bus_address ? "given" : bus_kind, m->config.n_pools, m->n_allocs, no_bind ? " (--no-bind)" : "");

	r = sd_event_loop(m->event);
	if (r < 0)
		log_error("Event loop failed: %s", strerror(-r));
	/* Requests still waiting for a commit get their answer. */
	commit_flush(m);
	if (m->bus)
		sd_bus_flush(m->bus);
out:
	/* A stop asked for while loading: nothing was written but markers
	 * (more of them than allocations at worst, see markers_rebuild()). */
	if (r == -EINTR) {
		log_info("Stopped by a signal while loading the allocations; the state file is as it was");
		r = 0;
	}
	manager_free(m);
	return r < 0 ? 1 : 0;
}
