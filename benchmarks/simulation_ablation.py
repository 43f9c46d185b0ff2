"""What each part of the mock survey costs a model: the default model on mocks with each part off.

The default model's F150W + PRISM predictions (network heads: redshift, log M*, morphology) on
the same 3,000 mock objects (seeds 4242-4247, 500 each) of simulator 0.3 with everything on,
with each of its new parts switched off in turn (neighbours in the cutouts, image artefacts,
PRISM calibration systematics, damped Lyman-alpha absorbers), and with all of them off
(simulator 0.2's objects). A part whose removal improves a number is one the model has not
learned to handle; the next pretraining on simulator 0.3 is meant to close that gap.

    python benchmarks/simulation_ablation.py [--model default] [--out benchmarks/results]

Prints a line per variant and, last, one JSON line (written to ``simulation_ablation.json`` with
``--out``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from jwst_embed import MultimodalEmbedder
from jwst_embed.metrics import mass_scatter, morphology_f1, outlier_fraction, sigma_nmad
from jwst_embed.simulation import MockSurvey, SurveyConfig

QUIET = {"tilt_sigma": 0.0, "curvature_sigma": 0.0, "shift_sigma_pixels": 0.0}
VARIANTS = {
    "simulator 0.3 (all on)": {},
    "no neighbours": {"neighbour_fraction": 0.0},
    "no image artefacts": {"image_artefacts": False},
    "no calibration systematics": {"calibration_options": QUIET},
    "no damped Lyman-alpha": {"dla_fraction": 0.0},
    "all off (simulator 0.2)": {"neighbour_fraction": 0.0, "image_artefacts": False, "calibration_options": QUIET,
                                "dla_fraction": 0.0},
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--chunks", type=int, default=6, help="chunks of 500 objects")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    model = MultimodalEmbedder.from_pretrained(args.model, device="cpu").model.eval()
    library, results = None, {}
    for name, options in VARIANTS.items():
        survey = MockSurvey(SurveyConfig(bands=("F150W",), **options), library=library)
        library = survey.library
        columns: dict[str, list[np.ndarray]] = {}
        for k in range(args.chunks):
            sample = survey.sample(500, seed=4242 + k)
            with torch.no_grad():
                fused = model(survey.to_batch(sample), decode=False).fused.float()
            predicted = {
                "z": model.heads["redshift"].predict(fused)["z_point"],
                "log_mass": model.heads["log_mass"].predict(fused)["log_mass"],
                "morphology": model.heads["morphology"].predict(fused)["label"],
            }
            for key, value in predicted.items():
                columns.setdefault(key, []).append(value.numpy())
                columns.setdefault(f"true_{key}", []).append(sample["redshift" if key == "z" else key].numpy())
        c = {key: np.concatenate(value) for key, value in columns.items()}
        results[name] = {
            "z_sigma_nmad": round(sigma_nmad(c["z"], c["true_z"]), 4),
            "z_outlier_fraction": round(outlier_fraction(c["z"], c["true_z"]), 4),
            "log_mass_std": round(mass_scatter(c["log_mass"], c["true_log_mass"])["std"], 3),
            "morphology_f1_macro": round(morphology_f1(c["true_morphology"], c["morphology"])["f1_macro"], 3),
        }
        print(f"{name:28s} {results[name]}", flush=True)
    summary = {"model": args.model, "inputs": "F150W+PRISM", "n_objects": 500 * args.chunks, "variants": results}
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "simulation_ablation.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
