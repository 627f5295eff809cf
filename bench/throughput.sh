#!/usr/bin/env bash
# Throughput benchmark for layer rebuilding.
#
#   bash bench/throughput.sh [TOTAL_MIB] [LAYERS]
#
# 1. Builds a synthetic overlay2 data-root (examples/synth_data_root.rs) with TOTAL_MIB of
#    file data in LAYERS layers, plus each layer's tar for reference.
# 2. Floor: `openssl dgst -sha256` over one layer tar (single core), MB/s.
# 3. salvor: `verify` (rebuild + CRC + sha256 of every layer, rayon across layers) and
#    `extract` to a tar; MB/s of layer bytes and the ratio to the floor; peak RSS.
# 4. Where a Docker engine answers: loads salvor's archive into the engine and times
#    `docker save` of the same image; reports salvor's speed-up.
# No timing is asserted anywhere; this prints numbers for humans.
set -euo pipefail
cd "$(dirname "$0")/.."
MIB=${1:-2048}
LAYERS=${2:-2}
WORK=${SALVOR_BENCH_DIR:-/tmp/salvor-bench}
mkdir -p "$WORK"
cargo build --release -q --example synth_data_root
cargo build --release -q
BIN=target/release/salvor
if [ ! -f "$WORK/.done-$MIB-$LAYERS" ]; then
    rm -rf "$WORK"/* "$WORK"/.done-* "$WORK/fs.img"
    target/release/examples/synth_data_root "$WORK" "$MIB" "$LAYERS" > "$WORK/image-id"
    touch "$WORK/.done-$MIB-$LAYERS"
fi
total=0; for t in "$WORK"/layer-*.tar; do total=$((total + $(stat -c %s "$t"))); done
mb() { python3 -c "import sys; print(f'{$1/1e6/$2:.0f}')"; }
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2-$1:.3f}')"; }
# Seconds of the fastest of three `extract` runs from evidence $1 (to stdout, discarded).
best3() {
    local best="" t0 t1 s
    for _ in 1 2 3; do
        t0=$(now); "$BIN" -q --root "$1" extract bench:latest -o - > /dev/null; t1=$(now)
        s=$(secs "$t0" "$t1")
        best=$(python3 -c "print(min($s, ${best:-$s}))")
    done
    echo "$best"
}

# Warm the page cache so that we measure CPU, not the disk, for all contenders.
cat "$WORK"/layer-*.tar > /dev/null
find "$WORK/data-root" -type f -exec cat {} + > /dev/null

one=$(ls "$WORK"/layer-*.tar | head -1); one_size=$(stat -c %s "$one")
t0=$(now); openssl dgst -sha256 "$one" > /dev/null; t1=$(now)
floor=$(mb "$one_size" "$(secs "$t0" "$t1")")

t0=$(now); /usr/bin/time -f "%M" -o "$WORK/rss-verify" "$BIN" -q --root "$WORK/data-root" verify > /dev/null; t1=$(now)
verify_s=$(secs "$t0" "$t1"); verify_mb=$(mb "$total" "$verify_s")

rm -f "$WORK/out.tar"
t0=$(now); /usr/bin/time -f "%M" -o "$WORK/rss-extract" "$BIN" -q --root "$WORK/data-root" extract bench:latest -o "$WORK/out.tar" > /dev/null; t1=$(now)
extract_s=$(secs "$t0" "$t1"); extract_mb=$(mb "$total" "$extract_s")

t0=$(now); "$BIN" -q --root "$WORK/data-root" extract bench:latest -o - > /dev/null; t1=$(now)
stdout_mb=$(mb "$total" "$(secs "$t0" "$t1")")
# The write floor: the same number of bytes to a file on the same disk, synced at the end
# as salvor syncs its archive (dd conv=fsync).
t0=$(now); dd if=/dev/zero of="$WORK/ddtest" bs=1M count=$((total / 1048576)) conv=fsync 2>/dev/null; t1=$(now); rm -f "$WORK/ddtest"
dd_mb=$(mb "$total" "$(secs "$t0" "$t1")")

# Single-layer stream: verify with one rayon thread, so the per-stream speed is visible.
t0=$(now); RAYON_NUM_THREADS=1 "$BIN" -q --root "$WORK/data-root" verify > /dev/null; t1=$(now)
stream_mb=$(mb "$total" "$(secs "$t0" "$t1")")

echo "layer bytes:                $total in $LAYERS layer(s)"
echo "sha256 floor (openssl, 1 core): $floor MB/s"
echo "salvor verify (1 thread):    $stream_mb MB/s  ratio to floor $(python3 -c "print(f'{$stream_mb/$floor:.2f}')")"
echo "salvor verify (all cores):   $verify_mb MB/s  ratio to floor $(python3 -c "print(f'{$verify_mb/$floor:.2f}')")  peak RSS $(cat "$WORK/rss-verify") KiB"
echo "salvor extract (to stdout, discarded): $stdout_mb MB/s  ratio to floor $(python3 -c "print(f'{$stdout_mb/$floor:.2f}')")  (CPU-bound: archive sha256 on a helper thread)"
echo "write floor (dd conv=fsync): $dd_mb MB/s"
echo "salvor extract (tar file):   $extract_mb MB/s  ratio to the sha256 floor $(python3 -c "print(f'{$extract_mb/$floor:.2f}')"), to the write floor $(python3 -c "print(f'{$extract_mb/$dd_mb:.2f}')"), to the slower of the two $(python3 -c "print(f'{$extract_mb/min($floor,$dd_mb):.2f}')")  peak RSS $(cat "$WORK/rss-extract") KiB"

# The same data-root on an ext4 filesystem image, read through salvor's own ext4 reader.
if command -v mke2fs >/dev/null; then
    if [ ! -f "$WORK/fs.img" ]; then
        mke2fs -q -t ext4 -d "$WORK/data-root" "$WORK/fs.img" "$(( total / 1048576 + 512 ))M"
    fi
    cat "$WORK/fs.img" > /dev/null
    dir_s=$(best3 "$WORK/data-root"); img_s=$(best3 "$WORK/fs.img")
    echo "extract from an ext4 image:  $(mb "$total" "$img_s") MB/s vs $(mb "$total" "$dir_s") MB/s from the directory: ratio $(python3 -c "print(f'{$dir_s/$img_s:.2f}')") (best of 3 each)"
fi

# The same on XFS, written by the kernel through a loop mount (root only; mkfs.xfs cannot
# populate a filesystem itself), read through salvor's own XFS reader.
if command -v mkfs.xfs >/dev/null && [ "$(id -u)" = 0 ]; then
    if [ ! -f "$WORK/xfs.img" ]; then
        truncate -s "$(( total / 1048576 + 1024 ))M" "$WORK/xfs.img"
        mkdir -p "$WORK/xmnt"
        if mkfs.xfs -q "$WORK/xfs.img" && mount -o loop "$WORK/xfs.img" "$WORK/xmnt" 2>/dev/null; then
            cp -a "$WORK/data-root/." "$WORK/xmnt/"
            umount "$WORK/xmnt"
        else
            rm -f "$WORK/xfs.img"
        fi
    fi
    if [ -f "$WORK/xfs.img" ]; then
        cat "$WORK/xfs.img" > /dev/null
        dir_s=$(best3 "$WORK/data-root"); img_s=$(best3 "$WORK/xfs.img")
        echo "extract from an XFS image:   $(mb "$total" "$img_s") MB/s vs $(mb "$total" "$dir_s") MB/s from the directory: ratio $(python3 -c "print(f'{$dir_s/$img_s:.2f}')") (best of 3 each)"
    else
        echo "extract from an XFS image:   (no loop mount here; not measured)"
    fi
fi

if bash fixtures/engine/check-engine.sh >/dev/null 2>&1; then
    docker load -q -i "$WORK/out.tar" > /dev/null
    rm -f "$WORK/docker-save.tar"
    t0=$(now); docker save -o "$WORK/docker-save.tar" bench:latest; t1=$(now)
    save_s=$(secs "$t0" "$t1")
    echo "docker save:                 $(mb "$total" "$save_s") MB/s ($save_s s vs salvor extract $extract_s s: salvor is $(python3 -c "print(f'{$save_s/$extract_s:.2f}')")x faster)"
    docker rmi -f bench:latest > /dev/null || true
    rm -f "$WORK/docker-save.tar"
else
    echo "docker save:                 (no engine answers; not measured)"
fi
rm -f "$WORK/out.tar"

# Many small files: the Debian bookworm minbase image of fixtures/engine/make-debian.sh
# (one layer of ~5,300 files), when that fixture has been made on this machine.
DEB=${SALVOR_DEBIAN_FIXTURES:-/var/cache/salvor-oracle/debian}/debian-20.10/data-root
if [ -d "$DEB" ]; then
    img=salvor/debian:bookworm
    diff="$DEB$("$BIN" -q --root "$DEB" inspect "$img" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["GraphDriver"]["Data"]["UpperDir"])')"
    nfiles=$(find "$diff" | wc -l)
    find "$diff" -type f -exec cat {} + > /dev/null
    best() { # best of 3 wall-clock seconds of the shell command $1
        local b="" t0 t1 s
        for _ in 1 2 3; do
            t0=$(now); bash -c "$1"; t1=$(now); s=$(secs "$t0" "$t1")
            b=$(python3 -c "print(min($s, ${b:-$s}))")
        done
        echo "$b"
    }
    floor_s=$(best "tar -c -C '$diff' . | openssl dgst -sha256 > /dev/null")
    ours_s=$(best "'$BIN' -q --root '$DEB' extract '$img' -o - > /dev/null")
    echo "small files ($nfiles entries, Debian minbase):"
    echo "  floor (tar -c DIR | openssl dgst -sha256): ${floor_s} s"
    echo "  salvor extract -o -:        ${ours_s} s, $(python3 -c "print(f'{$nfiles/$ours_s:.0f}')") files/s, ratio to floor $(python3 -c "print(f'{$floor_s/$ours_s:.2f}')")"
    if command -v strace > /dev/null; then
        strace -c -f -o "$WORK/strace-deb" "$BIN" -q --root "$DEB" extract "$img" -o - > /dev/null
        python3 - "$WORK/strace-deb" "$nfiles" <<'PY'
import sys
calls = {}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) >= 5 and f[-1].isidentifier() and f[3].isdigit():
        calls[f[-1]] = int(f[3])
n = int(sys.argv[2])
stat = sum(calls.get(k, 0) for k in ("statx", "newfstatat", "fstat", "lstat", "stat"))
print(f"  syscalls per file:          openat {calls.get('openat', 0)/n:.2f}, stat family {stat/n:.2f}, read {calls.get('read', 0)/n:.2f}")
PY
    fi
    if bash fixtures/engine/check-engine.sh >/dev/null 2>&1; then
        "$BIN" -q --root "$DEB" extract "$img" -o "$WORK/deb.tar"
        docker load -q -i "$WORK/deb.tar" > /dev/null
        save_s=$(best "docker save -o '$WORK/deb-save.tar' '$img'")
        echo "  docker save:                ${save_s} s: salvor is $(python3 -c "print(f'{$save_s/$ours_s:.2f}')")x faster"
        docker rmi -f "$img" > /dev/null || true
        rm -f "$WORK/deb.tar" "$WORK/deb-save.tar"
    fi
else
    echo "small files: (no Debian fixture at $DEB; make it with fixtures/engine/make-debian.sh 20.10)"
fi
