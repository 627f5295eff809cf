#!/usr/bin/env bash
# Seeds the corpora from the shared corpus and the engine fixtures (generated here, never
# committed), builds the cargo-fuzz targets and runs each for SECONDS (default 20).
# cargo-fuzz needs nightly features: RUSTC_BOOTSTRAP=1 enables them on a stable toolchain.
# Exit status: non-zero if any target found a crash (artifacts in fuzz/artifacts/<target>/).
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-20}"
shared="${SALVOR_SHARED:-$(cd ../.. && pwd)/shared}"
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz

seed=$(mktemp -d /tmp/salvor-fuzz-seed.XXXXXX)
trap 'rm -rf "$seed"' EXIT
for t in tarsplit_unpack_assemble tarsplit_disassemble tarsource_index store_open logs_json_file logs_local ext4_walk xfs_walk disk_scan dmthin_pool bbolt_walk containerd_meta; do
    mkdir -p "corpus/$t"
done
# Tars: Go's tar corpus and tar-split's round-trip cases.
tsd="$shared/corpus/tar-split"
if [ -d "$tsd" ]; then
    for f in "$tsd"/archive/tar/testdata/*.tar; do
        [ "$(stat -c %s "$f")" -lt 1000000 ] || continue
        cp "$f" "corpus/tarsplit_disassemble/$(basename "$f")"
        cp "$f" "corpus/tarsource_index/$(basename "$f")"
    done
    for f in "$tsd"/tar/asm/testdata/*.tar.gz; do
        gzip -dc "$f" | head -c 1000000 > "corpus/tarsplit_disassemble/$(basename "$f" .gz)" || true
        cp "$f" "corpus/tarsource_index/$(basename "$f")"
    done
fi
# A decompression bomb (a 64 MiB zero member, a few KB of zstd/gzip) and a cut copy of
# it: the target caps the spool at 16 MiB, so these exercise the spool limit and damage.
if command -v zstd >/dev/null; then
    b="$seed/bomb"; mkdir -p "$b"
    truncate -s 64M "$b/zeros.bin"
    tar -C "$b" -cf - zeros.bin | zstd -q -c > corpus/tarsource_index/bomb.tar.zst
    tar -C "$b" -cf - zeros.bin | gzip -c > corpus/tarsource_index/bomb.tar.gz
    head -c 2000 corpus/tarsource_index/bomb.tar.gz > corpus/tarsource_index/bomb-cut.tar.gz
    rm -f "$b/zeros.bin"
fi
# The engine fixtures: tar-splits, configs, container configs, logs.
for fx in ../fixtures/engine/*/data-root.tar.zst; do
    n=$(basename "$(dirname "$fx")")
    d="$seed/$n"; mkdir -p "$d"
    zstd -dc "$fx" | tar -x -C "$d" --wildcards \
        '*tar-split.json.gz' 'image/*/repositories.json' 'image/*/imagedb/content/sha256/*' \
        'containers/*/config.v2.json' 'containers/*/*-json.log' 2>/dev/null || true
    i=0
    for ts in "$d"/image/*/layerdb/sha256/*/tar-split.json.gz; do
        [ -f "$ts" ] || continue
        i=$((i+1))
        gzip -dc "$ts" > "corpus/tarsplit_unpack_assemble/$n-$i.json"
    done
    cfg=$(ls "$d"/image/*/imagedb/content/sha256/* 2>/dev/null | head -1 || true)
    repo=$(ls "$d"/image/*/repositories.json 2>/dev/null | head -1 || true)
    ts=$(ls "$d"/image/*/layerdb/sha256/*/tar-split.json.gz 2>/dev/null | head -1 || true)
    i=0
    for cv in "$d"/containers/*/config.v2.json; do
        [ -f "$cv" ] || continue
        # store_open wants a graphdriver store (Docker's containerd store has no image/).
        [ -n "$cfg" ] && [ -n "$repo" ] && [ -n "$ts" ] || break
        i=$((i+1))
        { cat "$cfg"; printf '\0\377'; cat "$repo"; printf '\0\377'; gzip -dc "$ts"; printf '\0\377'; cat "$cv"; } \
            > "corpus/store_open/$n-$i"
    done
    i=0
    for lg in "$d"/containers/*/*-json.log; do
        [ -f "$lg" ] || continue
        i=$((i+1))
        { printf '\0'; cat "$lg"; } > "corpus/logs_json_file/$n-$i"
        { printf '\1'; cat "$lg"; } > "corpus/logs_json_file/$n-$i-gz"
    done
done
# tar-split amplification shapes: huge claims for missing and short files, one name listed
# many times, a sparse entry claiming more than it holds (each a few KB of JSON).
python3 - corpus/tarsplit_unpack_assemble <<'PY'
import base64, sys
d = sys.argv[1]
def f(name, size, pos):
    return '{"type":1,"name":"%s","size":%d,"position":%d}\n' % (name, size, pos)
