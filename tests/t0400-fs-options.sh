#!/bin/bash
# The program: -h, --version, bad options (one clear message, non-zero
# exit, nothing mounted), mount points checked before mounting (a file, a
# missing path, a pagefold already there: refused; a non-empty directory:
# a warning), options taking effect, mounting from fstab as
# type fuse.pagefold through mount.fuse3, an ordinary user mounting through
# fusermount3, and SIGTERM (lazy unmount; the daemon serves open files
# until the last one closes).
. "$(dirname "$0")/lib.sh"
pf_require root fuse

# --- help and version
"$PAGEFOLD" -h >"$PF_TMP/help" 2>&1
pf_ok $? "-h exits 0"
missing=
for o in mem_limit= fold= defrag_ratio= max_threads= spin_us= allow_other default_permissions; do
	grep -q -- "$o" "$PF_TMP/help" || missing="$missing $o"
done
pf_is "$missing" "" "-h describes every option"
"$PAGEFOLD" --version >"$PF_TMP/version" 2>&1
pf_ok $? "--version exits 0"
grep -q "^pagefold version [0-9]" "$PF_TMP/version"
pf_ok $? "--version names the program and its version" || pf_diag_file "$PF_TMP/version"

# --- bad options: one line on stderr, exit status not 0, nothing mounted
mkdir -p "$PF_TMP/bad"
bad_option() { # DESC ARGS...
	local desc=$1 status lines
	shift
	timeout 30 "$PAGEFOLD" "$@" >"$PF_TMP/bad.out" 2>"$PF_TMP/bad.err"
	status=$?
	lines=$(wc -l <"$PF_TMP/bad.err")
	[ $status -ne 0 ] && [ $status -ne 124 ] && [ "$lines" -eq 1 ] &&
		! pf_is_mounted "$PF_TMP/bad"
	pf_ok $? "$desc: exit $status, one message, nothing mounted" ||
		{ pf_diag_file "$PF_TMP/bad.err"; pf_is_mounted "$PF_TMP/bad" &&
			fusermount3 -u "$PF_TMP/bad"; }
}
bad_option "mem_limit with an unknown suffix" -o mem_limit=12Q "$PF_TMP/bad"
bad_option "empty mem_limit" -o mem_limit= "$PF_TMP/bad"
bad_option "mem_limit too large" -o mem_limit=99999999999999999999 "$PF_TMP/bad"
ram=$(($(awk '$1 == "MemTotal:" { print $2 }' /proc/meminfo) * 1024))
bad_option "mem_limit above the RAM" -o mem_limit=$((ram + 1)) "$PF_TMP/bad"
grep -q "more than the machine's memory ($ram bytes)" "$PF_TMP/bad.err"
pf_ok $? "... says so, with the RAM in bytes" || pf_diag_file "$PF_TMP/bad.err"
bad_option "mem_limit 2^64 - 1" -o mem_limit=18446744073709551615 "$PF_TMP/bad"
bad_option "read_idle 2" -o read_idle=2 "$PF_TMP/bad"
bad_option "pool_reserve past 256M" -o pool_reserve=257M "$PF_TMP/bad"
bad_option "pool_refill not 0 or 1" -o pool_refill=2 "$PF_TMP/bad"
bad_option "unknown fold mode" -o fold=sometimes "$PF_TMP/bad"
bad_option "defrag_ratio over 100" -o defrag_ratio=101 "$PF_TMP/bad"
bad_option "defrag_ratio not a number" -o defrag_ratio=abc "$PF_TMP/bad"
bad_option "max_threads 0" -o max_threads=0 "$PF_TMP/bad"
bad_option "recompress_after not a number" -o recompress_after=5m "$PF_TMP/bad"
bad_option "recompress_after past a year" -o recompress_after=99999999 "$PF_TMP/bad"
bad_option "unknown cold codec" -o recomp_algorithm=gzip "$PF_TMP/bad"
bad_option "cold codec level out of range" -o recomp_algorithm=zstd:23 "$PF_TMP/bad"
bad_option "unknown intake" -o intake=gzip "$PF_TMP/bad"
bad_option "intake level out of range" -o intake=zstd:20 "$PF_TMP/bad"
bad_option "read_idle not 0 or 1" -o read_idle=yes "$PF_TMP/bad"
bad_option "spin_us past 10 ms" -o spin_us=10001 "$PF_TMP/bad"
bad_option "spin_us not a number" -o spin_us=fast "$PF_TMP/bad"
bad_option "an unknown option" -o no_such_option "$PF_TMP/bad"
bad_option "an unknown flag" --no-such-flag "$PF_TMP/bad"
bad_option "three arguments" a b "$PF_TMP/bad"
bad_option "no mountpoint"
bad_option "a mountpoint that does not exist" "$PF_TMP/does-not-exist"
timeout 30 "$PAGEFOLD" -o mem_limit=12Q "$PF_TMP/bad" 2>"$PF_TMP/bad.err"
grep -q "mem_limit '12Q'" "$PF_TMP/bad.err"
pf_ok $? "the message names the option and the value" || pf_diag_file "$PF_TMP/bad.err"

