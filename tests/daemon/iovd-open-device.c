/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * iovd-open-device: a D-Bus client of iovd's OpenDevice, for the tests
 * (tests/daemon/run-tests, tests/vm/cases/80-iovd-nvme.sh). busctl and gdbus
 * print the number of a descriptor they receive but cannot use it, and this
 * host has no python3-dbus: this client receives the VFIO group descriptor
 * and shows what it is, the way a VMM would use it.
 *
 *   iovd-open-device [--address ADDR] [--vfio-status] [--read-config BDF] [--hold] ALLOCATION
 *   iovd-open-device [--address ADDR] --cdevs [--read-config BDF] ALLOCATION
 *
 * Prints one JSON line: the descriptor's target (/proc/self/fd), its file
 * type, access mode and device number, and with --vfio-status the result of
 * VFIO_GROUP_GET_STATUS on it (which fails unless it is a real VFIO group).
 * --cdevs calls OpenDeviceCdevs instead and prints each endpoint with the
 * target of the cdev descriptor received for it; with --read-config BDF,
 * BDF's cdev is used as a VMM on iommufd uses it: bound to a new iommufd
 * (VFIO_DEVICE_BIND_IOMMUFD), attached to an IOAS, its config space read
 * ("config" in BDF's entry).
 * --read-config BDF uses the group as a VMM does: a type1 container, the
 * device's descriptor (VFIO_GROUP_GET_DEVICE_FD), and the first 16 bytes of
 * its config space read through VFIO's config region ("config": hex).
 * --hold keeps the descriptor open until standard input ends, so a test can
 * check what iovd does while a "VM" holds the group. Errors: the D-Bus error
 * name and text on stderr, exit 1; bad usage exit 2.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <linux/vfio.h>
#include <systemd/sd-bus.h>

#include "common/bus-util.h"
#include "common/iovd-bus.h"

static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", (unsigned char)*s);
		else
			putchar(*s);
	}
	putchar('"');
}

static const char *file_type(mode_t m)
{
	return S_ISCHR(m) ? "char" : S_ISREG(m) ? "file" : S_ISDIR(m) ? "directory" : "other";
}

/*
 * The iommufd and VFIO cdev ioctls a VMM binds a cdev with (Linux 6.6+,
 * include/uapi/linux/iommufd.h and vfio.h), which this host's 6.1 headers
 * lack; lib/vfio/iommufd-uapi.h has the library's copy, private to lib/.
 */
#define TEST_IOMMU_IOAS_ALLOC _IO(';', 0x81)
#define TEST_VFIO_DEVICE_BIND_IOMMUFD _IO(VFIO_TYPE, VFIO_BASE + 18)
#define TEST_VFIO_DEVICE_ATTACH_IOMMUFD_PT _IO(VFIO_TYPE, VFIO_BASE + 19)

struct test_iommu_ioas_alloc {
	__u32 size, flags, out_ioas_id;
};

struct test_vfio_device_bind_iommufd {
	__u32 argsz, flags;
	__s32 iommufd;
	__u32 out_devid;
};

struct test_vfio_device_attach_iommufd_pt {
	__u32 argsz, flags, pt_id;
};

static int print_config(int device, const char *bdf);

