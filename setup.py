"""The one native module, ``ledger._blocks`` (``ledger/hashing.py`` says why); the rest of the
package is described in ``pyproject.toml``. Optional: where it cannot be built (no compiler, no
OpenSSL headers), the install goes on and the same loops run in Python."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("ledger._blocks", ["ledger/_blocks.c"], libraries=["crypto"],
                             optional=True)])
