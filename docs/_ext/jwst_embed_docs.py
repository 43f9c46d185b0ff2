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
``.. seed-table-details:: PATH``
    The rest of ``benchmarks/results/seed_table.json``: every metric for every input set,
    per-class F1, metrics binned by redshift and by spectral S/N, the labels-only ablation and
    throughput (missing file: a note, as for ``optional-results``).
``.. real-redshift-table:: PATH``
    Redshift scores of every method on the real spectra, per population, with seconds per
    object, from ``benchmarks/results/real_redshift.json`` (``benchmarks/real_redshift.py``).
``.. ablation-table:: PATH``
    The spectrum-path ablations of ``benchmarks/ablation_spectrum_redshift.py``: mock and real
    scores per variant.
``.. downstream-metrics:: PATH``
    Validation scores of a model before and after `jwst_embed.training.downstream` training, from
    the ``training.json`` that ``benchmarks/train_default_v4.py`` writes.
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
        # A decoder-only refit (--keep-heads) left the heads alone: show the decoder columns only.
        columns = () if result.get("keep_heads") else REFIT_COLUMNS
        lines = [
            ".. list-table::",
            "   :header-rows: 1",
            "",
            "   * - input set (validation objects)",
            *[f"     - {header}" for _, header, _ in columns],
        ]
        decoder_before, decoder_after = result.get("decoder_before", {}), result.get("decoder_after", {})
        if decoder_after:
            lines += ["     - spectrum R^2 (mean)", "     - spectrum R^2 (median)"]
        for name, before in result["before"].items():
            after = result["after"][name]
            lines.append(f"   * - {name} ({after['n']:,})")
            for key, _, fmt in columns:
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


# Rows of the per-input-set table: (key in seed_table.json, label, format).
SEED_SET_ROWS = (
    ("morph_f1_macro", "morphology macro-F1", "{:.3f}"),
    ("morph_accuracy", "morphology accuracy", "{:.3f}"),
    ("spec_r2", "spectrum R^2, flux, mean", "{:.3f}"),
    ("spec_r2_median", "spectrum R^2, flux, median", "{:.3f}"),
    ("spec_r2_stretched", "spectrum R^2, asinh-stretched, mean", "{:.3f}"),
    ("spec_r2_stretched_median", "spectrum R^2, asinh-stretched, median", "{:.3f}"),
    ("z_sigma_nmad", "redshift sigma_NMAD", "{:.3f}"),
    ("z_outlier_frac", "redshift outlier fraction", "{:.3f}"),
    ("z_bias", "redshift bias (median dz)", "{:+.4f}"),
    ("z_coverage_68", "coverage of the 68% interval", "{:.3f}"),
    ("z_pit_extreme_frac", "PIT below 0.005 or above 0.995", "{:.3f}"),
    ("logm_sigma", "log M* scatter, std (dex)", "{:.3f}"),
    ("logm_nmad", "log M* scatter, NMAD (dex)", "{:.3f}"),
    ("logm_bias", "log M* bias (dex)", "{:+.3f}"),
)
# The labels-only ablation's runs, in the order shown.
ABLATION_RUNS = (
    ("default_model_heads_same_subset", "default model (pretrained heads)"),
    ("pretrained_frozen_1000", "pretrained, frozen backbone, new heads, 1,000 labels"),
    ("pretrained_frozen_10000", "pretrained, frozen backbone, new heads, 10,000 labels"),
    ("pretrained_end_to_end_1000", "pretrained, fine-tuned end to end, 1,000 labels"),
    ("pretrained_end_to_end_10000", "pretrained, fine-tuned end to end, 10,000 labels"),
    ("scratch_1000", "same architecture from scratch, 1,000 labels"),
    ("scratch_10000", "same architecture from scratch, 10,000 labels"),
)


def _list_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        lines.append(f"   * - {row[0]}")
        lines += [f"     - {cell}" for cell in row[1:]]
    return lines + [""]


def _bin_label(low: float, high: float) -> str:
    return f">= {low:g}" if high >= 1e8 else f"{low:g} - {high:g}"


