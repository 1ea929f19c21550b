#!/bin/bash
# 78-datapath-vfio-idle: an idle datapath leaves its CPU. The vfio port
# gives its receive queue an MSI-X vector (VFIO_DEVICE_SET_IRQS with an
# eventfd, queue_msix_vector) and the worker, whose queues (vfio, tap) can
# all interrupt, sleeps on them after its idle rounds instead of polling:
# over 4 s with no traffic the process uses well under a quarter of that
# in CPU time (a polling worker uses all it gets), and its sleeps counter
# grows. Frames then still cross both ways by content, woken by the
# device's interrupt (vfio -> tap) and the tap's fd (tap -> vfio), and the
# worker goes back to sleep after them.
# What proves the interrupt: the device's vfio-msix line in
# /proc/interrupts grows by at least one for each of NIC_FRAMES frames
# sent from the peer, each after a pause in which the worker went back to
# sleep (a sleep that times out re-arms and sleeps on, never polling with
# interrupts off; a timer that carried a frame would leave it uncounted).
# A frame can be taken without an interrupt only while the worker is
# awake after another wake: a NIC wake raised an interrupt of its own
# (the count still holds), and the tap's only traffic is the test's
# (IPv6 off on it, so the kernel's router solicitations and MLD reports
# do not wake the worker). So this holds every time, and fails if the
# device raises no MSI-X or the worker is not armed when asleep.
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

trap 'dp_vfio_cleanup $?' EXIT
trap 'exit 143' TERM

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
    s0=$(json_get workers.0.sleeps <<<"$(dp_stats)")
    c0=$(cpu_ticks)
    sleep 4
    c1=$(cpu_ticks)
    s1=$(json_get workers.0.sleeps <<<"$(dp_stats)")
    used=$(awk -v t=$((c1 - c0)) -v h="$TCK" 'BEGIN { printf "%.2f", t / h }')
    info "$1: ${used} s of CPU in 4 s, $((s1 - s0)) sleeps"
    awk -v u="$used" 'BEGIN { exit !(u < 1.0) }' || fail "$1: the idle datapath used ${used} s of CPU in 4 s (polling?)"
    ((s1 > s0)) || fail "$1: the worker's sleeps stayed at $s0"
}

dp_vfio_setup "$NET" "$PEER" "$TAP"
# before the datapath gives the tap its carrier, when IPv6 would start sending on it
[[ ! -e /proc/sys/net/ipv6/conf/$TAP/disable_ipv6 ]] || echo 1 >"/proc/sys/net/ipv6/conf/$TAP/disable_ipv6"
dp_vfio_run --port "vfio:$NET,mode=$VFIO_MODE" --port "tap:$TAP"
grep -q "MSI-X when idle" "$DP_DIR/dp.log" || fail "the vfio port did not take MSI-X: $(cat "$DP_DIR/dp.log")"
assert_eq "$(json_get workers.0.interrupt_mode <<<"$(dp_stats)")" true "the worker's interrupt mode"
idle_cpu "before traffic"

NIC_FRAMES=3
m0=$(msix_count)
for i in $(seq "$NIC_FRAMES"); do
    sleep 0.5 # past the worker's idle rounds after the last wake: asleep, armed
    frame_across "dpidle-from-nic-$i" "$PEER" "$TAP"
done
m1=$(msix_count)
((m1 - m0 >= NIC_FRAMES)) || fail "the device raised $((m1 - m0)) MSI-X interrupt(s) for $NIC_FRAMES frames ($m0 before, $m1 after; $(grep vfio-msix /proc/interrupts || echo 'no vfio-msix line'))"
info "$NIC_FRAMES frames from $PEER woke the worker through MSI-X ($m0 -> $m1 interrupts) and came out of the vfio port onto $TAP"
frame_across dpidle-from-tap "$TAP" "$PEER"
info "a frame written to $TAP woke the worker and left through the vfio port"
idle_cpu "after traffic"

s=$(dp_stats)
JSON=$s python3 - <<'PY' || fail "counters not as expected: $s"
import json, os
p = json.loads(os.environ["JSON"])["ports"]
assert p[0]["rx_packets"] >= 1 and p[1]["tx_packets"] >= 1, "nothing went vfio -> tap"
assert p[1]["rx_packets"] >= 1 and p[0]["tx_packets"] >= 1, "nothing went tap -> vfio"
q = p[0]["queues"][0]
assert not q["broken"] and q["broken_count"] == 0, q
PY

dp_vfio_stop
