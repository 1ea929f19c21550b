#!/bin/bash
# 66-udev-overrides: the driver overrides of iovkit.json(5) persist as
# driverctl's do. With systemd-udevd running in the guest (started here: the
# guest's init has none) and contrib/udev/90-iovkit.rules installed, VFs
# created after boot by a plain write to sriov_numvfs (no iovctl call) come up
# on the driver the configuration names: VFs 0 and 1 by their PF's entry,
# VFs 2 and 3 by a devices[] address glob. `iovctl overrides` then reports
# every override in effect; a device the configuration says nothing about
# (the ICH9 SMBus) is left alone.
# vm-timeout: 120
. "$(dirname "$0")/../lib.sh"
require_iovctl
require_cmd udevadm python3
UDEVD=/lib/systemd/systemd-udevd
[[ -x $UDEVD ]] || skip "no $UDEVD"
pgrep -x systemd-udevd >/dev/null && skip "a systemd-udevd runs already: this case starts its own"

PF=$VM_NVME_PF_BDF
P=/sys/bus/pci/devices/$PF
read -r -a VFS <<<"$VM_NVME_VF_BDFS"
[[ -e $P/sriov_numvfs ]] || skip "$PF has no sriov_numvfs"
assert_eq "$(<"$P/sriov_numvfs")" 0 "sriov_numvfs of $PF at the start"
ap0=$(<"$P/sriov_drivers_autoprobe")
RULE=/etc/udev/rules.d/90-iovkit.rules
CONF=/etc/iovkit/apply.d
[[ ! -e $CONF ]] || skip "$CONF exists in the guest"
cleanup() {  # no VFs, autoprobe as found, no udevd, no rule, no configuration
    udevadm control --exit 2>/dev/null || true
    printf 0 >"$P/sriov_numvfs" 2>/dev/null || true
    printf '%s' "$ap0" >"$P/sriov_drivers_autoprobe" 2>/dev/null || true
    rm -f "$RULE" "${VFS[@]/#//run/iovkit/previous-driver/}"
    rm -rf /etc/iovkit
    return 0
}
trap cleanup EXIT

# the rule as make install writes it, naming the build's iovctl
mkdir -p "$(dirname "$RULE")" "$CONF"
sed "s|@SBINDIR@/iovctl|$IOVCTL|" "$REPO/contrib/udev/90-iovkit.rules.in" >"$RULE"
grep -q "RUN+=\"$IOVCTL overrides apply \$kernel\"" "$RULE" || fail "rule: $(grep RUN "$RULE")"
cat >"$CONF/nvme.json" <<JSON
{"pfs": [{"pf": "$PF", "vfs": [{"vf": 0, "driver": "vfio-pci"}, {"vf": 1, "driver": "vfio-pci"}]}],
 "devices": [{"device": "${PF%.*}.[34]", "driver": "vfio-pci"}]}
JSON
smbus=$(sysfs_driver 0000:00:1f.3)

"$UDEVD" --daemon || fail "systemd-udevd --daemon failed"
wait_for 10 udevadm control --ping || fail "systemd-udevd does not answer"

# VFs created after boot, autoprobe off: nothing but the rule gives them a driver
t0=$(now_ms)
printf 0 >"$P/sriov_drivers_autoprobe"
printf 4 >"$P/sriov_numvfs"
all_on_vfio() { local v; for v in "${VFS[@]}"; do [[ $(sysfs_driver "$v") == vfio-pci ]] || return 1; done; }
if ! wait_for 60 all_on_vfio; then
    udevadm settle --timeout=10 || true
    fail "VFs not on vfio-pci: $(for v in "${VFS[@]}"; do printf '%s=%s ' "$v" "$(sysfs_driver "$v")"; done)"
fi
info "4 VFs created and bound by udev: $(($(now_ms) - t0)) ms"
for v in "${VFS[@]}"; do
    [[ -c /dev/vfio/$(iommu_group "$v") ]] || fail "/dev/vfio/$(iommu_group "$v") missing for $v"
done
udevadm settle --timeout=30 || info "udevadm settle timed out"
assert_eq "$(sysfs_driver 0000:00:1f.3)" "$smbus" "a device without an override"

# what iovctl overrides reports: every override in effect, by entry
run_iovctl 0 overrides --json
python3 -S - "$out" "${VFS[@]}" <<'PY' || fail "iovctl overrides: $out"
import json, sys
rows = json.loads(sys.argv[1])
vfs = sys.argv[2:]
got = [(r["path"], r["device"], r["driver"], r["in_effect"]) for r in rows]
want = [("pfs[0].vfs[0]", vfs[0], "vfio-pci", True), ("pfs[0].vfs[1]", vfs[1], "vfio-pci", True),
        ("devices[0]", vfs[2], "vfio-pci", True), ("devices[0]", vfs[3], "vfio-pci", True)]
if got != want:
    print(f"got {got}", file=sys.stderr)
    sys.exit(1)
PY
