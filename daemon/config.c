/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * iovd's configuration (JSON, iovd(8)) and the pools' inventory of VFs.
 *
 * Parsing is strict: an unknown key is an error naming it, because a
 * misspelt "per_owner" silently ignored would lift a limit; and so is what
 * json-c would let through silently (common/strict-json.h): a key given
 * twice, of which json-c keeps the last (a second "group" widening who may
 * allocate), a comment, text after the document, a NUL byte, a string
 * holding \u0000 (getgrnam() would read "wheel\u0000x" as "wheel").
 */
#include <ctype.h>
#include <fcntl.h>
#include <grp.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "common/strict-json.h"
#include "iovd.h"

#define DEFAULT_MAX_TOTAL 1024
#define DEFAULT_MAX_PER_OWNER 64
/*
 * One uid, whatever owner names it uses: as many as one owner may hold, so
 * that a second owner name buys a user nothing by default. Root is not
 * counted (see method_allocate() in manager.c).
 */
#define DEFAULT_MAX_PER_USER 64
#define CONFIG_DEFAULTS                                                                                    \
	(struct config)                                                                                    \
	{                                                                                                  \
		.max_total = DEFAULT_MAX_TOTAL, .max_per_owner = DEFAULT_MAX_PER_OWNER,                    \
		.max_per_user = DEFAULT_MAX_PER_USER                                                       \
	}
/* A configuration is a few pools; anything near this is not one. */
#define CONFIG_SIZE_MAX (1024 * 1024)
/* root, pools, a pool, vf_defaults (or limits): a little room, no more */
#define CONFIG_DEPTH_MAX 8

const char *pool_driver_to_string(enum pool_driver d)
{
	switch (d) {
	case POOL_DRIVER_VFIO:
		return "vfio-pci";
	case POOL_DRIVER_KERNEL:
		return "kernel";
	default:
		return "none";
	}
}

const char *pool_kind_to_string(enum pool_kind k)
{
	return k == POOL_KIND_DEVICE ? "device" : "vf";
}

bool pool_name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.-", *s))
			return false;
	return true;
}

static int fail_cfg(const char *path, const char *what, const char *detail)
{
	log_error("%s: %s%s%s", path, what, detail ? ": " : "", detail ?: "");
	return -EINVAL;
}

static int parse_unsigned(const char *path, struct json_object *o, const char *key, unsigned *ret)
{
	int64_t v;

	if (!json_object_is_type(o, json_type_int))
		return fail_cfg(path, key, "must be a number");
	v = json_object_get_int64(o);
	if (v < 1 || v > 1000000)
		return fail_cfg(path, key, "must be 1 to 1000000");
	*ret = (unsigned)v;
	return 0;
}

/*
 * A pool's default VF settings, in the words of Allocate's options. No
 * "mac": an admin MAC is one VF's, and one for the whole pool would put the
 * same address on every VF. qos goes with vlan, as for Allocate.
 */
static int parse_vf_defaults(const char *path, const char *pool, struct json_object *o,
			     struct iovk_vf_settings *ret)
{
	struct iovk_vf_settings c = {};
	bool has_qos = false;

