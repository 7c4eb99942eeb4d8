#!/bin/bash
# Control files in /.ctl: every file read; folding, compaction and shrinking
# move the stats the way they should; every kind of bad write rejected with
# an errno (EINVAL for what is not a value, ERANGE for a value the setting
# cannot mean) and the setting unchanged; truncation refused, an empty
# value refused at close, echo's O_TRUNC working; who may write; ENOSPC at
# the memory limit with nothing lost.
. "$(dirname "$0")/lib.sh"
pf_require root fuse

pf_mount -o fold=scan || { pf_ok 1 "mount"; pf_done; }
M=$PF_MNT
C=$M/.ctl

mm() { awk -v n="$1" '{ print $n }' "$C/mm_stat"; }   # mm_stat column N
st() { awk -v k="$1" '$1 == k { print $2 }' "$C/stat"; }
fcol() { # FILE COLUMN: a column of a row of /.ctl/files
	awk -v p="$1" -v n="$2" '$1 == p { print $n }' "$C/files"
}
write_ctl() { # FILE VALUE: like echo, with the error message kept
	echo "$2" 2>"$PF_TMP/ctl.err" >"$C/$1"
}

# --- every file
pf_is "$(ls "$C" | sort | tr '\n' ' ')" \
	"backing_dev bd_stat classes comp_algorithm compact defrag_ratio files fold group_size idle intake io_stat mem_high mem_limit mem_used_max mm_stat pool_reserve read_idle recomp_algorithm recompress recompress_after shrink stat writeback writeback_after writeback_limit writeback_limit_enable zswap_stat " \
	"/.ctl holds exactly the documented files"
pf_is "$(wc -l <"$C/mm_stat")" 1 "mm_stat is one line"
pf_is "$(awk '{ print NF }' "$C/mm_stat")" 19 "mm_stat: zram's 9 columns and 10 of pagefold's"
pf_is "$(awk '{ print NF }' "$C/io_stat")" 4 "io_stat: 4 columns"
missing=
for k in orig_data_size compr_data_size mem_used_total mem_limit mem_used_max \
	same_pages pages_compacted huge_pages huge_pages_since pages_folded \
	fold_hits fold_false failed_reads failed_writes invalid_io notify_free \
	pool_pages frag_pct files threads mlocked fold defrag_ratio recomp_pages \
	recomp_total recomp_saved recomp_kept recompress_after recomp_algorithm \
	intake_cold read_idle intake group_pages groups group_saved \
	group_scratch_bytes group_size pool_reserve pool_reserve_bytes \
	pool_refill_pages pool_writer_pages idle_pages; do
	[ -n "$(st $k)" ] || missing="$missing $k"
done
pf_is "$missing" "" "stat has every name"
pf_is "$(awk 'NF != 2' "$C/stat")" "" "every stat line is 'name value'"
pf_is "$(head -n 1 "$C/classes" | awk '{ print $1, $2 }')" "class size" "classes has a header row"
pf_is "$(tail -n 1 "$C/classes" | awk '{ print $1 }')" Total "classes ends with a Total row"
pf_is "$(cat "$C/files")" "path size pages same folded compr_bytes clusters own_bytes shared_bytes" \
	"files: a header row and no file yet"
pf_is "$(cat "$C/fold")" scan "fold reads back the mount option"
for f in compact shrink; do
	pf_fails "$f is write-only" cat "$C/$f"
	grep -q "Permission denied" "$PF_TMP/run.out"
	pf_ok $? "... reading it: EACCES"
done
for f in mm_stat io_stat stat classes files zswap_stat; do
	write_ctl "$f" 1
	[ $? -ne 0 ] && grep -q "Permission denied" "$PF_TMP/ctl.err"
	pf_ok $? "$f is read-only: writing it fails with EACCES"
done

