"""Active nuclei and Little Red Dots in the mock survey (jwst_embed.simulation.agn)."""

import numpy as np
import pytest
import torch

from jwst_embed.simulation import (
    AGN_PARAMETER_NAMES,
    MockSurvey,
    SurveyConfig,
    sample_agn_parameters,
)
from jwst_embed.simulation.sed import SEDModel, sample_sed_parameters
from jwst_embed.simulation.sps import load_library


@pytest.fixture(scope="module")
def library():
    return load_library()


def _nucleus(n, **values):
    params = {name: torch.zeros(n) for name in AGN_PARAMETER_NAMES}
    defaults = {"agn_fraction": 3.0, "agn_beta": -2.0, "agn_av": 0.0, "agn_balmer_break": 0.0,
                "agn_halpha_ew": 800.0, "agn_fwhm_kms": 2500.0, "agn_hei": 0.3}  # fmt: skip
    for name, value in {**defaults, **values}.items():
        params[name] = torch.full((n,), float(value))
    return params


def test_sampled_nuclei_are_commoner_at_high_redshift():
    g = torch.Generator().manual_seed(0)
    low = sample_agn_parameters(torch.full((4000,), 1.0), g)
    high = sample_agn_parameters(torch.full((4000,), 6.0), g)
    assert set(low) == set(AGN_PARAMETER_NAMES)
    f_low, f_high = (float((p["agn_fraction"] > 0).float().mean()) for p in (low, high))
    assert 0.015 < f_low < 0.05 and 0.08 < f_high < 0.12
    hosts = high["agn_fraction"] > 0
    assert (high["agn_fwhm_kms"][hosts] >= 1000).all() and (high["agn_fwhm_kms"][hosts] <= 4000).all()
    assert (high["agn_av"] <= 4).all()


def test_nucleus_adds_a_broad_halpha_at_the_right_wavelength(library):
    model = SEDModel(library)
    g = torch.Generator().manual_seed(1)
    z = torch.tensor([3.0])
    params = sample_sed_parameters(z, torch.tensor([9.0]), torch.tensor([True]), g)
    galaxy = model.observed(params)["sed"][0].double().numpy()
    with_nucleus = model.observed(params, agn=_nucleus(1))["sed"][0].double().numpy()
    nothing = model.observed(params, agn=_nucleus(1, agn_fraction=0.0))["sed"][0].double().numpy()
    np.testing.assert_allclose(nothing, galaxy, rtol=1e-6, atol=1e-12)
    wavelength = library.observed_wavelength.double().numpy()
    added = with_nucleus - galaxy
    assert (added >= -1e-9 * galaxy.max()).all()
    halpha = 0.656461 * 4.0
    window = np.abs(wavelength - halpha) < 0.2
    peak = wavelength[window][np.argmax(added[window])]
    assert abs(peak - halpha) / halpha < 0.002
    # broad: the line is wider than 1,000 km/s at half maximum, in excess of the continuum
    line = added[window] - np.median(added[(np.abs(wavelength - halpha) > 0.15) & (np.abs(wavelength - halpha) < 0.3)])
    above = wavelength[window][line > 0.5 * line.max()]
    assert (above.max() - above.min()) / halpha * 3e5 > 1000


def test_dusty_nucleus_is_red_and_its_break_suppresses_the_blue(library):
    model = SEDModel(library)
    g = torch.Generator().manual_seed(2)
    z = torch.full((3,), 5.0)
    params = sample_sed_parameters(z, torch.full((3,), 8.5), torch.ones(3, dtype=torch.bool), g)
    params = {k: v[:1].repeat(3) for k, v in params.items()}
    agn = _nucleus(3, agn_fraction=20.0, agn_halpha_ew=100.0)
    agn["agn_av"] = torch.tensor([0.0, 3.0, 3.0])
    agn["agn_balmer_break"] = torch.tensor([0.0, 0.0, 0.8])
    sed = model.observed(params, agn=agn)["sed"].double().numpy()
    wavelength = library.observed_wavelength.double().numpy()
    at = lambda w: sed[:, np.argmin(np.abs(wavelength - w))]  # noqa: E731
    # 0.3 um rest (1.8 um observed) against 0.7 um rest (4.2 um): reddening makes the spectrum red
    colour = at(1.8) / at(4.2)
    assert colour[1] < 0.3 * colour[0]
    # the dense-gas break removes flux below 3646 A rest (2.19 um observed), not above it
    assert at(2.0)[2] < 0.5 * at(2.0)[1]
    assert at(2.6)[2] == pytest.approx(at(2.6)[1], rel=0.05)


def test_survey_switches(library):
    off = MockSurvey(SurveyConfig(bands=(), agn_fraction_low_z=0.0, agn_fraction_high_z=0.0), library=library)
    assert "agn_fraction" not in off.sample(16, seed=3)
    on = MockSurvey(SurveyConfig(bands=()), library=library).sample(64, seed=3)
    assert "agn_fraction" in on and torch.isfinite(on["spectrum"]).all()
    with pytest.raises(ValueError, match="dusty_fraction"):
        SurveyConfig(dusty_fraction=1.5)
