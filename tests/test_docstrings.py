"""Every public name has a valid numpydoc docstring with an Examples section."""

import inspect

import pytest

import skbalance
from skbalance import datasets, kernels, plotting, ssl, theory

numpydoc_validate = pytest.importorskip("numpydoc.validate")

# Checks left out, with their reason.
IGNORED = {
    "SA01": "a See Also section is not required on every name",
    "ES01": "an extended summary is not required where the summary says it all",
    "GL08": "private helpers are not public names",
    "RT02": "a single return value is named (``weights : ndarray``), as numpydoc's "
            "format guide allows, because the name says what it is",
}


def _public_names():
    names = []
    for module in (skbalance, theory, ssl, kernels, plotting, datasets):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.ismodule(obj) or name.startswith("__"):
                continue
            path = f"{obj.__module__}.{obj.__qualname__}"
            names.append(path)
            if inspect.isclass(obj):
                for attribute, member in vars(obj).items():
                    if attribute.startswith("_") or not callable(member):
                        continue
                    names.append(f"{path}.{attribute}")
    return sorted(set(names))


@pytest.mark.parametrize("name", _public_names())
def test_docstring_is_valid(name):
    result = numpydoc_validate.validate(name)
    errors = [(code, message) for code, message in result["errors"] if code not in IGNORED]
    assert not errors, f"{name}: {errors}"
