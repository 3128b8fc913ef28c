"""Measure and speed up Qwen3.5 inference on CPUs.

The public surface: load_model / Model (GGUF files), Session (the C engine, in harness.engine),
the float64 Reference, synthesize (synthetic models with real shapes) and cpu_features (which ISA
variants of the C kernels exist and run here). The rooms of the package, lowest first:
foundation modules at the top (errors, ggml_types, native, cache, atomic, provenance, version),
then model -> engine / store -> analysis -> measure -> report -> cli (see the README's Architecture)."""
from harness.errors import HarnessError, ModelFileError, UnsupportedModelError, UsageError
from harness.model.loader import Model, load_model
from harness.version import __version__

# imported on first use: they load the C extension, which `import harness.errors` should not need
_LAZY = {"Reference": "harness.engine.reference", "Session": "harness.engine.session",
         "synthesize": "harness.model.synth"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")


def cpu_features() -> dict:
    """CPU flags, ISA variants compiled in, those this CPU runs, and the best one."""
    from harness.native import cpu_features as _cf
    return _cf()


__all__ = ["HarnessError", "ModelFileError", "UnsupportedModelError", "UsageError",
           "Model", "load_model", "Reference", "Session", "synthesize", "cpu_features", "__version__"]
