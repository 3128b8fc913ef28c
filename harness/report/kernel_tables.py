"""The tables `harness kernel-bench` prints: markdown (ns per call with instructions and simulated
cache misses per call beside it, and notes on what the figures include), CSV and JSON. This is
the only place the reports show kernel timings and counts: the HTML report has no kernel section."""
from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict

from harness.measure.counters import CacheModel
from harness.measure.kernel_table import KernelBench

COUNTS_MISS = ("counts do not see memory-bound decode (DRAM bandwidth and latency, frequency, contention) "
               "and cachegrind's misses are a simulated hierarchy, not this machine's")


def _count(v: float | None, digits: int = 0) -> str:
    if v is None:
        return ""
    if digits == 0 and abs(v - round(v)) < 1e-9:
        return f"{round(v):,}"
    return f"{v:,.{max(digits, 1)}f}"


def _geometry(g: tuple[int, int, int]) -> str:
    """(bytes, ways, line bytes) -> '32 KiB 8-way'."""
    size, ways, _ = g
    return (f"{size // 2**20} MiB" if size >= 2**20 else f"{size // 1024} KiB") + f" {ways}-way"


def format_markdown(bench: KernelBench, cache: CacheModel = CacheModel()) -> str:
    counted = bench.counters is not None
    head = "| type | kernel | isa | n | ns/call | spread | weight GB/s |"
    rule = "| --- | --- | --- | ---: | ---: | ---: | ---: |"
    if counted:
        head += " instr/call | instr/call with call | I1 miss/call | D1 miss/call | LL miss/call |"
        rule += " ---: | ---: | ---: | ---: | ---: |"
    lines = [head, rule]
    for r in bench.rows:
        line = (f"| {r.wtype} | {r.kernel} | {r.isa} | {r.n} | {r.timing.ns_per_call:,.1f} | "
                f"{100 * r.timing.spread:.1f}% | {r.weight_gbps:.2f} |")
        if counted:
            c = r.counters
            k = c.kernel or c.with_call
            line += (f" {_count(c.instructions)} | {_count(c.with_call.instructions, 1)} | {_count(k.i1_misses, 2)} | "
                     f"{_count(k.d1_misses, 2)} | {_count(k.ll_misses, 2)} |")
        lines.append(line)
    batches = len(bench.rows[0].timing.batches_ns) if bench.rows else 0
    notes = [f"ns/call: median of {batches} timed batches; it includes the call itself (Python loop and cffi), "
             f"{bench.overhead.ns_per_call:,.1f} ns for a call of an empty C function."]
    b = bench.counters
    if b is not None:
        if b.backend == "cachegrind":
            simulated = any(r.counters.kernel and r.counters.kernel.d1_misses is not None for r in bench.rows)
            notes.append("instr/call: instructions per call in the engine's own C functions under cachegrind "
                         "(deterministic: the same build gives the same count); 'with call' adds the Python loop "
                         "and the cffi call. " + (
                             "Misses are per call in the engine's functions, simulated by cachegrind "
                             f"(I1 {_geometry(cache.i1)}, D1 {_geometry(cache.d1)}, LL {_geometry(cache.ll)})."
                             if simulated else "No cache simulation (--no-cache-sim)."))
        else:
            notes.append("instr/call: user-space instructions per call counted by perf stat, with the Python loop "
                         "and the cffi call; no cache figures.")
        notes.append(f"counted in {b.seconds:.1f} s: {b.runs} runs under {b.backend} "
                     f"(each ~{max(b.run_seconds):.1f} s, nearly all the child's start-up of "
                     f"{b.base_instructions / 1e6:,.0f} M instructions, which the differences cancel).")
        notes.append(f"{COUNTS_MISS}; valgrind cannot run AVX-512, so cachegrind counts avx2 and scalar only.")
    if bench.backend_note:
        notes.append(bench.backend_note + ".")
    return "\n".join(lines + [""] + notes)


def format_csv(bench: KernelBench) -> str:
    recs = [r.record() for r in bench.rows]
    out = io.StringIO()
    if recs:
        w = csv.DictWriter(out, fieldnames=list(recs[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(recs)
    return out.getvalue()


def format_json(bench: KernelBench, cache: CacheModel = CacheModel()) -> str:
    b = bench.counters
    doc = {
        "rows": [r.record() for r in bench.rows],
        "call_overhead_ns": round(bench.overhead.ns_per_call, 2),
        "counters": None if b is None else {
            "backend": b.backend, "runs": b.runs, "seconds": round(b.seconds, 2),
            "run_seconds": [round(s, 2) for s in b.run_seconds], "base_instructions": b.base_instructions,
            "cache_model": asdict(cache) if b.backend == "cachegrind" else None, "misses": COUNTS_MISS,
        },
    }
    return json.dumps(doc, indent=2)
