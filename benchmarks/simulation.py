"""Throughput of the mock JWST survey: objects per second, four NIRCam bands + PRISM.

Measures `MockSurvey.sample` on this CPU (always) and on CUDA (when a GPU is present), after a
warm-up batch, with the default configuration (F115W, F150W, F277W, F444W at 64x64 + a 512-pixel
PRISM spectrum, noisy and noiseless). Prints a table, then one JSON object as the last line.

    python benchmarks/simulation.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

from jwst_embed.simulation import MockSurvey, SurveyConfig


def measure(device: str, batch_size: int, n_batches: int) -> dict:
    survey = MockSurvey(SurveyConfig(), device=device)
    survey.sample(batch_size, seed=12345)  # warm-up: kernels, caches, tables
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for k in range(n_batches):
        sample = survey.sample(batch_size, seed=k)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    finite = all(torch.isfinite(v.float()).all().item() for v in sample.values() if v.is_floating_point())
    return {
        "device": device,
        "batch_size": batch_size,
        "objects": batch_size * n_batches,
        "seconds": elapsed,
        "objects_per_s": batch_size * n_batches / elapsed,
        "all_finite": bool(finite),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    parser.add_argument("--cpu-batch", type=int, default=256)
    parser.add_argument("--cpu-batches", type=int, default=8)
    parser.add_argument("--gpu-batch", type=int, default=16384)
    parser.add_argument("--gpu-batches", type=int, default=10)
    parser.add_argument("--skip-cpu", action="store_true", help="GPU only (for the device machine)")
    args = parser.parse_args()

    results = {"torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
               "cpu_threads": torch.get_num_threads(), "cpu_count": os.cpu_count()}
    rows = []
    if not args.skip_cpu:
        cpu = measure("cpu", args.cpu_batch, args.cpu_batches)
        rows.append(cpu)
        results["objects_per_s_cpu"] = round(cpu["objects_per_s"], 1)
        results["cpu_all_finite"] = cpu["all_finite"]
    if torch.cuda.is_available():
        gpu = measure("cuda", args.gpu_batch, args.gpu_batches)
        rows.append(gpu)
        results["objects_per_s_gpu"] = round(gpu["objects_per_s"], 1)
        results["gpu_name"] = torch.cuda.get_device_name(0)
        results["gpu_all_finite"] = gpu["all_finite"]
    if not args.json:
        print(f"{'device':8s} {'batch':>7s} {'objects':>8s} {'seconds':>8s} {'objects/s':>10s}")
        for row in rows:
            print(f"{row['device']:8s} {row['batch_size']:7d} {row['objects']:8d} {row['seconds']:8.2f} "
                  f"{row['objects_per_s']:10.1f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
