"""The project's own files: one version, the documentation covers every public name,
nothing points outside the repository, outputs of the commands are ignored by git
(issue 19 items 1, 5, 7; issue 13 item 5)."""

import re
from pathlib import Path

import pytest

import convcore
from convcore import layers

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
if not (ROOT / "pyproject.toml").exists():
    pytest.skip("not run from a source checkout", allow_module_level=True)


def test_version_is_written_once():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r"^version\s*=", pyproject, re.M) is None
    assert 'dynamic = ["version"]' in pyproject
    cmake = re.search(r"project\(convcore\s+VERSION\s+([0-9.]+)",
                      (ROOT / "CMakeLists.txt").read_text())
    assert cmake and convcore.__version__ == cmake.group(1)


def test_installed_metadata_has_the_version():
    from importlib import metadata

    try:
        version = metadata.version("convcore")
    except metadata.PackageNotFoundError:
        pytest.skip("convcore is not installed (PYTHONPATH=src)")
    assert version == convcore.__version__


def test_no_stale_avx2_only_wording():
    pyproject = (ROOT / "pyproject.toml").read_text()
    description = re.search(r'^description = "(.*)"', pyproject, re.M).group(1)
    for text in (description, convcore.__doc__):
        assert "AVX-512" in text and "AVX2" in text


def test_readme_points_only_inside_the_repository():
    readme = (ROOT / "README.md").read_text()
    assert "shared/" not in readme and "DESIGN.md" not in readme
    for target in re.findall(r"\]\(([^)#]+)", readme):
        if not target.startswith("http"):
            assert (ROOT / target).exists(), target
    assert "docs/" in readme


def _documented_names():
    """Names given to autofunction/autoclass, and every ``__all__`` name of a module
    given to ``automodule`` with ``:members:``."""
    text = "\n".join(p.read_text() for p in DOCS.rglob("*.rst"))
    names = set(re.findall(r"auto(?:function|class):: ([\w.]+)", text))
    for module in re.findall(r"automodule:: ([\w.]+)\n(?:   :[^\n]*\n)*?   :members:\n", text):
        names.update(f"{module}.{n}" for n in __import__(module, fromlist=["_"]).__all__)
    return names


@pytest.mark.parametrize("module, prefix", [(convcore, "convcore"),
                                            (layers, "convcore.layers")])
def test_api_reference_covers_every_public_name(module, prefix):
    documented = _documented_names()
    for name in module.__all__:
        obj = getattr(module, name)
        if name == "layers" or isinstance(obj, type(convcore)):
            continue
        assert f"{prefix}.{name}" in documented or (
            prefix == "convcore" and name in ("convolve2d", "correlate2d")
            and f"convcore.{name}" in documented), name


def test_commands_outputs_are_ignored():
    ignored = (ROOT / ".gitignore").read_text().split()
    for entry in ("/convcore_demo/", "/convcore_classify/", "edges.pgm", "/bench_report/", "/docs/_build/"):
        assert entry in ignored
