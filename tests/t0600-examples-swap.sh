#!/bin/bash
# examples/pagefold-swap end to end, in its default mode (two tiers where
# zswap can be set, else one): start mounts, makes the sparse file,
# attaches a direct-I/O loop device and puts it into swap use with the asked
# priority; start again changes nothing; status reports it; stop takes it
# all down in order and puts the kernel settings back. A start that fails
# part-way undoes what it did, kernel settings included, and bad arguments
# are refused before anything is touched. (The tiers themselves: t0510.)
. "$(dirname "$0")/lib.sh"
pf_require root fuse loop swap

swap=$PF_SOURCE_DIR/examples/pagefold-swap
mnt=$PF_TMP/swapmnt
file=$mnt/swap0
# A state directory of our own: never that of a setup running on the host.
export PF_SWAP_STATE=$PF_TMP/state
# No settings file: the defaults, whatever /etc/pagefold/swap.conf holds.
export PF_SWAP_CONF=/dev/null

# start changes zswap's parameters and vm.page-cluster system-wide: the
# EXIT trap puts back what the test found, whatever happens.
Z=/sys/module/zswap/parameters
pf_track_swap_settings
same_as_before() { pf_same_settings "$before" "$1"; } # DESC
before=$(pf_swap_snapshot)
if [ -w "$Z/enabled" ]; then mode="two tiers"; else mode="single tier"; fi

# The EXIT trap undoes whatever a failing check leaves behind.
track_all() { pf_track_swap_setup "$mnt" "$file"; }
loops_of() { pf_loops_of "$file"; }

pf_run "start" "$swap" start -b "$PAGEFOLD" -m "$mnt" -s 256M -p 4242
track_all
grep -q "^pagefold-swap: $mode" "$PF_TMP/run.out"
pf_ok $? "start: $mode by default" || pf_diag_file "$PF_TMP/run.out"
pf_is "$(cat /proc/sys/vm/page-cluster)" 0 "start: vm.page-cluster 0"
pf_ok "$(pf_is_mounted "$mnt"; echo $?)" "start mounted pagefold on $mnt"
pf_is "$(stat -c %s "$file" 2>/dev/null)" $((256 << 20)) "swap file has the asked size"
# The daemon's swap safety is said at start, one warning for each of the
# three .ctl/stat reports as not done (here IO_FLUSHER and the OOM score
# are refused: at least those two), and none for what it did.
for k in mlocked:locked io_flusher:'I/O flusher' oom_protected:'OOM killer'; do
	v=$(awk -v n="${k%%:*}" '$1 == n { print $2 }' "$mnt/.ctl/stat")
	n=$(grep -c "^pagefold-swap: warning: .*${k#*:}" "$PF_TMP/run.out")
	pf_is "$n" $((v == 1 ? 0 : 1)) "start warns about ${k%%:*} exactly when .ctl/stat says ${k%%:*} 0 (it says ${v:-nothing})"
done
loop=$(losetup -n -O NAME -j "$file" | head -n1)
pf_ok "$([ -n "$loop" ]; echo $?)" "file attached to a loop device ($loop)"
pf_is "$(losetup -n -O DIO "$loop" 2>/dev/null | tr -d ' ')" 1 "loop device uses direct I/O"
prio=$(awk -v d="$loop" '$1 == d { print $5 }' /proc/swaps)
pf_is "$prio" 4242 "loop device is swap with the asked priority"

pf_run "start again" "$swap" start -b "$PAGEFOLD" -m "$mnt" -s 256M -p 4242
pf_is "$(loops_of)" 1 "start again attached no second loop device"
pf_is "$(grep -c "^$loop " /proc/swaps)" 1 "start again left one swap entry"
pf_is "$(grep -c " $mnt " /proc/mounts)" 1 "start again mounted nothing more"

"$swap" status -m "$mnt" >"$PF_TMP/status" 2>&1
pf_ok $? "status exits 0 while running" || pf_diag_file "$PF_TMP/status"
grep -q "^mm_stat: *[0-9]" "$PF_TMP/status"
pf_ok $? "status shows mm_stat" || pf_diag_file "$PF_TMP/status"
grep -q "^total memory held: " "$PF_TMP/status"
pf_ok $? "status shows the memory both tiers hold" || pf_diag_file "$PF_TMP/status"

pf_run "stop" "$swap" stop -m "$mnt"
pf_is "$(grep -c "^$loop " /proc/swaps)" 0 "stop: swap off"
pf_ok "$(losetup "$loop" >/dev/null 2>&1; [ $? -ne 0 ]; echo $?)" "stop: loop device detached"
pf_ok "$(! pf_is_mounted "$mnt"; echo $?)" "stop: unmounted"
same_as_before "stop: kernel settings as before start"
pf_ok "$([ ! -e "$PF_SWAP_STATE/kernel.saved" ]; echo $?)" "stop: no saved settings left"
pf_run "stop again is harmless" "$swap" stop -m "$mnt"
"$swap" status -m "$mnt" >/dev/null 2>&1
pf_is $? 3 "status exits 3 when not mounted"

# A start that fails after mounting (a file size the store refuses) undoes
# the mount it made and leaves no loop device behind.
pf_fails "start with an impossible size fails" "$swap" start -b "$PAGEFOLD" -m "$mnt" -s 8E
track_all
pf_ok "$(! pf_is_mounted "$mnt"; echo $?)" "failed start unmounted what it mounted" ||
	pf_diag_file "$PF_TMP/run.out"
pf_is "$(loops_of)" 0 "failed start left no loop device"
same_as_before "failed start: kernel settings as before"

# Bad arguments: refused with a message, nothing mounted.
pf_fails "bad priority refused" "$swap" start -b "$PAGEFOLD" -m "$mnt" -p high
grep -q "bad priority" "$PF_TMP/run.out"
pf_ok $? "bad priority: says why" || pf_diag_file "$PF_TMP/run.out"
pf_fails "bad mount option refused" "$swap" start -b "$PAGEFOLD" -m "$mnt" -o fold=sometimes
track_all
pf_ok "$(! pf_is_mounted "$mnt"; echo $?)" "bad mount option: nothing mounted"
same_as_before "bad mount option: kernel settings as before"
pf_fails "missing daemon refused" "$swap" start -b "$PF_TMP/no-such-pagefold" -m "$mnt"
grep -q "not executable" "$PF_TMP/run.out"
pf_ok $? "missing daemon: says why" || pf_diag_file "$PF_TMP/run.out"

# Not root: refused before touching anything.
if command -v setpriv >/dev/null; then
	pf_fails "start as an ordinary user refused" setpriv --reuid=65534 --regid=65534 --clear-groups \
		"$swap" start -b "$PAGEFOLD" -m "$mnt"
	grep -q "must be run as root" "$PF_TMP/run.out"
	pf_ok $? "ordinary user: says why" || pf_diag_file "$PF_TMP/run.out"
fi
pf_done
