#!/bin/bash
# File semantics: partial pages, sparse files, truncate both ways, punch and
# zero range, SEEK_DATA/SEEK_HOLE, st_blocks, unlink and rename while open,
# directories, attributes, symlinks, statfs, 1 MiB requests.
#
# Every data operation is applied to a file on pagefold and to a reference
# copy on the local disk; the two are compared with cmp.
. "$(dirname "$0")/lib.sh"
pf_require root fuse

pf_mount -o mem_limit=256M || { pf_ok 1 "mount"; pf_done; }
M=$PF_MNT
R=$PF_TMP/ref
mkdir -p "$R"

stat_val() { awk -v k="$1" '$1 == k { print $2 }' "$M/.ctl/stat"; }
both() { # FILE DD-ARGS...: run the same dd on pagefold and on the reference
	local f=$1
	shift
	dd of="$M/$f" "$@" conv=notrunc status=none &&
		dd of="$R/$f" "$@" conv=notrunc status=none
}
same() { # FILE DESC
	cmp "$M/$1" "$R/$1" >"$PF_TMP/cmp.out" 2>&1
	pf_ok $? "$2" || pf_diag_file "$PF_TMP/cmp.out"
}
seek() { "$PF_HELPERS/pf-seek" "$@"; }

# --- small files and partial pages
printf 'hello pagefold\n' >"$M/hello"
pf_is "$(cat "$M/hello")" "hello pagefold" "a small file reads back"
pf_is "$(stat -c %s "$M/hello")" 15 "its size is what was written"

printf 'abc' >"$PF_TMP/abc"
both part if="$PF_TMP/abc" bs=1 seek=5000
pf_is "$(stat -c %s "$M/part")" 5003 "a write at 5000 makes the size 5003"
same part "bytes before a partial-page write read as zeros"
head -c 10000 /dev/urandom >"$PF_TMP/rnd"
both part if="$PF_TMP/rnd" bs=1 seek=4090 count=9000 iflag=count_bytes
both part if="$PF_TMP/rnd" bs=1 seek=1 count=7 skip=100 iflag=count_bytes,skip_bytes
same part "writes straddling page boundaries and inside a page"

# --- sparse files, truncate, seek
truncate -s 1G "$M/sparse"
pf_is "$(stat -c %s "$M/sparse")" 1073741824 "truncate -s 1G makes a 1 GiB file"
pf_le "$(stat -c %b "$M/sparse")" 8 "an empty 1 GiB sparse file holds (almost) no blocks"
cmp -n 1048576 "$M/sparse" /dev/zero >/dev/null 2>&1
pf_ok $? "a sparse file reads as zeros"
pf_is "$(seek "$M/sparse" data 0)" ENXIO "SEEK_DATA in an empty sparse file: ENXIO"
pf_is "$(seek "$M/sparse" hole 12345)" 12345 "SEEK_HOLE in a hole returns the offset"
printf 'X' | dd of="$M/sparse" bs=1 seek=$((512 << 20)) conv=notrunc status=none
pf_is "$(seek "$M/sparse" data 0)" $((512 << 20)) "SEEK_DATA finds the page written at 512 MiB"
pf_is "$(seek "$M/sparse" data $(((512 << 20) + 100)))" $(((512 << 20) + 100)) \
	"SEEK_DATA inside a data page returns the offset"
pf_is "$(seek "$M/sparse" hole $((512 << 20)))" $(((512 << 20) + 4096)) \
	"SEEK_HOLE after it finds the next page"
pf_is "$(seek "$M/sparse" data $(((512 << 20) + 4096)))" ENXIO \
	"SEEK_DATA past the last data: ENXIO"
pf_is "$(seek "$M/sparse" hole $((2 << 30)))" ENXIO "SEEK_HOLE past the end: ENXIO"
pf_is "$(stat -c %s "$M/sparse")" 1073741824 "writing inside keeps the size"

head -c 20000 /dev/urandom >"$PF_TMP/rnd2"
both trunc if="$PF_TMP/rnd2" bs=4096
truncate -s 5000 "$M/trunc" "$R/trunc"
pf_is "$(stat -c %s "$M/trunc")" 5000 "truncate shrinks to 5000"
truncate -s 30000 "$M/trunc" "$R/trunc"
same trunc "shrink then grow: the cut-off tail reads back as zeros"
pf_is "$(seek "$M/trunc" hole 0)" 8192 "after shrinking, pages past the new end are holes"
truncate -s 0 "$M/trunc" "$R/trunc"
pf_is "$(stat -c %s,%b "$M/trunc")" 0,0 "truncate to 0 frees everything"

