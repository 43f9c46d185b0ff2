"""Printing tables to the terminal (the command line and the demo share it)."""

from __future__ import annotations


def print_table(table, formats) -> None:
    """Print the columns of ``table`` named in ``formats`` (name -> format or None), all rows."""
    shown = table[[name for name in formats if name in table.colnames]]
    for name, fmt in formats.items():
        if fmt and name in shown.colnames:
            shown[name].info.format = fmt
    shown.pprint(max_lines=-1, max_width=-1)
