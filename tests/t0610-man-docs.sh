#!/bin/bash
# The man pages against the daemon: both render without warnings; every
# /.ctl file a mount serves, every name in .ctl/stat and every column of
# mm_stat, io_stat, classes and files is documented in pagefold-ctl(5);
# every option `pagefold -h` lists is documented in pagefold(8), and every
# -o option pagefold(8) documents is one that -h lists. pagefoldctl(8):
# renders; every column of `pagefoldctl --output-all` has an entry of its
# own under COLUMNS, and every column there is one pagefoldctl knows; every
# option of `pagefoldctl -h` is in the page.
. "$(dirname "$0")/lib.sh"
pf_require root fuse

man8=$PF_SOURCE_DIR/man/pagefold.8
man5=$PF_SOURCE_DIR/man/pagefold-ctl.5
man8ctl=$PF_SOURCE_DIR/man/pagefoldctl.8
ctl=$PF_BUILD_DIR/fs/pagefoldctl

for page in "$man8" "$man5" "$man8ctl"; do
	if command -v man >/dev/null; then
		LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" >"$PF_TMP/man.out" 2>"$PF_TMP/man.err"
		[ $? -eq 0 ] && [ ! -s "$PF_TMP/man.err" ] && [ -s "$PF_TMP/man.out" ]
		pf_ok $? "${page##*/} renders without warnings" || pf_diag_file "$PF_TMP/man.err"
	else
		pf_ok 1 "man is installed (tests/deps.sh installs man-db)"
	fi
done

# A name is documented when a macro line of the page sets it in bold or as a
# subsection heading (".B name", ".BR name ...", ".SS name", ".BI ... name=").
documented() { # PAGE NAME
	grep -qE "^\.(B|BR|BI|SS|TP)( .*)?[ \"]$2([ \"=]|\\\\|$)" "$1"
}

pf_mount
missing=
for f in $(ls "$PF_MNT/.ctl"); do
	documented "$man5" "$f" || missing="$missing $f"
done
pf_is "$missing" "" "every /.ctl file is in pagefold-ctl(5)"
n=$(ls "$PF_MNT/.ctl" | wc -l)
pf_ge "$n" 11 "the mount serves the control files (found $n)"

missing=
for name in $(awk '{ print $1 }' "$PF_MNT/.ctl/stat"); do
	documented "$man5" "$name" || missing="$missing $name"
done
pf_is "$missing" "" "every name in .ctl/stat is in pagefold-ctl(5)"

# Columns of the one-line files: count the documented entries between the
# subsection and the next one, against the columns the daemon prints.
columns_documented() { # SUBSECTION
	awk -v ss="$1" '
		/^\.SS / { in_ss = ($2 == ss); next }
		/^\.SH / { in_ss = 0 }
		in_ss && prev == ".TP" && /^\.B / { n++ }
		{ prev = $0 }
		END { print n + 0 }' "$man5"
}
for f in mm_stat io_stat bd_stat; do
	pf_is "$(columns_documented "$f")" "$(wc -w <"$PF_MNT/.ctl/$f")" \
		"pagefold-ctl(5) documents as many $f columns as the daemon prints"
done
for f in classes files; do
	pf_is "$(columns_documented "$f")" "$(head -n1 "$PF_MNT/.ctl/$f" | wc -w)" \
		"pagefold-ctl(5) documents every $f column"
	missing=
	for col in $(head -n1 "$PF_MNT/.ctl/$f"); do
		documented "$man5" "$col" || missing="$missing $col"
	done
	pf_is "$missing" "" "$f header names are all in pagefold-ctl(5)"
done

# Options: -h against pagefold(8), both ways.
"$PAGEFOLD" -h >"$PF_TMP/help" 2>&1
help_opts=$(grep -oE -- '-o [a-z_]+' "$PF_TMP/help" | awk '{ print $2 }' | sort -u)
pf_ge "$(echo "$help_opts" | wc -w)" 4 "-h lists -o options"
missing=
for o in $help_opts; do
	grep -qE "^\.B[IR]? .*\\\\-o $o([ =\"]|$)" "$man8" || documented "$man8" "$o" ||
		missing="$missing $o"
done
pf_is "$missing" "" "every -o option of -h is in pagefold(8)"
man_opts=$(grep -oE '^\.BI? "\\-o [a-z_]+' "$man8" | sed 's/.*-o //' | sort -u)
missing=
for o in $man_opts; do
	grep -qw -- "$o" "$PF_TMP/help" || missing="$missing $o"
done
pf_is "$missing" "" "every -o option of pagefold(8) is in -h"
for flag in -f -s -d -h -V --help --version; do
	grep -qE -- "^ +$flag[ ,]|, $flag( |$)" "$PF_TMP/help" ||
		{ pf_ok 1 "-h lists $flag"; continue; }
	# in roff every - of an option is written \-
	grep -E '^\.BR? ' "$man8" | grep -qF -- "$(printf '%s' "$flag" | sed 's/-/\\-/g')"
	pf_ok $? "pagefold(8) documents $flag"
done

# pagefoldctl(8): a column is documented by a ".TP" / ".B NAME" entry in
# COLUMNS (every - written \-).
if [ -x "$ctl" ]; then
	cols=$("$ctl" --raw --output-all | head -n 1)
	pf_ge "$(echo "$cols" | wc -w)" 20 "pagefoldctl --output-all prints its columns"
	man_cols=$(awk '/^\.SH / { in_cols = ($2 == "COLUMNS"); next }
		in_cols && prev == ".TP" && /^\.B / { sub(/^\.B /, ""); gsub(/\\-/, "-"); print }
		{ prev = $0 }' "$man8ctl")
	missing=
	for c in $cols; do
		grep -qxF -- "$c" <<<"$man_cols" || missing="$missing $c"
	done
	pf_is "$missing" "" "every column of pagefoldctl --output-all is in pagefoldctl(8)"
	extra=
	for c in $man_cols; do
		tr ' ' '\n' <<<"$cols" | grep -qxF -- "$c" || extra="$extra $c"
	done
	pf_is "$extra" "" "every column pagefoldctl(8) documents is one pagefoldctl prints"
	"$ctl" -h >"$PF_TMP/ctl-help" 2>&1
	flags=$(grep -oE -- '(^| )-(-[a-z-]+|[a-zA-Z])' "$PF_TMP/ctl-help" | tr -d ' ' | sort -u)
	pf_ge "$(echo "$flags" | wc -w)" 12 "pagefoldctl -h lists its options"
	missing=
	for flag in $flags; do
		grep -E '^\.BR? ' "$man8ctl" | grep -qF -- "$(printf '%s' "$flag" | sed 's/-/\\-/g')" ||
			missing="$missing $flag"
	done
	pf_is "$missing" "" "every option of pagefoldctl -h is in pagefoldctl(8)"
else
	pf_skip "pagefoldctl(8) against pagefoldctl" "pagefoldctl is not built"
fi
pf_done
