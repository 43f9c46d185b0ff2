"""Tests of the mock-image renderer, PSFs and morphology priors (jwst_embed.simulation)."""

import math

import astropy.units as u
import numpy as np
import pytest
import torch

from jwst_embed.preprocessing.images import ImageGrid
from jwst_embed.simulation.images import ImageRenderer, pixel_noise_njy, sersic_fourier_transform
from jwst_embed.simulation.morphology import (
    MORPHOLOGY_CLASSES,
    effective_radius_kpc,
    kpc_per_arcsec,
    morphology_fractions,
    sample_structure,
)
from jwst_embed.simulation.psf import jwst_psf, psf_fwhm
from jwst_embed.simulation.sersic import SersicLookup

SERSIC_INDICES = (0.5, 1.0, 2.0, 4.0, 6.0)


def _round_sersic(sersic_n, re_arcsec):
    """Structure dict of circular single-Sersic galaxies (as bulges)."""
    n = torch.as_tensor(sersic_n, dtype=torch.float32)
    size = n.shape[0]
    return {
        "bulge_fraction": torch.ones(size),
        "bulge_n": n,
        "bulge_re_arcsec": torch.full((size,), float(re_arcsec)),
        "bulge_q": torch.ones(size),
        "disk_n": torch.ones(size),
        "disk_re_arcsec": torch.full((size,), 0.2),
        "disk_q": torch.ones(size),
        "position_angle": torch.zeros(size),
    }


def _radial_profile(image, centre):
    y, x = np.indices(image.shape)
    ring = np.floor(np.hypot(x - centre, y - centre)).astype(int)
    counts = np.bincount(ring.ravel())
    return np.bincount(ring.ravel(), image.ravel())[counts > 0] / counts[counts > 0]


@pytest.fixture(scope="module")
def sample_batch():
    generator = torch.Generator().manual_seed(3)
    morphology = torch.arange(6).repeat(4)
    log_mass = torch.linspace(8.0, 11.0, morphology.numel())
    redshift = torch.linspace(0.5, 8.0, morphology.numel())
    return sample_structure(morphology, log_mass, redshift, generator)


# --- Fourier tables and PSF ----------------------------------------------------------------


@pytest.mark.parametrize("sersic_n", SERSIC_INDICES)
def test_sersic_fourier_transform_matches_galsim(sersic_n):
    galsim = pytest.importorskip("galsim")
    x = np.logspace(-2, 2.5, 40)
    ours = sersic_fourier_transform(torch.tensor([sersic_n]), torch.tensor(x[None], dtype=torch.float32))[0].numpy()
    profile = galsim.Sersic(sersic_n, half_light_radius=1.0)
    reference = np.array([profile.kValue(galsim.PositionD(k, 0.0)).real for k in x])
    np.testing.assert_allclose(ours, reference, atol=3e-4)


def test_sersic_fourier_transform_closed_forms():
    x = torch.logspace(-2, 2, 50)[None]
    exponential = sersic_fourier_transform(torch.tensor([1.0]), x)
    b1 = 1.678346990016661  # b_n for n = 1
    torch.testing.assert_close(exponential, (1 + (x / b1) ** 2) ** -1.5, atol=1e-4, rtol=0)
    gaussian = sersic_fourier_transform(torch.tensor([0.5]), x)
    b05 = math.log(2.0)
    torch.testing.assert_close(gaussian, torch.exp(-(x**2) / (4 * b05)), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="sersic_n"):
        sersic_fourier_transform(torch.tensor([7.0]), x)


@pytest.mark.parametrize("sersic_n", [0.37, 0.73, 1.52, 3.33, 5.86])
def test_sersic_lookup_between_table_nodes_matches_galsim(sersic_n):
    """Indices between the table's n nodes (interpolated) and the float-bits look-up in x^2."""
    galsim = pytest.importorskip("galsim")
    x = np.logspace(-2, 2.5, 60)
    lookup = SersicLookup()
    ours = lookup(lookup.rows(torch.tensor([sersic_n])), torch.tensor(x[None] ** 2, dtype=torch.float32))[0].numpy()
    profile = galsim.Sersic(sersic_n, half_light_radius=1.0)
    reference = np.array([profile.kValue(galsim.PositionD(k, 0.0)).real for k in x])
    np.testing.assert_allclose(ours, reference, atol=3e-4)
    # Ends of the table: unit flux at k = 0, vanishing far out; never NaN.
    ends = lookup(lookup.rows(torch.tensor([sersic_n])), torch.tensor([[0.0, 1e-30, 1e30, float("inf")]]))[0]
    assert torch.allclose(ends[:2], torch.ones(2), atol=1e-6) and bool((ends[2:].abs() < 1e-4).all())


