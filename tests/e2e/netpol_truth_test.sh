#!/usr/bin/env bash
# tests/e2e/netpol_truth_test.sh NODES [CASE...]: the NetworkPolicy truth tables of the upstream
# netpol e2e suite (test/e2e/network/netpol) and Cyclonus, on the multi-node cluster in a box
# (lib_netpol.sh): pods x/a x/b x/c y/a ... z/c on NODES (2: alternating over node-1 with socket
# LB and node-2 with tc only; 1: all on node-1), every pod probing every other on TCP/80,
# UDP/81 and its named port, IPv4 and IPv6, after each policy change, the observed matrix
# compared cell by cell with the expected one; a few cases check the policy maps' entries too.
# Each case_NAME names the upstream test it mirrors, writes its policies, checks, and removes
# them; the cases share one grid. CASE... runs only those (default: all, in file order).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$HERE/lib.sh"
# shellcheck source=tests/e2e/lib_cluster.sh
source "$HERE/lib_cluster.sh"
# shellcheck source=tests/e2e/lib_multinode.sh
source "$HERE/lib_multinode.sh"
# shellcheck source=tests/e2e/lib_netpol.sh
source "$HERE/lib_netpol.sh"

ALL=tcp,udp,named
SVC4=198.19.0.80
SVC6=2001:db8:c::80

# pods_in CIDR4 CIDR6: the pods with their IPv4 address in CIDR4 and their IPv6 one in CIDR6.
pods_in() {
  python3 -S -c '
import ipaddress, json, sys
grid = json.load(open(sys.argv[1]))["pods"]
n4, n6 = ipaddress.ip_network(sys.argv[2]), ipaddress.ip_network(sys.argv[3])
print(" ".join(k for k, p in sorted(grid.items())
               if ipaddress.ip_address(p["ip4"]) in n4 and ipaddress.ip_address(p["ip6"]) in n6))' "$NP_GRID" "$1" "$2"
}

# The policy verdict counters of every node, into COUNTERS[I,NAME] (policy_allowed,
# policy_denied, policy_denied_default); counters_moved I NAME prints how far one moved since.
declare -A COUNTERS=()
counters_mark() {
  local i c
  for ((i = 1; i <= NP_NODES; i++)); do
    for c in policy_allowed policy_denied policy_denied_default; do
      COUNTERS[$i,$c]=$(sy_mn_counter "$i" "$c")
    done
  done
}
counters_moved() {
  local now
  now=$(sy_mn_counter "$1" "$2")
  echo $((now - ${COUNTERS[$1,$2]}))
}

# ---- cases ----------------------------------------------------------------------------------

# Upstream's starting point (NewReachability(pods, true)): without a policy every pod reaches
# every pod on every port, directly and through a ClusterIP.
case_no_policy_allows_everything_upstream_initial_reachability() {
  np_expect "no policy: every pod reaches every pod" "" tcp,udp,named,other,svc,svctc
}

# upstream "should support a 'default-deny-ingress' policy"
case_default_deny_ingress_upstream_default_deny_ingress() {
  np_policy x deny-ingress 'podSelector: {}
policyTypes: [Ingress]'
  np_sync
  counters_mark
  np_expect "default deny ingress in x" "deny * -> x/*" "$ALL"
  local n=${NP_NODE_OF[x/a]} flags rules i
  # No policy of x has a rule: every denial is "by default".
  for ((i = 1; i <= NP_NODES; i++)); do
    (($(counters_moved "$i" policy_denied_default) > 0 && $(counters_moved "$i" policy_denied) == 0)) ||
      sy_fail "expected node-$i's denials counted as policy_denied_default only" \
        "(policy_denied_default +$(counters_moved "$i" policy_denied_default), policy_denied +$(counters_moved "$i" policy_denied))"
  done
  sy_log "ok: every node counted its denials as policy_denied_default"
  flags=$(np_endpoint "$n" x/a)
  [[ $flags == *" flags=ingress-isolated" ]] ||
    sy_fail "expected x/a's pol_ep_v1 entry on node-$n to be ingress-isolated only, got: $flags"
  rules=$(np_rules "$n" x/a ingress)
  [[ -z $rules ]] || sy_fail "expected no ingress rule for x/a on node-$n, got: $rules"
  n=${NP_NODE_OF[y/b]}
  flags=$(np_endpoint "$n" y/b)
  [[ $flags == *" flags=none" ]] || sy_fail "expected y/b (no policy selects it) not isolated on node-$n, got: $flags"
  sy_log "ok: pol_ep_v1: x/a ingress-isolated without rules, y/b not isolated"
  np_unpolicy_all
}

