/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libiovkit VFIO: IOMMU address spaces, devices opened through VFIO, DMA
 * mappings and the pure helpers they are built on (capability-chain walker,
 * IOVA allocator, mapping list), shaped after the kernel's VFIO selftests
 * library (tools/testing/selftests/vfio/lib).
 *
 * One struct iovk_vfio_iommu per IOMMU address space, one struct
 * iovk_vfio_device per opened device. The address space has a backend
 * chosen by a mode: the legacy container (/dev/vfio/vfio with the type1v2
 * IOMMU, falling back to type1, devices through their group
 * /dev/vfio/<group>) or native iommufd (/dev/iommu with one IOAS, devices
 * through their VFIO cdev /dev/vfio/devices/vfioN; Linux 6.6+ built with
 * CONFIG_IOMMUFD and CONFIG_VFIO_DEVICE_CDEV). The same calls work on both.
 *
 * Flags and indexes in this header are the kernel's own values from
 * <linux/vfio.h> (VFIO_REGION_INFO_FLAG_*, VFIO_IRQ_INFO_*,
 * VFIO_PCI_*_INDEX); this header does not include it so that it stays
 * independent of the installed kernel headers.
 *
 * Paths come from the context: <dev root>/vfio/vfio, <dev root>/vfio/<group>,
 * <dev root>/iommu, <dev root>/vfio/devices/vfioN (named by
 * <sysfs root>/bus/pci/devices/<address>/vfio-dev/vfioN).
 */
#pragma once

#include <iovkit/core.h>
#include <iovkit/pci.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Option structs start with their size, so fields can be appended without
 * breaking callers (libbpf's .sz, VFIO's argsz):
 *     struct iovk_vfio_dma_map_opts o = IOVK_OPTS(iovk_vfio_dma_map_opts, .iova = 0x100000);
 * A NULL options pointer means all defaults.
 */
#define IOVK_OPTS(type, ...) ((struct type){ .sz = sizeof(struct type), __VA_ARGS__ })

/* ---- Pure helpers: no kernel needed ------------------------------------- */

/*
 * VFIO info capability chains ("struct vfio_info_cap_header { u16 id; u16
 * version; u32 next; }", linked by offsets from the start of the info
 * buffer). The walk is bounded and defensive: every header must lie whole
 * inside the buffer, at or after hdr_size (the fixed part of the info
 * struct), 4-byte aligned; an offset seen twice, or more than max_caps hops,
 * is a cycle.
 */
struct iovk_vfio_cap {
	uint16_t id;
	uint16_t version;
	uint32_t offset; /* of the header, from the start of the buffer */
	uint32_t avail;  /* bytes from offset to the end of the buffer */
};

/* Hops allowed in one chain, and the largest info buffer accepted. */
#define IOVK_VFIO_CAP_MAX 32
#define IOVK_VFIO_INFO_MAX (64u * 1024)

/*
 * Walks the chain starting at offset first (0: no chain) in buf[0..size).
 * Writes up to max_caps entries to ret_caps in chain order and their count
 * to *ret_n. Returns 0, -E2BIG when size exceeds IOVK_VFIO_INFO_MAX,
 * -EBADMSG for a truncated chain (a header outside the buffer, inside the
 * fixed part, or misaligned), -ELOOP for a cycle or more than max_caps
 * (at most IOVK_VFIO_CAP_MAX) hops.
 */
int iovk_vfio_cap_chain_walk(const void *buf, size_t size, size_t hdr_size, uint32_t first,
			     struct iovk_vfio_cap *ret_caps, size_t max_caps, size_t *ret_n);

/* An inclusive IOVA range, as the kernel reports it (struct vfio_iova_range). */
struct iovk_iova_range {
	uint64_t start;
	uint64_t end; /* inclusive */
};

/* A mappable area of a region with a sparse-mmap capability. */
struct iovk_vfio_sparse_area {
	uint64_t offset; /* within the region */
	uint64_t size;
};

#define IOVK_VFIO_SPARSE_MAX 32

