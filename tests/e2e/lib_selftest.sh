#!/usr/bin/env bash
# tests/e2e/lib_selftest.sh: checks tests/e2e/lib.sh itself, without the daemon.
#
# Runs these scenarios, each as a child process sourcing lib.sh, and checks after each that the
# child left nothing behind (namespaces, cgroup, bpffs pins, work dir, processes) and that its
# cleanup printed no WARNING line, or, for loud, that it did:
#   pass  3 backend pods; the client reaches pod1..pod3 directly over TCP and UDP
#   fail  a test that fails with a probe still running in the background
#   late  a test that fails while a background probe has not yet joined the client namespace
#         and the test cgroup (as on a loaded machine): the cleanup must stop it all the same
#   term  a test killed with SIGTERM while it waits
#   loud  as if a daemon had run on the pin dir, which holds a pin switchyard did not make:
#         `switchyard cleanup` refuses to remove the dir, and the cleanup must say so
# Needs sy-testpeer and switchyard: SY_BUILD_DIR=/path/to/build (default: <repo>/build).
# Other selftests source this file for record_state, leftovers and run_scenario (after setting
# SCRIPT to themselves): sourced, it defines its functions and runs nothing.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCRIPT=$HERE/$(basename "${BASH_SOURCE[0]}")

# Records what the scenario made, for the parent to check once the scenario is gone.
record_state() {
  local state=$1
  shift
  {
    echo "PREFIX=$PREFIX"
    echo "CG=$CG"
    echo "PIN=$PIN"
    echo "WORK=$WORK"
    echo "PIDS=\"${SY_PIDS[*]} $*\""
  } >"$state.tmp"
  mv "$state.tmp" "$state"
}

# A pin directory with one pinned map, as the daemon would leave one, so its removal is tested.
make_pin() {
  mkdir -p "$PIN"
  bpftool map create "$PIN/selftest_map" type array key 4 value 4 entries 1 name sy_selftest ||
    sy_fail "bpftool map create $PIN/selftest_map"
}

probe_sees_only() {
  local backend=$1 count=$2
  shift 2
  local out
  out=$(sy_probe "$CLIENT_NS" --count "$count" "$@") || true
  sy_json_check "$out" "d['sent'] == $count and d['ok'] == $count and d['failed'] == 0 and \
d['peer_mismatch'] == 0 and d['backends'] == {'$backend': $count}" || {
    echo "probe $* answered: $out" >&2
    return 1
  }
}

scenario_pass() {
  local state=$1
  # shellcheck source=tests/e2e/lib.sh
  source "$HERE/lib.sh"
  sy_e2e_init selftest-pass
  sy_topology_up 3
  sy_start_backends 8080 5353
  make_pin
  record_state "$state"

  sy_assert "the client to run in the test cgroup" \
    grep -qx "0::/$PREFIX" <(sy_in_cgroup_ns "$CLIENT_NS" cat /proc/self/cgroup)
  sy_assert "the client to have $CLIENT_IP on eth0" \
    grep -q "inet $CLIENT_IP/32" <(sy_in_cgroup_ns "$CLIENT_NS" ip -4 -o addr show dev eth0)

  sy_assert "20 TCP requests to pod1 answered by pod1" \
    probe_sees_only pod1 20 --proto tcp --target "${POD_IPS[0]}:8080"
  sy_assert "20 UDP requests to pod1 answered by pod1" \
    probe_sees_only pod1 20 --proto udp --target "${POD_IPS[0]}:5353"
  sy_assert "connected UDP to pod1 answered by pod1" \
    probe_sees_only pod1 5 --proto udp --connected-udp --target "${POD_IPS[0]}:5353"
  sy_assert "TCP to pod2 answered by pod2" probe_sees_only pod2 5 --proto tcp --target "${POD_IPS[1]}:8080"
  sy_assert "TCP to pod3 answered by pod3" probe_sees_only pod3 5 --proto tcp --target "${POD_IPS[2]}:8080"

  local refused
  refused=$(sy_probe "$CLIENT_NS" --proto tcp --target "${POD_IPS[0]}:9" --count 3) || true
  sy_assert "a closed port to be refused, not to time out (got $refused)" \
    sy_json_check "$refused" "d['errors'] == {'ECONNREFUSED': 3}"

  # The manifest writers' output must be YAML a Kubernetes client reads back as written.
  local manifests=$WORK/manifests
  mkdir -p "$manifests"
  sy_write_service "$manifests" web 198.19.0.10 80 8080 TCP
  sy_write_slice "$manifests" web-abc12 web 8080 TCP "${POD_IPS[0]}" "${POD_IPS[1]}=terminating"
  sy_assert "the Service manifest to parse with the right port" python3 -c '
import sys, yaml
s = yaml.safe_load(open(sys.argv[1]))
assert s["kind"] == "Service" and s["spec"]["clusterIPs"] == ["198.19.0.10"], s
assert s["spec"]["ports"] == [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}], s
' "$manifests/svc-web.yaml"
  sy_assert "the EndpointSlice manifest to parse with both endpoints" python3 -c '
