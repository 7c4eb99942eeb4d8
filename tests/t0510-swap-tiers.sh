#!/bin/bash
# Two-tier swap (examples/pagefold-swap -T): zswap in front of a pagefold
# swap file. start saves the kernel settings it finds and sets zswap and
# vm.page-cluster as documented; a second start keeps the saved originals;
# stop puts back exactly what was there; a start that fails part-way, or is
# refused, leaves every setting as it was. Under a workload that swaps well
# beyond the hot tier, zswap writes pages back to pagefold and every byte
# comes back. -T single leaves zswap alone. The cgroup v2 part, two mounts
# sharing the settings, and values the kernel refuses run on a fake /sys +
# /proc tree (PF_SYSROOT), since this may be a cgroup v1 host.
#
# The settings start from unusual values, so that restoring them cannot be
# mistaken for setting defaults; the EXIT trap writes back what the test
# found, whatever happens.
. "$(dirname "$0")/lib.sh"
pf_require root fuse loop swap

Z=/sys/module/zswap/parameters
PC=/proc/sys/vm/page-cluster
[ -w "$Z/enabled" ] || pf_skip_all "no writable zswap parameters ($Z)"
params=(compressor max_pool_percent accept_threshold_percent shrinker_enabled enabled)
for p in "${params[@]}"; do
	pf_track_setting "$Z/$p"
done
pf_track_setting "$PC"

swap=$PF_SOURCE_DIR/examples/pagefold-swap
mnt=$PF_TMP/swapmnt
file=$mnt/swap0
# A state directory of our own: never that of a setup running on the host.
export PF_SWAP_STATE=$PF_TMP/state
# No settings file: the defaults, whatever /etc/pagefold/swap.conf holds.
export PF_SWAP_CONF=/dev/null
state=$PF_SWAP_STATE/kernel.saved

track_all() { pf_track_swap_setup "$mnt" "${1:-$file}"; } # [SWAPFILE]: for the EXIT trap
loops_of() { pf_loops_of "$file"; }
snapshot() { # the five zswap parameters and page-cluster, one "name=value" a line
	local p
	for p in "${params[@]}"; do
		echo "$p=$(cat "$Z/$p")"
	done
	echo "page-cluster=$(cat "$PC")"
}
val() { cat "$Z/$1"; }
saved() { sed -n "s|^$1=||p" "$state" 2>/dev/null; } # PATH: its saved value
vmstat() { awk -v k="$1" '$1 == k { print $2 }' /proc/vmstat; }
same_as_before() { # DESC: every setting is what it was before
	local now
	now=$(snapshot)
	[ "$now" = "$before" ]
	pf_ok $? "$1" || pf_diag "before: ${before//$'\n'/ }" "now:    ${now//$'\n'/ }"
}
nothing_left() { # DESC: no mount, no loop device, no state file
	track_all
	pf_ok "$(! pf_is_mounted "$mnt"; echo $?)" "$1: nothing mounted"
	pf_is "$(loops_of)" 0 "$1: no loop device"
	pf_ok "$([ ! -e "$state" ]; echo $?)" "$1: no state file"
}

# --- (a) two tiers: set, keep the originals, restore ---------------------

# Unusual values first. deflate is a compressor zswap takes that start
# never picks; where the kernel refuses it, the compressor stays as found.
echo deflate 2>/dev/null >"$Z/compressor" ||
	pf_diag "zswap refuses deflate: the compressor's restore is not told apart"
echo 7 >"$Z/max_pool_percent" && echo 55 >"$Z/accept_threshold_percent" &&
	echo N >"$Z/shrinker_enabled" && echo N >"$Z/enabled" && echo 2 >"$PC"
pf_ok $? "unusual settings to start from"
before=$(snapshot)
pf_diag "before: ${before//$'\n'/ }"

