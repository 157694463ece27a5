"""bench.ab runs each side's worker from its own checkout: PYTHONPATH must beat the editable
install of the project (and the working directory must not)."""

from __future__ import annotations

from pathlib import Path

from bench.ab import _imports_from


def test_a_checkout_first_on_the_path_is_what_the_worker_imports(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "streams").mkdir(parents=True)
    (tree / "streams" / "__init__.py").write_text("")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    assert _imports_from(tree, elsewhere) == (tree / "streams" / "__init__.py").resolve()


def test_without_a_checkout_the_worker_imports_the_installed_project(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[3]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _imports_from(empty, tmp_path) == (root / "streams" / "__init__.py").resolve()
