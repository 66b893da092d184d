"""Sphinx configuration: the convcore documentation (``sphinx-build -W docs docs/_build/html``;
``sphinx-build -W -b doctest docs docs/_build/doctest`` runs every example).

The API pages are generated from the docstrings (autodoc + napoleon, NumPy style). Two
pieces are generated at build time so that they have one copy: the README's map of the
source tree (``_generated/map.rst``, included by the contributing page) and the list of
public C++ headers (``_generated/cpp_headers.rst``, included by the C++ page).
"""

from __future__ import annotations

import re
from pathlib import Path

import convcore

ROOT = Path(__file__).resolve().parent.parent

project = "convcore"
author = "the convcore authors"
copyright = "2026, the convcore authors"
release = convcore.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
]
exclude_patterns = ["_build", "_generated"]
templates_path: list = []
html_theme = "alabaster"
html_static_path: list = []
html_theme_options = {"description": "Fast 2D convolution on NumPy arrays", "fixed_sidebar": True}

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": False}
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False

# Every `>>>` example in the pages and the docstrings runs under `-b doctest`.
doctest_global_setup = "import numpy as np\nimport convcore"
doctest_test_doctest_blocks = "default"

nitpicky = False


# ----------------------------------------------------------------------------- README map


def _inline(md: str) -> str:
    """Markdown inline code and emphasis to reST."""
    md = re.sub(r"`([^`]+)`", r"``\1``", md)
    return re.sub(r"\*\*([^*]+)\*\*", r"**\1**", md)


def readme_map_rst(readme: Path) -> str:
    """The README's "Map: where things live" table as a reST list-table."""
    text = readme.read_text(encoding="utf-8")
    match = re.search(r"^## Map[^\n]*\n(.*?)(?=^## )", text, re.M | re.S)
    if match is None:
        raise RuntimeError("README.md has no '## Map' section")
    rows = [line.strip().strip("|").split(" | ") for line in match.group(1).splitlines()
            if line.startswith("|") and not re.match(r"^\|\s*-", line)]
    out = [".. list-table::", "   :header-rows: 1", "   :widths: 35 65", ""]
    for row in rows:
        if len(row) != 2:
            raise RuntimeError(f"README map row without two cells: {row}")
        out.append(f"   * - {_inline(row[0].strip())}")
        out.append(f"     - {_inline(row[1].strip())}")
    return "\n".join(out) + "\n"


def headers_rst(include_dir: Path) -> str:
    """Every public C++ header, each under its own heading, in full: the headers are
    the C++ API's documentation (shapes, layouts, formulas, exceptions). Paths from
    the source folder (a leading "/"), wherever the including page is."""
    out = []
    for header in sorted(include_dir.glob("*.hpp")):
        title = f"``convcore/{header.name}``"
        out += [title, "~" * len(title), "",
                f".. literalinclude:: /../cpp/include/convcore/{header.name}",
                "   :language: cpp", ""]
    return "\n".join(out)


def _write(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:  # unchanged: no rebuild
        path.write_text(text)


def _generate(app) -> None:
    generated = Path(app.srcdir) / "_generated"
    generated.mkdir(exist_ok=True)
    _write(generated / "map.rst", readme_map_rst(ROOT / "README.md"))
    _write(generated / "cpp_headers.rst", headers_rst(ROOT / "cpp" / "include" / "convcore"))


def setup(app):
    app.connect("builder-inited", _generate)
