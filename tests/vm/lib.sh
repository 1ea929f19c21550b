# tests/vm/lib.sh — helpers for the kernel-real test cases tests/vm/cases/*.sh.
# Source it first thing in a case:
#     #!/bin/bash
#     . "$(dirname "$0")/../lib.sh"
# It sets `set -euo pipefail`, sources devices.env (VM_* addresses), defines
# REPO (repository root), IOVCTL (binary under test, default $REPO/build/iovctl),
# CASE_NAME, and skips the case unless it runs inside the test guest
# (IOVKIT_IN_VM=1; override with IOVKIT_VM_ALLOW_HOST=1 at your own risk: cases
# rebind real devices).
#
# Exit protocol (tests/vm/guest-run-tests): 0 pass, 77 skip, anything else
# fail. fail/skip also record their message in $IOVKIT_CASE_REASON_FILE so the
# harness can print `FAIL name: reason` / `SKIP name: reason`. An unexpected
# failing command (set -e) records "line N: COMMAND (exit S)".
# shellcheck shell=bash
set -euo pipefail
set -o errtrace

_vm_src=${BASH_SOURCE[0]}
[[ $_vm_src == */* ]] || _vm_src=./$_vm_src
VM_LIB_DIR=$(cd "${_vm_src%/*}" && pwd)
REPO=$(cd "$VM_LIB_DIR/../.." && pwd)
IOVCTL=${IOVCTL:-$REPO/build/iovctl}
# shellcheck disable=SC2034  # for the cases
CASE_NAME=${0##*/}; CASE_NAME=${CASE_NAME%.sh}
# shellcheck source=devices.env
. "$VM_LIB_DIR/devices.env"

_vm_reason() {  # record the first reason only
    if [[ -n ${IOVKIT_CASE_REASON_FILE:-} && ! -s ${IOVKIT_CASE_REASON_FILE} ]]; then
        printf '%s\n' "$*" >"$IOVKIT_CASE_REASON_FILE"
    fi
}
trap '_vm_reason "line $LINENO: $BASH_COMMAND (exit $?)"' ERR

# fail MSG...: the case fails with MSG.
fail() { echo "FAIL: $*" >&2; _vm_reason "$*"; exit 1; }
# skip MSG...: the case is skipped (exit 77) with MSG as the reason.
skip() { echo "SKIP: $*" >&2; _vm_reason "$*"; exit 77; }
# info MSG...: a note in the case's output (shown when it fails).
info() { echo "# $*" >&2; }

# assert_eq ACTUAL EXPECTED [WHAT]
assert_eq() {
    [[ $1 == "$2" ]] || fail "${3:-value}: expected '$2', got '$1'"
}
# assert_ne ACTUAL UNEXPECTED [WHAT]
assert_ne() {
    [[ $1 != "$2" ]] || fail "${3:-value}: must not be '$2'"
}
# assert_exists PATH [WHAT]
assert_exists() {
    [[ -e $1 || -L $1 ]] || fail "${2:-$1}: $1 does not exist"
}

# The helpers below avoid exec'ing programs: every exec reads the binary over
# 9p and costs ~0.1-0.3 s under TCG; a bash subshell costs ~10 ms.

# sysfs_driver BDF: name of the bound driver, empty if none.
sysfs_driver() {
    local l=/sys/bus/pci/devices/$1/driver
    if [[ -L $l ]]; then (cd -P "$l" 2>/dev/null && echo "${PWD##*/}"); fi
    return 0
}
# iommu_group BDF: the device's IOMMU group number, empty if none.
iommu_group() {
    local l=/sys/bus/pci/devices/$1/iommu_group
    if [[ -L $l ]]; then (cd -P "$l" 2>/dev/null && echo "${PWD##*/}"); fi
    return 0
}
# group_devices GROUP: the BDFs in an IOMMU group, sorted, space-separated.
group_devices() {
    local d out=()
    for d in /sys/kernel/iommu_groups/"$1"/devices/*; do
        [[ -e $d ]] && out+=("${d##*/}")
    done
    echo "${out[*]}"    # glob order: BDFs are fixed-width, so sorted
}
# netdev_of BDF: the network interface(s) of a PCI device (also via virtio).
netdev_of() {
    local n
    for n in /sys/bus/pci/devices/"$1"/net/* /sys/bus/pci/devices/"$1"/virtio*/net/*; do
        [[ -e $n ]] && echo "${n##*/}"
    done
    return 0
}
# netdev_by_mac MAC: the interface with that MAC, empty if none.
netdev_by_mac() {
    local n
    for n in /sys/class/net/*; do
        # not bonding_masters, a file where built-in bonding is
        [[ -r $n/address && $(<"$n/address") == "$1" ]] && { echo "${n##*/}"; return 0; }
    done
    return 0
}

