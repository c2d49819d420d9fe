#!/bin/bash
# Benchmark suite: winrmd against bench/ref-server, interleaved in the
# same run, as docs/performance-notes.md §3 prescribes.  Every figure in
# the final table is the median of per-round ratios winrmd / reference
# (or a median value where the target is absolute).  See
# docs/benchmarks.md for the method and the last recorded results.
#
# Usually started by `make bench`, which sets BENCH_BUILDDIR and
# BENCH_SRCDIR.  Knobs (environment):
#   BENCH_QUICK=1          short run (< 3 min): 2 rounds x 2 s, 128 MiB
#   BENCH_ROUNDS           rounds per scenario (5)
#   BENCH_SECONDS          seconds per sample, S1/S1b/S2 (5)
#   BENCH_CONNS            S1 wrk connections ("1 32 128 256")
#   BENCH_TLS_CONNS        S1b wrk connections ("1 32 128 256")
#   BENCH_THREADS          S2 client threads ("1 32")
#   BENCH_STREAM_BYTES     S3 bytes per stream (1073741824)
#   BENCH_ENVELOPES        S3 MaxEnvelopeSize values ("153600 512000")
#   BENCH_CALLGRIND        1 to count instructions per Identify (1)
#   BENCH_CALLGRIND_N      requests in the callgrind run (2000)
#   BENCH_SCENARIOS        subset of "S1 S1b S2 S3 IR"
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
else
	ROUNDS=${BENCH_ROUNDS:-5}
	SECS=${BENCH_SECONDS:-5}
	CONNS=${BENCH_CONNS:-1 32 128 256}
	TLS_CONNS=${BENCH_TLS_CONNS:-1 32 128 256}
	THREADS=${BENCH_THREADS:-1 32}
	STREAM_BYTES=${BENCH_STREAM_BYTES:-1073741824}
	CALLGRIND=${BENCH_CALLGRIND:-1}
fi
ENVELOPES=${BENCH_ENVELOPES:-153600 512000}
CG_N=${BENCH_CALLGRIND_N:-2000}
SCENARIOS=${BENCH_SCENARIOS:-S1 S1b S2 S3 IR}
OUT=${BENCH_OUT:-$B/bench-results}
CPUS=${BENCH_CPUS:-}
WENV=${BENCH_WINRMD_ENV:-}

WINRMD=$B/winrmd
REF=$B/bench/ref-server
HCLIENT=$B/bench/hclient
LUA=$S/bench/identify.lua
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
	(cd "$B" && exec env $WENV "${PIN[@]}" "$@" "$WINRMD" --lab "$LAB" --port 0 \
	    -o Service.LogLevel=ERROR) >>"$WORK/winrmd.log" 2>&1 &
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
	AUTH=(-a "$(jget user):$(jget password)")
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

start() { if [ "$1" = winrmd ]; then start_winrmd; else start_ref "${@:2}"; fi; }

# ticks PID [all]: utime+stime (plus reaped children's with "all").
ticks() {
	sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk -v all="${2:-}" \
	    '{ print $12 + $13 + (all != "" ? $14 + $15 : 0) }'
}
HZ=$(getconf CLK_TCK)

# kv KEY LINE: the value of KEY=value in a result line.
kv() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

# pair KEY W R: remember one round's winrmd and reference values.
pair() { echo "$1 $2 $3" >>"$PAIRS"; }

# Order of the two servers in round r: alternate to cancel drift.
order() { if [ $(($1 % 2)) = 1 ]; then echo "winrmd ref"; else echo "ref winrmd"; fi; }

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

run_cycle() {
	local r t kind res t0 t1 ops spawn
	local -A rate p50 p99 cpu faults
	for r in $(seq 1 "$ROUNDS"); do
		spawn=$("$HCLIENT" -d "$SECS" spawn)
		echo "S2 probe=spawn-echo round=$r $spawn" >>"$RAW"
		spawn=$(kv rate "$spawn")
		for t in $THREADS; do
			for kind in $(order "$r"); do
				start "$kind"
				t0=$(ticks "$SRV_PID" all)
				res=$("$HCLIENT" -u "$HTTP_URL" "${AUTH[@]}" \
				    -c "$t" -d "$SECS" cycle)
				sleep 0.5	# let the server reap what it ran
				t1=$(ticks "$SRV_PID" all)
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
S3.mbps.e150|S3 stream, 150 KiB envelopes|MB/s|ratio>=0.7|>= 0.7x ref
S3.cpu.e150|S3 server CPU per GiB, 150 KiB|s|ratio<=2|<= 2x ref
S3.rss.e150|S3 peak RSS growth, 150 KiB|MiB|w<=64|flat (<= 64 MiB)
S3.mbps.e500|S3 stream, 500 KiB envelopes|MB/s|ratio>=0.7|>= 0.7x ref
S3.cpu.e500|S3 server CPU per GiB, 500 KiB|s|ratio<=2|<= 2x ref
S3.rss.e500|S3 peak RSS growth, 500 KiB|MiB|w<=64|flat (<= 64 MiB)
S3.faults|S3 faults incl. envelope > MaxEnvelopeSize (sum)|n|w<=0|0'

report() {
	printf '%s\n' "$ROWS" | awk -F'|' -v pairs="$PAIRS" '
	function median(list,   a, n, i, j, t) {
		n = split(list, a, " ")
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
		if (key ~ /faults|errors/) {	# counts: summed, no ratio
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
	*) log "unknown scenario $sc" ;;
	esac
done

{
	echo "commit $COMMIT, started $STARTED"
	echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)," \
	    "kernel $(uname -r), load before end $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "rounds=$ROUNDS seconds=$SECS stream_bytes=$STREAM_BYTES"
	echo
	report
} | tee "$OUT/table.md"
