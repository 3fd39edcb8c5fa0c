#!/bin/sh
# The demo node of `make run`: a private Open vSwitch in a run folder, two "physical" ports
# (demo0, demo1) whose far ends are eth0 of two host namespaces (demo-h0: 10.0.0.1/24,
# demo-h1: 10.0.0.2/24), and corchd on top, in the background, serving HTTPS with the
# self-signed certificate it generates at its first start (run/state/tls/cert.pem).
#
# The first start also makes the admin "admin" with a random password, printed once and kept in
# run/admin-password (0600), through corchd's initial-admin; corchctl is then logged in with
# `corchctl login admin --save` (session in ~/.config/corch/session.json), so that corchctl
# works with no flag.
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
  run=$(cd "$run" && pwd)
  password_file="$run/admin-password"
  new_password=
  if [ ! -s "$password_file" ]; then
    if [ -s "$run/state/users.json" ]; then
      echo "warning: $run/state/users.json exists but $password_file does not: corchctl cannot" \
        "log in by itself (remove run/state/users.json to start afresh)" >&2
    else
      (umask 077 && od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$password_file" &&
        echo >>"$password_file")
      new_password=1
    fi
  fi
  cat >"$run/corchd.json" <<CONF
{"initial-admin": {"name": "admin", "password-file": "$password_file"},
 "auth": {"token-lifetime-s": 86400}}
CONF
  ctl="$build/orchestrator/corchctl --url https://127.0.0.1:8080 --cacert $run/state/tls/cert.pem"
  if alive "$run/corchd.pid"; then
    echo "corchd is already running (pid $(cat "$run/corchd.pid"))"
  else
    "$build/orchestrator/corchd" --config "$run/corchd.json" --listen 127.0.0.1:8080 \
      --ovsdb "unix:$run/ovs/db.sock" --datapath netdev --physical-ports demo0,demo1 \
      --repository "$here/sf-repository" --state-dir "$run/state" >"$run/corchd.log" 2>&1 &
    echo $! >"$run/corchd.pid"
    i=0
    # Up when it answers over HTTPS (401 without a token).
    until curl -s -o /dev/null --cacert "$run/state/tls/cert.pem" https://127.0.0.1:8080/graphs \
      2>/dev/null; do
      if ! alive "$run/corchd.pid" || [ $i -ge 100 ]; then
        echo "corchd did not start; its log ($run/corchd.log):" >&2
        tail -20 "$run/corchd.log" >&2
        exit 1
      fi
      sleep 0.1
      i=$((i + 1))
    done
  fi
  if [ -s "$password_file" ]; then
    $ctl login admin --save <"$password_file" >/dev/null || echo "warning: corchctl login failed" >&2
  fi
  if [ -n "$new_password" ]; then
    echo "Created the admin 'admin' with password $(cat "$password_file") (kept in $password_file)."
  fi
  fingerprint=$(openssl x509 -noout -fingerprint -sha256 -in "$run/state/tls/cert.pem" 2>/dev/null |
    sed 's/.*=//')
  cat <<MSG
corchd is running: REST API on https://127.0.0.1:8080, log in $run/corchd.log
Its certificate is $run/state/tls/cert.pem (SHA-256 $fingerprint);
corchctl is logged in as admin (session in \${CORCH_SESSION:-~/.config/corch/session.json}); with curl:
  curl --cacert $run/state/tls/cert.pem -H "X-Auth-Token: \$($build/orchestrator/corchctl login admin <$password_file)" \\
       https://127.0.0.1:8080/graphs
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