# --- punch hole and zero range
head -c $((16 * 4096)) /dev/urandom >"$PF_TMP/rnd3"
both holes if="$PF_TMP/rnd3" bs=4096
same holes "16 random pages written"
blocks_before=$(stat -c %b "$M/holes")
nf_before=$(awk '{ print $4 }' "$M/.ctl/io_stat")
fallocate -p -o 4096 -l 16384 "$M/holes" && fallocate -p -o 4096 -l 16384 "$R/holes"
pf_ok $? "punch 4 whole pages"
same holes "punched pages read back as zeros, the rest intact"
pf_is "$(stat -c %s "$M/holes")" 65536 "punching keeps the size"
nf_after=$(awk '{ print $4 }' "$M/.ctl/io_stat")
pf_is "$((nf_after - nf_before))" 4 "io_stat notify_free counts the 4 freed pages"
pf_ok $(($(stat -c %b "$M/holes") < blocks_before ? 0 : 1)) "st_blocks went down"
pf_is "$(seek "$M/holes" hole 0)" 4096 "SEEK_HOLE finds the punched range"
pf_is "$(seek "$M/holes" data 4096)" 20480 "SEEK_DATA skips it"
fallocate -p -o 30000 -l 10000 "$M/holes" && fallocate -p -o 30000 -l 10000 "$R/holes"
same holes "punching inside pages zeros exactly the range"
fallocate -z -o 50000 -l 5000 "$M/holes" && fallocate -z -o 50000 -l 5000 "$R/holes"
same holes "zero range inside the file"
fallocate -z -o 60000 -l 20000 "$M/holes" && fallocate -z -o 60000 -l 20000 "$R/holes"
same holes "zero range past the end grows the file with zeros"
pf_is "$(stat -c %s "$M/holes")" 80000 "... to the end of the range"
fallocate -n -z -o 79000 -l 20000 "$M/holes" && fallocate -n -z -o 79000 -l 20000 "$R/holes"
same holes "zero range with keep-size"
pf_is "$(stat -c %s "$M/holes")" 80000 "... keeps the size"
pf_fails "fallocate mode 0 is refused" fallocate -o 0 -l 1M "$M/holes"
grep -q "not supported" "$PF_TMP/run.out"
pf_ok $? "... with EOPNOTSUPP" || pf_diag_file "$PF_TMP/run.out"
pf_fails "collapse range is refused" fallocate -c -o 0 -l 4096 "$M/holes"
grep -q "not supported" "$PF_TMP/run.out"
pf_ok $? "... with EOPNOTSUPP" || pf_diag_file "$PF_TMP/run.out"
same holes "refused modes changed nothing"

# --- st_blocks follows what the file holds
yes "a line of text that compresses well" | head -c 1048576 >"$PF_TMP/text"
cp "$PF_TMP/text" "$M/text"
head -c 1048576 /dev/urandom >"$M/random"
tb=$(stat -c %b "$M/text")
rb=$(stat -c %b "$M/random")
pf_ok $((tb > 0 && tb * 512 < 1048576 / 4 ? 0 : 1)) \
	"1 MiB of text holds well under 1 MiB (st_blocks $tb)"
pf_ge "$rb" 2048 "1 MiB of random bytes holds at least 1 MiB (st_blocks)"

# --- 1 MiB requests
dd if=/dev/zero of="$M/big" bs=1M count=4 oflag=direct status=none
dd if="$M/big" of=/dev/null bs=1M iflag=direct status=none
pf_is "$(stat_val max_write_req)" 1048576 "1 MiB writes reach the daemon whole"
pf_is "$(stat_val max_read_req)" 1048576 "1 MiB reads reach the daemon whole"

# --- unlink while open: pages freed on the last close
before=$(awk '{ print $1 }' "$M/.ctl/mm_stat")
head -c $((64 * 4096)) /dev/urandom >"$PF_TMP/rnd4"
cp "$PF_TMP/rnd4" "$M/open-unlinked"
exec 3>>"$M/open-unlinked"
rm "$M/open-unlinked"
pf_ok $([ ! -e "$M/open-unlinked" ]; echo $?) "unlinked file is gone from the directory"
cmp "/proc/$$/fd/3" "$PF_TMP/rnd4" >/dev/null 2>&1
pf_ok $? "... and still reads back through the open descriptor"
printf 'tail' >&3
grep -q '^open-unlinked\\040(deleted) 262148 ' "$M/.ctl/files"
pf_ok $? "/.ctl/files lists it as deleted, with its new size" ||
	pf_diag_file "$M/.ctl/files"
held=$(awk '{ print $1 }' "$M/.ctl/mm_stat")
pf_ge $((held - before)) $((65 * 4096)) "its pages are still stored while open"
exec 3>&-
for i in $(seq 50); do
	[ "$(awk '{ print $1 }' "$M/.ctl/mm_stat")" -le "$before" ] && break
	sleep 0.1
