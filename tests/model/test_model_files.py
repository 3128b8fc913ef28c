"""GGUF loading: our reader against the gguf package, the typed config, and one clear
ModelFileError (naming the key or tensor) for every kind of broken file."""
import struct

import gguf
import numpy as np
import pytest

from harness.model.dequant import dequantize
from harness.errors import ModelFileError, UnsupportedModelError
from harness.ggml_types import GGMLType
from harness.model.gguf_reader import read_gguf
from harness.model.gguf_writer import GGUFStreamWriter, Meta, PlannedTensor
from harness.model.loader import load_model
from harness.model.presets import PRESETS
from harness.model.synth import quant_plan, synth_metadata, write_weights

from support.paths import ORACLE_TYPES

ALL_ORACLE_FILES = [f"tiny-{t}.gguf" for t in ORACLE_TYPES] + \
    ["tinymoe-f32.gguf", "tinymoe-q8_0.gguf", "tinymoe-q4_k_m.gguf"]


@pytest.mark.parametrize("fname", ALL_ORACLE_FILES)
def test_reader_agrees_with_gguf_package(oracle_dir, fname):
    """Same metadata, same tensor shapes/types/offsets, and byte-identical zero-copy data."""
    path = oracle_dir / fname
    ours, theirs = read_gguf(path), gguf.GGUFReader(path)
    for key, field in theirs.fields.items():
        if key.startswith("GGUF."):
            continue
        want, got = field.contents(), ours.metadata[key]
        if isinstance(got, np.ndarray):
            got = got.tolist()
        assert got == pytest.approx(want) if isinstance(want, float) else got == want, key
    assert len(ours.tensors) == len(theirs.tensors)
    for t in theirs.tensors:
        o = ours.tensors[t.name]
        assert o.ne == tuple(int(x) for x in t.shape) and o.type == int(t.tensor_type)
        assert o.offset == t.data_offset and o.nbytes == t.n_bytes
        view = ours.tensor_data(t.name)
        assert np.shares_memory(view, ours._buf)          # a view into the map, not a copy
        assert np.array_equal(view, t.data.view(np.uint8).reshape(-1))
    ours.close()


@pytest.mark.parametrize("qtype", ORACLE_TYPES)
def test_numpy_dequantizers_bit_exact_vs_gguf_package(oracle_dir, qtype):
    """Every tensor of every oracle file (so every weight type, as llama-quantize wrote it)."""
    g = gguf.GGUFReader(oracle_dir / f"tiny-{qtype}.gguf")
    types = set()
    for t in g.tensors:
        shape = tuple(int(x) for x in reversed(t.shape.tolist()))
        ours = dequantize(t.data.view(np.uint8), GGMLType(t.tensor_type), shape)
        ref = gguf.quants.dequantize(t.data, t.tensor_type).reshape(shape)
        assert np.array_equal(ours, ref), t.name
        types.add(t.tensor_type.name)
    print(qtype, sorted(types))


def test_config_of_the_oracle_model(oracle_dir):
    with load_model(oracle_dir / "tiny-q4_k_m.gguf") as m:
        c = m.config
        assert (c.n_layer, c.n_embd, c.n_ff, c.vocab_size) == (4, 256, 512, 2048)
        assert (c.n_head, c.n_head_kv, c.head_dim, c.rope_dims) == (4, 2, 64, 16)
        assert (c.ssm_k_heads, c.ssm_v_heads, c.ssm_state, c.ssm_inner, c.conv_kernel) == (4, 8, 32, 256, 4)
        assert c.recurrent == (True, True, True, False)
        assert c.rope_theta == 1e7 and c.rope_sections == (3, 3, 2, 0)
        assert not c.tied_output and c.n_mtp == 0
        # Q4_K_M mixes types per tensor
        assert m.info("blk.0.attn_qkv.weight").type == GGMLType.Q4_K
        assert m.info("blk.2.attn_qkv.weight").type == GGMLType.Q6_K


def test_layer_schedule_falls_back_to_interval(tmp_path):
    """Without attention.recurrent_layers, full_attention_interval decides (every 4th is attention)."""
    s = PRESETS["tiny"]
    md = synth_metadata(s, "f32", 0)
    del md["qwen35.attention.recurrent_layers"]
    p = _write(tmp_path / "m.gguf", md, quant_plan(s, "f32"), s)
    with load_model(p) as m:
        assert m.config.recurrent == (True, True, True, False, True, True, True, False)


