"""Similarity search and unusual objects in the embedding of a few hundred mock galaxies.

Data: mock JWST survey (jwst_embed.simulation), seed 8001, never used in pretraining; NIRCam F150W
and F444W + NIRSpec PRISM for every galaxy. Model: the shipped "default" model.

``JWST_EMBED_TUTORIAL_QUICK=1`` runs it with fewer galaxies (the test suite does).
"""

import os

import matplotlib.pyplot as plt
import numpy as np

QUICK = os.environ.get("JWST_EMBED_TUTORIAL_QUICK") == "1"
N_GALAXIES = 60 if QUICK else 300

# -- embed --
from jwst_embed import EmbeddingIndex, MultimodalEmbedder
from jwst_embed.simulation import MockSurvey, SurveyConfig
from jwst_embed.simulation.export import sample_to_astropy

config = SurveyConfig(bands=("F150W", "F444W"), spectrum_fraction=1.0)
survey = MockSurvey(config, device="cpu")
sample = survey.sample(N_GALAXIES, seed=8001)
images, spectra, labels = sample_to_astropy(sample, config)

embedder = MultimodalEmbedder.from_pretrained("default", device="auto")
embeddings = embedder.embed(images=images, spectra=spectra)  # EmbeddingResult; .fused is (N, 256)
index = EmbeddingIndex(embeddings)
# -- end embed --

# -- query --
query = int(np.argmax(labels["log_mass"]))  # the most massive galaxy of the sample
neighbours, similarity = index.query(embeddings.fused[query], k=6)  # itself first, then 5 others
# -- end query --

# -- outliers --
scores = index.outlier_scores(k=10)  # mean cosine distance to the 10 nearest others
unusual = np.argsort(scores)[::-1][:5]
# -- end outliers --

# -- figure --
wavelength = config.spectral_grid.wavelength.to_value("um")
noiseless = sample["spectrum_noiseless"].cpu().numpy()  # the simulator's noiseless truth, nJy


def describe(i):
    return f"z={labels['redshift'][i]:.2f} logM={labels['log_mass'][i]:.1f} {labels['morphology'][i]}"


def stack(axis, rows, title, similarities=None):
    for offset, i in enumerate(rows):
        flux = noiseless[i] / np.median(np.abs(noiseless[i]) + 1e-3)
        label = describe(i) + (f"  cos={similarities[offset]:.3f}" if similarities is not None else "")
        axis.plot(wavelength, flux + 3 * offset, lw=1.0 if offset else 1.6, label=label)
    axis.set(xlabel="observed wavelength (um)", ylabel="f_nu / median + offset", title=title)
    axis.legend(fontsize=7, loc="upper left")


fig, axes = plt.subplots(1, 3, figsize=(16, 5))
stack(axes[0], neighbours, "query (bottom) and its 5 nearest neighbours", similarity)
axes[1].scatter(labels["redshift"], scores, s=8, c=labels["log_mass"], cmap="viridis")
axes[1].scatter(labels["redshift"][unusual], scores[unusual], s=60, facecolors="none", edgecolors="r",
                label="5 highest outlier scores")  # fmt: skip
axes[1].set(xscale="log", xlabel="true redshift", ylabel="outlier score (mean cosine distance, k=10)",
            title="how unusual each galaxy is (colour: true log mass)")  # fmt: skip
axes[1].legend(fontsize=8)
stack(axes[2], unusual[:4], "the 4 most unusual galaxies")
fig.suptitle(f"Mock survey seed 8001, {N_GALAXIES} galaxies, F150W + F444W + PRISM; default model; "
             "noiseless mock spectra shown", fontsize=10)  # fmt: skip
fig.tight_layout()
# -- end figure --
