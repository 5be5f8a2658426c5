"""Package discovery for the `reverie.*` namespace (metadata lives in pyproject.toml).

The top-level folders are mapped into `reverie.*` (see DESIGN.md), which pyproject's static
`packages` list cannot discover: a hand-kept list once left `reverie.agents.claude` out of
every wheel. Here every folder under a mapped root is a package (a folder of deploy data
without `__init__.py` too), so a new subpackage or config folder ships without anyone
remembering to list it; tests/test_packaging.py builds the wheel and checks.
"""

from pathlib import Path

from setuptools import setup

ROOTS = {"protocol": "reverie.protocol", "runtime": "reverie.runtime", "agents": "reverie.agents",
         "deploy": "reverie.deploy"}
DEPLOY_DATA = ["*.toml", "*.json", "*.conf", "*.md"]


def packages() -> list[str]:
    here = Path(__file__).parent
    found = []
    for folder, name in ROOTS.items():
        root = here / folder
        for sub in sorted(p for p in [root, *root.rglob("*")] if p.is_dir()):
            rel = sub.relative_to(root).parts
            if not any(part == "__pycache__" or part.startswith(".") for part in rel):
                found.append(".".join((name, *rel)))
    return found


PACKAGES = packages()
setup(packages=PACKAGES, package_dir={name: folder for folder, name in ROOTS.items()},
      package_data={name: ["py.typed", *(DEPLOY_DATA if name.startswith("reverie.deploy") else [])]
                    for name in PACKAGES})
