#!/bin/bash
# 76-datapath-vfio: the datapath's vfio port drives the virtio-net device
# on vfio-pci from userspace (`iovctl datapath run --port vfio:BDF --port
# tap:T`), in each VFIO mode. Frames cross both ways, checked by content on
# the far side: one sent from another virtio-net NIC of the guest reaches
# the device over QEMU's hub, leaves the vfio port and is read on the tap;
# one sent on the tap goes out through the device and is read on that NIC.
# The counters say so, no ring broke, and SIGTERM resets and releases the
# device: iovctl exits 0 and the kernel's virtio-net driver takes the
# device back and moves a frame through it. Two queue pairs on this device
# (no mq=on) are refused first, naming the feature it lacks.
# vm-timeout: 150
# vm-vfio-modes: container iommufd
. "$(dirname "$0")/../lib.sh"
require_iovctl
require_vfio_mode
require_cmd ip python3

NET=$VM_VFIO_NET_BDF
PEER=$(netdev_by_mac "$VM_BOND_NET1_MAC")
[[ -n $PEER ]] || fail "virtio-net port $VM_BOND_NET1_MAC not found"
TAP=dpvf0
KN=

# the kernel's netdev goes down again too: later cases bind the device again
# (iovctl refuses an interface that is up)
cleanup() {
    local rc=$?
    [[ -z $KN ]] || ip link set dev "$KN" down 2>/dev/null || true
    dp_vfio_cleanup "$rc"
}
trap cleanup EXIT
trap 'exit 143' TERM

dp_vfio_setup "$NET" "$PEER" "$TAP"

# two queue pairs on a device without MQ (no mq=on): refused, saying why
rc=0
timeout 60 "$IOVCTL" datapath run --port "vfio:$NET,queues=2,mode=$VFIO_MODE" --port "tap:$TAP" \
    --control "$DP_DIR/mq.sock" >/dev/null 2>"$DP_DIR/mq.err" || rc=$?
assert_eq "$rc" 1 "exit status of queues=2 on a device without MQ"
grep -q "2 queue pairs: the device does not offer VIRTIO_NET_F_MQ" "$DP_DIR/mq.err" ||
    fail "queues=2 without MQ: $(cat "$DP_DIR/mq.err")"

dp_vfio_run --port "vfio:$NET,mode=$VFIO_MODE" --port "tap:$TAP"
s=$(dp_stats)
assert_eq "$(json_get ports.0.type <<<"$s")" vfio "port 1's type"
assert_eq "$(json_get ports.0.state <<<"$s")" running "port 1's state"
assert_eq "$(json_get ports.0.queues.0.ready <<<"$s")" true "queue 0 ready"

frame_across dpvf-from-nic "$PEER" "$TAP"
info "a frame from $PEER came out of the vfio port onto $TAP"
frame_across dpvf-from-tap "$TAP" "$PEER"
info "a frame written to $TAP left through the vfio port and reached $PEER"

s=$(dp_stats)
JSON=$s python3 - <<'EOF' || fail "counters not as expected: $s"
import json, os
p = json.loads(os.environ["JSON"])["ports"]
v, t = p[0], p[1]
assert v["rx_packets"] >= 1 and t["tx_packets"] >= 1, "nothing went vfio -> tap"
assert t["rx_packets"] >= 1 and v["tx_packets"] >= 1, "nothing went tap -> vfio"
q = v["queues"][0]
assert not q["broken"] and q["broken_count"] == 0, q
EOF

dp_vfio_stop
assert_eq "$(json_get ports.0.state <"$DP_DIR/final.json")" running "state in the final counters"

# released: the kernel's driver takes the device back and it moves frames
run_iovctl 0 restore "$NET"
assert_eq "$(sysfs_driver "$NET")" virtio-pci "driver after restore"
wait_for 10 test -n "$(netdev_by_mac "$VM_VFIO_NET_MAC")" || fail "no netdev for $VM_VFIO_NET_MAC after restore"
KN=$(netdev_by_mac "$VM_VFIO_NET_MAC")
ip link set dev "$KN" up
frame_across dpvf-kernel-again "$PEER" "$KN"