# --- the mount point, checked before anything is mounted
mounts_at() { # MNT: how many mounts /proc/self/mountinfo has on MNT
	awk -v m="$1" '$5 == m' /proc/self/mountinfo | wc -l
}
refused_mountpoint() { # DESC MNT-TO-CHECK PATTERN ARGS...: exit 1, one line
	local desc=$1 mnt=$2 pattern=$3 status before
	shift 3
	before=$(mounts_at "$mnt")
	timeout 30 "$PAGEFOLD" "$@" >"$PF_TMP/mp.out" 2>"$PF_TMP/mp.err"
	status=$?
	[ $status -eq 1 ] && [ "$(wc -l <"$PF_TMP/mp.err")" -eq 1 ] &&
		grep -q -- "$pattern" "$PF_TMP/mp.err" &&
		[ "$(mounts_at "$mnt")" -eq "$before" ]
	pf_ok $? "$desc: exit 1, '$pattern', nothing mounted" || {
		pf_diag "exit $status"
		pf_diag_file "$PF_TMP/mp.err"
		while [ "$(mounts_at "$mnt")" -gt "$before" ]; do
			fusermount3 -u "$mnt" || break
		done
	}
}
echo data >"$PF_TMP/file"
refused_mountpoint "a regular file as mount point" "$PF_TMP/file" \
	"is not a directory" "$PF_TMP/file"
pf_is "$(cat "$PF_TMP/file")" data "... the file is as it was"
refused_mountpoint "a path that does not exist" "$PF_TMP/missing" \
	"does not exist" "$PF_TMP/missing"
pf_ok $([ ! -e "$PF_TMP/missing" ]; echo $?) "... and is not created"
refused_mountpoint "a path through a regular file" "$PF_TMP/file/sub" \
	"Not a directory" "$PF_TMP/file/sub"

# A non-empty directory: mounted, with a warning that its contents are
# hidden meanwhile (as mount(8) users expect).
NE=$PF_TMP/nonempty
mkdir -p "$NE"
echo underneath >"$NE/under"
pf_track_mount "$NE"
"$PAGEFOLD" -f "$NE" >"$PF_TMP/ne.log" 2>&1 &
nepid=$!
pf_track_daemon "$nepid"
for i in $(seq 300); do
	pf_is_mounted "$NE" && break
	pf_alive "$nepid" || break
	sleep 0.1
done
pf_ok $(pf_is_mounted "$NE"; echo $?) "a non-empty directory is mounted on" ||
	pf_diag_file "$PF_TMP/ne.log"
pf_is "$(grep -c "warning: mount point $NE is not empty: what it holds is hidden" "$PF_TMP/ne.log")" 1 \
	"... with one warning that its contents are hidden" || pf_diag_file "$PF_TMP/ne.log"
