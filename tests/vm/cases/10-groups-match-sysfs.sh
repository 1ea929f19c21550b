#!/bin/bash
# 10-groups-match-sysfs: `iovctl groups --json` reports exactly the groups and
# members the kernel shows in /sys/kernel/iommu_groups, and `iovctl list`
# agrees with every device's iommu_group link and driver link.
. "$(dirname "$0")/../lib.sh"
require_iovctl

json=$("$IOVCTL" groups --json) || fail "iovctl groups --json failed"
ours=$(python3 -c '
import json, sys
for g in json.load(sys.stdin):
    print(g["iommu_group"], " ".join(d["address"] for d in g["devices"]))
' <<<"$json")
kernel=$(for g in $(ls /sys/kernel/iommu_groups | sort -n); do
    echo "$g $(group_devices "$g")"
done)
[[ -n $kernel ]] || fail "the guest has no IOMMU groups"
assert_eq "$ours" "$kernel" "groups and members"
info "$(wc -l <<<"$kernel") groups match sysfs"

list=$("$IOVCTL" list --json) || fail "iovctl list --json failed"
rows=$(python3 -c '
import json, sys
for d in json.load(sys.stdin):
    print(d["address"], d["iommu_group"] if d["iommu_group"] is not None else "-", d["driver"] or "-")
' <<<"$list")
while read -r addr group driver; do
    assert_eq "${group#-}" "$(iommu_group "$addr")" "iommu group of $addr"
    assert_eq "${driver#-}" "$(sysfs_driver "$addr")" "driver of $addr"
done <<<"$rows"
n_list=$(python3 -c 'import json,sys; print(len(json.load(sys.stdin)))' <<<"$list")
assert_eq "$n_list" "$(ls /sys/bus/pci/devices | wc -l)" "number of devices listed"

# SR-IOV PF as the kernel reports it
pf=$("$IOVCTL" show --json "$VM_NVME_PF_BDF")
assert_eq "$(json_get sriov.totalvfs <<<"$pf")" "$VM_NVME_MAXVFS" "sriov totalvfs of $VM_NVME_PF_BDF"
assert_eq "$(json_get driver <<<"$pf")" "$(sysfs_driver "$VM_NVME_PF_BDF")" "driver of the NVMe PF"
