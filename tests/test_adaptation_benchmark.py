"""benchmarks/adaptation.py: it runs (tiny sizes), and the committed docs table carries its JSON's numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def test_the_docs_table_is_the_committed_results(benchmark_script):
    module = benchmark_script("adaptation")
    results = json.loads((RESULTS / "adaptation.json").read_text())
    assert (RESULTS / "adaptation.rst").read_text() == module.rst_table(results)
    changed = json.loads(json.dumps(results))
    changed["real"]["before"]["knn_sigma_nmad"] += 0.01
    assert module.rst_table(changed) != module.rst_table(results)


def test_the_benchmark_runs_and_scores_held_out_objects(benchmark_script, real_dir, tmp_path, capsys):
    pytest.importorskip("bagpipes")  # the mock experiment simulates galaxies
    module = benchmark_script("adaptation")
    assert module.main(["--quick", "--json", "--out", str(tmp_path), "--real-root", str(real_dir)]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for name, n in (("real", 15), ("mock", 32)):
        for key in ("before", *module.VARIANTS):
            scores = result[name][key]
            assert scores["n"] == n and 0 <= scores["knn_outlier_fraction"] <= 1
            assert scores["masked_chi2_median"] > 0 and scores["interpolation_chi2_median"] > 0
    # the interpolation baseline does not depend on the model; the model's own reconstruction does
    assert result["real"]["before"]["interpolation_chi2_median"] == result["real"]["mixed"]["interpolation_chi2_median"]
    assert (tmp_path / "adaptation.png").is_file() and (tmp_path / "adaptation.rst").is_file()
