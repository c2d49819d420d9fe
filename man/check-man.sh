#!/bin/sh
# Checks the manual pages and the sample configuration:
#
#  1. "mandoc -Tlint" finds no warning or error in any page of man/;
#  2. winrmd.conf(5) documents every key that "winrmd --list-keys" prints,
#     with the same default, and no other key;
#  3. config/winrmd.conf shows every key, commented out as "#Key = value",
#     with its default, and no other key.
#
# The pages and the sample use the usual installation paths; they are
# compared after the rewriting that "make install" applies
# (man/fixpaths.sed in the build tree), so that a build with another
# prefix still matches.
#
# Environment: WINRMD_SRCDIR and WINRMD_BUILDDIR, the source and build
# trees (default: the tree this script is in, and the current directory).
# Exit status: 0 pass, 1 fail, 77 skip (something could not be checked).

srcdir=${WINRMD_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
builddir=${WINRMD_BUILDDIR:-.}
fail=0
skip=0

tmp=$(mktemp -d "${TMPDIR:-/tmp}/check-man.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' 0
trap 'exit 1' 1 2 15

# --- 1. lint -----------------------------------------------------------

npages=0
if command -v mandoc >/dev/null 2>&1; then
	for page in "$srcdir"/man/*.[1-9]; do
		[ -f "$page" ] || continue
		npages=$((npages + 1))
		if ! mandoc -Tlint -W warning "$page" >"$tmp/lint" 2>&1; then
			cat "$tmp/lint"
			echo "FAIL: mandoc -Tlint: ${page#"$srcdir"/}"
			fail=1
		fi
	done
	if [ "$npages" -eq 0 ]; then
		echo "FAIL: no manual pages in $srcdir/man"
		fail=1
	fi
else
	echo "SKIP: mandoc not found; the pages were not linted"
	skip=1
fi

# --- 2. and 3. keys and defaults ----------------------------------------

winrmd=$builddir/winrmd
if [ ! -x "$winrmd" ]; then
	echo "SKIP: $winrmd not built; keys not compared"
	[ "$fail" -ne 0 ] && exit 1
	exit 77
fi
if ! "$winrmd" --list-keys >"$tmp/list" || [ ! -s "$tmp/list" ]; then
	echo "FAIL: $winrmd --list-keys printed nothing"
	exit 1
fi
# "Section.Key<TAB>default"
cut -f 1,2 "$tmp/list" >"$tmp/keys"

fixpaths=$builddir/man/fixpaths.sed
if [ -f "$fixpaths" ]; then
	fix() { sed -f "$fixpaths" "$1"; }
else
	echo "note: $fixpaths not found; comparing paths as written"
	fix() { cat "$1"; }
fi

# The keys a page documents: every ".It Cm Key" at the top level of the
# list in a ".Ss [Section]" subsection, with the value of its sentence
# "The default is VALUE." (VALUE possibly on the next line as the argument
# of a macro, or "empty").  Prints "Section.Key<TAB>default", or
# "!nodefault<TAB>Section.Key" for an item without that sentence.
page_keys() {
	awk '
	function finish() {
		if (key != "" && !havedef)
			printf "!nodefault\t%s.%s\n", sec, key
		key = ""
		want = 0
	}
	function record(v) {
		gsub(/\\&/, "", v)
		sub(/^[ \t]+/, "", v)
		sub(/[ \t]*\.$/, "", v)
		sub(/[ \t]+$/, "", v)
		if (v == "empty")
			v = ""
		printf "%s.%s\t%s\n", sec, key, v
		havedef = 1
		want = 0
	}
	/^\.\\"/ { next }
	/^\.Sh / { finish(); sec = ""; depth = 0; next }
	/^\.Ss / {
		finish()
		s = $0
		sub(/^\.Ss[ \t]+"?/, "", s)
		sec = ""
		if (match(s, /^\[[A-Za-z\/]+/))
			sec = substr(s, 2, RLENGTH - 1)
		depth = 0
		next
	}
	sec == "" { next }
	/^\.Bl([ \t]|$)/ { depth++; next }
	/^\.El([ \t]|$)/ { if (depth == 1) finish(); depth--; next }
	depth != 1 { next }
	/^\.It[ \t]/ {
		finish()
		if ($2 == "Cm" && $3 != "") {
			key = $3
			havedef = 0
		}
		next
	}
	key == "" { next }
	want {
		v = $0
		sub(/^\.[A-Za-z][A-Za-z]?[ \t]+/, "", v)
		record(v)
		next
	}
	/^The default is/ {
		v = $0
		sub(/^The default is[ \t]*/, "", v)
		if (v == "")
			want = 1
		else
			record(v)
		next
	}
	END { finish() }
	'
}

# The keys the sample configuration shows: "#Key = value" lines (no
# space after the "#"), in the section of the last "[Section ...]" or
# "#[Section ...]" line.
conf_keys() {
	awk '
	/^#?\[/ {
		s = $0
		sub(/^#?\[/, "", s)
		sub(/[] ].*$/, "", s)
		sec = s
		next
	}
	/^#[A-Za-z][A-Za-z0-9]*[ \t]*=/ {
		k = substr($0, 2)
		sub(/[ \t]*=.*$/, "", k)
		v = $0
		sub(/^[^=]*=[ \t]*/, "", v)
		sub(/[ \t]+$/, "", v)
		printf "%s.%s\t%s\n", sec, k, v
	}
	'
}

# compare WHAT KEYS FOUND: report keys missing from FOUND, keys FOUND has
# that winrmd does not know, defaults that differ, and (for a page) keys
# documented twice.
compare() {
	awk -F '\t' -v what="$1" -v once="$4" '
	FILENAME == ARGV[1] { def[$1] = $2; order[++n] = $1; next }
	$1 == "!nodefault" {
		printf "%s: %s: no \"The default is\" sentence\n", what, $2
		bad = 1
		next
	}
	{
		seen[$1]++
		if (!($1 in def)) {
			printf "%s: %s: not a key of winrmd\n", what, $1
			bad = 1
		} else if ($2 != def[$1]) {
			printf "%s: %s: default \"%s\", winrmd says \"%s\"\n",
			    what, $1, $2, def[$1]
			bad = 1
		}
	}
	END {
		for (i = 1; i <= n; i++) {
			if (!(order[i] in seen)) {
				printf "%s: %s: missing\n", what, order[i]
				bad = 1
			} else if (once && seen[order[i]] > 1) {
				printf "%s: %s: listed %d times\n", what,
				    order[i], seen[order[i]]
				bad = 1
			}
		}
		exit bad
	}
	' "$2" "$3"
}

page=$srcdir/man/winrmd.conf.5
if [ -f "$page" ]; then
	fix "$page" | page_keys >"$tmp/page"
	if ! compare man/winrmd.conf.5 "$tmp/keys" "$tmp/page" 1; then
		echo "FAIL: man/winrmd.conf.5 and winrmd --list-keys differ"
		fail=1
	fi
else
	echo "FAIL: $page not found"
	fail=1
fi

sample=$srcdir/config/winrmd.conf
if [ -f "$sample" ]; then
	fix "$sample" | conf_keys >"$tmp/conf"
	if ! compare config/winrmd.conf "$tmp/keys" "$tmp/conf" 0; then
		echo "FAIL: config/winrmd.conf and winrmd --list-keys differ"
		fail=1
	fi
else
	echo "FAIL: $sample not found"
	fail=1
fi

[ "$fail" -ne 0 ] && exit 1
if [ "$skip" -ne 0 ]; then
	exit 77
fi
echo "PASS: $npages pages linted; $(wc -l <"$tmp/keys") keys match"
exit 0
