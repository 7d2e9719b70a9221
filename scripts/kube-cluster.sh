#!/usr/bin/env bash
# Single-node Kubernetes 1.20.2 test cluster for chaosrunner, built from
# Debian's `kubernetes` source package. See scripts/kube/README.md.
#
#   scripts/kube-cluster.sh build    # build + cache the binaries (once, ~9-12 min)
#   scripts/kube-cluster.sh start    # start etcd, control plane, kubelet; wait Ready
#   scripts/kube-cluster.sh stop     # stop everything, remove pod containers
#   scripts/kube-cluster.sh status   # one line per component
#   scripts/kube-cluster.sh env      # prints `export KUBECONFIG=...`
#   scripts/kube-cluster.sh kubectl ARGS...   # version-matched kubectl
#   scripts/kube-cluster.sh reset    # stop + wipe the state dir (etcd data, certs)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)

KUBE_VERSION=1.20.2
CACHE=${CHAOSRUNNER_KUBE_CACHE:-/var/cache/chaosrunner/kubernetes-$KUBE_VERSION}
STATE=${CHAOSRUNNER_KUBE_DIR:-/var/tmp/chaosrunner-kube}
BIN="$CACHE/bin"
ETCD_PORT=${CHAOSRUNNER_KUBE_ETCD_PORT:-12379}
ETCD_PEER_PORT=${CHAOSRUNNER_KUBE_ETCD_PEER_PORT:-12380}
API_PORT=${CHAOSRUNNER_KUBE_API_PORT:-6443}
START_TIMEOUT=${CHAOSRUNNER_KUBE_START_TIMEOUT:-120}
NODE_NAME=${CHAOSRUNNER_KUBE_NODE_NAME:-$(hostname)}
PAUSE_IMAGE=k8s.gcr.io/pause:3.2
TEST_IMAGE=chaosrunner/kube-test:latest
DOCKER_SOCK=/var/run/docker.sock

BUILT_BINS=(kube-apiserver kube-controller-manager kube-scheduler kubelet)
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kubelet)
BUILD_PKGS=(golang-1.19-go golang-1.19-src rsync make gcc libc6-dev dpkg-dev ca-certificates)
RUNTIME_PKGS=(etcd-server openssl curl)

