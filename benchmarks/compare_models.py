"""Models side by side on the same fresh mocks: the seed table's metrics, per input set, quickly.

A check between candidates (a training leg's checkpoints, a variant) before the seed table
(``benchmarks/seed_table.py``) decides what ships: the seed table's five input sets and its
metric code, on ``--n-objects`` galaxies of a mock seed that neither the seed table (990001) nor
the training runs use, and for the seed table's reference set (F150W + PRISM) the 5-nearest-neighbour
redshift from the fused embeddings (first half of the mocks as neighbours for the second), and
for a model file with a similarity whitening the same after it (``knn5_whitened_*``: what the
package's similarity search finds). Prints one line per model and input set, and the JSON object
last.

    python benchmarks/compare_models.py v6 default --n-objects 1500 --json --out benchmarks/results/default_v7
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from seed_table import ALL_BANDS, INPUT_SETS, REFERENCE_SET, metrics_of, run_input_sets, simulate  # noqa: E402

from jwst_embed.models.serialization import load_model_and_extras  # noqa: E402
from jwst_embed.similarity import SimilarityWhitening  # noqa: E402
from jwst_embed.training.validation import knn_redshift, outlier_fraction, sigma_nmad  # noqa: E402
from jwst_embed.weights import fetch_weights  # noqa: E402

SEED = 771177
KEYS = ("morph_f1_macro", "z_sigma_nmad", "z_outlier_frac", "logm_sigma", "spec_r2_median",
        "spec_r2_flux_matched_median")  # fmt: skip


def compare(models, n_objects: int, seed: int = SEED, progress: bool = False) -> dict:
    """``{model: {input set: {metric: value}}}`` on one set of ``n_objects`` fresh mocks."""
    batch, snr = simulate(ALL_BANDS, n_objects, seed, 500, progress)
    labels = {"z": batch.targets["redshift"].numpy(), "logm": batch.targets["log_mass"].numpy(),
              "morph": batch.targets["morphology"].numpy()}  # fmt: skip
    result = {}
    for name in models:
        model, extras = load_model_and_extras(fetch_weights(name))  # a name or a file
        model = model.float().eval()
        with torch.no_grad():
            predictions = run_input_sets(model, batch, INPUT_SETS, 256, progress)
        result[name] = {}
        for input_set in INPUT_SETS:
            metrics = metrics_of(predictions[input_set], labels, snr)
            result[name][input_set] = {key: round(float(metrics[key]), 4) for key in KEYS}
        # what the fused embedding's neighbourhoods know: 5-NN redshift, first half -> second half
        z_knn, z_true = knn_redshift(predictions[REFERENCE_SET]["fused"], labels["z"], n_neighbors=5)
        result[name][REFERENCE_SET]["knn5_z_sigma_nmad"] = round(float(sigma_nmad(z_knn, z_true)), 4)
        result[name][REFERENCE_SET]["knn5_z_outlier_frac"] = round(float(outlier_fraction(z_knn, z_true)), 4)
        if "similarity_whitening" in extras:
            whitening = SimilarityWhitening.from_payload(extras["similarity_whitening"])
            white = whitening.apply(np.asarray(predictions[REFERENCE_SET]["fused"], dtype=np.float64))
            white /= np.linalg.norm(white, axis=1, keepdims=True)
            z_knn, z_true = knn_redshift(white, labels["z"], n_neighbors=5)
            result[name][REFERENCE_SET]["knn5_whitened_z_sigma_nmad"] = round(float(sigma_nmad(z_knn, z_true)), 4)
            result[name][REFERENCE_SET]["knn5_whitened_z_outlier_frac"] = round(float(outlier_fraction(z_knn, z_true)), 4)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="registered names or model files")
    parser.add_argument("--n-objects", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", type=Path, default=None, help="write compare_models.json here")
    parser.add_argument("--json", action="store_true", help="no progress bars")
    args = parser.parse_args()
    torch.set_num_threads(2)
    result = compare(args.models, args.n_objects, args.seed, progress=not args.json)
    for name, sets in result.items():
        for input_set, metrics in sets.items():
            print(f"{name:12s} {input_set:14s} " + " ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    summary = {"command": "python benchmarks/compare_models.py " + " ".join(sys.argv[1:]), "seed": args.seed,
               "n_objects": args.n_objects, "models": result}  # fmt: skip
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "compare_models.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
