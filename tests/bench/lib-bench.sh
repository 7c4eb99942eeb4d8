# shellcheck shell=bash
# lib-bench.sh - helpers sourced by the benchmark scripts in tests/bench.
#
#   . "$(dirname "$0")/lib-bench.sh"
#
# Sourcing it installs one EXIT trap (and INT/TERM/HUP traps that exit
# through it); do not install your own EXIT trap, push cleanups instead:
#
#   bench_cleanup_push CMD...   run CMD (eval'd) at exit, last pushed first
#   bench_cleanup_forget CMD... drop the last entry equal to CMD (after you
#                               ran it yourself)
#   bench_run CMD...            run a long CMD so that INT/TERM stop it at once
#                               (bash delays traps until a foreground command ends)
#
# zram (all need root; /dev/zram0 is shared, so each holds a lock file while
# it uses the device, and refuses a device in use as swap, mounted, held or
# open):
#   zram_measure FILE           write FILE to a fresh lz4 /dev/zram0 with
#                               O_DIRECT, print its mm_stat as name=value
#                               pairs on one line, reset the device
#   zram_init SIZE / zram_release   fresh lz4 device of SIZE for block I/O
#   zram_reinit SIZE            reset and set up again, keeping the lock
#   zram_swap_on SIZE / zram_swap_off   fresh lz4 device, mkswap, swapon -p 100
#   zram_mm_stat                current mm_stat as name=value pairs
# memory cgroup v1 (children of the group this shell is in):
#   cg_create VAR NAME LIMIT    make a child group with memory.limit_in_bytes
#                               LIMIT (K/M/G suffixes), its path into VAR
#   cg_spawn VAR CG CMD...      start CMD in the background inside CG, PID into VAR
#   cg_run CG CMD...            run CMD in the foreground inside CG
#   cg_move CG PID              move a process into CG
#   cg_remove CG                stop what is left in CG (by PID), remove it
# redis (loopback, a free port, its own directory, no persistence):
#   redis_start PIDVAR PORTVAR DIR [CG]   start redis-server (inside CG if given)
#   redis_stop PID              stop it by PID and wait for it
# misc:
#   bench_conditions            print the run's conditions as "# name: value"
#   pages_summary FILE [LABEL]  pages, MiB, zero/same/dup fractions, LZ4 ratios
#   kv_get "a=1 b=2" b          value of a name in name=value pairs
#   now_ns, pid_rss_kb PID, free_port, bench_find_pagefold
#
# Messages go to stderr prefixed with the script's name; bench_die exits 1.

