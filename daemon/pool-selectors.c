/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A VF pool's selectors, as users of the Kubernetes SR-IOV device plugin
 * know them: PFs with a VF index range ("0000:3b:00.0#0-3", "ens1f0#4-7",
 * the plugin's pfNames), the VFs' "vendors" and "devices" ids, the
 * "drivers" a VF must be on to join the pool, the PF's "link_types"
 * (ether, infiniband), and "numa": whether Allocate's numa option is
 * "strict" (a VF on that node or none) or "preferred" (the default).
 *
 * Every selector is checked at start, and a malformed one stops iovd,
 * naming the pool and the selector: before, "0000:01:00.0#0-3" was taken
 * for a netdev name that never exists, and the pool stayed silently empty.
 */
#include <ctype.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "iovd.h"

/*
 * A range list, "0-3", "4", "0-3,8-11", of VF indices (virtfnN; at most
 * 65535, what sriov_totalvfs holds). Calls each() for every range; false
 * when malformed.
 */
static bool parse_ranges(const char *s, void (*each)(unsigned lo, unsigned hi, void *userdata), void *userdata)
{
	if (!*s)
		return false;
	for (;;) {
		unsigned long lo, hi;
		char *end;

		if (!isdigit((unsigned char)*s))
			return false;
		lo = hi = strtoul(s, &end, 10);
		if (*end == '-') {
			if (!isdigit((unsigned char)end[1]))
				return false;
			hi = strtoul(end + 1, &end, 10);
		}
		if (lo > 65535 || hi > 65535 || hi < lo || (*end && *end != ','))
			return false;
		if (each)
			each((unsigned)lo, (unsigned)hi, userdata);
		if (!*end)
			return true;
		s = end + 1;
	}
}

/* A netdev name as the kernel takes it (dev_valid_name()), without ':' (an alias label, not a netdev). */
static bool netdev_name_valid(const char *s, size_t len)
{
	if (len == 0 || len >= 16 || (len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] == '/' || s[i] == ':' || s[i] == '#' || !isgraph((unsigned char)s[i]))
			return false;
	return true;
}

static bool hex4(const char *s)
{
	return strlen(s) == 4 && strspn(s, "0123456789abcdefABCDEF") == 4;
}

bool pf_selector_valid(const char *sel)
{
	const char *hash = strchr(sel, '#');
	size_t len = hash ? (size_t)(hash - sel) : strlen(sel);
	struct iovk_pci_addr a;
	char base[64];

	if (len >= sizeof(base) || (hash && !parse_ranges(hash + 1, NULL, NULL)))
		return false;
	memcpy(base, sel, len);
	base[len] = '\0';
	if (iovk_pci_addr_parse(base, &a) == 0)
		return true;
	if (len == 9 && base[4] == ':') {
		base[4] = '\0';
		return hex4(base) && hex4(base + 5);
	}
	return netdev_name_valid(base, len);
}

const char *pf_selector_base(const char *sel, char *buf, size_t size)
{
	snprintf(buf, size, "%.*s", (int)strcspn(sel, "#"), sel);
	return buf;
}

struct range_query {
	unsigned index;
	bool found;
};

static void range_has(unsigned lo, unsigned hi, void *userdata)
{
	struct range_query *q = userdata;

	q->found = q->found || (q->index >= lo && q->index <= hi);
}

bool pf_selector_takes_vf(const char *sel, unsigned index)
{
	const char *hash = strchr(sel, '#');
	struct range_query q = { .index = index };

	if (!hash)
		return true;
	return parse_ranges(hash + 1, range_has, &q) && q.found;
}

/* ---- the other keys ------------------------------------------------------------------------ */

static bool driver_word_valid(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n < 64 && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") == n;
}

static bool link_type_valid(const char *s)
{
	return strcmp(s, "ether") == 0 || strcmp(s, "infiniband") == 0;
}

/* A non-empty array of strings each valid(), into *ret; errors name the pool, the key and the entry. */
static int parse_words(const char *path, const char *pool, const char *key, struct json_object *val,
		       bool (*valid)(const char *), const char *expected, char ***ret)
{
	size_t n = json_object_is_type(val, json_type_array) ? json_object_array_length(val) : 0;
	char **v;

	if (n == 0) {
		log_error("%s: pool %s: \"%s\" must be a non-empty array of %s", path, pool, key, expected);
		return -EINVAL;
	}
	v = calloc(n + 1, sizeof(char *));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct json_object *s = json_object_array_get_idx(val, i);

		if (!json_object_is_type(s, json_type_string) || !valid(json_object_get_string(s))) {
			log_error("%s: pool %s: %s[%zu] %s is not %s", path, pool, key, i, json_object_to_json_string(s),
				  expected);
			strv_free(v);
			return -EINVAL;
		}
		v[i] = strdup(json_object_get_string(s));
		if (!v[i]) {
			strv_free(v);
			return -ENOMEM;
		}
	}
	strv_free(*ret);
	*ret = v;
	return 0;
}

