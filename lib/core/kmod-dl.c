/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <dlfcn.h>
#include <pthread.h>
#include <string.h>

#include "kmod-dl.h"

static struct kmod_dl kmod_dl;
static char kmod_dl_error[256];
static pthread_once_t kmod_dl_once = PTHREAD_ONCE_INIT;

static void kmod_dl_open(void)
{
	/* NODELETE: the table stays valid for the life of the process */
	void *h = dlopen("libkmod.so.2", RTLD_NOW | RTLD_NODELETE);
	struct {
		void **fn;
		const char *name;
	} syms[] = {
#define SYM(f) { (void **)&kmod_dl.f, #f }
		SYM(kmod_new), SYM(kmod_unref), SYM(kmod_list_next), SYM(kmod_module_new_from_lookup),
		SYM(kmod_module_get_module), SYM(kmod_module_get_name), SYM(kmod_module_get_initstate),
		SYM(kmod_module_probe_insert_module), SYM(kmod_module_unref), SYM(kmod_module_unref_list),
#undef SYM
	};

	if (!h) {
		snprintf(kmod_dl_error, sizeof(kmod_dl_error), "%s", dlerror());
		return;
	}
	for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
		*syms[i].fn = dlsym(h, syms[i].name);
		if (!*syms[i].fn) {
			snprintf(kmod_dl_error, sizeof(kmod_dl_error), "libkmod.so.2 lacks %s", syms[i].name);
			memset(&kmod_dl, 0, sizeof(kmod_dl));
			dlclose(h);
			return;
		}
	}
}

int kmod_dl_get(struct iovk_ctx *ctx, const char *what, const struct kmod_dl **ret)
{
	pthread_once(&kmod_dl_once, kmod_dl_open);
	if (!kmod_dl.kmod_module_unref_list)
		return set_error(ctx, -EOPNOTSUPP, "%s needs libkmod (Debian: libkmod2): %s", what, kmod_dl_error);
	*ret = &kmod_dl;
	return 0;
}
