#!/usr/bin/env bash
# KV cache types at depth, in one sitting: the attention before this change (OLD_TREE: a checkout of
# the previous commit with its extension built, F32 cache) against this tree with F32, F16 and Q8_0
# caches, on the synthetic 0.8b Q4_K_M file at depth 4096. Rounds A B C D, then D C B A, each a fresh
# `harness bench` process (-r 2); results appended to rounds.jsonl, one record per test and arm.
#   OLD_TREE=/path/to/old/checkout bash reports/kvcache/2026-12-05/rounds.sh   (from the repository root)
set -euo pipefail
: "${OLD_TREE:?give OLD_TREE, a checkout of the commit before the cache types, built in place}"
OUT=${OUT:-reports/kvcache/2026-12-05}; DEPTH=${DEPTH:-4096}
M=$(python -c "from harness.model.synth import cached_model; print(cached_model('0.8b', 'q4_k_m'))")
HERE=$(pwd)
bench() {  # arm, then extra flags
    local arm=$1; shift
    local dir=$HERE; [ "$arm" = old-f32 ] && dir=$OLD_TREE
    (cd "$dir" && python -m harness.cli bench "$M" -t 2 -p 512 -n 32 -d "$DEPTH" -r 2 -o jsonl "$@") |
        sed "s/^/{\"arm\": \"$arm\", \"r\": /; s/$/}/" >> "$HERE/$OUT/rounds.jsonl"
}
uptime
for arm in old-f32 new-f32 new-f16 new-q8_0 new-q8_0 new-f16 new-f32 old-f32; do
    case $arm in
        old-f32|new-f32) bench "$arm" ;;
        new-f16) bench "$arm" -ctk f16 -ctv f16 ;;
        new-q8_0) bench "$arm" -ctk q8_0 -ctv q8_0 ;;
    esac
done
uptime