def test_mtp_blocks_are_not_trunk_layers(tmp_path):
    """block_count includes nextn_predict_layers MTP blocks, which the trunk skips."""
    s = PRESETS["tiny"]
    md = synth_metadata(s, "f32", 0)
    md["qwen35.block_count"] = Meta.u32(s.n_layer + 1)
    md["qwen35.nextn_predict_layers"] = Meta.u32(1)
    md["qwen35.attention.recurrent_layers"] = Meta.bool_array(list(s.recurrent) + [False])
    p = _write(tmp_path / "m.gguf", md, quant_plan(s, "f32"), s)
    with load_model(p) as m:
        assert m.config.n_layer == s.n_layer and m.config.n_mtp == 1


# ----------------------------------------------------------------------------
# broken files: each one is a real file on disk, and each error names its culprit

def _write(path, md, plan, shape):
    with GGUFStreamWriter(path, md, plan) as w:
        write_weights(w, shape, seed=0, threads=1)
    return path


@pytest.fixture(scope="module")
def good_file(tmp_path_factory):
    s = PRESETS["tiny"]
    return _write(tmp_path_factory.mktemp("good") / "tiny-q8_0.gguf",
                  synth_metadata(s, "q8_0", 0), quant_plan(s, "q8_0"), s)


def _copy_patched(src, dst, patch):
    data = bytearray(open(src, "rb").read())
    patch(data)
    open(dst, "wb").write(data)
    return dst


def _tensor_info_pos(data: bytes, name: str) -> int:
    """Offset just past the name of a tensor-info record (its n_dims field)."""
    key = struct.pack("<Q", len(name)) + name.encode()
    i = data.index(key)
    return i + len(key)


def test_good_file_loads(good_file):
    with load_model(good_file) as m:
        assert m.config.n_layer == 8


def test_not_a_gguf_file(tmp_path):
    p = tmp_path / "x.gguf"
    p.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(ModelFileError, match=r"not a GGUF file \(magic"):
        load_model(p)
    (tmp_path / "empty.gguf").write_bytes(b"")
    with pytest.raises(ModelFileError, match="not a GGUF file"):
        load_model(tmp_path / "empty.gguf")
    with pytest.raises(ModelFileError, match="cannot open"):
        load_model(tmp_path / "missing.gguf")


@pytest.mark.parametrize("keep", [30, 200, 2000, 0.5, 0.999])
def test_truncated_file(good_file, tmp_path, keep):
    data = open(good_file, "rb").read()
    n = int(len(data) * keep) if isinstance(keep, float) else keep
    p = tmp_path / "t.gguf"
    p.write_bytes(data[:n])
    with pytest.raises(ModelFileError, match="truncated") as e:
        load_model(p)
    if isinstance(keep, float):          # cut in the tensor data: the tensor is named
        assert "tensor 'blk." in str(e.value) or "tensor 'token_embd" in str(e.value) \
            or "tensor 'output" in str(e.value)


def test_wrong_architecture(tmp_path):
    s = PRESETS["tiny"]
    md = synth_metadata(s, "f32", 0)
    md["general.architecture"] = Meta.str("llama")
    p = _write(tmp_path / "m.gguf", md, quant_plan(s, "f32"), s)
    with pytest.raises(ModelFileError, match="architecture 'llama' is not Qwen3.5"):
        load_model(p)


def test_moe_oracle_config_and_tensors(oracle_dir):
    """qwen35moe: expert counts and widths from the metadata, stacked 3-D expert tensors,
    the F32 router and the shared expert's gate (written [E, 1] by the converter, [E] by
    llama-quantize: both accepted)."""
    for qtype in ("f32", "q4_k_m"):
        with load_model(oracle_dir / f"tinymoe-{qtype}.gguf") as m:
            c = m.config
            assert c.arch == "qwen35moe" and c.is_moe
            assert (c.n_expert, c.n_expert_used, c.n_ff_expert, c.n_ff_shared) == (8, 2, 256, 256)
            assert (c.n_layer, c.n_embd, c.vocab_size, c.recurrent) == (4, 256, 2048, (True, True, True, False))
            assert m.info("blk.0.ffn_gate_exps.weight").shape == (8, 256, 256)
            assert m.info("blk.0.ffn_gate_inp.weight").type == GGMLType.F32
            assert m.info("blk.0.ffn_gate_inp_shexp.weight").shape == ((1, 256) if qtype == "f32" else (256,))
            assert not any(s.name.endswith(("ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"))
                           for s in m.specs)


