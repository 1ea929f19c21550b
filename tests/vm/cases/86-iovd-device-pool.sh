#!/bin/bash
# 86-iovd-device-pool: iovd hands out whole devices with their IOMMU group,
# against the kernel (issue 12). A device pool of the virtio-net device and
# of the ICH9 LPC bridge: the LPC bridge is refused, naming the SATA
# controller (ahci) that shares its group; AllocateEx moves the virtio-net
# device to vfio-pci through libiovkit's passthrough (a record naming iovd's
# allocation as its holder, which `iovctl passthrough release` refuses) and
# names every endpoint, the group and its node; OpenDevice's group
# descriptor is used as a VMM uses it, and the device's config space read
# through VFIO matches sysfs; OpenDeviceCdevs' cdev is bound to an iommufd
# and read the same way (a kernel with VFIO cdevs: the iommufd run), or
# refused naming why; kill -9 iovd and a restart keep the allocation without
# drift; Release puts virtio-pci back exactly (driver_override too) and the
# interface reappears. Then iovd is killed for real inside each step of
# Allocate and Release (strace injects SIGKILL as iovd enters the system
# call of the step's next move), and each restart rolls the Allocate back
# or finishes the Release, and says which.
# vm-timeout: 240
. "$(dirname "$0")/../lib.sh"
require_iovctl
require_iovd
OPEN=${IOVD_OPEN_DEVICE:-$REPO/build/tests/iovd-open-device}
[[ -x $OPEN ]] || skip "$OPEN not built (run make)"

BDF=$VM_VFIO_NET_BDF
LPC=0000:00:1f.0
SATA=0000:00:1f.2
REC=/run/iovkit/passthrough/$BDF
T=$(mktemp -d)
STRACE_PID=
cleanup() {
    local rc=$?
    [[ -z $STRACE_PID ]] || kill "$STRACE_PID" 2>/dev/null || true
    iovd_teardown "$rc"
    rm -rf /run/iovkit/iovd-allocated /run/iovkit/iovd-releasing
    if [[ -e $REC ]]; then
        # only a failed case leaves it: give the device back by hand
        sed -i '/^holder /d' "$REC"
        "$IOVCTL" passthrough release "$BDF" >/dev/null 2>&1 || true
    fi
    rm -rf "$T"
    return 0
}
trap cleanup EXIT

assert_eq "$(sysfs_driver "$BDF")" virtio-pci "driver of $BDF at the start"
ov0=$(driver_override "$BDF")
ifc=$(netdev_by_mac "$VM_VFIO_NET_MAC")
[[ -n $ifc ]] || fail "no interface with MAC $VM_VFIO_NET_MAC"
ip link set "$ifc" down
sata_driver=$(sysfs_driver "$SATA")
lpc_driver=$(sysfs_driver "$LPC") # lpc_ich on Debian's kernel; none on the iommufd one, built without it

iovd_bus_start "$T"
cat >"$T/iovd.json" <<JSON
{ "pools": [ { "name": "pt", "devices": ["$BDF", "$LPC"] } ] }
JSON
iovd_start

# --- the ICH9 group: refused, naming the SATA controller on its kernel driver
iovd_call Allocate 'ssa{sv}' pt vm-1 1 address s "$LPC"
((rc != 0)) || fail "Allocate of $LPC succeeded: $out"
[[ $err == *"$SATA ($sata_driver): bound to $sata_driver"* ]] || fail "the refusal must name $SATA: $err"
assert_eq "$(sysfs_driver "$LPC")" "$lpc_driver" "driver of $LPC after the refusal"
assert_eq "$(sysfs_driver "$SATA")" "$sata_driver" "driver of $SATA after the refusal"

