"""Gallery of what the mock survey adds to a galaxy: absorbers, calibration, neighbours, artefacts.

One panel per part of ``SurveyConfig`` that is not the galaxy itself: a z = 9 galaxy behind
damped Lyman-alpha absorbers of growing column; the flux-calibration and slit-loss tilts of ten
draws; a wavelength shift of +-0.3 native pixels on a strong line; and NIRCam F150W cutouts of
the same objects alone, with neighbours, and with mosaic edges, snowballs and hot pixels. Then,
in a default-configuration sample, how often each occurs.

    python benchmarks/simulation_effects.py [--n 2000] [--out benchmarks/results]

Writes ``simulation_effects.png`` and ``simulation_effects.json`` and prints the JSON summary last.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from jwst_embed.simulation import MockSurvey, SurveyConfig  # noqa: E402
from jwst_embed.simulation.absorbers import LYMAN_ALPHA_ANGSTROM  # noqa: E402
from jwst_embed.simulation.calibration import CALIBRATION_KEYS, sample_calibration  # noqa: E402
from jwst_embed.simulation.sed import sample_sed_parameters  # noqa: E402

QUIET = {"tilt_sigma": 0.0, "curvature_sigma": 0.0, "shift_sigma_pixels": 0.0}


def _one_galaxy(simulator, redshift: float, seed: int, **kwargs) -> np.ndarray:
    """The noiseless PRISM spectrum of one star-forming galaxy (the same one for every call)."""
    g = torch.Generator().manual_seed(seed)
    params = sample_sed_parameters(torch.tensor([redshift]), torch.tensor([9.8]), torch.tensor([True]), g)
    params["dust_av"] = torch.tensor([0.1])
    out = simulator.simulate(params, torch.tensor([1e4]), torch.tensor([0.8]), torch.Generator().manual_seed(0), **kwargs)
    return out["spectrum_noiseless"][0].numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="default-configuration objects for the statistics")
    parser.add_argument("--seed", type=int, default=31)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--json", action="store_true", help="print only the JSON summary")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    bands = ("F150W", "F277W", "F444W")
    survey = MockSurvey(SurveyConfig(bands=bands))
    simulator = survey.spectrum_simulator
    wave = survey.config.spectral_grid.wavelength.to_value("um")
    fig, axes = plt.subplots(2, 4, figsize=(17, 7.5))

    # damped Lyman-alpha at z = 9
    ax = axes[0, 0]
    z = 9.0
    for log_column, colour in ((0.0, "k"), (21.0, "C0"), (22.0, "C1"), (23.0, "C3")):
        flux = _one_galaxy(simulator, z, 4, dla_log_column=torch.tensor([log_column]))
        label = "no absorber" if log_column == 0 else f"log N_HI = {log_column:.0f}"
        ax.plot(wave, flux, color=colour, lw=1, label=label)
    ax.axvline(LYMAN_ALPHA_ANGSTROM * (1 + z) / 1e4, color="0.5", ls=":", lw=0.8)
    ax.set_xlim(0.95, 2.0)
    shown = (wave > 0.95) & (wave < 2.0)
    ax.set_ylim(-0.05 * flux[shown].max(), 1.3 * _one_galaxy(simulator, z, 4)[shown].max())
    ax.set_title(f"damped Lyman-alpha at z = {z:.0f} (noiseless PRISM)", fontsize=9)
    ax.legend(fontsize=7)

    # flux-calibration and slit-loss tilts
    ax = axes[0, 1]
    base = _one_galaxy(simulator, 2.5, 7)
    ax.plot(wave, base, color="k", lw=1.2, label="as emitted (slit loss only)")
    draws = sample_calibration(10, torch.Generator().manual_seed(args.seed), shift_sigma_pixels=0.0)
    for k in range(10):
        one = {key: draws[key][k : k + 1] for key in CALIBRATION_KEYS}
        ax.plot(wave, _one_galaxy(simulator, 2.5, 7, calibration=one), lw=0.6, alpha=0.7)
    ax.set_title("flux-calibration / slit-loss tilts (10 draws, sigma 0.15 and 0.05)", fontsize=9)
    ax.legend(fontsize=7)

    # wavelength shift on a strong line
    ax = axes[0, 2]
    zero = {key: torch.zeros(1) for key in CALIBRATION_KEYS}
    line = 5008.24 * (1 + 2.5) / 1e4
    near = (wave > line * 0.93) & (wave < line * 1.07)
    for shift, colour in ((-0.3, "C0"), (0.0, "k"), (0.3, "C3")):
        flux = _one_galaxy(simulator, 2.5, 7, calibration={**zero, "wavelength_shift_pixels": torch.tensor([shift])})
        ax.plot(wave[near], flux[near], color=colour, lw=1, marker=".", ms=3, label=f"{shift:+.1f} native pixel")
    ax.set_title("wavelength shift ([OIII] + H-beta at z = 2.5)", fontsize=9)
    ax.legend(fontsize=7)
    axes[0, 3].axis("off")

    # cutouts: alone, with neighbours, with artefacts (the same objects, illustrative rates)
    showcase = {
        "alone": SurveyConfig(bands=bands, neighbour_fraction=0.0, image_artefacts=False),
        "with neighbours": SurveyConfig(bands=bands, neighbour_fraction=1.0, image_artefacts=False),
    }
    samples = {name: MockSurvey(cfg, library=survey.library).sample(16, seed=args.seed) for name, cfg in showcase.items()}
    from jwst_embed.simulation.image_scene import add_artefacts

    observed = samples["with neighbours"]
    artefacts = add_artefacts(observed["images"], observed["images_ivar"], observed["images_mask"],
                              torch.Generator().manual_seed(args.seed), edge_fraction=1.0,
                              snowball_fraction=1.0, hot_pixels_per_stamp=4.0)  # fmt: skip
    f150w = bands.index("F150W")
    # a target of middling brightness whose neighbour shows most
    flux = samples["alone"]["band_flux"][:, f150w].numpy()
    middling = (flux > np.percentile(flux, 30)) & (flux < np.percentile(flux, 90))
    extra = (observed["images"] - samples["alone"]["images"])[:, f150w].sum(dim=(-1, -2)).numpy() / np.maximum(flux, 1e-3)
    bright = int(np.flatnonzero(middling)[np.argmax(extra[middling])])
    panels = (
        ("F150W alone (noisy)", samples["alone"]["images"]),
        ("with neighbours", observed["images"]),
        ("with a mosaic edge, a snowball, hot pixels", artefacts["images"]),
    )
    for ax, (title, images) in zip(axes[1, :3], panels, strict=True):
        stamp = images[bright, f150w].numpy()
        ax.imshow(np.arcsinh(stamp / 2.0), origin="lower", cmap="gray")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    ax = axes[1, 3]
    ax.imshow(artefacts["images_mask"][bright, f150w].numpy(), origin="lower", cmap="Reds")
    ax.set_title("mask of the last cutout (red: no data)", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    for ax in axes[0, :3]:
        ax.set_xlabel("observed wavelength [um]")
        ax.set_ylabel("f_nu [nJy]")
    fig.suptitle("What the mock survey adds to a galaxy (simulator "
                 f"{survey.metadata(0)['simulator_version']}; defaults in SurveyConfig)", fontsize=10)  # fmt: skip
    fig.tight_layout()
    path = args.out / "simulation_effects.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)

    # how often, with the defaults
    chunks = [survey.sample(500, seed=args.seed + k) for k in range((args.n + 499) // 500)]
    sample = {key: torch.cat([c[key] for c in chunks])[: args.n] for key in chunks[0]}
    redshift = sample["redshift"].numpy()
    has_dla = sample["dla_log_column"].numpy() > 0
    masked = sample["images_mask"].flatten(2).any(dim=2).numpy()
    residual = ((sample["images"] - sample["images_noiseless"]) * sample["images_ivar"].sqrt()).numpy()
    good = ~sample["images_mask"].numpy()
    # a neighbour shows as > 20 pixels at > 3 sigma away from the centre in the noise-normalised residual
    yy, xx = np.indices(residual.shape[-2:]) - (residual.shape[-1] - 1) / 2
    outer = np.hypot(yy, xx) > 10
    with_neighbour = ((residual > 3) & good & outer).sum(axis=(-1, -2)).max(axis=1) > 20
    summary = {
        "figure": str(path),
        "n_objects": int(args.n),
        "config": {key: value for key, value in survey.config.to_dict().items()
                   if key in ("dla_fraction", "calibration_options", "neighbour_fraction", "image_artefacts")},
        "dla_share_z_lt_5": round(float(has_dla[redshift < 5].mean()), 3),
        "dla_share_z_5_8": round(float(has_dla[(redshift >= 5) & (redshift < 8)].mean()), 3),
        "dla_share_z_ge_8": round(float(has_dla[redshift >= 8].mean()), 3),
        "cutouts_with_masked_pixels": round(float(masked.mean()), 4),
        "cutouts_with_a_visible_neighbour": round(float(with_neighbour.mean()), 3),
        "calibration_tilt_std": round(float(sample["calibration_tilt"].std()), 3),
        "wavelength_shift_std_pixels": round(float(sample["wavelength_shift_pixels"].std()), 3),
    }  # fmt: skip
    (args.out / "simulation_effects.json").write_text(json.dumps(summary, indent=1) + "\n")
    if not args.json:
        print(f"figure: {path}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
