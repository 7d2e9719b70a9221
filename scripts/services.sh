#!/usr/bin/env bash
# Test rig of real services for chaosrunner's integration tests.
#
#   scripts/services.sh start|stop|status|env|packages [SERVICE...]
#   scripts/services.sh binary-state PID
#
# SERVICES: docker postgres pgbouncer prometheus alertmanager pushgateway
# (none given = all). Everything listens on loopback only (dockerd on its unix
# socket) and keeps its state under $CHAOSRUNNER_RIG_DIR. See scripts/README.md.
set -euo pipefail

RIG="${CHAOSRUNNER_RIG_DIR:-/var/tmp/chaosrunner-rig}"
PG_PORT="${CHAOSRUNNER_PG_PORT:-15432}"
PGBOUNCER_PORT="${CHAOSRUNNER_PGBOUNCER_PORT:-16432}"
PROMETHEUS_PORT="${CHAOSRUNNER_PROMETHEUS_PORT:-19090}"
ALERTMANAGER_PORT="${CHAOSRUNNER_ALERTMANAGER_PORT:-19093}"
PUSHGATEWAY_PORT="${CHAOSRUNNER_PUSHGATEWAY_PORT:-19091}"
ALERT_WEBHOOK_PORT="${CHAOSRUNNER_ALERT_WEBHOOK_PORT:-19094}"
DOCKER_SOCK="${CHAOSRUNNER_DOCKER_SOCK:-/var/run/docker.sock}"
START_TIMEOUT="${CHAOSRUNNER_START_TIMEOUT:-60}"
PG_BIN="${CHAOSRUNNER_PG_BIN:-/usr/lib/postgresql/15/bin}"
# the binary a private instance runs (tests copy it to replace it under a running one)
PUSHGATEWAY_BIN="${CHAOSRUNNER_PUSHGATEWAY_BIN:-/usr/bin/prometheus-pushgateway}"
HOST=127.0.0.1

ALL_SERVICES=(docker postgres pgbouncer pushgateway alertmanager prometheus)

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
  cat >&2 <<EOF
usage: $0 start|stop|status|env|packages [SERVICE...]
       $0 binary-state PID     (current | replaced | gone)
services: ${ALL_SERVICES[*]}
EOF
  exit 2
}

# ---------------------------------------------------------------- helpers

pidfile() { echo "$RIG/run/$1.pid"; }
logfile() { echo "$RIG/logs/$1.log"; }

# process exists and is not a zombie (PID 1 here reaps orphans only every ~2 s)
alive() {
  kill -0 "$1" 2>/dev/null || return 1
  ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# the word every command line of the service's process contains
process_word() {
  case "$1" in
    docker) echo dockerd ;;
    *) echo "$1" ;;
  esac
}

# pid of our instance of $1, empty when not running. The command line is checked
# too: after a reboot a pid file left behind may name an unrelated process.
our_pid() {
  local f pid
  if [[ $1 == postgres ]]; then f="$RIG/postgres/data/postmaster.pid"; else f="$(pidfile "$1")"; fi
  [[ -s $f ]] || return 0
  pid="$(head -n1 "$f" 2>/dev/null || true)"
  [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$(process_word "$1")" || return 0
  echo "$pid"
}

http_ok() { curl -fsS -m 2 -o /dev/null "$1" 2>/dev/null; }

# readiness probe: exit 0 when the service answers
probe() {
  case "$1" in
    docker) curl -fsS -m 2 -o /dev/null --unix-socket "$DOCKER_SOCK" http://localhost/_ping 2>/dev/null ;;
    postgres) "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PG_PORT" -t 2 ;;
    pgbouncer) PGCONNECT_TIMEOUT=2 "$PG_BIN/psql" -XAtq -h "$HOST" -p "$PGBOUNCER_PORT" -U postgres -d postgres \
      -c 'select 1' >/dev/null 2>&1 ;;
    prometheus) http_ok "http://$HOST:$PROMETHEUS_PORT/-/ready" ;;
    alertmanager) http_ok "http://$HOST:$ALERTMANAGER_PORT/-/ready" ;;
    pushgateway) http_ok "http://$HOST:$PUSHGATEWAY_PORT/-/ready" ;;
  esac
}

address() {
  case "$1" in
    docker) echo "unix://$DOCKER_SOCK" ;;
    postgres) echo "$HOST:$PG_PORT" ;;
    pgbouncer) echo "$HOST:$PGBOUNCER_PORT" ;;
    prometheus) echo "http://$HOST:$PROMETHEUS_PORT" ;;
    alertmanager) echo "http://$HOST:$ALERTMANAGER_PORT" ;;
    pushgateway) echo "http://$HOST:$PUSHGATEWAY_PORT" ;;
  esac
}

