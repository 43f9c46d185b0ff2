"""Short ablations of the spectrum path for redshift: what reads lines, and what transfers to real data.

Each variant is a spectrum-only network trained from scratch on the CPU for ``--steps`` steps on the
mock survey (spectra only, fresh objects every step; the same number of steps and objects for
every variant), then evaluated on held-out mocks (seed
990001, by spectral S/N) and on the 68 real PRISM spectra of ../shared/real and ../shared/real/dev
(never trained on). Every variant ends in the package's `~jwst_embed.models.RedshiftHead`.

Variants:

``line_reader``
    `~jwst_embed.models.SpectrumLineReader` (linear patch embedding, three residual 1-D
    convolutions over the patch tokens, a position-keeping readout), stretched flux and weight
    as inputs, the simulator's native-pixel noise (correlated, per-object sensitivity shape).
``line_reader_white``
    The same network trained on the old noise: white, one fixed sensitivity curve.
``line_reader_mask``
    The same with a 0/1 mask instead of the inverse-variance weight as second channel.
``line_reader_native_clean``
    Native-pixel noise with the per-object sensitivity shape and pixel scatter, but no
    unflagged spikes, gaps, truncated coverage or misestimated error arrays.
``line_reader_wide_prior``
    ``line_reader`` on the wider prior: active nuclei and Little Red Dots
    (`jwst_embed.simulation.agn`) and dusty galaxies at every redshift.

All other variants use the simulator's galaxy prior without nuclei and without the dusty
population (``agn_fraction_* = 0``, ``dusty_fraction = 0``), as the v3 model was trained.
``transformer``
    The package's `~jwst_embed.models.SpectrumEncoder` (``small`` preset sizes) with its CLS
    token into the head: the spectrum path of the v3 model, trained the same way.

    python benchmarks/ablation_spectrum_redshift.py --variant line_reader --steps 2500 --json

Prints a table and one JSON object as the last line; ``--out FILE`` merges the result into a
JSON file keyed by variant (benchmarks/results/ablation_spectrum_redshift.json).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from jwst_embed.models import RedshiftHead, SpectrumEncoder, SpectrumLineReader
from jwst_embed.preprocessing import model_inputs, preprocess_spectra
from jwst_embed.preprocessing.stretch import SPECTRUM_SOFTENING_NJY
from jwst_embed.simulation import MockSurvey, SurveyConfig, batch_generator
from jwst_embed.training.validation import outlier_fraction, sigma_nmad

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_data import load_real_spectra  # noqa: E402

VARIANTS = (
    "line_reader", "line_reader_white", "line_reader_mask", "line_reader_native_clean", "line_reader_wide_prior",
    "transformer",
)  # fmt: skip
VALIDATION_SEED = 990001


class SpectrumRedshiftNet(nn.Module):
    """A spectrum path and a `RedshiftHead` (the object every variant trains)."""

    def __init__(self, variant: str) -> None:
        super().__init__()
        self.variant = variant
        if variant == "transformer":
            self.encoder = SpectrumEncoder()
            width = self.encoder.norm.normalized_shape[0]
        else:
            self.encoder = SpectrumLineReader(n_tokens=1, out_width=256)
            width = 256
        self.head = RedshiftHead(width, n_bins=512, label_sigma=0.008)

    def embedding(self, flux: torch.Tensor, ivar: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        stretched, weight = model_inputs(flux, ivar, mask, SPECTRUM_SOFTENING_NJY)
        if self.variant == "line_reader_mask":
            weight = (~mask).float()
        if self.variant == "transformer":
            summary, _ = self.encoder(stretched, weight, ["PRISM"], torch.zeros(len(flux), dtype=torch.long))
            return summary[:, 0]
        return self.encoder(stretched, weight)[:, 0]

    def forward(self, flux, ivar, mask) -> torch.Tensor:
        return self.head(self.embedding(flux, ivar, mask))


GALAXY_PRIOR = {"agn_fraction_low_z": 0.0, "agn_fraction_high_z": 0.0, "dusty_fraction": 0.0}


def _survey(variant: str) -> MockSurvey:
    if variant == "line_reader_wide_prior":
        return MockSurvey(SurveyConfig(bands=()))
    if variant == "line_reader_white":
        return MockSurvey(SurveyConfig(bands=(), prism_noise="white", **GALAXY_PRIOR))
    if variant == "line_reader_native_clean":
        clean = {"outlier_fraction": 0.0, "gap_probability": 0.0, "truncation_probability": 0.0,
                 "error_scale_range": (1.0, 1.0)}  # fmt: skip
        return MockSurvey(SurveyConfig(bands=(), prism_noise_options=clean, **GALAXY_PRIOR))
    return MockSurvey(SurveyConfig(bands=(), **GALAXY_PRIOR))


def train(variant: str, steps: int, batch_size: int, lr: float, seed: int) -> tuple[nn.Module, dict]:
    torch.manual_seed(seed)
    survey = _survey(variant)
    net = SpectrumRedshiftNet(variant)
    optimiser = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.01)
    start, losses = time.perf_counter(), []
    for step in range(steps):
        fraction = step / steps
        warm = min(1.0, (step + 1) / 100)
        for group in optimiser.param_groups:
            group["lr"] = lr * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * fraction)))
        sample = survey.sample(batch_size, generator=batch_generator(seed, step))
        logits = net(sample["spectrum"], sample["spectrum_ivar"], sample["spectrum_mask"])
        loss = net.head.loss(logits, sample["redshift"])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimiser.step()
        losses.append(loss.item())
    return net, {
        "steps": steps,
        "objects_seen": steps * batch_size,
        "train_seconds": round(time.perf_counter() - start, 1),
        "final_loss": round(float(np.mean(losses[-50:])), 4),
    }


@torch.no_grad()
def predict(net: nn.Module, flux, ivar, mask, chunk: int = 512) -> dict[str, np.ndarray]:
    net.eval()
    parts = []
    for i in range(0, len(flux), chunk):
        embedding = net.embedding(
            torch.as_tensor(flux[i : i + chunk]).float(),
            torch.as_tensor(ivar[i : i + chunk]).float(),
            torch.as_tensor(mask[i : i + chunk]).bool(),
        )
        parts.append(net.head.predict(embedding))
    return {key: torch.cat([p[key] for p in parts]).numpy() for key in ("z_median", "z_16", "z_84")}


def scores(prediction: dict[str, np.ndarray], z_true: np.ndarray) -> dict[str, float]:
    z = prediction["z_median"]
    inside = (z_true >= prediction["z_16"]) & (z_true <= prediction["z_84"])
    return {
        "sigma_nmad": round(sigma_nmad(z, z_true), 5),
        "outlier_fraction": round(outlier_fraction(z, z_true), 4),
        "coverage68": round(float(inside.mean()), 3),
        "n": int(len(z_true)),
    }


def evaluate(net: nn.Module, variant: str, n_validation: int) -> dict:
    survey = _survey("line_reader")  # every variant is judged on the same mocks (native noise)
    sample = survey.sample(n_validation, generator=batch_generator(VALIDATION_SEED, 0))
    z_true = sample["redshift"].numpy()
    prediction = predict(net, sample["spectrum"], sample["spectrum_ivar"], sample["spectrum_mask"])
    snr = np.median((sample["spectrum_noiseless"] * sample["spectrum_ivar"].sqrt()).numpy(), axis=1)
    result = {"mock": scores(prediction, z_true)}
    for name, keep in (("mock_snr_lt1", snr < 1), ("mock_snr_1_10", (snr >= 1) & (snr < 10)), ("mock_snr_ge10", snr >= 10)):
        if keep.any():
            result[name] = scores({k: v[keep] for k, v in prediction.items()}, z_true[keep])
    real = load_real_spectra()
    arrays = preprocess_spectra(real.spectra)
    prediction = predict(net, arrays.flux, arrays.ivar, arrays.mask)
    result["real"] = scores(prediction, real.redshift)
    result["real_z_pred"] = [round(float(z), 4) for z in prediction["z_median"]]
    for population in np.unique(real.population):
        keep = real.population == population
        result[f"real_{population.replace(' ', '_')}"] = scores(
            {k: v[keep] for k, v in prediction.items()}, real.redshift[keep]
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", choices=VARIANTS, default="line_reader")
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--n-validation", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=None, help="merge the result into this JSON file")
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args()

    net, record = train(args.variant, args.steps, args.batch_size, args.lr, args.seed)
    record.update(evaluate(net, args.variant, args.n_validation))
    record.update(
        variant=args.variant, batch_size=args.batch_size, lr=args.lr,
        parameters=sum(p.numel() for p in net.parameters()), torch_threads=torch.get_num_threads(),
    )  # fmt: skip
    if not args.json:
        print(f"{'set':24s} {'n':>5s} {'sigma_NMAD':>11s} {'outliers':>9s} {'cov68':>6s}")
        for key, value in record.items():
            if isinstance(value, dict) and "n" in value:
                print(f"{key:24s} {value['n']:5d} {value['sigma_nmad']:11.5f} {value['outlier_fraction']:9.4f} {value['coverage68']:6.3f}")
    if args.out is not None:
        merged = json.loads(args.out.read_text()) if args.out.exists() else {}
        merged[args.variant] = record
        args.out.write_text(json.dumps(merged, indent=1) + "\n")
    print(json.dumps(record))


if __name__ == "__main__":
    main()
