"""Sphinx configuration of the skbalance documentation."""

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("SCIPY_ARRAY_API", "1")
# The gallery scripts save their figures; keep them out of the source tree.
os.environ.setdefault("SKBALANCE_FIGURE_DIR", tempfile.mkdtemp(prefix="skbalance-figures-"))
os.environ.setdefault("MPLBACKEND", "Agg")
sys.path.insert(0, str(Path(__file__).parents[1]))

import skbalance  # noqa: E402

project = "skbalance"
author = "The skbalance developers"
copyright = "2026, The skbalance developers"
release = skbalance.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

autosummary_generate = True
# scikit-learn adds request setters to every estimator; their docstrings point
# into scikit-learn's own documentation, so they are left out here.
autodoc_default_options = {
    "members": True,
    "inherited-members": False,
    "exclude-members": "set_fit_request, set_score_request, set_transform_request, "
    "set_partial_fit_request, set_predict_request, set_compute_weights_request, "
    "set_output",
}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
templates_path = []
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5"]

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
}

intersphinx_mapping = {}
html_theme = "alabaster"
html_static_path = []
html_theme_options = {"description": "Data balancing for scikit-learn", "fixed_sidebar": True}
suppress_warnings = ["config.cache"]
