#!/bin/bash
# datasets.sh - build the benchmark data sets from real programs' memory.
#
#   tests/bench/datasets.sh [--force] [--zram] [-q] [DIR]     (as root)
#
# DIR (default /var/tmp/pagefold-data) receives:
#   real.pages  anonymous memory of several real programs, each started here,
#               left to build up state, dumped with dump-pages and stopped:
#               python3 (dicts/lists of records, ASTs, JSON text), perl
#               (hashes and arrays of text), cc1 (gcc compiling a large
#               generated source that includes ~35 system headers), sqlite3
#               (an in-memory database with a mixed insert/index/update/
#               delete/query workload), redis-server (a mixed workload of
#               hashes, lists, sets, sorted sets, strings), and bash (arrays
#               and an associative array of words)
#   kv.pages    a redis-server's memory after redis-benchmark SETs of 1 KiB
#               values (all the same bytes: duplicate-rich), ~150k keys
#   *.txt       the summary lines printed below, and the conditions
# Existing files are reused unless --force. A summary line per set (and per
# program of real.pages when it is built) gives pages, MiB, the fractions of
# zero, same-filled (one 8-byte word repeated, zeros included) and duplicate
# pages, and LZ4 ratios (see pages_summary in lib-bench.sh). --zram also
# writes each set to a fresh lz4 /dev/zram0 and prints its mm_stat (then
# resets the device; refused while zram0 is swap or mounted). -q: only the
# summary lines.
#
# The text the programs chew on is the system's own: Python's standard
# library, Perl's modules, /usr/include. Random choices are seeded; the
# dumps still differ between runs (addresses, timing).
#
# Environment: DUMP_PAGES=path to a dump-pages binary (else build/tests/,
# build-bench/tests/, or it is compiled here with cc), KV_KEYS (150000).
set -euo pipefail

. "$(dirname "$0")/lib-bench.sh"

force=
quiet=
zram=
dir=/var/tmp/pagefold-data
while [ $# -gt 0 ]; do
	case $1 in
	--force) force=1 ;;
	--zram) zram=1 ;;
	-q) quiet=1 ;;
	-h|--help) sed -n '2,34s/^# \{0,1\}//p' "$0"; exit 0 ;;
	-*) bench_die "unknown option $1 (see --help)" ;;
	*) dir=$1 ;;
	esac
	shift
done
kv_keys=${KV_KEYS:-150000}

bench_need_root	# dump-pages reads other processes' memory and kpageflags
for cmd in python3 perl sqlite3 redis-server redis-benchmark redis-cli gcc; do
	command -v "$cmd" >/dev/null ||
		bench_die "$cmd not found (tests/deps.sh --bench installs what benchmarks need)"
done

mkdir -p "$dir"
work=$(mktemp -d "${TMPDIR:-/var/tmp}/pagefold-datasets.XXXXXX")
bench_cleanup_push rm -rf "$work"

say() { [ -n "$quiet" ] || bench_log "$@"; }

# ---- dump-pages ------------------------------------------------------------

find_dump_pages() {
	local c

	for c in "${DUMP_PAGES:-}" "$BENCH_SRC_DIR/build/tests/dump-pages" \
		 "$BENCH_SRC_DIR/build-bench/tests/dump-pages"; do
		if [ -n "$c" ] && [ -x "$c" ] &&
		   ! [ "$BENCH_LIB_DIR/dump-pages.c" -nt "$c" ]; then
			echo "$c"
			return 0
		fi
	done
	say "compiling dump-pages with ${CC:-cc}"
	"${CC:-cc}" -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra \
		-o "$work/dump-pages" "$BENCH_LIB_DIR/dump-pages.c" >&2 ||
		bench_die "cannot compile dump-pages.c"
	echo "$work/dump-pages"
}

# ---- processes we start ----------------------------------------------------

# stop_pid PID: TERM (KILL after 10 s) a process this script started, reap it.
stop_pid() {
	bench_cleanup_forget stop_pid "$1"
	bench_stop_pid "$1"
}

# wait_ready FILE PID SECONDS: until FILE holds a line READY
wait_ready() {
	local i

	for i in $(seq 1 $(($3 * 10))); do
		grep -qx READY "$1" 2>/dev/null && return 0
		kill -0 "$2" 2>/dev/null ||
			bench_die "PID $2 exited before it was ready: $(tail -n 5 "$1" "$1.err" 2>/dev/null)"
		sleep 0.1
	done
	bench_die "PID $2 not ready after $3 s"
}

