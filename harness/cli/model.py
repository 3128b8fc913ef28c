"""`harness info`, `harness synth` and `harness logits`: look into a model file, make one, run one."""
from __future__ import annotations

import sys
import time

import numpy as np

from harness.cli.common import add_engine_args, session_layout_kwargs, check_threads, nonneg_int, parse_tokens, positive_int, quant_arg
from harness.cli.text import add_prompt_args
from harness.errors import BadArgumentError


def cmd_info(a) -> int:
    from harness.model.loader import load_model
    from harness.report.model_info import model_info
    with load_model(a.model) as m:
        print(model_info(m, tensors=not a.no_tensors))
    return 0


def cmd_synth(a) -> int:
    from harness.model.synth import synthesize

    last = [0.0]

    def progress(done, total):
        now = time.perf_counter()
        if now - last[0] > 1.0 or done == total:
            last[0] = now
            print(f"\r  {done / 2**20:9.1f} / {total / 2**20:.1f} MiB", end="", file=sys.stderr, flush=True)

    from harness.model.presets import get_preset
    shape = get_preset(a.preset)
    if a.mtp:
        shape = shape.with_(n_mtp=1)
    if a.layers is not None:
        # every layer keeps the preset's shapes; the full-attention layers stay every Ith one
        shape = shape.with_(n_layer=a.layers)
    r = synthesize(shape, a.quant, a.output, seed=a.seed, threads=a.threads,
                   progress=progress if sys.stderr.isatty() else None, tensor_types=tuple(a.tensor_type or ()),
                   tokenizer=a.tokenizer, tokenizer_pre=a.tokenizer_pre)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(f"wrote {r.path}: {r.bytes / 2**20:.1f} MiB of weights in {r.seconds:.1f} s")
    return 0


def cmd_logits(a) -> int:
    from harness.model.loader import load_model
    if a.engine == "native":
        check_threads(a)
    from harness.cli.text import prompt_ids
    if (a.tokens is None) == (a.prompt is None and a.file is None):
        raise BadArgumentError("give --tokens IDS or a text: -p/--prompt TEXT or -f/--file FILE")
    tokens = parse_tokens(a.tokens) if a.tokens is not None else None
    with load_model(a.model) as m:
        if tokens is None:
            tokens = prompt_ids(a, m)
        if a.engine == "reference":
            from harness.engine.reference import reference_logits
            logits = reference_logits(m, tokens, mode=a.mode).astype(np.float32)
        else:
            from harness.engine.session import Session
            with Session(m, isa=a.isa, threads=a.threads, ubatch=a.ubatch, fdn_threshold=a.fdn,
                         ctx=max(len(tokens), 1), vocab_strategy=a.vocab_strategy, **session_layout_kwargs(a)) as s:
                if a.mode == "prefill":
                    logits = s.prefill(tokens)
                else:
                    logits = np.stack([s.decode(t) for t in tokens])
    np.save(a.out, logits)
    print(f"wrote {a.out}: float32 {list(logits.shape)} ({a.engine}, {a.mode})")
    return 0


def add_parsers(sub) -> None:
    from harness.model.presets import PRESETS
    from harness.model.synth import QUANTS

    s = sub.add_parser("info", help="config, layer kinds, tensor table and bytes per token of a GGUF")
    s.add_argument("model")
    s.add_argument("--no-tensors", action="store_true", help="leave out the tensor table")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("synth", help="write a GGUF with real Qwen3.5 shapes and seeded random weights")
    s.add_argument("--preset", required=True, choices=list(PRESETS))
    s.add_argument("--quant", required=True, type=quant_arg,
                   help=f"{', '.join(QUANTS)}; optionally +GROUP=TYPE overrides (groups: deltanet, attn, ffn, head), "
                        "e.g. nvfp4+deltanet=bf16")
    s.add_argument("--tensor-type", action="append", metavar="REGEX=TYPE",
                   help="as llama-quantize's --tensor-type: tensors whose name matches REGEX get TYPE; repeatable, "
                        "applied after --quant, e.g. 'attn_qkv|attn_gate|ssm_out=bf16'")
    s.add_argument("--seed", type=nonneg_int, default=0)
    s.add_argument("--layers", type=positive_int, default=None, metavar="N",
                   help="only the first N layers of the preset, each of its real shape (the full-attention "
                        "layer stays every 4th); for big shapes on small machines")
    s.add_argument("--mtp", action="store_true",
                   help="add the MTP block real checkpoints carry (blk.N.nextn.*; for generate --draft mtp)")
    s.add_argument("--tokenizer", metavar="TOKENIZER_JSON", default=None,
                   help="carry this Hugging Face byte-level BPE tokenizer.json (as llama.cpp's converter "
                        "writes it; ids beyond it are [PAD] tokens); default: no tokenizer")
    s.add_argument("--tokenizer-pre", default="qwen35", choices=["qwen35", "qwen2"],
                   help="tokenizer.ggml.pre to write (default qwen35, as real Qwen3.5 files)")
    s.add_argument("-o", "--output", required=True)
    s.add_argument("-t", "--threads", type=positive_int, default=None, help="quantization threads (default: all cores)")
    s.set_defaults(func=cmd_synth)

    s = sub.add_parser("logits", help="logits of a token sequence, saved as float32 [n_tokens, n_vocab]")
    s.add_argument("model")
    s.add_argument("--tokens", default=None, help="comma-separated ids, or @FILE")
    add_prompt_args(s)
    s.add_argument("--engine", default="native", choices=["native", "reference"],
                   help="native = the C engine; reference = float64 numpy")
    s.add_argument("--mode", default="prefill", choices=["prefill", "decode"])
    add_engine_args(s)
    s.add_argument("--out", required=True, help="output .npy")
    s.set_defaults(func=cmd_logits)
