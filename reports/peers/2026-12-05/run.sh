#!/usr/bin/env bash
# The measurements of this folder, in the order they ran (one sitting, nothing else running).
# LB: llama-bench built from the llama-cpp-python 0.3.36 sdist's llama.cpp (CPU, Release, static):
#   cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
#         -DLLAMA_BUILD_SERVER=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF -DBUILD_SHARED_LIBS=OFF
#   cmake --build build -j2 --target llama-bench
set -euo pipefail
LB=${LB:?set LB to the llama-bench binary}
OUT=${OUT:-reports/peers/2026-12-05}
M=$(python -c "from harness.model.synth import cached_model; print(cached_model('0.8b', 'q4_k_m'))")
uptime
# 1. both engines, interleaved per configuration; llama.cpp with flash attention off and on
harness sweep --model "$M" -t 2 -p 512 -n 32 -r 3 --no-profile \
    --engine "native,llama-bench=$LB" --peer-args 'llama-bench=-fa 0,1' -o "$OUT/sweep"
harness report "$OUT/sweep" -o "$OUT/sweep/report"
# 2. compare-llama-bench.py on one sqlite database holding llama.cpp's rows and ours
rm -f "$OUT/llama-bench.sqlite"
"$LB" -m "$M" -t 2 -p 512 -n 32 -r 3 -fa 0 -o sql | sqlite3 "$OUT/llama-bench.sqlite"
harness bench "$M" -t 2 -p 512 -n 32 -r 3 -o sql | sqlite3 "$OUT/llama-bench.sqlite"
uptime
# 3. depth curves to 8192 tokens: ours walks one context; llama-bench runs one -d per depth
harness sweep-depth "$M" -c 8192 --step 2048 -n 32 -t 2 --engine "native,llama-bench=$LB" -o "$OUT/depth" \
    | tee "$OUT/depth/curve.txt"
harness report "$OUT/depth" -o "$OUT/depth/report"
uptime
