"""The table of a run_peers.sh sitting: per model file and test, each engine's median over the rounds
of its mean t/s (llama-bench's avg_ts), ours / each peer, and for our token generation the share of the
read bandwidth measured in the same run (harness bench's bandwidth_fraction).

    python reports/comparisons/table.py OUTDIR

Reads OUTDIR/<engine>-<model>-<round>.json (a list of llama-bench-style records per file)."""
from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def test_name(rec: dict) -> str:
    p, g, d = int(rec.get("n_prompt", 0)), int(rec.get("n_gen", 0)), int(rec.get("n_depth", 0) or 0)
    name = f"pp{p}" if p and not g else f"tg{g}" if g and not p else f"pp{p}+tg{g}"
    return f"{name} @ d{d}" if d else name


def load(folder: Path) -> tuple[dict, list[str], list[str]]:
    """{(engine, model, test): [avg_ts per round]}, {(model, test): [our bandwidth fractions]}, engines."""
    speed, share, engines, models = defaultdict(list), defaultdict(list), [], []
    # the model names from our own files (every sitting has them), so a peer's name may hold "-" (ik-vnni)
    ours_models = {f.stem[len("ours-"):].rsplit("-", 1)[0] for f in folder.glob("ours-*.json")}
    for f in sorted(folder.glob("*.json")):
        head = f.stem.rsplit("-", 1)[0]   # <engine>-<model>
        model = next((m for m in sorted(ours_models, key=len, reverse=True) if head.endswith("-" + m)), None)
        engine, model = (head[: -len(model) - 1], model) if model else head.split("-", 1)
        text = f.read_text().strip()
        if not text:
            print(f"{f.name}: empty (the engine failed: see {f.with_suffix('.err').name})", file=sys.stderr)
            continue
        for rec in json.loads(text):
            if engine not in engines:
                engines.append(engine)
            if model not in models:
                models.append(model)
            speed[(engine, model, test_name(rec))].append(float(rec["avg_ts"]))
            if engine == "ours" and rec.get("bandwidth_fraction") is not None:
                share[(model, test_name(rec))].append(float(rec["bandwidth_fraction"]))
    return speed, share, engines, models


def table(folder: Path) -> str:
    speed, share, engines, models = load(folder)
    peers = [e for e in engines if e != "ours"]
    head = ["model", "test", "ours t/s"] + [f"{p} t/s" for p in peers] + [f"ours / {p}" for p in peers] + \
        ["ours % of read bw"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    tests = sorted({t for (_, _, t) in speed}, key=lambda t: (not t.startswith("pp"), t))
    for model in models:
        for test in tests:
            ours = speed.get(("ours", model, test))
            if not ours:
                continue
            med = statistics.median(ours)
            cells = [model, test, f"{med:.2f}"]
            ratios = []
            for p in peers:
                theirs = speed.get((p, model, test))
                cells.append(f"{statistics.median(theirs):.2f}" if theirs else "-")
                ratios.append(f"{med / statistics.median(theirs):.2f}" if theirs else "-")
            fr = share.get((model, test))
            cells += ratios + [f"{100 * statistics.median(fr):.0f}%" if fr else ""]
            lines.append("| " + " | ".join(cells) + " |")
    rounds = max((len(v) for v in speed.values()), default=0)
    lines.append(f"\nmedians over {rounds} round(s) of each engine's mean t/s; ours / peer > 1: ours is faster")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        sys.exit("usage: python table.py OUTDIR")
    print(table(Path(sys.argv[1])))
