/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Umbrella header of libiovkit. */
#pragma once

#include <iovkit/core.h>
#include <iovkit/pci.h>
#include <iovkit/link.h>
#include <iovkit/iommu.h>
#include <iovkit/passthrough.h>
#include <iovkit/sriov.h>
#include <iovkit/config.h>
#include <iovkit/vfio.h>
#include <iovkit/datapath.h>