mem=$(($(awk '/^MemTotal:/ { print $2 }' /proc/meminfo) * 1024))
hot=$((mem * 27 / 1000)) # 2.7% of RAM: the pool is 3%, the nearest
hot=$((hot / 4096 * 4096))
pf_run "start -T two -H $hot" "$swap" start -b "$PAGEFOLD" -m "$mnt" -s 512M -T two -H "$hot"
track_all
cp "$PF_TMP/run.out" "$PF_TMP/start.out"
loop=$(losetup -n -O NAME -j "$file" | head -n1)
pf_ok "$([ -n "$loop" ] && grep -q "^$loop " /proc/swaps; echo $?)" "swap is on ($loop)"
c=$(val compressor)
pf_ok "$([ "$c" = lz4 ] || [ "$c" = lzo ]; echo $?)" "compressor is lz4 or lzo ($c)"
grep -q "zswap compressor: .*$c" "$PF_TMP/start.out"
pf_ok $? "start says which compressor" || pf_diag_file "$PF_TMP/start.out"
pf_is "$(val max_pool_percent)" 3 "max_pool_percent: 2.7% of RAM to the nearest percent"
pf_is "$(val accept_threshold_percent)" 90 "accept_threshold_percent 90"
pf_is "$(val shrinker_enabled)" Y "shrinker_enabled Y"
pf_is "$(val enabled)" Y "enabled Y"
pf_is "$(cat "$PC")" 0 "vm.page-cluster 0"
for line in "max_pool_percent: 7 -> 3" "accept_threshold_percent: 55 -> 90" \
	"shrinker_enabled: N -> Y" "enabled: N -> Y" "page-cluster: 2 -> 0"; do
	grep -q -F "$line" "$PF_TMP/start.out"
	pf_ok $? "start prints '$line'" || pf_diag_file "$PF_TMP/start.out"
done
if [ ! -f /sys/fs/cgroup/cgroup.controllers ]; then
	grep -q "no per-cgroup zswap limits" "$PF_TMP/start.out"
	pf_ok $? "cgroup v1: start notes there are no per-cgroup zswap limits"
fi
for p in "${params[@]}"; do
	pf_is "$(saved "$Z/$p")" "$(echo "$before" | sed -n "s/^$p=//p")" "saved original $p"
done
pf_is "$(saved "$PC")" 2 "saved original page-cluster"
grep -q -x "mount=$mnt" "$state"
pf_ok $? "the state file names the mount" || pf_diag_file "$state"

cp "$state" "$PF_TMP/state.1"
pf_run "start again" "$swap" start -b "$PAGEFOLD" -m "$mnt" -s 512M -T two -H "$hot"
pf_ok "$(grep -q "^$loop " /proc/swaps; echo $?)" "start again: still swapping on $loop"
pf_is "$(loops_of)" 1 "start again: one loop device"
cmp -s "$state" "$PF_TMP/state.1"
pf_ok $? "start again: saved originals untouched" ||
	{ pf_diag_file "$PF_TMP/state.1"; pf_diag_file "$state"; }
pf_is "$(saved "$Z/enabled") $(saved "$Z/max_pool_percent")" "N 7" \
	"start again: the saved values are still the unusual ones"

"$swap" status -m "$mnt" >"$PF_TMP/status" 2>&1
pf_ok $? "status exits 0" || pf_diag_file "$PF_TMP/status"
for re in '^mm_stat: [0-9]' '^zswap: enabled=Y compressor=' '^zswap pool: [0-9.]* MiB' \
	'^zswap since boot: [0-9]* pages stored (zswpout)' '^vm.page-cluster: 0' \
	'^pagefold: [0-9.]* MiB of pages (orig_data_size)' \
	'^total memory held: [0-9.]* MiB = zswap pool [0-9.]* MiB + pagefold mem_used_total'; do
	grep -q -e "$re" "$PF_TMP/status"
	pf_ok $? "status shows /$re/" || pf_diag_file "$PF_TMP/status" 30
done

pf_run "stop" "$swap" stop -m "$mnt"
same_as_before "stop restored every setting exactly"
pf_ok "$([ ! -e "$state" ]; echo $?)" "stop removed the state file"
pf_ok "$(! pf_is_mounted "$mnt"; echo $?)" "stop unmounted"

# --- (b) a start that fails part-way -------------------------------------

# The file size is refused after the kernel settings were made and the
# daemon mounted: the undo stack takes it all back.
pf_fails "start with an impossible size fails" "$swap" start -b "$PAGEFOLD" -m "$mnt" -s 8E -T two
grep -q "enabled: N -> Y" "$PF_TMP/run.out"
pf_ok $? "... after it had changed the settings" || pf_diag_file "$PF_TMP/run.out"
same_as_before "failed start: every setting as before"
nothing_left "failed start"

# --- (f) bad -H / -T: refused before anything is touched -----------------

for args in "-H 0" "-H 12X" "-H 1.5G" "-H 64T" "-T three"; do
	# shellcheck disable=SC2086
	pf_fails "start $args refused" "$swap" start -b "$PAGEFOLD" -m "$mnt" -s 64M $args
	grep -q "bad -${args:1:1}" "$PF_TMP/run.out"
	pf_ok $? "start $args: says why" || pf_diag_file "$PF_TMP/run.out"