import sys, yaml
e = yaml.safe_load(open(sys.argv[1]))
assert e["metadata"]["labels"]["kubernetes.io/service-name"] == "web", e
assert [x["addresses"] for x in e["endpoints"]] == [["198.18.16.2"], ["198.18.16.3"]], e
assert e["endpoints"][1]["conditions"] == {"ready": False, "serving": True, "terminating": True}, e
assert e["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}], e
' "$manifests/slice-web-abc12.yaml"
  sy_write_config "$WORK/config.yaml" false "$manifests"
  sy_assert "the daemon config to name this test's pins, cgroup and manifests" python3 -c '
import sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
assert c["bpf"] == {"pinPath": sys.argv[2], "cgroupPath": sys.argv[3], "socketLB": False,
                    "devices": ["veth-c"]}, c
assert c["source"] == {"kind": "files", "path": sys.argv[4]}, c
' "$WORK/config.yaml" "$PIN" "$CG" "$manifests"
  sy_assert "no temp files beside the manifests" test -z "$(find "$manifests" -name '.*')"
  sy_log "pass scenario done"
}

scenario_fail() {
  local state=$1
  # shellcheck source=tests/e2e/lib.sh
  source "$HERE/lib.sh"
  sy_e2e_init selftest-fail
  sy_topology_up 1
  sy_start_backends 8080 5353
  make_pin
  sy_probe "$CLIENT_NS" --proto tcp --target "${POD_IPS[0]}:8080" --duration-s 60 --interval-ms 50 \
    >"$WORK/background-probe.json" &
  local probe_pid=$!
  record_state "$state" "$probe_pid"
  sy_fail "deliberate failure, with probe $probe_pid still running"
}

scenario_late() {
  local state=$1
  # shellcheck source=tests/e2e/lib.sh
  source "$HERE/lib.sh"
  sy_e2e_init selftest-late
  sy_topology_up 1
  sy_start_backends 8080 5353
  make_pin
  # The job joins the namespace and the cgroup only after the test has failed: a cleanup that
  # looks only there (or at $(jobs -p) from a subshell, which sees no jobs) misses it. The
  # subshell execs the probe (sy_in_cgroup_ns), so the job's pid becomes the probe's.
  (
    sleep 1
    sy_probe "$CLIENT_NS" --proto tcp --target "${POD_IPS[0]}:8080" --duration-s 60 --interval-ms 50
  ) >"$WORK/late-probe.json" &
  local job=$!
  record_state "$state" "$job"
  sy_fail "deliberate failure, with job $job about to start a probe"
}

scenario_loud() {
  local state=$1
  # shellcheck source=tests/e2e/lib.sh
  source "$HERE/lib.sh"
  sy_e2e_init selftest-loud
  sy_topology_up 1
  make_pin
  # What sy_daemon_start records; no daemon needs to run for `switchyard cleanup` to refuse a
  # pin dir that holds a pin it did not make.
  SY_DAEMON_RAN=1
  record_state "$state"
  sy_log "loud scenario done"
}

scenario_term() {
  local state=$1
  # shellcheck source=tests/e2e/lib.sh
  source "$HERE/lib.sh"
  sy_e2e_init selftest-term
  sy_topology_up 1
  sy_start_backends 8080 5353
  make_pin
  sleep 60 &
  local sleeper=$!
  sy_track_pid "$sleeper"
  record_state "$state"
  # `wait` (unlike a foreground command) returns as soon as the TERM trap fires.
  wait "$sleeper"
}

# ---------------------------------------------------------------------------------------------
# The parent: runs each scenario and checks the host afterwards.

leftovers() {
  local state=$1 found="" pid
  # shellcheck disable=SC1090
  source "$state"
  if ip netns list | grep -q "^$PREFIX-"; then
    found+=" netns($(ip netns list | grep "^$PREFIX-" | awk '{print $1}' | tr '\n' ' '))"
  fi
  [[ -e $CG ]] && found+=" cgroup($CG)"
  [[ -e $PIN ]] && found+=" pins($PIN)"
  local extra_pin # per-node pin dirs of lib_multinode.sh: $PIN-n1, ...
  for extra_pin in "$PIN"-*; do
    [[ -e $extra_pin ]] && found+=" pins($extra_pin)"
  done
  [[ -e $WORK ]] && found+=" workdir($WORK)"
  for pid in $PIDS; do
    if [[ -e /proc/$pid ]] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
      found+=" process($pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null))"
    fi
  done
  echo "$found"
}

