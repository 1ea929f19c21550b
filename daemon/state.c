/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Durable state: <state dir>/allocations.json holds every committed
 * allocation. It is replaced whole, atomically: write a temporary file,
 * fsync it, rename it over the old one, fsync the directory (without the
 * last step the rename itself may be lost in a crash, ext4 with
 * data=ordered included). A reply is sent only after that, so whatever a
 * client was told is on disk.
 *
 * The temporary file is not a new file each time: the inode the rename
 * displaces becomes the next temporary file (linked as .old before the
 * rename, renamed to .tmp after it). Creating and freeing an inode per
 * commit made ext4 search its inode table past recently freed inodes
 * (recently_deleted() in ext4_new_inode(), half of iovd's CPU time in perf)
 * and cost 0.9 ms of CPU per commit against 0.2 ms with the inode reused.
 * The file named allocations.json is never the one being written: the
 * inode written next became .tmp only after the directory fsync that made
 * its successor allocations.json.
 *
 * A second iovd on the same directory would hand out the same VFs: the
 * directory is locked (flock on iovd.lock) for the life of the process.
 */
#include <ctype.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "common/fileio.h"
#include "iovd.h"

#define STATE_FILE "allocations.json"
#define STATE_TMP "allocations.json.tmp"
#define STATE_OLD "allocations.json.old"
#define STATE_VERSION 1

int state_open(struct manager *m, const char *dir)
{
	int r;

	m->state_dir = strdup(dir);
	if (!m->state_dir)
		return -ENOMEM;
	r = mkdir_p(dir, 0755);
	if (r < 0) {
		log_error("Failed to create the state directory %s: %s", dir, strerror(-r));
		return r;
	}
	m->state_dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (m->state_dir_fd < 0) {
		r = negative_errno();
		log_error("Failed to open the state directory %s: %s", dir, strerror(-r));
		return r;
	}
	m->lock_fd = openat(m->state_dir_fd, "iovd.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (m->lock_fd < 0) {
		r = negative_errno();
		log_error("Failed to open %s/iovd.lock: %s", dir, strerror(-r));
		return r;
	}
	if (flock(m->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		r = negative_errno();
		log_error("Failed to lock %s/iovd.lock: %s%s", dir, strerror(-r),
			  r == -EWOULDBLOCK ? " (another iovd uses this state directory)" : "");
		return r;
	}
	/* a crash between link and rename leaves .old: it is never the state */
	unlinkat(m->state_dir_fd, STATE_OLD, 0);
	return 0;
}

static const char *get_string(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static bool get_uint64(struct json_object *o, const char *key, uint64_t *ret)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return false;
	errno = 0;
	*ret = json_object_get_uint64(v);
	return errno == 0;
}

static bool get_bool(struct json_object *o, const char *key, bool *ret)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_boolean))
		return false;
	*ret = json_object_get_boolean(v);
	return true;
}

/* Copies a string member into a fixed buffer; false when absent, not a string or too long. */
static bool get_fixed(struct json_object *o, const char *key, char *buf, size_t size)
{
	const char *s = get_string(o, key);

	if (!s || strlen(s) >= size)
		return false;
	strcpy(buf, s);
	return true;
}

static struct json_object *vf_settings_to_json(const struct iovk_vf_settings *c)
{
	struct json_object *o = json_object_new_object();
	char mac[IOVK_VF_MAC_STRING_MAX];

	if (c->fields & IOVK_VF_MAC)
		json_object_object_add(o, "mac", json_object_new_string(iovk_vf_format_mac(c->mac, mac)));
	if (c->fields & IOVK_VF_VLAN) {
		json_object_object_add(o, "vlan", json_object_new_int(c->vlan));
		json_object_object_add(o, "qos", json_object_new_int(c->qos));
		json_object_object_add(o, "vlan_proto",
				       json_object_new_string(iovk_vf_vlan_proto_name(c->vlan_proto ?: IOVK_VF_VLAN_PROTO_8021Q)
								      ?: "802.1Q"));
	}
	if (c->fields & IOVK_VF_SPOOFCHK)
		json_object_object_add(o, "spoofchk", json_object_new_boolean(c->spoofchk));
	if (c->fields & IOVK_VF_TRUST)
		json_object_object_add(o, "trust", json_object_new_boolean(c->trust));
	return o;
}