def test_psf_matches_galsim_airy():
    galsim = pytest.importorskip("galsim")
    psf = jwst_psf("F150W")
    airy = galsim.Airy(lam_over_diam=psf.lam_over_diam.to_value(u.arcsec), obscuration=psf.obscuration)
    # FWHM: the half-maximum radius of the GalSim profile.
    half = psf.fwhm.to_value(u.arcsec) / 2
    assert airy.xValue(half, 0.0) / airy.xValue(0.0, 0.0) == pytest.approx(0.5, abs=1e-6)
    k = np.array([0.0, 20.0, 60.0, 100.0])
    reference = [airy.kValue(galsim.PositionD(kk, 0.0)).real for kk in k]
    np.testing.assert_allclose(psf.otf(torch.from_numpy(k)).numpy(), reference, atol=1e-6)
    image = airy.drawImage(nx=300, ny=300, scale=0.002, method="no_pixel").array
    y, x = np.indices(image.shape)
    inside = np.hypot(x - 149.5, y - 149.5) * 0.002 < 0.1
    assert psf.encircled_energy(0.1 * u.arcsec) == pytest.approx(image[inside].sum(), abs=2e-3)


def test_psf_fwhm_values():
    assert psf_fwhm("F150W") == 0.055 * u.arcsec
    assert psf_fwhm("F444W") == 0.147 * u.arcsec
    # Interpolated bands lie between their neighbours.
    assert 0.055 < psf_fwhm("F200W").to_value(u.arcsec) < 0.094
    with pytest.raises(ValueError, match="unknown NIRCam band"):
        psf_fwhm("F999W")


# --- renderer against GalSim -------------------------------------------------------------


# Default padding (2x) at r_e = 0.15"; at r_e = 0.2" the n = 6 wings wrapping around the FFT
# add 1.2% of the flux with the default padding, so that case uses 2.5x (0.55%).
@pytest.mark.parametrize(("re_arcsec", "padding"), [(0.15, 2.0), (0.2, 2.5)])
def test_renderer_matches_galsim_sersic(re_arcsec, padding):
    galsim = pytest.importorskip("galsim")
    band = "F150W"
    renderer = ImageRenderer(bands=(band,), padding=padding)
    psf = jwst_psf(band)
    airy = galsim.Airy(lam_over_diam=psf.lam_over_diam.to_value(u.arcsec), obscuration=psf.obscuration)
    flux = 1000.0
    out = renderer.render(_round_sersic(SERSIC_INDICES, re_arcsec), torch.full((5, 1), flux),
                          torch.full((5, 1), 29.0), torch.Generator().manual_seed(0))
    images = out["images_noiseless"][:, 0].numpy()
    for image, sersic_n in zip(images, SERSIC_INDICES, strict=True):
        galaxy = galsim.Convolve(galsim.Sersic(sersic_n, half_light_radius=re_arcsec, flux=flux), airy)
        reference = galaxy.drawImage(nx=64, ny=64, scale=0.04, method="auto").array
        assert image.sum() == pytest.approx(reference.sum(), rel=0.01), f"n = {sersic_n}"
        ours, theirs = _radial_profile(image, 31.5), _radial_profile(reference, 31.5)
        # Outside the central pixels, out to where the profile falls to 1% of its peak.
        bright = np.nonzero(theirs > 0.01 * theirs.max())[0]
        rings = bright[bright >= 1]
        np.testing.assert_allclose(ours[rings], theirs[rings], rtol=0.03, err_msg=f"n = {sersic_n}")


