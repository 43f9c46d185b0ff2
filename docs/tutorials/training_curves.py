"""Validation curves of two pretraining runs: the tiny model on a 2-core CPU, the default on one H100.

Data: ``benchmarks/results/pretrain_cpu_tiny/metrics.csv`` (``configs/pretrain_cpu_tiny.toml``)
and ``benchmarks/results/pretrain_h100_default/metrics.csv`` (``configs/pretrain_gpu_h100.toml``);
validation on mock galaxies. Run from ``docs/tutorials``.
"""

import csv
import math
from pathlib import Path

import matplotlib.pyplot as plt

RESULTS = Path("../../benchmarks/results")
RUNS = {
    "tiny model, 2-core CPU (pretrain_cpu_tiny.toml)": RESULTS / "pretrain_cpu_tiny" / "metrics.csv",
    "small (default) model, one H100 (pretrain_gpu_h100.toml)": RESULTS / "pretrain_h100_default" / "metrics.csv",
}

fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
for label, path in RUNS.items():
    with open(path, newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get("val_redshift_sigma_nmad")]
    samples = [float(row["samples"]) for row in rows]
    axes[0].plot(samples, [float(row["val_redshift_sigma_nmad"]) for row in rows], "o-", label=label)
    axes[1].plot(samples, [float(row["val_spectrum_r2_median"]) for row in rows], "o-", label=label)
axes[0].set(xscale="log", xlabel="galaxies seen in training", ylabel="sigma_NMAD",
            title="kNN redshift from the fused embedding")  # fmt: skip
axes[1].set(xscale="log", xlabel="galaxies seen in training", ylabel="median R^2", ylim=(-2, 1),
            title="spectrum decoded from all inputs")  # fmt: skip
for axis in axes:
    axis.legend(fontsize=8)
fig.suptitle("Quick validation during pretraining on the mock survey (read from each run's metrics.csv)", fontsize=10)
fig.tight_layout()
