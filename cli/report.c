/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The PASS/WARN/FAIL/SKIP report of iovctl doctor and iovctl vfio selftest. */
#include <stdarg.h>
#include <stdio.h>

#include "iovctl.h"

/*
 * In summary order: the text line and the JSON summary name the statuses a
 * command uses in this order (doctor: pass, warn, fail; selftest: pass,
 * fail, skip), as both printed before they shared this code.
 */
static const struct {
	const char *name, *key;
} status_names[_REPORT_STATUS_MAX] = {
	[REPORT_PASS] = { "PASS", "pass" },
	[REPORT_WARN] = { "WARN", "warn" },
	[REPORT_FAIL] = { "FAIL", "fail" },
	[REPORT_SKIP] = { "SKIP", "skip" },
};

void report_add(struct report *rep, const char *name, enum report_status st, const char *hint, const char *format,
		...)
{
	/* Long enough for selftest's longest (a BAR per mmap-able region, a
	 * config-space diff); a longer message is cut, never dropped. */
	char msg[1536];
	va_list ap;

	va_start(ap, format);
	vsnprintf(msg, sizeof(msg), format, ap);
	va_end(ap);
	rep->count[st]++;
	if (rep->cli->json) {
		struct json_object *o = json_object_new_object();

		if (!rep->entries)
			rep->entries = json_object_new_array();
		json_object_object_add(o, "name", json_object_new_string(name));
		json_object_object_add(o, "status", json_object_new_string(status_names[st].name));
		json_object_object_add(o, "message", json_object_new_string(msg));
		if (rep->json_hint)
			json_object_object_add(o, "hint", hint ? json_object_new_string(hint) : NULL);
		json_object_array_add(rep->entries, o);
	} else {
		/* At once, not at the end: on a terminal each step shows as
		 * it completes (selftest waits up to 1 s per interrupt). */
		printf("%-4s %-*s %s\n", status_names[st].name, rep->name_width, name, msg);
		if (hint && st != REPORT_PASS)
			printf("     %-*s hint: %s\n", rep->name_width, "", hint);
	}
}

int report_finish(struct report *rep, struct json_object *o, const char *key)
{
	int r = rep->count[REPORT_FAIL] ? EXIT_FAILED : EXIT_OK;

	if (rep->cli->json) {
		struct json_object *s = json_object_new_object();

		json_object_object_add(o, key, rep->entries ?: json_object_new_array());
		for (unsigned st = 0; st < _REPORT_STATUS_MAX; st++) {
			if (!(rep->statuses & (1u << st)))
				continue;
			json_object_object_add(s, status_names[st].key, json_object_new_int((int)rep->count[st]));
		}
		json_object_object_add(o, "summary", s);
		print_json(o);
	} else {
		const char *sep = "\n";

		json_object_put(o);
		for (unsigned st = 0; st < _REPORT_STATUS_MAX; st++)
			if (rep->statuses & (1u << st)) {
				printf("%s%s %u", sep, status_names[st].name, rep->count[st]);
				sep = ", ";
			}
		printf("\n");
	}
	rep->entries = NULL;
	return r;
}
