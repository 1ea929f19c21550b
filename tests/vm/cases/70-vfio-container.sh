#!/bin/bash
# 70-vfio-container: the virtio-net device through VFIO, in each VFIO mode
# (the legacy container; iommufd with the device's cdev), with facts checked
# against sysfs and the kernel. `iovctl vfio info --json`: type1v2 (or
# iommufd), group, regions (sizes from sysfs resource, config size, mmap-able
# BARs), IRQ counts (MSI-X table size from config space), IOVA ranges (the
# testbed's 0..0xfedfffff and the MSI hole excluded), dma_avail equal to
# vfio_iommu_type1's dma_entry_limit (iommufd: none, unlimited), the config
# header equal to sysfs config. `iovctl vfio selftest --json`: every step
# passes (DMA map of memfd and hugetlb buffers, top of the IOVA space,
# refusals outside the valid ranges and on wrap, MSI-X/INTx eventfds, reset).
# Refusals: not on vfio-pci ("bind it first"), RLIMIT_MEMLOCK too low (named,
# with the limit), group held by another process, group not viable (ICH9:
# blockers named), iommufd on a kernel without it. Mode auto picks iommufd
# exactly when /dev/iommu and /dev/vfio/devices exist.
# vm-timeout: 240
# vm-vfio-modes: container iommufd
. "$(dirname "$0")/../lib.sh"
require_iovctl
require_vfio_mode
M=("${VFIO_MODE_ARGS[@]}")

BDF=$VM_VFIO_NET_BDF
SMBUS=0000:00:1f.3 # ICH9 SMBus: its group also holds 1f.0 (lpc_ich) and 1f.2 (ahci)
huge0=$(</proc/sys/vm/nr_hugepages)
cleanup() {
    exec 9>&- 2>/dev/null || true
    "$IOVCTL" restore "$BDF" >/dev/null 2>&1 || true
    "$IOVCTL" restore "$SMBUS" >/dev/null 2>&1 || true
    printf '%s' "$huge0" >/proc/sys/vm/nr_hugepages 2>/dev/null || true
}
trap cleanup EXIT

# --- not on vfio-pci yet: refused, and the error says what to do
assert_eq "$(sysfs_driver "$BDF")" virtio-pci "driver at the start"
run_iovctl 1 vfio info "${M[@]}" "$BDF"
[[ $err == *"bind it first: iovctl bind $BDF vfio-pci"* ]] || fail "no 'bind it first' advice: $err"

run_iovctl 0 bind "$BDF" vfio-pci
assert_eq "$(sysfs_driver "$BDF")" vfio-pci "driver after bind"
group=$(iommu_group "$BDF")

# --- info: every fact against sysfs and the kernel
run_iovctl 0 vfio info --json "${M[@]}" "$BDF"
info=$out
JSON=$info MODE=$VFIO_MODE python3 - "$BDF" "$group" <<'EOF' || fail "vfio info --json disagrees with sysfs (see above)"
import json, os, sys
bdf, group = sys.argv[1], int(sys.argv[2])
d = json.loads(os.environ["JSON"])
dev = f"/sys/bus/pci/devices/{bdf}"
errors = []
def want(cond, msg):
    if not cond:
        errors.append(msg)

want(d["address"] == bdf and d["driver"] == "vfio-pci", f"address/driver {d['address']} {d['driver']}")
mode = os.environ["MODE"]
want((d["backend"], d["mode"]) == (("container", "type1v2") if mode == "container" else ("iommufd", "iommufd")),
     f"backend {d['backend']} mode {d['mode']} in VFIO mode {mode}")
want(d["iommu_group"] == group and d["viable"] is True, f"group {d['iommu_group']} (sysfs {group})")
want(d["group_devices"] == sorted(os.listdir(f"/sys/kernel/iommu_groups/{group}/devices")), d["group_devices"])
want("pci" in d["flags"] and d["reset"] is True, f"flags {d['flags']}")
rm = open(f"{dev}/reset_method").read().split() if os.path.exists(f"{dev}/reset_method") else None
want(d["reset_methods"] == rm, f"reset_methods {d['reset_methods']} vs sysfs {rm}")

# regions: BARs and ROM against sysfs resource, config against the config file
res = [l.split() for l in open(f"{dev}/resource").read().splitlines()]
regs = {r["name"]: r for r in d["regions"]}
want(len(d["regions"]) == 9, f"{len(d['regions'])} regions (testbed: 9)")
for i, name in enumerate(["BAR0", "BAR1", "BAR2", "BAR3", "BAR4", "BAR5", "ROM"]):
    start, end = int(res[i][0], 16), int(res[i][1], 16)
    size = end - start + 1 if end else 0
    want(regs[name]["size"] == size, f"{name}: size {regs[name]['size']}, sysfs resource says {size}")
