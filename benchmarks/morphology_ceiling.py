"""What limits morphology: the default model's F1 beside a network trained on the pixels alone.

The seed table's morphology macro-F1 (F150W + PRISM) is ~0.71 against a target of 0.90. Is the
class information in the mock F150W cutouts (depth, neighbours, artefacts, small high-redshift
galaxies), or does the embedding lose it? This script simulates mock galaxies from training
seeds (never the benchmark's 990001/990002), turns their F150W cutouts into the model's own
input channels (`jwst_embed.preprocessing.model_inputs`: asinh-stretched flux and weight), and
trains a small convolutional classifier on them, supervised, from scratch, on the CPU. On a
validation set from another seed it reports macro-F1 for

- ``cnn``: the supervised pixel classifier (a lower bound of what the cutouts allow: it is
  small and trained for minutes);
- ``model``: the default model's morphology head on its F150W-only embedding of the same
  validation cutouts;
- both again in bins of the galaxy's F150W signal-to-noise (total flux over the
  noise in a 0.3" aperture), since faint galaxies carry little shape.

If ``cnn`` stays near ``model``, the cutouts limit F1 (and the 0.90 target needs deeper mocks
or a different class definition, not a better encoder); if it is well above, the encoder does.

Prints a table, then one JSON object last::

    python benchmarks/morphology_ceiling.py --n-train 20000 --steps 2000 --json --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from jwst_embed.classes import MORPHOLOGY_CLASSES
from jwst_embed.preprocessing import IMAGE_SOFTENING_NJY, model_inputs

TRAIN_SEED, VALIDATION_SEED = 737373, 838383
BAND = "F150W"
#: Signal-to-noise bins (total flux over the noise of a 0.3" aperture) of the per-bin table.
SNR_EDGES = (0.0, 10.0, 30.0, 100.0, np.inf)


def simulate(n: int, seed: int, chunk: int = 1000, progress: bool = True) -> dict:
    """F150W model inputs, morphology labels and signal-to-noise of ``n`` mock galaxies."""
    from tqdm.auto import tqdm

    from jwst_embed.simulation.survey import MockSurvey, SurveyConfig, batch_generator

    survey = MockSurvey(SurveyConfig(bands=(BAND,), include_spectra=False), device="cpu")
    parts: dict[str, list] = {
        "stretched": [],
        "weight": [],
        "label": [],
        "snr": [],
        "values": [],
        "ivar": [],
        "mask": [],
    }
    for index in tqdm(range(-(-n // chunk)), desc=f"simulating seed {seed}", disable=not progress):
        size = min(chunk, n - index * chunk)
        sample = survey.sample(size, generator=batch_generator(seed, index))
        values, ivar, mask = (
            sample["images"][:, 0],
            sample["images_ivar"][:, 0],
            sample["images_mask"][:, 0],
        )
        stretched, weight = model_inputs(values, ivar, mask, IMAGE_SOFTENING_NJY)
        parts["stretched"].append(stretched.float())
        parts["weight"].append(weight.float())
        parts["label"].append(sample["morphology"])
        parts["snr"].append(_signal_to_noise(sample["images_noiseless"][:, 0], ivar, mask))
        for key, value in (("values", values), ("ivar", ivar), ("mask", mask)):
            parts[key].append(value)
    return {key: torch.cat(value) for key, value in parts.items()}


def _signal_to_noise(
    noiseless: torch.Tensor, ivar: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Total noiseless flux over the noise of a 0.3" (radius) aperture at the cutout's centre."""
    from jwst_embed.preprocessing import DEFAULT_IMAGE_GRID

    size = noiseless.shape[-1]
    pixel_arcsec = DEFAULT_IMAGE_GRID.pixel_scale.to_value("arcsec")
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    centre = (size - 1) / 2
    aperture = ((yy - centre) ** 2 + (xx - centre) ** 2) <= (0.3 / pixel_arcsec) ** 2
    variance = torch.where(mask | (ivar <= 0), torch.zeros_like(ivar), 1.0 / ivar.clamp_min(1e-30))
    noise = (variance * aperture).sum(dim=(1, 2)).sqrt()
    return noiseless.sum(dim=(1, 2)) / noise.clamp_min(1e-30)


