"""tests/vm/vf-check.py: VF settings compared field by field, for the VF cases
(60-vf-netdevsim, 62-vf-igb); called through vf_check in lib.sh. One program
for every comparison, because each exec costs under TCG.

    vf IPJSON N key=value...  VF N of `ip -j link show PF` shows exactly these
                              values (iovctl's words: mac, vlans, spoofchk,
                              trust, state, min_tx_rate, max_tx_rate; values
                              are JSON or a bare string)
    same IPJSON IPJSON [N...] the VFs (all, or N...) did not change between
                              the two `ip -j link` snapshots
    agree IOVCTLJSON IPJSON   `iovctl vf list --json` agrees with
                              `ip -j -s link` on every VF, stats included, and
                              with sysfs on each VF's PCI address (virtfnN),
                              its own netdev (first in its net/) and the MAC
                              that netdev uses
    sriov JSON                `iovctl sriov show|set --json` agrees with
                              sysfs: numvfs, the PF's netdevs, and each VF's
                              address (virtfnN), driver and netdevs (net/)
    pf IPJSON                 print what must not change on the PF netdev
                              of `ip -j -d link show PF` (address, MTU, up,
                              promiscuity, queues, number of VFs reported)
    get JSON KEY...           print a value; lists comma-joined

Exit status 1 with the differences on stderr when a check fails.
"""
import json
import os
import sys

ZERO_MAC = "00:00:00:00:00:00"


def ip_vfs(path):
    return {v["vf"]: v for v in json.load(open(path))[0].get("vfinfo_list", [])}


def ip_fields(v):
    """An `ip -j link` VF in iovctl's words; [{}] in vlan_list is no VLAN."""
    vl = [x for x in v.get("vlan_list", []) if x.get("vlan", 0) or x.get("qos", 0)]
    return {
        "mac": v["address"],
        "vlans": [{"vlan": x.get("vlan", 0), "qos": x.get("qos", 0), "proto": x.get("protocol", "802.1Q")}
                  for x in vl],
        "spoofchk": v.get("spoofchk"), "trust": v.get("trust"), "state": v["link_state"],
        "min_tx_rate": v["rate"]["min_tx"], "max_tx_rate": v["rate"]["max_tx"],
    }


def sysfs_facts(pf, n):
    """What sysfs says of VF n of the PF netdev pf: address, its interface (net), its MAC."""
    link = f"/sys/class/net/{pf}/device/virtfn{n}"
    if not os.path.islink(link):
        return {"address": None, "net": [], "effective_mac": None}
    address = os.path.basename(os.readlink(link))
    try:
        nets = sorted(os.listdir(f"/sys/bus/pci/devices/{address}/net"))
    except FileNotFoundError:
        nets = []
    if not nets:
        return {"address": address, "net": [], "effective_mac": None}
    with open(f"/sys/class/net/{nets[0]}/address") as f:
        return {"address": address, "net": nets[:1], "effective_mac": f.read().strip()}


def fail(msg):
    print(msg, file=sys.stderr)
    sys.exit(1)


def want_values(pairs):
    want = {}
    for kv in pairs:
        k, v = kv.split("=", 1)
        try:
            want[k] = json.loads(v)
        except ValueError:
            want[k] = v
    return want


def check_vf(ipjson, n, pairs):
    got = ip_fields(ip_vfs(ipjson)[int(n)])
    want = want_values(pairs)
    bad = [f"{k}: ip shows {got[k]!r}, expected {want[k]!r}" for k in want if got[k] != want[k]]
    if bad:
        fail(f"VF {n}: " + "; ".join(bad))


def check_same(a_path, b_path, which):
    a, b = ip_vfs(a_path), ip_vfs(b_path)
    if sorted(a) != sorted(b):
        fail(f"VFs changed: {sorted(a)} -> {sorted(b)}")
    for n in (map(int, which) if which else a):
        if ip_fields(a[n]) != ip_fields(b[n]):
            fail(f"VF {n} changed: {ip_fields(a[n])} -> {ip_fields(b[n])}")


STATS = (("rx_bytes", "rx", "bytes"), ("rx_packets", "rx", "packets"), ("multicast", "rx", "multicast"),
         ("broadcast", "rx", "broadcast"), ("rx_dropped", "rx", "dropped"),
         ("tx_bytes", "tx", "tx_bytes"), ("tx_packets", "tx", "tx_packets"), ("tx_dropped", "tx", "dropped"))


