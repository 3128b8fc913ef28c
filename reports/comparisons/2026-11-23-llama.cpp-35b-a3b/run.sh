#!/bin/bash
# Qwen3.5-35B-A3B shape (synthetic, Q4_K_M): llama-bench and harness bench interleaved, 2 threads.
B=/work/llama/llama_cpp_python-0.3.36/vendor/llama.cpp/build/bin/llama-bench
f=/work/models/35b-a3b-q4_k_m.gguf    # harness synth --preset 35b-a3b --quant q4_k_m --seed 0 -o $f
for round in 1 2; do
  $B -m $f -p 64 -n 128 -r 2 -t 2 -o json > llama-$round.json 2> llama-$round.err
  harness bench $f -p 64 -n 128 -r 2 -t 2 -o json > ours-$round.json 2> ours-$round.err
done
echo finished
