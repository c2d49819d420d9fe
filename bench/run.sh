#!/bin/bash
# Benchmark suite: winrmd against bench/ref-server (S1-S3), PowerShell
# remoting through winrmd against pwsh -s driven directly (S5, S6), and an
# NTLM-sealed Receive against a plain one (S7), interleaved in the same
# run, as docs/performance-notes.md §3 prescribes.  Every figure in the
# final table is the median of per-round ratios winrmd / reference (or a
# median value where the target is absolute).  See docs/benchmarks.md for
# the method and the last recorded results.
#
# Usually started by `make bench`, which sets BENCH_BUILDDIR and
# BENCH_SRCDIR.  Knobs (environment):
#   BENCH_QUICK=1          short run (about 3 min): 2 rounds x 2 s,
#                          128 MiB streams, fewer PSRP samples and clients
#   BENCH_ROUNDS           rounds per scenario (5)
#   BENCH_SECONDS          seconds per sample, S1/S1b/S2 (5)
#   BENCH_CONNS            S1 wrk connections ("1 32 128 256")
#   BENCH_TLS_CONNS        S1b wrk connections ("1 32 128 256")
#   BENCH_THREADS          S2 client threads ("1 32")
#   BENCH_S2_SHARED        1 to add winrmd with [SessionConfiguration cmd]
#                          UseSharedProcess=true to every S2 round (1)
#   BENCH_S2_WARM          1 to add winrmd with [SessionConfiguration cmd]
#                          WarmPoolSize=1 to every S2 round (0)
#   BENCH_STREAM_BYTES     S3 bytes per stream (1073741824)
#   BENCH_ENVELOPES        S3 MaxEnvelopeSize values ("153600 512000")
#   BENCH_CALLGRIND        1 to count instructions per Identify (1)
#   BENCH_CALLGRIND_N      requests in the callgrind run (2000)
#   BENCH_PSRP_SAMPLES     S5 samples of each kind (15)
#   BENCH_PSRP_CLIENTS     S6 concurrent clients (32)
#   BENCH_PSRP_ROUNDS      S6 rounds (2)
#   BENCH_SEAL_BYTES       S7 bytes head writes; base64 makes 4/3 of it
#                          plus newlines (268435456)
#   BENCH_SEAL_ENVELOPES   S7 MaxEnvelopeSize values ("153600 512000")
#   BENCH_SEAL_ROUNDS      S7 rounds (3)
#   BENCH_PYTHON           Python with python3-winrm (/usr/bin/python3)
#   BENCH_PWSH             pwsh for S5/S6 (found as the plugin finds it)
#   BENCH_SCENARIOS        subset of "S1 S1b S2 S3 IR S5 S6 S7"
#   BENCH_OUT              results directory (BUILDDIR/bench-results)
#   BENCH_CPUS             optional taskset CPU list for the servers
#   BENCH_WINRMD_ENV       extra VAR=value words for winrmd's environment
#   BENCH_COMMIT           commit to name in the table (default: git HEAD)
#
# Servers listen on 127.0.0.1 only, each sample gets a fresh server
# process on a kernel-chosen port, and every server is stopped by PID.

set -u

