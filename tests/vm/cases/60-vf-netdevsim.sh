#!/bin/bash
# 60-vf-netdevsim: iovctl vf on a netdevsim PF (3 VFs), through the kernel's
# rtnetlink: mac, vlan + qos + proto, spoofchk, trust, state and rates set on
# VF 0 and VF 1 and each read back with `ip -j link show` field by field (the
# other VFs untouched); a second identical set changes nothing; a rate given
# alone keeps the other; `iovctl vf list --json` agrees with `ip -j -s link`
# on every VF, stats included. Bad input (multicast or short MAC, VLAN 4096,
# QoS 8, VF index >= numvfs, unknown PF by name and by address, the NVMe PF
# that has no netdev) exits 2 or 1 with a clear message and `ip -j link`
# shows nothing changed. A write the
# driver refuses (netdevsim refuses rates in switchdev mode) is undone: the
# VLAN written before it is put back, and the MAC, written last, never is.
# netdevsim has no PCI device: the PF is named by its netdev.
# vm-timeout: 180
. "$(dirname "$0")/../lib.sh"
require_iovctl
require_cmd ip python3
load_netdevsim

ID=60
NSIM=/sys/bus/netdevsim/devices/netdevsim$ID
T=$(mktemp -d)
cleanup() {
    [[ -e $NSIM ]] && { printf '%s' "$ID" >/sys/bus/netdevsim/del_device; } 2>/dev/null
    rm -rf "$T"
    return 0
}
trap cleanup EXIT

sysfs_write /sys/bus/netdevsim/new_device "$ID 1"
netdev_ready() { local n; for n in "$NSIM"/net/*; do [[ -e $n ]] && return 0; done; return 1; }
wait_for 10 netdev_ready || fail "netdevsim$ID made no netdev"
for n in "$NSIM"/net/*; do DEV=${n##*/}; done
sysfs_write "$NSIM/sriov_numvfs" 3
info "PF netdev $DEV, $(<"$NSIM/sriov_numvfs") VFs"

check() { vf_check "$@"; }
get() { vf_check get "$@"; }
snap() { ip -j -s link show dev "$DEV" >"$T/$1.json"; }
# iovctl_rc WANT ARGS...: run iovctl, expect exit WANT; stdout in $T/out.json, stderr in $err
iovctl_rc() {
    local want=$1 rc=0
    shift
    "$IOVCTL" "$@" >"$T/out.json" 2>"$T/err" || rc=$?
    err=$(<"$T/err")
    [[ $rc == "$want" ]] || fail "iovctl $*: exit $rc, expected $want: $err $(head -c 300 "$T/out.json")"
}

# --- the untouched PF: vf list agrees with ip
snap base
iovctl_rc 0 vf list --json "$DEV"
check agree "$T/out.json" "$T/base.json"
assert_eq "$(get "$T/out.json" numvfs)" 3 "numvfs"
assert_eq "$(get "$T/out.json" vfs 0 address)/$(get "$T/out.json" vfs 0 net)" null/ \
    "netdevsim VFs have no PCI device and no netdev"
assert_eq "$(get "$T/out.json" address)" null "PF address (netdevsim is not PCI)"
check vf "$T/base.json" 0 mac=00:00:00:00:00:00 'vlans=[]' trust=false state=auto max_tx_rate=0

# --- VF 0: every setting at once, read back by ip field by field
iovctl_rc 0 vf set --json "$DEV" 0 mac 02:11:22:33:44:55 vlan 10 qos 3 proto 802.1ad spoofchk on trust on \
    state disable min_tx_rate 10 max_tx_rate 100
assert_eq "$(get "$T/out.json" changed_settings)" "mac,vlan,min_tx_rate,max_tx_rate,spoofchk,state,trust" "VF 0 changed"
assert_eq "$(get "$T/out.json" unverified_settings)" "" "VF 0 unverified"
snap s1
check vf "$T/s1.json" 0 mac=02:11:22:33:44:55 'vlans=[{"vlan": 10, "qos": 3, "proto": "802.1ad"}]' \
    spoofchk=true trust=true state=disable min_tx_rate=10 max_tx_rate=100
check same "$T/base.json" "$T/s1.json" 1 2
assert_eq "$(get "$T/out.json" settings mac)" 02:11:22:33:44:55 "reported mac"

# --- VF 1: other values, 802.1Q by default; trust off is already so
iovctl_rc 0 vf set --json "$DEV" 1 mac 02:aa:bb:cc:dd:01 vlan 4095 qos 7 spoofchk on trust off state enable \
    max_tx_rate 1000
assert_eq "$(get "$T/out.json" changed_settings)" "mac,vlan,max_tx_rate,spoofchk,state" "VF 1 changed"
snap s2
check vf "$T/s2.json" 1 mac=02:aa:bb:cc:dd:01 'vlans=[{"vlan": 4095, "qos": 7, "proto": "802.1Q"}]' \
    spoofchk=true trust=false state=enable min_tx_rate=0 max_tx_rate=1000
check same "$T/s1.json" "$T/s2.json" 0 2

# --- the same again: nothing to write
iovctl_rc 0 vf set "$DEV" 1 mac 02:aa:bb:cc:dd:01 vlan 4095 qos 7 spoofchk on trust off state enable max_tx_rate 1000
[[ $(<"$T/out.json") == *"already as asked"* ]] || fail "second identical set: $(<"$T/out.json")"