/* One region of a device (VFIO_DEVICE_GET_REGION_INFO, decoded). */
struct iovk_vfio_region {
	uint32_t index;
	uint32_t flags;  /* VFIO_REGION_INFO_FLAG_READ/WRITE/MMAP/CAPS */
	uint64_t size;   /* 0: the region is not implemented */
	uint64_t offset; /* of the region in the device fd */
	size_t n_caps;
	uint16_t cap_ids[IOVK_VFIO_CAP_MAX]; /* in chain order */
	bool has_sparse_mmap; /* only the areas below may be mmap'ed */
	size_t n_sparse_areas;
	struct iovk_vfio_sparse_area sparse_areas[IOVK_VFIO_SPARSE_MAX];
	bool msix_mappable; /* VFIO_REGION_INFO_CAP_MSIX_MAPPABLE: the MSI-X table may be mmap'ed */
	bool has_type;      /* VFIO_REGION_INFO_CAP_TYPE */
	uint32_t type, subtype;
};

/*
 * Decodes a struct vfio_region_info with its capability chain, as
 * VFIO_DEVICE_GET_REGION_INFO filled buf[0..size) (size: the bytes the
 * kernel wrote, at most the argsz it reported). Returns 0, -EBADMSG for a
 * buffer shorter than the fixed struct or its argsz, or a truncated
 * capability, -ELOOP for a cyclic chain, -E2BIG for an oversized buffer or
 * more than IOVK_VFIO_SPARSE_MAX sparse areas, -EOVERFLOW for a sparse area
 * outside the region.
 */
int iovk_vfio_parse_region_info(const void *buf, size_t size, struct iovk_vfio_region *ret_region);

/* The type1 IOMMU's description of an address space (VFIO_IOMMU_GET_INFO). */
struct iovk_vfio_iommu_info {
	uint64_t pgsizes;  /* bitmap of supported IOMMU page sizes */
	bool has_iova_ranges;
	size_t n_iova_ranges;
	struct iovk_iova_range *iova_ranges; /* sorted, non-overlapping; malloc'd */
	bool has_dma_avail;
	uint32_t dma_avail; /* mappings still allowed; 65535 assumed when the kernel does not say */
};

/* dma_avail of an iommufd address space: iommufd has no limit on the number of mappings. */
#define IOVK_VFIO_DMA_AVAIL_UNLIMITED UINT32_MAX

#define IOVK_VFIO_IOVA_RANGES_MAX 1024
/* vfio_iommu_type1's default dma_entry_limit, assumed before 5.10 (no DMA_AVAIL capability). */
#define IOVK_VFIO_DEFAULT_DMA_AVAIL 65535u

/*
 * Decodes a struct vfio_iommu_type1_info with its capability chain. The
 * IOVA ranges are sorted; overlapping or inverted ranges are -EBADMSG. Free
 * the result with iovk_vfio_iommu_info_clear(). Other errors as for
 * iovk_vfio_parse_region_info(); more than IOVK_VFIO_IOVA_RANGES_MAX ranges
 * is -E2BIG.
 */
int iovk_vfio_parse_iommu_info(const void *buf, size_t size, struct iovk_vfio_iommu_info *ret_info);
void iovk_vfio_iommu_info_clear(struct iovk_vfio_iommu_info *info);

/*
 * One PCI function a hot reset of a device (a slot or secondary bus reset,
 * VFIO_DEVICE_PCI_HOT_RESET) would reset, as VFIO_DEVICE_GET_PCI_HOT_RESET_INFO
 * names it; the device asked about is one of them.
 */
struct iovk_vfio_hot_reset_device {
	char address[IOVK_PCI_ADDR_MAX];
	int iommu_group; /* -1: unknown (the kernel reported a devid, or sysfs shows no group) */
	/*
	 * With devids (IOVK_VFIO_HOT_RESET_BY_DEVID): > 0 the function is
	 * bound to our iommufd under that id, 0 it is owned through the IOMMU
	 * group of one that is, -1 not owned. -1 with group ids.
	 */
	int64_t devid;
	bool owned;      /* the address space asking may reset it */
	char driver[64]; /* its driver now, "" for none (filled from sysfs, not by the parser) */
};

/* struct iovk_vfio_hot_reset_info.flags: the kernel's VFIO_PCI_HOT_RESET_FLAG_* */
#define IOVK_VFIO_HOT_RESET_BY_DEVID (1u << 0)    /* a cdev (iommufd): devids, not group ids */
#define IOVK_VFIO_HOT_RESET_DEVID_OWNED (1u << 1) /* with devids: the kernel says all are owned */

struct iovk_vfio_hot_reset_info {
	uint32_t flags;
	size_t n_devices;
	struct iovk_vfio_hot_reset_device *devices; /* in the kernel's (bus walk) order; malloc'd */
	size_t n_unowned;
};