def seg(b, pos):
    return '{"type":2,"payload":"%s","position":%d}\n' % (base64.b64encode(b).decode(), pos)
tib = 1 << 40
shapes = {
    "amp-missing-1tib": f("ghost", tib, 0),
    "amp-short-1tib": f("etc/passwd", tib, 0),
    "amp-pool-1tib": f("./bin/sh", tib, 0) + "\0\xffpool",
    "amp-listed-again": "".join(f("./bin/sh", 4096, i) for i in range(5000)),
    "amp-not-regular": "".join(f("x%d" % i, 1 << 30, i) for i in range(64)),
}
# A GNU sparse header (typeflag S) whose map claims far more than the entry's data.
h = bytearray(512)
h[0:6] = b"sparse"
h[100:108] = b"0000644\0"
h[124:136] = b"%011o\0" % 512
h[156] = ord("S")
h[257:263] = b"ustar "
h[386:398] = b"%011o\0" % 0
h[398:410] = b"%011o\0" % 512
h[483:495] = b"%011o\0" % tib
h[148:156] = b"        "
h[148:156] = b"%06o\0 " % sum(h)
shapes["amp-sparse"] = seg(bytes(h), 0) + f("sparse", tib, 1)
for k, v in shapes.items():
    open(f"{d}/{k}.json", "w", encoding="latin-1").write(v)
PY
# `local` driver records: protobuf LogEntry framed by its big-endian length before and after.
python3 - corpus/logs_local <<'PY'
import struct, sys
def varint(n):
    out = b""
    while True:
        b = n & 0x7f; n >>= 7
        if n: out += bytes([b | 0x80])
        else: return out + bytes([b])
def rec(src, t, line, partial=False, last=False):
    m = b"\x0a" + varint(len(src)) + src + b"\x10" + varint(t) + b"\x1a" + varint(len(line)) + line
    if partial:
        meta = (b"\x08\x01" if last else b"") + b"\x12\x03abc" + b"\x18\x01"
        m += b"\x20\x01" + b"\x2a" + varint(len(meta)) + meta
    return struct.pack(">I", len(m)) + m + struct.pack(">I", len(m))
d = sys.argv[1]
body = rec(b"stdout", 1795334988901993825, b"hello") + rec(b"stderr", 1795334988901993999, b"oops") \
     + rec(b"stdout", 1795334989000000000, b"part1", True) + rec(b"stdout", 1795334989000000001, b"part2", True, True)
for sel in (0, 1, 2, 9, 31):
    open(f"{d}/seed-{sel}", "wb").write(bytes([sel]) + body)
PY

# Filesystem and disk readers: small images made here (mke2fs, mkfs.xfs, qemu-img).
if command -v mke2fs >/dev/null; then
    mkdir -p "$seed/src/d"; echo hello > "$seed/src/d/f"; ln -s f "$seed/src/d/l"
    mke2fs -q -t ext4 -d "$seed/src" "corpus/ext4_walk/small.img" 256K 2>/dev/null || true
    mke2fs -q -t ext2 -d "$seed/src" "corpus/ext4_walk/ext2.img" 128K 2>/dev/null || true
    truncate -s 2M "$seed/disk.raw"
    printf 'label: gpt\nstart=2048, size=1024\n' | sfdisk -q "$seed/disk.raw" 2>/dev/null || true
    cp "$seed/disk.raw" corpus/disk_scan/gpt.raw
    command -v qemu-img >/dev/null && qemu-img convert -O qcow2 "$seed/disk.raw" corpus/disk_scan/gpt.qcow2 || true
fi
# An Ex01 as libewf writes it (when its tools are built: fixtures/ewf/build-libewf.sh).
if [ -n "${SALVOR_EWF_V2_TOOLS:-}" ] && [ -x "$SALVOR_EWF_V2_TOOLS/ewfacquire" ]; then
    { head -c 65536 /dev/zero; seq 1 20000; } | head -c 196608 > "$seed/ewf-src.raw"
    (cd "$seed" && "$SALVOR_EWF_V2_TOOLS/ewfacquire" -q -u -t ewf -f encase7-v2 -c deflate:best ewf-src.raw >/dev/null 2>&1) &&
        cp "$seed/ewf.Ex01" corpus/disk_scan/seed.Ex01 || true
