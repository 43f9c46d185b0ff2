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
nitpicky = False

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
