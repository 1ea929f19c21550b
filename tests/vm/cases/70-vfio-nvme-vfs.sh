#!/bin/bash
# 70-vfio-nvme-vfs: the emulated NVMe PF's VFs through VFIO. With the PF on
# nvme: a VF on vfio-pci opens in its own group, its regions match sysfs,
# `vfio selftest` passes (config header compared with the VF fields vfio-pci
# fills in by design), and a VF token is refused (the PF is not on vfio-pci).
# With the PF itself on vfio-pci (enable_sriov=1): a VF opens only with the
# PF user's VF token, and the errors say so; the PF passes the selftest too.
# Runs in each VFIO mode. iommufd: the token goes in VFIO_DEVICE_BIND_IOMMUFD
# (Linux 6.17+); older kernels check none on the cdev path, so iovkit refuses
# a VF there without a token, and with one says the kernel cannot take it.
# vm-timeout: 240
# vm-vfio-modes: container iommufd
. "$(dirname "$0")/../lib.sh"
require_iovctl
require_vfio_mode
M=("${VFIO_MODE_ARGS[@]}")

PF=$VM_NVME_PF_BDF
P=/sys/bus/pci/devices/$PF
read -r -a VFS <<<"$VM_NVME_VF_BDFS"
VF=${VFS[0]}
TOKEN=11111111-2222-3333-4444-555555555555
[[ -e $P/sriov_numvfs ]] || skip "$PF has no sriov_numvfs"
assert_eq "$(<"$P/sriov_numvfs")" 0 "sriov_numvfs of $PF at the start"
ap0=$(<"$P/sriov_drivers_autoprobe")
PARAM=/sys/module/vfio_pci/parameters/enable_sriov
sriov0=

cleanup() {
    "$IOVCTL" sriov set "$PF" --numvfs 0 --force >/dev/null 2>&1 || printf 0 >"$P/sriov_numvfs" 2>/dev/null || true
    [[ -n $sriov0 ]] && printf '%s' "$sriov0" >"$PARAM" 2>/dev/null
    "$IOVCTL" restore "$PF" >/dev/null 2>&1 || true
    printf '%s' "$ap0" >"$P/sriov_drivers_autoprobe" 2>/dev/null || true
    rm -f "/run/iovkit/sriov-autoprobe/$PF" "${VFS[@]/#//run/iovkit/previous-driver/}"
}
trap cleanup EXIT

# --- PF on nvme, one VF on vfio-pci
run_iovctl 0 sriov set "$PF" --numvfs 2 --no-autoprobe
run_iovctl 0 bind "$VF" vfio-pci
run_iovctl 0 vfio info --json "${M[@]}" "$VF"
JSON=$out MODE=$VFIO_MODE python3 - "$VF" "$(iommu_group "$VF")" <<'EOF' || fail "vfio info of $VF disagrees with sysfs (see above)"
import json, os, sys
vf, group = sys.argv[1], int(sys.argv[2])
d = json.loads(os.environ["JSON"])
dev = f"/sys/bus/pci/devices/{vf}"
bad = []
if d["backend"] != os.environ["MODE"]:
    bad.append(f"backend {d['backend']}, VFIO mode {os.environ['MODE']}")
if d["iommu_group"] != group or d["group_devices"] != [vf]:
    bad.append(f"group {d['iommu_group']} {d['group_devices']}, sysfs {group}")
res = [l.split() for l in open(f"{dev}/resource").read().splitlines()]
for r in d["regions"][:7]:
    start, end = int(res[r["index"]][0], 16), int(res[r["index"]][1], 16)
    if r["size"] != (end - start + 1 if end else 0):
        bad.append(f"{r['name']} size {r['size']} vs resource {res[r['index']]}")
irq = {q["name"]: q["count"] for q in d["irqs"]}
if irq["INTX"] != 0 or irq["MSIX"] < 1:
    bad.append(f"irqs {irq} (a VF has no INTx, and MSI-X)")
# vfio-pci shows the VF's real ids (the hardware reads 0xffff)
ids = bytes.fromhex(d["config_header"][:8])
want = (int(open(f"{dev}/vendor").read(), 16), int(open(f"{dev}/device").read(), 16))
if (int.from_bytes(ids[:2], "little"), int.from_bytes(ids[2:], "little")) != want:
    bad.append(f"ids {ids.hex()} vs sysfs {want}")
for b in bad:
    print("mismatch:", b)
sys.exit(1 if bad else 0)
EOF

run_iovctl 0 vfio selftest --json "${M[@]}" "$VF"
JSON=$out python3 - <<'EOF' || fail "VF selftest not as expected (see above)"
import json, os, sys
d = json.loads(os.environ["JSON"])
st = {s["name"]: (s["status"], s["message"]) for s in d["steps"]}
skip = {"msi", "intx", "dma-map-hugetlb"}  # no MSI/INTx on this VF; hugetlb only if pages are reserved
bad = [f"{n}: {s} {m}" for n, (s, m) in st.items() if s != "PASS" and not (n in skip and s == "SKIP")]
if "a VF" not in st["config-read"][1]:
    bad.append("config-read does not say the VF fields were vfio-pci's: " + st["config-read"][1])
for b in bad:
    print("selftest:", b)
sys.exit(1 if bad else 0)
EOF

# a VF token is only for a VF whose PF is on vfio-pci
run_iovctl 1 vfio info "${M[@]}" --vf-token "$TOKEN" "$VF"
[[ $err == *"refused the VF token"*"PF is bound to vfio-pci"* ]] || fail "misplaced token not explained: $err"
run_iovctl 0 sriov set "$PF" --numvfs 0 --force

# --- the PF on vfio-pci: its VFs need the VF token of the PF's user
[[ -w $PARAM ]] || skip "vfio-pci has no writable enable_sriov parameter"
run_iovctl 0 bind "$PF" vfio-pci
sriov0=$(<"$PARAM")
printf Y >"$PARAM"
run_iovctl 0 sriov set "$PF" --numvfs 1 --no-autoprobe
run_iovctl 0 bind "$VF" vfio-pci
run_iovctl 1 vfio info "${M[@]}" "$VF"
[[ $err == *"wants a VF token"* ]] || fail "missing token not explained: $err"
e=$(json_get error.errno_name <<<"$("$IOVCTL" --json vfio info "${M[@]}" "$VF" 2>/dev/null)") || true
assert_eq "$e" EACCES "errno of the missing token"
run_iovctl 1 vfio info "${M[@]}" --vf-token "$TOKEN" "$VF"
if [[ $VFIO_MODE == iommufd && $err == *"takes no VF token"* ]]; then
    # before 6.17 the cdev path has no token to check: said, not ignored
    [[ $err == *"VFIO_DEVICE_BIND_FLAG_TOKEN"*"container backend"* ]] || fail "token on an old cdev not explained: $err"
    e=$(json_get error.errno_name <<<"$("$IOVCTL" --json vfio info "${M[@]}" --vf-token "$TOKEN" "$VF" 2>/dev/null)") || true
    assert_eq "$e" EOPNOTSUPP "errno of a token this kernel's cdev cannot take"
    info "kernel $(uname -r): the VFIO cdev takes no VF token (6.17+)"
else
    [[ $err == *"refused the VF token $TOKEN"* ]] || fail "wrong token not explained: $err"
fi

run_iovctl 0 vfio selftest --json "${M[@]}" "$PF"
assert_eq "$(json_get summary.fail <<<"$out")" 0 "failed steps of the PF's selftest"
