// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The declarative configuration (iovkit.json(5)) and its plans: parsing,
 * strict and whole, with errors naming the file and the JSON path (or the
 * line for a syntax error); plans computed against the fixture hosts; and
 * applying the steps a fixture can take (autoprobe is a plain file there)
 * up to one it cannot (a fixture never probes: a bind fails and is rolled
 * back), which must leave the steps after it untouched. VF settings are
 * compared through netlink, which the fixtures' interfaces are not in: here
 * they are planned for VFs still to be created, and the kernel's side is
 * proven in tests/vm/cases/65-apply-nvme.sh.
 */
#include <sys/stat.h>

#include "fixture.h"

static bool has(struct iovk_ctx *ctx, const char *text)
{
	return strstr(iovk_ctx_get_error(ctx), text) != NULL;
}

static struct iovk_config *config_of(struct iovk_ctx *ctx, const char *text)
{
	struct iovk_config *c = NULL;
	int r;

	cr_assert_eq(iovk_config_new(ctx, &c), 0);
	r = iovk_config_add_string(c, "test.json", text);
	cr_assert_eq(r, 0, "parsing: %d %s", r, iovk_ctx_get_error(ctx));
	return c;
}

/* Parses text, expects err and an error holding want. */
static void refused(const char *text, int err, const char *want)
{
	struct iovk_ctx *ctx = NULL;
	struct iovk_config *c = NULL;
	int r;

	cr_assert_eq(iovk_ctx_new(&ctx), 0);
	cr_assert_eq(iovk_config_new(ctx, &c), 0);
	r = iovk_config_add_string(c, "test.json", text);
	cr_expect_eq(r, err, "%s: %d, wanted %d (%s)", text, r, err, iovk_ctx_get_error(ctx));
	cr_expect(has(ctx, want), "%s: error '%s' lacks '%s'", text, iovk_ctx_get_error(ctx), want);
	cr_expect_eq(iovk_config_get_n_files(c), 0, "a refused file must not be added");
	iovk_config_unref(c);
	iovk_ctx_unref(ctx);
}

static struct iovk_plan *plan_of(struct iovk_ctx *ctx, const char *text, unsigned flags)
{
	struct iovk_config *c = config_of(ctx, text);
	struct iovk_plan *p = NULL;
	int r = iovk_plan_new(ctx, c, flags, &p);

	cr_assert_eq(r, 0, "planning: %d %s", r, iovk_ctx_get_error(ctx));
	iovk_config_unref(c); /* the plan keeps its own reference */
	return p;
}

/* Plans text against ctx and expects err with an error holding want. */
static void plan_refused(struct iovk_ctx *ctx, const char *text, int err, const char *want)
{
	struct iovk_config *c = config_of(ctx, text);
	struct iovk_plan *p = NULL;
	int r = iovk_plan_new(ctx, c, 0, &p);

	cr_expect_eq(r, err, "%s: %d, wanted %d (%s)", text, r, err, iovk_ctx_get_error(ctx));
	cr_expect(has(ctx, want), "%s: error '%s' lacks '%s'", text, iovk_ctx_get_error(ctx), want);
	cr_expect_null(p);
	iovk_config_unref(c);
}

Test(config, valid_document_with_every_key)
{
	struct iovk_ctx *ctx = NULL;
	struct iovk_config *c;

	cr_assert_eq(iovk_ctx_new(&ctx), 0);
	c = config_of(ctx, "{\n"
			   "  \"pfs\": [\n"
			   "    { \"pf\": \"0000:04:00.0\", \"numvfs\": 4, \"autoprobe\": false,\n"
			   "      \"vfs\": [ { \"vf\": 0, \"driver\": \"vfio-pci\" },\n"
			   "               { \"vf\": 3, \"driver\": \"none\" } ] },\n"
			   "    { \"pf\": \"enp1s0f0\", \"vfs\": [ { \"vf\": 1, \"mac\": \"02:00:00:00:00:01\",\n"
			   "      \"vlan\": 10, \"qos\": 3, \"proto\": \"802.1ad\", \"spoofchk\": true, \"trust\": false,\n"
			   "      \"state\": \"auto\", \"min_tx_rate\": 10, \"max_tx_rate\": 100, \"driver\": \"iavf\" } ] },\n"
			   "    { \"pf\": \"01:00.1\" }\n"
			   "  ],\n"
			   "  \"devices\": [ { \"device\": \"03:00.0\", \"driver\": \"vfio-pci\" } ]\n"
			   "}\n");
	cr_assert_eq(iovk_config_get_n_files(c), 1);
	cr_assert_str_eq(iovk_config_get_file(c, 0), "test.json");
	cr_assert_null(iovk_config_get_file(c, 1));
	/* an empty document declares nothing, and is fine */
	cr_assert_eq(iovk_config_add_string(c, "empty.json", "{}"), 0);
	cr_assert_eq(iovk_config_get_n_files(c), 2);
	cr_assert_eq(iovk_config_add_string(c, "lists.json", " {\"pfs\": [], \"devices\": []}\n"), 0);
	cr_assert_null(iovk_config_unref(iovk_config_ref(c)));
	iovk_config_unref(c);
	iovk_ctx_unref(ctx);
}

Test(config, syntax_errors_name_file_line_and_column)
{
	refused("{\n  \"pfs\": [\n    {\"pf\": \"01:00.0\" \"numvfs\": 2}\n  ]\n}\n", -EBADMSG, "test.json:3:");
	refused("{\"pfs\": [ {\"pf\": \"01:00.0\",} ]}", -EBADMSG, "test.json:1:");
	refused("{\"pfs\": [", -EBADMSG, "not valid JSON");
	refused("{\"pfs\": []} {}", -EBADMSG, "test.json:1:13: not valid JSON");
	refused("/* comment */ {}", -EBADMSG, "not valid JSON");
	refused("  \n", -EBADMSG, "test.json: empty");
	refused("{\"pfs\": [{\"pf\": \"01:00.0\",\n \"numvfs\": 2, \"numvfs\": 3}]}", -EBADMSG,
		"test.json:2:15: the key \"numvfs\" appears twice in one object");
	refused("{\"pfs\": [[[[[[[[[[1]]]]]]]]]]}", -EBADMSG, "nested deeper");
	/* json-c's strict mode takes a key in single quotes, and so a key twice */
	refused("{'pfs': []}", -EBADMSG, "test.json:1:2: not valid JSON: a string in single quotes");
	refused("{\"pfs\": [],\n 'pfs': [{\"pf\": \"01:00.0\"}]}", -EBADMSG, "test.json:2:2: not valid JSON");
	refused("{\"pfs\": [{\"pf\": \"\xff\"}]}", -EBADMSG, "not valid JSON");
}

