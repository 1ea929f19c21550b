/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * iovd's log: stderr, with syslog priorities that systemd understands. And
 * a failure's errno on the bus (error_set_errnof()), which every layer uses.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iovd.h"

int log_max_priority = LOG_INFO;
static bool log_to_journal;

void log_setup(void)
{
	log_to_journal = getenv("JOURNAL_STREAM") != NULL;
}

static void vlog_msg(int priority, const char *format, va_list ap)
{
	int saved = errno;

	if (priority > log_max_priority)
		return;
	/* systemd reads "<N>" at the start of a line on stderr as its priority */
	if (log_to_journal)
		fprintf(stderr, "<%d>", priority);
	else
		fputs(priority <= LOG_ERR ? "iovd: error: " : priority <= LOG_WARNING ? "iovd: warning: " : "iovd: ", stderr);
	errno = saved;
	vfprintf(stderr, format, ap);
	fputc('\n', stderr);
}

void log_msg(int priority, const char *format, ...)
{
	va_list ap;

	va_start(ap, format);
	vlog_msg(priority, format, ap);
	va_end(ap);
}

void log_library(void *userdata, int priority, const char *file, int line, const char *fn,
			const char *format, va_list args)
{
	vlog_msg(priority, format, args);
}

int error_set_errnof(sd_bus_error *error, const char *name, int r, const char *format, ...)
{
	_cleanup_free_ char *text = NULL;
	const char *errno_name = r < 0 ? strerrorname_np(-r) : NULL;
	char system_name[64];
	va_list ap;
	int k;

	if (!name && errno_name) {
		snprintf(system_name, sizeof(system_name), "System.Error.%s", errno_name);
		name = system_name;
	}
	va_start(ap, format);
	k = vasprintf(&text, format, ap);
	va_end(ap);
	if (k < 0)
		text = NULL; /* undefined after a failure: and the name alone still says what failed, as in sd-bus */
	return sd_bus_error_set(error, name ?: IOVD_ERR_FAILED, text);
}
