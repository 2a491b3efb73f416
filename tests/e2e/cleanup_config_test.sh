#!/usr/bin/env bash
# tests/e2e/cleanup_config_test.sh: `switchyard cleanup --config FILE` also finds what no record
# or pin names, from the configuration's bpf.devices and bpf.cgroupPath:
#   1. a crash between attaching the tc programs and recording them (the tc_attach records
#      deleted by hand): --pin-path alone cannot see the filters; --config removes them;
#   2. pins removed by hand (rm -rf PIN): the cgroup links go with their pins (a link lives
#      only while something holds it), except one pinned elsewhere too; the tc filters stay
#      (they need no pin); --config removes the filters and detaches that last link.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$HERE/lib.sh"
# shellcheck source=tests/e2e/lib_cluster.sh
source "$HERE/lib_cluster.sh"

filters() { # DIRECTION: switchyard's filter lines on veth-c
  sy_in_ns "$NODE_NS" tc filter show dev veth-c "$1" | grep 'handle 0x5359' || true
}
expect_filters() { # WHEN
  [[ -n $(filters ingress) && -n $(filters egress) ]] ||
    sy_fail "expected switchyard's ingress and egress filters on veth-c $1"
}
expect_no_filters() { # WHEN
  [[ -z $(filters ingress)$(filters egress) ]] ||
    sy_fail "expected no switchyard filter on veth-c $1, got: $(filters ingress) $(filters egress)"
}
cleanup_config() {
  CLEANUP_RC=0
  CLEANUP_OUT=$(sy_in_ns "$NODE_NS" "$SY_BIN" cleanup --config "$CONFIG" 2>&1) || CLEANUP_RC=$?
  sy_log "cleanup --config: $CLEANUP_OUT"
  ((CLEANUP_RC == 0)) || sy_fail "expected cleanup --config to exit 0, got $CLEANUP_RC: $CLEANUP_OUT"
}

sy_e2e_init cleanup-config
sy_cluster_up socklb # socket hooks on $CG and tc filters on veth-c
sy_daemon_stop

# --- 1. filters without records ------------------------------------------------------------
ifindex=$(ip -n "$NODE_NS" -o link show veth-c | cut -d: -f1)
for direction in 0 1; do # SY_TC_INGRESS, SY_TC_EGRESS: key = {__u32 ifindex, __u32 direction}
  key=$(printf '%02x %02x %02x %02x %02x 00 00 00' $((ifindex & 255)) $(((ifindex >> 8) & 255)) \
    $(((ifindex >> 16) & 255)) $(((ifindex >> 24) & 255)) "$direction")
  # shellcheck disable=SC2086 # the key is eight separate hex bytes
  bpftool map delete pinned "$PIN/tc_attach_v1" key hex $key || sy_fail "could not delete tc_attach record $key"
done
[[ $(bpftool -j map dump pinned "$PIN/tc_attach_v1") == "[]" ]] || sy_fail "test bug: tc_attach records left"
expect_filters "after the records were deleted (the filters do not depend on them)"
cleanup_config
grep -qE "^cleanup $PIN: removed 2 tc filters, 0 clsact qdiscs, 8 cgroup links, [1-9][0-9]* pinned maps" <<<"$CLEANUP_OUT" ||
  sy_fail "expected cleanup --config to remove the 2 unrecorded filters, the 8 links and the pins, got: $CLEANUP_OUT"
grep -q "removed switchyard's filter on veth-c ingress (program sy_tc_from_pod, id [0-9]*) that no tc_attach record named" <<<"$CLEANUP_OUT" ||
  sy_fail "expected cleanup to say which unrecorded filter it removed, got: $CLEANUP_OUT"
expect_no_filters "after cleanup --config"
[[ ! -e $PIN ]] || sy_fail "expected $PIN gone after cleanup --config"
[[ -z $(bpftool cgroup show "$CG") ]] || sy_fail "expected no program on $CG after cleanup: $(bpftool cgroup show "$CG")"

# --- 2. pins removed by hand ----------------------------------------------------------------
sy_daemon_start "$CONFIG" "$WORK/daemon2.log"
sy_wait_for_programmed 3
sy_daemon_stop
expect_filters "after the second daemon"
EXTRA=/sys/fs/bpf/$PREFIX-extra
mkdir "$EXTRA"
sy_on_exit "rm -rf '$EXTRA'"
link_id=$(bpftool -j link show pinned "$PIN/links/connect4" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
bpftool link pin id "$link_id" "$EXTRA/connect4" || sy_fail "could not pin link $link_id a second time"
rm -rf "$PIN"
mapfile -t cg_progs < <(bpftool -j cgroup show "$CG" | python3 -c 'import json,sys; [print(p["name"]) for p in json.load(sys.stdin)]')
[[ ${cg_progs[*]:-} == sy_sock_connect4 ]] ||
  sy_fail "expected unpinning to detach every socket hook but the one pinned elsewhere too, $CG has: ${cg_progs[*]:-none}"
expect_filters "after the pins were removed by hand"
cleanup_config
grep -q "^cleanup $PIN: removed 2 tc filters, 0 clsact qdiscs, 1 cgroup links, 0 pinned maps" <<<"$CLEANUP_OUT" ||
  sy_fail "expected cleanup --config to remove the 2 filters (found by name, with no pins to compare maps) and the link pinned elsewhere, got: $CLEANUP_OUT"
expect_no_filters "after cleanup --config without pins"
[[ -z $(bpftool cgroup show "$CG") ]] || sy_fail "expected the link pinned elsewhere detached from $CG: $(bpftool cgroup show "$CG")"
sy_expect_probe "TCP to the ClusterIP after cleanup not to be translated" \
  "d['ok'] == 0 and d['backends'] == {}" --proto tcp --target "$WEB_VIP:$WEB_PORT" --count 3 --timeout-ms 300
sy_log "PASS"
