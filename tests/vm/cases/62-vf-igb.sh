#!/bin/bash
# 62-vf-igb: SR-IOV on real PCI VFs with their own netdevs: the emulated
# Intel 82576 (igb PF, igbvf VFs; QEMU >= 8.0), where 60-vf-netdevsim has a
# PF without PCI VFs. Proves, against sysfs and `ip -j -d link show PF` (the
# igb driver's own report):
# - `iovctl sriov set PF --numvfs 2` (autoprobe on, igbvf loaded) gives two
#   VFs on igbvf, and sriov set/show list each VF's netdev as its sysfs net/
#   has it; `--numvfs 0` removes VFs and netdevs, and the PF is as before
#   (address, MTU, up/down, promiscuity, no VFs reported, autoprobe).
# - `iovctl vf set PF 0 mac vlan qos spoofchk trust max_tx_rate` reads back in
#   ip field by field, `vf list --json` agrees with ip and with sysfs (VF
#   address, netdev, the MAC it uses); a QoS without VLAN (a priority tag)
#   and max_tx_rate = the link speed are taken too. igb applies every setting
#   it takes (its ndo_get_vf_config reports each), so nothing is ever
#   "ignored" or "unverified" here.
# - Admin MAC vs effective MAC: set while igbvf is bound, the admin MAC is
#   not the one the VF's netdev uses (vf list says so, sysfs agrees) until
#   igbvf re-initialises: after `iovctl unbind` + `iovctl bind VF igbvf` they
#   are equal, and VLAN, QoS, spoofchk, trust and rate survived.
# - igb reports a MAC that the VF chose itself as the VF's MAC: an untrusted
#   VF without an admin MAC changes its own MAC and igb reports that one; a
#   `vf set mac` with that same MAC is still written (the only way to make it
#   an admin MAC), and then the untrusted VF's own change is refused
#   (EADDRNOTAVAIL). A trusted VF may replace even an admin MAC, and igb then
#   reports the VF's choice; trust off, it may not.
# - What igb refuses: link state (no ndo_set_vf_link_state: EOPNOTSUPP),
#   min_tx_rate and max_tx_rate above the link speed (EINVAL), VLAN protocol
#   802.1ad (EPROTONOSUPPORT). Each error names the PF (netdev and address)
#   and the VF, the settings written before the refused one are put back, a
#   MAC asked with it is not written (the MAC goes last), and ip shows
#   nothing changed; the VF may still choose its own MAC (a MAC "put back"
#   would have made it an admin MAC).
#
# igb closes and reopens the PF when it enables SR-IOV, and igbvf probes the
# new VFs meanwhile: their mailbox handshake with the PF fails ("PF still in
# reset state") and they never get the PF's answers until igbvf
# re-initialises. So the PF is brought up (igb serves its VFs' mailbox only
# while up), and both VFs are rebound to igbvf once the PF's link is back.
# vm-timeout: 240
. "$(dirname "$0")/../lib.sh"
require_iovctl
require_cmd ip python3 modprobe

PF=$VM_IGB_BDF
P=/sys/bus/pci/devices/$PF
[[ -e $P ]] || skip "no igb PF at $PF: QEMU before 8.0 has no -device igb (tests/vm/run adds it only when QEMU offers it)"
[[ -e $P/sriov_numvfs ]] || skip "$PF has no sriov_numvfs"
assert_eq "$(sysfs_driver "$PF")" igb "driver of $PF"
assert_eq "$(<"$P/sriov_totalvfs")" 7 "sriov_totalvfs of $PF"
assert_eq "$(<"$P/sriov_numvfs")" 0 "sriov_numvfs of $PF at the start"
assert_eq "$(<"$P/sriov_drivers_autoprobe")" 1 "sriov_drivers_autoprobe of $PF at the start"
PFN=$(netdev_of "$PF")
assert_eq "$PFN" "$(netdev_by_mac "$VM_IGB_MAC")" "netdev of $PF"
pf_up0=$(( $(<"/sys/class/net/$PFN/flags") & 1 ))
igbvf0=$([[ -d /sys/module/igbvf ]] && echo 1 || echo 0)
T=$(mktemp -d)
VFS=()

cleanup() {
    printf 0 >"$P/sriov_numvfs" 2>/dev/null || true
    printf 1 >"$P/sriov_drivers_autoprobe" 2>/dev/null || true
    ((pf_up0)) || ip link set dev "$PFN" down 2>/dev/null || true
    ((igbvf0)) || modprobe -r igbvf 2>/dev/null || true
    rm -rf "$T" "${VFS[@]/#//run/iovkit/previous-driver/}"
    return 0
}
trap cleanup EXIT

