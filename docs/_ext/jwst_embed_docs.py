"""Sphinx directives of the jwst_embed documentation: pages built from result files.

``.. validation-metrics:: PATH``
    A table of the last validation row of a pretraining ``metrics.csv`` (paths relative to the
    documentation source folder), so that the model card quotes the file, not a copy of it.
``.. head-refit-metrics:: PATH``
    Validation metrics before and after the refit of the heads and the spectrum decoder, per input
    set, from the JSON written by ``benchmarks/refit_heads.py``.
``.. optional-results:: PATH``
    The reStructuredText file at PATH (e.g. ``benchmarks/results/seed_table.rst``) followed by the
    figures matching ``:figures:`` (a glob beside it); if the file is missing, a note saying that
    the benchmark has not been run, so the build does not fail.
``.. real-data-plot:: SCRIPT``
    A ``.. plot::`` of a tutorial script that reads the real example files; if the folder
    ``$JWST_EMBED_REAL_DATA`` is missing, a note instead of a failing build.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

# What each validation column means, in the order the model card shows them.
VALIDATION_COLUMNS = {
    "val_head_redshift_sigma_nmad": "redshift head: sigma_NMAD of (z_pred - z_true) / (1 + z_true)",
    "val_head_redshift_outlier_fraction": "redshift head: outlier fraction (abs(dz) > 0.15)",
    "val_redshift_sigma_nmad": "kNN redshift from the fused embedding: sigma_NMAD",
    "val_redshift_outlier_fraction": "kNN redshift from the fused embedding: outlier fraction",
    "val_head_log_mass_sigma": "stellar-mass head: scatter of log M_pred - log M_true (dex)",
    "val_head_morphology_f1": "morphology head: macro-averaged F1 over 6 classes",
    "val_spectrum_r2_median": "spectrum decoder, all inputs: median R^2 against the noiseless spectrum",
    "val_spectrum_r2": "spectrum decoder, all inputs: mean R^2",
    "val_spectrum_r2_images_median": "spectrum decoder, images alone: median R^2",
    "val_spectrum_r2_images": "spectrum decoder, images alone: mean R^2",
}


class _ParsedDirective(SphinxDirective):
    def _parse(self, lines: list[str]) -> list:
        content = StringList(lines, source=self.get_source_info()[0])
        holder = nodes.container()
        self.state.nested_parse(content, self.content_offset, holder)
        return holder.children

    def _path(self, argument: str) -> Path:
        _, absolute = self.env.relfn2path(argument, self.env.docname)
        return Path(absolute)


class ValidationMetrics(_ParsedDirective):
    required_arguments = 1

    def run(self):
        path = self._path(self.arguments[0])
        self.env.note_dependency(str(path))
        with open(path, newline="") as handle:
            rows = [row for row in csv.DictReader(handle) if row.get("val_redshift_sigma_nmad")]
        if not rows:
            raise self.error(f"{path} has no validation rows")
        last = rows[-1]
        lines = [
            ".. list-table::",
            "   :header-rows: 1",
            "   :widths: 70 30",
            "",
            f"   * - validation metric at step {last['step']} ({int(float(last['samples'])):,} galaxies seen)",
            "     - value",
        ]
        for column, meaning in VALIDATION_COLUMNS.items():
            if last.get(column):
                lines += [f"   * - {meaning}", f"     - {float(last[column]):.4f}"]
        return self._parse(lines)


# Columns of the head-refit table: (key in the JSON, header, format).
REFIT_COLUMNS = (
    ("z_sigma_nmad", "z sigma_NMAD", "{:.3f}"),
    ("z_outlier_frac", "z outliers", "{:.3f}"),
    ("z_coverage_68", "68% coverage", "{:.2f}"),
    ("logm_sigma", "log M scatter (dex)", "{:.3f}"),
    ("morph_f1_macro", "morphology F1", "{:.3f}"),
)


class HeadRefitMetrics(_ParsedDirective):
    required_arguments = 1

    def run(self):
        import json

        path = self._path(self.arguments[0])
        self.env.note_dependency(str(path))
        result = json.loads(path.read_text())
        lines = [
            ".. list-table::",
            "   :header-rows: 1",
            "",
            "   * - input set (validation objects)",
            *[f"     - {header}" for _, header, _ in REFIT_COLUMNS],
        ]
        decoder_before, decoder_after = result.get("decoder_before", {}), result.get("decoder_after", {})
        if decoder_after:
            lines += ["     - spectrum R^2 (mean)", "     - spectrum R^2 (median)"]
        for name, before in result["before"].items():
            after = result["after"][name]
            lines.append(f"   * - {name} ({after['n']:,})")
            for key, _, fmt in REFIT_COLUMNS:
                lines.append(f"     - {fmt.format(before[key])} -> **{fmt.format(after[key])}**")
            if decoder_after:
                for key in ("spec_r2", "spec_r2_median"):
                    old, new = decoder_before[name][key], decoder_after[name][key]
                    lines.append(f"     - {old:.2f} -> **{new:.2f}**")
        return self._parse(lines)


class OptionalResults(_ParsedDirective):
    required_arguments = 1
    option_spec = {"figures": directives.unchanged, "missing": directives.unchanged}

    def run(self):
        path = self._path(self.arguments[0])
        self.env.note_dependency(str(path))
        if not path.is_file():
            message = self.options.get("missing", "This benchmark has not been run yet.")
            return self._parse([".. note::", "", f"   {message} (no ``{self.arguments[0]}``)"])
        lines = path.read_text().splitlines() + [""]
        pattern = self.options.get("figures")
        if pattern:
            base = self.arguments[0].rsplit("/", 1)[0]
            for figure in sorted(path.parent.glob(pattern)):
                self.env.note_dependency(str(figure))
                lines += [f".. figure:: {base}/{figure.name}", "   :width: 100%", "", f"   ``{figure.name}``", ""]
        return self._parse(lines)


class RealDataPlot(_ParsedDirective):
    required_arguments = 1

    def run(self):
        real_dir = Path(os.environ.get("JWST_EMBED_REAL_DATA", ""))
        if not real_dir.is_dir():
            return self._parse([
                ".. note::",
                "",
                f"   The real example files were not found at ``{real_dir}`` when this page was built, so "
                "the figures of this tutorial are missing; set ``JWST_EMBED_REAL_DATA`` to the folder.",
            ])
        return self._parse([f".. plot:: {self.arguments[0]}", ""])


def _plain_sklearn_routing_docstrings(app, what, name, obj, options, lines):
    """Replace the docstrings of scikit-learn's generated ``set_*_request`` methods.

    `~jwst_embed.EmbeddingRegressor` and `~jwst_embed.EmbeddingClassifier` get them from
    scikit-learn's metadata routing; their docstrings refer to scikit-learn's own glossary and
    labels, which do not exist here and would fail the build (-W).
    """
    method = name.rsplit(".", 1)[-1]
    if method.startswith("set_") and method.endswith("_request") and name.startswith("jwst_embed."):
        step = method[len("set_") : -len("_request")]
        lines[:] = [
            f"Request metadata passed to ``{step}`` (scikit-learn metadata routing; see the "
            "scikit-learn user guide). Only relevant inside a scikit-learn meta-estimator.",
        ]


def setup(app):
    app.connect("autodoc-process-docstring", _plain_sklearn_routing_docstrings)
    app.add_directive("validation-metrics", ValidationMetrics)
    app.add_directive("optional-results", OptionalResults)
    app.add_directive("head-refit-metrics", HeadRefitMetrics)
    app.add_directive("real-data-plot", RealDataPlot)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
