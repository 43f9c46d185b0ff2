"""What limits the redshift from images alone: the embedding, or what the photometry holds? On mocks.

The issue asks four NIRCam bands alone (F115W, F150W, F277W, F444W) for a redshift with
sigma_NMAD <= 0.06; the default model's head gives ~0.13. This asks whether a better readout of
the fused embedding, or the plain photometry, would do better. Fresh `~jwst_embed.models.RedshiftHead`
s (the shipped head's bins and range, two hidden layers of 256) are trained on the same mock
streams as ``refit_heads.py`` / ``mass_information.py`` (30,000 training galaxies of seed 424242,
6,000 validation galaxies of seed 525252, six input sets, simulator of this checkout) from:

``shipped head``
    no training: the model's own redshift head on the validation embeddings;
``embedding``
    the fused embedding (a fresh head: is the shipped head the limit?);
``measured fluxes``
    only the 0.3" aperture fluxes of the given bands and the spectrum's mean fluxes
    (`mass_information.measured_fluxes`): a photometric redshift from what a user measures;
``embedding + measured fluxes``
    both.

If the measured fluxes alone do as well as the embedding, the embedding holds what the
photometry holds and four bands' colours set the limit; if they do much better, the image encoder
loses colour information a better encoder would keep. Every head is trained the same way (6,000
AdamW steps of 512, peak learning rate 2e-3, one-cycle, the head's own smoothed cross-entropy).
Prints sigma_NMAD and the outlier fraction of the point estimate per input set and, last, one
JSON line; ``--out DIR`` writes ``redshift_information.json``.

    python benchmarks/redshift_information.py --model default --cache ~/.cache/jwst_embed_refit \\
        --json --out benchmarks/results
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mass_information import finish, stream_arguments, streams_with_measured_fluxes  # noqa: E402
from refit_heads import INPUT_SETS  # noqa: E402

from jwst_embed.metrics import outlier_fraction, sigma_nmad  # noqa: E402
from jwst_embed.models import RedshiftHead  # noqa: E402

VARIANTS = ("shipped head", "embedding", "measured fluxes", "embedding + measured fluxes")


def features(data: dict, variant: str) -> torch.Tensor:
    if variant == "measured fluxes":
        return data["measured_fluxes"]
    if variant == "embedding + measured fluxes":
        return torch.cat([data["fused"], data["measured_fluxes"]], dim=1)
    return data["fused"]


def like_shipped(shipped: RedshiftHead, in_dim: int) -> RedshiftHead:
    """A fresh head with the shipped head's bins, range and label smoothing."""
    n_bins = shipped.log1pz_centers.numel()
    z_max = float(torch.expm1(shipped.log1pz_edges[-1]))
    return RedshiftHead(in_dim, n_bins=n_bins, z_max=z_max, label_sigma=shipped.label_sigma)


def train_head(head: RedshiftHead, x: torch.Tensor, z: torch.Tensor, steps: int, seed: int = 0) -> RedshiftHead:
    torch.manual_seed(seed)
    mean, std = x.mean(dim=0), x.std(dim=0).clamp_min(1e-6)
    head.register_buffer("feature_mean", mean, persistent=False)
    head.register_buffer("feature_std", std, persistent=False)
    optimizer = torch.optim.AdamW(head.parameters(), lr=2e-3, weight_decay=1e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=2e-3, total_steps=steps, pct_start=0.05)
    generator = torch.Generator().manual_seed(seed)
    head.train()
    for _ in range(steps):
        rows = torch.randint(0, len(x), (512,), generator=generator)
        loss = head.loss(head((x[rows] - mean) / std), z[rows])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    return head.eval()


def scores(z_pred: np.ndarray, z_true: np.ndarray) -> dict:
    if not len(z_true):
        return {"n": 0, "sigma_nmad": float("nan"), "outliers": float("nan")}
    return {"n": int(len(z_true)), "sigma_nmad": round(sigma_nmad(z_pred, z_true), 4),
            "outliers": round(outlier_fraction(z_pred, z_true), 4)}  # fmt: skip


def main(argv=None) -> dict:
    args = stream_arguments(__doc__, argv)
    start = time.perf_counter()
    model, train, validation = streams_with_measured_fluxes(args)
    shipped = model.heads["redshift"]
    result = {"model": args.model, "n_train": int(len(train["fused"])), "n_validation": int(len(validation["fused"])),
              "steps": args.steps, "variants": {}}  # fmt: skip
    z_true = validation["redshift"].numpy()
    print(f"{'inputs':30s} " + " ".join(f"{name:>15s}" for name in ["all", *INPUT_SETS]) + "   (sigma_NMAD / outliers)")
    for variant in VARIANTS:
        if variant == "shipped head":
            head, x_validation = shipped, validation["fused"]
        else:
            x = features(train, variant)
            head = train_head(like_shipped(shipped, x.shape[1]), x, train["redshift"], args.steps)
            x_validation = (features(validation, variant) - head.feature_mean) / head.feature_std
        with torch.no_grad():
            z_pred = head.predict(x_validation)["z_point"].numpy()
        entry = {"all": scores(z_pred, z_true)}
        for name in INPUT_SETS:
            rows = validation["input_set"] == name
            entry[name] = scores(z_pred[rows], z_true[rows])
        result["variants"][variant] = entry
        print(f"{variant:30s} " + " ".join(f"{entry[n]['sigma_nmad']:7.4f}/{entry[n]['outliers']:.3f}" for n in ["all", *INPUT_SETS]),
              flush=True)  # fmt: skip
    return finish(result, "redshift_information", args, argv, start)


if __name__ == "__main__":
    main()
