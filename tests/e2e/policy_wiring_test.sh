#!/usr/bin/env bash
# tests/e2e/policy_wiring_test.sh: the daemon's NetworkPolicy wiring (policy.enabled) on the
# multi-node cluster in a box, fed from manifest files (Namespace, Pods with status.podIPs and
# spec.nodeName, a NetworkPolicy):
#   - with policy.enabled, node-1's daemon programs the policy maps: `switchyard status policy
#     -o json` names the pod, its identity and its rule, and bpftool's dump of pol_rules_v1
#     holds that rule's key (endpoint, peer identity, ingress, TCP, port) byte for byte;
#     pol_state_v1 has the enabled flag and a revision whose low bits are not 0;
#   - x/b reaches x/a on the allowed port (real traffic through node-1's tc programs);
#   - a policy change reaches the maps without a restart (same daemon pid): the new port is
#     in, the old one out, the revision moved; x/b's connections to the old port are now
#     dropped (policy_denied counted) and, with policy.logDenied, logged naming both pods;
#   - a restart (SIGKILL, then a new daemon) adopts the pinned maps: nothing rewritten, the
#     same revision, the same endpoint and identity numbers;
#   - policy.enabled false: pol_state_v1's flags 0, the policy maps empty, the names file gone,
#     and x/b reaches x/a's TCP 8080 again (nothing is judged).
# The truth tables of enforcement are elsewhere; here traffic only shows the wiring works.
#
#   policy_wiring_test.sh [files|apiserver]   the objects from manifest files (default) or from
#                                             sy-fake-apiserver through kubectl (its reflectors
#                                             for Pods, Namespaces and NetworkPolicies)
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MODE=${1:-files}
[[ $MODE == files || $MODE == apiserver ]] || { echo "usage: $0 [files|apiserver]" >&2; exit 2; }
# shellcheck source=tests/e2e/lib.sh
source "$HERE/lib.sh"
# shellcheck source=tests/e2e/lib_cluster.sh
source "$HERE/lib_cluster.sh"
# shellcheck source=tests/e2e/lib_multinode.sh
source "$HERE/lib_multinode.sh"
# The fake API server and kubectl helpers of the conformance table (cf__start_fake, cf_apply).
CF_SOURCE=$MODE
# shellcheck source=tests/e2e/conformance_lib.sh
source "$HERE/conformance_lib.sh"

sy_e2e_init "policy-wiring-$MODE"
sy_mn_up 2 1
if [[ $MODE == apiserver ]]; then
  cf__start_fake
  SY_MN_EXTRA_CONFIG="source: {kind: apiserver, path: null, pollInterval: null}
clientConnection: {kubeconfig: $WORK/kubeconfig}"
fi
PIN1=${SY_MN_PIN[1]}
NS1=${SY_MN_NODE_NS[1]}
A_IP4=${SY_MN_POD_IP4[1,1]}
A_IP6=${SY_MN_POD_IP6[1,1]}
B_IP4=${SY_MN_POD_IP4[2,1]}
B_IP6=${SY_MN_POD_IP6[2,1]}

# policy_json: `switchyard status policy -o json` of node-1's pins.
policy_json() {
  timeout 20 nsenter --net="/run/netns/$NS1" "$SY_BIN" status policy --pin-path "$PIN1" -o json
}
policy_check() { # EXPR (Python, d = the policy status JSON)
  local out
  out=$(policy_json 2>/dev/null) || return 1
  sy_json_check "$out" "$1"
}
# rule_keys: every key of pinned pol_rules_v1 as "prefixlen endpoint identity dir proto port"
# (decoded from bpftool's raw key bytes: prefixlen little-endian, the rest network order).
rule_keys() {
  bpftool -j map dump pinned "$PIN1/pol_rules_v1" | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    k = bytes(int(b, 16) for b in e["key"])
    print(int.from_bytes(k[0:4], "little"), int.from_bytes(k[4:8], "big"), int.from_bytes(k[8:12], "big"),
          k[12], k[13], int.from_bytes(k[14:16], "big"))
'
}
# pol_state: "revision flags" of pinned pol_state_v1.
pol_state() {
  bpftool -j map dump pinned "$PIN1/pol_state_v1" | python3 -c '
import json, sys
k = bytes(int(b, 16) for b in json.load(sys.stdin)[0]["value"])
print(int.from_bytes(k[0:4], "little"), int.from_bytes(k[4:8], "little"))
'
}
flags_are() { # N: pol_state_v1's flags are N
  local rev flags
  read -r rev flags <<<"$(pol_state)"
  [[ $flags == "$1" ]]
}
metric() { # NAME: its value on node-1's metrics endpoint, as an integer
  sy_in_ns "$NS1" curl -s --max-time 3 "http://$SY_MN_METRICS_ADDR/metrics" | awk -v n="$1" '$1 == n { print $2 + 0 }'
}

