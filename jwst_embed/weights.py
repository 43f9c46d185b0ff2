"""Pretrained weights: a pooch registry of files with their sha256, cached per user.

Files are looked up in this order:

1. a local path given by the caller (checked against the registry hash when the file name is
   registered);
2. the copy shipped inside the package (``jwst_embed/data``), for the default model, so that a
   fresh install works offline;
3. the user cache (``pooch.os_cache("jwst_embed")``, or ``$JWST_EMBED_CACHE``), downloading from
   the base URL (``$JWST_EMBED_WEIGHTS_URL`` overrides the default) when missing.

Every file is verified against its registered sha256 before it is used; a corrupted or tampered
file is refused and never loaded.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

__all__ = [
    "WeightsFile",
    "REGISTRY",
    "DEFAULT_BASE_URL",
    "cache_dir",
    "base_url",
    "fetch_weights",
    "sha256_of",
    "WeightsError",
]

#: Where released weights live unless ``$JWST_EMBED_WEIGHTS_URL`` points elsewhere.
DEFAULT_BASE_URL = "https://github.com/jwst-embed/jwst_embed/releases/download/weights-v1/"


class WeightsError(RuntimeError):
    """A weights file is missing, unreachable or fails its hash check."""


@dataclass(frozen=True)
class WeightsFile:
    """One registered weights file.

    Parameters
    ----------
    name : str
        Short model name users pass (e.g. ``"default"``).
    filename : str
        File name in the cache, on the server and in the package data folder.
    sha256 : str
        Expected sha256 of the file (hex).
    shipped : bool
        Whether a copy ships inside the package.
    """

    name: str
    filename: str
    sha256: str
    shipped: bool = False


#: Registered weights, by model name. "default" (also "v9"): v8's weights to the bit, and the
#: whitening of its fused embeddings over 28,521 mocks that similarity search applies
#: (``benchmarks/fit_similarity_whitening.py``; `jwst_embed.similarity.SimilarityWhitening`).
#: "v8": the ``small`` model with a spectrum line reader (8.2 M parameters, float16 file): v7
#: with its image encoder, image projection and morphology head trained for a second leg on whole
#: mock cutouts of simulator 0.3 on two CPU cores (``configs/finetune_images_cpu_leg2.toml``, 320
#: steps of 64, redshift and mass labels weighted up); every other weight is v7's (and v6's), so a
#: spectrum alone gets v6's embedding and p(z) to the bit. "v7": v6 with its image path trained
#: for one such leg (``configs/finetune_images_cpu.toml``, 306 steps); no longer shipped (in git
#: history at commit 757ab8a). "v6": v5 with its
#: stellar-mass and morphology heads refit on clean embeddings of simulator 0.3's mocks
#: (``benchmarks/refit_heads.py``); no longer shipped (fetched into the cache, or pass its file,
#: in git history at commit a169f6a). "v5": v4 with its line reader, fusion, heads and decoder
#: trained for one more leg on one H100 (``benchmarks/gpu_downstream_leg.sh``); no longer shipped
#: (git history at commit 530a818). "v4": v3's
#: encoders with the line reader, fusion, heads and decoder trained downstream of them on the CPU
#: by ``benchmarks/train_default_v4.py``; no longer shipped (git history at commit e6706e8). "v3":
#: the model before the line reader (``small``, 7.3 M parameters), pretrained on one H100 with
#: ``benchmarks/gpu_session.sh``, its heads and decoder refit with ``benchmarks/refit_heads.py``.
#: Model card: docs/model_card.rst.
_V9 = WeightsFile(
    name="default",
    filename="jwst_embed-default-v9.pt",
    sha256="5e3117a0ced4403d4b0e186d6b6d2ffc26e1161497afbbb720ea333cb2e9aa82",
    shipped=True,
)
REGISTRY: dict[str, WeightsFile] = {
    "default": _V9,
    "v9": WeightsFile("v9", _V9.filename, _V9.sha256, shipped=True),
    "v8": WeightsFile(
        name="v8",
        filename="jwst_embed-default-v8.pt",
        sha256="dadf30fdae4430e80afbf321f00dfa424e289af4b6e82b1315c4887bf7f8651e",
        shipped=True,
    ),
    "v7": WeightsFile(
        name="v7",
        filename="jwst_embed-default-v7.pt",
        sha256="cef96ce693483f9f5bcd2c7d27ec6fc625b97e99bd1c474615adddb51d0644fd",
    ),
    "v6": WeightsFile(
        name="v6",
        filename="jwst_embed-default-v6.pt",
        sha256="b5ff421184e6daa767d5ffb2a87a4296c9314b190107832df2b17d21015d839f",
    ),
    "v5": WeightsFile(
        name="v5",
        filename="jwst_embed-default-v5.pt",
        sha256="1677bae5616b7a3a3d328e6ef9365a69194cf31914d50647600c582fddcb9af9",
    ),
    "v4": WeightsFile(
        name="v4",
        filename="jwst_embed-default-v4.pt",
        sha256="55c3a37e31d4b0722f1072656dc137ae248527297333f9caafef8233cf9f9221",
    ),
    "v3": WeightsFile(
        name="v3",
        filename="jwst_embed-default-v3.pt",
        sha256="543fa13a407c29d50d3a078fb9777e6df2acc25497dd60fec80424035d24cdb1",
        shipped=True,
    ),
}


def cache_dir() -> Path:
    """The folder where downloaded weights are cached.

    ``$JWST_EMBED_CACHE`` if set, else ``pooch.os_cache("jwst_embed")`` (e.g.
    ``~/.cache/jwst_embed`` on Linux).
    """
    import pooch

    override = os.environ.get("JWST_EMBED_CACHE")
    return Path(override).expanduser() if override else Path(pooch.os_cache("jwst_embed"))


#: Seconds a whole weights download may take before it is abandoned
#: (``$JWST_EMBED_DOWNLOAD_TIMEOUT`` overrides), so a stalled or trickling mirror cannot hang.
DOWNLOAD_TIMEOUT_S = 900.0
#: Temporary download files older than this (s) in the cache are left over from killed downloads.
_STALE_TEMPORARY_S = 3600.0
_URL_SCHEMES = ("http://", "https://", "ftp://", "file://", "doi:")


def base_url() -> str:
    """The URL weights are downloaded from (``$JWST_EMBED_WEIGHTS_URL`` overrides the default).

    Raises
    ------
    WeightsError
        If ``$JWST_EMBED_WEIGHTS_URL`` has no scheme (``https://``, ``http://``, ``file://``, ...).
    """
    url = os.environ.get("JWST_EMBED_WEIGHTS_URL", DEFAULT_BASE_URL)
    if not url.lower().startswith(_URL_SCHEMES):
        raise WeightsError(
            f"JWST_EMBED_WEIGHTS_URL={url!r} has no scheme: give a full URL such as https://host/path/ "
            "or file:///path/to/folder/"
        )
    return url if url.endswith("/") else url + "/"


def _download_timeout() -> float:
    value = os.environ.get("JWST_EMBED_DOWNLOAD_TIMEOUT")
    try:
        timeout = float(value) if value else DOWNLOAD_TIMEOUT_S
    except ValueError:
        raise WeightsError(f"JWST_EMBED_DOWNLOAD_TIMEOUT={value!r} is not a number of seconds") from None
    if not timeout > 0:
        raise WeightsError(f"JWST_EMBED_DOWNLOAD_TIMEOUT must be positive, got {value!r}")
    return timeout


def _http_download(progress: bool):
    """A pooch downloader for http(s) with connect/read timeouts and a deadline on the whole file."""

    def download(url: str, output_file, pooch_object=None, check_only: bool = False):
        import requests
        from tqdm.auto import tqdm

        timeout = _download_timeout()
        deadline = time.monotonic() + timeout
        with requests.get(url, stream=True, timeout=(15, 60)) as response:
            response.raise_for_status()
            size = int(response.headers.get("content-length", 0) or 0)
            raw = response.raw
            raw.decode_content = True
            # read1 returns what one read of the socket gave: a mirror that trickles bytes (never
            # tripping the read timeout) is caught by the deadline between reads
            read = getattr(raw, "read1", None) or raw.read
            handle = open(output_file, "wb") if isinstance(output_file, str | os.PathLike) else output_file  # noqa: SIM115
            try:
                with tqdm(total=size or None, unit="B", unit_scale=True, disable=not progress,
                          desc=url.rsplit("/", 1)[-1]) as bar:  # fmt: skip
                    while True:
                        if time.monotonic() > deadline:
                            raise TimeoutError(f"the download took longer than {timeout:g} s")
                        chunk = read(1 << 16)
                        if not chunk:
                            break
                        handle.write(chunk)
                        bar.update(len(chunk))
            finally:
                if handle is not output_file:
                    handle.close()

    return download


def _remove_stale_temporaries(folder: Path) -> None:
    """Delete temporary files that killed downloads left in the cache (pooch names them tmp*)."""
    if not folder.is_dir():
        return
    now = time.time()
    for candidate in folder.glob("tmp*"):
        try:
            if candidate.is_file() and now - candidate.stat().st_mtime > _STALE_TEMPORARY_S:
                candidate.unlink()
        except OSError:  # another process's file, or already gone
            continue


def sha256_of(path: str | os.PathLike) -> str:
    """The sha256 (hex) of a file, read in chunks.

    Parameters
    ----------
    path : str or path-like
        File to hash.

    Returns
    -------
    str
        64-character lower-case hexadecimal digest.

    Raises
    ------
    OSError
        If the file cannot be opened or read (e.g. `FileNotFoundError`).
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(path: Path, expected: str) -> Path:
    actual = sha256_of(path)
    if actual != expected:
        raise WeightsError(
            f"weights file {path} fails its hash check (sha256 {actual}, expected {expected}); it may be "
            "corrupted or tampered with and was not loaded. Delete it and fetch it again."
        )
    return path


def _shipped_path(entry: WeightsFile) -> Path | None:
    if not entry.shipped:
        return None
    candidate = resources.files("jwst_embed").joinpath("data", entry.filename)
    path = Path(str(candidate))
    return path if path.is_file() else None


def fetch_weights(name_or_path: str | os.PathLike = "default", progress: bool = False) -> Path:
    """Return a local, verified path to a weights file.

    Parameters
    ----------
    name_or_path : str or path-like
        A registered model name (see ``REGISTRY``; always resolved through the registry, even if a
        file of that name exists in the working directory) or a path to a local file (a
        `~pathlib.Path`, or a string with a folder separator or a file suffix, e.g.
        ``"my_model.pt"`` or ``"./default"``).
    progress : bool
        Show a download progress bar.

    Returns
    -------
    path : `~pathlib.Path`

    Raises
    ------
    WeightsError
        If the file fails its hash check, or cannot be downloaded and is not cached (the message
        says where to put the file or which URL to set).
    ValueError
        If the name is not registered and does not look like a path, or the path is not a file.
    """
    import pooch

    name = os.fspath(name_or_path)
    if isinstance(name_or_path, str) and name in REGISTRY:
        # a registered name is always the registry's file, never a file of that name in the
        # working directory (which would be loaded without the registry's hash check)
        entry = REGISTRY[name]
    else:
        candidate = Path(name).expanduser()
        looks_like_path = not isinstance(name_or_path, str) or os.sep in name or "/" in name or bool(candidate.suffix)
        if not looks_like_path:
            hint = (f"; to load the file {name!r} in the working directory, pass './{name}' or a Path"
                    if candidate.is_file() else "")  # fmt: skip
            raise ValueError(
                f"unknown weights {name!r}: not a registered model (registered: {', '.join(sorted(REGISTRY)) or 'none'})"
                f"{hint}"
            )
        if not candidate.is_file():
            raise ValueError(f"weights file {str(candidate)!r} does not exist (or is not a file)")
        registered = {entry.filename: entry for entry in REGISTRY.values()}
        if candidate.name in registered:
            _verify(candidate, registered[candidate.name].sha256)
        return candidate
    shipped = _shipped_path(entry)
    if shipped is not None:
        return _verify(shipped, entry.sha256)

    folder = cache_dir()
    cached = folder / entry.filename
    if cached.is_file():
        return _verify(cached, entry.sha256)
    url = base_url() + entry.filename
    _remove_stale_temporaries(folder)
    downloader = _http_download(progress) if url.lower().startswith(("http://", "https://")) else None
    try:
        path = pooch.retrieve(
            url,
            known_hash=f"sha256:{entry.sha256}",
            fname=entry.filename,
            path=folder,
            progressbar=progress if downloader is None else False,
            downloader=downloader,
        )
    except ValueError as error:  # pooch's hash mismatch
        raise WeightsError(
            f"downloaded {url} fails its hash check and was discarded: {error}"
        ) from None
    except Exception as error:  # network errors come in many types (requests, OSError, ...)
        raise WeightsError(
            f"could not download weights {name!r} from {url} ({type(error).__name__}: {error}). "
            f"Put {entry.filename} into {folder}, set JWST_EMBED_WEIGHTS_URL to a mirror, or pass "
            "a local path."
        ) from None
    return Path(path)
