"""`MultimodalEmbedder`: embed astropy images and spectra with a trained model.

The embedder is the user-facing end of the pipeline: it takes NIRCam cutouts
(`~astropy.nddata.NDData`) and NIRSpec spectra (`~specutils.Spectrum`) of N
objects, preprocesses them in chunks onto the model's grids
(`~jwst_embed.preprocessing.make_batch`), runs the model without gradients in
eval mode and returns an `EmbeddingResult` of numpy arrays: the fused embedding
of each object, one embedding per modality and which modalities each object had.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from . import prediction_tables, tuning
from .devices import resolve_device
from .inference import chunked_outputs
from .models import MultimodalModel
from .models.serialization import load_model_and_extras
from .preprocessing import ImageGrid, SpectralGrid
from .similarity import SimilarityWhitening
from .weights import fetch_weights

__all__ = ["MultimodalEmbedder", "EmbeddingResult"]

log = logging.getLogger(__name__)


@dataclass
class EmbeddingResult:
    """Embeddings of N objects, as numpy arrays.

    Parameters
    ----------
    fused : `~numpy.ndarray`
        ``(N, D)`` float32 fused embedding of each object's present modalities,
        L2-normalised (compare with dot products / cosine similarity).
    modalities : dict of str to `~numpy.ndarray`
        ``(N, D)`` float32 embedding of each modality; rows where the object lacks
        the modality are zero (see ``present``), never NaN.
    present : `~numpy.ndarray`
        ``(N, M)`` bool, True where the object has the modality; columns in the order
        of ``modality_names``.
    modality_names : tuple of str
        Modality of each column of ``present`` (bands by wavelength, then spectral modes).
    input_flag : `~numpy.ndarray`, optional
        ``(N,)`` str: what `jwst_embed.input_checks` found wrong with each object's inputs
        (``""`` when all is fine); an embedding of a flagged object says little about it.
    whitening : `~jwst_embed.similarity.SimilarityWhitening`, optional
        The model's whitening of its fused embeddings, which `~jwst_embed.nearest_neighbors`
        and `~jwst_embed.EmbeddingIndex` apply before cosine similarity (None: plain cosine).

    Raises
    ------
    ValueError
        If the shapes disagree.

    Examples
    --------
    >>> import numpy as np
    >>> from jwst_embed import EmbeddingResult
    >>> result = EmbeddingResult(fused=np.eye(2, 4), modalities={"F150W": np.eye(2, 4)},
    ...                          present=[[True], [False]], modality_names=("F150W",))
    >>> len(result), result.present[:, 0].tolist()
    (2, [True, False])
    """

    fused: np.ndarray
    modalities: dict[str, np.ndarray]
    present: np.ndarray
    modality_names: tuple[str, ...]
    input_flag: np.ndarray | None = None
    whitening: SimilarityWhitening | None = None

    def __post_init__(self) -> None:
        self.fused = np.asarray(self.fused, dtype=np.float32)
        self.present = np.asarray(self.present, dtype=bool)
        self.modality_names = tuple(self.modality_names)
        self.modalities = {
            name: np.asarray(value, dtype=np.float32) for name, value in self.modalities.items()
        }
        n_objects = self.fused.shape[0]
        if self.fused.ndim != 2:
            raise ValueError(f"fused must be (N, D), got shape {self.fused.shape}")
        if self.present.shape != (n_objects, len(self.modality_names)):
            raise ValueError(
                f"present has shape {self.present.shape}, expected ({n_objects}, {len(self.modality_names)}) "
                f"for modalities {self.modality_names}"
            )
        if set(self.modalities) != set(self.modality_names):
            raise ValueError(
                f"modalities has keys {sorted(self.modalities)}, modality_names are {self.modality_names}"
            )
        for name, value in self.modalities.items():
            if value.shape != self.fused.shape:
                raise ValueError(
                    f"modalities[{name!r}] has shape {value.shape}, fused has {self.fused.shape}"
                )
        if self.input_flag is not None:
            self.input_flag = np.asarray(self.input_flag, dtype=str)
            if self.input_flag.shape != (n_objects,):
                raise ValueError(f"input_flag has shape {self.input_flag.shape}, expected ({n_objects},)")
        if self.whitening is not None and self.whitening.dim != self.fused.shape[1]:
            raise ValueError(f"whitening is for width {self.whitening.dim}, fused has width {self.fused.shape[1]}")

    def __len__(self) -> int:
        return int(self.fused.shape[0])

    def to_table(self):
        """The embeddings as an astropy `~astropy.table.Table`, one row per object.

        Returns
        -------
        `~astropy.table.Table`
            Column ``fused`` ``(N, D)``; per modality ``<name>`` a bool column
            ``present_<name>`` and an ``(N, D)`` column ``embedding_<name>`` (zeros
            where absent); ``input_flag`` when the result has it.

        Examples
        --------
        >>> import numpy as np
        >>> from jwst_embed.embedder import EmbeddingResult
        >>> result = EmbeddingResult(np.ones((2, 4)), {"PRISM": np.ones((2, 4))}, np.ones((2, 1), bool), ("PRISM",))
        >>> result.to_table().colnames
        ['fused', 'present_PRISM', 'embedding_PRISM']
        """
        from astropy.table import Table

        table = Table()
        table["fused"] = self.fused
        for column, name in enumerate(self.modality_names):
            table[f"present_{name}"] = self.present[:, column]
            table[f"embedding_{name}"] = self.modalities[name]
        if self.input_flag is not None:
            table["input_flag"] = self.input_flag
        return table


class MultimodalEmbedder:
    """Embed NIRCam images and NIRSpec spectra of galaxies with a trained model.

    Parameters
    ----------
    model : `~jwst_embed.models.MultimodalModel`
        A trained model; it is put in eval mode and moved to ``device`` (float32).
    device : str or `torch.device`
        ``"auto"`` (default: CUDA if available, else Apple MPS, else CPU; the
        choice is logged at INFO level by the ``jwst_embed.embedder`` logger) or an
        explicit device, which is honoured.

    Raises
    ------
    TypeError
        If ``model`` is not a `~jwst_embed.models.MultimodalModel`.
    ValueError
        If ``device`` is not usable here.

    Examples
    --------
    >>> from jwst_embed.embedder import MultimodalEmbedder
    >>> from jwst_embed.models import ModelConfig, MultimodalModel
    >>> embedder = MultimodalEmbedder(MultimodalModel(ModelConfig.preset("tiny")), device="cpu")
    >>> embedder.device, embedder.latent_dim
    (device(type='cpu'), 64)
    >>> import numpy as np
    >>> import astropy.units as u
    >>> from specutils import Spectrum
    >>> wavelength = np.linspace(0.6, 5.3, 400) * u.um
    >>> flux = (0.2 + np.random.default_rng(0).normal(0.0, 0.01, 400)) * u.uJy
    >>> result = embedder.embed(spectra=Spectrum(flux=flux, spectral_axis=wavelength))
    >>> result.fused.shape  # untrained weights: a (1, 64) unit vector, not yet a useful one
    (1, 64)
    """

    def __init__(self, model: MultimodalModel, device: str | torch.device = "auto") -> None:
        if not isinstance(model, MultimodalModel):
            raise TypeError(
                f"model must be a jwst_embed.models.MultimodalModel, got {type(model).__name__}"
            )
        self.device = resolve_device(device)
        if isinstance(device, str) and device.lower() == "auto":
            log.info("MultimodalEmbedder runs on %s (device='auto')", self.device)
        # float16 shipped weights are for size only: inference runs in float32 (bf16 autocast on CUDA).
        self.model = model.float().to(self.device).eval()
        config = model.config
        self.image_grid = ImageGrid(n_pixels=config.image_size)
        self.spectral_grid = SpectralGrid(n_pixels=config.spectrum_length)
        #: The model file's `~jwst_embed.similarity.SimilarityWhitening` (None if it has none):
        #: handed to every `embed` result for similarity search.
        self.similarity_whitening: SimilarityWhitening | None = None

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | os.PathLike = "default", device: str | torch.device = "auto"
    ) -> MultimodalEmbedder:
        """Load a registered or local model file.

        Parameters
        ----------
        name_or_path : str or path-like
            A registered model name (see ``jwst_embed.weights.REGISTRY``) or a path to a
            model file written by ``jwst_embed.training.checkpoint.save_model`` (or a
            training checkpoint). The file is resolved and hash-checked by
            `~jwst_embed.weights.fetch_weights` and loaded with ``weights_only=True``.
        device : str or `torch.device`
            As for `MultimodalEmbedder`.

        Returns
        -------
        `MultimodalEmbedder`

        Raises
        ------
        ValueError
            If the name is neither registered nor a file, or the file is not a
            jwst_embed model.
        jwst_embed.weights.WeightsError
            If the file fails its hash check or cannot be downloaded.

        Examples
        --------
        >>> from jwst_embed.embedder import MultimodalEmbedder
        >>> embedder = MultimodalEmbedder.from_pretrained("default", device="cpu")  # shipped: no download
        >>> embedder.latent_dim, sorted(embedder.model.heads)
        (256, ['log_mass', 'morphology', 'redshift'])
        """
        path = fetch_weights(name_or_path)
        model, extras = load_model_and_extras(path, map_location="cpu")
        embedder = cls(model, device=device)
        if "similarity_whitening" in extras:
            embedder.similarity_whitening = SimilarityWhitening.from_payload(extras["similarity_whitening"])
        return embedder

    @property
    def latent_dim(self) -> int:
        """Width ``D`` of the embeddings."""
        return int(self.model.config.latent_dim)

    def __repr__(self) -> str:
        return f"MultimodalEmbedder(device={self.device}, latent_dim={self.latent_dim})"

    def embed(
        self,
        images: Mapping[str, Any] | None = None,
        spectra: Any = None,
        batch_size: int = 64,
        progress: bool = False,
    ) -> EmbeddingResult:
        """Embed N objects from any subset of their NIRCam images and NIRSpec spectra.

        Parameters
        ----------
        images : dict of str to NDData or list of (NDData or None), optional
            Cutouts keyed by NIRCam band (any case), flux per pixel with a unit and a
            WCS (or ``meta["pixel_scale"]``). A single NDData means one object; in a
            list, ``None`` means that object lacks the band.
        spectra : Spectrum or list of (Spectrum or None), optional
            One spectrum per object (``None``: no spectrum); a single Spectrum means
            one object. A dict ``{mode: list}`` is also accepted.
        batch_size : int
            Objects preprocessed and embedded at a time; lower it if memory runs out.
        progress : bool
            Show a progress bar over the objects.

        Returns
        -------
        `EmbeddingResult`
            ``fused`` ``(N, D)``, per-modality embeddings (zero where absent) and ``present``.
            Deterministic: the same inputs give the same embedding, whatever ``batch_size``.

        Raises
        ------
        ValueError
            No input; lists of different lengths (the message names the modalities and
            their lengths); an object with no modality (named by index); a bad
            ``batch_size``; any preprocessing error (naming the modality and the object).
        RuntimeError
            If the GPU runs out of memory (the message suggests a smaller ``batch_size``).

        Examples
        --------
        >>> from jwst_embed.embedder import MultimodalEmbedder
        >>> import numpy as np
        >>> import astropy.units as u
        >>> from astropy.nddata import NDData, StdDevUncertainty
        >>> from specutils import Spectrum
        >>> rng = np.random.default_rng(0)
        >>> pixels = rng.normal(0.0, 0.5, (64, 64))  # sky noise, nJy per 0.04" pixel
        >>> pixels[28:36, 28:36] += 5.0  # a compact galaxy
        >>> cutout = NDData(pixels, unit=u.nJy, uncertainty=StdDevUncertainty(np.full((64, 64), 0.5)),
        ...                 meta={"pixel_scale": 0.04})
        >>> wavelength = np.linspace(0.6, 5.3, 400) * u.um
        >>> spectrum = Spectrum(flux=(0.2 + rng.normal(0.0, 0.01, 400)) * u.uJy, spectral_axis=wavelength,
        ...                     uncertainty=StdDevUncertainty(np.full(400, 0.01)))
        >>> embedder = MultimodalEmbedder.from_pretrained(device="cpu")
        >>> result = embedder.embed(images={"F150W": cutout}, spectra=spectrum)
        >>> result.fused.shape, result.modality_names
        ((1, 256), ('F150W', 'PRISM'))
        """
        modality_names, n_objects, chunks = chunked_outputs(
            self, images, spectra, batch_size, progress, desc="embedding", decode=False
        )
        fused_parts: list[np.ndarray] = []
        modality_parts: dict[str, list[np.ndarray]] = {name: [] for name in modality_names}
        present_parts: list[np.ndarray] = []
        flags: list[str] = []
        for _, _, output, _, check in chunks:
            flags.extend(check.reasons)
            fused_parts.append(output.fused.float().cpu().numpy())
            for name in modality_names:
                modality_parts[name].append(output.modality_embeddings[name].float().cpu().numpy())
            present_parts.append(output.present.cpu().numpy())
        result = EmbeddingResult(
            fused=np.concatenate(fused_parts),
            modalities={name: np.concatenate(parts) for name, parts in modality_parts.items()},
            present=np.concatenate(present_parts),
            modality_names=modality_names,
            input_flag=np.array(flags, dtype=str),
            whitening=self.similarity_whitening,
        )
        if not np.isfinite(result.fused).all():
            # Never hand back a NaN embedding silently (e.g. a half-precision overflow).
            bad = np.flatnonzero(~np.isfinite(result.fused).all(axis=1)).tolist()
            raise RuntimeError(f"the model produced non-finite embeddings for objects {bad[:10]}")
        for name, values in result.modalities.items():
            # Absent rows are zero by contract; clean any non-finite value the model put there.
            column = result.present[:, modality_names.index(name)]
            values[~column] = 0.0
        return result

    # -- predictions (the public functions of jwst_embed.predictions call these) ----------------------
    def predict_redshift(
        self, images=None, spectra=None, batch_size: int = 64, progress: bool = False, method: str = "auto", **kwargs
    ):
        """Table of z, z_lo, z_hi, p(z), method and flags; see `jwst_embed.predict_redshift`.

        ``method`` is ``"auto"``, ``"network"``, ``"template"`` or ``"joint"``; ``kwargs`` go to
        `jwst_embed.predict_redshift` (``floor``, ``fitter``).
        """
        return prediction_tables.redshift_table(
            self, images, spectra, batch_size=batch_size, progress=progress, method=method, **kwargs
        )

    def predict_stellar_mass(self, images=None, spectra=None, batch_size: int = 64, progress: bool = False):
        """Table of log_mass, log_mass_err; see `jwst_embed.predict_stellar_mass`."""
        return prediction_tables.stellar_mass_table(self, images, spectra, batch_size=batch_size, progress=progress)

    def classify_morphology(self, images=None, spectra=None, batch_size: int = 64, progress: bool = False):
        """Table of morphology and p_<class>; see `jwst_embed.classify_morphology`."""
        return prediction_tables.morphology_table(self, images, spectra, batch_size=batch_size, progress=progress)

    def reconstruct_spectrum(
        self, images=None, spectra=None, batch_size: int = 64, progress: bool = False, match_flux: bool = True
    ):
        """PRISM spectra (nJy) decoded from the embedding; see `jwst_embed.reconstruct_spectrum`."""
        return prediction_tables.reconstructed_spectra(
            self, images, spectra, batch_size=batch_size, progress=progress, match_flux=match_flux
        )

    def predict(
        self, images=None, spectra=None, batch_size: int = 64, progress: bool = False, method: str = "auto", **kwargs
    ):
        """Table of z, z_lo, z_hi, log_mass, log_mass_err, morphology; see `jwst_embed.predict`."""
        return prediction_tables.prediction_table(
            self, images, spectra, batch_size=batch_size, progress=progress, method=method, **kwargs
        )

    def fine_tune(self, images=None, spectra=None, labels=None, **kwargs) -> MultimodalEmbedder:
        """A fine-tuned copy of this embedder; see `~jwst_embed.fine_tune` for the options.

        Parameters
        ----------
        images, spectra :
            Inputs as for `embed`.
        labels : array-like or `~astropy.units.Quantity`
            One label per object (NaN or None = unknown).
        **kwargs
            ``task``, ``freeze_backbone``, ``epochs``, ``lr``, ... of
            `~jwst_embed.fine_tune`.

        Returns
        -------
        `MultimodalEmbedder`
            A new embedder; this one is unchanged.
        """
        return tuning.fine_tune(self, images, spectra, labels, **kwargs)

    def save(self, path, metadata=None):
        """Write the model (with its heads) so that `from_pretrained` loads it back.

        Parameters
        ----------
        path : path-like
            Output file.
        metadata : mapping, optional
            Plain values stored with the model.

        Returns
        -------
        path : `~pathlib.Path`
        """
        return tuning.save_embedder(self, path, metadata)
