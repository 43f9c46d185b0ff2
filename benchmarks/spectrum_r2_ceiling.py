"""What limits the mean spectrum R^2: how flat the true spectra are, and how well their amplitude is known.

The seed table's spectrum R^2 (per object ``1 - sum((f_rec - f_true)^2) / sum((f_true - mean
f_true)^2)`` against the noiseless mock spectrum, averaged over objects; DESIGN.md section 8) has
a median of ~0.78 from F150W + PRISM but a mean far below zero. The denominator is the
spectrum's variance about its own mean: a young galaxy's f_nu is nearly flat (UV slope beta ~
-2), so there an error of a few per cent in the overall flux level alone costs an R^2 of -10 or
worse. This script measures, on the seed table's mocks (seed 990001, the same simulation), for
each object

- ``contrast``: ``sum(f_true^2) / sum((f_true - mean f_true)^2)``; an amplitude error ``e``
  (as a fraction) costs ``e^2 * contrast`` of R^2;
- ``amplitude_oracle``: R^2 of the *true* spectrum scaled by its amplitude measured from the
  observed PRISM spectrum (inverse-variance weighted least squares, the matched filter): what a
  reconstruction that knew every object's shape exactly, and took the flux level from the data,
  would score;
- ``model``: R^2 of the default model's decoded spectrum from F150W + PRISM (the seed table's);
- ``model_rescaled``: the decoded spectrum with its amplitude fitted to the observed spectrum in
  the same way (shape from the model, flux level from the data);

and reports mean and median R^2 overall and in bins of ``contrast`` and of spectral S/N. On the 68
real spectra (../shared/real and real/dev; no truth there) it reports the factors ``match_flux``
applies and the reduced chi2 of the decoded spectra against the observed ones, before and after;
and, on 4,000 mocks of a training-side seed (424243), the spread of the decoder's flux level that
sets ``jwst_embed.reconstruction.DECODER_AMPLITUDE_SIGMA``.

Prints a table, then one JSON object last::

    python benchmarks/spectrum_r2_ceiling.py --n-objects 10000 --json --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seed_table import ALL_BANDS, SNR_BINS  # noqa: E402

from jwst_embed.metrics import spectrum_r2, summarise_r2  # noqa: E402

SEED = 990001
#: Training-side seed of the mocks that set `~jwst_embed.reconstruction.DECODER_AMPLITUDE_SIGMA`.
CALIBRATION_SEED = 424243
CONTRAST_BINS = (1.0, 3.0, 10.0, 100.0, 1e3, np.inf)


def fitted_amplitude(shape: np.ndarray, observed: np.ndarray, ivar: np.ndarray) -> np.ndarray:
    """Inverse-variance weighted least-squares amplitude of ``shape`` in ``observed`` ((N,) per row; 1 where undefined).

    `jwst_embed.reconstruction.match_amplitude` without its prior and its clip at 0: the data alone.
    """
    norm = (shape * shape * ivar).sum(axis=1)
    amplitude = np.where(
        norm > 0, (shape * observed * ivar).sum(axis=1) / np.where(norm > 0, norm, 1.0), 1.0
    )
    return amplitude


def _summary(r2: np.ndarray) -> dict:
    finite = np.isfinite(r2)
    if not finite.any():
        return {"n": 0}
    s = summarise_r2(r2[finite])
    return {"n": int(s["n"]), "mean": round(float(s["mean"]), 4), "median": round(float(s["median"]), 4),
            "frac_below_0": round(float((r2[finite] < 0).mean()), 4)}  # fmt: skip


@torch.no_grad()
def decoded_spectra(model_name: str, batch, chunk: int = 256) -> np.ndarray:
    """The default model's decoded spectra (nJy) from F150W + PRISM."""
    from jwst_embed.preprocessing.stretch import SPECTRUM_SOFTENING_NJY
    from jwst_embed.training.checkpoint import load_model
    from jwst_embed.weights import fetch_weights

    model = load_model(fetch_weights(model_name)).float().eval()
    selected = batch.select(["F150W", "PRISM"])
    out = []
    for start in range(0, len(selected), chunk):
        rows = torch.arange(start, min(start + chunk, len(selected)))
        output = model(selected.index(rows), mask_inputs=False, modality_dropout=False, decode=True)
        out.append((SPECTRUM_SOFTENING_NJY * torch.sinh(output.decoded_spectrum.double())).numpy())
    return np.concatenate(out)


def decoder_amplitude_sigma(model_name: str, n_objects: int = 4000, seed: int = CALIBRATION_SEED) -> float:
    """Spread of the decoder's flux level: the prior width of `~jwst_embed.reconstruction.match_amplitude`.

    The standard deviation (clipped to [0, 3]) of the amplitude that best fits the decoded spectrum
    (F150W + PRISM) to the noiseless one, on mocks of a training-side seed (not the seed table's).
    """
    from seed_table import simulate

    batch, _ = simulate(ALL_BANDS, n_objects, seed, chunk=500, progress=False)
    truth = batch.targets["spectrum_noiseless"].double().numpy()
    amplitude = fitted_amplitude(decoded_spectra(model_name, batch), truth, np.ones_like(truth))
    return round(float(np.clip(amplitude, 0.0, 3.0).std()), 4)


