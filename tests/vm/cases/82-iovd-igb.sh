#!/bin/bash
# 82-iovd-igb: iovd's VF settings for real, on the VFs of the emulated Intel
# 82576 (igb, QEMU >= 8.0), read back as the igb driver reports them through
# the PF (`ip -j -d link show PF`). A pool with vf_defaults (vlan 100 qos 1,
# spoofchk off, trust on) and driver vfio-pci: Allocate with option mac gives
# a VF on vfio-pci with that mac/vlan/qos/spoofchk/trust, and its VfSettings
# property says the same; a caller's vlan wins over the pool's; driver
# "kernel" binds igbvf to a VF that never had a driver (iovd names it from
# the VF's modalias, and loads it) and the admin MAC reaches the VF's own
# netdev; kill -9 and a restart keep the allocation, its driver and its
# settings; Release puts the VF back exactly as it was (driver, no
# driver_override, the settings read before Allocate, no records); failed
# Allocates (the VF's kernel driver blacklisted: the bind fails after igb
# took the settings; a commit that cannot be written: after settings and
# bind) leave the VF as it was, and free; `iovctl alloc --vlan 10 --trust on`
# as iovd's D-Bus client; with autoprobe on, a VF taken from igbvf goes back
# to igbvf.
#
# igb refuses nothing Allocate can ask: any unicast or all-zero MAC, VLAN
# 0-4095 with QoS 0-7 (QoS without a VLAN too), spoofchk (82576) and trust.
# What it refuses, VLAN protocol 802.1ad (EPROTONOSUPPORT), rates (EINVAL:
# any min_tx_rate, a max_tx_rate above the link speed or while the PF is
# down) and link state (EOPNOTSUPP), are not Allocate options; so the failed
# Allocates are made by a bind or a commit failing after igb took the
# settings.
#
# VFs with autoprobe off (`iovctl sriov set --no-autoprobe`, as for a
# vfio-pci pool) for most of the case: they start on no driver whether or not
# igbvf is loaded, so the state before Allocate is known, and Release must
# put back "no driver". The PF is brought up for the case (and down again if
# it was down): igb answers its VFs' mailbox only while it is up, and only
# then does igbvf get its admin MAC at probe.
# vm-timeout: 240
. "$(dirname "$0")/../lib.sh"
require_iovctl
require_iovd
require_cmd ip chattr

PF=$VM_IGB_BDF
P=/sys/bus/pci/devices/$PF
[[ -e $P ]] || skip "no igb PF at $PF: QEMU before 8.0 has no -device igb (tests/vm/run adds one when QEMU has it)"
[[ -e $P/sriov_numvfs ]] || skip "$PF has no sriov_numvfs"
assert_eq "$(<"$P/sriov_numvfs")" 0 "sriov_numvfs of $PF at the start"
PFN=$(netdev_of "$PF")
[[ -n $PFN && $PFN != *$'\n'* ]] || fail "$PF should have one netdev, has '$PFN'"
ap0=$(<"$P/sriov_drivers_autoprobe")
pf_up0=$(( $(<"/sys/class/net/$PFN/flags") & 1 ))
igbvf0=$([[ -d /sys/module/igbvf ]] && echo 1 || echo 0)
T=$(mktemp -d)
BLACKLIST=/etc/modprobe.d/iovkit-test-82.conf
VFS=()

cleanup() {
    local rc=$?
    iovd_teardown "$rc"
    chattr -i "$T/state" 2>/dev/null || true
    rm -f "$BLACKLIST"
    rm -rf /run/iovkit/iovd-allocated
    "$IOVCTL" sriov set "$PF" --numvfs 0 --force >/dev/null 2>&1 || printf 0 >"$P/sriov_numvfs" 2>/dev/null || true
    printf '%s' "$ap0" >"$P/sriov_drivers_autoprobe" 2>/dev/null || true
    ((pf_up0)) || ip link set dev "$PFN" down 2>/dev/null || true
    # igbvf as found: unloaded again if this case loaded it
    ((igbvf0)) || modprobe -r igbvf 2>/dev/null || true
    rm -rf "$T" "/run/iovkit/sriov-autoprobe/$PF" "${VFS[@]/#//run/iovkit/previous-driver/}"
    return 0
}
trap cleanup EXIT

