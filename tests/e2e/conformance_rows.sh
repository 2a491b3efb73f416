# shellcheck shell=bash
# tests/e2e/conformance_rows.sh: the rows of the Service conformance table. Each row_NAME
# writes its own Service and EndpointSlices (names and addresses no other row uses), waits
# until both nodes programmed them, sends real traffic from the external client, pods and
# nodes, checks who answered and which client address the backend saw, and removes its
# objects again, so rows run one per cluster (conformance_test.sh ROW) or all in one
# (conformance_apiserver_test.sh). Names say which kube-proxy behaviour a row mirrors.
#
# The cluster (conformance_lib.sh): node-1 198.18.0.11 (socket LB; pods n1p1 198.18.17.2,
# n1p2 .17.3), node-2 198.18.0.12 (tc only; n2p1 198.18.18.2, n2p2 .18.3), ext 198.18.0.100
# (and .101) routing LB IPs and external IPs via node-1. Backends answer "NAME PEER": the
# probe's "backends" counts names, "sources" the client addresses the backends saw.

EXT4=$SY_MN_EXT_IP4
N1=198.18.0.11
N2=198.18.0.12

# All COUNT requests answered, with no peer mismatch, by exactly the backends listed.
answered_by() {
  local count=$1
  shift
  local names=""
  for b in "$@"; do names+="'$b', "; done
  echo "d['sent'] == $count and d['ok'] == $count and d['peer_mismatch'] == 0 and sorted(d['backends']) == sorted([$names])"
}

# ---- frontends ------------------------------------------------------------------------------

# kube-proxy NodePort (masquerade for Cluster policy): from outside, a NodePort on node-1
# reaches pods on both nodes; the local pod sees the client's own address (switchyard keeps
# it where kube-proxy would masquerade), the remote one node-1's address (SNAT, so that its
# reply comes back through node-1). TCP and UDP.
row_nodeport_external_client_reaches_local_and_remote_pods_kube_proxy_nodeport() {
  cf_service np1 clusterIP=198.19.1.1 type=NodePort port=http,80,8080,TCP,30101 port=dns,53,5353,UDP,30102
  cf_slice np1 np1 IPv4 http:8080/TCP,dns:5353/UDP n1p1 n2p1
  cf_programmed "$(cf_has 0.0.0.0 30101 TCP 2 NodePort) and $(cf_has 0.0.0.0 30102 UDP 2 NodePort)"
  cf_expect "TCP from ext to node-1's NodePort to reach both pods" \
    "$(answered_by 40 n1p1 n2p1) and d['sources'] == {'$EXT4': d['backends']['n1p1'], '$N1': d['backends']['n2p1']}" \
    ext --proto tcp --target "$N1:30101" --count 40
  cf_expect_spread "UDP from ext to node-1's NodePort to reach both pods" "n1p1 n2p1" \
    "d['sources'] == {('$EXT4' if b == 'n1p1' else '$N1'): 2}" ext --proto udp --target "$N1:30102"
  cf_remove np1
  cf_programmed "$(cf_absent 0.0.0.0 30101 TCP)"
}

# kube-proxy NodePort from inside the cluster: a pod on node-1 (socket LB) to its own node's
# and the other node's NodePort, a pod on node-2 (tc) to its node's, node-1 itself (socket LB):
# every one reaches both pods with the node address as peer.
row_nodeport_from_pods_and_nodes_kube_proxy_nodeport() {
  cf_service np2 clusterIP=198.19.1.2 type=NodePort port=http,80,8080,TCP,30111
  cf_slice np2 np2 IPv4 http:8080/TCP n1p1 n2p1
  cf_programmed "$(cf_has 0.0.0.0 30111 TCP 2 NodePort)"
  cf_expect "a socket-LB pod to its own node's NodePort" "$(answered_by 30 n1p1 n2p1)" \
    pod 1 2 --proto tcp --target "$N1:30111" --count 30
  cf_expect "a socket-LB pod to the other node's NodePort" "$(answered_by 30 n1p1 n2p1)" \
    pod 1 2 --proto tcp --target "$N2:30111" --count 30
  cf_expect "a tc pod to its own node's NodePort" "$(answered_by 30 n1p1 n2p1)" \
    pod 2 2 --proto tcp --target "$N2:30111" --count 30
  cf_expect "node-1 itself to its NodePort" "$(answered_by 30 n1p1 n2p1)" \
    node 1 --proto tcp --target "$N1:30111" --count 30
  cf_remove np2
  cf_programmed "$(cf_absent 0.0.0.0 30111 TCP)"
}

# kube-proxy LoadBalancer ingress in VIP mode (ipMode Proxy is the LB's business: nothing is
# installed for it), from outside (routed via node-1) and from pods.
row_loadbalancer_vip_mode_and_proxy_mode_kube_proxy_lb_ingress() {
  cf_service lb1 clusterIP=198.19.1.3 type=LoadBalancer port=http,80,8080,TCP,30121 \
    lbIngress=198.19.100.1,198.19.100.2@Proxy
  cf_slice lb1 lb1 IPv4 http:8080/TCP n1p1 n2p1
  cf_programmed "$(cf_has 198.19.100.1 80 TCP 2 LoadBalancer) and $(cf_absent 198.19.100.2 80 TCP)"
  cf_expect "ext to the LB IP to reach both pods" "$(answered_by 30 n1p1 n2p1)" \
    ext --proto tcp --target 198.19.100.1:80 --count 30
  cf_expect "a tc pod to the LB IP" "$(answered_by 30 n1p1 n2p1)" pod 2 2 --proto tcp --target 198.19.100.1:80 --count 30
  cf_expect "a socket-LB pod to the LB IP" "$(answered_by 30 n1p1 n2p1)" pod 1 2 --proto tcp --target 198.19.100.1:80 --count 30
  cf_probe ext --proto tcp --target 198.19.100.2:80 --count 2 --timeout-ms 300
  sy_json_check "$CF_OUT" "d['ok'] == 0" || sy_fail "expected the Proxy-mode LB IP to be left alone, got $CF_OUT"
  cf_remove lb1
  cf_programmed "$(cf_absent 198.19.100.1 80 TCP)"
}

row_external_ips_from_outside_and_pods_kube_proxy_external_ips() {
  cf_service eip clusterIP=198.19.1.4 port=http,80,8080,TCP externalIPs=198.19.200.1
  cf_slice eip eip IPv4 http:8080/TCP n1p1 n2p1
  cf_programmed "$(cf_has 198.19.200.1 80 TCP 2 ExternalIP)"
  cf_expect "ext to the external IP to reach both pods" "$(answered_by 30 n1p1 n2p1)" \
    ext --proto tcp --target 198.19.200.1:80 --count 30
  cf_expect "a tc pod to the external IP" "$(answered_by 30 n1p1 n2p1)" pod 2 1 --proto tcp --target 198.19.200.1:80 --count 30
  cf_remove eip
  cf_programmed "$(cf_absent 198.19.200.1 80 TCP)"
}

# ---- traffic policies -------------------------------------------------------------------------

