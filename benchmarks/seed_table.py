"""The seed table: morphology, spectra, redshift and stellar mass of the default model, with baselines.

Everything is measured on a held-out mock survey simulated here (seed 990001, never used in
training, which drew its batches from ``batch_generator(0, k)``): ``--n-test`` objects (default
10,000) with F115W, F150W, F277W, F444W images and a PRISM spectrum each. Stages:

1. simulate the test set (and a separate labelled training pool, seed 990002, F150W + PRISM);
2. the default model (``MultimodalEmbedder.from_pretrained("default")``, its heads) on five input
   sets: F150W; PRISM; F150W + PRISM (the reference setting); four bands; four bands + PRISM.
   Each object's modalities are encoded once and the fusion is run per input set (the encoders see
   one modality at a time and the fusion masks absent tokens, so this equals ``Batch.select``; the
   script checks it on the first chunk);
3. baselines on the same objects: template fit of the PRISM spectra (a random subset), pixel kNN
   on F150W + PRISM pixels trained on the labelled pool, and "labels only vs pretrained" at 1,000
   and 10,000 labels (same architecture from scratch for a fixed CPU time; pretrained backbone
   frozen with re-initialised heads; then pretrained end to end, starting from those heads);
4. throughput: CPU objects/s (prepared arrays and astropy objects) measured here, and the H100
   numbers recorded in ``benchmarks/results/pretrain_h100_default``.

Writes ``benchmarks/results/seed_table.json``, ``seed_table.rst`` and ``seed_table_*.png``; prints
a table, then one JSON object as the last line.

    python benchmarks/seed_table.py --json          # the full table (~20-30 min on 2 CPU cores)
    python benchmarks/seed_table.py --quick         # smoke test (~2 min)
"""

from __future__ import annotations

import argparse
import copy
import csv
import importlib.util
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from jwst_embed.evaluation import (
    binned_metrics,
    mass_scatter,
    morphology_f1,
    pit_values,
    redshift_metrics,
    spectrum_r2,
    summarise_r2,
)
from jwst_embed.models.heads import MORPHOLOGY_CLASSES
from jwst_embed.reconstruction import match_amplitude
from jwst_embed.similarity import nearest_neighbors

RESULTS = Path(__file__).resolve().parent / "results"
H100_DIR = RESULTS / "pretrain_h100_default"
TEST_SEED, TRAIN_SEED = 990001, 990002
ALL_BANDS = ("F115W", "F150W", "F277W", "F444W")
INPUT_SETS = {
    "F150W": ("F150W",),
    "PRISM": ("PRISM",),
    "F150W+PRISM": ("F150W", "PRISM"),
    "4 bands": ALL_BANDS,
    "4 bands+PRISM": (*ALL_BANDS, "PRISM"),
}
REFERENCE_SET = "F150W+PRISM"
#: Reference numbers (F150W + PRISM, a paper on real JWST data), for the table only.
REFERENCE = {"morph_f1_macro": 0.93, "spec_r2": 0.89, "z_sigma_nmad": 0.13, "logm_sigma": 0.32}
Z_BINS = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 16.0)
SNR_BINS = (0.0, 1.0, 3.0, 10.0, 30.0, 1e9)
COMMAND = "python benchmarks/seed_table.py --json"
MULTITASK_NOTE = (
    "The pretrained backbone was trained jointly with prediction heads on the simulator's labels "
    "(redshift, log mass, morphology) besides its self-supervised losses (multi-task pretraining on "
    "simulations). 'pretrained' vs 'from scratch' therefore measures pretraining on labelled "
    "simulations, not self-supervision alone; the re-initialised heads still sit on an embedding "
    "that was shaped by those labels."
)


class Stages:
    """Wall-clock time of each stage, printed as it goes."""

    def __init__(self, verbose: bool) -> None:
        self.times: dict[str, float] = {}
        self.verbose = verbose
        self._start = time.perf_counter()

    def __call__(self, name: str):
        stages = self

        class _Stage:
            def __enter__(self):
                self.start = time.perf_counter()
                if stages.verbose:
                    print(f"[stage] {name} ...", file=sys.stderr, flush=True)

            def __exit__(self, *exc):
                elapsed = time.perf_counter() - self.start
                stages.times[name] = round(stages.times.get(name, 0.0) + elapsed, 2)
                if stages.verbose:
                    print(f"[stage] {name}: {elapsed:.1f} s", file=sys.stderr, flush=True)

        return _Stage()

    @property
    def total(self) -> float:
        return time.perf_counter() - self._start


# ------------------------------------------------------------------------------------ data
def simulate(bands, n_objects: int, seed: int, chunk: int, progress: bool):
    """Simulate ``n_objects`` in chunks; return a collated Batch and the per-object spectral S/N."""
    from tqdm.auto import tqdm

    from jwst_embed.preprocessing import Batch
    from jwst_embed.simulation.survey import MockSurvey, SurveyConfig, batch_generator

    survey = MockSurvey(SurveyConfig(bands=tuple(bands), spectrum_fraction=1.0), device="cpu")
    batches, snr = [], []
    with tqdm(total=n_objects, desc=f"simulate seed {seed}", unit="object", disable=not progress) as bar:
        for index, start in enumerate(range(0, n_objects, chunk)):
            size = min(chunk, n_objects - start)
            sample = survey.sample(size, generator=batch_generator(seed, index, "cpu"))
            # median S/N per pixel of the noiseless spectrum: separates bright from faint objects
            snr.append(np.median((sample["spectrum_noiseless"] * sample["spectrum_ivar"].sqrt()).numpy(), axis=1))
            batches.append(survey.to_batch(sample))
            del sample
            bar.update(size)
    return Batch.collate(batches), np.concatenate(snr)


def _chunks(n: int, size: int):
    for start in range(0, n, size):
        yield torch.arange(start, min(start + size, n))


def _reinit(module: torch.nn.Module) -> torch.nn.Module:
    for layer in module.modules():
        if hasattr(layer, "reset_parameters") and layer is not module:
            layer.reset_parameters()
    return module


