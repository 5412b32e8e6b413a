#!/usr/bin/env bash
# Benchmarks probe's Thrift server against the physical limit: a raw tokio server that echoes
# length-prefixed frames. For each configuration the two servers run alternately (start the raw
# server, load it, stop it; start the probe server, load it, stop it), so drift in the machine's
# load hits both alike. The same load generator sends the same framed binary Thrift `echo` bytes
# to both. Prints one table.
#
#   scripts/bench.sh                      payloads 128 B and 1 KiB, C in {1,16,100}, D in {1,8}
#   BENCH_SECONDS=10 scripts/bench.sh     longer measured runs (default 3 s, plus BENCH_WARMUP=1 s)
#
# Other knobs: BENCH_PAYLOADS ("128 1024"), BENCH_CONNECTIONS ("1 16 100"), BENCH_DEPTHS ("1 8"),
# BENCH_SERVER_THREADS and BENCH_LOADGEN_THREADS (0: one per CPU), BENCH_ROUNDS (1): run each
# configuration that many times, the two servers in alternating order, and show the medians (and
# the lowest and highest ratio). Raw loadgen lines are kept in target/bench/last.txt.
#
#   BENCH_CONNECTIONS="16 100" BENCH_ROUNDS=5 scripts/bench.sh     the D=1 and D=8 goals, 5 rounds
#
# Columns: C connections, D calls in flight per connection; QPS; p50/p99 latency in microseconds;
# cpu = the server's user+system CPU microseconds per call (the kernel accounts softirq time, where
# loopback TCP does much of its work, to no process: it is in neither server's number); others =
# CPU % (of one core) that other processes used during the noisier of the two runs: well above 0
# (marked *), the row is noisy.
# The load generator and the server share the machine's CPUs: on a small machine the load
# generator's own cost caps what either server can show.
#
#   scripts/bench.sh metrics              what per-call metrics cost: probe's server with metrics on
#                                         against itself with them off (`--no-metrics`), run in
#                                         alternating pairs (off/on, then on/off, ...) for
#                                         BENCH_ROUNDS rounds (default 5); defaults payload 128 B,
#                                         C=16, D in {1,8}. Prints median QPS and CPU per call of
#                                         each, and the on/off QPS ratio (median of the rounds'
#                                         ratios, with the lowest and highest).
#   scripts/bench.sh middleware           what middleware costs: probe's server without layers (the
#                                         call path of every server without layers) against itself
#                                         with one pass-through layer (`--layers 1`), alternating as
#                                         above; defaults payload 128 B, C=16, D in {1,8}.
#   scripts/bench.sh header               what THeader costs: probe's server fed framed binary
#                                         calls, THeader frames without info headers, and THeader
#                                         frames with the headers a probe client sends (caller,
#                                         request id, deadline), alternating; same defaults.
#   scripts/bench.sh client               probe's generated client (pooled, multiplexed over K
#                                         connections, discovered: THeader to probe's server, as
#                                         its node advertises; mux-h: that wire, direct;
#                                         disc-dead: discovered with a dead node listed too), Volo's
#                                         (bench/volo) and the
#                                         bare client (one task per caller over a minimal
#                                         multiplexed client: the floor for callers in tasks)
#                                         against the raw and probe servers, each run alternating
#                                         with the load generator at the same K and depth; C in
#                                         {16,100} (BENCH_CALLERS), K = 4 (BENCH_MUX_CONNECTIONS),
#                                         payload 128 B, 3 rounds; BENCH_VOLO=0 skips Volo.
#   scripts/bench.sh overload             one node at 3x its capacity (a backend of 8 workers x
#                                         2 ms behind probe's server, in one process with a probe
#                                         client offering calls open-loop over loopback): its
#                                         capacity, its idle p99 (at 40% of capacity), then 3x with
#                                         no limit, the adaptive limit, the adaptive limit with 20%
#                                         critical and 80% sheddable calls, and a static limit of
#                                         16 for reference; about 80 s. Knobs: BENCH_SECONDS (10)
#                                         and BENCH_WARMUP (1) per overload run, after 3 s at the
#                                         idle load (BENCH_LEAD); BENCH_FACTOR (3); BENCH_WORKERS,
#                                         BENCH_SERVICE_MS; BENCH_ADAPTIVE (the adaptive run's
#                                         limits JSON); BENCH_OVERLOAD_ARGS (more `overload`
#                                         flags: --trace, --run, --only-extra; see `overload --help`).
#   scripts/bench.sh hedge                hedged requests: three nodes of one service (discovered,
#                                         real TCP on loopback), one answering in 200 ms instead of
#                                         1 ms; the same client's p50/p99/max without and with
#                                         hedging (backups after the p50 of recent attempts, a
#                                         retry budget of 0.5), alternating rounds; about 40 s.
#                                         Knobs: BENCH_HEDGE_ARGS (`hedge --help`).
set -euo pipefail