/* At most this many functions in one answer (a bus has at most 256, plus what lies below it). */
#define IOVK_VFIO_HOT_RESET_DEVICES_MAX 1024

/*
 * Decodes a struct vfio_pci_hot_reset_info as the kernel filled
 * buf[0..size). With group ids (a device opened through its group) a
 * function is owned when its group is one of held_groups[0..n_held), the
 * groups the asking address space has attached; with devids (a VFIO cdev
 * bound to an iommufd) when the kernel reports a devid other than
 * VFIO_PCI_DEVID_NOT_OWNED. Returns 0, -EBADMSG for a buffer shorter than
 * its header or its count, no device at all, or a group id above INT_MAX,
 * -E2BIG for more than IOVK_VFIO_HOT_RESET_DEVICES_MAX functions, -ENOMEM.
 * Free the result with iovk_vfio_hot_reset_info_clear().
 */
int iovk_vfio_parse_hot_reset_info(const void *buf, size_t size, const int *held_groups, size_t n_held,
				   struct iovk_vfio_hot_reset_info *ret_info);
void iovk_vfio_hot_reset_info_clear(struct iovk_vfio_hot_reset_info *info);

/*
 * IOVA allocator: hands out IOVAs only inside the valid ranges it was given.
 * Every allocation is remembered, so a free must name an allocation exactly.
 */
struct iovk_iova_allocator;

/* At most this many live allocations (the kernel allows 65535 mappings by default). */
#define IOVK_IOVA_MAX_ALLOCATIONS (1u << 20)

/*
 * Copies and sorts the ranges. Returns 0, -EINVAL when there are none, a
 * range is inverted or two overlap, or -ENOMEM.
 */
int iovk_iova_allocator_new(const struct iovk_iova_range *ranges, size_t n,
			    struct iovk_iova_allocator **ret_allocator);
/* NULL is fine; always returns NULL. */
struct iovk_iova_allocator *iovk_iova_allocator_free(struct iovk_iova_allocator *a);

/*
 * The lowest IOVA iovk_iova_alloc() hands out: the first page is never
 * allocated, as the kernel's DMA API never allocates IOVA page 0
 * (dma-iommu starts at pfn 1) and devices may take address 0 for "not set"
 * (QEMU ignores a virtqueue at 0). iovk_iova_reserve() can still take it.
 */
#define IOVK_IOVA_ALLOC_MIN UINT64_C(0x1000)

/*
 * Allocates size bytes aligned to align (a power of two; 0 means 1), lowest
 * address first, never below IOVK_IOVA_ALLOC_MIN. Returns 0, -EINVAL for
 * size 0 or a bad alignment, -EOVERFLOW when size is larger than every
 * valid range above IOVK_IOVA_ALLOC_MIN (it can never fit), -ENOSPC when
 * the free space left cannot hold it (or IOVK_IOVA_MAX_ALLOCATIONS are
 * live).
 */
int iovk_iova_alloc(struct iovk_iova_allocator *a, uint64_t size, uint64_t align, uint64_t *ret_iova);
/*
 * Marks [iova, iova + size) as allocated, for a mapping at a fixed IOVA.
 * Returns 0, -EINVAL for size 0, -EOVERFLOW when iova + size wraps,
 * -ERANGE when the area is not inside one valid range, -EBUSY when part of
 * it is already allocated.
 */
int iovk_iova_reserve(struct iovk_iova_allocator *a, uint64_t iova, uint64_t size);
/* Returns 0 or -ENOENT when [iova, iova + size) is not an allocation. */
int iovk_iova_free(struct iovk_iova_allocator *a, uint64_t iova, uint64_t size);
size_t iovk_iova_allocator_get_n_allocations(const struct iovk_iova_allocator *a);
/* Bytes neither allocated nor reserved, the first page included while it
 * is (saturates at UINT64_MAX). */
uint64_t iovk_iova_allocator_get_free(const struct iovk_iova_allocator *a);

/* ---- The shadow list of DMA mappings ------------------------------------ */

struct iovk_vfio_mapping {
	uint64_t vaddr; /* host address */
	uint64_t iova;
	uint64_t size;
	uint32_t flags; /* IOVK_VFIO_DMA_READ/WRITE */
};

struct iovk_vfio_mapping_list;

