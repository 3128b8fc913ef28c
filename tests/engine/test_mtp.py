"""MTP speculative decoding (issue 17 item 5) on the converter-made file with an MTP block
(tests/data/converter/): the C engine's MTP block equals the float64 reference of llama.cpp's
graph_mtp; `generate --draft mtp` is greedy decoding token for token, whatever the drafts (random
weights: nearly all rejected; a scripted drafter: all accepted, or every third one wrong); a file
without an MTP block is one clear line."""
import json

import numpy as np
import pytest

from harness.cli.main import main
from harness.engine.generate import generate
from harness.engine.reference import Reference
from harness.engine.session import Session
from harness.engine.speculative import MTPDrafter, generate_speculative
from harness.errors import ModelFileError, UsageError
from harness.model.loader import load_model
from support.paths import ROOT

DATA = ROOT / "tests" / "data" / "converter"
MTP, NOMTP = str(DATA / "qwen35-mtp-f32.gguf"), str(DATA / "qwen35-nomtp-f32.gguf")
PROMPT = [5, 17, 300, 42, 999, 3, 77, 12]
N = 24


@pytest.fixture(scope="module")
def model():
    with load_model(MTP) as m:
        yield m


def test_the_mtp_block_matches_the_reference(model):
    ref = Reference(model)
    logits, hidden = ref.forward_hidden(PROMPT)
    h_prev = np.vstack([np.zeros((1, hidden.shape[1])), hidden[:-1]])   # t_p with h_{p-1}
    mtp_logits, mtp_hidden = ref.mtp(PROMPT, h_prev, ref.mtp_state())
    with Session(model, threads=2, ctx=32) as s, Session(model, threads=2, ctx=32, block="mtp") as ms:
        got_logits, got_hidden = s.forward_hidden(PROMPT, logits="all")
        got_mtp, got_mtp_hidden = ms.forward_hidden(PROMPT, h_in=h_prev.astype(np.float32), logits="all")
        # the drafted positions go again: truncating and re-running gives the same rows
        ms.truncate(4)
        again, _ = ms.forward_hidden(PROMPT[4:], h_in=h_prev[4:].astype(np.float32), logits="all")
    scale = np.abs(mtp_logits).max()
    assert scale > 0.1                      # the block does something
    np.testing.assert_allclose(got_logits, logits, atol=2e-3)
    np.testing.assert_allclose(got_hidden, hidden, atol=1e-4)
    np.testing.assert_allclose(got_mtp, mtp_logits, atol=1e-4 * scale)
    np.testing.assert_allclose(got_mtp_hidden, mtp_hidden, atol=1e-4)
    np.testing.assert_array_equal(again, got_mtp[4:])


class ScriptedDrafter:
    """Drafts the known greedy continuation, every `wrong`-th draft replaced by a wrong id."""

    def __init__(self, greedy: list[int], wrong: int = 0):
        self.greedy, self.wrong, self.pos, self.n = greedy, wrong, 0, 0

    def start(self, prompt, hidden):
        self.pos = 0                       # greedy[pos] is `last`

    def draft(self, last, h_last, k):
        assert last == self.greedy[self.pos]
        out = []
        for t in self.greedy[self.pos + 1:self.pos + 1 + k] + [0] * k:
            self.n += 1
            out.append((t + 1) % 1000 if self.wrong and self.n % self.wrong == 0 else t)
        return out[:k]

    def accept(self, tokens, hidden):
        self.pos += len(tokens) + 1


