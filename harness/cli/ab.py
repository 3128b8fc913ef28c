"""`harness ab`, `harness noise` and `harness ci`: interleaved A/B verdicts of revisions, the noise
floor of this machine, and the CI gate built from them (harness.measure.ab).

Exit status: ab / ci 0 no significant slowdown beyond the threshold, 1 a significant slowdown (or a
revision that cannot be built or measured), 2 bad arguments; noise 0, or 1 when it cannot measure.
"""
from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from harness.cli.common import available_cpus, nonneg_int, positive_int
from harness.errors import BadArgumentError, UsageError

CI_GRID = (("tiny", "q4_k_m"), ("tiny", "q8_0"), ("0.8b", "q4_k_m"), ("0.8b", "q8_0"))


def _log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _threshold(text: str) -> float:
    from harness.analysis.stats import parse_threshold
    try:
        return parse_threshold(text)
    except UsageError as e:
        raise BadArgumentError(str(e)) from None


def _workloads(a, models: list[str]) -> list:
    """MODEL files, or --preset with --quant (a comma list), each measured at -p / -n."""
    from harness.measure.ab import Workload
    from harness.model.synth import QUANTS, cached_model
    if a.threads is not None and a.threads > len(available_cpus()):
        raise BadArgumentError(f"-t {a.threads} is more than the {len(available_cpus())} CPUs available to this "
                               "process: the threads would wait on each other")
    if a.n_prompt == 0 and a.n_gen == 0:
        raise BadArgumentError("nothing to measure: -p and -n are both 0")
    common = dict(n_prompt=a.n_prompt, n_gen=a.n_gen, threads=a.threads, repetitions=a.repetitions,
                  statistic=a.statistic)
    if models and a.preset:
        raise BadArgumentError("give a MODEL path or --preset, not both")
    if models:
        out = []
        for m in models:
            if not os.path.isfile(m):
                raise BadArgumentError(f"model file {m!r} does not exist")
            out.append(Workload(os.path.abspath(m), os.path.basename(m), **common))
        return out
    if not a.preset:
        raise BadArgumentError("give a MODEL path or --preset (synthesized once, with the current code)")
    quants = [q.strip() for q in a.quant.split(",") if q.strip()]
    bad = [q for q in quants if not _is_quant(q)]
    if bad or not quants:
        raise BadArgumentError(f"--quant: unknown {', '.join(bad) or '(empty)'} (known: {', '.join(QUANTS)}, "
                               "optionally +GROUP=TYPE)")
    return [Workload(cached_model(a.preset, q), f"{a.preset} {q}", **common) for q in quants]


def _is_quant(spec: str) -> bool:
    from harness.model.synth import check_quant
    try:
        check_quant(spec)
        return True
    except UsageError:
        return False


def _split_positionals(items: list[str]) -> tuple[list[str], list[str]]:
    """REVISION ... [MODEL]: a trailing argument naming an existing .gguf file is the model."""
    models = [x for x in items if x.endswith(".gguf") or os.path.isfile(x)]
    revs = [x for x in items if x not in models]
    return revs, models


def _policy(a):
    from harness.measure.ab import Policy
    p = Policy(threshold=_threshold(a.threshold), level=a.level, min_rounds=a.min_rounds, max_rounds=a.rounds,
               time_budget=a.time_budget, aa_rounds=a.aa_rounds, seed=a.seed, layout=a.layout)
    try:
        p.check()
    except UsageError as e:
        raise BadArgumentError(str(e)) from None
    return p


def _check_machine(a, policy, threads: int | None) -> dict:
    """The machine's state before measuring: warnings, or a refusal under --strict."""
    try:
        from harness.measure.system_state import check_before_measuring
    except ImportError:                      # not in this build
        return {}
    state = check_before_measuring(policy.threshold, threads or len(available_cpus()), a.strict, _log)
    return state.as_dict() if hasattr(state, "as_dict") else {}


