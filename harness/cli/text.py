"""`harness tokenize` (a file's own tokenizer on text, with llama-tokenize's flags and output) and
`harness generate` (text in, text out on the native engine, with llama.cpp-style timings)."""
from __future__ import annotations

import json
import sys

from harness.errors import BadArgumentError


def read_text_bytes(a) -> bytes:
    """The text of -p / -f / --stdin as bytes, escapes processed unless --no-escape (as llama.cpp's
    tools do for all three); a file is read as its bytes are."""
    from harness.model.tokenizer import process_escapes
    stdin = getattr(a, "stdin", False)
    given = [x for x in (a.prompt is not None, a.file is not None, stdin) if x]
    if len(given) != 1:
        raise BadArgumentError("give exactly one of -p/--prompt, -f/--file or --stdin")
    if a.file is not None:
        with open(a.file, "rb") as f:
            raw = f.read()
    elif stdin:
        raw = sys.stdin.buffer.read()
    else:
        raw = a.prompt.encode("utf-8", errors="surrogateescape")
    return process_escapes(raw) if getattr(a, "escape", True) else raw


def add_prompt_args(s, short: bool = True) -> None:
    """--prompt TEXT / --file FILE for a command that otherwise measures token ids (logits, quality,
    bench): the text, tokenized with the model's own tokenizer, replaces them. short: also -p / -f
    (bench keeps llama-bench's -p for the prompt length)."""
    s.add_argument(*(["-p"] if short else []), "--prompt", default=None,
                   help="a text, tokenized with the model's own tokenizer (escapes processed, specials parsed)")
    s.add_argument(*(["-f"] if short else []), "--file", default=None, help="the same, read from a file as its bytes are")


def prompt_source(a) -> str:
    """How a row names the text it ran on: the file's name, or 'prompt' for -p TEXT; '' for none."""
    import os
    if a.file is not None:
        return os.path.basename(a.file)
    return "prompt" if a.prompt is not None else ""


def prompt_ids(a, model) -> list[int] | None:
    """The ids of --prompt / --file with the model's tokenizer (a BOS where the file asks for one),
    or None when neither was given. BadArgumentError for an empty text, ModelFileError (from the
    model) for a file without a tokenizer we support."""
    if a.prompt is None and a.file is None:
        return None
    from harness.model.tokenizer import decode_utf8
    text = decode_utf8(read_text_bytes(a), "the prompt")
    ids = model.tokenizer().encode(text, parse_special=True)
    if not ids:
        raise BadArgumentError("the prompt has no tokens")
    return ids


def open_tokenizer(path: str):
    from harness.model.gguf_reader import read_gguf
    from harness.model.tokenizer import tokenizer_from_metadata
    g = read_gguf(path)
    try:
        return tokenizer_from_metadata(g.metadata, g.path)
    finally:
        g.close()


def cmd_tokenize(a) -> int:
    from harness.model.tokenizer import decode_utf8
    raw = read_text_bytes(a)
    tok = open_tokenizer(a.model)
    text = decode_utf8(raw, "the text")
    ids = tok.encode(text, parse_special=a.parse_special, add_bos=False if a.no_bos else None)
    out = sys.stdout.buffer
    if a.ids:
        out.write((json.dumps(ids) + "\n").encode())       # "[1, 2, 3]", as llama-tokenize --ids
    else:
        for i in ids:           # llama-tokenize's "%6d -> '%s'", control tokens rendered
            out.write(f"{i:6d} -> '".encode() + tok.piece(i, special=True) + b"'\n")
    if a.show_count:
        out.write(f"Total number of tokens: {len(ids)}\n".encode())
    out.flush()
    return 0


