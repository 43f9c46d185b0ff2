"""Fine-tune the redshift head on your own labelled catalogue (mock labels stand in for it).

Data: mock JWST survey (jwst_embed.simulation), seeds 7001 (the labelled "catalogue") and 7002
(held-out galaxies), never used in pretraining; NIRCam F090W, F150W, F277W, F444W, no spectra
(photometric redshifts from imaging). Model: the shipped "default" model, fine-tuned with its
backbone frozen.

``JWST_EMBED_TUTORIAL_QUICK=1`` runs it with fewer galaxies and epochs (the test suite does).
"""

import os

import matplotlib.pyplot as plt
import numpy as np

QUICK = os.environ.get("JWST_EMBED_TUTORIAL_QUICK") == "1"
N_TRAIN, N_TEST, EPOCHS = (40, 20, 5) if QUICK else (300, 150, 15)

# -- catalogue --
from jwst_embed.simulation import MockSurvey, SurveyConfig
from jwst_embed.simulation.export import sample_to_astropy

# A survey unlike the pretraining mix: four bands, redshifts 1-7 only, no spectra.
config = SurveyConfig(bands=("F090W", "F150W", "F277W", "F444W"), include_spectra=False,
                      redshift_min=1.0, redshift_max=7.0)  # fmt: skip
survey = MockSurvey(config, device="cpu")
images, _, labels = sample_to_astropy(survey.sample(N_TRAIN, seed=7001), config)
test_images, _, test_labels = sample_to_astropy(survey.sample(N_TEST, seed=7002), config)
z_spec = np.asarray(labels["redshift"])  # stands in for your spectroscopic redshifts
# -- end catalogue --

# -- fine-tune --
from jwst_embed import MultimodalEmbedder, fine_tune, predict_redshift

embedder = MultimodalEmbedder.from_pretrained("default", device="auto")
tuned = fine_tune(embedder, images=images, labels=z_spec, task="redshift",
                  freeze_backbone=True, epochs=EPOCHS, validation_fraction=0.2, progress=False)  # fmt: skip
history = tuned.fine_tune_history  # per-epoch training and validation loss
# -- end fine-tune --

# -- compare --
z_true = np.asarray(test_labels["redshift"])
before = predict_redshift(images=test_images, embedder=embedder)
after = predict_redshift(images=test_images, embedder=tuned)


def scores(z_pred):
    """sigma_NMAD and outlier fraction (|dz| > 0.15) of dz = (z_pred - z_true) / (1 + z_true)."""
    dz = (np.asarray(z_pred) - z_true) / (1 + z_true)
    return 1.4826 * np.median(np.abs(dz - np.median(dz))), np.mean(np.abs(dz) > 0.15)


fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
for axis, table, title in ((axes[0], before, "pretrained head"), (axes[1], after, "fine-tuned head")):
    nmad, outliers = scores(table["z"])
    errors = np.vstack([table["z"] - table["z_lo"], table["z_hi"] - table["z"]]).clip(min=0)
    axis.errorbar(z_true, table["z"], yerr=errors, fmt="o", ms=3, alpha=0.6, elinewidth=0.6)
    axis.plot([0, 8], [0, 8], "k:", lw=1)
    axis.set(xlim=(0, 8), ylim=(0, 8), xlabel="true redshift", ylabel="predicted redshift (16-84%)",
             title=f"{title}: sigma_NMAD {nmad:.3f}, outliers {outliers:.1%}")  # fmt: skip
axes[2].plot(np.arange(1, len(history.train_loss) + 1), history.train_loss, label="training objects")
axes[2].plot(np.arange(1, len(history.validation_loss) + 1), history.validation_loss, label="validation objects")
axes[2].set(xlabel="epoch", ylabel="redshift-head loss", title="fine-tuning (frozen backbone)")
axes[2].legend()
fig.suptitle(f"Mock survey seeds 7001 ({N_TRAIN} labelled) / 7002 ({N_TEST} held out), z 1-7, "
             "F090W + F150W + F277W + F444W; default model", fontsize=10)  # fmt: skip
fig.tight_layout()
# -- end compare --

# -- save --
# from jwst_embed.tuning import save_embedder
# save_embedder(tuned, "my_redshift_model.pt")      # MultimodalEmbedder.from_pretrained("my_redshift_model.pt")
# -- end save --