wait_ready() {
  local svc=$1 pid=${2:-} deadline=$((SECONDS + START_TIMEOUT))
  until probe "$svc"; do
    if [[ -n $pid ]] && ! alive "$pid"; then
      log "$svc exited during startup; last lines of $(logfile "$svc"):"
      tail -n 30 "$(logfile "$svc")" >&2 || true
      die "$svc failed to start"
    fi
    if ((SECONDS >= deadline)); then
      log "$svc did not answer on $(address "$svc") within ${START_TIMEOUT}s; last lines of $(logfile "$svc"):"
      tail -n 30 "$(logfile "$svc")" >&2 || true
      die "$svc not ready"
    fi
    sleep 0.2
  done
}

# launch "$@" detached in its own session, log to the service log, record pid
launch() {
  local svc=$1
  shift
  setsid "$@" >>"$(logfile "$svc")" 2>&1 </dev/null &
  echo $! >"$(pidfile "$svc")"
}

stop_pid() {
  local svc=$1 pid=$2 timeout=${3:-30} i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < timeout * 10; i++)); do
    alive "$pid" || return 0
    sleep 0.1
  done
  log "$svc (pid $pid) did not stop within ${timeout}s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------- install

# command that proves a service is installed, and the Debian packages for it
install_check() {
  case "$1" in
    docker) echo /usr/sbin/dockerd ;;
    postgres) echo "$PG_BIN/postgres" ;;
    pgbouncer) echo /usr/sbin/pgbouncer ;;
    prometheus) echo /usr/bin/prometheus ;;
    alertmanager) echo /usr/bin/prometheus-alertmanager ;;
    pushgateway) echo /usr/bin/prometheus-pushgateway ;;
  esac
}
install_pkgs() {
  case "$1" in
    docker) echo docker.io iptables ;;
    postgres) echo postgresql-15 postgresql-client-15 ;;
    pgbouncer) echo pgbouncer postgresql-client-15 ;;
    prometheus) echo prometheus ;;
    alertmanager) echo prometheus-alertmanager ;;
    pushgateway) echo prometheus-pushgateway ;;
  esac
}

# Every package any service needs, whichever services were asked for. `make demo`
# starts four services and `make test` six: if each installed only its own, the
# second apt-get would upgrade shared packages (postgresql-client-15 pulls
# postgresql-15) under the server the first had started, and that server would
# fail to load its libraries. So the first start installs everything, and later
# starts find nothing missing and run no apt-get at all.
needed_packages() {
  local svc pkgs=()
  command -v curl >/dev/null || pkgs+=(curl)
  for svc in "${ALL_SERVICES[@]}"; do
    # a service present without its package (installed by hand) needs none
    # shellcheck disable=SC2207
    [[ -x $(install_check "$svc") ]] || pkgs+=($(install_pkgs "$svc"))
  done
  [[ -x $PG_BIN/psql ]] || pkgs+=(postgresql-client-15)
  command -v iptables >/dev/null || pkgs+=(iptables)
  printf '%s\n' "${pkgs[@]}" | awk '!seen[$0]++'
}

# the packages every service needs, each listed once, installed or not (for `packages`)
all_packages() {
  local svc
  for svc in "${ALL_SERVICES[@]}"; do install_pkgs "$svc" | tr ' ' '\n'; done | awk '!seen[$0]++'
  echo curl
}

installed() { [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null) == ii* ]]; }

missing_packages() {
  local pkg
  for pkg in $(needed_packages); do installed "$pkg" || echo "$pkg"; done
}