int iovk_vfio_mapping_list_new(struct iovk_vfio_mapping_list **ret_list);
struct iovk_vfio_mapping_list *iovk_vfio_mapping_list_free(struct iovk_vfio_mapping_list *l);
/*
 * An independent copy of a list: e.g. of iovk_vfio_iommu_get_mappings()
 * before that address space goes, for iovk_vfio_iommu_replay(). Returns 0
 * or -ENOMEM.
 */
int iovk_vfio_mapping_list_copy(const struct iovk_vfio_mapping_list *l, struct iovk_vfio_mapping_list **ret_copy);
/*
 * Adds a mapping. Returns 0, -EINVAL for size 0, -EOVERFLOW when iova +
 * size or vaddr + size wraps, -EEXIST when its IOVAs overlap a mapping in
 * the list (host ranges may overlap: one buffer can be mapped twice).
 */
int iovk_vfio_mapping_list_add(struct iovk_vfio_mapping_list *l, const struct iovk_vfio_mapping *m);
/* Removes the mapping [iova, iova + size) exactly; -ENOENT otherwise. */
int iovk_vfio_mapping_list_remove(struct iovk_vfio_mapping_list *l, uint64_t iova, uint64_t size);
/*
 * Translates a host address inside a mapping to its IOVA (the lowest IOVA
 * when several mappings cover it). Returns 0 or -ENOENT.
 */
int iovk_vfio_mapping_list_to_iova(const struct iovk_vfio_mapping_list *l, const void *vaddr,
				   uint64_t *ret_iova);
/* The mapping containing iova, or NULL. */
const struct iovk_vfio_mapping *iovk_vfio_mapping_list_find_iova(const struct iovk_vfio_mapping_list *l,
								  uint64_t iova);
/* All mappings, sorted by IOVA; valid until the list changes. */
const struct iovk_vfio_mapping *iovk_vfio_mapping_list_get(const struct iovk_vfio_mapping_list *l, size_t *ret_n);

/* ---- IOMMU address spaces ------------------------------------------------ */

enum iovk_vfio_mode {
	/*
	 * iommufd when <dev root>/iommu and <dev root>/vfio/devices exist,
	 * else the container; settled when the first device joins: a device
	 * without a VFIO cdev, or a VF token the kernel's cdev cannot take
	 * (before Linux 6.17), moves it to the container.
	 */
	IOVK_VFIO_MODE_AUTO = 0,
	IOVK_VFIO_MODE_CONTAINER, /* legacy container: type1v2, falling back to type1 */
	IOVK_VFIO_MODE_TYPE1V2,   /* legacy container with VFIO_TYPE1v2_IOMMU only */
	IOVK_VFIO_MODE_TYPE1,     /* legacy container with VFIO_TYPE1_IOMMU only */
	IOVK_VFIO_MODE_IOMMUFD,   /* /dev/iommu (an IOAS) + VFIO cdevs */
	_IOVK_VFIO_MODE_MAX,
};

/* "auto", "container", "type1v2", "type1", "iommufd"; NULL for an unknown mode. */
const char *iovk_vfio_mode_to_string(enum iovk_vfio_mode mode);
/* Returns 0 or -EINVAL. */
int iovk_vfio_mode_from_string(const char *s, enum iovk_vfio_mode *ret_mode);

struct iovk_vfio_iommu;

/*
 * Opens an IOMMU address space. For the container modes: opens
 * <dev root>/vfio/vfio, checks VFIO_API_VERSION and that the kernel offers
 * the IOMMU type(s) the mode allows; the type is set when the first device
 * joins (the kernel wants a group attached first). For
 * IOVK_VFIO_MODE_IOMMUFD: opens <dev root>/iommu and allocates an IOAS
 * (IOMMU_IOAS_ALLOC). Returns 0, -ENOENT when the node is missing (vfio not
 * loaded; for iommufd: a kernel without CONFIG_IOMMUFD, the error says so),
 * -EOPNOTSUPP when the kernel offers none of the mode's IOMMU types,
 * -EINVAL for an unknown mode, or the errno of open(2) or the ioctl.
 */
int iovk_vfio_iommu_new(struct iovk_ctx *ctx, enum iovk_vfio_mode mode, struct iovk_vfio_iommu **ret_iommu);
struct iovk_vfio_iommu *iovk_vfio_iommu_ref(struct iovk_vfio_iommu *iommu);
/*
 * Drops a reference; NULL is fine; always returns NULL. The last reference
 * unmaps every DMA mapping, releases the groups and closes the container.
 * Devices hold a reference on their IOMMU.
 */