Test(config, structure_errors_name_the_json_path)
{
	refused("[]", -EINVAL, "test.json: expected an object");
	refused("{\"pf\": []}", -EINVAL, "test.json: unknown key \"pf\" (known here: pfs, devices)");
	refused("{\"pfs\": {}}", -EINVAL, "test.json: pfs: expected an array, not an object");
	refused("{\"pfs\": [1]}", -EINVAL, "test.json: pfs[0]: expected an object, not an integer");
	refused("{\"pfs\": [{\"numvfs\": 1}]}", -EINVAL, "test.json: pfs[0]: \"pf\" is missing");
	refused("{\"pfs\": [{\"pf\": 1}]}", -EINVAL, "pfs[0].pf: expected a string, not an integer");
	refused("{\"pfs\": [{\"pf\": \"01:00.0\", \"numvfs\": \"2\"}]}", -EINVAL,
		"test.json: pfs[0].numvfs: expected an integer, not a string");
	refused("{\"pfs\": [{\"pf\": \"01:00.0\", \"numvfs\": 2.0}]}", -EINVAL, "pfs[0].numvfs: expected an integer");
	refused("{\"pfs\": [{\"pf\": \"01:00.0\", \"numvfs\": -1}]}", -EINVAL,
		"pfs[0].numvfs: -1 is not a number of VFs (0 to 65535)");
	refused("{\"pfs\": [{\"pf\": \"01:00.0\", \"numvfs\": 65536}]}", -EINVAL, "pfs[0].numvfs: 65536 is not");
	refused("{\"pfs\": [{\"pf\": \"01:00.0\", \"autoprobe\": 0}]}", -EINVAL,
		"pfs[0].autoprobe: expected true or false, not an integer");
	refused("{\"pfs\": [{\"pf\": \"01:00.0\", \"vfs\": {}}]}", -EINVAL, "pfs[0].vfs: expected an array");
	refused("{\"pfs\": [{\"pf\": \"01:00.0\", \"vfs\": [{\"driver\": \"vfio-pci\"}]}]}", -EINVAL,
		"pfs[0].vfs[0]: \"vf\" is missing");
	refused("{\"pfs\": [{\"pf\": \"01:00.0\", \"vfs\": [{\"vf\": 0, \"vlan_id\": 3}]}]}", -EINVAL,
		"test.json: pfs[0].vfs[0]: unknown key \"vlan_id\"");
	refused("{\"pfs\": [{\"pf\": \"01:00.0\", \"vfs\": [{\"vf\": 0, \"trust\": \"on\"}]}]}", -EINVAL,
		"pfs[0].vfs[0].trust: expected true or false, not a string");
	refused("{\"devices\": [{\"device\": \"01:00.0\"}]}", -EINVAL, "devices[0]: \"driver\" is missing");
	refused("{\"devices\": [{\"device\": \"01:00.0\", \"driver\": \"vfio-pci\", \"pin\": true}]}", -EINVAL,
		"devices[0]: unknown key \"pin\"");
}

Test(config, names_and_duplicates)
{
	refused("{\"pfs\": [{\"pf\": \"a/b\"}]}", -EINVAL,
		"pfs[0].pf: 'a/b' is neither a PCI address nor a network interface name");
	refused("{\"pfs\": [{\"pf\": \"0000:zz:00.0\"}]}", -EINVAL, "pfs[0].pf: '0000:zz:00.0' is not a PCI address");
	refused("{\"pfs\": [{\"pf\": \"averyveryverylongname\"}]}", -EINVAL, "neither a PCI address");
	refused("{\"devices\": [{\"device\": \"eth0\", \"driver\": \"none\"}]}", -EINVAL,
		"devices[0].device: 'eth0' is not a PCI address");
	refused("{\"pfs\": [{\"pf\": \"01:00.0\", \"vfs\": [{\"vf\": 0, \"driver\": \"../x\"}]}]}", -EINVAL,
		"pfs[0].vfs[0].driver: '../x' is not a driver name");
	refused("{\"devices\": [{\"device\": \"01:00.0\", \"driver\": \"\"}]}", -EINVAL, "is not a driver name");
	/* the same PF in two forms, a VF twice, a device twice, a PF as a device */
	refused("{\"pfs\": [{\"pf\": \"0000:01:00.0\"}, {\"pf\": \"01:00.0\"}]}", -EINVAL,
		"pfs[1].pf: the PF 0000:01:00.0 is declared twice (pfs[0] too)");
	refused("{\"pfs\": [{\"pf\": \"01:00.0\", \"vfs\": [{\"vf\": 1}, {\"vf\": 0}, {\"vf\": 1}]}]}", -EINVAL,
		"pfs[0].vfs[2].vf: VF 1 is declared twice (pfs[0].vfs[0] too)");
	refused("{\"devices\": [{\"device\": \"03:00.0\", \"driver\": \"none\"}, "
		"{\"device\": \"0000:03:00.0\", \"driver\": \"vfio-pci\"}]}", -EINVAL,
		"devices[1].device: the device 0000:03:00.0 is declared twice (devices[0] too)");
	refused("{\"pfs\": [{\"pf\": \"03:00.0\"}], \"devices\": [{\"device\": \"03:00.0\", \"driver\": \"none\"}]}",
		-EINVAL, "devices[0].device: 0000:03:00.0 is a device here and a PF in pfs[0]");
}

Test(config, vf_indices_against_numvfs)
{
	refused("{\"pfs\": [{\"pf\": \"01:00.0\", \"numvfs\": 2, \"vfs\": [{\"vf\": 0}, {\"vf\": 2}]}]}", -EINVAL,
		"test.json: pfs[0].vfs[1].vf: VF 2 does not exist: pfs[0].numvfs is 2 (VFs 0 to 1)");
	refused("{\"pfs\": [{\"pf\": \"01:00.0\", \"numvfs\": 0, \"vfs\": [{\"vf\": 0}]}]}", -EINVAL,
		"pfs[0].vfs[0].vf: VF 0 does not exist: pfs[0].numvfs is 0");
	refused("{\"pfs\": [{\"pf\": \"01:00.0\", \"vfs\": [{\"vf\": -1}]}]}", -EINVAL,
		"pfs[0].vfs[0].vf: -1 is not a VF index");
}

