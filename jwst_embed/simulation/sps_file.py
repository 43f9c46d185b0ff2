"""The stellar-population library file: its version, location and checksum, and the template
matrices built from its arrays (shared by the builder, `jwst_embed.simulation.sps_build`, and
the loader, `jwst_embed.simulation.sps`)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

__all__ = [
    "LIBRARY_VERSION",
    "LYMAN_LIMIT_UM",
    "default_library_path",
    "library_checksum",
    "resolve_library_path",
    "template_matrices",
]

#: Bumped whenever the content or layout of the extracted library changes.
LIBRARY_VERSION = "jwst_embed-sps-2"

LYMAN_LIMIT_UM = 0.0912  # ionising photons removed from birth-cloud stars


def default_library_path() -> Path:
    """Where the library lives: ``$JWST_EMBED_CACHE/sps`` or the pooch user cache."""
    root = os.environ.get("JWST_EMBED_CACHE")
    if root:
        base = Path(root)
    else:
        import pooch

        base = Path(pooch.os_cache("jwst_embed"))
    return base / "sps" / f"{LIBRARY_VERSION}.npz"


def resolve_library_path(path: str | os.PathLike | None) -> Path:
    """The library file for ``path``: a ``.npz`` file, a folder to hold one, or the default."""
    if path is None:
        return default_library_path()
    path = Path(path)
    if path.suffix != ".npz":
        path = path / f"{LIBRARY_VERSION}.npz"
    return path


def template_matrices(stellar: np.ndarray, nebular: np.ndarray, wavelength_um: np.ndarray):
    """The (n, L) template matrices the SED model sums: birth-cloud and older stars.

    Birth-cloud rows (Z, logU, young age) hold the stars with their ionising
    photons removed (escape fraction 0) plus the nebular emission they power;
    the logU weights of an object sum to one, so the stars can ride along in
    every logU row. Older rows (Z, age) are the plain SSPs.
    """
    n_young = nebular.shape[2]
    lyc = (wavelength_um < LYMAN_LIMIT_UM).astype(stellar.dtype)
    young = nebular + (stellar[:, :n_young] * (1.0 - lyc))[:, None]
    return young.reshape(-1, wavelength_um.size), stellar.reshape(-1, wavelength_um.size)


def library_checksum(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over every array of the library (name, dtype, shape, bytes) but ``checksum``."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        if key in ("checksum",):
            continue
        value = np.ascontiguousarray(arrays[key])
        digest.update(key.encode())
        digest.update(str(value.dtype).encode() + str(value.shape).encode())
        digest.update(value.tobytes())
    return digest.hexdigest()
