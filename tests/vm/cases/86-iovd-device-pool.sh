#!/bin/bash
# 86-iovd-device-pool: iovd hands out whole devices with their IOMMU group,
# against the kernel (issue 12). A device pool of the virtio-net device and
# of the ICH9 LPC bridge: the LPC bridge is refused, naming the SATA
# controller (ahci) that shares its group; Allocate moves the virtio-net
# device to vfio-pci through libiovkit's passthrough (a record naming iovd's
# allocation as its holder, which `iovctl passthrough release` refuses);
# OpenDevice's group descriptor is used as a VMM uses it, and the device's
# config space read through VFIO matches sysfs; kill -9 iovd and a restart
# keep the allocation without drift; Release puts virtio-pci back exactly
# (driver_override too) and the interface reappears.
# vm-timeout: 150
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
cleanup() {
    local rc=$?
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

iovd_bus_start "$T"
cat >"$T/iovd.json" <<JSON
{ "pools": [ { "name": "pt", "devices": ["$BDF", "$LPC"] } ] }
JSON
iovd_start

# --- the ICH9 group: refused, naming the SATA controller on its kernel driver
iovd_call Allocate 'ssa{sv}' pt vm-1 1 address s "$LPC"
((rc != 0)) || fail "Allocate of $LPC succeeded: $out"
[[ $err == *"$SATA ($sata_driver): bound to $sata_driver"* ]] || fail "the refusal must name $SATA: $err"
assert_eq "$(sysfs_driver "$LPC")" lpc_ich "driver of $LPC after the refusal"
assert_eq "$(sysfs_driver "$SATA")" "$sata_driver" "driver of $SATA after the refusal"

# --- Allocate: the first member whose group goes, the virtio-net device, to vfio-pci
iovd_must_call Allocate 'ssa{sv}' pt vm-1 0
read -r sig path addr group node <<<"${out//\"/}"
assert_eq "$sig $addr" "osis $BDF" "Allocate's reply ($out)"
assert_eq "$(sysfs_driver "$BDF")" vfio-pci "driver link after Allocate"
assert_eq "$group" "$(iommu_group "$BDF")" "IOMMU group in the reply"
assert_eq "$node" "/dev/vfio/$group" "device node in the reply"
[[ -c $node ]] || fail "$node is not a character device"
assert_eq "$(iovd_property Devices "$path")" "as 1 \"$BDF\"" "Devices"
assert_eq "$(iovd_property Kind "$path")" 's "device"' "Kind"
grep -qx "holder iovd $path (owner vm-1)" "$REC" || fail "the record does not name iovd's allocation: $(<"$REC")"
grep -qx "device $BDF virtio-pci ${ov0:--}" "$REC" || fail "the record lacks the previous driver: $(<"$REC")"
assert_exists "/run/iovkit/iovd-allocated/$BDF" "iovd's marker"
grep -q '"devices":\["'"$BDF"'"\],"passthrough":true' "$T/state/allocations.json" ||
    fail "the state file lacks the device: $(<"$T/state/allocations.json")"

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
iovd_stop
