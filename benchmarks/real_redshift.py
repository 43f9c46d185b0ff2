"""Redshifts of real NIRSpec PRISM spectra by every method, against catalogue redshifts.

The 68 real spectra of ../shared/real (six galaxies in four file formats) and ../shared/real/dev
(62 Little Red Dots from the DJA with catalogue redshifts): never used to train weights, fit
templates or tune anything. Each method of `jwst_embed.predict_redshift` runs on all of them
from the `~specutils.Spectrum` objects (spectra only), in one process, one after the other:

``network``
    the model's p(z) (default model unless ``--model``);
``template``
    the full template fit (`~jwst_embed.redshift.TemplateFitter`, 32 templates, 880 redshifts
    over 0-20);
``template_galaxies``
    the same fit with the 16 galaxy templates only (the template set before AGN, lines, dense-gas
    breaks and DLAs);
``joint`` / ``auto``
    network x template likelihood with a floor (``auto`` = ``joint`` here: every object has a
    spectrum).

Reported per method and per population: sigma_NMAD, outlier fraction (|dz| / (1 + z) > 0.15),
68% interval coverage, clean fraction (``z_flag == 0``) and seconds per object (wall clock,
excluding the one-off template cube and model loading, which are reported apart). The methods are
timed ``--repeats`` times, interleaved (network, template, ..., auto, network, template, ...), and
the median of the repeats is reported, so that a slow moment of a shared machine does not land on
one method only; the accuracy is from the first repeat (every repeat gives the same answer).
Writes the per-object predictions and a figure with ``--out DIR``; prints a table and, last, one
JSON line.

    python benchmarks/real_redshift.py --json --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from jwst_embed import MultimodalEmbedder
from jwst_embed.predictions import default_fitter, predict_redshift
from jwst_embed.redshift import TemplateFitter
from jwst_embed.training.validation import outlier_fraction, sigma_nmad

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_data import load_real_spectra  # noqa: E402

METHODS = ("network", "template", "template_galaxies", "joint", "auto")


def scores(z, z_lo, z_hi, z_true, flags=None) -> dict:
    inside = (z_true >= z_lo) & (z_true <= z_hi)
    out = {
        "n": int(len(z_true)),
        "sigma_nmad": round(sigma_nmad(z, z_true), 5),
        "outlier_fraction": round(outlier_fraction(z, z_true), 4),
        "coverage68": round(float(inside.mean()), 3),
    }
    if flags is not None:
        out["clean_fraction"] = round(float((flags == 0).mean()), 3)
    return out


LABELS = {"network": "network", "template": "template (32)", "template_galaxies": "template (16 galaxies)",
          "joint": "joint", "auto": "auto (default)"}  # fmt: skip


def make_rst(summary: dict) -> str:
    """The README's table of the real-spectra results (a test compares the README with it)."""
    header = ("Method", "sigma_NMAD", "Outliers", "68% coverage", "ms/object")
    body = []
    for method, record in summary["methods"].items():
        s = record["all"]
        body.append((LABELS.get(method, method), f"{s['sigma_nmad']:.4f}", f"{s['outlier_fraction']:.3f}",
                     f"{s['coverage68']:.2f}", f"{1e3 * record['s_per_object']:.1f}"))  # fmt: skip
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    line = " ".join("=" * w for w in widths)

    def fmt_row(row):
        return " ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()

    return "\n".join([line, fmt_row(header), line, *(fmt_row(r) for r in body), line]) + "\n"