/* A cdev as a VMM on iommufd uses it: bound to a new iommufd, attached to an IOAS; prints "config". */
static int cdev_read_config(int cdev, const char *bdf)
{
	struct test_vfio_device_bind_iommufd bind = { .argsz = sizeof(bind) };
	struct test_iommu_ioas_alloc ioas = { .size = sizeof(ioas) };
	struct test_vfio_device_attach_iommufd_pt attach = { .argsz = sizeof(attach) };
	int iommufd = open("/dev/iommu", O_RDWR | O_CLOEXEC), r = -1;

	if (iommufd < 0) {
		fprintf(stderr, "iovd-open-device: /dev/iommu: %m\n");
		return -1;
	}
	bind.iommufd = iommufd;
	if (ioctl(cdev, TEST_VFIO_DEVICE_BIND_IOMMUFD, &bind) < 0)
		fprintf(stderr, "iovd-open-device: VFIO_DEVICE_BIND_IOMMUFD %s: %m\n", bdf);
	else if (ioctl(iommufd, TEST_IOMMU_IOAS_ALLOC, &ioas) < 0)
		fprintf(stderr, "iovd-open-device: IOMMU_IOAS_ALLOC: %m\n");
	else if (attach.pt_id = ioas.out_ioas_id, ioctl(cdev, TEST_VFIO_DEVICE_ATTACH_IOMMUFD_PT, &attach) < 0)
		fprintf(stderr, "iovd-open-device: VFIO_DEVICE_ATTACH_IOMMUFD_PT %s: %m\n", bdf);
	else
		r = print_config(cdev, bdf);
	close(iommufd);
	return r;
}

/* OpenDeviceCdevs' reply: {"cdevs": [{"address": ..., "path": target of the descriptor}, ...]} */
static int print_cdevs(sd_bus_message *reply, const char *read_config)
{
	const char *address;
	int fd, r, n = 0;

	r = sd_bus_message_enter_container(reply, 'a', "(sh)");
	printf("{\"cdevs\": [");
	while (r >= 0 && (r = sd_bus_message_read(reply, "(sh)", &address, &fd)) > 0) {
		char link[64], target[4096];
		ssize_t len;

		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		len = readlink(link, target, sizeof(target) - 1);
		target[len > 0 ? len : 0] = '\0';
		printf("%s{\"address\": ", n++ ? ", " : "");
		json_string(address);
		printf(", \"path\": ");
		json_string(target);
		if (read_config && strcmp(address, read_config) == 0 && cdev_read_config(fd, address) < 0) {
			printf("}]}\n");
			return 1;
		}
		printf("}");
	}
	printf("]}\n");
	if (r < 0) {
		fprintf(stderr, "iovd-open-device: reading the reply: %s\n", strerror(-r));
		return 1;
	}
	return 0;
}

/* The first 16 bytes of the device's config space, through VFIO's config region: prints "config". */
static int print_config(int device, const char *bdf)
{
	struct vfio_region_info region = { .argsz = sizeof(region), .index = VFIO_PCI_CONFIG_REGION_INDEX };
	unsigned char cfg[16];

	if (ioctl(device, VFIO_DEVICE_GET_REGION_INFO, &region) < 0 ||
	    pread(device, cfg, sizeof(cfg), (off_t)region.offset) != (ssize_t)sizeof(cfg)) {
		fprintf(stderr, "iovd-open-device: reading the config space of %s through VFIO: %m\n", bdf);
		return -1;
	}
	printf(", \"config\": \"");
	for (size_t i = 0; i < sizeof(cfg); i++)
		printf("%02x", cfg[i]);
	printf("\"");
	return 0;
}

