"""Package layout for setuptools (metadata and dependencies are in pyproject.toml).

schemas/ and expectations/ ship inside the wheel as data of the ``pipelines`` package
(``pipelines/schemas``, ``pipelines/expectations``): Dataflow workers and the Flex Template image
install the wheel, not the checkout. ``pipelines.resources`` finds them in either layout.
"""

import os

from setuptools import find_packages, setup

DATA = {"pipelines.schemas": "schemas", "pipelines.expectations": "expectations"}


def data_packages() -> dict[str, str]:
    """Every folder under the data roots as a package name -> folder (so nested files ship too)."""
    found = {}
    for package, root in DATA.items():
        for folder, dirs, _ in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")) and d != "uncommitted")
            rel = os.path.relpath(folder, root)
            found[package if rel == "." else f"{package}.{rel.replace(os.sep, '.')}"] = folder
    return found


packages = data_packages()
# files inside code packages: the report's page template and the compiled catalogs (committed; `make i18n`)
CODE_DATA = {"pipelines.report": ["templates/*.html"], "pipelines": ["locale/*/LC_MESSAGES/*.mo"]}
setup(
    packages=find_packages(include=["pipelines*"]) + sorted(packages),
    package_dir=packages,
    package_data={**{name: ["*"] for name in packages}, **CODE_DATA},
)
