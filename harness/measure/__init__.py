"""Taking measurements: llama-bench-style pp / tg runs, grids and sweeps, machine probes (read
bandwidth, peak RSS), kernel and vocab microbenchmarks, and bisection across commits."""