mode=${1:-servers}
case $mode in
servers) ;;
metrics | middleware | header)
    : "${BENCH_PAYLOADS:=128}" "${BENCH_CONNECTIONS:=16}"
    ;;
client)
    : "${BENCH_PAYLOADS:=128}"
    ;;
overload | hedge) ;;
*)
    echo "usage: scripts/bench.sh [metrics|middleware|header|client|overload|hedge]" >&2
    exit 2
    ;;
esac
# Rounds per configuration: 5 by default for `metrics`, 1 for the server table.
default_rounds=1
[ "$mode" = metrics ] && default_rounds=5
[ "$mode" = middleware ] && default_rounds=5
[ "$mode" = header ] && default_rounds=5
[ "$mode" = client ] && default_rounds=3
rounds=${BENCH_ROUNDS:-$default_rounds}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${BENCH_SECONDS:-3}
warmup=${BENCH_WARMUP:-1}
payloads=${BENCH_PAYLOADS:-128 1024}
connections=${BENCH_CONNECTIONS:-1 16 100}
depths=${BENCH_DEPTHS:-1 8}
server_threads=${BENCH_SERVER_THREADS:-0}
loadgen_threads=${BENCH_LOADGEN_THREADS:-0}

say() { printf 'bench: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# BENCH_BIN_DIR: run the binaries found there (e.g. a copy of an earlier build) instead of building.
if [ -n "${BENCH_BIN_DIR:-}" ]; then
    bin=$BENCH_BIN_DIR
else
    # The `measure` profile: release with LTO and one codegen unit (see Cargo.toml).
    say "building the binaries (profile measure: release with LTO; minutes)"
    cargo build --profile measure --quiet -p probe-bench --manifest-path "$root/Cargo.toml"
    bin=${CARGO_TARGET_DIR:-$root/target}/measure
fi
volo_bin=
if [ "$mode" = client ] && [ "${BENCH_VOLO:-1}" != 0 ]; then
    say "building Volo's client (bench/volo, profile measure as above; the first build takes minutes)"
    volo_target=${BENCH_VOLO_TARGET_DIR:-$root/target/volo}
    CARGO_TARGET_DIR=$volo_target cargo build --profile measure --quiet --manifest-path "$root/bench/volo/Cargo.toml" ||
        die "cannot build bench/volo (BENCH_VOLO=0 skips Volo)"
    volo_bin=$volo_target/measure/volo-client
fi
out_dir=$root/target/bench
mkdir -p "$out_dir"
log=$out_dir/last.txt
: >"$log"

server_pid=
stop_server() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=
    fi
}

# start_server NAME [ARGS...]: starts $bin/NAME (with ARGS) on a free port; sets
# server_pid and server_addr.
start_server() {
    local name=$1 out=$out_dir/$1.out
    rm -f "$out" # so the last run's address is not read before the new server truncates the file
    "$bin/$name" --addr 127.0.0.1:0 --threads "$server_threads" "${@:2}" >"$out" 2>"$out_dir/$name.err" &
    server_pid=$!
    server_addr=
    for _ in $(seq 100); do
        server_addr=$(sed -n 's/^listening on //p' "$out" 2>/dev/null || true)
        [ -n "$server_addr" ] && return 0
        kill -0 "$server_pid" 2>/dev/null || die "$name exited: $(cat "$out_dir/$name.err")"
        sleep 0.05
    done
    die "$name did not start listening within 5 s"
}