pf_is "$(ls -A "$NE")" .ctl "... which they are while mounted"
fusermount3 -u "$NE"
pf_wait_exit "$nepid" 30
pf_is "$pf_wait_status" 0 "... the daemon exits cleanly at unmount"
pf_is "$(cat "$NE/under")" underneath "... and the contents are back"

# --- options take effect
pf_mount -o mem_limit=64M,fold=scan,defrag_ratio=30,max_threads=8 ||
	{ pf_ok 1 "mount with options"; pf_done; }
! grep -q "not empty" "$PF_LOG"
pf_ok $? "an empty mount point: no warning" || pf_diag_file "$PF_LOG"

# A pagefold there already: refused, however the path is spelt, with how
# to unmount the first; the first one goes on serving.
refused_mountpoint "a second mount on a pagefold mount" "$PF_MNT" \
	"$PF_MNT is already a pagefold mount; unmount it first (fusermount3 -u $PF_MNT)" \
	"$PF_MNT"
refused_mountpoint "... given with a trailing slash" "$PF_MNT" \
	"is already a pagefold mount" "$PF_MNT/"
cd "$PF_TMP" || exit 1
refused_mountpoint "... given as a relative path" "$PF_MNT" \
	"$PF_MNT is already a pagefold mount" "./${PF_MNT##*/}//"
cd - >/dev/null || exit 1
refused_mountpoint "... with -f, and options" "$PF_MNT" \
	"is already a pagefold mount" -f -o mem_limit=1M "$PF_MNT"
pf_is "$(cat "$PF_MNT/.ctl/mem_limit")" 67108864 "mem_limit=64M"
pf_is "$(cat "$PF_MNT/.ctl/fold")" scan "fold=scan"
pf_is "$(cat "$PF_MNT/.ctl/defrag_ratio")" 30 "defrag_ratio=30"
pf_is "$(awk '$1 == "threads" { print $2 }' "$PF_MNT/.ctl/stat")" 8 "max_threads=8"
pf_ge "$(ls "/proc/$PF_PID/task" | wc -l)" 9 \
	"... all 8 workers run from the start (threads besides the main one)"
# Each worker's receive buffer (1 MiB + 4 KiB) and read buffer (1 MiB +
# 8 KiB) are touched at start, so they are resident (and locked) before
# the first request.
pf_ge "$(awk '$1 == "RssAnon:" { print $2 }' "/proc/$PF_PID/status")" $((8 * 2060)) \
	"... with their buffers resident before any I/O (RssAnon in KiB)"
pf_is "$(findmnt -n -M "$PF_MNT" -o FSTYPE,SOURCE | tr -s ' ')" "fuse.pagefold pagefold" \
	"mounted as type fuse.pagefold, source pagefold"
pf_umount "$PF_MNT"

# --- spin_us: the device is polled (O_NONBLOCK) only when spinning is on,
# requests are served either way, and an idle daemon does not spin.
fuse_fd_flags() { # PID: octal open flags of the daemon's /dev/fuse
	local fd
	for fd in /proc/"$1"/fd/*; do
		if [ "$(readlink "$fd")" = /dev/fuse ]; then
			awk '$1 == "flags:" { print $2 }' "/proc/$1/fdinfo/${fd##*/}"
			return
		fi
	done
}
cpu_ticks() { # PID: user + system clock ticks so far
	awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}
