"""The examples in the exporters' docstrings run (the test command collects tests/ only)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import brownout.exporters

MODULES = sorted(m.name for m in pkgutil.iter_modules(brownout.exporters.__path__, "brownout.exporters."))


@pytest.mark.parametrize("name", ["brownout.exporters", *MODULES])
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
