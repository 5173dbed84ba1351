"""Every docstring example in the package runs (the exporters have their own module)."""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil

import pytest

import brownout

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(brownout.__path__, "brownout.")
    if not m.name.startswith("brownout.exporters")
)


@pytest.mark.parametrize("name", ["brownout", *MODULES])
def test_docstring_examples(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # litellm fetches a price list over the network at import unless told not to
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.IGNORE_EXCEPTION_DETAIL)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


def test_public_api_is_pinned() -> None:
    assert sorted(brownout.__all__) == ["Decision", "Event", "Finding", "InvalidEvent", "Key", "__version__"]
    assert os.path.basename(brownout.__file__) == "__init__.py"