# kube-proxy externalTrafficPolicy Local: external clients get this node's endpoints only,
# with their own address; in-cluster clients are short-circuited to every endpoint.
row_external_policy_local_keeps_the_client_address_kube_proxy_external_policy_local() {
  cf_service etl clusterIP=198.19.1.5 type=LoadBalancer port=http,80,8080,TCP,30131 \
    lbIngress=198.19.100.5 externalTrafficPolicy=Local healthCheckNodePort=32131
  cf_slice etl etl IPv4 http:8080/TCP n1p1 n2p1
  cf_programmed "$(cf_has 0.0.0.0 30131 TCP 1 NodePort) and $(cf_has 198.19.100.5 80 TCP 1 LoadBalancer)"
  cf_expect "ext to node-1's NodePort: node-1's pod only, with the client's address" \
    "$(answered_by 20 n1p1) and d['sources'] == {'$EXT4': 20}" ext --proto tcp --target "$N1:30131" --count 20
  cf_expect "ext to node-2's NodePort: node-2's pod only, with the client's address" \
    "$(answered_by 20 n2p1) and d['sources'] == {'$EXT4': 20}" ext --proto tcp --target "$N2:30131" --count 20
  cf_expect "ext to the LB IP (via node-1): node-1's pod only" \
    "$(answered_by 20 n1p1) and d['sources'] == {'$EXT4': 20}" ext --proto tcp --target 198.19.100.5:80 --count 20
  cf_expect "a pod of node-2 to node-1's NodePort: short-circuited to every endpoint" \
    "$(answered_by 40 n1p1 n2p1)" pod 2 2 --proto tcp --target "$N1:30131" --count 40
  cf_expect "a socket-LB pod to the LB IP: every endpoint" "$(answered_by 40 n1p1 n2p1)" \
    pod 1 2 --proto tcp --target 198.19.100.5:80 --count 40
  cf_remove etl
  cf_programmed "$(cf_absent 0.0.0.0 30131 TCP)"
}

# kube-proxy drops (does not reject) external traffic of a Local policy on a node without a
# local endpoint; in-cluster clients still get the endpoints elsewhere.
row_external_policy_local_without_local_endpoints_drops_kube_proxy_no_local_endpoints() {
  cf_service etd clusterIP=198.19.1.6 type=NodePort port=http,80,8080,TCP,30141 externalTrafficPolicy=Local
  cf_slice etd etd IPv4 http:8080/TCP n2p1
  cf_programmed "$(cf_has 0.0.0.0 30141 TCP 1 NodePort)" 2
  cf_programmed "$(cf_has 0.0.0.0 30141 TCP 0 NodePort)" 1
  local before
  before=$(sy_mn_counter 1 tc_drop_no_local_endpoints)
  cf_probe ext --proto tcp --target "$N1:30141" --count 2 --timeout-ms 300
  sy_json_check "$CF_OUT" "d['ok'] == 0 and d['errors'] == {'timeout': 2}" ||
    sy_fail "expected ext's connections to node-1's NodePort to be dropped (time out), got $CF_OUT"
  (($(sy_mn_counter 1 tc_drop_no_local_endpoints) > before)) || sy_fail "expected node-1 to count the drops"
  cf_expect "ext to node-2's NodePort: its local pod" "$(answered_by 10 n2p1) and d['sources'] == {'$EXT4': 10}" \
    ext --proto tcp --target "$N2:30141" --count 10
  cf_expect "a socket-LB pod of node-1 to node-1's NodePort: the endpoint on node-2" "$(answered_by 10 n2p1)" \
    pod 1 2 --proto tcp --target "$N1:30141" --count 10
  cf_remove etd
  cf_programmed "$(cf_absent 0.0.0.0 30141 TCP)"
}

# kube-proxy internalTrafficPolicy Local: a ClusterIP client gets its own node's endpoints; none
# there: dropped (socket LB: "no route to host"; tc: dropped), not rejected.
row_internal_policy_local_kube_proxy_internal_policy_local() {
  cf_service itl clusterIP=198.19.1.7 port=http,80,8080,TCP internalTrafficPolicy=Local
  cf_slice itl itl IPv4 http:8080/TCP n1p1 n2p1
  cf_programmed "$(cf_has 198.19.1.7 80 TCP 1)"
  cf_expect "a socket-LB pod of node-1: node-1's endpoint only" "$(answered_by 20 n1p1)" \
    pod 1 2 --proto tcp --target 198.19.1.7:80 --count 20
  cf_expect "a tc pod of node-2: node-2's endpoint only" "$(answered_by 20 n2p1)" \
    pod 2 2 --proto tcp --target 198.19.1.7:80 --count 20
  cf_slice itl itl IPv4 http:8080/TCP n1p1
  cf_programmed "$(cf_has 198.19.1.7 80 TCP 0)" 2
  cf_probe pod 2 2 --proto tcp --target 198.19.1.7:80 --count 2 --timeout-ms 300
  sy_json_check "$CF_OUT" "d['ok'] == 0 and d['errors'] == {'timeout': 2}" ||
    sy_fail "expected node-2's pod to be dropped without a local endpoint, got $CF_OUT"
  cf_expect "node-1's pod still to reach its local endpoint" "$(answered_by 10 n1p1)" \
    pod 1 2 --proto tcp --target 198.19.1.7:80 --count 10
  cf_remove itl
  cf_programmed "$(cf_absent 198.19.1.7 80 TCP)"
}

# kube-proxy terminating endpoints (KEP-1669): with no ready endpoint, the serving and
# terminating ones serve; once one is ready again, only it.
row_terminating_endpoints_are_the_fallback_kube_proxy_terminating_endpoints() {
  cf_service term clusterIP=198.19.1.8 port=http,80,8080,TCP
  cf_slice term term IPv4 http:8080/TCP n1p1:terminating n2p1:terminating-notserving
  cf_programmed "$(cf_has 198.19.1.8 80 TCP 1)"
  cf_expect "only the serving terminating endpoint" "$(answered_by 20 n1p1)" pod 2 2 --proto tcp --target 198.19.1.8:80 --count 20
  cf_slice term term IPv4 http:8080/TCP n1p1:terminating n2p1:terminating-notserving n1p2
  cf_programmed "$(cf_has 198.19.1.8 80 TCP 1) and any(b['address'] == '198.18.17.3' for s in d['services'] for b in s['backends'])"
  cf_expect "the ready endpoint once there is one" "$(answered_by 20 n1p2)" pod 2 2 --proto tcp --target 198.19.1.8:80 --count 20
  cf_remove term
  cf_programmed "$(cf_absent 198.19.1.8 80 TCP)"
}