int vf_filter_parse(const char *path, struct pool *p, const char *key, struct json_object *val)
{
	const char *pool = p->name ?: "(unnamed)";

	if (strcmp(key, "vendors") == 0)
		return parse_words(path, pool, key, val, hex4, "a vendor id of 4 hex digits (8086)", &p->filter.vendors) ?: 1;
	if (strcmp(key, "devices") == 0)
		return parse_words(path, pool, key, val, hex4,
				   "a VF device id of 4 hex digits (154c): in a pool with \"pfs\", \"devices\" selects VFs",
				   &p->filter.devices) ?: 1;
	if (strcmp(key, "drivers") == 0)
		return parse_words(path, pool, key, val, driver_word_valid, "a driver name (none: no driver)",
				   &p->filter.drivers) ?: 1;
	if (strcmp(key, "link_types") == 0)
		return parse_words(path, pool, key, val, link_type_valid, "ether or infiniband", &p->filter.link_types) ?: 1;
	if (strcmp(key, "numa") == 0) {
		const char *s = json_object_get_string(val);

		if (!json_object_is_type(val, json_type_string) || (strcmp(s, "strict") != 0 && strcmp(s, "preferred") != 0)) {
			log_error("%s: pool %s: \"numa\" must be \"strict\" or \"preferred\", not %s", path, pool,
				  json_object_to_json_string(val));
			return -EINVAL;
		}
		p->numa_strict = s[0] == 's';
		return 1;
	}
	return 0;
}

void vf_filter_done(struct vf_filter *f)
{
	strv_free(f->vendors);
	strv_free(f->devices);
	strv_free(f->drivers);
	strv_free(f->link_types);
	*f = (struct vf_filter){};
}

static bool in_list(char **list, const char *s)
{
	for (; *list; list++)
		if (strcasecmp(*list, s) == 0)
			return true;
	return false;
}

/* "ether" or "infiniband" from <sysfs>/class/net/<netdev>/type (ARPHRD_ETHER 1, ARPHRD_INFINIBAND 32). */
static const char *link_type_of(struct iovk_ctx *ctx, const char *netdev)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;
	char buf[16] = "";
	ssize_t n;

	if (asprintf(&path, "%s/class/net/%s/type", iovk_ctx_get_sysfs_root(ctx), netdev) < 0)
		return NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || (n = read(fd, buf, sizeof(buf) - 1)) <= 0)
		return NULL;
	buf[n] = '\0';
	switch (atoi(buf)) {
	case 1:
		return "ether";
	case 32:
		return "infiniband";
	default:
		return "other";
	}
}

bool vf_filter_takes_pf(struct iovk_ctx *ctx, const struct pool *p, struct iovk_device *pf)
{
	const char *const *net = iovk_device_get_netdevs(pf);

	if (!p->filter.link_types)
		return true;
	for (; *net; net++) {
		const char *t = link_type_of(ctx, *net);

		if (t && in_list(p->filter.link_types, t))
			return true;
	}
	return false;
}

bool vf_filter_takes_vf(struct iovk_ctx *ctx, const struct pool *p, struct iovk_device *vf)
{
	char id[8];

	snprintf(id, sizeof(id), "%04x", iovk_device_get_vendor_id(vf));
	if (p->filter.vendors && !in_list(p->filter.vendors, id))
		return false;
	snprintf(id, sizeof(id), "%04x", iovk_device_get_device_id(vf));
	if (p->filter.devices && !in_list(p->filter.devices, id))
		return false;
	if (p->filter.drivers) {
		_cleanup_free_ char *marker = NULL;

		if (in_list(p->filter.drivers, iovk_device_get_driver(vf) ?: "none"))
			return true;
		/* allocated by iovd, its driver changed by the allocation: still a member */
		return asprintf(&marker, "%s/iovd-allocated/%s", iovk_ctx_get_run_dir(ctx), iovk_device_get_address(vf)) >= 0 &&
		       access(marker, F_OK) == 0;
	}
	return true;
}
