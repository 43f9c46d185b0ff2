"""The one inference path: astropy inputs in chunks, through the model, with errors located.

`chunked_outputs` validates the inputs, makes a `~jwst_embed.preprocessing.Batch` per chunk,
drops inputs that failed `jwst_embed.input_checks`, and runs `forward`; embeddings, head
predictions and reconstructed spectra all come from it.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
import torch

from .devices import autocast, inference_dtype
from .input_checks import check_inputs, without_failed_inputs
from .preprocessing import make_batch, modality_order
from .preprocessing.inputs import input_columns, relocate_input_error

__all__ = ["chunked_outputs", "forward"]

def _located(err: Exception, start: int) -> Exception | None:
    """A `make_batch` error with the object counted over all inputs, not within the chunk.

    None when ``err`` stands as it is (it names no object and the chunk is the first).
    """
    relocated = relocate_input_error(err, lambda index: start + index)
    if relocated is not err:
        return relocated
    if not start:
        return None
    try:  # about the chunk as a whole: say where the chunk starts
        return type(err)(f"objects from index {start} on: {err}")
    except TypeError:  # an exception class with a different constructor
        return ValueError(f"objects from index {start} on: {err}")


def chunked_outputs(embedder, images, spectra, batch_size, progress, desc, decode=True):
    """Validate inputs; return modality names, N and an iterator of ``(start, stop, ModelOutput, Batch, InputCheck)``.

    The one inference path of the package: one model pass per chunk serves embeddings, head
    predictions and spectrum reconstruction.

    Parameters
    ----------
    embedder : `~jwst_embed.MultimodalEmbedder`
        Gives the model, its device and the image and spectral grids.
    images, spectra
        As for `~jwst_embed.MultimodalEmbedder.embed`.
    batch_size : int
        Objects per model pass.
    progress : bool
        Show a progress bar.
    desc : str
        Its label.
    decode : bool, optional
        Also decode the spectrum (reconstruction); skipping it saves time.

    Returns
    -------
    modality_names : tuple of str
    n_objects : int
    chunks : iterator

    Raises
    ------
    ValueError
        If ``batch_size`` is not a positive integer, or an input is bad (the error names the
        input and the object's index over all inputs, not within its chunk).
    """
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int | np.integer)
        or batch_size < 1
    ):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    image_columns, spectrum_columns = input_columns(images, spectra)
    modality_names = modality_order([*image_columns, *spectrum_columns])
    n_objects = len(next(iter({**image_columns, **spectrum_columns}.values())))
    return modality_names, n_objects, _iter_outputs(
        embedder, image_columns, spectrum_columns, modality_names, n_objects, int(batch_size), progress, desc, decode
    )

def _iter_outputs(
    embedder, image_columns, spectrum_columns, modality_names, n_objects, batch_size, progress, desc, decode=True
):
    from tqdm.auto import tqdm

    embedder.model.eval()
    with tqdm(total=n_objects, desc=desc, unit="object", disable=not progress) as bar:
        for start in range(0, n_objects, batch_size):
            stop = min(start + batch_size, n_objects)
            # Every chunk gets every modality column (all-absent ones too), so columns line up.
            try:
                batch = make_batch(
                    images={
                        band: entries[start:stop] for band, entries in image_columns.items()
                    }
                    or None,
                    spectra={
                        mode: entries[start:stop] for mode, entries in spectrum_columns.items()
                    }
                    or None,
                    image_grid=embedder.image_grid,
                    spectral_grid=embedder.spectral_grid,
                )
            except (ValueError, TypeError, u.UnitsError) as err:
                located = _located(err, start)
                if located is None:
                    raise
                raise located from err
            # inputs that carry nothing usable (a sign flip, a wrong unit) do not reach the
            # model beside good ones; the verdicts go with the chunk
            check = check_inputs(batch)
            batch = without_failed_inputs(batch, check)
            output = forward(embedder.model, batch, embedder.device, decode)
            if tuple(output.modalities) != modality_names:
                raise RuntimeError(
                    f"model returned modalities {output.modalities}, expected {modality_names}"
                )
            yield start, stop, output, batch, check
            bar.update(stop - start)

def forward(model, batch, device: torch.device, decode: bool = True):
    """One inference pass of ``model`` over ``batch`` on ``device`` (no masking, no dropout).

    Under `jwst_embed.devices.autocast` with `~jwst_embed.devices.inference_dtype`: bfloat16 on
    CUDA, float32 elsewhere.

    Parameters
    ----------
    model : `~jwst_embed.models.MultimodalModel`
        The model, in eval mode.
    batch : `~jwst_embed.preprocessing.Batch`
        The inputs (moved to ``device`` here).
    device : `torch.device`
        Where the model is.
    decode : bool, optional
        Also decode the spectrum.

    Returns
    -------
    output : `~jwst_embed.models.ModelOutput`

    Raises
    ------
    RuntimeError
        If the GPU runs out of memory (the message says which ``batch_size`` to try).
    """
    batch = batch.to(device)
    try:
        with torch.no_grad(), autocast(device, inference_dtype(device)):
            return model(batch, mask_inputs=False, modality_dropout=False, decode=decode)
    except torch.cuda.OutOfMemoryError as err:
        raise RuntimeError(
            f"out of GPU memory while embedding {len(batch)} objects on {device}; "
            f"pass a smaller batch_size (e.g. batch_size={max(1, len(batch) // 4)})"
        ) from err
