#!/bin/bash
# 05-sysfs-bind-raw: the raw sysfs rebind flow iovkit automates, without iovctl:
# virtio-pci -> vfio-pci (driver_override + unbind + drivers_probe), /dev/vfio/N,
# and back. Then the rollback quirk: with driver_override set to a driver whose
# probe refuses the device (shpchp returns -ENODEV for non-SHPC devices), a
# drivers_probe write still SUCCEEDS and leaves the device with no driver.
. "$(dirname "$0")/../lib.sh"

BDF=$VM_VFIO_NET_BDF
D=/sys/bus/pci/devices/$BDF
REFUSER=${IOVKIT_REFUSING_DRIVER:-shpchp}

restore() {  # best effort: back to virtio-pci, no override
    printf '\n' >"$D/driver_override" 2>/dev/null || true
    if [[ -n $(sysfs_driver "$BDF") && $(sysfs_driver "$BDF") != virtio-pci ]]; then
        printf '%s' "$BDF" >"$D/driver/unbind" 2>/dev/null || true
    fi
    [[ -n $(sysfs_driver "$BDF") ]] || printf '%s' "$BDF" >/sys/bus/pci/drivers_probe 2>/dev/null || true
}
trap restore EXIT

# rebind BDF to whatever driver_override names: unbind + drivers_probe
rebind() {
    if [[ -L $D/driver ]]; then sysfs_write "$D/driver/unbind" "$BDF"; fi
    sysfs_write /sys/bus/pci/drivers_probe "$BDF"
}

assert_eq "$(sysfs_driver "$BDF")" virtio-pci "initial driver of $BDF"
group=$(iommu_group "$BDF")
[[ -n $group ]] || fail "$BDF has no IOMMU group"

# --- to vfio-pci
modprobe vfio-pci || fail "modprobe vfio-pci failed"
assert_exists /sys/bus/pci/drivers/vfio-pci "vfio-pci driver"
sysfs_write "$D/driver_override" vfio-pci
t0=$(now_ms)
rebind
t1=$(now_ms)
assert_eq "$(sysfs_driver "$BDF")" vfio-pci "driver after override+drivers_probe"
[[ -c /dev/vfio/$group ]] || fail "/dev/vfio/$group missing after binding $BDF to vfio-pci"
[[ -c /dev/vfio/vfio ]] || fail "/dev/vfio/vfio missing"
[[ -z $(netdev_by_mac "$VM_VFIO_NET_MAC") ]] || fail "netdev of $BDF still present while on vfio-pci"
info "virtio-pci -> vfio-pci: $((t1 - t0)) ms, group $group"

# --- back to virtio-pci
sysfs_write "$D/driver_override" $'\n'
assert_eq "$(<"$D/driver_override")" "(null)" "driver_override after clearing"
rebind
assert_eq "$(sysfs_driver "$BDF")" virtio-pci "driver after restoring"
wait_for 5 test -n "$(netdev_by_mac "$VM_VFIO_NET_MAC")" || true
[[ -n $(netdev_by_mac "$VM_VFIO_NET_MAC") ]] || fail "netdev with MAC $VM_VFIO_NET_MAC did not come back"
[[ ! -e /dev/vfio/$group ]] || fail "/dev/vfio/$group still present after unbinding from vfio-pci"

# --- a driver that cannot take the device: drivers_probe still succeeds
assert_exists "/sys/bus/pci/drivers/$REFUSER" "driver $REFUSER"
sysfs_write "$D/driver_override" "$REFUSER"
sysfs_write "$D/driver/unbind" "$BDF"
t0=$(now_ms)
if ! e=$( { printf '%s' "$BDF" >/sys/bus/pci/drivers_probe; } 2>&1 ); then
    fail "drivers_probe with override $REFUSER failed (${e##*: }): the quirk under test is absent"
fi
t1=$(now_ms)
assert_eq "$(sysfs_driver "$BDF")" "" "driver after override=$REFUSER + drivers_probe (must be none)"
info "override=$REFUSER: drivers_probe returned success, device left unbound, $((t1 - t0)) ms"

# --- and back again
sysfs_write "$D/driver_override" $'\n'
sysfs_write /sys/bus/pci/drivers_probe "$BDF"
assert_eq "$(sysfs_driver "$BDF")" virtio-pci "driver after final restore"
