"""The public API is typed: every public signature annotated, and py.typed shipped."""

import inspect
import pathlib

import pytest

import skbalance as skb
from skbalance import datasets, plotting, ssl, theory

PUBLIC = [(module, name) for module in (skb, ssl, theory, datasets, plotting)
          for name in getattr(module, "__all__", []) if not name.startswith("_")]


def _callables():
    for module, name in PUBLIC:
        obj = getattr(module, name)
        if inspect.isclass(obj) and obj.__module__.startswith("skbalance"):
            yield f"{name}.__init__", obj.__init__
            for attr, member in vars(obj).items():
                if callable(member) and not attr.startswith("_"):
                    yield f"{name}.{attr}", member
                if isinstance(member, property) and not attr.startswith("_"):
                    yield f"{name}.{attr}", member.fget
        elif inspect.isfunction(obj):
            yield name, obj


def _missing(function):
    """The parameters (and the return) of a function without an annotation."""
    signature = inspect.signature(function)
    missing = [p.name for p in signature.parameters.values()
               if p.name not in ("self", "cls") and p.annotation is inspect.Parameter.empty]
    if signature.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


@pytest.mark.parametrize("name, function", list(_callables()), ids=lambda v: v
                         if isinstance(v, str) else "")
def test_public_signatures_are_annotated(name, function):
    assert _missing(function) == []


def test_the_annotation_check_can_fail():
    def untyped(x, y: int = 0):
        return x

    assert _missing(untyped) == ["x", "return"]
    assert len(list(_callables())) > 50


def test_package_ships_py_typed():
    assert (pathlib.Path(skb.__file__).parent / "py.typed").exists()
