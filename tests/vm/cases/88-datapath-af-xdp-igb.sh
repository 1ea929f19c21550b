#!/bin/bash
# 88-datapath-af-xdp-igb: the datapath's af-xdp port on a real VF netdev: a VF
# of the emulated 82576 (igb, QEMU >= 8.0) on igbvf, which has no native XDP,
# so the port runs in copy mode over generic XDP. `iovctl datapath run --port
# tap:dpx0 --port af-xdp:VFNETDEV` forwards between a TAP device and the VF;
# frames cross both ways and are checked by content:
# - into the tap, out of the VF: igb switches them onto QEMU's hub, where the
#   virtio-net port VM_BOND_NET1 receives them (addressed to its MAC);
# - sent by VM_BOND_NET1 to the VF's MAC: igb hands them to the VF, the
#   AF_XDP socket takes them from igbvf's queue 0, the tap delivers them.
# The port's counters agree, its state is "copy", and SIGTERM detaches the
# XDP program from the VF's netdev.
#
# The VF is made with autoprobe off and its MAC set through the PF before
# igbvf probes it (igbvf takes the admin MAC then), spoofchk off so that the
# VF may send frames from the tap's addresses; the PF is up (igb serves its
# VFs' mailbox and link only then).
# vm-timeout: 150
. "$(dirname "$0")/../lib.sh"
require_iovctl
require_cmd ip python3 modprobe

PF=$VM_IGB_BDF
P=/sys/bus/pci/devices/$PF
[[ -e $P/sriov_numvfs ]] || skip "no igb PF at $PF: QEMU before 8.0 has no -device igb"
RXN=$(netdev_by_mac "$VM_BOND_NET1_MAC")
[[ -n $RXN ]] || fail "virtio-net port $VM_BOND_NET1_MAC not found"
PFN=$(netdev_of "$PF")
ap0=$(<"$P/sriov_drivers_autoprobe")
pf_up0=$(( $(<"/sys/class/net/$PFN/flags") & 1 ))
VFMAC=02:00:00:00:88:01
T=$(mktemp -d)
DP=

cleanup() {
    [[ -n $DP ]] && kill -9 "$DP" 2>/dev/null
    ip link del dpx0 2>/dev/null || true
    "$IOVCTL" sriov set "$PF" --numvfs 0 --force >/dev/null 2>&1 || printf 0 >"$P/sriov_numvfs" 2>/dev/null || true
    printf '%s' "$ap0" >"$P/sriov_drivers_autoprobe" 2>/dev/null || true
    ((pf_up0)) || ip link set dev "$PFN" down 2>/dev/null || true
    rm -rf "$T" "/run/iovkit/sriov-autoprobe/$PF"
    return 0
}
trap cleanup EXIT
trap 'exit 143' TERM

modprobe igbvf 2>"$T/modprobe" || skip "no igbvf driver for $(uname -r): $(<"$T/modprobe")"
modprobe tun 2>"$T/modprobe" || skip "no tun module for $(uname -r): $(<"$T/modprobe")"
ip link set dev "$PFN" up
run_iovctl 0 sriov set "$PF" --numvfs 1 --no-autoprobe
VF=$(basename "$(readlink "$P/virtfn0")")
pf_link_up() { [[ $(<"/sys/class/net/$PFN/operstate") == up ]]; }
wait_for 20 pf_link_up || fail "$PFN: no link within 20 s"
run_iovctl 0 vf set "$PF" 0 mac "$VFMAC" spoofchk off
run_iovctl 0 bind "$VF" igbvf
VFN=$(netdev_of "$VF")
[[ -n $VFN ]] || fail "$VF on igbvf has no netdev"
assert_eq "$(<"/sys/class/net/$VFN/address")" "$VFMAC" "the VF's MAC (its admin MAC)"
for n in "$VFN" "$RXN"; do
    echo 1 >"/proc/sys/net/ipv6/conf/$n/disable_ipv6"
    ip link set dev "$n" up
done
vf_up() { [[ $(<"/sys/class/net/$VFN/operstate") == up ]]; }
wait_for 20 vf_up || fail "$VFN: no link within 20 s"
ip tuntap add dpx0 mode tap
echo 1 >/proc/sys/net/ipv6/conf/dpx0/disable_ipv6
ip link set dev dpx0 up

