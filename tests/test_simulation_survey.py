"""The mock survey: priors, determinism, streaming, HDF5 files and the simulate CLI."""

import numpy as np
import pytest
import torch

pytest.importorskip("h5py")

from jwst_embed.cli import main  # noqa: E402
from jwst_embed.preprocessing import Batch  # noqa: E402
from jwst_embed.simulation import (  # noqa: E402
    MORPHOLOGY_CLASSES,
    MockCatalogue,
    MockSurvey,
    SurveyConfig,
    write_mock,
)


@pytest.fixture(scope="module")
def survey():
    return MockSurvey(SurveyConfig())


def test_same_seed_same_objects(survey):
    a = survey.sample(32, seed=7)
    b = survey.sample(32, seed=7)
    c = survey.sample(32, seed=8)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(a["images"], c["images"])


def test_outputs_finite_and_physical(survey):
    sample = survey.sample(128, seed=3)
    for key, value in sample.items():
        if value.is_floating_point():
            assert torch.isfinite(value).all(), key
    assert ((sample["redshift"] >= 0.2) & (sample["redshift"] <= 15)).all()
    assert ((sample["log_mass"] >= 7.4) & (sample["log_mass"] <= 11.9)).all()
    assert set(sample["morphology"].tolist()) <= set(range(len(MORPHOLOGY_CLASSES)))
    assert (sample["images_ivar"][~sample["images_mask"]] > 0).all() and (sample["spectrum_ivar"] >= 0).all()
    assert (sample["images_ivar"][sample["images_mask"]] == 0).all()
    # The images carry the band fluxes of the same SED (up to the light outside the 2.56" stamp).
    total = sample["images_noiseless"].sum(dim=(-1, -2))
    detected = sample["band_flux"] > 1.0  # bands blueward of the Lyman break carry ~no flux
    ratio = total[detected] / sample["band_flux"][detected]
    assert torch.median(ratio) > 0.9 and (ratio < 1.01).all()


def test_photometry_matches_spectrum(survey):
    """The noiseless spectrum (slit-lossed) and F277W photometry come from one SED."""
    sample = survey.sample(64, seed=11)
    wave = survey.config.spectral_grid.wavelength.to_value("um")
    near = (wave > 2.6) & (wave < 2.95)
    spec = sample["spectrum_noiseless"][:, near].mean(dim=1) / sample["slit_throughput"]
    photometry = sample["band_flux"][:, survey.config.bands.index("F277W")]
    ratio = (spec / photometry).numpy()
    # Band-averaged flux vs the spectrum over the band's core: same to within lines and slopes.
    assert 0.7 < np.median(ratio) < 1.3


def test_redshift_coverage(survey):
    z = survey._draw_redshift(20000, torch.Generator().manual_seed(0))
    assert (z > 8).float().mean() > 0.1  # high redshift well represented
    assert ((z > 1) & (z < 4)).float().mean() > 0.3  # the bulk near cosmic noon


def test_more_massive_is_brighter(survey):
    sample = survey.sample(512, seed=5)
    mask = (sample["redshift"] > 1) & (sample["redshift"] < 3)
    corr = np.corrcoef(sample["log_mass"][mask], torch.log10(sample["band_flux"][mask, -1]))[0, 1]
    assert corr > 0.5


def test_stream_is_resumable(survey):
    stream = list(survey.batches(8, seed=2, n_batches=3))
    resumed = next(survey.batches(8, seed=2, start=2))
    assert isinstance(resumed, Batch)
    assert torch.equal(stream[2].images["F150W"].values, resumed.images["F150W"].values)
    assert stream[0].modalities == ("F115W", "F150W", "F277W", "F444W", "PRISM")
    assert stream[0].present.all()


def test_spectrum_fraction_marks_absent():
    survey = MockSurvey(SurveyConfig(spectrum_fraction=0.5))
    batch = survey.to_batch(survey.sample(64, seed=1))
    has = batch.present[:, batch.modalities.index("PRISM")]
    assert 0 < has.sum() < 64
    assert batch.spectra["PRISM"].mask[~has].all()
    assert (batch.spectra["PRISM"].ivar[~has] == 0).all()


