#!/usr/bin/env bash
# tests/e2e/health_stale_test.sh: /healthz and /livez turn 503 while a change waits longer
# than the health timeout (2 x syncPeriod, as kube-proxy), and 200 again once it is applied.
# The change is held back honestly, by a minSyncPeriod longer than the timeout.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$HERE/lib.sh"
# shellcheck source=tests/e2e/lib_cluster.sh
source "$HERE/lib_cluster.sh"

code_of() {
  sy_in_ns "$NODE_NS" curl -s -o /dev/null --max-time 3 -w '%{http_code}' "http://$HEALTHZ_ADDR/$1" || echo 000
}
is_code() { [[ $(code_of "$1") == "$2" ]]; }

sy_e2e_init health-stale
sy_topology_up 3
sy_start_backends 8080 5353
CONFIG=$WORK/config.yaml
sy_write_config "$CONFIG" true
sy_tune_config "$CONFIG"
# Health timeout 2 s; syncs at most every 8 s.
printf 'syncPeriod: 1s\nminSyncPeriod: 8s\n' >>"$CONFIG"
sy_write_all_manifests
sy_daemon_start "$CONFIG"
sy_wait_for_programmed 3
sy_wait_for "/healthz 200 once synced" 10 is_code healthz 200 ||
  sy_fail "expected /healthz 200 after the first sync, got $(code_of healthz)"

# A change arrives; the next sync may only run up to 8 s after the last one.
sy_write_slice "$MANIFEST_DIR" web-abc12 web 8080 TCP "${POD_IPS[0]}" "${POD_IPS[1]}"
sy_wait_for "/healthz 503 while the change waits" 7 is_code healthz 503 ||
  sy_fail "expected /healthz 503 while a change waits longer than 2 x syncPeriod, got $(code_of healthz)"
[[ $(code_of livez) == 503 ]] || sy_fail "expected /livez 503 while stale too"
body=$(sy_in_ns "$NODE_NS" curl -s --max-time 3 "http://$HEALTHZ_ADDR/healthz")
sy_json_check "$body" "d['nodeEligible'] is True and d['lastUpdated'] != d['currentTime']" ||
  sy_fail "expected a stale body with the last update time, got $body"
sy_status_check "$(sy_svc_has "$WEB_VIP" "$WEB_PORT" TCP 3)" ||
  sy_fail "expected the change to be held back by minSyncPeriod while /healthz says 503"

sy_wait_for "the change applied and /healthz 200 again" 15 is_code healthz 200 ||
  sy_fail "expected /healthz 200 after the held-back sync, got $(code_of healthz)"
sy_wait_for "web with 2 backends" 5 sy_status_check "$(sy_svc_has "$WEB_VIP" "$WEB_PORT" TCP 2)" ||
  sy_fail "expected the change applied after minSyncPeriod"
sy_log "PASS"