def test_moe_bytes_per_token_count_only_the_selected_experts(oracle_dir):
    with load_model(oracle_dir / "tinymoe-q4_k_m.gguf") as m:
        everything = m.weight_bytes() - m.info("token_embd.weight").nbytes
        exps = sum(m.info(f"blk.{i}.ffn_{w}_exps.weight").nbytes for i in range(4) for w in ("gate", "up", "down"))
        row = m.info("token_embd.weight").nbytes // 2048
        # a token reads 2 of the 8 expert slabs of each stack, everything else once
        assert m.bytes_per_token() == everything - exps + exps * 2 // 8 + row


# -- broken MoE files: the llama.cpp-written oracle file, patched in place

def _patch_u32_key(d: bytearray, key: str, value: int) -> None:
    k = struct.pack("<Q", len(key)) + key.encode()
    i = d.index(k) + len(k)
    assert struct.unpack_from("<I", d, i)[0] == 4          # a u32 value
    struct.pack_into("<I", d, i + 4, value)


def _rename(d: bytearray, old: str, new: str) -> None:
    assert len(old) == len(new)
    k = struct.pack("<Q", len(old)) + old.encode()
    i = d.index(k)
    d[i + 8:i + 8 + len(old)] = new.encode()


@pytest.mark.parametrize("patch,message", [
    (lambda d: _rename(d, "blk.1.ffn_up_exps.weight", "blk.1.ffn_up_exps.weighX"),
     "missing tensor 'blk.1.ffn_up_exps.weight'"),
    (lambda d: _rename(d, "blk.2.ffn_down_shexp.weight", "blk.2.ffn_down_shexp.weighX"),
     "missing tensor 'blk.2.ffn_down_shexp.weight'"),
    (lambda d: _rename(d, "qwen35moe.expert_count", "qwen35moe.expert_counX"),
     "missing metadata key 'qwen35moe.expert_count'"),
    (lambda d: _patch_u32_key(d, "qwen35moe.expert_used_count", 9),
     "expert_used_count 9 must be between 1 and expert_count 8"),
    (lambda d: _patch_u32_key(d, "qwen35moe.expert_count", 0), "expert_count must be positive"),
    (lambda d: _patch_u32_key(d, "qwen35moe.expert_feed_forward_length", 128),
     r"tensor 'blk.0.ffn_gate_exps.weight' has shape \[8, 256, 256\], expected \[8, 128, 256\]"),
    (lambda d: _patch_u32_key(d, "qwen35moe.expert_count", 4),
     r"tensor 'blk.0.ffn_gate_inp.weight' has shape \[8, 256\], expected \[4, 256\]"),
])
def test_broken_moe_file_names_its_culprit(oracle_dir, tmp_path, patch, message):
    p = _copy_patched(oracle_dir / "tinymoe-q8_0.gguf", tmp_path / "m.gguf", patch)
    with pytest.raises(ModelFileError, match=message):
        load_model(p)


def test_moe_router_must_stay_f32(oracle_dir, tmp_path):
    def patch(d):        # F32 [256, 8] -> Q8_0 (fewer bytes: the file stays readable)
        i = _tensor_info_pos(d, "blk.3.ffn_gate_inp.weight")
        struct.pack_into("<I", d, i + 4 + 8 * 2, int(GGMLType.Q8_0))
    p = _copy_patched(oracle_dir / "tinymoe-q8_0.gguf", tmp_path / "m.gguf", patch)
    with pytest.raises(ModelFileError, match="tensor 'blk.3.ffn_gate_inp.weight' has type Q8_0, expected one of F32"):
        load_model(p)


def test_moe_expert_stack_with_a_wrong_expert_count(oracle_dir, tmp_path):
    def patch(d):        # ne = [E, Fe, NE]: NE 8 -> 4
        i = _tensor_info_pos(d, "blk.2.ffn_down_exps.weight")
        assert struct.unpack_from("<I", d, i)[0] == 3
        struct.pack_into("<Q", d, i + 4 + 16, 4)
    p = _copy_patched(oracle_dir / "tinymoe-q8_0.gguf", tmp_path / "m.gguf", patch)
    with pytest.raises(ModelFileError, match=r"'blk.2.ffn_down_exps.weight' has shape \[4, 256, 256\], "
                                             r"expected \[8, 256, 256\]"):
        load_model(p)