class SeedTableDetails(_ParsedDirective):
    required_arguments = 1

    def run(self):
        import json

        path = self._path(self.arguments[0])
        self.env.note_dependency(str(path))
        if not path.is_file():
            return self._parse([".. note::", "", f"   The benchmark has not been run yet (no ``{self.arguments[0]}``)."])
        result = json.loads(path.read_text())
        sets = result["input_sets"]
        names = list(sets)
        # Nested parsing cannot open sections, so the parts are rubrics.
        lines = [".. rubric:: All metrics per input set", ""]
        lines += [f"{result['test_set']['n_objects']:,} test galaxies (seed {result['test_set']['seed']}), "
                  "the same objects under each input set:", ""]
        rows = [[label, *[fmt.format(sets[n][key]) if sets[n].get(key) is not None else "--" for n in names]]
                for key, label, fmt in SEED_SET_ROWS]
        lines += _list_table(["metric", *names], rows)
        reference = sets.get(result.get("reference_set", "F150W+PRISM"), {})
        if "spec_r2_from_F150W_alone" in reference:
            lines += [f"The PRISM spectrum decoded from F150W alone, for the same objects: R^2 mean "
                      f"{reference['spec_r2_from_F150W_alone']:.3f}, median {reference['spec_r2_from_F150W_alone_median']:.3f}.", ""]
        lines += [".. rubric:: Morphology F1 per class", ""]
        classes = list(sets[names[0]]["morph_f1_per_class"])
        lines += _list_table(["class", *names],
                             [[c, *[f"{sets[n]['morph_f1_per_class'][c]:.3f}" for n in names]] for c in classes])
        for key, title, what in (("by_redshift", "Binned by redshift", "true z"),
                                 ("by_spectrum_snr", "Binned by spectral S/N", "median S/N per pixel")):
            if key not in reference:
                continue
            lines += [f".. rubric:: {title} ({result.get('reference_set', 'F150W+PRISM')})", ""]
            rows = [[_bin_label(b["lo"], b["hi"]), f"{b['n']:,}", f"{b['z_sigma_nmad']:.3f}", f"{b['z_outlier_frac']:.3f}",
                     f"{b['logm_std']:.3f}", f"{b['logm_nmad']:.3f}"] for b in reference[key]]
            lines += _list_table([what, "objects", "z sigma_NMAD", "z outliers", "log M* std", "log M* NMAD"], rows)
        ablation = result.get("baselines", {}).get("labels_only_vs_pretrained")
        if ablation:
            lines += [".. rubric:: Labels only against pretraining", ""]
            lines += [f"Inputs {ablation['inputs']}; labels from {ablation['train_pool']}; evaluated on "
                      f"{ablation['evaluated_on']}.", "", ablation.get("note", ""), ""]
            rows = []
            for key, label in ABLATION_RUNS:
                run = ablation.get(key)
                if not run:
                    continue
                metrics = run.get("same_subset", run)
                training = run.get("training", {})
                cost = f"{training['steps']} steps, {training['seconds']:.0f} s" if training else "--"
                rows.append([label, f"{metrics['z_sigma_nmad']:.3f}", f"{metrics['z_outlier_frac']:.3f}",
                             f"{metrics['logm_sigma']:.3f}", f"{metrics['morph_f1_macro']:.3f}", cost])
            lines += _list_table(["model", "z sigma_NMAD", "z outliers", "log M* std", "morphology F1", "training (2 CPU cores)"], rows)
        throughput = result.get("throughput", {})
        if throughput:
            cpu = throughput.get("cpu", {})
            lines += [".. rubric:: Throughput", ""]
            rows = []
            if cpu:
                rows.append([f"embedding, {cpu['modalities']}, from prepared arrays", f"{cpu['prepared']['objects_per_s']:,.0f} objects/s",
                             f"CPU, {cpu['torch_threads']} threads, batch {cpu['prepared']['batch_size']}, {cpu['precision']}"])
                rows.append([f"embedding, {cpu['modalities']}, from astropy objects", f"{cpu['astropy']['objects_per_s']:,.0f} objects/s",
                             f"CPU, {cpu['torch_threads']} threads, batch {cpu['astropy']['batch_size']}, preprocessing included"])
            if "cpu_training_samples_per_s" in throughput:
                rows.append(["training (supervised steps)", f"{throughput['cpu_training_samples_per_s']:,.0f} samples/s", "CPU, batch 64"])
            gpu = throughput.get("gpu_recorded")
            if gpu:
                for key in ("embedding_bs1024", "embedding_bs256"):
                    if key in gpu:
                        rows.append([f"embedding, {gpu[key]['modalities']}, prepared", f"{gpu[key]['objects_per_s']:,.0f} objects/s",
                                     f"{gpu['card']}, batch {gpu[key]['batch_size']}, {gpu[key]['precision']} (recorded)"])
                if "training_samples_per_s_median" in gpu:
                    rows.append(["pretraining (median step)", f"{gpu['training_samples_per_s_median']:,.0f} samples/s",
                                 f"{gpu['card']}, on-device simulation (recorded)"])
            lines += _list_table(["what", "rate", "hardware"], rows)
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