struct iovk_vfio_iommu *iovk_vfio_iommu_unref(struct iovk_vfio_iommu *iommu);

/*
 * The mode in use: TYPE1V2 or TYPE1 once a device joined the container,
 * IOMMUFD for iommufd, else the one asked for.
 */
enum iovk_vfio_mode iovk_vfio_iommu_get_mode(const struct iovk_vfio_iommu *iommu);
/* "container" or "iommufd" (in AUTO mode: the backend chosen, final once a device joined). */
const char *iovk_vfio_iommu_get_backend(const struct iovk_vfio_iommu *iommu);
/* The container (or iommufd) file descriptor, owned by the object (in AUTO mode it may change until a device joined). */
int iovk_vfio_iommu_get_fd(const struct iovk_vfio_iommu *iommu);

/*
 * What the kernel says about the address space, read when the first device
 * joined: valid IOVA ranges (sorted), IOMMU page sizes. Each returns 0 or
 * -ENXIO before any device joined (the IOMMU type is not set yet).
 */
int iovk_vfio_iommu_get_iova_ranges(const struct iovk_vfio_iommu *iommu, const struct iovk_iova_range **ret_ranges,
				    size_t *ret_n);
int iovk_vfio_iommu_get_pgsizes(const struct iovk_vfio_iommu *iommu, uint64_t *ret_pgsizes);
/*
 * Mappings the kernel still allows in this address space, asked from the
 * kernel now (VFIO_IOMMU_GET_INFO, DMA_AVAIL capability). Kernels before
 * 5.10 do not say: then 65535 (the default dma_entry_limit) minus the
 * mappings made, and *ret_reported (if given) false. iommufd has no such
 * limit: IOVK_VFIO_DMA_AVAIL_UNLIMITED, *ret_reported false. Returns 0,
 * -ENXIO before any device joined, or the ioctl's errno.
 */
int iovk_vfio_iommu_get_dma_avail(struct iovk_vfio_iommu *iommu, uint32_t *ret_avail, bool *ret_reported);

/* ---- DMA mappings -------------------------------------------------------- */

enum iovk_vfio_dma_flags {
	IOVK_VFIO_DMA_READ = 1u << 0,  /* the device may read (VFIO_DMA_MAP_FLAG_READ) */
	IOVK_VFIO_DMA_WRITE = 1u << 1, /* the device may write */
	/* Map at opts->iova instead of one from the allocator. */
	IOVK_VFIO_DMA_FIXED_IOVA = 1u << 8,
	/*
	 * Skip the library's own checks (IOVA inside the valid ranges, no
	 * overlap, alignment, dma_avail) and let the kernel judge: for tests
	 * of the kernel's refusals. The mapping list still refuses overlaps.
	 */
	IOVK_VFIO_DMA_NO_CHECK = 1u << 9,
};

struct iovk_vfio_dma_map_opts {
	size_t sz;
	unsigned flags; /* enum iovk_vfio_dma_flags; READ|WRITE when neither is given */
	uint64_t iova;  /* with IOVK_VFIO_DMA_FIXED_IOVA */
};

/*
 * Maps [vaddr, vaddr + size) for DMA and records the mapping. Without
 * IOVK_VFIO_DMA_FIXED_IOVA the IOVA comes from the address space's
 * allocator, aligned to the largest IOMMU page size not above size.
 * vaddr and size must be multiples of the smallest IOMMU page size.
 * The IOVA used goes to *ret_iova (if given).
 *
 * Returns 0 or: -EINVAL (size 0, misaligned), -EOVERFLOW (iova + size
 * wraps, or larger than any valid range), -ERANGE (a fixed IOVA outside the
 * valid ranges, naming them), -EEXIST (overlaps a mapping), -ENOSPC (no
 * free IOVA space, or dma_avail used up: the error names the
 * dma_entry_limit parameter), -ENOMEM (pinning failed; when the locked
 * memory would exceed RLIMIT_MEMLOCK the error says so and names the
 * limit), -ENXIO (no device joined yet), or the kernel's errno.
 */
int iovk_vfio_dma_map(struct iovk_vfio_iommu *iommu, void *vaddr, uint64_t size,
		      const struct iovk_vfio_dma_map_opts *opts, uint64_t *ret_iova);
