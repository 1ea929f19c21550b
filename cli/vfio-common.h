/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What iovctl vfio info/reset (cmd-vfio.c) and vfio selftest (cmd-vfio-selftest.c) share. */
#pragma once

#include <stdint.h>

#include "iovctl.h"

/* A device opened through VFIO for one command, with the address space it is in. */
struct vfio_cmd {
	struct iovk_vfio_iommu *iommu;
	struct iovk_vfio_device *dev;
	char address[IOVK_PCI_ADDR_MAX];
	char driver[64];
	bool hot; /* vfio reset --hot */
};

void vfio_cmd_done(struct vfio_cmd *c);

/*
 * Parses the shared options (and --hot where allow_hot) and opens the
 * device: EXIT_OK, -1 after printing help, or an exit status; on anything
 * but EXIT_OK c is released already.
 */
int open_device(struct cli *cli, const char *cmd, const char *help, int argc, char **argv, struct vfio_cmd *c,
		bool allow_hot);

/* v in the largest unit that divides it: 4096 -> "4KiB", 3000 -> "3000B". */
void size_text(uint64_t v, char buf[static 24]);

int vfio_selftest(struct cli *cli, int argc, char **argv);
