#!/bin/bash
# 65-apply-nvme: iovctl apply (iovkit.json(5)) on the emulated NVMe SR-IOV PF,
# checked through the kernel's sysfs. A dry run changes nothing; a file
# asking for 4 VFs with autoprobe off, each on vfio-pci, is applied in order
# (autoprobe, numvfs, binds) and a second apply finds nothing to do (exit
# 0). A file whose second step cannot work (shpchp refuses an NVMe VF) stops
# there with exit 1: the report says step 1 was applied, step 2 failed (the
# VF is back on vfio-pci), step 3 was not applied, and sysfs agrees.
# Re-applying the first file converges again. A numvfs change while VFs are
# on vfio-pci is refused with nothing changed unless forced; a file with
# numvfs 0 and the original autoprobe puts the PF back as the test found it.
# With netdevsim (tests/vm/build-netdevsim), VF settings through apply too,
# read back with `ip -j link`.
# vm-timeout: 300
. "$(dirname "$0")/../lib.sh"
require_iovctl
require_cmd python3

PF=$VM_NVME_PF_BDF
P=/sys/bus/pci/devices/$PF
read -r -a VFS <<<"$VM_NVME_VF_BDFS"
[[ -e $P/sriov_numvfs ]] || skip "$PF has no sriov_numvfs"
assert_eq "$(<"$P/sriov_numvfs")" 0 "sriov_numvfs of $PF at the start"
ap0=$(<"$P/sriov_drivers_autoprobe")
T=$(mktemp -d)
NSIM_ID=65
cleanup() {  # best effort: no VFs, autoprobe as found, no records, no netdevsim
    printf 0 >"$P/sriov_numvfs" 2>/dev/null || true
    printf '%s' "$ap0" >"$P/sriov_drivers_autoprobe" 2>/dev/null || true
    rm -f "/run/iovkit/sriov-autoprobe/$PF" "${VFS[@]/#//run/iovkit/previous-driver/}"
    [[ -e /sys/bus/netdevsim/devices/netdevsim$NSIM_ID ]] &&
        { printf '%s' "$NSIM_ID" >/sys/bus/netdevsim/del_device; } 2>/dev/null
    rm -rf "$T"
    return 0
}
trap cleanup EXIT

# iovctl_rc WANT ARGS...: run iovctl, expect exit WANT; stdout in $out, stderr in $err
iovctl_rc() {
    local want=$1 rc=0
    shift
    "$IOVCTL" "$@" >"$T/out" 2>"$T/err" || rc=$?
    out=$(<"$T/out") err=$(<"$T/err")
    [[ $rc == "$want" ]] || fail "iovctl $*: exit $rc, expected $want: $err $(head -c 400 "$T/out")"
}
# plan_summary: "action:status ..." of the JSON result in $out
plan_summary() {
    python3 -S -c '
import json, sys
d = json.loads(sys.argv[1])
print(" ".join(s["action"] + ":" + s["status"] for s in d["plan"]))' "$out"
}
drivers() { local v; for v in "${VFS[@]}"; do printf '%s ' "$(sysfs_driver "$v")"; done; }
sysfs_state() { echo "$(<"$P/sriov_numvfs") $(<"$P/sriov_drivers_autoprobe") $(drivers)"; }

vfs_json() {  # vfs_json DRIVER0 DRIVER1 ...: the "vfs" array
    local i=0 d sep=""
    printf '['
    for d in "$@"; do printf '%s{"vf": %d, "driver": "%s"}' "$sep" "$i" "$d"; sep=", "; i=$((i + 1)); done
    printf ']'
}
printf '{"pfs": [{"pf": "%s", "numvfs": 4, "autoprobe": false, "vfs": %s}]}\n' "$PF" \
    "$(vfs_json vfio-pci vfio-pci vfio-pci vfio-pci)" >"$T/on.json"

# --- dry run: the plan in the safe order, nothing written
iovctl_rc 0 apply --dry-run --json "$T/on.json"
assert_eq "$(plan_summary)" "autoprobe:planned numvfs:planned bind:planned bind:planned bind:planned bind:planned" \
    "dry-run plan"
assert_eq "$(sysfs_state)" "0 $ap0     " "sysfs after the dry run"

# --- apply: 4 VFs, autoprobe off before they appear, each on vfio-pci
t0=$(now_ms)
iovctl_rc 0 apply --json "$T/on.json"
info "apply 0 -> 4 VFs on vfio-pci: $(($(now_ms) - t0)) ms"
assert_eq "$(plan_summary)" "autoprobe:applied numvfs:applied bind:applied bind:applied bind:applied bind:applied" \
    "applied plan"
