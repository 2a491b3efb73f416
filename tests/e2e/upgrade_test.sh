#!/usr/bin/env bash
# tests/e2e/upgrade_test.sh [socklb|tc]: a daemon is replaced twice under traffic, as a rolling
# update of the DaemonSet would (SIGTERM, then the new daemon starts):
#   1. the same version with a larger bpf.mapSizes.conntrack (a resize: the pinned conntrack map
#      is copied into a larger one, pinned in its place);
#   2. the next release's daemon (switchyard-next-layout, tests/upgrade: its conntrack entry has
#      one more field and its map another name: a layout change, migrated and the old pin
#      removed).
# Throughout, clients loop over the ClusterIPs (a new TCP connection per request, UDP from one
# socket) and one TCP connection stays open, answering a request every 20 ms. No request may
# fail, the held connection must be the same connection on the same pod at the end, and the
# flows' conntrack entries must be in the new maps. Without an argument, runs both modes.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if (($# == 0)); then
  for mode in socklb tc; do
    bash "${BASH_SOURCE[0]}" "$mode" || exit $?
  done
  exit 0
fi
MODE=$1

# shellcheck source=tests/e2e/lib.sh
source "$HERE/lib.sh"
# shellcheck source=tests/e2e/lib_cluster.sh
source "$HERE/lib_cluster.sh"

NEXT_BIN=$SY_BUILD_DIR/tests/upgrade/switchyard-next-layout
# The released conntrack map's name (it changes with its layout), from the map contract.
CT=$(awk '$1 == "#define" && $2 == "SY_MAP_CT_RELEASED" {print $3}' "$SY_ROOT/bpf/abi.h")
[[ $CT == ct_v* ]] || sy_fail "could not read SY_MAP_CT_RELEASED from $SY_ROOT/bpf/abi.h"
LARGER_CT=524288  # the default is 262144

# map_field PIN FIELD: one field of `bpftool map show` for a pinned map.
map_field() {
  bpftool -j map show pinned "$1" | python3 -c "import json,sys; print(json.load(sys.stdin)['$2'])"
}

# upgrade_to BIN LOG DESC: SIGTERM the running daemon, start BIN with the config, wait until it
# logged the takeover and synced.
upgrade_to() {
  local bin=$1 log=$2 desc=$3
  sy_daemon_stop 10 || sy_fail "expected the old daemon to exit 0 on SIGTERM before $desc"
  SY_BIN=$bin
  sy_daemon_start "$CONFIG" "$log"
  sy_wait_for "the new daemon to take over ($desc)" 15 grep -q '^.*took over ' "$log" ||
    sy_fail "expected the daemon of $desc to log 'took over ...'; log: $(cat "$log")"
  sy_wait_for "the new daemon to sync ($desc)" 15 grep -q 'source synced' "$log" ||
    sy_fail "expected the daemon of $desc to sync its source; log: $(cat "$log")"
  sy_log "$desc: $(grep 'took over\|taking it over\|hand packets\|packets this conntrack misses' "$log" | tr '\n' ' ')"
}

[[ -x $NEXT_BIN ]] || sy_fail "no next-layout daemon at $NEXT_BIN (build target switchyard-next-layout)"
command -v bpftool >/dev/null || sy_fail "bpftool not found (scripts/install-deps.sh installs it)"

sy_e2e_init "upgrade-$MODE"
sy_cluster_up "$MODE"
[[ $(map_field "$PIN/$CT" max_entries) == 262144 ]] ||
  sy_fail "expected the released daemon's conntrack map $CT with the default 262144 entries"
CT_BYTES=$(map_field "$PIN/$CT" bytes_value)

STOP=$WORK/stop-probes
sy_probe "$CLIENT_NS" --proto tcp --target "$WEB_VIP:$WEB_PORT" --stop-file "$STOP" --interval-ms 10 \
  >"$WORK/probe-tcp.json" 2>"$WORK/probe-tcp.err" &
tcp_probe=$!
sy_probe "$CLIENT_NS" --proto udp --target "$DNS_VIP:$DNS_PORT" --stop-file "$STOP" --interval-ms 10 \
  >"$WORK/probe-udp.json" 2>"$WORK/probe-udp.err" &
udp_probe=$!
sy_probe "$CLIENT_NS" --proto tcp --hold --target "$WEB_VIP:$WEB_PORT" --stop-file "$STOP" --interval-ms 20 \
  >"$WORK/probe-hold.json" 2>"$WORK/probe-hold.err" &
hold_probe=$!
sy_track_pid "$tcp_probe"
sy_track_pid "$udp_probe"
sy_track_pid "$hold_probe"
# Timed on purpose: traffic before each replacement and after the last.
sleep 2