/* Every check of `iovctl vf set`, with the JSON key in place of the word. */
Test(config, vf_settings_pass_the_vf_set_checks)
{
	const char *pre = "{\"pfs\": [{\"pf\": \"01:00.0\", \"vfs\": [{\"vf\": 0}, {\"vf\": 1, ";
	static const struct {
		const char *json, *want;
	} cases[] = {
		{ "\"mac\": \"02:00:00:00:00\"", "pfs[0].vfs[1].mac: '02:00:00:00:00' is not a MAC address" },
		{ "\"mac\": \"01:00:5e:00:00:01\"", "pfs[0].vfs[1].mac: '01:00:5e:00:00:01' is a multicast address" },
		{ "\"mac\": \"ff:ff:ff:ff:ff:ff\"", "pfs[0].vfs[1].mac: 'ff:ff:ff:ff:ff:ff' is a multicast address" },
		{ "\"mac\": 2", "pfs[0].vfs[1].mac: expected a string, not an integer" },
		{ "\"vlan\": 4096", "test.json: pfs[0].vfs[1].vlan: '4096' is not a VLAN ID (0 to 4095)" },
		{ "\"vlan\": -1", "pfs[0].vfs[1].vlan: '-1' is not a VLAN ID" },
		{ "\"vlan\": \"10\"", "pfs[0].vfs[1].vlan: expected an integer, not a string" },
		{ "\"vlan\": 10, \"qos\": 8", "pfs[0].vfs[1].qos: '8' is not a QoS priority (0 to 7)" },
		{ "\"vlan\": 10, \"proto\": \"802.1x\"", "pfs[0].vfs[1].proto: '802.1x' is not a VLAN protocol" },
		{ "\"qos\": 1", "pfs[0].vfs[1].qos: qos only goes with \"vlan\"" },
		{ "\"proto\": \"802.1ad\"", "pfs[0].vfs[1].proto: proto only goes with \"vlan\"" },
		{ "\"state\": \"up\"", "pfs[0].vfs[1].state: 'up' is not a link state (auto, enable or disable)" },
		{ "\"max_tx_rate\": 2147483648", "pfs[0].vfs[1].max_tx_rate: '2147483648' is not a rate" },
		{ "\"min_tx_rate\": 10, \"max_tx_rate\": 5", "pfs[0].vfs[1].min_tx_rate: min_tx_rate 10 is above max_tx_rate 5" },
		{ "\"spoofchk\": 1", "pfs[0].vfs[1].spoofchk: expected true or false, not an integer" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[512];

		snprintf(text, sizeof(text), "%s%s}]}]}", pre, cases[i].json);
		refused(text, -EINVAL, cases[i].want);
	}
}

Test(config, failed_file_leaves_the_configuration_as_it_was)
{
	struct iovk_ctx *ctx = NULL;
	struct iovk_config *c;

	cr_assert_eq(iovk_ctx_new(&ctx), 0);
	c = config_of(ctx, "{\"pfs\": [{\"pf\": \"01:00.0\"}], \"devices\": [{\"device\": \"03:00.0\", \"driver\": \"none\"}]}");
	/* declared in the first file: the second names it, with its file */
	cr_assert_eq(iovk_config_add_string(c, "b.json", "{\"pfs\": [{\"pf\": \"0000:01:00.0\"}]}"), -EINVAL);
	cr_assert(has(ctx, "b.json: pfs[0].pf: the PF 0000:01:00.0 is declared twice (test.json: pfs[0] too)"), "%s",
		  iovk_ctx_get_error(ctx));
	cr_assert_eq(iovk_config_add_string(c, "c.json", "{\"devices\": [{\"device\": \"03:00.0\", \"driver\": \"x\"}]}"),
		     -EINVAL);
	cr_assert(has(ctx, "c.json: devices[0].device: the device 0000:03:00.0 is declared twice (test.json: devices[0] too)"),
		  "%s", iovk_ctx_get_error(ctx));
	cr_assert_eq(iovk_config_add_string(c, "d.json", "{\"pfs\": [{\"pf\": \"02:00.0\"}, {\"pf\": 7}]}"), -EINVAL);
	cr_assert_eq(iovk_config_get_n_files(c), 1);
	/* 02:00.0 from the refused d.json was not kept */
	cr_assert_eq(iovk_config_add_string(c, "e.json", "{\"pfs\": [{\"pf\": \"02:00.0\"}]}"), 0,
		     "%s", iovk_ctx_get_error(ctx));
	cr_assert_eq(iovk_config_get_n_files(c), 2);
	iovk_config_unref(c);
	iovk_ctx_unref(ctx);
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "we");
	cr_assert_not_null(f, "%s", path);
	fputs(text, f);
	fclose(f);
}

Test(config, files_and_directories)
{
	struct iovk_ctx *ctx = NULL;
	struct iovk_config *c = NULL;
	char dir[PATH_MAX], path[PATH_MAX];

	cr_assert_eq(iovk_ctx_new(&ctx), 0);
	cr_assert_eq(iovk_config_new(ctx, &c), 0);
	snprintf(dir, sizeof(dir), "%s/iovkit-test-conf-XXXXXX", getenv("TMPDIR") ?: "/tmp");
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(iovk_config_add_directory(c, dir), 0, "an empty directory adds nothing");
	write_file(dir, "20-b.json", "{\"pfs\": [{\"pf\": \"02:00.0\"}]}");
	write_file(dir, "10-a.json", "{\"pfs\": [{\"pf\": \"01:00.0\"}]}");
	write_file(dir, "notes.txt", "not json");
	write_file(dir, ".hidden.json", "not json");
	cr_assert_eq(iovk_config_add_directory(c, dir), 2, "%s", iovk_ctx_get_error(ctx));
	snprintf(path, sizeof(path), "%s/10-a.json", dir);
	cr_assert_str_eq(iovk_config_get_file(c, 0), path);
	/* all or nothing: 30-c.json is bad, so 10-a and 20-b of this call go too */
	iovk_config_unref(c);
	cr_assert_eq(iovk_config_new(ctx, &c), 0);
	write_file(dir, "30-c.json", "{\"pfs\": [{\"pf\": \"03:00.0\", \"numvfs\": true}]}");
	cr_assert_eq(iovk_config_add_directory(c, dir), -EINVAL);
	cr_assert(has(ctx, "30-c.json: pfs[0].numvfs: expected an integer, not a boolean"), "%s", iovk_ctx_get_error(ctx));
	cr_assert_eq(iovk_config_get_n_files(c), 0);

	snprintf(path, sizeof(path), "%s/missing.json", dir);
	cr_assert_eq(iovk_config_add_file(c, path), -ENOENT);
	cr_assert(has(ctx, "missing.json: cannot read it: No such file or directory"), "%s", iovk_ctx_get_error(ctx));
	cr_assert_eq(iovk_config_add_file(c, dir), -EISDIR);
	snprintf(path, sizeof(path), "%s/20-b.json", dir);
	cr_assert_eq(iovk_config_add_file(c, path), 0);
	cr_assert_eq(iovk_config_get_n_files(c), 1);
	iovk_config_unref(c);
	iovk_ctx_unref(ctx);
}

/* json-c keeps the last of two equal keys, and compares them decoded: so must the duplicate scan. */
Test(config, duplicate_keys_are_compared_decoded)
{
	refused("{\"\\u006eumvfs\": 1, \"numvfs\": 2}", -EBADMSG, "test.json:1:20: the key \"numvfs\" appears twice");
	refused("{\"pfs\": [{\"pf\": \"01:00.0\", \"numvfs\": 1,\n \"num\\u0076fs\": 2}]}", -EBADMSG,
		"test.json:2:2: the key \"num\\u0076fs\" (\"numvfs\" decoded) appears twice in one object");
	/* every escape, a surrogate pair against the UTF-8 it stands for */
	refused("{\"a\\/b\": 1, \"a/b\": 2}", -EBADMSG, "the key \"a/b\" appears twice");
	refused("{\"\\\"\\\\\\b\\f\\n\\r\\t\": 1, \"\\u0022\\u005c\\u0008\\u000c\\u000a\\u000d\\u0009\": 2}", -EBADMSG,
		"appears twice in one object");
	refused("{\"\\ud83d\\ude00\": 1, \"\xf0\x9f\x98\x80\": 2}", -EBADMSG, "the key \"\xf0\x9f\x98\x80\" appears twice");
	refused("{\"\\u00e9\": 1, \"\\u00E9\": 2}", -EBADMSG, "appears twice");
	/* escapes json-c lets through but turns into something else: U+FFFD, or a key cut at the NUL */
	refused("{\"\\ud800\": 1}", -EBADMSG, "test.json:1:3: a key holds \"\\ud800\": a UTF-16 high surrogate");
	refused("{\"x\\ud800\\u0041\": 1}", -EBADMSG, "a UTF-16 high surrogate without a low one after it");
	refused("{\"\\udc00\": 1}", -EBADMSG, "a UTF-16 low surrogate without a high one before it");
	refused("{\"numvfs\\u0000x\": 1, \"numvfs\": 2}", -EBADMSG, "a key holds \"\\u0000\": a NUL character");
	/* values are not keys: the same text in two values is fine */
	refused("{\"pfs\": [{\"pf\": \"0\\u0031:00.0\", \"vfs\": [{\"vf\": 0, \"driver\": \"\\u0076fio-pci\"}]}],"
		" \"devices\": [{\"device\": \"01:00.0\", \"driver\": \"none\"}]}", -EINVAL,
		"devices[0].device: 0000:01:00.0 is a device here and a PF in pfs[0]");
}