want(regs["CONFIG"]["size"] == os.path.getsize(f"{dev}/config"),
     f"CONFIG size {regs['CONFIG']['size']} vs {os.path.getsize(f'{dev}/config')}")
for name in ("BAR1", "BAR4"):  # testbed: both mmap-able
    want({"read", "write", "mmap"} <= set(regs[name]["flags"]), f"{name} flags {regs[name]['flags']}")
offsets = [r["offset"] for r in d["regions"] if r["size"]]
want(len(set(offsets)) == len(offsets), f"region offsets collide: {offsets}")

# IRQs: MSI-X vectors = the table size in the device's MSI-X capability
cfg = open(f"{dev}/config", "rb").read()
msix = None
p = cfg[0x34]
for _ in range(48):
    if not p:
        break
    if cfg[p] == 0x11:
        msix = (int.from_bytes(cfg[p + 2:p + 4], "little") & 0x7ff) + 1
    p = cfg[p + 1]
irqs = {q["name"]: q for q in d["irqs"]}
want(msix is not None and irqs["MSIX"]["count"] == msix, f"MSIX count {irqs['MSIX']['count']}, capability says {msix}")
want(irqs["INTX"]["count"] == (1 if cfg[0x3d] else 0), f"INTX count {irqs['INTX']['count']}, pin {cfg[0x3d]}")
want("eventfd" in irqs["MSIX"]["flags"], irqs["MSIX"]["flags"])

# IOVA space as measured for the testbed: 0..0xfedfffff first, sorted,
# disjoint, and the MSI window (reserved region of type msi) outside all
r = d["iova_ranges"]
r = [{"start": int(x["start"], 16), "end": int(x["end"], 16)} for x in r]  # hex strings, as reserved regions
want(r and r[0] == {"start": 0, "end": 0xfedfffff}, f"first IOVA range {r[:1]}")
want(all(x["start"] <= x["end"] for x in r) and all(a["end"] < b["start"] for a, b in zip(r, r[1:])), f"ranges {r}")
for line in open(f"/sys/kernel/iommu_groups/{group}/reserved_regions"):
    s, e, kind = line.split()
    if kind == "msi":
        s, e = int(s, 16), int(e, 16)
        want(not any(x["start"] <= e and s <= x["end"] for x in r), f"msi window {s:#x}-{e:#x} inside {r}")
want(d["pgsizes"] & 0x1000 and d["page_sizes"][0] == 4096, f"page sizes {d['page_sizes']}")
if mode == "container":
    limit = int(open("/sys/module/vfio_iommu_type1/parameters/dma_entry_limit").read())
    want(d["dma_avail"] == limit and d["dma_avail_reported"] is True, f"dma_avail {d['dma_avail']}, dma_entry_limit {limit}")
else:  # iommufd has no limit on the number of mappings
    want(d["dma_avail"] is None and d["dma_avail_reported"] is False, f"dma_avail {d['dma_avail']} on iommufd")

# the config header through VFIO is what sysfs shows (Interrupt Status moves)
via = bytearray.fromhex(d["config_header"])
ref = bytearray(cfg[:64])
via[6] &= ~0x08
ref[6] &= ~0x08
want(via == ref, f"config header {via.hex()} vs sysfs {ref.hex()}")
for e in errors:
    print("mismatch:", e)
sys.exit(1 if errors else 0)
EOF

# --- selftest: every step passes (MSI: the device has none); hugetlb exercised
printf 8 >/proc/sys/vm/nr_hugepages
run_iovctl 0 vfio selftest --json "${M[@]}" "$BDF"
JSON=$out MODE=$VFIO_MODE python3 - <<'EOF' || fail "selftest steps not as expected (see above)"
import json, os, sys
d = json.loads(os.environ["JSON"])
st = {s["name"]: s for s in d["steps"]}
want = {"open": "PASS", "iommu-info": "PASS", "config-read": "PASS", "config-write": "PASS", "bar-mmap": "PASS",
        "dma-map": "PASS", "dma-map-hugetlb": "PASS", "dma-map-fixed": "PASS", "dma-outside-ranges": "PASS",
        "dma-overflow": "PASS", "msix": "PASS", "msi": "SKIP", "intx": "PASS", "reset": "PASS"}
bad = [f"{n}: {st.get(n, {}).get('status')} ({st.get(n, {}).get('message')})" for n, s in want.items()
       if st.get(n, {}).get("status") != s]
bad += [f"unexpected step {n}" for n in st if n not in want]
if d["summary"] != {"pass": 13, "fail": 0, "skip": 1}:
    bad.append(f"summary {d['summary']}")
m = st["dma-outside-ranges"]["message"]
if "0xfee00000" not in m or "EINVAL" not in m:
    bad.append("outside-ranges: not the MSI hole, or the kernel's refusal not shown: " + m)
