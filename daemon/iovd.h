/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * iovd: the VF allocation service. One process, one sd-event loop, one
 * thread: every method runs to completion on the loop, so the in-memory
 * table of allocations needs no locking and a VF can only be picked by one
 * request at a time.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>
#include <syslog.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include <iovkit/iovkit.h>

#include "common/iovd-bus.h"
#include "common/macro.h"
#include "common/strv.h"

/* Owners and pool names are identifiers, not payloads. */
#define IOVD_NAME_MAX 128

/* What a pool does with a VF's driver when it hands the VF out. */
enum pool_driver {
	POOL_DRIVER_VFIO,   /* bind to vfio-pci */
	POOL_DRIVER_KERNEL, /* put it back on its kernel driver (a netdev for containers) */
	POOL_DRIVER_NONE,   /* leave the driver as it is: bookkeeping only */
};

/*
 * VF settings are libiovkit's struct iovk_vf_settings (iovkit/sriov.h), of
 * which iovd applies these fields: the options mac, vlan (+ qos), spoofchk
 * and trust of Allocate, and a pool's vf_defaults (all but mac). An
 * all-zero mac means no admin MAC; sz and clear_mac are set only where the
 * settings go to iovk_vf_set() (vf.c).
 */
#define IOVD_VF_FIELDS (IOVK_VF_MAC | IOVK_VF_VLAN | IOVK_VF_SPOOFCHK | IOVK_VF_TRUST)

/* What a pool hands out. */
enum pool_kind {
	POOL_KIND_VF,     /* "pfs": SR-IOV VFs of those PFs, one at a time */
	POOL_KIND_DEVICE, /* "devices": whole PCI devices, each with its IOMMU group (devpool.c) */
};

/* A VF pool's selectors beyond its PFs (pool-selectors.c); NULL: any. */
struct vf_filter {
	char **vendors;    /* VF vendor ids, "8086" */
	char **devices;    /* VF device ids, "154c" */
	char **drivers;    /* drivers a VF must be on to join ("none": no driver); allocated VFs stay */
	char **link_types; /* of the PF's netdev: ether, infiniband */
};

struct pool {
	char *name;
	enum pool_kind kind;
	struct vf_filter filter;
	bool numa_strict; /* "numa": "strict": Allocate's numa option is a requirement, not a preference */
	char **selectors; /* as configured: BDF, netdev or vendor:device of PFs; a device pool's "devices" */
	enum pool_driver driver;
	char *device_driver; /* device pools: vfio-pci or a vfio variant driver */
	/* "vf_defaults": what Allocate applies unless its options say otherwise */
	struct iovk_vf_settings vf_defaults;
	/* Inventory, read from sysfs by pool_scan(): */
	char **pfs;      /* PF addresses, NULL-terminated */
	char **vfs;      /* VF addresses, NULL-terminated */
	int *vf_numa;    /* NUMA node of each VF */
	size_t *vf_pf;   /* index in pfs of each VF's PF */
	size_t n_vfs;
	/* A device pool's inventory (pool-devices.c): endpoints, sorted by address. */
	char **devices;
	int *device_numa;
	size_t n_devices;
	uint64_t scanned_usec; /* last rescan on demand (Allocate) */
};

struct config {
	struct pool *pools;
	size_t n_pools;
	char *group;       /* may call mutating methods besides root; NULL: root only */
	gid_t gid;
	bool group_missing; /* group names no group in the user database: root only */
	unsigned max_total;     /* allocations in all pools */
	unsigned max_per_owner; /* allocations under one owner name, whoever made them */
	unsigned max_per_user;  /* allocations of one uid but root, under any owner names */
	char *cdi_spec_dir;     /* "cdi_spec_dir": where the pools' CDI spec is kept current; NULL: none */
};

struct failover;

