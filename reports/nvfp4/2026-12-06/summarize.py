"""The tables of rounds.jsonl (rounds.sh): decode at depth 0 on the decode shape, and the depth walk
on the depth shape, each recipe against its delta-net-in-BF16 twin, with the byte ratio the speed
ratio should follow where decode is bound by memory.
    python reports/nvfp4/2026-12-06/summarize.py [reports/nvfp4/2026-12-06/rounds.jsonl]"""
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

PAIRS = [("nvfp4", "nvfp4+deltanet=bf16"), ("q4_k_m", "q4_k_m+deltanet=bf16")]


def load(path: Path):
    decode, walk = defaultdict(list), defaultdict(list)
    for line in path.read_text().splitlines():
        d = json.loads(line)
        r = d["r"]
        if d["tag"] == "depth":
            walk[(d["preset"], d["quant"], int(r["n_kv"]))].append(r)
        else:
            decode[(d["preset"], d["quant"])].append(r)
    return decode, walk


def decode_table(decode) -> list[str]:
    out = ["| shape | recipe | GB read / token | tg32 t/s (median) | GB/s | % of read bw | speedup, bytes ratio |",
           "|---|---|---:|---:|---:|---:|---|"]
    for small, big in PAIRS:
        for q in (big, small):
            for preset in sorted({p for p, qq in decode if qq == q}):
                recs = decode[(preset, q)]
                ts = statistics.median(x for r in recs for x in r["samples_ts"])
                bpt = statistics.median(r["weight_gbps"] / r["median_ts"] for r in recs)     # GB per token
                read = statistics.median(r["machine_read_gbps"] for r in recs)
                note = ""
                if q == small and (preset, big) in decode:
                    rb = decode[(preset, big)]
                    ts_b = statistics.median(x for r in rb for x in r["samples_ts"])
                    bpt_b = statistics.median(r["weight_gbps"] / r["median_ts"] for r in rb)
                    note = f"{ts / ts_b:.2f}x, {bpt_b / bpt:.2f}x"
                out.append(f"| {preset} | {q} | {bpt:.2f} | {ts:.2f} | {ts * bpt:.1f} | "
                           f"{100 * ts * bpt / read:.0f}% | {note} |")
    return out


def walk_table(walk) -> list[str]:
    kvs = sorted({k for _, _, k in walk})
    out = ["| shape | recipe | " + " | ".join(f"S_PP @ {k}" for k in kvs) + " | " +
           " | ".join(f"S_TG @ {k}" for k in kvs) + " | GB / tg token @ 0, @ max |",
           "|---|---|" + "---:|" * (2 * len(kvs) + 1)]
    for small, big in PAIRS:
        for q in (big, small):
            for preset in sorted({p for p, qq, _ in walk if qq == q}):
                pp = [statistics.median(r["speed_pp"] for r in walk[(preset, q, k)]) for k in kvs]
                tg = [statistics.median(r["speed_tg"] for r in walk[(preset, q, k)]) for k in kvs]
                b0 = walk[(preset, q, kvs[0])][0]["bytes_per_tg_token"] / 1e9
                b1 = walk[(preset, q, kvs[-1])][0]["bytes_per_tg_token"] / 1e9
                out.append(f"| {preset} | {q} | " + " | ".join(f"{x:.1f}" for x in pp) + " | " +
                           " | ".join(f"{x:.2f}" for x in tg) + f" | {b0:.2f}, {b1:.2f} |")
            if q == small and all((p, big, k) in walk for p, _, k in walk if _ == small):
                for preset in sorted({p for p, qq, _ in walk if qq == q}):
                    pp = [statistics.median(r["speed_pp"] for r in walk[(preset, small, k)]) /
                          statistics.median(r["speed_pp"] for r in walk[(preset, big, k)]) for k in kvs]
                    tg = [statistics.median(r["speed_tg"] for r in walk[(preset, small, k)]) /
                          statistics.median(r["speed_tg"] for r in walk[(preset, big, k)]) for k in kvs]
                    br = [walk[(preset, big, k)][0]["bytes_per_tg_token"] / walk[(preset, small, k)][0]["bytes_per_tg_token"]
                          for k in (kvs[0], kvs[-1])]
                    out.append(f"| {preset} | speedup {small} / {big} | " + " | ".join(f"{x:.2f}x" for x in pp) +
                               " | " + " | ".join(f"{x:.2f}x" for x in tg) + f" | bytes {br[0]:.2f}x, {br[1]:.2f}x |")
    return out


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).with_name("rounds.jsonl"))
    decode, walk = load(path)
    print("\n".join(decode_table(decode)))
    print()
    print("\n".join(walk_table(walk)))


if __name__ == "__main__":
    main()