write_objects() { # PORT: x/a (node-1) accepts TCP PORT from x/b (node-2)
  sy__write_atomically "$SY_MN_MANIFEST_DIR/policy-objects.yaml" <<EOF
apiVersion: v1
kind: Namespace
metadata: {name: x, labels: {team: x}}
---
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x, labels: {app: a}}
spec: {nodeName: ${SY_MN_NODE_NAME[1]}, containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}
status: {phase: Running, podIP: $A_IP4, podIPs: [{ip: $A_IP4}, {ip: $A_IP6}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: x, labels: {app: b}}
spec: {nodeName: ${SY_MN_NODE_NAME[2]}, containers: [{name: c}]}
status: {phase: Running, podIP: $B_IP4, podIPs: [{ip: $B_IP4}, {ip: $B_IP6}]}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-from-b, namespace: x}
spec:
  podSelector: {matchLabels: {app: a}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {app: b}}}]
    ports: [{protocol: TCP, port: $1}]
EOF
  cf_apply "$SY_MN_MANIFEST_DIR/policy-objects.yaml"
}

# The expression: x/a is an endpoint isolated for ingress with exactly one rule, from x/b's
# identity, TCP PORT.
has_rule() { # PORT
  echo "d['enabled'] and [(e['pod'], sorted(e['addresses']), e['ingressIsolated'], e['egressIsolated'], \
[(r['direction'], r['protocol'], r['port'], r['portPrefixLen']) for r in e['rules']]) for e in d['endpoints']] == \
[('x/a', sorted(['$A_IP4', '$A_IP6']), True, False, [('ingress', 'TCP', $1, 16)])] and \
[r['peer'] for r in d['endpoints'][0]['rules']] == [i['id'] for i in d['identities'] if i['labels'] == {'app': 'b'}]"
}

# --- policy.enabled: the maps hold the policy -----------------------------------------------
write_objects 8080
sy_mn_write_config 1 true 'policy: {enabled: true, logDenied: true}'
sy_mn_start_servers
sy_mn_daemon_start 1
sy_wait_for "node-1's daemon to start" 10 grep -q "starting: source $MODE," "${SY_MN_DAEMON_LOG[1]}" ||
  sy_fail "expected node-1's daemon to run with source $MODE: $(head -3 "${SY_MN_DAEMON_LOG[1]}")"
sy_wait_for "node-1's policy maps to hold x/a's rule for 8080" 20 policy_check "$(has_rule 8080)" ||
  sy_fail "expected status policy to show x/a with one ingress rule from x/b's identity on TCP 8080, got: $(policy_json 2>&1)"
out=$(policy_json)
sy_json_check "$out" "sorted((i['namespace'], sorted(i['labels'].items())) for i in d['identities']) == [('x', [('app', 'a')]), ('x', [('app', 'b')])]" ||
  sy_fail "expected the identities of x/a and x/b, named, got: $out"
EP=$(sy_json "$out" "d['endpoints'][0]['endpoint']")
PEER=$(sy_json "$out" "d['endpoints'][0]['rules'][0]['peer']")
ID_A=$(sy_json "$out" "d['endpoints'][0]['identity']")
keys=$(rule_keys)
[[ $keys == "96 $EP $PEER 0 6 8080" ]] ||
  sy_fail "expected pol_rules_v1 to hold one key (prefixlen 96, endpoint $EP, peer $PEER, ingress, TCP, 8080), bpftool says: $keys"
read -r REV FLAGS <<<"$(pol_state)"
((FLAGS == 3)) || sy_fail "expected pol_state_v1 flags SY_POL_STATE_ENABLED|SY_POL_STATE_LOG_DENIED (3), got $FLAGS"
((REV > 0 && (REV & 16383) != 0)) || sy_fail "expected a revision with nonzero low bits, got $REV"
sy_json_check "$out" "d['revision'] == $REV and d['namesRevision'] == $REV" ||
  sy_fail "expected status to show revision $REV, got: $out"
[[ $(metric switchyard_policy_rules) == 1 ]] || sy_fail "expected switchyard_policy_rules 1, got '$(metric switchyard_policy_rules)'"
[[ $(metric 'switchyard_policy_sync_total{result="success"}') -ge 1 ]] ||
  sy_fail "expected a successful policy sync counted, got '$(metric 'switchyard_policy_sync_total{result="success"}')'"
table=$(timeout 20 nsenter --net="/run/netns/$NS1" "$SY_BIN" status policy --pin-path "$PIN1")
grep -qE "^x/a +$EP +$ID_A +isolated +open " <<<"$table" && grep -qF "endpoint $EP ingress peer $PEER TCP 8080" <<<"$table" ||
  sy_fail "expected the table to list x/a (endpoint $EP, identity $ID_A, ingress isolated) and its rule, got: $table"
cfg=$("$SY_BIN" --config "${SY_MN_CONFIG[1]}" --print-config)
sy_json_check "$cfg" "d['policy'] == {'enabled': True, 'logDenied': True}" ||
  sy_fail "expected --print-config to show policy.enabled and logDenied true, got: $cfg"
sy_mn_expect_probe "x/b to reach x/a on the allowed TCP 8080" "d['ok'] == 5" pod 2 1 --proto tcp \
  --target "$A_IP4:8080" --count 5
