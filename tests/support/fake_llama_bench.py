"""A stand-in for a peer's llama-bench: a script that parses the flags the harness gives it and
prints llama-bench JSON (-o json) built on a real llama-bench record (llama.cpp 0c1e570's output on
the synthetic 0.8b Q4_K_M file), so the sweep's and sweep-depth's peer paths run without the binary.
Each call's arguments go to $FAKE_LOG (one JSON list per line). Asked for 3 threads it fails the way
a peer fails: exit status 1 and an error line. With -fa 1 its pp samples spread 30%."""
import json
import stat
import sys
import textwrap
from pathlib import Path

from support.paths import ROOT

RECORD = ROOT / "reports" / "comparisons" / "2026-11-23-llama.cpp-0.8b" / "llama-q4_k_m-1.json"

SCRIPT = textwrap.dedent('''\
    #!{python}
    import json, os, sys
    a = sys.argv[1:]
    opt = {{a[i]: a[i + 1] for i in range(0, len(a) - 1, 2)}}
    with open(os.environ["FAKE_LOG"], "a") as f:
        f.write(json.dumps(a) + "\\n")
    if opt.get("-t") == "3":
        print("error: fake llama-bench cannot run 3 threads", file=sys.stderr)
        sys.exit(1)
    recs = []
    base = dict({fields})
    base.update(model_filename=opt["-m"], n_threads=int(opt["-t"]), n_ubatch=int(opt["-ub"]),
                flash_attn=int(opt.get("-fa", -1)), build_commit="fake123")
    for d in opt.get("-d", "0").split(","):
        slow = 1.0 / (1.0 + int(d) / 1000.0)          # slower with depth, as attention reads more
        wide = 30.0 if opt.get("-fa") == "1" else 1.0  # -fa 1 rows: a spread too wide to judge
        for p in opt["-p"].split(","):
            if int(p):
                recs.append(dict(base, n_depth=int(d), n_prompt=int(p), n_gen=0, avg_ts=100.0 * slow,
                                 samples_ts=[(100.0 - wide) * slow, 100.0 * slow, (100.0 + wide) * slow]))
        for n in opt["-n"].split(","):
            if int(n):
                recs.append(dict(base, n_depth=int(d), n_prompt=0, n_gen=int(n), avg_ts=10.0 * slow,
                                 samples_ts=[9.9 * slow, 10.0 * slow, 10.1 * slow]))
    print(json.dumps(recs, indent=2))
    ''')


def write_fake_llama_bench(directory: Path) -> Path:
    from harness.store import llama_bench_format as fmt
    rec = json.loads(RECORD.read_text())[0]
    fields = {k: v for k, v in rec.items() if k in fmt.FIELDS}
    path = Path(directory) / "llama-bench"
    path.write_text(SCRIPT.format(python=sys.executable, fields=repr(fields)))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path