# --- settings read back what was set
write_ctl mem_limit 512M
pf_is "$(cat "$C/mem_limit")" 536870912 "mem_limit 512M reads back in bytes"
pf_is "$(mm 4)" 536870912 "... and is mm_stat's mem_limit column"
write_ctl defrag_ratio 35
pf_is "$(cat "$C/defrag_ratio")" 35 "defrag_ratio reads back"
write_ctl fold off
pf_is "$(cat "$C/fold")" off "fold mode reads back"
write_ctl fold scan
pf_is "$(cat "$C/intake")" lz4 "intake is lz4 by default"
write_ctl intake zstd
pf_is "$(cat "$C/intake")" zstd:6 "intake zstd reads back with the level used"
pf_is "$(st intake)" zstd:6 "... and in stat"
write_ctl intake lz4hc:4
pf_is "$(cat "$C/intake")" lz4hc:4 "intake lz4hc:4 reads back"
write_ctl intake lz4
pf_is "$(cat "$C/intake")" lz4 "intake back to lz4"
# comp_algorithm: the intake under zram's name, in zram's form
pf_is "$(cat "$C/comp_algorithm")" "[lz4] lz4hc zstd" "comp_algorithm: zram's form, lz4 in brackets"
write_ctl comp_algorithm zstd
pf_is "$(cat "$C/comp_algorithm") $(cat "$C/intake")" "lz4 lz4hc [zstd] zstd:6" "echo zstd > comp_algorithm sets the intake"
write_ctl comp_algorithm lzo
pf_is "$?" 1 "comp_algorithm lzo refused"
pf_ok "$(grep -q "Invalid argument" "$PF_TMP/ctl.err"; echo $?)" "... with EINVAL"
pf_is "$(cat "$C/intake")" zstd:6 "... and the intake kept"
write_ctl comp_algorithm lz4
pf_is "$(cat "$C/intake")" lz4 "comp_algorithm lz4: intake back to lz4"
pf_is "$(cat "$C/read_idle")" 0 "read_idle is 0 by default"
write_ctl read_idle 1
pf_is "$(cat "$C/read_idle")" 1 "read_idle 1 reads back"
pf_is "$(st read_idle)" 1 "... and in stat"
write_ctl read_idle 0
pf_is "$(cat "$C/pool_reserve")" 262144 "pool_reserve is 256K by default"
write_ctl pool_reserve 64K
pf_is "$(cat "$C/pool_reserve")" 65536 "pool_reserve 64K reads back in bytes"
pf_is "$(st pool_reserve)" 65536 "... and in stat"
pf_ok "$([ "$(st pool_reserve_bytes)" -le 65536 ]; echo $?)" "... which bounds pool_reserve_bytes"
write_ctl pool_reserve 256K
# zswap_stat: one line of 5 numbers, the kernel's own figures
pf_is "$(awk '{ print NF }' "$C/zswap_stat")" 5 "zswap_stat: 5 columns"
want=$(awk '/^Zswap:/ { z = $2 * 1024 } END { print z + 0 }' /proc/meminfo)
pf_is "$(awk '{ print $1 }' "$C/zswap_stat")" "$want" "zswap_stat pool_bytes is /proc/meminfo's Zswap"
want=$(awk '$1 == "zswpout" { print $2 }' /proc/vmstat)
pf_is "$(awk '{ print $4 }' "$C/zswap_stat")" "${want:-0}" "zswap_stat zswpout is /proc/vmstat's"

# --- bad writes: an errno echo reports, and the setting unchanged
bad() { # FILE VALUE ERROR-TEXT
	local before
	before=$(cat "$C/$1" 2>/dev/null)
	write_ctl "$1" "$2"
	local status=$?
	[ $status -ne 0 ] && grep -q "$3" "$PF_TMP/ctl.err" &&
		[ "$(cat "$C/$1" 2>/dev/null)" = "$before" ]
	pf_ok $? "$1 <- '$2': $3, unchanged" ||
		pf_diag "status $status: $(cat "$PF_TMP/ctl.err")"
}
for v in abc "" -5 12Q 1.5G 0x10 "1 2" 64MB " 64M"; do
	bad mem_limit "$v" "Invalid argument"