def test_unknown_architecture_is_refused_with_the_supported_list():
    from harness.model.config import config_from_metadata
    with pytest.raises(ModelFileError, match="architecture 'qwen3next' is not Qwen3.5"):
        config_from_metadata({"general.architecture": "qwen3next"}, "<md>", None, True)


def test_missing_metadata_key(tmp_path):
    s = PRESETS["tiny"]
    md = synth_metadata(s, "f32", 0)
    del md["qwen35.ssm.state_size"]
    p = _write(tmp_path / "m.gguf", md, quant_plan(s, "f32"), s)
    with pytest.raises(ModelFileError, match="missing metadata key 'qwen35.ssm.state_size'"):
        load_model(p)


def test_inconsistent_metadata(tmp_path):
    s = PRESETS["tiny"]
    md = synth_metadata(s, "f32", 0)
    md["qwen35.ssm.time_step_rank"] = Meta.u32(6)      # not a multiple of group_count 4
    p = _write(tmp_path / "m.gguf", md, quant_plan(s, "f32"), s)
    with pytest.raises(ModelFileError, match="time_step_rank 6 is not a multiple of ssm.group_count 4"):
        load_model(p)


def test_missing_tensor(tmp_path):
    s = PRESETS["tiny"]
    plan = [t for t in quant_plan(s, "f32") if t.name != "blk.3.attn_k_norm.weight"]
    p = _write(tmp_path / "m.gguf", synth_metadata(s, "f32", 0), plan, s)
    with pytest.raises(ModelFileError, match="missing tensor 'blk.3.attn_k_norm.weight'"):
        load_model(p)