# upstream "should enforce egress policy allowing traffic to a server in a different namespace
# based on PodSelector and NamespaceSelector" starts from a default deny egress: Cyclonus's
# "deny-all-egress"
case_default_deny_egress_cyclonus_deny_all_egress() {
  np_policy x deny-egress 'podSelector: {}
policyTypes: [Egress]'
  np_sync
  np_expect "default deny egress in x" "deny x/* -> *" "$ALL"
  np_unpolicy_all
}

# upstream "should enforce multiple, stacked policies with overlapping podSelectors" and
# "should support allow-all policy": policies add up, so an allow-all beside a default deny
# admits everything.
case_stacked_allow_all_over_default_deny_upstream_stacked_policies() {
  np_policy x deny-ingress 'podSelector: {}
policyTypes: [Ingress]'
  np_policy x allow-all 'podSelector: {}
ingress: [{}]'
  np_sync
  np_expect "allow-all beside default deny ingress in x" "" "$ALL"
  np_expect_rules "x/a admits any peer on any port" "${NP_NODE_OF[x/a]}" x/a ingress "any any"
  np_unpolicy x allow-all
  np_sync
  np_expect "default deny ingress in x again once allow-all is removed" "deny * -> x/*" tcp
  np_unpolicy_all
}

# upstream "should enforce policy to allow traffic from pods within server namespace based on
# PodSelector"
case_pod_selector_upstream_allow_from_pods_within_server_namespace() {
  np_policy x allow-b 'podSelector: {matchLabels: {pod: a}}
ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]'
  np_sync
  counters_mark
  np_expect "x/a admits x/b only" "deny * -> x/a; allow x/b -> x/a" "$ALL"
  np_expect_rules "x/a admits x/b on any port" "${NP_NODE_OF[x/a]}" x/a ingress "x/b any"
  # x/a's policy has a rule: its denials are "by policy"; x/b's flows were judged and allowed.
  local n=${NP_NODE_OF[x/a]} allowed denied by_default
  allowed=$(counters_moved "$n" policy_allowed) denied=$(counters_moved "$n" policy_denied)
  by_default=$(counters_moved "$n" policy_denied_default)
  ((allowed > 0 && denied > 0 && by_default == 0)) ||
    sy_fail "expected node-$n to count x/a's verdicts as policy_allowed and policy_denied" \
      "(policy_allowed +$allowed, policy_denied +$denied, policy_denied_default +$by_default)"
  sy_log "ok: node-$n counted policy_allowed +$allowed, policy_denied +$denied, policy_denied_default +0"
  np_unpolicy_all
}

# upstream "should enforce policy to allow traffic only from a different namespace, based on
# NamespaceSelector"
case_namespace_selector_upstream_allow_only_from_a_different_namespace() {
  np_policy x allow-ns-y 'podSelector: {matchLabels: {pod: a}}
ingress: [{from: [{namespaceSelector: {matchLabels: {ns: "y"}}}]}]'
  np_sync
  np_expect "x/a admits namespace y" "deny * -> x/a; allow y/* -> x/a" "$ALL"
  np_unpolicy_all
}

# upstream "should enforce policy based on PodSelector and NamespaceSelector" (one peer: AND)
case_pod_and_namespace_selector_upstream_podselector_and_namespaceselector() {
  np_policy x allow-b-not-x 'podSelector: {matchLabels: {pod: a}}
ingress:
- from:
  - namespaceSelector: {matchExpressions: [{key: ns, operator: NotIn, values: ["x"]}]}
    podSelector: {matchLabels: {pod: b}}'
  np_sync
  np_expect "x/a admits pods b outside x" "deny * -> x/a; allow y/b -> x/a; allow z/b -> x/a" "$ALL"
  np_unpolicy_all
}

# upstream "should enforce policy based on PodSelector or NamespaceSelector" (two peers: OR)
case_pod_or_namespace_selector_upstream_podselector_or_namespaceselector() {
  np_policy x allow-b-or-not-x 'podSelector: {matchLabels: {pod: a}}
ingress:
- from:
  - namespaceSelector: {matchExpressions: [{key: ns, operator: NotIn, values: ["x"]}]}
  - podSelector: {matchLabels: {pod: b}}'
  np_sync
  np_expect "x/a admits namespaces other than x, and x/b" \
    "deny * -> x/a; allow y/* -> x/a; allow z/* -> x/a; allow x/b -> x/a" "$ALL"
  # The step marker's namespace is not x either.
  np_expect_rules "x/a admits every pod outside x and x/b" "${NP_NODE_OF[x/a]}" x/a ingress \
    "marker any; x/b any; y/a any; y/b any; y/c any; z/a any; z/b any; z/c any"
  np_unpolicy_all
}

