"""Does continued self-supervised training on a survey's own objects help? Before/after, held out.

Two experiments, each comparing the shipped default model ("before") with the same model after
``jwst-embed train --data FILE --init-from default`` on objects of the survey ("after"), and
scoring both only on objects the adaptation never saw:

``real``
    The 62 real PRISM spectra of ../shared/real/dev (Little Red Dots, DJA). They are split into
    ``--folds`` folds; for each fold the other folds are prepared (`jwst_embed.survey_file.prepare_survey`,
    *without* their redshifts) and the default model is adapted on them; the held-out fold is
    scored. The catalogue redshifts are used only to score: as the labels of the neighbours in
    the nearest-neighbour redshift and as the truth.
``mock``
    A mock survey with a shifted prior (``dusty_fraction`` 0.7 instead of the default 0.1: most
    star-forming galaxies at A_V 1.5-4, as the real Little Red Dots fit): the model is adapted on
    ``--mock-train`` objects (labels ignored: the supervised loss terms and the noiseless-spectrum
    decoder target are switched off) and scored on ``--mock-test`` others, with the adaptation
    objects' true redshifts as the neighbours' labels.

Scores on the held-out objects:

- masked-spectrum reconstruction: hide random 16-pixel patches of each observed spectrum (the
  model's own mask ratio, ``--masks`` draws per object, the same draws before and after), predict
  them with the spectrum encoder's masked-modelling output, and compare with linear
  interpolation across the hidden patches: chi^2 per hidden pixel against the observed flux and
  its error (1 is the noise floor);
- the 5-nearest-neighbour redshift from the fused embeddings (cosine similarity; neighbours
  from the adaptation objects; median of their redshifts): sigma_NMAD and outlier fraction;
- the model's own redshift head (``method="network"``) on the same embeddings, to show whether
  adaptation disturbs what the heads learnt.

Every number is printed by this script; results and a figure go to ``--out``; the last line is
JSON. The settings (steps, learning rate, batch) are fixed here before looking at the results
and are the same for every fold:

    python benchmarks/adaptation.py --json --out benchmarks/results
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from jwst_embed.metrics import outlier_fraction, sigma_nmad
from jwst_embed.models.serialization import load_model
from jwst_embed.preprocessing import Batch
from jwst_embed.training.data import (
    FileSource,
    IndexedSource,
    MixedSource,
    SurveySource,
    mix_counts,
)
from jwst_embed.weights import fetch_weights

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_data import default_real_root  # noqa: E402

N_NEIGHBORS = 5
#: The adapted models compared with the default model ("before"); see `adapt`.
VARIANTS = ("self-supervised", "mixed")


# ------------------------------------------------------------------------------ scoring
@torch.no_grad()
def score_model(model, batch: Batch, n_masks: int, seed: int, chunk: int = 64) -> dict:
    """Fused embeddings, head redshifts and masked-reconstruction chi^2 (model and interpolation).

    Returns arrays over the objects of ``batch``; the chi^2 columns are NaN for objects without
    a spectrum.
    """
    model.eval()
    n = len(batch)
    fused, z_head = [], []
    chi2_model, chi2_interp = np.full((n, n_masks), np.nan), np.full((n, n_masks), np.nan)
    for start in range(0, n, chunk):
        part = batch.index(torch.arange(start, min(n, start + chunk)))
        output = model(part, mask_inputs=False, modality_dropout=False, decode=False)
        fused.append(output.fused.float())
        z_head.append(model.heads["redshift"].predict(output.fused.float())["z_median"].float())
        column = part.modalities.index("PRISM")
        rows = torch.nonzero(part.present[:, column]).flatten()
        if rows.numel() == 0:
            continue
        flux = part.spectra["PRISM"].values[rows].double().numpy()
        ivar = part.spectra["PRISM"].ivar[rows].double().numpy()
        good = ~part.spectra["PRISM"].mask[rows].numpy() & (ivar > 0) & np.isfinite(flux)
        for draw in range(n_masks):
            generator = torch.Generator().manual_seed(seed * 1000 + draw)  # same masks before and after
            spectra_only = part.select(["PRISM"]).index(rows)
            masked = model(spectra_only, mask_inputs=True, generator=generator, modality_dropout=False, decode=False)
            r = masked.spectrum_reconstruction
            hidden = r.patch_mask[:, :, None].expand_as(r.prediction).reshape(len(rows), -1).numpy()
            predicted = model.spectrum_flux(r.prediction.float().reshape(len(rows), -1)).double().numpy()
            for i in range(len(rows)):
                scored = hidden[i] & good[i]
                visible = ~hidden[i] & good[i]
                if scored.sum() < 3 or visible.sum() < 2:
                    continue
                pixels = np.arange(flux.shape[1])
                interpolated = np.interp(pixels, pixels[visible], flux[i, visible])
                chi_model = (predicted[i] - flux[i]) ** 2 * ivar[i]
                chi_interp = (interpolated - flux[i]) ** 2 * ivar[i]
                chi2_model[start + rows[i].item(), draw] = chi_model[scored].mean()
                chi2_interp[start + rows[i].item(), draw] = chi_interp[scored].mean()
    embeddings = torch.nn.functional.normalize(torch.cat(fused), dim=1).numpy()
    return {
        "embedding": embeddings,
        "z_head": torch.cat(z_head).numpy(),
        "chi2_model": np.nanmean(chi2_model, axis=1),
        "chi2_interp": np.nanmean(chi2_interp, axis=1),
    }


def knn_predict(query: np.ndarray, reference: np.ndarray, z_reference: np.ndarray) -> np.ndarray:
    """Median redshift of the ``N_NEIGHBORS`` most similar reference objects (cosine)."""
    similarity = query @ reference.T
    nearest = np.argsort(-similarity, axis=1)[:, :N_NEIGHBORS]
    return np.median(z_reference[nearest], axis=1)


def summarise(z_knn, z_head, chi2_model, chi2_interp, z_true) -> dict:
    spectra = np.isfinite(chi2_model) & np.isfinite(chi2_interp)
    return {
        "n": int(len(z_true)),
        "knn_sigma_nmad": round(sigma_nmad(z_knn, z_true), 4),
        "knn_outlier_fraction": round(outlier_fraction(z_knn, z_true), 4),
        "head_sigma_nmad": round(sigma_nmad(z_head, z_true), 4),
        "head_outlier_fraction": round(outlier_fraction(z_head, z_true), 4),
        "masked_chi2_median": round(float(np.median(chi2_model[spectra])), 3),
        "masked_chi2_mean": round(float(np.mean(chi2_model[spectra])), 3),
        "interpolation_chi2_median": round(float(np.median(chi2_interp[spectra])), 3),
        "interpolation_chi2_mean": round(float(np.mean(chi2_interp[spectra])), 3),
        "model_beats_interpolation": round(float(np.mean(chi2_model[spectra] < chi2_interp[spectra])), 3),
    }


# ------------------------------------------------------------------------------ adaptation
def adapt(data, out_dir: Path, args, steps: int, seed: int, variant: str, source=None):
    """``jwst-embed train --data DATA --init-from default`` (as a library call); returns the model.

    ``variant`` ``"self-supervised"``: the survey's objects alone, supervised terms and the
    noiseless-spectrum target off. ``"mixed"``: half of every batch from the survey's objects
    (no labels), half from the labelled on-the-fly mock survey at its default prior (``--mix``),
    every loss term on, so that the heads keep being supervised on mocks. ``source`` replaces
    the batches that ``data`` would give (the mock experiment strips its file's labels).
    """
    from jwst_embed.training.data import MOCK_SURVEY
    from jwst_embed.training.pretrain import TrainConfig, Trainer

    if variant == "self-supervised":
        loss, mix = {"redshift": 0.0, "stellar_mass": 0.0, "morphology": 0.0, "decoder_noiseless": False}, None
    else:
        loss, mix = {}, [0.5, 0.5]
        data = [data, MOCK_SURVEY]
    if source is not None:
        mix = None  # the source is already mixed
    config = TrainConfig(data=data, mix=mix, init_from="default", preset="init", loss=loss, batch_size=args.batch_size,
                         max_steps=steps, lr=args.lr, warmup_steps=max(1, steps // 10), n_validation=0,
                         validate_every=0, checkpoint_every=0, log_every=max(1, steps // 10), seed=seed, device="cpu",
                         out_dir=str(out_dir))  # fmt: skip
    trainer = Trainer(config, source=source, progress=False)
    try:
        trainer.train()
    finally:
        trainer.close()
    return load_model(out_dir / "model.pt")


class WithoutLabels(IndexedSource):
    """A source's batches with their labels removed (mock objects standing in for a real survey)."""

    def __init__(self, source) -> None:
        self.source, self.batch_size = source, source.batch_size

    def batch(self, index: int, size=None):
        batch = self.source.batch(index)
        return Batch(images=batch.images, spectra=batch.spectra, present=batch.present, modalities=batch.modalities)

    def validation_batches(self, n_objects: int) -> list:
        return []


# ------------------------------------------------------------------------------ experiments
def real_experiment(args, workdir: Path) -> dict:
    from jwst_embed.survey_file import SurveyFile, prepare_survey

    root = Path(args.real_root) if args.real_root else default_real_root()
    with open(root / "dev" / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    paths = [root / "dev" / row["file"] for row in rows]
    z_true = np.array([float(row["z"]) for row in rows])
    if args.quick:
        paths, z_true = paths[:15], z_true[:15]
    everything = workdir / "real_all.h5"
    prepare_survey(paths, everything, progress=False)  # no labels
    survey = SurveyFile(everything)
    if len(survey) != len(paths):
        raise RuntimeError(f"{len(paths) - len(survey)} real spectra did not enter the file")
    batch = survey.read()
    folds = np.random.default_rng(args.seed).permutation(len(paths)) % args.folds
    before_model = load_model(fetch_weights("default"))
    before = score_model(before_model, batch, args.masks, args.seed)
    columns = {key: {name: np.full(len(paths), np.nan) for name in ("z_knn", "z_head", "chi2_model", "chi2_interp")}
               for key in ("before", *VARIANTS)}  # fmt: skip
    seconds = {variant: [] for variant in VARIANTS}
    for k in range(args.folds):
        test, train = np.flatnonzero(folds == k), np.flatnonzero(folds != k)
        fold_file = workdir / f"real_fold{k}.h5"
        prepare_survey([paths[i] for i in train], fold_file, progress=False)
        scores = {"before": before}
        for variant in VARIANTS:
            start = time.perf_counter()
            model = adapt(str(fold_file), workdir / f"real_run{k}_{variant}", args, args.real_steps, args.seed + k, variant)
            seconds[variant].append(time.perf_counter() - start)
            scores[variant] = score_model(model, batch, args.masks, args.seed)
            print(f"real fold {k}: {variant} adaptation on {len(train)} spectra in {seconds[variant][-1]:.0f} s", flush=True)
        for key, scored in scores.items():
            columns[key]["z_knn"][test] = knn_predict(scored["embedding"][test], scored["embedding"][train], z_true[train])
            for name in ("z_head", "chi2_model", "chi2_interp"):
                columns[key][name][test] = scored[name][test]
    result = {key: summarise(c["z_knn"], c["z_head"], c["chi2_model"], c["chi2_interp"], z_true)
              for key, c in columns.items()}  # fmt: skip
    result["median_knn"] = {"sigma_nmad": round(sigma_nmad(np.full_like(z_true, np.median(z_true)), z_true), 4),
                            "outlier_fraction": round(outlier_fraction(np.full_like(z_true, np.median(z_true)), z_true), 4)}  # fmt: skip
    result.update(n_objects=len(paths), folds=args.folds, steps=args.real_steps,
                  adapt_seconds_per_fold={v: round(float(np.mean(t)), 1) for v, t in seconds.items()})  # fmt: skip
    result["_columns"] = columns
    result["_z_true"] = z_true
    return result


def mock_experiment(args, workdir: Path) -> dict:
    from jwst_embed.simulation import MockSurvey, SurveyConfig
    from jwst_embed.simulation.catalogue import MockCatalogue, write_mock

    survey = MockSurvey(SurveyConfig(dusty_fraction=args.dusty_fraction))
    train_file, test_file = workdir / "mock_train.h5", workdir / "mock_test.h5"
    write_mock(train_file, survey, args.mock_train, seed=args.seed + 101, progress=False)
    write_mock(test_file, survey, args.mock_test, seed=args.seed + 202, progress=False)
    train_batch, test_batch = MockCatalogue(train_file).read(slice(None)), MockCatalogue(test_file).read(slice(None))
    z_train, z_test = train_batch.targets["redshift"].numpy(), test_batch.targets["redshift"].numpy()
    print(f"mock: {args.mock_train} + {args.mock_test} objects simulated", flush=True)
    models, seconds = {"before": load_model(fetch_weights("default"))}, {}
    for variant in VARIANTS:
        start = time.perf_counter()
        if variant == "mixed":
            survey_part, mock_part = mix_counts([0.5, 0.5], args.batch_size)
            source = MixedSource([WithoutLabels(FileSource(train_file, survey_part, args.seed)),
                                  SurveySource(MockSurvey(SurveyConfig()), mock_part, args.seed)])  # fmt: skip
            models[variant] = adapt(str(train_file), workdir / f"mock_run_{variant}", args, args.mock_steps, args.seed, variant, source)
        else:
            data_source = WithoutLabels(FileSource(train_file, args.batch_size, args.seed))
            models[variant] = adapt(str(train_file), workdir / f"mock_run_{variant}", args, args.mock_steps, args.seed, variant,
                                    data_source)
        seconds[variant] = round(time.perf_counter() - start, 1)
        print(f"mock: {variant} adaptation in {seconds[variant]:.0f} s", flush=True)
    result, columns = {}, {}
    for key, model in models.items():
        reference = score_model(model, train_batch, 1, args.seed)["embedding"]
        scored = score_model(model, test_batch, args.masks, args.seed)
        z_knn = knn_predict(scored["embedding"], reference, z_train)
        result[key] = summarise(z_knn, scored["z_head"], scored["chi2_model"], scored["chi2_interp"], z_test)
        columns[key] = {"z_knn": z_knn, "z_head": scored["z_head"]}
    result.update(n_train=args.mock_train, n_test=args.mock_test, dusty_fraction=args.dusty_fraction,
                  steps=args.mock_steps, adapt_seconds=seconds)  # fmt: skip
    result["_columns"], result["_z_true"] = columns, z_test
    return result


def figure(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    experiments = [name for name in ("real", "mock") if name in results]
    fig, axes = plt.subplots(len(experiments), 2, figsize=(9, 4.2 * len(experiments)), squeeze=False)
    for row, name in enumerate(experiments):
        result = results[name]
        z_true = result["_z_true"]
        ax = axes[row, 0]
        for key, colour in (("before", "0.5"), ("self-supervised", "C0"), ("mixed", "C3")):
            ax.scatter(z_true, result["_columns"][key]["z_knn"], s=9, color=colour,
                       label=f"{key}: sigma_NMAD {result[key]['knn_sigma_nmad']}, outliers {result[key]['knn_outlier_fraction']:.0%}")  # fmt: skip
        top = float(np.nanmax(z_true)) * 1.1
        ax.plot([0, top], [0, top], "k-", lw=0.6)
        ax.set(xlabel="catalogue / true redshift", ylabel="5-NN redshift from embeddings", title=f"{name}: held-out objects")
        ax.legend(fontsize=7, loc="upper left")
        ax = axes[row, 1]
        labels = ["interpolation", "default", "self-supervised", "mixed"]
        values = [result["before"]["interpolation_chi2_median"], result["before"]["masked_chi2_median"],
                  result["self-supervised"]["masked_chi2_median"], result["mixed"]["masked_chi2_median"]]  # fmt: skip
        ax.bar(labels, values, color=["0.7", "0.5", "C0", "C3"])
        ax.axhline(1.0, color="k", lw=0.6, ls="--")
        ax.set(ylabel="median chi^2 per hidden pixel", title=f"{name}: masked-spectrum reconstruction", yscale="log")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def rst_table(public: dict) -> str:
    """The results as reStructuredText tables (included by the docs tutorial)."""
    names = {"before": "default model", "self-supervised": "adapted, self-supervised", "mixed": "adapted, mixed with mocks"}
    lines = []
    for name, title in (("real", "62 real Little Red Dot spectra, 5 folds"), ("mock", "dustier mock survey, 1,000 held out")):
        if name not in public:
            continue
        lines += [f".. list-table:: {title}", "   :header-rows: 1", "",
                  "   * - model", "     - 5-NN z sigma_NMAD", "     - 5-NN z outliers", "     - head z sigma_NMAD",
                  "     - head z outliers", "     - masked chi^2 (median)", "     - interpolation chi^2",
                  "     - model beats interpolation"]  # fmt: skip
        for key in ("before", *VARIANTS):
            r = public[name][key]
            lines += [f"   * - {names[key]}", f"     - {r['knn_sigma_nmad']:.4f}", f"     - {r['knn_outlier_fraction']:.1%}",
                      f"     - {r['head_sigma_nmad']:.4f}", f"     - {r['head_outlier_fraction']:.1%}",
                      f"     - {r['masked_chi2_median']:.1f}", f"     - {r['interpolation_chi2_median']:.1f}",
                      f"     - {r['model_beats_interpolation']:.0%}"]  # fmt: skip
        lines.append("")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--experiments", nargs="+", default=["real", "mock"], choices=["real", "mock"])
    parser.add_argument("--real-root", default=None, help="folder with dev/manifest.csv (default ../shared/real)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--real-steps", type=int, default=100)
    parser.add_argument("--mock-train", type=int, default=3000)
    parser.add_argument("--mock-test", type=int, default=1000)
    parser.add_argument("--mock-steps", type=int, default=300)
    parser.add_argument("--dusty-fraction", type=float, default=0.7)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--masks", type=int, default=4, help="mask draws per held-out spectrum")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check the script runs")
    parser.add_argument("--out", default=None, help="folder for adaptation.json and adaptation.png")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON line last")
    parser.add_argument("--table-from", default=None, help="only rewrite adaptation.rst in --out from this JSON file")
    args = parser.parse_args(argv)
    if args.table_from:
        out = Path(args.out or Path(args.table_from).parent)
        (out / "adaptation.rst").write_text(rst_table(json.loads(Path(args.table_from).read_text())))
        return 0
    if args.quick:
        args.folds, args.real_steps, args.mock_train, args.mock_test, args.mock_steps, args.masks = 3, 2, 64, 32, 2, 1
    torch.manual_seed(args.seed)
    results: dict = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if "real" in args.experiments:
            results["real"] = real_experiment(args, Path(tmp))
        if "mock" in args.experiments:
            results["mock"] = mock_experiment(args, Path(tmp))
    public = {name: {k: v for k, v in result.items() if not k.startswith("_")} for name, result in results.items()}
    public["settings"] = {"batch_size": args.batch_size, "lr": args.lr, "masks": args.masks, "seed": args.seed,
                          "neighbors": N_NEIGHBORS, "device": "cpu", "torch_threads": torch.get_num_threads(),
                          "total_seconds": round(time.perf_counter() - start, 1)}  # fmt: skip
    for name in results:
        print(f"\n{name}: held-out objects (before = the default model; the adapted variants)")
        print(f"{'':16s} {'5-NN z NMAD':>12s} {'5-NN outl':>10s} {'head NMAD':>10s} {'head outl':>10s} "
              f"{'chi2 masked':>12s} {'chi2 interp':>12s} {'beats interp':>13s}")  # fmt: skip
        for key in ("before", *VARIANTS):
            r = public[name][key]
            print(f"{key:16s} {r['knn_sigma_nmad']:12.4f} {r['knn_outlier_fraction']:10.3f} {r['head_sigma_nmad']:10.4f} "
                  f"{r['head_outlier_fraction']:10.3f} {r['masked_chi2_median']:12.3f} {r['interpolation_chi2_median']:12.3f} "
                  f"{r['model_beats_interpolation']:13.3f}")  # fmt: skip
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "adaptation.json").write_text(json.dumps(public, indent=1) + "\n")
        (out / "adaptation.rst").write_text(rst_table(public))
        figure(results, out / "adaptation.png")
    if args.json:
        print(json.dumps(public))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