/* One key per comparison with every earlier key took 8.9 s of CPU for 87,000 keys. */
Test(config, many_keys_in_one_object_are_refused)
{
	size_t n = 87000, size = n * 16 + 8, len = 0;
	char *text = malloc(size);

	cr_assert_not_null(text);
	len += (size_t)snprintf(text + len, size - len, "{");
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, size - len, "%s\"k%zu\": 0", i ? "," : "", i);
	snprintf(text + len, size - len, "}");
	refused(text, -EBADMSG, "test.json:1:");
	refused(text, -EBADMSG, "more than 64 keys in one object");
	free(text);
}

/* A FIFO blocked open() until a writer came; a device may act on open. */
Test(config, only_regular_files_are_read, .timeout = 20)
{
	struct iovk_ctx *ctx = NULL;
	struct iovk_config *c = NULL;
	char dir[PATH_MAX], path[PATH_MAX];

	cr_assert_eq(iovk_ctx_new(&ctx), 0);
	cr_assert_eq(iovk_config_new(ctx, &c), 0);
	snprintf(dir, sizeof(dir), "%s/iovkit-test-fifo-XXXXXX", getenv("TMPDIR") ?: "/tmp");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/10-fifo.json", dir);
	cr_assert_eq(mkfifo(path, 0600), 0);
	cr_assert_eq(iovk_config_add_file(c, path), -EINVAL);
	cr_assert(has(ctx, "10-fifo.json: not a regular file (a FIFO)"), "%s", iovk_ctx_get_error(ctx));
	cr_assert_eq(iovk_config_add_file(c, "/dev/null"), -EINVAL);
	cr_assert(has(ctx, "/dev/null: not a regular file (a character device)"), "%s", iovk_ctx_get_error(ctx));
	/* in a directory: an error naming it, not a file skipped without a word */
	write_file(dir, "20-good.json", "{}");
	cr_assert_eq(iovk_config_add_directory(c, dir), -EINVAL);
	cr_assert(has(ctx, "10-fifo.json: not a regular file (a FIFO)"), "%s", iovk_ctx_get_error(ctx));
	cr_assert_eq(iovk_config_get_n_files(c), 0);
	unlink(path);
	cr_assert_eq(symlink("/dev/null", path), 0);
	cr_assert_eq(iovk_config_add_directory(c, dir), -EINVAL);
	cr_assert(has(ctx, "10-fifo.json: not a regular file (a character device)"), "%s", iovk_ctx_get_error(ctx));
	unlink(path);
	cr_assert_eq(iovk_config_add_directory(c, dir), 1, "%s", iovk_ctx_get_error(ctx));
	iovk_config_unref(c);
	iovk_ctx_unref(ctx);
}

/* ---- plans against the fixture hosts ------------------------------------- */

static const struct iovk_plan_step *step(struct iovk_plan *p, size_t i)
{
	const struct iovk_plan_step *s = iovk_plan_get_step(p, i);

	cr_assert_not_null(s, "no step %zu", i);
	return s;
}

Test(plan, matching_configuration_gives_an_empty_plan)
{
	struct iovk_ctx *ctx = fixture_ctx("sriov-nic");
	struct iovk_plan *p;

	/* the PF by address and by its interface, VFs on their drivers, a device */
	p = plan_of(ctx, "{\"pfs\": [{\"pf\": \"0000:01:00.0\", \"numvfs\": 2, \"autoprobe\": true,\n"
			 "  \"vfs\": [{\"vf\": 0, \"driver\": \"ixgbevf\"}, {\"vf\": 1, \"driver\": \"vfio-pci\"}]},\n"
			 " {\"pf\": \"enp1s0f1\", \"numvfs\": 0}],\n"
			 " \"devices\": [{\"device\": \"00:1f.3\", \"driver\": \"snd_hda_intel\"},\n"
			 "              {\"device\": \"00:00.0\", \"driver\": \"none\"}]}",
		    0);
	cr_assert_eq(iovk_plan_get_n_steps(p), 0);
	cr_assert_eq(iovk_plan_get_first_blocked(p), -1);
	cr_assert_eq(iovk_plan_apply(p), 0, "an empty plan applies: %s", iovk_ctx_get_error(ctx));
	cr_assert_eq(iovk_plan_apply(p), -EALREADY);
	cr_assert_null(iovk_plan_get_step(p, 0));
	iovk_plan_unref(p);
	iovk_ctx_unref(ctx);
}

Test(plan, numvfs_change_with_a_vf_on_vfio_is_refused_unless_forced)
{
	const char *root = fixture_copy("sriov-nic");
	struct iovk_ctx *ctx = fixture_ctx_at(root);
	const char *text = "{\"pfs\": [{\"pf\": \"0000:01:00.0\", \"numvfs\": 3}]}";
	const struct iovk_plan_step *s;
	struct iovk_plan *p;

	p = plan_of(ctx, text, 0);
	cr_assert_eq(iovk_plan_get_n_steps(p), 1);
	s = step(p, 0);
	cr_assert_eq(s->action, IOVK_PLAN_NUMVFS);
	cr_assert_str_eq(iovk_plan_action_name(s->action), "numvfs");
	cr_assert_str_eq(s->file, "test.json");
	cr_assert_str_eq(s->path, "pfs[0].numvfs");
	cr_assert_str_eq(s->pf, "0000:01:00.0");
	cr_assert_str_eq(s->pf_address, "0000:01:00.0");
	cr_assert_str_eq(s->device, "0000:01:00.0");
	cr_assert_eq(s->from, 2);
	cr_assert_eq(s->to, 3);
	cr_assert(s->through_zero);
	cr_assert_eq(s->autoprobe_restored, -1);
	cr_assert_not_null(s->blocked);
	cr_assert(strstr(s->blocked, "0000:01:10.2 (vfio-pci)"), "%s", s->blocked);
	cr_assert(strstr(s->description, "numvfs 2 -> 3 (through 0"), "%s", s->description);
	cr_assert_eq(iovk_plan_get_first_blocked(p), 0);
	/* applying a blocked plan writes nothing */
	cr_assert_eq(iovk_plan_apply(p), -EBUSY);
	cr_assert(has(ctx, "test.json: pfs[0].numvfs: step 1 refused, nothing applied"), "%s", iovk_ctx_get_error(ctx));
	cr_assert_eq(s->status, IOVK_PLAN_PENDING);
	cr_assert_eq(iovk_plan_get_n_applied(p), 0);
	cr_assert_str_eq(slurp(root, "/sys/bus/pci/devices/0000:01:00.0/sriov_numvfs"), "2\n");
	iovk_plan_unref(p);

	p = plan_of(ctx, text, IOVK_PLAN_FORCE);
	cr_assert_eq(iovk_plan_get_n_steps(p), 1);
	cr_assert_null(step(p, 0)->blocked);
	cr_assert_eq(iovk_plan_get_first_blocked(p), -1);
	iovk_plan_unref(p);
	/* removing all VFs is refused the same way */
	p = plan_of(ctx, "{\"pfs\": [{\"pf\": \"01:00.0\", \"numvfs\": 0}]}", 0);
	cr_assert_not_null(step(p, 0)->blocked);
	cr_assert_not(step(p, 0)->through_zero);
	iovk_plan_unref(p);
	iovk_ctx_unref(ctx);
}

