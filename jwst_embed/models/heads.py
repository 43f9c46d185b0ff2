"""Prediction heads on top of an embedding: redshift PDF, stellar mass, morphology, generic MLP.

Each head is an `~torch.nn.Module` with ``forward(embedding) -> raw output``,
``loss(output, target) -> scalar`` and ``predict(embedding) -> dict`` of
physical quantities. They are trained on frozen embeddings or end to end.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..classes import MORPHOLOGY_CLASSES

__all__ = ["MLPHead", "RedshiftHead", "MassHead", "MorphologyHead", "MORPHOLOGY_CLASSES"]



def _mlp(in_dim: int, out_dim: int, hidden: int, depth: int, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = in_dim
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout)]
        width = hidden
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class MLPHead(nn.Module):
    """Generic regression head: MLP ``(B, in_dim) -> (B, out_dim)`` with mean-squared-error loss.

    Parameters
    ----------
    in_dim, out_dim : int
        Embedding width and number of outputs.
    hidden, depth : int
        Hidden width and number of hidden layers (0 = linear probe).
    dropout : float
        Dropout after each hidden layer.

    Examples
    --------
    >>> import torch
    >>> from jwst_embed.models import MLPHead
    >>> head = MLPHead(8, 2, hidden=16, depth=1)
    >>> head(torch.zeros(4, 8)).shape
    torch.Size([4, 2])
    """

    def __init__(
        self, in_dim: int, out_dim: int = 1, hidden: int = 256, depth: int = 2, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.net = _mlp(in_dim, out_dim, hidden, depth, dropout)

    def forward(self, embedding: Tensor) -> Tensor:
        return self.net(embedding.float())

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        """Mean squared error; ``target`` has the shape of ``output``."""
        return F.mse_loss(output, target.reshape(output.shape).to(output.dtype))

    @torch.no_grad()
    def predict(self, embedding: Tensor) -> dict[str, Tensor]:
        """``{"value": (B, out_dim)}``."""
        return {"value": self(embedding)}


class RedshiftHead(nn.Module):
    """Redshift as a distribution over bins uniform in log(1 + z) from z = 0 to ``z_max``.

    Parameters
    ----------
    in_dim : int
        Embedding width.
    n_bins : int
        Number of log(1 + z) bins.
    z_max : float
        Upper edge of the last bin.
    label_sigma : float
        Width, in log(1 + z), of the Gaussian that smooths the one-hot target
        (0 = plain cross-entropy on the bin holding the true redshift). The
        default, ~1.5 bins, makes near misses cheaper than far ones.
    hidden, depth, dropout :
        As in `MLPHead`.

    Examples
    --------
    >>> import torch
    >>> from jwst_embed.models import RedshiftHead
    >>> head = RedshiftHead(8, n_bins=64)
    >>> result = head.predict(torch.zeros(2, 8))
    >>> result["pdf"].shape, bool((result["z_16"] <= result["z_median"]).all())
    (torch.Size([2, 64]), True)
    """

    #: Relative redshift error, abs(dz) / (1 + z), beyond which an estimate is an outlier.
    OUTLIER_DZ = 0.15
    #: Probability by which the most probable window must beat the median's to move the estimate.
    WINDOW_GAIN = 0.05

    def __init__(
        self,
        in_dim: int,
        n_bins: int = 256,
        z_max: float = 16.0,
        label_sigma: float = 0.015,
        hidden: int = 256,
        depth: int = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.label_sigma = label_sigma
        self.net = _mlp(in_dim, n_bins, hidden, depth, dropout)
        edges = torch.linspace(0.0, math.log1p(z_max), n_bins + 1)
        self.register_buffer("log1pz_edges", edges, persistent=False)
        self.register_buffer("log1pz_centers", 0.5 * (edges[1:] + edges[:-1]), persistent=False)

    @property
    def z_centers(self) -> Tensor:
        """``(n_bins,)`` redshift at the centre (in log(1 + z)) of each bin."""
        return torch.expm1(self.log1pz_centers)

    def forward(self, embedding: Tensor) -> Tensor:
        """``(B, n_bins)`` logits."""
        return self.net(embedding.float())

    def target_distribution(self, redshift: Tensor) -> Tensor:
        """``(B, n_bins)`` training target for true redshifts ``(B,)``."""
        log1pz = torch.log1p(redshift.float().clamp(min=0.0))
        if self.label_sigma <= 0:
            index = torch.bucketize(log1pz, self.log1pz_edges[1:-1])
            return F.one_hot(index, self.log1pz_centers.numel()).float()
        distance = (self.log1pz_centers[None, :] - log1pz[:, None]) / self.label_sigma
        target = torch.exp(-0.5 * distance**2)
        return target / target.sum(dim=1, keepdim=True).clamp_min(1e-30)

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        """Cross-entropy of the logits against the (smoothed) true-redshift distribution."""
        return (
            -(self.target_distribution(target) * F.log_softmax(output.float(), dim=1))
            .sum(dim=1)
            .mean()
        )

    @torch.no_grad()
    def predict(self, embedding: Tensor) -> dict[str, Tensor]:
        """PDF and summary statistics.

        Returns
        -------
        result : dict
            ``"pdf"`` ``(B, n_bins)`` probabilities per bin (sum to 1; bin
            centres in `z_centers`), ``"z_median"``, ``"z_16"``, ``"z_84"``
            (percentiles of the PDF, linear in log(1 + z) within a bin),
            ``"z_mode"`` and ``"z_point"`` (`point_estimate`), each ``(B,)``.
        """
        pdf = torch.softmax(self(embedding), dim=1)
        result = {"pdf": pdf, "z_mode": self.z_centers[pdf.argmax(dim=1)]}
        for name, quantile in (("z_16", 0.16), ("z_median", 0.5), ("z_84", 0.84)):
            result[name] = torch.expm1(self._quantile(pdf, quantile))
        result["z_point"] = self.point_estimate(pdf)
        return result

    def point_estimate(self, pdf: Tensor) -> Tensor:
        """``(B,)`` redshift that reports a PDF: its median, kept inside its most probable peak.

        An outlier is a redshift off by more than `OUTLIER_DZ` (1 + z). The median of a
        multimodal PDF can fall between its peaks, where no solution lies; so where the window
        of outlier width that holds the most probability holds at least `WINDOW_GAIN` more
        than the window around the median, the median *within* that window is reported instead.
        A single-peaked PDF keeps its median (its most probable window contains it), and a flat
        one too (no window wins by the margin).

        Parameters
        ----------
        pdf : `torch.Tensor`
            ``(B, n_bins)`` probabilities per bin of this head.

        Returns
        -------
        z : `torch.Tensor`
        """
        # the redshifts z_true within the outlier threshold of an estimate z: ln(1 + z_true) in
        # [ln(1 + z) - ln(1 + dz), ln(1 + z) - ln(1 - dz)], in whole bins of this head
        width = float(self.log1pz_edges[1] - self.log1pz_edges[0])
        below = int(math.log1p(self.OUTLIER_DZ) / width)
        above = int(-math.log1p(-self.OUTLIER_DZ) / width)
        n_bins = pdf.shape[1]
        cdf = F.pad(torch.cumsum(pdf, dim=1), (1, 0))
        centre = torch.arange(n_bins, device=pdf.device)
        start, stop = (centre - below).clamp(min=0), (centre + above + 1).clamp(max=n_bins)
        mass = cdf[:, stop] - cdf[:, start]  # (B, n_bins): probability of each bin's window
        best = mass.argmax(dim=1)
        median = self._quantile(pdf, 0.5)
        median_bin = torch.bucketize(median, self.log1pz_edges[1:-1])
        gain = mass.gather(1, best[:, None]) - mass.gather(1, median_bin[:, None])
        move = gain[:, 0] >= self.WINDOW_GAIN
        inside = (centre[None, :] >= start[best][:, None]) & (centre[None, :] < stop[best][:, None])
        peak = torch.where(inside, pdf, torch.zeros_like(pdf))
        peak = peak / peak.sum(dim=1, keepdim=True).clamp_min(1e-30)
        return torch.expm1(torch.where(move, self._quantile(peak, 0.5), median))

    def _quantile(self, pdf: Tensor, quantile: float) -> Tensor:
        cdf = torch.cumsum(pdf, dim=1)
        index = torch.searchsorted(
            cdf, torch.full((pdf.shape[0], 1), quantile, device=pdf.device, dtype=cdf.dtype)
        )
        index = index.clamp(max=pdf.shape[1] - 1).squeeze(1)
        cdf_below = torch.where(
            index > 0,
            cdf.gather(1, (index - 1).clamp(min=0)[:, None]).squeeze(1),
            torch.zeros_like(index, dtype=cdf.dtype),
        )
        in_bin = pdf.gather(1, index[:, None]).squeeze(1)
        fraction = ((quantile - cdf_below) / in_bin.clamp_min(1e-12)).clamp(0.0, 1.0)
        low, high = self.log1pz_edges[index], self.log1pz_edges[index + 1]
        return low + fraction * (high - low)


class MassHead(nn.Module):
    """Stellar mass with uncertainty: Gaussian mean and log-variance of log10(M/Msun).

    Examples
    --------
    >>> import torch
    >>> from jwst_embed.models import MassHead
    >>> head = MassHead(8)
    >>> sorted(head.predict(torch.zeros(3, 8)))
    ['log_mass', 'log_mass_sigma']
    """

    def __init__(
        self,
        in_dim: int,
        hidden: int = 256,
        depth: int = 2,
        dropout: float = 0.0,
        offset: float = 9.0,
    ) -> None:
        super().__init__()
        # Centre the initial prediction on a typical mass so training starts near the data.
        self.offset = offset
        self.net = _mlp(in_dim, 2, hidden, depth, dropout)

    def forward(self, embedding: Tensor) -> Tensor:
        """``(B, 2)``: mean log mass and log variance (clamped to [-10, 5])."""
        raw = self.net(embedding.float())
        return torch.stack([raw[:, 0] + self.offset, raw[:, 1].clamp(-10.0, 5.0)], dim=1)

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        """Gaussian negative log-likelihood of true ``log_mass (B,)``."""
        mean, log_var = output[:, 0], output[:, 1]
        return 0.5 * (log_var + (target.float() - mean) ** 2 * torch.exp(-log_var)).mean()

    @torch.no_grad()
    def predict(self, embedding: Tensor) -> dict[str, Tensor]:
        """``{"log_mass": (B,), "log_mass_sigma": (B,)}``."""
        output = self(embedding)
        return {"log_mass": output[:, 0], "log_mass_sigma": torch.exp(0.5 * output[:, 1])}


class MorphologyHead(nn.Module):
    """Morphology class probabilities (``MORPHOLOGY_CLASSES``), cross-entropy loss.

    Examples
    --------
    >>> import torch
    >>> from jwst_embed.models import MorphologyHead
    >>> head = MorphologyHead(8)
    >>> head.predict(torch.zeros(2, 8))["probabilities"].shape
    torch.Size([2, 6])
    """

    def __init__(
        self,
        in_dim: int,
        n_classes: int = len(MORPHOLOGY_CLASSES),
        hidden: int = 256,
        depth: int = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.net = _mlp(in_dim, n_classes, hidden, depth, dropout)

    def forward(self, embedding: Tensor) -> Tensor:
        """``(B, n_classes)`` logits."""
        return self.net(embedding.float())

    def loss(self, output: Tensor, target: Tensor) -> Tensor:
        """Cross-entropy against integer class labels ``(B,)``."""
        return F.cross_entropy(output.float(), target.long())

    @torch.no_grad()
    def predict(self, embedding: Tensor) -> dict[str, Tensor]:
        """``{"probabilities": (B, n_classes), "label": (B,)}``."""
        probabilities = torch.softmax(self(embedding), dim=1)
        return {"probabilities": probabilities, "label": probabilities.argmax(dim=1)}
