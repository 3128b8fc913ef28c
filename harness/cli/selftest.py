"""`harness selftest`: the C self-test of the kernel variants (harness.engine.selftest)."""
from __future__ import annotations

import argparse


def cmd_selftest(a) -> int:
    from harness.engine.selftest import run
    return run(a.isa)


def add_parsers(sub) -> None:
    s = sub.add_parser("selftest", help="build and run the C self-test: every kernel of an ISA variant and a "
                                        "forward pass against the scalar variant (exit 0 / 1 / 77 = cannot run here)",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Build (into the cache) and run native/tests/selftest.c for one ISA variant\n"
                                   "(the checkout's native/, or the copy installed with the package: harness/_csrc).\n"
                                   "avx512 without AVX512 hardware exits 77 and checks the avx512 kernels' logic "
                                   "through SIMDe;\nneon runs under qemu-aarch64 -cpu cortex-a53, neon-dotprod "
                                   "under -cpu max.")
    s.add_argument("--isa", default="all", choices=["scalar", "avx2", "avx512", "neon", "neon-dotprod", "all"])
    s.set_defaults(func=cmd_selftest)
