#!/usr/bin/env bash
# AVX512 against AVX2 on a CPU that has AVX512 (issue 19 goal 4), in one sitting: the self-test of the
# real AVX512 instructions, then pp512 / tg128 of the 0.8b and 4b Q4_K_M synthetic files with
# `--isa avx512` and `--isa avx2`, arms in the order A B B A per round, each a fresh `harness bench`
# process. Records (every sample) are appended to rounds.jsonl.
#   bash reports/device/2026-12-06-zen4-2vcpu/rounds.sh      (from the repository root)
set -euo pipefail
OUT=${OUT:-reports/device/2026-12-06-zen4-2vcpu}; ROUNDS=${ROUNDS:-2}
{ uname -a; nproc; grep -m1 "model name" /proc/cpuinfo; grep -m1 -o 'avx512[a-z_0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' '; echo;
  grep -o 'avx512[a-z_0-9]*' /proc/cpuinfo | sort -u | tr '\n' ' '; echo; free -g | head -2; } > "$OUT/machine.txt"
python -m harness.cli selftest --isa avx512 > "$OUT/selftest.txt" 2>&1
for p in 0.8b 4b; do python -c "from harness.model.synth import cached_model; cached_model('$p', 'q4_k_m')"; done
record() {  # tag: wrap each JSON line
    python -c "import json, sys
for line in sys.stdin:
    if line.strip().startswith('{'):
        print(json.dumps({'tag': '$1', 'r': json.loads(line)}))" >> "$OUT/rounds.jsonl"
}
uptime | tee -a "$OUT/load.txt"
for round in $(seq "$ROUNDS"); do
    order="avx512 avx2 avx2 avx512"
    for isa in $order; do
        for t in 1 2; do
            python -m harness.cli bench --preset 0.8b --quant q4_k_m --isa "$isa" -t "$t" -p 512 -n 128 -r 2 -o jsonl |
                record "0.8b t$t $isa"
        done
    done
    for isa in avx512 avx2; do
        python -m harness.cli bench --preset 4b --quant q4_k_m --isa "$isa" -t 2 -p 512 -n 128 -r 1 -o jsonl |
            record "4b t2 $isa"
    done
    uptime | tee -a "$OUT/load.txt"
done
