"""Throughput of the mock-image renderer: objects per second, four NIRCam bands at 64 x 64.

Times `ImageRenderer.render` (noiseless + noisy images, ivar, mask) on a mix of all six
morphology classes (`sample_structure`), after a warm-up batch: batch 256 on this CPU, and
batch 8192 on CUDA when a GPU is present. The best of ``--repeats`` timings is reported
(the machine may be shared: on 2 busy cores, ``--threads 1`` avoids OpenMP threads waiting
for each other). Prints a table, then one JSON object as the last line.

    python benchmarks/simulation_images.py --json
    python benchmarks/simulation_images.py --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

from jwst_embed.simulation.images import DEFAULT_RENDER_BANDS, ImageRenderer
from jwst_embed.simulation.morphology import sample_structure


def make_batch(batch_size: int, device: str, seed: int = 0) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """Structure, band fluxes (nJy) and depths (AB) of ``batch_size`` random objects."""
    generator = torch.Generator().manual_seed(seed)
    morphology = torch.randint(0, 6, (batch_size,), generator=generator)
    log_mass = 8.0 + 3.0 * torch.rand(batch_size, generator=generator)
    redshift = 0.3 + 8.0 * torch.rand(batch_size, generator=generator)
    structure = sample_structure(morphology, log_mass, redshift, generator)
    structure = {key: value.to(device) for key, value in structure.items()}
    n_bands = len(DEFAULT_RENDER_BANDS)
    band_flux = (10.0 + 200.0 * torch.rand((batch_size, n_bands), generator=generator)).to(device)
    depth_ab = torch.full((batch_size, n_bands), 29.0, device=device)
    return structure, band_flux, depth_ab


def measure(device: str, batch_size: int, n_batches: int, repeats: int, **renderer_kwargs) -> dict:
    renderer = ImageRenderer(device=device, **renderer_kwargs)
    structure, band_flux, depth_ab = make_batch(batch_size, device)
    generator = torch.Generator(device=device).manual_seed(1)

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    renderer.render(structure, band_flux, depth_ab, generator)  # warm-up: tables, kernels
    sync()
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n_batches):
            out = renderer.render(structure, band_flux, depth_ab, generator)
        sync()
        timings.append(time.perf_counter() - start)
    best = min(timings)
    return {
        "device": device,
        "batch_size": batch_size,
        "objects": batch_size * n_batches,
        "seconds_best": best,
        "seconds_all": timings,
        "objects_per_s": batch_size * n_batches / best,
        "all_finite": bool(torch.isfinite(out["images"]).all()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    parser.add_argument("--cpu-batch", type=int, default=256)
    parser.add_argument("--cpu-batches", type=int, default=4)
    parser.add_argument("--gpu-batch", type=int, default=8192)
    parser.add_argument("--gpu-batches", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3, help="timings per device; the best is reported")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--chunk-size", type=int, default=None, help="ImageRenderer chunk_size (default: its own)")
    parser.add_argument("--skip-cpu", action="store_true", help="GPU only")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    results = {"torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
               "cpu_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
               "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None}
    rows = []
    if not args.skip_cpu:
        rows.append(measure("cpu", args.cpu_batch, args.cpu_batches, args.repeats, chunk_size=args.chunk_size))
        results["render_objects_per_s_cpu"] = rows[-1]["objects_per_s"]
    if torch.cuda.is_available():
        rows.append(measure("cuda", args.gpu_batch, args.gpu_batches, args.repeats, chunk_size=args.chunk_size))
        results["render_objects_per_s_gpu"] = rows[-1]["objects_per_s"]
        results["gpu"] = torch.cuda.get_device_name()
    results["runs"] = rows
    if not args.json:
        print(f"{'device':>8} {'batch':>6} {'objects':>8} {'best s':>8} {'objects/s':>10}")
        for row in rows:
            print(f"{row['device']:>8} {row['batch_size']:>6} {row['objects']:>8} "
                  f"{row['seconds_best']:>8.3f} {row['objects_per_s']:>10.1f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
