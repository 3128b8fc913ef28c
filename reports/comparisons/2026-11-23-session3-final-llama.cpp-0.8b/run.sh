#!/bin/bash
B=/work/llama/llama_cpp_python-0.3.36/vendor/llama.cpp/build/bin/llama-bench
for q in q4_k_m q8_0 bf16; do
  f=/work/models/0.8b-$q.gguf
  for round in 1 2; do
    $B -m $f -p 512 -n 128 -r 3 -t 2 -o json > llama-$q-$round.json 2> llama-$q-$round.err
    harness bench $f -p 512 -n 128 -r 3 -t 2 -o json > ours-$q-$round.json 2> ours-$q-$round.err
  done
done
echo finished