assert_eq "$(json_get applied <<<"$out")" 6 "steps applied"
assert_eq "$(json_get failed <<<"$out")" null "failed"
assert_eq "$(sysfs_state)" "4 0 vfio-pci vfio-pci vfio-pci vfio-pci " "sysfs after apply"
for i in 0 1 2 3; do
    assert_eq "$(basename "$(readlink "$P/virtfn$i")")" "${VFS[$i]}" "virtfn$i"
    [[ -c /dev/vfio/$(iommu_group "${VFS[$i]}") ]] || fail "/dev/vfio/$(iommu_group "${VFS[$i]}") missing"
    assert_eq "$(json_get "plan.$((i + 2)).device" <<<"$out")" "${VFS[$i]}" "reported address of VF $i"
done

# --- the same file again: an empty plan, exit 0
iovctl_rc 0 apply "$T/on.json"
assert_eq "$out" "Nothing to do: the system matches the configuration." "second apply"
iovctl_rc 0 apply --json "$T/on.json"
assert_eq "$(json_get plan <<<"$out")" "[]" "second apply, JSON"

# --- a step that fails midway: VF 1 to shpchp, whose probe refuses it
modprobe shpchp 2>/dev/null || true
if [[ -e /sys/bus/pci/drivers/shpchp ]]; then
    printf '{"pfs": [{"pf": "%s", "vfs": %s}]}\n' "$PF" "$(vfs_json none shpchp none vfio-pci)" >"$T/fail.json"
    iovctl_rc 1 apply --json "$T/fail.json"
    assert_eq "$(plan_summary)" "bind:applied bind:failed bind:not-applied" "report of the failed apply"
    assert_eq "$(json_get applied <<<"$out")" 1 "steps applied before the failure"
    assert_eq "$(json_get failed.step <<<"$out")" 2 "failed step"
    assert_eq "$(json_get failed.path <<<"$out")" "pfs[0].vfs[1].driver" "failed entry"
    msg=$(json_get failed.message <<<"$out")
    [[ $msg == *"${VFS[1]}"*"did not take the device"*"vfio-pci restored"* ]] || fail "failure message: $msg"
    [[ $err == *"Failed to apply step 2 of 3 ($T/fail.json: pfs[0].vfs[1].driver): ${VFS[1]}"* ]] ||
        fail "stderr: $err"
    assert_eq "$(sysfs_state)" "4 0  vfio-pci vfio-pci vfio-pci " "sysfs after the failed apply"
    # text report: the first step is done now, so VF 1 fails first
    iovctl_rc 1 apply "$T/fail.json"
    [[ $out == *"Applied 0 of 2 steps; step 1 failed"*"FAILED"*"${VFS[1]}"*"not applied"*"VF 2 (${VFS[2]})"* ]] ||
        fail "text report: $out"
    assert_eq "$(sysfs_state)" "4 0  vfio-pci vfio-pci vfio-pci " "sysfs after the second failed apply"
    # the first file again converges: VF 0 back on vfio-pci
    iovctl_rc 0 apply --json "$T/on.json"
    assert_eq "$(plan_summary)" "bind:applied" "re-applied plan"
    assert_eq "$(sysfs_state)" "4 0 vfio-pci vfio-pci vfio-pci vfio-pci " "sysfs after re-applying"
else
    info "shpchp not available: the failure midway is not exercised"
fi

# --- 4 -> 2 VFs while they are on vfio-pci: refused, nothing changed
printf '{"pfs": [{"pf": "%s", "numvfs": 2}]}\n' "$PF" >"$T/two.json"
iovctl_rc 1 apply "$T/two.json"
[[ $out == *"numvfs 4 -> 2 (through 0"* && $out == *"refused: would remove VFs ${VFS[0]} (vfio-pci)"* ]] ||
    fail "refusal: $out"
[[ $err == *"Nothing applied"*"--force"* ]] || fail "refusal stderr: $err"
assert_eq "$(sysfs_state)" "4 0 vfio-pci vfio-pci vfio-pci vfio-pci " "sysfs after the refusal"

