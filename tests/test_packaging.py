"""`solvers/` is installed as `optdsl.solvers`, in editable installs and in built wheels."""
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_solvers_importable_as_optdsl_solvers():
    import optdsl.solvers.common as common
    import optdsl.solvers.linalg
    assert Path(common.__file__).resolve().parent == ROOT / "solvers"
    assert Path(optdsl.solvers.linalg.__file__).resolve().parent == ROOT / "solvers" / "linalg"


def test_every_subpackage_is_listed_for_the_wheel():
    from setuptools import find_packages
    listed = set(find_packages(str(ROOT), include=["optdsl", "optdsl.*"]))
    listed |= {"optdsl.solvers"} | {"optdsl.solvers." + p for p in find_packages(str(ROOT / "solvers"))}
    on_disk = set()
    for base, dotted in ((ROOT / "optdsl", "optdsl"), (ROOT / "solvers", "optdsl.solvers")):
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base)
            on_disk.add(".".join([dotted, *rel.parts]) if rel.parts else dotted)
    assert on_disk <= listed, f"not packaged: {sorted(on_disk - listed)}"


@pytest.mark.slow
def test_built_wheel_contains_and_imports_solvers(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                   check=True)
    (whl,) = tmp_path.glob("optdsl-*.whl")
    names = zipfile.ZipFile(whl).namelist()
    assert "optdsl/solvers/common.py" in names and "optdsl/solvers/linalg/__init__.py" in names
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(whl)],
                   check=True)
    env = {**os.environ, "PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-c", "import optdsl.solvers.common as c; print(c.__file__)"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert str(target) in out.stdout
