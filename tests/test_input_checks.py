"""Inputs that carry no information are flagged and get a wide p(z), never a confident answer."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.nddata import NDData, StdDevUncertainty
from specutils import Spectrum

from jwst_embed import predict, predict_redshift
from jwst_embed.embedder import MultimodalEmbedder
from jwst_embed.input_checks import check_inputs
from jwst_embed.models import ModelConfig, MultimodalModel
from jwst_embed.preprocessing import make_batch
from jwst_embed.redshift.joint import Z_FLAGS

WAVELENGTH = np.linspace(0.62, 5.25, 420) * u.um


def _spectrum(scale: float = 1.0, sign: float = 1.0, signal: bool = True, unit=u.nJy, seed: int = 0) -> Spectrum:
    """A PRISM-like spectrum: 150 nJy continuum, two lines, 12 nJy noise (in ``unit``)."""
    rng = np.random.default_rng(seed)
    wave = WAVELENGTH.to_value(u.um)
    flux = 150.0 + 900.0 * np.exp(-0.5 * ((wave - 2.1) / 0.02) ** 2) + 500.0 * np.exp(-0.5 * ((wave - 3.4) / 0.03) ** 2)
    flux = sign * flux * float(signal) + rng.normal(0.0, 12.0, wave.size)
    return Spectrum(flux=flux * scale * unit, spectral_axis=WAVELENGTH,
                    uncertainty=StdDevUncertainty(np.full(wave.size, 12.0 * scale)))  # fmt: skip


def _image(source: bool = True, scale: float = 1.0, seed: int = 1) -> NDData:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:64, :64]
    data = rng.normal(0.0, 2.0, (64, 64))
    if source:
        data += 40.0 * np.exp(-0.5 * ((xx - 31.5) ** 2 + (yy - 31.5) ** 2) / 2.5**2)
    return NDData(data * scale, unit=u.nJy, uncertainty=StdDevUncertainty(np.full((64, 64), 2.0 * scale)),
                  meta={"pixel_scale": 0.04})  # fmt: skip


def test_spectra_are_checked():
    spectra = [
        _spectrum(),                     # fine
        _spectrum(sign=-1.0),            # sign flipped
        _spectrum(signal=False),         # pure noise
        _spectrum(unit=u.Jy),            # nJy values labelled Jy: 1e9 too bright, noise too
        _spectrum(scale=1e-9),           # 1e9 too faint: the noise is far below any PRISM error
        _spectrum(scale=1e6),            # absurd: 150 mJy of continuum
    ]  # fmt: skip
    check = check_inputs(make_batch(spectra={"PRISM": spectra}))
    assert check.reasons == ["", "negative:PRISM", "no_signal", "flux_scale:PRISM", "flux_scale:PRISM",
                             "flux_scale:PRISM"]  # fmt: skip
    assert check.uninformative.tolist() == [False, True, True, True, True, True]
    assert check.usable["PRISM"].tolist() == [True, False, True, False, False, False]


def test_images_are_checked_with_the_other_inputs():
    blank, source = _image(source=False), _image()
    check = check_inputs(make_batch(images={"F150W": [blank, blank, source, _image(scale=1e9)]},
                                    spectra={"PRISM": [None, _spectrum(), None, None]}))  # fmt: skip
    # blank sky alone says nothing; blank beside a good spectrum is information (a dropout)
    assert check.reasons == ["no_signal", "", "", "flux_scale:F150W"]
    assert check.uninformative.tolist() == [True, False, False, True]


@pytest.fixture(scope="module")
def embedder():
    torch.manual_seed(0)
    model = MultimodalModel(ModelConfig.preset("tiny", image_size=64, spectrum_length=512))
    return MultimodalEmbedder(model, device="cpu")


def test_uninformative_objects_get_a_flat_pz_and_a_flag(embedder):
    spectra = [_spectrum(), _spectrum(signal=False), _spectrum(sign=-1.0), _spectrum(unit=u.Jy)]
    table = predict_redshift(spectra=spectra, embedder=embedder, method="network")
    assert list(table["input_flag"]) == ["", "no_signal", "negative:PRISM", "flux_scale:PRISM"]
    flagged = (np.asarray(table["z_flag"]) & Z_FLAGS["bad_input"]) > 0
    assert flagged.tolist() == [False, True, True, True]
    pz = np.asarray(table["pz"])
    assert np.allclose(pz[1:], 1.0 / pz.shape[1])  # widened to the flat prior
    assert not np.allclose(pz[0], 1.0 / pz.shape[1])
    assert np.all(np.asarray(table["z_hi"])[1:] - np.asarray(table["z_lo"])[1:] > 3.0)
    combined = predict(spectra=spectra, embedder=embedder, method="network")
    assert list(combined["input_flag"]) == list(table["input_flag"])
    assert np.allclose(np.asarray(combined["p_morphology"])[1:], 1.0 / 6)


def test_auto_does_not_fit_templates_to_a_failed_spectrum(embedder):
    pytest.importorskip("h5py")
    from jwst_embed.redshift import TemplateFitter, default_redshift_grid

    try:
        fitter = TemplateFitter(z_grid=default_redshift_grid(20.0, 250))
    except ImportError:
        pytest.skip("no stellar-population library")
    table = predict_redshift(spectra=[_spectrum(), _spectrum(sign=-1.0)], embedder=embedder, method="auto",
                             fitter=fitter)  # fmt: skip
    assert list(table["method"]) == ["joint", "network"]
    assert list(table["input_flag"]) == ["", "negative:PRISM"]


def test_embeddings_carry_the_input_flags(embedder):
    result = embedder.embed(spectra=[_spectrum(), _spectrum(sign=-1.0)])
    assert result.input_flag.tolist() == ["", "negative:PRISM"]
    assert list(result.to_table()["input_flag"]) == ["", "negative:PRISM"]


def test_a_failed_input_beside_a_good_one_never_reaches_the_model(embedder):
    image = _image()
    both = embedder.embed(images={"F150W": [image]}, spectra=[_spectrum(sign=-1.0)])
    alone = embedder.embed(images={"F150W": [image]})
    assert both.input_flag.tolist() == ["negative:PRISM"]
    assert both.present[0].tolist() == [True, False]  # the flipped spectrum was made absent
    np.testing.assert_allclose(both.fused, alone.fused, atol=1e-6)
    # with nothing usable left, the failed input is kept for the forward pass and flagged
    only = embedder.embed(spectra=[_spectrum(sign=-1.0)])
    assert only.present[0].tolist() == [True] and only.input_flag.tolist() == ["negative:PRISM"]