log() { printf '[kube-cluster %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- packages
APT_UPDATED=0
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$APT_UPDATED" = 0 ]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    APT_UPDATED=1
  fi
  log "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ------------------------------------------------------------------- build
have_binaries() {
  local b
  for b in "${BUILT_BINS[@]}" kubectl pause; do [ -x "$BIN/$b" ] || return 1; done
}

# A private apt configuration with deb-src lines derived from the system's
# deb822 sources; it uses its own lists dir so the system's apt state is untouched.
apt_src_opts() {
  local dir=$1
  mkdir -p "$dir/parts" "$dir/lists/partial"
  local f found=0
  : >"$dir/parts/chaosrunner-src.sources"
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    sed -e 's/^Types:.*/Types: deb deb-src/' "$f" >>"$dir/parts/chaosrunner-src.sources"
    printf '\n' >>"$dir/parts/chaosrunner-src.sources"
    found=1
  done
  if [ -f /etc/apt/sources.list ]; then
    sed -n 's/^[[:space:]]*deb[[:space:]]/deb-src /p' /etc/apt/sources.list >"$dir/src.list"
    grep -q . "$dir/src.list" && found=1
  else
    : >"$dir/src.list"
  fi
  [ "$found" = 1 ] || die "no apt sources found to derive a deb-src line from"
  echo "-o Dir::Etc::SourceList=$dir/src.list -o Dir::Etc::SourceParts=$dir/parts -o Dir::State::Lists=$dir/lists"
}

cmd_build() {
  local t0 t1 work src opts
  t0=$(date +%s)
  if have_binaries; then
    apt_install "${RUNTIME_PKGS[@]}"
    log "cached binaries present in $BIN; nothing to build"
    return 0
  fi
  apt_install "${BUILD_PKGS[@]}" "${RUNTIME_PKGS[@]}"
  t1=$(date +%s); log "packages ready ($((t1 - t0))s)"

  work="$CACHE/build"
  rm -rf "$work"
  mkdir -p "$work/dl"
  opts=$(apt_src_opts "$work/apt")
  log "fetching Debian source package 'kubernetes'"
  # shellcheck disable=SC2086
  apt-get $opts update -qq
  # shellcheck disable=SC2086
  (cd "$work/dl" && apt-get $opts source --download-only kubernetes >/dev/null 2>&1) ||
    die "apt-get source --download-only kubernetes failed"
  (cd "$work/dl" && dpkg-source --no-check -x kubernetes_*.dsc "$work/src" >/dev/null)
  src="$work/src"
  grep -q "^KUBE_GIT_VERSION=\\|tag: v$KUBE_VERSION" "$src/hack/lib/version.sh" ||
    log "warning: source is not tagged v$KUBE_VERSION"
  t1=$(date +%s); log "source unpacked ($((t1 - t0))s)"

  # Sandbox patch: negative OOM score adjustments are refused here, which makes
  # every pod sandbox fail with "can't get final child's PID".
  sed -i -E 's/^(\s*defaultSandboxOOMAdj\s+int\s*=\s*)-?[0-9]+/\10/' \
    "$src/pkg/kubelet/dockershim/docker_sandbox.go"
  sed -i -E 's/^(\s*guaranteedOOMScoreAdj\s+int\s*=\s*)-?[0-9]+/\10/' \
    "$src/pkg/kubelet/qos/policy.go"
  grep -Eq 'defaultSandboxOOMAdj\s+int\s*=\s*0$' "$src/pkg/kubelet/dockershim/docker_sandbox.go" ||
    die "OOM patch did not apply to docker_sandbox.go"
  grep -Eq 'guaranteedOOMScoreAdj\s+int\s*=\s*0$' "$src/pkg/kubelet/qos/policy.go" ||
    die "OOM patch did not apply to qos/policy.go"
  log "patched OOM score adjustments to 0"

  local whats="" b
  for b in "${BUILT_BINS[@]}"; do whats="$whats cmd/$b"; done
  log "make WHAT=\"${whats# }\" (log: $work/make.log)"
  if ! (cd "$src" && env HOME="$work/home" GOPATH="$work/gopath" GOCACHE="$work/gocache" \
      GOPROXY=off GOFLAGS= GO111MODULE= CGO_ENABLED=0 \
      PATH="/usr/lib/go-1.19/bin:$PATH" \
      make WHAT="${whats# }" >"$work/make.log" 2>&1); then
    tail -40 "$work/make.log" >&2
    die "kubernetes build failed (full log: $work/make.log)"
  fi
  t1=$(date +%s); log "compiled ($((t1 - t0))s)"

  local stage="$CACHE/bin.new"
  rm -rf "$stage"; mkdir -p "$stage"
  for b in "${BUILT_BINS[@]}"; do install -m 0755 "$src/_output/bin/$b" "$stage/$b"; done
  # The pause binary for the pod sandbox image (static, so a scratch image works).
  gcc -Os -static -o "$stage/pause" "$src/build/pause/linux/pause.c"
  strip "$stage/pause" || true
  # kubectl of the same version, from Debian's kubernetes-client package
  # (extracted, not installed, so it cannot clash with another kubectl).
  (cd "$work/dl" && apt-get download kubernetes-client >/dev/null 2>&1) ||
    die "apt-get download kubernetes-client failed"
  dpkg-deb -x "$work"/dl/kubernetes-client_*.deb "$work/kc"
  install -m 0755 "$work/kc/usr/bin/kubectl" "$stage/kubectl"
  rm -rf "$BIN"; mv "$stage" "$BIN"
  if [ "${CHAOSRUNNER_KUBE_KEEP_BUILD:-0}" != 1 ]; then rm -rf "$work"; fi
  t1=$(date +%s)
  log "build done in $((t1 - t0))s; binaries in $BIN ($(du -sh "$BIN" | cut -f1))"
}

# ------------------------------------------------------------------ docker
docker_ok() { timeout 10 docker info >/dev/null 2>&1; }

ensure_docker() {
  docker_ok && return 0
  if [ -x "$REPO_DIR/scripts/services.sh" ] || [ -f "$REPO_DIR/scripts/services.sh" ]; then
    log "starting docker via scripts/services.sh"
    bash "$REPO_DIR/scripts/services.sh" start docker >&2
  else
    command -v dockerd >/dev/null 2>&1 || apt_install docker.io
    command -v docker >/dev/null 2>&1 || apt_install docker.io
    if ! pgrep -x dockerd >/dev/null 2>&1; then
      local drv
      for drv in overlay2 vfs; do
        log "starting dockerd (storage driver $drv)"
        setsid dockerd --host="unix://$DOCKER_SOCK" --storage-driver="$drv" \
          >>/var/log/dockerd.log 2>&1 </dev/null &
        echo $! >"$STATE/dockerd.pid"
        for _ in $(seq 1 30); do docker_ok && break; sleep 1; done
        docker_ok && break
        kill "$(cat "$STATE/dockerd.pid")" 2>/dev/null || true; sleep 2
      done
    fi
  fi
  for _ in $(seq 1 30); do docker_ok && return 0; sleep 1; done
  tail -20 /var/log/dockerd.log >&2 2>/dev/null || true
  die "docker is not reachable on $DOCKER_SOCK"
}

ensure_images() {
  if ! docker image inspect "$PAUSE_IMAGE" >/dev/null 2>&1; then
    log "importing $PAUSE_IMAGE from $BIN/pause"
    local d; d=$(mktemp -d)
    cp "$BIN/pause" "$d/pause"
    tar -C "$d" -c pause | docker import --change 'ENTRYPOINT ["/pause"]' - "$PAUSE_IMAGE" >/dev/null
    rm -rf "$d"
  fi
  if ! docker image inspect "$TEST_IMAGE" >/dev/null 2>&1; then
    [ -f "$REPO_DIR/scripts/build-image.sh" ] || die "scripts/build-image.sh is missing (needed for $TEST_IMAGE)"
    log "building $TEST_IMAGE via scripts/build-image.sh"
    bash "$REPO_DIR/scripts/build-image.sh" "$TEST_IMAGE" --with-python >&2
  fi
}

# ------------------------------------------------------------------- certs
gen_pki() {
  local p="$STATE/pki"
  [ -f "$p/done" ] && return 0
  log "generating certificates, keys and tokens in $STATE"
  rm -rf "$p"; mkdir -p "$p"; chmod 700 "$p"
  (
    cd "$p"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
      -subj "/CN=chaosrunner-kube-ca" 2>/dev/null
    cat >apiserver.ext <<EOF
basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,DNS:$NODE_NAME,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.0.0.1
EOF
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr \
      -subj "/CN=kube-apiserver" 2>/dev/null
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
      -out apiserver.crt -days 3650 -extfile apiserver.ext 2>/dev/null
    # client cert the apiserver presents to the kubelet (exec/logs/attach)
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    openssl req -newkey rsa:2048 -nodes -keyout apiserver-kubelet-client.key \
      -out apiserver-kubelet-client.csr -subj "/O=system:masters/CN=kube-apiserver-kubelet-client" 2>/dev/null
    openssl x509 -req -in apiserver-kubelet-client.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
      -out apiserver-kubelet-client.crt -days 3650 -extfile client.ext 2>/dev/null
    # service-account signing key pair
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    rm -f ./*.csr
    local admin cm sched kubelet
    admin=$(openssl rand -hex 24); cm=$(openssl rand -hex 24)
    sched=$(openssl rand -hex 24); kubelet=$(openssl rand -hex 24)
    cat >tokens.csv <<EOF
$admin,admin,admin,system:masters
$cm,system:kube-controller-manager,system:kube-controller-manager
$sched,system:kube-scheduler,system:kube-scheduler
$kubelet,system:node:$NODE_NAME,system:node:$NODE_NAME,system:nodes
EOF
    printf '%s\n' "$admin" >admin.token
    printf '%s\n' "$cm" >controller-manager.token
    printf '%s\n' "$sched" >scheduler.token
    printf '%s\n' "$kubelet" >kubelet.token
  )
  local n
  for n in admin controller-manager scheduler kubelet; do
    write_kubeconfig "$STATE/$n.kubeconfig" "$n" "$(cat "$p/$n.token")"
  done
  touch "$p/done"
}

write_kubeconfig() {
  local file=$1 user=$2 token=$3 ca
  ca=$(base64 -w0 <"$STATE/pki/ca.crt")
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: chaosrunner
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $ca
users:
- name: $user
  user:
    token: $token
contexts:
- name: chaosrunner
  context:
    cluster: chaosrunner
    user: $user
    namespace: default
current-context: chaosrunner
EOF
  chmod 600 "$file"
}

# --------------------------------------------------------------- processes
pidfile() { echo "$STATE/run/$1.pid"; }

# Prints the pid when the component is running (the pid's command must match).
comp_pid() {
  local f pid; f=$(pidfile "$1")
  [ -f "$f" ] || return 1
  pid=$(cat "$f" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$1" || return 1
  grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null && return 1
  echo "$pid"
}

launch() {
  local name=$1; shift
  if comp_pid "$name" >/dev/null; then return 0; fi
  mkdir -p "$STATE/run" "$STATE/logs"
  printf '\n==== %s start %s\n' "$name" "$(date -Is)" >>"$STATE/logs/$name.log"
  setsid "$@" >>"$STATE/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$(pidfile "$name")"
  log "started $name (pid $!)"
}

alive() { [ -d "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }

stop_comp() {
  local name=$1 pid
  pid=$(comp_pid "$name") || { rm -f "$(pidfile "$name")"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.2; done
  if alive "$pid"; then
    log "$name did not exit on TERM; killing"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$(pidfile "$name")"
  log "stopped $name (pid $pid)"
}

kc() { "$BIN/kubectl" --kubeconfig "$STATE/admin.kubeconfig" --request-timeout=10s "$@"; }

api_healthy() {
  [ -f "$STATE/pki/admin.token" ] || return 1
  curl -fsS --max-time 3 --cacert "$STATE/pki/ca.crt" \
    -H "Authorization: Bearer $(cat "$STATE/pki/admin.token")" \
    "https://127.0.0.1:$API_PORT/readyz" >/dev/null 2>&1
}

etcd_healthy() { curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:$ETCD_PORT/health" 2>/dev/null; }
default_sa_exists() { kc get serviceaccount default >/dev/null 2>&1; }

node_ready() {
  [ "$(kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

all_running() {
  local c
  for c in "${COMPONENTS[@]}"; do comp_pid "$c" >/dev/null || return 1; done
  api_healthy && node_ready
}

fail_with_logs() {
  local c
  log "$*"
  for c in "${COMPONENTS[@]}"; do
    if [ -f "$STATE/logs/$c.log" ]; then
      printf -- '---- %s (%s) last lines ----\n' "$c" "$(comp_pid "$c" >/dev/null && echo running || echo NOT running)" >&2
      tail -15 "$STATE/logs/$c.log" >&2
    fi
  done
  exit 1
}

wait_for() {  # wait_for DESCRIPTION DEADLINE COMMAND...
  local what=$1 deadline=$2; shift 2
  until "$@"; do
    [ "$(date +%s)" -lt "$deadline" ] || fail_with_logs "timed out waiting for $what"
    local c
    for c in "${COMPONENTS[@]}"; do
      if [ -f "$(pidfile "$c")" ] && ! comp_pid "$c" >/dev/null; then
        fail_with_logs "$c exited while waiting for $what"
      fi
    done
    sleep 0.5
  done
}

readiness_pod() {
  local name=chaosrunner-readiness phase
  phase=$(kc get pod "$name" -o jsonpath='{.status.phase}' 2>/dev/null || true)
  if [ -z "$phase" ]; then
    kc apply -f - >/dev/null 2>&1 <<EOF || return 1
apiVersion: v1
kind: Pod
metadata:
  name: $name
  labels: {app.kubernetes.io/managed-by: chaosrunner-kube-cluster}
spec:
  terminationGracePeriodSeconds: 0
  containers:
  - name: pause
    image: $PAUSE_IMAGE
    imagePullPolicy: Never
EOF
    return 1
  fi
  [ "$phase" = Running ] || return 1
  kc delete pod "$name" --grace-period=0 --force --wait=false >/dev/null 2>&1 || true
}

# When a machine stops without `stop` (a reboot, the end of a CI job), pid files,
# the kubelet's pod containers and its mounts stay behind. A stale pid file
# would read as "exited" to wait_for, and old pod containers would be adopted.
clear_stale_state() {
  local c
  for c in "${COMPONENTS[@]}"; do
    comp_pid "$c" >/dev/null || rm -f "$(pidfile "$c")"
  done
  if ! comp_pid kubelet >/dev/null; then
    remove_pod_containers
    unmount_kubelet
  fi
}

# etcd killed mid-write can leave a WAL it refuses to replay. The cluster holds
# only test objects, so a data dir etcd cannot start from is set aside and
# etcd starts empty.
start_etcd() {
  local deadline=$1 attempt
  for attempt in 1 2; do
    launch etcd etcd --name chaosrunner --data-dir "$STATE/etcd" \
      --listen-client-urls "http://127.0.0.1:$ETCD_PORT" \
      --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
      --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
      --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
      --initial-cluster "chaosrunner=http://127.0.0.1:$ETCD_PEER_PORT" \
      --listen-metrics-urls "" --quota-backend-bytes 2147483648
    until etcd_healthy; do
      [ "$(date +%s)" -lt "$deadline" ] || fail_with_logs "timed out waiting for etcd"
      comp_pid etcd >/dev/null || break
      sleep 0.5
    done
    etcd_healthy && return 0
    [ "$attempt" = 1 ] || fail_with_logs "etcd exited twice, the second time on an empty data dir"
    log "etcd exited on start; setting its data dir aside ($STATE/etcd.broken) and starting empty"
    rm -f "$(pidfile etcd)"
    rm -rf "$STATE/etcd.broken"
    mv "$STATE/etcd" "$STATE/etcd.broken"
    mkdir -p "$STATE/etcd"
  done
}

# Some components running but the cluster not ready: left by another job, or
# being torn down by whoever started them (a CI machine reused after a
# session). Adopting them means waiting on processes that may die under us, so
# stop them and start every component ourselves.
restart_partial_cluster() {
  local c running=()
  for c in "${COMPONENTS[@]}"; do comp_pid "$c" >/dev/null && running+=("$c"); done
  [ ${#running[@]} -eq 0 ] && return 0
  log "a partial cluster is running (${running[*]}) but not ready; restarting it"
  cmd_stop
}

# One more attempt when the first fails: a component that exits while we wait
# (killed from outside, or a port still held by a dying process) is usually
# fine the second time, from a clean stop.
cmd_start_retrying() {
  if "${BASH_SOURCE[0]}" start-once; then return 0; fi
  log "start failed; stopping what started and trying once more"
  cmd_stop
  sleep 2
  cmd_start
}

cmd_start() {
  local t0; t0=$(date +%s)
  mkdir -p "$STATE/run" "$STATE/logs"
  if all_running; then
    log "already running (KUBECONFIG=$STATE/admin.kubeconfig)"
    return 0
  fi
  have_binaries || { log "binaries missing in $BIN; building first"; cmd_build; }
  apt_install "${RUNTIME_PKGS[@]}"
  ensure_docker
  ensure_images
  clear_stale_state
  restart_partial_cluster
  gen_pki
  local p="$STATE/pki" deadline=$(( $(date +%s) + START_TIMEOUT ))
  mkdir -p "$STATE/etcd" "$STATE/kubelet"

  start_etcd "$deadline"

  launch kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$API_PORT" --insecure-port=0 \
    --tls-cert-file="$p/apiserver.crt" --tls-private-key-file="$p/apiserver.key" \
    --client-ca-file="$p/ca.crt" --token-auth-file="$p/tokens.csv" \
    --authorization-mode=AlwaysAllow \
    --disable-admission-plugins=ServiceAccount \
    --feature-gates=EphemeralContainers=true \
    --service-account-key-file="$p/sa.pub" \
    --service-account-signing-key-file="$p/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-cluster-ip-range=10.0.0.0/24 \
    --endpoint-reconciler-type=none \
    --allow-privileged=true \
    --kubelet-preferred-address-types=Hostname,InternalIP \
    --kubelet-client-certificate="$p/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$p/apiserver-kubelet-client.key" \
    --profiling=false
  wait_for kube-apiserver "$deadline" api_healthy

  launch kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig="$STATE/controller-manager.kubeconfig" \
    --leader-elect=false --bind-address=127.0.0.1 --port=0 \
    --service-account-private-key-file="$p/sa.key" --root-ca-file="$p/ca.crt" \
    --feature-gates=EphemeralContainers=true --profiling=false
  launch kube-scheduler "$BIN/kube-scheduler" \
    --kubeconfig="$STATE/scheduler.kubeconfig" \
    --leader-elect=false --bind-address=127.0.0.1 --port=0 \
    --feature-gates=EphemeralContainers=true --profiling=false
  launch kubelet "$BIN/kubelet" \
    --kubeconfig="$STATE/kubelet.kubeconfig" \
    --root-dir="$STATE/kubelet" --cert-dir="$STATE/kubelet/pki" \
    --container-runtime=docker --docker-endpoint="unix://$DOCKER_SOCK" \
    --pod-infra-container-image="$PAUSE_IMAGE" \
    --hostname-override="$NODE_NAME" --address=127.0.0.1 \
    --anonymous-auth=false --client-ca-file="$p/ca.crt" --authorization-mode=AlwaysAllow \
    --cgroups-per-qos=false --enforce-node-allocatable= --eviction-hard= \
    --fail-swap-on=false --cgroup-driver=cgroupfs --oom-score-adj=0 \
    --image-gc-high-threshold=100 --image-gc-low-threshold=99 \
    --make-iptables-util-chains=false \
    --feature-gates=EphemeralContainers=true

  wait_for "node $NODE_NAME Ready" "$deadline" node_ready
  wait_for "default ServiceAccount" "$deadline" default_sa_exists
  wait_for "a pod to reach Running" "$deadline" readiness_pod
  log "cluster ready in $(( $(date +%s) - t0 ))s; export KUBECONFIG=$STATE/admin.kubeconfig"
}

remove_pod_containers() {
  docker_ok || return 0
  local ids
  ids=$(docker ps -aq --filter label=io.kubernetes.pod.name 2>/dev/null || true)
  if [ -n "$ids" ]; then
    log "removing $(echo "$ids" | wc -l) kubelet-created containers"
    # shellcheck disable=SC2086
    docker rm -f $ids >/dev/null 2>&1 || true
  fi
}

unmount_kubelet() {
  [ -d "$STATE/kubelet" ] || return 0
  local m
  # kubelet bind-mounts its root dir onto itself (rshared) plus volume mounts below it
  awk -v d="$STATE/kubelet" '$2 == d || index($2, d "/") == 1 {print $2}' /proc/mounts | sort -r |
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
}

cmd_stop() {
  stop_comp kubelet
  remove_pod_containers
  unmount_kubelet
  stop_comp kube-scheduler
  stop_comp kube-controller-manager
  stop_comp kube-apiserver
  stop_comp etcd
  log "stopped"
}

cmd_status() {
  local c pid rc=0
  for c in "${COMPONENTS[@]}"; do
    if pid=$(comp_pid "$c"); then
      printf '%-24s running (pid %s)\n' "$c" "$pid"
    else
      printf '%-24s stopped\n' "$c"; rc=3
    fi
  done
  if docker_ok; then printf '%-24s running\n' docker; else printf '%-24s not reachable\n' docker; rc=3; fi
  if api_healthy && node_ready; then
    printf '%-24s Ready\n' "node/$NODE_NAME"
  else
    printf '%-24s not ready\n' "node/$NODE_NAME"; rc=3
  fi
  return $rc
}

cmd_env() {
  echo "export KUBECONFIG=$STATE/admin.kubeconfig"
  echo "export PATH=$BIN:\$PATH"
}

case "${1:-}" in
  build) cmd_build ;;
  start) cmd_start_retrying ;;
  start-once) cmd_start ;;
  stop) cmd_stop ;;
  restart) cmd_stop; cmd_start_retrying ;;
  status) cmd_status ;;
  env) cmd_env ;;
  kubectl) shift; exec "$BIN/kubectl" --kubeconfig "$STATE/admin.kubeconfig" "$@" ;;
  reset) cmd_stop; rm -rf "$STATE"; log "removed $STATE" ;;
  *) echo "usage: $0 build|start|stop|restart|status|env|kubectl ARGS...|reset" >&2; exit 2 ;;
esac