# allocate POOL OWNER N OPTIONS...: Allocate; $apath, $avf, $agroup, $anode from the reply
allocate() {
    iovd_must_call Allocate 'ssa{sv}' "$@"
    read -r _ apath avf agroup anode <<<"${out//\"/}"
}
# log_since N: iovd's log from line N+1 on; log_lines: its number of lines
log_lines() { wc -l <"$IOVD_DIR/iovd.log"; }
log_since() { tail -n "+$(($1 + 1))" "$IOVD_DIR/iovd.log"; }
# vf_settings INDEX: VF INDEX as igb reports it through the PF (ip -j -d link), in iproute2's words
vf_settings() {
    ip -j -d link show dev "$PFN" | python3 -S -c '
import json, sys
for v in json.load(sys.stdin)[0].get("vfinfo_list", []):
    if v["vf"] == int(sys.argv[1]):
        vl = (v.get("vlan_list") or [v])[0]
        print("mac %s vlan %d qos %d%s spoofchk %s trust %s" % (v["address"], vl.get("vlan", 0), vl.get("qos", 0),
              " proto " + vl["protocol"] if vl.get("protocol", "802.1Q") != "802.1Q" else "",
              "on" if v["spoofchk"] else "off", "on" if v["trust"] else "off"))
        break
else:
    sys.exit("%s reports no VF %s" % (sys.argv[2], sys.argv[1]))' "$1" "$PFN"
}
# vf_as_before I: VF I is as the PF reported it before any Allocate: driver, override, settings, no records
vf_as_before() {
    local vf=${VFS[$1]}
    assert_eq "$(sysfs_driver "$vf")" "" "driver of $vf ($2)"
    assert_eq "$(driver_override "$vf")" "" "driver_override of $vf ($2)"
    assert_eq "$(vf_settings "$1")" "${S0[$1]}" "settings of VF $1 ($vf) through $PFN ($2)"
    [[ ! -e /run/iovkit/previous-driver/$vf ]] || fail "previous-driver record of $vf left ($2)"
    [[ ! -e /run/iovkit/iovd-allocated/$vf ]] || fail "iovd's marker of $vf left ($2)"
}

