#!/usr/bin/env bash
# The NVFP4 delta-net experiment (issue 16 item 4) in one sitting: for each shape, a file with every
# linear layer in NVFP4 against one with the delta-net projections (attn_qkv, attn_gate, ssm_out =
# in_proj_qkv, in_proj_z, out_proj) in BF16, and the same pair for Q4_K_M. Each arm is a fresh
# `harness bench` process; rounds go A B C D then D C B A, so drift between arms cancels in the
# medians. Records (every sample, bandwidth probes, load) are appended to rounds.jsonl.
#   bash reports/nvfp4/2026-12-06/rounds.sh          (from the repository root; files are synthesized
#                                                     into harness's cache on first use)
# DECODE_PRESET: the shape for decode at depth 0 (default 9b, `harness bench -p 0 -n 32 -r 3`);
# DEPTH_PRESET: the shape walked as llama-sweep-bench walks one context (default 2b: a 9b prefill of
# 10K tokens takes most of an hour on 2 cores): `harness sweep-depth -c 10240 --step 2048 -n 32`, so
# S_PP is pp2048 (u-batch 2048) at N_KV 0, 2048, ... 8192 and S_TG tg32 after each.
set -euo pipefail
OUT=${OUT:-reports/nvfp4/2026-12-06}
DECODE_PRESET=${DECODE_PRESET:-9b}; DEPTH_PRESET=${DEPTH_PRESET:-2b}
CTX=${CTX:-10240}; STEP=${STEP:-2048}; TG=${TG:-32}; THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-2}
ARMS="nvfp4 nvfp4+deltanet=bf16 q4_k_m q4_k_m+deltanet=bf16"
REVERSED="q4_k_m+deltanet=bf16 q4_k_m nvfp4+deltanet=bf16 nvfp4"

record() {  # tag preset quant: each JSON line on stdin, wrapped with the arm's names
    python -c "import json, sys
for line in sys.stdin:
    if line.strip().startswith('{'):
        print(json.dumps({'tag': '$1', 'preset': '$2', 'quant': '$3', 'r': json.loads(line)}))" >> "$OUT/rounds.jsonl"
}

for preset in $DECODE_PRESET $DEPTH_PRESET; do      # synthesize outside the timed part
    for q in $ARMS; do python -c "from harness.model.synth import cached_model; cached_model('$preset', '$q')"; done
done
uptime | tee -a "$OUT/load.txt"
for round in $(seq "$ROUNDS"); do
    order=$ARMS; [ $((round % 2)) -eq 0 ] && order=$REVERSED
    for q in $order; do
        python -m harness.cli bench --preset "$DECODE_PRESET" --quant "$q" -t "$THREADS" -p 0 -n "$TG" -r 3 -o jsonl |
            record "tg$TG" "$DECODE_PRESET" "$q"
    done
    for q in $order; do
        python -m harness.cli sweep-depth --preset "$DEPTH_PRESET" --quant "$q" -t "$THREADS" -c "$CTX" \
            --step "$STEP" -n "$TG" --format jsonl | record depth "$DEPTH_PRESET" "$q"
    done
    uptime | tee -a "$OUT/load.txt"
done