struct allocation {
	struct manager *manager;
	uint64_t id;
	char *path;
	char *pool;
	char *owner;
	uid_t uid;       /* of the caller of Allocate; (uid_t)-1 when unknown (older state file) */
	char *address;
	char *driver;    /* driver the VF had when the allocation was committed, "" none */
	char *drift;     /* what reconciliation found, "" when nothing */
	int iommu_group; /* read from sysfs, never stored: numbers change across boots */
	int numa_node;
	uint64_t created_usec; /* CLOCK_REALTIME */
	/* Group commit (see commit.c): */
	bool committed;  /* durable and visible on the bus */
	bool releasing;  /* a Release of it waits for the next commit */
	/*
	 * What Allocate changed, kept in the state file, so that Release (also
	 * after a restart) and a failed commit put the VF back exactly:
	 */
	bool has_bind;                /* iovd moved the driver: bind is what iovk_device_bind_undo() needs */
	struct iovk_bind_result bind;
	char *vf_pf;                  /* PF the settings went through; NULL when none were applied */
	unsigned vf_index;            /* the VF's index under vf_pf */
	struct iovk_vf_settings vf_applied;  /* what Allocate set */
	struct iovk_vf_settings vf_previous; /* what those fields were before (same fields) */
	bool put_back;                /* a Release put back what Allocate changed; its commit is pending or failed */
	/*
	 * A device pool's allocation holds a whole IOMMU group: every endpoint
	 * (address first), NULL for a VF. passthrough: libiovkit's passthrough
	 * record, naming allocation_holder(), holds the group (devpool.c).
	 */
	char **devices;
	bool passthrough;
	struct failover *failover;    /* its failover group (failover.c), NULL when none */
	char *fixed_json;             /* the state file's text of every field but failover (state.c), made once */
	size_t fixed_json_len;
};

/*
 * Reading and writing VF settings through the PF. iovd uses libiovkit's
 * netlink calls (vf.c); the unit tests put a fake in their place, as no
 * fixture can answer netlink.
 */
struct vf_ops {
	/* The index of VF vf under PF pf, and its settings now (every field). */
	int (*read)(struct manager *m, const char *pf, const char *vf, unsigned *ret_index,
		    struct iovk_vf_settings *ret, char *err, size_t size);
	/* Writes the fields of c; on failure err says which and why. */
	int (*write)(struct manager *m, const char *pf, unsigned index, const struct iovk_vf_settings *c,
		     char *err, size_t size);
};
extern const struct vf_ops vf_ops_netlink;

struct index_entry {
	const char *key; /* a->address, or one of a->devices */
	struct allocation *a;
};

struct manager {
	const char *version;
	sd_event *event;
	sd_bus *bus;
	struct iovk_ctx *ctx;
	struct config config;
	bool no_bind;
	const struct vf_ops *vf_ops;

	struct allocation **allocs; /* sorted by id */
	size_t n_allocs, allocs_cap;
	struct index_entry *index;  /* by address of a VF or of any endpoint of a device allocation (allocation.c) */
	size_t index_n, index_cap;
	uint64_t next_id;

	char *state_dir;
	int state_dir_fd;
	int lock_fd;
	char *marker_dir; /* <run dir>/iovd-allocated: one file per allocated VF */
	int marker_dir_fd; /* that directory, opened once: a marker is a name in it (markers.c) */

	char **drift; /* reconciliation findings, NULL-terminated */
	size_t n_drift, drift_cap;

	struct committer *commit; /* commit.c */
	struct journal *journal;  /* journal.c */
	bool journal_replayed;    /* the state was loaded from journal records newer than allocations.json */

	struct creds_cache_entry *creds_cache;
	size_t n_creds_cache, creds_cache_next;

	/* cdi.c: the pools' CDI spec, kept current when cdi_spec_dir is set */
	sd_event_source *cdi_timer;
	char *cdi_written; /* what the last write was made from: "id pool address\n" of each committed allocation */
	char *cdi_failed;  /* what the last failed write was made from (logged once), NULL after a write */
};

/*
 * The functions, under the file that defines each, from the bottom up: a
 * file calls only the files listed above it (and libiovkit, common/), so
 * data flows one way: the methods (manager.c) change the table
 * (allocation.c), the commits (commit.c) write it (state.c) and then
 * publish it.
 */

/* ---- log.c: iovd's log, on stderr with syslog priorities; a failure's errno on the bus ---- */
void log_setup(void);
void log_msg(int priority, const char *format, ...) _printf_(2, 3);
void log_library(void *userdata, int priority, const char *file, int line, const char *fn, const char *format,
		 va_list args);
