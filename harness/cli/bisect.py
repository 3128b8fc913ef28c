"""`harness bisect`: the command line of harness.measure.bisect."""
from __future__ import annotations

import os
import signal
from pathlib import Path

from harness.measure.bisect import (DEFAULT_BUILD, DEFAULT_MEASURE, PLACEHOLDERS, UNDECIDED_POLICIES, BisectConfig,
                                    Policy, expand, first_parent_path, parse_threshold, repo_top, resolve_lengths,
                                    resolve_rev, run_bisect)
from harness.cli.common import available_cpus, quant_arg
from harness.errors import UsageError


def _bench_args(a, n_prompt: int, n_gen: int) -> list[str]:
    """The bench options every step passes; engine options only when given, so that older
    commits whose bench lacks one still run with their defaults."""
    args = ["-p", str(n_prompt), "-n", str(n_gen), "-r", str(a.repetitions), "-t", str(a.threads)]
    for flag, value in (("--isa", a.isa), ("--ubatch", a.ubatch), ("--fdn", a.fdn)):
        if value is not None:
            args += [flag, str(value)]
    return args


def _config(a) -> BisectConfig:
    repo = repo_top(Path(a.repo))
    metric, n_prompt, n_gen = resolve_lengths(a.metric, a.n_prompt, a.n_gen)
    threshold = parse_threshold(a.threshold)
    if a.repetitions < 1 or a.threads < 1:
        raise UsageError("-r and -t must be >= 1")
    # each commit's own `harness bench` measures; newer ones refuse -t beyond the CPUs and older ones
    # know no --force, so the bisection refuses it here, for every commit alike
    if a.threads > len(available_cpus()):
        raise UsageError(f"-t {a.threads} is more than the {len(available_cpus())} CPUs available to this process: "
                         "the threads would wait on each other and every commit would look alike")
    Policy(threshold, a.min_rounds, a.max_rounds, a.time_budget, a.undecided).check()
    good, bad = resolve_rev(repo, a.good), resolve_rev(repo, a.bad)
    first_parent_path(repo, good, bad)       # good must be an ancestor of bad, and differ from it
    if a.model and a.preset:
        raise UsageError("give a MODEL path or --preset, not both")
    model = None
    if a.model:
        if not os.path.isfile(a.model):
            raise UsageError(f"model file {a.model!r} does not exist")
        model = os.path.abspath(a.model)
    elif a.preset:
        from harness.model.synth import cached_model    # made once, with this tree's code, for every commit
        model = cached_model(a.preset, a.quant)
    elif "{model}" in a.command:
        raise UsageError("give a MODEL path or --preset (the measurement command uses {model})")
    for template in (a.command, a.build_command):   # unknown placeholders fail here, not mid-run
        expand(template, {k: "" for k in PLACEHOLDERS})
    return BisectConfig(repo=repo, good=good, bad=bad, metric=metric, threshold=threshold,
                        n_prompt=n_prompt, n_gen=n_gen, model=model,
                        bench_args=_bench_args(a, n_prompt, n_gen),
                        measure_command=a.command, build_command=a.build_command,
                        min_rounds=a.min_rounds, max_rounds=a.max_rounds, time_budget=a.time_budget,
                        undecided=a.undecided)


def cmd_bisect(a) -> int:
    try:
        cfg = _config(a)
    except UsageError as e:
        a.parser.error(str(e))       # one line, exit status 2
    # a kill (SIGTERM) cleans up the worktrees like Ctrl-C does
    old = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        return run_bisect(cfg).exit_code
    finally:
        signal.signal(signal.SIGTERM, old)


def add_parsers(sub) -> None:
    from harness.model.presets import PRESETS
    from harness.model.synth import QUANTS
    s = sub.add_parser(
        "bisect", help="find the first commit where a pp/tg metric fell by more than a threshold",
        description="Binary search over `git rev-list --first-parent GOOD..BAD`: each step builds the commit "
                    "in a temporary worktree and measures it with its own code on one model file, interleaved "
                    "with the good commit in rounds, until the interval of the median ratio commit/good lies on "
                    "one side of 1 - threshold (or the rounds or time run out). The culprit is re-checked against "
                    "its parent; one that changes no built code (only docs, tests, ...) is not blamed. "
                    "Exit 0: culprit found; 1: none (the bad commit is not slower, the culprit is not isolable, "
                    "not confirmed, or changes no built code); 2: bad arguments.")
    s.add_argument("model", nargs="?", help="GGUF file measured at every commit (or use --preset)")
    s.add_argument("--good", required=True, help="a commit with the old speed")
    s.add_argument("--bad", required=True, help="a later commit that is slower")
    s.add_argument("--metric", default=None, help="ppN or tgN (default: from -n / -p, else tg128)")
    s.add_argument("--threshold", default="5%", help="a fall of more than this makes a commit bad (default 5%%)")
    s.add_argument("--repo", default=".", help="the git repository (default: the current directory)")
    s.add_argument("--preset", choices=list(PRESETS), help="synthetic model, made once with the current code")
    s.add_argument("--quant", default="q4_k_m", type=quant_arg, help=f"with --preset: {', '.join(QUANTS)}, optionally +GROUP=TYPE")
    s.add_argument("-p", "--n-prompt", type=int, default=None)
    s.add_argument("-n", "--n-gen", type=int, default=None)
    s.add_argument("-r", "--repetitions", type=int, default=3)
    s.add_argument("-t", "--threads", type=int, default=2)
    s.add_argument("--isa", default=None, choices=["auto", "scalar", "avx2", "avx512", "neon"])
    s.add_argument("--ubatch", type=int, default=None)
    s.add_argument("--fdn", type=int, default=None)
    s.add_argument("--min-rounds", type=int, default=2,
                   help="rounds (one measurement of the commit and one of the good commit) per step, at least "
                        "(default 2, the least that gives an interval)")
    s.add_argument("--max-rounds", type=int, default=5,
                   help="rounds per step at most, while the verdict is unclear (default 5)")
    s.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                   help="no new round after this many seconds in a step (after --min-rounds; default: none)")
    s.add_argument("--undecided", default="median", choices=UNDECIDED_POLICIES,
                   help="a step still unclear after its rounds: decided by the median ratio, or skipped "
                        "(default median; the final re-check is never decided by the median)")
    s.add_argument("--command", default=DEFAULT_MEASURE,
                   help="measurement, run in the commit's worktree with PYTHONPATH=<worktree>; it prints "
                        "llama-bench-style JSON records or one tokens/s figure. Placeholders: {python} "
                        "{worktree} {model} {bench_args} {n_prompt} {n_gen} (default: %(default)s)")
    s.add_argument("--build-command", default=DEFAULT_BUILD,
                   help="build step in the worktree; a failure skips the commit; '' for none "
                        "(default: %(default)s)")
    s.set_defaults(func=cmd_bisect, parser=s)
