#!/bin/bash
# 77-datapath-vfio-mq: the vfio port with two queue pairs (`--port
# vfio:BDF,queues=2`) on QEMU's multi-queue virtio-net (mq=on, a tap netdev
# of 2 queues; tests/vm/run's IOVKIT_VM_MQ_NET) bound to vfio-pci. The port
# negotiates VIRTIO_NET_F_MQ and switches both pairs on through the control
# queue (VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET): until it does, the device uses
# the first pair only (QEMU attaches the tap's second queue then). 32 UDP
# flows sent from the peer NIC cross the bridge, the tap spreads them over
# its queues by flow hash, and every one of them comes out of the datapath
# on the tap port by content, with both of the vfio port's receive queues
# counting frames. Frames written to the tap leave through the device and
# reach the peer by content. No ring breaks; SIGTERM exits 0.
# vm-timeout: 150
# vm-vfio-modes: container iommufd
# vm-mq-net: 2
. "$(dirname "$0")/../lib.sh"
require_iovctl
require_vfio_mode
require_cmd ip python3

NET=$VM_MQ_NET_BDF
[[ -e /sys/bus/pci/devices/$NET ]] || skip "no multi-queue virtio-net at $NET (tests/vm/run: IOVKIT_VM_MQ_NET needs root and /dev/net/tun on the host)"
PEER=$(netdev_by_mac "$VM_MQ_PEER_MAC")
[[ -n $PEER ]] || fail "peer virtio-net $VM_MQ_PEER_MAC not found"
TAP=dpmq0
FLOWS=$REPO/tests/vm/flows.py
N=32

trap 'dp_vfio_cleanup $?' EXIT
trap 'exit 143' TERM

dp_vfio_setup "$NET" "$PEER" "$TAP"
dp_vfio_run --port "vfio:$NET,queues=2,mode=$VFIO_MODE" --port "tap:$TAP"
grep -q "2 queue pair(s).*MQ" "$DP_DIR/dp.log" || fail "the port did not say it set up 2 pairs with MQ: $(cat "$DP_DIR/dp.log")"
s=$(dp_stats)
assert_eq "$(json_get ports.0.state <<<"$s")" running "port 1's state"
assert_eq "$(json_get ports.0.queues.1.ready <<<"$s")" true "queue 1 ready"

# every flow from the peer comes out on the tap, by content (sent again
# each second until then: the first may meet the bridge still learning)
python3 "$FLOWS" recv "$TAP" mq "$N" 40 >"$DP_DIR/recv" &
rx=$!
wait_for 10 grep -q ready "$DP_DIR/recv" || fail "receiver on $TAP did not start"
for _ in $(seq 30); do
    python3 "$FLOWS" send "$PEER" "$VM_MQ_NET_MAC" "$N" mq
    kill -0 "$rx" 2>/dev/null || break
    sleep 1
done
wait "$rx" || fail "flows from $PEER did not all reach $TAP through the vfio port: $(cat "$DP_DIR/recv")"
info "$N flows from $PEER came out of the vfio port onto $TAP by content"

# and the reverse: a frame written to the tap leaves through the device
frame_across dpmq-from-tap "$TAP" "$PEER"

s=$(dp_stats)
JSON=$s python3 - <<'PY' || fail "counters not as expected: $s"
import json, os
p = json.loads(os.environ["JSON"])["ports"]
v, t = p[0], p[1]
assert len(v["queues"]) == 2, v
q0, q1 = v["queues"]
# the tap hashes flows over both of its queues once the second is attached:
# frames on receive queue 1 exist only if VQ_PAIRS_SET took effect
assert q0["rx_packets"] >= 1 and q1["rx_packets"] >= 1, f"receive queues {q0['rx_packets']} / {q1['rx_packets']}"
assert t["tx_packets"] >= 32, t
assert v["tx_packets"] >= 1, v
for q in (q0, q1):
    assert not q["broken"] and q["broken_count"] == 0, q
PY
info "receive queues: $(JSON=$s python3 -c 'import json,os; print(" / ".join(str(q["rx_packets"]) for q in json.loads(os.environ["JSON"])["ports"][0]["queues"]))')"

dp_vfio_stop
