"""The ``jwst-embed demo``: predictions for mock galaxies beside their truth, and a figure.

The demo takes the path a user takes: mock galaxies from a held-out survey seed are
turned into astropy ``NDData`` cutouts and specutils ``Spectrum`` objects
(`~jwst_embed.simulation.export.sample_to_astropy`) and go through
`~jwst_embed.embedder.MultimodalEmbedder` exactly as real data would.
"""

from __future__ import annotations

import numpy as np

from ._terminal import print_table
from .metrics import sigma_nmad
from .simulation.export import sample_to_astropy
from .simulation.survey import MockSurvey, SurveyConfig

__all__ = ["run_demo", "DEMO_SEED"]

#: Mock-survey seed of the demo galaxies; never used for training.
DEMO_SEED = 20261126


def run_demo(embedder, n_objects: int = 8, seed: int = DEMO_SEED, output: str | None = "demo.png",
             model_name: str = "default", verbose: bool = True):  # fmt: skip
    """Predict redshift, mass and morphology of mock galaxies and compare with the truth.

    Parameters
    ----------
    embedder : `~jwst_embed.embedder.MultimodalEmbedder`
        A model with prediction heads (e.g. ``MultimodalEmbedder.from_pretrained()``).
    n_objects : int
        Mock galaxies to simulate.
    seed : int
        Mock-survey seed (default ``DEMO_SEED``, held out from training).
    output : str or None
        Figure file (predicted vs true redshift, and spectra reconstructed from
        F150W alone); None writes no figure.
    model_name : str
        Name of the model, for the printout and the figure title.
    verbose : bool
        Print the table and sigma_NMAD.

    Returns
    -------
    table : `~astropy.table.Table`
        True and predicted redshift (F150W + PRISM, and F150W alone), mass and morphology.

    Raises
    ------
    ImportError
        If the mock-survey simulator (the ``sim`` extra) is not installed.

    Examples
    --------
    >>> from jwst_embed import MultimodalEmbedder
    >>> from jwst_embed.demo import run_demo
    >>> table = run_demo(MultimodalEmbedder.from_pretrained(device="cpu"), n_objects=4,
    ...                  output=None, verbose=False)  # doctest: +SKIP
    >>> table.colnames[:2]  # doctest: +SKIP
    ['z_true', 'z_pred']
    """
    from astropy.table import Table

    survey = MockSurvey(SurveyConfig(), device="cpu")
    sample = survey.sample(n_objects, seed=seed)
    images, spectra, truth = sample_to_astropy(sample, survey.config)
    f150w = {"F150W": images["F150W"]}
    both = embedder.predict(images=f150w, spectra=spectra)
    image_only = embedder.predict(images=f150w)
    rebuilt = embedder.reconstruct_spectrum(images=f150w)

    table = Table()
    table["z_true"] = truth["redshift"]
    for label, pred in (("", both), ("_img", image_only)):
        table[f"z_pred{label}"] = pred["z"]
        table[f"z_range{label}"] = [f"[{lo:.2f}, {hi:.2f}]" for lo, hi in zip(pred["z_lo"], pred["z_hi"], strict=True)]
    table["logM_true"] = truth["log_mass"]
    table["logM_pred"] = both["log_mass"]
    table["logM_pred_img"] = image_only["log_mass"]
    table["morph_true"] = truth["morphology"]
    table["morph_pred"] = both["morphology"]
    if verbose:
        print(f"mock survey seed {seed}, {n_objects} galaxies, model {model_name}; "
              "pred = F150W + PRISM, *_img = F150W alone")  # fmt: skip
        print_table(table, {name: (".2f" if name.startswith(("z_", "logM")) and "range" not in name else None)
                             for name in table.colnames})  # fmt: skip
        print(f"sigma_NMAD (F150W + PRISM): {sigma_nmad(both['z'], truth['redshift']):.3f}")
    if output is not None:
        _demo_figure(output, seed, model_name, truth, both, image_only, spectra, rebuilt, sample, survey.config)
    return table


def _demo_figure(output, seed, model_name, truth, both, image_only, spectra, rebuilt, sample, config) -> None:
    # a Figure without pyplot: no backend is switched (in a notebook either)
    from matplotlib.figure import Figure

    shown = [i for i, spectrum in enumerate(spectra) if spectrum is not None][:3]
    fig = Figure(figsize=(4.5 * (1 + len(shown)), 4))
    axes = fig.subplots(1, 1 + len(shown), squeeze=False)
    axis = axes[0, 0]
    z_true = np.asarray(truth["redshift"])
    for pred, label, marker in ((both, "F150W + PRISM", "o"), (image_only, "F150W alone", "s")):
        z = np.asarray(pred["z"])
        errors = np.vstack([z - np.asarray(pred["z_lo"]), np.asarray(pred["z_hi"]) - z]).clip(min=0)
        axis.errorbar(z_true, z, yerr=errors, fmt=marker, ms=4, capsize=2, label=label, alpha=0.8)
    top = 1.1 * max(z_true.max(), float(np.max(both["z_hi"])), float(np.max(image_only["z_hi"])))
    axis.plot([0, top], [0, top], "k:", lw=1)
    axis.set(xlabel="true redshift", ylabel="predicted redshift (16-84%)", xlim=(0, top), ylim=(0, top))
    axis.legend(fontsize=8)
    wavelength = config.spectral_grid.wavelength.to_value("um")
    for axis, i in zip(axes[0, 1:], shown, strict=True):
        observed = spectra[i]
        good = ~observed.mask
        axis.plot(observed.spectral_axis.to_value("um")[good], observed.flux.to_value("nJy")[good],
                  color="0.6", lw=0.7, label="observed PRISM")  # fmt: skip
        axis.plot(wavelength, sample["spectrum_noiseless"][i].cpu().numpy(), color="k", lw=1, label="noiseless truth")
        axis.plot(rebuilt.spectral_axis.to_value("um"), rebuilt.flux[i].to_value("nJy"), color="C3", lw=1.2,
                  label="reconstructed from F150W alone")  # fmt: skip
        axis.set(xlabel="wavelength (um)", ylabel="f_nu (nJy)",
                 title=f"object {i}: z = {z_true[i]:.2f}, logM = {truth['log_mass'][i]:.1f}")  # fmt: skip
        axis.legend(fontsize=7)
    fig.suptitle(f"jwst-embed demo: mock survey seed {seed}, {len(z_true)} galaxies; model {model_name}", fontsize=9)
    fig.tight_layout()
    fig.savefig(output, dpi=110)