# dump NAME PID: its anonymous pages into $work/NAME.pages, stopped meanwhile
dump() {
	local name=$1 pid=$2

	"$dump_pages" -s -v -o "$work/$name.pages" "$pid" 2>"$work/$name.dump" ||
		bench_die "dump-pages $name (PID $pid) failed: $(cat "$work/$name.dump")"
	say "$name: $(sed 's/^dump-pages: //' "$work/$name.dump")"
	# every program here builds up well over 4 MiB: less means its workload failed
	[ "$(stat -c %s "$work/$name.pages")" -ge $((4 << 20)) ] ||
		bench_die "$name: only $(stat -c %s "$work/$name.pages") bytes dumped; its workload did not run"
}

# ---- the programs of real.pages ------------------------------------------

corpus_python() { python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])'; }

run_python() {
	local pid

	python3 - "$(corpus_python)" >"$work/python.ready" 2>"$work/python.ready.err" <<'PY' &
import ast, collections, datetime, glob, json, os, random, re, sys, time

random.seed(1)
files = sorted(glob.glob(os.path.join(sys.argv[1], "**", "*.py"), recursive=True))
texts, trees = {}, []
for f in files[:300]:
    try:
        with open(f, encoding="utf-8") as fh:
            texts[f] = fh.read()
    except (OSError, UnicodeDecodeError):
        continue
for f in list(texts)[:20]:
    try:
        trees.append(ast.parse(texts[f], f))
    except (SyntaxError, ValueError):
        pass
words = re.findall(r"[A-Za-z_]{3,}", " ".join(list(texts.values())[:60]))
vocab = collections.Counter(words)
wl = [w for w, _ in vocab.most_common(20000)]
cities = ["Lisbon", "Oslo", "Lyon", "Osaka", "Quito", "Perth", "Tartu",
          "Porto", "Accra", "Lima", "Dakar", "Hanoi", "Bergen", "Graz"]
t0 = datetime.datetime(2020, 1, 1)
users = []
for i in range(20000):
    first, last = random.choice(wl).capitalize(), random.choice(wl).capitalize()
    users.append({
        "id": i, "name": f"{first} {last}",
        "email": f"{first.lower()}.{last.lower()}{i % 97}@example.org",
        "age": random.randint(18, 90), "city": random.choice(cities),
        "balance": round(random.uniform(-500, 10000), 2),
        "tags": random.sample(wl[:500], 3),
        "created": (t0 + datetime.timedelta(seconds=random.randrange(10**8))).isoformat(),
        "active": random.random() < 0.8,
    })
by_email = {u["email"]: u for u in users}
by_city = collections.defaultdict(list)
for u in users:
    by_city[u["city"]].append(u["id"])
events = [(random.randrange(len(users)), random.choice(("login", "view", "buy", "logout")),
           random.random() * 1e9) for _ in range(60000)]
snapshot = json.dumps(users[:8000])
lines = [l.strip() for t in texts.values() for l in t.splitlines() if l.strip()][:80000]
print("READY", flush=True)
time.sleep(3600)
PY
	pid=$!
	bench_cleanup_push stop_pid "$pid"
	wait_ready "$work/python.ready" "$pid" 120
	dump python "$pid"
	stop_pid "$pid"
}

run_perl() {
	local pid

	perl - >"$work/perl.ready" 2>"$work/perl.ready.err" <<'PL' &
use strict;
use warnings;
use File::Find;

srand(2);
my (%count, @lines, %files, @recs);
my $bytes = 0;
find({ no_chdir => 1, wanted => sub {
	return unless /\.p[ml]$/ && -f $_ && $bytes < 3 << 20;
	open(my $fh, '<', $_) or return;
	local $/;
	my $t = <$fh>;
	close $fh;
	return unless defined $t;
	$bytes += length $t;
	$files{$_} = $t;
	for my $l (split /\n/, $t) {
		next unless $l =~ /\S/;
		push @lines, $l;
		$count{$_}++ for $l =~ /([A-Za-z_]{3,})/g;
	}
} }, grep { -d } @INC);
my @w = sort { $count{$b} <=> $count{$a} } keys %count;
for my $i (0 .. 15000) {
	push @recs, { id => $i, name => ucfirst($w[rand 5000]) . ' ' . ucfirst($w[rand 5000]),
		      score => rand(100), line => $lines[rand @lines],
		      stamp => sprintf('%04d-%02d-%02dT%02d:%02d', 2000 + $i % 25, 1 + $i % 12,
				       1 + $i % 28, $i % 24, $i % 60) };
}
$| = 1;
print "READY\n";
sleep 3600;
PL
	pid=$!
	bench_cleanup_push stop_pid "$pid"
	wait_ready "$work/perl.ready" "$pid" 120
	dump perl "$pid"
	stop_pid "$pid"
}