for spin in 0 200; do
	pf_mount -o spin_us=$spin || { pf_ok 1 "mount with spin_us=$spin"; pf_done; }
	pf_is "$(awk '$1 == "spin_us" { print $2 }' "$PF_MNT/.ctl/stat")" $spin \
		"spin_us=$spin reads back in stat"
	flags=$(fuse_fd_flags "$PF_PID")
	want=0; [ $spin -eq 0 ] || want=1
	pf_is "$(( (0$flags & 04000) != 0 ))" $want \
		"spin_us=$spin: /dev/fuse O_NONBLOCK is $want (flags $flags)"
	head -c 3M /dev/urandom >"$PF_TMP/spin.ref"
	dd if="$PF_TMP/spin.ref" of="$PF_MNT/spin" bs=4k oflag=direct status=none &&
		cmp -s "$PF_TMP/spin.ref" "$PF_MNT/spin"
	pf_ok $? "spin_us=$spin: 768 4 KiB direct writes read back equal"
	# 1 MiB reads: jobs for the helper threads, which poll after them too.
	dd if="$PF_MNT/spin" of=/dev/null bs=1M iflag=direct status=none
	pf_ok $? "spin_us=$spin: 1 MiB direct reads"
	# Idle for 2 s: a worker or helper left polling would use ~200 ticks.
	t0=$(cpu_ticks "$PF_PID"); sleep 2; t1=$(cpu_ticks "$PF_PID")
	pf_le $((t1 - t0)) 20 "spin_us=$spin: idle daemon used $((t1 - t0)) ticks of CPU in 2 s"
	pf_umount "$PF_MNT"
done

# A sparse stream of reads (200, 10 ms apart) with a 5 ms polling window:
# polling after every read would burn ~1 s of CPU (100 ticks); timeouts make
# the daemon stop trying, so it stays near what it uses without polling.
pf_mount -o spin_us=5000 || { pf_ok 1 "mount with spin_us=5000"; pf_done; }
head -c 4M /dev/urandom >"$PF_MNT/trickle"
t0=$(cpu_ticks "$PF_PID")
"$PF_HELPERS/pf-trickle" "$PF_MNT/trickle" 200 10000
pf_ok $? "200 reads 10 ms apart, every one a whole page"
t1=$(cpu_ticks "$PF_PID")
pf_le $((t1 - t0)) 25 \
	"spin_us=5000 under a sparse stream: the daemon used $((t1 - t0)) ticks of CPU in ~2 s"
pf_umount "$PF_MNT"

# --- SIGTERM: the name goes at once, the daemon stays for open files
pf_mount || { pf_ok 1 "mount"; pf_done; }
M=$PF_MNT
pid=$PF_PID
echo "still here" >"$M/f"
exec 3<"$M/f"
kill -TERM "$pid"
for i in $(seq 50); do pf_is_mounted "$M" || break; sleep 0.1; done
pf_ok $(pf_is_mounted "$M" && echo 1 || echo 0) "SIGTERM unmounts (lazily)"
sleep 0.5
pf_ok $(pf_alive "$pid" && echo 0 || echo 1) "... the daemon stays while a file is open"
pf_is "$(cat <&3)" "still here" "... and still serves it"
exec 3<&-
pf_umount "$M"   # not mounted any more: only waits for a clean exit

# The rest runs in a private mount namespace (pf_ns): mount(8) drops PATH
# before it runs mount.fuse3, whose shell then finds "pagefold" only on the
# default PATH, so /usr/local/sbin is bound to a directory holding pagefold;
# and /dev/fuse, 0666 on Debian, may be 0600 in a container, so a 0666 node
# for the same device is bound over it for the ordinary user. Nothing of
# this is visible outside the namespace, which goes away with the test.
pf_ns_start || { pf_ok 1 "private mount namespace"; pf_done; }
mkdir -p "$PF_TMP/bin" "$PF_TMP/fmnt"
ln -s "$PAGEFOLD" "$PF_TMP/bin/pagefold"
pf_ns mount --bind "$PF_TMP/bin" /usr/local/sbin
pf_ok $? "bind a directory holding pagefold over /usr/local/sbin (namespace only)"
if [ "$(stat -c %a /dev/fuse)" != 666 ]; then
	mknod -m 666 "$PF_TMP/fuse" c "$((0x$(stat -c %t /dev/fuse)))" \
		"$((0x$(stat -c %T /dev/fuse)))" &&
		pf_ns mount --bind "$PF_TMP/fuse" /dev/fuse
	pf_ok $? "a 0666 /dev/fuse for the ordinary user (namespace only)"
