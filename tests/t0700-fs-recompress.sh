#!/bin/bash
# Idle pages and the cold codec through the mount: pages of real programs'
# memory marked idle and recompressed take less memory and read back byte
# for byte; reads make pages young again; recompress_after does it by
# itself; the settings read back and refuse bad values, leaving the old
# value in place.
. "$(dirname "$0")/lib.sh"
pf_require root fuse

# One page per frame: the exact counts below are those of lone pages
# (groups have their own test, t0710).
pf_mount -o recompress_after=0,group_size=1 || { pf_ok 1 "mount"; pf_done; }
M=$PF_MNT
C=$M/.ctl

mm() { awk -v n="$1" '{ print $n }' "$C/mm_stat"; }   # mm_stat column N
st() { awk -v k="$1" '$1 == k { print $2 }' "$C/stat"; }
variant() { # IN OUT TAG: IN's pages that hold data, each made distinct by
	# its first 8 bytes (TAG and the page's number), as fresh test data
	perl -e 'binmode STDIN; binmode STDOUT; $/ = \4096; my $n = 0;
		while (<STDIN>) { next if /^\0*$/; substr($_, 0, 8) =
			pack("NN", $ARGV[0], $n++); print }' "$3" <"$1" >"$2"
}
own_objs() { # FILE: its pages that hold an object no other page shares
	awk -v p="/$1" '$1 == p { print $3 - $4 - $5 }' "$C/files"
}
write_ctl() { # FILE VALUE: like echo, with the error message kept
	echo "$2" 2>"$PF_TMP/ctl.err" >"$C/$1"
}
dump() { pf_dump_real "$@"; } # OUT MIB

pf_is "$(cat "$C/recompress_after")" 0 "recompress_after as mounted"
pf_is "$(cat "$C/recomp_algorithm")" zstd:6 "recomp_algorithm: zstd:6 by default"

pages=$(dump "$PF_TMP/mem.pages" 24)
pf_ge "$pages" 1024 "dumped at least 4 MiB of real memory"
dd if="$PF_TMP/mem.pages" of="$M/cold" bs=1M oflag=direct status=none
pf_ok $? "wrote the dump into the mount"

# Nothing is idle yet: the trigger finds nothing.
write_ctl recompress 1
pf_ok $? "recompress trigger"
pf_is "$(mm 15)" 0 "nothing idle: no page recompressed (mm_stat column 15)"

used0=$(mm 3)
compr0=$(mm 2)
write_ctl idle all
pf_ok $? "idle all"
write_ctl recompress 1
moved=$(mm 15)
saved=$(mm 16)
used1=$(mm 3)
pf_diag "recompressed $moved of $pages pages, saved $saved bytes;" \
	"mem_used_total $used0 -> $used1"
# Folded (shared) objects stay as they are; every other object is tried
# once, and either moved or kept because it would not shrink.
unshared=$(( $(st pool_objs) - $(st fold_objs) ))
pf_is "$(( $(st recomp_total) + $(st recomp_kept) ))" "$unshared" \
	"every unshared object was tried (moved or kept)"
pf_ge "$moved" $((unshared * 3 / 4)) "most of them moved to the cold codec"
pf_is "$(st recomp_pages)" "$moved" "stat recomp_pages = mm_stat column 15"
pf_is "$(st recomp_saved)" "$saved" "stat recomp_saved = mm_stat column 16"
pf_is "$(mm 2)" $((compr0 - saved)) "compr_data_size fell by exactly recomp_saved"
pf_le "$used1" $((used0 - saved / 2)) "mem_used_total fell by at least half of what was saved"
cmp "$M/cold" "$PF_TMP/mem.pages" >"$PF_TMP/cmp.out" 2>&1
pf_ok $? "recompressed file reads back intact" || pf_diag_file "$PF_TMP/cmp.out"
dd if="$M/cold" bs=4k iflag=direct status=none | cmp -s - "$PF_TMP/mem.pages"
pf_ok $? "... also through 4 KiB direct reads"

# Those reads made every page young: idle again, nothing more to move.
total=$(st recomp_total)
kept=$(st recomp_kept)
write_ctl recompress 1
pf_is "$(st recomp_total)/$(st recomp_kept)" "$total/$kept" \
	"after the reads, nothing is idle"

# A cold page rewritten is stored with LZ4 again.
dd if="$PF_TMP/mem.pages" of="$M/cold" bs=4k count=16 conv=notrunc \
	oflag=direct status=none
pf_le "$(mm 15)" $((moved - 1)) "rewritten pages left the cold codec"
cmp "$M/cold" "$PF_TMP/mem.pages"
pf_ok $? "rewritten file still intact"