class PixelClassifier(nn.Module):
    """A small CNN over the two input channels (stretched flux, weight)."""

    def __init__(self, n_classes: int, width: int = 16) -> None:
        super().__init__()
        layers, channels = [], 2
        for out in (width, 2 * width, 4 * width, 4 * width):
            layers += [nn.Conv2d(channels, out, 3, padding=1), nn.BatchNorm2d(out), nn.GELU(),
                       nn.Conv2d(out, out, 3, padding=1), nn.BatchNorm2d(out), nn.GELU(), nn.MaxPool2d(2)]  # fmt: skip
            channels = out
        self.features = nn.Sequential(*layers)
        self.readout = nn.Sequential(
            nn.Flatten(), nn.Dropout(0.1), nn.LazyLinear(256), nn.GELU(), nn.Linear(256, n_classes)
        )

    def forward(self, stretched: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return self.readout(self.features(torch.stack([stretched, weight], dim=1)))


def _augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random 90-degree rotations and flips (morphology does not depend on orientation)."""
    k = int(torch.randint(0, 4, (1,), generator=generator))
    x = torch.rot90(x, k, dims=(-2, -1))
    return torch.flip(x, dims=(-1,)) if bool(torch.randint(0, 2, (1,), generator=generator)) else x


def train_classifier(
    data: dict,
    steps: int,
    batch_size: int = 96,
    lr: float = 2e-3,
    seed: int = 0,
    progress: bool = True,
):
    """AdamW with a one-cycle schedule; returns the classifier and the seconds spent."""
    from tqdm.auto import tqdm

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    classifier = PixelClassifier(len(MORPHOLOGY_CLASSES))
    classifier(data["stretched"][:2], data["weight"][:2])  # materialise the lazy layer
    optimizer = torch.optim.AdamW(classifier.parameters(), lr=lr, weight_decay=1e-2)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=steps, pct_start=0.05
    )
    n = data["label"].shape[0]
    classifier.train()
    start = time.perf_counter()
    for _ in tqdm(range(steps), desc="training the pixel classifier", disable=not progress):
        rows = torch.randint(0, n, (batch_size,), generator=generator)
        pair = _augment(
            torch.stack([data["stretched"][rows], data["weight"][rows]], dim=1), generator
        )
        loss = nn.functional.cross_entropy(classifier(pair[:, 0], pair[:, 1]), data["label"][rows])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    classifier.eval()
    return classifier, time.perf_counter() - start


@torch.no_grad()
def classify(classifier: PixelClassifier, data: dict, chunk: int = 512) -> np.ndarray:
    labels = [classifier(data["stretched"][i : i + chunk], data["weight"][i : i + chunk]).argmax(dim=1)
              for i in range(0, data["label"].shape[0], chunk)]  # fmt: skip
    return torch.cat(labels).numpy()


@torch.no_grad()
def cutout_outputs(model, data: dict, chunk: int = 512):
    """The model's outputs (`~jwst_embed.models.ModelOutput`) for the F150W cutouts of ``data`` alone, chunk by chunk."""
    from jwst_embed.inference import forward
    from jwst_embed.preprocessing import Batch, ModalityTensors

    for start in range(0, data["label"].shape[0], chunk):
        rows = slice(start, start + chunk)
        tensors = ModalityTensors(values=data["values"][rows], ivar=data["ivar"][rows], mask=data["mask"][rows])
        present = torch.ones(tensors.values.shape[0], 1, dtype=torch.bool)
        batch = Batch(images={BAND: tensors}, spectra={}, present=present, modalities=(BAND,))
        yield forward(model, batch, torch.device("cpu"), decode=False)


@torch.no_grad()
def model_labels(model_name: str, data: dict) -> np.ndarray:
    """The model's morphology labels from its F150W-only embeddings."""
    from jwst_embed.training.checkpoint import load_model
    from jwst_embed.weights import fetch_weights

    model = load_model(fetch_weights(model_name)).float().eval()
    labels = [model.heads["morphology"].predict(output.fused)["label"] for output in cutout_outputs(model, data)]
    return torch.cat(labels).numpy()


def scores(truth: np.ndarray, predicted: np.ndarray) -> dict:
    from sklearn.metrics import f1_score

    return {"n": int(truth.size), "f1_macro": round(float(f1_score(truth, predicted, average="macro", labels=range(len(MORPHOLOGY_CLASSES)))), 4),
            "accuracy": round(float((truth == predicted).mean()), 4)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="default", help="registered name or model file")
    parser.add_argument("--n-train", type=int, default=20000)
    parser.add_argument("--n-validation", type=int, default=4000)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None, help="write morphology_ceiling.json here")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    train = simulate(args.n_train, TRAIN_SEED, progress=not args.json)
    validation = simulate(args.n_validation, VALIDATION_SEED, progress=not args.json)
    simulation_s = time.perf_counter() - started
    classifier, training_s = train_classifier(train, args.steps, progress=not args.json)
    truth = validation["label"].numpy()
    predicted = {
        "cnn": classify(classifier, validation),
        "model": model_labels(args.model, validation),
    }
    snr = validation["snr"].numpy()
    result = {"model": args.model, "band": BAND, "n_train": args.n_train, "n_validation": args.n_validation,
              "steps": args.steps, "train_seed": TRAIN_SEED, "validation_seed": VALIDATION_SEED,
              "simulation_s": round(simulation_s, 1), "training_s": round(training_s, 1),
              "torch_threads": torch.get_num_threads(), "all": {}, "by_snr": []}  # fmt: skip
    for name, labels in predicted.items():
        result["all"][name] = scores(truth, labels)
    for low, high in zip(SNR_EDGES[:-1], SNR_EDGES[1:], strict=True):
        keep = (snr >= low) & (snr < high)
        if keep.sum() >= 20:
            result["by_snr"].append({"snr_min": low, "snr_max": None if np.isinf(high) else high,
                                     **{name: scores(truth[keep], labels[keep]) for name, labels in predicted.items()}})  # fmt: skip
    if not args.json:
        print(f"{'S/N bin':>12s} {'n':>6s} {'cnn F1':>7s} {'model F1':>8s}")
        print(
            f"{'all':>12s} {truth.size:6d} {result['all']['cnn']['f1_macro']:7.3f} {result['all']['model']['f1_macro']:8.3f}"
        )
        for row in result["by_snr"]:
            label = f"{row['snr_min']:g}-{row['snr_max'] if row['snr_max'] is not None else 'inf'}"
            print(
                f"{label:>12s} {row['cnn']['n']:6d} {row['cnn']['f1_macro']:7.3f} {row['model']['f1_macro']:8.3f}"
            )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "morphology_ceiling.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