# --- a rate alone keeps the other; one that would cross it is refused
iovctl_rc 0 vf set --json "$DEV" 0 max_tx_rate 200
assert_eq "$(get "$T/out.json" changed_settings)" "max_tx_rate" "changed by max_tx_rate alone"
snap s3
check vf "$T/s3.json" 0 min_tx_rate=10 max_tx_rate=200
iovctl_rc 1 vf set "$DEV" 0 min_tx_rate 300
[[ $err == *"min_tx_rate 300 would be above max_tx_rate 200 (the current one)"* ]] || fail "crossing rates: $err"
snap s4
check same "$T/s3.json" "$T/s4.json"

# --- vlan 0 removes the VLAN; an all-zero MAC clears the admin MAC
iovctl_rc 0 vf set "$DEV" 0 vlan 0
iovctl_rc 0 vf set "$DEV" 1 mac 00:00:00:00:00:00
snap s5
check vf "$T/s5.json" 0 'vlans=[]' mac=02:11:22:33:44:55
check vf "$T/s5.json" 1 mac=00:00:00:00:00:00 'vlans=[{"vlan": 4095, "qos": 7, "proto": "802.1Q"}]'

# --- vf list agrees with ip -j -s link after all that; text output too
iovctl_rc 0 --json vf list "$DEV"
check agree "$T/out.json" "$T/s5.json"
iovctl_rc 0 vf list "$DEV"
[[ $(<"$T/out.json") == *"$DEV: 3 VFs"* && $(<"$T/out.json") == *"02:11:22:33:44:55"*disable* ]] ||
    fail "text list: $(<"$T/out.json")"

# --- bad input: exit 2 (malformed) or 1 (does not exist), nothing changed
snap before_bad
iovctl_rc 2 vf set "$DEV" 0 mac 01:00:5e:00:00:01
[[ $err == *"is a multicast address"* ]] || fail "multicast MAC: $err"
iovctl_rc 2 vf set "$DEV" 0 mac 02:00:00:00:00 trust off
[[ $err == *"'02:00:00:00:00' is not a MAC address"* ]] || fail "short MAC: $err"
iovctl_rc 2 vf set "$DEV" 0 vlan 4096
[[ $err == *"'4096' is not a VLAN ID (0 to 4095)"* ]] || fail "VLAN 4096: $err"
iovctl_rc 2 vf set "$DEV" 1 vlan 10 qos 8
[[ $err == *"'8' is not a QoS priority (0 to 7)"* ]] || fail "QoS 8: $err"
iovctl_rc 1 vf set "$DEV" 3 trust on
[[ $err == *"VF 3 does not exist: the PF has 3 VFs (0 to 2)"* ]] || fail "VF 3: $err"
iovctl_rc 1 --json vf set "$DEV" 7 mac 02:00:00:00:00:07
assert_eq "$(get "$T/out.json" error errno_name)" ERANGE "errno of VF 7"
iovctl_rc 1 vf set nosuch0 0 trust on
[[ $err == *"nosuch0: no such network interface"* ]] || fail "unknown PF: $err"
iovctl_rc 1 vf list 0000:7f:00.0
[[ $err == *"0000:7f:00.0"*"no such PCI device"* ]] || fail "unknown PF address: $err"
# a real PF without a network interface (the NVMe PF): no VF settings to reach
if [[ -e /sys/bus/pci/devices/$VM_NVME_PF_BDF/sriov_numvfs ]]; then
    iovctl_rc 1 vf list "$VM_NVME_PF_BDF"
    [[ $err == *"$VM_NVME_PF_BDF: the PF has no network interface (driver nvme)"* ]] || fail "NVMe PF: $err"
fi
snap after_bad
check same "$T/before_bad.json" "$T/after_bad.json"

# --- a refused write is undone: netdevsim refuses rates in switchdev mode
if command -v devlink >/dev/null && devlink dev eswitch set "netdevsim/netdevsim$ID" mode switchdev 2>"$T/dl"; then
    snap before_refusal
    iovctl_rc 1 --json vf set "$DEV" 2 mac 02:00:00:00:00:99 vlan 5 max_tx_rate 100 trust on
    assert_eq "$(get "$T/out.json" error errno_name)" EOPNOTSUPP "errno of the refused rate"
    assert_eq "$(get "$T/out.json" error failed_settings)" "min_tx_rate,max_tx_rate" "failed field"
    assert_eq "$(get "$T/out.json" error rolled_back)" true "rolled back"
    assert_eq "$(get "$T/out.json" error applied_settings)" "" "applied after the rollback"
    msg=$(get "$T/out.json" error message)
    [[ $msg == *"setting min_tx_rate 0 max_tx_rate 100: Operation not supported"*"put back vlan 0 qos 0 proto 802.1Q" &&
       $msg != *mac* ]] || fail "refusal message: $msg"
    snap after_refusal
    check same "$T/before_refusal.json" "$T/after_refusal.json"
    info "switchdev mode: the refused rate was undone, VLAN put back, MAC not written"
    devlink dev eswitch set "netdevsim/netdevsim$ID" mode legacy || fail "devlink back to legacy failed"
else
    info "switchdev mode unavailable ($(cat "$T/dl" 2>/dev/null)): rollback not exercised"
fi