def cmd_generate(a) -> int:
    import codecs

    from harness.cli.common import session_layout_kwargs, check_threads
    from harness.engine.generate import generate
    from harness.engine.session import Session
    from harness.model.loader import load_model
    from harness.model.tokenizer import decode_utf8

    check_threads(a)
    if a.temp < 0:
        raise BadArgumentError(f"--temp must be >= 0, got {a.temp}")
    if a.draft == "mtp" and a.temp > 0:
        raise BadArgumentError("--draft mtp verifies greedy tokens: use it with --temp 0")
    prompt_text = decode_utf8(read_text_bytes(a), "the prompt")
    with load_model(a.model) as m:
        tok = m.tokenizer()
        if a.draft == "mtp":        # a file without an MTP block is refused before any output
            from harness.engine.session import mtp_bindings
            mtp_bindings(m)
        prompt = tok.encode(prompt_text, parse_special=a.parse_special)
        ctx = a.ctx or len(prompt) + a.n_predict
        out = sys.stdout
        stream = a.output == "text"
        text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        if stream:
            out.write(prompt_text)
            out.flush()

        def show(token_id: int) -> None:
            if stream:
                out.write(text.decode(tok.piece(token_id)))
                out.flush()

        kw = dict(isa=a.isa, threads=a.threads, ubatch=a.ubatch, fdn_threshold=a.fdn, ctx=ctx, **session_layout_kwargs(a))
        eog = () if a.ignore_eos else tok.eog_ids
        stats = None
        if a.draft == "mtp":
            from harness.engine.speculative import MTPDrafter, generate_speculative
            with Session(m, block="mtp", **kw) as ms, Session(m, vocab_strategy=a.vocab_strategy, **kw) as s:
                g, stats = generate_speculative(s, MTPDrafter(ms), prompt, a.n_predict, a.draft_n, eog_ids=eog,
                                                on_token=show)
        else:
            with Session(m, vocab_strategy=a.vocab_strategy, **kw) as s:
                g = generate(s, prompt, a.n_predict, temp=a.temp, seed=a.seed, eog_ids=eog, on_token=show)
    gen_text = tok.decode(g.ids)
    if stream:
        out.write(text.decode(b"", final=True) + "\n\n")
        print(f"prompt eval: {len(g.prompt_ids):6d} tokens in {g.prompt_seconds:8.3f} s "
              f"({g.prompt_tps:8.2f} tokens/s)")
        print(f"eval:        {g.n_eval:6d} tokens in {g.eval_seconds:8.3f} s ({g.gen_tps:8.2f} tokens/s)"
              f"   stop: {g.stop}, {len(g.ids)} tokens generated")
        if stats is not None:
            print(f"draft:       mtp, {stats.k} a step: {stats.steps} steps, {stats.accepted} of {stats.drafted} "
                  f"drafted tokens accepted ({100 * stats.acceptance:.1f}%), {stats.rewinds} rewinds; "
                  f"draft {stats.draft_seconds:.3f} s, verify {stats.verify_seconds:.3f} s, "
                  f"rewind {stats.rewind_seconds:.3f} s")
    else:
        print(json.dumps({"text": gen_text, "tokens": g.ids, "prompt_tokens": g.prompt_ids,
                          "n_prompt": len(g.prompt_ids), "n_gen": len(g.ids), "stop": g.stop,
                          "prompt_seconds": g.prompt_seconds, "eval_seconds": g.eval_seconds,
                          "prompt_tps": _finite(g.prompt_tps), "gen_tps": _finite(g.gen_tps),
                          "temp": a.temp, "seed": a.seed, "threads": a.threads, "isa": s.isa,
                          "draft": None if stats is None else dict(stats.as_dict(), kind="mtp")},
                         ensure_ascii=False))
    return 0


