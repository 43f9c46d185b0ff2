"""Give a model file the whitening of its fused embeddings for similarity search (v9 from v8).

The fused embeddings of ``--n-objects`` mocks (the training stream of ``refit_heads.py``: seed
424242, six input sets from F150W alone to eight bands + PRISM, simulator of this checkout) are
made once with the model, and `jwst_embed.similarity.SimilarityWhitening` is fitted to them
(their mean, and the inverse square root of their covariance with eigenvalues floored at 1e-3 of
the largest). The output file holds the same weights, the same metadata plus a note, and the
whitening, which `MultimodalEmbedder.embed` hands to every result and the similarity search
applies. No real spectrum is involved.

It then checks the whitening on held-out mocks (the validation stream of ``refit_heads.py``, seed
525252): for up to 1,000 of them per input set, the median redshift of the 5 most similar
training mocks of the same input set, with plain and with whitened cosine similarity
(sigma_NMAD and outlier fraction). As in ``refit_heads.py``, an input set with images and PRISM
holds the ~30% of its mocks that were drawn without a spectrum (they have the images only). Prints one JSON line; ``--out DIR`` writes
``fit_similarity_whitening.json``.

Why: cosine similarity of the raw fused embeddings is dominated by their few directions of
largest variance; whitened, every direction the mock population varies in counts alike. On the
68 real spectra the cross-validated 5-NN redshift goes from sigma_NMAD 0.055 / 17.6% outliers to
0.040 / 11.8% (``real_knn.py``), and on held-out mocks (PRISM alone) from 0.037 / 15.4% to
0.020 / 12.1%.

    python benchmarks/fit_similarity_whitening.py --model v8 --output jwst_embed/data/jwst_embed-default-v9.pt \\
        --cache ~/.cache/jwst_embed_refit
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from jwst_embed.metrics import outlier_fraction, sigma_nmad
from jwst_embed.models.serialization import load_checkpoint, load_model, save_model
from jwst_embed.similarity import WHITENING_FLOOR, SimilarityWhitening, nearest_neighbors
from jwst_embed.weights import fetch_weights

sys.path.insert(0, str(Path(__file__).resolve().parent))
from refit_heads import INPUT_SETS, TRAIN_SEED, VALIDATION_SEED, cached_stream  # noqa: E402


def knn_redshift(train: dict, validation: dict, whitening, k: int = 5, n_queries: int = 1000) -> dict:
    """Per input set: 5-NN redshift of held-out mocks among training mocks of the same set.

    The neighbours are those of `jwst_embed.nearest_neighbors` with ``whitening`` (None: plain cosine).
    """
    out = {}
    for name in INPUT_SETS:
        reference = np.flatnonzero(train["input_set"] == name)
        queries = np.flatnonzero(validation["input_set"] == name)[:n_queries]
        nearest, _ = nearest_neighbors(validation["fused"].numpy()[queries], train["fused"].numpy()[reference],
                                       k=k, whitening=whitening)  # fmt: skip
        z = np.median(train["redshift"].numpy()[reference][nearest], axis=1)
        z_true = validation["redshift"].numpy()[queries]
        out[name] = {"n": int(len(queries)), "sigma_nmad": round(sigma_nmad(z, z_true), 4),
                     "outlier_fraction": round(outlier_fraction(z, z_true), 4)}  # fmt: skip
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default", help="registered name or model file")
    parser.add_argument("--output", required=True, help="model file to write")
    parser.add_argument("--n-objects", type=int, default=30000)
    parser.add_argument("--floor", type=float, default=WHITENING_FLOOR)
    parser.add_argument("--cache", default=None, help="folder for the embedded stream (see refit_heads.py)")
    parser.add_argument("--out", default=None, help="write fit_similarity_whitening.json here")
    parser.add_argument("--note", default="similarity whitening fitted by benchmarks/fit_similarity_whitening.py")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    path = str(fetch_weights(args.model))
    payload = load_checkpoint(path)
    model = load_model(path).eval()  # float32 modules, whatever the file stores
    stream = cached_stream(model, args.n_objects, TRAIN_SEED, args.cache, path)
    whitening = SimilarityWhitening.fit(stream["fused"].double().numpy(), floor=args.floor)
    metadata = dict(payload.get("metadata", {}))
    metadata["similarity_whitening"] = (f"{args.note}: {whitening.n_objects} mocks of seed {TRAIN_SEED}, "
                                        f"floor {whitening.floor:g}, from {Path(path).name}")  # fmt: skip
    validation = cached_stream(model, 6000, VALIDATION_SEED, args.cache, path)
    # the same weights, in the file's own precision (the shipped files are float16)
    stored = payload["state_dict"] if "state_dict" in payload else payload["model"]
    if all(value.dtype == torch.float16 for value in stored.values() if value.is_floating_point()):
        model = model.half()
    save_model(args.output, model, metadata, extras={"similarity_whitening": whitening.to_payload()})
    eigenvalues = np.linalg.eigvalsh(np.cov(stream["fused"].double().numpy(), rowvar=False))
    result = {"model": args.model, "output": args.output, "n_objects": whitening.n_objects, "floor": whitening.floor,
              "eigenvalues_floored": int((eigenvalues < args.floor * eigenvalues[-1]).sum()),
              "knn_redshift": {"plain": knn_redshift(stream, validation, None),
                               "whitened": knn_redshift(stream, validation, whitening)},
              "seconds": round(time.perf_counter() - start, 1),
              "command": "python benchmarks/fit_similarity_whitening.py " + " ".join(argv if argv is not None else sys.argv[1:])}  # fmt: skip
    print(f"{'input set':15s} {'plain':>16s} {'whitened':>16s}   (5-NN sigma_NMAD / outliers, held-out mocks)")
    for name in INPUT_SETS:
        plain, white = (result["knn_redshift"][kind][name] for kind in ("plain", "whitened"))
        print(f"{name:15s} {plain['sigma_nmad']:9.4f} / {plain['outlier_fraction']:4.1%} "
              f"{white['sigma_nmad']:9.4f} / {white['outlier_fraction']:4.1%}")  # fmt: skip
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "fit_similarity_whitening.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