BENCH_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BENCH_SRC_DIR=$(cd "$BENCH_LIB_DIR/../.." && pwd)
BENCH_PROG=${0##*/}
ZRAM_DEV=${ZRAM_DEV:-/dev/zram0}
ZRAM_SYS=/sys/block/${ZRAM_DEV##*/}
ZRAM_LOCK=${ZRAM_LOCK:-/run/lock/pagefold-${ZRAM_DEV##*/}.lock}
ZRAM_LOCK_WAIT=${ZRAM_LOCK_WAIT:-900}
ZRAM_MM_STAT_NAMES=(orig_data_size compr_data_size mem_used_total mem_limit
		    mem_used_max same_pages pages_compacted huge_pages
		    huge_pages_since)

# a failing command inside $(...) fails the substitution too
shopt -s inherit_errexit

bench_log() { echo "$BENCH_PROG: $*" >&2; }
bench_die() { echo "$BENCH_PROG: error: $*" >&2; exit 1; }

# ---- cleanup registry ------------------------------------------------------

_bench_cleanups=()

bench_cleanup_push() { _bench_cleanups+=("$*"); }

bench_cleanup_forget() {
	local i want="$*"

	for ((i = ${#_bench_cleanups[@]} - 1; i >= 0; i--)); do
		if [ "${_bench_cleanups[i]-}" = "$want" ]; then
			unset '_bench_cleanups[i]'
			_bench_cleanups=("${_bench_cleanups[@]}")
			return 0
		fi
	done
	return 0
}

_bench_cleanup_run() {
	local rc=$? i cmd

	trap - EXIT
	set +e
	for ((i = ${#_bench_cleanups[@]} - 1; i >= 0; i--)); do
		cmd=${_bench_cleanups[i]}
		eval "$cmd" || bench_log "cleanup failed: $cmd"
	done
	_bench_cleanups=()
	exit "$rc"
}

# bash runs a trap only once the foreground command has finished; long
# commands go through bench_run so that a signal stops them at once.
_bench_fg_pid=

bench_run() {
	local rc=0

	# an explicit stdin: bash gives background commands /dev/null otherwise
	"$@" 0<&0 &
	_bench_fg_pid=$!
	wait "$_bench_fg_pid" || rc=$?
	_bench_fg_pid=
	return "$rc"
}

_bench_on_signal() {
	if [ -n "${_bench_fg_pid:-}" ]; then
		kill -TERM "$_bench_fg_pid" 2>/dev/null || true
		wait "$_bench_fg_pid" 2>/dev/null || true
	fi
	exit "$1"
}

trap _bench_cleanup_run EXIT
trap '_bench_on_signal 130' INT
trap '_bench_on_signal 143' TERM
trap '_bench_on_signal 129' HUP

# ---- small helpers ---------------------------------------------------------

now_ns() { date +%s%N; }

# kv_get "name=value ..." name
kv_get() {
	local pair

	for pair in $1; do
		if [ "${pair%%=*}" = "$2" ]; then
			echo "${pair#*=}"
			return 0
		fi
	done
	return 1
}

pid_rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

free_port() {
	python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# MiB with one decimal from bytes
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

# ratio a/b with 2 decimals, "n/a" when b is 0 or empty
ratio() {
	awk -v a="${1:-0}" -v b="${2:-0}" \
		'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'
}

# median of the arguments (numbers)
median() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 }
		END { if (NR % 2) print v[(NR + 1) / 2];
		      else printf "%.6g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

bench_need_root() {
	[ "$(id -u)" -eq 0 ] || bench_die "must run as root (zram, swap, cgroups)"
}

# The pagefold binary: $PAGEFOLD, else build/fs/pagefold, else build-bench/.
bench_find_pagefold() {
	local c

	for c in "${PAGEFOLD:-}" "$BENCH_SRC_DIR/build/fs/pagefold" \
		 "$BENCH_SRC_DIR/build-bench/fs/pagefold"; do
		if [ -n "$c" ] && [ -x "$c" ]; then
			echo "$c"
			return 0
		fi
	done
	return 1
}

bench_conditions() {
	local cpu swaps

	cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
	swaps=$(awk 'NR > 1 {printf "%s%s(%s KiB, prio %s)", sep, $1, $3, $5; sep=", "}' /proc/swaps)
	echo "# date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	echo "# kernel: $(uname -r)"
	echo "# cpu: ${cpu:-unknown} x $(nproc)"
	echo "# load average: $(cut -d' ' -f1-3 /proc/loadavg)"
	awk '/^MemTotal:|^MemFree:|^MemAvailable:|^SwapTotal:|^SwapFree:/ {
		printf "# %s %d MiB\n", $1, $2 / 1024 }' /proc/meminfo
	echo "# swap devices: ${swaps:-none}"
	echo "# source: $(git -C "$BENCH_SRC_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$BENCH_SRC_DIR" diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
}

# ---- zram ------------------------------------------------------------------

# Why the device cannot be used now, or nothing.
_zram_busy_reason() {
	local p fd

	[ -b "$ZRAM_DEV" ] || { echo "$ZRAM_DEV does not exist (modprobe zram)"; return; }
	if awk -v d="$ZRAM_DEV" '$1 == d {f = 1} END {exit !f}' /proc/swaps; then
		echo "$ZRAM_DEV is in use as swap"
		return
	fi
	if awk -v d="$ZRAM_DEV" '$1 == d {f = 1} END {exit !f}' /proc/mounts; then
		echo "$ZRAM_DEV is mounted"
		return
	fi
	if [ -n "$(ls -A "$ZRAM_SYS/holders" 2>/dev/null)" ]; then
		echo "$ZRAM_DEV has holders: $(ls "$ZRAM_SYS/holders")"
		return
	fi
	for fd in /proc/[0-9]*/fd/*; do
		if [ "$(readlink "$fd" 2>/dev/null)" = "$ZRAM_DEV" ]; then
			p=${fd#/proc/}
			echo "$ZRAM_DEV is open by PID ${p%%/*}"
			return
		fi
	done
}

# Take the lock on fd $_zram_lock_fd (waits while another benchmark holds it).
_zram_lock() {
	mkdir -p "$(dirname "$ZRAM_LOCK")"
	exec {_zram_lock_fd}>>"$ZRAM_LOCK"
	if ! flock -n "$_zram_lock_fd"; then
		bench_log "waiting up to ${ZRAM_LOCK_WAIT}s for $ZRAM_DEV (lock $ZRAM_LOCK held by another benchmark)"
		flock -w "$ZRAM_LOCK_WAIT" "$_zram_lock_fd" ||
			bench_die "timed out waiting for $ZRAM_LOCK"
	fi
}

_zram_unlock() {
	if [ -n "${_zram_lock_fd:-}" ]; then
		flock -u "$_zram_lock_fd" 2>/dev/null || true
		exec {_zram_lock_fd}>&-
		_zram_lock_fd=
	fi
}

# Reset the device only if this shell set it up (_zram_owned).
_zram_reset() {
	if [ -n "${_zram_owned:-}" ]; then
		echo 1 >"$ZRAM_SYS/reset"
		_zram_owned=
	fi
}

# _zram_setup SIZE: lock, check, reset, lz4, disksize SIZE (bytes or K/M/G).
_zram_setup() {
	local why

	bench_need_root
	_zram_lock
	why=$(_zram_busy_reason)
	if [ -n "$why" ]; then
		_zram_unlock
		bench_die "refusing to use $ZRAM_DEV: $why"
	fi
	_zram_owned=1
	_zram_reset
	_zram_owned=1
	echo lz4 >"$ZRAM_SYS/comp_algorithm" ||
		bench_die "$ZRAM_DEV: lz4 not available ($(cat "$ZRAM_SYS/comp_algorithm"))"
	echo "$1" >"$ZRAM_SYS/disksize"
}

zram_mm_stat() {
	local -a v
	local i out=

	read -r -a v <"$ZRAM_SYS/mm_stat"
	for i in "${!v[@]}"; do
		out+="${out:+ }${ZRAM_MM_STAT_NAMES[i]:-col$((i + 1))}=${v[i]}"
	done
	echo "$out"
}

# disksize for FILE's bytes: size + 1/16 + 16 MiB, rounded up to 1 MiB
_zram_size_for() {
	local b=$1

	echo $(( (b + b / 16 + 16 * 1048576 + 1048575) / 1048576 * 1048576 ))
}

# zram_measure FILE: prints mm_stat after writing FILE, as name=value pairs.
# Runs in a subshell with its own traps so that the device is reset and the
# lock released on every exit path, also when called as $(zram_measure ...).
zram_measure() (
	local file=$1 size

	trap '_zram_reset 2>/dev/null; _zram_unlock' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	[ -r "$file" ] || bench_die "zram_measure: cannot read $file"
	size=$(stat -c %s "$file")
	if [ "$size" -eq 0 ] || [ $((size % 4096)) -ne 0 ]; then
		bench_die "zram_measure: $file is not whole 4 KiB pages"
	fi
	_zram_setup "$(_zram_size_for "$size")"
	dd if="$file" of="$ZRAM_DEV" bs=1M oflag=direct status=none
	zram_mm_stat
)

# zram_init SIZE: a fresh lz4 device for block I/O until zram_release/exit.
zram_init() {
	bench_cleanup_push zram_release
	_zram_setup "$1"
}

zram_reinit() {
	[ -n "${_zram_owned:-}" ] || bench_die "zram_reinit without zram_init"
	_zram_reset
	_zram_owned=1
	echo lz4 >"$ZRAM_SYS/comp_algorithm"
	echo "$1" >"$ZRAM_SYS/disksize"
}

zram_release() {
	bench_cleanup_forget zram_release
	_zram_reset
	_zram_unlock
}

# zram_swap_on SIZE: fresh lz4 device, mkswap, swapon -p 100.
zram_swap_on() {
	bench_cleanup_push zram_swap_off
	_zram_setup "$1"
	mkswap "$ZRAM_DEV" >/dev/null
	swapon -p 100 "$ZRAM_DEV"
	_zram_swap_is_ours=1
}

zram_swap_off() {
	bench_cleanup_forget zram_swap_off
	if [ -n "${_zram_swap_is_ours:-}" ] &&
	   awk -v d="$ZRAM_DEV" '$1 == d {f = 1} END {exit !f}' /proc/swaps; then
		swapoff "$ZRAM_DEV"
	fi
	_zram_swap_is_ours=
	_zram_reset
	_zram_unlock
}

# ---- memory cgroup v1 ------------------------------------------------------

cg_memory_root() {
	local path

	path=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3; exit}' "/proc/$$/cgroup")
	[ -n "$path" ] || bench_die "no memory cgroup v1 controller for this shell"
	[ -d "/sys/fs/cgroup/memory$path" ] ||
		bench_die "/sys/fs/cgroup/memory$path does not exist"
	echo "/sys/fs/cgroup/memory${path%/}"
}

# cg_create VAR NAME LIMIT
cg_create() {
	local _cc_dir

	_cc_dir=$(cg_memory_root)/pagefold-bench.$$.$2
	mkdir "$_cc_dir" || bench_die "cannot create cgroup $_cc_dir"
	bench_cleanup_push cg_remove "$_cc_dir"
	echo "$3" >"$_cc_dir/memory.limit_in_bytes" ||
		bench_die "cannot set memory.limit_in_bytes=$3 on $_cc_dir"
	printf -v "$1" '%s' "$_cc_dir"
}

# cg_spawn VAR CG CMD...: CMD in the background inside CG; its PID into VAR.
cg_spawn() {
	local _cs_var=$1 _cs_cg=$2

	shift 2
	sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$_cs_cg" "$@" &
	printf -v "$_cs_var" '%s' "$!"
}

cg_run() {
	local cg=$1

	shift
	sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$cg" "$@"
}

cg_move() { echo "$2" >"$1/cgroup.procs"; }

# cg_remove CG: the processes still in CG were put there by us: TERM them by
# PID, KILL after 5 s, then remove the group.
cg_remove() {
	local cg=$1 pid pids i

	bench_cleanup_forget cg_remove "$cg"
	[ -d "$cg" ] || return 0
	for i in $(seq 1 50); do
		pids=$(cat "$cg/cgroup.procs" 2>/dev/null) || break
		[ -n "$pids" ] || break
		for pid in $pids; do
			if [ "$i" -lt 50 ]; then kill -TERM "$pid" 2>/dev/null || true
			else kill -KILL "$pid" 2>/dev/null || true; fi
		done
		sleep 0.1
	done
	for i in $(seq 1 50); do
		rmdir "$cg" 2>/dev/null && return 0
		sleep 0.1
	done
	bench_log "could not remove cgroup $cg"
	return 1
}

# ---- redis -----------------------------------------------------------------

# redis_start PIDVAR PORTVAR DIR [CG]: redis-server on 127.0.0.1, a free
# port, files in DIR, no persistence; waits until it answers PING.
redis_start() {
	local _rs_dir=$3 _rs_cg=${4:-} _rs_port _rs_pid _rs_i
	local -a _rs_cmd

	command -v redis-server >/dev/null ||
		bench_die "redis-server not found (apt-get install redis-server)"
	_rs_port=$(free_port)
	mkdir -p "$_rs_dir"
	_rs_cmd=(redis-server --bind 127.0.0.1 --port "$_rs_port"
		 --dir "$_rs_dir" --save '' --appendonly no --daemonize no
		 --protected-mode yes --logfile "$_rs_dir/redis.log")
	if [ -n "$_rs_cg" ]; then
		cg_spawn _rs_pid "$_rs_cg" "${_rs_cmd[@]}" >/dev/null
	else
		"${_rs_cmd[@]}" >/dev/null &
		_rs_pid=$!
	fi
	bench_cleanup_push redis_stop "$_rs_pid"
	for _rs_i in $(seq 1 100); do
		if [ "$(redis-cli -p "$_rs_port" ping 2>/dev/null)" = PONG ]; then
			printf -v "$1" '%s' "$_rs_pid"
			printf -v "$2" '%s' "$_rs_port"
			return 0
		fi
		kill -0 "$_rs_pid" 2>/dev/null ||
			bench_die "redis-server exited: $(tail -n 3 "$_rs_dir/redis.log" 2>/dev/null)"
		sleep 0.1
	done
	bench_die "redis-server on port $_rs_port did not answer"
}

redis_stop() {
	bench_cleanup_forget redis_stop "$1"
	bench_stop_pid "$1"
}

# bench_stop_pid PID: TERM (and CONT, should it be stopped) a process this
# script started, KILL it after 10 s, and reap it.
bench_stop_pid() {
	local pid=$1 i

	if kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		kill -CONT "$pid" 2>/dev/null || true
		for i in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

# ---- data set statistics ---------------------------------------------------

# pages_summary FILE [LABEL]: one line of name=value pairs:
#   pages mib zero same dup (fractions of all pages; same includes zero, as
#   zram's same_pages; dup = non-same pages equal to an earlier page)
#   lz4 = bytes of non-same pages / their LZ4 sizes, each page compressed
#         alone (LZ4_compress_default, capped at 4096), as zram does;
#   ratio_nofold = all bytes / LZ4 bytes of non-same pages (same pages free);
#   ratio_fold = all bytes / LZ4 bytes of unique non-same pages.
pages_summary() {
	python3 - "$1" "${2:-${1##*/}}" <<'PY'
import ctypes, ctypes.util, sys

path, label = sys.argv[1], sys.argv[2]
lib = ctypes.util.find_library("lz4") or "liblz4.so.1"
lz4 = ctypes.CDLL(lib)
lz4.LZ4_compress_default.argtypes = [ctypes.c_char_p, ctypes.c_char_p,
                                     ctypes.c_int, ctypes.c_int]
lz4.LZ4_compress_default.restype = ctypes.c_int
PAGE = 4096
dst = ctypes.create_string_buffer(lz4.LZ4_compressBound(PAGE))
zero = bytes(PAGE)
n = nzero = nsame = ndup = 0
comp_all = comp_unique = 0
seen = set()
with open(path, "rb") as f:
    while True:
        p = f.read(PAGE)
        if not p:
            break
        if len(p) != PAGE:
            sys.exit(f"{path}: not whole 4096-byte pages")
        n += 1
        if p == zero:
            nzero += 1
            nsame += 1
            continue
        if p == p[:8] * (PAGE // 8):
            nsame += 1
            continue
        c = lz4.LZ4_compress_default(p, dst, PAGE, len(dst))
        c = PAGE if c <= 0 or c > PAGE else c
        comp_all += c
        if p in seen:  # exact content, not a hash
            ndup += 1
        else:
            seen.add(p)
            comp_unique += c
total = n * PAGE
nonsame = (n - nsame) * PAGE
r = lambda a, b: f"{a / b:.2f}" if b else "n/a"
fr = lambda k: f"{k / n:.3f}" if n else "n/a"
print(f"set={label} pages={n} mib={total / 1048576:.1f} zero={fr(nzero)} "
      f"same={fr(nsame)} dup={fr(ndup)} lz4={r(nonsame, comp_all)} "
      f"ratio_nofold={r(total, comp_all)} ratio_fold={r(total, comp_unique)}")
PY
}
