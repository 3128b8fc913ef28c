"""`harness compare` and a busy machine (issue 15, item 4): a pair with a side flagged machine_busy
is never called slower or faster (nor fails the gate): its verdict is "machine busy"; another verdict
stands, marked with the busy side the way a wide spread is marked; results without the column are
judged as before. One run per side: judged against a noise record of 2% run-to-run spread."""
from support import results_factory as rf

from harness.analysis.compare import MACHINE_BUSY, compare_frames, format_text
from harness.analysis.stats import NO_CHANGE, SLOWER


NOISE = (lambda r: (0.02 * 2 ** 0.5, 10, "noise record"))


def test_compare_does_not_judge_a_pair_with_a_busy_side():
    tight = [100.0, 101.0, 99.0, 100.5, 99.5]
    base = rf.frame([rf.row(n_gen=16, samples=tight), rf.row(n_prompt=64, n_gen=0, samples=tight)])
    new = rf.frame([rf.row(n_gen=16, samples=[x * 0.5 for x in tight], commit="b" * 40),
                    rf.row(n_prompt=64, n_gen=0, samples=tight, commit="b" * 40)])
    c = compare_frames(base, new, 0.05, noise_of=NOISE)                       # without the column: judged as before
    assert dict(zip(c.table["test"], c.table["verdict"])) == {"tg16": SLOWER, "pp64": NO_CHANGE}

    base["machine_busy"] = [False, False]
    new["machine_busy"] = ["True", False]                     # as text, as a CSV may hold it
    new["busy_note"] = ["machine busy: other processes took 1.9 of the 2 CPU(s)", ""]
    c = compare_frames(base, new, 0.05, noise_of=NOISE)
    t = c.table.set_index("test")
    assert t.loc["tg16", "verdict"] == MACHINE_BUSY and t.loc["tg16", "stat_verdict"] == SLOWER
    assert t.loc["pp64", "verdict"] == NO_CHANGE
    assert c.exit_status() == 0 and c.count(SLOWER) == 0
    text = format_text(c, "base", "new")
    assert "SLOWER" not in text and "FASTER" not in text
    assert "machine busy on the NEW side: not judged (the figures alone: slower)" in text
    assert "1 not judged: machine busy when measured" in text

    base["machine_busy"] = [True, float("nan")]               # both sides busy; nan = not known to be
    t = compare_frames(base, new, 0.05, noise_of=NOISE).table.set_index("test")
    assert t.loc["tg16", "busy"] == "both" and t.loc["pp64", "verdict"] == NO_CHANGE

    new["machine_busy"] = [False, True]                       # no change on a busy side: stands, marked
    c = compare_frames(base, new, 0.05, noise_of=NOISE)
    t = c.table.set_index("test")
    assert t.loc["pp64", "verdict"] == NO_CHANGE and t.loc["pp64", "busy"] == "NEW"
    assert t.loc["tg16", "verdict"] == MACHINE_BUSY and t.loc["tg16", "busy"] == "BASE"
    line = next(ln for ln in format_text(c, "base", "new").splitlines() if "pp64" in ln)
    assert "no significant change (could have detected >= " in line and line.endswith("(machine busy on the NEW side)")