Test(plan, steps_in_the_safe_order)
{
	struct iovk_ctx *ctx = fixture_ctx("sriov-nic");
	const struct iovk_plan_step *s;
	struct iovk_plan *p;

	p = plan_of(ctx,
		    "{\"devices\": [{\"device\": \"00:1f.3\", \"driver\": \"vfio-pci\"}],\n"
		    " \"pfs\": [\n"
		    "  {\"pf\": \"enp1s0f0\", \"vfs\": [{\"vf\": 0, \"driver\": \"vfio-pci\"}, {\"vf\": 1, \"driver\": \"vfio-pci\"}]},\n"
		    "  {\"pf\": \"0000:01:00.1\", \"numvfs\": 4, \"autoprobe\": false, \"vfs\": [\n"
		    "    {\"vf\": 2, \"driver\": \"vfio-pci\", \"mac\": \"02:00:00:00:01:02\", \"vlan\": 10, \"qos\": 3, \"trust\": true},\n"
		    "    {\"vf\": 3, \"driver\": \"none\"}]}]}",
		    0);
	cr_assert_eq(iovk_plan_get_n_steps(p), 6, "%zu steps", iovk_plan_get_n_steps(p));

	s = step(p, 0); /* autoprobe first */
	cr_assert_eq(s->action, IOVK_PLAN_AUTOPROBE);
	cr_assert_str_eq(s->path, "pfs[1].autoprobe");
	cr_assert_eq(s->from, 1);
	cr_assert_eq(s->to, 0);
	cr_assert_str_eq(s->description, "0000:01:00.1: autoprobe on -> off");

	s = step(p, 1); /* then numvfs */
	cr_assert_eq(s->action, IOVK_PLAN_NUMVFS);
	cr_assert_eq(s->from, 0);
	cr_assert_eq(s->to, 4);
	cr_assert_not(s->through_zero);
	cr_assert_null(s->blocked);

	s = step(p, 2); /* VF settings of a VF to be created: all of them, nothing to compare */
	cr_assert_eq(s->action, IOVK_PLAN_VF_SETTINGS);
	cr_assert_str_eq(s->path, "pfs[1].vfs[0]");
	cr_assert_eq(s->vf, 2);
	cr_assert_null(s->device);
	cr_assert_not(s->has_current);
	cr_assert_eq(s->settings.fields, IOVK_VF_MAC | IOVK_VF_VLAN | IOVK_VF_TRUST);
	cr_assert_eq(s->settings.vlan, 10);
	cr_assert_eq(s->settings.qos, 3);
	cr_assert(s->settings.trust);
	cr_assert_eq(s->settings.mac[5], 0x02);
	cr_assert_str_eq(s->description, "0000:01:00.1 VF 2 (created by step 2): mac 02:00:00:00:01:02, "
					 "vlan 10 qos 3 proto 802.1Q, trust on");

	s = step(p, 3); /* then drivers: VF 0 of the PF named by its interface */
	cr_assert_eq(s->action, IOVK_PLAN_BIND);
	cr_assert_str_eq(s->path, "pfs[0].vfs[0].driver");
	cr_assert_str_eq(s->pf, "enp1s0f0");
	cr_assert_str_eq(s->pf_address, "0000:01:00.0");
	cr_assert_str_eq(s->device, "0000:01:10.0");
	cr_assert_str_eq(s->driver_from, "ixgbevf");
	cr_assert_str_eq(s->driver_to, "vfio-pci");
	cr_assert_str_eq(s->description, "enp1s0f0 (0000:01:00.0) VF 0 (0000:01:10.0): driver ixgbevf -> vfio-pci");
	/* VF 1 is on vfio-pci already: no step */

	s = step(p, 4); /* a VF to be created; VF 3 "none" needs nothing with autoprobe off */
	cr_assert_eq(s->action, IOVK_PLAN_BIND);
	cr_assert_str_eq(s->path, "pfs[1].vfs[0].driver");
	cr_assert_null(s->device);
	cr_assert_null(s->driver_from);
	cr_assert_str_eq(s->description, "0000:01:00.1 VF 2 (created by step 2): driver -> vfio-pci");

	s = step(p, 5); /* devices last */
	cr_assert_str_eq(s->path, "devices[0].driver");
	cr_assert_null(s->pf);
	cr_assert_eq(s->vf, -1);
	cr_assert_str_eq(s->device, "0000:00:1f.3");
	cr_assert_str_eq(s->description, "0000:00:1f.3: driver snd_hda_intel -> vfio-pci");
	for (size_t i = 0; i < 6; i++)
		cr_assert_eq(step(p, i)->status, IOVK_PLAN_PENDING);
	iovk_plan_unref(p);

	/* with autoprobe on, a new VF meant to have no driver is unbound */
	p = plan_of(ctx, "{\"pfs\": [{\"pf\": \"0000:01:00.1\", \"numvfs\": 1, \"vfs\": [{\"vf\": 0, \"driver\": \"none\"}]}]}", 0);
	cr_assert_eq(iovk_plan_get_n_steps(p), 2);
	cr_assert_eq(step(p, 1)->action, IOVK_PLAN_BIND);
	cr_assert_null(step(p, 1)->driver_to);
	iovk_plan_unref(p);
	iovk_ctx_unref(ctx);
}

Test(plan, what_cannot_apply_to_the_host_names_the_entry)
{
	struct iovk_ctx *ctx = fixture_ctx("sriov-nic");

	plan_refused(ctx, "{\"pfs\": [{\"pf\": \"0000:09:00.0\", \"numvfs\": 1}]}", -ENODEV,
		     "test.json: pfs[0].pf: 0000:09:00.0: no such PCI device");
	plan_refused(ctx, "{\"pfs\": [{\"pf\": \"01:10.0\", \"numvfs\": 1}]}", -ENOENT,
		     "test.json: pfs[0].pf: 0000:01:10.0: not an SR-IOV physical function: it is a VF of 0000:01:00.0");
	plan_refused(ctx, "{\"pfs\": [{\"pf\": \"01:00.1\", \"numvfs\": 64}]}", -ERANGE,
		     "test.json: pfs[0].numvfs: 64 VFs asked for, but 0000:01:00.1 supports at most 63");
	plan_refused(ctx, "{\"pfs\": [{\"pf\": \"01:00.0\", \"vfs\": [{\"vf\": 2, \"driver\": \"vfio-pci\"}]}]}", -ERANGE,
		     "pfs[0].vfs[0].vf: VF 2 does not exist: 0000:01:00.0 has 2 VFs");
	plan_refused(ctx, "{\"pfs\": [{\"pf\": \"01:00.1\", \"vfs\": [{\"vf\": 0}]}]}", -ERANGE,
		     "pfs[0].vfs[0].vf: VF 0 does not exist: 0000:01:00.1 has 0 VFs");
	plan_refused(ctx, "{\"pfs\": [{\"pf\": \"0000:01:00.0\"}, {\"pf\": \"enp1s0f0\"}]}", -EINVAL,
		     "test.json: pfs[1].pf: the PF 0000:01:00.0 is declared twice (pfs[0] too, as 0000:01:00.0)");
	plan_refused(ctx, "{\"pfs\": [{\"pf\": \"enp1s0f0\"}], \"devices\": [{\"device\": \"01:10.2\", \"driver\": \"none\"}]}",
		     -EINVAL, "devices[0].device: 0000:01:10.2 is a VF of enp1s0f0 (0000:01:00.0)");
	plan_refused(ctx, "{\"devices\": [{\"device\": \"0000:09:00.0\", \"driver\": \"none\"}]}", -ENODEV,
		     "test.json: devices[0].device: 0000:09:00.0: no such PCI device");
	/* VF settings of existing VFs go through netlink, where the fixture's
	 * interface does not exist: the entry and the interface are named */
	plan_refused(ctx, "{\"pfs\": [{\"pf\": \"01:00.0\", \"vfs\": [{\"vf\": 0, \"trust\": true}]}]}", -ENODEV,
		     "test.json: pfs[0].vfs[0]: enp1s0f0 (PF 0000:01:00.0): no such network interface");
	iovk_ctx_unref(ctx);
}

