#!/usr/bin/env bash
# Measure the engine on a borrowed x86-64 machine that has no Python and no network, with two
# statically linked binaries carried in the working tree (see README.md next to this script).
#
#   bash reports/device/run_device.sh [SELFTEST_BIN [ENGINE_BENCH_BIN]]
#
# Defaults: reports/device/bin/selftest-static and reports/device/bin/engine_bench-static (next
# to this script), or $SELFTEST / $ENGINE_BENCH. Everything is written under $OUT (default
# ./device-out): machine.txt, selftest.txt, bench.jsonl (one JSON object per line; the "tag" field
# names the step), bench.err, steps.tsv (every step: status, seconds), summary.txt, run.log.
#
# Every step has a timeout, and a step is skipped when the time left in $BUDGET_S (default 330 s)
# is below its estimate, so the whole script ends within about BUDGET_S plus the last step's kill
# grace. The most important runs come first. One failed run does not stop the others.
set -u

T_START=$(date +%s)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELFTEST=${1:-${SELFTEST:-$HERE/bin/selftest-static}}
BENCH=${2:-${ENGINE_BENCH:-$HERE/bin/engine_bench-static}}
OUT=${OUT:-./device-out}
BUDGET_S=${BUDGET_S:-330}
mkdir -p "$OUT"
: > "$OUT/bench.jsonl"
: > "$OUT/bench.err"
printf 'step\tstatus\tseconds\tcommand\n' > "$OUT/steps.tsv"

elapsed() { echo $(( $(date +%s) - T_START )); }
log() { echo "[$(elapsed)s] $*" | tee -a "$OUT/run.log" >&2; }

HAVE_TIMEOUT=0
command -v timeout >/dev/null 2>&1 && HAVE_TIMEOUT=1
# with_timeout SECONDS CMD...: the command, killed after SECONDS (and KILLed 3 s later)
with_timeout() {
    local t=$1; shift
    if [ "$HAVE_TIMEOUT" = 1 ]; then timeout -k 3 "$t" "$@"; else "$@"; fi
}

# the binaries may have lost their executable bit on the way: run copies from a temp dir then
make_runnable() {
    local src=$1 name
    name=$(basename "$src")
    if [ -f "$src" ] && [ ! -x "$src" ]; then
        local d="${TMPDIR:-/tmp}/q35-device-bin"
        mkdir -p "$d" && cp "$src" "$d/$name" && chmod +x "$d/$name" && { echo "$d/$name"; return; }
    fi
    echo "$src"
}
SELFTEST=$(make_runnable "$SELFTEST")
BENCH=$(make_runnable "$BENCH")
log "selftest: $SELFTEST"
log "engine_bench: $BENCH"
log "OUT=$OUT BUDGET_S=$BUDGET_S timeout=$HAVE_TIMEOUT"

# ---------------------------------------------------------------------------------------------
# (a) the machine
{
    t10() { with_timeout 10 "$@" 2>&1; }
    echo "## date (UTC)"; date -u
    echo "## uname -a"; t10 uname -a
    echo "## nproc"; t10 nproc
    echo "## lscpu"; t10 lscpu
    echo "## /proc/cpuinfo cpu0"; grep -m1 '^model name' /proc/cpuinfo; grep -m1 '^flags' /proc/cpuinfo
    echo "## free -g"; t10 free -g
    echo "## uptime"; t10 uptime
    echo "## transparent hugepages (enabled / defrag)"
    cat /sys/kernel/mm/transparent_hugepage/enabled /sys/kernel/mm/transparent_hugepage/defrag 2>&1
    echo "## cpufreq governor / driver (cpu0)"
    cat /sys/devices/system/cpu/cpu0/cpufreq/scaling_governor /sys/devices/system/cpu/cpu0/cpufreq/scaling_driver 2>&1
    echo "## NUMA nodes"; ls -d /sys/devices/system/node/node* 2>&1
    echo "## cgroup cpu limit"; cat /sys/fs/cgroup/cpu.max 2>&1
    echo "## affinity"; grep -m1 Cpus_allowed_list /proc/self/status
    echo "## binaries"; ls -l "$SELFTEST" "$BENCH" 2>&1
    command -v sha256sum >/dev/null 2>&1 && sha256sum "$SELFTEST" "$BENCH" 2>&1
} > "$OUT/machine.txt" 2>&1
log "machine.txt written"

FLAGS=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
has_flag() { case " $FLAGS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
AVX512=0
if has_flag avx512f && has_flag avx512bw && has_flag avx512vl; then AVX512=1; fi
NPROC=$(nproc 2>/dev/null || echo 16)
case $NPROC in ''|*[!0-9]*) NPROC=16 ;; esac
TOP=16   # the "16 threads" runs use every CPU when there are fewer
[ "$NPROC" -lt 16 ] && TOP=$NPROC
if [ "$AVX512" = 1 ]; then ISAS=avx512,avx2; else ISAS=avx2; fi
log "avx512=$AVX512 nproc=$NPROC top_threads=$TOP isas=$ISAS"

# ---------------------------------------------------------------------------------------------
# (b) the self-test
{
    echo "## selftest --isa all"
    with_timeout 60 "$SELFTEST" --isa all; echo "## rc=$?"
    if [ "$AVX512" = 1 ]; then
        echo "## selftest --isa avx512"
        with_timeout 60 "$SELFTEST" --isa avx512; echo "## rc=$?"
    else
        echo "## no avx512f+avx512bw+avx512vl on this CPU: --isa avx512 not run"
    fi
} > "$OUT/selftest.txt" 2>&1
log "selftest: $(grep -E 'passed|rc=' "$OUT/selftest.txt" | tr '\n' ' ')"

