"""Running a model: the C engine's Session, the vocab strategies, the float64 numpy reference and
the C self-test driver. Depends on the model room and the foundation."""
from harness.engine.session import Session

__all__ = ["Session"]
