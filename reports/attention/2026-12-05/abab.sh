#!/usr/bin/env bash
# Old attention (per-head, whole-context score rows) against the flash-style grouped one, on the
# synthetic 0.8b Q4_K_M file at depth 4096: A B B A A B rounds in one sitting, each a fresh
# `harness bench` process with the other build's extension copied into place.
#   OLD/NEW: the two builds of harness/_native.abi3.so (python setup.py build_ext --inplace)
set -euo pipefail
OLD=${OLD:-/tmp/old.so}; NEW=${NEW:-/tmp/new.so}; OUT=${OUT:-reports/attention/2026-12-05}
M=$(python -c "from harness.model.synth import cached_model; print(cached_model('0.8b', 'q4_k_m'))")
uptime
for arm in old new new old old new; do
    so=$OLD; [ "$arm" = new ] && so=$NEW
    cp "$so" harness/_native.abi3.so
    harness bench "$M" -t 2 -p 512 -n 32 -d 4096 -r 2 -o jsonl | sed "s/^/{\"arm\": \"$arm\", \"r\": /; s/$/}/" >> "$OUT/abab.jsonl"
done
cp "$NEW" harness/_native.abi3.so
uptime
