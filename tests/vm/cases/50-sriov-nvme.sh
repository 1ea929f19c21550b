#!/bin/bash
# 50-sriov-nvme: iovctl sriov on the emulated NVMe SR-IOV PF, checked through
# the kernel's own sysfs: above-total refused with nothing changed; 0 -> 4 VFs
# with autoprobe off (physfn/virtfn links, one IOMMU group per VF, no driver);
# each VF bound to vfio-pci by iovctl bind; 4 -> 2 refused while VFs are on
# vfio-pci, naming a VF; --force goes 4 -> 0 -> 2; back to 0 restores autoprobe.
# vm-timeout: 240
. "$(dirname "$0")/../lib.sh"
require_iovctl

PF=$VM_NVME_PF_BDF
P=/sys/bus/pci/devices/$PF
read -r -a VFS <<<"$VM_NVME_VF_BDFS"
[[ -e $P/sriov_numvfs ]] || skip "$PF has no sriov_numvfs"
assert_eq "$(<"$P/sriov_numvfs")" 0 "sriov_numvfs of $PF at the start"
ap0=$(<"$P/sriov_drivers_autoprobe")
total=$(<"$P/sriov_totalvfs")
assert_eq "$total" "$VM_NVME_MAXVFS" "sriov_totalvfs"

cleanup() {  # best effort: no VFs, autoprobe as found, no records
    printf 0 >"$P/sriov_numvfs" 2>/dev/null || true
    printf '%s' "$ap0" >"$P/sriov_drivers_autoprobe" 2>/dev/null || true
    rm -f "/run/iovkit/sriov-autoprobe/$PF" "${VFS[@]/#//run/iovkit/previous-driver/}"
}
trap cleanup EXIT

# iovctl_fails WANT_RC ARGS...: run iovctl, expect exit WANT_RC; stderr in $err
iovctl_fails() {
    local want=$1 rc=0
    shift
    err=$("$IOVCTL" "$@" 2>&1 >/dev/null) || rc=$?
    assert_eq "$rc" "$want" "exit status of iovctl $*"
}
virtfns() { local l; for l in "$P"/virtfn*; do [[ -L $l ]] && basename "$l"; done; return 0; }

# --- what the PF reports matches sysfs
out=$("$IOVCTL" sriov show --json "$PF") || fail "sriov show failed: $out"
assert_eq "$(json_get driver <<<"$out")" nvme "PF driver"
assert_eq "$(json_get totalvfs <<<"$out")" "$total" "totalvfs"
assert_eq "$(json_get numvfs <<<"$out")" 0 "numvfs"
assert_eq "$(json_get offset <<<"$out")" "$(<"$P/sriov_offset")" "offset"
assert_eq "$(json_get stride <<<"$out")" "$(<"$P/sriov_stride")" "stride"
assert_eq "$(json_get vf_device_id <<<"$out")" "$(printf %04x "0x$(<"$P/sriov_vf_device")")" "vf_device_id"
assert_eq "$(json_get drivers_autoprobe <<<"$out")" "$([[ $ap0 == 1 ]] && echo true || echo false)" "autoprobe"
out=$("$IOVCTL" sriov list --json) || fail "sriov list failed: $out"
assert_eq "$(json_get 0.address <<<"$out")" "$PF" "the only PF listed"

# --- above the total: exit 1, nothing changed
iovctl_fails 1 sriov set "$PF" --numvfs $((total + 1)) --no-autoprobe
[[ $err == *"at most $total"* ]] || fail "above-total error does not name the total: $err"
assert_eq "$(<"$P/sriov_numvfs")" 0 "sriov_numvfs after the refused request"
assert_eq "$(<"$P/sriov_drivers_autoprobe")" "$ap0" "autoprobe after the refused request"