# sysfs_write PATH VALUE: write VALUE (no newline added) in one write(2);
# fails the case with the kernel's error message if the write fails.
sysfs_write() {
    local e
    if ! e=$( { printf '%s' "$2" >"$1"; } 2>&1 ); then
        fail "write '$2' to $1 failed: ${e##*: }"
    fi
}

# wait_for SECONDS COMMAND...: poll COMMAND every 0.1 s until it succeeds;
# returns 1 on timeout.
wait_for() {
    local limit=$1; shift
    local end=$(( ${EPOCHREALTIME/./} + limit * 1000000 ))
    until "$@"; do
        (( ${EPOCHREALTIME/./} < end )) || return 1
        sleep 0.1
    done
}

# frame_across MARK FROM TO: a frame carrying MARK sent on interface FROM is
# read on interface TO (tests/vm/frame.py), else the case fails. Sent again
# each second, up to 20 times: the first may meet a port not up yet.
frame_across() {
    local mark=$1 from=$2 to=$3 rx out
    out=$(mktemp)
    python3 "$REPO/tests/vm/frame.py" recv-if "$to" "$mark" 20 >"$out" &
    rx=$!
    wait_for 10 grep -q ready "$out" || { rm -f "$out"; fail "receiver on $to did not start"; }
    rm -f "$out"
    for _ in $(seq 20); do
        python3 "$REPO/tests/vm/frame.py" send-if "$from" ff:ff:ff:ff:ff:ff "$mark"
        kill -0 "$rx" 2>/dev/null || break
        sleep 1
    done
    wait "$rx" || fail "frame $mark sent on $from never reached $to"
}

# now_ms: wall clock in milliseconds (bash builtin, no fork).
now_ms() { echo $(( ${EPOCHREALTIME/./} / 1000 )); }

# json_get KEYPATH < JSON: print the value at KEYPATH ("a.b.0.c"; integers index
# lists). Strings print raw, other values as JSON. Exit 1 if absent.
json_get() {
    python3 -S -c '
import json, sys
v = json.load(sys.stdin)
for k in [k for k in sys.argv[1].split(".") if k]:
    try:
        v = v[int(k)] if isinstance(v, list) else v[k]
    except (KeyError, IndexError, ValueError, TypeError):
        sys.exit("json_get: no key %r in path %r" % (k, sys.argv[1]))
print(v if isinstance(v, str) else json.dumps(v))
' "$1"
}

# require_iovctl: skip the case when the binary under test is not built.
require_iovctl() {
    [[ -x $IOVCTL ]] || skip "$IOVCTL not built (run make first)"
}

# run_iovctl WANT_RC ARGS...: run iovctl, its stdout in $out and stderr in
# $err; fails the case unless it exits with WANT_RC.
run_iovctl() {
    local want=$1 rc=0 e
    shift
    e=$(mktemp)
    out=$("$IOVCTL" "$@" 2>"$e") || rc=$?
    err=$(<"$e")
    rm -f "$e"
    [[ $rc == "$want" ]] || fail "iovctl $*: exit $rc, wanted $want; stderr: $err; stdout: $out"
}
# vf_check CMD ARGS...: tests/vm/vf-check.py, the VF cases' field-by-field
# comparisons (`ip -j link` against expected values, against an earlier
# snapshot, `iovctl vf list --json` against ip and sysfs; `get` prints a
# value); fails the case when a check fails.
vf_check() {
    python3 -S "$VM_LIB_DIR/vf-check.py" "$@" || fail "vf_check $1 failed (see above)"
}
# require_cmd CMD...: skip unless each command exists.
require_cmd() {
    local c
    for c in "$@"; do command -v "$c" >/dev/null || skip "needs $c"; done
}