/* Unmaps a mapping made by iovk_vfio_dma_map(), exactly; -ENOENT when there is none. */
int iovk_vfio_dma_unmap(struct iovk_vfio_iommu *iommu, uint64_t iova, uint64_t size);
/* Unmaps every mapping; returns the number unmapped or the first -errno. */
int iovk_vfio_dma_unmap_all(struct iovk_vfio_iommu *iommu);
/* The IOVA of a host address inside a mapping: 0 or -ENOENT. */
int iovk_vfio_dma_to_iova(const struct iovk_vfio_iommu *iommu, const void *vaddr, uint64_t *ret_iova);
/* The shadow list of the mappings made through this object. */
const struct iovk_vfio_mapping_list *iovk_vfio_iommu_get_mappings(const struct iovk_vfio_iommu *iommu);
/*
 * Maps every mapping of a list into this address space at the same IOVAs,
 * host addresses and permissions, in IOVA order, all or nothing: e.g. a
 * copy of another address space's list (iovk_vfio_mapping_list_copy()),
 * taken before it was closed, onto its successor. The host memory must
 * still be mapped in this process. Each mapping goes through
 * iovk_vfio_dma_map() with its checks. Returns the number of mappings made,
 * or the -errno of the first that failed: then every mapping the replay made
 * was unmapped again, and the error names the failing mapping (its place in
 * the list, IOVA, size, host address) and why. -EINVAL when the list is this
 * address space's own.
 */
int iovk_vfio_iommu_replay(struct iovk_vfio_iommu *iommu, const struct iovk_vfio_mapping_list *mappings);

/* ---- DMA buffers --------------------------------------------------------- */

/* A memfd-backed buffer, mapped shared: DMA-able and shareable with a VMM. */
struct iovk_vfio_buffer;

enum iovk_vfio_buffer_flags {
	/* Back the buffer with huge pages when the host has free ones; fall back to 4 KiB pages. */
	IOVK_VFIO_BUFFER_HUGETLB = 1u << 0,
	/* Huge pages or fail (-ENOMEM when none are free, -EOPNOTSUPP without hugetlbfs). */
	IOVK_VFIO_BUFFER_REQUIRE_HUGETLB = 1u << 1,
};

/*
 * Allocates size bytes (rounded up to the page size used), zeroed. The
 * huge page size is the system default (Hugepagesize in <proc root>/meminfo).
 * Returns 0, -EINVAL for size 0, or the errno of memfd_create/mmap.
 */
int iovk_vfio_buffer_new(struct iovk_ctx *ctx, size_t size, unsigned flags, struct iovk_vfio_buffer **ret_buffer);
/* NULL is fine; always returns NULL. */
struct iovk_vfio_buffer *iovk_vfio_buffer_free(struct iovk_vfio_buffer *b);
void *iovk_vfio_buffer_get_addr(const struct iovk_vfio_buffer *b);
size_t iovk_vfio_buffer_get_size(const struct iovk_vfio_buffer *b);
size_t iovk_vfio_buffer_get_page_size(const struct iovk_vfio_buffer *b);
bool iovk_vfio_buffer_is_hugetlb(const struct iovk_vfio_buffer *b);
/* The memfd, owned by the buffer (dup it to keep it). */
int iovk_vfio_buffer_get_fd(const struct iovk_vfio_buffer *b);

/* ---- Devices ------------------------------------------------------------- */

struct iovk_vfio_device;

struct iovk_vfio_device_opts {
	size_t sz;
	/*
	 * VF token (a UUID) shared with the PF's vfio-pci user, required to
	 * open a VF whose PF is bound to vfio-pci; passed to the kernel as
	 * "<address> vf_token=<uuid>".
	 */
	const char *vf_token;
};