def cmd_perplexity(a) -> int:
    from harness.cli.common import session_layout_kwargs, check_threads
    from harness.engine.session import Session
    from harness.measure.perplexity import read_kld_base, run_perplexity
    from harness.model.loader import load_model
    from harness.model.tokenizer import decode_utf8, process_escapes

    check_threads(a)
    kld_model = a.kl_divergence if isinstance(a.kl_divergence, str) else None
    if a.kl_divergence is True and not a.kl_divergence_base:
        raise BadArgumentError("--kl-divergence without a model needs --kl-divergence-base FILE to read")
    if kld_model and a.kl_divergence_base:
        raise BadArgumentError("give --kl-divergence MODEL_BASE or --kl-divergence-base FILE, not both")
    base = read_kld_base(a.kl_divergence_base) if a.kl_divergence is True else None
    write_base = a.kl_divergence_base if (a.kl_divergence_base and base is None) else None
    if base is None:
        if a.file is None:
            raise BadArgumentError("-f/--file TEXT is needed (or --kl-divergence-base FILE --kl-divergence, "
                                   "whose file holds the tokens)")
        with open(a.file, "rb") as f:
            raw = f.read()
        raw = raw[:-1] if raw.endswith(b"\n") else raw     # as llama.cpp's -f: one final newline goes
        text = decode_utf8(process_escapes(raw) if a.escape else raw, "the text")
    n_ctx = base.n_ctx if base is not None else a.ctx
    if base is not None and a.ctx not in (None, base.n_ctx):
        raise BadArgumentError(f"-c {a.ctx} differs from the base file's n_ctx {base.n_ctx}")

    def log_chunk(i, n, ppl):
        if a.output == "text":
            print(f"[{i}]{ppl:.4f},", end="\n" if i == n else "", flush=True)

    def run(path, base_file, write):
        with load_model(path) as m:
            tok = m.tokenizer()
            if base_file is not None and base_file.n_vocab != m.config.vocab_size:
                raise BadArgumentError(f"the base file has a vocabulary of {base_file.n_vocab}, "
                                       f"{path} of {m.config.vocab_size}")
            ids = None if base_file is not None else tok.encode(text, parse_special=False)
            with Session(m, isa=a.isa, threads=a.threads, ubatch=a.ubatch, fdn_threshold=a.fdn,
                         ctx=n_ctx or 512, **session_layout_kwargs(a)) as s:
                return run_perplexity(s, ids, n_ctx or 512, bos_id=tok.bos_id if tok.add_bos else None,
                                      n_chunks=a.chunks, base=base_file, write_base=write,
                                      progress=log_chunk)

    if kld_model:       # the base model first, into a temporary base file, then this one against it
        import os
        import tempfile
        with tempfile.TemporaryDirectory() as d:
            tmp = os.path.join(d, "base.kld")
            run(kld_model, None, tmp)
            base = read_kld_base(tmp)
            res = run(a.model, base, None)
    else:
        res = run(a.model, base, write_base)
    summary = res.summary()
    if a.output == "json":
        print(json.dumps({k: _finite(v) if isinstance(v, float) else v for k, v in summary.items()}))
        return 0
    print(f"Final estimate: PPL = {summary['ppl']:.4f} +/- {summary['ppl_err']:.5f}   "
          f"({summary['n_chunk']} chunks of {summary['n_ctx']}, {summary['n_tokens_scored']} tokens scored, "
          f"{summary['seconds']:.1f} s)")
    if write_base:
        print(f"wrote the KL-divergence base {write_base} (llama-perplexity's format)")
    if "kld_mean" in summary:
        x = summary
        print(f"Mean PPL(Q)/PPL(base)     : {x['ppl_ratio']:10.6f} ± {x['ppl_ratio_err']:10.6f}")
        print(f"Mean ln(PPL(Q)/PPL(base)) : {x['ln_ppl_ratio']:10.6f} ± {x['ln_ppl_ratio_err']:10.6f}")
        print(f"Mean    KLD: {x['kld_mean']:10.6f} ± {x['kld_mean_err']:10.6f}")
        print(f"Median  KLD: {x['kld_median']:10.6f}   99.0%   KLD: {x['kld_p99']:10.6f}   "
              f"Maximum KLD: {x['kld_max']:10.6f}")
        print(f"Mean    Δp: {100 * x['dp_mean']:6.3f} ± {100 * x['dp_mean_err']:5.3f} %   "
              f"RMS Δp: {100 * x['dp_rms']:6.3f} %")
        print(f"Same top p: {100 * x['same_top_p']:6.3f} ± {100 * x['same_top_p_err']:5.3f} %")
    return 0


def _finite(x: float):
    return x if x == x else None