# ---------------------------------------------------------------------------------------------
# (c) engine_bench. step NAME EST_S CAP_S ARGS...: skipped when less than EST_S seconds of the
# budget are left; otherwise run with a timeout of min(CAP_S, time left).
step() {
    local name=$1 est=$2 cap=$3; shift 3
    local left=$(( BUDGET_S - $(elapsed) )) prev="" a
    for a in "$@"; do   # more threads than CPUs would only measure oversubscription
        if [ "$prev" = "-t" ] && [ "$a" -gt "$NPROC" ] 2>/dev/null; then
            log "skip $name ($a threads > $NPROC CPUs)"
            printf '%s\tskipped (threads > nproc)\t0\t%s\n' "$name" "$*" >> "$OUT/steps.tsv"
            return
        fi
        prev=$a
    done
    if [ "$left" -lt "$est" ]; then
        log "skip $name (${left}s left, needs ~${est}s)"
        printf '%s\tskipped\t0\t%s\n' "$name" "$*" >> "$OUT/steps.tsv"
        return
    fi
    local t=$cap
    [ "$left" -lt "$t" ] && t=$left
    log "run  $name (timeout ${t}s): $*"
    local t0 rc status
    t0=$(date +%s%N)
    echo "### $name: $*" >> "$OUT/bench.err"
    with_timeout "$t" "$BENCH" --tag "$name" "$@" >> "$OUT/bench.jsonl" 2>> "$OUT/bench.err"
    rc=$?
    local secs
    secs=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
    case $rc in
        0) status=ok ;;
        124|137) status=timeout ;;
        *) status="rc=$rc" ;;
    esac
    printf '%s\t%s\t%s\t%s\n' "$name" "$status" "$secs" "$*" >> "$OUT/steps.tsv"
    log "done $name: $status in ${secs}s"
}

Q=(--quant q4_k_m --isa "$ISAS")
# the headline: avx512 against avx2, 16 threads and 1 thread, 0.8B Q4_K_M
step p08_t16      12  60 --preset 0.8b "${Q[@]}" -t "$TOP" -p 512 -n 64 -r 3
step p08_t1_tg    18  60 --preset 0.8b "${Q[@]}" -t 1 -p 0 -n 64 -r 2
step p08_t1_pp    30  90 --preset 0.8b "${Q[@]}" -t 1 -p 512 -n 0 -r 1
# read bandwidth (what tg is bound by), 1 GB buffer
BW_T=1
for t in 2 4 8 16; do [ "$t" -le "$NPROC" ] && BW_T="$BW_T,$t"; done
[ "$NPROC" -gt 16 ] && BW_T="$BW_T,$NPROC"
step bandwidth     8  40 --bandwidth -t "$BW_T" --bw-mb 1024 -r 3
# 4B at 16 threads
step p4b_t16      18  60 --preset 4b "${Q[@]}" -t "$TOP" -p 128 -n 32 -r 2
# the thread sweep, 0.8B
step p08_t8       12  60 --preset 0.8b "${Q[@]}" -t 8 -p 512 -n 64 -r 2
step p08_t4       20  60 --preset 0.8b "${Q[@]}" -t 4 -p 512 -n 64 -r 2
step p08_t2_tg    10  40 --preset 0.8b "${Q[@]}" -t 2 -p 0 -n 64 -r 2
step p08_t2_pp    14  60 --preset 0.8b "${Q[@]}" -t 2 -p 512 -n 0 -r 1
# the thread sweep, 4B (short prompts at 1-2 threads: a 4B prefill is ~7x a 0.8B one)
step p4b_t8       25  60 --preset 4b "${Q[@]}" -t 8 -p 128 -n 32 -r 2
step p4b_t4       25  60 --preset 4b "${Q[@]}" -t 4 -p 128 -n 32 -r 1
step p4b_t2       22  60 --preset 4b "${Q[@]}" -t 2 -p 32 -n 16 -r 1
step p4b_t1       28  70 --preset 4b "${Q[@]}" -t 1 -p 32 -n 16 -r 1
# extras while time is left: the other weight types at 16 threads, every CPU if more than 16
step p08_q8_t16   12  45 --preset 0.8b --quant q8_0 --isa "$ISAS" -t "$TOP" -p 512 -n 64 -r 2
step p08_bf16_t16 15  45 --preset 0.8b --quant bf16 --isa "$ISAS" -t "$TOP" -p 512 -n 64 -r 2
if [ "$NPROC" -gt 16 ] 2>/dev/null; then
    step p08_tall 12  45 --preset 0.8b "${Q[@]}" -t "$NPROC" -p 512 -n 64 -r 2
fi

# ---------------------------------------------------------------------------------------------
# summary: preset quant isa threads test median (min..max), from the JSON lines without Python
sed -n 's/.*"preset": "\([^"]*\)", "quant": "\([^"]*\)", "isa": "\([^"]*\)", "threads": \([0-9]*\), "test": "\([^"]*\)".*"tps_median": \([0-9.]*\).*"tps_min": \([0-9.]*\), "tps_max": \([0-9.]*\).*"nonfinite": \([0-9]*\).*/\1 \2 \3 t=\4 \5 \6 t\/s (\7..\8) nonfinite=\9/p' \
    "$OUT/bench.jsonl" > "$OUT/summary.txt"
sed -n 's/.*"test": "read_bw", "threads": \([0-9]*\),.*"gbps": \([0-9.]*\).*/read_bw t=\1 \2 GB\/s/p' "$OUT/bench.jsonl" >> "$OUT/summary.txt"
TOTAL=$(elapsed)
echo "total elapsed: ${TOTAL}s" >> "$OUT/summary.txt"
cat "$OUT/summary.txt"
cat "$OUT/steps.tsv"
log "total elapsed ${TOTAL}s"
exit 0
