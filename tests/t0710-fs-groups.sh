#!/bin/bash
# Cold groups through the mount: real programs' memory recompressed in
# groups takes less memory than one frame a page and reads back byte for
# byte; pages overwritten or punched inside groups leave them (the others
# still read back), groups whose pages all left are freed, a recompress
# regroups what is left of mostly dead groups; group_size reads back and
# refuses bad values.
. "$(dirname "$0")/lib.sh"
pf_require root fuse

pf_mount -o recompress_after=0 || { pf_ok 1 "mount"; pf_done; }
M=$PF_MNT
C=$M/.ctl

mm() { awk -v n="$1" '{ print $n }' "$C/mm_stat"; }   # mm_stat column N
st() { awk -v k="$1" '$1 == k { print $2 }' "$C/stat"; }
write_ctl() { # FILE VALUE: like echo, with the error message kept
	echo "$2" 2>"$PF_TMP/ctl.err" >"$C/$1"
}
dump() { pf_dump_real "$@"; } # OUT MIB
variant() { # IN OUT TAG: IN's pages that hold data, each made distinct by
	# its first 8 bytes (TAG and the page's number): no page folds
	perl -e 'binmode STDIN; binmode STDOUT; $/ = \4096; my $n = 0;
		while (<STDIN>) { next if /^\0*$/; substr($_, 0, 8) =
			pack("NN", $ARGV[0], $n++); print }' "$3" <"$1" >"$2"
}
same() { # DESC: the mount's file reads back as the reference, 4 KiB and 1 MiB
	cmp "$M/data" "$PF_TMP/ref" >"$PF_TMP/cmp.out" 2>&1
	pf_ok $? "$1 (1 MiB reads)" || pf_diag_file "$PF_TMP/cmp.out"
	dd if="$M/data" bs=4k iflag=direct status=none | cmp -s - "$PF_TMP/ref"
	pf_ok $? "... and through 4 KiB direct reads"
}
cold() { write_ctl idle all && write_ctl recompress 1; }

pf_is "$(cat "$C/group_size")" 8 "group_size: 8 by default"
pf_is "$(st group_size)" 8 "... and in stat"
pf_is "$(awk '{ print NF }' "$C/mm_stat")" 19 "mm_stat: 19 columns"

pages=$(dump "$PF_TMP/mem.pages" 24)
pf_ge "$pages" 1024 "dumped at least 4 MiB of real memory"
variant "$PF_TMP/mem.pages" "$PF_TMP/ref" 1
npages=$(( $(stat -c %s "$PF_TMP/ref") / 4096 ))

# One frame a page first, for the figure groups must beat.
write_ctl group_size 1
dd if="$PF_TMP/ref" of="$M/data" bs=1M oflag=direct status=none
pf_ok $? "wrote the dump into the mount"
cold
pf_ok $? "recompressed one page a frame"
pf_is "$(mm 17)/$(mm 18)" 0/0 "group_size 1: no group (mm_stat columns 17, 18)"
lone=$(mm 2)
rm -f "$M/data"

write_ctl group_size 8
pf_is "$(cat "$C/group_size")" 8 "group_size 8 reads back"
dd if="$PF_TMP/ref" of="$M/data" bs=1M oflag=direct status=none
cold
pf_ok $? "recompressed in groups of 8"
gp=$(mm 17)
ng=$(mm 18)
pf_diag "$gp pages in $ng groups; compr_data_size $(mm 2), one page a" \
	"frame $lone; group_saved $(mm 19)"
huge=$(st huge_pages)
pf_ge "$gp" $(( (npages - huge) * 9 / 10 )) "nearly every page not stored raw ($huge) is in a group"
pf_le "$((ng * 5))" "$gp" "... of 5 pages or more on average"
pf_le "$(mm 2)" $((lone * 97 / 100)) "groups hold at least 3% less than one frame a page"
pf_is "$(st group_pages)/$(st groups)/$(st group_saved)" "$gp/$ng/$(mm 19)" \
	"stat group_pages, groups, group_saved = mm_stat columns 17..19"
scratch0=$(st group_scratch_bytes)
same "grouped pages read back intact"
pf_ge "$(( $(st group_scratch_bytes) - scratch0 ))" 65536 "readers' group scratch is counted"

# Overwrite single pages and punch runs inside groups.
for p in 3 100 101 777 1001; do
	[ "$p" -lt "$npages" ] || continue
	head -c 4096 /dev/urandom >"$PF_TMP/page"
	dd if="$PF_TMP/page" of="$M/data" bs=4k seek="$p" conv=notrunc \
		oflag=direct status=none
	dd if="$PF_TMP/page" of="$PF_TMP/ref" bs=4k seek="$p" conv=notrunc \
		status=none
done
pf_is "$(mm 17)" $((gp - 5)) "five overwritten pages left their groups"
pf_is "$(mm 18)" "$ng" "... which stay"
fallocate -p -o $((200 * 4096)) -l $((64 * 4096)) "$M/data"
pf_ok $? "punched 64 pages"
fallocate -p -o $((200 * 4096)) -l $((64 * 4096)) "$PF_TMP/ref"
pf_le "$(mm 18)" $((ng - 6)) "groups whose pages were all punched are freed"
same "after overwrites and punches, every page reads back"

# Overwrite 7 of every 8 pages of a range: the next recompress (the new
# pages are young, those reads made the rest young too: mark them idle
# first) regroups what is left.
cold
compr1=$(mm 2)
ng1=$(mm 18)
dd if=/dev/urandom of="$PF_TMP/rand" bs=4k count=$((npages)) status=none
for p in $(seq 400 600); do
	[ $((p % 8)) -eq 0 ] && continue
	[ "$p" -lt "$npages" ] || continue
	dd if="$PF_TMP/rand" of="$M/data" bs=4k skip="$p" seek="$p" \
		conv=notrunc oflag=direct status=none
	dd if="$PF_TMP/rand" of="$PF_TMP/ref" bs=4k skip="$p" seek="$p" \
		conv=notrunc status=none
done
compr2=$(mm 2)
write_ctl recompress 1
pf_ok $? "recompress with mostly dead groups"
pf_le "$(mm 18)" $((ng1 - 10)) "mostly dead groups were regrouped ($ng1 -> $(mm 18))"
pf_le "$(mm 2)" $((compr2 - 1)) "... giving back their dead bytes ($compr2 -> $(mm 2))"
pf_diag "compr_data_size $compr1 -> $compr2 -> $(mm 2)"
same "after regrouping, every page reads back"

# Bad values are refused, the old one stays.
for v in 0 17 -1 x ""; do
	write_ctl group_size "$v"
	pf_ok $((! $?)) "group_size '$v' is refused"
done
pf_is "$(cat "$C/group_size")" 8 "group_size still 8"
rm -f "$M/data"
pf_is "$(mm 17)/$(mm 18)" 0/0 "file removed: no group left"
pf_done
