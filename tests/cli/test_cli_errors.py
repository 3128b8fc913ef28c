"""On the command line every failure is exit status 1 or 2 and one line on stderr that says what
is wrong and where (file, key, tensor, offset, token): broken and hostile model files, values
out of range, and the environment (missing directories)."""
import struct
import subprocess
import sys

import pytest

from support import gguf_fuzz_lib as F
from harness.cli.main import main


@pytest.fixture(scope="module")
def micro(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    path = F.write_micro_model(d / "micro.gguf")
    data = open(path, "rb").read()
    return d, path, data, F.walk(data)


def _variant(micro, name: str, data: bytes) -> str:
    p = micro[0] / name
    p.write_bytes(data)
    return str(p)


def _set(micro, where: str, value: int) -> bytes:
    d = bytearray(micro[2])
    f = next(f for f in micro[3].fields if f.where == where)
    d[f.pos:f.pos + f.size] = value.to_bytes(f.size, "little")
    return bytes(d)


def run(*args):
    r = subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True)
    return r.returncode, r.stdout, r.stderr


def _one_clear_line(code: int, err: str, *parts: str) -> None:
    lines = err.strip().splitlines()
    assert code in (1, 2), (code, err)
    assert len(lines) == 1 and lines[0].startswith("harness: error: "), err
    assert "Traceback" not in err and "internal error" not in err
    for p in parts:
        assert p in lines[0], (p, lines[0])


def test_hostile_files_on_the_command_line(micro, tmp_path):
    """info and logits on broken copies of the micro model, in child processes."""
    d, path, data, lay = micro
    size = len(data)
    ffn_up_offset = next(f for f in lay.fields if f.where == "tensor 'blk.1.ffn_up.weight' offset").read(data)
    cases = [
        # (file, command, the parts the one line must contain)
        (_variant(micro, "trunc.gguf", data[:size - 100]), "info",
         ["trunc.gguf", "truncated file: tensor 'output.weight' needs bytes", f"file has {size - 100}"]),
        (_variant(micro, "offset.gguf", _set(micro, "tensor 'blk.0.ffn_down.weight' offset", 1 << 40)), "logits",
         ["offset.gguf", "tensor 'blk.0.ffn_down.weight' needs bytes", str((1 << 40) + lay.data_start)]),
        (_variant(micro, "overlap.gguf", _set(micro, "tensor 'blk.0.ffn_down.weight' offset", ffn_up_offset)), "info",
         ["overlap.gguf", "'blk.1.ffn_up.weight'", "overlap"]),
        (_variant(micro, "type.gguf", _set(micro, "tensor 'blk.1.attn_q.weight' type", 41)), "info",
         ["type.gguf", "tensor 'blk.1.attn_q.weight' has type Q1_0, which is not supported"]),
        (_variant(micro, "dims.gguf", _set(micro, "tensor 'token_embd.weight' n_dims", 9)), "info",
         ["dims.gguf", "tensor 'token_embd.weight': 9 dimensions (must be 1..4)"]),
        (_variant(micro, "key.gguf", _set(micro, "kv 'qwen35.ssm.conv_kernel' type", 8)), "info",
         ["key.gguf", "'qwen35.ssm.conv_kernel'"]),
        (_variant(micro, "count.gguf", _set(micro, "n_kv", 1 << 60)), "logits",
         ["count.gguf", f"{1 << 60} metadata entries", f"cannot fit in {size} bytes"]),
        (_variant(micro, "meta.gguf", F.with_metadata(data, {**F.micro_parts()[0],
                                                             "qwen35.rope.dimension_sections": (8, "x")})), "info",
         ["meta.gguf", "'qwen35.rope.dimension_sections' = 'x' is not an array of integers"]),
    ]
    for p, cmd, parts in cases:
        args = ["info", p] if cmd == "info" else ["logits", p, "--tokens", "1,2", "--out", str(tmp_path / "l.npy")]
        _one_clear_line(*run(*args)[::2], *parts)


@pytest.mark.parametrize("args,parts", [
    (["logits", "{model}", "--tokens", "3,64", "--out", "{tmp}/l.npy"],
     ["token id 64 is outside the vocabulary [0, 64)"]),
    (["logits", "{model}", "--tokens", "-1", "--out", "{tmp}/l.npy"], ["token id -1 is outside the vocabulary"]),
    (["logits", "{model}", "--tokens", "@{tmp}/none.txt", "--out", "{tmp}/l.npy"],
     ["cannot read token file", "none.txt"]),
    (["logits", "{model}", "--tokens", "1", "--out", "{tmp}/no/such/dir/l.npy"],
     ["no/such/dir/l.npy: No such file or directory"]),
    (["info", "{tmp}"], ["cannot open: Is a directory"]),
    (["info", "{tmp}/empty.gguf"], ["empty.gguf: not a GGUF file (only 0 bytes)"]),
    (["bench", "{model}", "-p", "3000000000", "-n", "0"], ["ctx must be at most 2147483647, got 3000000000"]),
    (["bench", "{model}", "-t", "5000", "-p", "4", "-n", "0"], ["5000 threads", "available to this process", "--force"]),
    # argument values argparse refuses (--ubatch 0, ...): tests/cli/test_cli_arguments.py
])
def test_values_out_of_range(micro, tmp_path, args, parts):
    (tmp_path / "empty.gguf").write_bytes(b"")
    args = [a.format(model=micro[1], tmp=tmp_path) for a in args]
    code, out, err = run(*args)
    _one_clear_line(code, err, *parts)


def test_a_model_beyond_the_engine_limits(tmp_path):
    from harness.model.gguf_writer import GGUFStreamWriter
    from harness.model.synth import quant_plan, synth_metadata
    s = F.micro_shape().with_(conv_kernel=17)
    plan = quant_plan(s, "f32")
    p = tmp_path / "k17.gguf"
    with GGUFStreamWriter(p, synth_metadata(s, "f32", 0), plan) as w:
        for t in plan:
            w.write(t.name, bytes(t.nbytes))
    code, out, err = run("logits", str(p), "--tokens", "1", "--out", str(tmp_path / "l.npy"))
    _one_clear_line(code, err, "k17.gguf", "qwen35.ssm.conv_kernel = 17: the engine runs 1..16")


def test_mutated_files_through_main(micro, tmp_path, capsys, record_property):
    """60 mutated files through `harness info` in process: status 0 with output, or 1 with one line."""
    d, path, data, lay = micro
    md = F.micro_parts()[0]
    codes = {0: 0, 1: 0}
    for seed in range(60):
        ch = F.RandomChooser(50_000 + seed)
        case = F.with_metadata(data, F.draw_metadata(ch, md)[0]) if seed % 2 else \
            F.apply_all(data, F.draw_mutations(ch, lay))
        p = _variant(micro, "mutated.gguf", case)
        code = main(["info", p])
        out, err = capsys.readouterr()
        assert code in codes, (seed, code, err)
        codes[code] += 1
        if code == 0:
            assert "config" in out and err == ""
        else:
            _one_clear_line(code, err, "mutated.gguf")
    record_property("cases_tried", f"CLI: 60 mutated files through `harness info`: {codes[0]} shown, "
                                   f"{codes[1]} refused with one line")


def test_struct_of_the_header_is_what_the_cases_assume(micro):
    """The cases above patch fields by name: check the walker reads this file's header right."""
    d, path, data, lay = micro
    assert struct.unpack_from("<4sIQQ", data, 0)[:2] == (b"GGUF", 3)
    n_kv = next(f for f in lay.fields if f.where == "n_kv").read(data)
    assert n_kv == len(F.micro_parts()[0])