modprobe igbvf 2>"$T/modprobe" || skip "no igbvf driver for $(uname -r): $(<"$T/modprobe")"
ip -j -d link show dev "$PFN" >"$T/pf0.json"
pf_before=$(vf_check pf "$T/pf0.json")

check() { vf_check "$@"; }
snap() { ip -j -s -d link show dev "$PFN" >"$T/$1.json"; }
save() { printf '%s\n' "$out" >"$T/$1.json"; }
# vf_netdev I: VF I's own netdev (names change when igbvf rebinds)
vf_netdev() {
    local n
    n=$(netdev_of "${VFS[$1]}")
    [[ -n $n && $n != *$'\n'* ]] || fail "VF $1 (${VFS[$1]}) should have one netdev, has '$n'"
    echo "$n"
}
mac_of() { cat "/sys/class/net/$1/address"; }
pf_link_up() { [[ $(<"/sys/class/net/$PFN/operstate") == up ]]; }
# reports_mac I MAC: igb reports MAC as VF I's
reports_mac() {
    ip -j link show dev "$PFN" >"$T/poll.json"
    python3 -S "$VM_LIB_DIR/vf-check.py" vf "$T/poll.json" "$1" "mac=$2" 2>/dev/null
}
rebind_igbvf() {
    run_iovctl 0 unbind "${VFS[$1]}"
    run_iovctl 0 bind "${VFS[$1]}" igbvf
    assert_eq "$(sysfs_driver "${VFS[$1]}")" igbvf "driver of ${VFS[$1]} after the rebind"
}
# vf_own_mac_change I MAC WANT_RC: from inside VF I, `ip link set address MAC`
vf_own_mac_change() {
    local n rc=0
    n=$(vf_netdev "$1")
    ip link set dev "$n" address "$2" 2>"$T/iperr" || rc=$?
    assert_eq "$rc" "$3" "exit status of ip link set $n (VF $1) address $2: $(<"$T/iperr")"
}

# --- 2 VFs, autoprobe on: igbvf takes them, their netdevs are listed as sysfs has them
ip link set dev "$PFN" up
wait_for 20 pf_link_up || fail "$PFN: no link within 20 s of ip link set up"
run_iovctl 0 sriov set --json "$PF" --numvfs 2
save sriov_set
assert_eq "$(json_get numvfs <<<"$out")/$(json_get changed <<<"$out")" 2/true "numvfs/changed"
for i in 0 1; do
    VFS+=("$(basename "$(readlink "$P/virtfn$i")")")
    assert_eq "$(sysfs_driver "${VFS[$i]}")" igbvf "driver of VF $i (${VFS[$i]}) with autoprobe on"
    vf_netdev "$i" >/dev/null
done
check sriov "$T/sriov_set.json"
run_iovctl 0 sriov show --json "$PF"
save sriov_show
check sriov "$T/sriov_show.json"
info "VFs ${VFS[*]} on igbvf, netdevs $(vf_netdev 0) $(vf_netdev 1)"

# --- rebind both VFs once the PF is back (see the top), and igb reports the
# MAC that each igbvf chose itself (no admin MAC) as the VF's MAC
wait_for 20 pf_link_up || fail "$PFN: link not back within 20 s after enabling SR-IOV"
for i in 0 1; do
    rebind_igbvf "$i"
    own=$(mac_of "$(vf_netdev "$i")")
    wait_for 10 reports_mac "$i" "$own" || fail "igb does not report VF $i's own MAC $own: $(<"$T/poll.json")"
done
snap base
check vf "$T/base.json" 0 'vlans=[]' spoofchk=true trust=false state=auto min_tx_rate=0 max_tx_rate=0
check vf "$T/base.json" 1 'vlans=[]' spoofchk=true trust=false state=auto min_tx_rate=0 max_tx_rate=0
run_iovctl 0 vf list --json "$PF"
save list0
check agree "$T/list0.json" "$T/base.json"

# --- an untrusted VF without admin MAC chooses its own MAC; igb reports it
vf_own_mac_change 1 02:00:00:00:62:71 0
assert_eq "$(mac_of "$(vf_netdev 1)")" 02:00:00:00:62:71 "VF 1's netdev MAC"
reports_mac 1 02:00:00:00:62:71 || fail "igb does not report VF 1's new MAC: $(<"$T/poll.json")"