# require_vfio_mode: the VFIO mode this run of the case tests, from
# IOVKIT_VFIO_MODE (set by guest-run-tests for cases with a
# `# vm-vfio-modes: container iommufd` line; default container), in VFIO_MODE,
# and VFIO_MODE_ARGS=(--mode MODE) for iovctl vfio. Skips the case when the
# kernel lacks the mode (iommufd: no /dev/iommu, e.g. Debian's 6.1).
require_vfio_mode() {
    VFIO_MODE=${IOVKIT_VFIO_MODE:-container}
    case $VFIO_MODE in
        container) ;;
        iommufd)
            [[ -e /dev/iommu ]] || skip "VFIO mode iommufd: no /dev/iommu (kernel $(uname -r) is built without CONFIG_IOMMUFD; tests/vm/run-tests --kernel iommufd boots one with it)" ;;
        *) fail "unknown IOVKIT_VFIO_MODE '$VFIO_MODE' (container, iommufd)" ;;
    esac
    # shellcheck disable=SC2034  # for the cases
    VFIO_MODE_ARGS=(--mode "$VFIO_MODE")
    info "VFIO mode $VFIO_MODE, kernel $(uname -r)"
}

# load_netdevsim: load the out-of-tree netdevsim.ko built by
# tests/vm/build-netdevsim (after psample); skip the case when it is not built.
# Nothing to do on a kernel with netdevsim built in (tests/vm/build-kernel).
load_netdevsim() {
    [[ -d /sys/bus/netdevsim ]] && return 0
    local ko
    ko=${IOVKIT_VM_CACHE:-/var/cache/iovkit-vm}/$(uname -r)/netdevsim/netdevsim.ko
    [[ -r $ko ]] || skip "netdevsim not built (run tests/vm/build-netdevsim)"
    modprobe psample || fail "modprobe psample failed"
    insmod "$ko" || fail "insmod $ko failed"
}

# driver_override BDF: the device's driver_override, empty when unset.
driver_override() {
    local o
    o=$(<"/sys/bus/pci/devices/$1/driver_override")
    [[ $o == "(null)" ]] && o=
    echo "$o"
}

