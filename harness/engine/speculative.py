"""Greedy speculative decoding with the file's MTP block as the drafter (llama.cpp's draft-mtp for
qwen35, common/speculative.cpp), on the native engine.

The MTP block is a one-layer model with its own KV cache (Session(block="mtp")). Position p of its
cache holds token t_p paired with the trunk's final-norm row h_{p-1}, the row that predicted t_p
(h_{-1} = 0). One step, with `last` the newest token (position P, not yet run by the trunk):

1. draft: K tokens, each the MTP block's greedy pick; the first from (last, h_{P-1}) at P, each next
   one from (draft, the block's own final-norm row) one position further. The block's positions
   after P are dropped again (only the trunk's rows are kept there).
2. verify: the trunk runs [last, d_1 .. d_K] in one batch; g_i = its greedy token after d_i. The
   longest prefix with d_{i+1} = g_i is accepted, and g_n after it comes free: n + 1 tokens a step.
3. rewind: with n < K the trunk's recurrent (delta-net) state has seen rejected tokens and cannot be
   cut back, so the checkpoint taken before the verify (recurrent state and position; the KV
   rows before it are untouched) is restored and [last, d_1 .. d_n] run again.
   The MTP block catches up on d_1 .. d_n with the trunk's rows h_P .. h_{P+n-1}.

Every emitted token is the trunk's own greedy choice, so the text equals plain greedy decoding up to
the rounding difference between a batched and a one-token forward (near-ties only).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from harness.engine.generate import Generation, check_request
from harness.engine.session import Session
from harness.errors import UsageError


@dataclass
class DraftStats:
    k: int
    steps: int = 0              # verify steps (plain decode steps at the end of the budget not counted)
    drafted: int = 0
    accepted: int = 0
    rewinds: int = 0
    draft_seconds: float = 0.0
    verify_seconds: float = 0.0
    rewind_seconds: float = 0.0

    @property
    def acceptance(self) -> float:
        """Share of drafted tokens accepted."""
        return self.accepted / self.drafted if self.drafted else float("nan")

    def as_dict(self) -> dict:
        return {"draft_n": self.k, "steps": self.steps, "drafted": self.drafted, "accepted": self.accepted,
                "acceptance": None if not self.drafted else self.acceptance, "rewinds": self.rewinds,
                "draft_seconds": self.draft_seconds, "verify_seconds": self.verify_seconds,
                "rewind_seconds": self.rewind_seconds}


class MTPDrafter:
    """Drafts with the MTP block of the trunk's file (an MTP session beside the trunk's)."""

    def __init__(self, mtp: Session):
        if mtp.block != "mtp":
            raise UsageError("MTPDrafter needs a Session(block='mtp')")
        self.mtp = mtp
        self.E = mtp.model.config.n_embd

    def start(self, prompt_ids: list[int], hidden: np.ndarray) -> None:
        """Catch up on the prompt: token t_p with the trunk's row h_{p-1} (zeros for p = 0)."""
        self.mtp.reset()
        h_prev = np.vstack([np.zeros((1, self.E), np.float32), hidden[:-1]])
        self.mtp.forward_hidden(prompt_ids, h_in=h_prev, logits="none")

    def draft(self, last: int, h_last: np.ndarray, k: int) -> list[int]:
        """k greedy drafts after `last` (h_last: the trunk's row that predicted it). The block keeps
        position P = (last, h_last), which the catch-up would write the same."""
        p0 = self.mtp.n_past
        out, tok, h = [], last, h_last
        for _ in range(k):
            logits, hid = self.mtp.forward_hidden([tok], h_in=h[None, :], logits="last")
            tok, h = int(np.argmax(logits)), hid[0]
            out.append(tok)
        self.mtp.truncate(p0 + 1)
        return out

    def accept(self, tokens: list[int], hidden: np.ndarray) -> None:
        """Catch up on accepted drafts d_1 .. d_n, each with the trunk's row that predicted it."""
        if tokens:
            self.mtp.forward_hidden(tokens, h_in=hidden, logits="none")


def generate_speculative(trunk: Session, drafter, prompt_ids: list[int], n_predict: int, k: int,
                         eog_ids=(), on_token=None) -> tuple[Generation, DraftStats]:
    """Up to n_predict greedy tokens after prompt_ids, k drafts a step (drafter: start / draft /
    accept as MTPDrafter's). Timings as generate(): prompt eval = the prefill (and the drafter's
    catch-up on it), eval = every step after the first token."""
    check_request(prompt_ids, n_predict, trunk.ctx)
    if k < 1:
        raise UsageError(f"--draft-n must be at least 1, got {k}")
    trunk.reset()
    g, st = Generation(list(prompt_ids)), DraftStats(k)
    eog = set(eog_ids)

    t0 = time.perf_counter()
    logits, hidden = trunk.forward_hidden(prompt_ids, logits="last")
    drafter.start(list(prompt_ids), hidden)
    last, h_last = int(np.argmax(logits)), hidden[-1]
    g.prompt_seconds = time.perf_counter() - t0

    def emit(tokens: list[int]) -> bool:
        """Append tokens; False once generation ends (end-of-generation token or budget)."""
        for t in tokens:
            g.ids.append(t)
            if on_token is not None:
                on_token(t)
            if t in eog:
                g.stop = "eog"
                return False
            if len(g.ids) == n_predict:
                return False
        return True

    going = emit([last])
    while going:
        kk = min(k, n_predict - len(g.ids) - 1)
        if kk == 0:         # one token left: a plain step
            t0 = time.perf_counter()
            logits, hidden = trunk.forward_hidden([last], logits="last")
            g.eval_seconds += time.perf_counter() - t0
            going = emit([int(np.argmax(logits))])
            continue
        t0 = time.perf_counter()
        drafts = drafter.draft(last, h_last, kk)
        t1 = time.perf_counter()
        snap = trunk.checkpoint()
        logits, hidden = trunk.forward_hidden([last, *drafts], logits="all")
        greedy = np.argmax(logits, axis=1)
        n = 0
        while n < kk and drafts[n] == int(greedy[n]):
            n += 1
        t2 = time.perf_counter()
        if n < kk:          # the delta-net state saw rejected drafts: back to the snapshot
            trunk.rewind(snap)
            trunk.forward_hidden([last, *drafts[:n]], logits="none")
            st.rewinds += 1
        drafter.accept(drafts[:n], hidden[:n])
        t3 = time.perf_counter()
        st.steps += 1
        st.drafted += kk
        st.accepted += n
        st.draft_seconds += t1 - t0
        st.verify_seconds += t2 - t1
        st.rewind_seconds += t3 - t2
        g.eval_seconds += t3 - t0
        last, h_last = int(greedy[n]), hidden[n]
        going = emit([*drafts[:n], last])
    return g, st