# run NAME EXPECT PAYLOAD C D [SERVER_ARGS...]: one loadgen run against a fresh server; prints its
# key=value line. A subshell, whose exit (normal, `die` or a signal) stops its server.
run() (
    local name=$1 expect=$2 payload=$3 c=$4 d=$5 line
    trap stop_server EXIT
    start_server "$name" "${@:6}"
    # shellcheck disable=SC2086 # LOADGEN_ARGS is a list of words
    line=$("$bin/loadgen" --addr "$server_addr" --expect "$expect" --payload "$payload" -c "$c" -d "$d" ${LOADGEN_ARGS:-} \
        --seconds "$seconds" --warmup "$warmup" --server-pid "$server_pid" \
        --threads "$loadgen_threads" --format kv) || die "loadgen failed against $name"
    stop_server
    echo "$name ${*:6} payload=$payload c=$c d=$d $line" >>"$log"
    echo "$line"
)

# get KEY LINE: the value of KEY in a key=value line.
get() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }

# median: the median of the numbers on standard input, one per line.
# (Counts print whole: awk would print 1,740,870 as 1.74087e+06.)
median() {
    sort -g | awk 'function out(x) { if (x >= 1000) printf "%.0f\n", x; else printf "%.10g\n", x }
        { v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) out(v[(NR + 1) / 2]); else out((v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

# compare_metrics [OFF_ARGS ON_ARGS OFF_NAME ON_NAME GOAL]: the `metrics` mode (see the top of this
# file): probe's server with OFF_ARGS (default `--no-metrics`) against itself with ON_ARGS (default
# none), in alternating pairs; also the `middleware` mode.
compare_metrics() {
    local off_args=${1---no-metrics} on_args=${2-} off_name=${3:-off} on_name=${4:-on} goal=${5:-"ratio = QPS with metrics / without (median of the rounds); the goal is >= 0.95"}
    local fmt='%-8s %4s %2s | %9s %7s | %9s %7s | %6s %13s\n'
    say "$rounds rounds of $off_name/$on_name per configuration;" \
        "$(nproc) CPUs shared by the server and the load generator; load average $(cut -d' ' -f1-3 /proc/loadavg)"
    printf "$fmt" payload C D "${off_name}_qps" cpu_us "${on_name}_qps" cpu_us ratio "ratio_min-max"
    for payload in $payloads; do
        for c in $connections; do
            for d in $depths; do
                local off_qps=() on_qps=() off_cpu=() on_cpu=() ratios=() off on round
                for round in $(seq "$rounds"); do
                    # shellcheck disable=SC2086 # the args are lists of words
                    if [ $((round % 2)) -eq 1 ]; then
                        off=$(run probe-echo-server thrift "$payload" "$c" "$d" $off_args)
                        on=$(run probe-echo-server thrift "$payload" "$c" "$d" $on_args)
                    else
                        on=$(run probe-echo-server thrift "$payload" "$c" "$d" $on_args)
                        off=$(run probe-echo-server thrift "$payload" "$c" "$d" $off_args)
                    fi
                    off_qps+=("$(get qps "$off")") on_qps+=("$(get qps "$on")")
                    off_cpu+=("$(get server_cpu_us_per_call "$off")") on_cpu+=("$(get server_cpu_us_per_call "$on")")
                    ratios+=("$(awk -v a="$(get qps "$on")" -v b="$(get qps "$off")" 'BEGIN { printf "%.4f", (b > 0 ? a / b : 0) }')")
                done
                local range
                range=$(printf '%s\n' "${ratios[@]}" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.3f-%.3f", lo, hi }')
                printf "$fmt" "$payload" "$c" "$d" \
                    "$(printf '%s\n' "${off_qps[@]}" | median)" "$(printf '%s\n' "${off_cpu[@]}" | median)" \
                    "$(printf '%s\n' "${on_qps[@]}" | median)" "$(printf '%s\n' "${on_cpu[@]}" | median)" \
                    "$(printf '%s\n' "${ratios[@]}" | median | awk '{ printf "%.3f", $1 }')" "$range"
            done
        done
    done
    echo
    echo "$goal"
    say "raw results in $log"
}

# run_client SERVER SERVER_ARGS CMD...: one client run (CMD, given `--addr ADDR --server-pid PID`)
# against a fresh SERVER started with the words of SERVER_ARGS; prints its key=value line. Volo's
# client gets a second try: its pool sometimes fails a call ("wait a idle connection error:
# RecvError(()), dial plan exhausted", seen with 16 and with 100 callers), which ends its run; the
# failure is kept in the log and said on stderr. Any other client's failure ends the bench.
run_client() (
    local name=$1 line try
    # shellcheck disable=SC2086 # SERVER_ARGS is a list of words
    trap stop_server EXIT
    for try in 1 2; do
        # shellcheck disable=SC2086
        start_server "$name" $2
        if line=$("${@:3}" --addr "$server_addr" --server-pid "$server_pid" --seconds "$seconds" \
            --warmup "$warmup" 2>"$out_dir/client-stderr.txt"); then
            stop_server
            echo "$name ${*:3} $line" >>"$log"
            echo "$line"
            return 0
        fi
        stop_server
        { echo "$name ${*:3} FAILED (try $try):"; cat "$out_dir/client-stderr.txt"; } >>"$log"
        [ "$3" = "$volo_bin" ] && [ "$try" = 1 ] || break
        say "Volo's client failed against $name ($(grep -m1 -i 'error' "$out_dir/client-stderr.txt" | cut -c1-120)); running it again"
    done
    cat "$out_dir/client-stderr.txt" >&2
    die "${3##*/} failed against $name (its output is in $log)"
)

# verdict VALUE OP LIMIT: "met" or "missed" (OP one of >=, <=, >).
verdict() {
    awk -v v="$1" -v op="$2" -v l="$3" 'BEGIN {
        ok = (op == ">=" ? v >= l : op == "<=" ? v <= l : v > l)
        print (ok ? "met" : "missed")
    }'
}

# join_rows ROW...: the rows joined with "; " ("no such row" for none).
join_rows() {
    local out= row
    for row in "$@"; do out+="${out:+; }$row"; done
    echo "${out:-no such row}"
}

# compare_clients: the `client` mode (see the top of this file).
compare_clients() {
    local callers=${BENCH_CALLERS:-16 100} mux_conns=${BENCH_MUX_CONNECTIONS:-4} payload
    payload=${payloads%% *}
    local fmt='%-5s %3s %-9s %3s %3s | %8s %8s %5s %11s | %6s %6s %5s | %6s %6s | %5s %5s | %5s %6s %5s%s\n'
    say "$rounds rounds per row, payload $payload B;" \
        "$(nproc) CPUs shared by server, client and load generator; load average $(cut -d' ' -f1-3 /proc/loadavg)"
    printf "$fmt" server C client K D lg_qps cli_qps ratio "ratio_min-max" lg_cpu cli_cpu x_cpu lg_srv cli_srv cs/k mig/s x_volo x_bare x_mux " others"
    local server sargs expect c client k d
    # Each goal's rows, as "server C: value verdict".
    local goal_qps=() goal_cpu=() goal_mux=() volo_min=
    for server in raw probe; do
        case $server in
        raw) sargs="--reply" ;;
        probe) sargs="" ;;
        esac
        for c in $callers; do
            local volo_qps= bare_qps= mux_ratio=
            local clients="bare pooled mux discover"
            # The wire a discovered call to a probe node takes (THeader, names `Echo:echo`) over a
            # direct connection: what discovery, balancing and node metrics add is discover / mux-h.
            # disc-dead: discovered with one more node listed that refuses connections (a fleet with a
            # node down: its breaker stays tracked, calls drawn to it at first fail over).
            [ "$server" = probe ] && clients="bare pooled mux mux-h discover disc-dead"
            [ -n "$volo_bin" ] && clients="volo $clients"
            for client in $clients; do
                case $client in
                pooled | volo) k=$c ;;
                *) k=$((mux_conns < c ? mux_conns : c)) ;;
                esac
                d=$(((c + k - 1) / k))
                local cmd
                case $client in
                volo) cmd=("$volo_bin" -c "$c" --payload "$payload" --threads "$loadgen_threads") ;;
                bare) cmd=("$bin/bare-client" -c "$c" --connections "$k" --payload "$payload" --threads "$loadgen_threads") ;;
                mux-h) cmd=("$bin/probe-client" --mode mux --theader -c "$c" --connections "$k" --payload "$payload" --threads "$loadgen_threads") ;;
                disc-dead) cmd=("$bin/probe-client" --mode discover --theader --dead-nodes 1 -c "$c" --connections "$k" --payload "$payload" --threads "$loadgen_threads") ;;
                *) cmd=("$bin/probe-client" --mode "$client" -c "$c" --connections "$k" --payload "$payload" --threads "$loadgen_threads") ;;
                esac
                # Discovered probe nodes advertise THeader, as probe's servers register themselves
                # (the raw server speaks framed binary only).
                [ "$client" = discover ] && [ "$server" = probe ] && cmd+=(--theader)
                # The load generator sends what the client sends: THeader frames with a probe
                # client's headers where the client speaks THeader, so the ratio is the client's
                # own cost and not the server's for the other wire.
                local lg_args=${LOADGEN_ARGS:-}
                case $client in
                mux-h | discover | disc-dead) [ "$server" = probe ] && lg_args+=" --header info" ;;
                esac
                local lg=() cl=() ratios=() lg_line cl_line round others_max=0
                declare -A col=()
                for round in $(seq "$rounds"); do
                    if [ $((round % 2)) -eq 1 ]; then
                        lg_line=$(LOADGEN_ARGS=$lg_args run "$server-echo-server" thrift "$payload" "$k" "$d" $sargs)
                        cl_line=$(run_client "$server-echo-server" "$sargs" "${cmd[@]}")
                    else
                        cl_line=$(run_client "$server-echo-server" "$sargs" "${cmd[@]}")
                        lg_line=$(LOADGEN_ARGS=$lg_args run "$server-echo-server" thrift "$payload" "$k" "$d" $sargs)
                    fi
                    col[lg_qps]+="$(get qps "$lg_line") " col[cl_qps]+="$(get qps "$cl_line") "
                    col[lg_cpu]+="$(get loadgen_cpu_us_per_call "$lg_line") " col[cl_cpu]+="$(get client_cpu_us_per_call "$cl_line") "
                    col[lg_srv]+="$(get server_cpu_us_per_call "$lg_line") " col[cl_srv]+="$(get server_cpu_us_per_call "$cl_line") "
                    col[cl_cs]+="$(get client_switches_per_kcall "$cl_line") " col[cl_mig]+="$(get migrations_per_s "$cl_line") "
                    ratios+=("$(awk -v a="$(get qps "$cl_line")" -v b="$(get qps "$lg_line")" 'BEGIN { printf "%.4f", (b > 0 ? a / b : 0) }')")
                    others_max=$(awk -v m="$others_max" -v a="$(get others_cpu_pct "$lg_line")" -v b="$(get others_cpu_pct "$cl_line")" \
                        'BEGIN { if (a > m) m = a; if (b > m) m = b; print m }')
                done
                med() { tr ' ' '\n' <<<"${col[$1]}" | sed '/^$/d' | median; }
                local ratio range x_cpu x_volo x_bare=- x_mux=- others
                ratio=$(printf '%s\n' "${ratios[@]}" | median | awk '{ printf "%.2f", $1 }')
                range=$(printf '%s\n' "${ratios[@]}" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.2f-%.2f", lo, hi }')
                x_cpu=$(awk -v a="$(med cl_cpu)" -v b="$(med lg_cpu)" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }')
                x_volo=-
                if [ "$client" = volo ]; then
                    volo_qps=$(med cl_qps)
                elif [ -n "$volo_qps" ]; then
                    x_volo=$(awk -v a="$(med cl_qps)" -v b="$volo_qps" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
                fi
                case $client in
                bare) bare_qps=$(med cl_qps) ;;
                mux | mux-h | discover | disc-dead)
                    x_bare=$(awk -v a="$(med cl_qps)" -v b="$bare_qps" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
                    ;;
                esac
                # Against the direct connection of the same wire (the last mux row before it), each
                # row's ratio to the load generator of its own rounds: the machine's drift between
                # the rows cancels.
                case $client in
                mux | mux-h) mux_ratio=$ratio ;;
                discover | disc-dead)
                    x_mux=$(awk -v a="$ratio" -v b="$mux_ratio" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
                    ;;
                esac
                if [ "$client" = discover ]; then
                    [ "$c" -ge 100 ] && goal_qps+=("$server C=$c $ratio $(verdict "$ratio" '>=' 0.8)")
                    goal_cpu+=("$server C=$c ${x_cpu}x $(verdict "$x_cpu" '<=' 2)")
                    goal_mux+=("$server C=$c $x_mux $(verdict "$x_mux" '>=' 0.95)")
                fi
                if [ "$x_volo" != - ]; then
                    volo_min=$(awk -v m="$volo_min" -v x="$x_volo" 'BEGIN { print (m == "" || x < m ? x : m) }')
                fi
                others=$(awk -v m="$others_max" 'BEGIN { printf " %d%%%s", m, (m > 20 ? "*" : "") }')
                printf "$fmt" "$server" "$c" "$client" "$k" "$d" "$(med lg_qps)" "$(med cl_qps)" "$ratio" "$range" \
                    "$(med lg_cpu)" "$(med cl_cpu)" "$x_cpu" "$(med lg_srv)" "$(med cl_srv)" "$(med cl_cs)" "$(med cl_mig)" \
                    "$x_volo" "$x_bare" "$x_mux" "$others"
                unset col
            done
        done
    done
    echo
    echo "K connections, D = C/K calls in flight per connection for the load generator (lg), which runs at the"
    echo "same K and D as the client (cli); ratio = cli/lg QPS; cpu = us of CPU per call (lg_srv, cli_srv: the"
    echo "server's under each); x_cpu = cli_cpu/lg_cpu; cs/k = the client's context switches per 1,000 calls (its"
    echo "workers parked and woken; a run in the slow state of two workers shows 2-3x the fast one's);"
    echo "mig/s = moves of the client's and the server's threads to another CPU per second (the slow runs are"
    echo "those in which the kernel leaves every thread where it is: tens, against hundreds);"
    echo "x_volo = the client's QPS / Volo's in the same server and C;"
    echo "bare = one task per caller over a minimal multiplexed client (bench/src/bin/bare_client.rs), the floor of a"
    echo "client called from many tasks; x_bare = the client's QPS / bare's in the same server and C."
    echo "mux-h = mux over THeader with names Echo:echo, the wire of a discovered call to a probe node; x_mux ="
    echo "discover's ratio / that of the direct connection of the same wire (mux-h against probe's server, mux against"
    echo "the raw one), each to the load generator of its own rounds: what discovery, balancing and node metrics cost."
    echo "disc-dead = discover with a second node listed that refuses connections (one node of the fleet down)."
    echo "Against probe's server the load generator of the mux-h, discover and disc-dead rows sends THeader frames"
    echo "with a probe client's headers (loadgen --header info: caller, request id, deadline), the wire those"
    echo "clients send; its other rows, framed binary."
    echo "Goals (issue 13), discover rows:"
    echo "  ratio >= 0.8 at C >= 100: $(join_rows "${goal_qps[@]}")"
    echo "  x_cpu <= 2:               $(join_rows "${goal_cpu[@]}")"
    echo "  x_mux >= 0.95:            $(join_rows "${goal_mux[@]}")"
    [ -n "$volo_min" ] && echo "  x_volo > 1 in every row:  lowest $volo_min $(verdict "$volo_min" '>' 1)"
    say "raw results in $log"
}

