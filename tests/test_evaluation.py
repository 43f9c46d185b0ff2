"""Tests of jwst_embed.evaluation (benchmark metrics), ``jwst-embed evaluate`` and the seed table."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from astropy.table import Table

from jwst_embed import evaluation
from jwst_embed.evaluation import (
    binned_metrics,
    evaluate,
    interval_coverage,
    mass_scatter,
    morphology_f1,
    pit_values,
    redshift_metrics,
    spectrum_r2,
    summarise_r2,
)

ROOT = Path(__file__).resolve().parent.parent
SPECTRUM_FILES = ("ceers-1345_933.spec.fits", "canucs-1208_458.spec.fits", "023286_prism_clear_v5.1_1D.fits",
                  "199773_prism_clear_v5.0_1D.fits")  # fmt: skip


def test_redshift_metrics_match_the_definition():
    rng = np.random.default_rng(1)
    z_true = rng.uniform(0.2, 10, 500)
    z_pred = z_true + (1 + z_true) * rng.normal(0, 0.05, 500)
    z_pred[:40] += 3.0  # catastrophic outliers
    dz = (z_pred - z_true) / (1 + z_true)
    m = redshift_metrics(z_pred, z_true)
    assert m["sigma_nmad"] == pytest.approx(1.4826 * np.median(np.abs(dz - np.median(dz))))
    assert m["outlier_frac"] == pytest.approx(np.mean(np.abs(dz) > 0.15))
    assert 0.04 < m["sigma_nmad"] < 0.07  # robust to the outliers
    # non-finite pairs are dropped, not propagated
    m_nan = redshift_metrics(np.r_[z_pred, np.nan], np.r_[z_true, 1.0])
    assert m_nan["n"] == 500 and m_nan["sigma_nmad"] == pytest.approx(m["sigma_nmad"])


def test_mass_scatter_std_and_nmad():
    rng = np.random.default_rng(2)
    truth = rng.uniform(8, 11, 20_000)
    residual = rng.normal(0.1, 0.3, truth.size)
    m = mass_scatter(truth + residual, truth)
    assert m["std"] == pytest.approx(residual.std())
    assert m["nmad"] == pytest.approx(0.3, abs=0.01)  # NMAD of a Gaussian is its sigma
    assert m["bias"] == pytest.approx(0.1, abs=0.01)
    with pytest.raises(ValueError, match="differ in length"):
        mass_scatter([1.0, 2.0], [1.0])


def test_morphology_f1_matches_scikit_learn():
    from sklearn.metrics import accuracy_score, f1_score

    rng = np.random.default_rng(3)
    truth = rng.integers(0, 6, 400)
    pred = np.where(rng.random(400) < 0.6, truth, rng.integers(0, 6, 400))
    m = morphology_f1(truth, pred)
    assert m["f1_macro"] == pytest.approx(f1_score(truth, pred, average="macro"))
    assert m["accuracy"] == pytest.approx(accuracy_score(truth, pred))
    per_class = f1_score(truth, pred, average=None)
    assert list(m["f1_per_class"].values()) == pytest.approx(list(per_class))
    assert np.sum(m["confusion"]) == 400
    # names work too, and unknown names are an error that names the classes
    assert morphology_f1(["disk", "merger"], ["disk", "disk"])["f1_per_class"]["merger"] == 0.0
    with pytest.raises(ValueError, match="unknown class 'blob'"):
        morphology_f1(["blob"], ["disk"])


def test_spectrum_r2_matches_per_row_r2_score():
    from sklearn.metrics import r2_score

    rng = np.random.default_rng(4)
    truth = rng.normal(size=(5, 50)).cumsum(axis=1)
    pred = truth + rng.normal(0, 0.5, truth.shape)
    r2 = spectrum_r2(pred, truth)
    assert r2 == pytest.approx([r2_score(t, p) for t, p in zip(truth, pred, strict=True)])
    flat = spectrum_r2(pred[:1], np.ones((1, 50)))
    assert np.isnan(flat[0])
    summary = summarise_r2(np.r_[r2, np.nan])
    assert summary["n"] == 5 and summary["median"] == pytest.approx(np.median(r2))


def test_pit_is_uniform_for_calibrated_pdfs_and_coverage_is_68_percent():
    rng = np.random.default_rng(5)
    edges = np.linspace(0, 10, 201)
    centres = 0.5 * (edges[1:] + edges[:-1])
    means = rng.uniform(2, 8, 3000)
    pdf = np.exp(-0.5 * ((centres[None, :] - means[:, None]) / 0.5) ** 2)
    pdf /= pdf.sum(axis=1, keepdims=True)
    z_true = means + rng.normal(0, 0.5, means.size)  # drawn from the PDFs themselves
    pit = pit_values(pdf, edges, z_true)
    counts = np.histogram(pit, bins=10, range=(0, 1))[0]
    assert counts.min() > 0.8 * 300 and counts.max() < 1.2 * 300
    assert interval_coverage(means - 0.5, means + 0.5, z_true) == pytest.approx(0.683, abs=0.03)
    # a too-narrow PDF piles PIT values at 0 and 1
    narrow = pit_values(np.eye(200)[np.searchsorted(edges, means) - 1], edges, z_true)
    assert np.mean((narrow < 0.05) | (narrow > 0.95)) > 0.7


def test_binned_metrics_counts_and_values():
    z = np.linspace(0.5, 5.5, 100)
    rows = binned_metrics(z, [0, 3, 6], z_pred=z, z_true=z, log_mass_pred=z, log_mass_true=z + 0.1)
    assert [row["n"] for row in rows] == [50, 50]
    assert rows[0]["z_sigma_nmad"] == 0.0 and rows[0]["logm_std"] == pytest.approx(0.0, abs=1e-9)
    assert "z_sigma_nmad" not in binned_metrics(z, [0, 0.6], z_pred=z, z_true=z)[0]  # too few objects


@pytest.fixture(scope="module")
def tiny_embedder():
    from jwst_embed.embedder import MultimodalEmbedder
    from jwst_embed.models import ModelConfig, MultimodalModel

    torch.manual_seed(0)
    return MultimodalEmbedder(MultimodalModel(ModelConfig.preset("tiny")), device="cpu")


@pytest.fixture(scope="module")
def real_spectra(real_dir):
    from jwst_embed.io import read_spectrum

    return [read_spectrum(real_dir / name) for name in SPECTRUM_FILES]


def test_evaluate_agrees_with_the_prediction_tables(tiny_embedder, real_spectra):
    labels = Table({"z": [1.2, 3.0, np.nan, 6.5], "log_mass": [9.0, 9.5, 10.0, 8.5],
                    "morphology": ["disk", "merger", "disk", "spheroid"]})  # fmt: skip
    metrics = evaluate(tiny_embedder, spectra=real_spectra, labels=labels)
    table = tiny_embedder.predict(spectra=real_spectra)
    known = np.isfinite(labels["z"])
    z_pred, z_true = np.asarray(table["z"])[known], np.asarray(labels["z"])[known]
    dz = (z_pred - z_true) / (1 + z_true)
    assert metrics["n_objects"] == 4 and metrics["redshift"]["n"] == 3
    assert metrics["redshift"]["sigma_nmad"] == pytest.approx(1.4826 * np.median(np.abs(dz - np.median(dz))), rel=1e-5)
    assert 0.0 <= metrics["redshift"]["pit_mean"] <= 1.0
    residual = np.asarray(table["log_mass"]) - np.asarray(labels["log_mass"])
    assert metrics["log_mass"]["std"] == pytest.approx(residual.std(), rel=1e-5)
    expected_accuracy = np.mean(np.asarray(table["morphology"]).astype(str) == np.asarray(labels["morphology"]))
    assert metrics["morphology"]["accuracy"] == pytest.approx(expected_accuracy)
    with pytest.raises(ValueError, match="none of the columns"):
        evaluate(tiny_embedder, spectra=real_spectra, labels=Table({"mass": [1.0] * 4}))
    with pytest.raises(ValueError, match="3 rows but there are 4 objects"):
        evaluate(tiny_embedder, spectra=real_spectra, labels=Table({"z": [1.0, 2.0, 3.0]}))


def test_cli_evaluate_prints_and_writes_json(tmp_path, tiny_embedder, real_dir, capsys):
    from jwst_embed.cli import main
    from jwst_embed.training.checkpoint import save_model

    model_path = save_model(tmp_path / "model.pt", tiny_embedder.model, {})
    table = Table({"file": [str(real_dir / name) for name in SPECTRUM_FILES], "redshift": [1.2, 3.0, 4.4, 6.5]})
    table_path = tmp_path / "labels.ecsv"
    table.write(table_path)
    output = tmp_path / "metrics.json"
    assert main(["evaluate", str(table_path), "--model", str(model_path), "--device", "cpu", "-o", str(output)]) == 0
    printed = capsys.readouterr().out
    written = json.loads(output.read_text())
    assert written["n_objects"] == 4 and written["redshift"]["n"] == 4
    assert f"sigma_NMAD={written['redshift']['sigma_nmad']:.4f}" in printed
    with pytest.raises(SystemExit, match="no 'file' column"):
        Table({"z": [1.0]}).write(tmp_path / "bad.ecsv")
        main(["evaluate", str(tmp_path / "bad.ecsv"), "--model", str(model_path)])


def _seed_table_module():
    spec = importlib.util.spec_from_file_location("seed_table", ROOT / "benchmarks" / "seed_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_NUMBER = re.compile(r"(?<![\w.])-?\d+\.\d+(?:e[-+]?\d+)?")


def _numbers(text: str) -> list[str]:
    return _NUMBER.findall(text)


def test_rst_snippet_carries_the_json_numbers():
    """make_rst writes each metric beside its reference; the snippet's numbers come from the result."""
    module = _seed_table_module()
    block = {"morph_f1_macro": 0.5, "spec_r2": 0.25, "spec_r2_median": 0.6, "spec_r2_stretched": 0.7,
             "z_sigma_nmad": 0.111, "z_outlier_frac": 0.2, "z_coverage_68": 0.6, "logm_sigma": 0.3, "logm_nmad": 0.25}  # fmt: skip
    auto = {"z_sigma_nmad": 0.0011, "s_per_object": 0.003, "cost_fraction_of_template_fit": 0.05}
    result = {
        "input_sets": {"F150W+PRISM": {**block, "auto_same_subset": auto}, "PRISM": {**block, "z_sigma_nmad": 0.0555},
                       "4 bands+PRISM": {**block, "z_sigma_nmad": 0.0777}},  # fmt: skip
        "baselines": {"template_fit": {"z_sigma_nmad": 0.0123, "n": 10, "s_per_object": 0.02},
                      "pixel_knn": {"z_sigma_nmad": 0.4321, "n_train": 100}},  # fmt: skip
        "test_set": {"seed": 990001, "n_objects": 100},
        "model": {"name": "default", "preset": "small", "parameters": 7.3e6},
    }
    rst = module.make_rst(result)
    row = next(line for line in rst.splitlines() if line.startswith("Redshift sigma_NMAD"))
    assert row.split()[2:] == ["0.13", "0.111", "0.0011", "0.056", "0.078", "0.012", "0.432"]
    assert _numbers("a 4.4e-04 b 0.25") == ["4.4e-04", "0.25"]
    assert module.COMMAND in rst