/* The group as a VMM uses it: container, IOMMU, device, config region; prints "config". */
static int vfio_read_config(int group, const char *bdf)
{
	int container, device, r;

	container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (container < 0) {
		fprintf(stderr, "iovd-open-device: /dev/vfio/vfio: %m\n");
		return -1;
	}
	if (ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) < 0) {
		fprintf(stderr, "iovd-open-device: VFIO_GROUP_SET_CONTAINER: %m\n");
		return -1;
	}
	if (ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU) < 0 &&
	    ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU) < 0) {
		fprintf(stderr, "iovd-open-device: VFIO_SET_IOMMU: %m\n");
		return -1;
	}
	device = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, bdf);
	if (device < 0) {
		fprintf(stderr, "iovd-open-device: VFIO_GROUP_GET_DEVICE_FD %s: %m\n", bdf);
		return -1;
	}
	r = print_config(device, bdf);
	close(device);
	close(container);
	return r;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "address", required_argument, NULL, 'a' },
		{ "vfio-status", no_argument, NULL, 's' },
		{ "hold", no_argument, NULL, 'H' },
		{ "read-config", required_argument, NULL, 'r' },
		{ "cdevs", no_argument, NULL, 'C' },
		{},
	};
	const char *read_config = NULL;
	bool cdevs = false;
	const char *address = getenv("IOVKIT_BUS_ADDRESS");
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	sd_bus *bus = NULL;
	bool vfio_status = false, hold = false;
	char link[64], target[4096];
	struct stat st;
	ssize_t n;
	int c, r, fd, received;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) >= 0) {
		switch (c) {
		case 'a':
			address = optarg;
			break;
		case 's':
			vfio_status = true;
			break;
		case 'H':
			hold = true;
			break;
		case 'r':
			read_config = optarg;
			break;
		case 'C':
			cdevs = true;
			break;
		default:
			return 2;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: iovd-open-device [--address ADDR] [--vfio-status] [--read-config BDF] [--hold] "
			"ALLOCATION\n       iovd-open-device [--address ADDR] --cdevs [--read-config BDF] ALLOCATION\n");
		return 2;
	}
	r = bus_connect(address && *address ? address : NULL, false, NULL, &bus);
	if (r < 0) {
		fprintf(stderr, "iovd-open-device: cannot connect to %s: %s\n", address ?: "the system bus", strerror(-r));
		return 1;
	}
	r = sd_bus_call_method(bus, IOVD_BUS_NAME, IOVD_PATH, IOVD_MANAGER_IFACE, cdevs ? "OpenDeviceCdevs" : "OpenDevice",
			       &e, &reply, "o", argv[optind]);
	if (r < 0) {
		fprintf(stderr, "iovd-open-device: %s: %s\n", e.name ?: "error", e.message ?: strerror(-r));
		return 1;
	}
	if (cdevs) {
		r = print_cdevs(reply, read_config);
		sd_bus_message_unref(reply);
		sd_bus_flush_close_unref(bus);
		return r;
	}
	r = sd_bus_message_read(reply, "h", &received);
	if (r < 0) {
		fprintf(stderr, "iovd-open-device: reading the reply: %s\n", strerror(-r));
		return 1;
	}
	/* the message owns the descriptor it carries */
	fd = fcntl(received, F_DUPFD_CLOEXEC, 3);
	sd_bus_message_unref(reply);
	sd_bus_flush_close_unref(bus);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "iovd-open-device: the descriptor received is unusable: %m\n");
		return 1;
	}
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	target[n > 0 ? n : 0] = '\0';
	printf("{\"path\": ");
	json_string(target);
	printf(", \"type\": \"%s\", \"access\": \"%s\", \"rdev\": \"%u:%u\"", file_type(st.st_mode),
	       (fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR ? "rw" : "other", major(st.st_rdev), minor(st.st_rdev));
	if (vfio_status) {
		struct vfio_group_status status = { .argsz = sizeof(status) };

		if (ioctl(fd, VFIO_GROUP_GET_STATUS, &status) < 0) {
			printf("}\n");
			fprintf(stderr, "iovd-open-device: VFIO_GROUP_GET_STATUS on %s: %m\n", target);
			return 1;
		}
		printf(", \"vfio_status\": {\"viable\": %s, \"container_set\": %s}",
		       status.flags & VFIO_GROUP_FLAGS_VIABLE ? "true" : "false",
		       status.flags & VFIO_GROUP_FLAGS_CONTAINER_SET ? "true" : "false");
	}
	if (read_config && vfio_read_config(fd, read_config) < 0) {
		printf("}\n");
		return 1;
	}
	printf("}\n");
	fflush(stdout);
	if (hold) {
		char buf[256];

		while (read(STDIN_FILENO, buf, sizeof(buf)) > 0)
			;
	}
	close(fd);
	return 0;
}
