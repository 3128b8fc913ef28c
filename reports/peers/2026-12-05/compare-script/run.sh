#!/usr/bin/env bash
# llama.cpp's own scripts/compare-llama-bench.py tabling `harness bench -o sql` against llama-bench run
# with the same settings (an F16 KV cache: llama-bench has no F32 one; no flash attention, no repacking,
# u-batch 512), both into one sqlite database, on the synthetic 0.8b Q4_K_M file; llama-bench and ours
# alternate, twice.
#   LB=/path/to/llama-bench SRC=/path/to/llama.cpp bash reports/peers/2026-12-05/compare-script/run.sh
set -euo pipefail
: "${LB:?give LB, a llama-bench binary}"; : "${SRC:?give SRC, the llama.cpp source (scripts/compare-llama-bench.py)}"
OUT=${OUT:-reports/peers/2026-12-05/compare-script}; DB=$OUT/llama-bench.sqlite
M=$(python -c "from harness.model.synth import cached_model; print(cached_model('0.8b', 'q4_k_m'))")
rm -f "$DB"; uptime
for round in 1 2; do
    "$LB" -m "$M" -t 2 -p 512 -n 128 -r 3 -ctk f16 -ctv f16 -fa 0 --repack 0 -ub 512 -o sql | sqlite3 "$DB"
    harness bench "$M" -t 2 -p 512 -n 128 -r 3 -ctk f16 -ctv f16 -o sql | sqlite3 "$DB"
done
uptime
ours=$(git rev-parse --short=7 HEAD)
python "$SRC/scripts/compare-llama-bench.py" -i "$DB" -b "$(sqlite3 "$DB" "SELECT DISTINCT build_commit FROM llama_bench" | grep -v "^$ours$" | head -1)" -c "$ours" | tee "$OUT/compare.md"
