/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The vhost-user message handler (lib/datapath/vhost-user.c) on a stream of
 * messages the input makes: 12-byte headers, payloads of the size they
 * claim (cut short at the input's end), and for every message that carries
 * fds (memory table, log, kick/call/err) copies of a 64 KiB memfd whose
 * contents are the input's too, so memory tables map and rings start.
 * After the messages, every ring is polled both ways as the workers would:
 * rings laid out by the fuzzer in that memory are walked for real.
 * Oracles: the handler never crashes or leaks fds (each one it keeps is
 * closed by the reset at the end: the process's fd count is checked
 * around each input), a
 * refused message without REPLY_ACK prepares no reply, a reply is well
 * formed, and nothing breaks a ring but the ring's own contents.
 */
#include <errno.h>
#include <dirent.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/datapath/datapath-internal.h"

#include "fuzz.h"

#define MEMSZ 65536

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		abort();
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int memfd = -1, efd = -1;
	static uint8_t *mem;
	int baseline;
	struct iovk_dp_pkt pkts[32];
	struct vu_dev dev;
	size_t fill;

	if (memfd < 0) {
		memfd = memfd_create("fuzz-guest", MFD_CLOEXEC);
		efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (memfd < 0 || efd < 0 || ftruncate(memfd, MEMSZ) < 0)
			abort();
		mem = mmap(NULL, MEMSZ, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
		if (mem == MAP_FAILED)
			abort();
	}
	/* per input: libFuzzer's symbolizer opens pipes of its own between inputs */
	baseline = count_fds();
	/* the guest memory: the input's last bytes */
	memset(mem, 0, MEMSZ);
	fill = size / 2 < MEMSZ ? size / 2 : MEMSZ;
	memcpy(mem, data + size - fill, fill);
	size -= fill;

	if (vu_dev_init(&dev, 2) < 0)
		abort();
	while (size >= sizeof(struct vu_msg_hdr)) {
		struct vu_msg msg;
		int fds[VU_MSG_MAX_FDS];
		unsigned n_fds = 0, want = 0;
		bool reply = false;
		char err[256];
		size_t body;
		int r;

		memset(&msg, 0, sizeof(msg));
		memcpy(&msg.hdr, data, sizeof(msg.hdr));
		data += sizeof(msg.hdr);
		size -= sizeof(msg.hdr);
		if (msg.hdr.size > VU_MSG_MAX_PAYLOAD)
			msg.hdr.size %= VU_MSG_MAX_PAYLOAD + 1;
		body = msg.hdr.size < size ? msg.hdr.size : size;
		memcpy(msg.payload.bytes, data, body);
		data += body;
		size -= body;
		/* a frontend sends what it likes; these are the fds the requests carry */
		switch (msg.hdr.request) {
		case 5:
			want = msg.payload.memory.nregions <= VU_MSG_MAX_FDS ? msg.payload.memory.nregions : 1;
			break;
		case 6:
		case 7:
			want = 1;
			break;
		case 12:
		case 13:
		case 14:
			want = (msg.payload.u64 & 0x100) ? 0 : 1;
			break;
		}
		for (; n_fds < want; n_fds++) {
			fds[n_fds] = dup(msg.hdr.request >= 12 ? efd : memfd);
			if (fds[n_fds] < 0)
				abort();
		}
		r = vu_handle_message(&dev, &msg, fds, n_fds, &reply, err, sizeof(err));
		for (unsigned i = 0; i < n_fds; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		if (r < 0)
			FUZZ_CHECK(err[0], "refused message %u without a reason", msg.hdr.request);
		if (reply) {
			FUZZ_CHECK(msg.hdr.flags == (VU_VERSION | VU_FLAG_REPLY), "reply flags 0x%x", msg.hdr.flags);
			FUZZ_CHECK(msg.hdr.size <= VU_MSG_MAX_PAYLOAD, "reply of %u bytes", msg.hdr.size);
		}
		if (r < 0 && !reply)
			break; /* the connection would close here */
	}
	/* the workers' view: poll every queue both ways */
	for (unsigned q = 0; q < 2; q++)
		for (int round = 0; round < 2; round++) {
			unsigned n = vu_rx_burst(&dev, q, pkts, 32);

			for (unsigned i = 0; i < n; i++)
				for (unsigned s = 0; s < pkts[i].n_seg; s++)
					FUZZ_CHECK(pkts[i].seg[s].iov_len > 0, "empty segment");
			if (n)
				vu_tx_burst(&dev, q ^ 1, pkts, n);
			if (n)
				vu_rx_release(&dev, q);
		}
	vu_dev_done(&dev);
	FUZZ_CHECK(count_fds() == baseline, "%d fds open, %d before", count_fds(), baseline);
	return 0;
}
