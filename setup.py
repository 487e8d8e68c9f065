"""Package discovery: `optdsl/` is the modeling layer and the top-level `solvers/` folder is installed as
`optdsl.solvers` (see docs/concepts.md). Metadata lives in pyproject.toml; this file only lists packages,
so that a new subpackage under either root is picked up without editing anything."""
from setuptools import find_packages, setup

packages = find_packages(include=["optdsl", "optdsl.*"])
packages += ["optdsl.solvers"] + ["optdsl.solvers." + p for p in find_packages("solvers")]
setup(packages=packages, package_dir={"optdsl.solvers": "solvers"})
