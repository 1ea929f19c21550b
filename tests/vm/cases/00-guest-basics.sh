#!/bin/bash
# 00-guest-basics: proves the harness and the guest topology, without iovctl.
# IOMMU on with interrupt remapping, the devices of devices.env at their
# addresses with their drivers and groups, vfio modules not loaded at boot.
# IOVKIT_VM_BREAK=1 makes it fail on purpose (demo of a failing run).
. "$(dirname "$0")/../lib.sh"

assert_eq "${IOVKIT_IN_VM:-}" 1 "IOVKIT_IN_VM"
assert_eq "$(hostname)" iovkit-vm "hostname"
[[ $(</sys/class/net/lo/flags) == 0x9 ]] || [[ $(ip -br link show lo) == *UP* ]] || fail "lo is not up"

# IOMMU and interrupt remapping
groups=(/sys/kernel/iommu_groups/*)
[[ -e ${groups[0]} ]] || fail "no IOMMU groups: is intel_iommu=on and -device intel-iommu set?"
compgen -G '/sys/class/iommu/dmar*' >/dev/null || fail "no /sys/class/iommu/dmar*"
if ! grep -q 'IR-' /proc/interrupts && ! dmesg | grep -q 'Enabled IRQ remapping'; then
    fail "interrupt remapping is off (no IR- in /proc/interrupts, no 'Enabled IRQ remapping' in dmesg)"
fi
info "${#groups[@]} IOMMU groups"

# vfio-target virtio-net
d=/sys/bus/pci/devices/$VM_VFIO_NET_BDF
assert_exists "$d" "vfio-target virtio-net $VM_VFIO_NET_BDF"
assert_eq "$(<"$d/vendor"):$(<"$d/device")" "0x${VM_VFIO_NET_ID%%:*}:0x${VM_VFIO_NET_ID##*:}" "$VM_VFIO_NET_BDF vendor:device"
assert_eq "$(sysfs_driver "$VM_VFIO_NET_BDF")" virtio-pci "driver of $VM_VFIO_NET_BDF"
g=$(iommu_group "$VM_VFIO_NET_BDF")
assert_eq "$(group_devices "$g")" "$VM_VFIO_NET_BDF" "IOMMU group $g of $VM_VFIO_NET_BDF"
assert_eq "$(netdev_of "$VM_VFIO_NET_BDF")" "$(netdev_by_mac "$VM_VFIO_NET_MAC")" "netdev of $VM_VFIO_NET_BDF (MAC $VM_VFIO_NET_MAC)"

# bonding ports
for i in 1 2; do
    bdf_var=VM_BOND_NET${i}_BDF mac_var=VM_BOND_NET${i}_MAC
    bdf=${!bdf_var} mac=${!mac_var}
    assert_eq "$(sysfs_driver "$bdf")" virtio-pci "driver of $bdf"
    n=$(netdev_of "$bdf")
    [[ -n $n ]] || fail "$bdf has no netdev"
    assert_eq "$(<"/sys/class/net/$n/address")" "$mac" "MAC of $n ($bdf)"
done

# NVMe SR-IOV PF
expect_vfs=$VM_NVME_MAXVFS
[[ ${IOVKIT_VM_BREAK:-0} == 0 ]] || { expect_vfs=$((VM_NVME_MAXVFS + 1)); info "IOVKIT_VM_BREAK set: expecting a wrong sriov_totalvfs on purpose"; }
p=/sys/bus/pci/devices/$VM_NVME_PF_BDF
assert_exists "$p/sriov_totalvfs" "NVMe PF $VM_NVME_PF_BDF sriov_totalvfs"
assert_eq "$(<"$p/sriov_totalvfs")" "$expect_vfs" "sriov_totalvfs of $VM_NVME_PF_BDF"
assert_eq "$(<"$p/sriov_numvfs")" 0 "sriov_numvfs of $VM_NVME_PF_BDF at boot"
assert_eq "$(sysfs_driver "$VM_NVME_PF_BDF")" nvme "driver of $VM_NVME_PF_BDF"

# ICH9 functions share one group, alone
g=$(iommu_group "${VM_ICH9_GROUP_BDFS%% *}")
[[ -n $g ]] || fail "${VM_ICH9_GROUP_BDFS%% *} has no IOMMU group"
assert_eq "$(group_devices "$g")" "$VM_ICH9_GROUP_BDFS" "IOMMU group $g (ICH9)"

# igb only with QEMU >= 8.0
if [[ -e /sys/bus/pci/devices/$VM_IGB_BDF ]]; then
    info "igb present at $VM_IGB_BDF, driver $(sysfs_driver "$VM_IGB_BDF")"
fi

# The tool under test must load vfio itself.
for m in vfio_pci vfio_pci_core vfio_iommu_type1 vfio; do
    [[ ! -d /sys/module/$m ]] || fail "module $m is loaded at boot (the guest must leave vfio unloaded)"
done