static bool vf_settings_from_json(struct json_object *o, struct iovk_vf_settings *ret)
{
	struct iovk_vf_settings c = {};
	struct json_object *v;
	uint64_t n;
	const char *s;

	if (!o || !json_object_is_type(o, json_type_object))
		return false;
	if ((s = get_string(o, "mac"))) {
		if (iovk_vf_parse_mac(s, c.mac) < 0)
			return false;
		c.fields |= IOVK_VF_MAC;
	}
	if (json_object_object_get_ex(o, "vlan", &v)) {
		if (!get_uint64(o, "vlan", &n) || n > IOVK_VF_VLAN_MAX)
			return false;
		c.vlan = (uint16_t)n;
		if (!get_uint64(o, "qos", &n) || n > IOVK_VF_QOS_MAX)
			return false;
		c.qos = (uint8_t)n;
		s = get_string(o, "vlan_proto");
		if (!s || iovk_vf_parse_vlan_proto(s, &c.vlan_proto) < 0)
			return false;
		c.fields |= IOVK_VF_VLAN;
	}
	if (json_object_object_get_ex(o, "spoofchk", &v)) {
		if (!get_bool(o, "spoofchk", &c.spoofchk))
			return false;
		c.fields |= IOVK_VF_SPOOFCHK;
	}
	if (json_object_object_get_ex(o, "trust", &v)) {
		if (!get_bool(o, "trust", &c.trust))
			return false;
		c.fields |= IOVK_VF_TRUST;
	}
	*ret = c;
	return true;
}

/* A group holds at most this many endpoints (the library's record holds as many). */
#define STATE_GROUP_MAX 256

/* A device allocation's "devices" (every endpoint, the address first) and "passthrough". */
static bool devices_from_json(struct json_object *o, struct allocation *a)
{
	struct json_object *list;
	size_t n;

	if (!json_object_object_get_ex(o, "devices", &list))
		return !json_object_object_get_ex(o, "passthrough", NULL);
	n = json_object_is_type(list, json_type_array) ? json_object_array_length(list) : 0;
	if (n == 0 || n > STATE_GROUP_MAX || !get_bool(o, "passthrough", &a->passthrough))
		return false;
	a->devices = calloc(n + 1, sizeof(char *));
	if (!a->devices)
		return false;
	for (size_t i = 0; i < n; i++) {
		struct json_object *s = json_object_array_get_idx(list, i);

		if (!json_object_is_type(s, json_type_string) || !(a->devices[i] = strdup(json_object_get_string(s))))
			return false;
	}
	return true;
}

/* The optional members: absent in files of iovd before VF settings and OpenDevice. */
static bool allocation_extra_from_json(struct json_object *o, struct allocation *a)
{
	struct json_object *bind, *vf;
	uint64_t n;

	if (!devices_from_json(o, a))
		return false;

	if (json_object_object_get_ex(o, "uid", NULL)) {
		if (!get_uint64(o, "uid", &n) || n >= UINT32_MAX)
			return false;
		a->uid = (uid_t)n;
	}
	if (json_object_object_get_ex(o, "bind", &bind)) {
		struct iovk_bind_result *b = &a->bind;

		b->sz = sizeof(*b);
		if (!get_fixed(bind, "previous_driver", b->previous_driver, sizeof(b->previous_driver)) ||
		    !get_fixed(bind, "previous_override", b->previous_override, sizeof(b->previous_override)) ||
		    !get_fixed(bind, "driver", b->driver, sizeof(b->driver)) ||
		    !get_bool(bind, "record_created", &b->record_created))
			return false;
		b->changed = strcmp(b->previous_driver, b->driver) != 0;
		a->has_bind = true;
	}
	if (json_object_object_get_ex(o, "vf", &vf)) {
		struct json_object *applied = NULL, *previous = NULL;
		const char *pf = get_string(vf, "pf");

		if (!pf || !get_uint64(vf, "index", &n) || n > UINT16_MAX ||
		    !json_object_object_get_ex(vf, "applied", &applied) ||
		    !json_object_object_get_ex(vf, "previous", &previous) ||
		    !vf_settings_from_json(applied, &a->vf_applied) || !vf_settings_from_json(previous, &a->vf_previous) ||
		    a->vf_applied.fields != a->vf_previous.fields)
			return false;
		a->vf_index = (unsigned)n;
		a->vf_pf = strdup(pf);
		if (!a->vf_pf)
			return false;
	}
	if (json_object_object_get_ex(o, "failover", &vf) && !failover_from_json(vf, a))
		return false;
	return true;
}

