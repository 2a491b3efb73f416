#!/usr/bin/env bash
# tests/e2e/bpffs_mount_test.sh: a pinPath outside /sys/fs/bpf that is on no bpffs gets a
# bpffs mounted at the pin path itself; the daemon works from it, a restarted daemon reuses
# that mount and adopts its pins, and `switchyard cleanup` removes the pins and then unmounts
# the (empty) bpffs and removes the directory.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=tests/e2e/lib.sh
source "$HERE/lib.sh"
# shellcheck source=tests/e2e/lib_cluster.sh
source "$HERE/lib_cluster.sh"

mounts_at() { # PATH: how many mounts sit exactly on PATH
  awk -v p="$1" '$5 == p' /proc/self/mountinfo | wc -l
}
# Whatever happens, nothing stays mounted in WORK (lib.sh removes WORK with rm -rf, which a
# mount point would stop): stop the daemon, clean its pin path up, unmount what is left.
teardown_pin() {
  if [[ -n ${DAEMON_PID:-} ]]; then
    kill -TERM "$DAEMON_PID" 2>/dev/null
    sy_wait_for "daemon exits" 5 sy__gone "$DAEMON_PID" 2>/dev/null || kill -KILL "$DAEMON_PID" 2>/dev/null
  fi
  if [[ -d $PIN && -e /run/netns/$NODE_NS ]]; then
    timeout 20 nsenter --net="/run/netns/$NODE_NS" "$SY_BIN" cleanup --pin-path "$PIN" >/dev/null 2>&1
  fi
  while (($(mounts_at "$PIN") > 0)); do
    umount "$PIN" || break
  done
}

sy_e2e_init bpffs-mount
PIN=$WORK/pins # on the tmpfs or disk of /tmp, not on a bpffs: sy_write_config puts it in the config
sy_on_exit teardown_pin
[[ $(stat -f -c %T "$WORK") != bpf_fs ]] || sy_fail "test bug: $WORK is on a bpffs already"
sy_cluster_up socklb

[[ $(stat -f -c %T "$PIN") == bpf_fs ]] || sy_fail "expected a bpffs at the pin path $PIN, found $(stat -f -c %T "$PIN")"
(($(mounts_at "$PIN") == 1)) || sy_fail "expected exactly one mount at $PIN, found $(mounts_at "$PIN")"
grep -q "mounted bpffs at the pin path $PIN" "$DAEMON_LOG" || sy_fail "expected the daemon to say it mounted bpffs at $PIN"
sy_expect_probe "TCP through the ClusterIP with the maps pinned at $PIN" \
  "$(sy_all_pods_expr 30)" --proto tcp --target "$WEB_VIP:$WEB_PORT" --count 30

sy_daemon_stop
sy_daemon_start "$CONFIG" "$WORK/daemon2.log"
sy_wait_for "the restarted daemon to adopt the pins" 10 grep -q 'adopted pinned maps: 2 frontends, 6 backends' "$WORK/daemon2.log" ||
  sy_fail "expected the restarted daemon to adopt the maps pinned in the bpffs at $PIN: $(cat "$WORK/daemon2.log")"
(($(mounts_at "$PIN") == 1)) || sy_fail "expected the restarted daemon to reuse the bpffs at $PIN, found $(mounts_at "$PIN") mounts"
! grep -q "mounted bpffs" "$WORK/daemon2.log" || sy_fail "expected no second mount by the restarted daemon"
sy_daemon_stop

# Every map pinned directly under the pin path (links/ holds the cgroup links; *.debug are the
# kernel's own files in every bpffs).
sy_log "pinned under $PIN: $(find "$PIN" -maxdepth 1 -type f ! -name "*.debug" -printf "%f ")"
maps=$(find "$PIN" -maxdepth 1 -type f ! -name "*.debug" | wc -l)
((maps > 10)) || sy_fail "expected the daemon's maps pinned under $PIN, found $maps"
out=$(sy_in_ns "$NODE_NS" "$SY_BIN" cleanup --pin-path "$PIN" 2>&1) || sy_fail "expected cleanup to exit 0: $out"
sy_log "cleanup said: $out"
grep -qE "^cleanup $PIN: removed 2 tc filters, 1 clsact qdiscs, 8 cgroup links, $maps pinned maps" <<<"$out" ||
  sy_fail "expected cleanup to remove everything under $PIN ($maps pinned maps), got: $out"
grep -q "^cleanup $PIN: unmounted the bpffs mounted there" <<<"$out" || sy_fail "expected cleanup to unmount the bpffs at $PIN, got: $out"
(($(mounts_at "$PIN") == 0)) || sy_fail "expected no mount left at $PIN"
[[ ! -e $PIN ]] || sy_fail "expected $PIN removed after cleanup"
sy_log "PASS"
