"""Plot a pretraining run's metrics.csv: losses and the quick validation metrics against step.

    python benchmarks/plot_training.py RUN/metrics.csv [-o figure.png] [--title "..."]

Prints, last, a JSON object with the first and last validation kNN redshift sigma_NMAD.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_metrics(path: Path) -> dict[str, list[float]]:
    columns: dict[str, list[float]] = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            for key, value in row.items():
                columns.setdefault(key, []).append(float(value) if value not in ("", None) else math.nan)
    return columns


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("metrics", type=Path)
    parser.add_argument("-o", "--output", type=Path, default=None)
    parser.add_argument("--title", default=None)
    args = parser.parse_args()
    m = read_metrics(args.metrics)
    step = m["step"]
    output = args.output or args.metrics.with_name("training.png")

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for key in ("loss", "spectrum_mask", "image_mask", "contrastive", "views", "decoder", "decoder_subset"):
        if key in m:
            axes[0].plot(step, m[key], label=key, lw=1)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("step")
    axes[0].set_title("training losses")
    axes[0].legend(fontsize=7)

    val = [i for i, v in enumerate(m.get("val_redshift_sigma_nmad", [])) if not math.isnan(v)]
    vstep = [step[i] for i in val]
    axes[1].plot(vstep, [m["val_redshift_sigma_nmad"][i] for i in val], "o-", label="kNN sigma_NMAD")
    axes[1].plot(vstep, [m["val_redshift_outlier_fraction"][i] for i in val], "s--", label="outlier fraction")
    axes[1].set_xlabel("step")
    axes[1].set_title("validation: kNN redshift from the fused embedding")
    axes[1].legend(fontsize=8)
    for key, label in (
        ("val_spectrum_r2", "all inputs, mean"),
        ("val_spectrum_r2_median", "all inputs, median"),
        ("val_spectrum_r2_images", "images only, mean"),
        ("val_spectrum_r2_images_median", "images only, median"),
    ):
        if key in m and any(not math.isnan(m[key][i]) for i in val):
            axes[2].plot(vstep, [m[key][i] for i in val], "o-", label=label)
    axes[2].set_yscale("symlog")
    axes[2].set_xlabel("step")
    axes[2].set_title("validation: spectrum R^2 from the decoder")
    axes[2].legend(fontsize=8)
    fig.suptitle(args.title or f"pretraining run {args.metrics.parent.name}")
    fig.tight_layout()
    fig.savefig(output, dpi=110)
    sig = [m["val_redshift_sigma_nmad"][i] for i in val]
    print(json.dumps({"figure": str(output), "steps": int(step[-1]) if step else 0,
                      "knn_sigma_nmad_first": sig[0] if sig else None, "knn_sigma_nmad_last": sig[-1] if sig else None,
                      "knn_sigma_nmad_min": min(sig) if sig else None}))


if __name__ == "__main__":
    main()
