"""How often `harness ab` cries wolf, and how often it catches a planted slowdown, on this machine.

    python benchmarks/ab_power.py --out reports/ab-power/DATE [--aa-runs 20] [--plants 0.02,0.03,0.05]
        [--plant-runs 10] [--aa-preset tiny] [--plant-preset 0.8b] [-- AB OPTIONS ...]

Makes a throwaway git repository from this working tree with one README-only commit (A/A: no built
code changes) and one commit per planted slowdown (a busy-wait of that fraction of each decode
step's own time in Session.decode_top1: proportionally more work per generated token). Then runs
`harness ab` again and again: README commit against its parent (--aa-runs times, each with its own
--seed) and each planted commit against the README commit (--plant-runs times). Writes every ab.json
and a summary (summary.json, summary.md): the false-alarm rate, the detection rate per plant, the
median ratio and the machine time per verdict. A benchmark, not a test: it measures the machine.

    python benchmarks/ab_power.py --reanalyze reports/ab-power/DATE

judges the stored rounds of every run again with the current statistics (harness.analysis.paired)
and writes reanalysis.md beside summary.md: the rounds are what they were, only the verdicts change.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SESSION = "harness/engine/session.py"
RETURN = "        return int(self.prefill_top1([token], all_positions=False)[0])\n"
ENV = {"GIT_AUTHOR_NAME": "ab-power", "GIT_AUTHOR_EMAIL": "ab@power", "GIT_COMMITTER_NAME": "ab-power",
       "GIT_COMMITTER_EMAIL": "ab@power"}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, **ENV}).stdout.strip()


def commit(repo: Path, message: str, path: str, text: str) -> str:
    (repo / path).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def planted_source(text: str, fraction: float) -> str:
    if text.count(RETURN) != 1:
        sys.exit(f"ab_power: {SESSION} no longer has the line the plant goes before; update RETURN")
    body = ("        __t0 = __import__('time').perf_counter()\n"
            "        __r = int(self.prefill_top1([token], all_positions=False)[0])\n"
            f"        __end = __import__('time').perf_counter() + {fraction!r} * (__import__('time').perf_counter() - __t0)\n"
            "        while __import__('time').perf_counter() < __end:\n"
            "            pass\n"
            "        return __r\n")
    return text.replace(RETURN, body)


def make_repo(dest: Path, plants: list[float]) -> tuple[str, str, dict[float, str]]:
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-co", "--exclude-standard", "-z"],
                           check=True, capture_output=True).stdout.decode().split("\0")
    for f in filter(None, files):
        if (ROOT / f).is_file():
            (dest / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, dest / f)
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "base")
    parent = git(dest, "rev-parse", "HEAD")
    readme = commit(dest, "README only", "README.md", (dest / "README.md").read_text() + "\nA/A\n")
    source = (dest / SESSION).read_text()
    planted = {}
    for p in plants:
        planted[p] = commit(dest, f"planted {p:.0%} decode slowdown", SESSION, planted_source(source, p))
        git(dest, "checkout", "-q", readme, "--", SESSION)       # each plant on top of the clean source
        git(dest, "commit", "-q", "--allow-empty", "-m", "restore")
    return parent, readme, planted


def run_ab(repo: Path, base: str, head: str, preset: str, seed: int, extra: list[str], out: Path) -> dict:
    cmd = [sys.executable, "-m", "harness.cli", "ab", base, head, "--repo", str(repo), "--preset", preset,
           "--seed", str(seed), "-o", str(out), *extra]
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.monotonic() - t0
    (out / "stdout.txt").parent.mkdir(parents=True, exist_ok=True)
    (out / "stdout.txt").write_text(r.stdout + "\n--- stderr ---\n" + r.stderr)
    if r.returncode not in (0, 1) or not (out / "ab.json").is_file():
        return {"exit": r.returncode, "seconds": seconds, "error": (r.stderr.strip().splitlines() or ["?"])[-1]}
    data = json.loads((out / "ab.json").read_text())
    tg = [v for v in data["verdicts"] if v["test"].startswith("tg")]
    return {"exit": r.returncode, "seconds": seconds, "rounds": data["rounds"], "stop": data["stop"],
            "tg_ratio": tg[0]["ratio"] if tg else None, "tg_verdict": tg[0]["verdict"] if tg else None,
            "tg_mde": tg[0]["mde"] if tg else None}


def sequential_pairs(out: Path, runs: dict, n_pairs: int, preset_of: dict, extra: list[str]) -> dict:
    """What `harness compare` of two sequential runs says on the same commits: for each kind, n_pairs
    times, one bench process of BASE's build then one of HEAD's (the builds ab made), judged (a) the
    way compare did before issue 14, a bootstrap interval over the repetitions inside each run
    (stats.judge), and (b) the way it does now (analysis.runs.judge_runs: one run per side)."""
    from harness.analysis.runs import judge_runs
    from harness.analysis.stats import SLOWER, judge
    from harness.measure.ab import Workload, bench_process
    from harness.model.synth import cached_model
    opts = dict(zip(extra[::2], extra[1::2]))
    threshold = 0.05                        # harness compare's default
    res = {}
    for kind, rs in runs.items():
        paths = next((json.loads((out / "runs" / f"{kind}-00" / "ab.json").read_text())["builds"]
                      for _ in [0] if (out / "runs" / f"{kind}-00" / "ab.json").is_file()), None)
        if not paths:
            continue
        w = Workload(cached_model(preset_of[kind], "q4_k_m"), preset_of[kind], int(opts.get("-p", 0)),
                     int(opts.get("-n", 16)), int(opts.get("-t", 1)), int(opts.get("-r", 3)))
        old = new = 0
        for _ in range(n_pairs):
            b = bench_samples(w, Path(paths[0]["path"]))
            h = bench_samples(w, Path(paths[1]["path"]))
            old += judge(b, h, threshold).verdict == SLOWER
            new += judge_runs([statistics.median(b)], [statistics.median(h)], threshold).verdict == SLOWER
        res[kind] = {"pairs": n_pairs, "old_compare_slower": old, "new_compare_slower": new}
        print(f"sequential pairs {kind}: old compare SLOWER {old}/{n_pairs}, now {new}/{n_pairs}", flush=True)
    return res


def bench_samples(w, tree: Path) -> list[float]:
    cmd = [sys.executable, "-m", "harness.cli", "bench", *w.bench_args()]
    r = subprocess.run(cmd, cwd=tree, env=dict(os.environ, PYTHONPATH=str(tree)), capture_output=True, text=True)
    recs = json.loads(r.stdout)
    return [float(x) for x in next(x for x in recs if x.get("n_gen"))["samples_ts"]]


def loadavg() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return float("nan")


def reanalyze(out: Path) -> int:
    """Every runs/*/ab.json judged again by the current judge_paired, at its own threshold and level."""
    from harness.analysis.paired import judge_paired
    from harness.analysis.stats import SLOWER
    rows: dict[str, list] = {}
    for f in sorted((out / "runs").glob("*/ab.json")):       # runs that failed wrote no ab.json
        kind = f.parent.name.rsplit("-", 1)[0]
        data = json.loads(f.read_text())
        for v in data["verdicts"]:
            if not v["test"].startswith("tg"):
                continue
            new = judge_paired(v["test"], v["model"], v["threads"], v["base"], v["head"], v["base_samples"],
                               v["head_samples"], v["threshold"], v["level"])
            rows.setdefault(kind, []).append((v["verdict"] == SLOWER, new.verdict == SLOWER, v["ratio"], new.ratio,
                                              v["mde"], new.mde, len(v["base_samples"])))
    lines = ["| runs | verdicts | slower (as run) | slower (now) | median ratio (as run / now) | median MDE (as run / "
             "now) | median rounds |", "|---|---:|---:|---:|---:|---:|---:|"]
    med = statistics.median
    for kind, rs in rows.items():
        fin = [r for r in rs if r[5] == r[5]]
        lines.append(f"| {kind} | {len(rs)} | {sum(r[0] for r in rs)} | {sum(r[1] for r in rs)} | "
                     f"{med(r[2] for r in rs):.3f} / {med(r[3] for r in rs):.3f} | "
                     f"{med(r[4] for r in rs):.1%} / {(med(r[5] for r in fin) if fin else float('nan')):.1%} | "
                     f"{med(r[6] for r in rs):g} |")
    (out / "reanalysis.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--reanalyze":
        return reanalyze(Path(sys.argv[2]))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--aa-runs", type=int, default=20)
    p.add_argument("--plants", default="0.02,0.03,0.05")
    p.add_argument("--plant-runs", type=int, default=10)
    p.add_argument("--aa-preset", default="tiny")
    p.add_argument("--plant-preset", default="0.8b")
    p.add_argument("--sequential-pairs", type=int, default=0,
                   help="also run this many sequential bench pairs per kind, judged as compare did and does")
    p.add_argument("ab_args", nargs=argparse.REMAINDER, help="after --: options passed to every harness ab")
    a = p.parse_args()
    extra = [x for x in a.ab_args if x != "--"]
    plants = [float(x) for x in a.plants.split(",") if x.strip()]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ab-power-"))
    try:
        parent, readme, planted = make_repo(work / "repo", plants)
        runs = {"aa": [], **{f"{p:.0%}": [] for p in plants}}
        jobs = [("aa", parent, readme, a.aa_preset, i) for i in range(a.aa_runs)]
        for i in range(a.plant_runs):                  # plants interleaved, so drift hits them alike
            jobs += [(f"{p:.0%}", readme, planted[p], a.plant_preset, i) for p in plants]
        for n, (kind, base, head, preset, i) in enumerate(jobs, 1):
            res = run_ab(work / "repo", base, head, preset, 1000 + i, extra, out / "runs" / f"{kind}-{i:02d}")
            res["load_before"] = loadavg()
            runs[kind].append(res)
            print(f"[{n}/{len(jobs)}] {kind} seed {1000 + i}: exit {res['exit']} tg ratio "
                  f"{res.get('tg_ratio') or float('nan'):.3f} in {res['seconds']:.0f} s", flush=True)
        seq = (sequential_pairs(out, runs, a.sequential_pairs,
                                {k: (a.aa_preset if k == "aa" else a.plant_preset) for k in runs}, extra)
               if a.sequential_pairs else {})
        summary = {}
        for kind, rs in runs.items():
            ok = [r for r in rs if r["exit"] in (0, 1) and "error" not in r]
            summary[kind] = {
                "runs": len(rs), "failed": len(rs) - len(ok), "exit_1": sum(r["exit"] == 1 for r in ok),
                "rate": (sum(r["exit"] == 1 for r in ok) / len(ok)) if ok else None,
                "median_tg_ratio": statistics.median([r["tg_ratio"] for r in ok if r.get("tg_ratio")]) if ok else None,
                "median_mde": statistics.median([r["tg_mde"] for r in ok if r.get("tg_mde")]) if ok else None,
                "median_seconds": statistics.median([r["seconds"] for r in rs]) if rs else None,
                "median_rounds": statistics.median([r["rounds"] for r in ok if "rounds" in r]) if ok else None}
        meta = {"ab_args": extra, "aa_preset": a.aa_preset, "plant_preset": a.plant_preset,
                "loadavg_end": loadavg(), "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (out / "summary.json").write_text(json.dumps({"meta": meta, "summary": summary, "runs": runs,
                                                      "sequential_pairs": seq}, indent=1))
        lines = ["| runs of `harness ab` | verdicts | exit 1 (slower) | rate | median tg ratio | median MDE | "
                 "median rounds | median s per verdict |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for kind, s in summary.items():
            what = (f"A/A (README-only commit vs parent, {a.aa_preset})" if kind == "aa"
                    else f"planted {kind} decode slowdown ({a.plant_preset})")
            f = (lambda x, fmt: "-" if x is None else fmt.format(x))
            lines.append(f"| {what} | {s['runs']} | {s['exit_1']} | {f(s['rate'], '{:.0%}')} | "
                         f"{f(s['median_tg_ratio'], '{:.3f}')} | {f(s['median_mde'], '{:.1%}')} | "
                         f"{f(s['median_rounds'], '{:g}')} | {f(s['median_seconds'], '{:.0f}')} |")
        for kind, q in seq.items():
            lines.append(f"\nsequential bench pairs, {kind}: compare before issue 14 (bootstrap over one run's "
                         f"repetitions) said SLOWER {q['old_compare_slower']}/{q['pairs']}, now "
                         f"{q['new_compare_slower']}/{q['pairs']} (one run per side: cannot judge)")
        lines.append(f"\nab options: `{' '.join(extra)}`; load average at the end {meta['loadavg_end']:.2f}; {meta['when']}")
        (out / "summary.md").write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