B=${BENCH_BUILDDIR:-$(pwd)}
S=${BENCH_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	ROUNDS=${BENCH_ROUNDS:-2}
	SECS=${BENCH_SECONDS:-2}
	CONNS=${BENCH_CONNS:-1 32 256}
	TLS_CONNS=${BENCH_TLS_CONNS:-32}
	THREADS=${BENCH_THREADS:-1 32}
	STREAM_BYTES=${BENCH_STREAM_BYTES:-134217728}
	CALLGRIND=${BENCH_CALLGRIND:-0}
	PSRP_SAMPLES=${BENCH_PSRP_SAMPLES:-5}
	PSRP_CLIENTS=${BENCH_PSRP_CLIENTS:-8}
	PSRP_ROUNDS=${BENCH_PSRP_ROUNDS:-1}
	SEAL_BYTES=${BENCH_SEAL_BYTES:-67108864}
	SEAL_ENVELOPES=${BENCH_SEAL_ENVELOPES:-512000}
	SEAL_ROUNDS=${BENCH_SEAL_ROUNDS:-2}
else
	ROUNDS=${BENCH_ROUNDS:-5}
	SECS=${BENCH_SECONDS:-5}
	CONNS=${BENCH_CONNS:-1 32 128 256}
	TLS_CONNS=${BENCH_TLS_CONNS:-1 32 128 256}
	THREADS=${BENCH_THREADS:-1 32}
	STREAM_BYTES=${BENCH_STREAM_BYTES:-1073741824}
	CALLGRIND=${BENCH_CALLGRIND:-1}
	PSRP_SAMPLES=${BENCH_PSRP_SAMPLES:-15}
	PSRP_CLIENTS=${BENCH_PSRP_CLIENTS:-32}
	PSRP_ROUNDS=${BENCH_PSRP_ROUNDS:-2}
	SEAL_BYTES=${BENCH_SEAL_BYTES:-268435456}
	SEAL_ENVELOPES=${BENCH_SEAL_ENVELOPES:-153600 512000}
	SEAL_ROUNDS=${BENCH_SEAL_ROUNDS:-3}
fi
S2_WARM=${BENCH_S2_WARM:-0}
S2_SHARED=${BENCH_S2_SHARED:-1}
ENVELOPES=${BENCH_ENVELOPES:-153600 512000}
CG_N=${BENCH_CALLGRIND_N:-2000}
SCENARIOS=${BENCH_SCENARIOS:-S1 S1b S2 S3 IR S5 S6 S7}
OUT=${BENCH_OUT:-$B/bench-results}
CPUS=${BENCH_CPUS:-}
WENV=${BENCH_WINRMD_ENV:-}

WINRMD=$B/winrmd
REF=$B/bench/ref-server
HCLIENT=$B/bench/hclient
LUA=$S/bench/identify.lua
PSRP_BENCH=$S/bench/psrp_bench.py
PY=${BENCH_PYTHON:-/usr/bin/python3}
# NTLM clients hash with MD4, which Debian's OpenSSL 3 only has in its
# legacy provider.
LEGACY_CNF=$S/tests/integration/openssl-legacy.cnf
for f in "$WINRMD" "$REF" "$HCLIENT"; do
	[ -x "$f" ] || { echo "run.sh: $f is missing (run make bench)" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "run.sh: wrk is not installed" >&2; exit 1; }

mkdir -p "$OUT" || exit 1
WORK=$(mktemp -d "${TMPDIR:-/tmp}/winrmd-bench.XXXXXX") || exit 1
LAB=$WORK/lab
RAW=$OUT/raw.txt          # one line per sample
PAIRS=$OUT/pairs.txt      # key winrmd-value reference-value, per round
SRV_PID=
SRV_KIND=
XARGS=()		# extra winrmd arguments for the next start_winrmd
XENV=()			# extra VAR=value for the next start_winrmd

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

stop_server() {
	local i
	[ -n "$SRV_PID" ] || return 0
	kill -TERM "$SRV_PID" 2>/dev/null
	for i in $(seq 1 100); do
		kill -0 "$SRV_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$SRV_PID" 2>/dev/null && kill -KILL "$SRV_PID" 2>/dev/null
	wait "$SRV_PID" 2>/dev/null
	SRV_PID=
}

cleanup() {
	stop_server
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Prefix for server command lines: exec'd, so $! is the server's PID.
PIN=()
[ -n "$CPUS" ] && PIN=(taskset -c "$CPUS")

# jget KEY: a string or number from the lab's lab.json.
jget() {
	sed -n "s/^ *\"$1\": *\"\{0,1\}\([^\",]*\)\"\{0,1\},\{0,1\}\$/\1/p" \
	    "$LAB/lab.json"
}

# start_winrmd [wrapper...]: winrmd in lab mode on fresh ports.
start_winrmd() {
	local i limit=200
	[ $# -gt 0 ] && limit=1200
	rm -f "$LAB/lab.json"
	# shellcheck disable=SC2086
	(cd "$B" && exec env $WENV "${XENV[@]}" "${PIN[@]}" "$@" "$WINRMD" --lab "$LAB" --port 0 \
	    -o Service.LogLevel=ERROR "${XARGS[@]}") >>"$WORK/winrmd.log" 2>&1 &
	SRV_PID=$!
	SRV_KIND=winrmd
	for i in $(seq 1 $limit); do
		grep -q '"pid"' "$LAB/lab.json" 2>/dev/null && break
		kill -0 "$SRV_PID" 2>/dev/null || break
		sleep 0.05
	done
	if ! grep -q '"pid"' "$LAB/lab.json" 2>/dev/null; then
		log "winrmd did not start; see $WORK/winrmd.log"
		tail -20 "$WORK/winrmd.log" >&2
		exit 1
	fi
	HTTP_URL=$(jget http_url)
	HTTPS_URL=$(jget https_url)
	CRED="$(jget user):$(jget password)"
	AUTH=(-a "$CRED")
	HELPER=(-M winrmd-host)
}

# start_ref [tls] [wrapper...]: the reference server on a fresh port.
start_ref() {
	local i tls= limit=200 port
	if [ "${1:-}" = tls ]; then
		tls="-c $LAB/cert.pem -k $LAB/key.pem"
		shift
	fi
	[ $# -gt 0 ] && limit=1200
	rm -f "$WORK/ref.port"
	# shellcheck disable=SC2086
	"${PIN[@]}" "$@" "$REF" -P "$WORK/ref.port" $tls >>"$WORK/ref.log" 2>&1 &
	SRV_PID=$!
	SRV_KIND=ref
	for i in $(seq 1 $limit); do
		grep -q '^[0-9][0-9]*$' "$WORK/ref.port" 2>/dev/null && break
		kill -0 "$SRV_PID" 2>/dev/null || break
		sleep 0.05
	done
	port=$(cat "$WORK/ref.port" 2>/dev/null)
	[ -n "$port" ] || { log "ref-server did not start"; exit 1; }
	HTTP_URL=http://127.0.0.1:$port/wsman
	HTTPS_URL=https://127.0.0.1:$port/wsman
	AUTH=()
	HELPER=()
}

# start KIND: winrmd, winrmd-warm (the cmd configuration with a warm
# host), winrmd-shared (the cmd configuration with UseSharedProcess) or
# ref.
start() {
	case $1 in
	winrmd) start_winrmd ;;
	winrmd-warm)
		XARGS=(-o "SessionConfiguration cmd.WarmPoolSize=1")
		start_winrmd
		XARGS=() ;;
	winrmd-shared)
		XARGS=(-o "SessionConfiguration cmd.UseSharedProcess=true")
		start_winrmd
		XARGS=() ;;
	*) start_ref "${@:2}" ;;
	esac
}

# ticks PID [all]: utime+stime (plus reaped children's with "all").
ticks() {
	sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk -v all="${2:-}" \
	    '{ print $12 + $13 + (all != "" ? $14 + $15 : 0) }'
}
HZ=$(getconf CLK_TCK)

# tree_ticks PID: ticks PID all, plus those of its children still alive
# (a shared host outlives the shells it served) and theirs.
tree_ticks() {
	local t c v
	t=$(ticks "$1" all)
	for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		v=$(ticks "$c" all)
		t=$((t + ${v:-0}))
	done
	echo "$t"
}

# kv KEY LINE: the value of KEY=value in a result line.
kv() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

