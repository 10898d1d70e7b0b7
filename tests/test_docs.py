"""The documentation builds without a warning, every gallery example run."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx")
pytest.importorskip("sphinx_gallery")
pytest.importorskip("numpydoc")

DOC = Path(__file__).parents[1] / "doc"


@pytest.mark.slow
def test_docs_build_with_warnings_as_errors_and_every_example_run(tmp_path):
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
               "-d", str(tmp_path / "doctrees"), str(DOC), str(tmp_path / "html")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    html = tmp_path / "html"
    assert (html / "api.html").exists()
    examples = sorted((DOC.parent / "examples").glob("plot_*.py"))
    for example in examples:
        page = (html / "auto_examples" / f"{example.stem}.html").read_text()
        assert "Traceback" not in page and "BROKEN" not in page, example.name
        assert f"sphx_glr_{example.stem}_001.png" in page, example.name  # its figure
    leaks = [str(DOC.parent), str(tmp_path)]
    for page in html.rglob("*.html"):
        text = page.read_text()
        assert not any(leak in text for leak in leaks), page.name
        # offline: every script, stylesheet and image comes with the pages
        assert _remote_assets(text) == [], page.name
    theory = (html / "user_guide" / "theory.html").read_text()
    assert "_static/tex-svg.js" in theory and (html / "_static" / "tex-svg.js").exists()


def _remote_assets(page):
    """src= and stylesheet href= that point off the site."""
    sources = re.findall(r'<(?:script|img)[^>]*\ssrc="([^"]+)"', page)
    sheets = re.findall(r'<link[^>]*rel="(?:stylesheet|preload)"[^>]*href="([^"]+)"', page)
    return [url for url in sources + sheets if re.match(r"(https?:)?//", url)]


def test_the_offline_check_sees_remote_assets():
    page = ('<script src="https://cdn.example/mathjax.js"></script><script src="_static/a.js">'
            '<link rel="stylesheet" href="//fonts.example/f.css"><img src="x.png">')
    assert _remote_assets(page) == ["https://cdn.example/mathjax.js", "//fonts.example/f.css"]
