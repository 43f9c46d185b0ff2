"""`jwst-embed prepare` / `prepare_survey`: real files into a training file that trains."""

import numpy as np
import pytest
import torch

from jwst_embed.cli import main
from jwst_embed.survey_file import SurveyFile, prepare_survey
from jwst_embed.training.data import FileSource


@pytest.fixture
def inputs(real_dir, tmp_path):
    files = sorted(real_dir.glob("*.fits"))  # JADES HLSP x1d with cutouts, msaexp, JADES 1D
    bad_text = tmp_path / "notes.fits"
    bad_text.write_text("not a FITS file")
    truncated = tmp_path / "truncated.spec.fits"
    truncated.write_bytes(files[0].read_bytes()[:5000])
    return [*files, bad_text, truncated]


def test_prepare_reads_mixed_formats_skips_bad_files_and_masks_labels(inputs, tmp_path):
    n_good = len(inputs) - 2
    redshift = np.ma.masked_array(np.arange(len(inputs), dtype=float) + 1.0, mask=[False, True] + [False] * (len(inputs) - 2))
    morphology = ["disk", None] + ["spheroid"] * (len(inputs) - 2)
    report = prepare_survey(inputs, tmp_path / "survey.h5", labels={"redshift": redshift, "morphology": morphology},
                            chunk_size=4, progress=False)  # fmt: skip
    assert report.n_written == report.n_objects == n_good
    assert sorted(path.rsplit("/", 1)[-1] for path, _ in report.skipped) == ["notes.fits", "truncated.spec.fits"]
    survey = SurveyFile(tmp_path / "survey.h5")
    batch = survey.read()
    assert len(survey) == n_good and batch.modalities == ("F115W", "F150W", "F277W", "F444W", "PRISM")
    assert bool(batch.present[:, -1].all())  # every file has a spectrum
    assert int(batch.present[:, 1].sum()) == 2  # the two JADES HLSP files have F150W cutouts
    z = batch.targets["redshift"].numpy()
    assert np.isnan(z[1]) and z[0] == 1.0  # a masked label is missing, not zero
    assert batch.targets["morphology"][0] == 1 and np.isnan(batch.targets["morphology"][1].item())
    assert np.isfinite(batch.spectra["PRISM"].values.numpy()).all()
    # a second run neither overwrites nor mixes layouts by accident
    with pytest.raises(FileExistsError, match="append"):
        prepare_survey(inputs[:2], tmp_path / "survey.h5", progress=False)
    with pytest.raises(ValueError, match="other bands"):
        prepare_survey(inputs[:2], tmp_path / "survey.h5", bands=("F150W",), append=True, progress=False)
    with pytest.raises(ValueError, match="no label columns"):
        prepare_survey(inputs[:2], tmp_path / "survey.h5", labels={"log_mass": [9.0, 10.0]}, append=True, progress=False)


def test_prepare_and_train_from_the_command_line(inputs, tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    labels.write_text("file,z\n" + f"{inputs[0].name},5.5\n" + f"{inputs[2].name},\n")
    out = tmp_path / "survey.h5"
    assert main(["prepare", *map(str, inputs), "-o", str(out), "--labels", str(labels)]) == 0
    captured = capsys.readouterr()
    assert "skipped" in captured.err and "2 files skipped" in captured.out
    z = SurveyFile(out).read().targets["redshift"].numpy()
    assert z[0] == 5.5 and np.isnan(z[1:]).all()
    assert main(["prepare", str(inputs[0]), "-o", str(out), "--append"]) == 0
    assert len(SurveyFile(out)) == len(inputs) - 1
    assert np.isnan(SurveyFile(out).read().targets["redshift"][-1].item())  # appended without labels: missing
    # the training file trains for a few steps on the CPU, as a mock file does
    source = FileSource(out, batch_size=2, seed=0, holdout=2)
    assert len(source.batch(0)) == 2 and torch.isfinite(source.batch(0).spectra["PRISM"].values).all()
    run = tmp_path / "run"
    assert main(["train", "--data", str(out), "--preset", "tiny", "--max-steps", "2", "--batch-size", "2",
                 "--out", str(run), "--device", "cpu"]) == 0  # fmt: skip
    assert (run / "model.pt").is_file()


def test_the_shipped_model_continues_on_a_prepared_file(inputs, tmp_path):
    from jwst_embed.models.serialization import load_model
    from jwst_embed.training.pretrain import TrainConfig
    from jwst_embed.weights import fetch_weights

    out = tmp_path / "survey.h5"
    prepare_survey(inputs[:3], out, progress=False)
    run = tmp_path / "adapted"
    # --init-from a registered name; without --preset the run takes the model's own configuration
    assert main(["train", "--data", str(out), "--init-from", "default", "--max-steps", "1", "--batch-size", "2",
                 "--out", str(run), "--device", "cpu", "--no-progress"]) == 0  # fmt: skip
    assert load_model(run / "model.pt").config == load_model(fetch_weights("default")).config
    with pytest.raises(ValueError, match="init_from"):
        TrainConfig(preset="init")


def test_label_units_are_checked_not_dropped(inputs, tmp_path):
    import astropy.units as u

    masses = [1e9, 1e10] * u.Msun
    report = prepare_survey(inputs[:2], tmp_path / "a.h5", labels={"log_mass": masses}, progress=False)
    assert report.n_written == 2
    np.testing.assert_allclose(SurveyFile(tmp_path / "a.h5").read().targets["log_mass"].numpy(), [9.0, 10.0])
    with pytest.raises(u.UnitsError):
        prepare_survey(inputs[:2], tmp_path / "b.h5", labels={"redshift": [1.0, 2.0] * u.km}, progress=False)
    assert not (tmp_path / "b.h5").exists()


def test_inputs_that_fail_the_checks_do_not_enter_the_file(inputs, tmp_path):
    from astropy.io import fits

    # a sign-flipped copy of a real spectrum: nothing informative left, so it is not trained on
    flipped = tmp_path / "flipped.spec.fits"
    source = next(path for path in inputs if path.name.endswith(".spec.fits"))
    with fits.open(source) as hdul:
        table = hdul["SPEC1D"].data.copy()
        table["flux"] = -np.abs(table["flux"]) * 5
        hdul["SPEC1D"].data = table
        hdul.writeto(flipped)
    report = prepare_survey([inputs[0], flipped], tmp_path / "c.h5", progress=False)
    assert report.n_written == 1
    assert report.skipped == [(str(flipped), report.skipped[0][1])] and "negative" in report.skipped[0][1]
