#!/usr/bin/env python3
"""tests/vm/udp-stream.py: a bounded UDP stream for the failover cases.

    udp-stream.py recv ADDR PORT SECONDS      prints "ready" once bound, then at its end
                                              {"received": N, "last": SEQ, "missing": [SEQ...]}
    udp-stream.py send ADDR PORT PPS SECONDS  prints "started" as it starts, then {"sent": N}

The sender stamps each datagram with its sequence number (0, 1, ...) and
paces itself to PPS (no burst after a stall: a late datagram is sent, then
the schedule goes on from there). It ends after PPS * SECONDS datagrams or
at SIGTERM, and prints {"sent": N} either way: N datagrams, numbered 0 to
N-1, left it. At SIGUSR1 it prints {"mark": M} before it sends datagram M:
every datagram numbered M or above was sent after the signal (a caller
marks the moment a switch returned, and the receiver's numbers prove
delivery after it).

The receiver runs until SIGTERM, or SECONDS as a bound; after a SIGTERM it
reads on until 1 s passes without a datagram (those still in flight when
the sender stopped), then prints its counts. It never stops on silence
alone: a stall or a blackhole in the middle of the stream is loss, which
the caller computes as the sender's N minus "received"; "missing" lists
(the first 1000) numbers below "last" it did not get.
"""
import json
import signal
import socket
import struct
import sys
import time


def recv(addr, port, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((addr, port))
    # a flag, not an exception: one raised just after a recv returned would
    # drop the datagram it read; the recv waits at most 0.2 s, then the
    # loop looks at the flag
    stop = {"at": None}

    def on_term(signum, frame):
        if stop["at"] is None:
            stop["at"] = time.monotonic()

    signal.signal(signal.SIGTERM, on_term)
    print("ready", flush=True)
    end = time.monotonic() + seconds
    seen = set()
    last_at = time.monotonic()
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if stop["at"] is not None and now - max(last_at, stop["at"]) >= 1.0:
            break  # stopped, and 1 s without a datagram since: nothing in flight
        s.settimeout(min(end - now, 0.2))
        try:
            data = s.recv(64)
        except socket.timeout:
            continue
        last_at = time.monotonic()
        if len(data) >= 4:
            seen.add(struct.unpack("!I", data[:4])[0])
    top = max(seen) if seen else -1
    print(json.dumps({"received": len(seen), "last": top,
                      "missing": [i for i in range(top + 1) if i not in seen][:1000]}),
          flush=True)


def send(addr, port, pps, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    n = int(pps * seconds)
    # flags, not exceptions: a handler runs between any two bytecodes, and
    # one raised between the sendto and the count would miscount; a flag is
    # read at the top of the loop, where "i datagrams sent" is exact
    flags = {"stop": False, "mark": False}

    def on_signal(signum, frame):
        flags["stop" if signum == signal.SIGTERM else "mark"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGUSR1, on_signal)
    print("started", flush=True)
    t0 = time.monotonic()
    i = 0
    while i < n and not flags["stop"]:
        if flags["mark"]:
            flags["mark"] = False
            print(json.dumps({"mark": i}), flush=True)
        at = t0 + i / pps
        delay = at - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # PEP 475: a signal does not cut it short
            if flags["stop"]:
                break
            if flags["mark"]:
                continue  # the mark before datagram i
        elif delay < -1.0 / pps:
            t0 -= delay  # late by more than a slot: go on from now, no burst
        try:
            s.sendto(struct.pack("!I", i) + b"x" * 60, (addr, port))
        except OSError:
            pass  # no route for a moment is a lost datagram: sent, never received
        i += 1
    print(json.dumps({"sent": i}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "recv":
        recv(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    else:
        send(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
