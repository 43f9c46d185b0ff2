"""The documentation's tutorial and figure scripts run, with small settings, and draw their figures.

The Sphinx build runs the same scripts (matplotlib plot directive) from their own folder; here each
runs in a fresh namespace from that folder, with ``JWST_EMBED_TUTORIAL_QUICK=1`` for fewer objects.
The tutorial on a real galaxy is skipped when the real example files are absent.
"""

import runpy
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DOCS = Path(__file__).resolve().parents[1] / "docs"

SCRIPTS = {
    # script: minimum number of figures it must draw (the mock-galaxy tutorials have their own tests)
    "tutorials/training_curves.py": 1,
    "figures/default_model_training.py": 1,
    "figures/model_diagram.py": 1,
}


def _run(script: str, monkeypatch) -> dict:
    path = DOCS / script
    monkeypatch.chdir(path.parent)
    monkeypatch.setenv("JWST_EMBED_TUTORIAL_QUICK", "1")
    plt.close("all")
    return runpy.run_path(str(path), run_name="__main__")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_script_runs_and_draws(script, monkeypatch):
    _run(script, monkeypatch)
    assert len(plt.get_fignums()) >= SCRIPTS[script]
    for number in plt.get_fignums():
        assert plt.figure(number).axes, f"{script} drew an empty figure"


def test_fine_tuning_tutorial_learns(monkeypatch):
    namespace = _run("tutorials/fine_tuning.py", monkeypatch)
    assert len(plt.get_fignums()) == 1
    history = namespace["history"]
    assert history.n_train + history.n_validation == namespace["N_TRAIN"]
    assert history.train_loss[-1] < history.train_loss[0]
    assert len(namespace["after"]) == namespace["N_TEST"]


def test_similarity_tutorial_finds_itself(monkeypatch):
    namespace = _run("tutorials/similarity_search.py", monkeypatch)
    assert len(plt.get_fignums()) == 1
    assert namespace["neighbours"][0] == namespace["query"]
    assert namespace["similarity"][0] == pytest.approx(1.0, abs=1e-5)
    scores = namespace["scores"]
    assert scores.shape == (namespace["N_GALAXIES"],)
    assert scores[namespace["unusual"][0]] == scores.max()


def test_real_galaxy_tutorial(real_dir, monkeypatch):
    monkeypatch.setenv("JWST_EMBED_REAL_DATA", str(real_dir))
    namespace = _run("tutorials/real_galaxy.py", monkeypatch)
    assert len(plt.get_fignums()) == 3
    table = namespace["everything"]
    assert table["z_lo"][0] <= table["z"][0] <= table["z_hi"][0]
    assert table["pz"][0].sum() == pytest.approx(1.0, rel=1e-4)
    decoded = namespace["from_images"]
    assert decoded.flux.unit == "nJy" and decoded.flux.shape == (1, 512)