def figure(path: Path, real, predictions: dict, model_name: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [m for m in ("network", "template", "auto") if m in predictions]
    fig, axes = plt.subplots(1, len(shown), figsize=(4.2 * len(shown), 4.2), sharex=True, sharey=True)
    z_true = real.redshift
    line = np.array([0, 10])
    for ax, method in zip(np.atleast_1d(axes), shown, strict=True):
        p = predictions[method]
        z = np.asarray(p["z"])
        err = np.abs(np.vstack([z - np.asarray(p["z_lo"]), np.asarray(p["z_hi"]) - z]))
        outlier = np.abs(z - z_true) / (1 + z_true) > 0.15
        lrd = real.population == "little red dot"
        for keep, marker, label in ((lrd, "o", "Little Red Dots (dev)"), (~lrd, "s", "galaxies (examples)")):
            ax.errorbar(z_true[keep], z[keep], yerr=err[:, keep], fmt=marker, ms=4, lw=0.8, alpha=0.8, label=label)
        ax.scatter(z_true[outlier], z[outlier], s=90, facecolors="none", edgecolors="red", label="outlier")
        ax.plot(line, line, "k-", lw=0.6)
        for factor in (0.85, 1.15):
            ax.plot(line, (1 + line) * factor - 1, "k:", lw=0.5)
        s = p["scores"]
        ax.set_title(f"{method}: sigma_NMAD {s['sigma_nmad']:.4f}, outliers {s['outlier_fraction']:.3f}", fontsize=9)
        ax.set_xlabel("catalogue z")
        ax.set_xlim(0, 10)
        ax.set_ylim(0, 12)
    np.atleast_1d(axes)[0].set_ylabel("predicted z")
    np.atleast_1d(axes)[0].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"68 real PRISM spectra (../shared/real + dev), PRISM only, model {model_name}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="registered name or model file")
    parser.add_argument("--root", type=Path, default=None, help="folder of the real spectra (../shared/real)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--out", type=Path, default=None, help="write real_redshift.json and .png here")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of every method, interleaved (median reported)")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")

    real = load_real_spectra(args.root)
    start = time.perf_counter()
    embedder = MultimodalEmbedder.from_pretrained(args.model, device="cpu")
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    default_fitter(embedder.spectral_grid)  # built once here, so that no method pays for it
    cube_s = time.perf_counter() - start
    galaxies = TemplateFitter(templates="galaxies", spectral_grid=embedder.spectral_grid) if "template_galaxies" in args.methods else None
    # warm-up (first-call costs: resampling matrices, thread pools) so that timings compare
    predict_redshift(spectra=real.spectra[:2], embedder=embedder, method="joint")

    tables, timings = {}, {method: [] for method in args.methods}
    for _ in range(args.repeats):
        for method in args.methods:
            kwargs = {"method": "template", "fitter": galaxies} if method == "template_galaxies" else {"method": method}
            start = time.perf_counter()
            table = predict_redshift(spectra=real.spectra, embedder=embedder, **kwargs)
            timings[method].append((time.perf_counter() - start) / len(real))
            tables.setdefault(method, table)

    predictions, results = {}, {}
    for method, table in tables.items():
        z, z_lo, z_hi = (np.asarray(table[key], dtype=float) for key in ("z", "z_lo", "z_hi"))
        flags = np.asarray(table["z_flag"])
        record = {"all": scores(z, z_lo, z_hi, real.redshift, flags),
                  "s_per_object": round(float(np.median(timings[method])), 4),
                  "s_per_object_repeats": [round(t, 4) for t in timings[method]]}  # fmt: skip
        for population in np.unique(real.population):
            keep = real.population == population
            record[population.replace(" ", "_")] = scores(z[keep], z_lo[keep], z_hi[keep], real.redshift[keep], flags[keep])
        results[method] = record
        predictions[method] = {"z": z.round(5).tolist(), "z_lo": z_lo.round(5).tolist(),
                               "z_hi": z_hi.round(5).tolist(), "z_flag": flags.tolist(),
                               "scores": record["all"]}  # fmt: skip

    summary = {
        "model": args.model, "n_objects": len(real), "model_load_s": round(load_s, 2),
        "template_cube_s": round(cube_s, 2), "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "timing_repeats": args.repeats, "methods": results,
    }  # fmt: skip
    if "auto" in results and "template" in results:
        auto, template = (np.asarray(results[m]["s_per_object_repeats"]) for m in ("auto", "template"))
        summary["auto_cost_fraction_of_template"] = round(results["auto"]["s_per_object"] / results["template"]["s_per_object"], 4)
        # the same ratio within each repeat (the two ran seconds apart): its spread is the timing noise
        summary["auto_cost_fraction_per_repeat"] = [round(float(a / t), 4) for a, t in zip(auto, template, strict=True)]
    if not args.json:
        print(f"{'method':18s} {'set':15s} {'n':>3s} {'sigma_NMAD':>10s} {'outliers':>8s} {'cov68':>6s} {'clean':>6s} {'s/obj':>7s}")
        for method, record in results.items():
            for name, s in record.items():
                if isinstance(s, dict):
                    print(f"{method:18s} {name:15s} {s['n']:3d} {s['sigma_nmad']:10.5f} {s['outlier_fraction']:8.3f} "
                          f"{s['coverage68']:6.3f} {s.get('clean_fraction', float('nan')):6.3f} {record['s_per_object']:7.4f}")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        payload = {**summary, "names": real.names, "z_catalogue": real.redshift.tolist(),
                   "population": real.population.tolist(), "predictions": predictions}  # fmt: skip
        (args.out / "real_redshift.json").write_text(json.dumps(payload, indent=1) + "\n")
        (args.out / "real_redshift.rst").write_text(make_rst(summary))
        figure(args.out / "real_redshift.png", real, predictions, args.model)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
