#!/usr/bin/env python3
"""tests/vm/udp-stream.py: a bounded UDP stream for the failover cases.

    udp-stream.py recv ADDR PORT SECONDS      prints "ready" once bound, then
                                              {"received": N, "missing": [SEQ...], "last": SEQ}
    udp-stream.py send ADDR PORT PPS SECONDS  prints "started" as it starts, then {"sent": N}

The sender stamps each datagram with its sequence number and paces itself
to PPS (no burst after a stall: a late packet is sent, then the schedule
goes on); the receiver stops SECONDS after it started, or 1 s after the
last datagram. Lost = sent - received: what a switch cost, measured.
"""
import json
import socket
import struct
import sys
import time


def recv(addr, port, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((addr, port))
    print("ready", flush=True)
    end = time.monotonic() + seconds
    seen = set()
    last_at = None
    while True:
        now = time.monotonic()
        left = end - now
        if last_at is not None:
            left = min(left, last_at + 1.0 - now)
        if left <= 0:
            break
        s.settimeout(left)
        try:
            data = s.recv(64)
        except socket.timeout:
            break
        if len(data) >= 4:
            seen.add(struct.unpack("!I", data[:4])[0])
            last_at = time.monotonic()
    top = max(seen) if seen else -1
    print(json.dumps({"received": len(seen), "last": top,
                      "missing": [i for i in range(top + 1) if i not in seen][:1000]}))


def send(addr, port, pps, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    n = int(pps * seconds)
    print("started", flush=True)
    t0 = time.monotonic()
    for i in range(n):
        at = t0 + i / pps
        delay = at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        try:
            s.sendto(struct.pack("!I", i) + b"x" * 60, (addr, port))
        except OSError:
            pass  # no route for a moment is a lost packet, counted by the receiver
    print(json.dumps({"sent": n}))


if __name__ == "__main__":
    if sys.argv[1] == "recv":
        recv(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    else:
        send(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