# ---- iovd on a private bus (the iovd cases) ----
# require_iovd: skip the case unless iovd ($IOVD, default $REPO/build/iovd),
# dbus-daemon and busctl are there.
require_iovd() {
    IOVD=${IOVD:-$REPO/build/iovd}
    [[ -x $IOVD ]] || skip "$IOVD not built (run make)"
    require_cmd dbus-daemon busctl python3
}
# iovd_bus_start DIR: a private dbus-daemon with the system bus's default
# policy plus iovd's policy file (as tests/daemon), on the socket DIR/bus;
# sets IOVD_DIR=DIR, IOVD_BUS (the address) and IOVD_BUS_PID.
iovd_bus_start() {
    IOVD_DIR=$1
    IOVD_BUS=unix:path=$1/bus
    python3 -c 'import sys; sys.path.insert(0, sys.argv[2]); import iovdtest
print(iovdtest.bus_conf(sys.argv[1], iovdtest.POLICY))' "$1/bus" "$REPO/tests/daemon" \
        >"$1/bus.conf"
    dbus-daemon --nofork --nopidfile --config-file="$1/bus.conf" >"$1/bus.log" 2>&1 &
    IOVD_BUS_PID=$!
    wait_for 10 test -S "$1/bus" || fail "dbus-daemon did not start: $(<"$1/bus.log")"
}
# iovd_start [OPTION...]: iovd on that bus with $IOVD_DIR/iovd.json and the
# state directory $IOVD_DIR/state, output appended to $IOVD_DIR/iovd.log;
# waits until it answers; sets IOVD_PID.
iovd_start() {
    "$IOVD" "$@" --bus-address "$IOVD_BUS" --config "$IOVD_DIR/iovd.json" --state-dir "$IOVD_DIR/state" \
        >>"$IOVD_DIR/iovd.log" 2>&1 &
    IOVD_PID=$!
    wait_for 20 busctl --address="$IOVD_BUS" call org.iovkit.iovd1 /org/iovkit/iovd1 org.iovkit.iovd1.Manager \
        ListPools >/dev/null 2>&1 || fail "iovd did not come up"
}
# iovd_call METHOD SIG ARGS...: busctl call on iovd's Manager; the reply in
# $out, the exit status in $rc, stderr in $err.
iovd_call() {
    rc=0
    out=$(busctl --address="$IOVD_BUS" call org.iovkit.iovd1 /org/iovkit/iovd1 org.iovkit.iovd1.Manager "$@" \
        2>"$IOVD_DIR/err") || rc=$?
    err=$(<"$IOVD_DIR/err")
}
# iovd_must_call METHOD SIG ARGS...: iovd_call; fails the case unless it succeeds.
iovd_must_call() { iovd_call "$@"; ((rc == 0)) || fail "busctl call $*: $err"; }
# iovd_property PROPERTY [ALLOCATION]: a property of iovd's Manager, or of an
# allocation (its path), as busctl prints it; fails the case if it cannot be read.
iovd_property() {
    local v
    if [[ -n ${2:-} ]]; then
        v=$(busctl --address="$IOVD_BUS" get-property org.iovkit.iovd1 "$2" org.iovkit.iovd1.Allocation "$1" 2>&1)
    else
        v=$(busctl --address="$IOVD_BUS" get-property org.iovkit.iovd1 /org/iovkit/iovd1 \
            org.iovkit.iovd1.Manager "$1" 2>&1)
    fi || fail "property $1 of ${2:-iovd}: $v"
    echo "$v"
}
# IOVD_COMMIT_CALLS on IOVD_COMMIT_PATHS: the system calls that make a commit
# durable (daemon/journal.c): a record's pwrite64 into the state directory's
# allocations.journal, or, at a checkpoint (the first commit into a new state
# directory among them), the rename of allocations.json.
IOVD_COMMIT_CALLS=renameat,renameat2,pwrite64
iovd_commit_paths() { echo "$IOVD_DIR/state" "$IOVD_DIR/state/allocations.journal"; }
# iovd_strace INJECT CALLS PATH...: from now until iovd_strace_stop, strace
# makes iovd's CALLS on any PATH (or on a descriptor open on one) do INJECT
# (signal=KILL, error=EROFS) as they enter, before they do anything; sets
# STRACE_PID.
iovd_strace() {
    local inject=$1 calls=$2 p args=()
    shift 2
    for p; do args+=(-P "$p"); done
    strace -qq -o /dev/null -f -p "$IOVD_PID" "${args[@]}" -e trace="$calls" -e inject="$calls:$inject" &
    STRACE_PID=$!
    _iovd_traced() {
        local t
        for t in /proc/"$IOVD_PID"/task/*/status; do grep -q $'^TracerPid:\t[1-9]' "$t" || return 1; done
    }
    wait_for 20 _iovd_traced || fail "strace did not attach to iovd"
}
iovd_strace_stop() {
    kill "$STRACE_PID" 2>/dev/null || true
    wait "$STRACE_PID" 2>/dev/null || true
    STRACE_PID=
}
# iovd_crash: kill -9 iovd, as a crash would.
iovd_crash() {
    kill -9 "$IOVD_PID"
    wait "$IOVD_PID" 2>/dev/null || true
    IOVD_PID=
}
# iovd_stop: SIGTERM; fails the case unless iovd exits with 0.
iovd_stop() {
    local s=0
    kill "$IOVD_PID"
    wait "$IOVD_PID" || s=$?
    IOVD_PID=
    ((s == 0)) || fail "iovd exited with $s"
}
# iovd_teardown RC: for a case's EXIT trap: kills iovd and the bus, and shows
# iovd's log when RC (the case's exit status) is not 0.
iovd_teardown() {
    [[ -z ${STRACE_PID:-} ]] || kill "$STRACE_PID" 2>/dev/null || true
    [[ -z ${IOVD_PID:-} ]] || kill -9 "$IOVD_PID" 2>/dev/null || true
    [[ -z ${IOVD_BUS_PID:-} ]] || kill "$IOVD_BUS_PID" 2>/dev/null || true
    if (($1 != 0)) && [[ -e ${IOVD_DIR:-}/iovd.log ]]; then
        echo "--- iovd's log:" >&2
        cat "$IOVD_DIR/iovd.log" >&2
    fi
    return 0
}

# ---- the failover cases (84, 85): one igb VF for iovd ----
# failover_igb_start DIR: one VF of the igb PF, made with autoprobe off (igb
# resets the PF while it enables SR-IOV, and a VF igbvf probes then never
# gets link until probed again: iovd binds igbvf afterwards), the PF up (igb
# serves its VFs' mailbox and link only then), a private bus and iovd with
# the pool "igb" of driver kernel; sets PF, PFN, VF, FO_DIR. Skips without
# the igb PF (QEMU before 8.0).
failover_igb_start() {
    PF=$VM_IGB_BDF FO_DIR=$1
    local p=/sys/bus/pci/devices/$PF l
    [[ -e $p/sriov_numvfs ]] || skip "no igb PF at $PF: QEMU before 8.0 has no -device igb"
    FO_AP0=$(<"$p/sriov_drivers_autoprobe")
    PFN=$(netdev_of "$PF")
    l=$("$IOVCTL" sriov set "$PF" --numvfs 1 --no-autoprobe 2>&1) || fail "sriov set 1: $l"
    l=$(readlink "$p/virtfn0") VF=${l##*/}
    ip link set dev "$PFN" up
    iovd_bus_start "$FO_DIR"
    printf '{ "pools": [ { "name": "igb", "pfs": ["%s"], "driver": "kernel" } ] }\n' "$PFN" >"$FO_DIR/iovd.json"
    iovd_start -v
}
# failover_igb_cleanup RC: the EXIT trap's part for failover_igb_start.
failover_igb_cleanup() {
    iovd_teardown "$1"
    [[ -n ${PF:-} && -n ${FO_AP0:-} ]] || return 0
    rm -rf /run/iovkit/iovd-allocated
    "$IOVCTL" sriov set "$PF" --numvfs 0 --force >/dev/null 2>&1 || true
    printf '%s' "$FO_AP0" >"/sys/bus/pci/devices/$PF/sriov_drivers_autoprobe" 2>/dev/null || true
    rm -rf "${FO_DIR:-}" "/run/iovkit/sriov-autoprobe/$PF"
    return 0
}

