"""Tests of jwst_embed.preprocessing.batch: Batch invariants, presence, devices, make_batch."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
import torch
from astropy.coordinates import SkyCoord
from astropy.nddata import NDData, StdDevUncertainty
from astropy.wcs import WCS
from specutils import Spectrum

from jwst_embed.preprocessing import (
    Batch,
    ImageGrid,
    ModalityTensors,
    SpectralGrid,
    make_batch,
    modality_order,
    preprocess_image,
    preprocess_spectra,
)

GRID = ImageGrid(n_pixels=16)
SPEC_GRID = SpectralGrid(n_pixels=64)


def image(flux=100.0, shape=(40, 40), unit=u.nJy, seed=0, **meta):
    rng = np.random.default_rng(seed)
    yy, xx = np.indices(shape)
    data = flux * np.exp(-((xx - 19.5) ** 2 + (yy - 19.5) ** 2) / (2 * 3.0**2)) / (
        2 * np.pi * 9
    ) + rng.normal(0, 0.1, shape)
    return NDData(
        data,
        unit=unit,
        meta={"pixel_scale": 0.04, **meta},
        uncertainty=StdDevUncertainty(np.full(shape, 0.1)),
    )


def spectrum(level_ujy=1.0, **meta):
    wave = np.linspace(0.6, 5.3, 300) * u.um
    return Spectrum(
        flux=np.full(300, level_ujy) * u.uJy,
        spectral_axis=wave,
        uncertainty=StdDevUncertainty(np.full(300, 0.05)),
        meta=meta,
    )


def tensors(batch_size=3, shape=(8, 8), fill=1.0):
    full = (batch_size, *shape)
    return ModalityTensors(
        torch.full(full, fill), torch.ones(full), torch.zeros(full, dtype=torch.bool)
    )


# --- ModalityTensors / Batch invariants --------------------------------------------------------------


def test_modality_tensors_validation():
    with pytest.raises(ValueError, match="NaN or inf"):
        ModalityTensors(
            torch.tensor([[np.nan]]), torch.ones(1, 1), torch.zeros(1, 1, dtype=torch.bool)
        )
    with pytest.raises(ValueError, match="ivar"):
        ModalityTensors(
            torch.ones(1, 2), torch.tensor([[1.0, -1.0]]), torch.zeros(1, 2, dtype=torch.bool)
        )
    with pytest.raises(ValueError, match="mask has shape"):
        ModalityTensors(torch.ones(2, 3), torch.ones(2, 3), torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="batch dimension"):
        ModalityTensors(torch.ones(3), torch.ones(3), torch.zeros(3, dtype=torch.bool))
    converted = ModalityTensors(np.ones((2, 3)), np.ones((2, 3)), np.zeros((2, 3)))
    assert converted.mask.dtype == torch.bool and isinstance(converted.values, torch.Tensor)
    absent = ModalityTensors.absent(2, (5,))
    assert absent.mask.all() and (absent.values == 0).all() and (absent.ivar == 0).all()


def test_batch_defaults_and_order():
    batch = Batch(
        images={"F444W": tensors(), "F090W": tensors()}, spectra={"PRISM": tensors(shape=(20,))}
    )
    assert batch.modalities == ("F090W", "F444W", "PRISM")
    assert batch.present.shape == (3, 3) and batch.present.all()
    assert len(batch) == batch.batch_size == 3
    assert batch.device == torch.device("cpu")
    assert batch["PRISM"].values.shape == (3, 20)
    assert modality_order(["PRISM", "F200W", "F115W"]) == ("F115W", "F200W", "PRISM")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(images={"F999W": tensors()}), "unknown NIRCam band"),
        (dict(images={"f150w": tensors()}), "canonical name 'F150W'"),
        (dict(spectra={"G395H": tensors(shape=(4,))}), "unknown spectral mode"),
        (dict(), "at least one modality"),
        (
            dict(images={"F150W": tensors(), "F200W": tensors(batch_size=2)}),
            "different batch sizes",
        ),
        (dict(images={"F150W": tensors(shape=(8,))}), "must be \\(B, H, W\\)"),
        (dict(spectra={"PRISM": tensors()}), "must be \\(B, L\\)"),
        (
            dict(images={"F150W": tensors()}, present=torch.ones(3, 2, dtype=torch.bool)),
            "present has shape",
        ),
        (
            dict(images={"F150W": tensors(), "F200W": tensors()}, modalities=("F200W", "F150W")),
            "modalities",
        ),
        (dict(images={"F150W": tensors()}, present=torch.zeros(3, 1, dtype=torch.bool)), "absent"),
        (
            dict(images={"F150W": tensors()}, targets={"redshift": torch.ones(2)}),
            "targets\\['redshift'\\]",
        ),
    ],
)
def test_batch_invariants(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Batch(**kwargs)


def test_present_default_from_mask():
    f150w = tensors()
    f150w.mask[1] = True
    f150w.ivar[1] = 0
    batch = Batch(images={"F150W": f150w})
    assert batch.present[:, 0].tolist() == [True, False, True]


# --- transforms ------------------------------------------------------------------------------------


def make_example_batch():
    return make_batch(
        images={
            "F150W": [image(100.0), None, image(50.0, seed=2)],
            "F444W": [image(80.0, seed=3), image(10.0), None],
        },
        spectra=[spectrum(1.0), spectrum(2.0), None],
        image_grid=GRID,
        spectral_grid=SPEC_GRID,
        targets={"redshift": [1.0, 2.0, 3.0], "morphology": np.array([0, 1, 2])},
    )


def test_to_cpu_roundtrip_and_dtype():
    batch = make_example_batch()
    moved = batch.to("cpu")
    assert moved is not batch and moved.modalities == batch.modalities
    for name in batch.modalities:
        for attr in ("values", "ivar", "mask"):
            torch.testing.assert_close(getattr(moved[name], attr), getattr(batch[name], attr))
    torch.testing.assert_close(moved.present, batch.present)
    double = batch.to(dtype=torch.float64)
    assert (
        double["F150W"].values.dtype == torch.float64 and double["F150W"].mask.dtype == torch.bool
    )
    assert double.targets["redshift"].dtype == torch.float64
    assert (
        double.targets["morphology"].dtype == batch.targets["morphology"].dtype
    )  # integers untouched


@pytest.mark.gpu
def test_to_cuda_roundtrip():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    batch = make_example_batch()
    gpu = batch.to("cuda", non_blocking=True)
    assert gpu.device.type == "cuda" and gpu["PRISM"].values.device.type == "cuda"
    assert gpu.targets["redshift"].device.type == "cuda"
    back = gpu.to("cpu")
    torch.testing.assert_close(back["F150W"].values, batch["F150W"].values)


def test_select_index_collate():
    batch = make_example_batch()
    only = batch.select(["PRISM", "F150W"])
    assert only.modalities == ("F150W", "PRISM")
    assert only.present.tolist() == [[True, True], [False, True], [True, False]]
    with pytest.raises(ValueError, match="not in this batch"):
        batch.select("F200W")
    one = batch.index(1)
    assert len(one) == 1 and one.present.tolist() == [[False, True, True]]
    assert one.targets["redshift"].tolist() == [2.0]
    picked = batch.index(torch.tensor([True, False, True]))
    assert len(picked) == 2 and picked.targets["morphology"].tolist() == [0, 2]

    merged = Batch.collate([batch.index(0), batch.index(slice(1, 3))])
    assert merged.modalities == batch.modalities
    for name in batch.modalities:
        torch.testing.assert_close(merged[name].values, batch[name].values)
    torch.testing.assert_close(merged.present, batch.present)
    # A modality missing from one batch becomes absent for its objects.
    mixed = Batch.collate([batch.select("F150W"), batch.select("PRISM")])
    assert mixed.modalities == ("F150W", "PRISM") and len(mixed) == 6
    assert (
        mixed.present[3:, 0].tolist() == [False] * 3
        and mixed.present[:3, 1].tolist() == [False] * 3
    )
    assert mixed["F150W"].mask[3:].all() and (mixed["F150W"].values[3:] == 0).all()
    with pytest.raises(ValueError, match="targets"):
        Batch.collate([batch, Batch(images={"F150W": tensors(shape=(16, 16))})])
    with pytest.raises(ValueError, match="shape"):
        Batch.collate(
            [Batch(images={"F150W": tensors()}), Batch(images={"F150W": tensors(shape=(4, 4))})]
        )


# --- make_batch ------------------------------------------------------------------------------------


def test_make_batch_matches_preprocessing_and_absent_semantics():
    batch = make_example_batch()
    assert batch.modalities == ("F150W", "F444W", "PRISM")
    assert batch.present.tolist() == [[True, True, True], [False, True, True], [True, False, False]]
    assert (
        batch["F150W"].values.shape == (3, 16, 16) and batch["F150W"].values.dtype == torch.float32
    )
    assert batch["PRISM"].values.shape == (3, 64)
    reference = preprocess_image(image(50.0, seed=2), band="F150W", grid=GRID)
    np.testing.assert_array_equal(batch["F150W"].values[2].numpy(), reference.flux)
    np.testing.assert_array_equal(batch["F150W"].ivar[2].numpy(), reference.ivar)
    spec_reference = preprocess_spectra([spectrum(2.0)], grid=SPEC_GRID)
    np.testing.assert_array_equal(batch["PRISM"].values[1].numpy(), spec_reference.flux[0])
    for name, row in (("F150W", 1), ("F444W", 2), ("PRISM", 2)):
        assert (batch[name].values[row] == 0).all() and (batch[name].ivar[row] == 0).all()
        assert batch[name].mask[row].all()
    # Absolute flux is kept (nJy): object 0 has twice object 2's F150W flux.
    ratio = batch["F150W"].values[0].sum() / batch["F150W"].values[2].sum()
    assert float(ratio) == pytest.approx(2.0, rel=0.1)  # 0.1 nJy noise per pixel
    assert batch.targets["redshift"].dtype == torch.float32


def test_make_batch_single_objects_and_modes():
    batch = make_batch(
        images={"f200w": image()},
        spectra=spectrum(spectral_mode="PRISM/CLEAR"),
        image_grid=GRID,
        spectral_grid=SPEC_GRID,
    )
    assert batch.modalities == ("F200W", "PRISM") and len(batch) == 1 and batch.present.all()
    by_dict = make_batch(
        spectra={"clear-prism": [spectrum(), None]},
        images={"F090W": [None, image()]},
        image_grid=GRID,
        spectral_grid=SPEC_GRID,
    )
    assert by_dict.present.tolist() == [[False, True], [True, False]]
    with pytest.raises(ValueError, match="unknown spectral mode"):
        make_batch(spectra=[spectrum(spectral_mode="G140M")], spectral_grid=SPEC_GRID)


def test_make_batch_positions():
    shape = (60, 60)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [30.5, 30.5]
    wcs.wcs.cdelt = [-0.04 / 3600, 0.04 / 3600]
    data = np.zeros(shape)
    data[40, 20] = 100.0  # a point source 10 pixels north and 9.5 west... off the cutout centre
    nd = NDData(data, wcs=wcs, unit=u.nJy, uncertainty=StdDevUncertainty(np.ones(shape)))
    source = wcs.pixel_to_world(20, 40)
    batch = make_batch(images={"F150W": [nd, nd]}, positions=[source, None], image_grid=GRID)
    flux = batch["F150W"].values
    assert float(flux[0, 7:9, 7:9].sum()) == pytest.approx(100.0, rel=1e-3)  # centred on the source
    assert float(flux[1, 7:9, 7:9].sum()) == 0.0
    with pytest.raises(ValueError, match="positions has 1 entries but there are 2 objects"):
        make_batch(images={"F150W": [nd, nd]}, positions=[source], image_grid=GRID)
    array = SkyCoord([source, source])
    assert make_batch(images={"F150W": [nd, nd]}, positions=array, image_grid=GRID).present.all()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(), ValueError, "give images and/or spectra"),
        (
            dict(images={"F150W": [image(), image()], "F444W": [image()]}),
            ValueError,
            "lengths \\{'F150W': 2, 'F444W': 1\\}",
        ),
        (
            dict(images={"F150W": [image()]}, spectra=[spectrum(), spectrum()]),
            ValueError,
            "'PRISM': 2",
        ),
        (
            dict(images={"F150W": [image(), None], "F444W": [image(), None]}),
            ValueError,
            "objects \\[1\\] have no image",
        ),
        (dict(images={"F150W": []}), ValueError, "no objects"),
        (dict(images={"X": [image()]}), ValueError, "unknown NIRCam band 'X'"),
        (
            dict(images={"F150W": [image(), NDData(np.ones((4, 4)), meta={"pixel_scale": 0.04})]}),
            ValueError,
            "images\\['F150W'\\]\\[1\\]: image has no flux unit",
        ),
        (dict(images={"F150W": image(), "f150w": image()}), ValueError, "given twice"),
        (dict(images=[image()]), TypeError, "dict"),
    ],
)
def test_make_batch_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_batch(image_grid=GRID, spectral_grid=SPEC_GRID, **kwargs)


def test_make_batch_spectrum_error_names_object():
    bad = Spectrum(
        flux=np.full(50, np.nan) * u.uJy,
        spectral_axis=np.linspace(1, 2, 50) * u.um,
        uncertainty=StdDevUncertainty(np.ones(50)),
    )
    with pytest.raises(ValueError, match="spectra\\['PRISM'\\]\\[2\\]"):
        make_batch(spectra=[spectrum(), spectrum(), bad], spectral_grid=SPEC_GRID)


def test_real_jades_batch(real_dir):
    from astropy.io import fits

    path = next(real_dir.glob("hlsp_jades_*00003204*_x1d.fits"))
    try:
        from jwst_embed.io import read_cutouts, read_spectrum
    except ImportError:  # readers written in parallel; build the NDData by hand meanwhile
        read_cutouts = read_spectrum = None
    if read_cutouts is not None:
        cutouts = read_cutouts(path)
        spectra = [read_spectrum(path)]
    else:
        with fits.open(path) as hdul:
            cutouts = {
                band: NDData(
                    hdul[band].data.astype(float),
                    wcs=WCS(hdul[band].header),
                    unit=hdul[band].header["BUNIT"],
                )
                for band in ("F090W", "F150W", "F277W", "F444W")
            }
        spectra = None
    batch = make_batch(images=cutouts, spectra=spectra)
    assert batch.modalities[:4] == ("F090W", "F150W", "F277W", "F444W")
    assert batch.present.all()
    for name in ("F090W", "F150W", "F277W", "F444W"):
        assert batch[name].values.shape == (1, 64, 64)
        assert torch.isfinite(batch[name].values).all() and torch.isfinite(batch[name].ivar).all()
        assert batch[name].ivar.min() > 0
    if spectra is not None:
        assert batch["PRISM"].values.shape == (1, 512)
        assert (~batch["PRISM"].mask).sum() > 100
