"""Measure and speed up Qwen3.5 inference on CPUs.

The public surface: load_model / Model (GGUF files), the float64 Reference,
synthesize (synthetic models with real shapes) and cpu_features (which ISA
variants of the C kernels exist and run here)."""
from .errors import HarnessError, ModelFileError, UnsupportedModelError, UsageError
from .model import Model, load_model

__version__ = "0.1.0"


def cpu_features() -> dict:
    """CPU flags, ISA variants compiled in, those this CPU runs, and the best one."""
    from .native import cpu_features as _cf
    return _cf()


__all__ = ["HarnessError", "ModelFileError", "UnsupportedModelError", "UsageError",
           "Model", "load_model", "cpu_features", "__version__"]
