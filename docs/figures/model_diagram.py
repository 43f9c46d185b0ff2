"""Diagram of the jwst_embed model and the terms of its training objective (drawn with matplotlib)."""

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

fig, axis = plt.subplots(figsize=(16, 7.2))
axis.set(xlim=(0, 16), ylim=(0, 7.2))
axis.set_axis_off()

COLOURS = {"input": "#dbe9f6", "pre": "#e8f4e0", "model": "#fde9c9", "out": "#f3dff0", "loss": "#c0392b"}


def box(x, y, w, h, text, kind, size=8.5):
    axis.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.04", fc=COLOURS[kind], ec="0.3", lw=0.8))
    axis.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size, wrap=True)


def arrow(x1, y1, x2, y2, colour="0.25"):
    axis.add_patch(FancyArrowPatch((x1, y1), (x2, y2), arrowstyle="-|>", mutation_scale=11, color=colour, lw=1))


def loss(x, y, text):
    axis.text(x, y, text, ha="center", va="center", fontsize=7.8, color=COLOURS["loss"], style="italic")


# Inputs and preprocessing.
bands = ["F090W", "F150W", "...", "F444W"]
for row, band in enumerate(bands):
    y = 6.0 - 0.75 * row
    box(0.1, y, 1.5, 0.55, f"NIRCam {band}\nNDData cutout" if band != "..." else "any subset\nof bands", "input", 7.5)
    arrow(1.65, y + 0.27, 2.05, y + 0.27)
box(2.1, 3.75, 2.1, 2.8, "per band:\nnJy / pixel\nresampled by WCS to\n64 x 64 px of 0.04\"\n\nasinh stretch\n(softening 0.5 nJy)\n+ weight channel\n(ivar; mask True = bad\n-> weight 0)", "pre", 7.5)
box(0.1, 1.0, 1.5, 1.0, "NIRSpec PRISM\nSpectrum\n(f_nu or f_lambda)", "input", 7.5)
arrow(1.65, 1.5, 2.05, 1.5)
box(2.1, 0.55, 2.1, 1.9, "f_nu in nJy, flux-\nconserving resample to\n512 px, log grid\n0.6-5.3 um; asinh\n(softening 20 nJy)\n+ ivar weight, mask", "pre", 7.5)

# Encoders and projections.
box(4.6, 4.1, 2.2, 2.1, "ViT image encoder\n8 x 8 px patches\nweights shared by all bands\n+ band identity from\nthe pivot wavelength", "model", 7.8)
box(4.6, 0.65, 2.2, 1.7, "spectrum transformer\n(BERT-style)\n16-px patches", "model", 7.8)
arrow(4.25, 5.15, 4.55, 5.15)
arrow(4.25, 1.5, 4.55, 1.5)
loss(5.7, 6.55, "masked image modelling\n(50% of patches)")
loss(5.7, 0.3, "masked spectrum modelling\n(30% of patches, ivar-weighted)")
box(7.2, 4.5, 1.6, 1.3, "projection\nper modality\n-> 256-d", "model", 7.8)
box(7.2, 1.0, 1.6, 1.0, "projection\n-> 256-d", "model", 7.8)
arrow(6.85, 5.15, 7.15, 5.15)
arrow(6.85, 1.5, 7.15, 1.5)
loss(8.0, 3.3, "pairwise InfoNCE\nbetween every pair of\nmodalities an object has\n(learned temperature)")
arrow(8.0, 4.45, 8.0, 3.8, COLOURS["loss"])
arrow(8.0, 2.05, 8.0, 2.75, COLOURS["loss"])

# Fusion.
box(9.2, 2.2, 2.0, 2.7, "cross-attention\nfusion pooling\n\nlearned queries attend\nover the tokens of the\nmodalities present\n(key-padding mask\nfrom the presence\nmask)", "model", 7.6)
arrow(8.85, 5.15, 9.6, 4.95)
arrow(8.85, 1.5, 9.6, 2.15)
box(9.35, 5.55, 1.7, 0.9, "fused embedding\n(256-d, unit length)", "out", 7.8)
arrow(10.2, 4.95, 10.2, 5.5)
loss(10.2, 1.5, "images-alone vs spectra-alone\nInfoNCE; subset consistency\n(a random subset's embedding\npulled to the full one)")

# Outputs.
outs = [
    ("redshift p(z)\n(bins in log(1+z))", "redshift: simulator label"),
    ("log stellar mass\n+ uncertainty", "mass: simulator label"),
    ("morphology\nclass probabilities", "morphology: simulator label"),
    ("spectrum decoder + refiner\n(PRISM on the 512-px grid)", "vs the noiseless mock spectrum\n(also from a random subset,\ne.g. images alone)"),
]
for row, (text, target) in enumerate(outs):
    y = 5.6 - 1.45 * row
    box(11.9, y, 1.75, 0.95, text, "out", 7.6)
    arrow(11.25, 3.55, 11.85, y + 0.47)
    loss(14.95, y + 0.47, target)
axis.text(7.5, 7.05, "jwst_embed model: each band and each spectrum is a modality; the fused embedding feeds every head",
          ha="center", fontsize=10)  # fmt: skip
axis.text(14.95, 6.9, "trained jointly on", ha="center", fontsize=7.8, color=COLOURS["loss"])
fig.tight_layout()
