#!/bin/bash
# 22-bind-in-use: the host-use rule against the kernel. The virtio-net
# device's interface up with an address and a static route (read over
# rtnetlink): iovctl bind, unbind and bind --group refuse it naming each
# reason, and nothing changes (driver link, override, no record); --force
# binds it to vfio-pci, says what it overrode, and restore puts virtio-pci
# back and the interface reappears. The interface's name names the device.
. "$(dirname "$0")/../lib.sh"
require_iovctl

BDF=$VM_VFIO_NET_BDF
group=$(iommu_group "$BDF")
ifc=$(netdev_by_mac "$VM_VFIO_NET_MAC")
[[ -n $ifc ]] || fail "no interface with MAC $VM_VFIO_NET_MAC"
cleanup() {
    [[ $(sysfs_driver "$BDF") == virtio-pci ]] || "$IOVCTL" restore --force "$BDF" >/dev/null 2>&1 || true
    ifc=$(netdev_by_mac "$VM_VFIO_NET_MAC")
    [[ -n $ifc ]] && { ip addr flush dev "$ifc"; ip link set "$ifc" down; } 2>/dev/null
    return 0
}
trap cleanup EXIT

assert_eq "$(sysfs_driver "$BDF")" virtio-pci "driver at the start"
ip link set "$ifc" up
ip addr add 192.0.2.10/24 dev "$ifc"
ip route add 198.51.100.0/24 via 192.0.2.1 dev "$ifc"

for args in "bind $BDF vfio-pci" "unbind $BDF" "bind --group $BDF vfio-pci"; do
    # shellcheck disable=SC2086  # the words of the command
    run_iovctl 1 $args --json
    JSON=$out python3 - "$BDF" "$ifc" "$args" <<'EOF' || fail "iovctl $args --json: $out"
import json, os, sys
bdf, ifc, args = sys.argv[1:]
e = json.loads(os.environ["JSON"])["error"]
assert e["errno_name"] == "EBUSY" and "in use by the host" in e["message"], e
got = {(b["address"], b["kind"], b["object"]) for b in e["blockers"]}
assert got == {(bdf, "netdev-up", ifc), (bdf, "netdev-address", ifc), (bdf, "netdev-route", ifc)}, got
addr = [b for b in e["blockers"] if b["kind"] == "netdev-address"][0]
assert "192.0.2.10/24" in addr["reason"] and addr["driver"] == "virtio-pci", addr
route = [b for b in e["blockers"] if b["kind"] == "netdev-route"][0]
assert "198.51.100.0/24" in route["reason"], route
EOF
    [[ $err == *"$BDF (virtio-pci): its network interface $ifc is up"* && $err == *"--force"* ]] ||
        fail "iovctl $args: the refusal must name $ifc and --force: $err"
    assert_eq "$(sysfs_driver "$BDF")" virtio-pci "driver after a refused $args"
    assert_eq "$(</sys/bus/pci/devices/$BDF/driver_override)" "(null)" "override after a refused $args"
    [[ ! -e /run/iovkit/previous-driver/$BDF ]] || fail "a refused $args left a previous-driver record"
done
assert_eq "$(netdev_by_mac "$VM_VFIO_NET_MAC")" "$ifc" "the interface after the refusals"

# the interface names the device (virtio-net's is below virtioN/ of the
# PCI function), and the device lists it: dpdk-devbind's way of naming it
run_iovctl 0 show --json "$ifc"
JSON=$out python3 -c '
import json, os, sys
d = json.loads(os.environ["JSON"])
assert d["address"] == sys.argv[1] and d["net"] == [sys.argv[2]], (d["address"], d["net"])
' "$BDF" "$ifc" || fail "show $ifc: $out"
run_iovctl 1 bind --json "$ifc" vfio-pci
[[ $err == *"$BDF (virtio-pci): its network interface $ifc is up"* ]] || fail "bind $ifc: $err"
assert_eq "$(sysfs_driver "$BDF")" virtio-pci "driver after a refused bind by interface name"

# --force: done, said, and undone by restore
run_iovctl 0 bind --json --force "$BDF" vfio-pci
assert_eq "$(sysfs_driver "$BDF")" vfio-pci "driver after a forced bind"
[[ $err == *"although the host uses it (--force)"*"$ifc is up"* ]] || fail "a forced bind must say what it overrode: $err"
JSON=$out python3 -c '
import json, os
d = json.loads(os.environ["JSON"])
assert d["changed"] and d["previous_driver"] == "virtio-pci", d
assert {b["kind"] for b in d["overridden"]} == {"netdev-up", "netdev-address", "netdev-route"}, d["overridden"]
' || fail "bind --force --json: $out"
[[ -c /dev/vfio/$group ]] || fail "/dev/vfio/$group missing after the forced bind"
run_iovctl 0 restore "$BDF"
assert_eq "$(sysfs_driver "$BDF")" virtio-pci "driver after restore"
wait_for 5 test -n "$(netdev_by_mac "$VM_VFIO_NET_MAC")" || fail "virtio-net interface did not come back"