done
same_as_before "refused starts: every setting as before"
nothing_left "refused starts"

# --- (d) single tier -----------------------------------------------------

pf_run "start -T single" "$swap" start -b "$PAGEFOLD" -m "$mnt" -s 256M -T single
track_all
cp "$PF_TMP/run.out" "$PF_TMP/start.out"
pf_is "$(snapshot | grep -v '^page-cluster=')" "$(echo "$before" | grep -v '^page-cluster=')" \
	"single: the five zswap parameters untouched"
pf_is "$(cat "$PC")" 0 "single: vm.page-cluster 0"
grep -q "^pagefold-swap: zswap " "$PF_TMP/start.out"
pf_ok "$([ $? -ne 0 ]; echo $?)" "single: start sets nothing of zswap's" ||
	pf_diag_file "$PF_TMP/start.out"
grep -q "^pagefold-swap: single tier: pagefold alone$" "$PF_TMP/start.out"
pf_ok $? "single: start says so" || pf_diag_file "$PF_TMP/start.out"
pf_run "stop (single)" "$swap" stop -m "$mnt"
same_as_before "single: stop restored page-cluster"
nothing_left "single: after stop"

# --- (g) a mount someone else made (pagefold.service) ------------------

# start cannot give an existing mount its options, so it sets them through
# the .ctl settings of the same name.
for mode in single two; do
	pf_mount || { pf_ok 1 "mount"; pf_done; }
	pf_run "start -T $mode on an existing mount" \
		"$swap" start -b "$PAGEFOLD" -m "$PF_MNT" -s 64M -T $mode
	track_all "$PF_MNT/swap0"
	C=$PF_MNT/.ctl
	pf_is "$(cat "$C/intake")" zstd:1 "$mode on an existing mount: intake zstd:1"
	grep -q -F "$C/intake: lz4 -> zstd:1" "$PF_TMP/run.out"
	pf_ok $? "... and says so" || pf_diag_file "$PF_TMP/run.out"
	pf_run "stop -m an existing mount" "$swap" stop -m "$PF_MNT"
	same_as_before "$mode on an existing mount: stop restored every setting"
done

# --- (c) two tiers under load --------------------------------------------

# zswap's smallest pool is 1% of RAM; the workload holds ten times that
# in a cgroup limited to 1%, so the pool fills (zswap compresses these
# pages ~4x), and what zswap rejects or writes back goes to pagefold. It
# rewrites a tenth of the pages it touches, so pages also travel back into
# the pool and out again. On cgroup v1 zswap writes back only when its pool
# is full, and late: measured here (24 GiB, 2 CPUs), six times the pool
# gave no writeback in 3 runs of 3, ten times gave 23000 to 187000 pages in
# each of 7. ~20 s.
if [ -z "$(pf_memcg_base)" ] || [ ! -x "$PF_HELPERS/pf-hotset" ]; then
	pf_skip "two tiers under load" "no cgroup v1 memory controller or no pf-hotset"