#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
extern int log_max_priority;

/*
 * Sets error for a failure caused by the errno r (negative, as libiovkit and
 * libc calls return it): name when the API has a word for the cause (InUse
 * for an -EBUSY, ...), else System.Error.<ERRNO>, sd-bus's name for an errno
 * (System.Error.EBUSY), which a client's sd_bus_error_get_errno() turns back
 * into the kernel's errno; the text is format's. Without a cause (r >= 0, or
 * an errno glibc has no name for): org.iovkit.iovd1.Error.Failed. Not
 * sd_bus_error_set_errnof(): that gives a dozen errnos the bus's own names
 * instead, EACCES and EPERM both org.freedesktop.DBus.Error.AccessDenied
 * (which a client reads as the bus's policy refusing the call, and which
 * comes back as EACCES), ENOENT FileNotFound, EIO IOError. Returns the
 * negative errno of the name set, as sd_bus_error_setf() does.
 */
int error_set_errnof(sd_bus_error *error, const char *name, int r, const char *format, ...) _printf_(4, 5);

/*
 * Whether SIGTERM or SIGINT waits (main() blocks them until the event loop
 * runs): loading, reconciliation and the markers' rebuild stop at it.
 */
static inline bool manager_stop_requested(void)
{
	sigset_t pending;

	return sigpending(&pending) == 0 && (sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1);
}

/* ---- pool-devices.c: a device pool's selectors and inventory ------------------------------- */
/* An address, an address glob, or vendor:device[:class]. */
bool device_selector_valid(const char *s);
/* Rereads the endpoints a device pool's selectors name. */
int device_pool_scan(struct iovk_ctx *ctx, struct pool *p);
void device_pool_clear(struct pool *p);
/* Index of address among the pool's devices, -1 when it is not one. */
ssize_t device_pool_find(const struct pool *p, const char *address);

/* ---- pool-selectors.c: a VF pool's selectors ------------------------------------------------- */
struct json_object;
/* A PF selector: address, netdev or vendor:device, with an optional VF index range "#0-3,6". */
bool pf_selector_valid(const char *sel);
/* The selector without its range, into buf. */
const char *pf_selector_base(const char *sel, char *buf, size_t size);
/* Whether the selector's range holds VF index (virtfnN); true without a range. */
bool pf_selector_takes_vf(const char *sel, unsigned index);
/* Pool key vendors, devices, drivers, link_types or numa into p: 1 when key is one (0: not), -EINVAL logged. */
int vf_filter_parse(const char *path, struct pool *p, const char *key, struct json_object *val);
void vf_filter_done(struct vf_filter *f);
bool vf_filter_takes_pf(struct iovk_ctx *ctx, const struct pool *p, struct iovk_device *pf);
bool vf_filter_takes_vf(struct iovk_ctx *ctx, const struct pool *p, struct iovk_device *vf);

/* ---- config.c: the configuration file, the pools and their inventory ------------------------ */
struct json_object;
/* Reads and parses the configuration file at path; errors are logged, naming it. */
int config_load(const char *path, struct config *ret);
/* The same from text (text[len] a NUL), named path in errors: the entry point of a fuzzer. */
int config_parse(const char *path, const char *text, size_t len, struct config *ret);
/* Reads path (relative to dir_fd) whole, NUL-terminated; errors but ENOENT are logged, naming it shown. */
int read_text_file(int dir_fd, const char *path, const char *shown, size_t max, char **ret_text, size_t *ret_len);
/* Strict JSON (common/strict-json.h), errors logged as "name:LINE:COLUMN: why"; -EINTR when stop() said so. */
int parse_json_file(const char *name, const char *text, size_t len, int max_depth, bool (*stop)(void),
		    struct json_object **ret);
void config_done(struct config *c);
const char *pool_driver_to_string(enum pool_driver d);
struct pool *config_find_pool(struct config *c, const char *name);
/* Pool names: 1 to 64 characters of A-Z a-z 0-9 _ . - */
bool pool_name_valid(const char *s);
/* Rereads the PFs and VFs of a pool from sysfs (the devices of a device pool). */
int pool_scan(struct iovk_ctx *ctx, struct pool *p);
const char *pool_kind_to_string(enum pool_kind k);

