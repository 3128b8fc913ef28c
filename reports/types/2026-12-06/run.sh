#!/usr/bin/env bash
# The weight types that got C kernels on 2026-12-06 (issue 16), on the 0.8b shape: our engine and
# llama.cpp's llama-bench side by side, interleaved per configuration (harness sweep), one sitting,
# nothing else running. Q4_K_M is the reference point.
# LB: llama-bench built from the llama-cpp-python 0.3.36 sdist's llama.cpp (CPU, Release, static).
#   LB=/path/to/llama-bench bash reports/types/2026-12-06/run.sh      (from the repository root)
set -euo pipefail
LB=${LB:?set LB to the llama-bench binary}
OUT=${OUT:-reports/types/2026-12-06}
QUANTS=${QUANTS:-"q4_k_m q2_k q3_k_m q4_1 q5_0 q5_1 iq4_nl"}
models=()
for q in $QUANTS; do
    models+=(--model "$(python -c "from harness.model.synth import cached_model; print(cached_model('0.8b', '$q'))")")
done
{ grep -m1 "model name" /proc/cpuinfo; nproc; uptime; } > "$OUT/machine.txt"
harness sweep "${models[@]}" -t 2 -p 128 -n 32 -r 3 --no-profile --engine "native,llama-bench=$LB" -o "$OUT/sweep"
uptime >> "$OUT/machine.txt"
harness results "$OUT/sweep" -o md > "$OUT/results.md"
harness report "$OUT/sweep" -o "$OUT/sweep/report"
