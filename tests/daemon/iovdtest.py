"""Helpers for the iovd tests and benchmark: a fixture host with more VFs, a
private dbus-daemon, and iovd on both.

Environment: IOVD (the daemon binary), FIXTURES (output of mkfixtures.py).
"""
import json
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
IOVD = os.environ.get("IOVD") or os.path.join(ROOT, "build", "iovd")
FIXTURES = os.environ.get("FIXTURES") or os.path.join(ROOT, "build", "fixtures")
POLICY = os.path.join(ROOT, "contrib", "org.iovkit.iovd1.conf")
NAME = "org.iovkit.iovd1"
PATH = "/org/iovkit/iovd1"
IFACE = "org.iovkit.iovd1.Manager"

PF1 = "0000:01:00.1"
BRIDGE = "sys/devices/pci0000:00/0000:00:01.0"


def vf_address(i):
    """Address of VF i of PF 0000:01:00.1, from the PF's routing ID, sriov_offset
    (128) and sriov_stride (2), as the kernel computes it."""
    rid = 0x0101 + 128 + 2 * i
    return "0000:%02x:%02x.%x" % (rid >> 8, (rid & 0xff) >> 3, rid & 7)


def make_host(dst, n_vfs):
    """Copies the sriov-nic fixture to dst and enables n_vfs VFs (at most 63,
    its sriov_totalvfs) on PF 0000:01:00.1, the way the kernel shows them
    after `iovctl sriov set 01:00.1 --numvfs N --no-autoprobe` and binding
    each VF to vfio-pci: virtfnN/physfn links, one IOMMU group per VF (the
    82599 has ACS), the group's /dev/vfio node. VF 0000:01:10.2 of the other
    PF is the template."""
    assert 0 <= n_vfs <= 63
    shutil.copytree(os.path.join(FIXTURES, "sriov-nic"), dst, symlinks=True)
    bridge = os.path.join(dst, BRIDGE)
    template = os.path.join(bridge, "0000:01:10.2")
    pf = os.path.join(bridge, PF1)
    groups = os.path.join(dst, "sys/kernel/iommu_groups")
    first_group = max(int(g) for g in os.listdir(groups)) + 1
    for i in range(n_vfs):
        bdf, group = vf_address(i), first_group + i
        d = os.path.join(bridge, bdf)
        shutil.copytree(template, d, symlinks=True)
        with open(os.path.join(d, "uevent")) as f:
            uevent = f.read().replace("0000:01:10.2", bdf)
        with open(os.path.join(d, "uevent"), "w") as f:
            f.write(uevent)
        os.unlink(os.path.join(d, "physfn"))
        os.symlink("../" + PF1, os.path.join(d, "physfn"))
        os.unlink(os.path.join(d, "iommu_group"))
        os.symlink("../../../../kernel/iommu_groups/%d" % group, os.path.join(d, "iommu_group"))
        g = os.path.join(groups, str(group))
        os.makedirs(os.path.join(g, "devices"))
        for f in ("reserved_regions", "type"):
            shutil.copy(os.path.join(groups, "6", f), g)
        os.symlink("../../../../devices/pci0000:00/0000:00:01.0/" + bdf, os.path.join(g, "devices", bdf))
        os.symlink("../../../devices/pci0000:00/0000:00:01.0/" + bdf, os.path.join(dst, "sys/bus/pci/devices", bdf))
        os.symlink("../../../../devices/pci0000:00/0000:00:01.0/" + bdf,
                   os.path.join(dst, "sys/bus/pci/drivers/vfio-pci", bdf))
        os.symlink("../../../../pci0000:00/0000:00:01.0/" + bdf,
                   os.path.join(dst, "sys/devices/virtual/iommu/dmar0/devices", bdf))
        os.symlink("../" + bdf, os.path.join(pf, "virtfn%d" % i))
        open(os.path.join(dst, "dev/vfio", str(group)), "w").close()
    with open(os.path.join(pf, "sriov_numvfs"), "w") as f:
        f.write("%d\n" % n_vfs)
    with open(os.path.join(pf, "sriov_drivers_autoprobe"), "w") as f:
        f.write("0\n")
    return dst


BUS_CONF = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <!-- the defaults of Debian's system.conf: nobody owns a name or calls a
       method unless a policy file allows it -->
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <!-- root may monitor the bus (BecomeMonitor), as system.conf says too; so
       may the user running the tests, whose dbus-daemon this is (it takes
       BecomeMonitor from its own uid), so that the cases that watch the bus
       with dbus-monitor run without root too -->
  <policy user="root">
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
  <policy user="{user}"> <!-- a uid: it may have no name -->
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Monitoring"/>
  </policy>
  <!-- and iovd's own policy file, as installed -->
  <include>{policy}</include>
  <limit name="max_completed_connections">4096</limit>
  <limit name="max_connections_per_user">4096</limit>
  <limit name="max_replies_per_connection">1024</limit>
</busconfig>
"""


def bus_conf(socket, policy):
    """BUS_CONF for a bus on socket with iovd's policy file policy, run by this uid."""
    return BUS_CONF.format(socket=socket, policy=policy, user=os.geteuid())