def test_wrong_shape(tmp_path):
    s = PRESETS["tiny"]
    plan = [PlannedTensor(t.name, (t.shape[0] // 2, t.shape[1]), t.type) if t.name == "blk.1.ffn_up.weight" else t
            for t in quant_plan(s, "f32")]
    p = _write(tmp_path / "m.gguf", synth_metadata(s, "f32", 0), plan, s)
    with pytest.raises(ModelFileError, match=r"tensor 'blk.1.ffn_up.weight' has shape \[256, 256\], expected \[512, 256\]"):
        load_model(p)


def test_norm_with_a_quantized_type_is_refused(tmp_path):
    s = PRESETS["tiny"]
    plan = [PlannedTensor(t.name, t.shape, GGMLType.F16) if t.name == "output_norm.weight" else t
            for t in quant_plan(s, "f32")]
    p = _write(tmp_path / "m.gguf", synth_metadata(s, "f32", 0), plan, s)
    with pytest.raises(ModelFileError, match="tensor 'output_norm.weight' has type F16, expected one of F32"):
        load_model(p)


@pytest.mark.parametrize("type_id,why", [(41, "type Q1_0, which is not supported"),
                                         (99, "type type#99, which is not supported"),
                                         (15, "type Q8_K, which is not a weight type"),
                                         (24, "type I8, which is not supported"), (25, "type I16, which is not supported"),
                                         (26, "type I32, which is not supported"), (27, "type I64, which is not supported"),
                                         (28, "type F64, which is not supported")])
def test_unsupported_tensor_type(good_file, tmp_path, type_id, why):
    name = "blk.0.ffn_gate.weight"

    def patch(d):
        i = _tensor_info_pos(d, name)
        n_dims = struct.unpack_from("<I", d, i)[0]
        struct.pack_into("<I", d, i + 4 + 8 * n_dims, type_id)
    p = _copy_patched(good_file, tmp_path / "t.gguf", patch)
    with pytest.raises(ModelFileError, match=f"tensor '{name}' has {why}"):
        load_model(p)


def test_tensor_offset_past_the_end(good_file, tmp_path):
    name = "blk.2.ssm_out.weight"

    def patch(d):
        i = _tensor_info_pos(d, name)
        n_dims = struct.unpack_from("<I", d, i)[0]
        struct.pack_into("<Q", d, i + 4 + 8 * n_dims + 4, 1 << 40)
    p = _copy_patched(good_file, tmp_path / "t.gguf", patch)
    with pytest.raises(ModelFileError, match=f"truncated file: tensor '{name}' needs bytes"):
        load_model(p)


def test_overlapping_tensors(good_file, tmp_path):
    def patch(d):
        # point the second tensor's data at the first one's
        i = _tensor_info_pos(d, "blk.0.attn_norm.weight")
        struct.pack_into("<Q", d, i + 4 + 8 + 4, 0)
    p = _copy_patched(good_file, tmp_path / "t.gguf", patch)
    with pytest.raises(ModelFileError, match="overlap"):
        load_model(p)


def test_huge_counts_are_refused_before_allocating(good_file, tmp_path):
    def patch(d):
        struct.pack_into("<Q", d, 16, 1 << 60)   # metadata count
    p = _copy_patched(good_file, tmp_path / "t.gguf", patch)
    with pytest.raises(ModelFileError, match="cannot fit"):
        load_model(p)


def test_closed_model_refuses_reads(good_file):
    m = load_model(good_file)
    m.close()
    with pytest.raises(ModelFileError, match="closed"):
        m.raw("token_embd.weight")


# ----------------------------------------------------------------------------
# metadata of the wrong type or range: each of these raised TypeError / ValueError /
# OverflowError (or let a bad value reach C) until the fuzzer (tests/test_fuzz_gguf.py) found it

from support import gguf_fuzz_lib as F  # noqa: E402


@pytest.fixture(scope="module")
def micro(tmp_path_factory):
    p = F.write_micro_model(tmp_path_factory.mktemp("micro") / "micro.gguf")
    md, plan = F.micro_parts()
    return open(p, "rb").read(), md, plan


def _with(micro, tmp_path, changes: dict, drop=()):
    data, md, _ = micro
    md = {k: v for k, v in {**md, **changes}.items() if k not in drop}
    p = tmp_path / "m.gguf"
    p.write_bytes(F.with_metadata(data, md))
    return p


@pytest.mark.parametrize("changes,drop,message", [
    ({"qwen35.rope.dimension_sections": (5, 16)}, (),
     "'qwen35.rope.dimension_sections' = 16 is not an array of integers"),
    ({"qwen35.rope.dimension_sections": (8, "qwen35")}, (),
     "'qwen35.rope.dimension_sections' = 'qwen35' is not an array of integers"),
    ({"qwen35.rope.dimension_sections": (9, (6, [float("nan")]))}, (),
     "'qwen35.rope.dimension_sections' = an array of 1 float32 is not an array of integers"),
    ({"qwen35.attention.recurrent_layers": (8, "qwen35moe")}, (),
     "'qwen35.attention.recurrent_layers' = 'qwen35moe' is not an array of booleans"),
    ({"qwen35.attention.recurrent_layers": (12, -1.0)}, (),
     "'qwen35.attention.recurrent_layers' = -1.0 is not an array of booleans"),
    ({"tokenizer.ggml.tokens": (1, 32)}, (), "'tokenizer.ggml.tokens' = 32 is not an array of strings"),
    ({"general.architecture": (9, (5, [256, 4, -1]))}, (), "architecture an array of 3 int32 is not Qwen3.5"),
    ({"qwen35.attention.head_count_kv": (9, (6, [float("nan"), 1.0]))}, (),
     "'qwen35.attention.head_count_kv' = an array of 2 float32 is not a non-negative integer"),
    ({"qwen35.embedding_length": (9, (3, [17, 256, 3]))}, (),
     "'qwen35.embedding_length' varies per layer (from 3 to 256)"),
    ({"qwen35.full_attention_interval": (9, (12, [float("-inf"), 3e38]))}, ("qwen35.attention.recurrent_layers",),
     "'qwen35.full_attention_interval' = an array of 2 float64 is not a non-negative integer"),
    ({"qwen35.vocab_size": (8, "many")}, ("tokenizer.ggml.tokens",),
     "'qwen35.vocab_size' = 'many' is not a non-negative integer"),
    ({"tokenizer.ggml.merges": (9, (9, [(4, [1]), (4, [2])]))}, (),
     "'tokenizer.ggml.merges': arrays of arrays are not supported"),
    ({"qwen35.rope.freq_base": (6, -1.0)}, (), "rope.freq_base must be positive (got -1.0)"),
])
def test_metadata_of_the_wrong_type_is_a_clear_error(micro, tmp_path, changes, drop, message):
    with pytest.raises(ModelFileError) as e:
        load_model(_with(micro, tmp_path, changes, drop))
    assert message in str(e.value)


def test_values_the_engine_cannot_run_are_named_before_c(micro, tmp_path):
    """rms_eps rounds to 0 in single precision: q35_model_new would refuse it without saying why."""
    from harness.engine.session import Session
    with load_model(_with(micro, tmp_path, {"qwen35.attention.layer_norm_rms_epsilon": (12, 1e-50)})) as m:
        with pytest.raises(UnsupportedModelError, match=r"layer_norm_rms_epsilon = 1e-50 is not a positive "
                                                        "single-precision number"):
            Session(m)


def test_conv_kernel_beyond_the_engine_limit(tmp_path):
    from harness.engine.session import Session
    s = F.micro_shape().with_(conv_kernel=17)
    p = _write(tmp_path / "m.gguf", synth_metadata(s, "f32", 0), quant_plan(s, "f32"), s)
    with load_model(p) as m:
        assert m.config.conv_kernel == 17
        with pytest.raises(UnsupportedModelError, match=r"qwen35.ssm.conv_kernel = 17: the engine runs 1..16"):
            Session(m)


def test_tensor_name_longer_than_llama_cpp_allows(tmp_path):
    """llama.cpp refuses names of 64 bytes or more; a long name would also be copied whole."""
    s = F.micro_shape()
    plan = quant_plan(s, "f32") + [PlannedTensor("x" * 64, (32,), GGMLType.F32)]
    p = tmp_path / "m.gguf"
    with GGUFStreamWriter(p, synth_metadata(s, "f32", 0), plan) as w:
        for t in plan:
            w.write(t.name, bytes(t.nbytes))
    with pytest.raises(ModelFileError, match="name of tensor #28 is 64 bytes long \\(at most 63\\)"):
        load_model(p)


# ----------------------------------------------------------------------------
# sizes and offsets that must be caught before any pointer reaches C

def _patched(micro, tmp_path, where_value: dict):
    data = bytearray(micro[0])
    for f in F.walk(bytes(data)).fields:
        if f.where in where_value:
            data[f.pos:f.pos + f.size] = where_value[f.where].to_bytes(f.size, "little")
    p = tmp_path / "m.gguf"
    p.write_bytes(bytes(data))
    return p


def test_byte_size_beyond_64_bits(micro, tmp_path):
    """ne = [2^39, 2^39] F16: 2^79 bytes, which a 64-bit product would wrap; Python's does not."""
    p = _patched(micro, tmp_path, {"tensor 'blk.0.ffn_up.weight' dim 0": 1 << 39,
                                   "tensor 'blk.0.ffn_up.weight' dim 1": 1 << 39})
    with pytest.raises(ModelFileError, match=r"truncated file: tensor 'blk.0.ffn_up.weight' needs bytes "
                                             r"\[\d+, \d{24}\d*\)"):
        load_model(p)


def test_unaligned_tensor_offset(micro, tmp_path):
    p = _patched(micro, tmp_path, {"tensor 'blk.1.ffn_down.weight' offset": 17})
    with pytest.raises(ModelFileError, match="tensor 'blk.1.ffn_down.weight': data offset 17 is not aligned to 32"):
        load_model(p)


@pytest.mark.parametrize("changes,message", [
    ({"qwen35.embedding_length": (4, 64)}, r"tensor 'token_embd.weight' has shape \[64, 32\], expected \[64, 64\]"),
    ({"tokenizer.ggml.tokens": (9, (8, [f"t{i}" for i in range(65)]))},
     r"tensor 'token_embd.weight' has shape \[64, 32\], expected \[65, 32\]"),
    ({"qwen35.ssm.conv_kernel": (4, 3)}, r"tensor 'blk.0.ssm_conv1d.weight' has shape \[64, 4\], expected \[64, 3\]"),
    ({"qwen35.block_count": (4, 3), "qwen35.attention.recurrent_layers": (9, (7, [True, False, True]))},
     "missing tensor 'blk.2.attn_norm.weight'"),
])
def test_metadata_contradicting_the_tensor_shapes(micro, tmp_path, changes, message):
    with pytest.raises(ModelFileError, match=message):
        load_model(_with(micro, tmp_path, changes))