	if (!json_object_is_type(o, json_type_object)) {
		log_error("%s: pool %s: \"vf_defaults\" must be an object", path, pool);
		return -EINVAL;
	}
	json_object_object_foreach(o, key, val) {
		if (strcmp(key, "vlan") == 0 || strcmp(key, "qos") == 0) {
			unsigned max = key[0] == 'v' ? IOVK_VF_VLAN_MAX : IOVK_VF_QOS_MAX;
			int64_t v = json_object_get_int64(val);

			if (!json_object_is_type(val, json_type_int) || v < 0 || v > max) {
				log_error("%s: pool %s: vf_defaults.%s must be a number from 0 to %u, not %s", path, pool,
					  key, max, json_object_to_json_string(val));
				return -EINVAL;
			}
			if (key[0] == 'v') {
				c.vlan = (uint16_t)v;
				c.fields |= IOVK_VF_VLAN;
			} else {
				c.qos = (uint8_t)v;
				has_qos = true;
			}
		} else if (strcmp(key, "spoofchk") == 0 || strcmp(key, "trust") == 0) {
			if (!json_object_is_type(val, json_type_boolean)) {
				log_error("%s: pool %s: vf_defaults.%s must be true or false, not %s", path, pool, key,
					  json_object_to_json_string(val));
				return -EINVAL;
			}
			if (key[0] == 's') {
				c.spoofchk = json_object_get_boolean(val);
				c.fields |= IOVK_VF_SPOOFCHK;
			} else {
				c.trust = json_object_get_boolean(val);
				c.fields |= IOVK_VF_TRUST;
			}
		} else if (strcmp(key, "mac") == 0) {
			log_error("%s: pool %s: vf_defaults.mac: a MAC address belongs to one VF, not to a pool (every VF "
				  "would get the same); give it with Allocate's option mac", path, pool);
			return -EINVAL;
		} else {
			log_error("%s: pool %s: unknown key \"%s\" in \"vf_defaults\" (known: vlan, qos, spoofchk, trust)",
				  path, pool, key);
			return -EINVAL;
		}
	}
	if (has_qos && !(c.fields & IOVK_VF_VLAN)) {
		log_error("%s: pool %s: vf_defaults.qos needs vf_defaults.vlan (qos is the priority of the VLAN's tags)",
			  path, pool);
		return -EINVAL;
	}
	*ret = c;
	return 0;
}

/* A device pool's "devices" and "driver" (vfio-pci or a vfio variant driver). */
static int parse_device_pool(const char *path, struct pool *p, struct json_object *devices, const char *driver)
{
	size_t n = json_object_array_length(devices);

	if (!driver || strcmp(driver, "vfio-pci") == 0)
		driver = "vfio-pci";
	else if (!iovk_driver_is_vfio(driver) || strlen(driver) >= 64 ||
		 strspn(driver, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != strlen(driver)) {
		log_error("%s: pool %s: \"driver\" of a device pool must be vfio-pci or a vfio variant driver "
			  "(mlx5_vfio_pci, ...), not \"%s\"", path, p->name, driver);
		return -EINVAL;
	}
	p->device_driver = strdup(driver);
	p->selectors = calloc(n + 1, sizeof(char *));
	if (!p->device_driver || !p->selectors)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct json_object *s = json_object_array_get_idx(devices, i);
		const char *sel = json_object_get_string(s);

		if (!json_object_is_type(s, json_type_string) || !device_selector_valid(sel)) {
			log_error("%s: pool %s: devices[%zu] %s is not a PCI address (0000:01:00.0), an address glob "
				  "(0000:3b:*) or vendor:device[:class] (10de:1e84, 10de:10f8:0403)", path, p->name, i,
				  json_object_to_json_string(s));
			return -EINVAL;
		}
		p->selectors[i] = strdup(sel);
		if (!p->selectors[i])
			return -ENOMEM;
	}
	return 0;
}