def real_flux_levels(model_name: str) -> dict:
    """``match_flux`` on the real spectra (../shared/real and real/dev): the factors, and chi2/dof against the data."""
    from real_data import load_real_spectra

    from jwst_embed import MultimodalEmbedder, reconstruct_spectrum
    from jwst_embed.preprocessing import make_batch

    real = load_real_spectra(None)
    embedder = MultimodalEmbedder.from_pretrained(model_name, device="cpu")
    raw = reconstruct_spectrum(spectra=real.spectra, embedder=embedder, match_flux=False)
    matched = reconstruct_spectrum(spectra=real.spectra, embedder=embedder)
    prism = make_batch(
        spectra={"PRISM": list(real.spectra)}, spectral_grid=embedder.spectral_grid
    ).spectra["PRISM"]
    observed = prism.values.double().numpy()
    weight = np.where(prism.mask.numpy(), 0.0, prism.ivar.double().numpy())
    dof = np.maximum((weight > 0).sum(axis=1) - 1, 1)
    result = {
        "n": len(real),
        "flux_scale_percentiles_5_16_50_84_95": np.round(
            np.percentile(matched.meta["flux_scale"], [5, 16, 50, 84, 95]), 3
        ).tolist(),
    }
    for name, spectrum in (("decoder", raw), ("flux_matched", matched)):
        chi2 = ((observed - spectrum.flux.value) ** 2 * weight).sum(axis=1) / dof
        result[f"chi2_dof_{name}_median"] = round(float(np.median(chi2)), 2)
    return result


def main() -> None:
    from seed_table import simulate

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="default", help="registered name or model file")
    parser.add_argument("--n-objects", type=int, default=10000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--out", type=Path, default=None, help="write spectrum_r2_ceiling.json here"
    )
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    batch, snr = simulate(ALL_BANDS, args.n_objects, SEED, chunk=500, progress=not args.json)
    truth = batch.targets["spectrum_noiseless"].double().numpy()
    prism = batch.spectra["PRISM"]
    observed = prism.values.double().numpy()
    ivar = np.where(prism.mask.numpy(), 0.0, prism.ivar.double().numpy())
    decoded = decoded_spectra(args.model, batch)

    contrast = (truth**2).sum(axis=1) / ((truth - truth.mean(axis=1, keepdims=True)) ** 2).sum(
        axis=1
    )
    r2 = {
        "amplitude_oracle": spectrum_r2(
            truth * fitted_amplitude(truth, observed, ivar)[:, None], truth
        ),
        "model": spectrum_r2(decoded, truth),
        "model_rescaled": spectrum_r2(
            decoded * fitted_amplitude(decoded, observed, ivar)[:, None], truth
        ),
    }
    result = {"model": args.model, "seed": SEED, "n_objects": args.n_objects, "input_set": "F150W+PRISM",
              "contrast_median": round(float(np.median(contrast)), 2),
              "all": {name: _summary(values) for name, values in r2.items()}, "by_contrast": [], "by_snr": []}  # fmt: skip
    for key, values, edges in (("by_contrast", contrast, CONTRAST_BINS), ("by_snr", snr, SNR_BINS)):
        for low, high in zip(edges[:-1], edges[1:], strict=True):
            keep = (values >= low) & (values < high)
            if keep.any():
                result[key].append({"min": low, "max": None if not np.isfinite(high) else high, "n": int(keep.sum()),
                                    **{name: _summary(r[keep]) for name, r in r2.items()}})  # fmt: skip
    result["real"] = real_flux_levels(args.model)
    result["decoder_amplitude_sigma"] = {"seed": CALIBRATION_SEED, "n_objects": 4000,
                                         "sigma": decoder_amplitude_sigma(args.model)}  # fmt: skip
    result["seconds"] = round(time.perf_counter() - started, 1)
    if not args.json:
        names = list(r2)
        print(
            f"{'bin':>22s} {'n':>6s} " + " ".join(f"{name + ' mean/median':>32s}" for name in names)
        )
        rows = [("all", result["all"] | {"n": args.n_objects})]
        rows += [
            (f"contrast {b['min']:g}-{b['max'] if b['max'] else 'inf'}", b)
            for b in result["by_contrast"]
        ]
        rows += [
            (f"S/N {b['min']:g}-{b['max'] if b['max'] else 'inf'}", b) for b in result["by_snr"]
        ]
        for label, b in rows:
            cells = " ".join(
                f"{b[name].get('mean', np.nan):>16.4g}/{b[name].get('median', np.nan):<15.4g}"
                for name in names
            )
            print(f"{label:>22s} {b['n']:6d} {cells}")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "spectrum_r2_ceiling.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
