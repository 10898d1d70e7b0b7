"""The documentation builds without a warning (gallery pages without running
the examples, which tests/test_plotting.py runs)."""

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx")
pytest.importorskip("sphinx_gallery")
pytest.importorskip("numpydoc")

DOC = Path(__file__).parents[1] / "doc"


@pytest.mark.slow
def test_docs_build_with_warnings_as_errors(tmp_path):
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
               "-D", "sphinx_gallery_conf.plot_gallery=0", "-d", str(tmp_path / "doctrees"),
               str(DOC), str(tmp_path / "html")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (tmp_path / "html" / "api.html").exists()