# pair KEY W R: remember one round's winrmd and reference values.
pair() { echo "$1 $2 $3" >>"$PAIRS"; }

# Order of the two servers in round r: alternate to cancel drift.
order() { if [ $(($1 % 2)) = 1 ]; then echo "winrmd ref"; else echo "ref winrmd"; fi; }

# rotate R WORD...: the words, rotated by R (three or more kinds).
rotate() {
	local r=$1 n
	shift
	n=$(($# > 0 ? r % $# : 0))
	echo "${@:n+1}" "${@:1:n}"
}

# ---- S1 / S1b: Identify with wrk ---------------------------------------

# wrk_sample KIND SCHEME CONNS: sets RES to "rps p50_ms p99_ms cpu_us
# errors".  (Not run in $(...): the server must stay this shell's child,
# so that cleanup can stop it.)
wrk_sample() {
	local kind=$1 scheme=$2 c=$3 url t0 t1 out
	if [ "$scheme" = https ]; then
		if [ "$kind" = winrmd ]; then start_winrmd; else start_ref tls; fi
		url=$HTTPS_URL
	else
		start "$kind"
		url=$HTTP_URL
		"$HCLIENT" -u "$url" -n 300 identify >/dev/null
	fi
	t0=$(ticks "$SRV_PID")
	out=$(wrk -t1 -c"$c" -d"${SECS}s" --latency -s "$LUA" "$url" 2>&1)
	t1=$(ticks "$SRV_PID")
	stop_server
	RES=$(printf '%s\n' "$out" | awk -v dt=$((t1 - t0)) -v hz="$HZ" '
	function ms(v) {
		if (v ~ /us$/) return v / 1000
		if (v ~ /ms$/) return v + 0
		if (v ~ /s$/) return v * 1000
		return v
	}
	$1 == "50%" { p50 = ms($2) }
	$1 == "99%" { p99 = ms($2) }
	/requests in/ { n = $1 }
	/^Requests\/sec/ { rps = $2 }
	/Non-2xx/ { err += $NF }
	/Socket errors/ { gsub(/,/, ""); err += $4 + $6 + $8 + $10 }
	END {
		cpu = n > 0 ? dt / hz * 1e6 / n : 0
		printf "%.1f %.3f %.3f %.1f %d\n", rps, p50, p99, cpu, err
	}')
}

run_identify() {
	local scheme=$1 conns=$2 tag=$3 r c kind
	local -A rps p50 p99 cpu err
	for r in $(seq 1 "$ROUNDS"); do
		for c in $conns; do
			for kind in $(order "$r"); do
				wrk_sample "$kind" "$scheme" "$c"
				set -- $RES
				echo "$tag conns=$c round=$r server=$kind rps=$1" \
				    "p50_ms=$2 p99_ms=$3 cpu_us=$4 errors=$5" >>"$RAW"
				rps[$kind,$c]=$1 p50[$kind,$c]=$2
				p99[$kind,$c]=$3 cpu[$kind,$c]=$4 err[$kind,$c]=$5
				[ "$5" = 0 ] || log "$tag $kind c=$c: $5 errors"
			done
			log "$tag round $r c=$c: winrmd ${rps[winrmd,$c]} rps," \
			    "ref ${rps[ref,$c]} rps"
			pair "$tag.rps.c$c" "${rps[winrmd,$c]}" "${rps[ref,$c]}"
			pair "$tag.p50.c$c" "${p50[winrmd,$c]}" "${p50[ref,$c]}"
			pair "$tag.p99.c$c" "${p99[winrmd,$c]}" "${p99[ref,$c]}"
			pair "$tag.cpu.c$c" "${cpu[winrmd,$c]}" "${cpu[ref,$c]}"
			pair "$tag.errors" "${err[winrmd,$c]}" "${err[ref,$c]}"
		done
		for c in $conns; do
			[ "$c" -gt 32 ] && [ -n "${rps[winrmd,32]:-}" ] || continue
			pair "$tag.stall.c$c" \
			    "$(awk "BEGIN { print ${rps[winrmd,$c]} / (${rps[winrmd,32]} + 1e-9) }")" \
			    "$(awk "BEGIN { print ${rps[ref,$c]} / (${rps[ref,32]} + 1e-9) }")"
		done
	done
}

# ---- S2: WinRS cycle ----------------------------------------------------

# With BENCH_S2_SHARED=1 every round also runs winrmd with one shared
# host for the cmd configuration ("winrmd-shared"), with BENCH_S2_WARM=1
# winrmd with a warm host for it ("winrmd-warm"); all take turns.
# s2_variant KEY KIND T: the pairs of one variant in this round.
s2_variant() {
	local key=$1 kind=$2 t=$3
	log "S2 round $r threads=$t: $kind ${rate[$kind]}/s"
	pair "$key.rate.c$t" "${rate[$kind]}" "${rate[ref]}"
	pair "$key.gain.c$t" "${rate[$kind]}" "${rate[winrmd]}"
	pair "$key.p50.c$t" "${p50[$kind]}" "${p50[ref]}"
	pair "$key.p99.c$t" "${p99[$kind]}" "${p99[ref]}"
	pair "$key.cpu.c$t" "${cpu[$kind]}" "${cpu[ref]}"
	pair "$key.faults" "${faults[$kind]}" 0
}

run_cycle() {
	local r t kind kinds res t0 t1 ops spawn extra
	local -A rate p50 p99 cpu faults
	extra=
	[ "$S2_SHARED" = 1 ] && extra="$extra winrmd-shared"
	[ "$S2_WARM" = 1 ] && extra="$extra winrmd-warm"
	for r in $(seq 1 "$ROUNDS"); do
		spawn=$("$HCLIENT" -d "$SECS" spawn)
		echo "S2 probe=spawn-echo round=$r $spawn" >>"$RAW"
		spawn=$(kv rate "$spawn")
		if [ -n "$extra" ]; then
			# shellcheck disable=SC2086
			kinds=$(rotate "$r" winrmd ref $extra)
		else
			kinds=$(order "$r")
		fi
		for t in $THREADS; do
			for kind in $kinds; do
				start "$kind"
				t0=$(tree_ticks "$SRV_PID")
				res=$("$HCLIENT" -u "$HTTP_URL" "${AUTH[@]}" \
				    -c "$t" -d "$SECS" cycle)
				sleep 0.5	# let the server reap what it ran
				t1=$(tree_ticks "$SRV_PID")
				stop_server
				ops=$(kv ops "$res")
				cpu[$kind]=$(awk "BEGIN { printf \"%.3f\", \
				    ($t1 - $t0) / $HZ * 1e3 / ($ops + 1e-9) }")
				echo "S2 threads=$t round=$r server=$kind $res" \
				    "cpu_ms_per_cycle=${cpu[$kind]}" >>"$RAW"
				rate[$kind]=$(kv rate "$res")
				p50[$kind]=$(kv p50_ms "$res")
				p99[$kind]=$(kv p99_ms "$res")
				faults[$kind]=$(kv faults "$res")
			done
			log "S2 round $r threads=$t: winrmd ${rate[winrmd]}/s," \
			    "ref ${rate[ref]}/s, spawn probe $spawn/s"
			pair "S2.rate.c$t" "${rate[winrmd]}" "${rate[ref]}"
			pair "S2.p50.c$t" "${p50[winrmd]}" "${p50[ref]}"
			pair "S2.p99.c$t" "${p99[winrmd]}" "${p99[ref]}"
			pair "S2.cpu.c$t" "${cpu[winrmd]}" "${cpu[ref]}"
			pair "S2.faults.c$t" "${faults[winrmd]}" "${faults[ref]}"
			[ "$t" = 1 ] && pair "S2.spawn.c1" \
			    "$(awk "BEGIN { print ${rate[winrmd]} / $spawn }")" \
			    "$(awk "BEGIN { print ${rate[ref]} / $spawn }")"
			[ "$S2_SHARED" = 1 ] && s2_variant S2s winrmd-shared "$t"
			[ "$S2_WARM" = 1 ] && s2_variant S2w winrmd-warm "$t"
		done
	done
}

# ---- S3: output streaming -----------------------------------------------

run_stream() {
	local r e kind res k
	local -A mbps cpu grow faults
	for r in $(seq 1 "$ROUNDS"); do
		for e in $ENVELOPES; do
			k=$((e / 1024))
			for kind in $(order "$r"); do
				start "$kind"
				res=$("$HCLIENT" -u "$HTTP_URL" "${AUTH[@]}" \
				    -s "$STREAM_BYTES" -e "$e" -W 300 \
				    -m "$SRV_PID" "${HELPER[@]}" stream)
				stop_server
				echo "S3 envelope=$e round=$r server=$kind $res" >>"$RAW"
				mbps[$kind]=$(kv mbps "$res")
				cpu[$kind]=$(awk "BEGIN { printf \"%.3f\", \
				    ($(kv srv_cpu_s "$res") + $(kv helper_cpu_s "$res")) \
				    * 1073741824 / $STREAM_BYTES }")
				grow[$kind]=$(awk "BEGIN { printf \"%.1f\", \
				    ($(kv srv_rss_max_kb "$res") - \
				    $(kv srv_rss_start_kb "$res") + \
				    $(kv helper_rss_max_kb "$res")) / 1024 }")
				faults[$kind]=$(kv faults "$res")
			done
			log "S3 round $r envelope=$e: winrmd ${mbps[winrmd]} MB/s," \
			    "ref ${mbps[ref]} MB/s"
			pair "S3.mbps.e$k" "${mbps[winrmd]}" "${mbps[ref]}"
			pair "S3.cpu.e$k" "${cpu[winrmd]}" "${cpu[ref]}"
			pair "S3.rss.e$k" "${grow[winrmd]}" "${grow[ref]}"
			pair "S3.faults" "${faults[winrmd]}" "${faults[ref]}"
		done
	done
}

# ---- S5 / S6: PowerShell remoting -----------------------------------------

# The pwsh the powershell plugin would find: PATH, then fixed places.
find_pwsh() {
	local d
	if [ -n "${BENCH_PWSH:-}" ]; then echo "$BENCH_PWSH"; return; fi
	command -v pwsh && return
	for d in /usr/bin /usr/local/bin /opt/microsoft/powershell/7 /snap/bin \
	    "${HOME:-/nonexistent}/.dotnet/tools"; do
		[ -x "$d/pwsh" ] && { echo "$d/pwsh"; return; }
	done
}

psrp_ready() {
	PWSH=$(find_pwsh)
	if [ -z "$PWSH" ]; then
		log "$1: pwsh not found, skipped"
		return 1
	fi
	if ! "$PY" -c 'import winrm' 2>/dev/null; then
		log "$1: $PY lacks python3-winrm, skipped"
		return 1
	fi
}

# pwsh rewrites a JIT profile of its start-up in $XDG_CACHE_HOME/powershell
# as it exits, and the next pwsh replays it: winrmd's pwsh and each kind
# of pwsh started by psrp_bench.py keep their own, so that one kind's
# profile does not speed up or slow down another.
start_winrmd_psrp() {
	XENV=("XDG_CACHE_HOME=$WORK/pwsh-cache/winrmd")
	start_winrmd
	XENV=()
}

# S5: one winrmd with an extra configuration, BenchWarm, that keeps a
# warm host; psrp_bench.py takes cold, warm, direct, direct-wd, spare and
# spare-wd samples in turn, letting the machine settle before each.
run_psrp_open() {
	local res k c50 d50 kinds=cold,warm,direct,direct-wd,spare,spare-wd
	psrp_ready S5 || return 0
	printf '[SessionConfiguration BenchWarm]\nPlugin = powershell\n%s\n' \
	    'WarmPoolSize = 1' >"$LAB/sessions.d/bench-warm.conf"
	start_winrmd_psrp
	log "S5: $PSRP_SAMPLES samples each of ${kinds//,/, }"
	res=$("$PY" "$PSRP_BENCH" open --lab "$LAB/lab.json" --pwsh "$PWSH" \
	    --cache-dir "$WORK/pwsh-cache" -n "$PSRP_SAMPLES" --kinds "$kinds")
	stop_server
	rm -f "$LAB/sessions.d/bench-warm.conf"
	echo "S5 $res" >>"$RAW"
	for k in cold warm direct direct_wd spare spare_wd; do
		[ -n "$(kv ${k}_p50_ms "$res")" ] || {
			log "S5: no result (see $WORK/winrmd.log)"; return 0; }
	done
	c50=$(kv cold_p50_ms "$res")
	d50=$(kv direct_p50_ms "$res")
	log "S5: cold p50 $c50 ms, warm p50 $(kv warm_p50_ms "$res") ms," \
	    "direct p50 $d50 ms, direct -wd p50 $(kv direct_wd_p50_ms "$res") ms"
	pair S5.cold.p50 "$c50" "$d50"
	pair S5.cold.p90 "$(kv cold_p90_ms "$res")" "$(kv direct_p90_ms "$res")"
	pair S5.cold.budget "$c50" "$(awk "BEGIN { print 1.1 * $d50 + 20 }")"
	pair S5.warm.p50 "$(kv warm_p50_ms "$res")" "$c50"
	pair S5.warm.p90 "$(kv warm_p90_ms "$res")" "$(kv cold_p90_ms "$res")"
	pair S5.wd.p50 "$(kv direct_wd_p50_ms "$res")" "$d50"
	pair S5.cold.wd "$c50" "$(kv direct_wd_p50_ms "$res")"
	pair S5.warm.spare "$(kv warm_p50_ms "$res")" "$(kv spare_wd_p50_ms "$res")"
	pair S5.spare.p50 "$(kv spare_p50_ms "$res")" "$d50"
	pair S5.failures \
	    "$(($(kv cold_failures "$res") + $(kv warm_failures "$res")))" \
	    "$(($(kv direct_failures "$res") + $(kv direct_wd_failures "$res") \
	    + $(kv spare_failures "$res") + $(kv spare_wd_failures "$res")))"
}

# S6: PSRP_CLIENTS clients at once against winrmd ("winrmd"), against as
# many pwsh processes of the client's own ("ref"), and the same with
# `-wd $HOME` ("refwd"), in turns.
run_psrp_concurrent() {
	local r kind res
	local -A wall p50 p99 fails rss_d rss_g rss_h rss_p
	psrp_ready S6 || return 0
	# One untimed open of each kind first, to leave start-up profiles.
	start_winrmd_psrp
	"$PY" "$PSRP_BENCH" open --lab "$LAB/lab.json" --kinds cold -n 0 \
	    >/dev/null
	stop_server
	"$PY" "$PSRP_BENCH" open --kinds direct,direct-wd -n 0 --pwsh "$PWSH" \
	    --cache-dir "$WORK/pwsh-cache" >/dev/null
	for r in $(seq 1 "$PSRP_ROUNDS"); do
		for kind in $(rotate "$r" winrmd ref refwd); do
			case $kind in
			winrmd)
				start_winrmd_psrp
				res=$("$PY" "$PSRP_BENCH" concurrent \
				    --lab "$LAB/lab.json" --clients "$PSRP_CLIENTS")
				stop_server ;;
			ref)
				res=$("$PY" "$PSRP_BENCH" concurrent --direct \
				    --cache-dir "$WORK/pwsh-cache" --pwsh "$PWSH" \
				    --clients "$PSRP_CLIENTS") ;;
			refwd)
				res=$("$PY" "$PSRP_BENCH" concurrent --direct --wd \
				    --cache-dir "$WORK/pwsh-cache" --pwsh "$PWSH" \
				    --clients "$PSRP_CLIENTS") ;;
			esac
			echo "S6 round=$r server=$kind $res" >>"$RAW"
			wall[$kind]=$(kv wall_s "$res")
			p50[$kind]=$(kv p50_ms "$res")
			p99[$kind]=$(kv p99_ms "$res")
			fails[$kind]=$(kv failures "$res")
			fails[$kind]=${fails[$kind]:-$PSRP_CLIENTS}
			rss_d[$kind]=$(kv root_rss_mb "$res")
			rss_g[$kind]=$(awk "BEGIN { print ${rss_d[$kind]:-0} - \
			    $(kv root_rss_start_mb "$res" | grep . || echo 0) }")
			rss_h[$kind]=$(kv hosts_rss_mb "$res")
			rss_p[$kind]=$(kv pwsh_rss_mb "$res")
			sleep 2		# let the last pwsh processes go
		done
		log "S6 round $r: $PSRP_CLIENTS clients, winrmd ${wall[winrmd]} s," \
		    "direct pwsh ${wall[ref]} s, direct pwsh -wd ${wall[refwd]} s"
		pair S6.wall "${wall[winrmd]}" "${wall[ref]}"
		pair S6.p50 "${p50[winrmd]}" "${p50[ref]}"
		pair S6.p99 "${p99[winrmd]}" "${p99[ref]}"
		pair S6.failures "${fails[winrmd]}" "${fails[ref]}"
		pair S6.rss.daemon "${rss_d[winrmd]}" -
		pair S6.rss.growth "${rss_g[winrmd]}" -
		pair S6.rss.hosts "${rss_h[winrmd]}" -
		pair S6.rss.pwsh "${rss_p[winrmd]}" "${rss_p[ref]}"
		pair S6.wd.wall "${wall[refwd]}" "${wall[ref]}"
		pair S6.wall.wd "${wall[winrmd]}" "${wall[refwd]}"
	done
}

