"""The mock survey's damped Lyman-alpha absorbers, calibration systematics, neighbours and artefacts."""

import numpy as np
import pytest
import torch

from jwst_embed.simulation import MockSurvey, SurveyConfig
from jwst_embed.simulation.absorbers import (
    LYMAN_ALPHA_ANGSTROM,
    dla_optical_depth,
    dla_transmission,
    sample_dla_columns,
)
from jwst_embed.simulation.calibration import (
    apply_calibration,
    model_pixels_per_native_pixel,
    sample_calibration,
)
from jwst_embed.simulation.image_scene import add_artefacts, add_neighbours
from jwst_embed.simulation.prism_resolution import resolving_power

QUIET = {"tilt_sigma": 0.0, "curvature_sigma": 0.0, "shift_sigma_pixels": 0.0}


# -- damped Lyman-alpha ---------------------------------------------------------------------------
def test_damping_wing_is_lorentzian_and_scales_with_the_column():
    offsets = torch.tensor([50.0, 100.0, 200.0])
    tau = dla_optical_depth(LYMAN_ALPHA_ANGSTROM + offsets, torch.tensor(22.0))
    # wing: tau ~ 1 / (nu - nu_0)^2 times the classical oscillator's (nu / nu_0)^4 (2 nu_0 / (nu + nu_0))^2
    nu = 1 / (LYMAN_ALPHA_ANGSTROM + offsets).double()
    nu_0 = 1 / LYMAN_ALPHA_ANGSTROM
    shape = (nu / nu_0) ** 4 * (2 * nu_0 / (nu + nu_0)) ** 2 / (nu - nu_0) ** 2
    np.testing.assert_allclose((tau / tau[0]).numpy(), (shape / shape[0]).numpy(), rtol=1e-6)
    assert 0.85 < float(shape[0] * (nu[0] - nu_0) ** 2) < 1.0  # close to the Lorentzian near the line
    np.testing.assert_allclose(dla_optical_depth(LYMAN_ALPHA_ANGSTROM + offsets, torch.tensor(23.0)), 10 * tau)
    # the classical DLA threshold is optically thick only within a few Angstrom
    thin = dla_optical_depth(torch.tensor([LYMAN_ALPHA_ANGSTROM + 10.0]), torch.tensor(20.3))
    assert float(thin) < 0.2


def test_dla_absorbs_redward_of_lyman_alpha_at_the_galaxy_redshift():
    wave = torch.linspace(0.8, 2.0, 600)
    z = torch.tensor([7.0, 7.0, 7.0])
    transmission = dla_transmission(wave, z, torch.tensor([23.0, 21.0, 0.0]))
    line = LYMAN_ALPHA_ANGSTROM * 8.0 / 1e4
    red = wave > line
    assert torch.all(transmission[2] == 1.0)
    # deeper with the column, recovering monotonically redward of the line
    assert torch.all(transmission[0, red] <= transmission[1, red] + 1e-6)
    assert torch.all(torch.diff(transmission[0, red]) >= -1e-6)
    near = (wave > line * 1.02) & (wave < line * 1.03)
    assert transmission[0, near].max() < 0.5 and transmission[1, near].min() > 0.9
    assert transmission[0, -1] > 0.995


def test_dla_share_rises_with_redshift():
    g = torch.Generator().manual_seed(0)
    z = torch.cat([torch.full((4000,), 3.0), torch.full((4000,), 6.5), torch.full((4000,), 10.0)])
    columns = sample_dla_columns(z, g, fraction=0.5)
    has = (columns > 0).reshape(3, -1).float().mean(dim=1)
    assert has[0] == 0 and abs(float(has[1]) - 0.25) < 0.03 and abs(float(has[2]) - 0.5) < 0.03
    assert float(columns[columns > 0].min()) >= 20.3 and float(columns.max()) <= 23.0
    with pytest.raises(ValueError, match="fraction"):
        sample_dla_columns(z, g, fraction=1.5)


