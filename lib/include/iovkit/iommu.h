/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libiovkit IOMMU: groups, their viability for VFIO, reserved regions and
 * the host's IOMMU state.
 *
 * Group numbers are assigned at boot and change across reboots: keep them
 * in memory only, never in persistent configuration.
 */
#pragma once

#include <iovkit/core.h>
#include <iovkit/pci.h>

#ifdef __cplusplus
extern "C" {
#endif

struct iovk_iommu_group;

struct iovk_reserved_region {
	uint64_t start;
	uint64_t end; /* inclusive, as sysfs prints it */
	char type[24]; /* "msi", "direct", "direct-relaxable", "reserved" */
};

/* Returns 0, -ENOENT when there is no such group, or another -errno. */
int iovk_iommu_group_new(struct iovk_ctx *ctx, int number, struct iovk_iommu_group **ret_group);
struct iovk_iommu_group *iovk_iommu_group_ref(struct iovk_iommu_group *g);
struct iovk_iommu_group *iovk_iommu_group_unref(struct iovk_iommu_group *g);

/* Every group, by number; NULL-terminated, free with iovk_iommu_group_list_free(). */
int iovk_iommu_group_enumerate(struct iovk_ctx *ctx, struct iovk_iommu_group ***ret_groups, size_t *ret_n);
void iovk_iommu_group_list_free(struct iovk_iommu_group **groups);

int iovk_iommu_group_get_number(const struct iovk_iommu_group *g);

/* The legacy VFIO node of IOMMU group `group` under the context's /dev
 * ("/dev/vfio/12"), malloc'd; NULL for a negative group or on ENOMEM. */
char *iovk_iommu_group_vfio_node(const struct iovk_ctx *ctx, int group);

/* The VFIO cdev of a device on a VFIO driver, under the context's /dev
 * ("/dev/vfio/devices/vfio3", named by <sysfs>/bus/pci/devices/<address>/vfio-dev/vfioN
 * when vfioN has a device number, its "dev" file: Linux 6.6+ with
 * CONFIG_VFIO_DEVICE_CDEV; 6.1 to 6.5 show vfioN without one): the iommufd backend's way in.
 * Returns 0 with the malloc'd path, -ENOENT when the device has none
 * (error set, saying why), -EINVAL for a malformed address, or -errno. */
int iovk_device_vfio_cdev_node(struct iovk_ctx *ctx, const char *address, char **ret_path);
/*
 * Whether a VFIO user (a VM, whoever holds a descriptor of it) has the
 * group's legacy VFIO node open now: unbinding vfio-pci from a device of
 * it would then block until that user lets go. Returns 1 open, 0 not
 * (also when there is no node: nothing of the group is on vfio-pci),
 * -EINVAL for a negative group, -ENOMEM.
 */
int iovk_iommu_group_vfio_is_open(struct iovk_ctx *ctx, int group);
/* Member devices sorted by address, NULL-terminated. */
struct iovk_device *const *iovk_iommu_group_get_devices(const struct iovk_iommu_group *g);
size_t iovk_iommu_group_get_n_devices(const struct iovk_iommu_group *g);
/* Default domain type ("DMA", "DMA-FQ", "identity", ...) or NULL. */
const char *iovk_iommu_group_get_type(const struct iovk_iommu_group *g);
/* Reserved regions, sorted by start. */
const struct iovk_reserved_region *iovk_iommu_group_get_reserved_regions(const struct iovk_iommu_group *g,
									  size_t *ret_n);
/*
 * True when VFIO can take the group: every member passes
 * iovk_device_is_vfio_safe(). Count of blocking devices in *ret_n_blocking.
 */
bool iovk_iommu_group_is_viable(const struct iovk_iommu_group *g, size_t *ret_n_blocking);

/* Parses the text of a group's reserved_regions file. */
int iovk_iommu_parse_reserved_regions(const char *text, struct iovk_reserved_region **ret_regions,
				      size_t *ret_n);

/* ---- Host state ----------------------------------------------------------- */

enum iovk_tristate {
	IOVK_UNKNOWN = -1,
	IOVK_NO = 0,
	IOVK_YES = 1,
};

/* Sized as struct iovk_bind_result: initialise with IOVK_IOMMU_HOST_STATE_INIT. */
struct iovk_iommu_host_state {
	size_t sz;
	bool enabled;             /* the kernel runs an IOMMU: groups exist */
	unsigned n_groups;
	unsigned n_units;         /* entries in /sys/class/iommu (dmar0, ivhd0, ...) */
	char vendor[16];          /* "intel", "amd", "arm-smmu", "virtio", "" */
	char cmdline_intel_iommu[32]; /* value of intel_iommu= on the command line, "" if absent */
	char cmdline_amd_iommu[32];
	char cmdline_iommu[32];       /* value of iommu= ("pt", "on", ...) */
	bool passthrough;         /* iommu=pt or iommu.passthrough=1: identity default domains */
	enum iovk_tristate intremap; /* interrupt remapping in use */
	enum iovk_tristate allow_unsafe_interrupts; /* vfio_iommu_type1 parameter */
	bool vfio_loaded;         /* vfio module loaded (or built in) */
	bool vfio_pci_loaded;
	bool vfio_container;      /* <dev>/vfio/vfio exists */
	bool iommufd;             /* <dev>/iommu exists */
};
#define IOVK_IOMMU_HOST_STATE_INIT { .sz = sizeof(struct iovk_iommu_host_state) }

/* Reads the host's IOMMU state. Returns 0, -EINVAL for a ret_state whose
 * sz is too small, or -errno. */
int iovk_iommu_get_host_state(struct iovk_ctx *ctx, struct iovk_iommu_host_state *ret_state);

/* ---- Binding a whole group (lib/iommu/group-bind.c) --------------------- */

/*
 * Binds every endpoint of an IOMMU group to driver, as one transaction:
 * bridges are left alone, and when any device fails the ones already moved
 * are put back. Every endpoint that would leave its driver is checked with
 * iovk_device_check_in_use() first: one in use fails the call with -EBUSY
 * naming all of them, nothing written, unless IOVK_BIND_FORCE. On success
 * *ret_n_changed (if given) counts the devices that moved.
 */
int iovk_iommu_group_bind(struct iovk_ctx *ctx, int group, const char *driver, unsigned flags,
			  size_t *ret_n_changed);

#ifdef __cplusplus
}
#endif
