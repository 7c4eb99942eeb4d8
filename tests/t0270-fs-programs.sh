#!/bin/bash
# Real programs on the mount, as a RAM disk user would run them: shared
# mappings of direct-I/O files (what sqlite's WAL index, editors and build
# tools need) checked against read(2) and write(2); sqlite3 in WAL mode; a
# git clone and a build of this repository; a tree copied in and out with
# tar, compared byte for byte.
. "$(dirname "$0")/lib.sh"
pf_require root fuse
[ -x "$PF_HELPERS/pf-mmap" ] || pf_skip_all "pf-mmap is not built"

pf_mount || { pf_ok 1 "mount"; pf_done; }
M=$PF_MNT

# --- shared mmap
"$PF_HELPERS/pf-mmap" "$M/mapped" >"$PF_TMP/mmap.out" 2>&1
status=$?
while IFS= read -r line; do
	case $line in
	"ok "*) pf_ok 0 "mmap: ${line#ok * - }" ;;
	"not ok "*) pf_ok 1 "mmap: ${line#not ok * - }" ;;
	esac
done <"$PF_TMP/mmap.out"
pf_is "$status" 0 "pf-mmap: every check passed" || pf_diag_file "$PF_TMP/mmap.out"

# --- sqlite3 with its write-ahead log (the -shm index is mapped shared)
if command -v sqlite3 >/dev/null; then
	sql() { # DB: the workload, then what a reader sees while it is open
		sqlite3 "$1" <<SQL
PRAGMA journal_mode=WAL;
CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, val REAL);
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000)
INSERT INTO t SELECT i, 'row ' || i, i * 0.5 FROM n;
COMMIT;
CREATE INDEX t_name ON t(name);
UPDATE t SET val = val * 2 WHERE id % 3 = 0;
DELETE FROM t WHERE id % 10 = 0;
.shell test -s '$1-shm' && echo shm-in-use
SELECT count(*), sum(val), max(name) FROM t;
SQL
	}
	sql "$M/test.db" >"$PF_TMP/sqlite.out" 2>&1
	pf_ok $? "sqlite3: WAL mode, 10^5 rows inserted, indexed, updated, deleted" ||
		pf_diag_file "$PF_TMP/sqlite.out"
	# The same work on a database outside the mount: the reference.
	sql "$PF_TMP/ref.db" >"$PF_TMP/sqlite.ref" 2>&1
	pf_is "$(cat "$PF_TMP/sqlite.out")" "$(cat "$PF_TMP/sqlite.ref")" \
		"sqlite3: every answer equals the reference database's"
	grep -q '^shm-in-use$' "$PF_TMP/sqlite.out"
	pf_ok $? "sqlite3: its shared-memory index was a file on the mount, in use"
	pf_is "$(sqlite3 "$M/test.db" 'PRAGMA journal_mode;')" wal "sqlite3: the database is in WAL mode"
	pf_is "$(sqlite3 "$M/test.db" 'PRAGMA integrity_check;')" ok "sqlite3: integrity_check"
	pf_is "$(sqlite3 "$M/test.db" 'SELECT count(*), sum(val) FROM t;')" \
		"$(sqlite3 "$PF_TMP/ref.db" 'SELECT count(*), sum(val) FROM t;')" \
		"sqlite3: reopened, the rows and their sum are the reference's"
	sqlite3 "$M/test.db" 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null
	pf_is "$(sqlite3 "$M/test.db" 'SELECT count(*) FROM t WHERE name = "row 77777";')" 1 \
		"sqlite3: after a checkpoint, the index finds a row"
else
	pf_ok 1 "sqlite3 is installed (tests/deps.sh installs it)"
fi

# --- a git clone of this repository, built on the mount
if git -C "$PF_SOURCE_DIR" rev-parse HEAD >/dev/null 2>&1; then
	git clone -q --no-hardlinks "$PF_SOURCE_DIR" "$M/src" 2>"$PF_TMP/git.err"
	pf_ok $? "git clone of this repository onto the mount" || pf_diag_file "$PF_TMP/git.err"
	pf_is "$(git -C "$M/src" rev-parse HEAD)" "$(git -C "$PF_SOURCE_DIR" rev-parse HEAD)" \
		"git: the clone's HEAD is the source's"
	git -C "$M/src" fsck --full >"$PF_TMP/fsck.out" 2>&1
	pf_ok $? "git fsck --full on the mount" || pf_diag_file "$PF_TMP/fsck.out"
	(cd "$M/src" && meson setup build >"$PF_TMP/build.out" 2>&1 &&
		ninja -C build >>"$PF_TMP/build.out" 2>&1)
	pf_ok $? "meson setup + ninja: the clone builds on the mount" ||
		pf_diag_file "$PF_TMP/build.out" 40
	"$M/src/build/fs/pagefold" -V >"$PF_TMP/version.out" 2>&1
	pf_ok $? "the daemon built on the mount runs" || pf_diag_file "$PF_TMP/version.out"
	"$M/src/build/tests/test-pool" >"$PF_TMP/unit.out" 2>&1
	pf_ok $? "a unit test built on the mount passes" || pf_diag_file "$PF_TMP/unit.out"
	rm -rf "$M/src"
	pf_ok $? "the tree is removed"
else
	pf_ok 0 "# SKIP not a git checkout: $PF_SOURCE_DIR"
fi

# --- a tree in and out with tar, byte for byte
tree=/usr/share/doc
tar -C "$(dirname "$tree")" -cf - "$(basename "$tree")" 2>/dev/null | tar -C "$M" -xf -
pf_ok $? "tar: $tree into the mount"
diff -r --no-dereference "$tree" "$M/$(basename "$tree")" >"$PF_TMP/diff.out" 2>&1
pf_ok $? "tar: the copy on the mount equals $tree" || pf_diag_file "$PF_TMP/diff.out"
mkdir "$PF_TMP/out"
tar -C "$M" -cf - "$(basename "$tree")" | tar -C "$PF_TMP/out" -xf -
diff -r --no-dereference "$tree" "$PF_TMP/out/$(basename "$tree")" >"$PF_TMP/diff.out" 2>&1
pf_ok $? "tar: out of the mount again, still equal" || pf_diag_file "$PF_TMP/diff.out"
rm -rf "$M/$(basename "$tree")"
pf_is "$(ls -A "$M" | grep -v '^\.ctl$' | sort | tr '\n' ' ')" "mapped test.db " \
	"only the files the test left are there"

pf_done