# ---- S7: NTLM-sealed Receive against a plain one ------------------------

# One winrmd per sample.  "winrmd" is NTLM with sealing (hclient -N),
# "ref" is Basic over plain HTTP, both through the same C client.
run_sealed() {
	local r e k kind res out bytes
	local -A mbps cpu cli faults
	out=$(head -c "$SEAL_BYTES" /dev/zero | base64 | wc -c)
	for r in $(seq 1 "$SEAL_ROUNDS"); do
		for e in $SEAL_ENVELOPES; do
			k=$((e / 1024))
			for kind in $(order "$r"); do
				start_winrmd
				if [ "$kind" = winrmd ]; then
					res=$(OPENSSL_CONF=$LEGACY_CNF "$HCLIENT" \
					    -u "$HTTP_URL" -a "$CRED" -N \
					    -x "head -c $SEAL_BYTES /dev/zero | base64" \
					    -s "$out" -e "$e" -m "$SRV_PID" \
					    -M winrmd-host stream)
				else
					res=$("$HCLIENT" -u "$HTTP_URL" -a "$CRED" \
					    -x "head -c $SEAL_BYTES /dev/zero | base64" \
					    -s "$out" -e "$e" -m "$SRV_PID" \
					    -M winrmd-host stream)
				fi
				stop_server
				echo "S7 envelope=$e round=$r" \
				    "auth=$([ "$kind" = winrmd ] && echo ntlm-sealed || echo basic)" \
				    "$res" >>"$RAW"
				bytes=$(kv bytes "$res")
				mbps[$kind]=$(kv mbps "$res")
				cpu[$kind]=$(awk "BEGIN { printf \"%.3f\", \
				    ($(kv srv_cpu_s "$res") + $(kv helper_cpu_s "$res")) \
				    * 1073741824 / ($bytes + 1) }")
				cli[$kind]=$(awk "BEGIN { printf \"%.3f\", \
				    $(kv cli_cpu_s "$res") * 1073741824 / ($bytes + 1) }")
				faults[$kind]=$(kv faults "$res")
				faults[$kind]=${faults[$kind]:-1}
			done
			log "S7 round $r envelope=$e: NTLM-sealed ${mbps[winrmd]} MB/s," \
			    "Basic ${mbps[ref]} MB/s"
			pair "S7.mbps.e$k" "${mbps[winrmd]}" "${mbps[ref]}"
			pair "S7.cpu.e$k" "${cpu[winrmd]}" "${cpu[ref]}"
			pair "S7.cli.e$k" "${cli[winrmd]}" "${cli[ref]}"
			pair "S7.faults" "${faults[winrmd]}" "${faults[ref]}"
		done
	done
}

