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
t0=$(now); dd if=/dev/zero of="$WORK/ddtest" bs=1M count=$((total / 1048576)) 2>/dev/null; t1=$(now); rm -f "$WORK/ddtest"
dd_mb=$(mb "$total" "$(secs "$t0" "$t1")")

# Single-layer stream: verify with one rayon thread, so the per-stream speed is visible.
t0=$(now); RAYON_NUM_THREADS=1 "$BIN" -q --root "$WORK/data-root" verify > /dev/null; t1=$(now)
stream_mb=$(mb "$total" "$(secs "$t0" "$t1")")

echo "layer bytes:                $total in $LAYERS layer(s)"
echo "sha256 floor (openssl, 1 core): $floor MB/s"
echo "salvor verify (1 thread):    $stream_mb MB/s  ratio to floor $(python3 -c "print(f'{$stream_mb/$floor:.2f}')")"
echo "salvor verify (all cores):   $verify_mb MB/s  ratio to floor $(python3 -c "print(f'{$verify_mb/$floor:.2f}')")  peak RSS $(cat "$WORK/rss-verify") KiB"
echo "salvor extract (to stdout, discarded): $stdout_mb MB/s  ratio to floor $(python3 -c "print(f'{$stdout_mb/$floor:.2f}')")  (CPU-bound: archive sha256 on a helper thread)"
echo "disk write ceiling (dd):     $dd_mb MB/s"
echo "salvor extract (tar):        $extract_mb MB/s  ratio to floor $(python3 -c "print(f'{$extract_mb/$floor:.2f}')")  peak RSS $(cat "$WORK/rss-extract") KiB"

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