done
bad mem_limit 99999999999999999999 "Numerical result out of range"
bad mem_limit 17179869184T "Numerical result out of range"
bad mem_limit 18446744073709551615 "Numerical result out of range"
ram=$(($(awk '$1 == "MemTotal:" { print $2 }' /proc/meminfo) * 1024))
bad mem_limit $((ram + 1)) "Numerical result out of range"
bad mem_limit $(((ram >> 40) + 1))T "Numerical result out of range"
write_ctl mem_limit "$ram"
pf_is "$(cat "$C/mem_limit")" "$ram" "mem_limit of exactly MemTotal is taken"
write_ctl mem_limit 512M
for v in 101 1000 99999999999999999999; do
	bad defrag_ratio "$v" "Numerical result out of range"
done
for v in -1 abc "" 3.5 50%; do
	bad defrag_ratio "$v" "Invalid argument"
done
for v in 31622401 99999999999999999999; do
	bad recompress_after "$v" "Numerical result out of range"
done
for v in 5m "" -1 1.5; do
	bad recompress_after "$v" "Invalid argument"
done
for v in zstd:0 zstd:20 lz4hc:13 zstd:1000; do
	bad recomp_algorithm "$v" "Numerical result out of range"
done
for v in "" brotli zstd: zstd:x lz4; do
	bad recomp_algorithm "$v" "Invalid argument"
done
for v in sometimes INLINE "" 2 0; do
	bad fold "$v" "Invalid argument"
done
for v in 5 abc ""; do
	bad mem_used_max "$v" "Invalid argument"
done
for v in "" LZ4 gzip "zstd 1" lz4:1; do
	bad intake "$v" "Invalid argument"
done
for v in zstd:0 zstd:20 lz4hc:13; do
	bad intake "$v" "Numerical result out of range"
done
for v in 257M 1G; do
	bad pool_reserve "$v" "Numerical result out of range"
done
for v in "" abc -1; do
	bad pool_reserve "$v" "Invalid argument"
done
for v in "" yes -1 01; do
	bad read_idle "$v" "Invalid argument"
done
for v in 2 10; do
	bad read_idle "$v" "Numerical result out of range"
done
for f in compact shrink; do
	for v in 0 2 abc ""; do
		write_ctl "$f" "$v"
		[ $? -ne 0 ] && grep -q "Invalid argument" "$PF_TMP/ctl.err"
		pf_ok $? "$f <- '$v': Invalid argument"
	done
done
printf '1\n\n' 2>"$PF_TMP/ctl.err" >"$C/compact"
[ $? -ne 0 ] && grep -q "Invalid argument" "$PF_TMP/ctl.err"
pf_ok $? "a trigger with two newlines is refused"
pf_fails "cannot create files in /.ctl" touch "$C/new"
grep -q "No such file or directory" "$PF_TMP/run.out"
pf_ok $? "... an unknown control file name is ENOENT" || pf_diag_file "$PF_TMP/run.out"
write_ctl no_such_setting 1
[ $? -ne 0 ] && grep -q "No such file or directory" "$PF_TMP/ctl.err"
pf_ok $? "echo to an unknown control file: No such file or directory" ||
	pf_diag_file "$PF_TMP/ctl.err"
pf_fails "cannot make directories in /.ctl" mkdir "$C/dir"
pf_fails "cannot remove a control file" rm -f "$C/mm_stat"
pf_fails "cannot remove /.ctl" rmdir "$C"
pf_fails "cannot rename /.ctl" mv "$C" "$M/ctl2"
pf_fails "cannot rename into /.ctl" sh -c "touch '$M/x' && mv '$M/x' '$C/x'"
pf_fails "cannot chmod a control file" chmod 666 "$C/mem_limit"

# --- truncation, the empty value, and O_TRUNC (the shell's >)
write_ctl mem_limit 512M
pf_fails "truncate -s 0 (ftruncate(2)) of a control file fails" \
	truncate -s 0 "$C/mem_limit"
