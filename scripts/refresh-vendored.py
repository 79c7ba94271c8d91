#!/usr/bin/env python3
"""Refresh a vendored JavaScript package from the npm registry, at a pinned version.

    python scripts/refresh-vendored.py json-editor 2.17.2
    python scripts/refresh-vendored.py axe-core 4.14.1

``npm pack`` fetches the package's tarball (its integrity checked by npm against the
registry's sha512); its built file and its licence are copied next to a ``.version`` file that
names the package, the version, the tarball and its integrity. Nothing is loaded from a CDN at
run time: the pages serve json-editor from the package's static folder, and axe-core is used by
the browser tests only.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: short name -> (npm package, {file in the tarball: file written}, folder written to)
PACKAGES = {
    "json-editor": (
        "@json-editor/json-editor",
        {
            "package/dist/jsoneditor.js": "jsoneditor.js",
            "package/LICENSE": "jsoneditor.LICENSE",
            # the notices of what the build bundles (regenerator-runtime)
            "package/dist/jsoneditor.js.LICENSE.txt": "jsoneditor.js.LICENSE.txt",
        },
        ROOT / "gitrecords" / "web" / "static" / "vendor",
    ),
    "axe-core": (
        "axe-core",
        {
            "package/axe.min.js": "axe.min.js",
            "package/LICENSE": "axe.LICENSE",
            "package/LICENSE-3RD-PARTY.txt": "axe.LICENSE-3RD-PARTY.txt",
        },
        ROOT / "tests" / "data" / "axe-core",
    ),
}


def refresh(name: str, version: str) -> None:
    package, files, target = PACKAGES[name]
    with tempfile.TemporaryDirectory() as tmp:
        packed = subprocess.run(
            ["npm", "pack", f"{package}@{version}", "--json", "--pack-destination", tmp],
            check=True,
            capture_output=True,
            text=True,
        )
        [info] = json.loads(packed.stdout)
        if info["version"] != version:
            sys.exit(f"npm packed {info['name']} {info['version']}, not {version}")
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(Path(tmp) / info["filename"]) as tar:
            for member, written in files.items():
                source = tar.extractfile(member)
                if source is None:
                    sys.exit(f"{member} is not a file in {info['filename']}")
                (target / written).write_bytes(source.read())
                print(f"wrote {(target / written).relative_to(ROOT)}", file=sys.stderr)
    stem = next(iter(files.values())).split(".")[0]
    version_file = target / f"{stem}.version"
    version_file.write_text(
        f"{package} {version}\n"
        f"tarball: https://registry.npmjs.org/{package}/-/{package.split('/')[-1]}-{version}.tgz\n"
        f"integrity: {info['integrity']}\n"
        f"refreshed by: python scripts/refresh-vendored.py {name} {version}\n"
    )
    print(f"wrote {version_file.relative_to(ROOT)}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", choices=sorted(PACKAGES))
    parser.add_argument("version", help="the exact version to vendor, e.g. 2.17.2")
    args = parser.parse_args()
    refresh(args.name, args.version)


if __name__ == "__main__":
    main()
