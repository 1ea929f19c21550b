#!/bin/bash
# 67-cdi-podman: iovctl cdi generate against a real CDI consumer, Debian's
# podman. A VF of the NVMe PF is put on vfio-pci, the spec is written to
# /var/run/cdi, and `podman run --device iovkit.org/vf=ADDRESS` gives the
# container that VF's /dev/vfio/GROUP (and /dev/vfio/vfio), as character
# devices with the host's numbers; a name the spec does not hold is refused
# by podman. On a kernel with VFIO cdevs, the VF's cdev and /dev/iommu too.
# The container's root is a directory with busybox-static (no
# image, no network); storage vfs, no cgroups (the guest has no systemd;
# cgroup2 is mounted for crun, which checks it).
# vm-timeout: 240
. "$(dirname "$0")/../lib.sh"
require_iovctl
require_cmd podman python3
BUSYBOX=/bin/busybox
[[ -x $BUSYBOX ]] && file -L "$BUSYBOX" 2>/dev/null | grep -q static || { [[ -x $BUSYBOX ]] || skip "no $BUSYBOX"; }

PF=$VM_NVME_PF_BDF
P=/sys/bus/pci/devices/$PF
read -r -a VFS <<<"$VM_NVME_VF_BDFS"
VF=${VFS[0]}
[[ -e $P/sriov_numvfs ]] || skip "$PF has no sriov_numvfs"
assert_eq "$(<"$P/sriov_numvfs")" 0 "sriov_numvfs of $PF at the start"
ap0=$(<"$P/sriov_drivers_autoprobe")
T=$(mktemp -d)
CDI=/var/run/cdi
CGROUP_MOUNTED=
cleanup() {
    [[ -z $CGROUP_MOUNTED ]] || umount /sys/fs/cgroup 2>/dev/null || true
    rm -f "$CDI/iovkit-vf.json" "$CDI/iovkit-pool.json" "/run/iovkit/previous-driver/$VF"
    printf 0 >"$P/sriov_numvfs" 2>/dev/null || true
    printf '%s' "$ap0" >"$P/sriov_drivers_autoprobe" 2>/dev/null || true
    rm -rf "$T"
    return 0
}
trap cleanup EXIT

sysfs_write "$P/sriov_drivers_autoprobe" 0
sysfs_write "$P/sriov_numvfs" 1
run_iovctl 0 bind "$VF" vfio-pci
G=$(iommu_group "$VF")
[[ -c /dev/vfio/$G ]] || fail "/dev/vfio/$G is not a character device"

# the spec: a pool needs iovd, which is not running here (said, not fatal)
IOVKIT_BUS_ADDRESS=unix:path=$T/no-bus run_iovctl 0 cdi generate --json --output "$CDI"
assert_eq "$(json_get cdi_devices <<<"$out")" "[\"iovkit.org/vf=$VF\"]" "CDI devices"
assert_eq "$(json_get iovd_reached <<<"$out")" false "iovd reached"
[[ ! -e $CDI/iovkit-pool.json ]] || fail "a pool spec without pools"
python3 -S - "$CDI/iovkit-vf.json" "$VF" "$G" "$(stat -c '%t %T' "/dev/vfio/$G")" <<'PY' || fail "spec: $(cat "$CDI/iovkit-vf.json")"
import json, sys
spec = json.load(open(sys.argv[1]))
vf, group, (maj, mnr) = sys.argv[2], sys.argv[3], [int(x, 16) for x in sys.argv[4].split()]
assert spec["cdiVersion"] == "0.5.0" and spec["kind"] == "iovkit.org/vf", spec
(dev,) = spec["devices"]
assert dev["name"] == vf, dev
nodes = {n["path"]: n for n in dev["containerEdits"]["deviceNodes"]}
n = nodes[f"/dev/vfio/{group}"]
assert (n["type"], n["major"], n["minor"]) == ("c", maj, mnr), n
assert "/dev/vfio/vfio" in nodes, nodes
PY
# where the kernel has VFIO cdevs (the iommufd kernel), the cdev and /dev/iommu too
CDEV=
# (6.1 lists a vfio-dev in sysfs too, but makes no node for it)
for c in /sys/bus/pci/devices/$VF/vfio-dev/vfio*; do [[ -c /dev/vfio/devices/${c##*/} ]] && CDEV=/dev/vfio/devices/${c##*/}; done
if [[ -n $CDEV ]]; then
    grep -q "\"$CDEV\"" "$CDI/iovkit-vf.json" || fail "the spec lacks $CDEV"
    grep -q '"/dev/iommu"' "$CDI/iovkit-vf.json" || fail "the spec lacks /dev/iommu"
fi

# crun needs user namespaces (it writes /proc/self/setgroups): the self-built
# iommufd kernel (tests/vm/kernel.config) has none
[[ -e /proc/self/setgroups ]] ||
    skip "the spec was checked${CDEV:+ (with $CDEV and /dev/iommu)}, but podman cannot run: no user namespaces in this kernel"
# crun wants the cgroup2 hierarchy mounted even with --cgroups=disabled; the
# guest's init mounts none
if [[ $(stat -f -c %T /sys/fs/cgroup 2>/dev/null) != cgroup2fs ]]; then
    mount -t cgroup2 none /sys/fs/cgroup || fail "cannot mount cgroup2 on /sys/fs/cgroup"
    CGROUP_MOUNTED=1
fi
mkdir -p "$T/root/bin"
cp "$BUSYBOX" "$T/root/bin/busybox"
ln -s busybox "$T/root/bin/sh"
PODMAN=(podman --root "$T/storage" --runroot "$T/run" --storage-driver=vfs --cgroup-manager=cgroupfs
        --events-backend=file)
RUN=(run --rm --network=none --cgroups=disabled)
ROOT=(--rootfs "$T/root")  # --rootfs is a flag: the root is the first operand
t0=$(now_ms)
rc=0
got=$("${PODMAN[@]}" "${RUN[@]}" --device "iovkit.org/vf=$VF" "${ROOT[@]}" /bin/sh -c \
    "busybox stat -c '%n %F %t %T' /dev/vfio/$G /dev/vfio/vfio ${CDEV:+$CDEV /dev/iommu}" 2>"$T/err") || rc=$?
info "podman run with the CDI device: $(($(now_ms) - t0)) ms"
assert_eq "$rc" 0 "podman run exit status ($(cat "$T/err"))"
want=$(stat -c '%n %F %t %T' "/dev/vfio/$G" /dev/vfio/vfio ${CDEV:+$CDEV /dev/iommu})
assert_eq "$got" "$want" "the container's /dev/vfio nodes"
# without the device, the container has no such node; a name not in the spec is refused
rc=0
"${PODMAN[@]}" "${RUN[@]}" "${ROOT[@]}" /bin/sh -c "busybox test ! -e /dev/vfio/$G" 2>"$T/err" || rc=$?
assert_eq "$rc" 0 "a container without the CDI device has no /dev/vfio/$G ($(cat "$T/err"))"
rc=0
"${PODMAN[@]}" "${RUN[@]}" --device "iovkit.org/vf=0000:00:00.7" "${ROOT[@]}" /bin/sh -c true 2>"$T/err" || rc=$?
[[ $rc != 0 ]] || fail "podman took a CDI name the spec does not hold"
grep -qi "cdi" "$T/err" || fail "podman's refusal does not name CDI: $(cat "$T/err")"
