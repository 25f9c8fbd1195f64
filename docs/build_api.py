"""Build the API reference from the docstrings with pdoc: every module of
netsim, algorithms, topologies and actors (pdoc by itself documents only the
submodules a package's ``__all__`` names).

    python docs/build_api.py [OUT]      # default docs/api; `make api` runs it
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Iterator
from pathlib import Path

PACKAGES = ("netsim", "algorithms", "topologies", "actors")


def modules() -> Iterator[str]:
    for name in PACKAGES:
        package = importlib.import_module(name)
        yield name
        for info in pkgutil.walk_packages(package.__path__, f"{name}."):
            yield info.name


def build(out: Path) -> None:
    import pdoc
    import pdoc.render

    pdoc.render.configure(docformat="restructuredtext")
    pdoc.pdoc(*modules(), output_directory=out)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "api"
    build(target)
    print(f"{target / 'index.html'}")
