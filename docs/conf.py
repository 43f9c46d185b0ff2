"""Sphinx configuration for jwst_embed (sphinx-astropy)."""

import datetime

from sphinx_astropy.conf.v2 import *  # noqa: F401,F403
from sphinx_astropy.conf.v2 import exclude_patterns, extensions, intersphinx_mapping

import jwst_embed

project = "jwst_embed"
author = "jwst_embed developers"
copyright = f"{datetime.date.today().year}, {author}"
version = jwst_embed.__version__.split("+")[0]
release = jwst_embed.__version__

extensions = list(extensions)
exclude_patterns = list(exclude_patterns) + ["_build", "**.ipynb_checkpoints"]

# Nothing is fetched at build time: CI and users build offline. Cross-references to other projects
# are resolved by name only where intersphinx inventories are cached; otherwise they render as text.
intersphinx_mapping = {}
# Every cross-reference must resolve (CI builds with -W). These machines reach no documentation
# site, so references to other projects' objects cannot be linked through intersphinx: they are
# ignored here by package, and render as plain names.
nitpicky = True
nitpick_ignore_regex = [
    # other projects' API (torch, numpy, astropy, specutils, scipy, ...) and the standard library
    (r"py:.*", r"(torch|numpy|astropy|specutils|scipy|sklearn|matplotlib|h5py|pooch|tqdm)(\..*)?"),
    (r"py:.*", r"(collections\.abc|pathlib|os|typing|dataclasses|argparse|logging|contextlib)\..*"),
    # the same objects as numpydoc and autodoc write them unqualified in types and signatures
    (r"py:.*", r"(Quantity|NDData|Table|Module|Tensor|unit|True|False|None)"),
    # fragments of subscripted builtins (``dict[str, float]``) that autodoc splits at the comma
    (r"py:class", r"(dict|tuple|list)\[.*"),
    # the encoders' shared trunk lives in a private module (its own methods are documented on them)
    (r"py:class", r"jwst_embed\.models\._layers\..*"),
]

html_theme_options = {
    "github_url": "",
    "use_edit_page_button": False,
}
html_title = f"{project} v{release}"
html_static_path = ["_static"]

automodapi_toctreedirnm = "api"
automodsumm_inherited_members = False
numpydoc_show_class_members = False

# -- additions for the tutorials, the model card and the benchmark page ---------------------------
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

# Local directives (docs/_ext): tables read from result files, optional benchmark results.
sys.path.insert(0, str(Path(__file__).parent / "_ext"))
extensions.append("jwst_embed_docs")

# The real JWST example files sit in shared/real beside the repository; the tutorials that read them
# look in $JWST_EMBED_REAL_DATA (as tests/conftest.py does).
os.environ.setdefault("JWST_EMBED_REAL_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "real"))

# Tutorial and figure scripts run at build time (matplotlib plot directive), from their own folder.
plot_include_source = False
plot_html_show_source_link = True
plot_html_show_formats = False
plot_formats = [("png", 100)]
plot_rcparams = {"figure.dpi": 100, "savefig.bbox": "tight"}