# lz4hc as the cold codec.
write_ctl recomp_algorithm lz4hc:9
pf_ok $? "recomp_algorithm lz4hc:9 accepted"
pf_is "$(cat "$C/recomp_algorithm")" lz4hc:9 "recomp_algorithm reads back lz4hc:9"
pf_is "$(st recomp_algorithm)" lz4hc:9 "stat shows it too"
variant "$PF_TMP/mem.pages" "$PF_TMP/hc.pages" 1
before=$(st recomp_total)
dd if="$PF_TMP/hc.pages" of="$M/hc" bs=1M oflag=direct status=none
objs=$(own_objs hc)
write_ctl idle 1
write_ctl recompress 1
pf_ge "$objs" 256 "the lz4hc file added $objs objects of its own"
pf_ge "$(st recomp_total)" $((before + objs / 2)) \
	"lz4hc moved most of the new file's $objs objects"
cmp "$M/hc" "$PF_TMP/hc.pages"
pf_ok $? "lz4hc pages read back intact"
write_ctl recomp_algorithm zstd

# recompress_after: the daemon does it by itself.
variant "$PF_TMP/mem.pages" "$PF_TMP/auto.pages" 2
write_ctl recompress_after 1
pf_ok $? "recompress_after 1 accepted"
pf_is "$(cat "$C/recompress_after")" 1 "recompress_after reads back 1"
cold0=$(st recomp_pages)
dd if="$PF_TMP/auto.pages" of="$M/auto" bs=1M oflag=direct status=none
objs=$(own_objs auto)
pf_ge "$objs" 256 "the new file added $objs objects of its own"
want=$((cold0 + objs / 2))
for t in $(seq 100); do
	[ "$(st recomp_pages)" -ge $want ] && break
	sleep 0.1
done
pf_ge "$(st recomp_pages)" $want \
	"recompress_after 1: most of the new file's $objs objects went cold within 10 s"
pf_diag "background: $(( $(st recomp_pages) - cold0 )) pages after ~$((t / 10)) s"
cmp "$M/auto" "$PF_TMP/auto.pages"
pf_ok $? "pages recompressed in the background read back intact"
write_ctl recompress_after 0

# A cold intake: written pages go straight to the cold codec, in less
# memory than the same pages took in LZ4, and read back byte for byte.
variant "$PF_TMP/mem.pages" "$PF_TMP/intake.pages" 3
write_ctl intake zstd:1
pf_ok $? "intake zstd:1 accepted"
cold0=$(st recomp_pages)
in0=$(st intake_cold)
moved0=$(st recomp_total)
compr0=$(mm 2)
dd if="$PF_TMP/intake.pages" of="$M/intake" bs=1M oflag=direct status=none
objs=$(own_objs intake)
pf_ge "$objs" 256 "the intake file added $objs objects of its own"
pf_ge "$(( $(st intake_cold) - in0 ))" $((objs * 9 / 10)) \
	"intake_cold: at least 9 in 10 of its objects arrived cold"
pf_ge "$(( $(st recomp_pages) - cold0 ))" $((objs * 9 / 10)) \
	"... and count in recomp_pages"
pf_is "$(st recomp_total)" "$moved0" "... without a recompression move"
cmp "$M/intake" "$PF_TMP/intake.pages"
pf_ok $? "cold-intake pages read back intact"
write_ctl intake lz4
variant "$PF_TMP/mem.pages" "$PF_TMP/lz4.pages" 4
compr1=$(mm 2)
dd if="$PF_TMP/lz4.pages" of="$M/lz4" bs=1M oflag=direct status=none
compr2=$(mm 2)
pf_diag "the same pages took $((compr1 - compr0)) compressed bytes with" \
	"intake zstd:1, $((compr2 - compr1)) with lz4"
pf_ok $(( (compr1 - compr0) * 10 < (compr2 - compr1) * 9 ? 0 : 1 )) \
	"intake zstd:1 held them in under 0.9 of LZ4's bytes (compr_data_size)"

# read_idle: a read leaves a page idle, so the trigger moves what was read.
write_ctl read_idle 1
moved0=$(st recomp_total)
kept0=$(st recomp_kept)
objs=$(own_objs lz4)
dd if="$M/lz4" of=/dev/null bs=1M iflag=direct status=none
write_ctl recompress 1
pf_is "$(( $(st recomp_total) + $(st recomp_kept) - moved0 - kept0 ))" "$objs" \
	"read_idle: reading the lz4 file left exactly its $objs objects idle"
write_ctl read_idle 0
variant "$PF_TMP/mem.pages" "$PF_TMP/young.pages" 5
dd if="$PF_TMP/young.pages" of="$M/young" bs=1M oflag=direct status=none
moved0=$(st recomp_total)
kept0=$(st recomp_kept)
dd if="$M/young" of=/dev/null bs=1M iflag=direct status=none
write_ctl recompress 1
pf_is "$(( $(st recomp_total) + $(st recomp_kept) - moved0 - kept0 ))" 0 \
	"read_idle 0: pages read are young, none moved"
