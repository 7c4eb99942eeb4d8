#!/bin/bash
# The disk tier through the mount: writeback's words and bad values, what
# bd_stat and the memory figures do when pages go to the backing file and
# come back, a backing file on a pagefold mount or not a regular file is
# refused, a backing file on a small full filesystem (a loop-mounted ext4
# image) leaves the pages in memory, and a backing device that fails reads
# (the loop device shrunk under the file: reads past its end fail) gives
# EIO for the pages on it and for nothing else; the automatic policy
# (writeback_after + mem_high) moves idle pages by itself; grouped pages
# stay in memory, pages on disk stay out of groups.
. "$(dirname "$0")/lib.sh"
pf_require root fuse loop

# Our own setup beyond lib.sh's: ext4 images on loop devices, mounted. They
# go after the pagefold mounts that keep files open on them.
wb_mnts=()
wb_cleanup() {
	local s=$? m
	for m in "${pf_mnts[@]}"; do
		pf_is_mounted "$m" && fusermount3 -u "$m" 2>/dev/null
	done
	sleep 0.2
	for m in "${wb_mnts[@]}"; do
		mountpoint -q "$m" && { umount "$m" 2>/dev/null || umount -l "$m"; }
	done
	return $s
}
trap 'wb_cleanup; pf_cleanup' EXIT

mkext4() { # DIR MIB: an ext4 image of MIB MiB mounted on DIR; its loop
	# device in $ext4_loop
	mkdir -p "$1"
	truncate -s "${2}M" "$1.img"
	mkfs.ext4 -q -F -b 4096 -O ^has_journal "$1.img" >/dev/null 2>&1 || return 1
	ext4_loop=$(losetup -f --show "$1.img") || return 1
	pf_track_loop "$ext4_loop"
	mount "$ext4_loop" "$1" || return 1
	wb_mnts+=("$1")
}

# --- a mount with a backing file
back=$PF_TMP/back
pf_mount_backing recompress_after=0
mm() { pf_col "$C/mm_stat" "$1"; }
bd() { pf_col "$C/bd_stat" "$1"; }
st() { pf_row "$C/stat" "$1"; }
write_ctl() { # FILE VALUE
	echo "$2" 2>"$PF_TMP/ctl.err" >"$C/$1"
}
errno_of() { # the message of the last write_ctl
	sed 's/.*: //' "$PF_TMP/ctl.err"
}

pf_is "$(cat "$C/backing_dev")" "$back" "backing_dev reads back the file"
pf_is "$(wc -w <"$C/bd_stat")" 8 "bd_stat: zram's 3 columns and 5 of pagefold's"
pf_is "$(cat "$C/bd_stat" | tr -s ' ' | sed 's/^ //')" "0 0 0 0 0 0 0 0" "bd_stat all 0 at first"
pf_is "$(stat -c %s "$back")" 0 "the backing file is empty at mount"

# --- writeback's words
for w in idle huge huge_idle incompressible type=idle type=huge; do
	write_ctl writeback "$w"
	pf_ok $? "writeback '$w' is taken"
done
for w in "" bogus 1 "idle huge" type= "type=bogus" page_index=1 IDLE; do
	write_ctl writeback "$w"
	pf_is "$?:$(errno_of)" "1:Invalid argument" "writeback '$w' is refused with EINVAL"
done
pf_fails "cat writeback: write-only" cat "$C/writeback"
for v in -1 x 1K 18446744073709551616; do
	write_ctl writeback_limit "$v"
	pf_ok $(( ! $? )) "writeback_limit '$v' refused ($(errno_of))"
done
write_ctl writeback_limit 0
pf_is "$(cat "$C/writeback_limit")" 0 "writeback_limit reads back"
write_ctl writeback_limit_enable 2
pf_ok $(( ! $? )) "writeback_limit_enable 2 refused ($(errno_of))"
pf_is "$(cat "$C/writeback_limit_enable")" 0 "writeback_limit_enable still 0"
write_ctl writeback_after x
pf_ok $(( ! $? )) "writeback_after x refused"
write_ctl mem_high 1Q
pf_ok $(( ! $? )) "mem_high 1Q refused"
write_ctl mem_high 1M
pf_is "$(cat "$C/mem_high")" 1048576 "mem_high takes a size"
write_ctl mem_high 0

