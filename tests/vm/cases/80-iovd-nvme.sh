#!/bin/bash
# 80-iovd-nvme: iovd against the kernel, on the emulated NVMe PF's 4 VFs
# (autoprobe off, so no driver), on a private dbus-daemon with iovd's own
# policy file. Allocate binds a VF to vfio-pci for real (driver link,
# driver_override, /dev/vfio/N); OpenDevice hands over a descriptor on which
# VFIO_GROUP_GET_STATUS works, and while someone holds it a second OpenDevice
# and Release are refused as InUse, the VF untouched; a VF allocated by iovd
# on no driver (a pool with driver "none") makes `iovctl sriov set` refuse to
# remove the VFs, naming it (libiovkit's iovd marker); VF settings on a PF
# without a netdev are refused with nothing changed; kill -9 iovd and a
# restart keep the allocation, the VF still on vfio-pci; Release puts the VF
# back exactly as it was (no driver, no override, no previous-driver
# record); then the VFs go.
# vm-timeout: 240
. "$(dirname "$0")/../lib.sh"
require_iovctl
require_iovd
OPEN=${IOVD_OPEN_DEVICE:-$REPO/build/tests/iovd-open-device}
[[ -x $OPEN ]] || skip "$OPEN not built (run make)"

PF=$VM_NVME_PF_BDF
P=/sys/bus/pci/devices/$PF
read -r -a VFS <<<"$VM_NVME_VF_BDFS"
[[ -e $P/sriov_numvfs ]] || skip "$PF has no sriov_numvfs"
assert_eq "$(<"$P/sriov_numvfs")" 0 "sriov_numvfs of $PF at the start"
ap0=$(<"$P/sriov_drivers_autoprobe")
T=$(mktemp -d)
holder_pid=''

cleanup() {
    local rc=$?
    [[ -z $holder_pid ]] || kill "$holder_pid" 2>/dev/null || true
    iovd_teardown "$rc"
    rm -rf /run/iovkit/iovd-allocated
    "$IOVCTL" sriov set "$PF" --numvfs 0 --force >/dev/null 2>&1 || printf 0 >"$P/sriov_numvfs" 2>/dev/null || true
    printf '%s' "$ap0" >"$P/sriov_drivers_autoprobe" 2>/dev/null || true
    rm -rf "$T" "/run/iovkit/sriov-autoprobe/$PF" "${VFS[@]/#//run/iovkit/previous-driver/}"
    return 0
}
trap cleanup EXIT

# --- 4 VFs, no driver
out=$("$IOVCTL" sriov set "$PF" --numvfs 4 --no-autoprobe 2>&1) || fail "sriov set 4: $out"
for vf in "${VFS[@]}"; do assert_eq "$(sysfs_driver "$vf")" "" "driver of $vf at the start"; done
VF=${VFS[0]}
ov0=$(driver_override "$VF")

# --- a private bus (the system bus's default policy plus iovd's policy file, as tests/daemon) and iovd
iovd_bus_start "$T"
cat >"$T/iovd.json" <<EOF
{ "pools": [ { "name": "nvme", "pfs": ["$PF"], "driver": "vfio-pci" },
             { "name": "bare", "pfs": ["$PF"], "driver": "none" } ] }
EOF
iovd_start

# --- Allocate: the first VF, bound to vfio-pci for real
iovd_must_call Allocate 'ssa{sv}' nvme vm-1 0
read -r sig path vf group node <<<"${out//\"/}"
assert_eq "$sig $vf" "osis $VF" "Allocate's reply ($out)"
assert_eq "$(sysfs_driver "$VF")" vfio-pci "driver link of $VF after Allocate"
assert_eq "$(driver_override "$VF")" vfio-pci "driver_override of $VF"
assert_eq "$group" "$(iommu_group "$VF")" "IOMMU group in the reply"
assert_eq "$node" "/dev/vfio/$group" "device node in the reply"
[[ -c $node ]] || fail "$node is not a character device"
assert_exists "/run/iovkit/iovd-allocated/$VF" "iovd's marker"
state=$("$REPO/tests/daemon/iovd-state" "$T/state") || fail "reading iovd's state in $T/state"
[[ $state == *'"bind":{"previous_driver":"","previous_override":"","driver":"vfio-pci","record_created":true}'* ]] ||
    fail "the state lacks the bind to undo: $state"

# --- OpenDevice: a working VFIO group descriptor
out=$("$OPEN" --address "$IOVD_BUS" --vfio-status "$path" 2>&1) || fail "OpenDevice: $out"
[[ $out == *"\"path\": \"$node\""*'"type": "char"'*'"access": "rw"'*'"viable": true'* ]] ||
    fail "OpenDevice's descriptor is not the viable VFIO group $node: $out"