def test_survey_dla_dims_the_spectrum_and_the_bands_beside_lyman_alpha(survey_pair):
    plain, absorbed = survey_pair
    simulator = plain.spectrum_simulator
    from jwst_embed.simulation.sed import sample_sed_parameters

    g = torch.Generator().manual_seed(5)
    z = torch.full((4,), 8.0)
    params = sample_sed_parameters(z, torch.full((4,), 9.5), torch.ones(4, dtype=torch.bool), g)
    args = (params, torch.full((4,), 1e4), torch.full((4,), 0.8))
    clean = simulator.simulate(*args, torch.Generator().manual_seed(1))
    dla = simulator.simulate(*args, torch.Generator().manual_seed(1), dla_log_column=torch.full((4,), 22.5))
    wave = plain.config.spectral_grid.wavelength.to_value("um")
    line = LYMAN_ALPHA_ANGSTROM * 9.0 / 1e4
    beside = (wave > line * 1.01) & (wave < line * 1.04)
    far = wave > 2.5
    ratio = dla["spectrum_noiseless"] / clean["spectrum_noiseless"].clamp(min=1e-12)
    assert float(ratio[:, beside].mean()) < 0.6
    np.testing.assert_allclose(ratio[:, far].numpy(), 1.0, atol=1e-3)
    f115w = plain.config.bands.index("F115W")
    assert torch.all(dla["band_flux"][:, f115w] < clean["band_flux"][:, f115w])


# -- calibration systematics ------------------------------------------------------------------------
def test_flux_tilt_follows_its_formula_and_no_systematics_is_the_identity():
    wave = torch.as_tensor(np.geomspace(0.6, 5.3, 512), dtype=torch.float32)
    spectrum = torch.rand(2, 512) + 0.5
    none = {key: torch.zeros(2) for key in ("calibration_tilt", "calibration_curvature", "wavelength_shift_pixels")}
    assert torch.equal(apply_calibration(spectrum, wave, none), spectrum)
    tilted = apply_calibration(torch.ones(1, 512), wave, {**{k: v[:1] for k, v in none.items()},
                                                           "calibration_tilt": torch.tensor([0.2]),
                                                           "calibration_curvature": torch.tensor([0.1])})  # fmt: skip
    x = torch.linspace(-1, 1, 512)
    np.testing.assert_allclose(tilted[0].numpy(), torch.exp(0.2 * x + 0.1 * (x * x - 1 / 3)).numpy(), rtol=1e-4)


def test_wavelength_shift_moves_a_line_by_that_many_native_pixels():
    wave = np.geomspace(0.6, 5.3, 512)
    step = np.log(wave[1] / wave[0])
    for centre_um in (1.2, 3.5):
        # a narrow line: a wide one is also stretched where R changes across it
        sigma = 0.7 * step * model_pixels_per_native_pixel(wave)[np.argmin(abs(wave - centre_um))]
        line = torch.as_tensor(np.exp(-0.5 * ((np.log(wave / centre_um)) / sigma) ** 2))[None]
        params = {"calibration_tilt": torch.zeros(1), "calibration_curvature": torch.zeros(1),
                  "wavelength_shift_pixels": torch.tensor([0.5])}  # fmt: skip
        moved = apply_calibration(line, torch.as_tensor(wave), params)[0].numpy()

        def centroid(profile):
            return np.sum(profile * np.log(wave)) / np.sum(profile)

        # 0.5 native pixels at the line's wavelength (averaged over its profile: R varies)
        local = 0.5 / (2.3 * resolving_power(wave))
        expected = np.sum(line[0].numpy() * local) / np.sum(line[0].numpy())
        assert abs(expected / (0.5 / (2.3 * resolving_power(centre_um))) - 1) < 0.15
        assert abs((centroid(moved) - centroid(line[0].numpy())) / expected - 1) < 0.02


def test_calibration_draws_have_the_asked_spread():
    params = sample_calibration(20000, torch.Generator().manual_seed(3), tilt_sigma=0.2, shift_sigma_pixels=0.3)
    assert abs(float(params["calibration_tilt"].std()) - 0.2) < 0.01
    assert abs(float(params["wavelength_shift_pixels"].std()) - 0.3) < 0.01
    with pytest.raises(ValueError, match="negative"):
        sample_calibration(3, torch.Generator(), tilt_sigma=-1.0)
    with pytest.raises(ValueError, match="calibration_options"):
        SurveyConfig(calibration_options={"tilt": 0.1})