if [ "$mode" = overload ]; then
    say "$(nproc) CPUs shared by the server and the client; load average $(cut -d' ' -f1-3 /proc/loadavg)"
    overload_args=(--seconds "${BENCH_SECONDS:-10}" --warmup "${BENCH_WARMUP:-1}" --lead "${BENCH_LEAD:-3}"
        --factor "${BENCH_FACTOR:-3}" --workers "${BENCH_WORKERS:-8}" --service-ms "${BENCH_SERVICE_MS:-2}")
    [ -n "${BENCH_ADAPTIVE:-}" ] && overload_args+=(--adaptive "$BENCH_ADAPTIVE")
    # shellcheck disable=SC2086 # BENCH_OVERLOAD_ARGS is a list of words
    "$bin/overload" "${overload_args[@]}" ${BENCH_OVERLOAD_ARGS:-} | tee "$log"
    say "the table is also in $log"
    exit 0
fi
if [ "$mode" = hedge ]; then
    # shellcheck disable=SC2086 # BENCH_HEDGE_ARGS is a list of words
    "$bin/hedge" ${BENCH_HEDGE_ARGS:-} | tee "$log"
    say "the table is also in $log"
    exit 0
fi
if [ "$mode" = metrics ]; then
    compare_metrics
    exit 0
