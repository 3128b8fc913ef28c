"""Model files: the bounded GGUF reader and the writer, the typed config, numpy dequantizers,
synthetic presets and the synthesizer, and model fingerprints. Depends on the foundation only."""
from harness.model.loader import Model, load_model

__all__ = ["Model", "load_model"]
