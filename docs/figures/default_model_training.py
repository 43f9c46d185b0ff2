"""Training curves of the shipped default model, read from its pretraining metrics.csv.

Data: ``benchmarks/results/pretrain_h100_default/metrics.csv`` (losses every 10 steps, quick
validation on 2048 mock galaxies every 500 steps and at the end of each part) and
``train_part1.log`` (where the first part of the run stopped). Run from ``docs/figures``.
"""

import csv
import math
import re
from pathlib import Path

import matplotlib.pyplot as plt

RUN = Path("../../benchmarks/results/pretrain_h100_default")


def read_metrics(path):
    """Columns of a metrics.csv as lists of floats (NaN where a row has no value)."""
    columns = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            for key, value in row.items():
                columns.setdefault(key, []).append(float(value) if value else math.nan)
    return columns


metrics = read_metrics(RUN / "metrics.csv")
steps = metrics["step"]
part1_end = int(re.findall(r"done at step (\d+)", (RUN / "train_part1.log").read_text())[-1])
validated = [i for i, value in enumerate(metrics["val_head_redshift_sigma_nmad"]) if not math.isnan(value)]
val_steps = [steps[i] for i in validated]


def validation(name):
    return [metrics[name][i] for i in validated]


fig, axes = plt.subplots(1, 3, figsize=(16, 4.4))
for name in ("loss", "spectrum_mask", "image_mask", "contrastive", "views", "decoder", "decoder_subset"):
    axes[0].plot(steps, metrics[name], lw=0.8, label=name)
axes[0].set(yscale="symlog", xlabel="optimiser step (256 galaxies each)", title="training losses")
axes[0].legend(fontsize=7, ncol=2)

axes[1].plot(val_steps, validation("val_head_redshift_sigma_nmad"), "o-", label="redshift head sigma_NMAD")
axes[1].plot(val_steps, validation("val_head_redshift_outlier_fraction"), "s--", label="redshift head outlier fraction")
axes[1].plot(val_steps, validation("val_redshift_sigma_nmad"), "^:", label="kNN on the embedding, sigma_NMAD")
axes[1].plot(val_steps, validation("val_head_log_mass_sigma"), "d-", label="mass head scatter (dex)")
axes[1].set(xlabel="optimiser step", ylim=(0, None), title="validation: redshift and mass (lower is better)")
axes[1].legend(fontsize=7)

axes[2].plot(val_steps, validation("val_spectrum_r2_median"), "o-", label="spectrum R^2 median, all inputs")
axes[2].plot(val_steps, validation("val_spectrum_r2_images_median"), "s--", label="spectrum R^2 median, images alone")
axes[2].plot(val_steps, validation("val_head_morphology_f1"), "d-", label="morphology macro-F1")
axes[2].set(xlabel="optimiser step", ylim=(-0.5, 1), title="validation: spectra and morphology (higher is better)")
axes[2].legend(fontsize=7)
for axis in axes:
    axis.axvline(part1_end, color="0.5", lw=0.8, ls="--")
axes[1].annotate("resumed", (part1_end, 0.02), xytext=(4, 0), textcoords="offset points", fontsize=8, color="0.4")
fig.suptitle("Default model (small, 7.3 M parameters) pretrained on the on-the-fly mock survey on one H100; "
             "validation on 2048 mock galaxies", fontsize=10)  # fmt: skip
fig.tight_layout()