def test_renderer_matches_galsim_elliptical_offset_undersampled():
    """An inclined, shifted disk in F115W, whose PSF the 0.04" grid undersamples (aliasing)."""
    galsim = pytest.importorskip("galsim")
    band = "F115W"
    renderer = ImageRenderer(bands=(band,), grid=ImageGrid(n_pixels=48))
    psf = jwst_psf(band)
    airy = galsim.Airy(lam_over_diam=psf.lam_over_diam.to_value(u.arcsec), obscuration=psf.obscuration)
    structure = _round_sersic([1.0], 0.15)
    structure.update(bulge_q=torch.tensor([0.4]), position_angle=torch.tensor([0.6]),
                     offset_x_arcsec=torch.tensor([0.013]), offset_y_arcsec=torch.tensor([-0.031]))
    image = renderer.render(structure, torch.tensor([[500.0]]), torch.tensor([[29.0]]))["images_noiseless"][0, 0].numpy()
    # GalSim: semi-major r_e = 0.15" with q = 0.4 is a circular r_e of 0.15 sqrt(0.4) sheared to q.
    galaxy = galsim.Sersic(1.0, half_light_radius=0.15 * math.sqrt(0.4), flux=500.0)
    galaxy = galaxy.shear(q=0.4, beta=0.6 * galsim.radians).shift(0.013, -0.031)
    reference = galsim.Convolve(galaxy, airy).drawImage(nx=48, ny=48, scale=0.04, method="auto").array
    assert np.abs(image - reference).max() < 0.01 * reference.max()


# --- renderer properties -------------------------------------------------------------------


def test_flux_conservation_every_class(sample_batch):
    bands = ("F115W", "F150W", "F277W", "F444W")
    # A large stamp so that (almost) all the light of every object falls on it.
    renderer = ImageRenderer(bands=bands, grid=ImageGrid(n_pixels=160), padding=1.6)
    structure = {key: value.clone() for key, value in sample_batch.items()}
    # Shrink the objects so that the PSF wings and profile tails stay on the stamp.
    for key in ("bulge_re_arcsec", "disk_re_arcsec", "companion_re_arcsec"):
        structure[key] = structure[key].clamp(max=0.15)
    size = structure["morphology"].numel()
    band_flux = torch.rand((size, 4), generator=torch.Generator().manual_seed(1)) * 100 + 10
    out = renderer.render(structure, band_flux, torch.full((size, 4), 29.0), torch.Generator().manual_seed(2))
    total = out["images_noiseless"].sum(dim=(-2, -1))
    # Point-source Airy wings beyond 3.2" hold ~0.5% (F444W) of the flux; n = 6 tails a little.
    torch.testing.assert_close(total, band_flux, rtol=0.015, atol=0)
    for label in range(len(MORPHOLOGY_CLASSES)):
        chosen = structure["morphology"] == label
        assert torch.all((total[chosen] / band_flux[chosen] - 1).abs() < 0.015), MORPHOLOGY_CLASSES[label]


def test_colour_gradient_keeps_band_flux():
    structure = _round_sersic([4.0, 4.0], 0.05)
    structure.update(bulge_fraction=torch.tensor([0.5, 0.5]), disk_re_arcsec=torch.tensor([0.1, 0.1]))
    band_flux = torch.tensor([[100.0, 100.0], [100.0, 100.0]])
    grid = ImageGrid(n_pixels=96)
    red = ImageRenderer(bands=("F115W", "F444W"), grid=grid, bulge_color_slope=1.0)
    flat = ImageRenderer(bands=("F115W", "F444W"), grid=grid, bulge_color_slope=0.0)
    red_images = red.render(structure, band_flux, torch.full((2, 2), 29.0))["images_noiseless"]
    flat_images = flat.render(structure, band_flux, torch.full((2, 2), 29.0))["images_noiseless"]
    # Equal up to the (different) light falling off the 3.84" stamp.
    torch.testing.assert_close(red_images.sum(dim=(-2, -1)), flat_images.sum(dim=(-2, -1)), rtol=2e-3, atol=0)
    # A redder bulge: F444W more concentrated relative to the flat case, F115W less.
    centre = (slice(None), slice(None), slice(44, 52), slice(44, 52))
    assert bool((red_images[centre].sum(dim=(-2, -1))[:, 1] > flat_images[centre].sum(dim=(-2, -1))[:, 1]).all())
    assert bool((red_images[centre].sum(dim=(-2, -1))[:, 0] < flat_images[centre].sum(dim=(-2, -1))[:, 0]).all())


