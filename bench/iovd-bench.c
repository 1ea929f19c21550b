/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * iovd-bench: N clients, each on its own bus connection, each looping
 * Allocate + Release against iovd for a fixed time. Prints cycles/s,
 * calls/s and p50/p99 latencies. Also checks, in-process, that no VF is
 * held by two clients at once (held from the Allocate reply until the
 * Release is sent). Driven by bench/iovd-bench, which sets up the bus.
 *
 *   iovd-bench --address ADDR --pool POOL [--clients N] [--seconds S]
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-bus.h>

#include "common/bus-util.h"
#include "common/iovd-bus.h"
#include "common/time-util.h"

#define MAX_HELD 4096

struct client {
	pthread_t thread;
	int index;
	double *alloc_ms, *release_ms, *cycle_ms;
	size_t n, cap;
	unsigned errors;
	char first_error[256];
};

static const char *address, *pool = "bench";
static double seconds = 5;
static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static char *held[MAX_HELD];
static size_t n_held;
static unsigned double_allocations;
static pthread_barrier_t start_barrier;

static double now_ms(void)
{
	return (double)now_usec(CLOCK_MONOTONIC) / USEC_PER_MSEC;
}

static void hold(const char *vf, bool take)
{
	pthread_mutex_lock(&held_lock);
	for (size_t i = 0; i < n_held; i++)
		if (strcmp(held[i], vf) == 0) {
			if (take) {
				double_allocations++;
				fprintf(stderr, "iovd-bench: VF %s handed out twice\n", vf);
			} else {
				free(held[i]);
				held[i] = held[--n_held];
			}
			pthread_mutex_unlock(&held_lock);
			return;
		}
	if (take && n_held < MAX_HELD)
		held[n_held++] = strdup(vf);
	pthread_mutex_unlock(&held_lock);
}

static void note_error(struct client *c, const char *what, const sd_bus_error *e, int r)
{
	if (c->errors++ == 0)
		snprintf(c->first_error, sizeof(c->first_error), "%s: %s", what,
			 sd_bus_error_is_set(e) ? e->message : strerror(-r));
}

