# SPDX-License-Identifier: MIT
# tests/lib.sh - sourced by every tests/tNNNN-<area>-<what>.sh.
#
# Owns: TAP output, the skip rule, a private temporary directory, the
# pagefold mounts a script makes, and an EXIT trap that undoes, in order,
# everything the script set up (swap, loop devices, workload processes,
# cgroups, mounts, daemons) - touching only what this script made, and
# killing only processes it started, by PID.
#
# Environment (set by meson test; defaults for running by hand from the
# source tree):
#   PAGEFOLD       the daemon      (default $PF_BUILD_DIR/fs/pagefold)
#   PF_BUILD_DIR   the build tree  (default <source>/build)
#   PF_SOURCE_DIR  the source tree
#
# TAP:   pf_ok STATUS DESC | pf_is GOT WANT DESC | pf_run DESC CMD...
#        pf_fails DESC CMD... | pf_ge GOT MIN DESC | pf_le GOT MAX DESC
#        pf_diag TEXT | pf_skip DESC REASON (one test point skipped)
#        pf_skip_all REASON | pf_done (unmounts, plan, exit)
# Setup: pf_require root|fuse|loop|swap|memcg ...
#        pf_mount [pagefold options...]   -> PF_MNT, PF_PID, PF_LOG
#        pf_umount MNT                      (also a test point: clean exit)
#        pf_track_swap DEV | pf_track_loop DEV | pf_track_cgroup DIR |
#        pf_track_pid PID (a workload: killed first) |
#        pf_track_daemon PID (a pagefold: waited for after the unmounts) |
#        pf_track_mount MNT |
#        pf_track_setting FILE (a /sys or /proc setting: its present value
#        is written back at exit, last tracked first, after everything else)
#        pf_ns_start: a private mount namespace (held by a sleeping process);
#        pf_ns CMD... runs CMD in it; pf_track_ns_mount MNT
#
# Sanitizer builds: reports go to $PF_TMP/asan.PID (log_path), also from
# daemons that were started by mount(8) and write their stderr nowhere;
# pf_done fails the script if any such report exists.

set -u

PF_SOURCE_DIR=${PF_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
PF_BUILD_DIR=${PF_BUILD_DIR:-$PF_SOURCE_DIR/build}
PAGEFOLD=${PAGEFOLD:-$PF_BUILD_DIR/fs/pagefold}
PF_HELPERS=$PF_BUILD_DIR/tests
export PATH=$PATH:/usr/sbin:/sbin

pf_test_n=0
pf_test_failed=0
pf_mnts=()
pf_pids=()
pf_swaps=()
pf_loops=()
pf_cgroups=()
pf_extra_pids=()
pf_daemon_pids=()
pf_extra_mnts=()
pf_ns_mnts=()
pf_settings=()
PF_NS=
declare -A pf_logs=()
PF_TMP=

pf_diag() {
	local line
	while IFS= read -r line; do
		echo "# $line"
	done <<<"$*"
}

pf_diag_file() {
	[ -s "$1" ] && sed -e 's/^/#   /' "$1" | head -n "${2:-20}"
	return 0
}

pf_ok() { # STATUS DESC...
	local status=$1
	shift
	pf_test_n=$((pf_test_n + 1))
	if [ "$status" -eq 0 ]; then
		echo "ok $pf_test_n - $*"
	else
		echo "not ok $pf_test_n - $*"
		pf_test_failed=$((pf_test_failed + 1))
	fi
	return "$status"
}

pf_is() { # GOT WANT DESC...
	local got=$1 want=$2
	shift 2
	[ "$got" = "$want" ]
	pf_ok $? "$*" || pf_diag "got '$got', want '$want'"
}

pf_col() { awk -v n="$2" '{ print $n }' "$1"; }              # FILE N: field N
pf_row() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }      # FILE KEY: KEY's value

pf_ge() { # GOT MIN DESC...: integers
	local got=$1 min=$2
	shift 2
	[ -n "$got" ] && [ "$got" -ge "$min" ] 2>/dev/null
	pf_ok $? "$*" || pf_diag "got '$got', want >= $min"
}

pf_le() { # GOT MAX DESC...: integers
	local got=$1 max=$2
	shift 2
	[ -n "$got" ] && [ "$got" -le "$max" ] 2>/dev/null
	pf_ok $? "$*" || pf_diag "got '$got', want <= $max"
}

pf_run() { # DESC CMD...: passes when CMD succeeds
	local desc=$1 status
	shift
	"$@" >"$PF_TMP/run.out" 2>&1
	status=$?
	pf_ok $status "$desc" || { pf_diag "command: $*"; pf_diag_file "$PF_TMP/run.out"; }
}