# ------------------------------------------------------------------------------------ model evaluation
@torch.no_grad()
def run_input_sets(model, batch, input_sets: dict, batch_size: int, progress: bool, keep_examples: int = 6):
    """Head predictions and spectrum reconstructions of ``model`` for each input set of ``batch``."""
    from tqdm.auto import tqdm

    from jwst_embed.preprocessing.stretch import SPECTRUM_SOFTENING_NJY

    model.eval()
    heads = model.heads
    edges = torch.expm1(heads["redshift"].log1pz_edges).numpy()
    keys = ("z", "z16", "z84", "pit", "pdf", "logm", "logm_sigma", "morph", "r2_flux", "r2_stretched", "r2_matched",
            "usable")  # fmt: skip
    out = {name: {key: [] for key in keys} | {"fused": [], "examples": []} for name in input_sets}
    checked = False
    for rows in tqdm(list(_chunks(len(batch), batch_size)), desc="default model", disable=not progress):
        chunk = batch.index(rows)
        output = model(chunk, mask_inputs=False, modality_dropout=False)
        modalities = tuple(output.modalities)
        stacked = torch.stack([output.tokens[name] for name in modalities], dim=1)
        truth = chunk.targets["spectrum_noiseless"].double()
        truth_stretched = torch.asinh(truth / SPECTRUM_SOFTENING_NJY)
        z_true = chunk.targets["redshift"].numpy()
        for name, inputs in input_sets.items():
            wanted = torch.tensor([m in inputs for m in modalities])
            present = output.present & wanted[None, :]
            usable = present.any(dim=1)
            fused = torch.zeros(len(rows), model.config.latent_dim)
            decoded = torch.zeros(len(rows), model.config.spectrum_length)
            if usable.any():
                fused_u = model.fuse(stacked[usable], present[usable], output.token_padding)
                fused[usable] = fused_u
                decoded[usable] = model.spectrum_decoder(fused_u).float()
            if not checked and name == REFERENCE_SET:
                # The shortcut (encode once, fuse per subset) must equal embedding the selected modalities.
                direct = model(chunk.select(list(inputs)), mask_inputs=False, modality_dropout=False).fused
                difference = float((direct - fused).abs().max())
                if difference > 1e-4:
                    raise RuntimeError(f"subset fusion differs from Batch.select by {difference}")
                checked = True
            z = heads["redshift"].predict(fused)
            mass = heads["log_mass"].predict(fused)
            morph = heads["morphology"].predict(fused)
            rec = decoded.double()
            record = out[name]
            record["z"].append(z["z_point"].numpy())
            record["z16"].append(z["z_16"].numpy())
            record["z84"].append(z["z_84"].numpy())
            record["pit"].append(pit_values(z["pdf"].numpy(), edges, z_true))
            if "PRISM" in inputs:  # kept for the joint network x template redshift
                record["pdf"].append(z["pdf"].numpy().astype(np.float32))
            record["logm"].append(mass["log_mass"].numpy())
            record["logm_sigma"].append(mass["log_mass_sigma"].numpy())
            record["morph"].append(morph["label"].numpy())
            record["r2_flux"].append(spectrum_r2((SPECTRUM_SOFTENING_NJY * torch.sinh(rec)).numpy(), truth.numpy()))
            record["r2_stretched"].append(spectrum_r2(rec.numpy(), truth_stretched.numpy()))
            # as reconstruct_spectrum returns it: at the observed spectrum's flux level where one is given
            decoded_njy = (SPECTRUM_SOFTENING_NJY * torch.sinh(rec)).numpy()
            if "PRISM" in inputs and "PRISM" in chunk.spectra:
                prism = chunk.spectra["PRISM"]
                absent = ~present[:, modalities.index("PRISM"), None].numpy()
                decoded_njy = decoded_njy * match_amplitude(decoded_njy, prism.values.double().numpy(),
                                                            prism.ivar.double().numpy(), prism.mask.numpy() | absent)[:, None]  # fmt: skip
            record["r2_matched"].append(spectrum_r2(decoded_njy, truth.numpy()))
            record["usable"].append(usable.numpy())
            record["fused"].append(fused.numpy())
            if sum(len(e) for e in record["examples"]) < keep_examples:
                record["examples"].append((SPECTRUM_SOFTENING_NJY * torch.sinh(rec[:keep_examples])).numpy())
    result = {}
    for name, record in out.items():
        result[name] = {
            key: np.concatenate(values) for key, values in record.items() if values and key != "examples"
        }
        result[name]["examples"] = np.concatenate(record["examples"])[:keep_examples]
        for key in ("z", "z16", "z84", "pit", "logm", "r2_flux", "r2_stretched", "r2_matched"):
            result[name][key] = np.where(result[name]["usable"], result[name][key], np.nan)
    return result


def similarity_knn(fused: np.ndarray, z_true: np.ndarray, whitening, k: int = 5) -> dict:
    """5-NN redshift as the package's similarity search finds neighbours (second half among the first).

    Each object of the second half gets the median redshift of its ``k`` most similar objects of
    the first half, by `jwst_embed.nearest_neighbors` with ``whitening`` (None: plain cosine).
    """
    half = len(z_true) // 2
    nearest, _ = nearest_neighbors(fused[half:], fused[:half], k=k, whitening=whitening)
    z = np.median(z_true[:half][nearest], axis=1)
    scores = redshift_metrics(z, z_true[half:])
    return {"sigma_nmad": scores["sigma_nmad"], "outlier_frac": scores["outlier_frac"], "n": int(len(z))}