@pytest.mark.parametrize(
    "options, message",
    [
        ({"bands": ("F999W",)}, "unknown NIRCam band"),
        ({"redshift_min": 0.5, "redshift_max": 25.0}, "redshift range"),
        ({"redshift_min": 3.0, "redshift_max": 2.0}, "redshift range"),
        ({"log_mass_min": 11.0, "log_mass_max": 10.0}, "log-mass range"),
        ({"spectrum_fraction": 1.5}, "spectrum_fraction"),
        ({"bands": (), "include_spectra": False}, "nothing to simulate"),
    ],
)
def test_bad_configuration(options, message):
    with pytest.raises(ValueError, match=message):
        SurveyConfig(**options)


def test_bad_number_of_objects(survey):
    with pytest.raises(ValueError, match="positive integer"):
        survey.sample(0, seed=1)


def test_config_round_trip():
    config = SurveyConfig(bands=("f150w", "F444W"), spectrum_fraction=0.3)
    again = SurveyConfig.from_dict(config.to_dict())
    assert again.bands == ("F150W", "F444W")
    assert again.to_dict() == config.to_dict()
    with pytest.raises(ValueError, match="unknown keys"):
        SurveyConfig.from_dict({"bandz": ["F150W"]})


def test_write_and_read_mock(survey, tmp_path):
    path = write_mock(tmp_path / "mock.h5", survey, 40, seed=9, chunk_size=16, progress=False)
    catalogue = MockCatalogue(path)
    assert len(catalogue) == 40
    assert catalogue.metadata["seed"] == 9
    assert catalogue.metadata["simulator_version"]
    direct = survey.sample(16, generator=__import__("jwst_embed").simulation.batch_generator(9, 1))
    batch = catalogue.read(slice(16, 32))
    assert torch.allclose(batch.images["F277W"].values, direct["images"][:, 2])
    assert torch.allclose(batch.targets["redshift"], direct["redshift"])
    labels = catalogue.labels()
    assert {"redshift", "log_mass", "morphology"} <= set(labels.colnames)
    assert len(list(catalogue.batches(16))) == 3
    with pytest.raises(FileExistsError):
        write_mock(path, survey, 4, seed=1, progress=False)


def test_not_a_mock_file(tmp_path):
    import h5py

    with h5py.File(tmp_path / "other.h5", "w") as h5:
        h5["x"] = np.arange(3)
    with pytest.raises(ValueError, match="not a jwst_embed mock file"):
        MockCatalogue(tmp_path / "other.h5")


def test_cli_simulate(tmp_path, capsys):
    out = tmp_path / "cli.h5"
    assert main(["simulate", "-n", "20", "--seed", "1", "--bands", "F150W,F444W", "-o", str(out),
                 "--no-progress"]) == 0
    assert "wrote 20 objects" in capsys.readouterr().out
    catalogue = MockCatalogue(out)
    assert catalogue.config.bands == ("F150W", "F444W")
    with pytest.raises(SystemExit, match="unknown NIRCam band"):
        main(["simulate", "-n", "5", "--bands", "F150W,F998W", "-o", str(tmp_path / "x.h5")])
    with pytest.raises(SystemExit, match="positive integer"):
        main(["simulate", "-n", "0", "-o", str(tmp_path / "y.h5")])


def test_device_auto_and_clear_device_errors(monkeypatch):
    import torch

    from jwst_embed.models import MLPHead, ModelConfig, MultimodalModel
    from jwst_embed.simulation import MockSurvey, SurveyConfig
    from jwst_embed.tuning import FineTuner

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert MockSurvey(SurveyConfig(bands=()), device="auto").device.type == "cpu"
    tuner = FineTuner(MultimodalModel(ModelConfig.preset("tiny")), MLPHead(64, 1), device="auto")
    assert tuner.device.type == "cpu"
    with pytest.raises(ValueError, match="CUDA is not available"):
        MockSurvey(SurveyConfig(bands=()), device="cuda")