/* Far above what limits.total allows (1,000,000 allocations of about 500 bytes); json-c reads at most 2 GiB. */
#define STATE_SIZE_MAX (1024UL * 1024 * 1024)
/* root, allocations, an allocation, its vf, applied or previous */
#define STATE_DEPTH_MAX 6

/* "0000:01:10.2" exactly as sysfs names the VF: it names a marker file, and is compared as a string. */
static bool address_canonical(const char *s)
{
	struct iovk_pci_addr addr;
	char buf[IOVK_PCI_ADDR_MAX];

	return iovk_pci_addr_parse(s, &addr) == 0 && strcmp(iovk_pci_addr_format(&addr, buf), s) == 0;
}

/* A kernel driver's name ("" for none, when empty_ok): it ends up in sysfs paths. */
static bool driver_name_valid(const char *s, bool empty_ok)
{
	size_t n = strlen(s);

	if (n == 0)
		return empty_ok;
	if (n >= 64 || s[0] == '.')
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("-_.", *s))
			return false;
	return true;
}

/* What a state file may hold beyond its JSON types: a reason, or NULL when a is fine. */
static const char *allocation_invalid(const struct allocation *a)
{
	if (!address_canonical(a->address))
		return "its address is not a PCI address as sysfs writes it (0000:01:10.2)";
	if (!pool_name_valid(a->pool))
		return "its pool is not a pool name";
	if (!owner_name_valid(a->owner))
		return "its owner is not an owner name that Allocate takes";
	if (!driver_name_valid(a->driver, true))
		return "its driver is not a driver name";
	if (a->has_bind && (!driver_name_valid(a->bind.previous_driver, true) ||
			    !driver_name_valid(a->bind.previous_override, true) || !driver_name_valid(a->bind.driver, true)))
		return "its bind member holds something other than driver names";
	if (a->vf_pf && !address_canonical(a->vf_pf))
		return "its vf.pf is not a PCI address as sysfs writes it";
	if (a->devices && (a->vf_pf || a->has_bind || strcmp(a->devices[0], a->address) != 0))
		return "its devices member does not start with its address, or comes with a VF's bind or vf member";
	for (size_t i = 0; a->devices && a->devices[i]; i++) {
		if (!address_canonical(a->devices[i]))
			return "one of its devices is not a PCI address as sysfs writes it";
		for (size_t j = 0; j < i; j++)
			if (strcmp(a->devices[i], a->devices[j]) == 0)
				return "its devices name one device twice";
	}
	return NULL;
}

static int compare_id(const void *x, const void *y)
{
	const struct allocation *a = *(struct allocation *const *)x, *b = *(struct allocation *const *)y;

	return a->id < b->id ? -1 : a->id > b->id;
}

/*
 * A state file that cannot be read, or that says something iovd cannot
 * have written, is fatal: starting with an empty table would hand out VFs
 * that guests are using, and starting with a broken one would use its
 * strings as paths (an address is the name of a marker file, written as
 * root) or hand out a VF twice.
 */