def metrics_of(pred: dict, labels: dict, snr: np.ndarray, rows=None) -> dict:
    """The metric block of one input set (optionally on a subset of rows)."""
    select = (lambda a: a) if rows is None else (lambda a: np.asarray(a)[rows])
    z_true, m_true, c_true = (select(labels[k]) for k in ("z", "logm", "morph"))
    snr = select(snr)
    z, z16, z84, pit = (select(pred[k]) for k in ("z", "z16", "z84", "pit"))
    usable = select(pred["usable"]).astype(bool)
    zm = redshift_metrics(z, z_true, z16, z84, pit=pit)
    mm = mass_scatter(select(pred["logm"]), m_true)
    cm = morphology_f1(c_true[usable], select(pred["morph"])[usable])
    r2f, r2s = summarise_r2(select(pred["r2_flux"])), summarise_r2(select(pred["r2_stretched"]))
    r2m = summarise_r2(select(pred["r2_matched"]))
    return {
        "n": int(usable.sum()),
        "morph_f1_macro": cm["f1_macro"],
        "morph_accuracy": cm["accuracy"],
        "morph_f1_per_class": cm["f1_per_class"],
        "morph_confusion": cm["confusion"],
        "spec_r2": r2f["mean"],
        "spec_r2_median": r2f["median"],
        "spec_r2_stretched": r2s["mean"],
        "spec_r2_stretched_median": r2s["median"],
        "spec_r2_flux_matched": r2m["mean"],
        "spec_r2_flux_matched_median": r2m["median"],
        "z_sigma_nmad": zm["sigma_nmad"],
        "z_outlier_frac": zm["outlier_frac"],
        "z_bias": zm["bias"],
        "z_coverage_68": zm["coverage_68"],
        "z_pit_mean": zm["pit_mean"],
        "z_pit_extreme_frac": zm["pit_extreme_frac"],
        "z_pit_histogram": np.histogram(pit[np.isfinite(pit)], bins=10, range=(0, 1))[0].tolist(),
        "logm_sigma": mm["std"],
        "logm_nmad": mm["nmad"],
        "logm_bias": mm["bias"],
        "z_sigma_nmad_snr_ge10": redshift_metrics(z[snr >= 10], z_true[snr >= 10])["sigma_nmad"] if (snr >= 10).any() else None,
        "z_outlier_frac_snr_ge10": redshift_metrics(z[snr >= 10], z_true[snr >= 10])["outlier_frac"] if (snr >= 10).any() else None,
        "by_redshift": binned_metrics(z_true, Z_BINS, z, z_true, select(pred["logm"]), m_true),
        "by_spectrum_snr": binned_metrics(snr, SNR_BINS, z, z_true, select(pred["logm"]), m_true),
    }


def point_metrics(z=None, logm=None, morph=None, labels=None, rows=None) -> dict:
    """Metrics of a baseline's point predictions on ``rows`` of the test labels."""
    take = (lambda a: np.asarray(a)) if rows is None else (lambda a: np.asarray(a)[rows])
    result = {}
    if z is not None:
        zm = redshift_metrics(z, take(labels["z"]))
        result.update(z_sigma_nmad=zm["sigma_nmad"], z_outlier_frac=zm["outlier_frac"], z_bias=zm["bias"])
    if logm is not None:
        mm = mass_scatter(logm, take(labels["logm"]))
        result.update(logm_sigma=mm["std"], logm_nmad=mm["nmad"])
    if morph is not None:
        cm = morphology_f1(take(labels["morph"]), morph)
        result.update(morph_f1_macro=cm["f1_macro"], morph_f1_per_class=cm["f1_per_class"])
    return result


# ------------------------------------------------------------------------------------ labels only vs pretrained
def _supervised_loss(model_heads, fused, targets):
    from jwst_embed.training.losses import supervised_loss

    total = fused.new_zeros(())
    for head, key in (("redshift", "redshift"), ("log_mass", "log_mass"), ("morphology", "morphology")):
        loss = supervised_loss(model_heads[head], fused, targets[key])
        if loss is not None:
            total = total + loss
    return total


