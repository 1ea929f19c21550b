/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libkmod, opened the first time a module is looked up (dlopen), as systemd
 * opens its optional libraries. Linked, it and the libcrypto it needs were
 * loaded and relocated by every program that links libiovkit, for the one
 * bind in many that loads a module: ~4.1 M of iovctl list --json's ~67 M
 * instructions (valgrind --tool=callgrind on a program linking json-c and
 * libsystemd, with and without -lkmod), and ~150 page faults.
 */
#pragma once

#include <libkmod.h>

#include "../internal.h"

struct kmod_dl {
	typeof(kmod_new) *kmod_new;
	typeof(kmod_unref) *kmod_unref;
	typeof(kmod_list_next) *kmod_list_next;
	typeof(kmod_module_new_from_lookup) *kmod_module_new_from_lookup;
	typeof(kmod_module_get_module) *kmod_module_get_module;
	typeof(kmod_module_get_name) *kmod_module_get_name;
	typeof(kmod_module_get_initstate) *kmod_module_get_initstate;
	typeof(kmod_module_probe_insert_module) *kmod_module_probe_insert_module;
	typeof(kmod_module_unref) *kmod_module_unref;
	typeof(kmod_module_unref_list) *kmod_module_unref_list;
};

/* libkmod's functions, or -EOPNOTSUPP with the error set (what a load
 * was for: what) when libkmod.so.2 cannot be opened or lacks one. */
int kmod_dl_get(struct iovk_ctx *ctx, const char *what, const struct kmod_dl **ret);

/* kmod_list_foreach(), through the table */
#define kmod_dl_foreach(k, it, list) for ((it) = (list); (it); (it) = (k)->kmod_list_next((list), (it)))
