/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <string.h>

#include "../internal.h"

struct iovk_iommu_group {
	int n_ref;
	struct iovk_ctx *ctx;
	int number;
	char *type;
	struct iovk_device **devices; /* NULL-terminated */
	size_t n_devices;
	struct iovk_reserved_region *regions;
	size_t n_regions;
};

static int region_cmp(const void *a, const void *b)
{
	const struct iovk_reserved_region *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

_public_ int iovk_iommu_parse_reserved_regions(const char *text, struct iovk_reserved_region **ret_regions,
					       size_t *ret_n)
{
	_cleanup_free_ struct iovk_reserved_region *regions = NULL;
	size_t n = 0;
	const char *line = text;

	assert_return(text && ret_regions, -EINVAL);
	/* Each line: "0x%016llx 0x%016llx %s\n" (iommu_group_show_resv_regions). */
	while (line && *line) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		char buf[128], type[sizeof(regions->type)];
		unsigned long long start, end;
		struct iovk_reserved_region *nr;
		int consumed = 0;

		if (len == 0) {
			line = nl ? nl + 1 : NULL;
			continue;
		}
		if (len >= sizeof(buf))
			return -EBADMSG;
		memcpy(buf, line, len);
		buf[len] = '\0';
		if (sscanf(buf, "%llx %llx %23s%n", &start, &end, type, &consumed) != 3 ||
		    (size_t)consumed != len || start > end)
			return -EBADMSG;
		nr = realloc(regions, (n + 1) * sizeof(*regions));
		if (!nr)
			return -ENOMEM;
		regions = nr;
		regions[n].start = start;
		regions[n].end = end;
		snprintf(regions[n].type, sizeof(regions[n].type), "%s", type);
		n++;
		line = nl ? nl + 1 : NULL;
	}
	if (n > 1)
		qsort(regions, n, sizeof(*regions), region_cmp);
	*ret_regions = TAKE_PTR(regions);
	*ret_n = n;
	return 0;
}

static int read_group(struct iovk_iommu_group *g)
{
	struct iovk_ctx *ctx = g->ctx;
	_cleanup_free_ char *dir_path = NULL, *p = NULL, *text = NULL;
	_cleanup_strv_free_ char **names = NULL;
	size_t n;
	int r;

	dir_path = sysfs_path(ctx, "/kernel/iommu_groups/%d/devices", g->number);
	if (!dir_path)
		return -ENOMEM;
	/* Groups can hold non-PCI devices (platform, ACPI); only PCI
	 * functions are ours to list. */
	r = list_pci_addresses(dir_path, &names, &n);
	if (r < 0)
		return set_error(ctx, r, "IOMMU group %d: reading %s: %s", g->number, dir_path, strerror(-r));
	r = read_devices(ctx, names, n, &g->devices, &g->n_devices);
	if (r < 0)
		return r;

	p = sysfs_path(ctx, "/kernel/iommu_groups/%d/type", g->number);
	if (!p)
		return -ENOMEM;
	r = read_text(p, &g->type);
	if (r < 0 && r != -ENOENT)
		return set_error(ctx, r, "IOMMU group %d: reading %s: %s", g->number, p, strerror(-r));
	free(p);

	p = sysfs_path(ctx, "/kernel/iommu_groups/%d/reserved_regions", g->number);
	if (!p)
		return -ENOMEM;
	r = read_text(p, &text);
	if (r == -ENOENT)
		return 0; /* kernels before 4.11 */
	if (r < 0)
		return set_error(ctx, r, "IOMMU group %d: reading %s: %s", g->number, p, strerror(-r));
	r = iovk_iommu_parse_reserved_regions(text, &g->regions, &g->n_regions);
	if (r < 0)
		return set_error(ctx, r, "IOMMU group %d: %s is not in the kernel's format", g->number, p);
	return 0;
}