# 1. A resize: the same daemon, a larger conntrack.
sed -i "s/^  devices: \[veth-c\]$/&\n  mapSizes:\n    conntrack: $LARGER_CT/" "$CONFIG"
grep -q "conntrack: $LARGER_CT" "$CONFIG" || sy_fail "could not set bpf.mapSizes.conntrack in $CONFIG"
upgrade_to "$SY_BIN" "$WORK/daemon-resized.log" "the resize to $LARGER_CT conntrack entries"
grep -q "took over $CT -> $CT (resize)" "$WORK/daemon-resized.log" ||
  sy_fail "expected 'took over $CT -> $CT (resize)' in the log: $(cat "$WORK/daemon-resized.log")"
[[ $(map_field "$PIN/$CT" max_entries) == "$LARGER_CT" ]] ||
  sy_fail "expected the pinned $CT to have $LARGER_CT entries after the resize, got $(map_field "$PIN/$CT" max_entries)"
sleep 2

# 2. The next release: a changed conntrack entry under a new map name.
upgrade_to "$NEXT_BIN" "$WORK/daemon-next.log" "the next layout"
grep -q "took over $CT -> ct_vnext (layout)" "$WORK/daemon-next.log" ||
  sy_fail "expected 'took over $CT -> ct_vnext (layout)' in the log: $(cat "$WORK/daemon-next.log")"
[[ ! -e $PIN/$CT ]] || sy_fail "expected the old layout's pin $CT to be removed after the takeover"
[[ $(map_field "$PIN/ct_vnext" max_entries) == "$LARGER_CT" ]] ||
  sy_fail "expected ct_vnext to keep the configured $LARGER_CT entries"
# The next layout's entry has one more 8-byte field (bpf/abi.h, SY_TEST_NEXT_LAYOUT).
[[ $(map_field "$PIN/ct_vnext" bytes_value) == $((CT_BYTES + 8)) ]] ||
  sy_fail "expected ct_vnext's entries to have the next layout's $((CT_BYTES + 8)) bytes, got $(map_field "$PIN/ct_vnext" bytes_value)"
sleep 2

touch "$STOP"
for p in tcp udp hold; do
  pid_var=${p}_probe
  wait "${!pid_var}" || true
done
tcp=$(<"$WORK/probe-tcp.json")
udp=$(<"$WORK/probe-udp.json")
hold=$(<"$WORK/probe-hold.json")
sy_log "TCP (a connection per request) across both replacements: $tcp"
sy_log "UDP (one socket) across both replacements: $udp"
sy_log "TCP (one held connection) across both replacements: $hold"
[[ -n $tcp && -n $udp && -n $hold ]] || sy_fail "expected every probe to report; stderr: $(cat "$WORK"/probe-*.err)"
sy_json_check "$tcp" "d['failed'] == 0 and d['peer_mismatch'] == 0 and d['ok'] > 200" ||
  sy_fail "expected zero failed TCP requests across the resize and the layout upgrade (and > 200 requests), got $tcp"
sy_json_check "$tcp" "sorted(d['backends']) == ['pod1', 'pod2', 'pod3']" ||
  sy_fail "expected new TCP connections to keep spreading over pod1..pod3, got $tcp"
sy_json_check "$udp" "d['failed'] == 0 and d['peer_mismatch'] == 0 and d['ok'] > 200" ||
  sy_fail "expected zero failed UDP requests across the resize and the layout upgrade (and > 200), got $udp"
sy_json_check "$hold" "d['failed'] == 0 and d['connections'] == 1 and len(d['backends']) == 1 and d['ok'] > 100" ||
  sy_fail "expected the held TCP connection to survive both replacements (one connection, one pod, no failed request), got $hold"
if [[ $MODE == tc ]]; then
  # The UDP socket is one flow: its conntrack entry moved into each new map with it.
  sy_json_check "$udp" "len(d['backends']) == 1" ||
    sy_fail "expected the UDP flow (one socket) to stay on one backend across both takeovers (conntrack carried), got $udp"
  entries=$(bpftool -j map dump pinned "$PIN/ct_vnext" | python3 -c "import json,sys; print(len(json.load(sys.stdin)))")
  ((entries >= 4)) || sy_fail "expected the flows' conntrack pairs in ct_vnext, found $entries entries"
  sy_log "ct_vnext holds $entries entries; tc_upgrade_handoff = $(sy_counter tc_upgrade_handoff)"
fi
sy_status_check "$(sy_svc_has "$WEB_VIP" "$WEB_PORT" TCP 3) and $(sy_svc_has "$DNS_VIP" "$DNS_PORT" UDP 3)" ||
  sy_fail "expected status from the next-layout daemon to show web and dns with 3 backends each: $(sy_status_json)"
sy_log "PASS"