grep -q "Operation not permitted" "$PF_TMP/run.out"
pf_ok $? "... with EPERM" || pf_diag_file "$PF_TMP/run.out"
pf_fails "truncate(2) of a control file fails" \
	perl -e 'truncate($ARGV[0], 0) or die "truncate: $!\n"' "$C/mem_limit"
grep -q "Operation not permitted" "$PF_TMP/run.out"
pf_ok $? "... with EPERM" || pf_diag_file "$PF_TMP/run.out"
pf_fails "truncate(2) of a trigger fails" \
	perl -e 'truncate($ARGV[0], 0) or die "truncate: $!\n"' "$C/compact"
pf_is "$(cat "$C/mem_limit")" 536870912 "... and the setting is unchanged"
# The kernel sends no write for zero bytes: an open with O_TRUNC closed
# without a write is the empty value, refused by close(2). The shell's
# builtins ignore what close says; coreutils' printf and dd do not.
env printf '' 2>"$PF_TMP/ctl.err" >"$C/mem_limit"
[ $? -ne 0 ] && grep -q "Invalid argument" "$PF_TMP/ctl.err"
pf_ok $? "an empty value (O_TRUNC, no write) fails with EINVAL at close" ||
	pf_diag_file "$PF_TMP/ctl.err"
pf_is "$(cat "$C/mem_limit")" 536870912 "... and mem_limit is unchanged"
dd if=/dev/null of="$C/compact" 2>"$PF_TMP/ctl.err"
[ $? -ne 0 ] && grep -q "Invalid argument" "$PF_TMP/ctl.err"
pf_ok $? "dd of nothing into a trigger fails with EINVAL" ||
	pf_diag_file "$PF_TMP/ctl.err"
: >"$C/mem_limit"
pf_is "$(cat "$C/mem_limit")" 536870912 "': >' changes nothing"
env printf '' 2>"$PF_TMP/ctl.err" >>"$C/mem_limit"
pf_ok $? "writing nothing without O_TRUNC (>>) is no value and no error" ||
	pf_diag_file "$PF_TMP/ctl.err"
env printf '256M' 2>"$PF_TMP/ctl.err" >>"$C/mem_limit"
pf_is "$(cat "$C/mem_limit")" 268435456 "... a value appended (>>) is taken"
env echo 1G 2>"$PF_TMP/ctl.err" >"$C/mem_limit"
pf_ok $? "/bin/echo with O_TRUNC, which checks close(2), succeeds" ||
	pf_diag_file "$PF_TMP/ctl.err"
pf_is "$(cat "$C/mem_limit")" 1073741824 "... and sets the value"
write_ctl mem_limit 512M
pf_ok $? "the builtin echo with O_TRUNC succeeds"
pf_is "$(cat "$C/mem_limit")" 536870912 "... and sets the value"
env echo 1 2>"$PF_TMP/ctl.err" >"$C/compact"
pf_ok $? "/bin/echo 1 > compact (O_TRUNC) succeeds" || pf_diag_file "$PF_TMP/ctl.err"
env echo abc 2>"$PF_TMP/ctl.err" >"$C/mem_limit"
[ $? -ne 0 ] && [ "$(grep -c "Invalid argument" "$PF_TMP/ctl.err")" -ge 1 ]
pf_ok $? "a bad value is still refused by its write" || pf_diag_file "$PF_TMP/ctl.err"
exec 3>"$C/defrag_ratio"
echo 40 >&3
exec 3>&-
pf_is "$(cat "$C/defrag_ratio")" 40 "a value written through a descriptor kept open"
write_ctl defrag_ratio 35
pf_ok $([ -d "$C" ] && [ -f "$C/mm_stat" ]; echo $?) "/.ctl is still there"

