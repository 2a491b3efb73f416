#!/usr/bin/env bash
# The real kubectl against sy-fake-apiserver: the fake speaks the protocol real clients
# expect (discovery, list, create/patch/delete, watch, TLS with a test CA, bearer tokens).
#
#   kubectl_test.sh PATH/TO/sy-fake-apiserver FIXTURES_DIR
#
# Exits 77 (skipped) when kubectl is not installed.
set -euo pipefail

fake=${1:?usage: kubectl_test.sh SY_FAKE_APISERVER FIXTURES_DIR}
fixtures=${2:?usage: kubectl_test.sh SY_FAKE_APISERVER FIXTURES_DIR}

if ! command -v kubectl >/dev/null; then
  echo "SKIP: kubectl is not installed"
  exit 77
fi

tmp=$(mktemp -d /tmp/sy-kubectl-test.XXXXXX)
server_pid=
watch_pid=
cleanup() {
  if [[ -n $watch_pid ]]; then
    kill "$watch_pid" 2>/dev/null || true
  fi
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

failures=0
pass() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
# expect_contains NAME TEXT NEEDLE...
expect_contains() {
  local name=$1 text=$2
  shift 2
  local n
  for n in "$@"; do
    if ! grep -qE -- "$n" <<<"$text"; then
      fail "$name: output lacks /$n/"
      echo "--- output of $name:"
      echo "$text"
      echo "---"
      return
    fi
  done
  pass "$name"
}

token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
"$fake" --listen 127.0.0.1:0 --pki-dir "$tmp/pki" --token "$token" --fixtures "$fixtures" \
  --kubeconfig-out "$tmp/kubeconfig" --port-file "$tmp/port" >"$tmp/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  [[ -s $tmp/port ]] && break
  sleep 0.05
done
[[ -s $tmp/port ]] || { cat "$tmp/server.log"; echo "FAIL: the fake API server did not start"; exit 1; }

export KUBECONFIG=$tmp/kubeconfig
k() { timeout 20 kubectl --cache-dir "$tmp/cache" --request-timeout=10s "$@"; }

# 1. Discovery and lists across namespaces.
out=$(k get services,endpointslices -A 2>&1)
expect_contains "get services,endpointslices -A" "$out" \
  '^NAMESPACE +NAME' 'kube-system +service/dns' 'shop +service/web' 'shop +service/other-proxy' \
  'shop +endpointslice.discovery.k8s.io/web-7xk2p' 'kube-system +endpointslice.discovery.k8s.io/dns-q8w4r'

out=$(k get endpointslice -n shop web-7xk2p -o jsonpath='{.endpoints[0].addresses[0]} {.ports[0].port}' 2>&1)
expect_contains "get -o jsonpath" "$out" '^198\.18\.1\.10 8080$'

# 2. A watch open while objects are created, changed and deleted.
k get services -n shop -w --output-watch-events >"$tmp/watch.out" 2>&1 &
watch_pid=$!
for _ in $(seq 100); do
  grep -q 'web' "$tmp/watch.out" 2>/dev/null && break
  sleep 0.05
done

# 3. apply: create, change, no change.
cat >"$tmp/api.yaml" <<'EOF'
apiVersion: v1
kind: Service
metadata:
  name: api
  namespace: shop
  labels: {app: api}
spec:
  ports:
  - {name: http, port: 80, targetPort: 8080}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: api-1
  namespace: shop
  labels: {kubernetes.io/service-name: api}
addressType: IPv4
endpoints:
- addresses: ["198.18.1.20"]
  conditions: {ready: true}
ports:
- {name: http, protocol: TCP, port: 8080}
EOF
out=$(k apply -f "$tmp/api.yaml" 2>&1)
expect_contains "apply (create)" "$out" '^service/api created$' '^endpointslice.discovery.k8s.io/api-1 created$'
out=$(k get service -n shop api -o jsonpath='{.spec.clusterIP} {.spec.ports[0].targetPort} {.metadata.resourceVersion}' 2>&1)
expect_contains "the created service has a ClusterIP and a resourceVersion" "$out" '^198\.19\.[0-9]+\.[0-9]+ 8080 [0-9]+$'

sed -i 's/targetPort: 8080/targetPort: 9090/' "$tmp/api.yaml"
out=$(k apply -f "$tmp/api.yaml" 2>&1)
expect_contains "apply (change)" "$out" '^service/api configured$' '^endpointslice.discovery.k8s.io/api-1 unchanged$'
out=$(k get service -n shop api -o jsonpath='{.spec.ports[0].targetPort}' 2>&1)
expect_contains "apply changed the port" "$out" '^9090$'
out=$(k apply -f "$tmp/api.yaml" 2>&1)
expect_contains "apply (no change)" "$out" '^service/api unchanged$'

out=$(k label service -n shop api tier=backend 2>&1)
expect_contains "label" "$out" '^service/api labeled$'
out=$(k get services -n shop -l tier=backend -o name 2>&1)
expect_contains "label selector" "$out" '^service/api$'
out=$(k delete -f "$tmp/api.yaml" 2>&1)
expect_contains "delete" "$out" '^service "api" deleted' '^endpointslice.discovery.k8s.io "api-1" deleted'

# The watch saw all of it, in order.
for _ in $(seq 100); do
  grep -q 'DELETED' "$tmp/watch.out" && break
  sleep 0.05
done
kill "$watch_pid" 2>/dev/null || true
wait "$watch_pid" 2>/dev/null || true
watch_pid=
out=$(cat "$tmp/watch.out")
expect_contains "get -w --output-watch-events" "$out" \
  '^EVENT +NAME' '^ADDED +web' '^ADDED +api' '^MODIFIED +api' '^DELETED +api'
order=$(grep -E ' api ' "$tmp/watch.out" | awk '{print $1}' | tr '\n' ' ')
if [[ $order == "ADDED MODIFIED MODIFIED DELETED " ]]; then
  pass "watch event order: $order"
else
  fail "watch event order: got '$order', want 'ADDED MODIFIED MODIFIED DELETED '"
fi

# 4. Refusals: a bad token, and a server certificate from a CA kubectl does not trust.
out=$(k --token not-the-token get services -A 2>&1 || true)
expect_contains "bad token" "$out" 'Unauthorized'
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=other-ca \
  -keyout "$tmp/other.key" -out "$tmp/other.crt" -days 1 2>/dev/null
server=$(k config view -o jsonpath='{.clusters[0].cluster.server}')
out=$(KUBECONFIG=/dev/null k --server "$server" --token "$token" --certificate-authority "$tmp/other.crt" \
  get services -A 2>&1 || true)
expect_contains "wrong CA" "$out" 'certificate signed by unknown authority'

if ((failures > 0)); then
  echo "--- server log:"
  cat "$tmp/server.log"
  echo "$failures check(s) failed"
  exit 1
fi
echo "all kubectl checks passed"