class Bus:
    """A private dbus-daemon with the system bus's default policy plus
    contrib/org.iovkit.iovd1.conf, on a socket that any uid may reach."""

    def __init__(self, tmp):
        self.dir = tempfile.mkdtemp(prefix="bus-", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.socket = os.path.join(self.dir, "socket")
        self.address = "unix:path=" + self.socket
        conf = os.path.join(self.dir, "bus.conf")
        with open(conf, "w") as f:
            f.write(bus_conf(self.socket, POLICY))
        self.log = open(os.path.join(tmp, "dbus-daemon.log"), "w")
        self.proc = subprocess.Popen(["dbus-daemon", "--nofork", "--nopidfile", "--config-file=" + conf],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(500):
            if os.path.exists(self.socket):
                break
            time.sleep(0.01)
        else:
            raise RuntimeError("dbus-daemon did not create " + self.socket)

    def has_owner(self):
        p = subprocess.run(["busctl", "--address=" + self.address, "call", "org.freedesktop.DBus",
                            "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameHasOwner", "s", NAME],
                           capture_output=True, text=True, timeout=30)
        return p.stdout.strip() == "b true"

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Iovd:
    """iovd on a bus, a host tree, a configuration and a state directory."""

    def __init__(self, bus, host, config, state_dir, run_dir, args=(), log=None):
        self.bus, self.host, self.state_dir, self.run_dir = bus, host, state_dir, run_dir
        self.config = os.path.join(os.path.dirname(state_dir.rstrip("/")), "iovd.json")
        with open(self.config, "w") as f:
            json.dump(config, f)
        self.args = list(args)
        self.log_path = log or os.path.join(os.path.dirname(state_dir.rstrip("/")), "iovd.log")
        self.proc = None

    def env(self):
        env = dict(os.environ)
        env.update(IOVKIT_SYSFS_ROOT=self.host + "/sys", IOVKIT_DEV_ROOT=self.host + "/dev",
                   IOVKIT_PROC_ROOT=self.host + "/proc", IOVKIT_RUN_DIR=self.run_dir)
        # leaks are reported at exit; a SIGKILLed iovd reports nothing
        env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
        return env

    def command(self):
        return [IOVD, "--bus-address", self.bus.address, "--config", self.config, "--state-dir",
                self.state_dir] + self.args

    def start(self, wait=True):
        self.logf = open(self.log_path, "a")
        self.proc = subprocess.Popen(self.command(), env=self.env(), stdout=self.logf, stderr=subprocess.STDOUT)
        if not wait:
            return self
        for _ in range(1000):
            if self.proc.poll() is not None:
                raise RuntimeError("iovd exited with %d:\n%s" % (self.proc.returncode, self.log()))
            if self.bus.has_owner():
                return self
            time.sleep(0.01)
        raise RuntimeError("iovd did not take its bus name:\n" + self.log())

    def run_once(self, timeout=30):
        """Runs iovd expecting it to exit (a refused start); returns (code, log)."""
        p = subprocess.run(self.command(), env=self.env(), capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout + p.stderr

    def log(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM; returns the exit code (ASan's leak check runs at exit)."""
        if not self.proc:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self.logf.close()
        self.proc = None
        return code

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=60)
        self.logf.close()
        self.proc = None

    def state(self):
        return read_state(self.state_dir)


def read_journal(state_dir):
    """The newest state in <state_dir>/allocations.journal that counts
    (daemon/journal.c's format, read independently of it): (record number,
    text), or None when allocations.json is current."""
    try:
        with open(os.path.join(state_dir, "allocations.journal"), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    try:
        with open(os.path.join(state_dir, "allocations.json"), "rb") as f:
            snapshot = f.read()
    except FileNotFoundError:
        return None
    magic, epoch, slen, scrc, hcrc = struct.unpack_from("<8sQQII", data, 0)
    if magic != b"IOVDJNL1" or hcrc != zlib.crc32(data[:28]) or (slen, scrc) != (len(snapshot), zlib.crc32(snapshot)):
        return None
    off, seq, best = 4096, 0, None
    while off + 32 <= len(data):
        magic, e, s, n, crc = struct.unpack_from("<8sQQII", data, off)
        text = data[off + 32:off + 32 + n]
        if magic != b"IOVDREC1" or e != epoch or s != seq + 1 or len(text) != n or \
                crc != zlib.crc32(text, zlib.crc32(data[off + 8:off + 28])):
            break
        seq, best = s, text
        off += (32 + n + 4095) // 4096 * 4096
    return (seq, best.decode()) if best is not None else None


def read_state_text(state_dir):
    """The state iovd has made durable, as iovd wrote it: the journal's newest
    record where one counts, else allocations.json."""
    j = read_journal(state_dir)
    if j:
        return j[1]
    with open(os.path.join(state_dir, "allocations.json")) as f:
        return f.read()


def read_state(state_dir):
    return json.loads(read_state_text(state_dir))


def write_state(state_dir, n, pool="net"):
    """Writes a state file of n allocations (at most 16,777,216) at VF addresses
    that no host has (domains 0100 and up), as a large installation's would
    look to iovd after a reboot that renumbered everything."""
    os.makedirs(state_dir, exist_ok=True)
    allocs = []
    for i in range(n):
        address = "%04x:%02x:%02x.%x" % (0x100 + (i >> 16), (i >> 8) & 0xff, (i >> 3) & 0x1f, i & 7)
        allocs.append({"id": i + 1, "pool": pool, "owner": "vm-%d" % (i // 8), "address": address,
                       "driver": "vfio-pci", "created_usec": 1, "uid": 0})
    path = os.path.join(state_dir, "allocations.json")
    with open(path, "w") as f:
        json.dump({"version": 1, "next_id": n + 1, "allocations": allocs}, f, separators=(",", ":"))
    return path


def sanitizer_errors(text):
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        if marker in text:
            return marker
    return None
