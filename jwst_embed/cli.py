"""The ``jwst-embed`` command line.

The CLI is thin: every subcommand calls the same functions users call from
Python and adds only argument parsing and printing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of ``jwst-embed`` with all its subcommands.

    Returns
    -------
    parser : `argparse.ArgumentParser`
    """
    parser = argparse.ArgumentParser(
        prog="jwst-embed",
        description=(
            "Multimodal embeddings of JWST galaxies from any subset of NIRCam bands "
            "and NIRSpec PRISM spectra."
        ),
    )
    parser.add_argument("--version", action="version", version=f"jwst-embed {__version__}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``jwst-embed`` with the given arguments (default: ``sys.argv[1:]``).

    Parameters
    ----------
    argv : sequence of str, optional
        Command-line arguments without the program name.

    Returns
    -------
    status : int
        Process exit status.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    return int(handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