done
pf_is "$(awk '{ print $1 }' "$M/.ctl/mm_stat")" "$before" "the last close frees its pages"

# --- rename while open
printf 'one' >"$M/ren-a"
exec 4>>"$M/ren-a"
mv "$M/ren-a" "$M/ren-b"
printf 'two' >&4
exec 4>&-
pf_is "$(cat "$M/ren-b")" onetwo "writes through a descriptor opened before a rename land in the file"
printf 'victim' >"$M/ren-c"
exec 5<"$M/ren-c"
mv "$M/ren-b" "$M/ren-c"
pf_is "$(cat "$M/ren-c")" onetwo "rename over an open file replaces the name"
pf_is "$(cat <&5)" victim "... and the replaced file still reads through its descriptor"
exec 5<&-

# --- rename flags
printf 'A' >"$M/xa"
printf 'B' >"$M/xb"
mkdir "$M/xd"
pf_is "$("$PF_HELPERS/pf-rename" "$M/xa" "$M/xb" noreplace)" EEXIST \
	"RENAME_NOREPLACE onto an existing name: EEXIST"
pf_is "$(cat "$M/xa")$(cat "$M/xb")" AB "... and nothing moved"
pf_is "$("$PF_HELPERS/pf-rename" "$M/xa" "$M/xd/xa" exchange)" ENOENT \
	"RENAME_EXCHANGE with a missing target: ENOENT"
pf_is "$("$PF_HELPERS/pf-rename" "$M/xa" "$M/xd" exchange)" ok \
	"RENAME_EXCHANGE of a file and a directory"
pf_ok $([ -d "$M/xa" ] && [ "$(cat "$M/xd")" = A ]; echo $?) "... swaps them"
pf_is "$(stat -c %h "$M")" "$(($(find "$M" -mindepth 1 -maxdepth 1 -type d | wc -l) + 2))" \
	"the root's link count still counts its subdirectories"
rm -r "$M/xa" "$M/xb" "$M/xd"

# --- directories
mkdir -p "$M/d/e/f"
pf_is "$(stat -c %h "$M/d")" 3 "a directory with one subdirectory has 3 links"
pf_fails "rmdir of a non-empty directory fails" rmdir "$M/d/e"
grep -q "not empty" "$PF_TMP/run.out"
pf_ok $? "... with ENOTEMPTY" || pf_diag_file "$PF_TMP/run.out"
pf_fails "a directory cannot move into itself" mv "$M/d/e" "$M/d/e/f/x"
touch "$M/d/e/f/file"
mv "$M/d/e" "$M/e2"
pf_ok $([ -f "$M/e2/f/file" ] && [ ! -e "$M/d/e" ]; echo $?) "rename of a directory moves its tree"
pf_is "$(stat -c %h "$M/d")" 2 "... and the old parent lost a link"
pf_fails "unlink of a directory fails" rm "$M/e2/f"
pf_fails "rmdir of a file fails" rmdir "$M/e2/f/file"
rm -r "$M/e2" "$M/d"
pf_ok $([ ! -e "$M/e2" ] && [ ! -e "$M/d" ]; echo $?) "rm -r removes trees"
mkdir "$M/many"
for i in $(seq 300); do : >"$M/many/file-with-a-longish-name-$i"; done
pf_is "$(ls "$M/many" | wc -l)" 300 "readdir lists 300 entries over several calls"
pf_is "$(ls -a "$M" | grep -c '^\.ctl$')" 1 "the root lists .ctl"

# --- attributes, links
chmod 640 "$M/hello"
pf_is "$(stat -c %a "$M/hello")" 640 "chmod"
chown 1234:5678 "$M/hello"
pf_is "$(stat -c %u:%g "$M/hello")" 1234:5678 "chown"
touch -d '2001-02-03 04:05:06 UTC' "$M/hello"
pf_is "$(stat -c %Y "$M/hello")" 981173106 "utimens sets the modification time"
ln -s hello "$M/link"
pf_is "$(readlink "$M/link")" hello "symlink and readlink"
pf_is "$(cat "$M/link")" "hello pagefold" "a symlink is followed"
pf_fails "hard links are refused" ln "$M/hello" "$M/hard"
sync "$M/hello"
pf_ok $? "fsync succeeds"

# --- statfs from the limit and the use
read -r bs blocks bfree < <(stat -f -c '%S %b %f' "$M")
pf_is "$bs" 4096 "statfs block size 4096"
pf_is "$blocks" $((256 * 1024 * 1024 / 4096)) "statfs total is the memory limit"
used=$(awk '{ print $3 }' "$M/.ctl/mm_stat")
pf_is "$bfree" $(((256 * 1024 * 1024 - used) / 4096)) \
	"statfs free is the limit minus mem_used_total"

pf_done
