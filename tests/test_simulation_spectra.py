"""Tests for the SED model (simulation.sed) and the PRISM simulator (simulation.prism)."""

import importlib.util
import math
import warnings

import numpy as np
import pytest
import torch
from scipy.optimize import curve_fit
from scipy.special import ndtr

if importlib.util.find_spec("bagpipes") is None:
    pytest.skip("the sim extra (bagpipes) is not installed", allow_module_level=True)

from jwst_embed.preprocessing.spectral_grid import DEFAULT_SPECTRAL_GRID  # noqa: E402
from jwst_embed.simulation.prism import (  # noqa: E402
    PrismInstrument,
    SpectrumSimulator,
    resolving_power,
    slit_throughput,
)
from jwst_embed.simulation.sed import (  # noqa: E402
    SED_PARAMETER_NAMES,
    SEDModel,
    age_of_universe,
    sample_sed_parameters,
)
from jwst_embed.simulation.sps import load_library  # noqa: E402


@pytest.fixture(scope="module")
def library():
    return load_library()


@pytest.fixture(scope="module")
def simulator(library):
    return SpectrumSimulator(library)


@pytest.fixture(scope="module")
def fine_edges(library):
    step = library.log_wavelength_step
    centres = library.observed_wavelength.double().numpy()
    return np.concatenate([centres * math.exp(-step / 2), centres[-1:] * math.exp(step / 2)])


def _params(**values):
    defaults = dict(
        redshift=2.0,
        log_mass=10.0,
        sfh_tau_gyr=1.0,
        sfh_age_gyr=1.0,
        burst_fraction=0.0,
        burst_age_gyr=0.01,
        quench_age_gyr=0.0,
        log_metallicity=0.0,
        log_u=-2.5,
        dust_av=0.3,
        dust_young_extra=1.0,
    )
    defaults.update(values)
    return {k: torch.tensor(np.atleast_1d(v), dtype=torch.float32) for k, v in defaults.items()}


