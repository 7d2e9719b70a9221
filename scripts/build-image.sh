#!/usr/bin/env bash
# Build a small local Docker image from host binaries, without any registry.
#
#   scripts/build-image.sh NAME[:TAG] [--with-python] [--with-site-packages]
#                          [--with-package MODULE]... [--add SRC:DEST]... [--force]
#
# The rootfs holds the host's /bin/sh and a few coreutils, iptables/ip/nc/ss when
# present (each binary plus the shared libraries ldd reports and the dynamic
# loader). --with-python adds the host python3 (its prefix, stdlib without tests)
# at the same absolute path, linked as /usr/bin/python3. --with-site-packages adds
# all of the host's site-packages (large: slow); --with-package MODULE adds only
# that importable top-level module/package (plus its *.dist-info), e.g. for the
# pure-Python deps of the fault proxy or demo service. The rootfs is built under
# $CHAOSRUNNER_RIG_DIR/images/ (removed once imported) and piped into `docker import`.
# Skips when the image already exists, unless --force.
set -euo pipefail

RIG="${CHAOSRUNNER_RIG_DIR:-/var/tmp/chaosrunner-rig}"
PYTHON="${CHAOSRUNNER_IMAGE_PYTHON:-python3}"

die() { printf '[build-image] ERROR: %s\n' "$*" >&2; exit 1; }
log() { printf '[build-image] %s\n' "$*" >&2; }

usage() {
  sed -n '4,5p' "$0" | sed 's/^# *//' >&2
  exit 2
}