# cc1 compiling a generated translation unit: system headers plus functions
# with loops, switches and calls. Dumped while it optimizes, once its
# anonymous memory passes CC1_MIB (48).
run_cc1() {
	local cc1 pid rss target=$((${CC1_MIB:-48} * 1024))

	python3 - >"$work/big.c" <<'PY'
import random
random.seed(3)
hdrs = """stdio.h stdlib.h string.h stdint.h inttypes.h errno.h unistd.h fcntl.h
sys/stat.h sys/types.h sys/mman.h pthread.h signal.h time.h math.h ctype.h limits.h
stdbool.h stdarg.h assert.h dirent.h sys/socket.h netinet/in.h arpa/inet.h netdb.h
poll.h sys/epoll.h sys/ioctl.h termios.h locale.h wchar.h regex.h glob.h sched.h
setjmp.h""".split()
print("\n".join(f"#include <{h}>" for h in hdrs))
print("struct rec { int id; char name[32]; double score; struct rec *next; uint64_t flags; };")
print("static inline uint64_t mix(uint64_t x) { x ^= x >> 33; "
      "x *= 0xff51afd7ed558ccdULL; x ^= x >> 33; return x; }")
for i in range(400):
    print(f"int fn{i}(struct rec *r, int n, const char *s) {{")
    print("  int acc = 0; uint64_t h = 1469598103934665603ULL; char buf[64];")
    for j in range(random.randint(4, 10)):
        k, op = random.randint(1, 7), random.choice("+-*^|&")
        print(f"  for (int i{j} = 0; i{j} < n; i{j}++) {{ acc = acc {op} (int)mix(h + i{j} * {k});"
              f" if (r && r->id == i{j}) {{ r->score += acc * 0.{k}; r = r->next; }} }}")
        print(f"  switch (acc & 7) {{ case 0: h ^= {random.getrandbits(40)}ULL; break;"
              f" case 1: acc += strlen(s); break; case 3: snprintf(buf, sizeof buf,"
              f" \"fn{i}:%d:%s\", acc, s); acc += buf[{k}]; break; default: h = mix(h + {j}); }}")
    if i:
        print(f"  acc += fn{random.randrange(i)}(r, n / 2, \"call from fn{i}\");")
    print("  return acc + (int)h; }")
PY
	gcc -E "$work/big.c" -o "$work/big.i"
	cc1=$(gcc -print-prog-name=cc1)
	[ -x "$cc1" ] || bench_die "cc1 not found ($cc1)"
	"$cc1" -fpreprocessed -quiet -O2 "$work/big.i" -o "$work/big.s" &
	pid=$!
	bench_cleanup_push stop_pid "$pid"
	for _ in $(seq 1 600); do
		rss=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status" 2>/dev/null) ||
			bench_die "cc1 finished before reaching $((target / 1024)) MiB"
		[ "${rss:-0}" -ge "$target" ] && break
		sleep 0.05
	done
	dump cc1 "$pid"
	stop_pid "$pid"
}

