"""Where morphology information is lost: fresh heads on the fused embedding and on the image tokens.

`benchmarks/morphology_ceiling.py` shows that a small CNN trained on the F150W pixels beats the
default model's morphology by ~0.1 in macro-F1. The model's path from pixels to the morphology
head is: ViT patch tokens -> a CLS and ``n_summary_tokens`` summary tokens, projected into the
shared space (the image's 1 + 3 tokens) -> cross-attention fusion -> one fused embedding -> head.
This script embeds the same mocks as that script (F150W alone, training seed 737373,
validation seed 838383) with the model frozen and trains fresh morphology heads (the model's own
`~jwst_embed.models.MorphologyHead` architecture, 6,000 AdamW steps of 512 on cached inputs) on

- ``fused``: the fused embedding (what the shipped head reads);
- ``image_tokens``: the image's projected tokens, concatenated (what the fusion reads).

If ``image_tokens`` is well above ``fused``, the fusion loses class information; if both stay
near the shipped head, the image encoder's tokens already do.

Prints a table, then one JSON object last::

    python benchmarks/morphology_readouts.py --json --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from morphology_ceiling import BAND, TRAIN_SEED, VALIDATION_SEED, cutout_outputs, scores, simulate  # noqa: E402

from jwst_embed.classes import MORPHOLOGY_CLASSES  # noqa: E402


@torch.no_grad()
def readout_inputs(model, data: dict) -> dict:
    """Fused embedding, the image's projected tokens (flattened) and the shipped head's labels."""
    n_real = 1 + model.config.n_summary_tokens
    out: dict[str, list] = {"fused": [], "image_tokens": [], "shipped": []}
    for output in cutout_outputs(model, data):
        out["fused"].append(output.fused.float())
        out["image_tokens"].append(output.tokens[BAND][:, :n_real].float().flatten(1))
        out["shipped"].append(model.heads["morphology"].predict(output.fused)["label"])
    return {key: torch.cat(value) for key, value in out.items()}


def train_head(
    inputs: torch.Tensor, labels: torch.Tensor, steps: int, seed: int = 0, lr: float = 2e-3
):
    """A fresh `MorphologyHead` on fixed inputs; returns it in eval mode."""
    from jwst_embed.models.heads import MorphologyHead

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    head = MorphologyHead(inputs.shape[1])
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=1e-3)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=steps, pct_start=0.05
    )
    mean, std = inputs.mean(dim=0), inputs.std(dim=0).clamp_min(1e-6)
    head.train()
    for _ in range(steps):
        rows = torch.randint(0, inputs.shape[0], (512,), generator=generator)
        loss = head.loss(head((inputs[rows] - mean) / std), labels[rows])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    head.eval()
    return lambda x: head.predict((x - mean) / std)["label"]


def main() -> None:
    from jwst_embed.training.checkpoint import load_model
    from jwst_embed.weights import fetch_weights

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="default", help="registered name or model file")
    parser.add_argument("--n-train", type=int, default=20000)
    parser.add_argument("--n-validation", type=int, default=4000)
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--out", type=Path, default=None, help="write morphology_readouts.json here"
    )
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    model = load_model(fetch_weights(args.model)).float().eval()
    train = simulate(args.n_train, TRAIN_SEED, progress=not args.json)
    validation = simulate(args.n_validation, VALIDATION_SEED, progress=not args.json)
    train_inputs, validation_inputs = (
        readout_inputs(model, train),
        readout_inputs(model, validation),
    )
    truth = validation["label"].numpy()
    predicted = {"shipped_head": validation_inputs["shipped"].numpy()}
    widths = {}
    for name in ("fused", "image_tokens"):
        predict = train_head(train_inputs[name], train["label"], args.steps)
        with torch.no_grad():
            predicted[name] = predict(validation_inputs[name]).numpy()
        widths[name] = int(train_inputs[name].shape[1])
    bright = validation["snr"].numpy() >= 10
    result = {"model": args.model, "band": BAND, "n_train": args.n_train, "n_validation": args.n_validation,
              "steps": args.steps, "train_seed": TRAIN_SEED, "validation_seed": VALIDATION_SEED,
              "classes": list(MORPHOLOGY_CLASSES), "input_width": widths,
              "all": {name: scores(truth, labels) for name, labels in predicted.items()},
              "snr_ge10": {name: scores(truth[bright], labels[bright]) for name, labels in predicted.items()}}  # fmt: skip
    result["seconds"] = round(time.perf_counter() - started, 1)
    if not args.json:
        for name in predicted:
            print(
                f"{name:>14s}: macro-F1 {result['all'][name]['f1_macro']:.3f} (S/N >= 10: {result['snr_ge10'][name]['f1_macro']:.3f})"
            )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "morphology_readouts.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
