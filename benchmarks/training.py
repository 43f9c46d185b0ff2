"""Pretraining throughput: training samples per second of the ``small`` model.

Runs `jwst_embed.training.pretrain.Trainer` (masked inputs, the full pretraining loss,
AdamW) for a few warm-up steps and then times a few more, with the data made on the
training device as in real runs: from the mock survey simulator when it can run here
(its stellar-population library is installed), otherwise from `SyntheticSource` (the
JSON says which). On this CPU: fp32, batch 32. On CUDA when present: bf16 autocast,
batch 256. Prints a table, then one JSON object as the last line.

    python benchmarks/training.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

from jwst_embed.training.pretrain import SurveySource, SyntheticSource, TrainConfig, Trainer


def make_source(batch_size: int, device: str, force_synthetic: bool):
    """The survey simulator if it runs here, else synthetic galaxies; and its name."""
    if not force_synthetic:
        try:
            from jwst_embed.simulation.survey import MockSurvey

            survey = MockSurvey(device=device)
            source = SurveySource(survey, batch_size, seed=0)
            source.batch(0, size=2)  # fails early if the library or a simulator part is missing
            return source, "mock survey simulator"
        except Exception as error:  # noqa: BLE001 - any failure means: fall back, and say why
            print(f"simulator unavailable ({type(error).__name__}: {error}); using synthetic data")
    return SyntheticSource(batch_size, seed=0, device=device), "synthetic"


def measure(device: str, preset: str, batch_size: int, warmup: int, steps: int, precision: str,
            force_synthetic: bool, compile_model: bool = False) -> dict:  # fmt: skip
    source, data = make_source(batch_size, device, force_synthetic)
    config = TrainConfig(
        preset=preset, batch_size=batch_size, max_steps=warmup + steps, warmup_steps=warmup, device=device,
        precision=precision, validate_every=0, checkpoint_every=0, out_dir=None, compile=compile_model,
    )  # fmt: skip
    trainer = Trainer(config, source=source, progress=False)
    trainer.train(until_step=warmup)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    history = trainer.train()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    n_parameters = sum(p.numel() for p in trainer.model.parameters())
    return {
        "device": device, "preset": preset, "parameters": n_parameters, "batch_size": batch_size,
        "precision": trainer.precision, "data": data, "steps": steps, "seconds": elapsed,
        "samples_per_s": batch_size * steps / elapsed, "final_loss": history[-1]["loss"],
        "compile": compile_model,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print only the JSON object")
    parser.add_argument("--preset", default="small")
    parser.add_argument("--cpu-batch", type=int, default=32)
    parser.add_argument("--cpu-warmup", type=int, default=2)
    parser.add_argument("--cpu-steps", type=int, default=5)
    parser.add_argument("--gpu-batch", type=int, default=256)
    parser.add_argument("--gpu-warmup", type=int, default=5)
    parser.add_argument("--gpu-steps", type=int, default=20)
    parser.add_argument("--synthetic", action="store_true", help="synthetic data even if the simulator works")
    parser.add_argument("--skip-cpu", action="store_true", help="GPU only (for the device machine)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile on the GPU")
    args = parser.parse_args()

    results = {"torch": str(torch.__version__), "cpu": platform.processor() or platform.machine(),
               "cpu_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "preset": args.preset}  # fmt: skip
    rows = []
    if not args.skip_cpu:
        cpu = measure("cpu", args.preset, args.cpu_batch, args.cpu_warmup, args.cpu_steps, "fp32", args.synthetic)
        rows.append(cpu)
        results.update(samples_per_s_cpu=cpu["samples_per_s"], data_cpu=cpu["data"], cpu_batch=args.cpu_batch)
    if torch.cuda.is_available():
        gpu = measure("cuda", args.preset, args.gpu_batch, args.gpu_warmup, args.gpu_steps, "bf16", args.synthetic)
        rows.append(gpu)
        results.update(samples_per_s_gpu=gpu["samples_per_s"], data_gpu=gpu["data"], gpu_batch=args.gpu_batch,
                       gpu_name=torch.cuda.get_device_name(0))  # fmt: skip
        if args.compile:
            compiled = measure("cuda", args.preset, args.gpu_batch, args.gpu_warmup, args.gpu_steps, "bf16",
                               args.synthetic, compile_model=True)  # fmt: skip
            rows.append(compiled)
            results["samples_per_s_gpu_compiled"] = compiled["samples_per_s"]
    results["runs"] = rows
    if not args.json:
        print(f"{'device':8} {'preset':6} {'params':>9} {'batch':>5} {'prec':5} {'samples/s':>10}  data")
        for row in rows:
            print(f"{row['device']:8} {row['preset']:6} {row['parameters']:9d} {row['batch_size']:5d} "
                  f"{row['precision']:5} {row['samples_per_s']:10.1f}  {row['data']}{' (compiled)' if row['compile'] else ''}")  # fmt: skip
    print(json.dumps(results))


if __name__ == "__main__":
    main()
