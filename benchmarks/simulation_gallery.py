"""Realism check of the mock survey: mock galaxies beside the real JWST examples.

Draws mock PRISM spectra and NIRCam images by morphology class and redshift, shows them beside the
six real spectra (and the two JADES HLSP cutout sets) in ../shared/real, and compares the
distributions of median per-pixel S/N and F150W magnitude of the mocks with those real examples.
Six real objects prove nothing statistically: the comparison asks only whether the real objects
sit inside the mock distributions.

    python benchmarks/simulation_gallery.py [--real DIR] [--n 4000] [--out benchmarks/results]

Writes ``simulation_gallery.png`` and ``simulation_realism.png`` and prints a JSON summary last.
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

from jwst_embed.io import read_cutouts, read_spectrum  # noqa: E402
from jwst_embed.preprocessing import preprocess_images, preprocess_spectra  # noqa: E402
from jwst_embed.simulation import MORPHOLOGY_CLASSES, MockSurvey, SurveyConfig  # noqa: E402

DEFAULT_REAL = Path(__file__).resolve().parents[2] / "shared" / "real"
BANDS = ("F090W", "F115W", "F150W", "F277W", "F444W")


def median_snr(flux, ivar, mask):
    snr = np.where(mask, np.nan, flux * np.sqrt(ivar))
    return np.nanmedian(snr, axis=-1)


def ab_mag(flux_njy):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flux_njy > 0, 31.4 - 2.5 * np.log10(flux_njy), np.nan)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real", type=Path, default=DEFAULT_REAL)
    parser.add_argument("--n", type=int, default=4000, help="mock objects for the distributions")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--json", action="store_true", help="print only the JSON summary")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, torch.get_num_threads()))

    survey = MockSurvey(SurveyConfig(bands=BANDS))
    wave = survey.config.spectral_grid.wavelength.to_value("um")
    samples = [survey.sample(500, seed=args.seed + k) for k in range((args.n + 499) // 500)]
    mock = {key: torch.cat([s[key] for s in samples])[: args.n].numpy() for key in samples[0]}

    # Real examples through the same preprocessing as users' data.
    real_files = sorted(args.real.glob("*.fits"))
    real_spectra = preprocess_spectra([read_spectrum(f) for f in real_files])
    real_snr = median_snr(real_spectra.flux, real_spectra.ivar, real_spectra.mask)
    real_cutouts = {f: read_cutouts(f) for f in real_files if f.name.startswith("hlsp_jades")}
    real_f150w = {}
    for path, cutouts in real_cutouts.items():
        image = preprocess_images([cutouts["F150W"]], band="F150W")
        # Aperture flux: the central 1" diameter on the model grid (same as for the mocks below).
        yy, xx = np.indices(image.flux.shape[1:]) - (image.flux.shape[-1] - 1) / 2
        aperture = np.hypot(xx, yy) * 0.04 < 0.5
        real_f150w[path.name] = float(ab_mag(image.flux[0][aperture].sum()))

    mock_snr = median_snr(mock["spectrum"], mock["spectrum_ivar"], mock["spectrum_mask"])
    yy, xx = np.indices(mock["images"].shape[-2:]) - (mock["images"].shape[-1] - 1) / 2
    aperture = np.hypot(xx, yy) * 0.04 < 0.5
    f150 = BANDS.index("F150W")
    mock_f150w = ab_mag(mock["images_noiseless"][:, f150][:, aperture].sum(axis=-1))

    # ---- gallery: one row per morphology class, mock images at low/mid/high z + a spectrum
    fig, axes = plt.subplots(len(MORPHOLOGY_CLASSES), 5, figsize=(15, 2.6 * len(MORPHOLOGY_CLASSES)),
                             gridspec_kw={"width_ratios": [1, 1, 1, 1, 3]})
    z_bins = [(0.5, 2), (2, 5), (5, 12)]
    for row, name in enumerate(MORPHOLOGY_CLASSES):
        chosen = []
        for lo, hi in z_bins:
            idx = np.flatnonzero((mock["morphology"] == row) & (mock["redshift"] > lo) & (mock["redshift"] < hi))
            chosen.append(idx[np.argmax(mock["band_flux"][idx, f150])] if idx.size else None)
        for col, index in enumerate(chosen):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            if index is None:
                continue
            rgb = np.stack([mock["images"][index, BANDS.index(b)] for b in ("F444W", "F277W", "F150W")], -1)
            rgb = np.arcsinh(rgb / 2.0)
            rgb = np.clip(rgb / np.percentile(rgb, 99.5), 0, 1)
            ax.imshow(rgb, origin="lower")
            ax.set_title(f"z={mock['redshift'][index]:.1f} logM={mock['log_mass'][index]:.1f}", fontsize=8)
        axes[row, 0].set_ylabel(name, fontsize=10)
        ax = axes[row, 3]
        if real_cutouts and row < len(real_cutouts):
            path, cutouts = list(real_cutouts.items())[row]
            rgb = np.stack([preprocess_images([cutouts[b]], band=b).flux[0] for b in ("F444W", "F277W", "F150W")], -1)
            rgb = np.clip(np.arcsinh(rgb / 2.0) / np.percentile(np.arcsinh(rgb / 2.0), 99.5), 0, 1)
            ax.imshow(rgb, origin="lower")
            ax.set_title(f"real: JADES {path.name.split('-')[3][:8]}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        ax = axes[row, 4]
        index = chosen[1] if chosen[1] is not None else next((c for c in chosen if c is not None), None)
        if index is not None:
            good = ~mock["spectrum_mask"][index]
            ax.plot(wave[good], mock["spectrum"][index][good], lw=0.6, color="0.5", label="mock, noisy")
            ax.plot(wave, mock["spectrum_noiseless"][index], lw=0.9, color="C0", label="mock, noiseless")
        if row < len(real_files):
            good = ~real_spectra.mask[row]
            scale = np.nanmedian(mock["spectrum_noiseless"][index]) / max(np.median(real_spectra.flux[row][good]), 1e-3) if index is not None else 1
            ax.plot(wave[good], real_spectra.flux[row][good] * scale, lw=0.7, color="C3", alpha=0.7,
                    label=f"real {real_files[row].name[:18]} (scaled x{scale:.2g})")
        ax.set_xlim(0.6, 5.3)
        ax.legend(fontsize=6, loc="upper right")
        ax.set_ylabel("f_nu [nJy]", fontsize=8)
    axes[-1, 4].set_xlabel("observed wavelength [um]")
    fig.suptitle(f"Mock survey (seed {args.seed}, {args.n} objects; RGB = F444W/F277W/F150W; "
                 "columns: z 0.5-2, 2-5, 5-12, a real JADES cutout) beside real PRISM spectra", fontsize=10)
    fig.tight_layout()
    gallery = args.out / "simulation_gallery.png"
    fig.savefig(gallery, dpi=110)
    plt.close(fig)

    # ---- realism: distributions of median per-pixel S/N and F150W magnitude
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    bins = np.logspace(-1, 3, 41)
    a1.hist(np.clip(mock_snr, 0.1, 1e3), bins=bins, color="C0", alpha=0.7, label=f"mock (N={args.n})")
    for name, value in zip([f.name for f in real_files], real_snr, strict=True):
        a1.axvline(value, color="C3", lw=1)
        a1.text(value, a1.get_ylim()[1] * 0.9, name[:10], rotation=90, fontsize=6, va="top")
    a1.set_xscale("log")
    a1.set_xlabel("median S/N per model pixel (PRISM)")
    a1.legend()
    good = np.isfinite(mock_f150w)
    a2.hist(mock_f150w[good], bins=np.arange(18, 34, 0.4), color="C0", alpha=0.7, label="mock")
    for value in real_f150w.values():
        a2.axvline(value, color="C3", lw=1)
    a2.set_xlabel('F150W AB magnitude in a 1" aperture')
    a2.legend()
    fig.suptitle("Mock survey vs the real JWST examples in shared/real (red lines)")
    fig.tight_layout()
    realism = args.out / "simulation_realism.png"
    fig.savefig(realism, dpi=110)
    plt.close(fig)

    summary = {
        "gallery": str(gallery),
        "realism": str(realism),
        "n_mock": int(args.n),
        "mock_median_snr_percentiles_16_50_84": [float(x) for x in np.nanpercentile(mock_snr, [16, 50, 84])],
        "real_median_snr": {f.name: round(float(v), 2) for f, v in zip(real_files, real_snr, strict=True)},
        "real_snr_percentile_in_mock": {
            f.name: round(float((mock_snr < v).mean() * 100), 1) for f, v in zip(real_files, real_snr, strict=True)
        },
        "mock_f150w_percentiles_16_50_84": [float(x) for x in np.nanpercentile(mock_f150w, [16, 50, 84])],
        "real_f150w_aperture_mag": {k: round(v, 2) for k, v in real_f150w.items()},
    }
    if not args.json:
        print(f"gallery: {gallery}\nrealism: {realism}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