int state_parse(struct manager *m, const char *name, const char *text, size_t len)
{
	struct json_object *root = NULL, *list;
	uint64_t version, next_id;
	int r;

	r = parse_json_file(name, text, len, STATE_DEPTH_MAX, manager_stop_requested, &root);
	if (r < 0)
		return r;
	r = -EBADMSG;
	if (!get_uint64(root, "version", &version) || version != STATE_VERSION ||
	    !get_uint64(root, "next_id", &next_id) || !json_object_object_get_ex(root, "allocations", &list) ||
	    !json_object_is_type(list, json_type_array)) {
		log_error("%s: not an iovd state file of version %d", name, STATE_VERSION);
		goto out;
	}
	/* Allocate takes next_id and adds one: the largest would wrap to id 0 */
	if (next_id == 0 || next_id == UINT64_MAX) {
		log_error("%s: next_id %" PRIu64 " is not an id iovd can go on from", name, next_id);
		goto out;
	}
	m->next_id = next_id;
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		struct json_object *o = json_object_array_get_idx(list, i);
		const char *pool = get_string(o, "pool"), *owner = get_string(o, "owner");
		const char *address = get_string(o, "address"), *driver = get_string(o, "driver");
		const char *why;
		struct allocation *a;
		uint64_t id, created;

		if (i % 1024 == 0 && manager_stop_requested()) {
			r = -EINTR;
			goto out;
		}
		if (!pool || !owner || !address || !driver || !get_uint64(o, "id", &id) ||
		    !get_uint64(o, "created_usec", &created) || id == 0 || id >= next_id) {
			log_error("%s: allocation #%zu is malformed", name, i);
			r = -EBADMSG;
			goto out;
		}
		a = allocation_new(m, id);
		if (!a) {
			r = -ENOMEM;
			goto out;
		}
		a->pool = strdup(pool);
		a->owner = strdup(owner);
		a->address = strdup(address);
		a->driver = strdup(driver);
		a->created_usec = created;
		a->committed = true;
		if (!a->pool || !a->owner || !a->address || !a->driver) {
			allocation_free(a);
			r = -ENOMEM;
			goto out;
		}
		why = allocation_extra_from_json(o, a) ? allocation_invalid(a)
						       : "its uid, bind, vf, devices, passthrough or failover member is malformed";
		if (why) {
			log_error("%s: allocation #%zu (id %" PRIu64 "): %s", name, i, id, why);
			allocation_free(a);
			r = -EBADMSG;
			goto out;
		}
		r = manager_add_allocation(m, a);
		if (r == -EEXIST) {
			const struct allocation *other = manager_find_by_address(m, address);

			for (char **d = a->devices; !other && d && *d; d++)
				if ((other = manager_find_by_address(m, *d)))
					address = *d;
			log_error("%s: allocation #%zu (id %" PRIu64 "): %s %s is given to %s too", name, i, id,
				  a->devices ? "device" : "VF", address, other ? other->path : "another allocation");
			r = -EBADMSG;
		}
		if (r < 0) {
			allocation_free(a);
			goto out;
		}
	}
	/* iovd writes them in order of id; sorted, an id given twice is next to its twin */
	if (m->n_allocs > 1) /* m->allocs is NULL for none, and qsort() wants an array */
		qsort(m->allocs, m->n_allocs, sizeof(*m->allocs), compare_id);
	for (size_t i = 1; i < m->n_allocs; i++)
		if (m->allocs[i]->id == m->allocs[i - 1]->id) {
			log_error("%s: id %" PRIu64 " is given to two allocations (VFs %s and %s)", name, m->allocs[i]->id,
				  m->allocs[i - 1]->address, m->allocs[i]->address);
			r = -EBADMSG;
			goto out;
		}
	r = 0;
out:
	json_object_put(root);
	return r;
}

