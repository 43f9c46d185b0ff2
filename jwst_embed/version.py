"""The package's version (written by setuptools_scm at install; ``"0.0.0"`` in a source tree never installed)."""

__all__ = ["version"]

try:
    from ._version import version
except ImportError:  # running from a source tree that was never installed
    version = "0.0.0"