fi
if [ "$mode" = header ]; then
    fmt='%-8s %4s %2s | %9s %6s | %9s %6s %6s | %9s %6s %6s\n'
    say "$rounds rounds per configuration, framings alternating; $(nproc) CPUs shared by the server and the load generator"
    printf "$fmt" payload C D binary_qps cpu_us bare_qps cpu_us ratio info_qps cpu_us ratio
    for payload in $payloads; do
        for c in $connections; do
            for d in $depths; do
                declare -A q=() u=()
                for round in $(seq "$rounds"); do
                    order="none bare info"
                    [ $((round % 2)) -eq 0 ] && order="info bare none"
                    for h in $order; do
                        line=$(LOADGEN_ARGS="--header $h" run probe-echo-server thrift "$payload" "$c" "$d")
                        q[$h]+="$(get qps "$line") " u[$h]+="$(get server_cpu_us_per_call "$line") "
                    done
                done
                med() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | median; }
                none=$(med "${q[none]}") bare=$(med "${q[bare]}") info=$(med "${q[info]}")
                printf "$fmt" "$payload" "$c" "$d" "$none" "$(med "${u[none]}")" \
                    "$bare" "$(med "${u[bare]}")" "$(awk -v a="$bare" -v b="$none" 'BEGIN { printf "%.3f", a / b }')" \
                    "$info" "$(med "${u[info]}")" "$(awk -v a="$info" -v b="$none" 'BEGIN { printf "%.3f", a / b }')"
                unset q u
            done
        done
    done
    echo
    echo "bare = THeader frames without info headers, info = with caller, request id and deadline headers;"
    echo "ratio = their QPS / framed binary's (medians of the rounds)"
    say "raw results in $log"
    exit 0