def test_readme_seed_table_matches_the_results():
    """When README.rst carries the seed table, its numbers are those of seed_table.json."""
    readme = (ROOT / "README.rst").read_text()
    start, end = ".. seed-table-start", ".. seed-table-end"
    if start not in readme or end not in readme:
        pytest.skip("README.rst has no seed table (markers absent)")
    results = ROOT / "benchmarks" / "results" / "seed_table.json"
    if not results.is_file():
        pytest.fail("README.rst has the seed table but benchmarks/results/seed_table.json is missing")
    assert _table_is_current(readme, json.loads(results.read_text())), (
        "README seed table is stale: paste benchmarks/results/seed_table.rst between the markers"
    )


def _table_is_current(readme: str, result: dict) -> bool:
    block = readme.split(".. seed-table-start", 1)[1].split(".. seed-table-end", 1)[0]
    return _numbers(block) == _numbers(_seed_table_module().make_rst(result))


def test_readme_check_catches_a_stale_number():
    results = ROOT / "benchmarks" / "results" / "seed_table.json"
    if not results.is_file():
        pytest.skip("no benchmarks/results/seed_table.json yet")
    result = json.loads(results.read_text())
    snippet = _seed_table_module().make_rst(result)
    readme = f"Intro\n\n.. seed-table-start\n\n{snippet}\n.. seed-table-end\n\nMore 1.5 text\n"
    assert _table_is_current(readme, result)
    stale = dict(result, z_sigma_nmad=0.5)
    stale["input_sets"] = {**result["input_sets"], "F150W+PRISM": {**result["input_sets"]["F150W+PRISM"],
                                                                   "z_sigma_nmad": 0.777}}  # fmt: skip
    assert not _table_is_current(readme, stale)


def test_all_is_public_and_documented():
    for name in evaluation.__all__:
        assert getattr(evaluation, name).__doc__


def test_readme_real_redshift_table_matches_the_results(benchmark_script):
    """README.rst's table of redshifts on real spectra carries the numbers of real_redshift.json."""
    readme = (ROOT / "README.rst").read_text()
    start, end = ".. real-redshift-start", ".. real-redshift-end"
    if start not in readme or end not in readme:
        pytest.skip("README.rst has no real-spectra table (markers absent)")
    result = json.loads((ROOT / "benchmarks" / "results" / "real_redshift.json").read_text())
    block = readme.split(start, 1)[1].split(end, 1)[0]
    module = benchmark_script("real_redshift")
    expected = module.make_rst(result)
    assert _numbers(block) == _numbers(expected), "README real-spectra table is stale: paste real_redshift.rst"
    stale = json.loads(json.dumps(result))
    first = next(iter(stale["methods"]))
    stale["methods"][first]["all"]["sigma_nmad"] += 0.01
    assert _numbers(module.make_rst(stale)) != _numbers(block)
