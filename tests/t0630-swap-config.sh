#!/bin/bash
# examples/pagefold-swap's settings file and the systemd units.
#  (a) a file with every key: each reaches the daemon (read back through
#      the mount's .ctl files and its command line), swapon (priority and
#      size in /proc/swaps, the loop device) and zswap; start prints them;
#  (b) flags override the file;
#  (c) a bad value, an unknown key, a key given twice, a line that is not
#      "key = value": refused with the file's name and line, nothing changed;
#  (d) stop leaves a mount it did not make mounted (and removes the file
#      it made there);
#  (e) the installed units (meson install --destdir) and the generated
#      ones pass systemd-analyze verify;
#  (f) the commands the units' ExecStart/ExecStop and systemd's swap unit
#      run, in the units' order, in a private mount namespace (so that
#      /run/pagefold and /run/pagefold-swap are the test's own): swapoff
#      runs once, before the loop device is detached and the mount goes,
#      and the kernel settings go back after it.
# The kernel settings start changes are tracked: the EXIT trap writes back
# what the test found, whatever happens.
. "$(dirname "$0")/lib.sh"
pf_require root fuse loop swap

swap=$PF_SOURCE_DIR/examples/pagefold-swap
mnt=$PF_TMP/swapmnt
file=$mnt/swap0
conf=$PF_TMP/swap.conf
# A state directory of our own: never that of a setup running on the host.
export PF_SWAP_STATE=$PF_TMP/state
export PF_SWAP_CONF=$conf

Z=/sys/module/zswap/parameters
pf_track_swap_settings cgroups
snapshot() { pf_swap_snapshot; }
before=$(snapshot)
same_as_before() { pf_same_settings "$before" "$1"; } # DESC
two=0
[ -w "$Z/enabled" ] && two=1

track_all() { pf_track_swap_setup "$mnt" "${1:-$file}"; } # [SWAPFILE]: for the EXIT trap
loops_of() { pf_loops_of "${1:-$file}"; }
swaps_field() { awk -v d="$1" -v n="$2" '$1 == d { print $n }' /proc/swaps; } # DEV COLUMN
nothing_changed() { # DESC
	track_all
	pf_ok "$(! pf_is_mounted "$mnt"; echo $?)" "$1: nothing mounted"
	pf_is "$(loops_of)" 0 "$1: no loop device"
	pf_ok "$([ ! -e "$PF_SWAP_STATE" ]; echo $?)" "$1: no state directory"
	same_as_before "$1: kernel settings as before"
}
mem=$(($(awk '/^MemTotal:/ { print $2 }' /proc/meminfo) * 1024))
daemon_cmdline() { # MNT: the command line of the daemon serving MNT (read only)
	local p
	for p in $(pgrep -x pagefold); do
		tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q -F " $1" &&
			tr '\0' ' ' <"/proc/$p/cmdline"
	done
}

# A free loop device for loop-device: one that exists and holds nothing
# (the machine lock keeps other tests from taking it meanwhile).
ld=$(losetup -f) || pf_skip_all "no free loop device"

# --- (a) every key ---------------------------------------------------------

if [ $two = 1 ]; then tiers=two; else tiers=single; fi
cat >"$conf" <<EOF
# every key, with values none of them has by default
swap-size = 96M
priority = 4242   # a comment after a value
mem-limit = 3%