pf_fails() { # DESC CMD...: passes when CMD fails; its output is in $PF_TMP/run.out
	local desc=$1 status
	shift
	"$@" >"$PF_TMP/run.out" 2>&1
	status=$?
	[ $status -ne 0 ]
	pf_ok $? "$desc" || pf_diag "command succeeded: $*"
}

pf_skip() { # DESC REASON
	pf_test_n=$((pf_test_n + 1))
	echo "ok $pf_test_n - $1 # SKIP $2"
}

pf_skip_all() {
	echo "1..0 # SKIP $*"
	exit 0
}

pf_require() { # root fuse loop swap memcg
	local what
	for what in "$@"; do
		case $what in
		root)
			[ "$(id -u)" -eq 0 ] || pf_skip_all "needs root"
			;;
		fuse)
			[ -c /dev/fuse ] || pf_skip_all "no /dev/fuse"
			command -v fusermount3 >/dev/null || pf_skip_all "no fusermount3"
			[ -x "$PAGEFOLD" ] || pf_skip_all "no daemon at $PAGEFOLD"
			;;
		loop)
			command -v losetup >/dev/null && [ -e /dev/loop-control ] ||
				pf_skip_all "no loop devices"
			;;
		swap)
			command -v swapon >/dev/null && command -v mkswap >/dev/null &&
				[ -r /proc/swaps ] || pf_skip_all "no swapon/mkswap"
			;;
		memcg)
			[ -n "$(pf_memcg_base)" ] || pf_skip_all "no cgroup v1 memory controller"
			;;
		*)
			pf_skip_all "unknown requirement $what"
			;;
		esac
	done
}

# This process's memory cgroup directory (cgroup v1), or nothing.
pf_memcg_base() {
	local path
	[ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ] || return 0
	path=$(awk -F: '$2 == "memory" { print $3 }' /proc/self/cgroup)
	[ -n "$path" ] && [ -d "/sys/fs/cgroup/memory$path" ] &&
		echo "/sys/fs/cgroup/memory${path%/}"
	return 0
}

# Real programs' memory into OUT (at most MIB MiB; prints the pages
# dumped): a bash holding text, this shell, and the mount's daemon.
pf_dump_real() { # OUT MIB
	bash -c 'x=$(seq 300000); sleep 120' &
	local holder=$!
	pf_track_pid "$holder"
	sleep 0.3
	"$PF_HELPERS/pf-memdump" "$1" "$2" "$holder" "$$" "$PF_PID"
	kill "$holder" 2>/dev/null
	wait "$holder" 2>/dev/null
}
# A child memory cgroup of ours, tracked for the EXIT trap, limited to MB
# MiB with swappiness 100 (so the daemon, in ours, stays outside).
pf_memcg_limited() { # PATH MB
	mkdir "$1" && pf_track_cgroup "$1" &&
		echo $(($2 << 20)) >"$1/memory.limit_in_bytes" &&
		echo 100 >"$1/memory.swappiness"
}
# pf-memfill filling MB MiB inside cgroup CG (output in $PF_TMP/memfill.out;
# it then waits for $PF_TMP/go): its pid in pf_memfill_pid, tracked; 0
# once it says it filled, 1 if it died or did not within 120 s.
pf_memfill_start() { # CG MB
	local i
	(
		echo "$BASHPID" >"$1/cgroup.procs" &&
			exec "$PF_HELPERS/pf-memfill" -s "$2" -g "$PF_TMP/go" -S $$ -p 1
	) >"$PF_TMP/memfill.out" 2>&1 &
	pf_memfill_pid=$!
	pf_track_pid "$pf_memfill_pid"
	for i in $(seq 1200); do
		grep -q '^filled' "$PF_TMP/memfill.out" && return 0
		pf_alive "$pf_memfill_pid" || break
		sleep 0.1
	done
	grep -q '^filled' "$PF_TMP/memfill.out"
}
pf_track_swap() { pf_swaps+=("$1"); }
pf_track_loop() { pf_loops+=("$1"); }
pf_track_cgroup() { pf_cgroups+=("$1"); }
pf_track_pid() { pf_extra_pids+=("$1"); }     # killed first
pf_track_daemon() { pf_daemon_pids+=("$1"); } # after the unmounts
pf_track_mount() { pf_extra_mnts+=("$1"); }
pf_track_ns_mount() { pf_ns_mnts+=("$1"); }
# The kernel settings pagefold-swap start changes system-wide (zswap's
# parameters, vm.page-cluster; with CGROUPS, the cgroup v2 zswap limits):
# tracked so that the EXIT trap puts them back, in pf_swap_settings for
# pf_swap_snapshot (one "path=value" a line).
pf_track_swap_settings() { # [CGROUPS]
	local z=/sys/module/zswap/parameters p
	pf_swap_settings=(/proc/sys/vm/page-cluster)
	for p in compressor max_pool_percent accept_threshold_percent shrinker_enabled enabled; do
		[ -f "$z/$p" ] && pf_swap_settings+=("$z/$p")
	done
	if [ -n "${1:-}" ]; then
		for p in /sys/fs/cgroup/system.slice/memory.zswap.max /sys/fs/cgroup/user.slice/memory.zswap.max; do
			[ -f "$p" ] && pf_swap_settings+=("$p")
		done
	fi
	for p in "${pf_swap_settings[@]}"; do
		pf_track_setting "$p"
	done
}
pf_swap_snapshot() { local p; for p in "${pf_swap_settings[@]}"; do echo "$p=$(cat "$p")"; done; }
# Passes when every tracked setting is what BEFORE (a snapshot) says.
pf_same_settings() { # BEFORE DESC
	local now
	now=$(pf_swap_snapshot)
	[ "$now" = "$1" ]
	pf_ok $? "$2" || pf_diag "before: ${1//$'\n'/ }" "now:    ${now//$'\n'/ }"
}

