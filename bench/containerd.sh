#!/usr/bin/env bash
# Measurement (no assertions): salvor reading Docker 26.1.5's containerd image store offline
# against the engine answering the same questions live.
#
#   bash bench/containerd.sh            # as root; ~1 min after the release build
#
# 1. Unpacks fixtures/engine/docker26-containerd/data-root.tar.zst (zstd + tar --xattrs) into a
#    temporary directory: the evidence salvor reads.
# 2. Starts a private dockerd 26.1 (get-docker26.sh's; containerd image store) over a COPY of
#    that data-root (in a private mount namespace, /run/containerd a tmpfs there, stopped by its
#    pid at the end): the engine whose store it is, with its own containerd (namespace moby).
# 3. hyperfine (-N, warm cache, --warmup 3, >= 20 runs; best-of-5 with date if hyperfine is
#    missing) of
#      salvor images                     vs docker images, ctr -n moby images ls
#      salvor verify                     vs ctr -n moby images check (containerd has no content
#                                           verify: check only asks that every blob is there),
#                                           and the sha256 floor: sha256sum of every blob
#      salvor extract salvor/app:1 -o -  vs docker save salvor/app:1, ctr -n moby images export,
#                                           and the read floor: cat of the image's blobs
#    stdout discarded (hyperfine's default). The store is small (a few MB): the times are the
#    start-up and metadata costs of each tool, not its byte rate.
# Environment: SALVOR_BIN (a salvor binary to use instead of building target/release/salvor),
# SALVOR_BENCH_KEEP=1 (keep the temporary directory).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"
[ "$(id -u)" = 0 ] || { echo "run as root (the engine; the store's files are root's)" >&2; exit 1; }

if [ -z "${SALVOR_BIN:-}" ]; then
    cargo build --release -j1 -q -p salvor --bins
    SALVOR_BIN="${CARGO_TARGET_DIR:-$REPO/target}/release/salvor"
fi
SALVOR_BIN="$(readlink -f "$SALVOR_BIN")"
BIN="$(bash fixtures/engine/get-docker26.sh 2>/dev/null)"
CTR="$BIN/ctr"

W="$(mktemp -d /tmp/salvor-bench-cd.XXXXXX)"
EV="$W/evidence"          # what salvor reads (never written)
D="$W/engine"             # the engine's copy, exec-root, sockets, log
SOCK="$D/docker.sock"
CSOCK="$D/exec/containerd/containerd.sock"
EPID=