def _peer_arms(revs: list[str], peer_args: list[str] | None = None) -> dict:
    """{position: PeerEngine} of the arms given as ENGINE=PATH (llama-bench=..., ik=...), not revisions;
    each peer_args item ('ik=-rtr 1', as --peer-args) goes to every arm of the engine it names, which
    must have one."""
    from dataclasses import replace

    from harness.measure.peers import ENGINE_NAMES, parse_engines, peer_args_by_engine
    try:
        extra = peer_args_by_engine(peer_args)
        peers = {i: parse_engines(spec).peers[0] for i, spec in enumerate(revs)
                 if spec.partition("=")[1] and spec.partition("=")[0] in ENGINE_NAMES}
        for engine in extra:
            if engine not in {p.engine for p in peers.values()}:
                raise UsageError(f"--peer-args {engine}: no arm of that engine among the revisions "
                                 "(give llama-bench=PATH or ik=PATH)")
    except UsageError as e:
        raise BadArgumentError(str(e)) from None
    return {i: replace(p, extra=extra.get(p.engine, ())) for i, p in peers.items()}


def measure_peer(peer, w) -> dict[str, float]:
    """One fresh run of a peer's llama-bench on a workload (the same tests, threads, repetitions and
    u-batch as our bench's), as {test: tokens/s}."""
    from harness.cli.common import DEFAULT_THREADS
    from harness.errors import HarnessError
    from harness.measure.ab import MeasurementError, figures
    from harness.measure.peers import peer_command, run_peer
    tests = [t for t in ((w.n_prompt, 0), (0, w.n_gen)) if t[0] or t[1]]
    cmd = peer_command(peer, w.model, w.threads or DEFAULT_THREADS, 512, 0, tests, w.repetitions)
    try:
        return figures(json.dumps(run_peer(peer, cmd)), w.statistic)
    except HarnessError as e:          # the peer failed: as a revision that does not measure
        raise MeasurementError(str(e)) from None


def run_ab_command(a, revs: list[str], workloads: list, policy) -> "object":
    """Build each revision (cached) and measure them interleaved; an arm given as ENGINE=PATH is a
    peer engine's llama-bench on the same files (llama-bench=PATH HEAD: is HEAD slower than llama.cpp?)."""
    from harness.measure.ab import bench_process, run_ab
    from harness.measure.bisect import repo_top
    from harness.measure.builds import Revision, build, resolve_revision
    peers = _peer_arms(revs, getattr(a, "peer_args", None))
    try:
        repo = repo_top(Path(a.repo)) if len(peers) < len(revs) else None
        revisions = [Revision(spec, f"peer-{peers[i].engine}",
                              " ".join([f"{peers[i].engine} ({peers[i].binary})", *peers[i].extra]))
                     if i in peers else resolve_revision(repo, spec) for i, spec in enumerate(revs)]
    except UsageError as e:          # not a repository, not a commit: bad arguments
        raise BadArgumentError(str(e)) from None
    system = _check_machine(a, policy, workloads[0].threads)
    builds = {i: build(repo, r, build_command=a.build_command, rebuild=a.rebuild, log=_log)
              for i, r in enumerate(revisions) if i not in peers}
    for b in builds.values():
        _log(f"{b.revision.label}: {'cached build' if b.reused else f'built in {b.seconds:.0f} s'} ({b.path})")

    def measure(i, w, rnd):
        return measure_peer(peers[i], w) if i in peers else bench_process(w, builds[i].path, policy.pad(rnd))
    result = run_ab(revisions, workloads, measure, policy, log=_log)
    result.builds = [{"revision": b.revision.spec, "path": str(b.path), "reused": b.reused,
                      "seconds": round(b.seconds, 1)} if i in builds else
                     {"revision": revs[i], "path": peers[i].binary, "reused": True, "seconds": 0.0, "peer": peers[i].engine}
                     for i, b in ((i, builds.get(i)) for i in range(len(revs)))]
    result.system = system
    _save_noise(result.noise, workloads, policy.layout)
    return result


