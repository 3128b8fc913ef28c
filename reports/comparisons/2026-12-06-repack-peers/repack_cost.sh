#!/usr/bin/env bash
# The load-time and memory cost of repacking: each file once with --repack off and once with on
# (pp512, one repetition), ours only; repack_cost.jsonl holds the records (packed_bytes,
# session_start_ms, peak_rss_bytes), repack_cost.txt the table.
set -euo pipefail
out=${OUT:-$(dirname "$0")}
: > "$out/repack_cost.jsonl"
for m in "$@"; do
    for mode in off on; do
        harness bench "$m" -p 512 -n 0 -r 1 -t 2 --repack "$mode" -o jsonl 2>/dev/null >> "$out/repack_cost.jsonl"
    done
done
python - "$out/repack_cost.jsonl" <<'PY' | tee "$out/repack_cost.txt"
import json, sys
print("| model | repack | repacked MiB | session start ms | peak RSS MiB | pp512 t/s (1 run) |")
print("|---|---|---:|---:|---:|---:|")
for line in open(sys.argv[1]):
    r = json.loads(line)
    name = r["model_filename"].rsplit("/", 1)[-1].removesuffix(".gguf")
    print(f"| {name} | {r['repack_mode']} | {r['packed_bytes'] / 2**20:.0f} | {r['session_start_ms']:.0f} | "
          f"{r['peak_rss_bytes'] / 2**20:.0f} | {r['avg_ts']:.1f} |")
PY
