#!/bin/bash
# Integrity: pages of real programs' memory written at random offsets and
# sizes (and some punched holes), compared byte for byte with a reference
# copy on the local disk - after the writes, after compaction and folding,
# and by two writers at once.
. "$(dirname "$0")/lib.sh"
pf_require root fuse

pf_mount || { pf_ok 1 "mount"; pf_done; }
M=$PF_MNT
R=$PF_TMP/ref
mkdir -p "$R"

check() { # FILE DESC
	cmp "$M/$1" "$R/$1" >"$PF_TMP/cmp.out" 2>&1
	pf_ok $? "$2" || pf_diag_file "$PF_TMP/cmp.out"
}

# Real memory: this shell, a bash holding a large text variable, and the
# daemon (libraries, heap, stacks).
bash -c 'x=$(seq 200000); sleep 120' &
holder=$!
pf_track_pid "$holder"
sleep 0.3
pages=$("$PF_HELPERS/pf-memdump" "$PF_TMP/mem.pages" 24 "$holder" "$$" "$PF_PID")
kill "$holder" 2>/dev/null
pf_ge "$pages" 1024 "dumped at least 4 MiB of real memory"

# Sequential: the whole dump in 1 MiB direct writes, read back at 4 KiB.
dd if="$PF_TMP/mem.pages" of="$M/seq" bs=1M oflag=direct status=none
cp "$PF_TMP/mem.pages" "$R/seq"
check seq "1 MiB sequential writes of real memory read back intact"
dd if="$M/seq" bs=4k iflag=direct status=none | cmp - "$R/seq" >/dev/null
pf_ok $? "... also through 4 KiB direct reads"

# Random offsets and sizes, partial pages and punched holes.
"$PF_HELPERS/pf-randio" "$PF_TMP/mem.pages" "$M/rand" "$R/rand" 1500 \
	$((48 << 20)) 42 2>"$PF_TMP/randio.err"
pf_ok $? "1500 random writes and punches" || pf_diag_file "$PF_TMP/randio.err"
check rand "the randomly written file equals its reference"

# Two writers at once on two files.
"$PF_HELPERS/pf-randio" "$PF_TMP/mem.pages" "$M/par1" "$R/par1" 600 \
	$((16 << 20)) 7 2>"$PF_TMP/par1.err" &
p1=$!
"$PF_HELPERS/pf-randio" "$PF_TMP/mem.pages" "$M/par2" "$R/par2" 600 \
	$((16 << 20)) 8 2>"$PF_TMP/par2.err" &
p2=$!
wait $p1
s1=$?
wait $p2
s2=$?
pf_ok $((s1 | s2)) "two concurrent random writers" ||
	{ pf_diag_file "$PF_TMP/par1.err"; pf_diag_file "$PF_TMP/par2.err"; }
check par1 "first concurrent file intact"
check par2 "second concurrent file intact"

# Rearranging the pool must not change a byte.
for t in compact shrink fold; do
	echo 1 >"$M/.ctl/$t"
	pf_ok $? "trigger $t"
done
check seq "sequential file intact after compact, shrink and fold"
check rand "random file intact after compact, shrink and fold"
check par1 "concurrent file intact after compact, shrink and fold"

# cp sees st_blocks below the size (compression) and copies through
# SEEK_DATA/SEEK_HOLE, leaving zero pages as holes.
cp "$M/seq" "$M/seq-cp"
cp "$R/seq" "$R/seq-cp"
check seq-cp "cp inside pagefold (SEEK_DATA/SEEK_HOLE) copies every byte"

# A full copy of the same real pages folds into shared objects.
dd if="$M/seq" of="$M/seq-copy" bs=1M status=none
cp "$R/seq" "$R/seq-copy"
check seq-copy "a copy made with dd inside pagefold"
read -r _ _ cpages csame cfolded _ < <(grep '^/seq-copy ' "$M/.ctl/files")
pf_is "$cpages" "$pages" "/.ctl/files: the copy holds every page"
pf_is "$cfolded" $((cpages - csame)) \
	"... and each page that is not same-filled shares an object with the original"
pf_ge "$(awk '{ print $10 }' "$M/.ctl/mm_stat")" $((2 * (cpages - csame))) \
	"mm_stat pages_folded counts both sides of each shared page"

pf_done