# --- folding: scan mode stores duplicates apart until the fold trigger
head -c 4096 /dev/urandom >"$PF_TMP/page"
for i in $(seq 64); do cat "$PF_TMP/page"; done >"$PF_TMP/dups"
for i in $(seq 32); do head -c 4096 /dev/urandom; done >"$PF_TMP/uniq"
cat "$PF_TMP/dups" "$PF_TMP/uniq" >"$PF_TMP/mix"
cp "$PF_TMP/mix" "$M/dup-a"
cp "$PF_TMP/dups" "$M/dup-b"
pf_is "$(mm 10)" 0 "fold=scan: nothing folded as it is written"
orig=$(mm 1)
compr=$(mm 2)
write_ctl fold 1
pf_ok $? "fold trigger"
pf_ge "$(mm 10)" 128 "after the fold scan, the 128 copies share objects (pages_folded)"
pf_is "$(mm 1)" "$orig" "... orig_data_size unchanged"
pf_ok $(($(mm 2) <= compr - 126 * 4000 ? 0 : 1)) \
	"... compr_data_size fell by at least 126 pages' worth"
pf_is "$(fcol /dup-b 5)" 64 "/.ctl/files: every page of dup-b is folded"
# own + shared bytes over the files: each object counted once, as
# compr_data_size counts it (to rounding: one byte a file at most)
sum=$(awk 'NR > 1 { s += $8 + $9 } END { print s + 0 }' "$C/files")
nfiles=$(awk 'NR > 1' "$C/files" | wc -l)
pf_ok $(( sum >= $(mm 2) - nfiles && sum <= $(mm 2) + nfiles ? 0 : 1 )) \
	"/.ctl/files: own_bytes + shared_bytes over the files = compr_data_size ($sum, $(mm 2))"
pf_is "$(fcol /dup-b 8)" 0 "/.ctl/files: dup-b owns nothing alone (all its pages are shared)"
pf_ok $(( $(fcol /dup-a 8) >= 32 * 4096 ? 0 : 1 )) \
	"/.ctl/files: dup-a owns its 32 random pages ($(fcol /dup-a 8) bytes)"
cmp "$M/dup-a" "$PF_TMP/mix" && cmp "$M/dup-b" "$PF_TMP/dups"
pf_ok $? "folded files read back intact"
write_ctl fold inline
before=$(mm 10)
cp "$PF_TMP/dups" "$M/dup-c"
pf_is "$(($(mm 10) - before))" 64 "fold=inline: a third copy folds as it is written"
pf_ge "$(st fold_hits)" 64 "fold_hits counts them"

# --- compaction and shrinking: fragment the pool, then rearrange it
write_ctl defrag_ratio 100     # keep the background thread out of the way
frag() { # FILE: 2048 pages of real memory, then free 3 in 4 of them
	"$PF_HELPERS/pf-memdump" "$PF_TMP/mem.pages" 8 "$$" "$PF_PID" >/dev/null
	dd if="$PF_TMP/mem.pages" of="$M/$1" bs=1M status=none
	cp "$PF_TMP/mem.pages" "$PF_TMP/$1.ref"
	"$PF_HELPERS/pf-punch" "$M/$1" 4 1 >/dev/null &&
		"$PF_HELPERS/pf-punch" "$PF_TMP/$1.ref" 4 1 >/dev/null
}
frag frag1
used0=$(mm 3)
comp0=$(mm 7)
write_ctl shrink 1
pf_ok $? "shrink trigger"
pf_ge "$(mm 7)" $((comp0 + 1)) "shrink: pages_compacted grew"
pf_le "$(mm 3)" $((used0 - 4096)) "shrink: mem_used_total fell"
cmp "$M/frag1" "$PF_TMP/frag1.ref"
pf_ok $? "the shrunk file reads back intact"

frag frag2
used0=$(mm 3)
comp0=$(mm 7)
write_ctl defrag_ratio 50
write_ctl compact 1
pf_ok $? "compact trigger"
pf_ge "$(mm 7)" $((comp0 + 1)) "compact: pages_compacted grew"
pf_le "$(mm 3)" $((used0 - 4096)) "compact: mem_used_total fell"
cmp "$M/frag2" "$PF_TMP/frag2.ref"
pf_ok $? "the compacted file reads back intact"

