#!/bin/bash
# Large requests, whose pages the daemon shares between a worker and its
# helper threads: concurrent 1 MiB direct writes and reads to several files,
# unaligned large writes (partial edge pages), every byte compared with a
# reference copy; and a large write failing part-way at the memory limit:
# the bytes reported written read back, the file's size is exactly them,
# and nothing past that size survives (growing the file reads zeros).
. "$(dirname "$0")/lib.sh"
pf_require root fuse

pf_mount || { pf_ok 1 "mount"; pf_done; }
M=$PF_MNT
C=$M/.ctl
mm() { awk -v n="$1" '{ print $n }' "$C/mm_stat"; }

# Data that compresses about as real memory does: text, random bytes and
# zero runs in 64 KiB pieces.
mkdata() { # FILE MIB
	local i
	for ((i = 0; i < $2 * 16; i++)); do
		case $((i % 4)) in
		0) head -c 49152 /dev/urandom | base64 -w 0 | head -c 65536 ;;
		1) head -c 65536 /dev/urandom ;;
		2) head -c 65536 /dev/zero ;;
		3) seq -w $((i * 1000)) $((i * 1000 + 9000)) | head -c 65536 ;;
		esac
	done >"$1"
}
for f in a b c d; do
	mkdata "$PF_TMP/$f" 16
done

# --- concurrent large writes, then concurrent large reads
pids=()
for f in a b c; do
	dd if="$PF_TMP/$f" of="$M/$f" bs=1M oflag=direct status=none &
	pids+=($!)
done
dd if="$PF_TMP/d" of="$M/d" bs=1000000 oflag=direct status=none &
pids+=($!)
st=0
for p in "${pids[@]}"; do wait "$p" || st=1; done
pf_ok $st "4 concurrent large direct writes (1 MiB and 1000000-byte requests)"
for f in a b c d; do
	cmp "$M/$f" "$PF_TMP/$f" >/dev/null
	pf_ok $? "$f reads back equal"
done
pids=()
for f in a b c d; do
	(dd if="$M/$f" bs=1M iflag=direct status=none | cmp - "$PF_TMP/$f") &
	pids+=($!)
	(dd if="$M/$f" bs=3M iflag=direct status=none | cmp - "$PF_TMP/$f") &
	pids+=($!)
done
st=0
for p in "${pids[@]}"; do wait "$p" || st=1; done
pf_ok $st "8 concurrent large direct reads compare equal"

# --- writes and reads of one file at once, in disjoint halves
cp "$PF_TMP/a" "$PF_TMP/a2"
dd if="$PF_TMP/b" of="$PF_TMP/a2" bs=1M count=8 conv=notrunc status=none
dd if="$PF_TMP/b" of="$M/a" bs=1M count=8 oflag=direct conv=notrunc status=none &
w=$!
(dd if="$M/a" bs=1M skip=8 iflag=direct status=none |
	cmp - <(tail -c +$((8 * 1048576 + 1)) "$PF_TMP/a")) &
r=$!
wait $w
pf_ok $? "rewriting the first half of a file..."
wait $r
pf_ok $? "... while its second half is read"
cmp "$M/a" "$PF_TMP/a2" >/dev/null
pf_ok $? "the rewritten file reads back equal"

# --- large writes at unaligned offsets: partial first and last pages
cp "$PF_TMP/c" "$PF_TMP/c2"
for off in 1 4095 12345 4194303; do
	dd if="$PF_TMP/d" of="$PF_TMP/c2" bs=1M count=1 seek=$off \
		oflag=seek_bytes conv=notrunc status=none
	dd if="$PF_TMP/d" of="$M/c" bs=1M count=1 seek=$off \
		oflag=seek_bytes,direct conv=notrunc status=none 2>/dev/null ||
	dd if="$PF_TMP/d" of="$M/c" bs=1M count=1 seek=$off \
		oflag=seek_bytes conv=notrunc status=none
done
cmp "$M/c" "$PF_TMP/c2" >/dev/null
pf_ok $? "1 MiB writes at offsets 1, 4095, 12345 and 4 MiB - 1 read back equal"
dd if="$PF_TMP/d" of="$M/e" bs=1M count=3 seek=100 oflag=seek_bytes \
	status=none
cmp -n 100 "$M/e" /dev/zero >/dev/null &&
	cmp -i 100:0 "$M/e" <(head -c 3M "$PF_TMP/d") >/dev/null
pf_ok $? "a 3 MiB write at offset 100 into a new file: zeros, then the data"
rm -f "$M/e"

# --- a large write failing part-way at the limit
rm -f "$M/b" "$M/d"
head -c $((32 << 20)) /dev/urandom >"$PF_TMP/random"
used=$(mm 3)
echo $((used + (8 << 20))) >"$C/mem_limit"
dd if="$PF_TMP/random" of="$M/full" bs=1M oflag=direct 2>"$PF_TMP/dd.err"
ddst=$?
pf_ok $([ $ddst -ne 0 ] && grep -q "No space left on device" "$PF_TMP/dd.err"; echo $?) \
	"1 MiB writes past the limit fail with ENOSPC" || pf_diag_file "$PF_TMP/dd.err"
copied=$(awk '/bytes/ && /copied/ { print $1 }' "$PF_TMP/dd.err")
size=$(stat -c %s "$M/full")
pf_is "$size" "$copied" "the file's size is what dd was told was written"
pf_ok $((size > 0 && size < (32 << 20) ? 0 : 1)) "part of the file was stored ($size bytes)"
cmp -n "$size" "$M/full" "$PF_TMP/random" >/dev/null
pf_ok $? "everything written before the error reads back"
for f in a c; do
	cmp "$M/$f" "$PF_TMP/${f}2" >/dev/null
	pf_ok $? "$f, stored before, is intact"
done
echo 0 >"$C/mem_limit"
truncate -s $((32 << 20)) "$M/full"
cmp -i "$size:0" -n $(((32 << 20) - size)) "$M/full" /dev/zero >/dev/null
pf_ok $? "grown again, the file reads zeros past the old size"
pages=$(awk '$1 == "/full" { print $3 }' "$C/files")
pf_le "$pages" $(((size + 4095) / 4096)) "no page past the size is stored"
dd if="$PF_TMP/random" of="$M/full" bs=1M oflag=direct status=none
pf_ok $? "without the limit the whole write goes in"
cmp "$M/full" "$PF_TMP/random" >/dev/null
pf_ok $? "... and reads back equal"

pf_done
