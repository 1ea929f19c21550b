#!/usr/bin/env python3
"""tests/vm/flows.py: many UDP flows as raw frames, to spread over a NIC's queues.

    flows.py send IFNAME DST N MARK          send N IPv4/UDP frames on IFNAME (AF_PACKET),
                                             flow i from source port 20000+i, payload MARK-i
    flows.py recv IFNAME MARK N SECONDS      prints "ready", then reads frames on IFNAME until
                                             MARK-0 .. MARK-(N-1) all came; prints the ones
                                             missing and exits 1 if SECONDS pass first

A multi-queue device spreads what it receives by a hash of the flow (a tap
by its flow hash, hardware by RSS), so N distinct 5-tuples reach more than
one queue while one flow would reach one. The payload is checked, not just
counted: each frame must arrive with its own content.
"""
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003


def mac(s):
    return bytes(int(x, 16) for x in s.split(":"))


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def frame(dst, src, i, mark):
    payload = f"{mark}-{i}.".encode() + b"\0" * 16
    udp = struct.pack("!HHHH", 20000 + i, 9, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i, 0, 64, 17, 0,
                     bytes([10, 77, 0, 1]), bytes([10, 77, 0, 2]))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return mac(dst) + src + b"\x08\x00" + ip + udp


def main():
    cmd, ifname = sys.argv[1], sys.argv[2]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((ifname, 0))
    if cmd == "send":
        src = mac(open(f"/sys/class/net/{ifname}/address").read().strip())
        for i in range(int(sys.argv[4])):
            s.send(frame(sys.argv[3], src, i, sys.argv[5]))
        return 0
    mark, n, seconds = sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
    want = {f"{mark}-{i}.".encode(): i for i in range(n)}
    seen = set()
    print("ready", flush=True)
    end = time.monotonic() + seconds
    while len(seen) < n and time.monotonic() < end:
        s.settimeout(max(end - time.monotonic(), 0.001))
        try:
            data = s.recv(65536)
        except socket.timeout:
            break
        if len(data) < 42 or data[12:14] != b"\x08\x00" or data[23] != 17:
            continue
        tag = data[42:].split(b".", 1)[0] + b"."
        if tag in want:
            seen.add(want[tag])
    missing = sorted(set(range(n)) - seen)
    if missing:
        print(f"missing {len(missing)} of {n}: {missing[:20]}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
