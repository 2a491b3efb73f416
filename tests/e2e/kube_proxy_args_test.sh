#!/usr/bin/env bash
# tests/e2e/kube_proxy_args_test.sh: the daemon started with kube-proxy's command line, no
# subcommand, as a DaemonSet that swapped kube-proxy's image for switchyard's runs it:
#   switchyard --config=FILE --hostname-override=node-a --kubeconfig=K \
#     --healthz-bind-address=... --metrics-bind-address=...
# against sy-fake-apiserver. The flags win over the file (whose hostnameOverride and addresses
# differ): /metrics and /healthz answer on the flags' addresses only, and /healthz follows the
# Node named by --hostname-override (the fixture's node-a carries the autoscaler's ToBeDeleted
# taint: 503, nodeEligible false). Then `switchyard --cleanup --config=FILE` (kube-proxy's
# --cleanup) removes the daemon's pins.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$HERE/lib.sh"
# shellcheck source=tests/e2e/lib_cluster.sh
source "$HERE/lib_cluster.sh"

TOKEN=kpa-$RANDOM$RANDOM
FAKE_ADDR=127.0.0.1:16444
FLAG_HEALTHZ=127.0.0.1:20256
FLAG_METRICS=127.0.0.1:20249

# get URL: sets CODE and BODY.
get() {
  local raw
  raw=$(sy_in_ns "$NODE_NS" curl -s --max-time 5 -w '\n%{http_code}' "$1") || raw=$'\n000'
  CODE=${raw##*$'\n'}
  BODY=${raw%$'\n'*}
}
healthz_not_eligible() {
  get "http://$FLAG_HEALTHZ/healthz"
  [[ $CODE == 503 ]] && sy_json_check "$BODY" "d['nodeEligible'] is False"
}

sy_e2e_init kube-proxy-args
sy_topology_up 1
fake=$SY_BUILD_DIR/tests/fake_apiserver/sy-fake-apiserver
[[ -x $fake ]] || sy_fail "no sy-fake-apiserver at $fake"
sy_in_ns "$NODE_NS" "$fake" --listen "$FAKE_ADDR" --pki-dir "$WORK/pki" --token "$TOKEN" \
  --fixtures "$SY_ROOT/tests/fixtures/k8s" --kubeconfig-out "$WORK/kubeconfig" >"$WORK/fake-apiserver.log" 2>&1 &
sy_track_pid $!
sy_wait_for "the fake API server to write its kubeconfig" 10 test -s "$WORK/kubeconfig" ||
  sy_fail "sy-fake-apiserver did not start: $(cat "$WORK/fake-apiserver.log")"

CONFIG=$WORK/config.yaml
sy_write_config "$CONFIG" true
python3 - "$CONFIG" <<'PY'
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
c["source"] = {"kind": "apiserver"}
c["hostnameOverride"] = "node-from-file"  # the flag must win
open(sys.argv[1], "w").write(yaml.safe_dump(c))
PY
DAEMON_LOG=$WORK/daemon.log
nsenter --net="/run/netns/$NODE_NS" "$SY_BIN" --config="$CONFIG" --hostname-override=node-a \
  --kubeconfig="$WORK/kubeconfig" --healthz-bind-address="$FLAG_HEALTHZ" \
  --metrics-bind-address="$FLAG_METRICS" >>"$DAEMON_LOG" 2>&1 &
DAEMON_PID=$!
SY_PIDS+=("$DAEMON_PID")
SY_DAEMON_RAN=1
sy_log "daemon started without a subcommand, pid $DAEMON_PID"

sy_wait_for "the fixtures' Services programmed" 20 sy_status_check "any(s['address'] == '198.19.0.10' for s in d['services'])" ||
  sy_fail "expected the daemon to program the API server's Services; status: $(sy_status_json 2>&1 | head -c 600); log: $(tail -20 "$DAEMON_LOG")"
get "http://$FLAG_METRICS/metrics"
{ [[ $CODE == 200 ]] && grep -q '^switchyard_build_info' <<<"$BODY"; } ||
  sy_fail "expected /metrics on --metrics-bind-address $FLAG_METRICS, got $CODE"
get "http://$METRICS_ADDR/metrics"
[[ $CODE == 000 ]] || sy_fail "expected nothing on the file's metricsBindAddress $METRICS_ADDR (the flag wins), got $CODE"
get "http://$HEALTHZ_ADDR/healthz"
[[ $CODE == 000 ]] || sy_fail "expected nothing on the file's healthzBindAddress $HEALTHZ_ADDR (the flag wins), got $CODE"
sy_wait_for "/healthz to follow Node node-a (ToBeDeleted taint: 503)" 20 healthz_not_eligible ||
  sy_fail "expected /healthz on $FLAG_HEALTHZ to answer 503 with nodeEligible false for node-a, got $CODE: $BODY"
grep -q 'node-from-file' "$DAEMON_LOG" && sy_fail "expected the file's hostnameOverride to be overridden, the log names it"
sy_log "ok: kube-proxy's args, flags over the file: $BODY"

sy_daemon_stop 10 || sy_fail "expected the daemon to exit 0 on SIGTERM"
pins_before=$(find "$PIN" -maxdepth 1 -type f | wc -l)
((pins_before > 0)) || sy_fail "expected the stopped daemon to leave its pins in $PIN"
out=$(nsenter --net="/run/netns/$NODE_NS" timeout 30 "$SY_BIN" --cleanup --config="$CONFIG" 2>&1) ||
  sy_fail "expected 'switchyard --cleanup --config=FILE' to exit 0: $out"
grep -qE "^cleanup $PIN: removed [0-9]+ tc filters, [0-9]+ clsact qdiscs, [1-9][0-9]* cgroup links, [1-9][0-9]* pinned maps" <<<"$out" ||
  sy_fail "expected --cleanup to remove the daemon's links and maps, got: $out"
pins_left=0
if [[ -d $PIN ]]; then pins_left=$(find "$PIN" -maxdepth 1 -type f | wc -l); fi
((pins_left == 0)) || sy_fail "expected no pins left in $PIN after --cleanup, $pins_left remain"
sy_log "ok: --cleanup: $out"
sy_log "PASS"
