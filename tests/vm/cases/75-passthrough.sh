#!/bin/bash
# 75-passthrough: `iovctl passthrough prepare|release` against the kernel.
# The virtio-net device: refused while its interface is up (named), then
# moved to vfio-pci with its previous driver recorded durably and the QEMU
# and libvirt lines printed; a second prepare changes nothing and keeps the
# record; release refuses while the group is held open (a running VM);
# release puts virtio-pci back and drops both records; release
# from a fresh process with only the passthrough record on disk does too; a prepare killed after writing its record but
# before moving anything is cleaned up by release. The ICH9 group: a prepare
# of the SATA controller is refused naming the members on their kernel
# drivers, and nothing in that group is touched.
# vm-timeout: 180
. "$(dirname "$0")/../lib.sh"
require_iovctl

BDF=$VM_VFIO_NET_BDF
SATA=0000:00:1f.2
REC=/run/iovkit/passthrough/$BDF
holder=""
cleanup() {
    exec 9>&- 2>/dev/null
    [[ -n $holder ]] && kill "$holder" 2>/dev/null
    "$IOVCTL" passthrough release "$BDF" >/dev/null 2>&1 || true
    [[ $(sysfs_driver "$BDF") == virtio-pci ]] || "$IOVCTL" restore "$BDF" >/dev/null 2>&1 || true
    [[ -n ${ifc:-} ]] && ip link set "$ifc" down 2>/dev/null
    return 0
}
trap cleanup EXIT

assert_eq "$(sysfs_driver "$BDF")" virtio-pci "driver at the start"
group=$(iommu_group "$BDF")
ifc=$(netdev_by_mac "$VM_VFIO_NET_MAC")
[[ -n $ifc ]] || fail "no interface with MAC $VM_VFIO_NET_MAC"

# --- the host uses it: an interface that is up is named, nothing changes
ip link set "$ifc" up
run_iovctl 1 passthrough prepare "$BDF"
[[ $err == *"$BDF"*"network interface $ifc is up"* ]] || fail "refusal must name $ifc: $err"
assert_eq "$(sysfs_driver "$BDF")" virtio-pci "driver after the refusal"
[[ ! -e $REC ]] || fail "a refused prepare left $REC"
ip link set "$ifc" down

# --- prepare: vfio-pci, the record, the VMM lines
run_iovctl 0 passthrough prepare --json "$BDF"
assert_eq "$(sysfs_driver "$BDF")" vfio-pci "driver link after prepare"
[[ -c /dev/vfio/$group ]] || fail "/dev/vfio/$group missing after prepare"
assert_exists "$REC" "passthrough record"
JSON=$out python3 - "$BDF" "$group" "$REC" <<'EOF' || fail "prepare --json: $out"
import json, os, sys
bdf, group, rec = sys.argv[1], int(sys.argv[2]), sys.argv[3]
d = json.loads(os.environ["JSON"])
assert d["address"] == bdf and d["iommu_group"] == group and d["record"] == rec, d
assert d["devices"] == [{"address": bdf, "previous_driver": "virtio-pci", "driver": "vfio-pci",
                         "requested": True, "changed": True}], d["devices"]
assert d["qemu_args"] == ["-device", f"vfio-pci,host={bdf}"], d["qemu_args"]
assert d["libvirt_xml"] == ("<hostdev mode='subsystem' type='pci' managed='no'>\n  <source>\n"
                            "    <address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/>\n"
                            "  </source>\n</hostdev>\n"), d["libvirt_xml"]
text = open(rec).read()
assert f"address {bdf}\n" in text and f"group {group}\n" in text, text
assert f"device {bdf} virtio-pci -\n" in text, text
EOF
record=$(<"$REC")

# a second prepare: nothing moves, the record (the older truth) stays
run_iovctl 0 passthrough prepare --json "$BDF"
assert_eq "$(json_get devices.0.changed <<<"$out")" false "second prepare changed"
assert_eq "$(json_get devices.0.previous_driver <<<"$out")" virtio-pci "previous driver from the record"
assert_eq "$(<"$REC")" "$record" "record after the second prepare"
run_iovctl 0 passthrough prepare "$BDF"
[[ $out == *"-device vfio-pci,host=$BDF"* && $out == *"bus='0x01' slot='0x00' function='0x0'"* ]] ||
    fail "text output lacks the QEMU or libvirt line: $out"

# --- a VM holding the group: release refuses instead of blocking in the
# kernel (vfio-pci's remove waits for the user), and changes nothing
exec 9<>"/dev/vfio/$group"
run_iovctl 1 passthrough release "$BDF"
[[ $err == *"IOMMU group $group is in use"* && $err == *"/dev/vfio/$group is open"* ]] ||
    fail "release with the group open: $err"
assert_eq "$(sysfs_driver "$BDF")" vfio-pci "driver after the refused release"
assert_eq "$(<"$REC")" "$record" "record after the refused release"
exec 9>&-