fi
if [ "$mode" = middleware ]; then
    compare_metrics "" "--layers 1" none layer \
        "ratio = QPS with one pass-through layer / without layers (median of the rounds). The empty stack (no layers) is the 'none' column: a server without layers runs the very call path it ran before middleware existed (no box, no clone), so its ratio to that path is 1 by construction"
    exit 0
fi
if [ "$mode" = client ]; then
    compare_clients
    exit 0
fi

configs=0
for _ in $payloads; do for _ in $connections; do for _ in $depths; do configs=$((configs + 1)); done; done; done
say "$configs configurations x 2 servers x $rounds rounds x $(awk "BEGIN { print $seconds + $warmup }") s;" \
    "$(nproc) CPUs shared by the servers and the load generator; load average $(cut -d' ' -f1-3 /proc/loadavg)"

fmt='%-8s %4s %2s | %8s %8s %8s %6s | %8s %8s %8s %6s | %6s %6s%s\n'
range_head=
[ "$rounds" -gt 1 ] && range_head=$(printf ' %11s' "ratio_min-max")
printf "$fmt" payload C D base_qps p50_us p99_us cpu_us probe_qps p50_us p99_us cpu_us ratio others "$range_head"
declare -A ratios probe_qps
noisy=
for payload in $payloads; do
    for c in $connections; do
        for d in $depths; do
            # One value list per column, a value per round; the table shows their medians.
            declare -A col=()
            round_ratios=() others_max=0
            for round in $(seq "$rounds"); do
                # Alternate which server goes first, so a drift in the machine hits both alike.
                if [ $((round % 2)) -eq 1 ]; then
                    base=$(run raw-echo-server echo "$payload" "$c" "$d")
                    probe=$(run probe-echo-server thrift "$payload" "$c" "$d")
                else
                    probe=$(run probe-echo-server thrift "$payload" "$c" "$d")
                    base=$(run raw-echo-server echo "$payload" "$c" "$d")
                fi
                for key in qps p50_us p99_us server_cpu_us_per_call; do
                    col[base_$key]+="$(get "$key" "$base") "
                    col[probe_$key]+="$(get "$key" "$probe") "
                done
                round_ratios+=("$(awk -v p="$(get qps "$probe")" -v b="$(get qps "$base")" 'BEGIN { printf "%.4f", (b > 0 ? p / b : 0) }')")
                others_max=$(awk -v m="$others_max" -v a="$(get others_cpu_pct "$base")" -v b="$(get others_cpu_pct "$probe")" \
                    'BEGIN { if (a > m) m = a; if (b > m) m = b; print m }')
            done
            med() { tr ' ' '\n' <<<"${col[$1]}" | sed '/^$/d' | median; }
            ratio=$(printf '%s\n' "${round_ratios[@]}" | median | awk '{ printf "%.2f", $1 }')
            others=$(awk -v m="$others_max" 'BEGIN { printf "%d%%%s", m, (m > 20 ? "*" : "") }')
            [[ $others == *'*' ]] && noisy=1
            range=
            [ "$rounds" -gt 1 ] && range=$(printf '%s\n' "${round_ratios[@]}" | sort -g |
                awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf " %5.2f-%.2f", lo, hi }')
            ratios[$payload,$c,$d]=$ratio
            probe_qps[$payload,$c,$d]=$(med probe_qps)
            printf "$fmt" "$payload" "$c" "$d" \
                "$(med base_qps)" "$(med base_p50_us)" "$(med base_p99_us)" "$(med base_server_cpu_us_per_call)" \
                "$(med probe_qps)" "$(med probe_p50_us)" "$(med probe_p99_us)" "$(med probe_server_cpu_us_per_call)" \
                "$ratio" "$others" "$range"
            unset col
        done
    done
done
[ -n "$noisy" ] && echo "* other processes used over 20 % of a core during the row's runs: its numbers are noisy"

# The goals of issue 4: probe within 85 % of the raw server with many connections, and pipelining
# (D=8) at least doubling one connection's throughput.
echo
for payload in $payloads; do
    for c in $connections; do
        r=${ratios[$payload,$c,1]:-}
        [ -n "$r" ] && [ "$c" -gt 1 ] &&
            echo "payload $payload C=$c D=1: probe/baseline $r $(awk -v r="$r" 'BEGIN { print (r >= 0.85 ? "(>= 0.85 ok)" : "(< 0.85 MISSED)") }')"
        one=${probe_qps[$payload,$c,1]:-} eight=${probe_qps[$payload,$c,8]:-}
        [ -n "$one" ] && [ -n "$eight" ] &&
            echo "payload $payload C=$c: probe D=8/D=1 $(awk -v a="$eight" -v b="$one" 'BEGIN { x = a / b; printf "%.2f %s", x, (x >= 2 ? "(>= 2 ok)" : "(< 2 MISSED)") }')"
    done
done
say "raw results in $log"