# --- what igb refuses: a clear error, what was written before is put back,
# the MAC asked with it is not written, and ip shows nothing changed
snap before_refusals
run_iovctl 1 vf set --json "$PF" 1 mac 02:00:00:00:62:12 vlan 20 qos 1 spoofchk off state enable
save refused_state
assert_eq "$(json_get error.errno_name <<<"$out")" EOPNOTSUPP "errno of state enable"
assert_eq "$(json_get error.failed_settings <<<"$out")/$(json_get error.applied_settings <<<"$out")" '["state"]/[]' "failed/applied"
assert_eq "$(json_get error.rolled_back <<<"$out")" true "rolled back"
msg=$(json_get error.message <<<"$out")
[[ $msg == *"$PFN (PF $PF) VF 1: setting state enable: Operation not supported (the PF driver does not support this setting); put back spoofchk on; put back vlan 0 qos 0 proto 802.1Q" &&
   $msg != *mac* ]] || fail "state enable: $msg"
[[ $err == *"$msg"* ]] || fail "stderr and the JSON message differ: $err"

run_iovctl 1 vf set "$PF" 1 vlan 30 min_tx_rate 10
[[ $err == *"VF 1: setting min_tx_rate 10 max_tx_rate 0: Invalid argument (the PF driver does not take these rates"*"put back vlan 0 qos 0 proto 802.1Q" ]] ||
    fail "min_tx_rate: $err"
run_iovctl 1 vf set "$PF" 1 max_tx_rate 2000
[[ $err == *"VF 1: setting min_tx_rate 0 max_tx_rate 2000: Invalid argument (the PF driver does not take these rates"* &&
   $err != *"put back"* ]] || fail "max_tx_rate above the 1000 Mbit/s link: $err"
run_iovctl 1 --json vf set "$PF" 1 vlan 30 proto 802.1ad
assert_eq "$(json_get error.errno_name <<<"$out")" EPROTONOSUPPORT "errno of 802.1ad"
[[ $err == *"VF 1: setting vlan 30 qos 0 proto 802.1ad: Protocol not supported (the PF driver does not support this VLAN protocol)" ]] ||
    fail "802.1ad: $err"
snap after_refusals
check same "$T/before_refusals.json" "$T/after_refusals.json"
# nothing made VF 1's MAC an admin MAC: it still chooses its own
vf_own_mac_change 1 02:00:00:00:62:72 0
reports_mac 1 02:00:00:00:62:72 || fail "igb does not report VF 1's new MAC: $(<"$T/poll.json")"

# --- vf set mac with the MAC igb already reports (the VF's own choice) is
# written: now an admin MAC, the untrusted VF cannot change it
run_iovctl 0 vf set --json "$PF" 1 mac 02:00:00:00:62:72
assert_eq "$(json_get changed_settings <<<"$out")" '["mac"]' "changed by the MAC the VF already uses"
vf_own_mac_change 1 02:00:00:00:62:73 2
[[ $(<"$T/iperr") == *"Cannot assign requested address"* ]] || fail "untrusted VF 1's own MAC change: $(<"$T/iperr")"
assert_eq "$(mac_of "$(vf_netdev 1)")" 02:00:00:00:62:72 "VF 1's netdev MAC after the refused change"
reports_mac 1 02:00:00:00:62:72 || fail "igb reports another MAC for VF 1: $(<"$T/poll.json")"
run_iovctl 0 vf set "$PF" 1 spoofchk on trust off
[[ $out == *"VF 1: already as asked"* ]] || fail "spoofchk on trust off again: $out"

# --- VF 0: every setting igb takes, read back by ip field by field
snap s0
own0=$(mac_of "$(vf_netdev 0)")
run_iovctl 0 vf set --json "$PF" 0 mac 02:00:00:00:62:01 vlan 10 qos 2 spoofchk off trust on max_tx_rate 100
assert_eq "$(json_get changed_settings <<<"$out")" '["mac", "vlan", "max_tx_rate", "spoofchk", "trust"]' "VF 0 changed"
assert_eq "$(json_get unverified_settings <<<"$out")" '[]' "VF 0 unverified"
snap s1
check vf "$T/s1.json" 0 mac=02:00:00:00:62:01 'vlans=[{"vlan": 10, "qos": 2, "proto": "802.1Q"}]' \
    spoofchk=false trust=true state=auto min_tx_rate=0 max_tx_rate=100