cmp "$M/lz4" "$PF_TMP/lz4.pages" && cmp "$M/young" "$PF_TMP/young.pages"
pf_ok $? "pages read back intact"

# zram's forms of the same triggers and setting. Everything stored so far
# goes cold first, so that only the new file's pages are candidates.
write_ctl idle all
write_ctl recompress 1
variant "$PF_TMP/mem.pages" "$PF_TMP/zram.pages" 6
huge0=$(st huge_pages)
dd if="$PF_TMP/zram.pages" of="$M/zramform" bs=1M oflag=direct status=none
objs=$(own_objs zramform)
raw=$(( $(st huge_pages) - huge0 ))
moved0=$(st recomp_total)
kept0=$(st recomp_kept)
write_ctl idle all
write_ctl recompress "type=idle threshold=4096"
pf_is "$(( $(st recomp_total) + $(st recomp_kept) - moved0 - kept0 ))" "$raw" \
	"recompress type=idle threshold=4096: only its $raw raw (4096-byte) objects tried"
moved0=$(st recomp_total)
kept0=$(st recomp_kept)
write_ctl recompress "type=idle threshold=1 algo=lz4hc:9 priority=1"
pf_ok $? "recompress type=idle threshold=1 algo=lz4hc:9 priority=1 accepted"
pf_is "$(( $(st recomp_total) + $(st recomp_kept) - moved0 - kept0 ))" "$((objs - raw))" \
	"... it tried the rest of the new file's $objs objects"
pf_is "$(cat "$C/recomp_algorithm")" zstd:6 "... with lz4hc for this run only"
cmp "$M/zramform" "$PF_TMP/zram.pages"
pf_ok $? "pages recompressed with algo= read back intact"
write_ctl recomp_algorithm "algo=zstd:3 priority=1"
pf_is "$(cat "$C/recomp_algorithm")" zstd:3 "recomp_algorithm in zram's form: algo=zstd:3 priority=1"
write_ctl recomp_algorithm zstd
write_ctl idle 600
[ $? -ne 0 ] && grep -q "Invalid argument" "$PF_TMP/ctl.err"
pf_ok $? "idle 600 without recompress_after: EINVAL (no ages are kept)"
write_ctl recompress_after 3600
write_ctl idle 600
pf_ok $? "idle 600 with recompress_after set: accepted"
write_ctl recompress_after 0
for v in "type=cold" "type=idle type=huge" "threshold" "algo=brotli" "speed=1"; do
	write_ctl recompress "$v"
	[ $? -ne 0 ] && grep -q "Invalid argument" "$PF_TMP/ctl.err"
	pf_ok $? "recompress '$v': Invalid argument"
done
for v in "threshold=5000" "priority=2" "algo=zstd:99"; do
	write_ctl recompress "$v"
	[ $? -ne 0 ] && grep -q "out of range" "$PF_TMP/ctl.err"
	pf_ok $? "recompress '$v': Numerical result out of range"
done

# Bad values: refused with an errno echo reports, setting unchanged.
bad() { # FILE VALUE DESC
	local old
	old=$(cat "$C/$1" 2>/dev/null)
	write_ctl "$1" "$2"
	local rc=$?
	[ $rc -ne 0 ] && [ -s "$PF_TMP/ctl.err" ] && [ "$(cat "$C/$1" 2>/dev/null)" = "$old" ]
	pf_ok $? "$1: $3 refused, value unchanged" || pf_diag_file "$PF_TMP/ctl.err"
}
bad recompress_after -1 "a negative number"
bad recompress_after abc "garbage"
bad recompress_after 1.5 "a fraction"
bad recompress_after "" "an empty value"
bad recompress_after 99999999 "more than a year"
bad recompress_after 99999999999999999999999 "a 64-bit overflow"
bad recomp_algorithm gzip "an unknown codec"
bad recomp_algorithm zstd:0 "level 0"
bad recomp_algorithm zstd:99 "level 99"
bad recomp_algorithm "zstd 3" "a blank"
bad recomp_algorithm lz4hc:13 "lz4hc level 13"
bad recomp_algorithm "" "an empty value"
for v in 0 2 none; do
	write_ctl idle "$v"
	[ $? -ne 0 ] && [ -s "$PF_TMP/ctl.err" ]
	pf_ok $? "idle: '$v' refused"
done
for v in 0 2 all; do
	write_ctl recompress "$v"
	[ $? -ne 0 ] && [ -s "$PF_TMP/ctl.err" ]
	pf_ok $? "recompress: '$v' refused"
done
cat "$C/recompress" >/dev/null 2>&1
pf_ok $((! $?)) "recompress is write-only"

# Unmounting leaves nothing behind; the daemon exits cleanly (pf_done).
pf_done
