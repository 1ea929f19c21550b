/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "common/strv.h"

int strv_push(char ***strv, size_t *n, const char *s)
{
	char **nv;
	char *copy;

	copy = strdup(s);
	if (!copy)
		return -ENOMEM;
	nv = realloc(*strv, (*n + 2) * sizeof(char *));
	if (!nv) {
		free(copy);
		return -ENOMEM;
	}
	nv[(*n)++] = copy;
	nv[*n] = NULL;
	*strv = nv;
	return 0;
}

void strv_free(char **strv)
{
	if (!strv)
		return;
	for (char **p = strv; *p; p++)
		free(*p);
	free(strv);
}