def _save_noise(floors, workloads, layout: str) -> None:
    from harness.store import noise_records
    from harness.store.baselines import machine_key
    by_label = {w.label: w for w in workloads}
    noise_records.save([noise_records.record(machine_key(), by_label[f.model].model, f.test, f.threads, f.sd_log,
                                             f.rounds, layout, by_label[f.model].statistic) for f in floors])


def write_outputs(result, out_dir: Path) -> list[Path]:
    """ab.json, summary.md and, where their modules exist, the dashboard exports and ab.html."""
    from harness.atomic import atomic_write_text
    from harness.report.ab_tables import format_ab_markdown
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []

    def put(name: str, text: str) -> None:
        atomic_write_text(out_dir / name, text)
        written.append(out_dir / name)

    put("ab.json", json.dumps(result.as_dict(), indent=1))
    links = {}
    try:
        from harness.report import exports
        for name, make, check in (("github-action-benchmark.json", exports.github_action_benchmark,
                                   exports.validate_github_action_benchmark),
                                  ("bencher.json", exports.bencher_bmf, exports.validate_bencher_bmf)):
            data = make(result)
            try:
                check(data)                  # what the dashboard would refuse is not written
            except ValueError as e:
                _log(f"harness: warning: {name} not written: {e}")
                continue
            put(name, json.dumps(data, indent=1, allow_nan=False))
    except ImportError:
        pass
    try:
        from harness.report.ab_html import write_ab_report
        written.append(write_ab_report(result, out_dir))
        links["report (ab.html)"] = "ab.html"
    except ImportError:
        pass
    put("summary.md", format_ab_markdown(result, links))
    return written


def _finish(a, result) -> int:
    from harness.report.ab_tables import format_ab_text
    print(format_ab_text(result))
    if a.json:
        Path(a.json).write_text(json.dumps(result.as_dict(), indent=1))
    if a.output:
        for p in write_outputs(result, Path(a.output)):
            _log(f"wrote {p}")
    return result.exit_code


def _with_sigterm(fn):
    old = signal.signal(signal.SIGTERM, signal.default_int_handler)   # a kill ends like Ctrl-C
    try:
        return fn()
    finally:
        signal.signal(signal.SIGTERM, old)


def cmd_ab(a) -> int:
    revs, models = _split_positionals(a.items)
    if len(revs) < 2:
        raise BadArgumentError("give at least two revisions: BASE HEAD [HEAD2 ...] (git revisions or WORKTREE)")
    policy = _policy(a)
    workloads = _workloads(a, models)
    return _with_sigterm(lambda: _finish(a, run_ab_command(a, revs, workloads, policy)))


def cmd_ci(a) -> int:
    from harness.measure.ab import Workload
    from harness.model.synth import cached_model
    policy = _policy(a)
    if a.threads is not None and a.threads > len(available_cpus()):
        raise BadArgumentError(f"-t {a.threads} is more than the {len(available_cpus())} CPUs available")
    grid = [Workload(cached_model(p, q), f"{p} {q}", n_prompt=a.n_prompt, n_gen=a.n_gen, threads=a.threads,
                     repetitions=a.repetitions, statistic=a.statistic) for p, q in CI_GRID if p in a.presets]
    if not grid:
        raise BadArgumentError(f"--presets: none of {', '.join(sorted({p for p, _ in CI_GRID}))}")
    a.json = None
    return _with_sigterm(lambda: _finish(a, run_ab_command(a, [a.base, a.head], grid, policy)))


