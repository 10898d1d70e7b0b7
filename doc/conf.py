"""Sphinx configuration of the skbalance documentation."""

import os
import shutil
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
    # its timing page loads jQuery and DataTables from CDNs: the docs read offline
    "write_computation_times": False,
}

intersphinx_mapping = {}
# the theme users of the scientific Python stack know (scikit-learn, pandas)
html_theme = "pydata_sphinx_theme"
html_title = "skbalance"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_sidebars = {"index": [], "getting_started": []}
html_show_sourcelink = False

# MathJax served with the pages, so that they read offline: MathJax 3's
# self-contained SVG build, from the django-static-mathjax package (PyPI's
# copy of MathJax's files; no Django needed), copied into _static.
try:
    import mathjax as _mathjax_files
except ImportError as exc:
    raise ImportError("The docs serve MathJax themselves: pip install -e '.[docs]' "
                      "(django-static-mathjax provides its files).") from exc
_static = Path(tempfile.mkdtemp(prefix="skbalance-static-"))
shutil.copy(Path(_mathjax_files.__file__).parent / "static" / "mathjax" / "es5" / "tex-svg.js",
            _static / "tex-svg.js")
html_static_path = [str(_static)]
mathjax_path = "tex-svg.js"
suppress_warnings = ["config.cache"]
