/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What every harness in tests/fuzz needs: the input as a C string, and an
 * oracle that fails loudly. A broken oracle is a finding like a crash, so
 * it aborts: libFuzzer then saves the input as a crash-* file (see the
 * Makefile's artifact prefix: the harness's corpus directory, where it
 * becomes a regression seed once the bug is fixed).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* data[0..size) with a NUL after it: what a parser of C strings sees (up to a NUL inside). */
static inline char *fuzz_string(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

#define FUZZ_CHECK(cond, ...)                                                                  \
	do {                                                                                   \
		if (!(cond)) {                                                                 \
			fprintf(stderr, "%s:%d: oracle failed: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                          \
			fputc('\n', stderr);                                                   \
			abort();                                                               \
		}                                                                              \
	} while (0)
