"""Redshifts of the six real JWST spectra in ../shared/real, beside their catalogue redshifts.

A smoke test of the default model on real data, not a benchmark: six objects prove nothing, and
the model was never tuned on them. Each file is predicted from its PRISM spectrum alone, and the
two JADES HLSP files also from PRISM + their four NIRCam cutouts.

    python examples/predict_real_examples.py [DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

from astropy.table import Table

from jwst_embed import MultimodalEmbedder, predict_redshift
from jwst_embed.io import read_cutouts, read_spectrum

# Catalogue redshifts listed in ../shared/real/README.md (JADES DR4, DJA, CANUCS line identification).
CATALOGUE_Z = {
    "hlsp_jades_jwst_nirspec_goods-s-mediumjwst-00003204_clear-prism_v1.0_x1d.fits": ("JADES 3204", 2.6732),
    "hlsp_jades_jwst_nirspec_goods-s-mediumjwst-00188208_clear-prism_v1.0_x1d.fits": ("JADES 188208", 2.6925),
    "ceers-1345_933.spec.fits": ("CEERS 1345_933", 4.2341),
    "canucs-1208_458.spec.fits": ("CANUCS 1208_458", 3.65),
    "199773_prism_clear_v5.0_1D.fits": ("JADES 199773 (quiescent)", 2.8204),
    "023286_prism_clear_v5.1_1D.fits": ("JADES 23286 (post-starburst)", 1.7805),
}


def main(directory: Path) -> Table:
    embedder = MultimodalEmbedder.from_pretrained("default", device="cpu")
    rows = []
    for name, (label_object, z_catalogue) in CATALOGUE_Z.items():
        path = directory / name
        spectrum = read_spectrum(path)
        inputs = [("PRISM", {"spectra": spectrum})]
        if name.startswith("hlsp_jades"):
            inputs.append(("PRISM + 4 bands", {"spectra": spectrum, "images": read_cutouts(path)}))
        for label, kwargs in inputs:
            table = predict_redshift(embedder=embedder, **kwargs)
            rows.append((label_object, label, z_catalogue, table["z"][0], table["z_lo"][0], table["z_hi"][0]))
    result = Table(rows=rows, names=("object", "inputs", "z_catalogue", "z", "z_lo", "z_hi"))
    for column in ("z", "z_lo", "z_hi"):
        result[column].format = ".3f"
    return result


if __name__ == "__main__":
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "shared" / "real"
    main(folder).pprint_all()