fi

# A pagefold serving MNT, started by mount.fuse3 or setpriv, so ours.
daemon_pid() { # MNT COMM
	local f p
	for f in $(grep -lsxzF -- "$1" /proc/[0-9]*/cmdline); do
		p=${f#/proc/}
		p=${p%/cmdline}
		[ "$(cat "/proc/$p/comm" 2>/dev/null)" = "$2" ] && echo "$p"
	done
}

# --- fstab: type fuse.pagefold through mount.fuse3
F=$PF_TMP/fmnt
pf_track_ns_mount "$F"
pf_ns mount -t fuse.pagefold pagefold "$F" -o mem_limit=32M,fold=off \
	2>"$PF_TMP/mount.err"
pf_ok $? "mount -t fuse.pagefold pagefold MNT -o ..." || pf_diag_file "$PF_TMP/mount.err"
pf_is "$(pf_ns findmnt -n -M "$F" -o FSTYPE,SOURCE | tr -s ' ')" \
	"fuse.pagefold pagefold" "... shows as fuse.pagefold from pagefold"
pf_is "$(pf_ns cat "$F/.ctl/mem_limit") $(pf_ns cat "$F/.ctl/fold")" "33554432 off" \
	"... with its options"
pf_ns sh -c "echo hello > '$F/x'"
pf_is "$(pf_ns cat "$F/x")" hello "... and works"
dpid=$(daemon_pid "$F" pagefold)
pf_ok $([ -n "$dpid" ]; echo $?) "the daemon runs in the background"
[ -n "$dpid" ] && pf_track_daemon "$dpid"
pf_ns umount "$F"
pf_ok $? "umount"
pf_wait_exit "$dpid" 30
pf_ok $(pf_alive "$dpid" && echo 1 || echo 0) "the daemon exits after umount"

printf 'pagefold %s fuse.pagefold mem_limit=16M,defrag_ratio=40,noauto 0 0\n' "$F" \
	>"$PF_TMP/fstab"
pf_ns mount -T "$PF_TMP/fstab" "$F" 2>"$PF_TMP/mount.err"
pf_ok $? "mount from an fstab line" || pf_diag_file "$PF_TMP/mount.err"
pf_is "$(pf_ns cat "$F/.ctl/mem_limit") $(pf_ns cat "$F/.ctl/defrag_ratio")" \
	"16777216 40" "... with the options of the fstab line"
dpid=$(daemon_pid "$F" pagefold)
[ -n "$dpid" ] && pf_track_daemon "$dpid"
pf_ns umount "$F"
pf_wait_exit "$dpid" 30
pf_ok $(pf_alive "$dpid" && echo 1 || echo 0) "the daemon exits after umount"

# --- an ordinary user, through fusermount3
U=$PF_TMP/umnt
mkdir -p "$U"
chown nobody:nogroup "$U"
cp "$PAGEFOLD" "$PF_TMP/bin/pagefold-user"
chmod 755 "$PF_TMP/bin/pagefold-user"
pf_track_ns_mount "$U"
as_nobody() { pf_ns setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"; }
as_nobody "$PF_TMP/bin/pagefold-user" -f "$U" >"$PF_TMP/user.log" 2>&1 &
upid=$!
pf_track_daemon "$upid"
for i in $(seq 300); do
	[ "$(pf_ns findmnt -n -M "$U" -o FSTYPE)" = fuse.pagefold ] && break
	pf_alive "$upid" || break
	sleep 0.1
done
pf_is "$(pf_ns findmnt -n -M "$U" -o FSTYPE)" fuse.pagefold \
	"user nobody mounts through fusermount3" || pf_diag_file "$PF_TMP/user.log"
pf_is "$(pf_ns findmnt -n -M "$U" -o OPTIONS | grep -o 'user_id=[0-9]*')" user_id=65534 \
	"... as its own mount"
as_nobody sh -c "echo data > '$U/file' && cat '$U/file'" >"$PF_TMP/user.out" 2>&1
pf_is "$(cat "$PF_TMP/user.out")" data "the user writes and reads a file"
as_nobody sh -c "echo 8M > '$U/.ctl/mem_limit' && cat '$U/.ctl/mem_limit'" \
	>"$PF_TMP/user.out" 2>&1
pf_is "$(cat "$PF_TMP/user.out")" 8388608 "the mounting user may write /.ctl settings"
grep -q "memory not locked" "$PF_TMP/user.log"
pf_ok $? "without CAP_IPC_LOCK the daemon warns that memory is not locked" ||
	pf_diag_file "$PF_TMP/user.log"

# The user's mount point checks, as root's, where /dev/fuse lets an
# ordinary user in (the 0666 node above, in the namespace).
if as_nobody test -r /dev/fuse -a -w /dev/fuse; then
	touch "$PF_TMP/ufile"
	UN=$PF_TMP/unonempty
	mkdir -p "$UN"
	touch "$UN/under"
	chown nobody:nogroup "$PF_TMP/ufile" "$UN" "$UN/under"
	as_nobody "$PF_TMP/bin/pagefold-user" "$U/" >"$PF_TMP/user2.out" 2>&1
	status=$?
	[ $status -eq 1 ] && grep -q "$U is already a pagefold mount" "$PF_TMP/user2.out" &&
		[ "$(pf_ns awk -v m="$U" '$5 == m' /proc/self/mountinfo | wc -l)" -eq 1 ]
	pf_ok $? "the user's second mount on it (trailing slash) is refused" ||
		{ pf_diag "exit $status"; pf_diag_file "$PF_TMP/user2.out"; }
	as_nobody sh -c "cd '$PF_TMP' && exec '$PF_TMP/bin/pagefold-user' ufile" \
		>"$PF_TMP/user2.out" 2>&1
	status=$?
	[ $status -eq 1 ] && grep -q "not a directory" "$PF_TMP/user2.out" &&
		[ -z "$(pf_ns findmnt -n -M "$PF_TMP/ufile")" ]
	pf_ok $? "the user's mount on a regular file (relative path) is refused" ||
		{ pf_diag "exit $status"; pf_diag_file "$PF_TMP/user2.out";
		  pf_ns fusermount3 -u "$PF_TMP/ufile"; }
	pf_track_ns_mount "$UN"
	as_nobody "$PF_TMP/bin/pagefold-user" -f "$UN" >"$PF_TMP/user3.log" 2>&1 &
	u3pid=$!
	pf_track_daemon "$u3pid"
	for i in $(seq 300); do
		[ "$(pf_ns findmnt -n -M "$UN" -o FSTYPE)" = fuse.pagefold ] && break
		pf_alive "$u3pid" || break
		sleep 0.1
	done
	[ "$(pf_ns findmnt -n -M "$UN" -o FSTYPE)" = fuse.pagefold ] &&
		grep -q "mount point $UN is not empty" "$PF_TMP/user3.log"
	pf_ok $? "the user mounts on a non-empty directory, with the warning" ||
		pf_diag_file "$PF_TMP/user3.log"
	as_nobody fusermount3 -u "$UN"
	pf_wait_exit "$u3pid" 30
else
	for d in "a second mount on it" "a regular file" "a non-empty directory"; do
		pf_skip "the user's mount point checks: $d" "/dev/fuse is not open to ordinary users"
	done
fi

as_nobody fusermount3 -u "$U"
pf_ok $? "the user unmounts with fusermount3 -u"
pf_wait_exit "$upid" 30
[ "$pf_wait_status" = 0 ] && ! grep -q -E 'Sanitizer|runtime error:' "$PF_TMP/user.log"
pf_ok $? "the user's daemon exits cleanly (status $pf_wait_status)" ||
	pf_diag_file "$PF_TMP/user.log" 40

pf_done
