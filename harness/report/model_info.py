"""Plain-text renderings of models for the command line."""
from __future__ import annotations

from collections import Counter

from harness.model.loader import Model


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    raise AssertionError


def no_kernel_types(m: Model) -> list[str]:
    """The weight types of m's tensors that the C engine has no kernels for (it runs them as F32)."""
    from harness.ggml_types import NATIVE_TYPES
    return sorted({m.info(s.name).type.name for s in m.specs} - {t.name for t in NATIVE_TYPES})


def tokenizer_line(m: Model) -> str:
    """The tokenizer as llama.cpp will read it: model, pre-tokenizer, size, special tokens."""
    from harness.errors import ModelFileError
    from harness.model.tokenizer import has_tokenizer
    md = m.metadata
    if not has_tokenizer(md):
        return ("tokenizer  none (tokenizer.ggml.model = 'none', as synthetic files: token ids only; "
                "`harness synth --tokenizer` gives one)")
    try:
        t = m.tokenizer().info()
    except ModelFileError as e:
        return f"tokenizer  unusable: {e}"

    def name(i):
        return "-" if i is None else f"{i} {m.tokenizer().tokens[i]!r}"
    special = ", ".join(f"{i} {text!r}" for i, text in t.special[:12]) + (" ..." if len(t.special) > 12 else "")
    return (f"tokenizer  {t.model} (byte-level BPE), pre {t.pre}, {t.vocab_size:,} tokens, {t.n_merges:,} merges; "
            f"bos {name(t.bos_id)} (added: {'yes' if t.add_bos else 'no'}), eos {name(t.eos_id)}, "
            f"padding {name(t.pad_id)}\n           special: {special or 'none'}")


def mtp_line(m: Model) -> str | None:
    """The MTP (nextn) blocks a file carries after its trunk, which the engine does not run; None if none."""
    c = m.config
    if not c.n_mtp:
        return None
    parts = [n.split(".") for n in m.gguf.tensors]          # blk.N.NAME...: by tensor, not by the count
    mine = [p for p in parts if len(p) > 2 and p[0] == "blk" and p[1].isdecimal() and len(p[1]) < 10
            and c.n_layer <= int(p[1]) < c.n_layer_all]
    names = [".".join(p) for p in mine]
    nextn = sorted({p[3] for p in mine if len(p) > 4 and p[2] == "nextn"})
    blocks = f"blk.{c.n_layer}" + (f"-{c.n_layer_all - 1}" if c.n_mtp > 1 else "")
    nbytes = sum(m.info(n).nbytes for n in names)
    return (f"  MTP                {c.n_mtp} block{'s' if c.n_mtp > 1 else ''} ({blocks}): {len(names)} tensors, "
            f"{human_bytes(nbytes)}; nextn {', '.join(nextn) or 'none'}; the trunk skips it; generate --draft mtp drafts with it")


def model_info(m: Model, tensors: bool = True) -> str:
    c, md = m.config, m.metadata
    lines = [f"model      {m.path}",
             f"name       {m.name}",
             f"arch       {c.arch}   file_type {md.get('general.file_type', '?')}"]
    if "harness.synth.quant" in md:
        lines.append(f"synthetic  preset {md.get('harness.synth.preset')}  quant {md['harness.synth.quant']}  "
                     f"seed {md.get('harness.synth.seed')}")
        lines.append(f"recipe     {md.get('harness.synth.recipe')}")
        if md.get("harness.synth.random_codes"):
            lines.append(f"codes      {md['harness.synth.random_codes']}")
    lines += [
        "",
        "config",
        f"  layers             {c.n_layer} trunk (+{c.n_mtp} MTP) = block_count {c.n_layer_all}",
        f"  embedding          {c.n_embd}    FFN {'MoE' if c.is_moe else c.n_ff}    vocab {c.vocab_size}    "
        f"LM head {'tied to token_embd' if c.tied_output else 'output.weight'}",
        f"  attention          {c.n_head} heads / {c.n_head_kv} KV heads x {c.head_dim}   "
        f"RoPE {c.rope_dims} of {c.head_dim} dims, theta {c.rope_theta:g}, sections {list(c.rope_sections)}",
        f"  delta-net          {c.ssm_k_heads} key heads / {c.ssm_v_heads} value heads x {c.ssm_state}   "
        f"conv kernel {c.conv_kernel}   inner {c.ssm_inner}",
        f"  rms eps            {c.rms_eps:g}    context {c.context_length}",
    ]
    if c.is_moe:
        lines.append(f"  experts            {c.n_expert} routed, {c.n_expert_used} per token (softmax, top-k, "
                     f"renormalized), expert FFN {c.n_ff_expert}; shared expert FFN {c.n_ff_shared} "
                     "(sigmoid-gated)")
    if (mtp := mtp_line(m)) is not None:
        lines.append(mtp)
    lines += ["", tokenizer_line(m)]
    lines += [
        "",
        "layers     " + " ".join("D" if r else "A" for r in c.recurrent)
        + f"   (D = Gated DeltaNet x{sum(c.recurrent)}, A = full attention x{c.n_layer - sum(c.recurrent)})",
    ]
    types = Counter()
    for s in m.specs:
        t = m.info(s.name)
        types[t.type.name] += t.nbytes
    lines += ["",
              f"weights    {human_bytes(m.weight_bytes())} ({m.weight_bytes():,} B)   by type: "
              + ", ".join(f"{k} {human_bytes(v)}" for k, v in types.most_common()),
              f"per token  {human_bytes(m.bytes_per_token())} ({m.bytes_per_token():,} B) of weights read "
              "per generated token (all trunk matrices + LM head + one embedding row"
              + (f"; of each expert stack only the {c.n_expert_used} selected of {c.n_expert} experts: "
                 f"stack bytes x {c.n_expert_used}/{c.n_expert})" if c.is_moe else ")")]
    slow = no_kernel_types(m)
    if slow:
        lines.append(f"native     no C kernels yet for {', '.join(slow)}: the native engine runs those tensors "
                     "dequantized to F32 (exact values, 32 bits a weight: speed and memory are not the type's)")
    if tensors:
        lines += ["", f"{'tensor':40s} {'shape (numpy)':>18s} {'type':>7s} {'bytes':>14s}"]
        for s in m.specs:
            t = m.info(s.name)
            lines.append(f"{s.name:40s} {'x'.join(map(str, t.shape)):>18s} {t.type.name:>7s} {t.nbytes:>14,}")
        extra = sorted(set(m.gguf.tensors) - {s.name for s in m.specs})
        if extra:
            lines.append(f"(+{len(extra)} tensors not used by the forward pass: {', '.join(extra[:6])}"
                         f"{' ...' if len(extra) > 6 else ''})")
    return "\n".join(lines)
