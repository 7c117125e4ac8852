#!/usr/bin/env bash
# Proves the Dockerfile builds and runs with no image registry, as root, with no container
# engine: a local Debian bookworm base made by mmdebstrap and imported with buildah, the real
# Dockerfile built on it with `buildah bud --isolation chroot`, then the image checked:
#   - `scaler --help`, `scaler config check`, `scaler simulate --json` run as the image's
#     user (10001) with `buildah run`, and again in a read-only root with only /tmp writable,
#     where `scaler proxy` must also start and serve /metrics;
#   - the entrypoint, command, ports and user are the ones docs/image.md promises;
#   - no compilers, pip or build tools, and nothing owned by or writable for the user;
# and prints the image size. Python packages come from PyPI, Debian packages from the mirror.
#
# Environment:
#   CACHE_DIR   where the base rootfs tarball is cached, keyed by its package list
#               (pip's cache is the Dockerfile's cache mount, which buildah keeps itself)
#               (default: ${XDG_CACHE_HOME:-~/.cache}/scaler-image)
#   IMAGE       the tag to build (default: localhost/scaler:test)
#   KEEP_IMAGE  1 keeps the built image afterwards (default: removed)
#   PROXY_PORT  a free local port for the `scaler proxy` check (default: 18434)
#   HOST_CA     a CA bundle the build stage's pip trusts, for TLS-intercepting egress
#               (default: $PIP_CERT, else /etc/ssl/certs/ca-certificates.crt when present);
#               given to the build stage as a secret, never copied into the image
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${IMAGE:-localhost/scaler:test}
KEEP_IMAGE=${KEEP_IMAGE:-0}
CACHE_DIR=${CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/scaler-image}
SUITE=bookworm
BASE_IMAGE=localhost/scaler-base:$SUITE
# The smallest base that works: Debian's essential packages (no apt: the Dockerfile installs
# nothing from Debian) plus python3-venv, which brings the full standard library and
# ensurepip's wheels (ca-certificates comes with them). Merged /usr without the usrmerge
# package, which would pull in perl.
BASE_PACKAGES=python3-minimal,python3-venv
UID_EXPECTED=10001
export PROXY_PORT=${PROXY_PORT:-18434}  # where `scaler proxy` listens during the check

say() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
started=$SECONDS

[ "$(id -u)" -eq 0 ] || fail "run as root (buildah --isolation chroot and mmdebstrap need it)"