# allocate_ex OWNER: AllocateEx from pool pt; its reply's keys as shell words in $ex ("key=value")
allocate_ex() {
    rc=0
    out=$(busctl --address="$IOVD_BUS" --json=short call org.iovkit.iovd1 /org/iovkit/iovd1 \
        org.iovkit.iovd1.Manager AllocateEx 'ssa{sv}' pt "$1" 0 2>"$IOVD_DIR/err") || rc=$?
    err=$(<"$IOVD_DIR/err")
    ((rc != 0)) || ex=$(python3 -c 'import json, sys
for k, v in json.loads(sys.argv[1])["data"][0].items():
    v = v["data"]
    print("%s=%s" % (k, ",".join(v) if isinstance(v, list) else v))' "$out")
}
ex_get() { sed -n "s/^$1=//p" <<<"$ex"; }

# --- AllocateEx: the first member whose group goes, the virtio-net device, to
# vfio-pci; the reply names every endpoint the VMM must be given, the group, its node
allocate_ex vm-1
((rc == 0)) || fail "AllocateEx: $err"
path=$(ex_get allocation) addr=$(ex_get address) group=$(ex_get iommu_group) node=$(ex_get device_node)
assert_eq "$addr $(ex_get devices) $(ex_get pool_kind) $(ex_get owner)" "$BDF $BDF device vm-1" "AllocateEx's reply ($ex)"
assert_eq "$(sysfs_driver "$BDF")" vfio-pci "driver link after Allocate"
assert_eq "$group" "$(iommu_group "$BDF")" "IOMMU group in the reply"
assert_eq "$node" "/dev/vfio/$group" "device node in the reply"
[[ -c $node ]] || fail "$node is not a character device"
assert_eq "$(iovd_property Devices "$path")" "as 1 \"$BDF\"" "Devices"
assert_eq "$(iovd_property Kind "$path")" 's "device"' "Kind"
grep -qx "holder iovd $path (owner vm-1)" "$REC" || fail "the record does not name iovd's allocation: $(<"$REC")"
grep -qx "device $BDF virtio-pci ${ov0:--}" "$REC" || fail "the record lacks the previous driver: $(<"$REC")"
assert_exists "/run/iovkit/iovd-allocated/$BDF" "iovd's marker"
state=$("$REPO/tests/daemon/iovd-state" "$T/state") || fail "reading iovd's state in $T/state"
[[ $state == *'"devices":["'"$BDF"'"],"passthrough":true'* ]] || fail "the state lacks the device: $state"

# --- iovctl never undoes iovd's passthrough
run_iovctl 1 passthrough release "$BDF"
[[ $err == *"held by iovd $path (owner vm-1)"* ]] || fail "iovctl passthrough release: $err"
assert_eq "$(sysfs_driver "$BDF")" vfio-pci "driver after iovctl's refused release"

# --- OpenDevice: the group, used as a VMM uses it; config space through VFIO
out=$("$OPEN" --address "$IOVD_BUS" --vfio-status --read-config "$BDF" "$path" 2>&1) || fail "OpenDevice: $out"
[[ $out == *"\"path\": \"$node\""*'"viable": true'* ]] || fail "not the viable group $node: $out"
vendor=$(<"/sys/bus/pci/devices/$BDF/vendor") device=$(<"/sys/bus/pci/devices/$BDF/device")
want=$(printf '%02x%02x%02x%02x' $((vendor & 0xff)) $((vendor >> 8)) $((device & 0xff)) $((device >> 8)))
cfg=$(json_get config <<<"$out")
assert_eq "${cfg:0:8}" "$want" "vendor and device ids read through VFIO (config $cfg)"
sysfs_cfg=$(od -An -tx1 -N16 "/sys/bus/pci/devices/$BDF/config" | tr -d ' \n')
assert_eq "${cfg:0:8}" "${sysfs_cfg:0:8}" "config space through VFIO against sysfs"

# --- OpenDeviceCdevs: the cdev, bound to an iommufd as a VMM on iommufd does;
# refused, saying why, on a kernel without VFIO cdevs (Debian's 6.1)
vfio_dev=$(echo /sys/bus/pci/devices/"$BDF"/vfio-dev/vfio*)
if [[ -e $vfio_dev/dev ]]; then
    cdev=/dev/vfio/devices/${vfio_dev##*/}
    out=$("$OPEN" --address "$IOVD_BUS" --cdevs --read-config "$BDF" "$path" 2>&1) || fail "OpenDeviceCdevs: $out"
    assert_eq "$(json_get cdevs.0.address <<<"$out") $(json_get cdevs.0.path <<<"$out")" "$BDF $cdev" \
        "OpenDeviceCdevs' endpoint ($out)"
    assert_eq "$(json_get cdevs.0.config <<<"$out")" "$cfg" "config space through the cdev bound to an iommufd"
    info "OpenDeviceCdevs: $cdev bound to an iommufd, config ${cfg:0:8}"
else
    # a kernel with iommufd (the iommufd run's) has the cdevs too: that branch must run there
    [[ ! -e /dev/iommu ]] || fail "/dev/iommu exists, but $BDF on vfio-pci has no VFIO cdev ($vfio_dev)"
    out=$("$OPEN" --address "$IOVD_BUS" --cdevs "$path" 2>&1) && fail "OpenDeviceCdevs without VFIO cdevs: $out"
    [[ $out == *NotSupported*"has no VFIO cdev"*CONFIG_VFIO_DEVICE_CDEV* ]] ||
        fail "OpenDeviceCdevs' refusal must say why: $out"
fi

# --- kill -9 and a restart: still allocated, on vfio-pci, no drift
iovd_crash
iovd_start
iovd_must_call ListAllocations
[[ $out == *"$path"*"$BDF"* ]] || fail "the allocation did not survive the restart: $out"
assert_eq "$(iovd_property Drift "$path")" 's ""' "drift after the restart"
assert_eq "$(sysfs_driver "$BDF")" vfio-pci "driver after the restart"

# --- Release: virtio-pci back, exactly; the interface reappears
iovd_must_call Release o "$path"
assert_eq "$(sysfs_driver "$BDF")" virtio-pci "driver after Release"
assert_eq "$(driver_override "$BDF")" "$ov0" "driver_override after Release"
[[ ! -e $REC ]] || fail "Release left $REC"
[[ ! -e /run/iovkit/iovd-allocated/$BDF ]] || fail "Release left iovd's marker"
netdev_back() { [[ -n $(netdev_by_mac "$VM_VFIO_NET_MAC") ]]; }
wait_for 10 netdev_back || fail "no interface with MAC $VM_VFIO_NET_MAC after Release"
iovd_must_call ListAllocations
assert_eq "$out" "a(osssisst) 0" "allocations after Release"

# --- kill -9 inside each step, for real
# iovd_kill_at PATH SYSCALL: strace gives iovd SIGKILL as it enters SYSCALL on
# PATH (or on a descriptor open on it), before the call does anything
iovd_kill_at() { iovd_strace signal=KILL "$2" "$1"; }
# iovd_kill_at_commit: the same at the commit (lib.sh's IOVD_COMMIT_CALLS)
# shellcheck disable=SC2046 # two paths, no spaces in them
iovd_kill_at_commit() { iovd_strace signal=KILL "$IOVD_COMMIT_CALLS" $(iovd_commit_paths); }
# iovd_killed WHAT: the call failed because iovd died of that SIGKILL
iovd_killed() {
    local s=0
    ((rc != 0)) || fail "$1 succeeded: iovd was not killed ($out)"
    wait "$IOVD_PID" || s=$?
    IOVD_PID=
    wait "$STRACE_PID" || true
    STRACE_PID=
    assert_eq "$s" 137 "iovd's exit status after the SIGKILL in $1"
}
logged() { grep -qF "$1" "$IOVD_DIR/iovd.log" || fail "iovd's log lacks: $1"; }
# rolled_back OWNER: the start logged the rollback of OWNER's Allocate (its id was never answered)
rolled_back() {
    grep -qE "Rolled back an Allocate interrupted before it was recorded \(iovd /org/iovkit/iovd1/allocation/[0-9]+ \(owner $1\)\): IOMMU group $group is back: $BDF on virtio-pci" \
        "$IOVD_DIR/iovd.log" || fail "iovd's log lacks the rollback of $1's Allocate: $(grep -i 'rolled\|interrupted' "$IOVD_DIR/iovd.log")"
}
group_back() {
    assert_eq "$(sysfs_driver "$BDF")" virtio-pci "driver after $1"
    assert_eq "$(driver_override "$BDF")" "$ov0" "driver_override after $1"
    [[ ! -e $REC ]] || fail "$1 left $REC: $(<"$REC")"
    [[ ! -e /run/iovkit/iovd-allocated/$BDF ]] || fail "$1 left iovd's marker"
    iovd_must_call ListAllocations
    assert_eq "$out" "a(osssisst) 0" "allocations after $1"
}

# Allocate, killed in the middle of the bind (unbound from virtio-pci, vfio-pci
# not probed yet): the start rolls it back
iovd_kill_at /sys/bus/pci/drivers_probe write
allocate_ex vm-2
iovd_killed "AllocateEx (at drivers_probe)"
assert_eq "$(sysfs_driver "$BDF")" "" "driver of $BDF when iovd died in the middle of the bind"
assert_exists "$REC" "the passthrough record, written before the first move"
iovd_start
rolled_back vm-2
group_back "the rollback of an Allocate killed mid-bind"

# Allocate, killed after the bind, before its commit (the journal record's write): rolled back
iovd_kill_at_commit
allocate_ex vm-3
iovd_killed "AllocateEx (at the commit)"
assert_eq "$(sysfs_driver "$BDF")" vfio-pci "driver of $BDF when iovd died before the commit"
iovd_start
rolled_back vm-3
group_back "the rollback of an Allocate killed before its commit"

# Release, killed in the middle of putting the device back: the start finishes it
allocate_ex vm-4
((rc == 0)) || fail "AllocateEx vm-4: $err"
path=$(ex_get allocation)
iovd_kill_at /sys/bus/pci/drivers_probe write
iovd_call Release o "$path"
iovd_killed "Release (at drivers_probe)"
assert_eq "$(sysfs_driver "$BDF")" "" "driver of $BDF when iovd died in the middle of the Release"
iovd_start
logged "Finished the Release of $path (device $BDF, IOMMU group $group, owner vm-4) that was interrupted"
group_back "the finished Release"

# Release, killed after putting it back, before its commit: finished too
allocate_ex vm-5
((rc == 0)) || fail "AllocateEx vm-5: $err"
path=$(ex_get allocation)
iovd_kill_at_commit
iovd_call Release o "$path"
iovd_killed "Release (at the commit)"
assert_eq "$(sysfs_driver "$BDF")" virtio-pci "driver of $BDF when iovd died before the Release's commit"
iovd_start
logged "Finished the Release of $path (device $BDF, IOMMU group $group, owner vm-5) that was interrupted"
group_back "the Release finished after its commit was cut"
wait_for 10 netdev_back || fail "no interface with MAC $VM_VFIO_NET_MAC after the last Release"
iovd_stop