Test(plan, pf_without_driver_or_network_interface)
{
	const char *root = fixture_copy("sriov-nic");
	struct iovk_ctx *ctx;
	char path[PATH_MAX];

	/* 01:00.1 without its driver: it cannot change its VFs */
	snprintf(path, sizeof(path), "%s/sys/bus/pci/devices/0000:01:00.1/driver", root);
	cr_assert_eq(unlink(path), 0);
	/* and 01:00.0 without its interface: no VF settings */
	snprintf(path, sizeof(path), "rm -rf '%s/sys/bus/pci/devices/0000:01:00.0/net'", root);
	cr_assert_eq(system(path), 0);
	ctx = fixture_ctx_at(root);
	plan_refused(ctx, "{\"pfs\": [{\"pf\": \"01:00.1\", \"numvfs\": 2}]}", -ENOENT,
		     "pfs[0].numvfs: no driver is bound to the PF 0000:01:00.1");
	plan_refused(ctx, "{\"pfs\": [{\"pf\": \"01:00.0\", \"numvfs\": 3, \"vfs\": [{\"vf\": 0, \"trust\": true}]}]}",
		     -ENOENT, "pfs[0].vfs[0]: VF settings go through the PF's network interface, and 0000:01:00.0 has none");
	iovk_ctx_unref(ctx);
}

Test(plan, autoprobe_is_applied_and_then_nothing_is_left_to_do)
{
	const char *root = fixture_copy("sriov-nic");
	struct iovk_ctx *ctx = fixture_ctx_at(root);
	const char *text = "{\"pfs\": [{\"pf\": \"enp1s0f1\", \"autoprobe\": false}]}";
	struct iovk_plan *p;

	p = plan_of(ctx, text, 0);
	cr_assert_eq(iovk_plan_get_n_steps(p), 1);
	cr_assert_eq(iovk_plan_apply(p), 1, "%s", iovk_ctx_get_error(ctx));
	cr_assert_eq(step(p, 0)->status, IOVK_PLAN_APPLIED);
	cr_assert(step(p, 0)->changed);
	cr_assert_eq(iovk_plan_get_n_applied(p), 1);
	cr_assert_str_eq(slurp(root, "/sys/bus/pci/devices/0000:01:00.1/sriov_drivers_autoprobe"), "0");
	iovk_plan_unref(p);
	p = plan_of(ctx, text, 0);
	cr_assert_eq(iovk_plan_get_n_steps(p), 0, "a second plan of the same file is empty");
	iovk_plan_unref(p);
	iovk_ctx_unref(ctx);
}

Test(plan, autoprobe_record_and_numvfs_zero)
{
	const char *root = fixture_copy("sriov-nic");
	struct iovk_ctx *ctx = fixture_ctx_at(root);
	char path[PATH_MAX];
	struct iovk_plan *p;
	FILE *f;

	/* A record by `sriov set --no-autoprobe`: numvfs 0 would write back 1 */
	snprintf(path, sizeof(path), "%s/sriov-autoprobe", iovk_ctx_get_run_dir(ctx));
	cr_assert_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/sriov-autoprobe/0000:01:00.0", iovk_ctx_get_run_dir(ctx));
	f = fopen(path, "we");
	cr_assert_not_null(f);
	fputs("0\n", f);
	fclose(f);
	p = plan_of(ctx, "{\"pfs\": [{\"pf\": \"01:00.0\", \"numvfs\": 0}]}", IOVK_PLAN_FORCE);
	cr_assert_eq(iovk_plan_get_n_steps(p), 1);
	cr_assert_eq(step(p, 0)->autoprobe_restored, 0);
	cr_assert(strstr(step(p, 0)->description, "then autoprobe back to off (recorded)"), "%s",
		  step(p, 0)->description);
	iovk_plan_unref(p);
	/* with autoprobe in the file, the value stays (the record is dropped first) */
	/* the fixture removes no VF: the wait after the write times out, soon */
	cr_assert_eq(iovk_ctx_set_timeout_ms(ctx, 50), 0);
	p = plan_of(ctx, "{\"pfs\": [{\"pf\": \"01:00.0\", \"numvfs\": 0, \"autoprobe\": true}]}", IOVK_PLAN_FORCE);
	cr_assert_eq(iovk_plan_get_n_steps(p), 2);
	cr_assert_eq(step(p, 0)->action, IOVK_PLAN_AUTOPROBE);
	cr_assert_eq(step(p, 0)->from, 1);
	cr_assert_eq(step(p, 0)->to, 1);
	cr_assert_eq(step(p, 1)->autoprobe_restored, -1);
	cr_assert_eq(iovk_plan_apply(p), -ETIMEDOUT, "the fixture removes no VF: %s", iovk_ctx_get_error(ctx));
	cr_assert_eq(step(p, 0)->status, IOVK_PLAN_APPLIED);
	cr_assert_not(step(p, 0)->changed);
	cr_assert_eq(access(path, F_OK), -1, "the record is gone");
	cr_assert_eq(step(p, 1)->status, IOVK_PLAN_FAILED);
	iovk_plan_unref(p);
	iovk_ctx_unref(ctx);
}

Test(plan, failure_midway_leaves_the_rest_untouched)
{
	const char *root = fixture_copy("sriov-nic");
	struct iovk_ctx *ctx = fixture_ctx_at(root);
	const struct iovk_plan_step *s;
	struct iovk_plan *p;
	char before[4096];

	snprintf(before, sizeof(before), "%s", slurp(root, "/sys/bus/pci/devices/0000:00:1f.4/driver_override"));
	p = plan_of(ctx,
		    "{\"pfs\": [{\"pf\": \"01:00.1\", \"autoprobe\": false}],\n"
		    " \"devices\": [{\"device\": \"00:1f.3\", \"driver\": \"vfio-pci\"},\n"
		    "              {\"device\": \"00:1f.4\", \"driver\": \"vfio-pci\"}]}",
		    0);
	cr_assert_eq(iovk_plan_get_n_steps(p), 3);
	/* a fixture never probes: vfio-pci does not take 00:1f.3, which the
	 * bind puts back on snd_hda_intel */
	cr_assert_eq(iovk_plan_apply(p), -EBUSY, "%s", iovk_ctx_get_error(ctx));
	cr_assert(has(ctx, "test.json: devices[0].driver: 0000:00:1f.3:"), "%s", iovk_ctx_get_error(ctx));
	cr_assert(has(ctx, "snd_hda_intel restored"), "%s", iovk_ctx_get_error(ctx));
	cr_assert_eq(iovk_plan_get_n_applied(p), 1);
	cr_assert_eq(step(p, 0)->status, IOVK_PLAN_APPLIED);
	s = step(p, 1);
	cr_assert_eq(s->status, IOVK_PLAN_FAILED);
	cr_assert_eq(s->error, -EBUSY);
	cr_assert(strstr(s->error_message, "0000:00:1f.3:") == s->error_message, "%s", s->error_message);
	cr_assert_eq(step(p, 2)->status, IOVK_PLAN_PENDING);
	cr_assert_str_eq(slurp(root, "/sys/bus/pci/devices/0000:01:00.1/sriov_drivers_autoprobe"), "0");
	cr_assert_str_eq(slurp(root, "/sys/bus/pci/devices/0000:00:1f.4/driver_override"), before,
			 "the step after the failure must not be touched");
	cr_assert_eq(iovk_plan_apply(p), -EALREADY);
	iovk_plan_unref(p);
	iovk_ctx_unref(ctx);
}

