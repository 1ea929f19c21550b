/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The state journal: a commit made durable by one fdatasync.
 *
 * Replacing allocations.json (write, fsync, rename, fsync the directory) is
 * two ext4 journal commits per batch. Instead each batch's state is written
 * as one record into allocations.journal, a file whose blocks were all
 * written (zeros) when it was made, so overwriting them changes no metadata
 * and fdatasync is a data flush alone (tenths of a millisecond here, against
 * 0.5 to 20 ms for the rename).
 *
 * Layout, in the host's byte order:
 *   block 0   header: magic "IOVDJNL1", epoch, the length and CRC-32 of
 *             the allocations.json it follows, its own CRC-32;
 *   then      records, each starting on a 4 KiB boundary (so a record
 *             never shares a block with one already acknowledged): magic
 *             "IOVDREC1", epoch, seq (1, 2, ...), length, CRC-32 of epoch,
 *             seq, length and text; then the text: the whole state, as
 *             allocations.json would hold it.
 *
 * The current state is the text of the last record of the valid run that
 * starts at block 1 (right magic and epoch, seq one more than the last, CRC
 * right), or allocations.json when there is none. The journal counts only
 * if its header names the allocations.json that is there (length and CRC):
 * a state file written or edited after the header was is never overridden
 * by older records. A torn record ends the run, and was never acknowledged:
 * replies wait for the fdatasync. So does a record whose write failed: its
 * first block is overwritten with zeros, and the records before it, which
 * were acknowledged, stay (journal_drop_failed_record()).
 *
 * Checkpoint (state.c): allocations.json is replaced the old way, then a new
 * header with a new random epoch is written, which makes every record in the
 * file stale at once; records start again at block 1. A checkpoint happens
 * when a record does not fit, on every commit after a record failed (until
 * one succeeds), at start when records were replayed, and at a clean stop,
 * so a stopped iovd leaves allocations.json alone current.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "common/time-util.h"
#include "iovd.h"

#define JOURNAL_FILE "allocations.journal"
#define JOURNAL_TMP "allocations.journal.tmp"
#define BLOCK 4096u
#define SIZE_MIN (4u << 20)
#define SIZE_MAX_ (64u << 20)
#define HEADER_MAGIC "IOVDJNL1"
#define RECORD_MAGIC "IOVDREC1"
#define RECORD_MAX (SIZE_MAX_ / 2) /* a larger state is written to allocations.json every time */

#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif

struct header {
	char magic[8];
	uint64_t epoch;
	uint64_t state_len;
	uint32_t state_crc;
	uint32_t crc; /* of the fields above */
};

struct record {
	char magic[8];
	uint64_t epoch;
	uint64_t seq;
	uint32_t len;
	uint32_t crc; /* of epoch, seq, len and the text */
};

struct journal {
	int fd;
	uint64_t size;
	uint64_t epoch;
	uint64_t seq; /* of the last record written */
	uint64_t off; /* where the next record goes */
	bool usable;  /* a header of this epoch is on disk and nothing failed since */
	uint64_t retry_usec; /* after a failure: no new journal before this (CLOCK_MONOTONIC) */
};

#define RETRY_USEC (30 * USEC_PER_SEC)


/* CRC-32 (IEEE, as zlib's): a table of 256, made on first use. Thirty lines
 * instead of a dependency for one function. */
static uint32_t crc_table[256];

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

uint32_t journal_crc(uint32_t crc, const void *data, size_t len)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	const uint8_t *p = data;

	pthread_once(&once, crc_init);
	crc = ~crc;
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

static uint32_t header_crc(const struct header *h)
{
	return journal_crc(0, h, offsetof(struct header, crc));
}

static uint32_t record_crc(const struct record *r, const char *text)
{
	uint32_t crc = journal_crc(0, &r->epoch, offsetof(struct record, crc) - offsetof(struct record, epoch));

	return journal_crc(crc, text, r->len);
}

static uint64_t round_up(uint64_t v)
{
	return (v + BLOCK - 1) / BLOCK * BLOCK;
}

/* All of len bytes at off, or an error: -ENODATA for a read past the end. */
static int pio_all(int fd, void *buf, size_t len, off_t off, bool write)
{
	char *p = buf;

	while (len > 0) {
		ssize_t k = write ? pwrite(fd, p, len, off) : pread(fd, p, len, off);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return negative_errno();
		if (k == 0)
			return write ? -EIO : -ENODATA;
		p += k;
		len -= (size_t)k;
		off += k;
	}
	return 0;
}

static int pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	return pio_all(fd, (void *)buf, len, off, true);
}

static int pread_all(int fd, void *buf, size_t len, off_t off)
{
	return pio_all(fd, buf, len, off, false);
}

