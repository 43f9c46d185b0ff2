"""What limits the stellar mass: the head, or what the embedding holds? Oracle features, on mocks.

A stellar-mass head is trained on the frozen fused embeddings of a model (the same mock streams
as ``refit_heads.py``: 30,000 training galaxies of seed 424242 and 6,000 validation galaxies of
seed 525252 under six input sets, simulator of this checkout) with extra inputs that a real
observation would not give exactly, one set of inputs at a time:

``embedding``
    the fused embedding alone (what the shipped head sees);
``embedding + true z``
    plus log(1 + z) of the true redshift;
``embedding + flux scale``
    plus the log mean flux of the *noiseless* PRISM spectrum over the whole grid, its red half and
    its reddest fifth (an exact absolute flux scale);
``embedding + both``
    both of the above;
``noiseless spectrum + true z``
    no embedding at all: the noiseless spectrum (asinh-stretched) and the true redshift;
``embedding + measured fluxes``
    plus fluxes measured from the observed inputs the embedding was made from (`measured_fluxes`:
    0.3" aperture fluxes of the given bands, the given spectrum's weighted mean flux), which a
    user has: can a head that sees the flux scale do better than the embedding alone?

If the oracle inputs do not help, the embedding already carries what they say; if even the
noiseless spectrum with the true redshift leaves a large scatter, the mock survey's spectra do not
determine the mass that well (slit losses and the M/L spread of the priors). Every head is the
same MLP (two hidden layers of 256, GELU), trained the same way (6,000 AdamW steps of 512, peak
learning rate 2e-3, one-cycle, smooth-L1 loss on standardised log M*). Prints the scatter (std and
NMAD, dex) per input set and, last, one JSON line; ``--out DIR`` writes ``mass_information.json``.

    python benchmarks/mass_information.py --model default --cache ~/.cache/jwst_embed_refit \\
        --json --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from jwst_embed.preprocessing.stretch import SPECTRUM_SOFTENING_NJY

sys.path.insert(0, str(Path(__file__).resolve().parent))
from refit_heads import ALL_BANDS, INPUT_SETS, TRAIN_SEED, VALIDATION_SEED, cached_stream  # noqa: E402

VARIANTS = ("embedding", "embedding + true z", "embedding + flux scale", "embedding + both",
            "noiseless spectrum + true z", "embedding + measured fluxes", "embedding + aperture fluxes")  # fmt: skip
#: Radius of the aperture of the measured image fluxes.
APERTURE_ARCSEC = 0.3
#: Radii of the apertures of ``embedding + aperture fluxes``: the 0.3" core and apertures that
#: hold most of the light of an extended galaxy (the cutout is 2.56" across).
APERTURES_ARCSEC = (0.3, 0.6, 1.0)


def measured_fluxes(n_objects: int, seed: int, chunk: int = 500,
                    radii_arcsec: tuple[float, ...] = (APERTURE_ARCSEC,)) -> tuple[torch.Tensor, torch.Tensor]:
    """Fluxes measured from the *observed* inputs of the objects of `refit_heads.embed_stream`.

    The stream is drawn again (the same seed and chunks, so the same objects, input sets and
    order); for each object, from the inputs of its input set only: per band, the asinh of the
    flux in apertures of ``radii_arcsec`` (default 0.3"; over 10 nJy) and whether the band was
    given; for the spectrum, the asinh of the inverse-variance weighted mean flux over the whole
    grid and its red half (over 1 nJy) and whether it was given. What a user's photometry would
    add beside the embedding. Returns the ``(N, 8 (len(radii_arcsec) + 1) + 3)`` features and the
    objects' true redshifts (to check the match).
    """
    from jwst_embed.simulation.survey import MockSurvey, SurveyConfig, batch_generator

    survey = MockSurvey(SurveyConfig(bands=ALL_BANDS, spectrum_fraction=0.7), device="cpu")
    names = list(INPUT_SETS)
    size_pixels = survey.config.image_grid.n_pixels
    yy, xx = torch.meshgrid(torch.arange(size_pixels), torch.arange(size_pixels), indexing="ij")
    centre = (size_pixels - 1) / 2
    pixel_arcsec = survey.config.image_grid.pixel_scale.to_value("arcsec")
    apertures = [((yy - centre) ** 2 + (xx - centre) ** 2) <= (radius / pixel_arcsec) ** 2 for radius in radii_arcsec]
    out, redshift = [], []
    for index, start in enumerate(range(0, n_objects, chunk)):
        size = min(chunk, n_objects - start)
        batch = survey.to_batch(survey.sample(size, generator=batch_generator(seed, index, "cpu")))
        name = names[index % len(names)]
        subset = batch.select(list(INPUT_SETS[name]))
        subset = subset.index(torch.nonzero(subset.present.any(dim=1)).flatten())
        columns = []
        for band in ALL_BANDS:
            if band in subset.images:
                image = subset.images[band]
                present = subset.present[:, subset.modalities.index(band)]
                for aperture in apertures:
                    flux = torch.where(image.mask | ~aperture, 0.0, image.values).sum(dim=(1, 2))
                    columns.append(torch.where(present, torch.asinh(flux / 10.0), 0.0))
                columns.append(present.float())
            else:
                columns += [torch.zeros(len(subset))] * (len(apertures) + 1)
        if "PRISM" in subset.spectra:
            prism = subset.spectra["PRISM"]
            present = subset.present[:, subset.modalities.index("PRISM")]
            weight = torch.where(prism.mask, 0.0, prism.ivar)
            half = prism.values.shape[1] // 2
            for part in (slice(None), slice(half, None)):
                mean = (prism.values[:, part] * weight[:, part]).sum(dim=1) / weight[:, part].sum(dim=1).clamp_min(1e-30)
                columns.append(torch.where(present, torch.asinh(mean), 0.0))
            columns.append(present.float())
        else:
            columns += [torch.zeros(len(subset))] * 3
        out.append(torch.stack(columns, dim=1).float())
        redshift.append(subset.targets["redshift"].float())
    return torch.cat(out), torch.cat(redshift)


def flux_scale(spectrum: torch.Tensor) -> torch.Tensor:
    """log10 of the mean noiseless flux (nJy) over the whole grid, its red half and its reddest fifth."""
    length = spectrum.shape[1]
    parts = [spectrum, spectrum[:, length // 2 :], spectrum[:, (4 * length) // 5 :]]
    return torch.stack([torch.log10(part.mean(dim=1).clamp(min=1e-3)) for part in parts], dim=1)


def features(data: dict, variant: str) -> torch.Tensor:
    log1pz = torch.log1p(data["redshift"].clamp(min=0))[:, None]
    if variant == "noiseless spectrum + true z":
        return torch.cat([torch.asinh(data["spectrum_noiseless"] / SPECTRUM_SOFTENING_NJY), log1pz], dim=1)
    parts = [data["fused"]]
    if variant in ("embedding + true z", "embedding + both"):
        parts.append(log1pz)
    if variant in ("embedding + flux scale", "embedding + both"):
        parts.append(flux_scale(data["spectrum_noiseless"]))
    if variant == "embedding + measured fluxes":
        parts.append(data["measured_fluxes"])
    if variant == "embedding + aperture fluxes":
        parts.append(data["aperture_fluxes"])
    return torch.cat(parts, dim=1)


def train_mass_head(x: torch.Tensor, y: torch.Tensor, steps: int, seed: int = 0) -> Callable[[torch.Tensor], torch.Tensor]:
    """A fresh MLP fit to ``y`` from ``x``; returns the function giving log M* from features."""
    torch.manual_seed(seed)
    mean, std = y.mean(), y.std()
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 256), torch.nn.GELU(), torch.nn.Linear(256, 256),
                              torch.nn.GELU(), torch.nn.Linear(256, 1))  # fmt: skip
    optimizer = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps, pct_start=0.05)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        rows = torch.randint(0, len(x), (512,), generator=generator)
        loss = torch.nn.functional.smooth_l1_loss(net(x[rows])[:, 0], (y[rows] - mean) / std, beta=0.5)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    net.eval()
    return lambda features: net(features)[:, 0] * std + mean


def scatter(residual: np.ndarray) -> dict:
    nmad = 1.4826 * np.median(np.abs(residual - np.median(residual)))
    return {"n": int(len(residual)), "std": round(float(residual.std()), 4), "nmad": round(float(nmad), 4)}


def stream_arguments(description: str, argv=None) -> argparse.Namespace:
    """The command line of the what-limits benchmarks on the streams of ``refit_heads.py``."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="registered name or file")
    parser.add_argument("--cache", default=None, help="folder for the embedded streams (see refit_heads.py)")
    parser.add_argument("--n-train", type=int, default=30000)
    parser.add_argument("--n-validation", type=int, default=6000)
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--variants", nargs="+", default=None, help="only these input sets of the heads (default: all)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    return args


def streams_with_measured_fluxes(args: argparse.Namespace):
    """(model, train, validation): the model's embedded streams, each with ``"measured_fluxes"`` added."""
    from jwst_embed.training.checkpoint import load_model
    from jwst_embed.weights import fetch_weights

    path = str(fetch_weights(args.model))
    model = load_model(path).float().eval()
    train = cached_stream(model, args.n_train, TRAIN_SEED, args.cache, path)
    validation = cached_stream(model, args.n_validation, VALIDATION_SEED, args.cache, path)
    for data, n, seed in ((train, args.n_train, TRAIN_SEED), (validation, args.n_validation, VALIDATION_SEED)):
        # one draw for both: per band the APERTURES_ARCSEC fluxes and the flag; the 0.3" set is the
        # first aperture's column and the flag of each band, and the spectrum's three
        data["aperture_fluxes"], redshift = measured_fluxes(n, seed, radii_arcsec=APERTURES_ARCSEC)
        if redshift.shape != data["redshift"].shape or not torch.allclose(redshift, data["redshift"]):
            raise RuntimeError("the stream drawn again does not match the cached one")
        per_band = len(APERTURES_ARCSEC) + 1
        core = [band * per_band + offset for band in range(len(ALL_BANDS)) for offset in (0, per_band - 1)]
        n_bands = len(ALL_BANDS) * per_band
        data["measured_fluxes"] = data["aperture_fluxes"][:, core + list(range(n_bands, n_bands + 3))]
    return model, train, validation


def finish(result: dict, name: str, args: argparse.Namespace, argv, start: float) -> dict:
    """Add the run time and command to ``result``, write ``{name}.json`` under ``--out``, print it."""
    result["seconds"] = round(time.perf_counter() - start, 1)
    result["command"] = f"python benchmarks/{name}.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return result


def main(argv=None) -> dict:
    args = stream_arguments(__doc__, argv)
    start = time.perf_counter()
    variants = VARIANTS if args.variants is None else args.variants
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown --variants {sorted(unknown)}; choose from {list(VARIANTS)}")
    _, train, validation = streams_with_measured_fluxes(args)
    result = {"model": args.model, "n_train": int(len(train["fused"])), "n_validation": int(len(validation["fused"])),
              "steps": args.steps, "variants": {}}  # fmt: skip
    print(f"{'inputs':30s} " + " ".join(f"{name:>15s}" for name in ["all", *INPUT_SETS]) + "   (std / NMAD, dex)")
    for variant in variants:
        with torch.no_grad():
            x_validation = features(validation, variant)
        head = train_mass_head(features(train, variant), train["log_mass"], args.steps)
        with torch.no_grad():
            residual = (head(x_validation) - validation["log_mass"]).numpy()
        entry = {"all": scatter(residual)}
        for name in INPUT_SETS:
            rows = validation["input_set"] == name
            entry[name] = scatter(residual[rows])
        result["variants"][variant] = entry
        print(f"{variant:30s} " + " ".join(f"{entry[n]['std']:7.3f}/{entry[n]['nmad']:.3f}" for n in ["all", *INPUT_SETS]),
              flush=True)  # fmt: skip
    return finish(result, "mass_information", args, argv, start)


if __name__ == "__main__":
    main()