static void *run_client(void *userdata)
{
	struct client *c = userdata;
	sd_bus *bus = NULL;
	char owner[32];
	double end;
	int r;

	snprintf(owner, sizeof(owner), "bench-%d", c->index);
	r = bus_connect(address, false, NULL, &bus);
	pthread_barrier_wait(&start_barrier);
	if (r < 0) {
		snprintf(c->first_error, sizeof(c->first_error), "connect: %s", strerror(-r));
		c->errors++;
		return NULL;
	}
	end = now_ms() + seconds * 1000;
	while (now_ms() < end) {
		sd_bus_error e = SD_BUS_ERROR_NULL;
		sd_bus_message *reply = NULL;
		const char *path, *vf, *node;
		char *p = NULL, *v = NULL;
		int group;
		double t0 = now_ms(), t1, t2;

		r = sd_bus_call_method(bus, IOVD_BUS_NAME, IOVD_PATH, IOVD_MANAGER_IFACE, "Allocate", &e, &reply, "ssa{sv}",
				       pool, owner, 0);
		if (r >= 0)
			r = sd_bus_message_read(reply, "osis", &path, &vf, &group, &node);
		if (r < 0) {
			note_error(c, "Allocate", &e, r);
			sd_bus_error_free(&e);
			sd_bus_message_unref(reply);
			continue;
		}
		t1 = now_ms();
		p = strdup(path);
		v = strdup(vf);
		sd_bus_message_unref(reply);
		hold(v, true);
		hold(v, false);
		r = sd_bus_call_method(bus, IOVD_BUS_NAME, IOVD_PATH, IOVD_MANAGER_IFACE, "Release", &e, NULL, "o", p);
		t2 = now_ms();
		if (r < 0)
			note_error(c, "Release", &e, r);
		sd_bus_error_free(&e);
		free(p);
		free(v);
		if (r < 0)
			continue;
		if (c->n == c->cap) {
			c->cap = c->cap ? c->cap * 2 : 4096;
			c->alloc_ms = realloc(c->alloc_ms, c->cap * sizeof(double));
			c->release_ms = realloc(c->release_ms, c->cap * sizeof(double));
			c->cycle_ms = realloc(c->cycle_ms, c->cap * sizeof(double));
			if (!c->alloc_ms || !c->release_ms || !c->cycle_ms)
				abort();
		}
		c->alloc_ms[c->n] = t1 - t0;
		c->release_ms[c->n] = t2 - t1;
		c->cycle_ms[c->n] = t2 - t0;
		c->n++;
	}
	sd_bus_flush_close_unref(bus);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double percentile(double *v, size_t n, double p)
{
	if (n == 0)
		return 0;
	return v[(size_t)((n - 1) * p)];
}

static void report(const char *what, struct client *clients, int n_clients, size_t total, size_t offset)
{
	double *all = malloc((total ?: 1) * sizeof(double));
	size_t k = 0;

	for (int i = 0; i < n_clients; i++) {
		double *v = *(double **)((char *)&clients[i] + offset);

		for (size_t j = 0; j < clients[i].n; j++)
			all[k++] = v[j];
	}
	qsort(all, total, sizeof(double), cmp_double);
	printf("  %-9s p50 %6.3f ms   p99 %6.3f ms   max %7.3f ms\n", what, percentile(all, total, 0.50),
	       percentile(all, total, 0.99), total ? all[total - 1] : 0.0);
	free(all);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "address", required_argument, NULL, 'a' },
		{ "pool", required_argument, NULL, 'p' },
		{ "clients", required_argument, NULL, 'c' },
		{ "seconds", required_argument, NULL, 's' },
		{},
	};
	struct client *clients;
	int n_clients = 1, c;
	unsigned errors = 0;
	size_t total = 0;
	double t0, elapsed;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) >= 0) {
		switch (c) {
		case 'a':
			address = optarg;
			break;
		case 'p':
			pool = optarg;
			break;
		case 'c':
			n_clients = atoi(optarg);
			break;
		case 's':
			seconds = atof(optarg);
			break;
		default:
			return 2;
		}
	}
	if (!address || n_clients < 1 || n_clients > 256 || seconds <= 0) {
		fprintf(stderr, "Usage: iovd-bench --address ADDR [--pool POOL] [--clients 1..256] [--seconds S]\n");
		return 2;
	}
	clients = calloc((size_t)n_clients, sizeof(*clients));
	pthread_barrier_init(&start_barrier, NULL, (unsigned)n_clients + 1);
	for (int i = 0; i < n_clients; i++) {
		clients[i].index = i;
		pthread_create(&clients[i].thread, NULL, run_client, &clients[i]);
	}
	pthread_barrier_wait(&start_barrier);
	t0 = now_ms();
	for (int i = 0; i < n_clients; i++)
		pthread_join(clients[i].thread, NULL);
	elapsed = (now_ms() - t0) / 1000;
	for (int i = 0; i < n_clients; i++) {
		total += clients[i].n;
		errors += clients[i].errors;
		if (clients[i].errors)
			fprintf(stderr, "iovd-bench: client %d: %u errors, first: %s\n", i, clients[i].errors,
				clients[i].first_error);
	}
	printf("iovd-bench: %d client%s, %.1f s: %.0f allocate+release cycles/s (%.0f calls/s), %zu cycles, "
	       "%u errors, %u double allocations\n",
	       n_clients, n_clients > 1 ? "s" : "", elapsed, total / elapsed, 2 * total / elapsed, total, errors,
	       double_allocations);
	report("allocate", clients, n_clients, total, offsetof(struct client, alloc_ms));
	report("release", clients, n_clients, total, offsetof(struct client, release_ms));
	report("cycle", clients, n_clients, total, offsetof(struct client, cycle_ms));
	for (int i = 0; i < n_clients; i++) {
		free(clients[i].alloc_ms);
		free(clients[i].release_ms);
		free(clients[i].cycle_ms);
	}
	free(clients);
	return errors || double_allocations ? 1 : 0;
}
