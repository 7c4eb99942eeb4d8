#!/bin/bash
# pagefoldctl against the control files. Two mounts, one with a blank in its
# mount point and started without CAP_IPC_LOCK and CAP_SYS_RESOURCE; known
# data written (a file and its copy, zero pages, random pages). One row per
# mount; every --raw figure equals the .ctl/stat or .ctl/files figure read
# right before and after it (nothing written in between, background work
# off); RATIO = DATA/TOTAL; SAVED-FOLD = the files' compr_bytes less
# compr_data_size, here the copy's compressed size; human units and
# --bytes; --output selects and orders, + adds, an unknown column exits 2;
# --raw gives the same bytes twice and one word a value; -f lists every file
# with its size; a path that is not a pagefold mount point exits 1; with no
# mount (in a private mount namespace) the header alone; the daemon's pid
# and its safety state with the reasons; pagefold-swap status prints the
# table. Last, a file of the first mount in swap use (losetup + swapon, torn
# down again): the SWAP column names the loop device, and the zswap columns
# match .ctl/zswap_stat. That part takes swap devices, so run the test as
#   flock /run/lock/pagefold-machine.lock meson test -C BUILD t0620-pagefoldctl.sh
. "$(dirname "$0")/lib.sh"
pf_require root fuse

CTL=$PF_BUILD_DIR/fs/pagefoldctl
[ -x "$CTL" ] || pf_skip_all "pagefoldctl is not built ($CTL)"
command -v setpriv >/dev/null || pf_skip_all "no setpriv (util-linux)"

# No background work: the figures stay put while nothing is written.
QUIET=defrag_ratio=100,recompress_after=0

pf_mount -o "$QUIET" || { pf_ok 1 "mount"; pf_done; }
A=$PF_MNT
A_PID=$PF_PID

# The second mount: a blank in its name; no CAP_IPC_LOCK and a 64 KiB
# RLIMIT_MEMLOCK (so its memory is not locked), no CAP_SYS_RESOURCE (so
# neither IO_FLUSHER nor the OOM score). Tracked as pf_mount tracks its own.
B="$PF_TMP/mnt b"
mkdir -p "$B"
(
	ulimit -l 64
	exec setpriv --inh-caps=-ipc_lock,-sys_resource \
		--bounding-set=-ipc_lock,-sys_resource \
		"$PAGEFOLD" -f -o "$QUIET,mem_limit=64M" "$B"
) >"$PF_TMP/daemon-b.log" 2>&1 &
B_PID=$!
pf_mnts+=("$B")
pf_pids+=("$B_PID")
# shellcheck disable=SC2034 # lib.sh reads it
pf_logs["$B"]=$PF_TMP/daemon-b.log
for t in $(seq 300); do
	pf_is_mounted "$B" && break
	pf_alive "$B_PID" || break
	sleep 0.1
done
pf_is_mounted "$B"
pf_ok $? "a second mount, with a blank in its mount point, without CAP_IPC_LOCK" ||
	{ pf_diag_file "$PF_TMP/daemon-b.log"; pf_done; }