# 1. Tools, from Debian, only when missing.
missing=()
command -v buildah >/dev/null || missing+=(buildah)
command -v mmdebstrap >/dev/null || missing+=(mmdebstrap)
if [ ${#missing[@]} -gt 0 ]; then
    say "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi

# Everything this run creates is removed on exit, however it exits.
work=$(mktemp -d)
containers=()
cleanup() {
    local c
    for c in "${containers[@]}"; do
        buildah umount "$c" >/dev/null 2>&1 || true
        buildah rm "$c" >/dev/null 2>&1 || true
    done
    if [ "$KEEP_IMAGE" != 1 ]; then
        buildah rmi "$IMAGE" >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# 2. The base rootfs, cached under a key made of everything that shapes it.
arch=$(dpkg --print-architecture)
# shellcheck disable=SC2016 # the hook's $1 is expanded by mmdebstrap
mmdebstrap_args=(
    --variant=essential --include="$BASE_PACKAGES" --format=tar
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
    --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-exclude=/usr/share/man/*'
    --dpkgopt='path-exclude=/usr/share/locale/*'
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*'
)
key=$(printf '%s\n' "$SUITE" "$arch" "${mmdebstrap_args[@]}" | sha256sum | cut -c1-16)
rootfs=$CACHE_DIR/rootfs-$SUITE-$arch-$key.tar
if [ -s "$rootfs" ]; then
    say "base rootfs: cached $rootfs"
else
    say "base rootfs: mmdebstrap $SUITE ($BASE_PACKAGES)"
    mkdir -p "$CACHE_DIR"
    mmdebstrap --quiet "${mmdebstrap_args[@]}" "$SUITE" "$rootfs.part" >"$work/mmdebstrap.log" 2>&1 \
        || { cat "$work/mmdebstrap.log" >&2; fail "mmdebstrap"; }
    mv "$rootfs.part" "$rootfs"
fi

# 3. The base image (FROM scratch + the rootfs), re-imported only when the rootfs changed.
label=scaler.base.key
have=$(buildah inspect --type image --format "{{index .OCIv1.Config.Labels \"$label\"}}" \
    "$BASE_IMAGE" 2>/dev/null || true)
if [ "$have" = "$key" ]; then
    say "base image: $BASE_IMAGE (up to date)"
else
    say "base image: import $BASE_IMAGE"
    c=$(buildah from scratch)
    containers+=("$c")
    buildah add --quiet "$c" "$rootfs" / >/dev/null
    buildah config --label "$label=$key" --env LANG=C.UTF-8 \
        --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --cmd python3 "$c"
    buildah rmi "$BASE_IMAGE" >/dev/null 2>&1 || true
    buildah commit --quiet --rm "$c" "$BASE_IMAGE" >/dev/null
    containers=()
fi

# 4. The real Dockerfile, on that base.
say "buildah bud $IMAGE"
build_started=$SECONDS
bud_args=(--isolation chroot --build-arg BASE="$BASE_IMAGE")
host_ca=${HOST_CA:-${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}}
if [ -f "$host_ca" ]; then
    bud_args+=(--secret "id=pip_cert,src=$host_ca")
fi
buildah bud --quiet "${bud_args[@]}" -t "$IMAGE" . >/dev/null
echo "built in $((SECONDS - build_started)) s"

# 5. The image's configuration.
say "image config"
fmt='entrypoint {{.OCIv1.Config.Entrypoint}} cmd {{.OCIv1.Config.Cmd}} user {{.OCIv1.Config.User}}'
config=$(buildah inspect --type image --format "$fmt" "$IMAGE")
echo "$config"
[ "$config" = "entrypoint [scaler] cmd [run] user $UID_EXPECTED:$UID_EXPECTED" ] \
    || fail "entrypoint, cmd or user: $config"
ports=$(buildah inspect --type image --format '{{.OCIv1.Config.ExposedPorts}}' "$IMAGE")
echo "ports $ports"
for p in 8080/tcp 11434/tcp; do
    [[ $ports == *"$p:"* ]] || fail "port $p not exposed: $ports"
done
mapfile -t image_env < <(buildah inspect --type image \
    --format '{{range .OCIv1.Config.Env}}{{println .}}{{end}}' "$IMAGE" | sed '/^$/d')
printf '%s\n' "${image_env[@]}" | grep -qx 'PYTHONUNBUFFERED=1' || fail "PYTHONUNBUFFERED unset"

c=$(buildah from --quiet "$IMAGE")
containers+=("$c")
mnt=$(buildah mount "$c")

# 6. What the image must not hold (checked before anything runs in it).
say "contents"
for tool in gcc cc c++ make ld as pip pip3 python3-config; do
    for dir in usr/bin usr/local/bin bin opt/scaler/bin; do
        [ ! -e "$mnt/$dir/$tool" ] || fail "build tool in the image: /$dir/$tool"
    done
done
[ ! -d "$mnt/opt/build" ] || fail "the build venv is in the image"
[ ! -d "$mnt/src" ] || fail "the sources are in the image"
! compgen -G "$mnt/opt/scaler/lib/python3*/site-packages/pip" >/dev/null || fail "pip in the venv"
caches=$(cd "$mnt" && { find root/.cache tmp var/tmp -mindepth 1 2>/dev/null || true; } | head -5)
[ -z "$caches" ] || fail "leftovers (caches?): $caches"
owned=$(find "$mnt" -xdev \( -uid "$UID_EXPECTED" -o -gid "$UID_EXPECTED" \) -print -quit)
[ -z "$owned" ] || fail "files owned by the user: $owned"
writable=$(find "$mnt" -xdev \( -type f -o -type d \) -perm -o+w ! -perm -1000 -print -quit)
[ -z "$writable" ] || fail "world-writable without sticky bit: $writable"
echo "no compilers, pip, build venv, sources or caches; nothing writable for the user"

# 7. The commands, as the image's user.
say "buildah run --user $UID_EXPECTED"
run() { buildah run --isolation chroot --user "$UID_EXPECTED:$UID_EXPECTED" "$c" -- "$@"; }
[ "$(run id -u)" = "$UID_EXPECTED" ] || fail "not running as $UID_EXPECTED"
run scaler --help >/dev/null
run scaler config check
run scaler simulate --json >"$work/simulate.json"
/usr/bin/python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); assert r["policies"]' \
    "$work/simulate.json" || fail "scaler simulate --json: not the expected JSON"
echo "scaler --help, config check, simulate --json: ok"

# 8. The same in a read-only root with a tmpfs on /tmp, as Kubernetes runs it with
#    readOnlyRootFilesystem: true and an emptyDir on /tmp.
say "read-only root"
ro=$work/ro
mkdir -p "$ro"
# shellcheck disable=SC2016 # the script below gets its values as arguments
unshare --mount --propagation private bash -euo pipefail -c '
    mnt=$1 ro=$2 uid=$3; shift 3
    image_env=("$@")
    mount --bind "$mnt" "$ro"
    mount -o remount,bind,ro "$ro"
    mount -t tmpfs -o mode=1777 tmpfs "$ro/tmp"
    mount -t proc proc "$ro/proc"
    mount --rbind /dev "$ro/dev"
    in_image() { chroot --userspec="$uid:$uid" "$ro" /usr/bin/env -i "${image_env[@]}" "$@"; }
    chroot "$ro" /usr/bin/touch /probe 2>/dev/null && { echo "root is writable"; exit 1; }
    in_image /usr/bin/touch /tmp/probe
    in_image scaler --help >/dev/null
    in_image scaler config check >/dev/null
    in_image scaler simulate --json >/dev/null
    # The sidecar starts and serves its metrics (no Ollama behind it: that is enough here).
    # The port must be free, or the check below would talk to someone else.
    if /usr/bin/python3 -c "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)" \
        "$PROXY_PORT" 2>/dev/null; then echo "port $PROXY_PORT is already in use"; exit 1; fi
    # chroot execs env, which execs python: $! is the proxy itself, so kill reaches it.
    chroot --userspec="$uid:$uid" "$ro" /usr/bin/env -i "${image_env[@]}" \
        scaler proxy --host 127.0.0.1 --port "$PROXY_PORT" \
        --upstream http://127.0.0.1:9 --log-level warning &
    pid=$!
    url=http://127.0.0.1:$PROXY_PORT/metrics
    for _ in $(seq 100); do
        if /usr/bin/python3 -c "import sys, urllib.request as u; u.urlopen(sys.argv[1], timeout=1)" \
            "$url" 2>/dev/null; then served=1; break; fi
        sleep 0.1
    done
    kill "$pid"; wait "$pid" || true
    [ "${served:-0}" = 1 ] || { echo "scaler proxy did not serve $url"; exit 1; }
' _ "$mnt" "$ro" "$UID_EXPECTED" "${image_env[@]}" || fail "the commands in a read-only root"
echo "read-only root: --help, config check, simulate --json, proxy serving /metrics: ok"

say "size"
buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}' "$IMAGE"
echo "root filesystem $(du -sh "$mnt" | cut -f1), of which the venv /opt/scaler $(du -sh "$mnt/opt/scaler" | cut -f1)"

say "ok in $((SECONDS - started)) s"