/* ---- options.c: the methods' arguments -------------------------------------------------- */
/* Allocate's failover options (failover.c reads them): pointers into the message. */
struct failover_options {
	int mode;            /* enum failover_mode, 0 none */
	const char *bond;    /* bond name (made when missing) */
	const char *standby; /* the standby port's netdev */
	int macvtap_mode;    /* enum iovk_macvtap_mode, 0 none */
	unsigned seen;       /* each key once */
};
/* What Allocate's a{sv} asked for. */
struct alloc_options {
	int driver; /* enum pool_driver, -1 for the pool's */
	int numa;   /* -1: no preference */
	const char *address;
	struct iovk_vf_settings vf; /* settings asked for; fields 0: none */
	struct failover_options failover;
};
/* Owner names as Allocate takes them; state_load() refuses others. */
bool owner_name_valid(const char *s);
/* 0 when s is an owner name, else InvalidArgument in error naming what and why. */
int check_name(const char *what, const char *s, sd_bus_error *error);
/* Reads Allocate's options from msg; every key known, once, of its type and range, or InvalidArgument. */
int parse_options(sd_bus_message *msg, struct alloc_options *o, sd_bus_error *error);

/* ---- vf.c: VF settings through the PF -------------------------------------------------------- */
bool vf_settings_equal(const struct iovk_vf_settings *a, const struct iovk_vf_settings *b);
/* Sets the fields of over in c, each field whole: vlan with its qos and protocol, as `ip link` does. */
void vf_settings_merge(struct iovk_vf_settings *c, const struct iovk_vf_settings *over);
/* Applies want to the VF of a (PF pf), after saving what it replaces in a. */
int vf_settings_apply(struct manager *m, struct allocation *a, const char *pf,
		      const struct iovk_vf_settings *want, sd_bus_error *error);
/* Writes back what vf_settings_apply() saved; 0, or -errno with the reason in err. */
int vf_settings_restore(struct manager *m, struct allocation *a, char *err, size_t size);

/* ---- failover.c: failover groups, built and taken down with their allocation ---------------- */
enum failover_mode {
	FAILOVER_NONE,
	FAILOVER_BOND,
	FAILOVER_MACVTAP,
	FAILOVER_GUEST,
};
enum failover_state {
	FAILOVER_ACTIVE,   /* the VF carries the VM's traffic */
	FAILOVER_PREPARED, /* source, PrepareMigration done: the standby carries it, the VF may be unplugged */
	FAILOVER_INCOMING, /* destination, PrepareIncoming done: ready for the VM, the standby active until Complete */
};
struct failover {
	enum failover_mode mode;
	enum failover_state state;
	char *bond;       /* bond mode: the bond, the standby port, and whether iovd made the bond */
	char *standby;
	bool bond_created;
	char *netdev;     /* the VF's netdev when the group was built (bond, macvtap) */
	char *macvtap;    /* macvtap mode: the macvtap iovd made on it */
	int macvtap_mode;
	char last_step[16];     /* not stored: the last step of this run, and what it took */
	uint64_t last_step_usec;
	uint64_t switch_usec;   /* bond: the last switch, set to the kernel's word */
	uint64_t switch_confirmed_monotonic_usec; /* and when the kernel's word was read (CLOCK_MONOTONIC), 0: none yet */
};
/* How long a switch may take before the kernel confirms it, the slave's link coming up included. */
#define FAILOVER_WAIT_MS 10000
const char *failover_mode_to_string(enum failover_mode m);
const char *failover_state_to_string(enum failover_state s);
void failover_free(struct failover *f);
/* Allocate's option key if it is a failover one (1), else 0; InvalidArgument for a bad value. */
int failover_parse_option(sd_bus_message *msg, const char *key, struct failover_options *fo, sd_bus_error *error);
/* The options together, after all are read; *driver (enum pool_driver or -1) becomes kernel for bond and macvtap. */
int failover_check_options(struct failover_options *fo, int *driver, sd_bus_error *error);
/* Builds the group of a (its VF on its driver); on failure error names the step, and a->failover is what was made. */
int failover_setup(struct manager *m, struct allocation *a, const struct failover_options *fo, bool incoming,
		   sd_bus_error *error);
