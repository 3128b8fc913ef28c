#!/usr/bin/env bash
# MTP drafting's cost model and `generate` against `bench`, on a synthetic 0.8b Q4_K_M file with an
# MTP block and a synthetic tokenizer (random weights: the acceptance is ~0, the costs are real).
#   bash reports/mtp/2026-12-06/run.sh          (from the repository root; MODEL=... for another file)
set -euo pipefail
OUT=${OUT:-reports/mtp/2026-12-06}; T=${T:-2}
MODEL=${MODEL:-${TMPDIR:-/tmp}/q35-0.8b-mtp-q4_k_m.gguf}
[ -f "$MODEL" ] || python -m harness.cli synth --preset 0.8b --quant q4_k_m --mtp --tokenizer synthetic -o "$MODEL"
TEXT="The quick brown fox jumps over the lazy dog, and the dog does not seem to mind at all."
uptime | tee "$OUT/load.txt"
python -m harness.cli draft-cost "$MODEL" -k 1,2,3,4 -d 64 -r 7 -t "$T" -p "$TEXT" -n 32 -o "$OUT"
# generate's eval tokens/s against bench's tg, alternating, three times each (-o json: last line)
for i in 1 2 3; do
    python -m harness.cli generate "$MODEL" -p "$TEXT" -n 128 --ignore-eos -t "$T" -o json | tail -n 1 \
        >> "$OUT/generate.jsonl"
    python -m harness.cli bench "$MODEL" -p 0 -n 128 -r 1 -t "$T" -o jsonl >> "$OUT/bench.jsonl"
done
uptime | tee -a "$OUT/load.txt"
python - "$OUT" <<'PY'
import json, statistics, sys
out = sys.argv[1]
gen = [json.loads(l)["gen_tps"] for l in open(f"{out}/generate.jsonl")]
tg = [json.loads(l)["avg_ts"] for l in open(f"{out}/bench.jsonl")]
print(f"generate eval t/s: {', '.join(f'{x:.2f}' for x in gen)} (median {statistics.median(gen):.2f})")
print(f"bench tg128 t/s:   {', '.join(f'{x:.2f}' for x in tg)} (median {statistics.median(tg):.2f})")
print(f"ratio of medians generate / bench: {statistics.median(gen) / statistics.median(tg):.3f}")
PY