"$IOVCTL" -v datapath run --control "$T/dp.sock" --json --port tap:dpx0 --port "af-xdp:$VFN" >"$T/final.json" 2>"$T/dp.log" &
DP=$!
dp_up() { [[ -S $T/dp.sock ]]; }
wait_for 30 dp_up || fail "the datapath did not start: $(<"$T/dp.log")"
grep -q "af-xdp:$VFN: queue 0 of $VFN, copy mode, generic XDP" "$T/dp.log" ||
    fail "the port is not in copy mode over generic XDP: $(<"$T/dp.log")"
ip -d link show dev "$VFN" | grep -q "xdpgeneric" || fail "no generic XDP program on $VFN: $(ip -d link show dev "$VFN")"

# N frames each way, checked by content; probes first: the VF's queue and the
# hub need a moment after the link comes up (a frame lost then is no fault)
python3 - "$RXN" "$VFMAC" "$VM_BOND_NET1_MAC" >"$T/frames.out" 2>&1 <<'PY' || fail "frames: $(<"$T/frames.out")"
import socket, sys, time
rxn, vfmac, rxmac = sys.argv[1], bytes.fromhex(sys.argv[2].replace(":", "")), bytes.fromhex(sys.argv[3].replace(":", ""))
ET, N = 0x88B5, 20
TAPMAC = bytes.fromhex("02000000880a")

def sock(dev):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ET))
    s.bind((dev, ET))
    s.settimeout(0.2)
    return s

def frames(dst, src, tag):
    return [dst + src + ET.to_bytes(2, "big") + f"iovkit-88-{tag}-{i:03d}-".encode() + bytes((i * 7 + k) & 0xFF for k in range(64))
            for i in range(N)]

def receive(s, want, seconds, tag):
    got, end = [], time.monotonic() + seconds
    while time.monotonic() < end and len(got) < want:
        try:
            data, addr = s.recvfrom(4096)
        except socket.timeout:
            continue
        if addr[2] != socket.PACKET_OUTGOING and f"iovkit-88-{tag}".encode() in data:
            got.append(data)
    return got

tap, rx = sock("dpx0"), sock(rxn)
for src_s, dst_s, dst, src, tag in ((tap, rx, rxmac, TAPMAC, "out"), (rx, tap, vfmac, rxmac, "in")):
    probe = dst + src + ET.to_bytes(2, "big") + f"iovkit-88-probe{tag}".encode().ljust(60, b".")
    deadline = time.monotonic() + 40
    while not receive(dst_s, 1, 0.5, f"probe{tag}"):
        if time.monotonic() > deadline:
            sys.exit(f"{tag}: no probe crossed in 40 s")
        src_s.send(probe)
    time.sleep(0.3)
    receive(dst_s, 1000, 0.3, f"probe{tag}")
    sent = frames(dst, src, tag)
    for f in sent:
        src_s.send(f)
    got = receive(dst_s, N, 20, tag)
    if sorted(got) != sorted(sent):
        sys.exit(f"{tag}: {len(got)} of {N} frames came as sent; first: {got[:1]!r}")
    print(f"{tag}: {N} of {N} frames by content")
PY
info "$(tr '\n' ' ' <"$T/frames.out")"

run_iovctl 0 datapath stats --json --control "$T/dp.sock"
printf '%s\n' "$out" >"$T/stats.json"
python3 - "$T/stats.json" "$VFN" <<'PY' || fail "counters: $(<"$T/stats.json")"
import json, sys
p = json.load(open(sys.argv[1]))["ports"]
tap, xdp = p
assert xdp["name"] == f"af-xdp:{sys.argv[2]}" and xdp["type"] == "af-xdp" and xdp["state"] == "copy", xdp
assert xdp["tx_packets"] >= 20 and tap["rx_packets"] >= 20, (tap, xdp)
assert xdp["rx_packets"] >= 20 and tap["tx_packets"] >= 20, (tap, xdp)
assert xdp["rx_errors"] == 0 and xdp["queues"][0]["ready"], xdp
PY
kill -TERM "$DP"
wait "$DP" || fail "datapath after SIGTERM: exit $?: $(<"$T/dp.log")"
DP=
json_get ports.1.tx_packets <"$T/final.json" >/dev/null || fail "no final counters: $(<"$T/final.json")"
! ip -d link show dev "$VFN" | grep -q xdp || fail "the XDP program outlived the datapath: $(ip -d link show dev "$VFN")"