def cmd_noise(a) -> int:
    from harness.analysis.stats import parse_threshold
    from harness.measure.ab import bench_process, run_noise
    from harness.report.ab_tables import format_noise_text
    _, models = _split_positionals(a.items)
    if len(models) != len(a.items):
        raise BadArgumentError(f"not a model file: {', '.join(x for x in a.items if x not in models)}")
    workloads = _workloads(a, models)
    try:
        threshold = parse_threshold(a.threshold)
    except UsageError as e:
        raise BadArgumentError(str(e)) from None
    at = sorted({int(x) for x in a.at_rounds.split(",") if x.strip()} if a.at_rounds else {6, 10, 20})
    if any(n < 2 for n in at):
        raise BadArgumentError("--at-rounds: each count must be >= 2")
    system = {}
    try:
        from harness.measure.system_state import check_before_measuring
        state = check_before_measuring(max(threshold, 0.01), a.threads or len(available_cpus()), a.strict, _log)
        system = state.as_dict() if hasattr(state, "as_dict") else {}
    except ImportError:
        pass
    from harness.measure.ab import Policy
    policy = Policy(seed=a.seed, layout=a.layout)
    result = _with_sigterm(lambda: run_noise(workloads, lambda w, rnd: bench_process(w, None, policy.pad(rnd)),
                                             a.rounds, a.level, threshold, at, seed=a.seed, log=_log))
    result.system = system
    _save_noise(result.floors, workloads, policy.layout)
    print(format_noise_text(result))
    if a.json:
        Path(a.json).write_text(json.dumps(result.as_dict(), indent=1))
    return 0


def _measure_args(s, n_prompt: int, n_gen: int, repetitions: int, statistic: str = "best") -> None:
    s.add_argument("-p", "--n-prompt", type=nonneg_int, default=n_prompt)
    s.add_argument("-n", "--n-gen", type=nonneg_int, default=n_gen)
    s.add_argument("-t", "--threads", type=positive_int, default=None, help="engine threads (default: the engine's)")
    s.add_argument("-r", "--repetitions", type=positive_int, default=repetitions,
                   help="timed repetitions inside each measurement process")
    s.add_argument("--statistic", default=statistic, choices=["best", "median"],
                   help=f"one process's figure: its fastest repetition (a VM's noise only ever slows a repetition "
                        f"down) or their median, as compare judges single runs (default {statistic})")
    s.add_argument("--seed", type=int, default=0, help="the random block orders")
    s.add_argument("--level", type=float, default=0.95, help="confidence of all verdicts together (default 0.95)")
    s.add_argument("--strict", action="store_true", help="refuse to measure when the machine is not quiet enough")
    s.add_argument("--layout", default="random", choices=["random", "matched"],
                   help="random (default): each measurement process its own address layout (ASLR), so layout luck "
                        "averages out; matched: address randomization off and one random layout per round, shared "
                        "by the revisions in it (less noise where the layout is what varies, but a layout bias "
                        "between builds does not average out)")


def _ab_args(s, threshold: str, rounds: int, budget: float, min_rounds: int) -> None:
    s.add_argument("--threshold", default=threshold,
                   help=f"a significant slowdown beyond this fails (exit 1; default {threshold.replace('%', '%%')})")
    s.add_argument("--rounds", type=positive_int, default=rounds, help=f"paired rounds at most (default {rounds})")
    s.add_argument("--min-rounds", type=positive_int, default=min_rounds,
                   help=f"rounds before stopping early (default {min_rounds}; the signed-rank interval needs about 8 "
                        "rounds for two tests, 10 for eight)")
    s.add_argument("--aa-rounds", type=nonneg_int, default=2,
                   help="A/A rounds of BASE against itself first: the noise floor (default 2; 0 for none)")
    s.add_argument("--time-budget", type=float, default=budget, metavar="SECONDS",
                   help=f"no new block of rounds past this (default {budget:g} s)")
    s.add_argument("--repo", default=".", help="the git repository (default: the current directory)")
    s.add_argument("--rebuild", action="store_true", help="build again even when a cached build exists")
    s.add_argument("--build-command", default="{python} setup.py build_ext --inplace",
                   help="how a revision is built in its cached tree (default: %(default)s)")
    s.add_argument("-o", "--output", metavar="DIR", default=None,
                   help="write ab.json, summary.md (GitHub job summary), the dashboard exports and ab.html here")


