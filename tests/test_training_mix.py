"""Training on several sources at once (`MixedSource`, ``train --data A --data B --mix``) and
reading a training file in shards under torchrun."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from astropy.io import fits

from jwst_embed.cli import main
from jwst_embed.preprocessing import Batch
from jwst_embed.survey_file import prepare_survey
from jwst_embed.training.data import (
    FileSource,
    IndexedSource,
    MixedSource,
    SyntheticSource,
    mix_counts,
)
from jwst_embed.training.losses import PretrainingLoss
from jwst_embed.training.pretrain import TrainConfig, Trainer


def write_msaexp_spectra(folder, n: int, seed: int = 0) -> list:
    """``n`` small DJA/msaexp-style spec.fits files: a power law with H-alpha at a random redshift."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    wave = np.linspace(0.6, 5.3, 400)
    paths = []
    for i in range(n):
        z = rng.uniform(1.0, 6.0)
        flux = 0.2 * (wave / 2.0) ** rng.uniform(-1, 1) + 0.5 * np.exp(-0.5 * ((wave - 0.6563 * (1 + z)) / 0.01) ** 2)
        err = np.full_like(wave, 0.02)
        columns = [fits.Column(name="wave", format="D", unit="um", array=wave),
                   fits.Column(name="flux", format="D", unit="uJy", array=flux + err * rng.normal(size=wave.size)),
                   fits.Column(name="err", format="D", unit="uJy", array=err)]  # fmt: skip
        table = fits.BinTableHDU.from_columns(columns, name="SPEC1D")
        path = folder / f"object{i:03d}.spec.fits"
        fits.HDUList([fits.PrimaryHDU(), table]).writeto(path)
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def survey_file(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mix")
    paths = write_msaexp_spectra(folder / "spectra", 20)
    out = folder / "survey.h5"
    prepare_survey(paths, out, progress=False)  # no labels: self-supervised only
    return out


class _Unlabelled(IndexedSource):
    """A source whose objects carry no labels and only F150W (as a real imaging file might)."""

    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self.inner = SyntheticSource(batch_size, seed=7, bands=("F150W",), image_size=16, spectrum_length=32)

    def batch(self, index, size=None):
        return Batch(images={"F150W": self.inner.batch(index).images["F150W"]})

    def validation_batches(self, n_objects):
        return [self.batch(10_000, n_objects)]


def test_mix_counts_split_every_batch_in_proportion():
    assert mix_counts([0.75, 0.25], 64) == [48, 16]
    assert mix_counts([1, 1, 1], 10) == [4, 3, 3]
    assert mix_counts([1000, 1], 8) == [7, 1]  # a positive share always gets an object
    assert mix_counts([0, 1], 5) == [0, 5]
    for bad in ([-1, 2], [0, 0], [float("nan"), 1]):
        with pytest.raises(ValueError, match="non-negative"):
            mix_counts(bad, 8)
    with pytest.raises(ValueError, match="smaller than"):
        mix_counts([1, 1, 1], 2)


def test_mixed_batches_mask_what_a_source_lacks():
    labelled = SyntheticSource(6, seed=1, bands=("F150W", "F444W"), image_size=16, spectrum_length=32)
    source = MixedSource([labelled, _Unlabelled(2)])
    batch = source.batch(3)
    assert len(batch) == 8 and batch.modalities == ("F150W", "F444W", "PRISM")
    # the unlabelled objects have no F444W and no spectrum (absent, not zeros passed as data) ...
    assert not batch.present[6:, 1:].any() and batch.present[6:, 0].all()
    # ... and unknown labels: NaN, which the supervised losses leave out, never 0
    for key in ("redshift", "log_mass", "morphology"):
        assert torch.isfinite(batch.targets[key][:6]).all() and torch.isnan(batch.targets[key][6:]).all()
    assert torch.isnan(batch.targets["spectrum_noiseless"][6:]).all()
    torch.testing.assert_close(batch.targets["redshift"][:6], labelled.batch(3).targets["redshift"])
    # random access: batch k is the same whenever it is read
    torch.testing.assert_close(source.batch(3).images["F150W"].values, batch.images["F150W"].values)
    sizes = [len(b) for b in source.validation_batches(8)]
    assert sum(sizes) == 8


def test_objects_without_a_true_spectrum_keep_their_observed_one_as_decoder_target():
    from jwst_embed.models import ModelConfig, MultimodalModel

    torch.manual_seed(0)
    model = MultimodalModel(ModelConfig.preset("tiny", image_size=16, spectrum_length=32))
    mock = SyntheticSource(3, seed=2, bands=("F150W",), image_size=16, spectrum_length=32, spectrum_fraction=1.0)
    real = SyntheticSource(3, seed=3, bands=("F150W",), image_size=16, spectrum_length=32, spectrum_fraction=1.0)

    class Real(IndexedSource):
        batch_size = 3

        def batch(self, index, size=None):
            b = real.batch(index)
            return Batch(images=b.images, spectra=b.spectra)

    batch = MixedSource([mock, Real()]).batch(0)
    output = model(batch, mask_inputs=True, generator=torch.Generator().manual_seed(0))
    observed, observed_weight = output.spectrum_target.clone(), output.spectrum_weight.clone()
    total, parts = PretrainingLoss()(output, targets=batch.targets, heads=model.heads)
    assert torch.isfinite(total) and "decoder" in parts and "redshift" in parts
    truth = model.stretched_spectrum(batch.targets["spectrum_noiseless"][:3])
    torch.testing.assert_close(output.spectrum_target[:3], truth)  # mocks: the noiseless spectrum
    torch.testing.assert_close(output.spectrum_target[3:], observed[3:])  # real: the observed one
    torch.testing.assert_close(output.spectrum_weight[3:], observed_weight[3:])
    assert output.spectrum_weight[3:].sum() > 0


def test_processes_read_disjoint_shards_of_the_file(survey_file):
    source = FileSource(survey_file, batch_size=2, seed=5, holdout=4)
    per_epoch = source.batches_per_epoch  # 16 training objects -> 8 batches
    world_size = 2

    def rows(rank, epoch):
        start = epoch * per_epoch + rank
        ids = [source.batch(k).spectra["PRISM"].values[:, 200].tolist() for k in range(start, start + per_epoch, world_size)]
        return {value for chunk in ids for value in chunk}

    for epoch in (0, 1):
        rank0, rank1 = rows(0, epoch), rows(1, epoch)
        assert not rank0 & rank1 and len(rank0 | rank1) == 16  # disjoint, the whole epoch between them
    assert rows(0, 0) != rows(0, 1)  # a new split each epoch


def test_train_mixes_a_real_file_with_synthetic_and_checks_the_shares(survey_file, tmp_path):
    with pytest.raises(ValueError, match="2 shares for 1"):
        TrainConfig(data=str(survey_file), mix=[1, 1])
    with pytest.raises(SystemExit, match="non-negative"):
        main(["train", "--data", str(survey_file), "--data", str(survey_file), "--mix", "-1", "1",
              "--preset", "tiny", "--out", str(tmp_path / "bad")])  # fmt: skip
    config = TrainConfig(data=[str(survey_file), str(survey_file)], mix=[3, 1], preset="tiny", batch_size=4,
                         max_steps=2, n_validation=4, out_dir=None, device="cpu")  # fmt: skip
    trainer = Trainer(config, progress=False)
    try:
        assert isinstance(trainer.source, MixedSource) and trainer.source.counts == [3, 1]
        trainer.train()
        assert trainer.step == 2
    finally:
        trainer.close()
    run = tmp_path / "run"
    assert main(["train", "--data", str(survey_file), "--data", str(survey_file), "--mix", "0.5", "0.5",
                 "--preset", "tiny", "--max-steps", "2", "--batch-size", "4", "--out", str(run),
                 "--device", "cpu", "--no-progress"]) == 0  # fmt: skip
    assert (run / "model.pt").is_file()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_torchrun_trains_on_a_mix_of_files(survey_file, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
        "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
        "-m", "jwst_embed.cli", "train", "--data", str(survey_file), "--data", str(survey_file), "--mix", "1", "1",
        "--preset", "tiny", "--max-steps", "2", "--batch-size", "4", "--device", "cpu", "--out", str(out),
        "--no-progress",
    ]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.count("done at step 2") == 1


def test_prepare_without_the_real_examples_reports_bad_files_masks_labels_and_trains(tmp_path):
    """The same checks as tests/test_survey_file.py, on generated files (runs where ../shared is absent)."""
    from jwst_embed.survey_file import SurveyFile

    paths = write_msaexp_spectra(tmp_path / "spectra", 6, seed=3)
    bad = tmp_path / "spectra" / "broken.spec.fits"
    bad.write_bytes(paths[0].read_bytes()[:3000])
    redshift = np.ma.masked_array([1.5, 2.0, 9.0, 0.0, 4.0, 5.0, 6.0], mask=[0, 0, 0, 1, 0, 0, 0])
    report = prepare_survey([*paths[:2], bad, *paths[2:]], tmp_path / "s.h5", labels={"redshift": redshift},
                            progress=False)  # fmt: skip
    assert [p.rsplit("/", 1)[-1] for p, _ in report.skipped] == ["broken.spec.fits"] and report.n_written == 6
    z = SurveyFile(tmp_path / "s.h5").read().targets["redshift"].numpy()
    np.testing.assert_array_equal(z[[0, 1, 3, 4, 5]], [1.5, 2.0, 4.0, 5.0, 6.0])  # the bad file's 9.0 went with it
    assert np.isnan(z[2])  # masked: unknown, not 0
    run = tmp_path / "run"
    assert main(["train", "--data", str(tmp_path / "s.h5"), "--preset", "tiny", "--max-steps", "2", "--batch-size", "2",
                 "--out", str(run), "--device", "cpu", "--no-progress"]) == 0  # fmt: skip
    assert (run / "model.pt").is_file()
