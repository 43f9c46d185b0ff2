"""Does the embedding know redshift on real spectra? A cross-validated nearest-neighbour redshift.

The 68 real PRISM spectra of ../shared/real and ../shared/real/dev (see ``real_redshift.py``) are
embedded from their `~specutils.Spectrum` objects alone by each model named with ``--models``.
Each object's redshift is then the median catalogue redshift of its ``--neighbours`` most similar
objects (cosine similarity of the embeddings) among the *other* folds of a ``--folds``-fold split
(shuffled with a fixed seed; the same split for every model), so no object sees its own
redshift. The catalogue redshifts are used only as the neighbours' labels and as the truth;
nothing is trained or tuned on them. This measures what the embedding itself carries (the
redshift head is not involved): sigma_NMAD and outlier fraction, overall and per population, for
the fused embedding and for the PRISM modality's own embedding, beside the trivial guess (the
median redshift of the other folds) and the floor this sample sets (neighbours chosen by their
true ln(1 + z): 68 objects leave gaps between redshifts). A third row per model finds the
neighbours after the first linear layer of the model's redshift head (a fixed map, not fitted
here): how much of the redshift the embedding holds in a form its cosine similarity misses. For a
model file with a similarity whitening (v9 on), a fourth row compares the fused embeddings as the
package's similarity search does, after that whitening (`jwst_embed.similarity`; fitted on mocks
only, nothing here).

Prints a table and, last, one JSON line; writes ``real_knn.json`` with ``--out DIR``.

    python benchmarks/real_knn.py --json --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from jwst_embed import MultimodalEmbedder, nearest_neighbors
from jwst_embed.metrics import outlier_fraction, sigma_nmad

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_data import load_real_spectra  # noqa: E402


def fold_of(n_objects: int, n_folds: int, seed: int) -> np.ndarray:
    """Fold index of each object: a shuffled, as-even-as-possible split."""
    order = np.random.default_rng(seed).permutation(n_objects)
    folds = np.empty(n_objects, dtype=int)
    folds[order] = np.arange(n_objects) % n_folds
    return folds


def cross_validated_knn(embedding: np.ndarray, z_true: np.ndarray, folds: np.ndarray, k: int,
                        whitening=None) -> np.ndarray:  # fmt: skip
    """Median redshift of the ``k`` most cosine-similar objects of the other folds.

    The neighbours are those of `jwst_embed.nearest_neighbors` with ``whitening`` (None: plain cosine).
    """
    z_knn = np.empty(len(z_true))
    for fold in np.unique(folds):
        test, train = folds == fold, folds != fold
        nearest, _ = nearest_neighbors(embedding[test], embedding[train], k=k, whitening=whitening)
        z_knn[test] = np.median(z_true[train][nearest], axis=1)
    return z_knn


def perfect_neighbours(z_true: np.ndarray, folds: np.ndarray, k: int) -> np.ndarray:
    """The ``k``-NN redshift if the embedding were ln(1 + z) itself: the sample's own floor."""
    # ln(1 + z) as an angle on the unit circle, so that cosine similarity (as for the models'
    # embeddings) orders neighbours by |delta ln(1 + z)|; monotonic while ln(1 + z) < pi (z < 22)
    return cross_validated_knn(np.stack([np.cos(np.log1p(z_true)), np.sin(np.log1p(z_true))], axis=1), z_true, folds, k)


def head_first_layer(embedder, fused: np.ndarray) -> np.ndarray:
    """The fused embeddings through the first linear layer of the model's redshift head."""
    first = next(m for m in embedder.model.heads["redshift"].net if isinstance(m, torch.nn.Linear))
    with torch.no_grad():
        return first(torch.as_tensor(fused, dtype=first.weight.dtype)).numpy()


def median_guess(z_true: np.ndarray, folds: np.ndarray) -> np.ndarray:
    guess = np.empty(len(z_true))
    for fold in np.unique(folds):
        guess[folds == fold] = np.median(z_true[folds != fold])
    return guess


def scores(z: np.ndarray, z_true: np.ndarray, population: np.ndarray) -> dict:
    out = {"all": {"n": int(len(z_true)), "sigma_nmad": round(sigma_nmad(z, z_true), 4),
                   "outlier_fraction": round(outlier_fraction(z, z_true), 4)}}  # fmt: skip
    for name in np.unique(population):
        rows = population == name
        out[str(name)] = {"n": int(rows.sum()), "sigma_nmad": round(sigma_nmad(z[rows], z_true[rows]), 4),
                          "outlier_fraction": round(outlier_fraction(z[rows], z_true[rows]), 4)}  # fmt: skip
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["v3", "v8", "default"])
    parser.add_argument("--root", default=None, help="folder with the real spectra (default ../shared/real)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--neighbours", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    torch.manual_seed(0)

    real = load_real_spectra(args.root)
    z_true = np.asarray(real.redshift, dtype=float)
    population = np.asarray(real.population)
    folds = fold_of(len(real), args.folds, args.seed)
    result = {
        "n_objects": len(real),
        "folds": args.folds,
        "neighbours": args.neighbours,
        "seed": args.seed,
        "median_guess": scores(median_guess(z_true, folds), z_true, population),
        "perfect_neighbours": scores(perfect_neighbours(z_true, folds, args.neighbours), z_true, population),
        "models": {},
        "command": "python benchmarks/real_knn.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    for name in args.models:
        start = time.perf_counter()
        embedder = MultimodalEmbedder.from_pretrained(name, device="cpu")
        embedded = embedder.embed(spectra=list(real.spectra))
        column = embedded.modality_names.index("PRISM")
        if not embedded.present[:, column].all():
            raise RuntimeError(f"{name}: {int((~embedded.present[:, column]).sum())} spectra were not embedded")
        result["models"][name] = {
            "fused": scores(cross_validated_knn(embedded.fused, z_true, folds, args.neighbours), z_true, population),
            "prism": scores(cross_validated_knn(embedded.modalities["PRISM"], z_true, folds, args.neighbours),
                            z_true, population),  # fmt: skip
            "head_layer1": scores(cross_validated_knn(head_first_layer(embedder, embedded.fused), z_true, folds,
                                                      args.neighbours), z_true, population),  # fmt: skip
        }
        if embedded.whitening is not None:
            result["models"][name]["fused_whitened"] = scores(
                cross_validated_knn(embedded.fused, z_true, folds, args.neighbours, embedded.whitening), z_true, population
            )
        result["models"][name]["seconds"] = round(time.perf_counter() - start, 2)

    print(f"{len(real)} real PRISM spectra, {args.folds}-fold cross-validated {args.neighbours}-NN redshift")
    print(f"{'model':12s} {'embedding':14s} {'sigma_NMAD':>10s} {'outliers':>9s}")
    guess = result["median_guess"]["all"]
    print(f"{'(median)':12s} {'--':14s} {guess['sigma_nmad']:10.4f} {guess['outlier_fraction']:9.1%}")
    floor = result["perfect_neighbours"]["all"]
    print(f"{'(true z)':12s} {'ln(1+z)':14s} {floor['sigma_nmad']:10.4f} {floor['outlier_fraction']:9.1%}")
    for name, entry in result["models"].items():
        for kind in ("fused", "fused_whitened", "prism", "head_layer1"):
            if kind not in entry:
                continue
            row = entry[kind]["all"]
            print(f"{name:12s} {kind:14s} {row['sigma_nmad']:10.4f} {row['outlier_fraction']:9.1%}")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "real_knn.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