def _prior_batch(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = 0.2 + 14.8 * torch.rand(n, generator=g)
    log_mass = 7.5 + 4.0 * torch.rand(n, generator=g)
    star_forming = torch.rand(n, generator=g) < 0.7
    return sample_sed_parameters(z, log_mass, star_forming, g)


# -- agreement with bagpipes ----------------------------------------------------

BAGPIPES_CONFIGS = {
    "young_star_forming": dict(
        z=6.0, age=0.3, tau=1.0, Z=0.2, logU=-2.0, Av=0.0, eta=1.0, fb=0.0, bage=0.01, mass=10.0
    ),
    "old_quiescent": dict(
        z=1.5, age=3.5, tau=0.3, Z=1.0, logU=-3.0, Av=0.0, eta=1.0, fb=0.0, bage=0.01, mass=11.0
    ),
    "dusty_bursty": dict(
        z=2.5, age=1.5, tau=2.0, Z=1.0, logU=-2.5, Av=1.5, eta=2.0, fb=0.1, bage=0.05, mass=10.5
    ),
}


@pytest.fixture(scope="module")
def bagpipes():
    # bagpipes (third party) loads ~1 GB of grids and emits import-time warnings
    # (matplotlib, optional samplers) that are not ours to fix
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import bagpipes

    return bagpipes


@pytest.mark.parametrize("name", list(BAGPIPES_CONFIGS))
def test_matches_bagpipes(name, bagpipes, library):
    from astropy.cosmology import FlatLambdaCDM, Planck18

    c = BAGPIPES_CONFIGS[name]
    components = {
        "redshift": c["z"],
        "t_bc": 0.01,
        "delayed": {
            "age": c["age"],
            "tau": c["tau"],
            "massformed": c["mass"] + np.log10(1 - c["fb"]),
            "metallicity": c["Z"],
        },
        "nebular": {"logU": c["logU"]},
    }
    if c["fb"] > 0:
        components["burst"] = {
            "age": c["bage"],
            "massformed": c["mass"] + np.log10(c["fb"]),
            "metallicity": c["Z"],
        }
    if c["Av"] > 0:
        components["dust"] = {"type": "Calzetti", "Av": c["Av"], "eta": c["eta"]}
    edges = np.geomspace(1.0, 5.0, 162)  # R ~ 100 bins over 1-5 um observed
    centres_a = np.sqrt(edges[1:] * edges[:-1]) * 1e4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        galaxy = bagpipes.model_galaxy(components, spec_wavs=centres_a, spec_units="mujy")
    reference = galaxy.spectrum[:, 1] * 1e3  # nJy
    # bagpipes uses H0 = 70, Om0 = 0.3; we use Planck18
    ratio = FlatLambdaCDM(H0=70, Om0=0.3).luminosity_distance(
        c["z"]
    ) / Planck18.luminosity_distance(c["z"])
    reference = reference * float(ratio.decompose()) ** 2

    params = _params(
        redshift=c["z"],
        log_mass=galaxy.sfh.stellar_mass,  # surviving mass, as bagpipes computes it
        sfh_tau_gyr=c["tau"],
        sfh_age_gyr=c["age"],
        burst_fraction=c["fb"],
        burst_age_gyr=c["bage"],
        log_metallicity=np.log10(c["Z"]),
        log_u=c["logU"],
        dust_av=c["Av"],
        dust_young_extra=c["eta"] - 1.0,
    )
    out = SEDModel(library).observed(params)
    assert float(out["log_mass_formed"][0]) == pytest.approx(galaxy.sfh.formed_mass, abs=0.01)
    assert float(out["log_sfr"][0]) == pytest.approx(np.log10(galaxy.sfh.sfr), abs=0.02)
    sed = out["sed"][0].double().numpy()
    wave = library.observed_wavelength.double().numpy()
    index = np.searchsorted(edges, wave) - 1
    inside = (index >= 0) & (index < centres_a.size)
    binned = np.bincount(index[inside], weights=sed[inside], minlength=centres_a.size)
    binned /= np.bincount(index[inside], minlength=centres_a.size)
    assert np.median(np.abs(binned / reference - 1)) < 0.05


# -- the SED model ------------------------------------------------------------


def test_mass_scaling(simulator):
    params = _params()
    doubled = dict(params, log_mass=params["log_mass"] + math.log10(2.0))
    ones = torch.ones(1)
    one = simulator.simulate(params, 1e4 * ones, ones, torch.Generator().manual_seed(0))
    two = simulator.simulate(doubled, 1e4 * ones, ones, torch.Generator().manual_seed(0))
    assert torch.allclose(two["spectrum_noiseless"], 2 * one["spectrum_noiseless"], rtol=1e-4)
    assert torch.allclose(two["band_flux"], 2 * one["band_flux"], rtol=1e-4)
    assert float(two["log_sfr"] - one["log_sfr"]) == pytest.approx(math.log10(2), abs=1e-4)


def test_band_flux_of_flat_sed(library):
    model = SEDModel(library)
    flat = torch.full((1, library.observed_wavelength.numel()), 100.0)
    assert torch.allclose(
        model.band_fluxes(flat, ["F090W", "F444W"]), torch.full((1, 2), 100.0), rtol=1e-4
    )
    with pytest.raises(ValueError, match="F999W"):
        model.band_fluxes(flat, ["F999W"])


def test_distance_dimming(library):
    # the same galaxy at higher redshift is fainter at fixed rest wavelength by d_L^2 / (1 + z)
    from astropy.cosmology import Planck18

    model = SEDModel(library)
    sed = {
        z: model.observed(_params(redshift=z, dust_av=0.0))["sed"][0].double().numpy()
        for z in (1.0, 2.0)
    }
    wave = library.observed_wavelength.double().numpy()
    at_rest = {z: np.interp(1.0 * (1 + z), wave, sed[z]) for z in sed}  # rest 1 um
    d1, d2 = Planck18.luminosity_distance([1.0, 2.0]).value
    expected = (d1 / d2) ** 2 * (1 + 2.0) / (1 + 1.0)
    assert at_rest[2.0] / at_rest[1.0] == pytest.approx(expected, rel=0.03)


def test_lyman_break(library):
    model = SEDModel(library)
    sed = model.observed(_params(redshift=7.0, sfh_age_gyr=0.2, dust_av=0.0))["sed"][0].numpy()
    wave = library.observed_wavelength.numpy()
    blue = sed[(wave > 0.6) & (wave < 0.8)].mean()
    red = sed[(wave > 1.0) & (wave < 1.2)].mean()
    assert blue < 0.02 * red


def test_dust_reddens(library):
    model = SEDModel(library)
    wave = library.observed_wavelength.numpy()
    seds = [model.observed(_params(dust_av=av))["sed"][0].numpy() for av in (0.0, 1.0)]
    uv = (wave > 0.45 * 3) & (wave < 0.5 * 3)  # rest 0.45-0.5 um at z = 2
    nir = (wave > 1.5 * 3) & (wave < 1.6 * 3)
    colour = [s[uv].mean() / s[nir].mean() for s in seds]
    assert colour[1] < 0.5 * colour[0]


def test_quenching_lowers_sfr(library):
    model = SEDModel(library)
    forming = model.observed(_params(sfh_age_gyr=2.0))
    quenched = model.observed(_params(sfh_age_gyr=2.0, quench_age_gyr=0.5))
    assert float(quenched["log_sfr"][0]) == pytest.approx(-6.0)
    assert float(forming["log_sfr"][0]) > 0.0


def test_age_is_clipped_to_universe(library):
    model = SEDModel(library)
    # 13 Gyr since star formation began at z = 5 is impossible; clipped to the age at z = 5
    clipped = model.observed(_params(redshift=5.0, sfh_age_gyr=13.0))["sed"]
    limit = float(age_of_universe(torch.tensor([5.0]))[0])
    at_limit = model.observed(_params(redshift=5.0, sfh_age_gyr=limit - 1e-4))["sed"]
    assert torch.isfinite(clipped).all()
    assert torch.allclose(clipped, at_limit, rtol=1e-3)


def test_sampled_priors_are_valid(library):
    params = _prior_batch(2000)
    t_universe = age_of_universe(params["redshift"])
    assert set(params) == set(SED_PARAMETER_NAMES)
    assert (params["sfh_age_gyr"] <= t_universe).all()
    assert (params["quench_age_gyr"] < params["sfh_age_gyr"]).all()
    assert ((params["dust_av"] >= 0) & (params["dust_av"] <= 4)).all()
    # the dusty population (10% of star-forming galaxies, A_V 1.5-4) at high redshift too
    high_z = params["redshift"] > 5
    assert (params["dust_av"][high_z] > 1.5).float().mean() > 0.03
    out = SEDModel(library).observed(params)
    quiescent = params["quench_age_gyr"] > 0
    assert out["log_sfr"][quiescent].median() < out["log_sfr"][~quiescent].median() - 1
    assert torch.isfinite(out["sed"]).all() and (out["sed"] >= 0).all()


def test_invalid_inputs(library, simulator):
    model = SEDModel(library)
    with pytest.raises(ValueError, match="redshift"):
        model.observed(_params(redshift=20.0))
    with pytest.raises(ValueError, match="dust_av"):
        model.observed(_params(dust_av=float("nan")))
    params = _params()
    del params["log_u"]
    with pytest.raises(KeyError, match="log_u"):
        model.observed(params)
    ones = torch.ones(1)
    with pytest.raises(ValueError, match="exposure_s"):
        simulator.simulate(_params(), -ones, ones, torch.Generator())
    with pytest.raises(ValueError, match="slit_throughput"):
        simulator.simulate(_params(), ones, 2 * ones, torch.Generator())


# -- the PRISM simulator ----------------------------------------------------------


def test_outputs_finite_and_deterministic(simulator):
    params = _prior_batch(256, seed=3)
    exposure = torch.full((256,), 5e3)
    throughput = slit_throughput(torch.full((256,), 0.1), torch.full((256,), 1.5))
    first = simulator.simulate(params, exposure, throughput, torch.Generator().manual_seed(7))
    second = simulator.simulate(params, exposure, throughput, torch.Generator().manual_seed(7))
    other = simulator.simulate(params, exposure, throughput, torch.Generator().manual_seed(8))
    expected = {
        "spectrum_noiseless",
        "spectrum",
        "spectrum_ivar",
        "spectrum_mask",
        "band_flux",
        "log_sfr",
        "log_mass",
    }
    assert set(first) == expected
    assert first["spectrum"].shape == (256, DEFAULT_SPECTRAL_GRID.n_pixels)
    assert first["band_flux"].shape == (256, 4)
    for key in expected:
        assert torch.equal(first[key], second[key]), key
        assert torch.isfinite(first[key].float()).all(), key
    assert not torch.equal(first["spectrum"], other["spectrum"])
    # masked pixels (gaps, cut coverage, bad native pixels) carry value 0 and ivar 0; most are good
    mask = first["spectrum_mask"]
    assert 0 < mask.float().mean() < 0.1
    assert (first["spectrum_ivar"][~mask] > 0).all()
    assert (first["spectrum_ivar"][mask] == 0).all() and (first["spectrum"][mask] == 0).all()


def _fit_fwhm(prism, fine_edges, wavelength_um):
    centres = np.sqrt(fine_edges[1:] * fine_edges[:-1])
    sed = torch.zeros(1, centres.size)
    j = int(np.argmin(np.abs(centres - wavelength_um)))
    sed[0, j] = 1.0
    ones = torch.ones(1)
    profile = (
        prism.observe(sed, 1e4 * ones, ones, torch.Generator())["spectrum_noiseless"][0]
        .double()
        .numpy()
    )
    edges = DEFAULT_SPECTRAL_GRID.edges.value
    lo, hi = edges[:-1], edges[1:]
    centre, width = centres[j], 0.1 * centres[j]
    near = (hi > centre - width) & (lo < centre + width)

    def pixelised_gaussian(_, amplitude, mean, sigma):
        return (
            amplitude
            * (ndtr((hi[near] - mean) / sigma) - ndtr((lo[near] - mean) / sigma))
            / (hi[near] - lo[near])
        )

    guess = (profile[near].sum() * np.median(hi - lo), centre, centre / 100)
    (amplitude, mean, sigma), _ = curve_fit(pixelised_gaussian, None, profile[near], p0=guess)
    return 2 * math.sqrt(2 * math.log(2)) * abs(sigma), centres[j]


@pytest.mark.parametrize("wavelength", [1.2, 3.0, 5.0])
@pytest.mark.parametrize("sharpening", [1.0, 1.3])
def test_line_spread_fwhm(fine_edges, wavelength, sharpening):
    # R is lambda / FWHM of the line-spread function; the fit integrates the
    # Gaussian over each model pixel, so it measures the LSF, not the pixel size
    prism = PrismInstrument(fine_edges, sharpening=sharpening)
    fwhm, centre = _fit_fwhm(prism, fine_edges, wavelength)
    assert fwhm == pytest.approx(centre / float(resolving_power(centre, sharpening)), rel=0.1)


def test_line_flux_conserved(fine_edges):
    prism = PrismInstrument(fine_edges)
    centres = np.sqrt(fine_edges[1:] * fine_edges[:-1])
    sed = torch.zeros(1, centres.size)
    j = int(np.argmin(np.abs(centres - 2.5)))
    sed[0, j] = 1.0
    ones = torch.ones(1)
    out = (
        prism.observe(sed, 1e4 * ones, ones, torch.Generator())["spectrum_noiseless"][0]
        .double()
        .numpy()
    )
    # integrated f_nu dlambda is conserved (up to the f_lambda weighting over the line width)
    widths = np.diff(DEFAULT_SPECTRAL_GRID.edges.value)
    assert np.sum(out * widths) == pytest.approx(fine_edges[j + 1] - fine_edges[j], rel=0.01)


def test_noise_reference_point(fine_edges):
    # flat 132 nJy, 10 ks: S/N = 10 per resolution element at 3 um
    prism = PrismInstrument(fine_edges, noise="white")
    n = 4000
    sed = torch.full((n, fine_edges.size - 1), 132.0)
    ones = torch.ones(n)
    out = prism.observe(sed, 1e4 * ones, ones, torch.Generator().manual_seed(1))
    edges = DEFAULT_SPECTRAL_GRID.edges.value
    centres = np.sqrt(edges[1:] * edges[:-1])
    p = int(np.argmin(np.abs(centres - 3.0)))
    sigma_pixel = out["spectrum"][:, p].double().std().item()
    mean = out["spectrum"][:, p].double().mean().item()
    assert mean == pytest.approx(132.0, rel=0.02)
    # a resolution element (lambda / R wide) holds this many model pixels
    pixels_per_resel = (centres[p] / 101.0) / (edges[p + 1] - edges[p])
    snr_resel = mean / (sigma_pixel / math.sqrt(pixels_per_resel))
    assert snr_resel == pytest.approx(10.0, abs=1.0)
    # pixels are independent: averaging 4 neighbours halves the noise
    mean4 = out["spectrum"][:, p - 2 : p + 2].double().mean(dim=1).std().item()
    assert mean4 == pytest.approx(sigma_pixel / 2, rel=0.1)
    # ivar is the inverse of the realised variance
    assert 1 / out["spectrum_ivar"][0, p].item() == pytest.approx(sigma_pixel**2, rel=0.1)
    # background-limited: four times the exposure halves the noise
    longer = prism.observe(sed, 4e4 * ones, ones, torch.Generator().manual_seed(2))
    assert longer["spectrum"][:, p].double().std().item() == pytest.approx(sigma_pixel / 2, rel=0.1)
    # the blue end is less sensitive than 3 um
    blue = int(np.argmin(np.abs(centres - 0.7)))
    assert out["spectrum_ivar"][0, blue] < out["spectrum_ivar"][0, p]


def test_native_noise_is_correlated_and_resel_calibrated(fine_edges):
    # the same reference point, with the noise drawn on native pixels and resampled
    fixed = {"sensitivity_scatter": 1.0, "pixel_sigma_scatter": 0.0, "error_scale_range": (1.0, 1.0),
             "outlier_fraction": 0.0, "gap_probability": 0.0, "truncation_probability": 0.0,
             "bad_pixel_fraction": 0.0}  # fmt: skip
    prism = PrismInstrument(fine_edges, noise="native", noise_options=fixed)
    n = 4000
    sed = torch.full((n, fine_edges.size - 1), 132.0)
    ones = torch.ones(n)
    out = prism.observe(sed, 1e4 * ones, ones, torch.Generator().manual_seed(1))
    edges = DEFAULT_SPECTRAL_GRID.edges.value
    centres = np.sqrt(edges[1:] * edges[:-1])
    residual = (out["spectrum"] - out["spectrum_noiseless"]).double()
    # S/N = 10 per resolution element at 3 um: the mean over a window of ~10 resolution elements
    # has the noise of one element divided by sqrt(10), correlations or not
    p = int(np.argmin(np.abs(centres - 3.0)))
    window = slice(p - 11, p + 12)
    n_resel = (edges[p + 12] - edges[p - 11]) / (centres[p] / 101.0)
    snr_resel = 132.0 / (residual[:, window].mean(dim=1).std().item() * np.sqrt(n_resel))
    assert snr_resel == pytest.approx(10.0, rel=0.15)
    # resampling native pixels (~3 model pixels each at 1 um) correlates neighbours, as in real data
    sel = slice(int(np.argmin(np.abs(centres - 0.8))), int(np.argmin(np.abs(centres - 1.8))))
    a, b = residual[:, sel][:, :-1].flatten(), residual[:, sel][:, 1:].flatten()
    assert np.corrcoef(a.numpy(), b.numpy())[0, 1] > 0.5
    # the reported ivar is the propagated variance: standardised residuals have unit scatter
    chi = (residual * out["spectrum_ivar"].double().sqrt())[:, sel]
    assert chi.std().item() == pytest.approx(1.0, rel=0.05)


def test_native_noise_varies_the_error_array_per_object(fine_edges):
    prism = PrismInstrument(fine_edges)  # native noise with its defaults
    n = 400
    sed = torch.full((n, fine_edges.size - 1), 132.0)
    ones = torch.ones(n)
    out = prism.observe(sed, 1e4 * ones, ones, torch.Generator().manual_seed(3))
    edges = DEFAULT_SPECTRAL_GRID.edges.value
    centres = np.sqrt(edges[1:] * edges[:-1])
    blue, mid = int(np.argmin(np.abs(centres - 0.7))), int(np.argmin(np.abs(centres - 3.0)))
    ivar = out["spectrum_ivar"].double()
    good = (ivar[:, blue] > 0) & (ivar[:, mid] > 0)
    ratio = (ivar[good, mid] / ivar[good, blue]).sqrt()  # sigma(0.7 um) / sigma(3 um) per object
    # one fixed curve would give one ratio; real programmes differ by ~3x at the ends
    assert ratio.quantile(0.9) / ratio.quantile(0.1) > 3.0
    # some objects have gaps or cut coverage, masked
    assert 0.05 < out["spectrum_mask"].any(dim=1).float().mean() < 0.8


def test_bad_pixels_and_slit_loss(library):
    simulator = SpectrumSimulator(library, bad_pixel_fraction=0.01, noise="white")
    n = 64
    params = _prior_batch(n, seed=5)
    ones = torch.ones(n)
    out = simulator.simulate(params, 1e4 * ones, 0.5 * ones, torch.Generator().manual_seed(0))
    mask = out["spectrum_mask"]
    assert 0.005 < mask.float().mean() < 0.02
    assert (out["spectrum"][mask] == 0).all() and (out["spectrum_ivar"][mask] == 0).all()
    full = SpectrumSimulator(library, noise="white").simulate(
        params, 1e4 * ones, ones, torch.Generator().manual_seed(0)
    )
    assert torch.allclose(
        out["spectrum_noiseless"], 0.5 * full["spectrum_noiseless"], rtol=1e-5, atol=1e-6
    )
    # band fluxes are total fluxes: no slit loss
    assert torch.allclose(out["band_flux"], full["band_flux"])


def test_slit_throughput():
    r_e = torch.tensor([0.001, 0.03, 0.1, 0.3, 1.0, 3.0])
    for n in (0.5, 1.0, 4.0):
        t = slit_throughput(r_e, torch.full_like(r_e, n))
        assert ((t >= 0) & (t <= 1)).all()
        assert (t[1:] <= t[:-1] + 1e-3).all()
    point = float(slit_throughput(torch.tensor([0.001]), torch.tensor([1.0]))[0])
    assert 0.75 < point < 0.95
    # a large exponential disk (r_e = 1") puts only a few percent in a 0.2" x 0.46" shutter:
    # roughly the central surface brightness times the shutter area over the total flux
    r_e_arcsec = 1.0
    h = r_e_arcsec / 1.678
    expected = 0.2 * 0.46 / (2 * math.pi * h**2)
    assert float(
        slit_throughput(torch.tensor([r_e_arcsec]), torch.tensor([1.0]))[0]
    ) == pytest.approx(expected, rel=0.25)


@pytest.mark.parametrize(
    "log_u, log_metallicity",
    [(-4.0, math.log10(0.005)), (0.0, math.log10(5.0)), (-5.0, -3.0), (1.0, 1.5)],
)
def test_grid_edges_are_finite(library, log_u, log_metallicity):
    # values on and beyond the ends of the logU and metallicity grids are clamped, never NaN
    out = SEDModel(library).observed(_params(log_u=log_u, log_metallicity=log_metallicity))
    assert torch.isfinite(out["sed"]).all() and out["sed"].max() > 0


def test_basis_matches_exact_templates(library):
    # the default rank-160 SVD basis reproduces the exact template sums
    params = _prior_batch(300, seed=11)
    fast = SEDModel(library).observed(params)["sed"].double()
    exact = SEDModel(library, exact=True).observed(params)["sed"].double()
    error = (fast - exact).abs().sum(dim=1) / exact.abs().sum(dim=1)
    assert error.max() < 1e-3


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(library, simulator):
    params = _prior_batch(128, seed=2)
    ones = torch.ones(128)
    cpu = simulator.simulate(params, 1e4 * ones, ones, torch.Generator().manual_seed(0))
    cuda = SpectrumSimulator(library, device="cuda")
    gen = torch.Generator(device="cuda").manual_seed(0)
    out = cuda.simulate(
        {k: v.cuda() for k, v in params.items()}, 1e4 * ones.cuda(), ones.cuda(), gen
    )
    a, b = cpu["spectrum_noiseless"].double(), out["spectrum_noiseless"].cpu().double()
    assert ((a - b).abs().sum(1) / a.abs().sum(1)).max() < 1e-4
    again = cuda.simulate(
        {k: v.cuda() for k, v in params.items()},
        1e4 * ones.cuda(),
        ones.cuda(),
        torch.Generator(device="cuda").manual_seed(0),
    )
    assert torch.equal(out["spectrum"], again["spectrum"])