static int parse_pool(const char *path, struct json_object *o, struct pool *p)
{
	struct json_object *pfs = NULL, *vf_defaults = NULL, *devices = NULL;
	const char *driver = NULL;
	bool filters = false;
	size_t n;

	if (!json_object_is_type(o, json_type_object))
		return fail_cfg(path, "each entry of \"pools\" must be an object", NULL);
	p->driver = POOL_DRIVER_VFIO;
	json_object_object_foreach(o, key, val) {
		if (strcmp(key, "name") == 0) {
			if (!json_object_is_type(val, json_type_string) || !pool_name_valid(json_object_get_string(val)))
				return fail_cfg(path, "pool name", "1 to 64 characters of A-Z a-z 0-9 _ . -");
			p->name = strdup(json_object_get_string(val));
		} else if (strcmp(key, "pfs") == 0) {
			pfs = val;
		} else if (strcmp(key, "devices") == 0) {
			devices = val;
		} else if (strcmp(key, "vf_defaults") == 0) {
			vf_defaults = val;
		} else if (strcmp(key, "driver") == 0) {
			const char *d = json_object_get_string(val);

			if (!json_object_is_type(val, json_type_string))
				return fail_cfg(path, "pool driver", "must be a string");
			driver = d;
			if (strcmp(d, "vfio-pci") == 0)
				p->driver = POOL_DRIVER_VFIO;
			else if (strcmp(d, "kernel") == 0)
				p->driver = POOL_DRIVER_KERNEL;
			else if (strcmp(d, "none") == 0)
				p->driver = POOL_DRIVER_NONE;
			else if (!iovk_driver_is_vfio(d))
				return fail_cfg(path, "pool driver", "must be \"vfio-pci\", \"kernel\" or \"none\" (a device "
						"pool's: vfio-pci or a vfio variant driver)");
		} else if (strcmp(key, "vendors") == 0 || strcmp(key, "drivers") == 0 || strcmp(key, "link_types") == 0 ||
			   strcmp(key, "numa") == 0) {
			filters = true;
			if (vf_filter_parse(path, p, key, val) < 0)
				return -EINVAL;
		} else {
			log_error("%s: unknown key \"%s\" in a pool", path, key);
			return -EINVAL;
		}
	}
	if (!p->name)
		return fail_cfg(path, "a pool has no \"name\"", NULL);
	/* With "pfs", "devices" selects VFs by device id (the device plugin's word); without, it makes a device pool. */
	if (devices && pfs) {
		if (vf_filter_parse(path, p, "devices", devices) < 0)
			return -EINVAL;
		devices = NULL;
	}
	if (devices) {
		if (filters && (p->filter.vendors || p->filter.drivers || p->filter.link_types)) {
			log_error("%s: pool %s: \"vendors\", \"drivers\" and \"link_types\" select the VFs of a pool with "
				  "\"pfs\"; a device pool names its devices in \"devices\"", path, p->name);
			return -EINVAL;
		}
		if (vf_defaults) {
			log_error("%s: pool %s: \"devices\" without \"pfs\" makes a device pool, which has no "
				  "\"vf_defaults\" (a pool hands out either VFs of its PFs or whole devices)", path, p->name);
			return -EINVAL;
		}
		if (!json_object_is_type(devices, json_type_array) || json_object_array_length(devices) == 0) {
			log_error("%s: pool %s: \"devices\" must be a non-empty array of PCI addresses, address globs or "
				  "vendor:device ids", path, p->name);
			return -EINVAL;
		}
		p->kind = POOL_KIND_DEVICE;
		return parse_device_pool(path, p, devices, driver);
	}
	if (driver && strcmp(driver, "vfio-pci") != 0 && iovk_driver_is_vfio(driver)) {
		log_error("%s: pool %s: \"driver\" %s is for device pools; a VF pool's is vfio-pci, kernel or none",
			  path, p->name, driver);
		return -EINVAL;
	}
	if (!pfs || !json_object_is_type(pfs, json_type_array) || json_object_array_length(pfs) == 0) {
		log_error("%s: pool %s: \"pfs\" must be a non-empty array of PF addresses, netdevs or vendor:device ids",
			  path, p->name);
		return -EINVAL;
	}
	if (vf_defaults && parse_vf_defaults(path, p->name, vf_defaults, &p->vf_defaults) < 0)
		return -EINVAL;
	n = json_object_array_length(pfs);
	p->selectors = calloc(n + 1, sizeof(char *));
	if (!p->selectors)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct json_object *s = json_object_array_get_idx(pfs, i);

		if (!json_object_is_type(s, json_type_string) || !pf_selector_valid(json_object_get_string(s))) {
			log_error("%s: pool %s: pfs[%zu] %s is not a PF address (0000:3b:00.0), netdev (ens1f0) or "
				  "vendor:device (8086:1593), with an optional VF index range (#0-3, #0-3,8)", path,
				  p->name, i, json_object_to_json_string(s));
			return -EINVAL;
		}
		p->selectors[i] = strdup(json_object_get_string(s));
		if (!p->selectors[i])
			return -ENOMEM;
	}
	return 0;
}