class RealRedshiftTable(_ParsedDirective):
    required_arguments = 1

    def run(self):
        import json

        path = self._path(self.arguments[0])
        self.env.note_dependency(str(path))
        if not path.is_file():
            return self._parse([".. note::", "", f"   ``{self.arguments[0]}`` has not been made yet."])
        result = json.loads(path.read_text())
        rows = []
        for method, record in result["methods"].items():
            for population in ("all", "galaxy", "little_red_dot"):
                if population not in record:
                    continue
                s = record[population]
                rows.append([
                    method if population == "all" else "", population.replace("_", " "), f"{s['n']}",
                    f"{s['sigma_nmad']:.4f}", f"{s['outlier_fraction']:.3f}", f"{s['coverage68']:.2f}",
                    f"{s.get('clean_fraction', float('nan')):.2f}",
                    f"{record['s_per_object'] * 1e3:.1f}" if population == "all" else "",
                ])  # fmt: skip
        header = ["method", "objects", "n", "sigma_NMAD", "outliers", "68% coverage", "z_flag == 0", "ms / object"]
        lines = _list_table(header, rows)
        lines += ["", f"Model ``{result['model']}``; template cube built once in {result['template_cube_s']:.1f} s; "
                  f"{result['torch_threads']} torch threads."]  # fmt: skip
        if "auto_cost_fraction_of_template" in result:
            lines[-1] += f" ``auto`` costs {100 * result['auto_cost_fraction_of_template']:.1f}% of ``template`` per object."
        return self._parse(lines)


class AblationTable(_ParsedDirective):
    required_arguments = 1

    def run(self):
        import json

        path = self._path(self.arguments[0])
        self.env.note_dependency(str(path))
        if not path.is_file():
            return self._parse([".. note::", "", f"   ``{self.arguments[0]}`` has not been made yet."])
        result = json.loads(path.read_text())
        rows = []
        for variant, record in result.items():
            cells = [f"``{variant}``", f"{record['parameters']:,}", f"{record['steps']:,}"]
            for key in ("mock", "mock_snr_ge10", "real", "real_little_red_dot"):
                s = record.get(key)
                cells.append(f"{s['sigma_nmad']:.4f} / {s['outlier_fraction']:.3f}" if s else "")
            rows.append(cells)
        header = ["variant", "parameters", "steps", "mock (all)", "mock S/N >= 10", "real (68)", "real LRDs (62)"]
        return self._parse(_list_table(header, rows) + ["", "Cells: sigma_NMAD / outlier fraction."])


# Rows of the downstream-training table: (key, label, format).
DOWNSTREAM_ROWS = (
    ("z_sigma_nmad_PRISM", "redshift sigma_NMAD, PRISM alone", "{:.4f}"),
    ("z_outliers_PRISM", "redshift outlier fraction, PRISM alone", "{:.3f}"),
    ("z_sigma_nmad_F150W+PRISM", "redshift sigma_NMAD, F150W + PRISM", "{:.4f}"),
    ("z_outliers_F150W+PRISM", "redshift outlier fraction, F150W + PRISM", "{:.3f}"),
    ("z_sigma_nmad_F150W", "redshift sigma_NMAD, F150W alone", "{:.3f}"),
    ("z_outliers_F150W", "redshift outlier fraction, F150W alone", "{:.3f}"),
    ("logm_sigma", "log M* scatter (dex), F150W + PRISM", "{:.3f}"),
    ("morph_f1", "morphology macro-F1, F150W + PRISM", "{:.3f}"),
    ("spec_r2_median", "spectrum R^2 (median), F150W + PRISM", "{:.3f}"),
)


class DownstreamMetrics(_ParsedDirective):
    required_arguments = 1

    def run(self):
        import json

        path = self._path(self.arguments[0])
        self.env.note_dependency(str(path))
        result = json.loads(path.read_text())
        before, after = result["validation_before_phase2"], result["validation"]
        rows = [[label, fmt.format(before[key]), f"**{fmt.format(after[key])}**"]
                for key, label, fmt in DOWNSTREAM_ROWS if key in after]  # fmt: skip
        header = ["validation metric (2,000 mock galaxies, seed 424243)", "before phase 2", "after"]
        return self._parse(_list_table(header, rows))


def setup(app):
    app.connect("autodoc-process-docstring", _plain_sklearn_routing_docstrings)
    app.add_directive("validation-metrics", ValidationMetrics)
    app.add_directive("optional-results", OptionalResults)
    app.add_directive("head-refit-metrics", HeadRefitMetrics)
    app.add_directive("seed-table-details", SeedTableDetails)
    app.add_directive("real-data-plot", RealDataPlot)
    app.add_directive("real-redshift-table", RealRedshiftTable)
    app.add_directive("ablation-table", AblationTable)
    app.add_directive("downstream-metrics", DownstreamMetrics)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
