"""Every Python code block of the README and the docs runs as written, without
warnings (blocks that import CuPy run where CuPy is installed)."""

import importlib.util
import re
import warnings
from pathlib import Path

import pytest
from sklearn.exceptions import ConvergenceWarning

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "doc").rglob("*.rst"))]


def _blocks(path):
    text = path.read_text()
    if path.suffix == ".md":
        return re.findall(r"```python\n(.*?)```", text, flags=re.S)
    blocks = []
    for match in re.finditer(r"\.\. code-block:: python\n\n((?:(?:    .*)?\n)+)", text):
        lines = [line[4:] for line in match.group(1).splitlines()]
        blocks.append("\n".join(lines))
    return blocks


DOCUMENTS = [path for path in DOCUMENTS if _blocks(path)]


def test_the_documents_have_code_to_run():
    assert ROOT / "README.md" in DOCUMENTS
    assert sum(len(_blocks(path)) for path in DOCUMENTS) >= 8


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_code_blocks_run_without_warnings(path, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for block in _blocks(path):
        if "import cupy" in block and importlib.util.find_spec("cupy") is None:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            warnings.simplefilter("error", RuntimeWarning)
            warnings.simplefilter("error", UserWarning)
            exec(compile(block, str(path), "exec"), namespace)