if os.environ["MODE"] == "container" and "65535 -> 65534 -> 65535" not in st["dma-map"]["message"]:
    bad.append("dma_avail not counted down and up: " + st["dma-map"]["message"])
if os.environ["MODE"] == "iommufd" and "dma_avail unlimited (iommufd)" not in st["dma-map"]["message"]:
    bad.append("dma_avail not unlimited on iommufd: " + st["dma-map"]["message"])
if not st["iommu-info"]["message"].startswith(os.environ["MODE"] + " "):
    bad.append("iommu-info: not the " + os.environ["MODE"] + " backend: " + st["iommu-info"]["message"])
if "2097152-byte pages" not in st["dma-map-hugetlb"]["message"]:
    bad.append("hugetlb buffer not on huge pages: " + st["dma-map-hugetlb"]["message"])
for b in bad:
    print("selftest:", b)
sys.exit(1 if bad else 0)
EOF
run_iovctl 0 vfio selftest "${M[@]}" "$BDF"
[[ $out == *"PASS 13, FAIL 0, SKIP 1"* ]] || fail "text summary: $out"

# --- RLIMIT_MEMLOCK: without CAP_IPC_LOCK type1 counts pinned pages against
# it (vfio_lock_acct); the failing map must name the limit and its value
require_cmd prlimit setpriv
rc=0
out=$(prlimit --memlock=65536:65536 setpriv --bounding-set=-ipc_lock --inh-caps=-ipc_lock \
    "$IOVCTL" vfio selftest --json "${M[@]}" "$BDF" 2>/dev/null) || rc=$?
assert_eq "$rc" 1 "exit status of the selftest under a 64 KiB memlock limit"
msg=$(JSON=$out python3 -c 'import json, os; print([s["message"] for s in json.loads(os.environ["JSON"])["steps"] if s["name"] == "dma-map" and s["status"] == "FAIL"][0])') \
    || fail "dma-map did not fail under a 64 KiB memlock limit: $out"
[[ $msg == *"RLIMIT_MEMLOCK is 65536 bytes"* && $msg == *"CAP_IPC_LOCK"* ]] || fail "memlock error does not name the limit: $msg"

# --- the group held by another process (a VMM): busy, said so
exec 9<>"/dev/vfio/$group"
run_iovctl 1 vfio info "${M[@]}" "$BDF"
[[ $err == *"another process holds IOMMU group $group open"* ]] || fail "busy group not explained: $err"
exec 9>&-

# --- mode auto: iommufd exactly when the kernel has /dev/iommu and VFIO cdevs
run_iovctl 0 vfio info --json "$BDF"
want=container
[[ -e /dev/iommu && -d /dev/vfio/devices ]] && want=iommufd
assert_eq "$(json_get backend <<<"$out")" "$want" "backend of mode auto"
# --- iommufd on a kernel without it: a clear refusal, not a crash
if [[ ! -e /dev/iommu ]]; then
    run_iovctl 1 vfio info --mode iommufd "$BDF"
    [[ $err == *"/dev/iommu does not exist: this kernel has no iommufd"* ]] || fail "iommufd refusal: $err"
fi
run_iovctl 2 vfio info --mode type3 "$BDF"
run_iovctl 2 vfio info --vf-token not-a-uuid "$BDF"
# type1 (v1) still works when forced
run_iovctl 0 vfio info --json --mode type1 "$BDF"
assert_eq "$(json_get mode <<<"$out")" type1 "forced type1"

# --- a group that is not viable: every blocker named with its driver
run_iovctl 0 bind "$SMBUS" vfio-pci
sgroup=$(iommu_group "$SMBUS")
run_iovctl 1 vfio info --json "${M[@]}" "$SMBUS"
msg=$(json_get error.message <<<"$out")
[[ $msg == *"IOMMU group $sgroup is not viable"* ]] || fail "not-viable error: $msg"
for d in $(group_devices "$sgroup"); do
    drv=$(sysfs_driver "$d")
    case $drv in ""|vfio*|pci-stub|pcieport) [[ $msg != *"$d is bound"* ]] || fail "$d ($drv) named as a blocker: $msg" ;;
                 *) [[ $msg == *"$d is bound to $drv"* ]] || fail "blocker $d ($drv) not named: $msg" ;;
    esac
done
run_iovctl 0 restore "$SMBUS"

# --- back to the kernel driver; the NIC works again
run_iovctl 0 restore "$BDF"
assert_eq "$(sysfs_driver "$BDF")" virtio-pci "driver after restore"
wait_for 5 test -n "$(netdev_by_mac "$VM_VFIO_NET_MAC")" || fail "virtio-net interface did not come back"