name="" with_python=0 with_site=0 force=0
adds=() modules=()
while (($#)); do
  case "$1" in
    --with-python) with_python=1 ;;
    --with-site-packages) with_python=1 with_site=1 ;;
    --with-package) [[ $# -ge 2 ]] || usage; with_python=1; modules+=("$2"); shift ;;
    --add)
      [[ $# -ge 2 && $2 == *:* ]] || usage
      [[ -e ${2%%:*} ]] || die "--add: ${2%%:*} does not exist"
      [[ ${2#*:} == /* ]] || die "--add: destination must be absolute: ${2#*:}"
      adds+=("$2")
      shift
      ;;
    --force) force=1 ;;
    -h | --help) usage ;;
    -*) die "unknown option $1" ;;
    *) [[ -z $name ]] || usage; name=$1 ;;
  esac
  shift
done
[[ -n $name ]] || usage
[[ $name == *:* ]] || name="$name:latest"

command -v docker >/dev/null || die "docker client not found"
docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
  die "docker daemon not answering: run scripts/services.sh start docker"

old_id="$(docker image inspect --format '{{.Id}}' "$name" 2>/dev/null || true)"
if ((!force)) && [[ -n $old_id ]]; then
  log "$name exists (use --force to rebuild)"
  exit 0
fi

work="$RIG/images/${name//[:\/]/_}"
root="$work/rootfs"
rm -rf "$work"
mkdir -p "$root"/{usr/bin,usr/sbin,usr/lib,usr/lib64,etc,tmp,root,proc,sys,dev,run,var/tmp}
chmod 1777 "$root/tmp" "$root/var/tmp"
# merged-/usr layout like the host (Debian 12)
ln -s usr/bin "$root/bin"
ln -s usr/sbin "$root/sbin"
ln -s usr/lib "$root/lib"
ln -s usr/lib64 "$root/lib64"

declare -A copied=()
bins=()

# copy one host file (dereferenced) to the same path in the rootfs
copy_file() {
  local src=$1 dest="${2:-$1}"
  [[ -z ${copied[$dest]:-} ]] || return 0
  copied[$dest]=1
  mkdir -p "$root$(dirname "$dest")"
  cp -L "$src" "$root$dest"
}

# copy the shared libraries (and loader) that ldd reports for the files "$@"
# (one ldd run for all of them: it is the slow part)
copy_libs() {
  local lib
  (($#)) || return 0
  while read -r lib; do
    [[ -n $lib && -e $lib ]] && copy_file "$lib"
  done < <(ldd "$@" 2>/dev/null | grep -E '^\s' | grep -oE '(=> )?/[^ ]+' | sed 's/^=> //' | sort -u)
}

# copy a host command (by name) into /usr/bin or /usr/sbin with its libraries
copy_cmd() {
  local cmd=$1 path dir
  path="$(PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin command -v "$cmd" 2>/dev/null)" || return 0
  [[ $path == /* ]] || return 0
  case "$path" in */sbin/*) dir=/usr/sbin ;; *) dir=/usr/bin ;; esac
  copy_file "$path" "$dir/$cmd"
  bins+=("$path")
}

for c in sh bash cat ls echo sleep mkdir rm cp mv ln env true false id hostname \
  head tail wc date kill uname touch chmod grep sed ps printf test sort tr seq timeout; do
  copy_cmd "$c"
done
for c in iptables iptables-save iptables-restore ip6tables ip ss nc ping; do copy_cmd "$c"; done
copy_libs "${bins[@]}"
# iptables loads its match/target extensions with dlopen: ldd does not list them
for xt in /usr/lib/x86_64-linux-gnu/xtables /usr/lib/xtables; do
  if [[ -d $xt && -n ${copied[/usr/sbin/iptables]:-} ]]; then
    mkdir -p "$root$xt"
    cp -a "$xt/." "$root$xt/"
    copy_libs "$xt"/*.so
  fi
done

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/sh
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
echo 'hosts: files dns' >"$root/etc/nsswitch.conf"
for f in /etc/protocols /etc/services; do [[ -f $f ]] && copy_file "$f"; done

changes=(--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  --change 'WORKDIR /')

if ((with_python)); then
  read -r prefix exe ver < <("$PYTHON" -c 'import sys,os;print(sys.base_prefix, os.path.realpath(sys._base_executable), "%d.%d" % sys.version_info[:2])')
  stdlib="lib/python$ver"
  copy_file "$exe"
  copy_libs "$exe"
  # stdlib without tests, tk, idle, the static lib; only plain .pyc caches
  tar -C "$prefix" -cf - \
    --exclude="$stdlib/site-packages" --exclude="$stdlib/test" --exclude="$stdlib/config-*" \
    --exclude="$stdlib/idlelib" --exclude="$stdlib/tkinter" --exclude="$stdlib/turtledemo" \
    --exclude="$stdlib/ensurepip" --exclude="$stdlib/lib2to3" --exclude='*/tests' \
    --exclude='*.opt-1.pyc' --exclude='*.opt-2.pyc' \
    "$stdlib" | tar -C "$root" --no-same-owner -xf - --transform "s,^,${prefix#/}/,"
  mkdir -p "$root$prefix/$stdlib/site-packages"
  copy_libs "$prefix/$stdlib"/lib-dynload/*.so
  if ((with_site)); then
    log "copying all of site-packages (large)"
    tar -C "$prefix" -cf - --exclude='*.opt-?.pyc' "$stdlib/site-packages" |
      tar -C "$root" --no-same-owner -xf - --transform "s,^,${prefix#/}/,"
    find "$prefix/$stdlib/site-packages" -name '*.so' -print0 | xargs -0 -r ldd 2>/dev/null |
      grep -E '^\s' | grep -oE '(=> )?/[^ ]+' | sed 's/^=> //' | sort -u | while read -r lib; do
      [[ -e $lib && ! -e $root$lib ]] && { mkdir -p "$root$(dirname "$lib")"; cp -L "$lib" "$root$lib"; }
    done
  fi
  if ((${#modules[@]})); then
    # each module's own files and its distribution metadata, from the host install
    mod_paths="$("$PYTHON" - "${modules[@]}" <<'PY'
import importlib.metadata as md
import importlib.util
import sys

dists = md.packages_distributions()
for name in sys.argv[1:]:
    spec = importlib.util.find_spec(name)
    if spec is None:
        sys.exit(f"module {name!r} is not importable on the host")
    loc = spec.submodule_search_locations
    print(next(iter(loc)) if loc else spec.origin)
    for dist in dists.get(name, []):
        path = getattr(md.distribution(dist), "_path", None)
        if path:
            print(path)
PY
    )" || die "--with-package: a module is not importable by $PYTHON"
    while IFS= read -r p; do
      [[ -n $p ]] || continue
      cp -a "$p" "$root$prefix/$stdlib/site-packages/$(basename "$p")"
      mapfile -t sos < <(find "$p" -name '*.so')
      copy_libs "${sos[@]}"
    done <<<"$mod_paths"
  fi
  ln -sf "$exe" "$root/usr/bin/python3"
  ln -sf "$exe" "$root/usr/bin/python"
  changes+=(--change 'ENV PYTHONUNBUFFERED=1' --change 'ENV PYTHONDONTWRITEBYTECODE=1')
fi

for a in "${adds[@]}"; do
  src=${a%%:*} dest=${a#*:}
  mkdir -p "$root$(dirname "$dest")"
  cp -a "$src" "$root$dest"
done

changes+=(--change 'CMD ["/bin/sh"]' --change 'LABEL org.chaosrunner.rig-image=1')
log "importing $name from $root ($(du -sh "$root" | cut -f1))"
tar -C "$root" --numeric-owner -cf - . | docker import "${changes[@]}" - "$name" >/dev/null
rm -rf "$work"
# a rebuild leaves the previous image untagged: drop it unless a container uses it
if [[ -n $old_id ]]; then docker rmi "$old_id" >/dev/null 2>&1 || true; fi
log "built $name"
