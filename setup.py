# The C engine is built by cffi (API / out-of-line mode) at install time.
# setuptools reads everything else from pyproject.toml.
from setuptools import setup

setup(cffi_modules=["native/ffi_build.py:ffibuilder"])
