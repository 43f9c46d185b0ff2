"""Redshifts from spectra by physics: templates, chi-squared fits, and the joint network x template p(z).

`TemplateFitter` fits NIRSpec PRISM spectra with non-negative sums of rest-frame templates
(`DEFAULT_TEMPLATES`: galaxies, AGN continua, broad and narrow lines, dense-gas Balmer breaks,
damped Lyman-alpha) over redshifts 0-20; ``joint_redshift`` multiplies a network's p(z) by that
spectral likelihood, with a floor so that a wrong network cannot veto the data.
"""

from .template_fit import *  # noqa: F401,F403
from .template_fit import __all__ as _template_fit_all
from .templates import *  # noqa: F401,F403
from .templates import __all__ as _templates_all

__all__ = [*_templates_all, *_template_fit_all]
