#!/bin/bash
# 40-doctor: in the guest (intel-iommu with interrupt remapping, intel_iommu=on)
# iovctl doctor reports the IOMMU on and interrupt remapping in use.
. "$(dirname "$0")/../lib.sh"
require_iovctl

set +e
out=$("$IOVCTL" doctor --json)
rc=$?
set -e
status() { python3 -c 'import json,sys; print({c["name"]: c["status"] for c in json.load(sys.stdin)["checks"]}[sys.argv[1]])' "$1" <<<"$out"; }
assert_eq "$(status iommu)" PASS "iommu check"
assert_eq "$(status interrupt-remapping)" PASS "interrupt-remapping check"
assert_eq "$(json_get summary.fail <<<"$out")" 0 "failed checks"
assert_eq "$rc" 0 "doctor exit status"
"$IOVCTL" doctor | grep -q '^PASS iommu' || fail "text output lacks 'PASS iommu'"
