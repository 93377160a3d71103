"""setuptools hook (the metadata lives in pyproject.toml): a wheel, and ``pip install .``, carry
the native op's C++/CUDA sources and the bundled models inside the package, so an installed
grootvl builds its op on first use and loads the bundled models offline, wherever it is installed.

    csrc/        -> grootvl_core/_csrc/          (read by grootvl_core.ops.build.csrc_dir)
    checkpoints/ -> grootvl_core/_checkpoints/   (read by grootvl_core.zoo)

The models are shipped, not fetched, because the demo and the zoo promise that they work offline
(design.md "Offline first"); they are 29 MB. Editable installs read both folders in place.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = {"csrc": "_csrc", "checkpoints": "_checkpoints"}


class BuildPyWithSourcesAndModels(build_py):
    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for folder, name in SHIPPED.items():
            if not (ROOT / folder).is_dir():
                raise FileNotFoundError(f"setup.py: {ROOT / folder} is missing; build from a complete "
                                        "source checkout (or an sdist made by `python -m build`)")
            target = Path(self.build_lib) / "grootvl_core" / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(ROOT / folder, target,
                            ignore=shutil.ignore_patterns("__pycache__", "*.o", "*.so", "build.ninja"))


setup(cmdclass={"build_py": BuildPyWithSourcesAndModels})