# kube-proxy topology hints: every endpoint hinted, one for this node's zone: this zone's
# endpoints; a hint missing (or none for this zone): every endpoint. The zone comes from each
# daemon's Node object.
row_zone_hints_with_and_without_a_match_kube_proxy_topology_hints() {
  cf_service zone clusterIP=198.19.1.9 port=http,80,8080,TCP trafficDistribution=PreferSameZone
  cf_slice zone zone IPv4 http:8080/TCP n1p1:forZones=zone-a n2p1:forZones=zone-b
  cf_programmed "$(cf_has 198.19.1.9 80 TCP 1)"
  cf_expect "node-1 (zone-a): the zone-a endpoint" "$(answered_by 20 n1p1)" pod 1 2 --proto tcp --target 198.19.1.9:80 --count 20
  cf_expect "node-2 (zone-b): the zone-b endpoint" "$(answered_by 20 n2p1)" pod 2 2 --proto tcp --target 198.19.1.9:80 --count 20
  cf_slice zone zone IPv4 http:8080/TCP n1p1:forZones=zone-a n2p1
  cf_programmed "$(cf_has 198.19.1.9 80 TCP 2)"
  cf_expect "an endpoint without a hint: every endpoint" "$(answered_by 30 n1p1 n2p1)" \
    pod 1 2 --proto tcp --target 198.19.1.9:80 --count 30
  cf_slice zone zone IPv4 http:8080/TCP n1p1:forZones=zone-c n2p1:forZones=zone-c
  cf_programmed "$(cf_has 198.19.1.9 80 TCP 2)"
  cf_expect "no hint for this zone: every endpoint" "$(answered_by 30 n1p1 n2p1)" \
    pod 2 2 --proto tcp --target 198.19.1.9:80 --count 30
  cf_remove zone
  cf_programmed "$(cf_absent 198.19.1.9 80 TCP)"
}

# kube-proxy PreferSameNode (hints.forNodes, checked before zones).
row_node_hints_before_zone_hints_kube_proxy_prefer_same_node() {
  cf_service nodeh clusterIP=198.19.1.10 port=http,80,8080,TCP trafficDistribution=PreferSameNode
  cf_slice nodeh nodeh IPv4 http:8080/TCP n1p1:forNodes=node-1:forZones=zone-a n2p1:forNodes=node-2:forZones=zone-a
  cf_programmed "$(cf_has 198.19.1.10 80 TCP 1)"
  cf_expect "node-1: its node-hinted endpoint" "$(answered_by 20 n1p1)" pod 1 2 --proto tcp --target 198.19.1.10:80 --count 20
  cf_expect "node-2: its node-hinted endpoint" "$(answered_by 20 n2p1)" pod 2 2 --proto tcp --target 198.19.1.10:80 --count 20
  cf_remove nodeh
  cf_programmed "$(cf_absent 198.19.1.10 80 TCP)"
}

