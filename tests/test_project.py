"""The project's own files: one version, the documentation covers every public name,
nothing points outside the repository, every link, anchor and path the README and the
docs name resolves, outputs of the commands are ignored by git (issue 19 items 1, 5, 7;
issue 13 item 5)."""

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


def _code_spans(text):
    """The inline code of a Markdown or reST text (fenced blocks left out)."""
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return set(re.findall(r"``([^`\n]+)``", text)) | set(
        re.findall(r"(?<!`)`([^`\n]+)`(?!`)", text))


def _resolves(path, roots=(ROOT,)):
    """A named path exists below one of ``roots``; ``<isa>`` and the like are wildcards."""
    pattern = re.sub(r"<[^>]+>", "*", path)
    return any(list(root.glob(pattern)) or (root / pattern).exists() for root in roots)


def _repository_paths(text):
    """Code spans naming a file or folder of the repository from its top level."""
    top = {p.name for p in ROOT.iterdir() if not p.name.startswith((".git", "build"))}
    return {s for s in _code_spans(text)
            if re.fullmatch(r"[\w.<>*/-]+", s) and s.split("/")[0] in top
            and ("/" in s or (ROOT / s).is_file())}


def test_docs_point_only_inside_the_repository():
    for page in [*DOCS.rglob("*.rst"), *DOCS.rglob("*.md")]:
        text = page.read_text()
        for outside in ("../shared", "DESIGN.md", "ANCHORS.md", "/tmp/"):
            assert outside not in text, (page.relative_to(ROOT), outside)


def test_the_two_commands_are_the_same_everywhere():
    """The README's two commands (install + demo, install the test extras + pytest) are
    the install page's, and CI runs the second as written."""
    readme = (ROOT / "README.md").read_text()
    section = re.search(r"^## Two commands\n(.*?)(?=^## )", readme, re.M | re.S).group(1)
    commands = re.findall(r"```sh\n(.*?)\n```", section, re.S)
    assert commands == ['pip install ".[plot,learn]" && python -m convcore',
                        'pip install ".[test]" && python -m pytest']
    install = (DOCS / "install.rst").read_text()
    assert all(f"   {c}\n" in install for c in commands)
    assert f"\n{commands[1]}\n" in (ROOT / ".ci" / "run").read_text()


def test_readme_anchors_name_its_headings():
    readme = (ROOT / "README.md").read_text()
    # GitHub's slugs: lower case, punctuation dropped, spaces to hyphens.
    slugs = {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
             for h in re.findall(r"^#+ (.*)$", readme, re.M)}
    for anchor in re.findall(r"\]\(#([^)]+)\)", readme):
        assert anchor in slugs, anchor


def test_markdown_links_in_the_repository_resolve():
    for md in [ROOT / "README.md", *DOCS.rglob("*.md"), *(ROOT / "cpp").rglob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)", md.read_text()):
            if not re.match(r"[a-z]+:", target):
                assert (md.parent / target).exists(), (md.relative_to(ROOT), target)


def test_every_path_the_documentation_names_exists():
    pages = [ROOT / "README.md", *(p for p in DOCS.rglob("*.rst") if "_generated" not in p.parts)]
    for page in pages:
        for path in _repository_paths(page.read_text()):
            assert _resolves(path), (page.relative_to(ROOT), path)


def test_every_path_the_readme_map_names_exists():
    readme = (ROOT / "README.md").read_text()
    table = re.search(r"^## Map[^\n]*\n(.*?)(?=^## )", readme, re.M | re.S).group(1)
    # The map also names files relative to the folder its row is about.
    roots = [ROOT, ROOT / "cpp/include/convcore", ROOT / "cpp/src", ROOT / "cpp/src/ops",
             *ROOT.glob("cpp/src/kernels/*/"), ROOT / "cpp/src/kernels", ROOT / "src/convcore",
             ROOT / "src/convcore/data", ROOT / "tests"]
    named = [s for s in _code_spans(table)
             if re.fullmatch(r"[\w.<>*/-]+(/|\.(py|pyi|cpp|hpp|md|rst|toml|txt|in|sh|png|npy))", s)]
    assert len(named) > 50
    for path in named:
        assert _resolves(path, roots), path


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
