#!/bin/bash
# 30-ich9-group: the q35 ICH9 functions share one IOMMU group; iovctl groups
# reports it as not viable and names exactly the members bound to drivers
# that keep DMA ownership (everything but vfio/pci-stub/pcieport/none).
. "$(dirname "$0")/../lib.sh"
require_iovctl

first=${VM_ICH9_GROUP_BDFS%% *}
group=$(iommu_group "$first")
[[ -n $group ]] || fail "$first has no IOMMU group"
assert_eq "$(group_devices "$group")" "$VM_ICH9_GROUP_BDFS" "members of the ICH9 group"

want=()
for d in $VM_ICH9_GROUP_BDFS; do
    drv=$(sysfs_driver "$d")
    case $drv in ""|vfio*|pci-stub|pcieport) ;; *) want+=("$d") ;; esac
done
out=$("$IOVCTL" groups --json --group "$group") || fail "iovctl groups --group $group failed"
got=$(python3 -c 'import json,sys; g=json.load(sys.stdin)[0]; print(" ".join(b["address"] for b in g["blockers"]))' <<<"$out")
assert_eq "$got" "${want[*]}" "blocking devices"
if ((${#want[@]})); then
    assert_eq "$(json_get 0.viable <<<"$out")" false "viable"
    reason=$(json_get 0.blockers.0.reason <<<"$out")
    [[ $reason == *"$(sysfs_driver "${want[0]}")"* ]] || fail "reason must name the driver: $reason"
else
    assert_eq "$(json_get 0.viable <<<"$out")" true "viable"
fi
text=$("$IOVCTL" groups --group "$group")
[[ $text == *"blocks:"* || ${#want[@]} -eq 0 ]] || fail "text output lacks the blocker: $text"
# a single-device group with its device on vfio-pci is viable