def test_speculative_decoding_is_greedy_decoding(model):
    with Session(model, threads=2, ctx=64) as s, Session(model, threads=2, ctx=64, block="mtp") as ms:
        plain = generate(s, PROMPT, N).ids
        for k in (1, 2, 4):
            g, st = generate_speculative(s, MTPDrafter(ms), PROMPT, N, k)
            assert g.ids == plain, k
            assert st.drafted >= st.accepted >= 0 and st.steps >= (N - 1) // (k + 1)
        g, st = generate_speculative(s, ScriptedDrafter(plain), PROMPT, N, 3)
        assert g.ids == plain
        assert (st.accepted, st.rewinds) == (st.drafted, 0) and st.steps == -(-(N - 1) // 4)   # up to 4 tokens a step
        g, st = generate_speculative(s, ScriptedDrafter(plain, wrong=3), PROMPT, N, 3)
        assert g.ids == plain
        assert 0 < st.accepted < st.drafted and st.rewinds > 0


def test_generate_draft_mtp_on_the_command_line(capsys):
    outs = {}
    for how in ([], ["--draft", "mtp", "--draft-n", "3"]):
        assert main(["generate", MTP, "-p", "The quick brown fox", "-n", "16", "-t", "2", "--ignore-eos",
                     "-o", "json", *how]) == 0
        outs[bool(how)] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert outs[True]["tokens"] == outs[False]["tokens"] and outs[True]["text"] == outs[False]["text"]
    d = outs[True]["draft"]
    assert d["kind"] == "mtp" and d["draft_n"] == 3 and d["drafted"] >= d["accepted"] >= 0
    assert outs[False]["draft"] is None


def test_mtp_mistakes_are_clear(model, capsys):
    with load_model(NOMTP) as m, pytest.raises(ModelFileError, match="no MTP block"):
        Session(m, block="mtp")
    with Session(model, ctx=16) as s:
        s.forward_hidden(PROMPT, logits="none")
        with pytest.raises(UsageError, match="restore_state"):
            s.truncate(2)                  # the delta-net state cannot be cut back
        with pytest.raises(UsageError, match="h_in"):
            s.forward_hidden([1], h_in=np.zeros((1, 64), np.float32))
    assert main(["generate", NOMTP, "-p", "hi", "-n", "4", "--draft", "mtp"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no MTP block" in err[0]
    try:
        code = main(["generate", MTP, "-p", "hi", "--draft", "mtp", "--temp", "0.7"])
    except SystemExit as e:
        code = e.code
    assert code == 2 and "--temp 0" in capsys.readouterr().err


def test_synth_mtp_adds_the_block_and_leaves_the_trunk_alone(tmp_path):
    from harness.model.synth import synthesize
    from harness.model.presets import get_preset
    plain, with_mtp = tmp_path / "plain.gguf", tmp_path / "mtp.gguf"
    synthesize("tiny", "q8_0", plain)
    synthesize(get_preset("tiny").with_(n_mtp=1), "q8_0", with_mtp)
    with load_model(str(plain)) as a, load_model(str(with_mtp)) as b:
        assert (a.config.n_mtp, b.config.n_mtp, b.config.n_layer) == (0, 1, a.config.n_layer)
        with Session(a, ctx=32) as sa, Session(b, ctx=32) as sb, Session(b, ctx=32, block="mtp") as mb:
            np.testing.assert_array_equal(sa.prefill(PROMPT), sb.prefill(PROMPT))   # seeded per tensor name
            sb.reset()
            _, hidden = sb.forward_hidden(PROMPT, logits="none")
            logits, _ = mb.forward_hidden(PROMPT, h_in=hidden, logits="all")
        ref = Reference(b)
        want, _ = ref.mtp(PROMPT, hidden.astype(np.float64), ref.mtp_state())
    np.testing.assert_allclose(logits, want, atol=0.05 * np.abs(want).max())   # Q8_0 activations


def test_a_checkpoint_rewinds_the_sequence_without_its_kv_rows(model):
    with Session(model, ctx=32) as s:
        s.prefill(PROMPT)
        point = s.checkpoint()
        assert len(point) < len(s.save_state())            # no KV rows in it
        first = s.prefill([1, 2, 3])
        s.rewind(point)
        assert s.n_past == len(PROMPT)
        np.testing.assert_array_equal(s.prefill([1, 2, 3]), first)
        s.reset()
        with pytest.raises(UsageError, match="ahead of its position"):
            s.rewind(point)                                  # its KV rows are gone