_public_ int iovk_iommu_group_new(struct iovk_ctx *ctx, int number, struct iovk_iommu_group **ret_group)
{
	_cleanup_free_ char *p = NULL;
	struct iovk_iommu_group *g;
	int r;

	assert_return(ctx && ret_group, -EINVAL);
	clear_error(ctx);
	if (number < 0)
		return set_error(ctx, -EINVAL, "%d is not an IOMMU group number", number);
	p = sysfs_path(ctx, "/kernel/iommu_groups/%d", number);
	if (!p)
		return -ENOMEM;
	if (!path_exists(p))
		return set_error(ctx, -ENOENT, "IOMMU group %d does not exist (%s)", number, p);
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->n_ref = 1;
	g->ctx = iovk_ctx_ref(ctx);
	g->number = number;
	r = read_group(g);
	if (r < 0) {
		iovk_iommu_group_unref(g);
		return r;
	}
	*ret_group = g;
	return 0;
}

/* Frees what the last reference held (DEFINE_PUBLIC_REF_UNREF below). */
static void iommu_group_free(struct iovk_iommu_group *g)
{
	iovk_device_list_free(g->devices);
	free(g->type);
	free(g->regions);
	iovk_ctx_unref(g->ctx);
	free(g);
}

DEFINE_PUBLIC_REF_UNREF(struct iovk_iommu_group, iovk_iommu_group, iommu_group_free);

static int group_cmp(const void *a, const void *b)
{
	int x = (*(struct iovk_iommu_group *const *)a)->number;
	int y = (*(struct iovk_iommu_group *const *)b)->number;

	return x < y ? -1 : x > y;
}

_public_ int iovk_iommu_group_enumerate(struct iovk_ctx *ctx, struct iovk_iommu_group ***ret_groups,
					size_t *ret_n)
{
	_cleanup_free_ char *p = NULL;
	_cleanup_closedir_ DIR *dir = NULL;
	struct iovk_iommu_group **list;
	size_t n = 0;
	struct dirent *de;
	int r;

	assert_return(ctx && ret_groups, -EINVAL);
	p = sysfs_path(ctx, "/kernel/iommu_groups");
	clear_error(ctx);
	if (!p)
		return -ENOMEM;
	list = calloc(1, sizeof(*list));
	if (!list)
		return -ENOMEM;
	dir = opendir(p);
	if (!dir) {
		r = negative_errno();
		/* No IOMMU support built in: no groups, which is not an error. */
		if (r == -ENOENT)
			goto done;
		free(list);
		return set_error(ctx, r, "reading %s: %s", p, strerror(-r));
	}
	while ((de = readdir(dir))) {
		struct iovk_iommu_group **nl;
		char *end;
		long num;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		num = strtol(de->d_name, &end, 10);
		if (*end || num > INT_MAX)
			continue;
		nl = realloc(list, (n + 2) * sizeof(*list));
		if (!nl) {
			r = -ENOMEM;
			goto fail;
		}
		list = nl;
		list[n + 1] = NULL;
		r = iovk_iommu_group_new(ctx, (int)num, &list[n]);
		if (r < 0)
			goto fail;
		n++;
	}
done:
	list[n] = NULL;
	qsort(list, n, sizeof(*list), group_cmp);
	*ret_groups = list;
	if (ret_n)
		*ret_n = n;
	return 0;
fail:
	list[n] = NULL;
	iovk_iommu_group_list_free(list);
	return r;
}

_public_ void iovk_iommu_group_list_free(struct iovk_iommu_group **groups)
{
	if (!groups)
		return;
	for (struct iovk_iommu_group **g = groups; *g; g++)
		iovk_iommu_group_unref(*g);
	free(groups);
}

_public_ char *iovk_iommu_group_vfio_node(const struct iovk_ctx *ctx, int group)
{
	if (!ctx || group < 0)
		return NULL;
	return dev_path(ctx, "/vfio/%d", group);
}

