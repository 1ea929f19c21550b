#!/bin/bash
# 87-demo-failover-bond: the guest part of tools/demo's live migration,
# tools/demo-failover-bond, run as the demo runs it, so it cannot rot: it
# must exit 0 (it checks, against the kernel, that the bond's active slave
# is the VF after alloc and the standby after prepare, that a UDP stream
# left through the VF before the switch and through the standby only after
# it, that at most 3 of the datagrams the sender counted were lost and one
# sent after prepare returned was received, and that complete deleted the bond and put the
# VF back on no driver), and print its one line a step with the timing
# iovd's replies gave.
# vm-timeout: 150
. "$(dirname "$0")/../lib.sh"
[[ -e /sys/bus/pci/devices/$VM_IGB_BDF ]] || skip "no igb PF at $VM_IGB_BDF: QEMU before 8.0 has no -device igb"
rc=0
out=$("$REPO/tools/demo-failover-bond" 2>&1) || rc=$?
printf '%s\n' "$out" | sed 's/^/  demo| /' >&2
((rc != 77)) || skip "tools/demo-failover-bond skipped: $(grep -m1 '^SKIP' <<<"$out")"
((rc == 0)) || fail "tools/demo-failover-bond exited with $rc: $(grep -m1 '^FAIL' <<<"$out")"
# one line a step, each with what the demo promises (README, "Two commands")
for want in \
    '^alloc --failover bond --bond demobond0 --standby [a-z0-9]+ igb vm-demo: VF [0-9a-f:.]+ \(igbvf, [a-z0-9]+\); active slave \(kernel\): [a-z0-9]+$' \
    '^traffic: UDP to 10\.98\.0\.2, 200 a second, through demobond0; in [0-9]+\.[0-9] ms the VF [a-z0-9]+ sent [1-9][0-9]* packets' \
    '^failover prepare -> prepared in [0-9]+\.[0-9] ms \(the switch [0-9]+\.[0-9] ms, on disk before the reply\); active slave \(kernel\): [a-z0-9]+$' \
    '^traffic on the standby: in [0-9]+\.[0-9] ms the standby [a-z0-9]+ sent [1-9][0-9]* packets, the VF [a-z0-9]+ 0$' \
    '^stream: [1-9][0-9]* datagrams sent, [0-9]+ received, [0-3] lost across the switch; the last received \(#[0-9]+\) left after the switch \(#[0-9]+ on\)$' \
    '^failover complete -> released in [0-9]+\.[0-9] ms: bond demobond0 deleted, VF [0-9a-f:.]+ back on no driver'; do
    grep -Eq "$want" <<<"$out" || fail "no line matching /$want/ in the demo's output"
done