int read_text_file(int dir_fd, const char *path, const char *shown, size_t max, char **ret_text, size_t *ret_len)
{
	_cleanup_close_ int fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, size;
	struct stat st;
	int r;

	if (fd < 0 || fstat(fd, &st) < 0) {
		r = negative_errno();
		if (r != -ENOENT)
			log_error("%s: cannot read it: %s", shown, strerror(-r));
		return r;
	}
	if (!S_ISREG(st.st_mode)) {
		log_error("%s: not a regular file", shown);
		return -EINVAL;
	}
	if ((uint64_t)st.st_size > max) {
		log_error("%s: larger than %zu bytes", shown, max);
		return -EFBIG;
	}
	/* One byte more than its size tells a file that grew while read. */
	size = (size_t)st.st_size + 1;
	buf = malloc(size + 1);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = read(fd, buf + len, size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = negative_errno();
			log_error("%s: reading it: %s", shown, strerror(-r));
			return r;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == size) {
			log_error("%s: it changed while it was read", shown);
			return -EBUSY;
		}
	}
	buf[len] = '\0';
	*ret_text = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}

int parse_json_file(const char *name, const char *text, size_t len, int max_depth, bool (*stop)(void),
		    struct json_object **ret)
{
	struct strict_json_error err;
	int r;

	r = strict_json_parse_until(text, len, max_depth, STRICT_JSON_NO_NUL_IN_STRINGS, stop, ret, &err);
	if (r == -ENOMEM || r == -EINTR)
		return r;
	if (r < 0 && err.line)
		log_error("%s:%u:%u: %s", name, err.line, err.column, err.message);
	else if (r < 0)
		log_error("%s: %s", name, err.message[0] ? err.message : strerror(-r));
	return r < 0 ? -EBADMSG : 0;
}

int config_load(const char *path, struct config *ret)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	int r;

	r = read_text_file(AT_FDCWD, path, path, CONFIG_SIZE_MAX, &text, &len);
	/* No file is no pools, not a failure: a package installs iovd without
	 * a configuration (the example is documentation), and D-Bus activation
	 * of an iovd that exits would fail every client's first call. A file
	 * that is there but unreadable or wrong still stops iovd. */
	if (r == -ENOENT) {
		struct config c = CONFIG_DEFAULTS;

		c.pools = calloc(1, sizeof(struct pool));
		if (!c.pools)
			return -ENOMEM;
		log_notice("%s does not exist: serving no pools (iovd(8), CONFIGURATION)", path);
		*ret = c;
		return 0;
	}
	if (r < 0)
		return r;
	return config_parse(path, text, len, ret);
}