# ---- IR: callgrind instructions per Identify ----------------------------

# cg_run KIND N: sets RES to the total Ir of one server run that served
# N Identify requests.
cg_run() {
	local kind=$1 n=$2 file=$WORK/cg.$1.$2
	local vg=(valgrind --tool=callgrind --callgrind-out-file="$file")
	if [ "$kind" = winrmd ]; then start_winrmd "${vg[@]}"; else start_ref "${vg[@]}"; fi
	[ "$n" -gt 0 ] && "$HCLIENT" -u "$HTTP_URL" -n "$n" identify >/dev/null
	stop_server
	RES=$(sed -n 's/^\(summary\|totals\): *\([0-9]*\).*/\2/p' "$file" | head -1)
}

run_callgrind() {
	local kind a b
	local -A ir
	command -v valgrind >/dev/null || { log "IR: valgrind missing, skipped"; return; }
	for kind in winrmd ref; do
		cg_run "$kind" 0
		a=$RES
		cg_run "$kind" "$CG_N"
		b=$RES
		ir[$kind]=$(( (b - a) / CG_N ))
		echo "IR server=$kind requests=$CG_N ir_zero=$a ir_n=$b" >>"$RAW"
	done
	log "IR: winrmd ${ir[winrmd]} Ir/request, ref ${ir[ref]} Ir/request"
	pair IR.identify "${ir[winrmd]}" "${ir[ref]}"
}