int state_load(struct manager *m)
{
	_cleanup_free_ char *text = NULL, *name = NULL, *jtext = NULL, *jname = NULL;
	size_t len = 0, jlen = 0;
	uint64_t seq = 0;
	int r;

	if (asprintf(&name, "%s/%s", m->state_dir, STATE_FILE) < 0)
		return -ENOMEM;
	r = read_text_file(m->state_dir_fd, STATE_FILE, name, STATE_SIZE_MAX, &text, &len);
	if (r < 0 && r != -ENOENT)
		return r;
	r = journal_read(m, r >= 0, r >= 0 ? journal_crc(0, text, len) : 0, len, &jtext, &jlen, &seq);
	if (r < 0)
		return r;
	if (r > 0) {
		if (asprintf(&jname, "%s/allocations.journal (record %" PRIu64 ")", m->state_dir, seq) < 0)
			return -ENOMEM;
		log_notice("The state is %s, newer than %s", jname, name);
		m->journal_replayed = true;
		r = state_parse(m, jname, jtext, jlen);
	} else if (text)
		r = state_parse(m, name, text, len);
	else {
		m->next_id = 1;
		return 0;
	}
	if (r == -EBADMSG)
		log_error("%s: iovd does not start on it: repair it, or move it away to start with no allocations "
			  "(every VF free)", jname ? jname : name);
	return r;
}

/* Every field but the failover group: what does not change once an Allocate is queued for its commit. */
static struct json_object *allocation_fixed_to_json(const struct allocation *a)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_uint64(a->id));
	json_object_object_add(o, "pool", json_object_new_string(a->pool));
	json_object_object_add(o, "owner", json_object_new_string(a->owner));
	json_object_object_add(o, "address", json_object_new_string(a->address));
	json_object_object_add(o, "driver", json_object_new_string(a->driver));
	json_object_object_add(o, "created_usec", json_object_new_uint64(a->created_usec));
	if (a->uid != (uid_t)-1)
		json_object_object_add(o, "uid", json_object_new_uint64(a->uid));
	/* What Release needs to put the VF back exactly, after a restart too. */
	if (a->has_bind) {
		struct json_object *b = json_object_new_object();

		json_object_object_add(b, "previous_driver", json_object_new_string(a->bind.previous_driver));
		json_object_object_add(b, "previous_override", json_object_new_string(a->bind.previous_override));
		json_object_object_add(b, "driver", json_object_new_string(a->bind.driver));
		json_object_object_add(b, "record_created", json_object_new_boolean(a->bind.record_created));
		json_object_object_add(o, "bind", b);
	}
	if (a->devices) {
		struct json_object *list = json_object_new_array();

		for (char **d = a->devices; *d; d++)
			json_object_array_add(list, json_object_new_string(*d));
		json_object_object_add(o, "devices", list);
		json_object_object_add(o, "passthrough", json_object_new_boolean(a->passthrough));
	}
	if (a->vf_pf) {
		struct json_object *v = json_object_new_object();

		json_object_object_add(v, "pf", json_object_new_string(a->vf_pf));
		json_object_object_add(v, "index", json_object_new_uint64(a->vf_index));
		json_object_object_add(v, "applied", vf_settings_to_json(&a->vf_applied));
		json_object_object_add(v, "previous", vf_settings_to_json(&a->vf_previous));
		json_object_object_add(o, "vf", v);
	}
	return o;
}

/*
 * The allocation's fixed fields as JSON text without its closing brace,
 * made once: an allocation is complete when it enters the table (manager.c
 * allocate(), state_parse()), and nothing changes these fields afterwards;
 * a failover step changes only the failover group, serialized every time.
 * Building each allocation's json-c objects anew was most of what a commit
 * cost the loop (63,000 instructions for 8 allocations, callgrind), and a
 * quick write waits for it.
 */
static const char *allocation_fixed_text(struct allocation *a, size_t *ret_len)
{
	struct json_object *o;
	const char *text;
	size_t len;

	if (!a->fixed_json) {
		o = allocation_fixed_to_json(a);
		text = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
							  &len);
		/* "{...}": the brace goes, so that the failover group can follow */
		if (text && len >= 2 && text[len - 1] == '}') {
			a->fixed_json = strndup(text, len - 1);
			a->fixed_json_len = len - 1;
		}
		json_object_put(o);
		if (!a->fixed_json)
			return NULL;
	}
	*ret_len = a->fixed_json_len;
	return a->fixed_json;
}

