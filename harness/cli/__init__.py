"""The `harness` command line: one module per command group, the shared arguments in common.py."""
from harness.cli.main import main

__all__ = ["main"]