def test_noise_level_matches_pixel_noise(sample_batch):
    renderer = ImageRenderer(bands=("F150W", "F444W"))
    size = sample_batch["morphology"].numel()
    depth = torch.tensor([28.0, 29.5]).repeat(size, 1)
    out = renderer.render(sample_batch, torch.full((size, 2), 50.0), depth, torch.Generator().manual_seed(5))
    residual = out["images"] - out["images_noiseless"]
    for band_index, band in enumerate(("F150W", "F444W")):
        expected = pixel_noise_njy(float(depth[0, band_index]), band)
        measured = float(residual[:, band_index].std())
        assert measured == pytest.approx(expected, rel=0.02)
        ivar = out["images_ivar"][:, band_index]
        torch.testing.assert_close(ivar, torch.full_like(ivar, expected**-2), rtol=1e-4, atol=0)
    assert not bool(out["images_mask"].any())


def test_pixel_noise_convention():
    # sigma = F5 EE / (5 sqrt(N)); one magnitude deeper is 10^0.4 less noise.
    sigma = pixel_noise_njy(29.0, "F277W")
    assert pixel_noise_njy(30.0, "F277W") == pytest.approx(sigma / 10**0.4)
    psf = jwst_psf("F277W")
    f5 = 10 ** (-0.4 * (29.0 - 31.4))
    n_pixels = math.pi * 0.1**2 / 0.04**2
    assert sigma == pytest.approx(f5 * psf.encircled_energy(0.1) / (5 * math.sqrt(n_pixels)), rel=1e-6)
    np.testing.assert_allclose(pixel_noise_njy(np.array([29.0, 30.0]), "F277W"), [sigma, sigma / 10**0.4])
    tensor = pixel_noise_njy(torch.tensor([29.0]), "F277W")
    assert isinstance(tensor, torch.Tensor) and float(tensor[0]) == pytest.approx(sigma, rel=1e-5)
    with pytest.raises(ValueError, match="depth_ab"):
        pixel_noise_njy(float("nan"), "F277W")


def test_determinism_and_finite_outputs(sample_batch):
    renderer = ImageRenderer()
    size = sample_batch["morphology"].numel()
    flux = torch.full((size, 4), 30.0)
    depth = torch.full((size, 4), 29.0)
    first = renderer.render(sample_batch, flux, depth, torch.Generator().manual_seed(11))
    second = renderer.render(sample_batch, flux, depth, torch.Generator().manual_seed(11))
    chunked = ImageRenderer(chunk_size=5).render(sample_batch, flux, depth, torch.Generator().manual_seed(11))
    other = renderer.render(sample_batch, flux, depth, torch.Generator().manual_seed(12))
    for key in first:
        assert torch.equal(first[key], second[key]), key
        torch.testing.assert_close(first[key], chunked[key], rtol=1e-5, atol=1e-5)
        assert first[key].shape == (size, 4, 64, 64)
        assert bool(torch.isfinite(first[key].float()).all()), key
    assert not torch.equal(first["images"], other["images"])
    # Clump positions come from the generator too.
    clumpy = sample_batch["morphology"] == 3
    assert not torch.allclose(first["images_noiseless"][clumpy], other["images_noiseless"][clumpy])
    assert first["images"].dtype == torch.float32 and first["images_mask"].dtype == torch.bool


def test_gpu_code_path_matches_cpu_path(sample_batch):
    """The synchronisation-free path (every component of every object, as on a GPU) gives
    the images of the CPU path, which sorts objects and skips absent components."""
    size = sample_batch["morphology"].numel()
    flux, depth = torch.rand((size, 4), generator=torch.Generator().manual_seed(4)) * 50, torch.full((size, 4), 29.0)
    cpu = ImageRenderer(chunk_size=7)
    dense = ImageRenderer(chunk_size=10)
    dense._sync_free = True  # what a CUDA device selects
    first = cpu.render(sample_batch, flux, depth, torch.Generator().manual_seed(3))
    second = dense.render(sample_batch, flux, depth, torch.Generator().manual_seed(3))
    scale = float(first["images_noiseless"].abs().max())
    torch.testing.assert_close(first["images_noiseless"], second["images_noiseless"], rtol=0, atol=1e-5 * scale)