# upstream "should enforce except clause while egress access to server in CIDR block" and
# "should allow ingress access from updated pod" style ipBlock ingress: an IPv4 block opens no
# IPv6 and the other way round.
case_ipblock_with_except_upstream_except_clause_in_cidr_block() {
  local xb4 yc6 p dsl
  xb4=$(python3 -S -c 'import json,sys; print(json.load(open(sys.argv[1]))["pods"]["x/b"]["ip4"])' "$NP_GRID")
  yc6=$(python3 -S -c 'import json,sys; print(json.load(open(sys.argv[1]))["pods"]["y/c"]["ip6"])' "$NP_GRID")
  np_policy x egress-cidr "podSelector: {matchLabels: {pod: a}}
policyTypes: [Egress]
egress:
- to:
  - ipBlock: {cidr: $SY_MN_CLUSTER_CIDR4, except: [$xb4/32]}
  - ipBlock: {cidr: $SY_MN_CLUSTER_CIDR6, except: [$yc6/128]}"
  # y/a admits the cluster except the first two pods of node-1 (.2 and .3, ::2 and ::3).
  np_policy y ingress-cidr "podSelector: {matchLabels: {pod: a}}
ingress:
- from:
  - ipBlock: {cidr: $SY_MN_CLUSTER_CIDR4, except: [198.18.17.0/30]}
  - ipBlock: {cidr: $SY_MN_CLUSTER_CIDR6, except: ['2001:db8:1:1::/126']}"
  np_sync
  dsl="deny x/a -> x/b v4; deny x/a -> y/c v6"
  for p in $(pods_in 198.18.17.0/30 2001:db8:1:1::/126); do
    dsl+="; deny $p -> y/a"
  done
  np_expect "x/a's egress to the cluster except x/b (IPv4) and y/c (IPv6); y/a's ingress except two pods" "$dsl" "$ALL"
  np_unpolicy_all
}

# upstream "should enforce policy to allow ingress traffic for a target
# [Feature:NetworkPolicyEndPort]": TCP 82-84 opens x/a's, x/b's and x/c's named ports (82, 83,
# 84) and the other ports 83 and 84 (numbers count, not names), not 85, 80 nor UDP 81.
case_port_range_endport_upstream_allow_ingress_traffic_for_a_target_endport() {
  np_policy x range 'podSelector: {}
ingress: [{ports: [{protocol: TCP, port: 82, endPort: 84}]}]'
  np_sync
  np_expect "x admits TCP 82-84 only" "deny * -> x/*; allow * -> x/* named; allow * -> x/a other; allow * -> x/b other" \
    tcp,udp,named,other
  np_expect_rules "82-84 as the port prefixes 82/15 and 84/16" "${NP_NODE_OF[x/a]}" x/a ingress "any tcp/82/15; any tcp/84"
  np_unpolicy_all
}

# upstream "should allow ingress access on one named port" and "should allow egress access on
# one named port": "serve" is 82 on x/a, 83 on x/b, ...; each pod's own number opens, the
# number another pod gave that name ("other") does not.
case_named_port_differs_per_pod_upstream_ingress_and_egress_on_one_named_port() {
  np_policy x named-in 'podSelector: {}
ingress: [{ports: [{port: serve}]}]'
  np_policy y named-out 'podSelector: {matchLabels: {pod: a}}
policyTypes: [Egress]
egress: [{ports: [{port: serve, protocol: TCP}]}]'
  np_sync
  np_expect "x admits each pod's own 'serve'; y/a sends to 'serve' only" \
    "deny * -> x/*; allow * -> x/* named; deny y/a -> *; allow y/a -> * named" tcp,udp,named,other
  np_expect_rules "x/a's 'serve' is 82" "${NP_NODE_OF[x/a]}" x/a ingress "any tcp/82"
  np_expect_rules "x/b's 'serve' is 83" "${NP_NODE_OF[x/b]}" x/b ingress "any tcp/83"
  np_unpolicy_all
}

# Cyclonus's probe mode "service-name" (policies judge the backend after the Service's DNAT):
# x/a behind a ClusterIP admits pods b of every namespace, whether the client's connect() was
# translated by socket LB (svc on node-1), by tc (svc on node-2, svctc everywhere).
case_service_backend_through_clusterip_cyclonus_probe_mode_service() {
  local -A before=()
  local i c
  for ((i = 1; i <= NP_NODES; i++)); do
    for c in sock_xlate tc_dnat_new; do before[$i,$c]=$(sy_mn_counter "$i" "$c"); done
  done
  np_policy x svc-allow-b 'podSelector: {matchLabels: {pod: a}}
ingress: [{from: [{namespaceSelector: {}, podSelector: {matchLabels: {pod: b}}}]}]'
  np_sync
  np_expect "x/a through its ClusterIP admits pods b" "deny * -> x/a; allow */b -> x/a" tcp,svc,svctc
  # Both translations ran: socket LB on node-1, tc on every node.
  local now
  now=$(sy_mn_counter 1 sock_xlate)
  ((now > ${before[1,sock_xlate]})) || sy_fail "expected node-1's socket LB to translate the svc probes (sock_xlate $now)"
  for ((i = 1; i <= NP_NODES; i++)); do
    now=$(sy_mn_counter "$i" tc_dnat_new)
    ((now > ${before[$i,tc_dnat_new]})) ||
      sy_fail "expected node-$i's tc programs to translate the svctc probes (tc_dnat_new $now)"
  done
  np_unpolicy_all
}

