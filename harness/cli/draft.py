"""`harness draft-cost`: the cost model of MTP speculative decoding, measured on one file, charted
against the acceptance rate; with a text, real `generate --draft mtp` runs sit on the chart."""
from __future__ import annotations

import json

from harness.cli.common import add_model_arg, add_threads_arg, check_threads, positive_int
from harness.cli.text import add_prompt_args, prompt_ids
from harness.errors import BadArgumentError, UsageError


def ks_arg(text: str) -> tuple[int, ...]:
    import argparse
    try:
        ks = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected draft sizes such as 1,2,3,4, got {text!r}") from None
    if not ks or min(ks) < 1 or max(ks) > 16:
        raise argparse.ArgumentTypeError(f"draft sizes must be in 1..16, got {text!r}")
    return ks


def cmd_draft_cost(a) -> int:
    from pathlib import Path

    from harness.engine.session import Session, mtp_bindings
    from harness.engine.speculative import MTPDrafter, generate_speculative
    from harness.measure.draft_cost import format_draft_cost, measure_draft_cost
    from harness.model.loader import load_model
    from harness.model.synth import cached_model

    check_threads(a)
    if (a.model is None) == (a.preset is None):
        raise BadArgumentError("give a MODEL path or --preset (synthesized with an MTP block on first use)")
    path = a.model or cached_model(a.preset, a.quant, mtp=True)
    with load_model(path) as m:
        mtp_bindings(m)                     # a file without an MTP block: one line, before measuring
        ids = prompt_ids(a, m)
        cost = measure_draft_cost(m, a.draft_n, depth=a.depth, threads=a.threads, repetitions=a.repetitions,
                                  isa=a.isa)
        measured = []
        if ids is not None:
            ctx = len(ids) + a.n_predict
            with Session(m, isa=a.isa, threads=a.threads, ctx=ctx) as s, \
                    Session(m, isa=a.isa, threads=a.threads, ctx=ctx, block="mtp") as ms:
                for k in a.draft_n:
                    g, st = generate_speculative(s, MTPDrafter(ms), ids, a.n_predict, k)
                    if st.drafted:
                        measured.append({"k": k, "acceptance": st.acceptance, "gen_tps": g.gen_tps,
                                         "n_gen": len(g.ids), "predicted_tps": cost.effective_tps(k, st.acceptance)})
    text = format_draft_cost(cost, measured=measured)
    print(text)
    if a.output:
        out = Path(a.output)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UsageError(f"cannot make {out}: {e.strerror}") from None
        from harness.report.charts import draft_cost_chart
        (out / "draft-cost.json").write_text(json.dumps({**cost.as_dict(), "measured": measured}, indent=2) + "\n")
        (out / "draft-cost.md").write_text(text + "\n")
        draft_cost_chart(cost, out / "draft-cost.png", measured)
        print(f"wrote {out}/draft-cost.json, draft-cost.md and draft-cost.png")
    return 0


def add_parsers(sub) -> None:
    s = sub.add_parser("draft-cost", help="cost model of MTP speculative decoding: verify and draft times, "
                                          "effective tokens/s against the acceptance rate")
    add_model_arg(s)
    s.add_argument("-k", "--draft-n", type=ks_arg, default=(1, 2, 3, 4), help="draft sizes (default 1,2,3,4)")
    s.add_argument("-d", "--depth", type=positive_int, default=64, help="context tokens before the step (default 64)")
    s.add_argument("-r", "--repetitions", type=positive_int, default=5)
    s.add_argument("--isa", default="auto")
    add_threads_arg(s)
    add_prompt_args(s)
    s.add_argument("-n", "--n-predict", type=positive_int, default=64,
                   help="with a text: tokens generated per draft size for the measured points (default 64)")
    s.add_argument("-o", "--output", metavar="DIR", help="also write draft-cost.json, .md and .png there")
    s.set_defaults(func=cmd_draft_cost)
