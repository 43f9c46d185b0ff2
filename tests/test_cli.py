"""Tests of the ``jwst-embed`` subcommands embed, predict and demo (on a tiny saved model)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from astropy.table import Table
from conftest import JADES_HLSP

from jwst_embed.cli import main
from jwst_embed.embedder import MultimodalEmbedder
from jwst_embed.io import read_cutouts, read_objects, read_spectrum
from jwst_embed.models import ModelConfig, MultimodalModel
from jwst_embed.training.checkpoint import save_model


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    torch.manual_seed(0)
    return save_model(tmp_path_factory.mktemp("cli") / "model.pt", MultimodalModel(ModelConfig.preset("tiny")), {})


@pytest.fixture(scope="module")
def hlsp(real_dir):
    return str(real_dir / JADES_HLSP[0])


def test_embed_writes_a_table_matching_the_python_api(tmp_path, model_path, hlsp, real_dir, capsys):
    other = str(real_dir / "ceers-1345_933.spec.fits")  # spectrum only
    output = tmp_path / "emb.fits"
    assert main(["embed", hlsp, other, "-o", str(output), "--model", str(model_path), "--device", "cpu"]) == 0
    assert "wrote 2 embeddings" in capsys.readouterr().out
    table = Table.read(output)
    assert list(table["file"]) == [JADES_HLSP[0], "ceers-1345_933.spec.fits"]
    assert table["fused"].shape == (2, 64) and np.isfinite(table["fused"]).all()
    assert list(table["present_PRISM"]) == [True, True]
    assert list(table["present_F150W"]) == [True, False]
    # Same numbers as the Python API on the same objects.
    embedder = MultimodalEmbedder.from_pretrained(model_path, device="cpu")
    cutouts = read_cutouts(hlsp)
    expected = embedder.embed(
        images={band: [image, None] for band, image in cutouts.items()},
        spectra=[read_spectrum(hlsp), read_spectrum(other)],
    )
    np.testing.assert_allclose(table["fused"], expected.fused, rtol=1e-5, atol=1e-6)
    # An existing output is kept unless --overwrite is given.
    with pytest.raises(SystemExit, match="--overwrite"):
        main(["embed", hlsp, "-o", str(output), "--model", str(model_path)])


def test_embed_bands_selection(tmp_path, model_path, hlsp):
    output = tmp_path / "emb.ecsv"
    main(["embed", hlsp, "-o", str(output), "--model", str(model_path), "--device", "cpu", "--bands", "F150W"])
    table = Table.read(output)
    assert [name for name in table.colnames if name.startswith("present_")] == ["present_F150W", "present_PRISM"]
    images, spectra = read_objects([hlsp], bands=())
    assert images == {} and len(spectra) == 1
    with pytest.raises(SystemExit, match="F999W"):
        main(["embed", hlsp, "-o", str(tmp_path / "x.fits"), "--model", str(model_path), "--bands", "F999W"])


def test_predict_prints_and_writes(tmp_path, model_path, hlsp, capsys):
    output = tmp_path / "pred.ecsv"
    assert main(["predict", hlsp, "--model", str(model_path), "--device", "cpu", "-o", str(output)]) == 0
    printed = capsys.readouterr().out
    for column in ("file", "z", "z_lo", "z_hi", "log_mass", "morphology"):
        assert column in printed
    assert JADES_HLSP[0] in printed
    table = Table.read(output)
    assert table.colnames[:7] == ["file", "inputs", "z", "z_lo", "z_hi", "log_mass", "log_mass_err"]
    assert table["inputs"][0] == "F090W,F150W,F277W,F444W,PRISM"
    assert table["z_lo"][0] <= table["z"][0] <= table["z_hi"][0]
    assert np.isfinite(table["log_mass"]).all()


def test_clear_errors(tmp_path, model_path, hlsp):
    with pytest.raises(SystemExit, match="no such file"):
        main(["predict", str(tmp_path / "missing.fits"), "--model", str(model_path)])
    with pytest.raises(SystemExit, match="cannot load model 'no-such-model'.*--model PATH"):
        main(["predict", hlsp, "--model", "no-such-model"])
    no_heads = save_model(
        tmp_path / "noheads.pt", MultimodalModel(ModelConfig.preset("tiny", prediction_heads=False)), {}
    )
    with pytest.raises(SystemExit, match="no prediction heads"):
        main(["predict", hlsp, "--model", str(no_heads), "--device", "cpu"])
    # -o problems are reported before any work is done
    with pytest.raises(SystemExit, match="unknown table format"):
        main(["predict", hlsp, "--model", str(model_path), "-o", str(tmp_path / "table.xyz")])
    with pytest.raises(SystemExit, match="does not exist"):
        main(["predict", hlsp, "--model", str(model_path), "-o", str(tmp_path / "no" / "table.ecsv")])
    # --bands takes one comma-separated value: the files after it stay files
    with pytest.raises(SystemExit, match="no such file"):
        main(["predict", "--bands", "F150W", str(tmp_path / "missing.fits"), "--model", str(model_path)])
    not_fits = tmp_path / "notes.fits"
    not_fits.write_text("not a FITS file")
    with pytest.raises(SystemExit, match="no usable spectrum or image"):
        main(["predict", str(not_fits), "--model", str(model_path)])


def test_predict_says_when_cutouts_are_unreadable(tmp_path, model_path, hlsp, capsys):
    from astropy.io import fits

    damaged = tmp_path / "damaged_x1d.fits"
    with fits.open(hlsp) as hdul:
        for hdu in hdul:
            if hdu.name == "F150W":
                for key in ("CTYPE1", "CTYPE2"):
                    hdu.header.remove(key, ignore_missing=True)
        hdul.writeto(damaged)
    assert main(["predict", str(damaged), "--model", str(model_path), "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "warning" in captured.err and "damaged_x1d.fits" in captured.err and "no celestial WCS" in captured.err
    assert "using PRISM spectrum only" in captured.err
    assert "PRISM" in captured.out and "F150W" not in captured.out.split("inputs", 1)[1]


def test_demo_writes_a_figure(tmp_path, model_path, real_dir, capsys):
    pytest.importorskip("h5py")
    figure = tmp_path / "demo.png"
    real = tmp_path / "real"
    real.mkdir()
    (real / JADES_HLSP[0]).symlink_to(real_dir / JADES_HLSP[0])
    import matplotlib

    previous = matplotlib.get_backend()
    matplotlib.use("svg")  # stands for a notebook's backend: the demo must not switch it
    try:
        assert main(["demo", "--model", str(model_path), "-n", "3", "-o", str(figure), "--real", str(real)]) == 0
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(previous)
    printed = capsys.readouterr().out
    for column in ("z_true", "z_pred", "logM_true", "logM_pred", "morph_true", "morph_pred"):
        assert column in printed
    assert "seed 20261126" in printed and JADES_HLSP[0] in printed
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.stat().st_size > 10_000
    with pytest.raises(SystemExit, match="positive"):
        main(["demo", "--model", str(model_path), "-n", "0"])