# --- release: virtio-pci back, both records gone (the group bind wrote
# bind.c's previous-driver record; release drops it with its own)
assert_eq "$(<"/run/iovkit/previous-driver/$BDF")" virtio-pci "previous-driver record of the group bind"
run_iovctl 0 passthrough release "$BDF"
[[ $out == *"$BDF  back on virtio-pci"* ]] || fail "release text: $out"
assert_eq "$(sysfs_driver "$BDF")" virtio-pci "driver link after the first release"
[[ ! -e $REC && ! -e /run/iovkit/previous-driver/$BDF ]] || fail "records left after release"

# --- again, and release from a fresh process with only the passthrough record on disk
run_iovctl 0 passthrough prepare "$BDF"
assert_eq "$(sysfs_driver "$BDF")" vfio-pci "driver link after the second prepare"
rm -f "/run/iovkit/previous-driver/$BDF"
run_iovctl 0 passthrough release --json "$BDF"
assert_eq "$(json_get released <<<"$out")" true "released"
assert_eq "$(json_get devices.0.driver <<<"$out")" virtio-pci "reported driver after release"
assert_eq "$(json_get devices.0.changed <<<"$out")" true "reported change"
assert_eq "$(sysfs_driver "$BDF")" virtio-pci "driver link after release"
assert_eq "$(<"/sys/bus/pci/devices/$BDF/driver_override")" "(null)" "override after release"
[[ ! -e $REC ]] || fail "record left after release"
wait_for 5 test -n "$(netdev_by_mac "$VM_VFIO_NET_MAC")" || fail "virtio-net interface did not come back"
ifc=$(netdev_by_mac "$VM_VFIO_NET_MAC")

run_iovctl 0 passthrough release "$BDF"
[[ $out == *"nothing to release"* ]] || fail "second release: $out"

# --- a prepare killed after its record, before any move: release cleans up
if command -v flock >/dev/null; then
    mkdir -p /run/iovkit
    # The bind lock, held by one process that dies with `kill`: flock(1)
    # with a command would leave that command holding the inherited fd
    # (and the lock) after flock itself is killed.
    (exec 8>/run/iovkit/lock && flock 8 && exec sleep 60) &
    holder=$!
    wait_for 5 bash -c '! flock -n /run/iovkit/lock true' || fail "lock holder did not start"
    "$IOVCTL" --timeout 50000 passthrough prepare "$BDF" >/dev/null 2>&1 &
    victim=$!
    wait_for 20 test -e "$REC" || fail "prepare wrote no record before waiting for the bind lock"
    kill -9 "$victim"
    wait "$victim" 2>/dev/null || true
    kill "$holder"; wait "$holder" 2>/dev/null || true; holder=""
    assert_eq "$(sysfs_driver "$BDF")" virtio-pci "driver after the killed prepare"
    [[ $(<"$REC") == *"device $BDF virtio-pci -"* ]] || fail "record of the killed prepare: $(<"$REC")"
    run_iovctl 0 passthrough release --json "$BDF"
    assert_eq "$(json_get released <<<"$out")" true "release after the killed prepare"
    assert_eq "$(json_get devices.0.changed <<<"$out")" false "nothing was moved, nothing moved back"
    assert_eq "$(sysfs_driver "$BDF")" virtio-pci "driver after that release"
    [[ ! -e $REC ]] || fail "record left after releasing the killed prepare"
else
    info "no flock(1): the killed-prepare step is not run"
fi

# --- the ICH9 group: refused before any write, naming the members on kernel drivers
sata_group=$(iommu_group "$SATA")
want=()
declare -A drv_before ovr_before
for d in $(group_devices "$sata_group"); do
    drv_before[$d]=$(sysfs_driver "$d")
    ovr_before[$d]=$(<"/sys/bus/pci/devices/$d/driver_override")
    [[ $d == "$SATA" ]] && continue
    case ${drv_before[$d]} in ""|vfio*|pci-stub|pcieport) ;; *) want+=("$d") ;; esac
done
# Without a blocker, prepare would really move the SATA controller: never here.
if ((${#want[@]} == 0)); then
    info "ICH9 group $sata_group has no member on a kernel driver: the refusal is not tested"
    exit 0
fi
run_iovctl 1 passthrough prepare --json "$SATA"
# the other members, in order (the controller itself may add reasons of its own)
got=$(python3 -c '
import json, sys
seen = []
for b in json.load(sys.stdin)["error"]["blockers"]:
    if b["address"] != sys.argv[1] and b["address"] not in seen:
        seen.append(b["address"])
print(" ".join(seen))' "$SATA" <<<"$out")
assert_eq "$got" "${want[*]}" "blockers named for $SATA"
for d in "${want[@]}"; do
    [[ $err == *"$d (${drv_before[$d]}): bound to ${drv_before[$d]}"* ]] || fail "stderr must name $d and ${drv_before[$d]}: $err"
done
for d in $(group_devices "$sata_group"); do
    assert_eq "$(sysfs_driver "$d")" "${drv_before[$d]}" "driver of $d after the refusal"
    assert_eq "$(<"/sys/bus/pci/devices/$d/driver_override")" "${ovr_before[$d]}" "override of $d after the refusal"
done
[[ ! -e /run/iovkit/passthrough/$SATA ]] || fail "a refused prepare left a record for $SATA"