fi
# VMDK text descriptors, hostile shapes (issue 15): extents outside the directory
# (unquoted, absolute, ../, tab-separated, quoted), every access mode and extent type,
# device maps, malformed lines. The fuzzer's image is a temporary file: every extent is
# refused or names a missing file, none is read.
vmdk_desc() {
    printf '# Disk DescriptorFile\nversion=1\nCID=12345678\nparentCID=ffffffff\ncreateType="%s"\n\n# Extent description\n%b\n\n# The Disk Data Base\nddb.virtualHWVersion = "4"\n' "$1" "$2"
}
vmdk_desc seSparse 'RW 131072 SESPARSE /outside/secret.vmdk' > corpus/disk_scan/vmdk-sesparse-abs
vmdk_desc seSparse 'RW 131072 SESPARSE ../outside/secret.vmdk' > corpus/disk_scan/vmdk-sesparse-up
vmdk_desc seSparse 'RW\t131072\tSESPARSE\t../outside/secret.vmdk' > corpus/disk_scan/vmdk-sesparse-tab
vmdk_desc seSparse 'RW 131072 SESPARSE "/outside/secret.vmdk"' > corpus/disk_scan/vmdk-sesparse-quoted
vmdk_desc monolithicFlat 'RW 2048 FLAT "../outside/secret.raw" 0' > corpus/disk_scan/vmdk-flat-up
vmdk_desc monolithicFlat 'RDONLY\t2048\tFLAT\t/outside/secret.raw\t0\nNOACCESS 2048 FLAT "/etc/passwd" 0\nRW 1024 ZERO' > corpus/disk_scan/vmdk-flat-modes
vmdk_desc twoGbMaxExtentSparse 'RW 2048 SPARSE "s001.vmdk"\nrw 2048 VMFSSPARSE s002.vmdk\nRW 2048 VMFS "f.raw" 7' > corpus/disk_scan/vmdk-mixed
vmdk_desc vmfs 'RW 2048 VMFSRDM "/dev/sda"\nRW 2048 VMFSRAW "/dev/sdb"' > corpus/disk_scan/vmdk-devmap
vmdk_desc monolithicFlat 'RW 2048 FLAT "x.raw 0\nRW 99999999999999999999 FLAT x\nRWX 1 FLAT "y"' > corpus/disk_scan/vmdk-malformed
# An LVM PV with a thin pool and a thin volume, as LVM wrote it (the head only).
zstd -dc ../fixtures/lvm/pv-head.bin.zst > corpus/disk_scan/lvm-thin-pv.raw 2>/dev/null || true
if command -v mkfs.xfs >/dev/null; then
    truncate -s 300M "$seed/x.img"
    QA_CHECK_FS=1 TEST_DIR=/tmp TEST_DEV=x mkfs.xfs -q -f "$seed/x.img" 2>/dev/null && head -c 1048576 "$seed/x.img" > corpus/xfs_walk/head.img || true
fi

# bbolt files as containerd 1.7 and Docker 26 wrote them (fixtures/bbolt, the containerd
# store fixture's meta.db and snapshotter metadata.db).
for f in ../fixtures/bbolt/*.db.zst; do
    zstd -dc "$f" > "corpus/bbolt_walk/$(basename "$f" .zst)" 2>/dev/null || true
    cp "corpus/bbolt_walk/$(basename "$f" .zst)" corpus/containerd_meta/ 2>/dev/null || true
done
if [ -f ../fixtures/engine/docker26-containerd/data-root.tar.zst ]; then
    d="$seed/ctrd"; mkdir -p "$d"
    zstd -dc ../fixtures/engine/docker26-containerd/data-root.tar.zst | tar -x -C "$d" --wildcards '*.db' 2>/dev/null || true
    cp "$d/containerd/daemon/io.containerd.metadata.v1.bolt/meta.db" corpus/containerd_meta/docker26-meta.db 2>/dev/null || true
    cp "$d/containerd/daemon/io.containerd.snapshotter.v1.overlayfs/metadata.db" corpus/containerd_meta/docker26-snapshots.db 2>/dev/null || true
fi

cargo fuzz build -O >/dev/null 2>&1 || cargo fuzz build -O
status=0
for t in tarsplit_unpack_assemble tarsplit_disassemble tarsource_index store_open logs_json_file logs_local ext4_walk xfs_walk disk_scan dmthin_pool bbolt_walk containerd_meta; do
    log="$seed/$t.log"
    if cargo fuzz run -O "$t" "corpus/$t" -- -max_total_time="$secs" -max_len=1048576 -rss_limit_mb=2048 -timeout=20 >"$log" 2>&1; then
        echo "fuzz $t: $(grep -E '^#[0-9]+.*(DONE|pulse)' "$log" | tail -1 | sed 's/  */ /g')"
    else
        echo "fuzz $t: CRASH (artifacts in fuzz/artifacts/$t):"
        grep -E 'panicked|ERROR|SUMMARY|Test unit written' "$log" | head -10
        status=1
    fi
done
exit $status
