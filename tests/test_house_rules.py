"""Repository-wide rules from HOUSE_STYLE.md: layering, module sizes, public names."""

import importlib
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("rewards", "rlenv", "policies")


def _loaded_after_import(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return {name.split(".")[0] for name in out.stdout.split()}


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("rewards", {"torch", "numpy", "gymnasium", "trl", "transformers", "sympy", "hypothesis"}),
        ("rlenv", {"torch", "trl", "transformers"}),
    ],
)
def test_layering(module, forbidden):
    # `import rewards` must stay cheap enough for any trainer's reward worker; `import rlenv` must not pull
    # torch (the environments are usable without a model).
    assert not (_loaded_after_import(module) & forbidden)


def test_rewards_do_not_import_upper_layers():
    for path in (ROOT / "rewards").rglob("*.py"):
        text = path.read_text()
        for name in ("import torch", "import numpy", "import gymnasium", "from rlenv", "from policies"):
            assert name not in text, f"{path.relative_to(ROOT)} contains {name!r}"


def test_policies_do_not_import_rlenv_or_rewards():
    for path in (ROOT / "policies").rglob("*.py"):
        text = path.read_text()
        for name in ("from rlenv", "import rlenv", "from rewards", "import rewards"):
            assert name not in text, f"{path.relative_to(ROOT)} contains {name!r}"


@pytest.mark.parametrize("package", PACKAGES)
def test_module_sizes(package):
    too_long = {
        str(p.relative_to(ROOT)): n
        for p in (ROOT / package).rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 600
    }
    assert not too_long, f"modules over 600 lines: {too_long}"


@pytest.mark.parametrize("package", PACKAGES)
def test_public_names_resolve(package):
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"