else
	pct1=$((mem / 100 >> 20)) # MiB
	FILL_MB=$((pct1 * 10))
	LIMIT_MB=$((pct1))
	pf_run "start -T two -H 64M" "$swap" start -b "$PAGEFOLD" -m "$mnt" -s $((FILL_MB * 2))M -T two -H 64M
	track_all
	grep -q "zswap's smallest pool is 1% of RAM" "$PF_TMP/run.out"
	pf_ok $? "start notes that zswap's smallest pool is 1% of RAM" || pf_diag_file "$PF_TMP/run.out"
	pf_is "$(val max_pool_percent)" 1 "max_pool_percent 1"
	mm() { awk -v n="$1" '{ print $n }' "$mnt/.ctl/mm_stat"; }

	CG=$(pf_memcg_base)/pf-tiers-$$
	mkdir "$CG" && pf_track_cgroup "$CG" &&
		echo $((LIMIT_MB << 20)) >"$CG/memory.limit_in_bytes" &&
		echo 100 >"$CG/memory.swappiness"
	pf_ok $? "cgroup ${CG#/sys/fs/cgroup/memory} limited to $LIMIT_MB MiB" || pf_done

	wb0=$(vmstat zswpwb)
	(
		echo "$BASHPID" >"$CG/cgroup.procs" &&
			exec "$PF_HELPERS/pf-hotset" -s $FILL_MB -t 8 -w 10 -g "$PF_TMP/go"
	) >"$PF_TMP/hotset.out" 2>&1 &
	wpid=$!
	pf_track_pid "$wpid"
	for _ in $(seq 1200); do
		grep -q '^filled' "$PF_TMP/hotset.out" && break
		pf_alive "$wpid" || break
		sleep 0.1
	done
	pf_ok "$(grep -q '^filled' "$PF_TMP/hotset.out"; echo $?)" \
		"the workload filled $FILL_MB MiB" || pf_diag_file "$PF_TMP/hotset.out"
	orig=$(mm 1)
	pf_ge "$orig" 1 "pagefold holds pages while they are swapped (orig_data_size $orig)"
	pf_diag "$(sed -n '/^pagefold:/,$p' <("$swap" status -m "$mnt"))"
	touch "$PF_TMP/go"
	for _ in $(seq 1200); do
		grep -q '^touches' "$PF_TMP/hotset.out" && break
		pf_alive "$wpid" || break
		sleep 0.1
	done
	pf_diag "$(sed -n '/^pagefold:/,$p' <("$swap" status -m "$mnt"))"
	# Mounted with intake=zstd:1: what zswap writes back or rejects is stored
	# in the cold codec at once.
	pf_ge "$(mm 15)" 1 "pages arrived in the cold codec (recomp_pages $(mm 15))"
	touch "$PF_TMP/go.done"
	pf_wait_exit "$wpid" 120
	pf_is "$pf_wait_status" 0 "the workload verified every page it touched and exited 0" ||
		pf_diag_file "$PF_TMP/hotset.out"
	errors=$(sed -n 's/^touches=.* errors=\([0-9]*\) .*/\1/p' "$PF_TMP/hotset.out")
	pf_is "${errors:-?}" 0 "no verification errors"
	pf_diag "$(cat "$PF_TMP/hotset.out")"
	wb=$(($(vmstat zswpwb) - wb0))
	pf_ge "$wb" 1024 "zswap wrote pages back to pagefold during the run (zswpwb +$wb)"
	pf_is "$(awk '{ print $1, $2 }' "$mnt/.ctl/io_stat")" "0 0" "io_stat: no failed reads or writes"

	pf_run "stop after the load" "$swap" stop -m "$mnt"
	same_as_before "after the load: stop restored every setting"
	nothing_left "after the load"
fi

# --- (e) cgroup v2, auto mode and refusals, on a fake tree --------------

F=$PF_TMP/fake
fake_tree() { # a /sys + /proc with zswap, cgroup v2 and 10 GiB of RAM
	rm -rf "$F"
	mkdir -p "$F/sys/module/zswap/parameters" "$F/proc/sys/vm" \
		"$F/sys/fs/cgroup/system.slice" "$F/sys/fs/cgroup/user.slice" \
		"$F/sys/fs/cgroup/init.scope"
	echo "cpuset cpu io memory pids" >"$F/sys/fs/cgroup/cgroup.controllers"
	echo max >"$F/sys/fs/cgroup/system.slice/memory.zswap.max"
	echo 1073741824 >"$F/sys/fs/cgroup/user.slice/memory.zswap.max"
	echo max >"$F/sys/fs/cgroup/init.scope/memory.zswap.max"
	local fz=$F/sys/module/zswap/parameters
	echo lzo-rle >"$fz/compressor"
	echo 33 >"$fz/max_pool_percent"
	echo 44 >"$fz/accept_threshold_percent"
	echo N >"$fz/shrinker_enabled"
	echo N >"$fz/enabled"
	echo 5 >"$F/proc/sys/vm/page-cluster"
	printf 'MemTotal:       10485760 kB\nZswap:             2048 kB\nZswapped:          8192 kB\n' \
		>"$F/proc/meminfo"
	printf 'zswpin 11\nzswpout 22\nzswpwb 33\n' >"$F/proc/vmstat"
	ln -s /proc/swaps "$F/proc/swaps" # the swap itself is real
}
fake_snapshot() {
	(cd "$F" && grep -r . sys/module/zswap/parameters proc/sys/vm sys/fs/cgroup 2>/dev/null | sort)
}
fswap() { PF_SYSROOT=$F PF_SWAP_STATE=$PF_TMP/fstate "$swap" "$@"; }
fstate=$PF_TMP/fstate/kernel.saved
fz=$F/sys/module/zswap/parameters
fcg=$F/sys/fs/cgroup