check same "$T/s0.json" "$T/s1.json" 1

# --- admin vs effective MAC: igbvf still uses its own until it re-initialises
run_iovctl 0 vf list --json "$PF"
save list1
check agree "$T/list1.json" "$T/s1.json"
assert_eq "$(json_get vfs.0.effective_mac <<<"$out")" "$own0" "VF 0's effective MAC before the rebind"
assert_eq "$(json_get vfs.0.mac_differs <<<"$out")" true "mac_differs before the rebind"
run_iovctl 0 vf list "$PF"
[[ $out == *"VF 0: admin MAC 02:00:00:00:62:01 is not in use yet: its interface $(vf_netdev 0) uses $own0"* ]] ||
    fail "vf list does not say the admin MAC is not in use: $out"
rebind_igbvf 0
assert_eq "$(mac_of "$(vf_netdev 0)")" 02:00:00:00:62:01 "VF 0's netdev MAC after the rebind"
snap s2
run_iovctl 0 vf list --json "$PF"
save list2
check agree "$T/list2.json" "$T/s2.json"
assert_eq "$(json_get vfs.0.effective_mac <<<"$out")/$(json_get vfs.0.mac_differs <<<"$out")" \
    02:00:00:00:62:01/false "VF 0's effective MAC after the rebind"
check same "$T/s1.json" "$T/s2.json"

# --- a trusted VF replaces even its admin MAC (igb then reports the VF's); untrusted, it cannot
vf_own_mac_change 0 02:00:00:00:62:0f 0
# the VF's own change reaches the PF through igb's mailbox, after `ip` returns:
# poll, as for the MACs the VFs chose at probe (seen late once under TCG)
wait_for 10 reports_mac 0 02:00:00:00:62:0f ||
    fail "igb does not report trusted VF 0's own MAC: $(<"$T/poll.json")"
run_iovctl 0 vf set "$PF" 0 trust off
vf_own_mac_change 0 02:00:00:00:62:0e 2
reports_mac 0 02:00:00:00:62:0f || fail "igb reports another MAC for VF 0: $(<"$T/poll.json")"

# --- a priority tag (QoS without VLAN) and a rate at the link speed; then none
run_iovctl 0 vf set --json "$PF" 0 vlan 0 qos 3 max_tx_rate 1000
assert_eq "$(json_get changed_settings <<<"$out")/$(json_get unverified_settings <<<"$out")" '["vlan", "max_tx_rate"]/[]' "changed"
snap s3
check vf "$T/s3.json" 0 'vlans=[{"vlan": 0, "qos": 3, "proto": "802.1Q"}]' max_tx_rate=1000 spoofchk=false
run_iovctl 0 vf set "$PF" 0 vlan 0 max_tx_rate 0
snap s4
check vf "$T/s4.json" 0 'vlans=[]' max_tx_rate=0
run_iovctl 0 vf list --json "$PF"
save list4
check agree "$T/list4.json" "$T/s4.json"

# --- 0 VFs: VFs and their netdevs gone, the PF as it was
gone=("$(vf_netdev 0)" "$(vf_netdev 1)")
run_iovctl 0 sriov set --json "$PF" --numvfs 0
assert_eq "$(json_get numvfs <<<"$out")/$(json_get vfs <<<"$out")" "0/[]" "numvfs/vfs after --numvfs 0"
assert_eq "$(<"$P/sriov_numvfs")" 0 "sriov_numvfs after --numvfs 0"
for i in 0 1; do
    [[ ! -e $P/virtfn$i && ! -e /sys/bus/pci/devices/${VFS[$i]} ]] || fail "VF $i (${VFS[$i]}) still exists"
    [[ ! -e /sys/class/net/${gone[$i]} ]] || fail "VF $i's netdev ${gone[$i]} still exists"
    [[ ! -e /run/iovkit/previous-driver/${VFS[$i]} ]] || fail "record of VF $i's previous driver left"
done
run_iovctl 0 vf list --json "$PF"
assert_eq "$(json_get numvfs <<<"$out")/$(json_get vfs <<<"$out")" "0/[]" "vf list after --numvfs 0"
((pf_up0)) || ip link set dev "$PFN" down
ip -j -d link show dev "$PFN" >"$T/pf1.json"
assert_eq "$(vf_check pf "$T/pf1.json")" "$pf_before" "$PFN at the end"
assert_eq "$(<"$P/sriov_drivers_autoprobe")" 1 "sriov_drivers_autoprobe at the end"
