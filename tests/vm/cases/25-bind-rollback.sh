#!/bin/bash
# 25-bind-rollback: binding to a driver whose probe refuses the device
# (shpchp: -ENODEV for anything that is not an SHPC bridge) must fail with a
# clear message and leave the device on its original driver, override unset.
# drivers_probe itself reports success in that case (see 05-sysfs-bind-raw):
# only the driver-link check catches it.
. "$(dirname "$0")/../lib.sh"
require_iovctl

BDF=$VM_VFIO_NET_BDF
REFUSER=${IOVKIT_REFUSING_DRIVER:-shpchp}
trap '"$IOVCTL" restore "$BDF" >/dev/null 2>&1 || true' EXIT
modprobe "$REFUSER" 2>/dev/null || true
[[ -e /sys/bus/pci/drivers/$REFUSER ]] || skip "driver $REFUSER not available"
assert_eq "$(sysfs_driver "$BDF")" virtio-pci "driver before"

set +e
err=$("$IOVCTL" bind "$BDF" "$REFUSER" 2>&1 >/dev/null)
rc=$?
set -e
assert_eq "$rc" 1 "exit status of a refused bind"
[[ $err == *"$BDF"* && $err == *"$REFUSER"* ]] || fail "message must name device and driver: $err"
[[ $err == *"did not take the device"* && $err == *"virtio-pci restored"* ]] || fail "message: $err"
assert_eq "$(sysfs_driver "$BDF")" virtio-pci "driver after the failed bind"
assert_eq "$(</sys/bus/pci/devices/$BDF/driver_override)" "(null)" "override after the failed bind"
[[ ! -e /run/iovkit/previous-driver/$BDF ]] || fail "a failed bind must not leave a record"
info "rollback message: $err"

# JSON error object for the same failure
set +e
out=$("$IOVCTL" bind --json "$BDF" "$REFUSER" 2>/dev/null)
set -e
assert_eq "$(json_get error.errno_name <<<"$out")" ENODEV "errno of a refused bind"
assert_eq "$(sysfs_driver "$BDF")" virtio-pci "driver after the second failed bind"