# ---- report -------------------------------------------------------------

# Rows: key | label | unit | gate | target text.  Gates: "ratio>=X",
# "ratio<=X", "w>=X", "w<=X" or "-" (reported, no target).
ROWS='S1.rps.c1|S1 Identify c=1|req/s|-|-
S1.p50.c1|S1 Identify c=1 p50|ms|w<=0.2|p50 <= 0.2 ms
S1.rps.c32|S1 Identify c=32|req/s|ratio>=0.6|>= 0.6x ref
S1.p99.c32|S1 Identify c=32 p99|ms|ratio<=2|<= 2x ref
S1.cpu.c32|S1 Identify c=32 server CPU/req|us|ratio<=1.5|<= 1.5x ref
S1.rps.c128|S1 Identify c=128|req/s|-|-
S1.stall.c128|S1 rps(c=128) / rps(c=32)|x|w>=0.8|>= 0.8 (no stall)
S1.rps.c256|S1 Identify c=256|req/s|-|-
S1.stall.c256|S1 rps(c=256) / rps(c=32)|x|w>=0.8|>= 0.8 (no stall)
S1.errors|S1 HTTP errors and timeouts, all c (sum)|n|w<=0|0
IR.identify|S1 Identify instructions/req (callgrind)|Ir|ratio<=1.5|<= 1.5x ref
S1b.rps.c1|S1b HTTPS Identify c=1|req/s|-|-
S1b.rps.c32|S1b HTTPS Identify c=32|req/s|ratio>=0.6|>= 0.6x ref-TLS
S1b.cpu.c32|S1b HTTPS c=32 server CPU/req|us|-|-
S1b.rps.c128|S1b HTTPS Identify c=128|req/s|-|-
S1b.rps.c256|S1b HTTPS Identify c=256|req/s|-|-
S1b.errors|S1b HTTPS errors and timeouts, all c (sum)|n|w<=0|0
S2.rate.c1|S2 WinRS cycle, 1 thread|cycles/s|ratio>=0.8|>= 0.8x ref
S2.p50.c1|S2 cycle p50, 1 thread|ms|-|-
S2.spawn.c1|S2 cycles/s / bare spawn-echo probe|x|w>=0.65|>= 0.65
S2.cpu.c1|S2 CPU/cycle incl. children, 1 thread|ms|-|-
S2.rate.c32|S2 WinRS cycle, 32 threads|cycles/s|ratio>=0.8|>= 0.8x ref
S2.p99.c32|S2 cycle p99, 32 threads|ms|ratio<=1.5|<= 1.5x ref
S2.faults.c1|S2 faults, 1 thread (sum of rounds)|n|w<=0|0
S2.faults.c32|S2 faults, 32 threads (sum of rounds)|n|w<=0|0
S2s.rate.c1|S2 shared cmd host, 1 thread|cycles/s|ratio>=0.8|>= 0.8x ref
S2s.gain.c1|S2 shared cmd host, 1 thread (ref: plain winrmd)|cycles/s|-|-
S2s.p50.c1|S2 shared cmd host, cycle p50, 1 thread|ms|-|-
S2s.cpu.c1|S2 shared cmd host, CPU/cycle, 1 thread|ms|-|-
S2s.rate.c32|S2 shared cmd host, 32 threads|cycles/s|ratio>=0.8|>= 0.8x ref
S2s.gain.c32|S2 shared cmd host, 32 threads (ref: plain winrmd)|cycles/s|-|-
S2s.p99.c32|S2 shared cmd host, cycle p99, 32 threads|ms|ratio<=1.5|<= 1.5x ref
S2s.faults|S2 shared cmd host faults (sum)|n|w<=0|0
S2w.rate.c1|S2 warm cmd host, 1 thread|cycles/s|ratio>=0.8|>= 0.8x ref
S2w.gain.c1|S2 warm cmd host, 1 thread (ref: plain winrmd)|cycles/s|-|-
S2w.p50.c1|S2 warm cmd host, cycle p50, 1 thread|ms|-|-
S2w.cpu.c1|S2 warm cmd host, CPU/cycle, 1 thread|ms|-|-
S2w.rate.c32|S2 warm cmd host, 32 threads|cycles/s|ratio>=0.8|>= 0.8x ref
S2w.gain.c32|S2 warm cmd host, 32 threads (ref: plain winrmd)|cycles/s|-|-
S2w.p99.c32|S2 warm cmd host, cycle p99, 32 threads|ms|ratio<=1.5|<= 1.5x ref
S2w.faults|S2 warm cmd host faults (sum)|n|w<=0|0
S3.mbps.e150|S3 stream, 150 KiB envelopes|MB/s|ratio>=0.7|>= 0.7x ref
S3.cpu.e150|S3 server CPU per GiB, 150 KiB|s|ratio<=2|<= 2x ref
S3.rss.e150|S3 peak RSS growth, 150 KiB|MiB|w<=64|flat (<= 64 MiB)
S3.mbps.e500|S3 stream, 500 KiB envelopes|MB/s|ratio>=0.7|>= 0.7x ref
S3.cpu.e500|S3 server CPU per GiB, 500 KiB|s|ratio<=2|<= 2x ref
S3.rss.e500|S3 peak RSS growth, 500 KiB|MiB|w<=64|flat (<= 64 MiB)
S3.faults|S3 faults incl. envelope > MaxEnvelopeSize (sum)|n|w<=0|0
S5.cold.p50|S5 pool open cold p50 (ref: direct pwsh -s)|ms|-|-
S5.cold.p90|S5 pool open cold p90 (ref: direct pwsh -s)|ms|-|-
S5.cold.budget|S5 cold p50 (ref: 1.1 x direct p50 + 20 ms)|ms|ratio<=1|<= 1.1x direct + 20 ms
S5.warm.p50|S5 pool open warm p50 (ref: cold p50)|ms|ratio<=0.1|<= 0.1x cold
S5.warm.p90|S5 pool open warm p90 (ref: cold p90)|ms|-|-
S5.wd.p50|S5 direct pwsh -s -wd HOME p50 (ref: direct)|ms|-|-
S5.cold.wd|S5 cold p50 (ref: direct -wd HOME p50)|ms|-|-
S5.warm.spare|S5 warm p50 (ref: spare pwsh -s -wd HOME p50)|ms|-|-
S5.spare.p50|S5 spare pwsh -s, no -wd, p50 (ref: direct p50)|ms|-|-
S5.failures|S5 failed opens (ref: direct kinds)|n|w<=0|0
S6.wall|S6 N clients open+run+close, wall (ref: direct pwsh)|s|-|-
S6.p50|S6 per-client p50 (ref: direct pwsh)|ms|-|-
S6.p99|S6 per-client p99 (ref: direct pwsh)|ms|-|-
S6.failures|S6 failed clients (sum)|n|w<=0|0
S6.rss.daemon|S6 peak RSS, winrmd daemon|MiB|-|-
S6.rss.growth|S6 peak RSS growth, winrmd daemon|MiB|-|-
S6.rss.hosts|S6 peak RSS, all winrmd-host processes|MiB|-|-
S6.rss.pwsh|S6 peak RSS, all pwsh processes (ref: direct)|MiB|-|-
S6.wd.wall|S6 wall, direct pwsh -wd HOME (ref: direct)|s|-|-
S6.wall.wd|S6 wall, winrmd (ref: direct pwsh -wd HOME)|s|-|-
S7.mbps.e150|S7 NTLM-sealed stream (ref: Basic), 150 KiB|MB/s|-|-
S7.cpu.e150|S7 server CPU per GiB, sealed (ref: Basic), 150 KiB|s|-|-
S7.cli.e150|S7 client CPU per GiB, sealed (ref: Basic), 150 KiB|s|-|-
S7.mbps.e500|S7 NTLM-sealed stream (ref: Basic), 500 KiB|MB/s|-|-
S7.cpu.e500|S7 server CPU per GiB, sealed (ref: Basic), 500 KiB|s|-|-
S7.cli.e500|S7 client CPU per GiB, sealed (ref: Basic), 500 KiB|s|-|-
S7.faults|S7 faults (sum)|n|w<=0|0'

