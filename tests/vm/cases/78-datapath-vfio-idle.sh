#!/bin/bash
# 78-datapath-vfio-idle: an idle datapath leaves its CPU. The vfio port
# gives its receive queue an MSI-X vector (VFIO_DEVICE_SET_IRQS with an
# eventfd, queue_msix_vector) and the worker, whose queues (vfio, tap) can
# all interrupt, sleeps on them after its idle rounds instead of polling:
# over 4 s with no traffic the process uses well under a quarter of that
# in CPU time (a polling worker uses all it gets), and its sleeps counter
# grows. Frames then still cross both ways by content, woken by the
# device's interrupt (vfio -> tap: the device's vfio-msix line in
# /proc/interrupts must grow, or the 100 ms sleep bound alone could have
# carried the frame) and the tap's fd (tap -> vfio), and the worker goes
# back to sleep after them.
# vm-timeout: 150
# vm-vfio-modes: container iommufd
. "$(dirname "$0")/../lib.sh"
require_iovctl
require_vfio_mode
require_cmd ip python3 getconf

NET=$VM_VFIO_NET_BDF
PEER=$(netdev_by_mac "$VM_BOND_NET1_MAC")
[[ -n $PEER ]] || fail "virtio-net port $VM_BOND_NET1_MAC not found"
TAP=dpidle0
T=$(mktemp -d)
SOCK=$T/dp.sock
DP=
peer_was_up=$(ip -o link show dev "$PEER" | grep -c '[<,]UP[,>]' || true)

cleanup() {
    local rc=$?
    if [[ -n $DP ]]; then kill -TERM "$DP" 2>/dev/null || true; wait "$DP" 2>/dev/null || true; fi
    ((rc == 0)) || sed 's/^/    dp: /' "$T/dp.log" 2>/dev/null || true
    ip link del "$TAP" 2>/dev/null || true
    ((peer_was_up)) || ip link set dev "$PEER" down 2>/dev/null || true
    "$IOVCTL" restore "$NET" >/dev/null 2>&1 || true
    rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 143' TERM

stats() { "$IOVCTL" datapath stats --json --control "$SOCK"; }
# the process's CPU time (user + system) in clock ticks
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$DP/stat"; }
TCK=$(getconf CLK_TCK)
# the guest kernel's count of $NET's vfio-pci MSI-X interrupts, all CPUs
# (vfio_pci_intrs.c names each "vfio-msix[N](BDF)" in /proc/interrupts)
msix_count() {
    awk -v dev="($NET)" 'index($0, "vfio-msix[") && index($0, dev) {
        for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) n += $i } END { print n + 0 }' /proc/interrupts
}

# idle_cpu WHAT: over 4 s the process takes under 1 s of CPU and sleeps
idle_cpu() {
    local c0 c1 s0 s1 used
    sleep 1
    s0=$(json_get workers.0.sleeps <<<"$(stats)")
    c0=$(cpu_ticks)
    sleep 4
    c1=$(cpu_ticks)
    s1=$(json_get workers.0.sleeps <<<"$(stats)")
    used=$(awk -v t=$((c1 - c0)) -v h="$TCK" 'BEGIN { printf "%.2f", t / h }')
    info "$1: ${used} s of CPU in 4 s, $((s1 - s0)) sleeps"
    awk -v u="$used" 'BEGIN { exit !(u < 1.0) }' || fail "$1: the idle datapath used ${used} s of CPU in 4 s (polling?)"
    ((s1 > s0)) || fail "$1: the worker's sleeps stayed at $s0"
}

run_iovctl 0 bind "$NET" vfio-pci
modprobe tun 2>/dev/null || true
ip tuntap add dev "$TAP" mode tap
ip link set dev "$TAP" up
ip link set dev "$PEER" up

"$IOVCTL" --verbose datapath run --json --port "vfio:$NET,mode=$VFIO_MODE" --port "tap:$TAP" --control "$SOCK" \
    >"$T/final.json" 2>"$T/dp.log" &
DP=$!
wait_for 30 stats >/dev/null 2>&1 || fail "the datapath never answered on $SOCK"
grep -q "MSI-X when idle" "$T/dp.log" || fail "the vfio port did not take MSI-X: $(cat "$T/dp.log")"
assert_eq "$(json_get workers.0.interrupt_mode <<<"$(stats)")" true "the worker's interrupt mode"
idle_cpu "before traffic"

m0=$(msix_count)
frame_across dpidle-from-nic "$PEER" "$TAP"
m1=$(msix_count)
# the sleeps alone would also end at their 100 ms bound: the device's own interrupt must have come
((m1 > m0)) || fail "the device raised no MSI-X interrupt for the frame ($m0 before, $m1 after; $(grep vfio-msix /proc/interrupts || echo 'no vfio-msix line'))"
info "a frame from $PEER woke the worker through MSI-X ($m0 -> $m1 interrupts) and came out of the vfio port onto $TAP"
frame_across dpidle-from-tap "$TAP" "$PEER"
info "a frame written to $TAP woke the worker and left through the vfio port"
idle_cpu "after traffic"

s=$(stats)
JSON=$s python3 - <<'PY' || fail "counters not as expected: $s"
import json, os
p = json.loads(os.environ["JSON"])["ports"]
assert p[0]["rx_packets"] >= 1 and p[1]["tx_packets"] >= 1, "nothing went vfio -> tap"
assert p[1]["rx_packets"] >= 1 and p[0]["tx_packets"] >= 1, "nothing went tap -> vfio"
q = p[0]["queues"][0]
assert not q["broken"] and q["broken_count"] == 0, q
PY

kill -TERM "$DP"
rc=0
wait "$DP" || rc=$?
DP=
assert_eq "$rc" 0 "iovctl datapath run's exit status after SIGTERM"