sy_log "ok: policy.enabled programs the maps (endpoint $EP, peer $PEER, revision $REV)"

# --- a change reaches the maps without a restart --------------------------------------------
PID=${SY_MN_DAEMON_PID[1]}
write_objects 9090
sy_wait_for "node-1's policy maps to move x/a's rule to 9090" 20 policy_check "$(has_rule 9090)" ||
  sy_fail "expected the rule to move to TCP 9090 without a restart, got: $(policy_json 2>&1)"
keys=$(rule_keys)
[[ $keys == "96 $EP $PEER 0 6 9090" ]] || sy_fail "expected pol_rules_v1 to hold only the 9090 key, bpftool says: $keys"
read -r REV2 FLAGS <<<"$(pol_state)"
((REV2 != REV && (REV2 & 16383) != 0 && FLAGS == 3)) || sy_fail "expected a new revision (was $REV), flags 3; got $REV2 $FLAGS"
[[ ${SY_MN_DAEMON_PID[1]} == "$PID" ]] && ! sy__gone "$PID" || sy_fail "expected the same daemon (pid $PID) to apply the change"
denied0=$(sy_mn_counter 1 policy_denied)
sy_mn_expect_probe "x/b's connections to x/a's TCP 8080 to be dropped once only 9090 is allowed" "d['ok'] == 0" \
  pod 2 1 --proto tcp --target "$A_IP4:8080" --count 3 --timeout-ms 300
(($(sy_mn_counter 1 policy_denied) > denied0)) || sy_fail "expected policy_denied to count the dropped SYNs"
line="policy: denied ingress TCP x/b ($B_IP4) -> x/a ($A_IP4) port 8080 on ${SY_MN_POD_DEVS[1]}: no rule"
sy_wait_for "the denied flow in node-1's log" 10 grep -qF "$line" "${SY_MN_DAEMON_LOG[1]}" ||
  sy_fail "expected policy.logDenied to log '$line...'; log: $(grep -F 'denied' "${SY_MN_DAEMON_LOG[1]}" | tail -5)"
sy_log "ok: a policy change rewrote the rule in place (revision $REV -> $REV2), and its denials are enforced and logged"

# --- a restart adopts what is pinned --------------------------------------------------------
sy_mn_daemon_kill9 1
sy_mn_daemon_start 1 "$WORK/daemon-n1-restart.log"
sy_wait_for "the restarted daemon to adopt the policy maps" 20 grep -q "adopted pinned policy maps: revision $REV2" \
  "${SY_MN_DAEMON_LOG[1]}" || sy_fail "expected the restarted daemon to adopt revision $REV2; log: $(tail -20 "${SY_MN_DAEMON_LOG[1]}")"
sy_wait_for "the restarted daemon's first service sync" 20 grep -q "source synced" "${SY_MN_DAEMON_LOG[1]}" ||
  sy_fail "expected the restarted daemon to sync"
sleep 1 # a policy sync would follow at once (minSyncPeriod)
out=$(policy_json)
sy_json_check "$out" "$(has_rule 9090) and d['endpoints'][0]['endpoint'] == $EP and d['endpoints'][0]['identity'] == $ID_A \
and d['endpoints'][0]['rules'][0]['peer'] == $PEER" ||
  sy_fail "expected the restart to keep endpoint $EP, identity $ID_A and peer $PEER, got: $out"
read -r REV3 FLAGS <<<"$(pol_state)"
((REV3 == REV2 && FLAGS == 3)) || sy_fail "expected a restart with nothing changed to keep revision $REV2, got $REV3 (flags $FLAGS)"
sy_log "ok: the restarted daemon adopted the pinned policy maps as they were"

# --- policy.enabled false: flags 0, maps empty -----------------------------------------------
NAMES=/run/switchyard/state$PIN1/policy-names.json
[[ -f $NAMES ]] || sy_fail "expected the names file $NAMES while policy is enabled"
sy_mn_daemon_stop 1
sy_mn_write_config 1 true 'policy: {enabled: false}'
sy_mn_daemon_start 1 "$WORK/daemon-n1-disabled.log"
sy_wait_for "pol_state_v1's flags to be 0" 20 flags_are 0 ||
  sy_fail "expected policy.enabled false to clear pol_state_v1's flags, got $(pol_state)"
sy_wait_for "the policy maps to be empty" 20 policy_check "not d['enabled'] and d['endpoints'] == [] and d['identities'] == []" ||
  sy_fail "expected policy.enabled false to empty the policy maps, got: $(policy_json 2>&1)"
[[ -z $(rule_keys) ]] || sy_fail "expected pol_rules_v1 empty, bpftool says: $(rule_keys)"
[[ ! -e $NAMES ]] || sy_fail "expected the names file $NAMES removed with policy disabled"
sy_mn_expect_probe "x/b to reach x/a's TCP 8080 again with policy disabled" "d['ok'] == 5" pod 2 1 --proto tcp \
  --target "$A_IP4:8080" --count 5
sy_log "ok: policy.enabled false leaves flags 0 and the maps empty"