report() {
	printf '%s\n' "$ROWS" | awk -F'|' -v pairs="$PAIRS" '
	function median(list,   a, n, i, j, t) {
		n = split(list, a, " ")
		if (a[1] == "-") return "-"
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) {
				t = a[j]; a[j] = a[j - 1]; a[j - 1] = t
			}
		if (n == 0) return ""
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	function range(list,   a, n, i, lo, hi) {
		n = split(list, a, " ")
		lo = hi = a[1]
		for (i = 2; i <= n; i++) {
			if (a[i] + 0 < lo + 0) lo = a[i]
			if (a[i] + 0 > hi + 0) hi = a[i]
		}
		return n < 2 ? "" : sprintf(" [%.2f..%.2f]", lo, hi)
	}
	function fmt(v) {
		if (v == "") return "n/a"
		if (v == "-") return "-"
		if (v + 0 >= 100 || v + 0 == int(v)) return sprintf("%.0f", v)
		if (v + 0 >= 10) return sprintf("%.1f", v)
		return sprintf("%.3g", v)
	}
	BEGIN {
		while ((getline line < pairs) > 0) {
			split(line, f, " ")
			k = f[1]
			W[k] = W[k] " " f[2]
			R[k] = R[k] " " f[3]
			SW[k] += f[2]
			SR[k] += f[3]
			if (f[3] == "-") SR[k] = "-"
			if (f[3] + 0 != 0)
				Q[k] = Q[k] " " f[2] / f[3]
		}
		print "| scenario | winrmd | reference | ratio [min..max] | target | met? |"
		print "|---|---|---|---|---|---|"
	}
	{
		key = $1; gate = $4
		if (!(key in W))
			next		# scenario not run
		if (key ~ /faults|errors|failures/) {	# counts: summed, no ratio
			w = SW[key]; r = SR[key]; q = ""
		} else {
			w = median(W[key]); r = median(R[key]); q = median(Q[key])
		}
		met = "-"
		if (gate != "-") {
			split(gate, g, /[<>]=/); thr = g[2] + 0
			v = gate ~ /^ratio/ ? q : w
			if (v == "") met = "n/a"
			else if (gate ~ />=/) met = v + 0 >= thr ? "yes" : "**no**"
			else met = v + 0 <= thr ? "yes" : "**no**"
		}
		printf "| %s (%s) | %s | %s | %s | %s | %s |\n", $2, $3, fmt(w),
		    fmt(r), q == "" ? "-" : sprintf("%.2fx", q) range(Q[key]),
		    $5, met
	}'
}