static int read_error(struct manager *m, int r, uint64_t off)
{
	log_error("%s/%s: reading it at %" PRIu64 ": %s; iovd does not start without the commits it may hold",
		  m->state_dir, JOURNAL_FILE, off, strerror(-r));
	return r;
}

/* 1 and the header of record seq of h's epoch when one starts at off (its
 * text not read yet), 0 when none does, or a read error (logged). */
static int record_at(struct manager *m, const struct header *h, uint64_t off, uint64_t seq, struct record *rec)
{
	struct journal *j = m->journal;
	int r;

	if (off + sizeof(*rec) > j->size)
		return 0;
	r = pread_all(j->fd, rec, sizeof(*rec), (off_t)off);
	if (r == -ENODATA)
		return 0;
	if (r < 0)
		return read_error(m, r, off);
	return memcmp(rec->magic, RECORD_MAGIC, 8) == 0 && rec->epoch == h->epoch && rec->seq == seq &&
	       rec->len <= RECORD_MAX && off + sizeof(*rec) + rec->len <= j->size;
}

/* m's journal, made (closed) on first use. */
static struct journal *journal_get(struct manager *m)
{
	if (!m->journal) {
		m->journal = calloc(1, sizeof(*m->journal));
		if (m->journal)
			m->journal->fd = -1;
	}
	return m->journal;
}

/*
 * Scans the journal in the state directory for a state newer than
 * allocations.json (has_state: it exists, with state_len bytes of CRC-32
 * state_crc). Returns
 * 1 with the newest record's text (malloc'd, NUL-terminated) and its number,
 * 0 when allocations.json is current, or a negative errno for a journal that
 * cannot be read at all (logged). Leaves the file open for journal_reset().
 */
