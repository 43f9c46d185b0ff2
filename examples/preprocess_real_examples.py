"""Read the real JWST examples in ../shared/real and preprocess them into a Batch.

    python examples/preprocess_real_examples.py [DIR]

For each file: which modalities it gives, whether every tensor is finite, and the fraction of
PRISM model-grid pixels that are unmasked.
"""

import sys
from pathlib import Path

import torch

from jwst_embed.io import read_cutouts, read_spectrum
from jwst_embed.preprocessing import make_batch

folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "real"
for path in sorted(folder.glob("*.fits")):
    spectrum = read_spectrum(path)
    images = read_cutouts(path) if path.name.startswith("hlsp_jades") else None
    batch = make_batch(images=images, spectra=[spectrum])
    finite = all(
        torch.isfinite(tensor).all().item()
        for name in batch.modalities
        for tensor in (batch[name].values, batch[name].ivar)
    )
    unmasked = 1 - batch["PRISM"].mask.float().mean().item()
    print(f"{path.name[:44]:44s} {','.join(batch.modalities):32s} finite={finite} PRISM unmasked={unmasked:.2f}")