# --- backing_dev: what is refused
write_ctl backing_dev "$M/x"
pf_is "$(errno_of)" "Resource deadlock avoided" "a backing file on this pagefold mount: EDEADLK"
write_ctl backing_dev /dev/null
pf_is "$(errno_of)" "Invalid argument" "a backing file that is a device: EINVAL"
write_ctl backing_dev relative/path
pf_is "$(errno_of)" "Invalid argument" "a relative path: EINVAL"
write_ctl backing_dev "$PF_TMP"
pf_ok $(( ! $? )) "a directory is refused ($(errno_of))"
pf_is "$(cat "$C/backing_dev")" "$back" "backing_dev unchanged after refusals"
mkdir -p "$PF_TMP/mnt-refused"
"$PAGEFOLD" -f -o backing_file="$M/y" "$PF_TMP/mnt-refused" >"$PF_TMP/refused.log" 2>&1
pf_is "$?" 1 "-o backing_file on a pagefold mount: the mount fails"
grep -q "pagefold mount" "$PF_TMP/refused.log"
pf_ok $? "... and says why" || pf_diag_file "$PF_TMP/refused.log"
"$PAGEFOLD" -f -o backing_file=/dev/zero "$PF_TMP/mnt-refused" >"$PF_TMP/refused.log" 2>&1
pf_is "$?" 1 "-o backing_file=/dev/zero: the mount fails"