def test_max_clumps_is_enforced(sample_batch):
    renderer = ImageRenderer(bands=("F150W",), max_clumps=4)
    size = sample_batch["morphology"].numel()
    with pytest.raises(ValueError, match="n_clumps"):
        renderer.render(sample_batch, torch.ones((size, 1)), torch.full((size, 1), 29.0))
    with pytest.raises(ValueError, match="max_clumps"):
        ImageRenderer(max_clumps=0)


@pytest.mark.parametrize("band", ["F150W", "F277W", "F444W"])
def test_point_source_fwhm(band):
    # Oversampled render: 0.005" pixels, so the pixel adds < 1% to the width.
    grid = ImageGrid(n_pixels=96, pixel_scale=0.005 * u.arcsec)
    renderer = ImageRenderer(bands=(band,), grid=grid, padding=1.5)
    structure = _round_sersic([1.0], 0.1)
    structure["point_fraction"] = torch.ones(1)
    image = renderer.render(structure, torch.tensor([[1.0]]), torch.tensor([[29.0]]))["images_noiseless"][0, 0].numpy()
    # Half-maximum radius along the row through the centre (between pixels 47 and 48), linearly interpolated.
    cut = 0.5 * (image[47] + image[48])
    peak = cut.max()
    right = cut[48:]
    i = int(np.argmax(right < peak / 2))
    x0, x1 = i - 1 + 0.5, i + 0.5
    radius = x0 + (right[i - 1] - peak / 2) / (right[i - 1] - right[i]) * (x1 - x0)
    fwhm = 2 * radius * 0.005
    assert fwhm == pytest.approx(psf_fwhm(band).to_value(u.arcsec), rel=0.05)


def test_bad_pixels_are_masked(sample_batch):
    renderer = ImageRenderer(bands=("F150W",), bad_pixel_fraction=0.01)
    size = sample_batch["morphology"].numel()
    out = renderer.render(sample_batch, torch.full((size, 1), 30.0), torch.full((size, 1), 29.0),
                          torch.Generator().manual_seed(1))
    mask = out["images_mask"]
    assert 0.005 < float(mask.float().mean()) < 0.015
    assert bool((out["images"][mask] == 0).all()) and bool((out["images_ivar"][mask] == 0).all())


def test_render_input_errors(sample_batch):
    renderer = ImageRenderer(bands=("F150W", "F444W"))
    size = sample_batch["morphology"].numel()
    flux, depth = torch.ones((size, 2)), torch.full((size, 2), 29.0)
    with pytest.raises(ValueError, match=r"band_flux must have shape \(B, 2\)"):
        renderer.render(sample_batch, torch.ones((size, 3)), depth)
    with pytest.raises(ValueError, match="depth_ab"):
        renderer.render(sample_batch, flux, torch.full((size, 2), float("inf")))
    with pytest.raises(ValueError, match="band_flux must be finite"):
        renderer.render(sample_batch, -flux, depth)
    broken = dict(sample_batch)
    broken["disk_q"] = broken["disk_q"] * 0 - 1
    with pytest.raises(ValueError, match="disk_q"):
        renderer.render(broken, flux, depth)
    missing = {k: v for k, v in sample_batch.items() if k != "bulge_n"}
    with pytest.raises(ValueError, match="bulge_n"):
        renderer.render(missing, flux, depth)
    with pytest.raises(ValueError, match="unknown NIRCam band"):
        ImageRenderer(bands=("F151W",))


# --- morphology priors ---------------------------------------------------------------------