stop_scenarios() {
  local rc=$? children
  children=$(jobs -p)
  if [[ -n $children ]]; then
    # shellcheck disable=SC2086 # one pid per word
    kill -TERM $children 2>/dev/null
  fi
  exit "$rc"
}

# run_scenario NAME EXPECTED_RC [WARNING]: runs it, then checks its exit status, that it left
# nothing behind, and that its stderr holds the line "WARNING [selftest-NAME]: WARNING..." if
# WARNING is given, and no line starting "WARNING" otherwise.
run_scenario() {
  local name=$1 expected_rc=$2 expected_warning=${3:-} state rc found errlog warnings
  state=$(mktemp -u -t sy-selftest-state.XXXXXX)
  errlog=$state.stderr
  if [[ $name == term ]]; then
    bash "$SCRIPT" "inner-$name" "$state" 2>"$errlog" &
    local child=$!
    local i
    for ((i = 0; i < 300; i++)); do
      [[ -s $state ]] && break
      sleep 0.1
    done
    [[ -s $state ]] || { echo "FAIL: scenario $name never got ready" >&2; kill -KILL "$child"; return 1; }
    kill -TERM "$child"
    rc=0
    wait "$child" || rc=$?
  else
    rc=0
    bash "$SCRIPT" "inner-$name" "$state" 2>"$errlog" || rc=$?
  fi
  warnings=$(grep '^WARNING' "$errlog" || true)
  if [[ -n $expected_warning ]]; then
    # Shown as expected, so that a search of the suite's output for WARNING finds real ones only.
    sed 's/^WARNING /expected warning /' "$errlog" >&2
  else
    cat "$errlog" >&2
  fi
  rm -f "$errlog"
  if [[ ! -s $state ]]; then
    echo "FAIL: scenario $name exited $rc before recording its state" >&2
    return 1
  fi
  found=$(leftovers "$state")
  rm -f "$state"
  if [[ $rc != "$expected_rc" ]]; then
    echo "FAIL: scenario $name exited $rc, expected $expected_rc" >&2
    return 1
  fi
  if [[ -n $found ]]; then
    echo "FAIL: scenario $name left behind:$found" >&2
    return 1
  fi
  if [[ -z $expected_warning && -n $warnings ]]; then
    echo "FAIL: scenario $name: expected a quiet cleanup, got: $warnings" >&2
    return 1
  fi
  if [[ -n $expected_warning ]] && ! grep -qF "WARNING [selftest-$name]: $expected_warning" <<<"$warnings"; then
    echo "FAIL: scenario $name: expected the cleanup to warn '$expected_warning', got: ${warnings:-no warning}" >&2
    return 1
  fi
  local cleanup_said="no warning"
  [[ -z $expected_warning ]] || cleanup_said="the expected warning"
  echo "ok: scenario $name (exit $rc, nothing left behind, $cleanup_said)" >&2
}

if [[ ${BASH_SOURCE[0]} != "$0" ]]; then
  return 0
fi

case ${1:-all} in
  inner-pass) scenario_pass "$2" ;;
  inner-fail) scenario_fail "$2" ;;
  inner-late) scenario_late "$2" ;;
  inner-term) scenario_term "$2" ;;
  inner-loud) scenario_loud "$2" ;;
  all)
    if [[ $(id -u) != 0 ]]; then
      echo "SKIP [lib_selftest]: needs root" >&2
      exit 77
    fi
    # A scenario still running when this script dies is told to clean up after itself.
    trap stop_scenarios EXIT
    failures=0
    run_scenario pass 0 || failures=$((failures + 1))
    run_scenario fail 1 || failures=$((failures + 1))
    run_scenario late 1 || failures=$((failures + 1))
    run_scenario term 143 || failures=$((failures + 1))
    run_scenario loud 0 "switchyard cleanup failed" || failures=$((failures + 1))
    if ((failures > 0)); then
      echo "lib_selftest: $failures scenario(s) failed" >&2
      exit 1
    fi
    echo "lib_selftest: all scenarios passed" >&2
    ;;
  *)
    echo "usage: $0 [all]" >&2
    exit 2
    ;;
esac