/*
 * Opens the PCI device at address (any form iovk_pci_addr_parse() takes)
 * in the address space: checks that vfio-pci (or a vfio variant driver)
 * owns it, then for the container opens <dev root>/vfio/<group> (once per
 * group), checks VFIO_GROUP_FLAGS_VIABLE, attaches the group, sets the IOMMU
 * type on the first group and gets the device fd; for iommufd opens the
 * device's cdev, binds it to the iommufd (VFIO_DEVICE_BIND_IOMMUFD) and
 * attaches it to the IOAS (VFIO_DEVICE_ATTACH_IOMMUFD_PT). Then reads its
 * info, regions and IRQs. The valid IOVA ranges are read again after every
 * device joins (each can bring reserved regions).
 *
 * VF tokens with iommufd: passed in the bind (VFIO_DEVICE_BIND_FLAG_TOKEN,
 * Linux 6.17+). Older kernels check no token on the cdev path at all; for a
 * VF whose PF is on the same vfio driver iovkit then refuses to open it
 * without a token (-EACCES, as the kernel does through the group), and with
 * one (-EOPNOTSUPP: the kernel cannot check it; the container can).
 *
 * Returns 0 or: -EINVAL (malformed address or VF token), -ENODEV (no such
 * device, or no IOMMU group), -EBUSY (not bound to vfio-pci: the error says
 * "bind it first"; the group is not viable: the error names every blocking
 * device and its driver; the group or the device is open in another
 * process), -EACCES (a VF token is required or wrong: the error says
 * which), -EPERM (the kernel refused the IOMMU type, e.g. without interrupt
 * remapping), -EOPNOTSUPP (iommufd: the device has no VFIO cdev, or the
 * kernel's cdev takes no VF token), or another errno, always with the
 * device named in iovk_ctx_get_error().
 */
int iovk_vfio_device_open(struct iovk_vfio_iommu *iommu, const char *address,
			  const struct iovk_vfio_device_opts *opts, struct iovk_vfio_device **ret_device);
struct iovk_vfio_device *iovk_vfio_device_ref(struct iovk_vfio_device *dev);
/* The last reference disables its IRQs, unmaps its regions and closes the device fd. */
struct iovk_vfio_device *iovk_vfio_device_unref(struct iovk_vfio_device *dev);

const char *iovk_vfio_device_get_address(const struct iovk_vfio_device *dev);
int iovk_vfio_device_get_iommu_group(const struct iovk_vfio_device *dev);
struct iovk_vfio_iommu *iovk_vfio_device_get_iommu(const struct iovk_vfio_device *dev);
int iovk_vfio_device_get_fd(const struct iovk_vfio_device *dev);
/* VFIO_DEVICE_FLAGS_* (PCI, RESET, CAPS, ...). */
uint32_t iovk_vfio_device_get_flags(const struct iovk_vfio_device *dev);
/* The kernel's reset methods from sysfs reset_method ("flr bus", ...), NULL when it does not say. */
const char *iovk_vfio_device_get_reset_methods(const struct iovk_vfio_device *dev);

size_t iovk_vfio_device_get_n_regions(const struct iovk_vfio_device *dev);
/* Region index (VFIO_PCI_BAR0_REGION_INDEX ...), NULL when out of range. */
const struct iovk_vfio_region *iovk_vfio_device_get_region(const struct iovk_vfio_device *dev, uint32_t index);

/* pread/pwrite of a region; -EINVAL past its end, else the errno (short access: -EIO). */
int iovk_vfio_device_region_read(struct iovk_vfio_device *dev, uint32_t index, uint64_t offset, void *buf,
				 size_t len);
int iovk_vfio_device_region_write(struct iovk_vfio_device *dev, uint32_t index, uint64_t offset,
				  const void *buf, size_t len);
/* PCI config space through VFIO (VFIO_PCI_CONFIG_REGION_INDEX): what the kernel lets the user see. */
int iovk_vfio_device_config_read(struct iovk_vfio_device *dev, uint64_t offset, void *buf, size_t len);
int iovk_vfio_device_config_write(struct iovk_vfio_device *dev, uint64_t offset, const void *buf, size_t len);

/*
 * mmaps a region (once; the same address on later calls; unmapped with the
 * device). With a sparse-mmap capability the whole region is reserved
 * PROT_NONE and only its areas are mapped, so the holes fault. Returns 0,
 * -EINVAL for a bad index or an empty region, -EOPNOTSUPP when the region is
 * not mmap-able, or the errno of mmap.
 */
int iovk_vfio_device_map_region(struct iovk_vfio_device *dev, uint32_t index, void **ret_addr);

/* One IRQ index (VFIO_DEVICE_GET_IRQ_INFO). */
struct iovk_vfio_irq {
	uint32_t index; /* VFIO_PCI_INTX_IRQ_INDEX, _MSI_, _MSIX_, _ERR_, _REQ_ */
	uint32_t flags; /* VFIO_IRQ_INFO_EVENTFD/MASKABLE/AUTOMASKED/NORESIZE */
	uint32_t count; /* vectors; 0 when the device lacks this kind */
};