# sqlite3 with an in-memory database: SQL generated here, read through a
# fifo so the process stays alive (waiting for more input) to be dumped.
run_sqlite() {
	local pid sqlfd

	python3 - "$(corpus_python)" >"$work/load.sql" <<'PY'
import glob, os, random, sys
random.seed(4)
lines = []
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*.py")))[:200]:
    with open(f, encoding="utf-8", errors="replace") as fh:
        lines += [l.strip() for l in fh if l.strip()]
words = sorted({w for l in lines[:20000] for w in l.split() if w.isalpha()})
q = lambda s: "'" + s.replace("'", "''") + "'"
print("PRAGMA cache_size=-262144;")
print("CREATE TABLE customer(id INTEGER PRIMARY KEY, name TEXT, email TEXT, city TEXT, created TEXT, balance REAL);")
print("CREATE TABLE orders(id INTEGER PRIMARY KEY, customer INTEGER, item TEXT, qty INTEGER, price REAL, ts TEXT);")
print("CREATE TABLE note(id INTEGER PRIMARY KEY, customer INTEGER, body TEXT);")
print("BEGIN;")
for i in range(60000):
    a, b = random.choice(words), random.choice(words)
    print(f"INSERT INTO customer VALUES({i},{q(a.title() + ' ' + b.title())},"
          f"{q(a.lower() + '.' + b.lower() + '@example.net')},{q(random.choice(words))},"
          f"'20{random.randint(10, 24)}-{random.randint(1, 12):02d}-{random.randint(1, 28):02d}',"
          f"{random.uniform(0, 5000):.2f});")
for i in range(150000):
    print(f"INSERT INTO orders VALUES({i},{random.randrange(60000)},{q(random.choice(words))},"
          f"{random.randint(1, 9)},{random.uniform(1, 300):.2f},"
          f"'2024-{random.randint(1, 12):02d}-{random.randint(1, 28):02d} {random.randint(0, 23):02d}:00');")
for i in range(40000):
    print(f"INSERT INTO note VALUES({i},{random.randrange(60000)},{q(random.choice(lines))});")
print("COMMIT;")
print("CREATE INDEX orders_customer ON orders(customer);")
print("CREATE INDEX customer_city ON customer(city, name);")
print("CREATE INDEX note_body ON note(body);")
print("UPDATE customer SET balance = balance * 1.05 WHERE city < 'm';")
print("DELETE FROM orders WHERE qty = 3 AND price < 50;")
print("SELECT city, count(*), sum(balance) FROM customer GROUP BY city ORDER BY 2 DESC LIMIT 3;")
print("SELECT c.name, sum(o.qty * o.price) t FROM customer c JOIN orders o ON o.customer = c.id "
      "GROUP BY c.id ORDER BY t DESC LIMIT 3;")
print("SELECT count(*) FROM note WHERE body LIKE '%return%';")
print("SELECT 'READY';")
PY
	mkfifo "$work/sqlite.in"
	sqlite3 -batch :memory: <"$work/sqlite.in" >"$work/sqlite.ready" 2>"$work/sqlite.ready.err" &
	pid=$!
	bench_cleanup_push stop_pid "$pid"
	exec {sqlfd}>"$work/sqlite.in"
	cat "$work/load.sql" >&"$sqlfd"
	wait_ready "$work/sqlite.ready" "$pid" 300
	dump sqlite3 "$pid"
	exec {sqlfd}>&-
	stop_pid "$pid"
}

# redis-server with a mixed workload (hashes of user records, lists of JSON
# events, sets, a sorted set, session strings with random tokens, counters)
# sent through redis-cli --pipe.
run_redis_mixed() {
	local pid port

	redis_start pid port "$work/redis-mixed"
	python3 - "$(corpus_python)" >"$work/mixed.resp" <<'PY'
import glob, json, os, random, sys
random.seed(5)
out = sys.stdout.buffer
def cmd(*a):
    a = [x if isinstance(x, bytes) else str(x).encode() for x in a]
    out.write(b"*%d\r\n" % len(a) + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in a))
lines = []
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*.py")))[:150]:
    with open(f, encoding="utf-8", errors="replace") as fh:
        lines += [l.strip() for l in fh if len(l.strip()) > 20]
words = sorted({w for l in lines[:20000] for w in l.split() if w.isalpha()})
for i in range(45000):
    a, b = random.choice(words), random.choice(words)
    cmd("HSET", f"user:{i}", "name", f"{a.title()} {b.title()}", "email",
        f"{a.lower()}.{b.lower()}@example.com", "age", random.randint(18, 90),
        "bio", random.choice(lines), "visits", random.randint(0, 5000))
    cmd("ZADD", "leaderboard", random.randint(0, 10**6), f"user:{i}")
    cmd("SADD", f"tag:{random.choice(words[:300])}", i)
    if i % 3 == 0:
        cmd("SET", f"session:{random.getrandbits(128):032x}",
            json.dumps({"user": i, "ip": f"10.{i % 256}.{i // 256 % 256}.7",
                        "agent": random.choice(lines)[:60]}), "EX", 86400)
for j in range(120000):
    u = random.randrange(45000)
    cmd("LPUSH", f"events:{u}", json.dumps({"t": 1700000000 + j, "kind":
        random.choice(("view", "cart", "buy", "search")), "q": random.choice(words)}))
    cmd("INCR", f"count:{random.choice(words[:2000])}")