/*
 * The table as it will be once the requests waiting for this commit are
 * committed: every allocation but those being released.
 */
int state_serialize(struct manager *m, char **ret_text, size_t *ret_len)
{
	_cleanup_free_ char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);
	bool first = true, ok = true;

	if (!f)
		return -ENOMEM;
	fprintf(f, "{\"version\":%d,\"next_id\":%" PRIu64 ",\"allocations\":[", STATE_VERSION, m->next_id);
	for (size_t i = 0; ok && i < m->n_allocs; i++) {
		struct allocation *a = m->allocs[i];
		const char *fixed;
		size_t len;

		if (a->releasing)
			continue;
		fixed = allocation_fixed_text(a, &len);
		ok = fixed != NULL;
		if (!ok)
			break;
		if (!first)
			fputc(',', f);
		first = false;
		fwrite(fixed, 1, len, f);
		if (a->failover) {
			struct json_object *o = failover_to_json(a->failover);
			const char *text = json_object_to_json_string_ext(
				o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

			ok = text != NULL;
			if (ok)
				fprintf(f, ",\"failover\":%s", text);
			json_object_put(o);
		}
		fputc('}', f);
	}
	fputs("]}", f);
	ok = ok && !ferror(f);
	if (fclose(f) != 0 || !ok || !buf)
		return -ENOMEM;
	*ret_text = TAKE_PTR(buf);
	*ret_len = size;
	return 0;
}

/*
 * Replaces the state file with text (and a newline). Runs on the writer
 * thread (commit.c): it touches nothing but the state directory.
 */
int state_write(struct manager *m, const char *text, size_t len)
{
	_cleanup_close_ int fd = -1;
	bool keep;
	int r;

	fd = openat(m->state_dir_fd, STATE_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		goto fail;
	for (size_t off = 0; off < len;) {
		ssize_t k = write(fd, text + off, len - off);

		if (k < 0) {
			if (errno == EINTR)
				continue;
			goto fail;
		}
		off += (size_t)k;
	}
	if (write(fd, "\n", 1) != 1 || fsync(fd) < 0)
		goto fail;
	/* keep the inode being replaced, to be the next temporary file */
	keep = linkat(m->state_dir_fd, STATE_FILE, m->state_dir_fd, STATE_OLD, 0) >= 0;
	if (renameat(m->state_dir_fd, STATE_TMP, m->state_dir_fd, STATE_FILE) < 0)
		goto fail;
	if (keep)
		(void)renameat(m->state_dir_fd, STATE_OLD, m->state_dir_fd, STATE_TMP);
	if (fsync(m->state_dir_fd) < 0)
		goto fail;
	return 0;
fail:
	r = negative_errno();
	log_error("Failed to write %s/%s: %s", m->state_dir, STATE_FILE, strerror(-r));
	unlinkat(m->state_dir_fd, STATE_TMP, 0);
	unlinkat(m->state_dir_fd, STATE_OLD, 0);
	return r;
}

int state_checkpoint(struct manager *m, const char *text, size_t len)
{
	int r = state_write(m, text, len);

	if (r < 0)
		return r;
	/* durable already: a journal that cannot start only slows the next commits */
	(void)journal_reset(m, journal_crc(journal_crc(0, text, len), "\n", 1), len + 1, len);
	m->journal_replayed = false;
	return 0;
}

int state_commit(struct manager *m, const char *text, size_t len)
{
	int r = journal_append(m, text, len);

	/* a record that does not fit, a record that failed (dropped, the
	 * journal keeping the ones before it), or a journal that takes no
	 * records since one failed: allocations.json takes the commit */
	return r < 0 && r != -ENOMEM ? state_checkpoint(m, text, len) : r;
}

bool state_needs_checkpoint(const struct manager *m)
{
	return m->journal_replayed || journal_is_open(m);
}