def train_end_to_end(model, pool, n_labels: int, seconds: float, lr: float, batch_size: int = 64,
                     head_lr: float | None = None, seed: int = 0) -> dict:  # fmt: skip
    """Train ``model`` (backbone and heads) on the first ``n_labels`` of ``pool`` for ``seconds``."""
    rng = np.random.default_rng(seed)
    head_params = list(model.heads.parameters())
    head_ids = {id(p) for p in head_params}
    groups = [{"params": [p for p in model.parameters() if id(p) not in head_ids], "lr": lr},
              {"params": head_params, "lr": head_lr or lr}]  # fmt: skip
    optimizer = torch.optim.AdamW(groups, weight_decay=1e-4)
    model.train()
    steps = samples = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        rows = torch.from_numpy(rng.choice(n_labels, size=min(batch_size, n_labels), replace=False))
        batch = pool.index(rows)
        output = model(batch, mask_inputs=False, modality_dropout=False)
        loss = _supervised_loss(model.heads, output.fused, batch.targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        steps += 1
        samples += len(rows)
    elapsed = time.perf_counter() - start
    model.eval()
    return {"steps": steps, "samples": samples, "seconds": round(elapsed, 1),
            "epochs": round(samples / n_labels, 2), "samples_per_s": samples / elapsed}  # fmt: skip


def train_frozen_heads(heads, embeddings, targets, steps: int, lr: float = 1e-3, batch_size: int = 256,
                       seed: int = 0) -> dict:  # fmt: skip
    """Train (re-initialised) heads on fixed embeddings."""
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.AdamW(heads.parameters(), lr=lr, weight_decay=1e-4)
    heads.train()
    n = embeddings.shape[0]
    start = time.perf_counter()
    for _ in range(steps):
        rows = torch.from_numpy(rng.choice(n, size=min(batch_size, n), replace=False))
        loss = _supervised_loss(heads, embeddings[rows], {k: v[rows] for k, v in targets.items()})
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    heads.eval()
    return {"steps": steps, "seconds": round(time.perf_counter() - start, 1), "epochs": round(steps * batch_size / n, 1)}


@torch.no_grad()
def head_predictions(heads, fused: torch.Tensor) -> dict:
    return {
        "z": heads["redshift"].predict(fused)["z_point"].numpy(),
        "logm": heads["log_mass"].predict(fused)["log_mass"].numpy(),
        "morph": heads["morphology"].predict(fused)["label"].numpy(),
    }


@torch.no_grad()
def fused_of(model, batch, batch_size: int = 256) -> torch.Tensor:
    model.eval()
    return torch.cat([model(batch.index(rows), mask_inputs=False, modality_dropout=False).fused
                      for rows in _chunks(len(batch), batch_size)])  # fmt: skip


# ------------------------------------------------------------------------------------ throughput
def _load_throughput_module():
    path = Path(__file__).resolve().parent / "embedding_throughput.py"
    spec = importlib.util.spec_from_file_location("embedding_throughput", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure_throughput(model, n_objects: int) -> dict:
    module = _load_throughput_module()
    survey, sample = module._mock(n_objects, "cpu")
    result = {
        "device": platform.processor() or platform.machine() or "cpu",
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "modalities": "F150W + PRISM",
        "precision": "fp32",
        "prepared": module.time_prepared(model, survey, sample, batch_size=64, repeats=1),
    }
    try:
        result["astropy"] = module.time_astropy(model, survey, sample, batch_size=64)
    except ImportError as error:  # specutils missing: the prepared number still stands
        result["astropy"] = {"skipped": str(error)}
    return result


def recorded_gpu_numbers() -> dict:
    """The H100 numbers recorded by the pretraining session (benchmarks/results/pretrain_h100_default)."""
    result: dict = {"source": str(H100_DIR.relative_to(RESULTS.parent.parent))}
    gpu_txt = H100_DIR / "gpu.txt"
    if gpu_txt.is_file():
        lines = [line for line in gpu_txt.read_text().splitlines() if line.strip()]
        result["card"] = lines[-1].split(",")[0].strip()
    for path in sorted(H100_DIR.glob("embedding_throughput_bs*.json")):
        record = json.loads(path.read_text())
        prepared = record.get("prepared", {})
        result[f"embedding_{path.stem.split('_')[-1]}"] = {
            "objects_per_s": prepared.get("objects_per_s"), "batch_size": prepared.get("batch_size"),
            "precision": prepared.get("precision"), "modalities": record.get("modalities"),
            "device": record.get("device"),
        }  # fmt: skip
    metrics = H100_DIR / "metrics.csv"
    if metrics.is_file():
        with metrics.open() as handle:
            rates = [float(row["samples_per_s"]) for row in csv.DictReader(handle) if row.get("samples_per_s")]
        if rates:
            steady = rates[len(rates) // 10 :] or rates  # skip the warm-up steps
            result["training_samples_per_s_median"] = float(np.median(steady))
            result["training_note"] = ("full pretraining step (self-supervised + supervised losses), "
                                       "8 bands + PRISM on-the-fly mock survey, configs/pretrain_gpu_h100.toml")  # fmt: skip
    return result


# ------------------------------------------------------------------------------------ figures
def make_figures(pred_ref, labels, batch, description: str, pred_sets: dict, prefix: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from jwst_embed.preprocessing import SpectralGrid

    written = []
    prefix.parent.mkdir(parents=True, exist_ok=True)
    z_true, m_true = labels["z"], labels["logm"]

    def save(fig, name):
        path = prefix.parent / f"{prefix.name}_{name}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        try:
            written.append(str(path.relative_to(RESULTS.parent.parent)))
        except ValueError:  # written outside the repository (e.g. --quick)
            written.append(str(path))

    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    ok = np.isfinite(pred_ref["z"])
    axes[0].hexbin(z_true[ok], pred_ref["z"][ok], gridsize=70, bins="log", cmap="viridis", extent=(0, 15, 0, 15))
    axes[0].plot([0, 15], [0, 15], "w--", lw=1)
    axes[0].set(xlabel="true z", ylabel="predicted z (PDF median, in its most probable peak)")
    ok = np.isfinite(pred_ref["logm"])
    axes[1].hexbin(m_true[ok], pred_ref["logm"][ok], gridsize=60, bins="log", cmap="viridis")
    lims = [m_true.min(), m_true.max()]
    axes[1].plot(lims, lims, "w--", lw=1)
    axes[1].set(xlabel="true log M*/Msun", ylabel="predicted log M*/Msun")
    fig.suptitle(f"Redshift and stellar mass, {description}", fontsize=10)
    save(fig, "z_mass")

    confusion = np.zeros((len(MORPHOLOGY_CLASSES),) * 2)
    np.add.at(confusion, (labels["morph"], pred_ref["morph"]), 1)
    fraction = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(fraction, cmap="Blues", vmin=0, vmax=1)
    for i in range(fraction.shape[0]):
        for j in range(fraction.shape[1]):
            ax.text(j, i, f"{fraction[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if fraction[i, j] > 0.5 else "black")  # fmt: skip
    ax.set_xticks(range(len(MORPHOLOGY_CLASSES)), MORPHOLOGY_CLASSES, rotation=30, ha="right")
    ax.set_yticks(range(len(MORPHOLOGY_CLASSES)), MORPHOLOGY_CLASSES)
    ax.set(xlabel="predicted", ylabel="true")
    ax.set_title(f"Morphology confusion (row-normalised)\n{description}", fontsize=9)
    save(fig, "confusion")

    wavelength = SpectralGrid(n_pixels=batch["PRISM"].values.shape[1]).wavelength.to_value("um")
    n_show = min(4, len(pred_ref["examples"]))
    fig, axes = plt.subplots(n_show, 1, figsize=(9, 2.3 * n_show), sharex=True, squeeze=False)
    for k in range(n_show):
        ax = axes[k, 0]
        observed = batch["PRISM"].values[k].numpy()
        ax.plot(wavelength, observed, color="0.75", lw=0.6, label="observed (noisy)")
        ax.plot(wavelength, batch.targets["spectrum_noiseless"][k].numpy(), "k", lw=1.0, label="noiseless truth")
        ax.plot(wavelength, pred_ref["examples"][k], "C3", lw=1.0, label="decoded: F150W+PRISM")
        if "F150W" in pred_sets:
            ax.plot(wavelength, pred_sets["F150W"]["examples"][k], "C0", lw=1.0, label="decoded: F150W only")
        ax.set_ylabel("f_nu [nJy]")
        ax.text(0.01, 0.85, f"z = {z_true[k]:.2f}, R2 = {pred_ref['r2_flux'][k]:.2f}", transform=ax.transAxes, fontsize=8)
    axes[0, 0].legend(fontsize=7, ncol=4, loc="upper right")
    axes[-1, 0].set_xlabel("wavelength [um]")
    fig.suptitle(f"Reconstructed PRISM spectra, {description}", fontsize=10)
    save(fig, "spectra")

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, pred in pred_sets.items():
        pit = pred["pit"][np.isfinite(pred["pit"])]
        ax.hist(pit, bins=20, range=(0, 1), histtype="step", density=True, label=name, lw=1.3)
    ax.axhline(1.0, color="k", ls=":", lw=1)
    ax.set(xlabel="PIT = CDF(z_true)", ylabel="density")
    ax.legend(fontsize=8)
    ax.set_title(f"Redshift PIT (uniform = calibrated)\n{description.replace(REFERENCE_SET + ', ', '')}", fontsize=9)
    save(fig, "pit")
    return written


# ------------------------------------------------------------------------------------ RST
def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "--"
    if value != 0 and abs(value) < 0.001:
        return f"{value:.1e}"  # e.g. a template fit's sigma_NMAD of 4e-4 would read 0.000
    if value != 0 and abs(value) < 0.01:
        return f"{value:.4f}"
    return f"{value:.{digits}f}"


def make_rst(result: dict) -> str:
    """The seed table as an RST snippet (numbers from ``result``; the test compares README to this)."""
    sets = result["input_sets"]
    ref, four = sets[REFERENCE_SET], sets["4 bands+PRISM"]
    base = result["baselines"]
    tf = base.get("template_fit", {})
    knn = base.get("pixel_knn", {})
    rows = [
        ("Morphology macro-F1", "morph_f1_macro", REFERENCE["morph_f1_macro"]),
        ("Spectrum R^2 (flux, mean)", "spec_r2", REFERENCE["spec_r2"]),
        ("Spectrum R^2 (flux, median)", "spec_r2_median", None),
        ("Spectrum R^2 (asinh-stretched, mean)", "spec_r2_stretched", None),
        ("Spectrum R^2 (flux-matched, mean) [3]", "spec_r2_flux_matched", None),
        ("Spectrum R^2 (flux-matched, median) [3]", "spec_r2_flux_matched_median", None),
        ("Redshift sigma_NMAD", "z_sigma_nmad", REFERENCE["z_sigma_nmad"]),
        ("Redshift outlier fraction", "z_outlier_frac", None),
        ("Redshift 68% coverage", "z_coverage_68", None),
        ("log M* scatter (std, dex)", "logm_sigma", REFERENCE["logm_sigma"]),
        ("log M* scatter (NMAD, dex)", "logm_nmad", None),
    ]
    prism = sets["PRISM"]
    auto = ref.get("auto_same_subset", {})
    header = ("Metric", "Reference [1]", "F150W+PRISM", "F150W+PRISM auto [2]", "PRISM", "4 bands+PRISM",
              "Template fit", "Pixel kNN")  # fmt: skip
    body = []
    for label, key, reference in rows:
        body.append((label, _fmt(reference, 2) if reference is not None else "--", _fmt(ref.get(key)),
                     _fmt(auto.get(key)) if key.startswith("z_") else "--", _fmt(prism.get(key)),
                     _fmt(four.get(key)), _fmt(tf.get(key)), _fmt(knn.get(key))))  # fmt: skip
    key = "z_sigma_nmad_snr_ge10"
    body.append(("Redshift sigma_NMAD, S/N >= 10", "--", _fmt(ref.get(key)), _fmt(auto.get(key)),
                 _fmt(prism.get(key)), _fmt(four.get(key)), "--", "--"))  # fmt: skip
    if "knn5_search_z_sigma_nmad" in ref:
        for label, key in (("5-NN redshift sigma_NMAD [4]", "knn5_search_z_sigma_nmad"),
                           ("5-NN redshift outlier fraction [4]", "knn5_search_z_outlier_frac")):
            body.append((label, "--", _fmt(ref.get(key)), "--", _fmt(prism.get(key)), _fmt(four.get(key)), "--", "--"))
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]
    line = " ".join("=" * w for w in widths)

    def fmt_row(r):
        return " ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()

    test = result["test_set"]
    knn_note = ""
    if "knn5_search_z_sigma_nmad" in ref:
        how = "after the model's similarity whitening" if ref.get("knn5_whitened") else "plain cosine similarity"
        knn_note = ("[4] What similarity search finds: each object of the second half of the test set gets the "
                    "median redshift of its 5 most similar objects of the first half (``jwst_embed.nearest_neighbors``, "
                    f"{how}). ")  # fmt: skip
    lines = [
        line, fmt_row(header), line, *(fmt_row(r) for r in body), line, "",
        f"Mock JWST survey, seed {test['seed']}, {test['n_objects']:,} held-out objects; model "
        f"``{result['model']['name']}`` ({result['model']['preset']}, {result['model']['parameters'] / 1e6:.1f}M parameters). "
        f"Template fit on {tf.get('n', 0):,} random test objects' PRISM spectra ({_fmt(tf.get('s_per_object'), 3)} s/object); "
        f"pixel kNN trained on {knn.get('n_train', 0):,} objects (seed {TRAIN_SEED}) from F150W+PRISM pixels. "
        f"[1] F150W + PRISM on real JWST data (published); the mock numbers are not directly comparable. "
        f"[2] ``predict_redshift(method='auto')``: the network's p(z) times the PRISM template likelihood, on the "
        f"template-fit objects ({_fmt(auto.get('s_per_object'), 3)} s/object besides the network, "
        f"{_fmt(100 * auto.get('cost_fraction_of_template_fit', float('nan')), 3)}% of the template fit). "
        f"[3] As ``reconstruct_spectrum`` returns it: the decoded spectrum scaled to the flux level of the given "
        f"PRISM spectrum (``jwst_embed.reconstruction.match_amplitude``); the rows above are the decoder's own. "
        f"S/N: median per pixel of the noiseless spectrum against its noise. "
        f"{knn_note}"
        f"Regenerate with ``{COMMAND}``.",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------ main
def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="no progress bars; the JSON object is printed last")
    parser.add_argument("--quick", action="store_true", help="smoke test: 300 objects, tiny time budgets")
    parser.add_argument("--n-test", type=int, default=10_000)
    parser.add_argument("--n-train", type=int, default=10_000, help="labelled pool (kNN, labels-only runs)")
    parser.add_argument("--n-template", type=int, default=1_000, help="test objects for the template fit / subset runs")
    parser.add_argument("--label-sizes", default="1000,10000")
    parser.add_argument("--scratch-seconds", type=float, default=300.0)
    parser.add_argument("--n-eval-trained", type=int, default=1_000,
                        help="test objects (from the template-fit subset) the networks trained here are scored on")
    parser.add_argument("--rst-from", default=None, metavar="JSON",
                        help="only rewrite the .rst snippet and print the table from an existing result file")
    parser.add_argument("--e2e-seconds", type=float, default=60.0, help="0 skips the pretrained end-to-end run")
    parser.add_argument("--frozen-steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--chunk", type=int, default=500, help="objects simulated per chunk")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default="default")
    parser.add_argument("--output", default=None,
                        help="JSON path (default benchmarks/results/seed_table.json; with --quick a temporary folder)")
    parser.add_argument("--no-figures", action="store_true")
    parser.add_argument("--no-label-runs", action="store_true",
                        help="skip the labels-only vs pretrained runs (e.g. to score another model quickly)")
    args = parser.parse_args(argv)
    if args.rst_from:
        result = json.loads(Path(args.rst_from).read_text())
        Path(args.rst_from).with_suffix(".rst").write_text(make_rst(result))
        print_table(result)
        print(json.dumps(result))
        return result
    if args.quick:
        args.n_test, args.n_train, args.n_template, args.n_eval_trained = 300, 300, 100, 100
        args.label_sizes, args.scratch_seconds, args.e2e_seconds, args.frozen_steps = "100,300", 5.0, 5.0, 50
    if args.output is None:
        import tempfile

        quick_dir = Path(tempfile.gettempdir()) / "jwst_embed_seed_table_quick"
        args.output = str((quick_dir if args.quick else RESULTS) / "seed_table.json")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    progress = not args.json
    stages = Stages(verbose=True)
    label_sizes = [min(int(s), args.n_train) for s in args.label_sizes.split(",")]

    from jwst_embed.embedder import MultimodalEmbedder
    from jwst_embed.models import ModelConfig, MultimodalModel

    embedder = MultimodalEmbedder.from_pretrained(args.model, device="cpu")
    model = embedder.model.float().eval()
    n_parameters = sum(p.numel() for p in model.parameters())

    with stages("simulate test set"):
        test, snr = simulate(ALL_BANDS, args.n_test, TEST_SEED, args.chunk, progress)
    labels = {
        "z": test.targets["redshift"].numpy().astype(np.float64),
        "logm": test.targets["log_mass"].numpy().astype(np.float64),
        "morph": test.targets["morphology"].numpy().astype(np.int64),
    }
    with stages("default model, 5 input sets"):
        predictions = run_input_sets(model, test, INPUT_SETS, args.batch_size, progress)
    input_sets = {name: metrics_of(pred, labels, snr) for name, pred in predictions.items()}
    for name in INPUT_SETS:
        if "PRISM" not in INPUT_SETS[name]:
            input_sets[name]["spec_r2_note"] = "decoded from the images alone (no spectrum given)"
    # what the similarity search finds: neighbours after the model's whitening (plain cosine too)
    for name, pred in predictions.items():
        rows = pred["usable"].astype(bool)  # objects with an input of the set (all, in this test set)
        whitened = similarity_knn(pred["fused"][rows], labels["z"][rows], embedder.similarity_whitening)
        plain = similarity_knn(pred["fused"][rows], labels["z"][rows], None)
        input_sets[name].update(knn5_search_z_sigma_nmad=whitened["sigma_nmad"],
                                knn5_search_z_outlier_frac=whitened["outlier_frac"],
                                knn5_plain_z_sigma_nmad=plain["sigma_nmad"], knn5_plain_z_outlier_frac=plain["outlier_frac"],
                                knn5_whitened=embedder.similarity_whitening is not None)  # fmt: skip
    images_alone = input_sets["F150W"]
    input_sets[REFERENCE_SET]["spec_r2_from_F150W_alone"] = images_alone["spec_r2"]
    input_sets[REFERENCE_SET]["spec_r2_from_F150W_alone_median"] = images_alone["spec_r2_median"]

    rng = np.random.default_rng(0)
    subset = np.sort(rng.choice(args.n_test, size=min(args.n_template, args.n_test), replace=False))
    baselines: dict = {}

    with stages("template fit"):
        from jwst_embed.baselines import TemplateFitter

        fitter = TemplateFitter()
        prism = test["PRISM"]
        start = time.perf_counter()
        table = fitter.fit(prism.values[subset], prism.ivar[subset], prism.mask[subset], progress=progress)
        fit_s = time.perf_counter() - start
        z_fit = np.asarray(table["z"], dtype=np.float64)
        template = point_metrics(z=z_fit, labels=labels, rows=subset)
        template.update(
            n=int(subset.size), s_per_object=fit_s / subset.size,
            z_coverage_68=float(np.mean((labels["z"][subset] >= np.asarray(table["z_lo"]))
                                        & (labels["z"][subset] <= np.asarray(table["z_hi"])))),
            subset=f"{subset.size} test objects drawn with numpy default_rng(0).choice(n_test, replace=False)",
            inputs="PRISM (noisy, as observed), model grid",
        )  # fmt: skip
        for name in ("PRISM", REFERENCE_SET):
            template[f"model_{name}_same_subset"] = {
                k: v for k, v in metrics_of(predictions[name], labels, snr, subset).items()
                if k in ("z_sigma_nmad", "z_outlier_frac", "z_sigma_nmad_snr_ge10")
            }  # fmt: skip
        baselines["template_fit"] = template

    with stages("joint network x template redshift (auto)"):
        from jwst_embed.redshift.joint import joint_redshift

        edges = model.heads["redshift"].log1pz_edges.numpy().astype(np.float64)
        for name in ("PRISM", REFERENCE_SET):
            start = time.perf_counter()
            result = joint_redshift(predictions[name]["pdf"][subset], edges, prism.values[subset],
                                    prism.ivar[subset], prism.mask[subset], fitter)  # fmt: skip
            joint_s = time.perf_counter() - start
            joint = point_metrics(z=result.z, labels=labels, rows=subset)
            keep = snr[subset] >= 10
            joint.update(
                n=int(subset.size), s_per_object=joint_s / subset.size,
                cost_fraction_of_template_fit=joint_s / fit_s,
                z_coverage_68=float(np.mean((labels["z"][subset] >= result.z_lo) & (labels["z"][subset] <= result.z_hi))),
                z_sigma_nmad_snr_ge10=redshift_metrics(result.z[keep], labels["z"][subset][keep])["sigma_nmad"],
                clean_fraction=float(np.mean(result.z_flag == 0)),
                inputs=f"{name}: the network's p(z) from {name} times the PRISM template likelihood",
                note="the network's forward pass is not in s_per_object (it is the input set's own cost)",
            )  # fmt: skip
            input_sets[name]["auto_same_subset"] = joint

    with stages("simulate labelled pool"):
        pool, _ = simulate(("F150W",), args.n_train, TRAIN_SEED, args.chunk, progress)
    pool_targets = {k: pool.targets[k] for k in ("redshift", "log_mass", "morphology")}

    with stages("pixel kNN"):
        from jwst_embed.baselines import PixelKNN

        features = ("F150W", "PRISM")
        knn_z = PixelKNN(task="regression", modalities=features).fit(pool, np.log1p(pool_targets["redshift"].numpy()))
        knn_m = PixelKNN(task="regression", modalities=features).fit(pool, pool_targets["log_mass"].numpy())
        knn_c = PixelKNN(task="classification", modalities=features).fit(pool, pool_targets["morphology"].numpy())
        test_ref = test.select(list(features))
        knn = point_metrics(
            z=np.expm1(knn_z.predict(test_ref)), logm=knn_m.predict(test_ref), morph=knn_c.predict(test_ref),
            labels=labels,
        )  # fmt: skip
        knn.update(n=args.n_test, n_train=args.n_train, train_seed=TRAIN_SEED, inputs="F150W + PRISM stretched pixels",
                   settings="k=10, distance-weighted, PCA 64; redshift regressed in log(1+z)")  # fmt: skip
        baselines["pixel_knn"] = knn

    pool_ref = pool.select(["F150W", "PRISM"])
    # Networks trained here are scored on part of the template-fit subset: a full-set pass costs minutes each.
    eval_rows = subset[: min(args.n_eval_trained, subset.size)]
    test_subset = test.select(["F150W", "PRISM"]).index(torch.from_numpy(eval_rows))
    default_on_eval = {k: predictions[REFERENCE_SET][k][eval_rows] for k in ("z", "logm", "morph")}
    labels_runs: dict = {
        "note": MULTITASK_NOTE,
        "inputs": "F150W + PRISM",
        "train_pool": f"mock seed {TRAIN_SEED}, first n_labels objects",
        "evaluated_on": f"the first {eval_rows.size} objects of the template-fit subset ('same_subset'; "
                        "frozen heads also on the full test set)",
        "default_model_heads_same_subset": point_metrics(**default_on_eval, labels=labels, rows=eval_rows),
    }
    if args.no_label_runs:
        labels_runs["note"] = "skipped (--no-label-runs)"
        label_sizes = []
    with stages("frozen pretrained backbone, new heads"):
        pool_fused = fused_of(model, pool_ref, args.batch_size) if label_sizes else None
        test_fused = torch.from_numpy(predictions[REFERENCE_SET]["fused"])
        frozen_heads = {}
        for n_labels in label_sizes:
            heads = _reinit(copy.deepcopy(model.heads))
            frozen_heads[n_labels] = heads
            info = train_frozen_heads(heads, pool_fused[:n_labels], {k: v[:n_labels] for k, v in pool_targets.items()},
                                      args.frozen_steps)  # fmt: skip
            run = point_metrics(**head_predictions(heads, test_fused), labels=labels)
            run_subset = point_metrics(**head_predictions(heads, test_fused[eval_rows]), labels=labels, rows=eval_rows)
            labels_runs[f"pretrained_frozen_{n_labels}"] = {**run, "same_subset": run_subset, "training": info}
    for n_labels in label_sizes:
        with stages(f"from scratch, {n_labels} labels"):
            # the default model's architecture (line reader included), its heads freshly initialised
            scratch = MultimodalModel(ModelConfig.from_dict({**model.config.to_dict(), "custom_heads": {}}))
            info = train_end_to_end(scratch, pool_ref, n_labels, args.scratch_seconds, lr=3e-4)
            run = point_metrics(**head_predictions(scratch.heads, fused_of(scratch, test_subset)), labels=labels, rows=eval_rows)
            labels_runs[f"scratch_{n_labels}"] = {**run, "training": info}
            del scratch
        if args.e2e_seconds > 0:
            with stages(f"pretrained end to end, {n_labels} labels"):
                # Linear probe, then fine-tune (LP-FT): start from the heads trained on the frozen
                # backbone above, so that the first steps of random heads do not disturb the backbone.
                tuned = copy.deepcopy(model)
                tuned.heads.load_state_dict(frozen_heads[n_labels].state_dict())
                info = train_end_to_end(tuned, pool_ref, n_labels, args.e2e_seconds, lr=3e-5, head_lr=1e-3)
                run = point_metrics(**head_predictions(tuned.heads, fused_of(tuned, test_subset)), labels=labels, rows=eval_rows)
                labels_runs[f"pretrained_end_to_end_{n_labels}"] = {**run, "training": info}
                del tuned
    baselines["labels_only_vs_pretrained"] = labels_runs

    with stages("throughput"):
        cpu = measure_throughput(model, 128 if args.quick else 512)
        scratch_rates = [v["training"]["samples_per_s"] for k, v in labels_runs.items() if k.startswith("scratch_")]
        throughput = {
            "cpu": cpu,
            "cpu_training_samples_per_s": float(np.mean(scratch_rates)) if scratch_rates else None,
            "cpu_training_note": "supervised-only training steps of the small model, F150W + PRISM, batch 64, "
                                 f"{args.threads} threads (the from-scratch runs above)",
            "gpu_recorded": recorded_gpu_numbers(),
        }  # fmt: skip

    description = f"mock seed {TEST_SEED}, {args.n_test:,} objects, {REFERENCE_SET}, model {args.model} (small)"
    figures = []
    if not args.no_figures:
        with stages("figures"):
            prefix = Path(args.output).with_suffix("")
            figures = make_figures(predictions[REFERENCE_SET], labels, test, description,
                                   {k: predictions[k] for k in INPUT_SETS}, prefix)  # fmt: skip

    ref = input_sets[REFERENCE_SET]
    result = {
        "morph_f1_macro": ref["morph_f1_macro"],
        "spec_r2": ref["spec_r2"],
        "spec_r2_median": ref["spec_r2_median"],
        "spec_r2_stretched": ref["spec_r2_stretched"],
        "spec_r2_stretched_median": ref["spec_r2_stretched_median"],
        "spec_r2_flux_matched": ref["spec_r2_flux_matched"],
        "spec_r2_flux_matched_median": ref["spec_r2_flux_matched_median"],
        "z_sigma_nmad": ref["z_sigma_nmad"],
        "z_outlier_frac": ref["z_outlier_frac"],
        "z_coverage_68": ref["z_coverage_68"],
        "logm_sigma": ref["logm_sigma"],
        "logm_nmad": ref["logm_nmad"],
        "template_fit_z_sigma_nmad": baselines["template_fit"]["z_sigma_nmad"],
        "template_fit_z_outlier_frac": baselines["template_fit"]["z_outlier_frac"],
        "template_fit_s_per_object": baselines["template_fit"]["s_per_object"],
        "pixel_knn_z_sigma_nmad": knn["z_sigma_nmad"],
        "reference": {"inputs": "F150W + PRISM", "data": "real JWST (published paper)", **REFERENCE},
        "reference_set": REFERENCE_SET,
        "test_set": {"seed": TEST_SEED, "n_objects": args.n_test, "bands": list(ALL_BANDS), "spectra": "PRISM, all objects",
                     "note": "simulated here on CPU; training used batch_generator(0, k) streams"},  # fmt: skip
        "model": {"name": Path(args.model).name if os.sep in args.model else args.model, "preset": "small",
                  "parameters": n_parameters},
        "metric_definitions": "jwst_embed.metrics; spec_r2 in flux (nJy) against the noiseless mock spectrum on "
                              "the model grid, spec_r2_stretched in asinh(f/SPECTRUM_SOFTENING_NJY), mean and median "
                              "over objects; logm_sigma = std of the residual, logm_nmad its NMAD",
        "input_sets": input_sets,
        "baselines": baselines,
        "throughput": throughput,
        "figures": figures,
        "stage_seconds": stages.times,
        "total_seconds": round(stages.total, 1),
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "command": COMMAND if not args.quick else "python benchmarks/seed_table.py --quick",
    }
    result = json.loads(json.dumps(result, default=_to_plain))
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=1) + "\n")
    output.with_suffix(".rst").write_text(make_rst(result))
    print_table(result)
    print(json.dumps(result))
    return result


def _to_plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot serialise {type(value).__name__}")


def print_table(result: dict) -> None:
    keys = ("morph_f1_macro", "spec_r2", "spec_r2_median", "spec_r2_stretched", "z_sigma_nmad", "z_outlier_frac",
            "z_coverage_68", "z_sigma_nmad_snr_ge10", "logm_sigma", "logm_nmad")  # fmt: skip
    print(f"{'input set':16s} " + " ".join(f"{k:>17s}" for k in keys))
    print(f"{'reference':16s} " + " ".join(f"{_fmt(REFERENCE.get(k), 2):>17s}" for k in keys))
    for name, metrics in result["input_sets"].items():
        print(f"{name:16s} " + " ".join(f"{_fmt(metrics.get(k)):>17s}" for k in keys))
        if "auto_same_subset" in metrics:
            auto = metrics["auto_same_subset"]
            print(f"{name + ' auto':16s} " + " ".join(f"{_fmt(auto.get(k)):>17s}" for k in keys)
                  + f"   ({auto['n']} objects, {auto['s_per_object']:.4f} s/object, "
                  f"{100 * auto['cost_fraction_of_template_fit']:.1f}% of the template fit)")  # fmt: skip
    for name in ("template_fit", "pixel_knn"):
        metrics = result["baselines"][name]
        print(f"{name:16s} " + " ".join(f"{_fmt(metrics.get(k)):>17s}" for k in keys))
    print("labels only vs pretrained (F150W+PRISM): z_sigma_nmad / logm_sigma / morph_f1_macro")
    for name, run in result["baselines"]["labels_only_vs_pretrained"].items():
        if isinstance(run, dict) and "z_sigma_nmad" in run:
            print(f"  {name:34s} {_fmt(run['z_sigma_nmad'])} / {_fmt(run['logm_sigma'])} / {_fmt(run['morph_f1_macro'])}")
    cpu = result["throughput"]["cpu"]
    gpu = result["throughput"]["gpu_recorded"]
    print(f"CPU ({cpu['torch_threads']} threads): {cpu['prepared']['objects_per_s']:.0f} obj/s prepared, "
          f"{cpu.get('astropy', {}).get('objects_per_s', float('nan')):.0f} obj/s from astropy objects")  # fmt: skip
    for key, value in gpu.items():
        if key.startswith("embedding_"):
            print(f"{gpu.get('card', 'GPU')} (recorded): {value['objects_per_s']:.0f} obj/s ({key}, {value['precision']})")
    print("stage seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in result["stage_seconds"].items())
          + f"; total {result['total_seconds']:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