/* Makes want the bond's active slave and waits for the kernel's word (FAILOVER_WAIT_MS); *ret_usec the wait. */
int failover_switch(struct manager *m, struct allocation *a, const char *want, const char *step, uint64_t *ret_usec,
		    sd_bus_error *error);
/* Takes the group of a down (macvtap deleted, VF out of the bond, a bond iovd made deleted); failures logged. */
void failover_teardown(struct manager *m, struct allocation *a);
struct json_object *failover_to_json(const struct failover *f);
/* Reads a group from the state file into a->failover; false when malformed. */
bool failover_from_json(struct json_object *o, struct allocation *a);
/* At start: the kernel put where the state file says each group is; logged. */
void failover_recover(struct manager *m);
/* Takes down the groups that Allocates cut before their commit had built (<run dir>/iovd-failover), and logs it;
 * true when next_id moved past their ids (the caller makes that durable: ids are never reused). */
bool failover_recover_uncommitted(struct manager *m);
/* The group is committed or taken down: its record for failover_recover_uncommitted() goes. */
void failover_intent_remove(struct manager *m, const struct allocation *a);

/* ---- allocation.c: the allocations, their table, what they change on a VF -------------------- */
struct allocation *allocation_new(struct manager *m, uint64_t id);
void allocation_free(struct allocation *a);
/* Appends a (its id above every id there, or the table is sorted after); -EEXIST: its VF is taken. */
int manager_add_allocation(struct manager *m, struct allocation *a);
/* Takes a out of the table and frees it. */
void manager_remove_allocation(struct manager *m, struct allocation *a);
/* The allocation of the VF at address (canonical), pending ones included; NULL when it is free. */
struct allocation *manager_find_by_address(struct manager *m, const char *address);
/* The committed allocation whose object path is path; NULL when none. */
struct allocation *manager_find_by_path(struct manager *m, const char *path);
/* Index in m->allocs of the allocation with id, or where it would go. */
size_t manager_find_id(struct manager *m, uint64_t id);
/* What an Allocate by uid under owner counts against, pending allocations included: they are taken. */
struct holdings {
	unsigned owner;                  /* allocations under the owner name */
	unsigned user;                   /* allocations of uid, under any owner name */
	const struct allocation *other;  /* one under the owner name of another uid (or of none known) */
};
void count_holdings(struct manager *m, const char *owner, uid_t uid, struct holdings *ret);
/* Whether a is a committed allocation of owner, not being released, that uid may act on (its own; root: all). */
bool owner_may_act(const struct allocation *a, const char *owner, uid_t uid);
/* "<dev root>/vfio/N" for a VF on vfio-pci with an IOMMU group, else ""; NULL on OOM. */
char *allocation_device_node(struct manager *m, const struct allocation *a);
/* Refuses (InUse) a move to vfio-pci of a VF the host uses through its kernel driver. */
int refuse_vf_in_use(struct manager *m, const struct pool *p, const char *address, const char *driver,
		     enum pool_driver want, sd_bus_error *error);
/* Puts the VF of a on the driver want asks for; *driver is its driver, before and after. */
int apply_driver(struct manager *m, struct allocation *a, enum pool_driver want, char driver[static 64],
		 sd_bus_error *error);
/* Puts the VF of a back as it was before Allocate (settings, then driver), or a device allocation's IOMMU
 * group (libiovkit's passthrough release); failures logged, the first returned (the library's text in ctx). */
int allocation_put_back(struct manager *m, struct allocation *a);
/* "iovd /org/iovkit/iovd1/allocation/7 (owner vm-1)": the holder a device allocation's record names. */
char *allocation_holder(const struct allocation *a);
/* InUse in error when putting a back would wait for a VFIO user of its group: Release refuses then. */
int check_group_closed(struct manager *m, struct allocation *a, sd_bus_error *error);
/* Adds to the text of a D-Bus error already set. */
void error_append(sd_bus_error *error, const char *format, ...) _printf_(2, 3);

