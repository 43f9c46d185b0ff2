"""What limits morphology and the spectrum R^2, read from two benchmark results.

Data: ``benchmarks/results/morphology_ceiling.json`` (``benchmarks/morphology_ceiling.py``: a pixel
CNN trained on 20,000 mock F150W cutouts of seed 737373 beside the default model's morphology from
F150W alone, 4,000 validation mocks of seed 838383) and ``benchmarks/results/spectrum_r2_ceiling.json``
(``benchmarks/spectrum_r2_ceiling.py``: the seed table's 10,000 mocks of seed 990001, F150W +
PRISM). Run from ``docs/figures``.
"""

import json
from pathlib import Path

import matplotlib.pyplot as plt

RESULTS = Path("../../benchmarks/results")
morphology = json.loads((RESULTS / "morphology_ceiling.json").read_text())
spectra = json.loads((RESULTS / "spectrum_r2_ceiling.json").read_text())


def bin_label(low, high):
    return f"{low:g}-{high:g}" if high is not None else f">= {low:g}"


fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
rows = morphology["by_snr"]
x = range(len(rows))
for offset, (name, label) in zip((-0.2, 0.2), (("cnn", "pixel CNN (13 min, CPU)"), ("model", "default model")), strict=True):
    left.bar([i + offset for i in x], [row[name]["f1_macro"] for row in rows], width=0.4, label=label)
left.axhline(0.90, color="0.4", ls="--", lw=1, label="target 0.90")
left.set_xticks(list(x), [f"{bin_label(r['snr_min'], r['snr_max'])}\n(n={r['cnn']['n']})" for r in rows], fontsize=8)
left.set(xlabel="F150W S/N (0.3\" aperture)", ylabel="morphology macro-F1", ylim=(0, 1.2))
left.set_title(f"F150W alone, {morphology['n_validation']:,} mocks (seed {morphology['validation_seed']})", fontsize=9)
left.legend(fontsize=8, loc="upper left")

rows = [r for r in spectra["by_snr"]]
x = range(len(rows))
labels = (("amplitude_oracle", "true shape, amplitude from the data"), ("model", "decoder"),
          ("model_rescaled", "decoder, amplitude from the data"))  # fmt: skip
for offset, (name, label) in zip((-0.27, 0.0, 0.27), labels, strict=True):
    right.bar([i + offset for i in x], [row[name]["median"] for row in rows], width=0.27, label=label)
right.set_xticks(list(x), [f"{bin_label(r['min'], r['max'] if r['max'] and r['max'] < 1e8 else None)}\n(n={r['n']})" for r in rows], fontsize=8)
right.set(xlabel="median spectral S/N per pixel", ylabel="median R^2 per object", ylim=(0, 1.4))
right.set_title(f"spectrum R^2, F150W + PRISM, {spectra['n_objects']:,} mocks (seed {spectra['seed']})", fontsize=9)
right.legend(fontsize=8, loc="upper left", ncol=1)
fig.tight_layout()
