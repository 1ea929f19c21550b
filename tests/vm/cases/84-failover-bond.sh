#!/bin/bash
# 84-failover-bond: iovd's bond failover group for real, on a VF of the
# emulated 82576 (igb, QEMU >= 8.0) with igbvf and a virtio-net standby
# (VM_BOND_NET1), all on QEMU's internal hub; the receiver is VM_BOND_NET2
# in a namespace of its own.
#
# `iovctl alloc --failover bond` builds the active-backup bond (iovd makes
# it) with the VF active; a bounded UDP stream runs across it while
# `iovctl failover prepare` switches to the standby and `abort` switches
# back, each confirmed by the kernel (the bond's active slave read here),
# and the packets lost are counted; each reply's switch_confirmed_monotonic_usec,
# less its switch_usec, lies between this guest's CLOCK_MONOTONIC before the
# call and after the reply. iovd killed with SIGKILL between steps:
# after a prepare it comes back prepared; a kernel moved behind its back
# (the VF made active again while iovd was dead: a step cut before its
# commit) is rolled back at the start, and the log says so. complete
# releases the VF as Release does: the bond iovd made is gone, the VF is
# back on no driver. A destination's group (PrepareIncoming) starts on the
# standby and complete switches it to the VF.
#
# The VF is made with autoprobe off and igbvf is bound by iovd afterwards
# (lib.sh, failover_igb_start).
# vm-timeout: 150
. "$(dirname "$0")/../lib.sh"
require_iovctl
require_iovd
require_cmd ip python3

LINK=$REPO/build/tests/iovk-link
[[ -x $LINK ]] || skip "$LINK not built (run make)"
[[ -e /sys/bus/pci/devices/$VM_IGB_BDF ]] || skip "no igb PF at $VM_IGB_BDF: QEMU before 8.0 has no -device igb"
modprobe bonding max_bonds=0 2>/dev/null || skip "no bonding module in this guest kernel"
STBY=$(netdev_by_mac "$VM_BOND_NET1_MAC")
RXN=$(netdev_by_mac "$VM_BOND_NET2_MAC")
[[ -n $STBY && -n $RXN ]] || fail "virtio-net ports $VM_BOND_NET1_MAC/$VM_BOND_NET2_MAC not found"
T=$(mktemp -d)
NS=fo-rx

cleanup() {
    local rc=$?
    ip netns del "$NS" 2>/dev/null || true
    ip link del fobond0 2>/dev/null || true
    ip link del fobond1 2>/dev/null || true
    failover_igb_cleanup "$rc"
}
trap cleanup EXIT
# the harness's timeout sends TERM first: clean up and show iovd's log then too
trap 'exit 143' TERM