fake_tree
fake_before=$(fake_snapshot)
pf_run "fake tree: start (auto) -H 512M" fswap start -b "$PAGEFOLD" -m "$mnt" -s 64M -H 512M
track_all
cp "$PF_TMP/run.out" "$PF_TMP/start.out"
pf_is "$(cat "$fz/enabled") $(cat "$fz/compressor")" "Y lz4" \
	"fake tree: auto picked two tiers, and lz4 as the kernel took it"
pf_is "$(cat "$fz/max_pool_percent")" 5 "fake tree: 512 MiB of 10 GiB is 5%"
pf_is "$(cat "$fcg/system.slice/memory.zswap.max")" 536870912 "fake tree: system.slice memory.zswap.max = 512 MiB"
pf_is "$(cat "$fcg/user.slice/memory.zswap.max")" 536870912 "fake tree: user.slice memory.zswap.max = 512 MiB"
pf_is "$(cat "$fcg/init.scope/memory.zswap.max")" max "fake tree: other cgroups untouched"
pf_is "$(cat "$F/proc/sys/vm/page-cluster")" 0 "fake tree: page-cluster 0"
grep -q -F "cgroup system.slice memory.zswap.max: max -> 536870912" "$PF_TMP/start.out"
pf_ok $? "fake tree: start prints the cgroup limit it set" || pf_diag_file "$PF_TMP/start.out"
grep -q "no per-cgroup zswap limits" "$PF_TMP/start.out"
pf_ok "$([ $? -ne 0 ]; echo $?)" "fake tree: no cgroup v1 note on cgroup v2"
same_as_before "fake tree: the real settings untouched"
fswap status -m "$mnt" >"$PF_TMP/status" 2>&1
grep -q '^zswap pool: 2.0 MiB of 512.0 MiB allowed, holding 8.0 MiB of pages' "$PF_TMP/status" &&
	grep -q '^zswap since boot: 22 pages stored (zswpout), 11 loaded back (zswpin), 33 written back' "$PF_TMP/status"
pf_ok $? "fake tree: status reads the pool and counters from PF_SYSROOT" || pf_diag_file "$PF_TMP/status" 30
pf_run "fake tree: stop" fswap stop -m "$mnt"
pf_is "$(fake_snapshot)" "$fake_before" "fake tree: stop restored every value"
pf_ok "$([ ! -e "$fstate" ]; echo $?)" "fake tree: state file removed"

# pagefold-swap.service passes ${PAGEFOLD_HOT_SIZE} and ${PAGEFOLD_TIERS},
# one empty argument each when unset: the defaults (1% of RAM, auto).
pf_run "fake tree: start -H '' -T '' (the unit's empty variables)" \
	fswap start -b "$PAGEFOLD" -m "$mnt" -s 64M -H '' -T ''
track_all
grep -q "smallest pool" "$PF_TMP/run.out"
pf_ok "$([ $? -ne 0 ]; echo $?)" "fake tree: the default hot tier is a whole 1%, no note" ||
	pf_diag_file "$PF_TMP/run.out"
pf_is "$(cat "$fz/enabled") $(cat "$fz/max_pool_percent") $(cat "$fcg/user.slice/memory.zswap.max")" \
	"Y 1 $(((10737418240 / 100 + 1 + 4095) / 4096 * 4096))" \
	"fake tree: two tiers, 1% of RAM (memory.zswap.max in whole pages)"
pf_run "fake tree: stop" fswap stop -m "$mnt"
pf_is "$(fake_snapshot)" "$fake_before" "fake tree: stop restored every value"

# Two mounts share the settings: the first start saves them, stopping one
# mount keeps them for the other, stopping the last restores them.
mnt2=$PF_TMP/swapmnt2
fswap start -b "$PAGEFOLD" -m "$mnt" -s 64M -H 512M >"$PF_TMP/start.out" 2>&1 &&
	fswap start -b "$PAGEFOLD" -m "$mnt2" -s 64M -H 512M >>"$PF_TMP/start.out" 2>&1
