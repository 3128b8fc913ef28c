"""The hot kernels, per weight type and ISA variant: vec_dot (one weight row with one activation
row) and vec_dot4 (one weight row with four activation rows), on rows of N values, the gemm
panel (16 weight rows by 32 tokens of 1024 values) where a variant has one, and the repacked panel
(one group of 16 interleaved rows by 32 tokens, gemm_packed; two groups, gemm_packed2) where a variant
has one.

The timed call is the dispatch-table entry on prepared buffers (harness.measure.kernel_bench), checked
once against harness.native.Kernels in setup."""
from __future__ import annotations

import inspect

from harness.errors import UsageError

from .common import ISAS, WEIGHT_TYPES, kernel_bench, require_isa

prepare_dot = kernel_bench.prepare_dot
prepare_panel = getattr(kernel_bench, "prepare_panel", None)    # None: commits before the panel kernels
prepare_packed_panel = getattr(kernel_bench, "prepare_packed_panel", None)  # None: before repacked weights

N = 16384                        # a multiple of every block size; the rows stay in L2


class _KernelBench:
    params = (WEIGHT_TYPES, ISAS)
    param_names = ["type", "isa"]
    rows = 1

    def setup(self, wtype, isa):
        require_isa(isa)
        try:
            self.dot = prepare_dot(isa, wtype, N, self.rows)
        except UsageError as e:                 # no such kernel in this commit's table
            raise NotImplementedError(str(e)) from None


class VecDot(_KernelBench):
    def time_vec_dot(self, wtype, isa):
        self.dot()


class VecDot4(_KernelBench):
    rows = 4

    def time_vec_dot4(self, wtype, isa):
        self.dot()


class Panel:
    params = (WEIGHT_TYPES, ISAS)
    param_names = ["type", "isa"]

    def setup(self, wtype, isa):
        require_isa(isa)
        if prepare_panel is None:
            raise NotImplementedError("no panel kernels in this commit")
        try:
            self.panel = prepare_panel(isa, wtype)
        except UsageError as e:                 # no panel kernel for this type, or none in this commit
            raise NotImplementedError(str(e)) from None

    def time_panel(self, wtype, isa):
        self.panel()


class PackedPanel:
    params = (WEIGHT_TYPES, ISAS)
    param_names = ["type", "isa"]

    def setup(self, wtype, isa):
        require_isa(isa)
        if prepare_packed_panel is None:
            raise NotImplementedError("no repacked weights in this commit")
        try:
            self.panel = prepare_packed_panel(isa, wtype)
        except UsageError as e:                 # no repacked product for this type here
            raise NotImplementedError(str(e)) from None

    def time_packed_panel(self, wtype, isa):
        self.panel()


class PackedPanelTwoGroups:
    """Two repacked groups at once (gemm_packed2), where a variant has the product: what prefill runs
    for BF16 (AVX512-BF16) and Q8_0 (AVX512-VNNI)."""
    params = (WEIGHT_TYPES, ISAS)
    param_names = ["type", "isa"]

    def setup(self, wtype, isa):
        require_isa(isa)
        if prepare_packed_panel is None or "groups" not in inspect.signature(prepare_packed_panel).parameters:
            raise NotImplementedError("no two-group repacked product in this commit")
        try:
            self.panel = prepare_packed_panel(isa, wtype, groups=2)
        except UsageError as e:                 # no two-group product for this type here
            raise NotImplementedError(str(e)) from None

    def time_packed2_panel(self, wtype, isa):
        self.panel()
