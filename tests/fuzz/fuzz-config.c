/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * iovkit.json(5) apply files through the public entry point,
 * iovk_config_add_string() (what iovk_config_add_file() hands a file's text
 * to). Oracles: a file that is accepted declares something, or nothing;
 * adding the same text again as a second file must then be refused (every
 * PF and device is declared twice) or accepted (it declares none), and a
 * refused file must leave the configuration as it was.
 */
#include <errno.h>

#include <iovkit/iovkit.h>

#include "lib/apply/config-internal.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_string(data, size);
	struct iovk_ctx *ctx = NULL;
	struct iovk_config *c = NULL;
	size_t n_pfs, n_devices;
	int r;

	if (iovk_ctx_new(&ctx) < 0 || iovk_config_new(ctx, &c) < 0)
		abort();
	r = iovk_config_add_string(c, "fuzz.json", text);
	FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -EINVAL || r == -EFBIG || r == -E2BIG || r == -ENOMEM, "%d", r);
	FUZZ_CHECK(r == 0 || *iovk_ctx_get_error(ctx), "error %d without a message", r);
	FUZZ_CHECK(iovk_config_get_n_files(c) == (r == 0), "%zu files after %d", iovk_config_get_n_files(c), r);
	if (r == 0) {
		n_pfs = c->n_pfs;
		n_devices = c->n_devices;
		r = iovk_config_add_string(c, "again.json", text);
		if (n_pfs + n_devices > 0)
			FUZZ_CHECK(r == -EINVAL || r == -E2BIG, "the same %zu PFs and %zu devices again: %d (%s)", n_pfs,
				   n_devices, r, iovk_ctx_get_error(ctx));
		else
			FUZZ_CHECK(r == 0, "a file declaring nothing, again: %d (%s)", r, iovk_ctx_get_error(ctx));
		if (r < 0)
			FUZZ_CHECK(c->n_files == 1 && c->n_pfs == n_pfs && c->n_devices == n_devices,
				   "a refused file changed the configuration");
	}
	iovk_config_unref(c);
	iovk_ctx_unref(ctx);
	free(text);
	return 0;
}