pf_ok $? "fake tree: start on two mounts" || pf_diag_file "$PF_TMP/start.out" 40
track_all
mnt=$mnt2 track_all "$mnt2/swap0"
pf_is "$(grep -c '^mount=' "$fstate")" 2 "fake tree: the state file names both mounts"
pf_is "$(sed -n "s|^$fz/max_pool_percent=||p" "$fstate")" 33 "fake tree: ... and the first start's originals"
pf_run "fake tree: stop the first mount" fswap stop -m "$mnt"
grep -q "kernel settings kept: $mnt2 still uses them" "$PF_TMP/run.out"
pf_ok $? "fake tree: ... keeps the settings for the second, and says so" || pf_diag_file "$PF_TMP/run.out"
pf_is "$(cat "$fz/enabled") $(cat "$fz/max_pool_percent")" "Y 5" "fake tree: ... zswap still set"
pf_run "fake tree: stop the second mount" fswap stop -m "$mnt2"
pf_is "$(fake_snapshot)" "$fake_before" "fake tree: the last stop restored every value"
pf_ok "$([ ! -e "$fstate" ]; echo $?)" "fake tree: state file removed"

# A value the kernel refuses on restore is reported, kept, and restored by
# a later stop.
fswap start -b "$PAGEFOLD" -m "$mnt" -s 64M -H 512M >"$PF_TMP/start.out" 2>&1
pf_ok $? "fake tree: start again" || pf_diag_file "$PF_TMP/start.out"
track_all
rm "$fz/compressor" && mkdir "$fz/compressor" # writes to it now fail
pf_fails "fake tree: stop fails when a value cannot be restored" fswap stop -m "$mnt"
grep -q "refused lzo-rle for .*compressor" "$PF_TMP/run.out"
pf_ok $? "... and says which" || pf_diag_file "$PF_TMP/run.out"
pf_ok "$(! pf_is_mounted "$mnt"; echo $?)" "... after taking the swap down"
pf_is "$(grep -c '^/' "$fstate" 2>/dev/null)" 1 "... keeping only that value in the state file"
pf_is "$(cat "$fz/enabled") $(cat "$fz/max_pool_percent")" "N 33" "... having restored the others"
rmdir "$fz/compressor" && echo lz4 >"$fz/compressor"
pf_run "fake tree: stop again restores it" fswap stop -m "$mnt"
pf_is "$(fake_snapshot)" "$fake_before" "fake tree: every value restored"
pf_ok "$([ ! -e "$fstate" ]; echo $?)" "fake tree: state file removed"

# The last setting (enabled) refused, after all the others were made: all
# of them are undone. /proc/version reads, and refuses every write, even
# root's (EIO).
fake_tree
rm "$fz/enabled" && ln -s /proc/version "$fz/enabled"
fake_before=$(fake_snapshot)
pf_fails "fake tree: start fails when zswap cannot be enabled" \
	fswap start -b "$PAGEFOLD" -m "$mnt" -s 64M -T two -H 50M
grep -q "zswap's smallest pool is 1% of RAM = 102.4 MiB, more than the 50.0 MiB asked" "$PF_TMP/run.out"
pf_ok $? "fake tree: notes the 1% minimum for a small -H" || pf_diag_file "$PF_TMP/run.out"
grep -q "shrinker_enabled: N -> Y" "$PF_TMP/run.out" && grep -q "refused Y for .*enabled" "$PF_TMP/run.out"
pf_ok $? "fake tree: ... after making the other settings" || pf_diag_file "$PF_TMP/run.out"
pf_is "$(fake_snapshot)" "$fake_before" "fake tree: failed start undid every setting"
pf_ok "$([ ! -e "$fstate" ]; echo $?)" "fake tree: failed start left no state file"
track_all
pf_ok "$(! pf_is_mounted "$mnt"; echo $?)" "fake tree: failed start: nothing mounted"

# auto without zswap: a single tier, with a note why.
fake_tree
rm -r "$F/sys/module/zswap"
fake_before=$(fake_snapshot)
pf_run "fake tree without zswap: start (auto)" fswap start -b "$PAGEFOLD" -m "$mnt" -s 64M
track_all
grep -q "single tier: pagefold alone (this kernel has no zswap" "$PF_TMP/run.out"
pf_ok $? "fake tree without zswap: falls back to a single tier and says why" ||
	pf_diag_file "$PF_TMP/run.out"
pf_is "$(cat "$F/proc/sys/vm/page-cluster") $(cat "$fcg/system.slice/memory.zswap.max")" "0 max" \
	"fake tree without zswap: page-cluster 0, cgroups untouched"
pf_run "fake tree without zswap: stop" fswap stop -m "$mnt"
pf_is "$(fake_snapshot)" "$fake_before" "fake tree without zswap: stop restored page-cluster"
pf_fails "fake tree without zswap: -T two refused" fswap start -b "$PAGEFOLD" -m "$mnt" -s 64M -T two
nothing_left "fake tree: -T two refused"
same_as_before "after the fake tree: the real settings untouched"

pf_done
