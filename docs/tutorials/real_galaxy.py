"""Embed a real JADES galaxy and predict its redshift, mass, morphology and spectrum.

Data: JADES DR4 NIRSpec PRISM/CLEAR spectrum and NIRCam cutouts (F090W, F150W, F277W, F444W) of
GOODS-S 3204 (HLSP file, CC BY 4.0, DOI 10.17909/8tdj-8n28; Eisenstein et al. 2023). Model: the
shipped "default" model. One galaxy is a smoke test of the whole path, not a benchmark.

The example files are looked for in ``$JWST_EMBED_REAL_DATA``, else in ``shared/real`` beside the
repository (this script runs from ``docs/tutorials``).
"""

import os
from pathlib import Path

import astropy.units as u
import matplotlib.pyplot as plt
import numpy as np

REAL_DIR = Path(os.environ.get("JWST_EMBED_REAL_DATA", "../../../shared/real"))
FILENAME = "hlsp_jades_jwst_nirspec_goods-s-mediumjwst-00003204_clear-prism_v1.0_x1d.fits"
Z_CATALOGUE = 2.6732  # JADES DR4 spectroscopic redshift (flag A/B)

path = REAL_DIR / FILENAME

# -- read --
from jwst_embed.io import read_cutouts, read_spectrum

spectrum = read_spectrum(path)  # specutils.Spectrum: um, erg/s/cm2/A, uncertainty, mask
cutouts = read_cutouts(path)  # {"F090W": NDData, ...} in nJy per pixel, with WCS
# -- end read --

# -- show --
from jwst_embed.preprocessing import IMAGE_SOFTENING_NJY, asinh_stretch

fig, axes = plt.subplots(1, len(cutouts), figsize=(3 * len(cutouts), 3.2))
for axis, (band, image) in zip(axes, cutouts.items(), strict=True):
    # The same fixed asinh stretch the model reads: colours between bands survive it.
    axis.imshow(asinh_stretch(np.asarray(image.data), IMAGE_SOFTENING_NJY), origin="lower", cmap="magma")
    axis.set_title(f"{band} ({image.data.shape[0]} x {image.data.shape[1]} px)")
    axis.set_axis_off()
fig.suptitle("JADES GOODS-S 3204: NIRCam cutouts from the JADES DR4 HLSP file (asinh stretch, nJy)")
fig.tight_layout()
# -- end show --

# -- predict --
from jwst_embed import MultimodalEmbedder, predict, predict_redshift, reconstruct_spectrum

embedder = MultimodalEmbedder.from_pretrained("default", device="auto")  # shipped with the package
everything = predict_redshift(images=cutouts, spectra=spectrum, embedder=embedder)
images_only = predict_redshift(images=cutouts, embedder=embedder)
summary = predict(images=cutouts, spectra=spectrum, embedder=embedder)
print(summary)  # z, z_lo, z_hi, log_mass, log_mass_err, morphology, p_morphology
# -- end predict --

# -- pz --
z_grid = everything.meta["z_grid"]  # bin centres, uniform in log(1 + z)
fig, axis = plt.subplots(figsize=(7, 3.5))
for table, label, color in ((everything, "4 bands + PRISM", "C0"), (images_only, "4 bands alone", "C1")):
    row = table[0]
    axis.plot(z_grid, row["pz"], color=color, label=f"{label}: z = {row['z']:.2f} [{row['z_lo']:.2f}, {row['z_hi']:.2f}]")
axis.axvline(Z_CATALOGUE, color="k", ls=":", label=f"JADES DR4 spec-z {Z_CATALOGUE}")
axis.set(xscale="log", xlim=(0.2, 15), xlabel="redshift", ylabel="p(z) per bin")
axis.legend(fontsize=8)
axis.set_title("p(z) of GOODS-S 3204, default model (median and 16-84% in the legend)", fontsize=9)
fig.tight_layout()
# -- end pz --

# -- reconstruct --
from_images = reconstruct_spectrum(images=cutouts, embedder=embedder)  # Spectrum, nJy on the model grid
from_all = reconstruct_spectrum(images=cutouts, spectra=spectrum, embedder=embedder)

wavelength = spectrum.spectral_axis.to(u.um)
observed = spectrum.flux.to(u.nJy, equivalencies=u.spectral_density(wavelength))
good = ~np.asarray(spectrum.mask, dtype=bool)
fig, axis = plt.subplots(figsize=(8, 3.8))
axis.plot(wavelength[good], observed[good], color="0.6", lw=0.7, label="observed PRISM (JADES DR4)")
axis.plot(from_all.spectral_axis, from_all.flux[0], color="C0", lw=1.2, label="decoded from 4 bands + PRISM (at its flux level)")
axis.plot(from_images.spectral_axis, from_images.flux[0], color="C3", lw=1.5, label="decoded from the 4 bands alone")
top = np.nanpercentile(observed[good].value, 99.5)
axis.set(xlabel="wavelength (um)", ylabel="f_nu (nJy)", ylim=(-0.1 * top, 1.3 * top))
axis.legend(fontsize=8)
axis.set_title("GOODS-S 3204: observed spectrum and the default model's reconstructions", fontsize=9)
fig.tight_layout()
# -- end reconstruct --