# A pagefold-swap setup on MNT with swap file FILE: its mount, and the loop
# device and swap on FILE when there are, tracked for the EXIT trap.
pf_track_swap_setup() { # MNT FILE
	local loop
	pf_track_mount "$1"
	loop=$(pf_loop_of "$2")
	if [ -n "$loop" ]; then
		pf_track_swap "$loop"
		pf_track_loop "$loop"
	fi
}
pf_loop_of() { losetup -n -O NAME -j "$1" 2>/dev/null | head -n1; } # FILE
pf_loops_of() { losetup -n -O NAME -j "$1" 2>/dev/null | wc -l; }   # FILE
pf_track_setting() { # FILE
	local v
	read -r v <"$1" || return 1
	pf_settings+=("$1=$v")
}

# Write the tracked settings back (newest first), saying which the kernel
# refused.
pf_restore_settings() {
	local i f v now
	for ((i = ${#pf_settings[@]} - 1; i >= 0; i--)); do
		f=${pf_settings[$i]%%=*}
		v=${pf_settings[$i]#*=}
		read -r now <"$f" 2>/dev/null
		[ "$now" = "$v" ] && continue
		printf '%s\n' "$v" 2>/dev/null >"$f" || echo "# could not restore $f to $v"
	done
}

pf_ns_start() {
	unshare -m --propagation private sleep 100000 &
	PF_NS=$!
	local t
	for t in $(seq 50); do
		[ "$(readlink "/proc/$PF_NS/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] &&
			return 0
		sleep 0.1
	done
	return 1
}

pf_ns() { nsenter -t "$PF_NS" -m -- "$@"; }

# Sanitizer reports written through log_path.
pf_sanitizer_reports() {
	ls "$PF_TMP"/asan.* "$PF_TMP"/ubsan.* 2>/dev/null
}

# A mount with the disk tier on $PF_TMP/back and OPTS; M is the mount and
# C its .ctl. A mount that fails ends the test.
pf_mount_backing() { # OPTS
	pf_mount -o backing_file="$PF_TMP/back,$1" || { pf_ok 1 "mount ($1)"; pf_done; }
	M=$PF_MNT
	C=$M/.ctl
}

pf_is_mounted() { # MNT: a pagefold mount there?
	[ "$(findmnt -n -M "$1" -o FSTYPE 2>/dev/null | tail -n 1)" = fuse.pagefold ]
}

pf_alive() { # PID: running (not a zombie)?
	local state
	state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$state" ] && [ "$state" != Z ]
}

# Mount a pagefold in the foreground, in the background of this shell.
pf_mount() { # [options...]
	local i=${#pf_mnts[@]} t
	PF_MNT=$PF_TMP/mnt$i
	PF_LOG=$PF_TMP/daemon$i.log
	mkdir -p "$PF_MNT"
	"$PAGEFOLD" -f "$@" "$PF_MNT" >"$PF_LOG" 2>&1 &
	PF_PID=$!
	pf_mnts+=("$PF_MNT")
	pf_pids+=("$PF_PID")
	pf_logs[$PF_MNT]=$PF_LOG
	for t in $(seq 300); do
		pf_is_mounted "$PF_MNT" && return 0
		pf_alive "$PF_PID" || break
		sleep 0.1
	done
	pf_diag "pagefold $* $PF_MNT did not mount"
	pf_diag_file "$PF_LOG"
	return 1
}

# Wait for PID (a child of this shell) to exit; its status in pf_wait_status.
pf_wait_exit() { # PID SECONDS
	local t
	for t in $(seq $(($2 * 10))); do
		pf_alive "$1" || break
		sleep 0.1
	done
	if pf_alive "$1"; then
		pf_wait_status=timeout
		return 1
	fi
	wait "$1" 2>/dev/null
	pf_wait_status=$?
	return 0
}

# Unmount MNT and check that its daemon exits cleanly (one test point).
pf_umount() { # MNT
	local mnt=$1 i pid=
	for i in "${!pf_mnts[@]}"; do
		[ "${pf_mnts[$i]}" = "$mnt" ] && pid=${pf_pids[$i]} && unset 'pf_mnts[i]' 'pf_pids[i]'
	done
	fusermount3 -u "$mnt" 2>"$PF_TMP/umount.err" || umount "$mnt" 2>>"$PF_TMP/umount.err"
	[ -n "$pid" ] || return 0
	pf_wait_exit "$pid" 60 || { kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
	local log=${pf_logs[$mnt]}
	[ "$pf_wait_status" = 0 ] &&
		! grep -q -E 'Sanitizer|runtime error:|invariant|invalid at exit' "$log"
	pf_ok $? "daemon of $(basename "$mnt") exited cleanly (status $pf_wait_status)" ||
		{ pf_diag_file "$PF_TMP/umount.err"; pf_diag_file "$log" 40; }
}

pf_done() {
	local mnt f
	for mnt in "${pf_mnts[@]}"; do
		pf_umount "$mnt"
	done
	f=$(pf_sanitizer_reports)
	[ -z "$f" ]
	pf_ok $? "no sanitizer reports" || for f in $f; do pf_diag_file "$f" 30; done
	echo "1..$pf_test_n"
	[ "$pf_test_failed" -eq 0 ] || echo "# $pf_test_failed of $pf_test_n failed"
	[ "$pf_test_failed" -eq 0 ]
	exit
}

# Undo everything, in an order that works while things are still running:
# the workloads first (swapoff must not have to fit their pages back into
# a full cgroup), then swap, loop devices, cgroups, mounts, daemons.
pf_cleanup() {
	local status=$? x i pid
	set +e
	trap '' INT TERM
	for pid in "${pf_extra_pids[@]}"; do
		pf_alive "$pid" && kill -KILL "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	done
	for x in "${pf_swaps[@]}"; do
		grep -q "^$(readlink -f "$x") " /proc/swaps && swapoff "$x"
	done
	for x in "${pf_loops[@]}"; do
		losetup "$x" >/dev/null 2>&1 && losetup -d "$x"
	done
	for ((i = ${#pf_cgroups[@]} - 1; i >= 0; i--)); do
		x=${pf_cgroups[$i]}
		[ -d "$x" ] || continue
		for pid in $(cat "$x/cgroup.procs" 2>/dev/null); do
			echo "# cgroup $x still holds pid $pid"
		done
		rmdir "$x" 2>/dev/null || { sleep 1; rmdir "$x"; }
	done
	if [ -n "$PF_NS" ] && pf_alive "$PF_NS"; then
		for x in "${pf_ns_mnts[@]}"; do
			pf_ns umount -l "$x" 2>/dev/null
		done
	fi
	for x in "${pf_mnts[@]}" "${pf_extra_mnts[@]}"; do
		pf_is_mounted "$x" && { fusermount3 -u "$x" 2>/dev/null || umount -l "$x"; }
	done
	for pid in "${pf_pids[@]}" "${pf_daemon_pids[@]}"; do
		pf_wait_exit "$pid" 10 || { kill -TERM "$pid"; pf_wait_exit "$pid" 5 ||
			kill -KILL "$pid"; }
	done 2>/dev/null
	if [ -n "$PF_NS" ] && pf_alive "$PF_NS"; then
		kill -KILL "$PF_NS" && wait "$PF_NS"
	fi 2>/dev/null
	pf_restore_settings
	if [ -n "$PF_TMP" ] && [ -d "$PF_TMP" ]; then
		if findmnt -rn -o TARGET | grep -q "^$PF_TMP"; then
			echo "# leaving $PF_TMP: something is still mounted in it"
		else
			rm -rf "$PF_TMP"
		fi
	fi
	exit $status
}

PF_TMP=$(mktemp -d /tmp/pagefold-test.XXXXXX) || exit 1
chmod 755 "$PF_TMP"

# The sanitizer build's programs: stop at the first report so the test sees
# it, and write reports to files (a daemon started by mount(8) has no
# stderr). Leak checking at exit is on (it needs ptrace, which root has).
# mlockall() in the ASan daemon is harmless: MCL_ONFAULT locks only the
# shadow pages actually touched, not the terabytes reserved for it.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}:log_path=$PF_TMP/asan"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}:log_path=$PF_TMP/ubsan"
trap pf_cleanup EXIT
trap 'exit 130' INT TERM