def add_parsers(sub) -> None:
    from harness.model.presets import PRESETS
    s = sub.add_parser(
        "ab", help="interleaved A/B of git revisions (or WORKTREE): paired verdicts with intervals; exit 1 "
                   "on a significant slowdown",
        description="Builds each revision once (cached under the harness cache), then measures them in one "
                    "sitting in randomized mirrored blocks (A B | B A), each measurement a fresh process, and "
                    "judges HEAD/BASE on the paired per-round ratios. The first rounds are A/A (BASE against "
                    "itself): the noise floor. Stops early once every verdict is clear. Revisions: anything git "
                    "rev-parse takes, or WORKTREE (the working tree with its uncommitted changes), or a peer "
                    "engine's llama-bench as llama-bench=PATH / ik=PATH (`harness ab llama-bench=PATH HEAD`: is "
                    "our HEAD slower than llama.cpp on this file?); more than two give one table, each against "
                    "the first.")
    s.add_argument("items", nargs="+", metavar="BASE HEAD [...] [MODEL]",
                   help="revisions (or llama-bench=PATH, ik=PATH), then optionally a GGUF file (or use --preset)")
    s.add_argument("--preset", choices=list(PRESETS), help="synthetic model, made once with the current code")
    s.add_argument("--quant", default="q4_k_m", help="with --preset; a comma list measures each")
    _measure_args(s, 64, 32, 3)
    _ab_args(s, "2%", 20, 300, 8)
    s.add_argument("--peer-args", action="append", metavar="NAME=ARGS",
                   help="extra flags for a peer arm, e.g. 'ik=-rtr 1' (repeatable)")
    s.add_argument("--json", metavar="FILE", help="also write the result as JSON")
    s.set_defaults(func=cmd_ab)

    s = sub.add_parser(
        "noise", help="A/A: this machine's run-to-run spread per test and the smallest change ab can detect",
        description="Measures the current code twice per round, each measurement a fresh process, and gives "
                    "each test's run-to-run spread and the minimal detectable effect (the slowdown `harness ab` "
                    "calls significant 9 times in 10) at several round counts. Kept per machine, model and test "
                    "for `harness compare`, which judges each run's median repetition: so the default here is "
                    "--statistic median; --statistic best measures what `harness ab` judges by default.")
    s.add_argument("items", nargs="*", metavar="MODEL", help="GGUF files (or use --preset)")
    s.add_argument("--preset", choices=list(PRESETS))
    s.add_argument("--quant", default="q4_k_m", help="with --preset; a comma list measures each")
    _measure_args(s, 64, 32, 3, statistic="median")
    s.add_argument("--rounds", type=positive_int, default=10, help="A/A rounds (default 10)")
    s.add_argument("--threshold", default="0%", help="the threshold ab would use, for the MDE (default 0%%)")
    s.add_argument("--at-rounds", default="", help="round counts to give the MDE at (default 6,10,20)")
    s.add_argument("--json", metavar="FILE", help="also write the result as JSON")
    s.set_defaults(func=cmd_noise)

    s = sub.add_parser(
        "ci", help="the CI gate: ab of BASE and HEAD on a fixed grid (tiny and 0.8b, Q4_K_M and Q8_0, pp and "
                   "tg), a report, a GitHub job summary and dashboard exports; exit 1 on a significant slowdown")
    s.add_argument("--base", required=True, help="e.g. origin/main")
    s.add_argument("--head", default="HEAD", help="default HEAD (or WORKTREE)")
    s.add_argument("--presets", default="tiny,0.8b", type=lambda t: [x.strip() for x in t.split(",") if x.strip()],
                   help="which shapes of the grid (default tiny,0.8b)")
    _measure_args(s, 64, 16, 3)
    _ab_args(s, "3%", 12, 420, 10)
    s.set_defaults(func=cmd_ci)