alive() { [ -e "/proc/$1" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
stop_engine() {
    [ -n "$EPID" ] || return 0
    local i
    if alive "$EPID"; then
        kill -TERM "$EPID" 2>/dev/null || true
        for i in $(seq 120); do alive "$EPID" || break; sleep 0.25; done
        alive "$EPID" && { echo "dockerd $EPID: SIGKILL" >&2; kill -KILL "$EPID" 2>/dev/null || true; }
    fi
    wait "$EPID" 2>/dev/null || true
    local cp
    cp="$(cat "$D/exec/containerd/containerd.pid" 2>/dev/null || true)"
    if [ -n "$cp" ] && alive "$cp" && [ "$(readlink -f "/proc/$cp/exe")" = "$(readlink -f "$BIN/containerd")" ]; then
        kill -TERM "$cp" 2>/dev/null || true
        for i in $(seq 40); do alive "$cp" || break; sleep 0.25; done
    fi
    EPID=
}
cleanup() {
    local rc=$?
    stop_engine || true
    if [ "${SALVOR_BENCH_KEEP:-0}" = 1 ]; then echo "kept $W" >&2; else rm -rf "$W"; fi
    exit "$rc"
}
trap cleanup EXIT

# ---------------------------------------------------------------- 1. the evidence
mkdir -p "$EV/data-root" "$D"
zstd -dc fixtures/engine/docker26-containerd/data-root.tar.zst \
    | tar --xattrs --xattrs-include='*' --numeric-owner -xf - -C "$EV/data-root"
R="$EV/data-root"
S=("$SALVOR_BIN" -q --root "$R")
BLOBS="$R/containerd/daemon/io.containerd.content.v1.content/blobs/sha256"

# ---------------------------------------------------------------- 2. the engine, over a copy
cp -a "$R" "$D/data-root"
echo '{"features":{"containerd-snapshotter":true}}' > "$D/daemon.json"
mkdir -p "$D/client-config"; echo '{}' > "$D/client-config/config.json"
export DOCKER_HOST="unix://$SOCK" DOCKER_CONFIG="$D/client-config"
unset DOCKER_CONTEXT DOCKER_TLS_VERIFY DOCKER_CERT_PATH
cat > "$D/ns-init.sh" <<EOF
set -e
mkdir -p /run/containerd
mount -t tmpfs -o mode=0711 salvor-bench-run /run/containerd
exec "$BIN/dockerd" --config-file "$D/daemon.json" --data-root "$D/data-root" --exec-root "$D/exec" \\
    --pidfile "$D/dockerd.pid" -H "unix://$SOCK" \\
    --bridge=none --iptables=false --ip6tables=false --ip-masq=false --ip-forward=false \\
    --userland-proxy=false --log-driver json-file
EOF
PATH="$BIN:$PATH" unshare --mount --propagation private -- sh "$D/ns-init.sh" > "$D/dockerd.log" 2>&1 &
EPID=$!
for _ in $(seq 120); do
    docker version >/dev/null 2>&1 && break
    alive "$EPID" || { echo "dockerd died:" >&2; tail -20 "$D/dockerd.log" >&2; exit 1; }
    sleep 0.25
done
ENGINE="$(docker version --format '{{.Server.Version}}') ($(docker info --format '{{.Driver}}'))"
C=("$CTR" --address "$CSOCK" -n moby)
"${C[@]}" version >/dev/null
# the engine knows the store it was given: same images as salvor lists
n_docker="$(docker images -a -q --no-trunc | sort -u | wc -l)"
n_salvor="$("${S[@]}" images -a --json | jq 'length')"

# ---------------------------------------------------------------- 3. measurements
# the blobs of salvor/app:1 (the archive's members under blobs/sha256/), in the content store
"${S[@]}" extract salvor/app:1 -o "$W/app.tar"
mapfile -t APP_BLOBS < <(tar -tf "$W/app.tar" | sed -n 's|^blobs/sha256/||p' | grep . | sed "s|^|$BLOBS/|")
app_bytes=0; for f in "${APP_BLOBS[@]}"; do app_bytes=$((app_bytes + $(stat -c %s "$f"))); done
mapfile -t ALL_BLOBS < <(find "$BLOBS" -type f | sort)
all_bytes=0; for f in "${ALL_BLOBS[@]}"; do all_bytes=$((all_bytes + $(stat -c %s "$f"))); done
cat "${ALL_BLOBS[@]}" > /dev/null   # warm

ROWS="$W/rows"; : > "$ROWS"
# measure <label> <bytes or 0> <command...>: mean / min / stddev in ms
measure() {
    local label="$1" bytes="$2"; shift 2
    local mean min sd
    if command -v hyperfine >/dev/null; then
        local q="" a
        for a in "$@"; do q+="$(printf '%q ' "$a")"; done
        hyperfine -N --style none --warmup 3 --min-runs 20 --export-json "$W/h.json" "$q" >/dev/null 2>&1 \
            || { echo "$label: failed: $*" >&2; "$@" >/dev/null; return 1; }
        read -r mean min sd < <(jq -r '.results[0] | "\(.mean*1000) \(.min*1000) \(.stddev*1000)"' "$W/h.json")
    else
        local best="" t0 t1 s
        for _ in 1 2 3 4 5; do
            t0=$(date +%s%N); "$@" >/dev/null; t1=$(date +%s%N)
            s=$(( (t1 - t0) / 1000 )); best=$(( ${best:-$s} < s ? ${best:-$s} : s ))
        done
        mean=$(awk -v b="$best" 'BEGIN{print b/1000}'); min=$mean; sd=0
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$mean" "$min" "$sd" "$bytes" "${SHOW:-$*}" >> "$ROWS"
}

measure "salvor images"            0 "${S[@]}" images
measure "salvor images -a --json"  0 "${S[@]}" images -a --json
measure "docker images"            0 docker images
measure "docker images -a"         0 docker images -a
measure "ctr -n moby images ls"    0 "${C[@]}" images ls
measure "salvor verify"            "$all_bytes" "${S[@]}" verify
measure "ctr -n moby images check" 0 "${C[@]}" images check
SHOW="sha256sum \$BLOBS/* (${#ALL_BLOBS[@]} files)" \
measure "sha256sum all blobs"      "$all_bytes" sha256sum "${ALL_BLOBS[@]}"
measure "salvor extract app:1 -o -" "$app_bytes" "${S[@]}" extract salvor/app:1 -o -
measure "docker save app:1"        "$app_bytes" docker save salvor/app:1
measure "ctr images export app:1"  "$app_bytes" "${C[@]}" images export /dev/null docker.io/salvor/app:1
SHOW="cat \$BLOBS/{the ${#APP_BLOBS[@]} blobs of app:1's archive}" \
measure "cat app:1 blobs (floor)"  "$app_bytes" cat "${APP_BLOBS[@]}"

# ---------------------------------------------------------------- table
echo "salvor $("$SALVOR_BIN" --version | awk '{print $2}') (release: $SALVOR_BIN)"
echo "engine: dockerd $ENGINE over a copy of the fixture's data-root; its containerd $("${C[@]}" version | awk '/Version:/{print $2; exit}')"
echo "images in the store: salvor $n_salvor, docker $n_docker (-a, unique ids)"
echo "blobs: $(( ${#ALL_BLOBS[@]} )) in the content store, $all_bytes bytes; salvor/app:1: ${#APP_BLOBS[@]} blobs, $app_bytes bytes"
echo "hyperfine -N --warmup 3 --min-runs 20, warm page cache, stdout discarded"
echo
awk -F'\t' 'BEGIN { printf "%-28s %10s %10s %9s %10s\n", "what", "mean ms", "min ms", "± ms", "MB/s(min)" }
    { mbs = ($5 > 0 && $3 > 0) ? sprintf("%.0f", $5 / 1e6 / ($3 / 1000)) : "-";
      printf "%-28s %10.2f %10.2f %9.2f %10s\n", $1, $2, $3, $4, mbs }' "$ROWS"
echo
echo "commands (\$BLOBS = \$TMP/evidence/data-root/containerd/daemon/io.containerd.content.v1.content/blobs/sha256):"
awk -F'\t' '{ printf "  %-28s %s\n", $1, $6 }' "$ROWS" | sed "s|$W|\$TMP|g"
