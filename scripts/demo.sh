#!/bin/sh
# The demo node of `make run`: a private Open vSwitch in a run folder, two "physical" ports
# (demo0, demo1) whose far ends are eth0 of two host namespaces (demo-h0: 10.0.0.1/24,
# demo-h1: 10.0.0.2/24), and corchd on top, in the background.
#
#   scripts/demo.sh start BUILD_DIR RUN_DIR     scripts/demo.sh stop RUN_DIR
set -eu

cmd=${1:?start or stop}
here=$(cd "$(dirname "$0")/.." && pwd)

alive() { pid=$(cat "$1" 2>/dev/null) && [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }

stop_pid() {
  if alive "$1"; then
    kill "$(cat "$1" 2>/dev/null)" 2>/dev/null || true
    i=0
    while alive "$1" && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
    alive "$1" && kill -9 "$(cat "$1" 2>/dev/null)" 2>/dev/null || true
  fi
  rm -f "$1"
}

start_ovs() {
  run=$1
  mkdir -p "$run/ovs"
  export OVS_RUNDIR="$run/ovs" OVS_LOGDIR="$run/ovs" OVS_DBDIR="$run/ovs"
  if ! alive "$run/ovs/ovsdb-server.pid"; then
    [ -f "$run/ovs/conf.db" ] || ovsdb-tool create "$run/ovs/conf.db" /usr/share/openvswitch/vswitch.ovsschema
    ovsdb-server "$run/ovs/conf.db" --remote="punix:$run/ovs/db.sock" \
      --remote=db:Open_vSwitch,Open_vSwitch,manager_options \
      --pidfile="$run/ovs/ovsdb-server.pid" --log-file="$run/ovs/ovsdb-server.log" --detach \
      >>"$run/ovs/ovsdb-server.out" 2>&1
    ovs-vsctl --db="unix:$run/ovs/db.sock" --no-wait init
  fi
  if ! alive "$run/ovs/ovs-vswitchd.pid"; then
    ovs-vswitchd "unix:$run/ovs/db.sock" --pidfile="$run/ovs/ovs-vswitchd.pid" \
      --log-file="$run/ovs/ovs-vswitchd.log" --detach >>"$run/ovs/ovs-vswitchd.out" 2>&1
  fi
}

add_host() {  # add_host NS PHYS ADDRESS
  ip netns list | grep -qw "^$1" || ip netns add "$1"
  if ! ip link show "$2" >/dev/null 2>&1; then
    ip link add "$2" type veth peer name "$2-h"
    ip link set "$2-h" netns "$1"
    ip -n "$1" link set "$2-h" name eth0
    ip -n "$1" addr add "$3" dev eth0
  fi
  ip link set "$2" up
  ip -n "$1" link set lo up
  ip -n "$1" link set eth0 up
  # TCP across OVS's userspace datapath needs TX checksum offload off (MACHINE-NOTES).
  ip netns exec "$1" ethtool -K eth0 tx off >/dev/null 2>&1 || true
}

case "$cmd" in
start)
  build=${2:?build dir}
  run=${3:?run dir}
  mkdir -p "$run"
  start_ovs "$run"
  add_host demo-h0 demo0 10.0.0.1/24
  add_host demo-h1 demo1 10.0.0.2/24
  if alive "$run/corchd.pid"; then
    echo "corchd is already running (pid $(cat "$run/corchd.pid"))"
  else
    "$build/orchestrator/corchd" --listen 127.0.0.1:8080 --ovsdb "unix:$run/ovs/db.sock" \
      --datapath netdev --physical-ports demo0,demo1 --repository "$here/sf-repository" \
      --state-dir "$run/state" >"$run/corchd.log" 2>&1 &
    echo $! >"$run/corchd.pid"
    i=0
    until "$build/orchestrator/corchctl" list >/dev/null 2>&1; do
      if ! alive "$run/corchd.pid" || [ $i -ge 100 ]; then
        echo "corchd did not start; its log ($run/corchd.log):" >&2
        tail -20 "$run/corchd.log" >&2
        exit 1
      fi
      sleep 0.1
      i=$((i + 1))
    done
  fi
  cat <<MSG
corchd is running: REST API on http://127.0.0.1:8080, log in $run/corchd.log
Physical ports demo0 and demo1 lead to the host namespaces demo-h0 (10.0.0.1) and demo-h1 (10.0.0.2).
Try:
  $build/orchestrator/corchctl deploy examples/firewall.json
  ip netns exec demo-h0 ping -c 3 10.0.0.2
  $build/orchestrator/corchctl list
  $build/orchestrator/corchctl delete firewall
Stop everything with: make stop
MSG
  ;;
stop)
  run=${2:?run dir}
  stop_pid "$run/corchd.pid"
  stop_pid "$run/ovs/ovs-vswitchd.pid"
  stop_pid "$run/ovs/ovsdb-server.pid"
  for ns in demo-h0 demo-h1; do ip netns del "$ns" 2>/dev/null || true; done
  for l in demo0 demo1; do ip link del "$l" 2>/dev/null || true; done
  echo "stopped corchd, Open vSwitch and the demo namespaces"
  ;;
*)
  echo "usage: $0 start BUILD_DIR RUN_DIR | stop RUN_DIR" >&2
  exit 2
  ;;
esac