# kube-proxy sessionAffinity ClientIP: a client's connections stay on one backend while the
# affinity is fresh, and spread again once timeoutSeconds passed without one.
row_session_affinity_sticks_and_expires_kube_proxy_session_affinity() {
  cf_service aff clusterIP=198.19.1.11 type=NodePort port=http,80,8080,TCP,30151 sessionAffinity=ClientIP affinityTimeout=2
  cf_slice aff aff IPv4 http:8080/TCP n1p1 n1p2 n2p1 n2p2
  cf_programmed "$(cf_has 198.19.1.11 80 TCP 4)"
  local from
  for from in "pod 1 1" "pod 2 1" "ext"; do
    local target=198.19.1.11:80
    [[ $from == ext ]] && target=$N1:30151
    # shellcheck disable=SC2086 # FROM is words
    cf_expect "$from: 30 connections on one backend" \
      "d['sent'] == 30 and d['ok'] == 30 and len(d['backends']) == 1" $from --proto tcp --target "$target" --count 30
  done
  sleep 2.5  # past timeoutSeconds, with no connection in between
  local -A seen=()
  local run
  for ((run = 0; run < 20 && ${#seen[@]} < 2; run++)); do
    cf_expect "a connection after the affinity expired" "d['ok'] == 1" pod 2 1 --proto tcp --target 198.19.1.11:80 --count 1 2>/dev/null
    seen[$(sy_json "$CF_OUT" 'list(d["backends"])[0]')]=1
    sleep 2.1  # each connection refreshes the affinity: wait it out again
  done
  ((${#seen[@]} >= 2)) || sy_fail "expected the client to be balanced again once its affinity expired, saw only ${!seen[*]}"
  cf_remove aff
  cf_programmed "$(cf_absent 198.19.1.11 80 TCP)"
}

# kube-proxy rejects traffic to a service without endpoints: TCP connections are refused
# (socket LB: refused at connect; tc: a reset), UDP gets port unreachable.
row_reject_without_endpoints_tcp_and_udp_kube_proxy_reject() {
  cf_service rej clusterIP=198.19.1.12 type=NodePort port=http,80,8080,TCP,30161 port=dns,53,5353,UDP,30162
  cf_slice rej rej IPv4 http:8080/TCP,dns:5353/UDP
  cf_programmed "$(cf_has 198.19.1.12 80 TCP 0) and $(cf_has 198.19.1.12 53 UDP 0)"
  local from
  for from in "pod 1 2" "pod 2 2"; do
    # shellcheck disable=SC2086
    cf_expect "$from: TCP refused" "d['ok'] == 0 and d['errors'] == {'ECONNREFUSED': 3}" \
      $from --proto tcp --target 198.19.1.12:80 --count 3 --timeout-ms 500
    # shellcheck disable=SC2086
    cf_expect "$from: connected UDP refused" "d['ok'] == 0 and d['errors'] == {'ECONNREFUSED': 3}" \
      $from --proto udp --connected-udp --target 198.19.1.12:53 --count 3 --timeout-ms 500
  done
  cf_expect "ext to the NodePort: TCP refused" "d['ok'] == 0 and d['errors'] == {'ECONNREFUSED': 3}" \
    ext --proto tcp --target "$N2:30161" --count 3 --timeout-ms 500
  cf_remove rej
  cf_programmed "$(cf_absent 198.19.1.12 80 TCP)"
}

# kube-proxy loadBalancerSourceRanges: the LB IP admits the listed sources only.
row_load_balancer_source_ranges_allow_and_deny_kube_proxy_source_ranges() {
  cf_service src clusterIP=198.19.1.13 type=LoadBalancer port=http,80,8080,TCP,30171 \
    lbIngress=198.19.100.13 sourceRanges=198.18.0.100/32
  cf_slice src src IPv4 http:8080/TCP n1p1 n2p1
  cf_programmed "$(cf_has 198.19.100.13 80 TCP 2 LoadBalancer)"
  cf_expect "a listed source" "$(answered_by 20 n1p1 n2p1)" ext --proto tcp --target 198.19.100.13:80 --count 20
  local before
  before=$(sy_mn_counter 1 tc_source_range_denied)
  cf_probe ext --proto tcp --target 198.19.100.13:80 --count 2 --timeout-ms 300 --bind 198.18.0.101
  sy_json_check "$CF_OUT" "d['ok'] == 0" || sy_fail "expected a source outside the ranges to be refused, got $CF_OUT"
  (($(sy_mn_counter 1 tc_source_range_denied) > before)) || sy_fail "expected node-1 to count the denied source"
  cf_remove src
  cf_programmed "$(cf_absent 198.19.100.13 80 TCP)"
}

# A Service changing type in place: ClusterIP -> NodePort -> LoadBalancer -> ClusterIP, with
# no entry of an earlier type left behind.
row_type_change_in_place_leaves_no_stale_entry() {
  cf_slice chg chg IPv4 http:8080/TCP n1p1 n2p1
  cf_service chg clusterIP=198.19.1.14 port=http,80,8080,TCP
  cf_programmed "$(cf_has 198.19.1.14 80 TCP 2 ClusterIP)"
  cf_service chg clusterIP=198.19.1.14 type=NodePort port=http,80,8080,TCP,30181
  cf_programmed "$(cf_has 0.0.0.0 30181 TCP 2 NodePort)"
  cf_expect "the NodePort once the type is NodePort" "$(answered_by 20 n1p1 n2p1)" ext --proto tcp --target "$N1:30181" --count 20
  cf_service chg clusterIP=198.19.1.14 type=LoadBalancer port=http,80,8080,TCP,30181 lbIngress=198.19.100.14
  cf_programmed "$(cf_has 198.19.100.14 80 TCP 2 LoadBalancer) and $(cf_has 0.0.0.0 30181 TCP 2 NodePort)"
  cf_expect "the LB IP once the type is LoadBalancer" "$(answered_by 20 n1p1 n2p1)" ext --proto tcp --target 198.19.100.14:80 --count 20
  cf_service chg clusterIP=198.19.1.14 port=http,80,8080,TCP
  cf_programmed "$(cf_absent 0.0.0.0 30181 TCP) and $(cf_absent 198.19.100.14 80 TCP) and $(cf_has 198.19.1.14 80 TCP 2 ClusterIP)"
  cf_probe ext --proto tcp --target "$N1:30181" --count 2 --timeout-ms 300
  sy_json_check "$CF_OUT" "d['ok'] == 0" || sy_fail "expected the old NodePort to be gone, got $CF_OUT"
  cf_remove chg
  cf_programmed "$(cf_absent 198.19.1.14 80 TCP)"
}

# One port number on TCP and UDP, each to its own target port, with named ports.
row_same_port_number_on_tcp_and_udp_with_named_ports() {
  cf_service dns clusterIP=198.19.1.15 port=dns-tcp,53,web,TCP port=dns,53,dnsport,UDP
  cf_slice dns dns IPv4 dns-tcp:8080/TCP,dns:5353/UDP n1p1 n2p1
  cf_programmed "$(cf_has 198.19.1.15 53 TCP 2) and $(cf_has 198.19.1.15 53 UDP 2)"
  cf_expect "TCP 53 to the TCP target port" "$(answered_by 30 n1p1 n2p1)" pod 2 2 --proto tcp --target 198.19.1.15:53 --count 30
  cf_expect_spread "UDP 53 to the UDP target port" "n1p1 n2p1" "True" pod 2 2 --proto udp --target 198.19.1.15:53
  cf_remove dns
  cf_programmed "$(cf_absent 198.19.1.15 53 TCP)"
}

# ---- IPv6 and dual-stack ------------------------------------------------------------------------

row_ipv6_nodeport_and_cluster_ip_kube_proxy_ipv6() {
  local n1=${SY_MN_NODE_IP6[1]} ext6=$SY_MN_EXT_IP6
  cf_service v6 clusterIP=2001:db8:c::16 type=NodePort port=http,80,8080,TCP,30191 ipFamilyPolicy=SingleStack
  cf_slice v6 v6 IPv6 http:8080/TCP n1p1 n2p1
  cf_programmed "$(cf_has 2001:db8:c::16 80 TCP 2) and $(cf_has :: 30191 TCP 2 NodePort)"
  cf_expect "IPv6 ClusterIP from a socket-LB pod" "$(answered_by 30 n1p1 n2p1)" pod 1 2 --proto tcp --target "[2001:db8:c::16]:80" --count 30
  cf_expect "IPv6 ClusterIP from a tc pod" "$(answered_by 30 n1p1 n2p1)" pod 2 2 --proto tcp --target "[2001:db8:c::16]:80" --count 30
  cf_expect "IPv6 NodePort from ext: the local pod sees the client, the remote one node-1" \
    "$(answered_by 40 n1p1 n2p1) and d['sources'] == {'$ext6': d['backends']['n1p1'], '$n1': d['backends']['n2p1']}" \
    ext --proto tcp --target "[$n1]:30191" --count 40
  cf_remove v6
  cf_programmed "$(cf_absent 2001:db8:c::16 80 TCP)"
}

row_dual_stack_service_serves_both_families() {
  cf_service ds clusterIP=198.19.1.17,2001:db8:c::17 port=http,80,8080,TCP
  cf_slice ds-4 ds IPv4 http:8080/TCP n1p1 n2p1
  cf_slice ds-6 ds IPv6 http:8080/TCP n1p2 n2p2
  cf_programmed "$(cf_has 198.19.1.17 80 TCP 2) and $(cf_has 2001:db8:c::17 80 TCP 2)"
  cf_expect "IPv4 ClusterIP: the IPv4 endpoints" "$(answered_by 30 n1p1 n2p1)" pod 2 1 --proto tcp --target 198.19.1.17:80 --count 30
  cf_expect "IPv6 ClusterIP: the IPv6 endpoints" "$(answered_by 30 n1p2 n2p2)" pod 2 1 --proto tcp --target "[2001:db8:c::17]:80" --count 30
  cf_remove ds ds-4 ds-6
  cf_programmed "$(cf_absent 198.19.1.17 80 TCP)"
}

# ---- direct server return (loadBalancer.mode dsr | hybrid, issue 11) ----------------------------

# cf_expect_dsr DESC CLIENT COUNT FROM ARGS...: COUNT requests from FROM, every one answered by
# n2p1, which saw CLIENT as its peer; and the replies did not pass node-1: node-1 received no
# more than ext sent (its fabric device's rx grows by at most ext's tx, plus neighbour traffic),
# translated no reply (tc_revnat), sent the flows on by DSR, and node-2 read the DSR option.
cf_expect_dsr() {
  local desc=$1 client=$2 count=$3
  shift 3
  local rx0 tx0 rev0 fwd0 recv0 rx tx
  rx0=$(sy_mn_dev_packets 1 "$SY_MN_FABRIC_DEV" rx)
  tx0=$(sy_mn_dev_packets ext eth0 tx)
  rev0=$(sy_mn_counter 1 tc_revnat)
  fwd0=$(sy_mn_counter 1 tc_dsr_forward)
  recv0=$(sy_mn_counter 2 tc_dsr_received)
  cf_expect "$desc" "$(answered_by "$count" n2p1) and d['sources'] == {'$client': $count}" "$@" --count "$count"
  rx=$(($(sy_mn_dev_packets 1 "$SY_MN_FABRIC_DEV" rx) - rx0))
  tx=$(($(sy_mn_dev_packets ext eth0 tx) - tx0))
  ((rx <= tx + 10)) || sy_fail "expected $desc: the replies not to pass node-1, but node-1 received $rx packets and ext sent $tx"
  (($(sy_mn_counter 1 tc_revnat) == rev0)) || sy_fail "expected $desc: node-1 to translate no reply (tc_revnat)"
  (($(sy_mn_counter 1 tc_dsr_forward) >= fwd0 + count)) || sy_fail "expected $desc: node-1 to count $count DSR packets at least"
  (($(sy_mn_counter 2 tc_dsr_received) >= recv0 + count)) || sy_fail "expected $desc: node-2 to read $count DSR options at least"
  sy_log "ok: $desc: node-1 received $rx packets, ext sent $tx"
}

# Cilium's DSR (the "opt" dispatch), chosen by the annotation switchyard.dev/lb-mode: ext to
# node-1's NodePort reaches the pod on node-2 with its own address (not node-1's, as snat
# would), the reply comes from node-1's address and port (else the probe sees a mismatch or
# TCP never connects) and goes from node-2 straight to ext. TCP and UDP, IPv4 and IPv6.
row_nodeport_dsr_keeps_the_client_address_and_the_reply_skips_the_frontend_node_cilium_dsr() {
  local n16=${SY_MN_NODE_IP6[1]} ext6=$SY_MN_EXT_IP6
  cf_service dsr1 clusterIP=198.19.1.41,2001:db8:c::41 type=NodePort annotation=switchyard.dev/lb-mode=dsr \
    port=http,80,8080,TCP,30301 port=dns,53,5353,UDP,30302
  cf_slice dsr1-4 dsr1 IPv4 http:8080/TCP,dns:5353/UDP n2p1
  cf_slice dsr1-6 dsr1 IPv6 http:8080/TCP,dns:5353/UDP n2p1
  cf_programmed "$(cf_has 0.0.0.0 30301 TCP 1 NodePort) and $(cf_has 0.0.0.0 30302 UDP 1 NodePort) and \
$(cf_has :: 30301 TCP 1 NodePort) and $(cf_has :: 30302 UDP 1 NodePort)"
  # switchyard status shows each frontend's mode: the NodePorts dsr by the option, the
  # ClusterIPs none (they never leave the cluster by either).
  sy_mn_status_check 1 "all(s.get('mode') == 'dsr' and s.get('dsrDispatch') == 'opt' for s in d['services'] if s['port'] in (30301, 30302)) and \
all('mode' not in s for s in d['services'] if s['address'] in ('198.19.1.41', '2001:db8:c::41'))" ||
    sy_fail "expected node-1's status to show the DSR NodePorts' mode: $(sy_mn_status_json 1)"
  cf_expect_dsr "DSR TCP over IPv4 from ext to node-1's NodePort" "$EXT4" 20 ext --proto tcp --target "$N1:30301"
  cf_expect_dsr "DSR UDP over IPv4 from ext to node-1's NodePort" "$EXT4" 20 ext --proto udp --target "$N1:30302"
  cf_expect_dsr "DSR TCP over IPv6 from ext to node-1's NodePort" "$ext6" 20 ext --proto tcp --target "[$n16]:30301"
  cf_expect_dsr "DSR UDP over IPv6 from ext to node-1's NodePort" "$ext6" 20 ext --proto udp --target "[$n16]:30302"
  cf_remove dsr1 dsr1-4 dsr1-6
  cf_programmed "$(cf_absent 0.0.0.0 30301 TCP)"
}

# The client of the MTU row, in ext: a connected UDP socket with DF (IP_PMTUDISC_DO) sends a
# datagram that fills the path's MTU, which the DSR option no longer fits: the frontend's node
# must answer (the socket then fails with EMSGSIZE and knows the smaller MTU); the same socket's
# datagram of that MTU is answered by the pod. Then one TCP request of 15 kB (a dozen full-size
# segments) must be answered. Prints JSON: {"mtu", "udp", "tcp"}.
cf__dsr_mtu_client() {
  "${SY_MN_PYTHON:-python3}" - "$@" <<'PY'
import errno, json, socket, sys, time
host, udp_port, tcp_port, path_mtu = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
v6 = ":" in host
fam = socket.AF_INET6 if v6 else socket.AF_INET
hdrs = (40 if v6 else 20) + 8
out = {"mtu": None, "udp": None, "tcp": None}
u = socket.socket(fam, socket.SOCK_DGRAM)
if v6:
    u.setsockopt(socket.IPPROTO_IPV6, 23, 2)  # IPV6_MTU_DISCOVER: IPV6_PMTUDISC_DO
else:
    u.setsockopt(socket.IPPROTO_IP, 10, 2)  # IP_MTU_DISCOVER: IP_PMTUDISC_DO
u.settimeout(0.3)
u.connect((host, udp_port))
for _ in range(20):  # until the answer arrived: EMSGSIZE on the socket
    try:
        u.send(b"x" * (path_mtu - hdrs))
        u.recv(2048)
        out["udp"] = "answered at the full path MTU"
        break
    except socket.timeout:
        continue
    except OSError as e:
        if e.errno != errno.EMSGSIZE:
            raise
        out["mtu"] = u.getsockopt(socket.IPPROTO_IPV6, 24) if v6 else u.getsockopt(socket.IPPROTO_IP, 14)
        break
if out["mtu"]:
    for _ in range(10):
        try:
            u.send(b"x" * (out["mtu"] - hdrs))
            out["udp"] = u.recv(2048).decode().strip()
            break
        except socket.timeout:
            continue
t = socket.create_connection((host, tcp_port), timeout=5)
t.sendall(b"GET /" + b"a" * 15000 + b" HTTP/1.0\r\n\r\n")
body = b""
while True:
    chunk = t.recv(65536)
    if not chunk:
        break
    body += chunk
out["tcp"] = body.decode(errors="replace").strip().splitlines()[-1] if body else ""
print(json.dumps(out))
PY
}

# DSR with a smaller fabric MTU (1400): the option would push a full-size UDP datagram with DF
# past it, so node-1 answers ICMP fragmentation needed / packet too big with the MTU that
# leaves room for the option (1392, 1376), the client's next datagram of that size reaches the
# pod; a TCP request of many full-size segments goes through (only its SYN carries the option).
# As Cilium's DSR with a tunnel-less fabric; IPv4 and IPv6.
row_nodeport_dsr_with_a_smaller_fabric_mtu_answers_too_big_cilium_dsr() {
  local n16=${SY_MN_NODE_IP6[1]} ext6=$SY_MN_EXT_IP6 icmp0 out
  sy_mn_set_fabric_mtu 1400
  cf_service dsr2 clusterIP=198.19.1.43,2001:db8:c::43 type=NodePort annotation=switchyard.dev/lb-mode=dsr \
    port=http,80,8080,TCP,30305 port=dns,53,5353,UDP,30306
  cf_slice dsr2-4 dsr2 IPv4 http:8080/TCP,dns:5353/UDP n2p1
  cf_slice dsr2-6 dsr2 IPv6 http:8080/TCP,dns:5353/UDP n2p1
  cf_programmed "$(cf_has 0.0.0.0 30306 UDP 1 NodePort) and $(cf_has :: 30306 UDP 1 NodePort) and \
$(cf_has 0.0.0.0 30305 TCP 1 NodePort) and $(cf_has :: 30305 TCP 1 NodePort)"
  icmp0=$(sy_mn_counter 1 tc_mtu_icmp)
  out=$(sy_mn_run ext bash -c "$(declare -f cf__dsr_mtu_client); cf__dsr_mtu_client $N1 30306 30305 1400") ||
    sy_fail "expected the IPv4 MTU client to run: $out"
  sy_json_check "$out" "d['mtu'] == 1392 and d['udp'] == 'n2p1 $EXT4' and d['tcp'] == 'n2p1 $EXT4'" ||
    sy_fail "expected IPv4 under DSR at MTU 1400: frag needed with 1392, then answers from n2p1 seeing ext: $out"
  sy_log "ok: IPv4 DSR at fabric MTU 1400: $out"
  out=$(sy_mn_run ext bash -c "$(declare -f cf__dsr_mtu_client); cf__dsr_mtu_client $n16 30306 30305 1400") ||
    sy_fail "expected the IPv6 MTU client to run: $out"
  sy_json_check "$out" "d['mtu'] == 1376 and d['udp'] == 'n2p1 $ext6' and d['tcp'] == 'n2p1 $ext6'" ||
    sy_fail "expected IPv6 under DSR at MTU 1400: packet too big with 1376, then answers from n2p1 seeing ext: $out"
  sy_log "ok: IPv6 DSR at fabric MTU 1400: $out"
  (($(sy_mn_counter 1 tc_mtu_icmp) >= icmp0 + 2)) || sy_fail "expected node-1 to count its ICMP answers (tc_mtu_icmp)"
  cf_remove dsr2 dsr2-4 dsr2-6
  cf_programmed "$(cf_absent 0.0.0.0 30306 UDP)"
  sy_mn_set_fabric_mtu "$([[ $SY_MN_FABRIC == vxlan ]] && echo 1450 || echo 1500)"
}

# externalTrafficPolicy Local and healthCheckNodePort under dsr: nothing changes (kube-proxy's
# semantics): external clients get the local endpoint only, with their own address and no
# DSR (there is no other node to return from), in-cluster clients every endpoint, and the
# health check answers with the local endpoint count.
row_external_policy_local_and_health_check_are_unchanged_under_dsr_kube_proxy_external_policy_local() {
  local fwd0 code i
  cf_service dsr4 clusterIP=198.19.1.45 type=LoadBalancer annotation=switchyard.dev/lb-mode=dsr \
    port=http,80,8080,TCP,30309 lbIngress=198.19.100.45 externalTrafficPolicy=Local healthCheckNodePort=32309
  cf_slice dsr4 dsr4 IPv4 http:8080/TCP n1p1 n2p1
  cf_programmed "$(cf_has 0.0.0.0 30309 TCP 1 NodePort) and $(cf_has 198.19.100.45 80 TCP 1 LoadBalancer)"
  fwd0=$(sy_mn_counter 1 tc_dsr_forward)
  cf_expect "ext to node-1's NodePort under dsr: node-1's pod only, with the client's address" \
    "$(answered_by 20 n1p1) and d['sources'] == {'$EXT4': 20}" ext --proto tcp --target "$N1:30309" --count 20
  cf_expect "ext to node-2's NodePort under dsr: node-2's pod only, with the client's address" \
    "$(answered_by 20 n2p1) and d['sources'] == {'$EXT4': 20}" ext --proto tcp --target "$N2:30309" --count 20
  cf_expect "ext to the LB IP under dsr: node-1's pod only" \
    "$(answered_by 20 n1p1) and d['sources'] == {'$EXT4': 20}" ext --proto tcp --target 198.19.100.45:80 --count 20
  cf_expect "a pod of node-2 to node-1's NodePort under dsr: short-circuited to every endpoint" \
    "$(answered_by 40 n1p1 n2p1)" pod 2 2 --proto tcp --target "$N1:30309" --count 40
  (($(sy_mn_counter 1 tc_dsr_forward) == fwd0)) || sy_fail "expected no DSR for a Local policy (tc_dsr_forward grew on node-1)"
  for i in 1 2; do
    code=$(sy_in_ns "${SY_MN_NODE_NS[i]}" curl -s -m 2 -o "$WORK/hc.body" -w '%{http_code}' "http://${SY_MN_NODE_IP4[i]}:32309/" || true)
    [[ $code == 200 ]] && sy_json_check "$(cat "$WORK/hc.body")" "d['localEndpoints'] == 1" ||
      sy_fail "expected node-$i's healthCheckNodePort under dsr to answer 200 with 1 local endpoint, got $code $(cat "$WORK/hc.body" 2>/dev/null)"
  done
  sy_log "ok: healthCheckNodePort 200 on both nodes under dsr"
  cf_remove dsr4
  cf_programmed "$(cf_absent 0.0.0.0 30309 TCP)"
}

# node-1's daemon again with cf_setup's configuration plus EXTRA_YAML (over its pins: it adopts
# the maps, the flows live on), and its programs attached again.
cf__restart_node1() {
  sy_mn_write_config 1 true "bpf: {hostDevices: [$SY_MN_FABRIC_DEV]}
${1:-}"
  sy_mn_daemon_stop 1 || sy_fail "expected node-1's daemon to stop"
  sy_mn_daemon_start 1
}

# Katran's and Cilium's ipip dispatch (loadBalancer.dsrDispatch: ipip on node-1, the frontend's
# node; node-2 decapsulates whatever it is configured with): the request, marked as with opt,
# goes to node-2 as IPIP / IP6IP6 with the backend as outer destination, node-2 removes the
# outer header in tc (this kernel has no ipip device) and the pod sees the client; its
# SYN-ACK's MSS is clamped to fit the tunnel, so a 15 kB request crosses it in full-size
# segments; a UDP datagram too big for the option and the outer header is answered with the
# MTU that leaves room for both (the fabric's less 28, less 64).
row_nodeport_dsr_ipip_encapsulates_to_the_backend_node_katran_ipip() {
  local n16=${SY_MN_NODE_IP6[1]} ext6=$SY_MN_EXT_IP6 decap0 clamp0 out mtu
  mtu=$(ip netns exec "$SY_MN_EXT_NS" cat "/sys/class/net/$SY_MN_FABRIC_DEV/mtu") # 1500, VXLAN 1450
  cf__restart_node1 "loadBalancer: {dsrDispatch: ipip}"
  cf_service dsr3 clusterIP=198.19.1.44,2001:db8:c::44 type=NodePort annotation=switchyard.dev/lb-mode=dsr \
    port=http,80,8080,TCP,30307 port=dns,53,5353,UDP,30308
  cf_slice dsr3-4 dsr3 IPv4 http:8080/TCP,dns:5353/UDP n2p1
  cf_slice dsr3-6 dsr3 IPv6 http:8080/TCP,dns:5353/UDP n2p1
  cf_programmed "$(cf_has 0.0.0.0 30307 TCP 1 NodePort) and $(cf_has :: 30308 UDP 1 NodePort)"
  sy_mn_wait_programmed 1 "all(s.get('dsrDispatch') == 'ipip' for s in d['services'] if s['port'] in (30307, 30308))"
  decap0=$(sy_mn_counter 2 tc_dsr_decap)
  clamp0=$(sy_mn_counter 2 tc_mss_clamped)
  cf_expect_dsr "DSR ipip TCP over IPv4" "$EXT4" 20 ext --proto tcp --target "$N1:30307"
  cf_expect_dsr "DSR ipip UDP over IPv6" "$ext6" 20 ext --proto udp --target "[$n16]:30308"
  out=$(sy_mn_run ext bash -c "$(declare -f cf__dsr_mtu_client); cf__dsr_mtu_client $N1 30308 30307 $mtu") ||
    sy_fail "expected the IPv4 MTU client to run: $out"
  sy_json_check "$out" "d['mtu'] == $mtu - 28 and d['udp'] == 'n2p1 $EXT4' and d['tcp'] == 'n2p1 $EXT4'" ||
    sy_fail "expected IPv4 DSR ipip: frag needed with $mtu - 28, then answers from n2p1 seeing ext: $out"
  out=$(sy_mn_run ext bash -c "$(declare -f cf__dsr_mtu_client); cf__dsr_mtu_client $n16 30308 30307 $mtu") ||
    sy_fail "expected the IPv6 MTU client to run: $out"
  sy_json_check "$out" "d['mtu'] == $mtu - 64 and d['udp'] == 'n2p1 $ext6' and d['tcp'] == 'n2p1 $ext6'" ||
    sy_fail "expected IPv6 DSR ipip: packet too big with $mtu - 64, then answers from n2p1 seeing ext: $out"
  (($(sy_mn_counter 2 tc_dsr_decap) >= decap0 + 40)) || sy_fail "expected node-2 to decapsulate every request (tc_dsr_decap)"
  (($(sy_mn_counter 2 tc_mss_clamped) >= clamp0 + 20)) || sy_fail "expected node-2 to clamp the SYN-ACKs' MSS (tc_mss_clamped)"
  sy_log "ok: DSR ipip: decapsulated and clamped on node-2"
  cf_remove dsr3 dsr3-4 dsr3-6
  cf_programmed "$(cf_absent 0.0.0.0 30307 TCP)"
  cf__restart_node1
}

# hybrid: DSR for TCP (the pod sees ext), SNAT for UDP (the pod sees node-1, whose address the
# reply comes back to), as Cilium's bpf.lbMode hybrid.
row_nodeport_hybrid_is_dsr_for_tcp_and_snat_for_udp_cilium_hybrid() {
  cf_service hyb1 clusterIP=198.19.1.42 type=NodePort annotation=switchyard.dev/lb-mode=hybrid \
    port=http,80,8080,TCP,30303 port=dns,53,5353,UDP,30304
  cf_slice hyb1 hyb1 IPv4 http:8080/TCP,dns:5353/UDP n2p1
  cf_programmed "$(cf_has 0.0.0.0 30303 TCP 1 NodePort) and $(cf_has 0.0.0.0 30304 UDP 1 NodePort)"
  sy_mn_status_check 1 "any(s['port'] == 30303 and s.get('mode') == 'hybrid' and s.get('dsrDispatch') == 'opt' for s in d['services']) and \
any(s['port'] == 30304 and s.get('mode') == 'hybrid' and 'dsrDispatch' not in s for s in d['services'])" ||
    sy_fail "expected node-1's status to show hybrid, DSR for TCP only: $(sy_mn_status_json 1)"
  local nodeport_text
  nodeport_text=$(sy_in_ns "${SY_MN_NODE_NS[1]}" "$SY_BIN" status --pin-path "${SY_MN_PIN[1]}")
  grep -qE ':30303/TCP +NodePort +hybrid ' <<<"$nodeport_text" ||
    sy_fail "expected the text status to show the mode column: $nodeport_text"
  cf_expect_dsr "hybrid TCP from ext to node-1's NodePort: DSR" "$EXT4" 20 ext --proto tcp --target "$N1:30303"
  cf_expect "hybrid UDP from ext to node-1's NodePort: SNAT to node-1" \
    "$(answered_by 20 n2p1) and d['sources'] == {'$N1': 20}" ext --proto udp --target "$N1:30304" --count 20
  cf_remove hyb1
  cf_programmed "$(cf_absent 0.0.0.0 30303 TCP)"
}

# ---- health --------------------------------------------------------------------------------------

# kube-proxy's service health server: healthCheckNodePort answers 200 with the count of
# local ready endpoints on a node that has some, 503 on one that has none.
row_health_check_node_port_kube_proxy_service_health() {
  cf_service hc clusterIP=198.19.1.18 type=LoadBalancer port=http,80,8080,TCP,30201 lbIngress=198.19.100.18 \
    externalTrafficPolicy=Local healthCheckNodePort=32201
  cf_slice hc hc IPv4 http:8080/TCP n1p1 n1p2:terminating
  cf_programmed "$(cf_has 0.0.0.0 30201 TCP 1 NodePort)" 1
  local code body
  hc_get() { sy_in_ns "${SY_MN_NODE_NS[$1]}" curl -s -m 2 -o "$WORK/hc.body" -w '%{http_code}' "http://${SY_MN_NODE_IP4[$1]}:32201/"; }
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    code=$(hc_get 1 || true)
    [[ $code == 200 ]] && break
    sleep 0.3
  done
  body=$(cat "$WORK/hc.body" 2>/dev/null)
  [[ $code == 200 ]] && sy_json_check "$body" "d['localEndpoints'] == 1 and d['service'] == {'namespace': 'default', 'name': 'hc'}" ||
    sy_fail "expected node-1's healthCheckNodePort to answer 200 with 1 local endpoint (terminating ones do not count), got $code $body"
  code=$(hc_get 2 || true)
  body=$(cat "$WORK/hc.body" 2>/dev/null)
  [[ $code == 503 ]] && sy_json_check "$body" "d['localEndpoints'] == 0" ||
    sy_fail "expected node-2's healthCheckNodePort to answer 503 with 0 local endpoints, got $code $body"
  cf_remove hc
  cf_programmed "$(cf_absent 0.0.0.0 30201 TCP)"
}

# kube-proxy's /healthz: a Node being deleted (deletionTimestamp) or tainted by the cluster
# autoscaler is not eligible: 503, so that load balancers drain it; /livez stays 200.
row_healthz_follows_node_deletion_kube_proxy_healthz() {
  healthz() { sy_in_ns "${SY_MN_NODE_NS[$1]}" curl -s -m 2 -o /dev/null -w '%{http_code}' "http://$SY_MN_HEALTHZ_ADDR/$2"; }
  healthz_is() { [[ $(healthz "$1" "$2") == "$3" ]]; }
  sy_wait_for "node-2 healthy" 10 healthz_is 2 healthz 200 || sy_fail "expected node-2's /healthz to answer 200"
  cf_node 2 zone-b "" deleting
  sy_wait_for "node-2's /healthz to turn 503 with its Node being deleted" 10 healthz_is 2 healthz 503 ||
    sy_fail "expected /healthz 503 on a Node with deletionTimestamp"
  healthz_is 2 livez 200 || sy_fail "expected /livez to stay 200 on a Node being deleted"
  healthz_is 1 healthz 200 || sy_fail "expected node-1 to stay healthy"
  cf_node 2 zone-b
  sy_wait_for "node-2 eligible again" 10 healthz_is 2 healthz 200 || sy_fail "expected /healthz back to 200"
  cf_node 2 zone-b ToBeDeletedByClusterAutoscaler=1:NoSchedule
  sy_wait_for "node-2 ineligible with the autoscaler's taint" 10 healthz_is 2 healthz 503 ||
    sy_fail "expected /healthz 503 with the ToBeDeletedByClusterAutoscaler taint"
  cf_node 2 zone-b
  sy_wait_for "node-2 eligible again" 10 healthz_is 2 healthz 200 || sy_fail "expected /healthz back to 200"
}

# ---- load-balancing algorithm -----------------------------------------------------------------

# The Maglev table of an external IP's frontend (status: algorithm, maglev.tableDigest) on both
# nodes, on one row of `sy_json` (d = status JSON of one node).
cf__maglev_of() {
  echo "[[s['algorithm'], s.get('maglev', {}).get('tableSize'), s.get('maglev', {}).get('tableDigest')] \
for s in d['services'] if s['address'] == '$1' and s['port'] == $2 and s['protocol'] == 'TCP'][0]"
}

# cf__maglev_same_table ADDR PORT DESC: both nodes show algorithm maglev, M = 16381 (the default)
# and one tableDigest; prints the digest.
cf__maglev_same_table() {
  local addr=$1 port=$2 desc=$3 t1 t2
  t1=$(sy_json "$(sy_mn_status_json 1)" "$(cf__maglev_of "$addr" "$port")") || sy_fail "node-1's status has no $addr:$port"
  t2=$(sy_json "$(sy_mn_status_json 2)" "$(cf__maglev_of "$addr" "$port")") || sy_fail "node-2's status has no $addr:$port"
  [[ $t1 == '["maglev", 16381, "'* ]] || sy_fail "expected $desc: node-1's $addr:$port to be Maglev with M=16381, got $t1"
  [[ $t1 == "$t2" ]] || sy_fail "expected $desc: the same Maglev table on both nodes, node-1 $t1, node-2 $t2"
  sy_log "ok: $desc: both nodes $t1"
}

# Maglev (Eisenbud et al., NSDI'16; Cilium's and Katran's consistent hashing), mirroring
# Cilium's loadBalancer.algorithm=maglev: an external IP annotated switchyard.dev/lb-algorithm:
# maglev with four endpoints on two nodes. Both nodes build the same table; the same 5-tuples
# (FLOWS connections from fixed source ports, as a router's ECMP would hand them to either
# node) reach the same pod via node-1 and via node-2; after one endpoint is removed, the same
# tuples as new connections (conntrack forgets a closed flow's tuple on the next SYN) mostly
# stay where they were. With random choice both checks fail (2 of 3 surviving flows move).
row_maglev_same_pod_via_either_node_and_little_disruption_on_removal_cilium_maglev() {
  local vip=198.19.200.40 flows=200 sport=41000 digest_before via1 via2 after after2
  cf_service mgl clusterIP=198.19.1.40 port=http,80,8080,TCP externalIPs=$vip \
    annotation=switchyard.dev/lb-algorithm=maglev
  cf_slice mgl mgl IPv4 http:8080/TCP n1p1 n1p2 n2p1 n2p2
  cf_programmed "$(cf_has $vip 80 TCP 4 ExternalIP)"
  cf__maglev_same_table $vip 80 "four endpoints"
  digest_before=$(sy_json "$(sy_mn_status_json 1)" "$(cf__maglev_of $vip 80)[2]")

  local probe=(--proto tcp --target "$vip:80" --count "$flows" --sport-base "$sport" --timeout-ms 2000)
  local all_ok="d['sent'] == $flows and d['ok'] == $flows and d['peer_mismatch'] == 0 and len(d['flows']) == $flows"
  sy_mn_route_external_via 1
  cf_expect "$flows fixed tuples via node-1 answered, spread over the four pods" \
    "$all_ok and sorted(d['backends']) == ['n1p1', 'n1p2', 'n2p1', 'n2p2']" ext "${probe[@]}"
  via1=$CF_OUT
  sy_mn_route_external_via 2
  cf_expect "the same tuples via node-2 answered" "$all_ok" ext "${probe[@]}"
  via2=$CF_OUT
  sy_mn_route_external_via 1
  python3 - "$via1" "$via2" <<'PY' || sy_fail "expected every tuple to reach the same pod via node-1 and via node-2"
import json, sys
a, b = (json.loads(x)["flows"] for x in sys.argv[1:3])
diff = sorted(p for p in a if a[p] != b.get(p))
print(f"same pod via either node: {len(a) - len(diff)}/{len(a)} tuples; differ: {diff[:10]}", file=sys.stderr)
sys.exit(1 if diff else 0)
PY

  # One of N=4 endpoints (n2p2) goes.
  cf_slice mgl mgl IPv4 http:8080/TCP n1p1 n1p2 n2p1
  cf_programmed "$(cf_has $vip 80 TCP 3 ExternalIP)"
  cf__maglev_same_table $vip 80 "three endpoints"
  [[ $(sy_json "$(sy_mn_status_json 1)" "$(cf__maglev_of $vip 80)[2]") != "$digest_before" ]] ||
    sy_fail "expected the table digest to change when n2p2 left"
  cf_expect "the same tuples, new connections, via node-1 after n2p2 left" \
    "$all_ok and 'n2p2' not in d['backends']" ext "${probe[@]}"
  after=$CF_OUT
  sy_mn_route_external_via 2
  cf_expect "the same tuples via node-2 after n2p2 left" "$all_ok" ext "${probe[@]}"
  after2=$CF_OUT
  sy_mn_route_external_via 1
  # The bound. The unit test (Maglev.RemovingOneOfNMovesAtMostOneNthPlusOnePercent) shows that
  # removing one of N backends moves at most b = 1/N + 1% of the M = 16381 entries (M >= 500 N),
  # so at most b of the entries outside the removed backend's share move too. A flow's entry is
  # jhash(tuple) % M: for our tuples, a sample of entries as good as uniform and independent, so
  # the moved flows among the S surviving ones are Binomial(S, q) with q <= b. The test allows
  # b + 3 sqrt(b (1 - b) / S): above that is 3 standard deviations beyond the worst allowed q
  # (N=4, S ~ 150: 0.26 + 0.107 = 0.367). Random choice moves ~2/3 of them; a table that
  # depended on the endpoints' order or IDs ~3/4. Maglev itself moves ~0: the share is printed.
  python3 - "$via1" "$after" "$after2" 4 <<'PY' || sy_fail "expected removing one of 4 endpoints to move at most 1/N + 1% (plus the margin) of the other flows"
import json, math, sys
before, after, after2 = (json.loads(x)["flows"] for x in sys.argv[1:4])
n = int(sys.argv[4])
if after != after2:
    d = sorted(p for p in after if after[p] != after2.get(p))
    print(f"after the removal, tuples differ between node-1 and node-2: {d[:10]}", file=sys.stderr)
    sys.exit(1)
survivors = [p for p in before if before[p] != "n2p2"]
moved = [p for p in survivors if after[p] != before[p]]
b = 1 / n + 0.01
bound = b + 3 * math.sqrt(b * (1 - b) / len(survivors))
share = len(moved) / len(survivors)
print(f"removed n2p2 (held {len(before) - len(survivors)} of {len(before)} tuples): {len(moved)} of "
      f"{len(survivors)} other tuples moved (share {share:.4f}, bound {bound:.4f}); "
      f"the same pod via either node after the removal too", file=sys.stderr)
sys.exit(0 if share <= bound else 1)
PY
  cf_remove mgl
  cf_programmed "$(cf_absent $vip 80 TCP)"
}