# --- pages out and back
# real programs' pages (compressible), random (raw) pages, and a copy of
# the first part (folded)
cat /usr/bin/* 2>/dev/null | head -c 8M >"$PF_TMP/text"
head -c 2M /dev/urandom >"$PF_TMP/rand"
head -c 8M /dev/urandom >"$PF_TMP/over"
cat "$PF_TMP/text" "$PF_TMP/rand" "$PF_TMP/text" >"$PF_TMP/data"
cp "$PF_TMP/data" "$M/data"
echo 1 >"$C/shrink"
pages=$(( $(stat -c %s "$PF_TMP/data") / 4096 ))
mem0=$(mm 3)
write_ctl writeback huge
huge=$(mm 8)
pf_is "$(bd 1)" "$huge" "writeback huge: bd_count == the raw pages ($huge)"
pf_is "$(bd 3)" "$huge" "bd_writes counts them"
write_ctl idle all
write_ctl writeback idle
pf_is "$?" 0 "writeback idle"
pf_is "$(bd 1)" "$pages" "every page is on disk: bd_count $pages"
pf_is "$(mm 2)" 0 "compr_data_size: nothing compressed left in memory"
pf_is "$(mm 1)" "$((pages * 4096))" "orig_data_size unchanged"
mem1=$(mm 3)
pf_diag "mem_used_total $mem0 -> $mem1 for $pages pages; file $(bd 4) B holding $(bd 5) B in $(bd 6) objects, $(bd 7)% fragmented"
pf_ok $((mem1 >= mem0 / 5)) "mem_used_total fell to less than a fifth"
pf_le "$(bd 6)" $((pages / 2 + 600)) "the copied half is written once (objects $(bd 6))"
alloc=$(( $(stat -c %b "$back") * $(stat -c %B "$back") ))
pf_le "$alloc" $(( $(bd 4) + 65536 )) "the file holds what bd_stat says ($alloc)"
cmp -s "$PF_TMP/data" "$M/data"
pf_ok $? "the file reads back exact from the backing file"
pf_ge "$(bd 2)" "$pages" "bd_reads counts the pages read"
pf_is "$(bd 1)" "$pages" "pages read stay on disk"
write_ctl backing_dev none
pf_is "$(errno_of)" "Device or resource busy" "backing_dev cannot change while pages are out"

# overwrite a quarter, discard a quarter
dd if="$PF_TMP/over" of="$M/data" bs=4096 count=$((pages / 4)) conv=notrunc status=none
dd if="$PF_TMP/over" of="$PF_TMP/data" bs=4096 count=$((pages / 4)) conv=notrunc status=none
pf_is "$(bd 1)" $((pages - pages / 4)) "overwritten pages leave the disk"
fallocate -p -o $((pages / 2 * 4096)) -l $((pages / 4 * 4096)) "$M/data"
fallocate -p -o $((pages / 2 * 4096)) -l $((pages / 4 * 4096)) "$PF_TMP/data"
pf_is "$(bd 1)" $((pages / 2)) "discarded pages leave the disk"
cmp -s "$PF_TMP/data" "$M/data"
pf_ok $? "the file still reads back exact"
rm "$M/data"
pf_is "$(bd 1)" 0 "deleted: bd_count 0"
pf_is "$(bd 5)" 0 "deleted: no live bytes on disk"
pf_ge "$(stat -c %b "$back")" 1 "freed blocks wait for the next writeback or compact"
write_ctl compact 1	# punches what was freed
pf_is "$(stat -c %b "$back")" 0 "compact punches the backing file's free blocks out"
pf_ge "$(st bd_punched)" 1 "bd_punched counts them"

# the limit
cp "$PF_TMP/text" "$M/t"
write_ctl writeback_limit 100
write_ctl writeback_limit_enable 1
write_ctl idle all
write_ctl writeback idle
pf_is "$(bd 1)" 100 "writeback_limit 100: 100 pages move"
pf_is "$(cat "$C/writeback_limit")" 0 "the limit is used up"
write_ctl writeback idle
pf_is "$(errno_of)" "Input/output error" "writeback at a used-up limit: EIO (as zram)"
write_ctl writeback_limit_enable 0
rm "$M/t"

# cold groups: a grouped page's bytes are its group's, shared; writeback
# leaves grouped pages in memory and takes the others
write_ctl group_size 8
cp "$PF_TMP/text" "$PF_TMP/gtext"
cp "$PF_TMP/text" "$M/g"
write_ctl idle all
write_ctl recompress 1
gp=$(st group_pages)
pf_ge "$gp" 1 "pages grouped ($gp)"
dd if="$PF_TMP/over" of="$M/g" bs=4096 count=64 conv=notrunc status=none
dd if="$PF_TMP/over" of="$PF_TMP/gtext" bs=4096 count=64 conv=notrunc status=none
gp=$(st group_pages)
write_ctl idle all
write_ctl writeback idle
pf_ge "$(bd 1)" 64 "writeback takes the pages outside groups ($(bd 1))"
pf_is "$(st group_pages)" "$gp" "writeback leaves grouped pages in memory"
write_ctl recompress 1
pf_ge "$(bd 1)" 64 "recompress leaves the pages on disk"
cmp -s "$PF_TMP/gtext" "$M/g"
pf_ok $? "grouped and written-back pages read back exact"
rm "$M/g"
pf_is "$(bd 1)/$(st group_pages)" "0/0" "deleted: nothing on disk, no group"
write_ctl writeback idle
write_ctl backing_dev none
pf_is "$(cat "$C/backing_dev")" none "backing_dev none once nothing is out"
write_ctl writeback idle
pf_is "$(errno_of)" "No such device" "writeback without a backing file: ENODEV"

# --- a small full filesystem
if mkext4 "$PF_TMP/small" 8; then
	# fill it, leaving ~256 KiB
	avail=$(df -B4096 --output=avail "$PF_TMP/small" | tail -1)
	dd if=/dev/zero of="$PF_TMP/small/fill" bs=4096 count=$((avail - 64)) status=none 2>/dev/null
	write_ctl backing_dev "$PF_TMP/small/back"
	pf_is "$?" 0 "backing_dev on the small ext4"
	cp "$PF_TMP/rand" "$M/r"
	write_ctl idle all
	write_ctl writeback idle
	rc=$?
	pf_diag "writeback to the full fs: $(errno_of); bd_stat $(cat "$C/bd_stat")"
	pf_ge "$(bd 8)" 1 "pages the full filesystem did not take are counted"
	pf_le "$(bd 1)" 256 "only what fitted went out"
	cmp -s "$PF_TMP/rand" "$M/r"
	pf_ok $? "every page still reads back exact"
	write_ctl idle all
	write_ctl writeback idle
	pf_is "$?:$(errno_of)" "1:No space left on device" "writeback to the full file: ENOSPC"
	pf_is "$rc" 0 "(the first one moved what fitted: no error)"
	rm "$PF_TMP/small/fill"
	write_ctl idle all
	write_ctl writeback idle
	pf_is "$(bd 1)" 512 "with room again, the rest goes out"
	cmp -s "$PF_TMP/rand" "$M/r"
	pf_ok $? "and reads back exact"
	rm "$M/r"
	write_ctl writeback idle
	write_ctl backing_dev none
	pf_is "$(cat "$C/backing_dev")" none "detached from the small fs"
else
	pf_skip "a backing file on a full filesystem" "cannot make an ext4 image"
fi

# --- read errors: the device under the backing file loses its tail
if mkext4 "$PF_TMP/failing" 64; then
	write_ctl backing_dev "$PF_TMP/failing/back"
	cp "$PF_TMP/text" "$M/a"
	write_ctl idle all
	write_ctl writeback idle
	out=$(bd 1)
	cp "$PF_TMP/rand" "$M/b"		# in memory
	sync "$PF_TMP/failing/back"
	first=$(filefrag -e -b4096 "$PF_TMP/failing/back" 2>/dev/null |
		awk -F'[:. ]+' '$2 ~ /^[0-9]+$/ && NF > 6 { print $5 }' | sort -n | head -1)
	if [ -n "$first" ] && [ "$first" -gt 256 ]; then
		truncate -s $((first * 4096)) "$PF_TMP/failing.img"
		losetup -c "$ext4_loop"
		fr0=$(awk '{ print $1 }' "$C/io_stat")
		eio=0
		for ((p = 0; p < out; p++)); do
			dd if="$M/a" of=/dev/null bs=4096 skip=$p count=1 status=none 2>/dev/null || eio=$((eio + 1))
		done
		pf_is "$eio" "$out" "every page on the failing device reads EIO"
		pf_is $(( $(awk '{ print $1 }' "$C/io_stat") - fr0 )) "$out" "io_stat failed_reads counts them"
		cmp -s "$PF_TMP/rand" "$M/b"
		pf_ok $? "a file in memory reads back exact meanwhile"
		echo x >"$M/c" && [ "$(cat "$M/c")" = x ]
		pf_ok $? "the mount works on"
		rm -f "$M/a" "$M/b" "$M/c"
		pf_is "$(bd 1)" 0 "the pages that failed can still be deleted"
	else
		pf_skip "read errors" "the backing file starts too early on the device ($first)"
	fi
	write_ctl backing_dev none
else
	pf_skip "read errors" "cannot make an ext4 image"
fi

# --- the policy: idle pages move while memory is above mem_high
pf_umount "$M"
pf_mount_backing recompress_after=8,writeback_after=2,mem_high=1
pf_is "$(cat "$C/writeback_after"):$(cat "$C/mem_high")" "2:1" "writeback_after and mem_high as mounted"
cp "$PF_TMP/text" "$M/p"
for t in $(seq 60); do
	[ "$(bd 1)" -ge $((8 * 1024 * 1024 / 4096)) ] && break
	sleep 0.5
done
pf_is "$(bd 1)" $((8 * 1024 * 1024 / 4096)) "the policy wrote every idle page back by itself"
cmp -s "$PF_TMP/text" "$M/p"
pf_ok $? "and they read back exact"
echo 0 >"$C/mem_high"
pf_done