ensure_installed() {
  local pkgs=() policy=/usr/sbin/policy-rc.d backup=""
  # shellcheck disable=SC2207
  pkgs=($(missing_packages))
  ((${#pkgs[@]})) || return 0
  [[ $(id -u) == 0 ]] || die "need root to install: ${pkgs[*]}"
  log "installing: ${pkgs[*]}"
  # keep package scripts from starting the Debian default daemons
  if [[ -e $policy ]]; then backup="$policy.chaosrunner-bak"; mv "$policy" "$backup"; fi
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  local rc=0
  export DEBIAN_FRONTEND=noninteractive
  {
    apt-get -o DPkg::Lock::Timeout=300 update -qq &&
      apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends --no-upgrade \
        -o Dpkg::Options::=--force-confold "${pkgs[@]}"
  } >"${TMPDIR:-/tmp}/chaosrunner-apt.log" 2>&1 || rc=$?
  rm -f "$policy"
  if [[ -n $backup ]]; then mv "$backup" "$policy"; fi
  if ((rc != 0)); then
    tail -n 30 "${TMPDIR:-/tmp}/chaosrunner-apt.log" >&2
    die "apt-get install failed (rc=$rc)"
  fi
}

# ---------------------------------------------------------------- per service

start_docker() {
  local d="$RIG/docker" exec_root="$RIG/docker/exec"
  # containerd's sockets live under the exec root: unix socket paths are limited
  # to 108 bytes, so fall back to /run for a long rig path
  if ((${#exec_root} > 48)); then exec_root=/run/chaosrunner-docker; fi
  mkdir -p "$d/data" "$exec_root"
  # Left behind when the machine stopped without `stop`; dockerd refuses to start
  # while its pid file names a live process, whichever process that now is.
  rm -f "$RIG/run/dockerd-internal.pid" "$exec_root/containerd/containerd.pid"
  # overlay2 needs overlayfs and a data root that is not itself on overlayfs
  # (e.g. when this rig runs inside a container); vfs always works, slowly
  local driver="${CHAOSRUNNER_DOCKER_STORAGE_DRIVER:-}"
  if [[ -z $driver ]]; then
    driver=vfs
    if grep -qw overlay /proc/filesystems && [[ $(stat -f -c %T "$d/data") != overlayfs ]]; then
      driver=overlay2
    fi
  fi
  # dockerd needs forwarding for container networking (NAT to the host/loopback)
  sysctl -qw net.ipv4.ip_forward=1 || true
  # See scripts/README.md for why each flag. The dead loopback proxy makes any
  # image pull fail at once instead of reaching for a registry: images are built
  # locally (scripts/build-image.sh).
  launch docker env HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY= \
    /usr/sbin/dockerd \
    --host "unix://$DOCKER_SOCK" \
    --data-root "$d/data" \
    --exec-root "$exec_root" \
    --pidfile "$RIG/run/dockerd-internal.pid" \
    --storage-driver "$driver" \
    --exec-opt native.cgroupdriver=cgroupfs \
    --iptables=true --ip-forward=true --ip-masq=true \
    --userland-proxy=false \
    --log-driver json-file --log-opt max-size=5m
}

pg_conf() {
  cat <<EOF
# chaosrunner test rig (generated by scripts/services.sh)
listen_addresses = '$HOST'
port = $PG_PORT
unix_socket_directories = '$RIG/postgres/run'
max_connections = ${CHAOSRUNNER_PG_MAX_CONNECTIONS:-100}
shared_buffers = 32MB
work_mem = 2MB
maintenance_work_mem = 16MB
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
log_line_prefix = '%m [%p] %u@%d '
EOF
}

start_postgres() {
  local d="$RIG/postgres"
  id postgres >/dev/null 2>&1 || die "system user 'postgres' is missing (install postgresql-15)"
  mkdir -p "$d/run"
  touch "$(logfile postgres)"
  chown postgres: "$d" "$d/run" "$(logfile postgres)"
  if [[ ! -s $d/data/PG_VERSION ]]; then
    rm -rf "$d/data"
    log "initdb $d/data (superuser postgres, trust auth on loopback)"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$d/data" -U postgres --auth=trust \
      -E UTF8 --locale=C.UTF-8 >>"$(logfile postgres)" 2>&1 ||
      { tail -n 20 "$(logfile postgres)" >&2; die "initdb failed"; }
    cat >"$d/data/pg_hba.conf" <<EOF
# chaosrunner test rig: trust on loopback and the local socket only
local all all trust
host  all all 127.0.0.1/32 trust
host  all all ::1/128 trust
EOF
    chown postgres: "$d/data/pg_hba.conf"
  fi
  # Only reached when our_pid found no postgres: a pid file here is stale, and
  # postgres refuses to start if its pid now belongs to another process.
  rm -f "$d/data/postmaster.pid"
  pg_conf >"$d/data/postgresql.auto.conf"
  chown postgres: "$d/data/postgresql.auto.conf"
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$d/data" -l "$(logfile postgres)" -W start >/dev/null
  local i
  for ((i = 0; i < 50; i++)); do [[ -s $d/data/postmaster.pid ]] && break; sleep 0.1; done
}

start_pgbouncer() {
  local d="$RIG/pgbouncer"
  mkdir -p "$d"
  cat >"$d/pgbouncer.ini" <<EOF
; chaosrunner test rig (generated by scripts/services.sh)
[databases]
; any database name is forwarded to the rig PostgreSQL
* = host=$HOST port=$PG_PORT

[pgbouncer]
listen_addr = $HOST
listen_port = $PGBOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $d/userlist.txt
auth_user = postgres
admin_users = postgres
stats_users = postgres
pool_mode = ${CHAOSRUNNER_PGBOUNCER_POOL_MODE:-session}
default_pool_size = ${CHAOSRUNNER_PGBOUNCER_POOL_SIZE:-10}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 200
server_reset_query = DISCARD ALL
server_check_delay = 1
ignore_startup_parameters = extra_float_digits,options
logfile = $(logfile pgbouncer)
EOF
  echo '"postgres" ""' >"$d/userlist.txt"
  touch "$(logfile pgbouncer)"
  chown -R postgres: "$d" "$(logfile pgbouncer)"
  launch pgbouncer /usr/sbin/pgbouncer -u postgres "$d/pgbouncer.ini"
}

start_pushgateway() {
  mkdir -p "$RIG/pushgateway"
  launch pushgateway "$PUSHGATEWAY_BIN" \
    --web.listen-address="$HOST:$PUSHGATEWAY_PORT" \
    --web.enable-admin-api \
    --log.level=warn
}

start_alertmanager() {
  local d="$RIG/alertmanager"
  mkdir -p "$d/data"
  cat >"$d/alertmanager.yml" <<EOF
# chaosrunner test rig (generated by scripts/services.sh)
route:
  receiver: "null"
  group_by: ["alertname"]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    # alerts labelled rig_webhook="true" are posted to a webhook tests may serve
    - receiver: webhook
      matchers: ['rig_webhook="true"']
receivers:
  - name: "null"
  - name: webhook
    webhook_configs:
      - url: http://$HOST:$ALERT_WEBHOOK_PORT/
        send_resolved: true
EOF
  launch alertmanager /usr/bin/prometheus-alertmanager \
    --config.file="$d/alertmanager.yml" \
    --storage.path="$d/data" \
    --web.listen-address="$HOST:$ALERTMANAGER_PORT" \
    --cluster.listen-address= \
    --log.level=warn
}

start_prometheus() {
  local d="$RIG/prometheus"
  mkdir -p "$d/data" "$d/rules" "$d/targets"
  cat >"$d/prometheus.yml" <<EOF
# chaosrunner test rig (generated by scripts/services.sh)
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
  external_labels:
    rig: chaosrunner
rule_files:
  - $d/rules/*.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["$HOST:$ALERTMANAGER_PORT"]
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["$HOST:$PROMETHEUS_PORT"]
  - job_name: pushgateway
    honor_labels: true
    static_configs:
      - targets: ["$HOST:$PUSHGATEWAY_PORT"]
  # tests drop JSON target files here; a "job" label in the file wins
  - job_name: file_sd
    file_sd_configs:
      - files: ["$d/targets/*.json"]
        refresh_interval: 1s
EOF
  # resend-delay 1s: after a reload the notifier knows no Alertmanager for up to
  # ~5 s and drops what fires meanwhile; the default (1m) would delay it that long
  launch prometheus /usr/bin/prometheus \
    --config.file="$d/prometheus.yml" \
    --storage.tsdb.path="$d/data" \
    --storage.tsdb.retention.time=1d \
    --web.listen-address="$HOST:$PROMETHEUS_PORT" \
    --web.enable-lifecycle \
    --web.enable-admin-api \
    --rules.alert.resend-delay=1s \
    --log.level=warn
}

stop_service() {
  local svc=$1 pid
  pid="$(our_pid "$svc")"
  if [[ -z $pid ]]; then
    rm -f "$(pidfile "$svc")"
    return 0
  fi
  log "stopping $svc (pid $pid)"
  case "$svc" in
    postgres)
      runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$RIG/postgres/data" -m fast -w -t 30 stop >/dev/null ||
        stop_pid "$svc" "$pid" 5
      ;;
    docker) stop_pid "$svc" "$pid" 60 ;;
    *) stop_pid "$svc" "$pid" 15 ;;
  esac
  rm -f "$(pidfile "$svc")"
}

# "replaced" when the file a running process was started from is gone or was
# renamed over (a package upgrade): the kernel then shows "(deleted)" after
# /proc/PID/exe. Such a process still runs the old code but loads the *new*
# version's libraries and plug-ins from disk (PostgreSQL's plpgsql.so failed
# with "undefined symbol"), so the rig restarts it. "gone": no such process.
binary_state() {
  local exe
  exe="$(readlink "/proc/$1/exe" 2>/dev/null)" || { echo gone; return 0; }
  if [[ $exe == *" (deleted)" ]]; then echo replaced; else echo current; fi
}

start_service() {
  local svc=$1 pid
  pid="$(our_pid "$svc")"
  if [[ -n $pid && $(binary_state "$pid") == replaced ]]; then
    log "restarting $svc (pid $pid): its binary was replaced on disk (an upgrade) since it started"
    stop_service "$svc"
    pid=""
  fi
  if probe "$svc"; then
    [[ -n $pid ]] || log "$svc already answers on $(address "$svc") (not started by this rig); leaving it"
    return 0
  fi
  if [[ -n $pid ]]; then
    # ours but not answering (yet): give it the timeout, then fail loudly
    wait_ready "$svc" "$pid"
    return 0
  fi
  mkdir -p "$RIG/run" "$RIG/logs"
  chmod 755 "$RIG"
  log "starting $svc on $(address "$svc")"
  "start_$svc"
  wait_ready "$svc" "$(our_pid "$svc")"
  log "$svc ready"
}

# ---------------------------------------------------------------- main

cmd="${1:-}"
[[ -n $cmd ]] || usage
shift
if [[ $cmd == binary-state ]]; then
  [[ ${1:-} =~ ^[0-9]+$ ]] || usage
  binary_state "$1"
  exit 0
fi
services=("$@")
((${#services[@]})) || services=("${ALL_SERVICES[@]}")
for s in "${services[@]}"; do
  [[ " ${ALL_SERVICES[*]} " == *" $s "* ]] || die "unknown service '$s' (known: ${ALL_SERVICES[*]})"
done
# pgbouncer needs postgres: starting it starts postgres first
if [[ $cmd == start && " ${services[*]} " == *" pgbouncer "* && " ${services[*]} " != *" postgres "* ]]; then
  services=(postgres "${services[@]}")
fi
# keep canonical order (start) / reverse order (stop)
ordered=()
for s in "${ALL_SERVICES[@]}"; do
  [[ " ${services[*]} " == *" $s "* ]] && ordered+=("$s")
done

case "$cmd" in
  start)
    ensure_installed # every service's packages, not only these: see needed_packages
    for s in "${ordered[@]}"; do start_service "$s"; done
    # The install may have upgraded a service nobody asked for: a running one of ours
    # whose binary was replaced gets the same restart (one not running stays down).
    for s in "${ALL_SERVICES[@]}"; do
      [[ " ${ordered[*]} " == *" $s "* ]] && continue
      pid="$(our_pid "$s")"
      if [[ -n $pid && $(binary_state "$pid") == replaced ]]; then start_service "$s"; fi
    done
    ;;
  stop)
    for ((i = ${#ordered[@]} - 1; i >= 0; i--)); do stop_service "${ordered[i]}"; done
    ;;
  status)
    rc=0
    for s in "${ordered[@]}"; do
      pid="$(our_pid "$s")"
      if probe "$s"; then
        if [[ -n $pid ]]; then note="pid $pid"; else note="not started by this rig"; fi
        printf '%-13s running  %-28s %s\n' "$s" "$(address "$s")" "$note"
      else
        printf '%-13s stopped  %-28s%s\n' "$s" "$(address "$s")" "${pid:+ (pid $pid alive, not answering)}"
        rc=3
      fi
    done
    exit "$rc"
    ;;
  packages)
    # what `start` installs, whatever services it is given: every service's packages
    echo "needed: $(all_packages | tr '\n' ' ' | sed 's/ $//')"
    echo "missing: $(missing_packages | tr '\n' ' ' | sed 's/ $//')"
    ;;
  env)
    cat <<EOF
export CHAOSRUNNER_RIG_DIR='$RIG'
export CHAOSRUNNER_PROMETHEUS_URL='http://$HOST:$PROMETHEUS_PORT'
export CHAOSRUNNER_ALERTMANAGER_URL='http://$HOST:$ALERTMANAGER_PORT'
export CHAOSRUNNER_PUSHGATEWAY_URL='http://$HOST:$PUSHGATEWAY_PORT'
export CHAOSRUNNER_PG_DSN='postgresql://postgres@$HOST:$PG_PORT/postgres'
export CHAOSRUNNER_PGBOUNCER_DSN='postgresql://postgres@$HOST:$PGBOUNCER_PORT/postgres'
export CHAOSRUNNER_ALERT_WEBHOOK_PORT='$ALERT_WEBHOOK_PORT'
export DOCKER_HOST='unix://$DOCKER_SOCK'
EOF
    ;;
  *) usage ;;
esac