_public_ int iovk_device_vfio_cdev_node(struct iovk_ctx *ctx, const char *address, char **ret_path)
{
	_cleanup_free_ char *dir = NULL;
	_cleanup_closedir_ DIR *d = NULL;
	char canonical[IOVK_PCI_ADDR_MAX];
	struct iovk_pci_addr a;
	struct dirent *de;
	int r;

	assert_return(ctx && address && ret_path, -EINVAL);
	if (iovk_pci_addr_parse(address, &a) < 0)
		return set_error(ctx, -EINVAL, "'%s' is not a PCI address (expected DDDD:BB:DD.F or BB:DD.F, hex)",
				 address);
	iovk_pci_addr_format(&a, canonical);
	dir = sysfs_path(ctx, "/bus/pci/devices/%s/vfio-dev", canonical);
	if (!dir)
		return -ENOMEM;
	d = opendir(dir);
	if (!d) {
		r = negative_errno();
		if (r == -ENOENT)
			return set_error(ctx, -ENOENT,
					 "%s has no VFIO cdev (no %s: the kernel lacks CONFIG_VFIO_DEVICE_CDEV, Linux 6.6+, "
					 "the device is not on a VFIO driver, or its vfio driver predates cdevs)",
					 canonical, dir);
		return set_error(ctx, r, "%s: reading %s: %s", canonical, dir, strerror(-r));
	}
	while ((de = readdir(d)))
		if (strncmp(de->d_name, "vfio", 4) == 0 && de->d_name[4] >= '0' && de->d_name[4] <= '9') {
			/*
			 * Linux 6.1 added the vfio-dev class device (vfioN) for
			 * every VFIO device; only CONFIG_VFIO_DEVICE_CDEV (6.6+)
			 * gives it a device number, and so a node in /dev. Measured
			 * on Debian's 6.1: vfio-dev/vfio0 without "dev", no
			 * /dev/vfio/devices.
			 */
			_cleanup_free_ char *devt = NULL;

			if (asprintf(&devt, "%s/dev", de->d_name) < 0)
				return -ENOMEM;
			if (faccessat(dirfd(d), devt, F_OK, 0) < 0 && errno == ENOENT)
				return set_error(ctx, -ENOENT,
						 "%s has no VFIO cdev (%s/%s has no device number: the kernel lacks "
						 "CONFIG_VFIO_DEVICE_CDEV, Linux 6.6+)", canonical, dir, de->d_name);
			*ret_path = dev_path(ctx, "/vfio/devices/%s", de->d_name);
			return *ret_path ? 0 : -ENOMEM;
		}
	return set_error(ctx, -ENOENT, "%s: %s names no vfioN cdev", canonical, dir);
}

_public_ int iovk_iommu_group_vfio_is_open(struct iovk_ctx *ctx, int group)
{
	_cleanup_free_ char *path = iovk_iommu_group_vfio_node(ctx, group);
	int fd;

	assert_return(ctx, -EINVAL);
	if (!path)
		return group < 0 ? -EINVAL : -ENOMEM;
	/* A legacy VFIO group opens once (vfio_group_fops_open() says
	 * EBUSY to a second opener), so our own open is the question. */
	fd = open(path, O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	return errno == EBUSY ? 1 : 0; /* no node: nothing of it is on vfio-pci */
}

_public_ int iovk_iommu_group_get_number(const struct iovk_iommu_group *g)
{
	return g->number;
}

_public_ struct iovk_device *const *iovk_iommu_group_get_devices(const struct iovk_iommu_group *g)
{
	return g->devices;
}

_public_ size_t iovk_iommu_group_get_n_devices(const struct iovk_iommu_group *g)
{
	return g->n_devices;
}

_public_ const char *iovk_iommu_group_get_type(const struct iovk_iommu_group *g)
{
	return g->type;
}

_public_ const struct iovk_reserved_region *iovk_iommu_group_get_reserved_regions(const struct iovk_iommu_group *g,
										  size_t *ret_n)
{
	*ret_n = g->n_regions;
	return g->regions;
}

_public_ bool iovk_iommu_group_is_viable(const struct iovk_iommu_group *g, size_t *ret_n_blocking)
{
	size_t blocking = 0;

	for (size_t i = 0; i < g->n_devices; i++)
		if (!iovk_device_is_vfio_safe(g->devices[i], NULL))
			blocking++;
	if (ret_n_blocking)
		*ret_n_blocking = blocking;
	return blocking == 0;
}
