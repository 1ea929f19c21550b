/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * iovd's state journal (<state dir>/allocations.journal, daemon/journal.c)
 * through journal_read(), what state_load() asks for a state newer than
 * allocations.json. The input is the file from its first record on; the
 * harness writes a header that names the allocations.json it put beside it
 * (else every input would be ignored at once), and when the input's last
 * byte is odd it also sets the CRC of each record the reader would reach,
 * so that the scan goes past the first check. Oracle: 0, 1, -ENOMEM or
 * -EBADMSG (damage before a later record);
 * with 1, a NUL-terminated text no longer than the file, record 1 or later.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <unistd.h>

#include "daemon/iovd.h"

#include "fuzz.h"

#define BLOCK 4096

/* daemon/journal.c's layout, restated */
struct header {
	char magic[8];
	uint64_t epoch, state_len;
	uint32_t state_crc, crc;
};
struct record {
	char magic[8];
	uint64_t epoch, seq;
	uint32_t len, crc;
};

static const char state[] = "{\"version\":1,\"next_id\":1,\"allocations\":[]}\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char dir[] = "/tmp/fuzz-iovd-journal-XXXXXX";
	static int dfd = -1;
	struct header h = { .magic = "IOVDJNL1", .epoch = 7, .state_len = sizeof(state) - 1 };
	size_t total = BLOCK + size;
	struct manager *m = NULL;
	char *file = calloc(1, total), *text = NULL;
	uint64_t seq = 0;
	size_t len = 0;
	int fd, r;

	log_max_priority = -1;
	if (!file)
		abort();
	if (dfd < 0) {
		if (!mkdtemp(dir) || (dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
			abort();
	}
	h.state_crc = journal_crc(0, state, sizeof(state) - 1);
	h.crc = journal_crc(0, &h, offsetof(struct header, crc));
	memcpy(file, &h, sizeof(h));
	memcpy(file + BLOCK, data, size);
	if (size > 0 && (data[size - 1] & 1))
		for (size_t off = BLOCK; off + sizeof(struct record) <= total;) {
			struct record *rec = (struct record *)(file + off);

			if (rec->len > total - off - sizeof(*rec))
				break;
			rec->crc = journal_crc(journal_crc(0, &rec->epoch, offsetof(struct record, crc) - 8),
					       file + off + sizeof(*rec), rec->len);
			off += (sizeof(*rec) + rec->len + BLOCK - 1) / BLOCK * BLOCK;
		}
	fd = openat(dfd, "allocations.journal", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, file, total) != (ssize_t)total)
		abort();
	close(fd);

	if (manager_new(&m) < 0)
		abort();
	m->state_dir = strdup(dir);
	m->state_dir_fd = dup(dfd);
	r = journal_read(m, true, h.state_crc, h.state_len, &text, &len, &seq);
	FUZZ_CHECK(r == 0 || r == 1 || r == -ENOMEM || r == -EBADMSG, "%d", r);
	if (r == 1) {
		FUZZ_CHECK(text && len <= size && text[len] == '\0' && seq >= 1, "len %zu of %zu, seq %llu", len, size,
			   (unsigned long long)seq);
		/* what journal_read returns, state_parse must take or refuse without harm */
		struct manager *p = NULL;

		if (manager_new(&p) < 0)
			abort();
		(void)state_parse(p, "fuzz.journal", text, len);
		manager_free(p);
	}
	free(text);
	manager_free(m);
	free(file);
	return 0;
}