tiers = $tiers
hot-size = 2%
intake = lz4hc:3
cold-codec = zstd:7
recompress-after = 4321
fold = scan
group-size = 3
backing-file = $PF_TMP/backing
writeback-after = 777
mem-high = 1%
mount-options = max_threads=5,spin_us=7
mount-point = $mnt/
loop-device = $ld
EOF
pf_run "start with every key in the file" "$swap" start -b "$PAGEFOLD"
track_all
cp "$PF_TMP/run.out" "$PF_TMP/start.out"
limit=$((mem * 300 / 10000 / 4096 * 4096))
C=$mnt/.ctl
pf_is "$(cat "$C/intake" 2>&1)" lz4hc:3 "intake reached .ctl/intake"
pf_is "$(cat "$C/recomp_algorithm" 2>&1)" zstd:7 "cold-codec reached .ctl/recomp_algorithm"
pf_is "$(cat "$C/recompress_after" 2>&1)" 4321 "recompress-after reached .ctl/recompress_after"
pf_is "$(cat "$C/fold" 2>&1)" scan "fold reached .ctl/fold"
pf_is "$(cat "$C/group_size" 2>&1)" 3 "group-size reached .ctl/group_size"
pf_is "$(cat "$C/backing_dev" 2>&1)" "$PF_TMP/backing" "backing-file reached .ctl/backing_dev"
pf_is "$(cat "$C/writeback_after" 2>&1)" 777 "writeback-after reached .ctl/writeback_after"
pf_is "$(cat "$C/mem_high" 2>&1)" $((mem * 100 / 10000 / 4096 * 4096)) "mem-high 1% reached .ctl/mem_high (whole pages)"
pf_is "$(cat "$C/mem_limit" 2>&1)" "$limit" "mem-limit 3% reached .ctl/mem_limit (3% of MemTotal, whole pages)"
cmdline=$(daemon_cmdline "$mnt")
[[ $cmdline == *max_threads=5* && $cmdline == *spin_us=7* ]]
pf_ok $? "mount-options reached the daemon's -o" || pf_diag "daemon: $cmdline"
pf_ok "$(pf_is_mounted "$mnt"; echo $?)" "mount-point (with a trailing /): mounted on $mnt"
pf_is "$(losetup -n -O NAME -j "$file" | head -n1)" "$ld" "loop-device: the file is on $ld"
pf_is "$(swaps_field "$ld" 5)" 4242 "priority reached swapon (/proc/swaps)"
pf_is "$(swaps_field "$ld" 3)" $((96 * 1024 - 4)) "swap-size 96M reached swapon (/proc/swaps, KiB less the header page)"
if [ $two = 1 ]; then
	pf_is "$(cat "$Z/enabled") $(cat "$Z/max_pool_percent")" "Y 2" "tiers two, hot-size 2%: zswap on, max_pool_percent 2"
else
	pf_skip "tiers two, hot-size 2%: zswap on, max_pool_percent 2" "zswap's parameters are not writable"
fi
grep -q -F "settings ($conf): swap-size=96M priority=4242 mem-limit=3%(" "$PF_TMP/start.out" &&
	grep -q -F " tiers=$tiers hot-size=2%(" "$PF_TMP/start.out" &&
	grep -q -F " intake=lz4hc:3 cold-codec=zstd:7 recompress-after=4321 fold=scan group-size=3 backing-file=$PF_TMP/backing writeback-after=777 mem-high=1%(" "$PF_TMP/start.out" &&
	grep -q -F ") mount-options=max_threads=5,spin_us=7 mount-point=$mnt loop-device=$ld" "$PF_TMP/start.out"
pf_ok $? "start prints the settings in one line" || pf_diag_file "$PF_TMP/start.out"
pf_is "$(grep -c '^pagefold-swap: settings (' "$PF_TMP/start.out")" 1 "... one line"
grep -q -x "mounted=$mnt" "$PF_SWAP_STATE/kernel.saved" && grep -q -x "created=$file" "$PF_SWAP_STATE/kernel.saved"
pf_ok $? "the state file records the mount and the file start made" || pf_diag_file "$PF_SWAP_STATE/kernel.saved"
pf_run "stop" "$swap" stop
pf_is "$(swaps_field "$ld" 1)" "" "stop: swap off"
pf_ok "$(! pf_is_mounted "$mnt"; echo $?)" "stop: unmounted what start mounted"
nothing_changed "after stop"

# --- (b) flags override the file --------------------------------------------