# ---- the datapath's vfio port against a tap (cases 76, 77, 78) ----
# dp_vfio_setup NET PEER TAP: NET (a virtio-net function) bound to vfio-pci,
# a tap device TAP up, the NIC PEER up (the state it had is kept for
# dp_vfio_cleanup); sets DP_DIR (a temporary directory) and DP_SOCK (the
# datapath's control socket in it). Set the EXIT trap first: a failure here
# is cleaned up too.
dp_vfio_setup() {
    DP_NET=$1 DP_PEER=$2 DP_TAP=$3 DP=
    DP_DIR=$(mktemp -d)
    DP_SOCK=$DP_DIR/dp.sock
    DP_PEER_WAS_UP=$(ip -o link show dev "$DP_PEER" | grep -c '[<,]UP[,>]' || true)
    run_iovctl 0 bind "$DP_NET" vfio-pci
    modprobe tun 2>/dev/null || true # built in on the iommufd kernel
    ip tuntap add dev "$DP_TAP" mode tap
    ip link set dev "$DP_TAP" up
    ip link set dev "$DP_PEER" up
}
# dp_stats: the running datapath's counters (iovctl datapath stats --json).
dp_stats() { "$IOVCTL" datapath stats --json --control "$DP_SOCK"; }
# dp_vfio_run PORT-ARGS...: `iovctl --verbose datapath run --json PORT-ARGS`
# in the background (pid in DP), its final counters in $DP_DIR/final.json,
# its log in $DP_DIR/dp.log; fails the case unless it answers within 30 s.
dp_vfio_run() {
    "$IOVCTL" --verbose datapath run --json "$@" --control "$DP_SOCK" >"$DP_DIR/final.json" 2>"$DP_DIR/dp.log" &
    DP=$!
    wait_for 30 dp_stats >/dev/null 2>&1 || fail "the datapath never answered on $DP_SOCK"
}
# dp_vfio_stop: SIGTERM; fails the case unless iovctl exits with 0.
dp_vfio_stop() {
    local rc=0
    kill -TERM "$DP"
    wait "$DP" || rc=$?
    DP=
    assert_eq "$rc" 0 "iovctl datapath run's exit status after SIGTERM"
}
# dp_vfio_cleanup RC: the EXIT trap's part for dp_vfio_setup: every interface
# as it was (later cases bind the device again, and iovctl refuses an
# interface that is up, and use the peer); the datapath's log when RC (the
# case's exit status) is not 0.
dp_vfio_cleanup() {
    if [[ -n ${DP:-} ]]; then kill -TERM "$DP" 2>/dev/null || true; wait "$DP" 2>/dev/null || true; fi
    (($1 == 0)) || sed 's/^/    dp: /' "${DP_DIR:-}/dp.log" 2>/dev/null || true
    [[ -z ${DP_TAP:-} ]] || ip link del "$DP_TAP" 2>/dev/null || true
    [[ -z ${DP_PEER:-} ]] || ((${DP_PEER_WAS_UP:-1})) || ip link set dev "$DP_PEER" down 2>/dev/null || true
    [[ -z ${DP_NET:-} ]] || "$IOVCTL" restore "$DP_NET" >/dev/null 2>&1 || true
    [[ -z ${DP_DIR:-} ]] || rm -rf "$DP_DIR"
    return 0
}

if [[ ${IOVKIT_IN_VM:-} != 1 && ${IOVKIT_VM_ALLOW_HOST:-} != 1 ]]; then
    skip "must run inside the test guest (tests/vm/run-tests or tests/vm/run)"
fi