/* ---- iovk_sriov_set_drivers_autoprobe() ------------------------------------ */

Test(sriov_autoprobe, writes_only_when_it_differs_and_drops_the_record)
{
	const char *root = fixture_copy("sriov-nic");
	struct iovk_ctx *ctx = fixture_ctx_at(root);
	char path[PATH_MAX];
	FILE *f;

	cr_assert_eq(iovk_sriov_set_drivers_autoprobe(ctx, "01:00.1", false), 1, "%s", iovk_ctx_get_error(ctx));
	cr_assert_str_eq(slurp(root, "/sys/bus/pci/devices/0000:01:00.1/sriov_drivers_autoprobe"), "0");
	cr_assert_eq(iovk_sriov_set_drivers_autoprobe(ctx, "0000:01:00.1", false), 0);
	/* a value recorded by IOVK_SRIOV_NO_AUTOPROBE goes, even when nothing is written */
	snprintf(path, sizeof(path), "%s/sriov-autoprobe", iovk_ctx_get_run_dir(ctx));
	cr_assert_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/sriov-autoprobe/0000:01:00.1", iovk_ctx_get_run_dir(ctx));
	f = fopen(path, "we");
	cr_assert_not_null(f);
	fputs("1\n", f);
	fclose(f);
	cr_assert_eq(iovk_sriov_set_drivers_autoprobe(ctx, "01:00.1", false), 0);
	cr_assert_eq(access(path, F_OK), -1);
	cr_assert_eq(iovk_sriov_set_drivers_autoprobe(ctx, "01:00.1", true), 1);
	cr_assert_str_eq(slurp(root, "/sys/bus/pci/devices/0000:01:00.1/sriov_drivers_autoprobe"), "1");

	cr_assert_eq(iovk_sriov_set_drivers_autoprobe(ctx, "01:10.0", false), -ENOENT);
	cr_assert_eq(iovk_sriov_set_drivers_autoprobe(ctx, "09:00.0", false), -ENODEV);
	cr_assert_eq(iovk_sriov_set_drivers_autoprobe(ctx, "zz", false), -EINVAL);
	snprintf(path, sizeof(path), "%s/sys/bus/pci/devices/0000:01:00.0/sriov_drivers_autoprobe", root);
	cr_assert_eq(unlink(path), 0);
	cr_assert_eq(iovk_sriov_set_drivers_autoprobe(ctx, "01:00.0", false), -EOPNOTSUPP);
	cr_assert(has(ctx, "sriov_drivers_autoprobe does not exist (kernel before 4.12)"), "%s", iovk_ctx_get_error(ctx));
	iovk_ctx_unref(ctx);
}

/* ---- devices[] selectors and persisted overrides (iovctl overrides, the udev rule) ---- */

Test(config, device_selectors_are_checked_whole)
{
	struct iovk_ctx *ctx = NULL;
	struct iovk_config *c;

	cr_assert_eq(iovk_ctx_new(&ctx), 0);
	/* Nova's device_spec forms: an address glob, vendor:device (and class), both */
	c = config_of(ctx, "{\"devices\": [{\"device\": \"*:3B:02.*\", \"driver\": \"vfio-pci\"},\n"
			   " {\"device\": \"3b:1?.[0-3]\", \"driver\": \"vfio-pci\"},\n"
			   " {\"ids\": \"8086:10ED\", \"driver\": \"vfio-pci\"},\n"
			   " {\"ids\": \"10de:*:0300\", \"driver\": \"vfio-pci\"},\n"
			   " {\"device\": \"0000:3b:00.0\", \"ids\": \"8086:*\", \"driver\": \"none\"}]}");
	iovk_config_unref(c);
	refused("{\"devices\": [{\"device\": \"0000:3b:*;\", \"driver\": \"vfio-pci\"}]}", -EINVAL,
		"test.json: devices[0].device: '0000:3b:*;' is neither a PCI address nor an address glob");
	refused("{\"devices\": [{\"device\": \"*\", \"driver\": \"vfio-pci\"}]}", -EINVAL,
		"devices[0].device: '*' is not an address glob");
	/* one colon: before it a bus (BB:DD.F, domain 0000) or a domain, nothing else */
	refused("{\"devices\": [{\"device\": \"000:3b*\", \"driver\": \"vfio-pci\"}]}", -EINVAL,
		"devices[0].device: '000:3b*' is not an address glob: before its ':' must be a bus");
	refused("{\"devices\": [{\"device\": \"3:02.*\", \"driver\": \"vfio-pci\"}]}", -EINVAL,
		"devices[0].device: '3:02.*' is not an address glob: before its ':' must be a bus");
	refused("{\"devices\": [{\"ids\": \"8086:10ed:02\", \"driver\": \"vfio-pci\"}]}", -EINVAL,
		"devices[0].ids: '8086:10ed:02' is not VENDOR:DEVICE");
	refused("{\"devices\": [{\"ids\": \"*:10ed\", \"driver\": \"vfio-pci\"}]}", -EINVAL,
		"devices[0].ids: '*:10ed' is not VENDOR:DEVICE");
	refused("{\"devices\": [{\"ids\": 8086, \"driver\": \"vfio-pci\"}]}", -EINVAL,
		"devices[0].ids: expected a string, not an integer");
	refused("{\"devices\": [{\"ids\": \"8086:10ed\"}]}", -EINVAL, "devices[0]: \"driver\" is missing");
	refused("{\"devices\": [{\"force\": true, \"driver\": \"none\"}]}", -EINVAL, "devices[0]: \"device\" is missing");
	refused("{\"devices\": [{\"ids\": \"8086:10ed\", \"driver\": \"vfio-pci\"},"
		" {\"ids\": \"8086:10ED\", \"driver\": \"none\"}]}", -EINVAL,
		"test.json: devices[1]: the selector \"8086:10ED\" is declared twice (devices[0] too)");
	/* two selectors that could match the same device are no error until a device does */
	c = config_of(ctx, "{\"devices\": [{\"ids\": \"8086:*\", \"driver\": \"vfio-pci\"},"
			   " {\"ids\": \"8086:*:0200\", \"driver\": \"none\"}]}");
	iovk_config_unref(c);
	iovk_ctx_unref(ctx);
}

static struct iovk_overrides *overrides_of(struct iovk_ctx *ctx, const char *text, const char *address)
{
	struct iovk_config *c = config_of(ctx, text);
	struct iovk_overrides *o = NULL;
	int r = iovk_overrides_new(ctx, c, address, &o);

	cr_assert_eq(r, 0, "overrides: %d %s", r, iovk_ctx_get_error(ctx));
	iovk_config_unref(c); /* the list keeps its own reference */
	return o;
}