mnt2=$PF_TMP/other
pf_run "start with flags" "$swap" start -b "$PAGEFOLD" -p 77 -s 64M -T single -m "$mnt2" -o intake=lz4
mnt=$mnt2 track_all "$mnt2/swap0"
pf_ok "$(pf_is_mounted "$mnt2" && ! pf_is_mounted "$mnt"; echo $?)" "-m over mount-point"
pf_is "$(losetup -n -O NAME -j "$mnt2/swap0" | head -n1)" "$ld" "no -l: the file's loop-device"
pf_is "$(swaps_field "$ld" 5)" 77 "-p over priority"
pf_is "$(swaps_field "$ld" 3)" $((64 * 1024 - 4)) "-s over swap-size"
pf_is "$(cat "$mnt2/.ctl/intake")" lz4 "-o intake=lz4 over intake"
pf_is "$(cat "$mnt2/.ctl/recomp_algorithm")" zstd:7 "... the file's cold-codec still applies"
[[ $(daemon_cmdline "$mnt2") != *max_threads=5* ]]
pf_ok $? "-o over mount-options (max_threads=5 left out)"
pf_is "$(snapshot | grep -v page-cluster)" "$(echo "$before" | grep -v page-cluster)" "-T single over tiers: zswap untouched"
pf_run "stop -m" "$swap" stop -m "$mnt2"
pf_ok "$(! pf_is_mounted "$mnt2"; echo $?)" "stop -m: unmounted"
nothing_changed "after stop -m"

# --- (c) refused: file and line, nothing changed ----------------------------

refused() { # DESC LINE3 EXPECTED: the file's third line is LINE3
	printf 'mount-point = %s\npriority = 5\n%s\nswap-size = 64M\n' "$mnt" "$2" >"$conf"
	pf_fails "$1: start refused" "$swap" start -b "$PAGEFOLD"
	grep -q -F "pagefold-swap: $conf:3: $3" "$PF_TMP/run.out"
	pf_ok $? "$1: says '$conf:3: $3'" || pf_diag_file "$PF_TMP/run.out"
	nothing_changed "$1"
}
refused "bad value" "hot-size = 12X" "bad hot-size '12X'"
refused "bad codec level" "cold-codec = zstd:20" "bad cold-codec 'zstd:20'"
refused "group-size out of range" "group-size = 17" "bad group-size '17'"
refused "relative backing file" "backing-file = backing" "bad backing-file 'backing'"
refused "unknown key" "colour = blue" "unknown key 'colour'"
refused "key twice" "priority = 6" "priority given twice (first at $conf:2)"
refused "not key = value" "[zram0]" "not a 'key = value' line"
pf_fails "a missing settings file given with -c is refused" "$swap" start -b "$PAGEFOLD" -c "$PF_TMP/none.conf"
grep -q "cannot read the settings file $PF_TMP/none.conf" "$PF_TMP/run.out"
pf_ok $? "... and says so" || pf_diag_file "$PF_TMP/run.out"
nothing_changed "missing settings file"

# --- (d) stop leaves a mount it did not make --------------------------------

pf_mount -o fold=inline || { pf_ok 1 "mount"; pf_done; }
printf 'fold = off\nswap-size = 64M\ntiers = single\n' >"$conf"
pf_run "start on a mount someone else made" "$swap" start -b "$PAGEFOLD" -m "$PF_MNT"
track_all "$PF_MNT/swap0"
grep -q "$PF_MNT already mounted, not by pagefold-swap" "$PF_TMP/run.out"
pf_ok $? "start: says the mount is not its own" || pf_diag_file "$PF_TMP/run.out"
pf_is "$(cat "$PF_MNT/.ctl/fold")" off "the file's fold reached the existing mount through .ctl"
loop=$(losetup -n -O NAME -j "$PF_MNT/swap0" | head -n1)
pf_run "stop -m that mount" "$swap" stop -m "$PF_MNT"
grep -q "$PF_MNT left mounted: pagefold-swap did not mount it" "$PF_TMP/run.out"
pf_ok $? "stop: says it leaves the mount" || pf_diag_file "$PF_TMP/run.out"
pf_ok "$(pf_is_mounted "$PF_MNT"; echo $?)" "stop: the mount is still mounted"
pf_ok "$(pf_alive "$PF_PID"; echo $?)" "stop: its daemon still runs"
pf_is "$(grep -c "^$loop " /proc/swaps)" 0 "stop: swap off"
pf_is "$(loops_of "$PF_MNT/swap0")" 0 "stop: loop device detached"
pf_ok "$([ ! -e "$PF_MNT/swap0" ]; echo $?)" "stop: the file start made is removed"
pf_ok "$([ ! -e "$PF_SWAP_STATE" ]; echo $?)" "stop: no state directory"
same_as_before "stop: kernel settings as before"
pf_umount "$PF_MNT"