def add_text_args(s) -> None:
    s.add_argument("-p", "--prompt", default=None, help="the text")
    s.add_argument("-f", "--file", default=None, help="read the text from this file, byte for byte")
    s.add_argument("--stdin", action="store_true", help="read the text from standard input")
    s.add_argument("--no-escape", dest="escape", action="store_false",
                   help="take \\n, \\t, \\xHH ... literally (by default they are processed, as llama.cpp's "
                        "tools do, for -p, -f and --stdin alike)")


def add_parsers(sub) -> None:
    s = sub.add_parser("tokenize", help="token ids of a text with the file's own tokenizer (as llama-tokenize)")
    s.add_argument("model", help="a GGUF file with a tokenizer (tokenizer.ggml.model = gpt2)")
    add_text_args(s)
    s.add_argument("--ids", action="store_true", help="print only the ids, as a JSON list on the last line")
    s.add_argument("--no-parse-special", dest="parse_special", action="store_false",
                   help="tokenize control-token texts such as <|im_start|> as plain text")
    s.add_argument("--no-bos", action="store_true", help="never add a BOS token, even where the file asks for one")
    s.add_argument("--show-count", action="store_true", help="print the number of tokens")
    s.set_defaults(func=cmd_tokenize)

    from harness.cli.common import add_engine_args, nonneg_int, positive_int
    g = sub.add_parser("generate", help="text in, text out on the native engine (greedy by default), "
                                        "with prompt and generation tokens/s")
    g.add_argument("model", help="a GGUF file with a tokenizer")
    add_text_args(g)
    g.add_argument("-n", "--n-predict", type=positive_int, default=64, help="tokens to generate (default 64)")
    g.add_argument("--temp", type=float, default=0.0, help="sampling temperature (default 0: greedy)")
    g.add_argument("--seed", type=nonneg_int, default=0, help="seed of the sampler (with --temp > 0)")
    g.add_argument("-c", "--ctx", type=positive_int, default=None,
                   help="context size (default: prompt + n-predict)")
    g.add_argument("--ignore-eos", action="store_true", help="go on past end-of-generation tokens")
    g.add_argument("--draft", choices=["none", "mtp"], default="none",
                   help="mtp: speculative decoding with the file's MTP block as the drafter (greedy; the "
                        "output is greedy decoding's)")
    g.add_argument("--draft-n", type=positive_int, default=3, help="tokens drafted a step with --draft mtp (default 3)")
    g.add_argument("--no-parse-special", dest="parse_special", action="store_false",
                   help="take control-token texts in the prompt as plain text")
    g.add_argument("-o", "--output", choices=["text", "json"], default="text",
                   help="text (streamed, then timings) or json (one object on the last line)")
    add_engine_args(g)
    g.set_defaults(func=cmd_generate)

    p = sub.add_parser("perplexity", help="perplexity and KL divergence on a text, as llama-perplexity "
                                          "computes them (second half of each chunk scored)")
    p.add_argument("model", help="a GGUF file with a tokenizer")
    p.add_argument("-f", "--file", default=None, help="the text (one final newline dropped, as llama.cpp's -f)")
    p.add_argument("-c", "--ctx", type=positive_int, default=None, help="chunk size (default 512)")
    p.add_argument("--chunks", type=positive_int, default=None, help="score at most this many chunks")
    p.add_argument("--kl-divergence-base", metavar="FILE", default=None,
                   help="without --kl-divergence: write this model's log-probs there (llama-perplexity's "
                        "format); with it: the base to compare against (its tokens are used)")
    p.add_argument("--kl-divergence", nargs="?", const=True, default=None, metavar="MODEL_BASE",
                   help="compare against --kl-divergence-base FILE, or against MODEL_BASE run first")
    p.add_argument("--no-escape", dest="escape", action="store_false",
                   help="take \\n, \\t, \\xHH ... in the text literally (processed by default, as llama.cpp)")
    p.add_argument("-o", "--output", choices=["text", "json"], default="text",
                   help="text, or json (one object on the last line)")
    add_engine_args(p)
    p.set_defaults(func=cmd_perplexity)