size_t iovk_vfio_device_get_n_irqs(const struct iovk_vfio_device *dev);
const struct iovk_vfio_irq *iovk_vfio_device_get_irq(const struct iovk_vfio_device *dev, uint32_t index);

/*
 * Enables count vectors (1 .. the index's count) of an IRQ index, one
 * eventfd per vector (VFIO_DEVICE_SET_IRQS, DATA_EVENTFD|ACTION_TRIGGER).
 * One index at a time for INTx/MSI/MSI-X (the kernel's rule): -EBUSY when
 * another of them is enabled. Returns 0, -EINVAL, -ERANGE for a count above
 * the index's, or the kernel's errno.
 */
int iovk_vfio_device_irq_enable(struct iovk_vfio_device *dev, uint32_t index, uint32_t count);
/* Disables the index and closes its eventfds (0 when it was not enabled). */
int iovk_vfio_device_irq_disable(struct iovk_vfio_device *dev, uint32_t index);
/* The eventfd of an enabled vector (owned by the device), or -ENOENT. */
int iovk_vfio_device_irq_get_eventfd(const struct iovk_vfio_device *dev, uint32_t index, uint32_t vector);
/*
 * Asks the kernel to signal a vector's eventfd as if the device had raised
 * it (DATA_NONE|ACTION_TRIGGER): a loopback test of the IRQ path.
 */
int iovk_vfio_device_irq_trigger(struct iovk_vfio_device *dev, uint32_t index, uint32_t vector);
/* Unmasks INTx after it fired (the kernel masks it automatically). */
int iovk_vfio_device_irq_unmask(struct iovk_vfio_device *dev, uint32_t index);

/*
 * VFIO_DEVICE_RESET. Returns 0, -ENOTTY when the device offers no reset
 * (the error names the kernel's reset methods), or the kernel's errno,
 * naming the device and its reset methods.
 */
int iovk_vfio_device_reset(struct iovk_vfio_device *dev);

/*
 * What a PCI hot reset of the device would reset
 * (VFIO_DEVICE_GET_PCI_HOT_RESET_INFO): every function on its slot, or on
 * its bus and below, the device included, each with its IOMMU group, its
 * driver now, and whether this address space owns it. Container: the
 * function's IOMMU group is attached to this container and the function is
 * on a vfio driver (the kernel resets only functions vfio-pci holds).
 * iommufd (the kernel reports devids, Linux 6.6+): the kernel's word, i.e.
 * bound to this iommufd or in the IOMMU group of a function that is.
 * Returns 0, -ENODEV when the device has no hot reset (neither its slot nor
 * its bus can be reset; the error says so plainly), or the kernel's -errno.
 * Free the result with iovk_vfio_hot_reset_info_clear().
 */
int iovk_vfio_device_get_hot_reset_info(struct iovk_vfio_device *dev, struct iovk_vfio_hot_reset_info *ret_info);

/*
 * PCI hot reset (VFIO_DEVICE_PCI_HOT_RESET) of the device's slot or bus,
 * after the ownership check of every function it would reset, as
 * iovk_vfio_device_get_hot_reset_info() reports it. Only when every one is
 * owned is the reset asked for: with the fds of their IOMMU groups
 * (container), or with a zero-length group fd array (iommufd). Returns 0,
 * -EBUSY without resetting anything when a function is not owned (the
 * error names each one with its IOMMU group and driver), -ENODEV when the
 * device has no hot reset, or the kernel's -errno.
 */
int iovk_vfio_device_hot_reset(struct iovk_vfio_device *dev);

/*
 * Sets the VF token on a PF opened through VFIO (VFIO_DEVICE_FEATURE
 * PCI_VF_TOKEN): VFs of this PF then open only with that token. Needs SR-IOV
 * enabled and no VF open. Returns 0, -EINVAL for a malformed UUID, or the
 * kernel's errno.
 */
int iovk_vfio_device_set_vf_token(struct iovk_vfio_device *dev, const char *uuid);

/* Region and IRQ names for vfio-pci indexes: "BAR0".."BAR5", "ROM", "CONFIG", "VGA"; "INTX", "MSI", "MSIX", "ERR", "REQ". NULL beyond. */
const char *iovk_vfio_pci_region_name(uint32_t index);
const char *iovk_vfio_pci_irq_name(uint32_t index);

#ifdef __cplusplus
}
#endif