# --- (e) systemd-analyze verify ---------------------------------------------

R=$PF_TMP/dest
units_ok=0
if ! command -v systemd-analyze >/dev/null; then
	pf_skip "units: systemd-analyze verify" "no systemd-analyze (Debian: the systemd package)"
elif ! command -v meson >/dev/null || [ ! -d "$PF_BUILD_DIR/meson-private" ]; then
	pf_skip "units: systemd-analyze verify" "no meson build directory at $PF_BUILD_DIR"
else
	meson install -C "$PF_BUILD_DIR" --no-rebuild --destdir "$R" --quiet >"$PF_TMP/install.out" 2>&1
	pf_ok $? "meson install --destdir" || pf_diag_file "$PF_TMP/install.out"
	gen=$(find "$R" -path '*/lib/systemd/system-generators/pagefold-swap-generator' | head -n1)
	prefix=${gen%/lib/systemd/system-generators/pagefold-swap-generator}
	prefix=${prefix#"$R"}
	U=$R$prefix/lib/systemd/system
	for f in pagefold.service pagefold-swap-setup@.service pagefold-swap.target; do
		[ -f "$U/$f" ]
		pf_ok $? "installed $prefix/lib/systemd/system/$f"
	done
	pf_ok "$([ -x "$gen" ] && [ -f "$R$prefix/share/doc/pagefold/swap.conf.example" ]; echo $?)" \
		"installed the generator (executable) and swap.conf.example under $prefix"
	pf_ok "$([ ! -e "$R/etc/pagefold" ]; echo $?)" "installed nothing in /etc"
	# The installed generator runs the installed pagefold-swap.
	grep -q -x "exec $prefix/sbin/pagefold-swap generate \"\$@\"" "$gen" && [ -x "$R$prefix/sbin/pagefold-swap" ]
	pf_ok $? "the generator execs $prefix/sbin/pagefold-swap, installed" || pf_diag_file "$gen"
	sed "s|^exec /|exec $R/|" "$gen" >"$PF_TMP/generator"

	# A root for systemd-analyze: the installed tree, the host's own units
	# and the two commands pagefold.service runs from /bin.
	mkdir -p "$R/usr/lib/systemd" "$R/bin" "$R/run/systemd/system"
	cp -a /usr/lib/systemd/system "$R/usr/lib/systemd/" && cp /bin/mkdir /bin/fusermount3 "$R/bin/"
	printf 'priority = 123\nloop-device = /dev/loop77\nmount-point = /run/pagefold\n' >"$conf"
	sh "$PF_TMP/generator" "$R/run/systemd/system" "$PF_TMP/early" "$PF_TMP/late" >"$PF_TMP/gen.out" 2>&1
	pf_ok $? "the generator runs" || pf_diag_file "$PF_TMP/gen.out"
	G=$R/run/systemd/system
	grep -q -x 'What=/dev/loop77' "$G/dev-loop77.swap" && grep -q -x 'Priority=123' "$G/dev-loop77.swap" &&
		grep -q -x 'Options=discard=pages' "$G/dev-loop77.swap" &&
		grep -q -x 'BindsTo=pagefold-swap-setup@loop77.service' "$G/dev-loop77.swap" &&
		grep -q -x 'After=pagefold-swap-setup@loop77.service' "$G/dev-loop77.swap"
	pf_ok $? "generated dev-loop77.swap: the file's device and priority, after and bound to its setup" ||
		pf_diag_file "$G/dev-loop77.swap"
	pf_is "$(readlink "$G/pagefold-swap.target.wants/dev-loop77.swap")" ../dev-loop77.swap \
		"pagefold-swap.target wants it"
	grep -q -x 'RequiresMountsFor=/run/pagefold' "$G/pagefold-swap-setup@loop77.service.d/mount.conf"
	pf_ok $? "the setup instance is ordered after the mount point's mount" ||
		pf_diag_file "$G/pagefold-swap-setup@loop77.service.d/mount.conf"
	MANPATH=$R$prefix/share/man systemd-analyze verify --root="$R" dev-loop77.swap \
		pagefold-swap-setup@loop77.service pagefold-swap.target pagefold.service >"$PF_TMP/verify.out" 2>&1
	[ $? -eq 0 ] && [ ! -s "$PF_TMP/verify.out" ]
	pf_ok $? "systemd-analyze verify: the installed and the generated units, no message" &&
		units_ok=1 || pf_diag_file "$PF_TMP/verify.out" 30

	# A bad file: the generator says why and writes the defaults (the
	# setup service then refuses the same file).
	rm -rf "$PF_TMP/gen2" && mkdir "$PF_TMP/gen2"
	printf 'priority = 123\nloop-device = /dev/loop77\nfold = sometimes\n' >"$conf"
	sh "$PF_TMP/generator" "$PF_TMP/gen2" "$PF_TMP/early" "$PF_TMP/late" >"$PF_TMP/gen.out" 2>&1
	grep -q -F "$conf:3: bad fold 'sometimes'" "$PF_TMP/gen.out" && grep -q -x 'Priority=100' "$PF_TMP/gen2/dev-loop240.swap"
	pf_ok $? "a bad file: the generator says which line, and writes the defaults (dev-loop240.swap)" ||
		{ pf_diag_file "$PF_TMP/gen.out"; ls "$PF_TMP/gen2" | pf_diag "$(cat)"; }
fi

# --- (f) the units' commands, in the units' order ---------------------------

unit_key() { # FILE KEY: the values of KEY= in FILE, one a line
	sed -n "s/^$2=//p" "$1"
}
if [ $units_ok = 0 ]; then
	pf_skip "units' commands in order" "the units were not installed and verified above"
elif ! command -v unshare >/dev/null || ! pf_ns_start; then
	pf_skip "units' commands in order" "no private mount namespace (unshare)"
else
	inst=${ld#/dev/}
	printf 'priority = 4343\nswap-size = 64M\nloop-device = %s\ntiers = single\n' "$ld" >"$conf"
	mkdir -p "$PF_TMP/gen3"
	sh "$PF_TMP/generator" "$PF_TMP/gen3" "$PF_TMP/early" "$PF_TMP/late" >"$PF_TMP/gen.out" 2>&1
	pf_ok $? "the generator runs" || pf_diag_file "$PF_TMP/gen.out"
	SW=$PF_TMP/gen3/dev-$inst.swap
	SVC=$U/pagefold.service
	SETUP=$PF_TMP/setup@$inst.service
	sed "s/%i/$inst/g" "$U/pagefold-swap-setup@.service" >"$SETUP"
	# The order the runner below follows is the units' own:
	grep -q -x "After=pagefold-swap-setup@$inst.service" "$SW" &&
		grep -q -x "BindsTo=pagefold-swap-setup@$inst.service" "$SW" &&
		grep -q '^After=.*pagefold\.service' "$SETUP" && grep -q -x 'Requires=pagefold.service' "$SETUP"
	pf_ok $? "units: swap after setup, setup after pagefold.service (the order below)"

	# Every command the units run, and those pagefold-swap runs, go
	# through wrappers that log them; the runner logs each unit command
	# and vm.page-cluster after it.
	T=$PF_TMP/trace
	B=$PF_TMP/trace-bin
	mkdir -p "$B"
	for c in swapon swapoff losetup mkswap fusermount3 umount mount truncate; do
		real=$(command -v "$c") || continue
		printf '#!/bin/sh\nprintf "%%s %%s\\n" %s "$*" >>%s\nexec %s "$@"\n' "$c" "$T" "$real" >"$B/$c"
		chmod +x "$B/$c"
	done
	: >"$T"
	# ARGV... as the unit has it: a path under the prefix runs from the
	# destdir; a command with a wrapper runs through it.
	unit_run() { # UNIT ARGV...
		local u=$1 c=$2
		shift 2
		case $c in
		"$prefix"/*) c=$R$c ;;
		esac
		[ -x "$B/${c##*/}" ] && c=$B/${c##*/}
		echo "unit $u: ${c##*/} $*" >>"$T"
		pf_ns env -u PF_SWAP_STATE PATH="$B:$PATH" PF_SWAP_CONF="$conf" "$c" "$@" >>"$PF_TMP/units.out" 2>&1
		local rc=$?
		echo "page-cluster $(cat /proc/sys/vm/page-cluster)" >>"$T"
		return $rc
	}
	unit_cmds() { # FILE KEY: the unit's command lines for KEY
		unit_key "$1" "$2" | sed 's/^[-@+!:]*//'
	}
	# systemd's own commands for a swap unit (src/core/swap.c,
	# swap_enter_activating and swap_enter_deactivating, v252): Priority=
	# is appended to Options= as pri=.
	what=$(unit_key "$SW" What)
	swapopts=$(unit_key "$SW" Options)
	swappri=$(unit_key "$SW" Priority)
	[ -z "$swappri" ] || swapopts=${swapopts:+$swapopts,}pri=$swappri

	# vm.page-cluster from a value start never sets and the host seldom
	# has, so that its restore shows (the EXIT trap puts back the host's).
	echo 5 >/proc/sys/vm/page-cluster
	before=$(snapshot)
	# The namespace's copies of the FUSE mounts of the host (other tests'
	# too) would keep their daemons from ending when they are unmounted
	# there: drop them here.
	pf_ns findmnt -rn -t fuse,fuse.pagefold -o TARGET | while read -r m; do
		pf_ns umount -l "$(printf '%b' "$m")"
	done
	pf_ns mount -t tmpfs -o mode=755 tmpfs /run
	pf_ok $? "a private /run in the namespace"
	pf_track_ns_mount /run/pagefold
	pf_track_swap "$ld"
	pf_track_loop "$ld"

	# start: pagefold.service, its condition first; then the setup; then
	# the swap unit.
	cond=$(unit_key "$SVC" ConditionPathIsMountPoint)
	pf_ns mountpoint -q "${cond#!}"
	pf_ok "$([ $? -ne 0 ]; echo $?)" "pagefold.service: ConditionPathIsMountPoint=$cond holds"
	ok=0
	while read -r -a cmd; do
		unit_run pagefold.service "${cmd[@]}" || ok=1
	done < <(unit_cmds "$SVC" ExecStartPre; unit_cmds "$SVC" ExecStart)
	pf_ok $ok "pagefold.service: ExecStartPre, ExecStart" || pf_diag_file "$PF_TMP/units.out"
	for p in $(pgrep -x pagefold); do # the daemon it started: ours, in our namespace
		[ "$(readlink "/proc/$p/ns/mnt")" = "$(readlink "/proc/$PF_NS/ns/mnt")" ] && pf_track_daemon "$p"
	done
	pf_ns findmnt -n -M /run/pagefold -o FSTYPE >"$PF_TMP/fstype" 2>&1
	pf_is "$(cat "$PF_TMP/fstype")" fuse.pagefold "pagefold.service mounted /run/pagefold (in the namespace)"
	while read -r -a cmd; do
		unit_run "pagefold-swap-setup@$inst.service" "${cmd[@]}"
	done < <(unit_cmds "$SETUP" ExecStart)
	pf_ok $? "pagefold-swap-setup@$inst.service: ExecStart" || pf_diag_file "$PF_TMP/units.out" 40
	unit_run "dev-$inst.swap" /sbin/swapon --fixpgsz -o "$swapopts" "$what"
	pf_ok $? "dev-$inst.swap: swapon --fixpgsz -o $swapopts $what" || pf_diag_file "$PF_TMP/units.out" 40
	pf_is "$(swaps_field "$ld" 5)" 4343 "the swap is on, with the file's priority"
	pf_is "$(cat /proc/sys/vm/page-cluster)" 0 "vm.page-cluster 0 while it is on"

	# Neither pagefold-swap stop nor teardown takes down a swap the swap
	# unit still holds.
	pf_ns env -u PF_SWAP_STATE PATH="$B:$PATH" PF_SWAP_CONF="$conf" "$swap" stop >"$PF_TMP/run.out" 2>&1
	pf_ok "$([ $? -ne 0 ] && grep -q "set up by pagefold-swap-setup@$inst.service" "$PF_TMP/run.out"; echo $?)" \
		"pagefold-swap stop refuses the units' swap, and says so" || pf_diag_file "$PF_TMP/run.out"
	while read -r -a cmd; do
		pf_ns env -u PF_SWAP_STATE PATH="$B:$PATH" "${cmd[0]/#$prefix/$R$prefix}" "${cmd[@]:1}" >"$PF_TMP/run.out" 2>&1
		pf_ok "$([ $? -ne 0 ] && grep -q "$ld is still in use as swap" "$PF_TMP/run.out"; echo $?)" \
			"teardown refuses while $ld is swap" || pf_diag_file "$PF_TMP/run.out"
	done < <(unit_cmds "$SETUP" ExecStop)
	pf_is "$(swaps_field "$ld" 5)" 4343 "... and the swap is still on"
	: >"$T"

	# stop (systemctl stop pagefold-swap.target, or shutdown): the reverse
	# of the start order.
	unit_run "dev-$inst.swap" /sbin/swapoff "$what"
	pf_ok $? "dev-$inst.swap: swapoff $what" || pf_diag_file "$PF_TMP/units.out" 40
	while read -r -a cmd; do
		unit_run "pagefold-swap-setup@$inst.service" "${cmd[@]}"
	done < <(unit_cmds "$SETUP" ExecStop)
	pf_ok $? "pagefold-swap-setup@$inst.service: ExecStop" || pf_diag_file "$PF_TMP/units.out" 40
	while read -r -a cmd; do
		unit_run pagefold.service "${cmd[@]}"
	done < <(unit_cmds "$SVC" ExecStop)
	pf_ok $? "pagefold.service: ExecStop" || pf_diag_file "$PF_TMP/units.out" 40
	pf_diag "$(cat "$T")"

	line_of() { grep -n -m1 -e "$1" "$T" | cut -d: -f1; } # REGEX: first line, or nothing
	pf_is "$(grep -c '^swapoff ' "$T")" 1 "stop: swapoff ran once"
	off=$(line_of '^swapoff ')
	det=$(line_of "^losetup -d $ld")
	umo=$(line_of '^fusermount3 -u /run/pagefold')
	pf_ok "$([ -n "$off" ] && [ -n "$det" ] && [ "$off" -lt "$det" ]; echo $?)" \
		"stop: swapoff (line $off) before losetup -d (line $det)"
	pf_ok "$([ -n "$det" ] && [ -n "$umo" ] && [ "$det" -lt "$umo" ]; echo $?)" \
		"stop: losetup -d (line $det) before the unmount (line $umo)"
	pc=$(sed -n 's/^page-cluster //p' "$T" | paste -s -d ' ')
	pf_is "$pc" "0 5 5" "vm.page-cluster after each stop command: still 0 after swapoff, back (5) after teardown"
	pf_is "$(grep -c "^umount \|^fusermount3 " "$T")" 1 "stop: one unmount, pagefold.service's"
	pf_is "$(swaps_field "$ld" 1)" "" "after stop: no swap"
	pf_ok "$(! losetup "$ld" >/dev/null 2>&1; echo $?)" "after stop: $ld detached"
	pf_ns findmnt -n -M /run/pagefold >/dev/null 2>&1
	pf_ok "$([ $? -ne 0 ]; echo $?)" "after stop: /run/pagefold unmounted"
	pf_ns test -e /run/pagefold-swap
	pf_ok "$([ $? -ne 0 ]; echo $?)" "after stop: no state directory in /run/pagefold-swap"
	same_as_before "after stop: kernel settings as before"
fi
pf_done
