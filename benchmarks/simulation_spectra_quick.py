"""Throughput of the mock PRISM spectrum simulator (SED model + instrument).

Usage: ``python benchmarks/simulation_spectra_quick.py [--batch 512] [--repeats 10]
[--device cpu] [--json]``. Prints a table, then (with ``--json``) a JSON object last.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from jwst_embed.simulation.prism import SpectrumSimulator, slit_throughput
from jwst_embed.simulation.sed import sample_sed_parameters
from jwst_embed.simulation.sps import load_library


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    device = torch.device(args.device)
    simulator = SpectrumSimulator(load_library(device=device), device=device)
    generator = torch.Generator(device=device).manual_seed(0)
    n = args.batch
    z = 0.2 + 14.8 * torch.rand(n, generator=generator, device=device)
    log_mass = 7.5 + 4.0 * torch.rand(n, generator=generator, device=device)
    star_forming = torch.rand(n, generator=generator, device=device) < 0.7
    params = sample_sed_parameters(z, log_mass, star_forming, generator)
    exposure = torch.full((n,), 1e4, device=device)
    throughput = slit_throughput(
        torch.full((n,), 0.1, device=device), torch.full((n,), 1.0, device=device)
    )

    def run():
        return simulator.simulate(params, exposure, throughput, generator, validate=False)

    for _ in range(2):  # warm-up
        run()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    cpu_start = time.process_time()
    for _ in range(args.repeats):
        run()
    if device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    # CPU seconds of this process: on a shared machine wall-clock includes other jobs
    cpu_seconds = time.process_time() - cpu_start
    rate = args.repeats * n / elapsed
    result = {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "batch": n,
        "spectra_per_second": round(rate, 1),
        "microseconds_per_spectrum": round(1e6 / rate, 2),
        "cpu_microseconds_per_spectrum": round(1e6 * cpu_seconds / (args.repeats * n), 2),
    }
    print(f"{'device':>8} {'threads':>8} {'batch':>6} {'spectra/s':>12} {'us/spectrum':>12}")
    print(f"{result['device']:>8} {result['threads']:>8} {n:>6} {rate:>12.1f} {1e6 / rate:>12.2f}")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
