/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Connecting to a bus, the one way iovd, iovctl, the benchmark and the test
 * clients do it. Inline in this header, not in a common/ source: those
 * go into libiovkit, which does not link libsystemd; only the programs
 * that talk D-Bus include this. Nothing here is public ABI.
 */
#pragma once

#include <stdbool.h>

#include <systemd/sd-bus.h>

/*
 * A bus client on address when it is not NULL (a private dbus-daemon:
 * tests, benchmarks), else the user bus when user, else the
 * system bus; description names the connection (NULL: none). Returns 0 and
 * the started connection in *ret, or -errno with *ret untouched.
 */
static inline int bus_connect(const char *address, bool user, const char *description, sd_bus **ret)
{
	sd_bus *bus = NULL;
	int r;

	if (address) {
		r = sd_bus_new(&bus);
		if (r >= 0)
			r = sd_bus_set_address(bus, address);
		if (r >= 0)
			r = sd_bus_set_bus_client(bus, 1);
		if (r >= 0)
			r = sd_bus_start(bus);
	} else if (user)
		r = sd_bus_open_user_with_description(&bus, description);
	else
		r = sd_bus_open_system_with_description(&bus, description);
	if (r < 0) {
		sd_bus_unref(bus);
		return r;
	}
	*ret = bus;
	return 0;
}