# --- numvfs 0 and the autoprobe the test found: back to the start (forced)
if [[ $ap0 == 1 ]]; then apj=true; else apj=false; fi
printf '{"pfs": [{"pf": "%s", "numvfs": 0, "autoprobe": %s}]}\n' "$PF" "$apj" >"$T/off.json"
iovctl_rc 0 apply --force --json "$T/off.json"
assert_eq "$(plan_summary)" "autoprobe:applied numvfs:applied" "plan back to 0"
assert_eq "$(sysfs_state)" "0 $ap0     " "sysfs at the end"
for l in "$P"/virtfn*; do [[ -L $l ]] && fail "$l still exists"; done
[[ ! -e /run/iovkit/sriov-autoprobe/$PF ]] || fail "autoprobe record left behind"
iovctl_rc 0 apply "$T/off.json"
assert_eq "$out" "Nothing to do: the system matches the configuration." "apply of numvfs 0 again"

# --- VF settings through apply on a netdevsim PF (named by its interface)
ko=${IOVKIT_VM_CACHE:-/var/cache/iovkit-vm}/$(uname -r)/netdevsim/netdevsim.ko
if [[ ! -d /sys/bus/netdevsim && ! -r $ko ]]; then
    info "netdevsim not built: VF settings through apply not exercised"
    exit 0
fi
load_netdevsim
require_cmd ip
NSIM=/sys/bus/netdevsim/devices/netdevsim$NSIM_ID
sysfs_write /sys/bus/netdevsim/new_device "$NSIM_ID 1"
netdev_ready() { local n; for n in "$NSIM"/net/*; do [[ -e $n ]] && return 0; done; return 1; }
wait_for 10 netdev_ready || fail "netdevsim$NSIM_ID made no netdev"
for n in "$NSIM"/net/*; do DEV=${n##*/}; done
sysfs_write "$NSIM/sriov_numvfs" 2
cat >"$T/nsim.json" <<EOF
{"pfs": [{"pf": "$DEV", "numvfs": 2, "vfs": [
  {"vf": 0, "mac": "02:65:00:00:00:01", "vlan": 10, "qos": 3, "spoofchk": true, "trust": true},
  {"vf": 1, "state": "disable", "min_tx_rate": 10, "max_tx_rate": 100}]}]}
EOF
iovctl_rc 0 apply --json "$T/nsim.json"
assert_eq "$(plan_summary)" "vf-settings:applied vf-settings:applied" "netdevsim plan"
ip -j link show dev "$DEV" >"$T/ip.json"
python3 -S - "$T/ip.json" <<'PY' || fail "ip -j link does not show the settings (see above)"
import json, sys
vfs = {v["vf"]: v for v in json.load(open(sys.argv[1]))[0]["vfinfo_list"]}
v0, v1 = vfs[0], vfs[1]
bad = []
if v0["address"] != "02:65:00:00:00:01": bad.append(f"VF 0 mac {v0['address']}")
vl = [x for x in v0.get("vlan_list", []) if x.get("vlan")]
if [(x["vlan"], x.get("qos", 0)) for x in vl] != [(10, 3)]: bad.append(f"VF 0 vlan {vl}")
if not v0.get("spoofchk") or not v0.get("trust"): bad.append(f"VF 0 spoofchk/trust {v0.get('spoofchk')} {v0.get('trust')}")
if v1["link_state"] != "disable": bad.append(f"VF 1 state {v1['link_state']}")
if (v1["rate"]["min_tx"], v1["rate"]["max_tx"]) != (10, 100): bad.append(f"VF 1 rate {v1['rate']}")
if bad:
    print("; ".join(bad), file=sys.stderr)
    sys.exit(1)
PY
iovctl_rc 0 apply "$T/nsim.json"
assert_eq "$out" "Nothing to do: the system matches the configuration." "netdevsim settings applied twice"
# one setting changed behind apply's back: only that one is planned
"$IOVCTL" vf set "$DEV" 0 trust off >/dev/null
iovctl_rc 0 apply --json --dry-run "$T/nsim.json"
assert_eq "$(plan_summary)" "vf-settings:planned" "plan after trust off"
assert_eq "$(json_get plan.0.to <<<"$out")" '{"trust": true}' "only trust is planned"
assert_eq "$(json_get plan.0.from <<<"$out")" '{"trust": false}' "trust now"
# netdevsim is not a PCI device: its number of VFs is not iovkit's to change
printf '{"pfs": [{"pf": "%s", "numvfs": 3}]}\n' "$DEV" >"$T/nsim3.json"
iovctl_rc 1 apply "$T/nsim3.json"
[[ $err == *"pfs[0].numvfs: $DEV is not a PCI device"* ]] || fail "numvfs on netdevsim: $err"
assert_eq "$(<"$NSIM/sriov_numvfs")" 2 "netdevsim VFs after the refusal"
