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
