"""Mock NIRCam images: batched Fourier-space rendering of galaxies on the model grid.

Every object is a sum of components that share one centre or sit at their own:
a Sersic bulge and a Sersic disk (same centre and position angle), Gaussian star-forming
clumps scattered over the disk, a Sersic companion (mergers) and a point source. The image
of one band is

    image = sum over components of  flux_c * [profile_c (x) PSF_band (x) pixel]  sampled at pixel centres

and it is computed exactly in Fourier space, for a whole batch at once:

1. **Exact Sersic profiles for any n**, from a table of the Fourier transform of the
   circular profile (`jwst_embed.simulation.sersic`), with ellipticity and orientation in
   the argument: ``(k r_e)^2 -> r_e^2 (k_major^2 + q^2 k_minor^2)``.
2. **Geometry once, colours per band.** The shape of every component is the same in all
   bands, so each component's transform (profile x shift phase) is computed once per object;
   a band is then ``OTF_band(k) x pixel(k) x sum_c flux_{c,band} component_c(k)``, where
   the OTF is that of the band's obscured Airy PSF (`jwst_embed.simulation.psf`) and the
   pixel top-hat is ``sinc(k_x dx / 2 pi) sinc(k_y dx / 2 pi)``.
3. **Exact sampling.** A diffraction-limited PSF is band limited (its OTF is zero beyond
   ``2 pi / (lambda / D)``), but the short-wavelength bands extend past the grid's Nyquist
   frequency (the 0.04" grid undersamples F115W and F150W). The transform is therefore
   evaluated on every lattice frequency inside each band's cutoff and *folded* (aliases
   summed) onto the FFT grid, which gives the pixel-integrated image sampled at the pixel
   centres without oversampling and without approximation. The frequencies are a dense
   rectangle (the ``k_x`` that fold onto the real-FFT half plane x all ``k_y``), so shift
   phases are outer products of two 1D phases, each band is a sub-rectangle, and the fold
   is a few slice additions fused with the last multiplication.
4. **Wrap-around.** The inverse FFT is periodic, so the grid is padded (``padding=2``: a
   128 x 128 FFT for a 64 x 64 stamp) and cropped; light from more than about one stamp
   width away still wraps in, which matters only for very extended, high-n profiles.

Shifts (centroid offsets, companions, clumps) are phase factors; geometry is shared by
all bands, only fluxes differ (optionally the bulge redder and the clumps bluer, with the
band's total flux kept exact). Noise is white Gaussian with the per-pixel sigma of
`pixel_noise_njy` (5-sigma point-source depth measured in a 0.2" diameter aperture with
aperture correction); source Poisson noise and correlated (drizzle) noise are left out.

On a GPU the renderer is pure batched tensor work (every component of every object, no
host synchronisation after one input check); on the CPU it sorts the objects by the
components they have and skips absent components chunk by chunk.

Conventions of the stamp: the object centre is at pixel coordinate ``(n - 1) / 2`` (0-based;
a pixel corner for even ``n``, as in `~jwst_embed.preprocessing.ImageGrid` and GalSim);
arrays are ``[..., row, column]`` = ``[..., y, x]``; angles are counter-clockwise from the
+x (column) axis, in radians.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import astropy.units as u
import numpy as np
import torch

from jwst_embed.bands import get_band
from jwst_embed.preprocessing.images import DEFAULT_IMAGE_GRID, ImageGrid

# pixel_noise_njy: importable from here, where the renderer's noise is made.
from jwst_embed.simulation.psf import AB_ZEROPOINT_NJY, AiryPSF, jwst_psf, pixel_noise_njy  # noqa: F401

# sersic_fourier_transform: importable from here as before jwst_embed.simulation.sersic existed.
from jwst_embed.simulation.sersic import SERSIC_N_RANGE, SersicLookup, sersic_fourier_transform  # noqa: F401

__all__ = [
    "DEFAULT_RENDER_BANDS",
    "STRUCTURE_KEYS",
    "ImageRenderer",
]

#: The bands `ImageRenderer` renders by default.
DEFAULT_RENDER_BANDS = ("F115W", "F150W", "F277W", "F444W")

#: Structure keys read by `ImageRenderer.render` and their defaults (None = required).
#: Each is a (B,) tensor; lengths in arcsec, angles in radians (counter-clockwise from +x).
STRUCTURE_KEYS: dict[str, float | None] = {
    "bulge_fraction": None,  # bulge share of the main galaxy's smooth light (1 = pure spheroid)
    "bulge_n": None,  # Sersic index of the bulge, 0.3-6.5
    "bulge_re_arcsec": None,  # semi-major-axis half-light radius of the bulge
    "bulge_q": None,  # axis ratio b/a of the bulge, (0, 1]
    "disk_n": None,  # Sersic index of the disk (also of clumpy and merger primaries)
    "disk_re_arcsec": None,
    "disk_q": None,
    "position_angle": None,  # major axis of bulge and disk
    "offset_x_arcsec": 0.0,  # centroid offset of the main galaxy from the stamp centre
    "offset_y_arcsec": 0.0,
    "clump_fraction": 0.0,  # share of the main galaxy's light in clumps
    "n_clumps": 0,  # long; clump positions and weights are drawn inside the renderer
    "clump_sigma_arcsec": 0.02,  # Gaussian sigma of each clump
    "companion_flux_ratio": 0.0,  # companion flux / main-galaxy flux (0 = no companion)
    "companion_sep_arcsec": 0.5,  # companion centre relative to the main centre
    "companion_angle": 0.0,
    "companion_n": 1.0,
    "companion_re_arcsec": 0.1,
    "companion_q": 1.0,
    "companion_position_angle": 0.0,
    "point_fraction": 0.0,  # share of all light in an unresolved point source
}

# Allowed ranges of the structure keys (n_clumps up to the renderer's max_clumps).
_LIMITS = {
    "bulge_fraction": (0, 1), "clump_fraction": (0, 1), "point_fraction": (0, 1),
    "bulge_n": SERSIC_N_RANGE, "disk_n": SERSIC_N_RANGE, "companion_n": SERSIC_N_RANGE,
    "bulge_q": (0.01, 1), "disk_q": (0.01, 1), "companion_q": (0.01, 1),
    "bulge_re_arcsec": (1e-5, 100), "disk_re_arcsec": (1e-5, 100),
    "companion_re_arcsec": (1e-5, 100), "clump_sigma_arcsec": (1e-5, 100),
    "companion_flux_ratio": (0, 1e3),
}
# Flux columns of `ImageRenderer._fluxes`.
_BULGE, _DISK, _COMPANION, _CLUMPS, _POINT = range(5)
_REFERENCE_WAVELENGTH_UM = 2.0  # colour gradients are power laws in wavelength around this


def _fft_size(minimum: int) -> int:
    """Smallest even integer >= minimum with no prime factor above 5 (fast FFT sizes)."""
    size = max(2, minimum + (minimum % 2))
    while True:
        rest = size
        for prime in (2, 3, 5):
            while rest % prime == 0:
                rest //= prime
        if rest == 1:
            return size
        size += 2


def _fold_groups(lattice: np.ndarray, n_fft: int) -> list[tuple[slice, slice]]:
    """(source, destination) slices that fold sorted lattice indices onto 0 ... n_fft - 1.

    ``lattice`` is ascending; each run with one alias order ``floor(j / n_fft)`` is
    contiguous in the source and in the destination (``j mod n_fft``).
    """
    groups = []
    order = np.floor_divide(lattice, n_fft)
    for m in np.unique(order):
        where = np.nonzero(order == m)[0]
        first, last = int(where[0]), int(where[-1]) + 1
        start = int(lattice[first] - m * n_fft)
        if last - first != lattice[last - 1] - lattice[first] + 1:
            raise AssertionError("lattice run is not contiguous")  # cannot happen: see _layout
        groups.append((slice(first, last), slice(start, start + last - first)))
    return groups


class ImageRenderer:
    """Batched renderer of mock NIRCam images in several bands on the model grid.

    Parameters
    ----------
    bands : sequence of str
        NIRCam bands, in the order of the band axis of the inputs and outputs.
    grid : `~jwst_embed.preprocessing.ImageGrid`
        Output grid (default 64 x 64 pixels of 0.04").
    device : str or `torch.device`
        Where to render (``"cpu"`` or ``"cuda"``); the same code runs on both, in float32.
    padding : float
        The FFT grid is ``padding`` times the stamp (rounded up to a fast FFT size) so that
        light from outside the stamp does not wrap around onto it; 2 is enough unless
        galaxies are several times larger than the stamp.
    psfs : sequence of `~jwst_embed.simulation.psf.AiryPSF`, optional
        One PSF per band (default: ``jwst_embed.simulation.psf.jwst_psf`` of each band).
    bulge_color_slope, clump_color_slope : float
        Colour gradients: the bulge's share of the light scales as
        ``(pivot_wavelength / 2 um) ** bulge_color_slope`` relative to the disk (redder for a
        positive slope), the clumps' as ``(pivot / 2 um) ** clump_color_slope`` (bluer for a
        negative one); the shares are renormalised so each band's total flux is exact.
        Set both to 0 for identical morphology in every band.
    bad_pixel_fraction : float
        Fraction of pixels flagged as bad (cosmic rays, hot pixels): masked, value 0, ivar 0.
    chunk_size : int, optional
        Objects rendered at once (default 16 on the CPU, where small chunks stay in cache,
        and 4096 on a GPU; up to ~2 MB per object with the defaults).
    max_clumps : int
        Largest ``n_clumps`` accepted (clump positions are drawn for this many per object).
    compile : bool
        Compile the per-chunk renderer with `torch.compile` (GPU; off by default, and of
        little use on the CPU).

    Notes
    -----
    No oversampling is needed: aliases beyond the grid's Nyquist frequency are summed exactly
    (see the module docstring), so the outputs are the pixel-integrated images.

    Examples
    --------
    >>> import torch
    >>> from jwst_embed.preprocessing.images import ImageGrid
    >>> from jwst_embed.simulation.images import ImageRenderer
    >>> renderer = ImageRenderer(bands=("F150W", "F444W"), grid=ImageGrid(n_pixels=32))
    >>> structure = {"bulge_fraction": torch.tensor([0.0]), "bulge_n": torch.tensor([4.0]),
    ...              "bulge_re_arcsec": torch.tensor([0.05]), "bulge_q": torch.tensor([1.0]),
    ...              "disk_n": torch.tensor([1.0]), "disk_re_arcsec": torch.tensor([0.1]),
    ...              "disk_q": torch.tensor([0.5]), "position_angle": torch.tensor([0.3])}
    >>> out = renderer.render(structure, band_flux=torch.tensor([[100.0, 200.0]]),
    ...                       depth_ab=torch.tensor([[29.0, 29.0]]),
    ...                       generator=torch.Generator().manual_seed(0))
    >>> out["images"].shape
    torch.Size([1, 2, 32, 32])
    >>> out["images_noiseless"].sum(dim=(-2, -1)).round()   # flux in the 1.28" stamp, nJy
    tensor([[ 98., 191.]])
    """

    def __init__(
        self,
        bands: Sequence[str] = DEFAULT_RENDER_BANDS,
        grid: ImageGrid = DEFAULT_IMAGE_GRID,
        device: str | torch.device = "cpu",
        padding: float = 2.0,
        psfs: Sequence[AiryPSF] | None = None,
        bulge_color_slope: float = 0.3,
        clump_color_slope: float = -0.5,
        bad_pixel_fraction: float = 0.0,
        chunk_size: int | None = None,
        max_clumps: int = 16,
        compile: bool = False,
    ) -> None:
        if isinstance(bands, str):
            bands = (bands,)
        if len(bands) == 0:
            raise ValueError("bands is empty; give at least one NIRCam band")
        self.bands = tuple(get_band(band).name for band in bands)
        if len(set(self.bands)) != len(self.bands):
            raise ValueError(f"bands has duplicates: {self.bands}")
        if not isinstance(grid, ImageGrid):
            raise TypeError(f"grid must be an ImageGrid, got {type(grid).__name__}")
        if not padding >= 1.0:
            raise ValueError(f"padding must be >= 1, got {padding!r}")
        if not 0.0 <= bad_pixel_fraction < 1.0:
            raise ValueError(f"bad_pixel_fraction must be in [0, 1), got {bad_pixel_fraction!r}")
        if chunk_size is not None and chunk_size < 1:
            raise ValueError(f"chunk_size must be positive, got {chunk_size!r}")
        if not 1 <= max_clumps <= 256:
            raise ValueError(f"max_clumps must be in [1, 256], got {max_clumps!r}")
        self.grid = grid
        self.device = torch.device(device)
        self.psfs = tuple(jwst_psf(band) for band in self.bands) if psfs is None else tuple(psfs)
        if len(self.psfs) != len(self.bands):
            raise ValueError(f"got {len(self.psfs)} PSFs for {len(self.bands)} bands")
        self.bad_pixel_fraction = float(bad_pixel_fraction)
        # Without host synchronisation (GPU) every component of every object is rendered;
        # on the CPU, where reading a tensor's value is free, absent components are skipped.
        self._sync_free = self.device.type != "cpu"
        self.chunk_size = int(chunk_size) if chunk_size is not None else (4096 if self._sync_free else 16)
        self.max_clumps = int(max_clumps)

        n = grid.n_pixels
        dx = float(grid.pixel_scale.to_value(u.arcsec))
        n_fft = _fft_size(math.ceil(padding * n))
        self._n, self._dx, self._n_fft = n, dx, n_fft
        self._crop = (n_fft - n) // 2
        self._centre = (self._crop + (n - 1) / 2) * dx  # object centre in the FFT frame, arcsec
        self._layout(dx, n_fft)

        def put(array, dtype=torch.float32):
            return torch.as_tensor(np.ascontiguousarray(array)).to(device=self.device, dtype=dtype)

        self._sersic = SersicLookup(self.device)
        pivots = np.array([get_band(b).pivot_wavelength.to_value(u.um) for b in self.bands])
        tilt = np.ones((len(self.bands), 5))
        tilt[:, _BULGE] = (pivots / _REFERENCE_WAVELENGTH_UM) ** bulge_color_slope
        tilt[:, _CLUMPS] = (pivots / _REFERENCE_WAVELENGTH_UM) ** clump_color_slope
        self._tilt = put(tilt)  # (n_bands, 5)
        self._noise_factor = put(
            [float(pixel_noise_njy(AB_ZEROPOINT_NJY, band, grid, psf=psf)) for band, psf in zip(self.bands, self.psfs, strict=True)]
        )  # sigma at depth 31.4 AB (F_5 = 1 nJy)
        self._render_chunk: Callable = torch.compile(self._render_noiseless) if compile else self._render_noiseless

    def _layout(self, dx: float, n_fft: int) -> None:
        """The frequency rectangle, each band's part of it, its transfer function and fold.

        Arrays on the rectangle are ``(..., k_x, k_y)``: the k_y transform then runs over
        the last, contiguous axis.
        """
        dk = 2 * math.pi / (n_fft * dx)
        cutoffs = [psf.cutoff_wavenumber for psf in self.psfs]
        # Largest lattice index strictly inside each band's cutoff (the OTF is 0 beyond).
        reach = [max(0, math.ceil(c / dk) - 1) for c in cutoffs]
        h = max(reach)
        lattice_y = np.arange(-h, h + 1)
        # k_x: the lattice frequencies whose alias lands on the real-FFT half plane 0 ... n_fft / 2.
        lattice_x = lattice_y[np.mod(lattice_y, n_fft) <= n_fft // 2]
        kx, ky = np.meshgrid(dk * lattice_x, dk * lattice_y, indexing="ij")
        self._kx = torch.as_tensor(dk * lattice_x, dtype=torch.float32, device=self.device)
        self._ky = torch.as_tensor(dk * lattice_y, dtype=torch.float32, device=self.device)
        self._kxky = torch.as_tensor(kx * ky, dtype=torch.float32, device=self.device)
        kmag = torch.from_numpy(np.hypot(kx, ky))
        pixel = np.sinc(kx * dx / (2 * math.pi)) * np.sinc(ky * dx / (2 * math.pi))
        self._bands = []
        for psf, r in zip(self.psfs, reach, strict=True):
            inside = np.nonzero(np.abs(lattice_x) <= r)[0]
            x_slice, y_slice = slice(int(inside[0]), int(inside[-1]) + 1), slice(h - r, h + r + 1)
            transfer = (psf.otf(kmag).numpy() * pixel)[x_slice, y_slice]
            self._bands.append({
                "x": x_slice, "y": y_slice,
                "transfer": torch.as_tensor(transfer, dtype=torch.float32, device=self.device),
                "n_columns": min(r, n_fft // 2) + 1,
                "fold": [(xs, ys, xt, yt) for xs, xt in _fold_groups(lattice_x[x_slice], n_fft)
                         for ys, yt in _fold_groups(lattice_y[y_slice], n_fft)],
            })

    def __repr__(self) -> str:
        return f"ImageRenderer(bands={self.bands}, grid={self.grid}, device={str(self.device)!r}, fft={self._n_fft})"

    # --- inputs -------------------------------------------------------------------------

    def _structure(self, structure: Mapping[str, torch.Tensor], n_objects: int) -> dict[str, torch.Tensor]:
        if not isinstance(structure, Mapping):
            raise TypeError(f"structure must be a dict of tensors, got {type(structure).__name__}")
        values = {}
        for key, default in STRUCTURE_KEYS.items():
            if key in structure:
                value = torch.as_tensor(structure[key], device=self.device)
            elif key == "point_fraction" and "morphology" in structure:
                value = (torch.as_tensor(structure["morphology"], device=self.device) == 5).float()
            elif default is None:
                raise ValueError(f"structure lacks the required key {key!r}; required keys: "
                                 f"{[k for k, d in STRUCTURE_KEYS.items() if d is None]}")
            else:
                value = torch.full((n_objects,), float(default), device=self.device)
            if value.shape != (n_objects,):
                raise ValueError(f"structure[{key!r}] has shape {tuple(value.shape)}, expected ({n_objects},)")
            values[key] = value.long() if key == "n_clumps" else value.float()
        return values

    def _check(self, s: dict[str, torch.Tensor], band_flux: torch.Tensor, depth_ab: torch.Tensor) -> None:
        """Raise on bad values; one host synchronisation when all is well."""
        limits = dict(_LIMITS, n_clumps=(0, self.max_clumps))
        checks = {"band_flux": torch.isfinite(band_flux).all() & (band_flux >= 0).all(),
                  "depth_ab": torch.isfinite(depth_ab).all()}
        for key, value in s.items():
            low, high = limits.get(key, (-math.inf, math.inf))
            value = value.float()
            checks[key] = torch.isfinite(value).all() & (value >= low).all() & (value <= high).all()
        if bool(torch.stack(list(checks.values())).all()):
            return
        failed = next(key for key, ok in checks.items() if not bool(ok))
        if failed == "band_flux":
            raise ValueError("band_flux must be finite and >= 0 (nJy)")
        if failed == "depth_ab":
            raise ValueError("depth_ab has non-finite values; give a finite 5-sigma depth (AB mag) per band")
        value = s[failed].float()
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"structure[{failed!r}] has non-finite values")
        low, high = limits[failed]
        raise ValueError(f"structure[{failed!r}] must lie in [{low}, {high}], got values from "
                         f"{float(value.min()):.4g} to {float(value.max()):.4g}")

    def _fluxes(self, s: dict[str, torch.Tensor], band_flux: torch.Tensor) -> torch.Tensor:
        """(B, n_bands, 5) flux of each component: bulge, disk, companion, clumps, point."""
        point = s["point_fraction"]
        has_clumps = (s["n_clumps"] > 0).float()
        clumps_share = s["clump_fraction"] * has_clumps
        main = (1 - point) / (1 + s["companion_flux_ratio"])
        shares = torch.stack([
            main * (1 - clumps_share) * s["bulge_fraction"],
            main * (1 - clumps_share) * (1 - s["bulge_fraction"]),
            (1 - point) - main,
            main * clumps_share,
            point,
        ], dim=1)  # (B, 5), sums to 1
        weights = shares.unsqueeze(1) * self._tilt.unsqueeze(0)  # (B, n_bands, 5)
        weights = weights / weights.sum(dim=2, keepdim=True)
        return weights * band_flux.unsqueeze(2)

    # --- components on the frequency rectangle (b, rows, columns) -------------------------

    def _sersic_profile(self, sersic_n, re, q, angle) -> torch.Tensor:
        """(b, nx, ny) real Fourier transform of unit-flux elliptical Sersic profiles."""
        cos, sin = torch.cos(angle), torch.sin(angle)
        q2, re2 = q * q, re * re
        # (k r_e)^2 with k rotated to the major axis and the minor axis stretched by q.
        cxx = (re2 * (cos * cos + q2 * sin * sin))[:, None, None]
        cxy = (2 * re2 * cos * sin * (1 - q2))[:, None, None]
        cyy = (re2 * (sin * sin + q2 * cos * cos))[:, None, None]
        x2 = torch.addcmul(cxx * self._kx.square()[:, None] + cyy * self._ky.square(), cxy, self._kxky)
        return self._sersic(self._sersic.rows(sersic_n), x2)

    def _phase(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(b, 2, nx, ny) real and imaginary parts of the shift phases exp(-i k . x0)."""
        angle_x, angle_y = -x[:, None] * self._kx, -y[:, None] * self._ky
        cos_x, sin_x = torch.cos(angle_x)[:, :, None], torch.sin(angle_x)[:, :, None]
        cos_y, sin_y = torch.cos(angle_y)[:, None, :], torch.sin(angle_y)[:, None, :]
        # exp(i (a + b)) from the two 1D phases: an outer product.
        real = torch.addcmul(cos_x * cos_y, sin_x, sin_y, value=-1)
        imag = torch.addcmul(sin_x * cos_y, cos_x, sin_y)
        return torch.stack([real, imag], dim=1)

    def _clumps(self, s, centre_x, centre_y, draws) -> torch.Tensor:
        """(b, 2, nx, ny) real and imaginary parts of the transforms of sets of Gaussian clumps."""
        n_clumps = s["n_clumps"]
        active = torch.arange(draws.shape[1], device=self.device) < n_clumps[:, None]
        weight = -torch.log(draws[..., 0].clamp_min(1e-12)) * active  # Dirichlet(1) weights
        weight = weight / weight.sum(dim=1, keepdim=True).clamp_min(1e-30)
        # Uniform over the disk's ellipse out to 1.2 r_e.
        radius = 1.2 * s["disk_re_arcsec"][:, None] * torch.sqrt(draws[..., 1])
        azimuth = 2 * math.pi * draws[..., 2]
        major = radius * torch.cos(azimuth)
        minor = s["disk_q"][:, None] * radius * torch.sin(azimuth)
        cos = torch.cos(s["position_angle"])[:, None]
        sin = torch.sin(s["position_angle"])[:, None]
        x = (centre_x[:, None] + major * cos - minor * sin)[..., None]  # (b, C, 1)
        y = (centre_y[:, None] + major * sin + minor * cos)[..., None]
        # Weight x Gaussian envelope exp(-sigma^2 k^2 / 2) x phase, separable in k_x and k_y.
        half_sigma2 = -0.5 * s["clump_sigma_arcsec"].square()[:, None, None]
        amplitude_x = weight[..., None] * torch.exp(half_sigma2 * self._kx.square())  # (b, C, nx)
        amplitude_y = torch.exp(half_sigma2 * self._ky.square())  # (b, 1, ny)
        angle_x, angle_y = -x * self._kx, -y * self._ky
        real_x, imag_x = amplitude_x * torch.cos(angle_x), amplitude_x * torch.sin(angle_x)
        real_y, imag_y = amplitude_y * torch.cos(angle_y), amplitude_y * torch.sin(angle_y)
        # Sum over clumps of the complex outer products as one real product:
        # [[Re_x, -Im_x], [Im_x, Re_x]]^T-ish (b, 2 nx, 2C) @ [Re_y; Im_y] (b, 2C, ny).
        left = torch.cat([torch.cat([real_x, -imag_x], dim=1), torch.cat([imag_x, real_x], dim=1)], dim=2)
        right = torch.cat([real_y, imag_y], dim=1)
        return torch.bmm(left.transpose(1, 2), right).view(x.shape[0], 2, self._kx.numel(), self._ky.numel())

    def _present(self, flux: torch.Tensor) -> bool:
        """Whether any object of the chunk has this component (always True on a GPU)."""
        return self._sync_free or bool((flux > 0).any())

    def _render_noiseless(self, s: dict[str, torch.Tensor], fluxes: torch.Tensor, clump_draws: torch.Tensor) -> torch.Tensor:
        """(b, n_bands, n, n) noiseless images of one chunk."""
        n_objects = fluxes.shape[0]
        centre_x = self._centre + s["offset_x_arcsec"]
        centre_y = self._centre + s["offset_y_arcsec"]
        main_phase = self._phase(centre_x, centre_y)
        # Real profiles around the main centre; complex ones (own centres) as (b, 2, nx, ny).
        real_parts, complex_parts = [], []
        for column, prefix in ((_BULGE, "bulge"), (_DISK, "disk")):
            if self._present(fluxes[:, :, column]):
                profile = self._sersic_profile(s[f"{prefix}_n"], s[f"{prefix}_re_arcsec"], s[f"{prefix}_q"], s["position_angle"])
                real_parts.append((column, profile))
        if self._present(fluxes[:, :, _COMPANION]):
            sep, angle = s["companion_sep_arcsec"], s["companion_angle"]
            phase = self._phase(centre_x + sep * torch.cos(angle), centre_y + sep * torch.sin(angle))
            profile = self._sersic_profile(s["companion_n"], s["companion_re_arcsec"], s["companion_q"], s["companion_position_angle"])
            complex_parts.append((_COMPANION, phase.mul_(profile[:, None])))
        if self._present(fluxes[:, :, _CLUMPS]):
            n_max = clump_draws.shape[1] if self._sync_free else max(1, int(s["n_clumps"].max()))
            complex_parts.append((_CLUMPS, self._clumps(s, centre_x, centre_y, clump_draws[:, :n_max])))

        start, stop = self._crop, self._crop + self._n
        image = torch.empty((n_objects, len(self.bands), self._n, self._n), device=self.device)
        for band, layout in enumerate(self._bands):
            x, y = layout["x"], layout["y"]
            flux = fluxes[:, band, :, None, None]  # (b, 5, 1, 1)
            transfer = layout["transfer"]  # PSF x pixel
            # Main centre: point source + bulge + disk, a real transform times the phase.
            real = flux[:, _POINT].expand(-1, x.stop - x.start, y.stop - y.start)
            for column, profile in real_parts:
                real = torch.addcmul(real, profile[:, x, y], flux[:, column])
            real = real * transfer
            # Complex parts: (real and imaginary planes, flux x transfer).
            parts = [(part.transpose(0, 1)[:, :, x, y], flux[:, column] * transfer) for column, part in complex_parts]
            phase = main_phase.transpose(0, 1)[:, :, x, y]
            # Multiply and fold the aliases onto the (k_x >= 0 half of the) FFT grid in one
            # pass: real and imaginary planes first, so that the complex spectrum is made from
            # two blocks; columns beyond the band's cutoff stay zero and are left out.
            spectrum = torch.zeros((2, n_objects, layout["n_columns"], self._n_fft), device=self.device)
            for x_source, y_source, x_target, y_target in layout["fold"]:
                target = spectrum[:, :, x_target, y_target]
                target.addcmul_(phase[:, :, x_source, y_source], real[:, x_source, y_source])
                for values, weight in parts:
                    target.addcmul_(values[:, :, x_source, y_source], weight[:, x_source, y_source])
            # Inverse FFT along k_y (contiguous), keep the stamp's rows, then along k_x.
            rows = torch.fft.ifft(torch.complex(spectrum[0], spectrum[1]), dim=-1)[..., start:stop]
            image[:, band] = torch.fft.irfft(rows.transpose(-1, -2), n=self._n_fft, dim=-1)[..., start:stop]
        return image

    # --- public ---------------------------------------------------------------------------

    def render(
        self,
        structure: Mapping[str, torch.Tensor],
        band_flux: torch.Tensor,
        depth_ab: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """Render a batch of objects in every band, with and without noise.

        Parameters
        ----------
        structure : dict of str to `torch.Tensor`
            (B,) tensors, see ``STRUCTURE_KEYS`` (as made by
            ``jwst_embed.simulation.morphology.sample_structure``). Keys the renderer does
            not know (``morphology``, labels) are ignored, except that ``morphology == 5``
            (point source) implies ``point_fraction = 1`` when ``point_fraction`` is absent.
        band_flux : `torch.Tensor`
            (B, n_bands) total flux of each object in each band, nJy (>= 0).
        depth_ab : `torch.Tensor`
            (B, n_bands) 5-sigma point-source depth, AB mag (see `pixel_noise_njy`).
        generator : `torch.Generator`, optional
            Source of the clump positions, the noise and the bad pixels; the same seed gives
            the same images. It may live on any device.

        Returns
        -------
        dict
            ``images_noiseless``: (B, n_bands, H, W) float32, nJy per pixel;
            ``images``: the same plus Gaussian noise; ``images_ivar``: (B, n_bands, H, W)
            inverse variance, 1/nJy^2; ``images_mask``: (B, n_bands, H, W) bool, True = bad
            (only with ``bad_pixel_fraction > 0``; masked pixels are 0 with ivar 0).

        Raises
        ------
        ValueError
            Wrong shapes, missing structure keys, values out of range (``n_clumps`` above
            ``max_clumps`` included), negative or non-finite fluxes, non-finite depths.
        """
        band_flux = torch.as_tensor(band_flux, dtype=torch.float32, device=self.device)
        depth_ab = torch.as_tensor(depth_ab, dtype=torch.float32, device=self.device)
        n_bands = len(self.bands)
        if band_flux.ndim != 2 or band_flux.shape[1] != n_bands:
            raise ValueError(f"band_flux must have shape (B, {n_bands}) for bands {self.bands}, got {tuple(band_flux.shape)}")
        n_objects = band_flux.shape[0]
        if depth_ab.shape != band_flux.shape:
            raise ValueError(f"depth_ab must have shape {tuple(band_flux.shape)}, got {tuple(depth_ab.shape)}")
        s = self._structure(structure, n_objects)
        self._check(s, band_flux, depth_ab)
        if generator is None:
            generator = torch.Generator(device=self.device)
            generator.seed()

        def uniform(*shape: int) -> torch.Tensor:
            return torch.rand(shape, generator=generator, device=generator.device).to(self.device)

        # All random draws up front so the result does not depend on chunk_size.
        clump_draws = uniform(n_objects, self.max_clumps, 3)
        shape = (n_objects, n_bands, self._n, self._n)
        noise = torch.randn(shape, generator=generator, device=generator.device).to(self.device)
        fluxes = self._fluxes(s, band_flux)
        order = None
        if not self._sync_free and n_objects:
            # Group objects with the same components so that chunks can skip absent ones.
            present = (fluxes[:, :, :_POINT] > 0).any(dim=1).long()
            order = torch.argsort((present * torch.tensor([1, 2, 4, 8])).sum(dim=1), stable=True)
            s = {key: value[order] for key, value in s.items()}
            fluxes, clump_draws = fluxes[order], clump_draws[order]
        noiseless = torch.empty(shape, dtype=torch.float32, device=self.device)
        for start in range(0, n_objects, self.chunk_size):
            chunk = slice(start, start + self.chunk_size)
            images = self._render_chunk({k: v[chunk] for k, v in s.items()}, fluxes[chunk], clump_draws[chunk])
            if order is None:
                noiseless[chunk] = images
            else:
                noiseless.index_copy_(0, order[chunk], images)
        sigma = self._noise_factor * torch.pow(10.0, -0.4 * (depth_ab - AB_ZEROPOINT_NJY))  # (B, n_bands)
        sigma = sigma[:, :, None, None]
        images = noise.mul_(sigma).add_(noiseless)
        ivar = (1.0 / (sigma * sigma)).expand(shape).clone()
        if self.bad_pixel_fraction > 0:
            mask = uniform(*shape) < self.bad_pixel_fraction
            images = images.masked_fill_(mask, 0.0)
            ivar = ivar.masked_fill_(mask, 0.0)
        else:
            mask = torch.zeros(shape, dtype=torch.bool, device=self.device)
        return {"images_noiseless": noiseless, "images": images, "images_ivar": ivar, "images_mask": mask}