/* ---- markers.c: <run dir>/iovd-allocated/<VF>, what libiovkit reads as in use ---------------- */
void marker_set(struct manager *m, const struct allocation *a, bool present);
/* A marker for each allocation, none for others; -EINTR at SIGTERM. */
int markers_rebuild(struct manager *m);
/* <run dir>/iovd-releasing/<id>: a device allocation's Release under way (devpool.c). */
int release_intent_set(struct manager *m, const struct allocation *a, bool present);
bool release_intent_exists(struct manager *m, uint64_t id);
/*
 * For each file of <run dir>/<subdir> named by an allocation id (the
 * records above, failover.c's): fn(m, dir, dir_fd, name, id, known), id 0
 * for a name that is no id, known whether the table holds that allocation.
 * -ENOMEM; a directory that is not there is none to go through (one that
 * cannot be opened is logged). A *.tmp name (a write_file_atomic() a crash
 * cut) is removed, never passed to fn.
 */
int run_records_foreach(struct manager *m, const char *subdir,
			void (*fn)(struct manager *m, const char *dir, int dir_fd, const char *name, uint64_t id,
				   bool known));

/* ---- devpool.c: allocations from device pools, whole IOMMU groups --------------------------- */
/* Prepares a free member's group for owner (all checks of Allocate before it done): the allocation,
 * marked, not yet in the table, in *ret. */
int devpool_allocate(struct manager *m, struct pool *p, const char *owner, uid_t uid, const struct alloc_options *o,
		     struct allocation **ret, sd_bus_error *error);
/* Puts a's group back (the intent first); InUse/Failed in error, the allocation staying, on failure. */
int devpool_release(struct manager *m, struct allocation *a, sd_bus_error *error);
/* At start: finishes interrupted Releases, rolls back interrupted Allocates; 1 when the table changed. */
int devpool_recover(struct manager *m);
/* What sysfs and the records say against a device allocation, into buf ("" when nothing). */
void devpool_drift(struct manager *m, const struct allocation *a, char *buf, size_t size);

/* ---- reconcile.c: the table against sysfs, at start ------------------------------------------ */
/* Drift (logged, and in the Drift properties) for each allocation sysfs disagrees with; -EINTR at SIGTERM. */
int manager_reconcile(struct manager *m);

/* ---- auth.c: who may do what ----------------------------------------------------------------- */
/* 0 when the sender of msg may do what (a method name), else AccessDenied in
 * error; *ret_uid (if given) is the sender's uid. */
int check_access(struct manager *m, sd_bus_message *msg, const char *what, uid_t *ret_uid, sd_bus_error *error);
/* check_access(), then the call's first argument, an owner name, read and checked (check_name()):
 * for the methods that act on an owner's allocations (ReleaseOwner, the migration steps). */
int check_access_owner(struct manager *m, sd_bus_message *msg, const char *what, const char **ret_owner, uid_t *ret_uid,
		       sd_bus_error *error);
/* The sender's uid as the bus attests it, or AccessDenied in error. */
int sender_uid(struct manager *m, sd_bus_message *msg, const char *what, uid_t *ret_uid, sd_bus_error *error);
/* 0 when uid may act on allocation a (verb: "release", "open"): it is a's uid, or root; else AccessDenied
 * naming a in error. */
int check_owner(const struct allocation *a, uid_t uid, const char *what, const char *verb, sd_bus_error *error);
void auth_free(struct manager *m);

/* ---- journal.c: allocations.journal, one fdatasync per commit ------------------------------------ */
uint32_t journal_crc(uint32_t crc, const void *data, size_t len);
/* 1 and the newest record's text when the journal holds a state newer than allocations.json (which
 * exists when has_state, state_len bytes of CRC-32 state_crc); 0 when that file is current. */
int journal_read(struct manager *m, bool has_state, uint32_t state_crc, uint64_t state_len, char **ret_text,
		 size_t *ret_len, uint64_t *ret_seq);
/* A new epoch, after allocations.json was written: every record so far is stale. */
int journal_reset(struct manager *m, uint32_t state_crc, uint64_t state_len, size_t record_len);
/* The state as the next record, durable on return; -ENOSPC: make a checkpoint instead. */
int journal_append(struct manager *m, const char *text, size_t len);
/* Whether state_commit() of len bytes is a journal record (one fdatasync), not a checkpoint. Only while no
 * write is in flight. */