B_RAW=${B// /\\x20} # as --raw writes it

# --- known data
head -c $((64 * 4096)) /dev/urandom >"$PF_TMP/rand64"
cp "$PF_TMP/rand64" "$A/dup1" && cp "$PF_TMP/rand64" "$A/dup2" &&
	dd if=/dev/zero of="$A/zero" bs=4096 count=16 status=none &&
	{ head -c $((8 * 4096)) /dev/urandom; head -c $((4 * 4096)) /dev/zero; printf hello; } >"$A/mixed" &&
	{ head -c $((32 * 4096)) /dev/urandom; head -c $((8 * 4096)) /dev/zero; } >"$B/a file"
pf_ok $? "files written: a file and its copy, zero pages, random pages" || pf_done

st() { # MNT NAME: a .ctl/stat figure
	awk -v k="$2" '$1 == k { print $2 }' "$1/.ctl/stat"
}
fcol() { # MNT PATH COLUMN-NAME: a figure of a .ctl/files row
	awk -v p="$2" -v c="$3" 'NR == 1 { for (i = 1; i <= NF; i++) n[$i] = i; next }
		$1 == p { print $n[c] }' "$1/.ctl/files"
}
raw() { "$CTL" --raw --bytes --noheadings "$@"; }

pf_is "$(st "$A" pages_folded)" 128 "setup: the copy's pages fold (pages_folded 128)"
pf_is "$(st "$A" same_pages)" 20 "setup: 20 same-filled pages on the first mount"

# --- idle_pages (IDLE): none at first (no aging with recompress_after=0);
# after "echo all > idle", every page with an object, folded ones too
# (157 pages - 20 same-filled); a direct read of one page makes it young.
pf_is "$(st "$A" idle_pages)" 0 "idle_pages 0 before anything is marked idle"
echo all >"$A/.ctl/idle"
pf_is "$(st "$A" idle_pages)" 137 "echo all > idle: idle_pages 137, every page that is not same-filled"
dd if="$A/mixed" of=/dev/null bs=4096 count=1 iflag=direct status=none
pf_is "$(st "$A" idle_pages)" 136 "a page read back is idle no more: 136"
pf_is "$(raw -o IDLE "$A")" 136 "IDLE shows idle_pages"

# --- one row per mount
"$CTL" --raw --noheadings -o MOUNTPOINT >"$PF_TMP/rows"
pf_is $? 0 "pagefoldctl exits 0"
pf_is "$(grep -cxF "$A" "$PF_TMP/rows")" 1 "one row for $(basename "$A")"
pf_is "$(grep -cxF "$B_RAW" "$PF_TMP/rows")" 1 "one row for 'mnt b', its blank written \\x20 by --raw"
"$CTL" >"$PF_TMP/table"
pf_is "$(grep -cF "$B " "$PF_TMP/table")" 1 "... and as a blank in the aligned table"
pf_is "$(head -n1 "$PF_TMP/table" | tr -s ' ')" \
	"MOUNTPOINT SIZE DATA COMPR TOTAL RATIO LIMIT SAVED-FOLD COLD IDLE FILES SWAP" \
	"the default columns"

# --- every figure against .ctl/stat, read right before and after
names="orig_data_size compr_data_size mem_used_total mem_limit same_pages pages_folded recomp_pages idle_pages files intake recomp_algorithm"
cols=DATA,COMPR,TOTAL,LIMIT,SAME,FOLDED,COLD,IDLE,FILES,INTAKE,COLD-CODEC
snapshot() { # MNT
	local n
	for n in $names; do
		printf '%s ' "$(st "$1" "$n")"
	done
}
for m in "$A" "$B"; do
	label=$(basename "$m")
	before=$(snapshot "$m")
	row=$(raw -o "$cols" "$m")
	after=$(snapshot "$m")
	pf_is "$after" "$before" "$label: .ctl/stat did not change around the run"
	want=$(echo "$before" | awk '{ if ($4 == 0) $4 = "-"; $1 = $1; print }')
	pf_is "$row" "$want" "$label: $cols = .ctl/stat's $names"
	read -r data total ratio <<<"$(raw -o DATA,TOTAL,RATIO "$m")"
	pf_is "$ratio" "$(awk -v d="$data" -v t="$total" 'BEGIN { printf "%.2f", d / t }')" \
		"$label: RATIO = DATA / TOTAL ($data / $total)"
done
mm=$(cat "$A/.ctl/mm_stat")
pf_is "$(raw -o DATA,COMPR,TOTAL,SAME,FOLDED,COLD "$A")" \
	"$(echo "$mm" | awk '{ print $1, $2, $3, $6, $10, $15 }')" \
	"$(basename "$A"): DATA COMPR TOTAL SAME FOLDED COLD = mm_stat's columns 1 2 3 6 10 15"
pf_is "$(cat "$A/.ctl/mm_stat")" "$mm" "... which did not change meanwhile"
pf_is "$(raw -o LIMIT "$B")" 67108864 "mnt b: LIMIT is mem_limit (64M)"
pf_is "$(raw -o LIMIT "$A")" - "$(basename "$A"): LIMIT is - without a limit"

# SAVED-FOLD: what the files refer to less what is stored.
refs=$(awk 'NR > 1 { s += $6 } END { print s + 0 }' "$A/.ctl/files")
saved=$(raw -o SAVED-FOLD "$A")
pf_is "$saved" $((refs - $(st "$A" compr_data_size))) \
	"SAVED-FOLD = the files' compr_bytes ($refs) - compr_data_size"
pf_is "$saved" "$(fcol "$A" /dup2 compr_bytes)" "... = what the copy would take unfolded"
pf_ge "$saved" 4096 "... and that is something"
pf_is "$(raw -o SAVED-FOLD "$B")" 0 "mnt b: no folding, SAVED-FOLD 0"

# Sizes: the files' sizes added up.
sum=0
for f in dup1 dup2 zero mixed; do
	sum=$((sum + $(stat -c %s "$A/$f")))
done
pf_is "$(raw -o SIZE "$A")" "$sum" "SIZE: the files' sizes added up"

# --- units
orig=$(st "$A" orig_data_size)
pf_is "$("$CTL" -n -o DATA "$A" | tr -d ' ')" \
	"$(awk -v b="$orig" 'BEGIN { printf "%.1fKiB", b / 1024 }')" "DATA in KiB with one decimal"
pf_is "$("$CTL" -n -o LIMIT "$B" | tr -d ' ')" 64.0MiB "LIMIT 64M shows as 64.0MiB"
pf_is "$("$CTL" -n -b -o DATA "$A" | tr -d ' ')" "$orig" "--bytes: DATA in bytes"
pf_is "$("$CTL" -n -o FILE,COMPR -f "$A" | grep '^/zero ' | tr -s ' ')" "/zero 0B" \
	"a file of zero pages: COMPR 0B"

# --- columns: chosen, ordered, added; unknown refused
out=$("$CTL" --raw -o COMPR,mountpoint,DATA "$A")
pf_is "$out" "COMPR MOUNTPOINT DATA
$(st "$A" compr_data_size) $A $(st "$A" orig_data_size)" \
	"--output picks and orders the columns (names in any case)"
pf_is "$("$CTL" --raw -o +PID,FOLDED "$A" | head -n1)" \
	"MOUNTPOINT SIZE DATA COMPR TOTAL RATIO LIMIT SAVED-FOLD COLD IDLE FILES SWAP PID FOLDED" \
	"--output +COLS adds to the default columns"
"$CTL" -o DATA,NOPE "$A" >"$PF_TMP/out" 2>"$PF_TMP/err"
pf_is $? 2 "an unknown column: exit 2"
grep -q "unknown column: NOPE" "$PF_TMP/err"
pf_ok $? "... with a message naming it" || pf_diag_file "$PF_TMP/err"
pf_is "$(cat "$PF_TMP/out")" "" "... and no table"
"$CTL" --no-such-option >/dev/null 2>&1
pf_is $? 2 "an unknown option: exit 2"
all=$("$CTL" --raw --output-all "$A" | head -n1)
# Every column -h lists (one line each, indented four spaces).
ncols=$("$CTL" -h | grep -cE '^    [A-Z][A-Z-]+ ')
pf_ge "$ncols" 24 "-h lists the columns ($ncols)"
pf_is "$(echo "$all" | wc -w)" "$ncols" "--output-all: all $ncols columns"
"$CTL" -h >"$PF_TMP/help"
pf_is $? 0 "-h exits 0"
missing=
for c in $all; do
	grep -q "^    $c " "$PF_TMP/help" || missing="$missing $c"
done
pf_is "$missing" "" "-h explains every column"
pf_is "$("$CTL" -V | head -c 12)" "pagefoldctl " "-V prints the version"
pf_is "$("$CTL" --noheadings -o MOUNTPOINT "$A")" "$A" "--noheadings: no header line"

# --- --raw: one word a value, the same bytes twice
"$CTL" --raw --output-all -f "$A" "$B" >"$PF_TMP/raw1"
"$CTL" --raw --output-all -f "$A" "$B" >"$PF_TMP/raw2"
cmp -s "$PF_TMP/raw1" "$PF_TMP/raw2"
pf_ok $? "--raw: the same output twice with nothing changed" ||
	diff "$PF_TMP/raw1" "$PF_TMP/raw2" | head -n 10 | sed 's/^/# /'
pf_is "$(awk -v n="$ncols" 'NF != n' "$PF_TMP/raw1")" "" "--raw: every row has a word for each of the $ncols columns"
pf_is "$(awk 'NR > 1 { print $1 }' "$PF_TMP/raw1" | sort -u | wc -l)" 2 "... rows of the two mounts named"

# --- -f: the files, with their sizes
raw -f -o MOUNTPOINT,FILE,SIZE "$A" "$B" >"$PF_TMP/files"
want=$( {
	echo "$A - $sum"
	for f in dup1 dup2 mixed zero; do echo "$A /$f $(stat -c %s "$A/$f")"; done
	printf '%s\n' "$B_RAW - $(stat -c %s "$B/a file")"
	printf '%s\n' "$B_RAW /a\\x20file $(stat -c %s "$B/a file")"
} | sort)
pf_is "$(sort "$PF_TMP/files")" "$want" "-f: a row for each file with its size, after its mount's"
pf_is "$(head -n1 "$PF_TMP/files")" "$A - $sum" "-f: the mount's row first"
pf_is "$("$CTL" -f --raw "$A" | head -n1)" \
	"MOUNTPOINT FILE SIZE DATA COMPR TOTAL RATIO LIMIT SAVED-FOLD COLD IDLE FILES SWAP" \
	"-f: FILE is a default column then, after MOUNTPOINT"
pf_is "$(raw -f -o FILE,DATA,COMPR,SAME,FOLDED "$A" | grep '^/dup2 ')" \
	"/dup2 $(($(fcol "$A" /dup2 pages) * 4096)) $(fcol "$A" /dup2 compr_bytes) $(fcol "$A" /dup2 same) $(fcol "$A" /dup2 folded)" \
	"-f: a file's DATA, COMPR, SAME, FOLDED from its .ctl/files row"
pf_is "$(raw -f -o FILE,SAME "$A" | grep '^/zero ')" "/zero 16" "-f: the zero file: 16 same-filled pages"
if [ -n "$(fcol "$A" /dup2 own_bytes)" ]; then
	pf_is "$(raw -f -o FILE,SAVED-FOLD "$A" | grep '^/dup2 ')" \
		"/dup2 $(($(fcol "$A" /dup2 compr_bytes) - $(fcol "$A" /dup2 own_bytes) - $(fcol "$A" /dup2 shared_bytes)))" \
		"-f: a file's SAVED-FOLD = compr_bytes - own_bytes - shared_bytes"
else
	pf_skip "-f: a file's SAVED-FOLD" ".ctl/files has no own_bytes"
fi

# --- arguments
pf_is "$(cd "$PF_TMP" && "$CTL" -rn -o MOUNTPOINT "./$(basename "$A")/")" "$A" \
	"a mount point however spelt (relative, trailing slash)"
pf_is "$("$CTL" -rn -o MOUNTPOINT "$B" "$A")" "$A
$B_RAW" "two mount points: both, in mount order"
for p in "$PF_TMP" "$A/dup1" "$PF_TMP/no-such-dir"; do
	"$CTL" "$p" >"$PF_TMP/out" 2>"$PF_TMP/err"
	pf_is $? 1 "not a pagefold mount point: exit 1 (${p#"$PF_TMP"/})"
	[ -s "$PF_TMP/err" ] && [ ! -s "$PF_TMP/out" ]
	pf_ok $? "... a message and no table" || pf_diag_file "$PF_TMP/err"
done
"$CTL" "$A" "$PF_TMP" >"$PF_TMP/out" 2>"$PF_TMP/err"
pf_is $? 1 "a mount point and a directory: exit 1"
grep -q "$PF_TMP: not a pagefold mount point" "$PF_TMP/err"
pf_ok $? "... saying which" || pf_diag_file "$PF_TMP/err"

# --- the daemons: pid, locked memory, IO_FLUSHER, OOM score
if grep -qs fuse_connection "/proc/$A_PID/fdinfo/"*; then
	pf_is "$(raw -o PID "$A" "$B" | tr '\n' ' ')" "$A_PID $B_PID " \
		"PID: each mount's daemon (from fdinfo's fuse_connection)"
else
	pf_skip "PID: each mount's daemon" "this kernel's fdinfo has no fuse_connection"
fi
has_cap() { # PID BIT
	local eff
	eff=$(awk '/^CapEff:/ { print $2 }' "/proc/$1/status")
	[ $(((16#$eff >> $2) & 1)) -eq 1 ]
}
safety() { # MNT PID: what LOCKED IO-FLUSHER OOM-PROTECT should say, raw
	local m=$1 pid=$2 adj memlock
	adj=$(cat "/proc/$pid/oom_score_adj")
	memlock=$(awk '/^Max locked memory/ { print $4 }' "/proc/$pid/limits")
	if [ "$(st "$m" mlocked)" = 1 ]; then
		printf 'yes '
	elif has_cap "$pid" 14; then
		printf 'no (mlockall failed) '
	elif [ "$memlock" = unlimited ]; then
		printf 'no (no CAP_IPC_LOCK) '
	else
		printf 'no (no CAP_IPC_LOCK, RLIMIT_MEMLOCK %s) ' "$memlock"
	fi
	if [ "$(st "$m" io_flusher)" = 1 ]; then
		printf 'yes '
	elif has_cap "$pid" 24; then
		printf 'no (refused by the kernel) '
	else
		printf 'no (no CAP_SYS_RESOURCE) '
	fi
	if [ "$(st "$m" oom_protected)" = 1 ]; then
		printf 'yes'
	elif has_cap "$pid" 24; then
		printf 'no (oom_score_adj %s)' "$adj"
	else
		printf 'no (oom_score_adj %s, no CAP_SYS_RESOURCE)' "$adj"
	fi
}
decode() { while read -r a b c; do printf '%b %b %b' "$a" "$b" "$c"; done; }
for pair in "$A:$A_PID" "$B:$B_PID"; do
	m=${pair%:*} pid=${pair##*:}
	pf_is "$(raw -o LOCKED,IO-FLUSHER,OOM-PROTECT "$m" | decode)" "$(safety "$m" "$pid")" \
		"$(basename "$m"): LOCKED, IO-FLUSHER, OOM-PROTECT as .ctl/stat says, with the reasons"
done
pf_is "$(st "$B" mlocked) $(st "$B" io_flusher) $(st "$B" oom_protected)" "0 0 0" \
	"mnt b: its daemon could do none of the three"
pf_is "$("$CTL" -n -o LOCKED "$B")" "no (no CAP_IPC_LOCK, RLIMIT_MEMLOCK 64.0KiB)" \
	"mnt b: LOCKED says why, the limit in KiB"
pf_is "$("$CTL" -n -o IO-FLUSHER "$B")" "no (no CAP_SYS_RESOURCE)" "mnt b: IO-FLUSHER says why"

# --- pagefold-swap status shows the table (pagefoldctl from PATH when
# the source tree's build/ has none)
PATH=$PF_BUILD_DIR/fs:$PATH "$PF_SOURCE_DIR/examples/pagefold-swap" status -m "$A" >"$PF_TMP/status" 2>&1
pf_is $? 0 "pagefold-swap status exits 0"
grep -q "^MOUNTPOINT .*TOTAL-BOTH" "$PF_TMP/status" && grep -q "^$A " "$PF_TMP/status" &&
	grep -q "^mm_stat: " "$PF_TMP/status"
pf_ok $? "... its lines, then pagefoldctl's table for the mount" || pf_diag_file "$PF_TMP/status" 30

# --- no mount at all: in a private mount namespace, without them
if pf_ns_start; then
	others=$(pf_ns findmnt -rn -t fuse.pagefold -o TARGET | while read -r t; do
		t=$(printf '%b' "$t")
		[ "$t" = "$A" ] || [ "$t" = "$B" ] || printf '%s\n' "$t"
	done)
	while IFS= read -r t; do
		[ -n "$t" ] && pf_ns umount -n -l "$t"
	done <<<"$others"
	pf_is "$(pf_ns "$CTL" -rn -o MOUNTPOINT | tr '\n' ' ')" "$A $B_RAW " \
		"only our two mounts left (in the namespace): exactly their two rows, in mount order"
	pf_ns mount -t tmpfs pf-over "$B" && pf_track_ns_mount "$B"
	out=$(pf_ns "$CTL" -rn -o MOUNTPOINT 2>&1)
	pf_is "$?:$out" "0:$A" "a tmpfs mounted over 'mnt b' hides it: its row is gone, no error"
	pf_ns umount -n -l "$B" && pf_ns umount -n -l "$A" && pf_ns umount -n -l "$B"
	pf_ok $? "(in the namespace: the tmpfs and both mounts unmounted)"
	out=$(pf_ns "$CTL")
	pf_is "$?:$(echo "$out" | tr -s ' ')" \
		"0:MOUNTPOINT SIZE DATA COMPR TOTAL RATIO LIMIT SAVED-FOLD COLD IDLE FILES SWAP" \
		"no pagefold mounted: the header alone, exit 0"
	out=$(pf_ns "$CTL" -n -f)
	pf_is "$?:$out" "0:" "... and nothing at all with --noheadings"
	pf_ok "$(pf_is_mounted "$A" && pf_is_mounted "$B"; echo $?)" \
		"outside the namespace both are still mounted"
else
	pf_skip "no mounts: the header alone" "no private mount namespace (unshare)"
fi

# --- a file in swap use: SWAP, and zswap's figures
if command -v swapon >/dev/null && command -v mkswap >/dev/null &&
	command -v losetup >/dev/null && [ -e /dev/loop-control ]; then
	truncate -s 16M "$A/swap0"
	LOOP=$(losetup --direct-io=on -f --show "$A/swap0")
	pf_ok $? "losetup on $(basename "$A")/swap0 ($LOOP)" || pf_done
	pf_track_loop "$LOOP"
	mkswap "$LOOP" >"$PF_TMP/mkswap.out" 2>&1 && swapon "$LOOP" 2>"$PF_TMP/swapon.err"
	pf_ok $? "mkswap, swapon (lowest priority)" ||
		{ pf_diag_file "$PF_TMP/mkswap.out"; pf_diag_file "$PF_TMP/swapon.err"; pf_done; }
	pf_track_swap "$LOOP"
	pf_is "$(raw -o SWAP "$A") $(raw -o SWAP "$B")" "$LOOP -" \
		"SWAP: the loop device on the mount whose file backs it, - on the other"
	pf_is "$(raw -f -o FILE,SWAP "$A" | awk '$1 != "-" && $2 != "-"')" "/swap0 $LOOP" \
		"-f: the swap file's row names it, and only that one"
	# zswap's figures are the kernel's, system-wide: compare with a
	# .ctl/zswap_stat read before and after that agree.
	ok=1
	for _ in 1 2 3 4 5; do
		z1=$(tr -s ' ' <"$A/.ctl/zswap_stat" | sed 's/^ //')
		t1=$(st "$A" mem_used_total)
		row=$(raw -o ZSWAP-POOL,ZSWAP-STORED,ZSWAP-WB,TOTAL-BOTH "$A")
		z2=$(tr -s ' ' <"$A/.ctl/zswap_stat" | sed 's/^ //')
		t2=$(st "$A" mem_used_total)
		[ "$z1" = "$z2" ] && [ "$t1" = "$t2" ] && { ok=0; break; }
		sleep 0.2
	done
	pf_ok $ok "zswap_stat and mem_used_total held still around a run" || pf_diag "$z1 / $z2"
	read -r pool stored _ _ wb <<<"$z1"
	[ "$pool" -gt 0 ] ||
		pf_diag "zswap's pool is empty here: TOTAL-BOTH equals TOTAL whether or not it adds the pool"
	pf_is "$row" "$pool $stored $wb $((pool + t1))" \
		"ZSWAP-POOL, ZSWAP-STORED, ZSWAP-WB = zswap_stat; TOTAL-BOTH = pool + mem_used_total"
	pf_is "$(raw -o ZSWAP-POOL,TOTAL-BOTH "$B")" "- -" "no zswap figures on the mount without swap"
	swapoff "$LOOP" && losetup -d "$LOOP"
	pf_ok $? "swapoff, losetup -d"
	pf_is "$(raw -o SWAP "$A")" - "SWAP is - again"
else
	pf_skip "a file in swap use" "no swapon, mkswap or loop devices"
fi

pf_done
