#!/usr/bin/env python3
"""tests/vm/frame.py: one Ethernet frame through a macvtap's /dev/tapN or an interface.

    frame.py send-tap NODE DST SRC MARK      write a frame to the tap (a VMM's transmit)
    frame.py recv-tap NODE MARK SECONDS      read frames from the tap until one carries MARK
    frame.py send-if IFNAME DST MARK         send a frame on an interface (AF_PACKET)
    frame.py recv-if IFNAME MARK SECONDS     read frames on an interface until one carries MARK

Frames are EtherType 0x88b5 (IEEE local experimental) with MARK as payload. A
macvtap's queue starts with IFF_VNET_HDR (drivers/net/tap.c, tap_open()):
each frame read or written is preceded by a 10-byte struct virtio_net_hdr,
all zero here (no offloads). Exit 0 when the frame went or came, 1 otherwise.
"""
import os
import select
import socket
import sys
import time

ETHERTYPE = b"\x88\xb5"
VNET_HDR = 10


def mac(s):
    return bytes(int(x, 16) for x in s.split(":"))


def frame(dst, src, mark):
    return mac(dst) + mac(src) + ETHERTYPE + mark.encode() + b"\0" * 32


def wait_for(read, mark, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        data = read(end - time.monotonic())
        if data and data[12:14] == ETHERTYPE and mark.encode() in data:
            return True
    return False


def main():
    cmd, target = sys.argv[1], sys.argv[2]
    if cmd == "send-tap":
        fd = os.open(target, os.O_RDWR)
        os.write(fd, b"\0" * VNET_HDR + frame(sys.argv[3], sys.argv[4], sys.argv[5]))
        return 0
    if cmd == "recv-tap":
        fd = os.open(target, os.O_RDWR | os.O_NONBLOCK)

        def read(left):
            if not select.select([fd], [], [], max(left, 0))[0]:
                return None
            return os.read(fd, 65536)[VNET_HDR:]
        print("ready", flush=True)
        return 0 if wait_for(read, sys.argv[3], float(sys.argv[4])) else 1
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x88b5))
    s.bind((target, 0))
    if cmd == "send-if":
        src = open(f"/sys/class/net/{target}/address").read().strip()
        s.send(frame(sys.argv[3], src, sys.argv[4]))
        return 0

    def read_if(left):
        s.settimeout(max(left, 0.001))
        try:
            return s.recv(65536)
        except socket.timeout:
            return None
    print("ready", flush=True)
    return 0 if wait_for(read_if, sys.argv[3], float(sys.argv[4])) else 1


if __name__ == "__main__":
    sys.exit(main())