bool journal_fits(const struct manager *m, size_t len);
uint64_t journal_records(const struct manager *m);
bool journal_is_open(const struct manager *m);
void journal_free(struct manager *m);

/* ---- state.c: the state file ------------------------------------------------------------------ */
int state_open(struct manager *m, const char *dir);
/* Reads the state file into the table; -EBADMSG (logged) for a file iovd must not start on, -EINTR at SIGTERM. */
int state_load(struct manager *m);
/* The same from text (text[len] a NUL), named name in errors, into a table that is empty: a fuzzer's entry. */
int state_parse(struct manager *m, const char *name, const char *text, size_t len);
int state_serialize(struct manager *m, char **ret_text, size_t *ret_len);
int state_write(struct manager *m, const char *text, size_t len);
/* Makes text the durable state: a journal record, or a checkpoint (state_write, then a new journal
 * epoch) when the record does not fit. Runs on the writer thread (commit.c), or when it is idle. */
int state_commit(struct manager *m, const char *text, size_t len);
/* allocations.json := text and a new journal epoch, so that file alone is current. */
int state_checkpoint(struct manager *m, const char *text, size_t len);
/* Whether the loaded state came from journal records newer than allocations.json. */
bool state_needs_checkpoint(const struct manager *m);

/* ---- commit.c: group commit; publishes what is on disk ---------------------------------------- */
enum commit_kind {
	COMMIT_ALLOCATE,
	COMMIT_RELEASE,
	COMMIT_UPDATE, /* a change to allocations that stay (a failover step): the reply waits for the disk */
};
/* Writes quicker than this on average are pipelined (commit.c's head comment); the unit tests set it. */
extern uint64_t commit_pipeline_below_usec;
int commit_init(struct manager *m);
/* Takes reply and allocs; the reply is sent once the change is on disk (1: handled). */
int commit_queue(struct manager *m, enum commit_kind kind, sd_bus_message *call, sd_bus_message *reply,
		 struct allocation **allocs, size_t n_allocs);
/* commit_queue(), and signal (taken; NULL none) is sent right after the reply, only if the commit worked. */
int commit_queue_signal(struct manager *m, enum commit_kind kind, sd_bus_message *call, sd_bus_message *reply,
			sd_bus_message *signal, struct allocation **allocs, size_t n_allocs);
void commit_flush(struct manager *m);
void commit_free(struct manager *m);

/* ---- cdi.c: the pools' CDI spec (common/cdi.h), rewritten when the allocations change ---- */
/* Starts keeping <cdi_spec_dir>/iovkit-pool.json current (nothing without cdi_spec_dir). 0 or -errno. */
int cdi_start(struct manager *m);
/* The committed allocations may have changed: the spec is compared and written within 100 ms. */
void cdi_mark_dirty(struct manager *m);
void cdi_stop(struct manager *m);

/* ---- migration.c: the failover steps (PrepareMigration, ...), FailoverState, MigrationStep ------- */
int method_prepare_migration(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int method_complete_migration(sd_bus_message *msg, void *userdata, sd_bus_error *error);
int method_abort_migration(sd_bus_message *msg, void *userdata, sd_bus_error *error);
/* The reply of PrepareIncoming: a{sv} of the allocation a has just made; *ret_signal its MigrationStep signal,
 * to be sent after the reply (commit_queue_signal()). */
int migration_incoming_reply(struct manager *m, struct allocation *a, sd_bus_message *reply, uint64_t usec,
			     sd_bus_message **ret_signal);
/* The FailoverState property of an allocation, a{sv} (empty without a group). */
int property_failover_state(sd_bus *bus, const char *path, const char *interface, const char *property,
			    sd_bus_message *reply, void *userdata, sd_bus_error *error);

/* ---- manager.c: the D-Bus methods and objects, on top ----------------------------------------- */
int manager_new(struct manager **ret);
struct manager *manager_free(struct manager *m);
int manager_start_bus(struct manager *m, const char *bus_kind, const char *address);
/* Serves the API on a connection (a bus, or a socketpair in the unit tests) and takes it. */
int manager_attach_bus(struct manager *m, sd_bus *bus);
