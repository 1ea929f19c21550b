#!/bin/bash
# 20-bind-vfio: iovctl bind/unbind/restore of the virtio-net device to
# vfio-pci and back, checked through the kernel's own driver link; iovctl
# loads vfio-pci itself; a second bind is a no-op; --group binds the group.
. "$(dirname "$0")/../lib.sh"
require_iovctl

BDF=$VM_VFIO_NET_BDF
group=$(iommu_group "$BDF")
cleanup() { "$IOVCTL" restore "$BDF" >/dev/null 2>&1 || true; }
trap cleanup EXIT

assert_eq "$(sysfs_driver "$BDF")" virtio-pci "driver before"
# iovctl must load the module on its own: start without it
modprobe -r vfio-pci 2>/dev/null || true
[[ ! -e /sys/bus/pci/drivers/vfio-pci ]] || skip "cannot unload vfio-pci to test module loading"

out=$("$IOVCTL" bind --json "$BDF" vfio-pci) || fail "iovctl bind failed: $out"
assert_eq "$(sysfs_driver "$BDF")" vfio-pci "driver link after bind"
assert_eq "$(json_get driver <<<"$out")" vfio-pci "reported driver"
assert_eq "$(json_get previous_driver <<<"$out")" virtio-pci "reported previous driver"
assert_eq "$(json_get changed <<<"$out")" true "changed"
assert_eq "$(json_get module_loaded <<<"$out")" true "module_loaded"
assert_eq "$(</sys/bus/pci/devices/$BDF/driver_override)" vfio-pci "override pinned"
[[ -c /dev/vfio/$group ]] || fail "/dev/vfio/$group missing after bind"
assert_eq "$(</run/iovkit/previous-driver/$BDF)" virtio-pci "recorded previous driver"

out=$("$IOVCTL" bind --json "$BDF" vfio-pci) || fail "second bind failed: $out"
assert_eq "$(json_get changed <<<"$out")" false "second bind changes nothing"

out=$("$IOVCTL" unbind --json "$BDF") || fail "unbind failed: $out"
assert_eq "$(sysfs_driver "$BDF")" "" "driver after unbind"
assert_eq "$(json_get previous_driver <<<"$out")" vfio-pci "unbind reports vfio-pci"

out=$("$IOVCTL" restore --json "$BDF") || fail "restore failed: $out"
assert_eq "$(sysfs_driver "$BDF")" virtio-pci "driver after restore"
assert_eq "$(</sys/bus/pci/devices/$BDF/driver_override)" "(null)" "override cleared by restore"
[[ ! -e /run/iovkit/previous-driver/$BDF ]] || fail "record left after restore"
wait_for 5 test -n "$(netdev_by_mac "$VM_VFIO_NET_MAC")" || fail "virtio-net interface did not come back"

# the whole group in one call (this device's group has no other endpoint)
out=$("$IOVCTL" bind --json --group "$BDF" vfio-pci) || fail "group bind failed: $out"
assert_eq "$(json_get devices_changed <<<"$out")" 1 "devices moved by group bind"
for d in $(group_devices "$group"); do
    [[ $(</sys/bus/pci/devices/$d/class) == 0x0604* ]] && continue  # ports stay on pcieport
    assert_eq "$(sysfs_driver "$d")" vfio-pci "driver of $d after group bind"
done
"$IOVCTL" restore "$BDF" >/dev/null || fail "restore after group bind failed"
assert_eq "$(sysfs_driver "$BDF")" virtio-pci "driver after second restore"