# --- 2 VFs, autoprobe off: no driver; the PF up, so igb serves its VFs' mailbox
out=$("$IOVCTL" sriov set "$PF" --numvfs 2 --no-autoprobe 2>&1) || fail "sriov set 2: $out"
for i in 0 1; do
    l=$(readlink "$P/virtfn$i") || fail "$PF has no virtfn$i"
    VFS[i]=${l##*/}
    assert_eq "$(sysfs_driver "${VFS[i]}")" "" "driver of ${VFS[i]} with autoprobe off"
done
ip link set dev "$PFN" up
S0=("$(vf_settings 0)" "$(vf_settings 1)")
info "VFs ${VFS[*]} of $PF ($PFN); before: ${S0[0]} / ${S0[1]}"
[[ ${S0[0]} == *" vlan 0 qos 0 spoofchk on trust off" ]] || fail "VF 0 of a new PF: ${S0[0]}"

# --- a private bus (as tests/daemon), iovd with a vfio-pci pool whose VFs get VLAN 100, QoS 1, spoofchk off, trust on
iovd_bus_start "$T"
cat >"$T/iovd.json" <<EOF
{ "pools": [ { "name": "igb", "pfs": ["$PFN"], "driver": "vfio-pci",
               "vf_defaults": { "vlan": 100, "qos": 1, "spoofchk": false, "trust": true } } ] }
EOF
# -v: libiovkit's lines too (each netlink and sysfs write), so the log shows what a failure undid
iovd_start -v

# --- Allocate with a MAC: VF 0 on vfio-pci, configured as asked over the pool's defaults
allocate igb vm-1 1 mac s 02:00:00:00:82:01
path1=$apath group1=$agroup node1=$anode
assert_eq "$avf" "${VFS[0]}" "VF of the first Allocate"
assert_eq "$(sysfs_driver "${VFS[0]}")" vfio-pci "driver link of ${VFS[0]}"
assert_eq "$(driver_override "${VFS[0]}")" vfio-pci "driver_override of ${VFS[0]}"
assert_eq "$anode" "/dev/vfio/$(iommu_group "${VFS[0]}")" "device node in the reply"
want1="mac 02:00:00:00:82:01 vlan 100 qos 1 spoofchk off trust on"
assert_eq "$(vf_settings 0)" "$want1" "VF 0 through $PFN after Allocate"
prop1='a{sv} 5 "mac" s "02:00:00:00:82:01" "vlan" q 100 "qos" y 1 "spoofchk" b false "trust" b true'
assert_eq "$(iovd_property VfSettings "$path1")" "$prop1" "VfSettings of $path1"
assert_eq "$(vf_settings 1)" "${S0[1]}" "VF 1 is not touched by VF 0's Allocate"

# --- the caller's VLAN wins over the pool's (QoS with it: 0), the other defaults stay
allocate igb vm-2 1 vlan q 200
assert_eq "$avf" "${VFS[1]}" "VF of the second Allocate"
assert_eq "$(vf_settings 1)" "mac 00:00:00:00:00:00 vlan 200 qos 0 spoofchk off trust on" "VF 1 with option vlan 200"
assert_eq "$(iovd_property VfSettings "$apath")" 'a{sv} 4 "vlan" q 200 "qos" y 0 "spoofchk" b false "trust" b true' \
    "VfSettings of $apath"
iovd_must_call Release o "$apath"
vf_as_before 1 "after the Release of vm-2"

# --- kill -9 while vm-1 is committed, and a restart: the allocation, its driver and settings are all there
iovd_crash
iovd_start -v
iovd_must_call ListAllocations
[[ $out == *"\"$path1\" \"igb\" \"vm-1\" \"${VFS[0]}\" $group1 \"$node1\" \"vfio-pci\""* ]] ||
    fail "allocation lost after kill -9: $out"
assert_eq "$(sysfs_driver "${VFS[0]}")" vfio-pci "driver of ${VFS[0]} after the restart"
assert_eq "$(vf_settings 0)" "$want1" "VF 0 through $PFN after the restart"
assert_eq "$(iovd_property VfSettings "$path1")" "$prop1" "VfSettings of $path1 after the restart"
assert_eq "$(iovd_property Drift)" "as 0" "drift after the restart"

# --- a failed Allocate: igbvf blacklisted, so the bind fails after igb took the settings; all put back
# (only while igbvf is not loaded: a blacklist does not unload it; an unused igbvf is unloaded first)
[[ ! -d /sys/module/igbvf ]] || modprobe -r igbvf 2>/dev/null || true
if [[ ! -d /sys/module/igbvf ]]; then
    echo "blacklist igbvf" >"$BLACKLIST"
    n=$(log_lines)
    iovd_call Allocate 'ssa{sv}' igb ctr-0 2 driver s kernel mac s 02:00:00:00:82:09
    rm -f "$BLACKLIST"
    ((rc != 0)) || fail "Allocate bound a blacklisted driver: $out"
    [[ $err == *"Failed to bind VF ${VFS[1]} of pool igb for ctr-0 to its kernel driver"*"(igbvf)"*"igbvf is blacklisted"* ]] ||
        fail "refusal of the blacklisted driver: $err"
    [[ $(log_since "$n") == *"VF 1: setting mac 02:00:00:00:82:09"*"VF 1: setting mac 00:00:00:00:00:00"* ]] ||
        fail "igb did not get the settings and then the old ones back: $(log_since "$n")"
    vf_as_before 1 "after the Allocate whose bind failed"
else
    info "igbvf is loaded and in use: the blacklisted-driver Allocate is not tried"
fi

# --- driver "kernel": igbvf, found by iovd through the VF's modalias (and loaded), takes the VF;
# igb hands the admin MAC to igbvf, so the VF's own netdev has it
allocate igb ctr-1 2 driver s kernel mac s 02:00:00:00:82:02
path2=$apath
assert_eq "$avf" "${VFS[1]}" "VF of the kernel Allocate"
assert_eq "$anode" "" "device node of a VF on its kernel driver"
assert_eq "$(sysfs_driver "${VFS[1]}")" igbvf "driver link of ${VFS[1]}"
vfn=$(netdev_of "${VFS[1]}")
[[ -n $vfn ]] || fail "${VFS[1]} on igbvf has no netdev"
assert_eq "$(<"/sys/class/net/$vfn/address")" 02:00:00:00:82:02 "MAC of $vfn, the VF's netdev"
assert_eq "$(vf_settings 1)" "mac 02:00:00:00:82:02 vlan 100 qos 1 spoofchk off trust on" "VF 1 through $PFN"
iovd_must_call Release o "$path2"
vf_as_before 1 "after the Release of the kernel allocation"
[[ -z $(netdev_of "${VFS[1]}") ]] || fail "${VFS[1]} still has a netdev after Release"

# --- Release of vm-1 (allocated before the restart): exactly as before
iovd_must_call Release o "$path1"
vf_as_before 0 "after the Release of vm-1"

# --- a failed commit (the disk refuses the write: EROFS, injected by strace): settings and bind happened,
# all put back
# shellcheck disable=SC2046 # two paths, no spaces in them
iovd_strace error=EROFS "$IOVD_COMMIT_CALLS" $(iovd_commit_paths)
n=$(log_lines)
iovd_call Allocate 'ssa{sv}' igb vm-3 1 mac s 02:00:00:00:82:03
iovd_strace_stop
((rc != 0)) || fail "Allocate succeeded without its commit: $out"
[[ $err == *"Failed to record the allocation in the state directory $T/state: Read-only file system"*"the VF is back as it was"* ]] ||
    fail "failed commit: $err"
vf_as_before 0 "after the Allocate whose commit failed"
[[ $(log_since "$n") == *"VF 0: setting mac 02:00:00:00:82:03"*"wrote '${VFS[0]}' to /sys/bus/pci/drivers_probe"* &&
   $(log_since "$n") == *"Failed to write"*"VF 0: setting mac 00:00:00:00:00:00"*"vfio-pci/unbind"* ]] ||
    fail "settings and bind did not happen and get undone: $(log_since "$n")"
# free: the next Allocate gets it
allocate igb vm-3 1 mac s 02:00:00:00:82:03
assert_eq "$avf" "${VFS[0]}" "VF of the Allocate after the failed commit"
iovd_must_call Release o "$apath"
vf_as_before 0 "after its Release"

# --- iovctl as iovd's client: --vlan 10 --trust on over the pool's defaults
run_iovctl 0 alloc --json --bus-address "$IOVD_BUS" --vlan 10 --trust on igb cli-1
assert_eq "$(json_get address <<<"$out")" "${VFS[0]}" "iovctl alloc's VF"
cpath=$(json_get allocation <<<"$out")
assert_eq "$(sysfs_driver "${VFS[0]}")" vfio-pci "driver of ${VFS[0]} after iovctl alloc"
assert_eq "$(vf_settings 0)" "mac 00:00:00:00:00:00 vlan 10 qos 0 spoofchk off trust on" "VF 0 after iovctl alloc"
run_iovctl 0 release --bus-address "$IOVD_BUS" "$cpath"
vf_as_before 0 "after iovctl release"

# --- autoprobe on, the VFs on igbvf (libvirt's managed hostdev): Allocate takes VF 0 from igbvf to
# vfio-pci, Release gives it back to igbvf, with no admin MAC as before
out=$("$IOVCTL" sriov set "$PF" --numvfs 0 2>&1) || fail "sriov set 0: $out"
assert_eq "$(<"$P/sriov_drivers_autoprobe")" "$ap0" "autoprobe after the VFs went (iovctl puts it back)"
modprobe igbvf # what udev does on a host when the VFs appear; the guest has no udev
sysfs_write "$P/sriov_drivers_autoprobe" 1
out=$("$IOVCTL" sriov set "$PF" --numvfs 2 2>&1) || fail "sriov set 2, autoprobe on: $out"
assert_eq "$(readlink "$P/virtfn0")" "../${VFS[0]}" "VF 0 of the new VFs"
assert_eq "$(sysfs_driver "${VFS[0]}")" igbvf "driver of ${VFS[0]} with autoprobe on"
vfn=$(netdev_of "${VFS[0]}")
[[ -n $vfn ]] || fail "${VFS[0]} on igbvf has no netdev"
# igb enables its VFs while it resets the PF: igbvf's probe gets no answer from the PF ("PF still
# in reset state"), picks a random MAC, and igb never hears of it: it reports no MAC for the VF
assert_eq "$(vf_settings 0)" "${S0[0]}" "VF 0 on igbvf (netdev $vfn, MAC $(<"/sys/class/net/$vfn/address")), through $PFN"
allocate igb vm-4 1 mac s 02:00:00:00:82:04
assert_eq "$avf" "${VFS[0]}" "VF of the Allocate with autoprobe on"
assert_eq "$(sysfs_driver "${VFS[0]}")" vfio-pci "driver of ${VFS[0]}, taken from igbvf"
assert_eq "$(vf_settings 0)" "mac 02:00:00:00:82:04 vlan 100 qos 1 spoofchk off trust on" "VF 0 on vfio-pci"
iovd_must_call Release o "$apath"
assert_eq "$(sysfs_driver "${VFS[0]}")" igbvf "driver of ${VFS[0]} after Release"
assert_eq "$(driver_override "${VFS[0]}")" "" "driver_override of ${VFS[0]} after Release"
[[ ! -e /run/iovkit/previous-driver/${VFS[0]} ]] || fail "previous-driver record of ${VFS[0]} left"
vfn=$(netdev_of "${VFS[0]}")
[[ -n $vfn ]] || fail "${VFS[0]} back on igbvf has no netdev"
# the admin MAC cleared, as it was: igbvf, probing again, picks its own, which igb (up now) hears of
mac1=$(<"/sys/class/net/$vfn/address")
assert_ne "$mac1" 02:00:00:00:82:04 "MAC of $vfn, back on igbvf"
assert_eq "$(vf_settings 0)" "mac $mac1 vlan 0 qos 0 spoofchk on trust off" "VF 0 through $PFN after Release"

# --- iovd stops cleanly; the VFs go
iovd_stop
[[ -z $(ls -A /run/iovkit/iovd-allocated 2>/dev/null) ]] || fail "markers left: $(ls /run/iovkit/iovd-allocated)"
out=$("$IOVCTL" sriov set "$PF" --numvfs 0 2>&1) || fail "sriov set 0: $out"
assert_eq "$(<"$P/sriov_numvfs")" 0 "sriov_numvfs at the end"
