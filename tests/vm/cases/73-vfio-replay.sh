#!/bin/bash
# 73-vfio-replay: the mapping list of one address space, copied before it is
# closed, replayed onto a fresh one, in each VFIO mode (tests/vm/vfio-test
# replay on the virtio-net device). The fresh address space gets exactly the
# mappings (IOVAs, sizes, host addresses, permissions); the kernel holds
# each one (a second map at its IOVA is refused by the kernel with EEXIST,
# one at a free IOVA is taken; container: the kernel's dma_avail drops by
# three); unmapping all gives every one back. A replay that meets an
# occupied IOVA fails there, names that mapping and why, and unmaps what it
# had mapped (the kernel takes a map at the first mapping's IOVA again).
# vm-timeout: 120
# vm-vfio-modes: container iommufd
. "$(dirname "$0")/../lib.sh"
require_iovctl
require_vfio_mode
VT=$REPO/build/tests/vfio-test
[[ -x $VT ]] || skip "$VT not built (run make first)"

NET=$VM_VFIO_NET_BDF
cleanup() { "$IOVCTL" restore "$NET" >/dev/null 2>&1 || true; }
trap cleanup EXIT

run_iovctl 0 bind "$NET" vfio-pci
rc=0
out=$("$VT" replay "${VFIO_MODE_ARGS[@]}" "$NET" 2>&1) || rc=$?
printf '%s\n' "$out" >&2
[[ $rc == 0 ]] || fail "replay: $(grep -m1 '^FAIL' <<<"$out" || echo "exit $rc")"
# the checks that must have run (a silent skip would pass otherwise)
n_ok=$(grep -c '^ok:' <<<"$out")
want=16
[[ $VFIO_MODE == container ]] && want=19 # + the kernel's dma_avail after replay, unmap all, failed replay
assert_eq "$n_ok" "$want" "checks passed"
[[ $out == *"ok: replay onto the fresh address space mapped 3 of 3"* ]] || fail "replay count: $out"
run_iovctl 0 restore "$NET"