Test(overrides, one_device_by_its_pf_entry_an_exact_entry_or_a_selector)
{
	struct iovk_ctx *ctx = fixture_ctx("sriov-nic");
	const char *text = "{\"pfs\": [{\"pf\": \"enp1s0f0\", \"vfs\": [{\"vf\": 1, \"driver\": \"vfio-pci\"}]}],\n"
			   " \"devices\": [{\"ids\": \"8086:10ed\", \"driver\": \"ixgbevf\", \"force\": true},\n"
			   "              {\"device\": \"00:1f.3\", \"driver\": \"none\"},\n"
			   "              {\"device\": \"0000:01:00.*\", \"driver\": \"vfio-pci\"},\n"
			   "              {\"ids\": \"8086:1901\", \"driver\": \"vfio-pci\"}]}";
	const struct iovk_override *o;
	struct iovk_overrides *l;

	/* 01:10.2 is VF 1 of enp1s0f0 (the PF named by its interface): the PF's entry wins */
	l = overrides_of(ctx, text, "0000:01:10.2");
	cr_assert_eq(iovk_overrides_get_n(l), 1);
	o = iovk_overrides_get(l, 0);
	cr_assert_str_eq(o->path, "pfs[0].vfs[0]");
	cr_assert_str_eq(o->pf, "0000:01:00.0");
	cr_assert_eq(o->vf, 1);
	cr_assert_str_eq(o->device, "0000:01:10.2");
	cr_assert_str_eq(o->driver, "vfio-pci");
	cr_assert(o->in_effect);
	cr_assert_null(o->match);
	iovk_overrides_unref(l);
	/* VF 0 has no driver in pfs[0]: the "ids" selector takes it */
	l = overrides_of(ctx, text, "01:10.0");
	o = iovk_overrides_get(l, 0);
	cr_assert_not_null(o);
	cr_assert_str_eq(o->path, "devices[0]");
	cr_assert_str_eq(o->match, "8086:10ed");
	cr_assert_eq(o->vf, -1);
	cr_assert(o->force);
	cr_assert_str_eq(o->current_driver, "ixgbevf");
	cr_assert(o->in_effect);
	iovk_overrides_unref(l);
	/* "none": no driver asked for, one bound: not in effect */
	l = overrides_of(ctx, text, "0000:00:1f.3");
	o = iovk_overrides_get(l, 0);
	cr_assert_null(o->driver);
	cr_assert_str_eq(o->current_driver, "snd_hda_intel");
	cr_assert_not(o->in_effect);
	iovk_overrides_unref(l);
	/* the glob 0000:01:00.* matches 01:00.0, but pfs[0] declares that PF;
	 * a bridge (00:01.0, 8086:1901) is never selected; 00:00.0 matches no entry */
	for (const char *const *a = (const char *const[]){ "0000:01:00.0", "0000:00:01.0", "0000:00:00.0", NULL }; *a;
	     a++) {
		l = overrides_of(ctx, text, *a);
		cr_assert_eq(iovk_overrides_get_n(l), 0, "%s has an override", *a);
		cr_assert_null(iovk_overrides_get(l, 0));
		iovk_overrides_unref(l);
	}
	/* ... but the other PF, 01:00.1, is the glob's */
	l = overrides_of(ctx, text, "0000:01:00.1");
	cr_assert_str_eq(iovk_overrides_get(l, 0)->path, "devices[2]");
	iovk_overrides_unref(l);
	iovk_ctx_unref(ctx);
}

Test(overrides, a_glob_of_domain_and_bus_prefix_or_of_a_bus)
{
	struct iovk_ctx *ctx = fixture_ctx("sriov-nic");
	/* "0000:01*" is a domain and a bus prefix: taken as written, not made
	 * 0000:0000:01* (which matches nothing); "01:00.?" is BB:DD.F */
	const char *const texts[] = {
		"{\"devices\": [{\"device\": \"0000:01*\", \"driver\": \"vfio-pci\"}]}",
		"{\"devices\": [{\"device\": \"01:00.?\", \"driver\": \"vfio-pci\"}]}",
		"{\"devices\": [{\"device\": \"*:00.1\", \"driver\": \"vfio-pci\"}]}",
	};
	struct iovk_overrides *l;

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		l = overrides_of(ctx, texts[i], "0000:01:00.1");
		cr_assert_eq(iovk_overrides_get_n(l), 1, "%s selects no device", texts[i]);
		cr_assert_str_eq(iovk_overrides_get(l, 0)->path, "devices[0]");
		iovk_overrides_unref(l);
	}
	iovk_ctx_unref(ctx);
}

Test(overrides, errors)
{
	struct iovk_ctx *ctx = fixture_ctx("sriov-nic");
	struct iovk_config *c = config_of(ctx, "{\"devices\": [{\"ids\": \"8086:a323\", \"driver\": \"vfio-pci\"},"
					      " {\"device\": \"*:00:1f.*\", \"driver\": \"none\"}]}");
	struct iovk_overrides *o = NULL;

	cr_assert_eq(iovk_overrides_new(ctx, c, "0000:00:1f.4", &o), -EINVAL);
	cr_assert(has(ctx, "test.json: devices[1]: 0000:00:1f.4 is matched by \"*:00:1f.*\" here and by \"8086:a323\" "
			   "(test.json: devices[0])"), "%s", iovk_ctx_get_error(ctx));
	cr_assert_null(o);
	cr_assert_eq(iovk_overrides_new(ctx, c, NULL, &o), -EINVAL);
	cr_assert_eq(iovk_overrides_new(ctx, c, "0000:00:1f.3", &o), 0, "only 1f.4 is matched twice");
	cr_assert_eq(iovk_overrides_get_n(o), 1);
	o = iovk_overrides_unref(o);
	cr_assert_eq(iovk_overrides_new(ctx, c, "0000:09:00.0", &o), -ENODEV);
	cr_assert_eq(iovk_overrides_new(ctx, c, NULL, NULL), -EINVAL);
	cr_assert_null(iovk_overrides_unref(NULL));
	iovk_config_unref(c);
	iovk_ctx_unref(ctx);
}

Test(plan, selectors_plan_each_device_they_match)
{
	struct iovk_ctx *ctx = fixture_ctx("sriov-nic");
	struct iovk_plan *p;

	/* 8086:10ed: both VFs (01:10.0 ixgbevf, 01:10.2 already on vfio-pci);
	 * pfs[0] gives VF 0 its driver, so only... none: VF 1 is in effect */
	p = plan_of(ctx, "{\"pfs\": [{\"pf\": \"01:00.0\", \"vfs\": [{\"vf\": 0, \"driver\": \"ixgbevf\"}]}],"
			 " \"devices\": [{\"ids\": \"8086:10ed\", \"driver\": \"vfio-pci\"}]}", 0);
	cr_assert_eq(iovk_plan_get_n_steps(p), 0);
	iovk_plan_unref(p);
	p = plan_of(ctx, "{\"devices\": [{\"ids\": \"8086:10ed:0200\", \"driver\": \"none\"}]}", IOVK_PLAN_FORCE);
	cr_assert_eq(iovk_plan_get_n_steps(p), 2);
	cr_assert_str_eq(step(p, 0)->device, "0000:01:10.0");
	cr_assert_str_eq(step(p, 1)->device, "0000:01:10.2");
	cr_assert_str_eq(step(p, 1)->path, "devices[0].driver");
	cr_assert_null(step(p, 1)->driver_to);
	cr_assert(strstr(step(p, 1)->description, "0000:01:10.2 (8086:10ed:0200)"), "%s", step(p, 1)->description);
	/* 01:10.0's interface is up: taking it is forced, and says so */
	cr_assert_not_null(step(p, 0)->forced);
	iovk_plan_unref(p);
	iovk_ctx_unref(ctx);
}
