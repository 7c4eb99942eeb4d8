#!/bin/bash
# Swap end to end: a pagefold file -> losetup --direct-io=on -> mkswap ->
# swapon --discard=pages at the highest priority; a workload in a
# memory-limited cgroup (a child of this script's own cgroup v1 memory
# group) fills more memory than the limit with known contents and verifies
# every byte. While its pages are in swap they show in mm_stat; when it has
# exited, discards free them in the store, and after swapoff the store is
# back near empty. The daemon stays outside the limited cgroup.
. "$(dirname "$0")/lib.sh"
pf_require root fuse loop swap memcg
[ -x "$PF_HELPERS/pf-memfill" ] || pf_skip_all "pf-memfill is not built"

FILL_MB=192     # what the workload holds
LIMIT_MB=64     # its cgroup's memory limit
SWAP_MB=512     # the swap file

pf_mount || { pf_ok 1 "mount"; pf_done; }
M=$PF_MNT
mm() { awk -v n="$1" '{ print $n }' "$M/.ctl/mm_stat"; }
io() { awk -v n="$1" '{ print $n }' "$M/.ctl/io_stat"; }
swap_used() { # bytes in use on our swap device, from /proc/swaps
	awk -v d="$(readlink -f "$LOOP")" '$1 == d { print $4 * 1024 }' /proc/swaps
}

truncate -s ${SWAP_MB}M "$M/swap0"
LOOP=$(losetup --direct-io=on -f --show "$M/swap0")
pf_ok $? "losetup --direct-io=on on a pagefold file ($LOOP)" || pf_done
pf_track_loop "$LOOP"
pf_is "$(losetup -n -O DIO "$LOOP" | tr -d ' ')" 1 "the loop device does direct I/O"
mkswap "$LOOP" >"$PF_TMP/mkswap.out" 2>&1
pf_ok $? "mkswap" || pf_diag_file "$PF_TMP/mkswap.out"
swapon --discard=pages -p 32767 "$LOOP" 2>"$PF_TMP/swapon.err"
pf_ok $? "swapon --discard=pages -p 32767" || { pf_diag_file "$PF_TMP/swapon.err"; pf_done; }
pf_track_swap "$LOOP"
pf_ok $(grep -q "^$(readlink -f "$LOOP") " /proc/swaps; echo $?) "the device is in /proc/swaps"
header=$(mm 1)

# The limited cgroup: a child of ours, so the daemon (in ours) is outside.
CG=$(pf_memcg_base)/pf-swap-$$
pf_memcg_limited "$CG" "$LIMIT_MB"
pf_ok $? "cgroup ${CG#/sys/fs/cgroup/memory} limited to $LIMIT_MB MiB" || pf_done

pf_memfill_start "$CG" "$FILL_MB"
pf_ok $? "the workload filled $FILL_MB MiB" || pf_diag_file "$PF_TMP/memfill.out"
wpid=$pf_memfill_pid
pf_is "$(awk -F: '$2 == "memory" { print $3 }' "/proc/$wpid/cgroup")" \
	"${CG#/sys/fs/cgroup/memory}" "... inside the limited cgroup"
pf_ok $([ "$(awk -F: '$2 == "memory" { print $3 }' "/proc/$PF_PID/cgroup")" != \
	"${CG#/sys/fs/cgroup/memory}" ]; echo $?) "the daemon is not in the limited cgroup"
pf_is "$(awk '$1 == "mlocked" { print $2 }' "$M/.ctl/stat")" 1 "the daemon's memory is locked"

# While the pages sit in swap.
sleep 1
cg_swap=$(awk '$1 == "swap" { print $2 }' "$CG/memory.stat")
pf_ge "$cg_swap" $(((FILL_MB - LIMIT_MB) << 19)) \
	"the cgroup has at least half of the excess in swap ($cg_swap bytes)"
orig=$(mm 1)
pf_ge "$orig" $((cg_swap / 2)) "mm_stat orig_data_size shows the swapped pages ($orig bytes)"
pf_ge "$(swap_used)" $((cg_swap / 2)) "/proc/swaps shows them on our device"
pf_ge "$(mm 6)" 1 "same-filled pages among them (same_pages $(mm 6))"
pf_ge "$(mm 10)" 1 "folded pages among them (pages_folded $(mm 10))"
pf_ok $(($(mm 2) < orig ? 0 : 1)) "they are held compressed (compr_data_size $(mm 2))"
pf_diag "mm_stat while swapped: $(cat "$M/.ctl/mm_stat")"

# The swapped pages go cold: recompress them all, then the workload reads
# them back from the cold codec.
used0=$(mm 3)
echo all >"$M/.ctl/idle" && echo 1 >"$M/.ctl/recompress"
pf_ok $? "idle + recompress while the pages sit in swap"
pf_ge "$(mm 15)" 1 "swapped pages moved to the cold codec (recomp_pages $(mm 15))"
pf_le "$(mm 3)" "$used0" "mem_used_total did not grow ($used0 -> $(mm 3))"

# Verify, rewrite half, verify again, with the pages moving through swap.
touch "$PF_TMP/go"
pf_wait_exit "$wpid" 300
wstatus=$pf_wait_status
pf_is "$wstatus" 0 "the workload verified every byte and exited 0" ||
	pf_diag_file "$PF_TMP/memfill.out"
read -r pages checked errors < <(sed -n 's/^pages=\([0-9]*\) checked=\([0-9]*\) errors=\([0-9]*\)$/\1 \2 \3/p' \
	"$PF_TMP/memfill.out")
pf_is "${errors:-?}" 0 "no verification errors"
pf_is "${checked:-?}" $((2 * ${pages:-0})) "every page checked twice (${pages:-?} pages)"
pf_is "$(io 1) $(io 2)" "0 0" "io_stat: no failed reads or writes"

# Its swap slots are freed on exit; discards reach the store. The kernel
# sends a discard per swap cluster (512 slots, 2 MiB) once the cluster is
# wholly free, and it allocates from a current cluster per CPU; seen here
# (1 run in ~10), up to a cluster's worth of freed slots stayed undiscarded
# for longer than the wait, so allow one cluster per CPU.
slack=$(( $(nproc) * (2 << 20) ))
for i in $(seq 300); do
	[ "$(mm 1)" -le $(($(swap_used) + header + slack)) ] && break
	sleep 0.1
done
pf_le "$(mm 1)" $(($(swap_used) + header + slack)) \
	"after the workload exits, the store holds no more than swap still uses + a cluster per CPU"
pf_ge "$(io 4)" $(((FILL_MB - LIMIT_MB) << 7)) \
	"io_stat notify_free: discards freed at least the excess ($(io 4) pages)"

swapoff "$LOOP"
pf_ok $? "swapoff"
peak=$orig
after=$(mm 1)
pf_le "$after" $((header + (4 << 20))) "after swapoff the store is back near empty ($after bytes)"
pf_ok $((after * 50 <= peak ? 0 : 1)) "... under 2% of what it held while swapped"
losetup -d "$LOOP"
pf_ok $? "losetup -d"
rm "$M/swap0"
pf_is "$(mm 1)" 0 "removing the swap file empties the store"

pf_done