int config_parse(const char *path, const char *text, size_t len, struct config *ret)
{
	struct config c = CONFIG_DEFAULTS;
	struct json_object *root = NULL, *pools = NULL;
	int r = 0;

	r = parse_json_file(path, text, len, CONFIG_DEPTH_MAX, NULL, &root);
	if (r < 0)
		return r == -ENOMEM ? r : -EINVAL;
	if (!json_object_is_type(root, json_type_object)) {
		r = fail_cfg(path, "the configuration must be a JSON object", NULL);
		goto out;
	}
	json_object_object_foreach(root, key, val) {
		if (strcmp(key, "pools") == 0) {
			pools = val;
		} else if (strcmp(key, "group") == 0) {
			struct group *g;

			if (!json_object_is_type(val, json_type_string)) {
				r = fail_cfg(path, "group", "must be a string");
				goto out;
			}
			/* A group that does not exist (yet: systemd-sysusers makes
			 * "iovkit" from iovkit's sysusers.d) lets nobody in but
			 * root, and iovd still starts: it is the configuration
			 * the docs show, and an iovd that dies over it fails
			 * every D-Bus activation. */
			free(c.group);
			c.group = strdup(json_object_get_string(val));
			if (!c.group) {
				r = -ENOMEM;
				goto out;
			}
			g = getgrnam(c.group);
			c.group_missing = !g;
			c.gid = g ? g->gr_gid : (gid_t)-1;
			if (!g)
				log_warning("%s: group \"%s\" does not exist: only root may change allocations until "
					    "it does and iovd is restarted",
					    path, c.group);
		} else if (strcmp(key, "cdi_spec_dir") == 0) {
			if (!json_object_is_type(val, json_type_string) || json_object_get_string(val)[0] != '/') {
				r = fail_cfg(path, "cdi_spec_dir", "must be an absolute path (/etc/cdi, /var/run/cdi)");
				goto out;
			}
			free(c.cdi_spec_dir);
			c.cdi_spec_dir = strdup(json_object_get_string(val));
			if (!c.cdi_spec_dir) {
				r = -ENOMEM;
				goto out;
			}
		} else if (strcmp(key, "limits") == 0 && json_object_is_type(val, json_type_object)) {
			json_object_object_foreach(val, lkey, lval) {
				if (strcmp(lkey, "total") == 0)
					r = parse_unsigned(path, lval, "limits.total", &c.max_total);
				else if (strcmp(lkey, "per_owner") == 0)
					r = parse_unsigned(path, lval, "limits.per_owner", &c.max_per_owner);
				else if (strcmp(lkey, "per_user") == 0)
					r = parse_unsigned(path, lval, "limits.per_user", &c.max_per_user);
				else {
					log_error("%s: unknown key \"%s\" in \"limits\"", path, lkey);
					r = -EINVAL;
				}
				if (r < 0)
					goto out;
			}
		} else {
			log_error("%s: unknown key \"%s\"%s", path, key,
				  strcmp(key, "limits") == 0 ? " (must be an object)" : "");
			r = -EINVAL;
			goto out;
		}
	}
	if (!pools || !json_object_is_type(pools, json_type_array)) {
		r = fail_cfg(path, "\"pools\" must be an array", NULL);
		goto out;
	}
	c.n_pools = json_object_array_length(pools);
	c.pools = calloc(c.n_pools ?: 1, sizeof(struct pool));
	if (!c.pools) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < c.n_pools; i++) {
		r = parse_pool(path, json_object_array_get_idx(pools, i), &c.pools[i]);
		if (r < 0)
			goto out;
		for (size_t j = 0; j < i; j++)
			if (strcmp(c.pools[j].name, c.pools[i].name) == 0) {
				log_error("%s: pool %s is defined twice", path, c.pools[i].name);
				r = -EINVAL;
				goto out;
			}
	}
out:
	json_object_put(root);
	if (r < 0) {
		config_done(&c);
		return r;
	}
	*ret = c;
	return 0;
}

static void pool_clear_inventory(struct pool *p)
{
	strv_free(p->pfs);
	strv_free(p->vfs);
	free(p->vf_numa);
	free(p->vf_pf);
	p->pfs = p->vfs = NULL;
	p->vf_numa = NULL;
	p->vf_pf = NULL;
	p->n_vfs = 0;
}

void config_done(struct config *c)
{
	free(c->cdi_spec_dir);
	c->cdi_spec_dir = NULL;
	for (size_t i = 0; c->pools && i < c->n_pools; i++) {
		free(c->pools[i].name);
		strv_free(c->pools[i].selectors);
		vf_filter_done(&c->pools[i].filter);
		pool_clear_inventory(&c->pools[i]);
		device_pool_clear(&c->pools[i]);
		free(c->pools[i].device_driver);
	}
	free(c->pools);
	free(c->group);
	*c = (struct config){};
}

struct pool *config_find_pool(struct config *c, const char *name)
{
	for (size_t i = 0; i < c->n_pools; i++)
		if (strcmp(c->pools[i].name, name) == 0)
			return &c->pools[i];
	return NULL;
}

