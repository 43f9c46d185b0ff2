"""Embedding throughput: objects per second for F150W + PRISM.

Two paths are timed on the chosen device:

- ``prepared``: the model's forward pass on prepared `~jwst_embed.preprocessing.Batch`
  tensors (mock galaxies already on the model grids), as in a pipeline that keeps its
  data as arrays; bf16 autocast on CUDA, float32 on CPU.
- ``astropy``: `~jwst_embed.embedder.MultimodalEmbedder.embed` from astropy ``NDData``
  cutouts and specutils ``Spectrum`` objects, preprocessing (resampling, unit
  conversion, masks) included, as a user calls it. Needs specutils; skipped with
  ``--skip-astropy``.

The mock galaxies come from the survey simulator (seed 777, never used in training).

    python benchmarks/embedding_throughput.py --model path/to/model.pt --json
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

BANDS = ("F150W",)


def _mock(n_objects: int, device: str):
    from jwst_embed.simulation.survey import MockSurvey, SurveyConfig, batch_generator

    config = SurveyConfig(bands=list(BANDS), spectrum_fraction=1.0)
    survey = MockSurvey(config, device=device)
    sample = survey.sample(n_objects, generator=batch_generator(777, 0, survey.device))
    return survey, sample


def _load(model_path: str | None, preset: str, device: str):
    from jwst_embed.models import ModelConfig, MultimodalModel
    from jwst_embed.training.checkpoint import load_model

    model = load_model(model_path) if model_path else MultimodalModel(ModelConfig.preset(preset))
    return model.float().to(device).eval()


def time_prepared(model, survey, sample, batch_size: int, repeats: int) -> dict:
    """Objects/s of the forward pass on prepared batches (after one warm-up pass)."""
    device = next(model.parameters()).device
    batch = survey.to_batch(sample).to(device)
    n = len(batch)
    chunks = [batch.index(torch.arange(s, min(s + batch_size, n), device=device)) for s in range(0, n, batch_size)]
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

    def run() -> None:
        with torch.no_grad(), autocast:
            for chunk in chunks:
                model(chunk, mask_inputs=False, modality_dropout=False)
        if device.type == "cuda":
            torch.cuda.synchronize()

    run()
    start = time.perf_counter()
    for _ in range(repeats):
        run()
    elapsed = (time.perf_counter() - start) / repeats
    return {"objects": n, "batch_size": batch_size, "seconds": elapsed, "objects_per_s": n / elapsed,
            "precision": "bf16" if device.type == "cuda" else "fp32"}  # fmt: skip


def time_astropy(model, survey, sample, batch_size: int) -> dict:
    """Objects/s of `MultimodalEmbedder.embed` from astropy objects (preprocessing included)."""
    from jwst_embed.embedder import MultimodalEmbedder
    from jwst_embed.simulation.export import sample_to_astropy

    device = next(model.parameters()).device
    images, spectra, _ = sample_to_astropy(sample, survey.config)
    embedder = MultimodalEmbedder(model, device=device)
    n = len(spectra)
    embedder.embed(images={b: images[b][:batch_size] for b in BANDS}, spectra=spectra[:batch_size], batch_size=batch_size)
    start = time.perf_counter()
    embedder.embed(images={b: images[b] for b in BANDS}, spectra=spectra, batch_size=batch_size)
    elapsed = time.perf_counter() - start
    return {"objects": n, "batch_size": batch_size, "seconds": elapsed, "objects_per_s": n / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model file (default: an untrained model of --preset)")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n-objects", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-astropy", action="store_true")
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    args = parser.parse_args()

    device = torch.device(args.device)
    model = _load(args.model, args.preset, args.device)
    survey, sample = _mock(args.n_objects, args.device)
    result = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch_threads": torch.get_num_threads(),
        "modalities": "F150W + PRISM",
        "parameters": sum(p.numel() for p in model.parameters()),
        "prepared": time_prepared(model, survey, sample, args.batch_size, args.repeats),
    }
    if not args.skip_astropy:
        cpu_sample = {k: (v.cpu() if torch.is_tensor(v) else v) for k, v in sample.items()}
        result["astropy"] = time_astropy(model, survey, cpu_sample, args.batch_size)
    if not args.json:
        for key in ("prepared", "astropy"):
            if key in result:
                print(f"{key:>9}: {result[key]['objects_per_s']:.1f} objects/s ({result[key]['objects']} objects)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