int journal_read(struct manager *m, bool has_state, uint32_t state_crc, uint64_t state_len, char **ret_text,
		 size_t *ret_len, uint64_t *ret_seq)
{
	_cleanup_free_ char *best = NULL;
	struct journal *j = m->journal;
	struct header h;
	struct stat st;
	size_t best_len = 0;
	uint64_t seq = 0;
	int r;

	if (!(j = journal_get(m)))
		return -ENOMEM;
	closep(&j->fd);
	j->usable = false;
	j->fd = openat(m->state_dir_fd, JOURNAL_FILE, O_RDWR | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
	if (j->fd < 0) {
		r = negative_errno();
		if (r == -ENOENT)
			return 0;
		log_error("%s/%s: cannot open it: %s", m->state_dir, JOURNAL_FILE, strerror(-r));
		return r;
	}
	if (fstat(j->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		log_warning("%s/%s: not a regular file; it is replaced", m->state_dir, JOURNAL_FILE);
		closep(&j->fd);
		return 0;
	}
	j->size = (uint64_t)st.st_size;
	r = pread_all(j->fd, &h, sizeof(h), 0);
	if (r < 0 && r != -ENODATA)
		return read_error(m, r, 0);
	if (r < 0 || memcmp(h.magic, HEADER_MAGIC, 8) != 0 || h.crc != header_crc(&h))
		return 0; /* never started, or its header torn by a crash in a checkpoint */
	if (!has_state || h.state_len != state_len || h.state_crc != state_crc) {
		log_warning("%s/%s: it follows another %s/allocations.json than the one there; its records are "
			    "ignored", m->state_dir, JOURNAL_FILE, m->state_dir);
		return 0;
	}
	for (uint64_t off = BLOCK; off + sizeof(struct record) <= j->size;) {
		struct record rec;
		char *text;

		r = record_at(m, &h, off, seq + 1, &rec);
		if (r < 0)
			return r;
		if (r == 0)
			break;
		text = malloc((size_t)rec.len + 1);
		if (!text)
			return -ENOMEM;
		r = pread_all(j->fd, text, rec.len, (off_t)(off + sizeof(rec)));
		if (r < 0) {
			free(text);
			return read_error(m, r, off);
		}
		if (rec.crc != record_crc(&rec, text)) {
			struct record next;

			free(text);
			/* torn: written by a commit a crash cut off, never acknowledged.
			 * Then nothing of this epoch follows it (the next start begins
			 * a new one); a record that does is damage, not a crash. */
			r = record_at(m, &h, off + round_up(sizeof(rec) + rec.len), rec.seq + 1, &next);
			if (r < 0)
				return r;
			if (r > 0) {
				log_error("%s/%s: record %" PRIu64 " is damaged (its CRC-32 is wrong) and record %" PRIu64
					  " follows it: iovd does not start on it; move it away to start from "
					  "%s/allocations.json (and lose the commits after it)",
					  m->state_dir, JOURNAL_FILE, rec.seq, next.seq, m->state_dir);
				return -EBADMSG;
			}
			break;
		}
		text[rec.len] = '\0';
		free(best);
		best = text;
		best_len = rec.len;
		seq = rec.seq;
		off += round_up(sizeof(rec) + rec.len);
	}
	if (!best)
		return 0;
	*ret_text = TAKE_PTR(best);
	*ret_len = best_len;
	*ret_seq = seq;
	return 1;
}

/* A journal file of size bytes, every block written, in place of the old one. */
static int journal_create(struct manager *m, uint64_t size)
{
	struct journal *j = m->journal;
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *zeros = calloc(1, 1u << 20);
	int r;

	if (!zeros)
		return -ENOMEM;
	fd = openat(m->state_dir_fd, JOURNAL_TMP, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return negative_errno();
	for (uint64_t off = 0; off < size; off += 1u << 20) {
		r = pwrite_all(fd, zeros, (size_t)MIN(size - off, (uint64_t)1u << 20), (off_t)off);
		if (r < 0)
			goto fail;
	}
	if (fsync(fd) < 0 || renameat(m->state_dir_fd, JOURNAL_TMP, m->state_dir_fd, JOURNAL_FILE) < 0 ||
	    fsync(m->state_dir_fd) < 0) {
		r = negative_errno();
		goto fail;
	}
	closep(&j->fd);
	j->fd = TAKE_FD(fd);
	j->size = size;
	return 0;
fail:
	unlinkat(m->state_dir_fd, JOURNAL_TMP, 0);
	return r;
}

/*
 * Starts a new epoch after allocations.json was written (state_len bytes of
 * CRC-32 state_crc): a header naming it, durable before this returns.
 * record_len: a record's size now, to size a new file (16 records at least).
 * Runs at start and exit, and on the writer thread.
 */
int journal_reset(struct manager *m, uint32_t state_crc, uint64_t state_len, size_t record_len)
{
	struct journal *j = m->journal;
	uint64_t want = round_up(16 * ((uint64_t)record_len + sizeof(struct record) + BLOCK));
	struct header h = { .magic = HEADER_MAGIC };
	int r;

	if (!(j = journal_get(m)))
		return -ENOMEM;
	j->usable = false;
	j->seq = 0; /* allocations.json was just written: it holds every record */
	if (j->retry_usec && now_usec(CLOCK_MONOTONIC) < j->retry_usec) {
		/* a failure a moment ago: allocations.json alone until then. A
		 * journal kept for its records after that failure goes: they are
		 * in allocations.json now, and its header may name one with the
		 * same bytes as the one just written */
		if (j->fd >= 0) {
			closep(&j->fd);
			if (unlinkat(m->state_dir_fd, JOURNAL_FILE, 0) < 0 && errno != ENOENT)
				log_error("Failed to remove %s/%s: %m", m->state_dir, JOURNAL_FILE);
			else
				(void)fsync(m->state_dir_fd);
		}
		return -EAGAIN;
	}
	j->retry_usec = 0;
	want = MAX(want, (uint64_t)SIZE_MIN);
	want = MIN(want, (uint64_t)SIZE_MAX_);
	if (j->fd < 0 || j->size < want || j->size > 4 * want) {
		r = journal_create(m, want);
		if (r < 0)
			goto fail;
	}
	if (getrandom(&h.epoch, sizeof(h.epoch), 0) != sizeof(h.epoch)) {
		r = -EIO;
		goto fail;
	}
	h.state_len = state_len;
	h.state_crc = state_crc;
	h.crc = header_crc(&h);
	r = pwrite_all(j->fd, &h, sizeof(h), 0);
	if (r >= 0 && fdatasync(j->fd) < 0)
		r = negative_errno();
	if (r < 0)
		goto fail;
	j->epoch = h.epoch;
	j->seq = 0;
	j->off = BLOCK;
	j->usable = true;
	return 0;
fail:
	/* its old header may name an allocations.json with the same bytes as
	 * the one just written, and then its records would be read as newer */
	j->retry_usec = now_usec(CLOCK_MONOTONIC) + RETRY_USEC;
	closep(&j->fd);
	if (unlinkat(m->state_dir_fd, JOURNAL_FILE, 0) < 0 && errno != ENOENT)
		log_error("Failed to remove %s/%s: %m", m->state_dir, JOURNAL_FILE);
	else
		(void)fsync(m->state_dir_fd);
	log_error("Failed to start a new %s/%s: %s; commits write %s/allocations.json for %d s, then it is tried "
		  "again", m->state_dir, JOURNAL_FILE, strerror(-r), m->state_dir, (int)(RETRY_USEC / USEC_PER_SEC));
	return r;
}

/*
 * After a failed write the record may be on disk all the same, whole, under
 * an epoch whose header names the allocations.json that is there: it would
 * be read at the next start as a commit, though its requests were answered
 * as failed. The records before it were acknowledged, though, and until a
 * checkpoint the journal alone holds them: deleting the file (as iovd did
 * before) lost them whenever the checkpoint that takes the commit instead
 * failed too. So only the failed record goes: its first block is written
 * with zeros and flushed. A run ends at a block without a record's magic,
 * quietly (the "damaged record followed by another" check is for a record
 * whose magic is right and CRC wrong), so the next start reads the records
 * before it and nothing after it. The journal takes no more records until a
 * checkpoint has replaced allocations.json (state_commit() checkpoints every
 * commit meanwhile, and commit_flush() at exit, as journal_records() is not
 * 0), and a new journal starts only RETRY_USEC after the failure: a disk
 * that fails writes is not given a 4 MiB file on every commit meanwhile.
 *
 * When the zeros cannot be written either, the journal still stays when it
 * holds acknowledged records: a crash before the next checkpoint may then
 * read the failed record as a commit, which is logged, but losing the
 * acknowledged ones is certain otherwise. With no record before it, the
 * file goes, as nothing in it is needed.
 */
static void journal_drop_failed_record(struct manager *m)
{
	struct journal *j = m->journal;
	char zeros[BLOCK] = { 0 };
	int r;

	j->usable = false;
	j->retry_usec = now_usec(CLOCK_MONOTONIC) + RETRY_USEC;
	r = pwrite_all(j->fd, zeros, (size_t)MIN((uint64_t)BLOCK, j->size - j->off), (off_t)j->off);
	if (r >= 0 && fdatasync(j->fd) < 0)
		r = negative_errno();
	if (r >= 0) {
		if (j->seq > 0)
			log_error("%s/%s: the failed record is marked invalid; the %" PRIu64 " records before it "
				  "are kept until %s/allocations.json is written", m->state_dir, JOURNAL_FILE, j->seq,
				  m->state_dir);
		return;
	}
	if (j->seq > 0) {
		log_error("Failed to mark the failed record of %s/%s invalid: %s; the journal is kept for the %" PRIu64
			  " acknowledged records before it, and if iovd stops uncleanly before %s/allocations.json is "
			  "written, the next start may read the failed record as a commit",
			  m->state_dir, JOURNAL_FILE, strerror(-r), j->seq, m->state_dir);
		return;
	}
	closep(&j->fd);
	if ((unlinkat(m->state_dir_fd, JOURNAL_FILE, 0) < 0 && errno != ENOENT) || fsync(m->state_dir_fd) < 0)
		log_error("Failed to remove %s/%s after a failed write: %m; a record of that write may be read "
			  "at the next start unless %s/allocations.json is written first",
			  m->state_dir, JOURNAL_FILE, m->state_dir);
}

/*
 * Appends the state text as the next record and waits until it is on disk.
 * -ENOSPC: it does not fit, or the journal is not usable: the caller makes a
 * checkpoint instead. -ENOMEM: nothing was written. Any other error: the
 * write failed, the record is dropped and the journal takes no more until a
 * checkpoint (journal_drop_failed_record()); the caller makes a checkpoint
 * too. Runs on the writer thread, or on the loop's while the writer is idle (commit.c).
 */
int journal_append(struct manager *m, const char *text, size_t len)
{
	struct journal *j = m->journal;
	struct record rec = { .magic = RECORD_MAGIC };
	_cleanup_free_ char *buf = NULL;
	int r;

	if (!journal_fits(m, len))
		return -ENOSPC;
	rec.epoch = j->epoch;
	rec.seq = j->seq + 1;
	rec.len = (uint32_t)len;
	rec.crc = record_crc(&rec, text);
	/* one write: header and text together */
	buf = malloc(sizeof(rec) + len);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, &rec, sizeof(rec));
	memcpy(buf + sizeof(rec), text, len);
	r = pwrite_all(j->fd, buf, sizeof(rec) + len, (off_t)j->off);
	if (r >= 0 && fdatasync(j->fd) < 0)
		r = negative_errno();
	if (r < 0) {
		log_error("Failed to write %s/%s: %s", m->state_dir, JOURNAL_FILE, strerror(-r));
		journal_drop_failed_record(m);
		return r;
	}
	j->seq = rec.seq;
	j->off += round_up(sizeof(rec) + len);
	return 0;
}

bool journal_fits(const struct manager *m, size_t len)
{
	const struct journal *j = m->journal;

	return j && j->usable && len <= RECORD_MAX && j->off + sizeof(struct record) + len <= j->size;
}

bool journal_is_open(const struct manager *m)
{
	return m->journal && m->journal->fd >= 0;
}

/* Records written since the last reset (0: allocations.json is current). */
uint64_t journal_records(const struct manager *m)
{
	return m->journal ? m->journal->seq : 0;
}

void journal_free(struct manager *m)
{
	if (!m->journal)
		return;
	closep(&m->journal->fd);
	free(m->journal);
	m->journal = NULL;
}
