"""How visible are the seams between the spectrum decoder's patches? (a check of `SpectrumRefiner`)

The decoder writes each 16-pixel patch of the PRISM grid from its own token, so a decoded
spectrum can jump where two patches meet. This script decodes mock galaxies of the refit's
validation stream (seed 525252, never the benchmark's test seed) with each model given and
measures, in asinh-stretched flux against the noiseless spectrum:

- ``seam_jump``: mean abs((d[i] - d[i-1]) - (t[i] - t[i-1])) over pixel pairs that straddle a
  patch edge (d decoded, t true);
- ``inner_jump``: the same over pixel pairs inside a patch;
- ``seam_ratio = seam_jump / inner_jump``: about 1 when the edges are no rougher than the rest.

It also reports the mean and median spectrum R^2 (in flux, as the benchmark defines it). The
models must share their encoders and fusion (e.g. a model and its decoder refit), since the
embeddings are computed once with the first::

    python benchmarks/decoder_seams.py jwst_embed/data/jwst_embed-default-v2.pt refined.pt --json

Prints one JSON object last.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

import numpy as np
import torch

from jwst_embed.preprocessing.stretch import SPECTRUM_SOFTENING_NJY
from jwst_embed.training.checkpoint import load_model
from jwst_embed.training.validation import spectrum_r2


def _refit_module():
    spec = importlib.util.spec_from_file_location("refit_heads", Path(__file__).with_name("refit_heads.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@torch.no_grad()
def seam_metrics(decoder, fused: torch.Tensor, truth: torch.Tensor, patch: int) -> dict:
    """Seam and inner jumps (stretched space) and R^2 (flux) of one decoder."""
    decoded = torch.cat([decoder(part) for part in torch.split(fused, 1000)])
    target = torch.asinh(truth / SPECTRUM_SOFTENING_NJY)
    error = (decoded[:, 1:] - decoded[:, :-1]) - (target[:, 1:] - target[:, :-1])
    seam = (torch.arange(1, decoded.shape[1]) % patch) == 0
    r2 = spectrum_r2(SPECTRUM_SOFTENING_NJY * torch.sinh(decoded), truth).numpy()
    r2 = r2[np.isfinite(r2)]
    seam_jump, inner_jump = float(error[:, seam].abs().mean()), float(error[:, ~seam].abs().mean())
    return {
        "seam_jump": round(seam_jump, 5),
        "inner_jump": round(inner_jump, 5),
        "seam_ratio": round(seam_jump / inner_jump, 3),
        "spec_r2": round(float(r2.mean()), 4),
        "spec_r2_median": round(float(np.median(r2)), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="model files sharing encoders and fusion")
    parser.add_argument("--n-objects", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    refit = _refit_module()
    first = load_model(args.models[0]).float().eval()
    data = refit.embed_stream(first, args.n_objects, refit.VALIDATION_SEED)
    results = {}
    for path in args.models:
        model = first if path == args.models[0] else load_model(path).float().eval()
        patch = model.config.spectrum_patch
        per_set = {}
        for name in ["all", *refit.INPUT_SETS]:
            rows = np.ones(len(data["input_set"]), bool) if name == "all" else data["input_set"] == name
            if rows.any():
                rows_t = torch.from_numpy(np.nonzero(rows)[0])
                per_set[name] = seam_metrics(model.spectrum_decoder, data["fused"][rows_t],
                                             data["spectrum_noiseless"][rows_t], patch)  # fmt: skip
        results[path] = per_set
        if not args.json:
            print(path, json.dumps(per_set["all"]))
    print(json.dumps({"seed": refit.VALIDATION_SEED, "n_objects": int(len(data["input_set"])), "models": results}))


if __name__ == "__main__":
    main()