# ---- main ---------------------------------------------------------------

if [ "${1:-}" = --report ]; then	# the table again, from $OUT/pairs.txt
	report
	exit 0
fi
: >"$RAW"
: >"$PAIRS"

# The binaries were built from the tree as it is now, so name it now.
if [ -n "${BENCH_COMMIT:-}" ]; then	# a tree exported without .git
	COMMIT=$BENCH_COMMIT
else
	COMMIT="$(git -C "$S" rev-parse --short HEAD 2>/dev/null || echo unknown)"
	git -C "$S" diff --quiet HEAD -- . ':!bench' 2>/dev/null ||
		COMMIT="$COMMIT (with local changes)"
fi
STARTED=$(date -u '+%Y-%m-%d %H:%M UTC')
log "bench: $COMMIT rounds=$ROUNDS seconds=$SECS scenarios=\"$SCENARIOS\" out=$OUT"
start_winrmd	# creates the lab: configuration, certificate, user
stop_server
for sc in $SCENARIOS; do
	case $sc in
	S1) run_identify http "$CONNS" S1 ;;
	S1b) run_identify https "$TLS_CONNS" S1b ;;
	S2) run_cycle ;;
	S3) run_stream ;;
	IR) [ "$CALLGRIND" = 1 ] && run_callgrind ;;
	S5) run_psrp_open ;;
	S6) run_psrp_concurrent ;;
	S7) run_sealed ;;
	*) log "unknown scenario $sc" ;;
	esac
done

{
	echo "commit $COMMIT, started $STARTED"
	echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)," \
	    "kernel $(uname -r), load before end $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "rounds=$ROUNDS seconds=$SECS stream_bytes=$STREAM_BYTES" \
	    "psrp_samples=$PSRP_SAMPLES psrp_clients=$PSRP_CLIENTS" \
	    "psrp_rounds=$PSRP_ROUNDS seal_bytes=$SEAL_BYTES seal_rounds=$SEAL_ROUNDS"
	echo
	report
} | tee "$OUT/table.md"