# --- mem_used_max: a gauge, reset by writing 0
max=$(cat "$C/mem_used_max")
pf_ge "$max" "$(mm 3)" "mem_used_max >= mem_used_total"
rm "$M"/dup-* "$M"/frag*
pf_is "$(cat "$C/mem_used_max")" "$max" "mem_used_max stays when use falls"
# Nothing is written meanwhile, but the background compactor may still be
# returning the freed pages: use can only fall while we look.
before=$(mm 3)
write_ctl mem_used_max 0
pf_ok $? "mem_used_max <- 0"
newmax=$(cat "$C/mem_used_max")
pf_le "$newmax" "$before" "mem_used_max reset to the current use"
pf_ge "$newmax" "$(mm 3)" "... which it stays at or above"
pf_ok $((newmax < max ? 0 : 1)) "... below the old peak"

# --- ENOSPC at the limit, nothing lost
head -c $((32 << 20)) /dev/urandom >"$PF_TMP/random"
head -c $((32 << 20)) /dev/urandom >"$PF_TMP/random2"
cp "$PF_TMP/random" "$M/keep"   # 32 MiB already stored
cmp -n 4096 "$M/keep" "$PF_TMP/random" >/dev/null
used=$(mm 3)
write_ctl mem_limit $((used + (8 << 20)))
dd if="$PF_TMP/random2" of="$M/full" bs=64k oflag=direct 2>"$PF_TMP/dd.err"
ddst=$?
pf_ok $([ $ddst -ne 0 ] && grep -q "No space left on device" "$PF_TMP/dd.err"; echo $?) \
	"writing past the limit fails with ENOSPC" || pf_diag_file "$PF_TMP/dd.err"
size=$(stat -c %s "$M/full")
pf_ok $((size > 0 && size < (32 << 20) ? 0 : 1)) "part of the file was stored ($size bytes)"
cmp -n "$size" "$M/full" "$PF_TMP/random2" >/dev/null
pf_ok $? "everything written before the error reads back"
cmp "$M/keep" "$PF_TMP/random" >/dev/null
pf_ok $? "the file stored before is intact"
pf_le "$(mm 3)" "$(cat "$C/mem_limit")" "mem_used_total stays within the limit"
head -c 4096 /dev/urandom >"$PF_TMP/newpage"
dd if="$PF_TMP/newpage" of="$M/keep" bs=4096 seek=100 conv=notrunc oflag=direct \
	status=none 2>"$PF_TMP/dd.err"
pf_ok $([ $? -ne 0 ] && grep -q "No space" "$PF_TMP/dd.err"; echo $?) \
	"overwriting a page at the limit fails with ENOSPC"
cmp "$M/keep" "$PF_TMP/random" >/dev/null
pf_ok $? "... and the page keeps its old contents"
pf_ge "$(st enospc_reqs)" 2 "stat enospc_reqs counts the refusals"
rm "$M/full"
dd if="$PF_TMP/newpage" of="$M/keep" bs=4096 seek=100 conv=notrunc oflag=direct status=none
pf_ok $? "after freeing memory, the write succeeds"
dd if="$M/keep" bs=4096 skip=100 count=1 status=none | cmp - "$PF_TMP/newpage" >/dev/null
pf_ok $? "... and reads back"

# --- only the mounting user (or root) may write; others may read
pf_mount -o allow_other || { pf_ok 1 "mount with allow_other"; pf_done; }
M2=$PF_MNT
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
as_nobody cat "$M2/.ctl/mm_stat" >/dev/null
pf_ok $? "another user can read mm_stat (allow_other)"
as_nobody sh -c "echo 1G > '$M2/.ctl/mem_limit'" 2>"$PF_TMP/nobody.err"
[ $? -ne 0 ] && grep -q "Permission denied" "$PF_TMP/nobody.err"
pf_ok $? "another user cannot write mem_limit (EACCES)"
pf_is "$(cat "$M2/.ctl/mem_limit")" 0 "... which is unchanged"
echo 1G >"$M2/.ctl/mem_limit"
pf_is "$(cat "$M2/.ctl/mem_limit")" 1073741824 "root can write it"

pf_done
