"""The real PRISM spectra of ../shared/real and ../shared/real/dev, with catalogue redshifts.

A helper of the benchmark scripts (not part of the package): the files are public JWST data
kept beside the repository for validation only. They are read with the package's own reader,
never used to train weights, fit templates or tune anything per object.

- ``../shared/real``: six spectra of ordinary galaxies in four file formats (JADES HLSP x1d,
  DJA msaexp spec.fits, JADES 1D); redshifts from ../shared/real/README.md.
- ``../shared/real/dev``: 62 Little Red Dots (de Graaff et al. 2025, DJA v4), redshifts in
  ``manifest.csv``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["RealSpectra", "default_real_root", "load_real_spectra"]

#: Catalogue redshifts of the six examples (../shared/real/README.md).
EXAMPLE_REDSHIFTS = {
    "hlsp_jades_jwst_nirspec_goods-s-mediumjwst-00003204_clear-prism_v1.0_x1d.fits": 2.6732,
    "hlsp_jades_jwst_nirspec_goods-s-mediumjwst-00188208_clear-prism_v1.0_x1d.fits": 2.6925,
    "ceers-1345_933.spec.fits": 4.2341,
    "canucs-1208_458.spec.fits": 3.65,
    "199773_prism_clear_v5.0_1D.fits": 2.8204,
    "023286_prism_clear_v5.1_1D.fits": 1.7805,
}


@dataclass
class RealSpectra:
    """Spectra, catalogue redshifts and population labels, in one order."""

    names: list[str]
    spectra: list
    redshift: np.ndarray
    population: np.ndarray

    def __len__(self) -> int:
        return len(self.names)


def default_real_root() -> Path:
    """``../shared/real`` beside the repository."""
    return Path(__file__).resolve().parents[2] / "shared" / "real"


def load_real_spectra(root: str | Path | None = None) -> RealSpectra:
    """Read the six examples and the 62 dev spectra with `jwst_embed.io.read_spectrum`.

    Raises
    ------
    FileNotFoundError
        If the folder or its ``dev/manifest.csv`` is missing.
    """
    from jwst_embed.io import read_spectrum

    root = Path(root) if root is not None else default_real_root()
    manifest = root / "dev" / "manifest.csv"
    if not manifest.exists():
        raise FileNotFoundError(f"no real spectra at {root} (expected {manifest})")
    names, paths, redshifts, populations = [], [], [], []
    for name, z in EXAMPLE_REDSHIFTS.items():
        names.append(name)
        paths.append(root / name)
        redshifts.append(z)
        populations.append("galaxy")
    with open(manifest, newline="") as handle:
        for row in csv.DictReader(handle):
            names.append(row["file"])
            paths.append(root / "dev" / row["file"])
            redshifts.append(float(row["z"]))
            populations.append("little red dot")
    spectra = [read_spectrum(path) for path in paths]
    return RealSpectra(names, spectra, np.asarray(redshifts), np.asarray(populations))