# --- 0 -> 4, autoprobe off: VFs exist, each alone in its group, no driver
t0=$(now_ms)
out=$("$IOVCTL" sriov set --json "$PF" --numvfs 4 --no-autoprobe) || fail "sriov set 4 failed: $out"
info "0 -> 4 VFs: $(($(now_ms) - t0)) ms"
assert_eq "$(<"$P/sriov_numvfs")" 4 "sriov_numvfs"
assert_eq "$(<"$P/sriov_drivers_autoprobe")" 0 "autoprobe written before enabling"
assert_eq "$(json_get changed <<<"$out")" true "changed"
assert_eq "$(json_get numvfs <<<"$out")" 4 "reported numvfs"
assert_eq "$(json_get drivers_autoprobe <<<"$out")" false "reported autoprobe"
pf_group=$(iommu_group "$PF")
declare -A seen=()
for i in 0 1 2 3; do
    vf=${VFS[$i]}
    assert_eq "$(basename "$(readlink "$P/virtfn$i")")" "$vf" "virtfn$i"
    assert_eq "$(basename "$(readlink "/sys/bus/pci/devices/$vf/physfn")")" "$PF" "physfn of $vf"
    g=$(iommu_group "$vf")
    [[ -n $g && $g != "$pf_group" && -z ${seen[$g]:-} ]] || fail "$vf: IOMMU group '$g' is not its own"
    seen[$g]=1
    assert_eq "$(group_devices "$g")" "$vf" "members of group $g"
    assert_eq "$(sysfs_driver "$vf")" "" "driver of $vf with autoprobe off"
    assert_eq "$(json_get "vfs.$i.address" <<<"$out")" "$vf" "reported VF $i"
    assert_eq "$(json_get "vfs.$i.iommu_group" <<<"$out")" "$g" "reported group of $vf"
    assert_eq "$(json_get "vfs.$i.driver" <<<"$out")" null "reported driver of $vf"
done

# --- every VF to vfio-pci (driver_override + drivers_probe: the only way with autoprobe off)
for vf in "${VFS[@]}"; do
    o=$("$IOVCTL" bind --json "$vf" vfio-pci) || fail "iovctl bind $vf vfio-pci failed: $o"
    assert_eq "$(sysfs_driver "$vf")" vfio-pci "driver of $vf"
    [[ -c /dev/vfio/$(iommu_group "$vf") ]] || fail "/dev/vfio/$(iommu_group "$vf") missing"
done

# --- 4 -> 2 refused while VFs are on vfio-pci; nothing changed
iovctl_fails 1 sriov set "$PF" --numvfs 2
[[ $err == *"${VFS[0]}"*vfio-pci* && $err == *--force* ]] || fail "refusal does not name the VF in use: $err"
out=$("$IOVCTL" --json sriov set "$PF" --numvfs 0 2>/dev/null) && fail "teardown to 0 was not refused"
assert_eq "$(json_get error.errno_name <<<"$out")" EBUSY "errno of the refusal"
assert_eq "$(<"$P/sriov_numvfs")" 4 "sriov_numvfs after the refusal"
for vf in "${VFS[@]}"; do assert_eq "$(sysfs_driver "$vf")" vfio-pci "driver of $vf after the refusal"; done

# --- --force: 4 -> 0 -> 2; autoprobe is left as it is (0) without --no-autoprobe
t0=$(now_ms)
out=$("$IOVCTL" sriov set --json "$PF" --numvfs 2 --force) || fail "forced sriov set 2 failed: $out"
info "4 -> 0 -> 2 VFs: $(($(now_ms) - t0)) ms"
assert_eq "$(<"$P/sriov_numvfs")" 2 "sriov_numvfs after --force"
assert_eq "$(virtfns | LC_ALL=C sort | paste -sd' ' -)" "virtfn0 virtfn1" "virtfn links after --force"
assert_eq "$(<"$P/sriov_drivers_autoprobe")" 0 "autoprobe kept"
assert_eq "$(json_get changed <<<"$out")" true "changed"
for vf in "${VFS[0]}" "${VFS[1]}"; do
    assert_eq "$(sysfs_driver "$vf")" "" "driver of the new $vf"
    [[ ! -e /run/iovkit/previous-driver/$vf ]] || fail "stale previous-driver record of removed $vf"
done
[[ ! -e /sys/bus/pci/devices/${VFS[2]} ]] || fail "${VFS[2]} still exists"

out=$("$IOVCTL" sriov set --json "$PF" --numvfs 2) || fail "sriov set 2 again failed: $out"
assert_eq "$(json_get changed <<<"$out")" false "same count changes nothing"

# --- back to 0: no VFs, autoprobe as the test found it
out=$("$IOVCTL" sriov set --json "$PF" --numvfs 0) || fail "sriov set 0 failed: $out"
assert_eq "$(<"$P/sriov_numvfs")" 0 "sriov_numvfs at the end"
assert_eq "$(virtfns)" "" "virtfn links at the end"
assert_eq "$(<"$P/sriov_drivers_autoprobe")" "$ap0" "autoprobe restored"
assert_eq "$(json_get vfs <<<"$out")" "[]" "reported VFs at the end"
[[ ! -e /run/iovkit/sriov-autoprobe/$PF ]] || fail "autoprobe record left behind"