# active BOND: the bond's active slave as the kernel reports it (libiovkit's read of IFLA_BOND_ACTIVE_SLAVE)
active() { "$LINK" bond "$1" | json_get active; }
# step STEP OWNER [ARGS...]: iovctl failover STEP --json; $out holds the result
step() {
    local s=$1; shift
    run_iovctl 0 failover "$s" --json --bus-address "$IOVD_BUS" "$@"
}
# CLOCK_MONOTONIC in microseconds, the clock of iovd's switch_confirmed_monotonic_usec:
# /proc/timer_list's "now at N nsecs" is the kernel's ktime_get()
# (CLOCK_MONOTONIC), divided in bash: mawk's printf "%d" stops at 2^31 (35 min of uptime in us)
mono_usec() { local l; l=$(grep -m1 '^now at' /proc/timer_list); l=${l#now at }; echo $((${l%% *} / 1000)); }
# check_confirmed WHAT BEFORE AFTER: the switch in $out began after BEFORE (taken
# before the call) and the kernel confirmed it before AFTER (taken after the reply)
check_confirmed() {
    local confirmed sw
    confirmed=$(json_get failover_groups.0.switch_confirmed_monotonic_usec <<<"$out")
    sw=$(json_get failover_groups.0.switch_usec <<<"$out")
    [[ $confirmed =~ ^[0-9]+$ && $sw =~ ^[0-9]+$ ]] || fail "$1: no switch_confirmed_monotonic_usec/switch_usec in $out"
    ((confirmed - sw >= $2 && confirmed <= $3)) ||
        fail "$1: switch from $((confirmed - sw)) to $confirmed us (CLOCK_MONOTONIC) is not within the call, $2 to $3 us"
    info "$1: the kernel confirmed the switch $((confirmed - $2)) us after the call, the reply came $(($3 - confirmed)) us later"
}

failover_igb_start "$T"
ip link set dev "$STBY" up
ip netns add "$NS"
ip link set dev "$RXN" netns "$NS"
ip -n "$NS" addr add 10.99.0.2/24 dev "$RXN"
ip -n "$NS" link set dev "$RXN" up

# --- the group: iovd binds igbvf, makes fobond0 of the VF's netdev and the standby, the VF active
run_iovctl 0 alloc --json --bus-address "$IOVD_BUS" --failover bond --bond fobond0 --standby "$STBY" igb vm-1
assert_eq "$(json_get address <<<"$out")" "$VF" "VF of the failover allocation"
assert_eq "$(sysfs_driver "$VF")" igbvf "driver of $VF"
VFN=$(netdev_of "$VF")
[[ -n $VFN ]] || fail "$VF on igbvf has no netdev"
assert_eq "$(active fobond0)" "$VFN" "active slave after alloc"
# the bond iovd made notifies its peers after a switch, as the kernel's default bond does
assert_eq "$(ip -j -d link show dev fobond0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["linkinfo"]["info_data"]["num_peer_notif"])')" 1 \
    "fobond0's num_peer_notif"
step status vm-1
assert_eq "$(json_get failover_groups.0.failover_state <<<"$out")" active "state after alloc"
assert_eq "$(json_get failover_groups.0.standby <<<"$out")" "$STBY" "standby in FailoverState"
assert_eq "$(json_get failover_groups.0.active_slave <<<"$out")" "$VFN" "FailoverState's active slave"

ip addr add 10.99.0.1/24 dev fobond0
BMAC=$(<"/sys/class/net/fobond0/address")
# static neighbours: the stream measures the switch, not ARP
ip neigh replace 10.99.0.2 lladdr "$VM_BOND_NET2_MAC" dev fobond0
ip -n "$NS" neigh replace 10.99.0.1 lladdr "$BMAC" dev "$RXN"

# --- the stream: 200 packets/s for 5 s; prepare at ~1.5 s, abort at ~3.5 s
info "$(date +%T) the stream"
PPS=200 SECS=5
ip netns exec "$NS" python3 "$REPO/tests/vm/udp-stream.py" recv 10.99.0.2 5000 60 >"$T/rx.json" &
rx=$!
# python starts slowly over 9p under TCG: the stream begins once the receiver is bound
wait_for 20 grep -q ready "$T/rx.json" || fail "the receiver did not start"
python3 "$REPO/tests/vm/udp-stream.py" send 10.99.0.2 5000 $PPS $SECS >"$T/tx.json" &
tx=$!
wait_for 20 grep -q started "$T/tx.json" || fail "the sender did not start"
sleep 1.5
t0=$(mono_usec)
step prepare vm-1
t1=$(mono_usec)
assert_eq "$(json_get failover_state <<<"$out")" prepared "state after prepare"
check_confirmed prepare "$t0" "$t1"
prep_switch=$(json_get failover_groups.0.switch_usec <<<"$out") prep_usec=$(json_get usec <<<"$out")
# the reply's active slave is the one the switch's wait read from the kernel
assert_eq "$(json_get failover_groups.0.active_slave <<<"$out")" "$STBY" "the prepare reply's active slave"
assert_eq "$(active fobond0)" "$STBY" "active slave after prepare (the kernel's word)"
sleep 1.5
t0=$(mono_usec)
step abort vm-1
t1=$(mono_usec)
assert_eq "$(json_get failover_state <<<"$out")" active "state after abort"
check_confirmed abort "$t0" "$t1"
abort_switch=$(json_get failover_groups.0.switch_usec <<<"$out") abort_usec=$(json_get usec <<<"$out")
assert_eq "$(json_get failover_groups.0.active_slave <<<"$out")" "$VFN" "the abort reply's active slave"
assert_eq "$(active fobond0)" "$VFN" "active slave after abort"
wait "$tx" || fail "sender failed"
# the receiver runs until stopped (60 s bounds it: a TCG guest takes seconds
# for each step): then it reads what is in flight (until 1 s without a
# datagram) and counts; lost is the sender's count less what it got
kill "$rx" 2>/dev/null || true
wait "$rx" || fail "receiver failed"
sed -i 1d "$T/rx.json" "$T/tx.json"
sent=$(json_get sent <"$T/tx.json") got=$(json_get received <"$T/rx.json")
lost=$((sent - got))
info "stream: $sent sent, $got received, $lost lost over 2 switches; prepare ${prep_usec} us (switch ${prep_switch} us), abort ${abort_usec} us (switch ${abort_switch} us); missing: $(json_get missing <"$T/rx.json")"
((got > sent / 2)) || fail "the stream did not cross the bond: $got of $sent received"
# a planned switch loses nothing the kernel had queued; TCG may drop a datagram at a stall
((lost <= 4)) || fail "$lost of $sent packets lost over two planned switches"

info "$(date +%T) kill -9 steps"
# --- kill -9 after a prepare: the restart finds the group prepared, the standby active
step prepare vm-1
iovd_crash
iovd_start -v
assert_eq "$(active fobond0)" "$STBY" "active slave after kill -9 and restart"
step status vm-1
assert_eq "$(json_get failover_groups.0.failover_state <<<"$out")" prepared "state after the restart"
info "$(date +%T) a step cut before its commit"
# --- a step cut between the kernel and the disk: the VF made active while iovd is dead; the restart rolls back
iovd_crash
"$LINK" active fobond0 "$VFN" >/dev/null || fail "could not switch fobond0 by hand"
n=$(wc -l <"$T/iovd.log")
iovd_start -v
assert_eq "$(active fobond0)" "$STBY" "active slave after the rollback at start"
[[ $(tail -n "+$((n + 1))" "$T/iovd.log") == *"bond fobond0 had $VFN active, the state file says $STBY (prepared): an interrupted step, rolled back"* ]] ||
    fail "the restart did not say it rolled back: $(tail -n "+$((n + 1))" "$T/iovd.log")"

info "$(date +%T) complete"
# --- complete: the VF released as Release does; the bond iovd made goes, the standby is free
step complete vm-1
assert_eq "$(json_get failover_state <<<"$out")" released "state after complete"
[[ ! -e /sys/class/net/fobond0 ]] || fail "fobond0 outlived the group"
assert_eq "$(sysfs_driver "$VF")" "" "driver of $VF after complete (none, as before)"
iovd_must_call ListAllocations
assert_eq "$out" "a(osssisst) 0" "allocations after complete"
step complete vm-1
assert_eq "$(json_get n_groups <<<"$out")" 0 "complete again: nothing left"

info "$(date +%T) a destination"
# --- a destination: PrepareIncoming starts on the standby; complete switches to the VF
step incoming --failover bond --bond fobond1 --standby "$STBY" igb vm-2
assert_eq "$(json_get failover_state <<<"$out")" incoming "state after PrepareIncoming"
assert_eq "$(json_get address <<<"$out")" "$VF" "VF of PrepareIncoming"
VFN=$(netdev_of "$VF")
assert_eq "$(active fobond1)" "$STBY" "active slave of a destination before complete"
step complete vm-2
assert_eq "$(json_get failover_state <<<"$out")" active "state of the destination after complete"
assert_eq "$(active fobond1)" "$VFN" "active slave of the destination after complete"
iovd_must_call ReleaseOwner s vm-2
[[ ! -e /sys/class/net/fobond1 ]] || fail "fobond1 outlived ReleaseOwner"
iovd_stop
out=$("$IOVCTL" sriov set "$PF" --numvfs 0 2>&1) || fail "sriov set 0: $out"
