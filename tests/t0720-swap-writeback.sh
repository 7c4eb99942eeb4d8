#!/bin/bash
# Swap through a pagefold file with the disk tier on: a workload in a
# memory-limited cgroup fills more than its limit with known contents; while
# its pages sit in swap they are all written back to the backing file, then
# every byte is verified (swap-ins come from the backing file). Then
# stress-ng --vm with --verify swaps in the same cgroup while a loop writes
# back every idle page twice a second and the policy (writeback_after +
# mem_high) runs too: no verify error, no failed read, the daemon exits
# cleanly.
. "$(dirname "$0")/lib.sh"
pf_require root fuse loop swap memcg
[ -x "$PF_HELPERS/pf-memfill" ] || pf_skip_all "pf-memfill is not built"

FILL_MB=160
LIMIT_MB=64
SWAP_MB=512

pf_mount_backing recompress_after=8
bd() { pf_col "$C/bd_stat" "$1"; }
io() { pf_col "$C/io_stat" "$1"; }

truncate -s ${SWAP_MB}M "$M/swap0"
LOOP=$(losetup --direct-io=on -f --show "$M/swap0")
pf_ok $? "losetup --direct-io=on on a pagefold file ($LOOP)" || pf_done
pf_track_loop "$LOOP"
mkswap "$LOOP" >/dev/null 2>&1
swapon --discard=pages -p 32767 "$LOOP" 2>"$PF_TMP/swapon.err"
pf_ok $? "swapon" || { pf_diag_file "$PF_TMP/swapon.err"; pf_done; }
pf_track_swap "$LOOP"

CG=$(pf_memcg_base)/pf-swapwb-$$
pf_memcg_limited "$CG" "$LIMIT_MB"
pf_ok $? "cgroup limited to $LIMIT_MB MiB" || pf_done

# --- pf-memfill: everything written back while it waits
pf_memfill_start "$CG" "$FILL_MB"
pf_ok $? "the workload filled $FILL_MB MiB" || pf_diag_file "$PF_TMP/memfill.out"
wpid=$pf_memfill_pid
used0=$(awk '{ print $3 }' "$C/mm_stat")
echo all >"$C/idle" && echo idle >"$C/writeback"
pf_ok $? "writeback idle while the pages sit in swap"
out=$(bd 1)
pf_ge "$out" $(((FILL_MB - LIMIT_MB) * 256 / 4)) "a good part of them went to the backing file ($out pages)"
pf_diag "mem_used_total $used0 -> $(awk '{ print $3 }' "$C/mm_stat"); bd_stat $(cat "$C/bd_stat")"
reads0=$(bd 2)
touch "$PF_TMP/go"
wait "$wpid"
pf_is "$?" 0 "every page verified after coming back from the backing file"
pf_diag "$(tail -n 1 "$PF_TMP/memfill.out")"
pf_ge "$(( $(bd 2) - reads0 ))" 1 "swap-ins were read from the backing file ($(( $(bd 2) - reads0 )))"
pf_is "$(io 1)" 0 "no failed read"

# --- stress-ng --verify with writeback all the time
if command -v stress-ng >/dev/null; then
	echo 2 >"$C/writeback_after" && echo 1 >"$C/mem_high"
	(
		while :; do
			echo all >"$C/idle"; echo idle >"$C/writeback"
			sleep 0.5
		done 2>/dev/null
	) &
	lpid=$!
	pf_track_pid "$lpid"
	w0=$(bd 3); r0=$(bd 2)
	(
		echo "$BASHPID" >"$CG/cgroup.procs" &&
			exec stress-ng --vm 2 --vm-bytes $((FILL_MB / 2))M --verify \
				--timeout 25s --metrics-brief
	) >"$PF_TMP/stress.out" 2>&1
	rc=$?
	kill "$lpid" 2>/dev/null; wait "$lpid" 2>/dev/null
	pf_is "$rc" 0 "stress-ng --vm --verify passes with writeback on" ||
		pf_diag_file "$PF_TMP/stress.out" 30
	pf_ok $(grep -qiE 'fail|error' "$PF_TMP/stress.out"; echo $(( ! $? ))) \
		"stress-ng reports no failure" || pf_diag_file "$PF_TMP/stress.out" 30
	pf_diag "during stress-ng: $(( $(bd 3) - w0 )) pages written back, $(( $(bd 2) - r0 )) read back"
	pf_ge "$(( $(bd 3) - w0 ))" 1 "pages were written back during the run"
	pf_is "$(io 1)" 0 "no failed read"
	echo 0 >"$C/mem_high"
else
	pf_skip "stress-ng --verify with writeback" "stress-ng is not installed"
fi

swapoff "$LOOP"
pf_ok $? "swapoff"
losetup -d "$LOOP"
rm -f "$M/swap0"
pf_is "$(bd 1)" 0 "after swapoff and rm nothing is left in the backing file"
pf_done
