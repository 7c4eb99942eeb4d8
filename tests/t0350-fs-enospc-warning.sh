#!/bin/bash
# Writes refused at the memory limit are told to the user: the daemon (in
# the foreground, so its log is stderr) warns once when the store becomes
# full, says nothing more for a burst of refused writes within the minute
# (never a line a page), and says when writes succeed again, with the count
# of refused writes - the count .ctl/stat's enospc_reqs shows.
. "$(dirname "$0")/lib.sh"
pf_require root fuse

limit=$((16 << 20))
pf_mount -o mem_limit=16M,fold=off || { pf_ok 1 "mount"; pf_done; }
M=$PF_MNT
st() { awk -v k="$1" '$1 == k { print $2 }' "$M/.ctl/stat"; }
warnings() { grep -c "warning: writes" "$PF_LOG"; } # refused, still refused

# Incompressible and never the same twice: every 64 KiB block a new one.
head -c $((48 << 20)) /dev/urandom >"$PF_TMP/random"
dd if="$PF_TMP/random" of="$M/a" bs=4k count=1024 oflag=direct status=none
pf_ok $? "4 MiB written below the limit"
pf_is "$(warnings)" 0 "... and nothing said about the limit"

dd if="$PF_TMP/random" of="$M/fill" bs=64k oflag=direct status=none \
	2>"$PF_TMP/dd.err"
[ $? -ne 0 ] && grep -q "No space left on device" "$PF_TMP/dd.err"
pf_ok $? "writing incompressible data until ENOSPC" || pf_diag_file "$PF_TMP/dd.err"

# A burst: 20 more refused writes, each of a block not stored anywhere.
refused=0
for i in $(seq 20); do
	dd if="$PF_TMP/random" of="$M/more" bs=64k count=1 skip=$((700 + i)) \
		seek="$i" conv=notrunc oflag=direct status=none 2>/dev/null ||
		refused=$((refused + 1))
done
pf_is "$refused" 20 "20 more writes in a burst, all refused"
pf_is "$(st enospc_reqs)" 21 "stat enospc_reqs counts the 21 refused writes"
sleep 0.5   # the daemon logs after it replies
pf_is "$(warnings)" 1 "the daemon's log has exactly one warning for the burst"
line=$(grep "warning: writes refused" "$PF_LOG")
case $line in
*"mem_limit=$limit bytes"*"1 write refused with ENOSPC (enospc_reqs 1 in .ctl/stat)"*)
	pf_ok 0 "... naming the limit, the count and enospc_reqs" ;;
*)
	pf_ok 1 "... naming the limit, the count and enospc_reqs"
	pf_diag "$line" ;;
esac
pf_le "$(grep -c refused "$PF_LOG")" 1 "no line per refused write"

# Room again: the first write a second after the last refusal ends the
# burst, with its count.
rm "$M/fill"
sleep 1.2
dd if="$PF_TMP/random" of="$M/more" bs=64k count=1 skip=730 conv=notrunc \
	oflag=direct status=none &&
	cmp -s -n 65536 -i $((730 << 16)):0 "$PF_TMP/random" "$M/more"
pf_ok $? "after freeing memory, a write succeeds"
dd if="$PF_TMP/random" of="$M/more" bs=64k count=1 skip=731 seek=1 \
	conv=notrunc oflag=direct status=none
sleep 0.5
pf_is "$(grep -c "writes succeed again: 21 refused at mem_limit=$limit bytes" "$PF_LOG")" 1 \
	"the log says once that writes succeed again, with the burst's count"
pf_is "$(warnings)" 1 "... and no other warning"
[ "$pf_test_failed" -eq 0 ] || pf_diag_file "$PF_LOG" 40

pf_done