def check_agree(mine_path, ip_path):
    mine, ip = json.load(open(mine_path)), json.load(open(ip_path))[0]
    vfs = ip_vfs(ip_path)
    if mine["net"] != [ip["ifname"]] or mine["numvfs"] != len(vfs) or len(mine["vfs"]) != len(vfs):
        fail(f"net/numvfs: iovctl {mine['net']} {mine['numvfs']} {len(mine['vfs'])}, ip {ip['ifname']} {len(vfs)}")
    for m in mine["vfs"]:
        v = vfs[m["vf"]]
        want = ip_fields(v)
        bad = [f"{k}: iovctl {m[k]!r}, ip {want[k]!r}" for k in want if m[k] != want[k]]
        for mk, side, ik in STATS:
            if m["stats"][mk] != v["stats"][side].get(ik):
                bad.append(f"stats {mk}: iovctl {m['stats'][mk]!r}, ip {v['stats'][side].get(ik)!r}")
        facts = sysfs_facts(mine["net"][0], m["vf"])
        facts["mac_differs"] = (m["mac"] != ZERO_MAC and facts["effective_mac"] is not None
                                and m["mac"] != facts["effective_mac"])
        bad += [f"{k}: iovctl {m[k]!r}, sysfs {facts[k]!r}" for k in facts if m[k] != facts[k]]
        if bad:
            fail(f"VF {m['vf']}: " + "; ".join(bad))


def netdevs(dev):
    try:
        return sorted(os.listdir(f"{dev}/net"))
    except FileNotFoundError:
        return []


def driver(dev):
    return os.path.basename(os.readlink(f"{dev}/driver")) if os.path.islink(f"{dev}/driver") else None


def check_sriov(path):
    s = json.load(open(path))
    pf = f"/sys/bus/pci/devices/{s['address']}"
    with open(f"{pf}/sriov_numvfs") as f:
        numvfs = int(f.read())
    bad = []
    if s["numvfs"] != numvfs or len(s["vfs"]) != numvfs:
        bad.append(f"numvfs: iovctl {s['numvfs']} ({len(s['vfs'])} listed), sysfs {numvfs}")
    if s["net"] != netdevs(pf):
        bad.append(f"PF net: iovctl {s['net']}, sysfs {netdevs(pf)}")
    for i, v in enumerate(s["vfs"]):
        link = f"{pf}/virtfn{i}"
        address = os.path.basename(os.readlink(link)) if os.path.islink(link) else None
        dev = f"/sys/bus/pci/devices/{address}"
        facts = {"address": address, "driver": driver(dev), "net": netdevs(dev)}
        bad += [f"VF {i} {k}: iovctl {v[k]!r}, sysfs {facts[k]!r}" for k in facts if v[k] != facts[k]]
    if bad:
        fail("; ".join(bad))


def pf_summary(path):
    link = json.load(open(path))[0]
    keep = {k: link.get(k) for k in ("ifname", "address", "mtu", "promiscuity", "allmulti", "num_tx_queues",
                                     "num_rx_queues")}
    keep["up"] = "UP" in link["flags"]
    keep["vfs"] = len(link.get("vfinfo_list", []))
    print(json.dumps(keep, sort_keys=True))


def get(path, keys):
    v = json.load(open(path))
    for k in keys:
        v = v[int(k)] if isinstance(v, list) else v[k]
    print(",".join(map(str, v)) if isinstance(v, list) else v if isinstance(v, str) else json.dumps(v))


def main(argv):
    cmd, args = argv[1], argv[2:]
    if cmd == "vf":
        check_vf(args[0], args[1], args[2:])
    elif cmd == "same":
        check_same(args[0], args[1], args[2:])
    elif cmd == "agree":
        check_agree(args[0], args[1])
    elif cmd == "sriov":
        check_sriov(args[0])
    elif cmd == "pf":
        pf_summary(args[0])
    elif cmd == "get":
        get(args[0], args[1:])
    else:
        fail(f"vf-check.py: unknown command {cmd!r}")


if __name__ == "__main__":
    main(sys.argv)
