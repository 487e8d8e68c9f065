"""Every ```python block in README.md and docs/ runs as written, so the docs cannot drift from the code.

Blocks of one file run in order in one shared namespace (a later block may use names an earlier one defined),
in a fresh temporary working directory (files the docs write land there). A failure names the file, the block
number (1-based, counting python blocks only) and its first line. Non-runnable snippets belong in ```bash or
```text blocks.
"""
from __future__ import annotations

import os
import re
import traceback
from pathlib import Path

import matplotlib
import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "docs").glob("*/*.md")])
_BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """(line number of the opening fence, code) for every ```python block in the file."""
    text = path.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in _BLOCK.finditer(text)]


def test_block_extraction_finds_fenced_python_only():
    fake = "x\n```python\na = 1\n```\n```bash\nexit 1\n```\n```python\nb = a + 1\n```\n"
    p = Path(os.environ.get("TMPDIR", "/tmp")) / "optdsl_doc_extract.md"
    p.write_text(fake)
    try:
        assert python_blocks(p) == [(2, "a = 1\n"), (8, "b = a + 1\n")]
    finally:
        p.unlink()


@pytest.fixture
def registry_restored():
    """A doc that registers a backend (writing-a-backend.md) must not leave it for later tests' dispatch."""
    from optdsl.backends import BACKENDS
    saved = dict(BACKENDS)
    yield
    BACKENDS.clear()
    BACKENDS.update(saved)


@pytest.mark.parametrize("path", [p for p in DOC_FILES if python_blocks(p)],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_doc_blocks_run(path, tmp_path, monkeypatch, registry_restored):
    matplotlib.use("Agg")  # docs may draw; never open a window
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": "__doc__"}
    rel = path.relative_to(ROOT)
    for k, (line, code) in enumerate(python_blocks(path), start=1):
        failure = None
        try:
            exec(compile(code, f"{rel}:block{k}(line {line})", "exec"), namespace)
        except Exception as e:  # noqa: BLE001 - report which block broke, with the end of its traceback
            failure = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=-3)}"
        if failure is not None:
            first = code.strip().splitlines()[0] if code.strip() else ""
            pytest.fail(f"{rel}, python block {k} (line {line}: {first!r}) failed: {failure}", pytrace=False)


def test_readme_install_commands_agree_with_the_package():
    """Both install commands (CPU-only index, public index = CUDA) pin the same torch, one that pyproject allows."""
    import tomllib
    from packaging.requirements import Requirement

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    cmds = [line for line in readme.splitlines() if "pip install torch==" in line]
    cpu = [c for c in cmds if "--index-url https://download.pytorch.org/whl/cpu" in c]
    cuda = [c for c in cmds if "--index-url" not in c]
    assert cpu and cuda, f"README needs a CPU-only and a CUDA torch install command, found {cmds}"
    pins = {re.search(r"torch==([\w.+]+)", c).group(1) for c in cmds}
    assert len(pins) == 1, f"README pins different torch versions: {pins}"
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (torch_req,) = [Requirement(d) for d in deps if Requirement(d).name == "torch"]
    assert torch_req.specifier.contains(pins.pop()), f"README's torch pin is outside pyproject's {torch_req}"
    assert all('pip install -e ".[dev]"' in c for c in cpu + cuda)