def test_morphology_fractions():
    redshift = torch.tensor([0.1, 3.0, 9.0, 20.0])
    star_forming = morphology_fractions(redshift, torch.ones(4, dtype=torch.bool))
    quiescent = morphology_fractions(redshift, torch.zeros(4, dtype=torch.bool))
    for mix in (star_forming, quiescent):
        assert mix.shape == (4, len(MORPHOLOGY_CLASSES))
        torch.testing.assert_close(mix.sum(dim=1), torch.ones(4))
        assert bool((mix >= 0).all())
    assert float(star_forming[1, 1]) == pytest.approx(0.60)  # disks at z ~ 3 (CEERS)
    assert float(star_forming[2, 1]) == pytest.approx(0.30)  # disks at z ~ 9
    assert float(star_forming[2, 3]) > float(star_forming[1, 3])  # more clumpy at high z
    assert float(star_forming[2, 4]) > float(star_forming[1, 4])  # more mergers at high z
    assert bool((quiescent[:, 0] + quiescent[:, 2] > 0.75).all())  # quiescent: spheroids, bulges
    half = morphology_fractions(redshift, torch.full((4,), 0.5))
    torch.testing.assert_close(half, 0.5 * (star_forming + quiescent))


def test_size_mass_relation_and_distances():
    from astropy.cosmology import Planck18

    redshift = torch.tensor([0.5, 2.0, 7.0])
    expected = Planck18.kpc_proper_per_arcmin(redshift.numpy()).to_value(u.kpc / u.arcsec)
    np.testing.assert_allclose(kpc_per_arcsec(redshift).numpy(), expected, rtol=1e-3)
    log_mass = torch.tensor([10.5, 11.5])  # above the early-type break at 2e10 Msun
    z = torch.tensor([1.0, 1.0])
    late = effective_radius_kpc(log_mass, z, False)
    early = effective_radius_kpc(log_mass, z, True)
    assert float(late[1] / late[0]) == pytest.approx(10**0.22, rel=1e-4)
    assert float(early[1] / early[0]) == pytest.approx(10**0.75, rel=1e-4)
    higher = effective_radius_kpc(log_mass, torch.tensor([3.0, 3.0]), False)
    torch.testing.assert_close(higher / late, torch.full((2,), (4.0 / 2.0) ** -0.75))


def test_sample_structure_by_class():
    generator = torch.Generator().manual_seed(0)
    size = 600
    morphology = torch.arange(6).repeat(size // 6)
    s = sample_structure(morphology, torch.full((size,), 10.0), torch.full((size,), 2.0), generator)
    assert all(value.shape == (size,) for value in s.values())
    spheroid, disk, bulge_disk, clumpy, merger, point = (morphology == i for i in range(6))
    assert bool((s["bulge_fraction"][spheroid] == 1).all()) and bool((s["bulge_fraction"][disk] == 0).all())
    assert bool(((s["bulge_n"][spheroid] >= 3) & (s["bulge_n"][spheroid] <= 6)).all())
    assert bool(((s["disk_n"][disk] >= 0.7) & (s["disk_n"][disk] <= 1.5)).all())
    assert bool((s["bulge_re_arcsec"][bulge_disk] < s["disk_re_arcsec"][bulge_disk]).all())
    assert bool(((s["n_clumps"][clumpy] >= 3) & (s["n_clumps"][clumpy] <= 10)).all())
    assert bool((s["n_clumps"][~clumpy] == 0).all())
    assert bool((s["companion_flux_ratio"][merger] > 0).all()) and bool((s["companion_flux_ratio"][~merger] == 0).all())
    assert bool((s["point_fraction"][point] == 1).all()) and bool((s["point_fraction"][~point] == 0).all())
    # Median disk size near the van der Wel et al. (2014) relation (0.17 dex scatter).
    expected = effective_radius_kpc(torch.tensor([10.0]), torch.tensor([2.0]), False) / kpc_per_arcsec(torch.tensor([2.0]))
    assert float(s["disk_re_arcsec"][disk].median()) == pytest.approx(float(expected), rel=0.12)
    again = sample_structure(morphology, torch.full((size,), 10.0), torch.full((size,), 2.0), torch.Generator().manual_seed(0))
    assert all(torch.equal(s[key], again[key]) for key in s)
    with pytest.raises(ValueError, match="class indices"):
        sample_structure(torch.tensor([6]), torch.tensor([10.0]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="redshift"):
        sample_structure(torch.tensor([1]), torch.tensor([10.0]), torch.tensor([-1.0]))