PY
	bench_run redis-cli -p "$port" --pipe <"$work/mixed.resp" >"$work/redis-mixed.pipe" 2>&1 ||
		bench_die "redis-cli --pipe failed: $(tail -n 3 "$work/redis-mixed.pipe")"
	dump redis "$pid"
	redis_stop "$pid"
}

# bash: lines of C headers in an array, their words counted in an
# associative array, and a string-built report.
run_bash() {
	local pid

	mkfifo "$work/bash.hold"
	bash -s -- "$work/bash.hold" >"$work/bash.ready" 2>"$work/bash.ready.err" <<'SH' &
set -eu
declare -a lines words
declare -A count
mapfile -t -n 40000 lines < <(find /usr/include -name '*.h' -size -64k 2>/dev/null | sort | head -n 1500 | xargs cat)
read -r -a words <<<"${lines[*]:0:20000}"
for w in "${words[@]:0:80000}"; do
	[[ $w =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
	count[$w]=$(( ${count[$w]:-0} + 1 ))
done
report=
for w in "${!count[@]}"; do
	[ "${count[$w]}" -gt 20 ] && report+="$w=${count[$w]};"
done
echo READY
exec 3<>"$1"
read -r -u 3 -t 3600 _ || true
SH
	pid=$!
	bench_cleanup_push stop_pid "$pid"
	wait_ready "$work/bash.ready" "$pid" 300
	dump bash "$pid"
	stop_pid "$pid"
}

# ---- kv.pages --------------------------------------------------------------

run_kv() {
	local pid port n=$((kv_keys * 4))

	redis_start pid port "$work/redis-kv"
	say "kv: redis-benchmark -t set -d 1024 -n $n -r $kv_keys"
	bench_run redis-benchmark -p "$port" -t set -d 1024 -n "$n" -r "$kv_keys" -q \
		>"$work/kv.bench" 2>&1 ||
		bench_die "redis-benchmark failed: $(tail -n 3 "$work/kv.bench")"
	say "kv: $(tr '\r' '\n' <"$work/kv.bench" | grep -a 'requests per second' | tail -n 1)," \
	    "$(redis-cli -p "$port" dbsize) keys, used_memory" \
	    "$(redis-cli -p "$port" info memory | tr -d '\r' | awk -F: '/^used_memory_human:/ {print $2}')"
	dump kv "$pid"
	redis_stop "$pid"
}

# ---- main ------------------------------------------------------------------

want_real=
want_kv=
if [ -n "$force" ] || [ ! -s "$dir/real.pages" ]; then want_real=1; fi
if [ -n "$force" ] || [ ! -s "$dir/kv.pages" ]; then want_kv=1; fi
if [ -n "$want_real$want_kv" ]; then
	dump_pages=$(find_dump_pages)
	bench_conditions >"$work/conditions"
fi

if [ -n "$want_real" ]; then
	say "building $dir/real.pages"
	run_python
	run_perl
	run_cc1
	run_sqlite
	run_redis_mixed
	run_bash
	progs=(python perl cc1 sqlite3 redis bash)
	{ cat "$work/conditions"; echo "# real.pages: anonymous memory of ${progs[*]}, in that order"; } >"$work/real.txt"
	: >"$work/real.pages"
	for p in "${progs[@]}"; do
		line=$(pages_summary "$work/$p.pages" "$p")
		say "  $line"
		{ sed 's/^/# /' "$work/$p.dump"; echo "# $line"; } >>"$work/real.txt"
		cat "$work/$p.pages" >>"$work/real.pages"
	done
	mv "$work/real.pages" "$dir/real.pages"
	mv "$work/real.txt" "$dir/real.txt"
else
	say "reusing $dir/real.pages (--force rebuilds it)"
fi

if [ -n "$want_kv" ]; then
	say "building $dir/kv.pages"
	run_kv
	{ cat "$work/conditions"; sed 's/^/# /' "$work/kv.dump"; } >"$work/kv.txt"
	mv "$work/kv.pages" "$dir/kv.pages"
	mv "$work/kv.txt" "$dir/kv.txt"
else
	say "reusing $dir/kv.pages (--force rebuilds it)"
fi

# One summary line per set on stdout; kept in DIR/SET.txt beside the set.
for set in real kv; do
	line=$(pages_summary "$dir/$set.pages" "$set")
	echo "$line"
	grep -qxF "$line" "$dir/$set.txt" 2>/dev/null || echo "$line" >>"$dir/$set.txt"
	if [ -n "$zram" ]; then
		echo "zram set=$set $(zram_measure "$dir/$set.pages")"
	fi
done
