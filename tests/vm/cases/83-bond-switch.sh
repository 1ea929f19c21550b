#!/bin/bash
# 83-bond-switch: libiovkit's planned switch (iovk_bond_switch(), what
# PrepareMigration calls) on an active-backup bond over veths, each way it
# can go, the bond's active slave read back with `ip -j -d link`:
# - both slaves up with link: the request goes first and one RTM_GETLINK
#   (of the bond) confirms it, counted with strace; asked again, the same;
# - the carrier back but the bond not yet seeing it (updelay): waited for;
# - the slave set down: set up, the bond's MII poll waited for, switched;
# - the slave's carrier gone (its veth peer down): -ETIMEDOUT naming the
#   MII status, the old slave still active;
# - a link that is not the bond's slave (free, or another bond's):
#   -EINVAL "is not one of its slaves"; not a bond: -EMEDIUMTYPE; no such
#   link: -ENODEV. None of them moves the bond, and the kernel's log shows
#   no refused switch but the one to another bond's slave: the library
#   looks at the MII status (sysfs) before it asks.
# vm-timeout: 60
. "$(dirname "$0")/../lib.sh"
require_cmd ip python3

LINK=$REPO/build/tests/iovk-link
[[ -x $LINK ]] || skip "$LINK not built (run make)"
modprobe bonding max_bonds=0 2>/dev/null || skip "no bonding module in this guest kernel"

cleanup() {
    ip link del sw0 2>/dev/null || true
    ip link del sw1 2>/dev/null || true
    for v in swa swb swc swd; do ip link del "$v" 2>/dev/null || true; done
    return 0
}
trap cleanup EXIT

for v in swa swb swc swd; do
    ip link add "$v" type veth peer name "$v-p"
    ip link set "$v-p" up
done
"$LINK" bond-create sw0 10 >/dev/null || fail "bond-create sw0"
"$LINK" bond-create sw1 10 >/dev/null || fail "bond-create sw1"
for v in swa swb; do "$LINK" enslave sw0 "$v" >/dev/null || fail "enslave $v"; done
"$LINK" enslave sw1 swd >/dev/null || fail "enslave swd to sw1"
"$LINK" up sw0 >/dev/null
"$LINK" up sw1 >/dev/null

# active BOND: the active slave as iproute2 reads it
active() { ip -j -d link show dev "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["linkinfo"]["info_data"].get("active_slave", ""))'; }
# sw BOND SLAVE WANT_RC: iovk-link switch, its JSON in $out
sw() {
    local rc=0
    out=$("$LINK" switch "$1" "$2" 2000) || rc=$?
    assert_eq "$rc" "$3" "exit status of switch $1 $2 ($out)"
}

# made as `ip link add type bond` makes them: one peer notification after a switch
assert_eq "$(ip -j -d link show dev sw0 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["linkinfo"]["info_data"]["num_peer_notif"])')" 1 \
    "sw0's num_peer_notif (IOVK_BOND_OPTS_INIT)"
"$LINK" switch sw0 swa 5000 >/dev/null || fail "the first switch to swa"
assert_eq "$(active sw0)" swa "active slave at the start"

# the kernel's log from here on: no switch below may make the bond refuse one (see the end)
klog0=$(dmesg | wc -l)

# --- the way a failover group's switch goes: the request, then the bond read once
if command -v strace >/dev/null; then
    strace -f -qq -e trace=sendto,sendmsg -s 64 -o /tmp/sw.strace "$LINK" switch sw0 swb 2000 >/dev/null ||
        fail "switch to swb: $(tail -3 /tmp/sw.strace)"
    gets=$(grep -c RTM_GETLINK /tmp/sw.strace || true)
    sets=$(grep -c RTM_NEWLINK /tmp/sw.strace || true)
    assert_eq "$gets/$sets" 1/1 "RTM_GETLINK/RTM_NEWLINK requests of a switch between healthy slaves"
else
    info "no strace: the requests of a switch are not counted"
    sw sw0 swb 0
fi
assert_eq "$(active sw0)" swb "active slave after the switch"
sw sw0 swb 0
assert_eq "$(active sw0)" swb "active slave after asking again"

# --- the slave down: set up, MII waited for, then switched
ip link set swa down
sw sw0 swa 0
assert_eq "$(active sw0)" swa "active slave after switching to a slave that was down"
[[ $(ip -j link show dev swa) == *'"UP"'* ]] || fail "swa was not set up"

# --- the slave's carrier gone: the bond cannot make it active
ip link set swb-p down
mii() { [[ $(<"/sys/class/net/$1/bonding_slave/mii_status") == "$2" ]]; }
wait_for 5 mii swb down || fail "sw0 did not see swb's link go down"
sw sw0 swb 1
[[ $out == *"did not get its link up in the bond's eyes (MII up) within 2000 ms"*'"errno": 110'* ]] ||
    fail "switch to a slave without carrier: $out"
assert_eq "$(active sw0)" swa "active slave after the refused switch"

# --- the carrier back, the bond not yet seeing it (updelay): the switch waits for MII, then switches
ip link set sw0 type bond updelay 300
ip link set swb-p up
sw sw0 swb 0
assert_eq "$(active sw0)" swb "active slave after switching to a slave inside its updelay"
ip link set sw0 type bond updelay 0
"$LINK" switch sw0 swa 2000 >/dev/null || fail "switch back to swa"

# --- not the bond's slave, not a bond, no such link
sw sw0 swc 1
[[ $out == *"swc is not one of its slaves"*'"errno": 22'* ]] || fail "switch to a free link: $out"
sw sw0 swd 1
[[ $out == *"swd is not one of its slaves"*'"errno": 22'* ]] || fail "switch to another bond's slave: $out"
sw swc swa 1
[[ $out == *"not a bond"*'"errno": 124'* ]] || fail "switch on a link that is not a bond: $out"
sw sw0 nosuch0 1
[[ $out == *"nosuch0"*'"errno": 19'* ]] || fail "switch to no link: $out"
assert_eq "$(active sw0)" swa "active slave after the refused switches"
assert_eq "$(active sw1)" swd "sw1's active slave, untouched"

# a switch looks before it asks: the kernel refused none of the above (it logs each refusal)
# but the one to another bond's slave, the caller's mistake ("Device is not our slave")
refusals=$(dmesg | tail -n "+$((klog0 + 1))" | grep -iE "sw0.*(could not set as active slave|not bonding slave)" || true)
[[ -z $refusals ]] || fail "the bond refused switches: $refusals"