# An established connection follows the policy: kept when a policy that admits it is added,
# stopped when one that denies it is (conntrack holds no stale verdict), and the same
# connection resumes when that policy is removed.
case_established_connection_when_a_policy_is_added_and_removed_cilium_established_flows() {
  local r1 r2 r3
  np_hold_start x/b x/a
  np_policy x hold 'podSelector: {matchLabels: {pod: a}}
ingress: [{from: [{podSelector: {matchLabels: {pod: b}}}]}]'
  np_sync
  r1=$(np_hold_received)
  sy_wait_for "the held connection to go on under a policy admitting it" 3 np__hold_at_least $((r1 + 3)) ||
    sy_fail "expected the held connection x/b -> x/a to go on after a policy admitting it was added (answers: $r1 -> $(np_hold_received))"
  np_policy x hold 'podSelector: {matchLabels: {pod: a}}
policyTypes: [Ingress]'
  np_sync
  sleep 0.3 # answers already on the way
  r2=$(np_hold_received)
  sleep 1
  r3=$(np_hold_received)
  ((r3 == r2)) || sy_fail "expected the held connection x/b -> x/a to stop once a policy denies it (answers: $r2 -> $r3 in 1 s)"
  np_unpolicy_all
  np_sync
  sy_wait_for "the held connection to resume" 8 np__hold_at_least $((r3 + 3)) ||
    sy_fail "expected the same held connection x/b -> x/a to resume after the denying policy was removed (answers: $r3 -> $(np_hold_received))"
  np_hold_stop
  sy_log "ok: the held connection x/b -> x/a: kept ($r1 answers), stopped at $r2, resumed on the same socket"
}

# upstream "should allow ingress access from updated pod" and "should deny ingress access to
# updated pod": labels move a client into and out of a peer selector, and a server into and
# out of a policy's podSelector.
case_label_changes_upstream_ingress_from_updated_pod_and_to_updated_pod() {
  np_policy x allow-clients 'podSelector: {matchLabels: {pod: a}}
ingress: [{from: [{podSelector: {matchLabels: {role: client}}}]}]'
  np_policy x isolate-targets 'podSelector: {matchLabels: {target: isolated}}
policyTypes: [Ingress]'
  np_sync
  np_expect "x/a admits role=client, nobody has it" "deny * -> x/a" tcp
  np_relabel x/b pod=b,role=client
  np_sync
  np_expect "x/b labelled role=client reaches x/a" "deny * -> x/a; allow x/b -> x/a" tcp
  np_relabel x/b pod=b
  np_relabel x/c pod=c,target=isolated
  np_sync
  np_expect "x/b without role=client no longer reaches x/a; x/c labelled target=isolated is" \
    "deny * -> x/a; deny * -> x/c" tcp
  np_relabel x/c pod=c
  np_sync
  np_expect "x/c without target=isolated admits everyone again" "deny * -> x/a" tcp
  np_unpolicy_all
}

# Every policy removed: back to the initial reachability.
case_all_policies_removed_upstream_cleanup() {
  np_sync
  np_expect "every policy removed: every pod reaches every pod" "" tcp,udp,named,other,svc
}

# ---- main -----------------------------------------------------------------------------------

nodes=${1:?usage: netpol_truth_test.sh 1|2 [CASE...]}
shift
# In file order (declare -F would sort them by name).
mapfile -t cases < <(grep -o '^case_[a-z0-9_]*()' "${BASH_SOURCE[0]}" | sed 's/^case_//; s/()$//')
if (($# > 0)); then
  for c in "$@"; do
    declare -F "case_$c" >/dev/null || { echo "netpol_truth_test.sh: no case $c; cases: ${cases[*]}" >&2; exit 2; }
  done
  cases=("$@")
fi

sy_e2e_init "netpol-$nodes"
t0=$SECONDS
np_up "$nodes"
np_service x/a "$SVC4" "$SVC6"
for c in "${cases[@]}"; do
  sy_log "=== case $c"
  "case_$c"
done
sy_log "PASS (${#cases[@]} cases, $((SECONDS - t0)) s)"
