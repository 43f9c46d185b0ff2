"""Train default model v4: v3 with a spectrum line reader, its fusion, heads and decoder retrained.

The script that ran the legs of v4 and v5 one at a time (with caching of pools and resumption);
`jwst_embed.training.recipes.train_default_model` is the library call that runs the whole
recipe, with the same pieces.

v3's image encoder, spectrum transformer and their projections are kept (frozen). Added: a
`~jwst_embed.models.SpectrumLineReader` whose position-keeping tokens join the spectrum's tokens
in the fusion, and a redshift head with 512 bins. Trained with the library's
`jwst_embed.training.downstream` on the mock survey (native-pixel PRISM noise, active nuclei and
dusty galaxies in the prior):

1. the line reader alone with a redshift head on its own tokens (``--line-reader-steps``);
2. a pool of ``--pool`` mock galaxies whose four NIRCam bands are encoded once by v3's image
   encoder (seed 424242), then the line reader, fusion, heads and decoder on it for ``--steps``
   steps, spectra re-noised every step, validated on 2,000 other pool galaxies (seed 424243).

Writes ``OUT/model.pt`` (float16, the shipped file), ``OUT/history.json`` and
``OUT/phase1.pt`` / ``OUT/pool.pt`` / ``OUT/validation_pool.pt`` (re-used when the script is run
again). ``--continue-phase2`` runs phase 2 again from ``OUT/model.pt`` (leg ``--leg``, default 2,
with ``--steps`` and ``--lr-scale``; the previous leg's file is kept as ``OUT/model_leg<N-1>.pt``
and the log goes to ``OUT/history_leg<N>.json``); ``--start-from FILE`` runs that leg from another
model file instead (e.g. the shipped v4 on a fresh machine, with a new ``--pool``).
``--max-seconds`` gives phase 2 a time budget (the learning-rate schedule follows it), and
``OUT/model.pt`` is rewritten at every validation, so a run cut short still leaves its model.
Prints one JSON object as the last line. Runs on a CPU (about an hour on two cores with
the defaults) or a GPU (``--device cuda``; see ``benchmarks/gpu_downstream_leg.sh``).

    python benchmarks/train_default_v4.py --out runs/default_v4
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from jwst_embed.models import MultimodalModel
from jwst_embed.simulation import MockSurvey, SurveyConfig
from jwst_embed.training.checkpoint import load_model, save_model
from jwst_embed.training.downstream import (
    DownstreamConfig,
    TokenPool,
    build_token_pool,
    evaluate_pool,
    train_downstream,
    train_line_reader,
)
from jwst_embed.training.recipes import (
    LINE_READER_FIELDS,
    POOL_SEED,
    VALIDATION_SEED,
    add_line_reader,
    half_precision_copy,
)

V3 = Path(__file__).resolve().parents[1] / "jwst_embed" / "data" / "jwst_embed-default-v3.pt"
V4_FIELDS = LINE_READER_FIELDS


def v4_from_v3(path: Path) -> MultimodalModel:
    """v3's weights in a model with a line reader and a 512-bin redshift head (both new)."""
    return add_line_reader(load_model(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/default_v4"))
    parser.add_argument("--init", type=Path, default=V3, help="the v3 model file")
    parser.add_argument("--line-reader-steps", type=int, default=6000)
    parser.add_argument("--pool", type=int, default=30000)
    parser.add_argument("--validation", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--continue-phase2", action="store_true",
                        help="start phase 2 again from OUT/model.pt (a second leg; history in history_leg2.json)")
    parser.add_argument("--lr-scale", type=float, default=1.0, help="scale both phase-2 learning rates")
    parser.add_argument("--leg", type=int, default=2, help="number of the leg --continue-phase2 runs (2, 3, ...)")
    parser.add_argument("--start-from", type=Path, default=None,
                        help="with --continue-phase2: the model file to start from (default OUT/model.pt)")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="time budget of phase 2 (its learning-rate schedule follows the budget)")
    parser.add_argument("--deadline-seconds", type=float, default=None,
                        help="phase 2 stops this many seconds after the script started, less 20 s for the final scores")
    parser.add_argument("--validate-every", type=int, default=1000)
    parser.add_argument("--pool-batch", type=int, default=256, help="objects simulated and encoded at once for the pools")
    parser.add_argument("--no-save-pools", action="store_true", help="do not write the pools to OUT (large)")
    args = parser.parse_args()
    script_start = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    device = torch.device(args.device)
    if device.type == "cuda":
        # TF32 matrix products: ample precision for training, several times faster on recent GPUs
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    config = DownstreamConfig(line_reader_steps=args.line_reader_steps, steps=args.steps, batch_size=args.batch_size)
    config.lr_new *= args.lr_scale
    config.lr_pretrained *= args.lr_scale
    timings = {}

    phase1 = args.out / "phase1.pt"
    leg_number = args.leg if args.continue_phase2 else 1
    if args.continue_phase2 and args.leg < 2:
        parser.error(f"--leg must be >= 2 with --continue-phase2, got {args.leg}")
    if args.start_from is not None and not args.continue_phase2:
        parser.error("--start-from needs --continue-phase2")
    leg = f"_leg{leg_number}" if args.continue_phase2 else ""
    if args.continue_phase2:
        start_file = args.start_from or args.out / "model.pt"
        model = load_model(start_file)
        model = (model[0] if isinstance(model, tuple) else model).float()
        phase1_log = args.out / "history_phase1.json"
        history1 = json.loads(phase1_log.read_text()) if phase1_log.exists() else []
        if args.start_from is None:
            (args.out / f"model_leg{leg_number - 1}.pt").write_bytes(start_file.read_bytes())
    elif phase1.exists():
        model = load_model(phase1)
        model = model[0] if isinstance(model, tuple) else model
        history1 = json.loads((args.out / "history_phase1.json").read_text())
    else:
        model = v4_from_v3(args.init)
        start = time.perf_counter()
        spectra_only = MockSurvey(SurveyConfig(bands=()), device=device)
        history1 = train_line_reader(model.to(device), spectra_only, config, progress=args.progress)
        timings["line_reader_s"] = round(time.perf_counter() - start, 1)
        save_model(phase1, model.cpu(), {"phase": 1, "steps": args.line_reader_steps})
        (args.out / "history_phase1.json").write_text(json.dumps(history1))
    model = model.to(device)

    survey = MockSurvey(SurveyConfig(), device=device)
    pools = {}
    for name, size, seed in (("pool", args.pool, POOL_SEED), ("validation_pool", args.validation, VALIDATION_SEED)):
        path = args.out / f"{name}.pt"
        if path.exists():
            pools[name] = TokenPool.load(path)
            continue
        start = time.perf_counter()
        pools[name] = build_token_pool(model, survey, size, seed=seed, batch_size=args.pool_batch, progress=args.progress)
        timings[f"{name}_s"] = round(time.perf_counter() - start, 1)
        print(f"{name}: {size} objects in {timings[f'{name}_s']} s", flush=True)
        if not args.no_save_pools:
            pools[name].save(path)
    instrument = survey.spectrum_simulator.instrument
    before = evaluate_pool(model, pools["validation_pool"], instrument, config)
    print("validation before phase 2:", json.dumps(before), flush=True)
    metadata = {
        "trained_from": (args.start_from or args.init).name, "fields": V4_FIELDS, "downstream": config.to_dict(),
        "pool": args.pool, "pool_seed": POOL_SEED, "validation_seed": VALIDATION_SEED,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else str(device),
        "timings": timings, "leg": leg_number, "lr_scale": args.lr_scale,
    }  # fmt: skip

    def checkpoint(step: int, scores: dict) -> None:
        print(f"step {step}: " + json.dumps(scores), flush=True)
        save_model(args.out / "model.pt", half_precision_copy(model), {**metadata, "step": step})

    budget = args.max_seconds
    if args.deadline_seconds is not None:
        left = args.deadline_seconds - (time.perf_counter() - script_start) - 20.0
        budget = left if budget is None else min(budget, left)
        print(f"phase 2 time budget: {budget:.0f} s", flush=True)
    start = time.perf_counter()
    history2 = train_downstream(
        model, pools["pool"], instrument, config, validation=pools["validation_pool"],
        validate_every=args.validate_every, progress=args.progress,
        reset_heads=() if args.continue_phase2 else ("redshift",), max_seconds=budget, on_validation=checkpoint,
    )  # fmt: skip
    timings["downstream_s"] = round(time.perf_counter() - start, 1)
    metadata["steps_done"] = max((record["step"] for record in history2), default=0)
    after = evaluate_pool(model, pools["validation_pool"], instrument, config)
    save_model(args.out / "model.pt", half_precision_copy(model), metadata)
    record = {"validation_before_phase2": before, "validation": after, **metadata}
    (args.out / f"history{leg}.json").write_text(json.dumps({"phase1": history1, "phase2": history2, **record}, indent=1))
    print(json.dumps(record))


if __name__ == "__main__":
    main()
