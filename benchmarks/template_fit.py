"""Template-fit redshifts of mock PRISM spectra: the classical baseline of the benchmark.

Fits ``--n`` spectra of the mock survey (default configuration, seed 123456, all objects
including faint ones, noisy spectra as observed) with `jwst_embed.baselines.TemplateFitter`
(16 templates from the package's stellar-population library, 800 redshifts in log(1+z)
over 0-15, coarse-to-fine). Reports sigma_NMAD, the outlier fraction (|dz| > 0.15), the
68% interval coverage and seconds per object (excluding the one-off template cube), overall
and by spectral S/N. Prints a table, then one JSON object as the last line.

    python benchmarks/template_fit.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from jwst_embed.baselines import TemplateFitter
from jwst_embed.simulation import MockSurvey, SurveyConfig
from jwst_embed.training.validation import outlier_fraction, sigma_nmad


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    parser.add_argument("--n", type=int, default=500, help="number of mock spectra")
    parser.add_argument("--seed", type=int, default=123456)
    parser.add_argument(
        "--refine", type=int, default=2, help="coarse-to-fine factor (1 = full grid)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    survey = MockSurvey(SurveyConfig(bands=()))  # spectra only: images are not used here
    sample = survey.sample(args.n, seed=args.seed)
    z_true = sample["redshift"].numpy()

    start = time.perf_counter()
    fitter = TemplateFitter(refine=args.refine)
    setup_s = time.perf_counter() - start
    start = time.perf_counter()
    table = fitter.fit(
        sample["spectrum"], sample["spectrum_ivar"], sample["spectrum_mask"], progress=not args.json
    )
    fit_s = time.perf_counter() - start

    z_pred = np.asarray(table["z"])
    inside = (z_true >= np.asarray(table["z_lo"])) & (z_true <= np.asarray(table["z_hi"]))
    # median S/N per pixel of the noiseless spectrum: separates bright from faint objects
    snr = np.median((sample["spectrum_noiseless"] * sample["spectrum_ivar"].sqrt()).numpy(), axis=1)
    results = {
        "template_fit_z_sigma_nmad": round(sigma_nmad(z_pred, z_true), 5),
        "template_fit_outlier_frac": round(outlier_fraction(z_pred, z_true), 4),
        "template_fit_s_per_object": round(fit_s / args.n, 4),
        "template_fit_setup_s": round(setup_s, 2),
        "template_fit_interval68_coverage": round(float(inside.mean()), 3),
        "n_objects": args.n,
        "seed": args.seed,
        "n_templates": len(fitter.templates),
        "n_redshifts": int(fitter.z_grid.size),
        "refine": args.refine,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
    }
    rows = []
    for name, keep in (
        ("snr<1", snr < 1),
        ("1<=snr<5", (snr >= 1) & (snr < 5)),
        ("snr>=5", snr >= 5),
    ):
        if keep.sum() > 0:
            rows.append(
                (
                    name,
                    int(keep.sum()),
                    sigma_nmad(z_pred[keep], z_true[keep]),
                    outlier_fraction(z_pred[keep], z_true[keep]),
                )
            )
            results[f"template_fit_outlier_frac_{name}"] = round(rows[-1][3], 4)
            results[f"template_fit_z_sigma_nmad_{name}"] = round(rows[-1][2], 5)
    if not args.json:
        print(f"{'subset':10s} {'n':>5s} {'sigma_NMAD':>11s} {'outliers':>9s}")
        print(
            f"{'all':10s} {args.n:5d} {results['template_fit_z_sigma_nmad']:11.5f} "
            f"{results['template_fit_outlier_frac']:9.4f}"
        )
        for name, n, sigma, outliers in rows:
            print(f"{name:10s} {n:5d} {sigma:11.5f} {outliers:9.4f}")
        print(
            f"{fit_s / args.n:.4f} s/object ({torch.get_num_threads()} threads), setup {setup_s:.1f} s"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