# held by a "VM": a second OpenDevice and Release are refused, the VF stays
coproc HOLDER { "$OPEN" --address "$IOVD_BUS" --hold "$path"; }
holder_pid=$HOLDER_PID  # set by coproc
read -r -t 30 line <&"${HOLDER[0]}" || fail "the holder got no descriptor"
[[ $line == *"\"path\": \"$node\""* ]] || fail "holder: $line"
out=$("$OPEN" --address "$IOVD_BUS" "$path" 2>&1) && fail "a second OpenDevice got the group: $out"
[[ $out == *Error.InUse*"$node is open already"* ]] || fail "second OpenDevice: $out"
iovd_call Release o "$path"
((rc != 0)) || fail "Release succeeded while the group is held"
[[ $err == *"IOMMU group $group is open"* ]] || fail "Release while held: $err"
assert_eq "$(sysfs_driver "$VF")" vfio-pci "driver of $VF after the refused Release"
holder_in=${HOLDER[1]}
exec {holder_in}>&-
wait "$holder_pid" || fail "the holder failed"
holder_pid=

# --- a VF iovd holds on no driver: libiovkit will not remove it
iovd_must_call Allocate 'ssa{sv}' bare ctr-1 0
read -r sig bpath bvf _ <<<"${out//\"/}"
assert_eq "$bvf" "${VFS[1]}" "VF of the bare pool"
assert_eq "$(sysfs_driver "$bvf")" "" "driver of $bvf (pool driver none)"
out=$("$IOVCTL" sriov set "$PF" --numvfs 0 2>&1) && fail "VFs removed under iovd's allocations: $out"
[[ $out == *"VFs $VF (allocated by iovd), $bvf (allocated by iovd) are in use"* ]] ||
    fail "refusal does not name them: $out"
assert_eq "$(<"$P/sriov_numvfs")" 4 "sriov_numvfs after the refusal"
expect_opendevice_refused=$("$OPEN" --address "$IOVD_BUS" "$bpath" 2>&1) && fail "OpenDevice of a VF on no driver"
[[ $expect_opendevice_refused == *Error.NotSupported*"has no VFIO device"* ]] ||
    fail "OpenDevice on no driver: $expect_opendevice_refused"

# --- VF settings need the PF's netdev; the NVMe PF has none: refused, nothing changed
iovd_call Allocate 'ssa{sv}' nvme vm-2 1 mac s 52:54:00:00:80:01
((rc != 0)) || fail "mac applied through a PF without a netdev: $out"
[[ $err == *"cannot apply mac 52:54:00:00:80:01"* ]] || fail "settings refusal: $err"
assert_eq "$(sysfs_driver "${VFS[2]}")" "" "driver of ${VFS[2]} after the refused settings"
[[ ! -e /run/iovkit/iovd-allocated/${VFS[2]} ]] || fail "marker left by the refused Allocate"

# --- kill -9 and a restart: the allocation is there, the VF still on vfio-pci
iovd_crash
iovd_start
iovd_must_call ListAllocations
[[ $out == *"\"$path\" \"nvme\" \"vm-1\" \"$VF\" $group \"$node\" \"vfio-pci\""* ]] ||
    fail "allocation lost after kill -9: $out"
assert_eq "$(sysfs_driver "$VF")" vfio-pci "driver of $VF after the restart"
assert_eq "$(iovd_property Drift)" "as 0" "drift after the restart"

# --- Release: exactly as before (no driver, no override, no record), markers gone
iovd_must_call Release o "$path"
assert_eq "$(sysfs_driver "$VF")" "" "driver of $VF after Release"
assert_eq "$(driver_override "$VF")" "$ov0" "driver_override of $VF after Release"
[[ ! -e /run/iovkit/previous-driver/$VF ]] || fail "previous-driver record of $VF left behind"
[[ ! -e /run/iovkit/iovd-allocated/$VF ]] || fail "marker of $VF left behind"
iovd_must_call ReleaseOwner s ctr-1
assert_eq "$out" "u 1" "ReleaseOwner"
[[ -z $(ls -A /run/iovkit/iovd-allocated) ]] || fail "markers left: $(ls /run/iovkit/iovd-allocated)"

# --- iovd stops cleanly; the VFs go
iovd_stop
out=$("$IOVCTL" sriov set "$PF" --numvfs 0 2>&1) || fail "sriov set 0: $out"
assert_eq "$(<"$P/sriov_numvfs")" 0 "sriov_numvfs at the end"
assert_eq "$(<"$P/sriov_drivers_autoprobe")" "$ap0" "autoprobe at the end"