# -- neighbours and artefacts -----------------------------------------------------------------------
def test_neighbours_are_other_objects_of_the_batch_moved_off_centre():
    n, size = 6, 48
    images = torch.zeros(n, 2, size, size)
    centre = slice(size // 2 - 1, size // 2 + 1)
    for k in range(n):  # object k: a 2x2 source of flux 4 (k + 1), bluer in band 0
        images[k, 0, centre, centre] = k + 1.0
        images[k, 1, centre, centre] = 2 * (k + 1.0)
    g = torch.Generator().manual_seed(2)
    extra = add_neighbours(images, g, fraction=1.0, max_neighbours=1, separation_pixels=(10.0, 14.0), flux_scale=(1.0, 1.0))
    assert torch.all(extra[:, :, centre, centre] == 0)  # nothing on the target
    flux = extra.sum(dim=(2, 3))
    # a whole copy of another object: its flux in both bands, never the stamp's own
    assert torch.all(flux[:, 1] == 2 * flux[:, 0]) and torch.all(flux[:, 0] != 4 * torch.arange(1.0, n + 1))
    assert set((flux[:, 0] / 4).round().tolist()) <= set(range(1, n + 1))
    yy, xx = torch.nonzero(extra[:, 0] > 0)[:, 1:].float().T
    distance = torch.hypot(yy - (size - 1) / 2, xx - (size - 1) / 2)
    assert distance.min() > 8 and distance.max() < 17
    assert torch.equal(add_neighbours(images, g, fraction=0.0), torch.zeros_like(images))


def test_artefacts_mask_what_has_no_data_and_leave_hot_pixels_unflagged():
    shape = (400, 2, 64, 64)
    images, ivar = torch.zeros(shape), torch.full(shape, 4.0)  # sigma 0.5
    out = add_artefacts(images, ivar, torch.zeros(shape, dtype=torch.bool), torch.Generator().manual_seed(1),
                        edge_fraction=0.2, snowball_fraction=0.2, hot_pixels_per_stamp=3.0)  # fmt: skip
    mask = out["images_mask"]
    assert torch.all(out["images_ivar"][mask] == 0) and torch.all(out["images"][mask] == 0)
    affected = mask.flatten(2).any(dim=2).float().mean()
    assert 0.3 < float(affected) < 0.42  # 1 - 0.8 * 0.8, less snowballs cut off at the edge
    hot = (out["images"] > 0) & ~mask
    assert 2.0 < float(hot.flatten(2).sum(dim=2).float().mean()) < 3.3
    assert float(out["images"][hot].min()) >= 5 * 0.5 - 1e-5 and float(out["images"][hot].max()) <= 50 * 0.5 + 1e-4


@pytest.fixture(scope="module")
def survey_pair():
    quiet = SurveyConfig(bands=("F115W", "F150W"), dla_fraction=0.0, calibration_options=QUIET,
                         neighbour_fraction=0.0, image_artefacts=False)  # fmt: skip
    busy = SurveyConfig(bands=("F115W", "F150W"), dla_fraction=1.0, neighbour_fraction=1.0,
                        calibration_options={"tilt_sigma": 0.3, "curvature_sigma": 0.1, "shift_sigma_pixels": 0.5})  # fmt: skip
    plain = MockSurvey(quiet)
    return plain, MockSurvey(busy, library=plain.library)


def test_survey_switches_each_part_on_and_off(survey_pair):
    plain, busy = survey_pair
    quiet_sample, busy_sample = plain.sample(64, seed=9), busy.sample(64, seed=9)
    # switched off: the observed images are the target plus noise only, nothing masked
    assert not quiet_sample["images_mask"].any() and "dla_log_column" not in quiet_sample
    assert "calibration_tilt" not in quiet_sample
    noise = (quiet_sample["images"] - quiet_sample["images_noiseless"]) * quiet_sample["images_ivar"].sqrt()
    assert abs(float(noise.std()) - 1.0) < 0.02
    # switched on: high-z objects carry absorbers, images carry neighbours, spectra carry tilts
    high = busy_sample["redshift"] > 8
    assert torch.all(busy_sample["dla_log_column"][high] >= 20.3)
    assert torch.all(busy_sample["dla_log_column"][busy_sample["redshift"] < 5] == 0)
    residual = (busy_sample["images"] - busy_sample["images_noiseless"]) * busy_sample["images_ivar"].sqrt()
    good = ~busy_sample["images_mask"]
    assert float(residual[good].std()) > 1.2  # the neighbours' light
    assert float(busy_sample["calibration_tilt"].std()) > 0.15
    # the images' noiseless truth stays the target alone: its flux is the band flux
    total = busy_sample["images_noiseless"].sum(dim=(-1, -2))
    detected = busy_sample["band_flux"] > 1.0
    assert (total[detected] / busy_sample["band_flux"][detected] < 1.01).all()
