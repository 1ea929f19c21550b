#!/bin/bash
# 40-doctor: in the guest (intel-iommu with interrupt remapping, intel_iommu=on)
# iovctl doctor reports the IOMMU on and interrupt remapping in use.
. "$(dirname "$0")/../lib.sh"
require_iovctl

set +e
out=$("$IOVCTL" doctor --json)
rc=$?
set -e
status() { python3 -c 'import json,sys; print({c["name"]: c["status"] for c in json.load(sys.stdin)["checks"]}[sys.argv[1]])' "$1" <<<"$out"; }
assert_eq "$(status iommu)" PASS "iommu check"
assert_eq "$(status interrupt-remapping)" PASS "interrupt-remapping check"
assert_eq "$(json_get summary.fail <<<"$out")" 0 "failed checks"
assert_eq "$rc" 0 "doctor exit status"
"$IOVCTL" doctor | grep -q '^PASS iommu' || fail "text output lacks 'PASS iommu'"

# --- beside virt-host-validate: /dev/kvm, cgroup controllers, ACS, against
# what the guest itself has (a TCG guest has no /dev/kvm: WARN, not FAIL)
python3 - "$out" "$IOVCTL" <<'PY' || fail "doctor's kvm/cgroup/acs checks disagree with the guest"
import json, os, subprocess, sys
c = {x["name"]: x for x in json.loads(sys.argv[1])["checks"]}
bad = []
kvm = os.access("/dev/kvm", os.R_OK | os.W_OK)
if c["kvm"]["status"] != ("PASS" if kvm else "WARN"):
    bad.append(f"kvm: {c['kvm']} with /dev/kvm accessible={kvm}")
try:
    have = open("/sys/fs/cgroup/cgroup.controllers").read().split()
except OSError:
    have = None
for name, v2, v1 in (("cpu", "cpu", "cpu"), ("cpuset", "cpuset", "cpuset"), ("memory", "memory", "memory"),
                     ("io", "io", "blkio"), ("pids", "pids", "pids")):
    ok = (v2 in have) if have is not None else os.path.isdir(f"/sys/fs/cgroup/{v1}")
    if c["cgroup-" + name]["status"] != ("PASS" if ok else "WARN"):
        bad.append(f"cgroup-{name}: {c['cgroup-' + name]['status']}, guest has it: {ok}")
if "cgroup-devices" not in c:
    bad.append("no cgroup-devices check")
# ACS: a WARN names only devices that iovctl groups puts in a group of more than one device
groups = json.loads(subprocess.run([sys.argv[2], "groups", "--json"], capture_output=True, text=True,
                                   check=True).stdout)
shared = {d["address"] for g in groups for d in g["devices"]
          if sum(not x["is_bridge"] for x in g["devices"]) > 1 and not d["is_bridge"]}
acs = c["acs"]
if acs["status"] == "WARN":
    named = {a for clause in acs["message"].split("; ") for a in clause.split(" share IOMMU group")[0].split(", ")}
    if not named <= shared:
        bad.append(f"acs names {named}, groups of more than one device hold {shared}")
elif acs["status"] != "PASS":
    bad.append(f"acs: {acs}")
if bad:
    sys.exit("; ".join(bad))
print(f"kvm {c['kvm']['status']}, acs {acs['status']}: {acs['message'][:120]}")
PY