/* Whether a selector ("0000:01:00.0", "01:00.0", "8086:10fb" or a netdev; its VF range aside) names this PF. */
static bool selector_matches(const char *selector, struct iovk_sriov_pf *pf)
{
	struct iovk_device *d = iovk_sriov_pf_get_device(pf);
	struct iovk_pci_addr addr;
	unsigned vendor, device;
	char sel[64];
	int n = 0;

	pf_selector_base(selector, sel, sizeof(sel));
	if (iovk_pci_addr_parse(sel, &addr) == 0)
		return iovk_pci_addr_compare(&addr, iovk_device_get_addr(d)) == 0;
	if (strlen(sel) == 9 && sscanf(sel, "%4x:%4x%n", &vendor, &device, &n) == 2 && n == 9)
		return vendor == iovk_device_get_vendor_id(d) && device == iovk_device_get_device_id(d);
	for (const char *const *net = iovk_device_get_netdevs(d); *net; net++)
		if (strcmp(*net, sel) == 0)
			return true;
	return false;
}

int pool_scan(struct iovk_ctx *ctx, struct pool *p)
{
	struct iovk_sriov_pf **pfs = NULL;
	size_t n_pfs = 0, n_vfs = 0;
	int r;

	if (p->kind == POOL_KIND_DEVICE)
		return device_pool_scan(ctx, p);
	r = iovk_sriov_enumerate_pfs(ctx, &pfs, NULL);
	if (r < 0) {
		log_error("pool %s: reading the SR-IOV PFs: %s", p->name, iovk_ctx_get_error(ctx));
		return r;
	}
	pool_clear_inventory(p);
	p->pfs = calloc(1, sizeof(char *));
	p->vfs = calloc(1, sizeof(char *));
	if (!p->pfs || !p->vfs) {
		r = -ENOMEM;
		goto out;
	}
	for (struct iovk_sriov_pf **pf = pfs; *pf; pf++) {
		bool match = false;
		for (char **sel = p->selectors; *sel && !match; sel++)
			match = selector_matches(*sel, *pf);
		if (!match || !vf_filter_takes_pf(ctx, p, iovk_sriov_pf_get_device(*pf)))
			continue;
		r = strv_push(&p->pfs, &n_pfs, iovk_sriov_pf_get_address(*pf));
		if (r < 0)
			goto out;
		for (struct iovk_device *const *vf = iovk_sriov_pf_get_vfs(*pf); *vf; vf++) {
			/* its virtfn index, not its position: a link missing while
			 * VFs change closes the list up */
			int index = iovk_device_get_vf_index(*vf);
			int *numa;
			size_t *owner;

			if (index < 0)
				continue;
			/* in the range of any selector naming this PF, and through the filters */
			match = false;
			for (char **sel = p->selectors; *sel && !match; sel++)
				match = selector_matches(*sel, *pf) && pf_selector_takes_vf(*sel, (unsigned)index);
			if (!match || !vf_filter_takes_vf(ctx, p, *vf))
				continue;
			numa = realloc(p->vf_numa, (n_vfs + 1) * sizeof(int));
			if (!numa) {
				r = -ENOMEM;
				goto out;
			}
			p->vf_numa = numa;
			numa[n_vfs] = iovk_device_get_numa_node(*vf);
			owner = realloc(p->vf_pf, (n_vfs + 1) * sizeof(size_t));
			if (!owner) {
				r = -ENOMEM;
				goto out;
			}
			p->vf_pf = owner;
			owner[n_vfs] = n_pfs - 1;
			r = strv_push(&p->vfs, &n_vfs, iovk_device_get_address(*vf));
			if (r < 0)
				goto out;
		}
	}
	p->n_vfs = n_vfs;
	if (n_pfs == 0)
		log_warning("pool %s: none of its PFs exists (%s%s)", p->name, p->selectors[0],
			    p->selectors[1] ? ", ..." : "");
	else
		log_debug("pool %s: %zu PFs, %zu VFs", p->name, n_pfs, n_vfs);
	r = 0;
out:
	iovk_sriov_pf_list_free(pfs);
	if (r < 0)
		pool_clear_inventory(p);
	return r;
}
