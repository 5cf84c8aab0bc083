"""Vendor the built JavaScript libraries the project ships or tests with, at pinned versions.

    .venv/bin/python scripts/vendor.py            # every package below
    .venv/bin/python scripts/vendor.py chart.js   # one of them

Each package is taken from the npm registry with npm itself (``npm pack``, so the registry's
integrity check applies), and only the named built files and licences are copied. Each vendor
directory has a MANIFEST.json naming every package's version, licence, tarball integrity and
sha256, and each copied file's origin and sha256; tests/test_vendor.py checks the files against
it. Only this script talks to the registry: nothing is fetched at run time or test time.
To upgrade, change a version here, run the script, and commit the files with their manifest.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "gateway" / "static" / "vendor"  # served by the gateway (/docs, /ui/)
TEST_ONLY = ROOT / "tests" / "browser" / "vendor"  # loaded into the browser by tests only
ABOUT = {
    SHIPPED: "Third-party files the gateway serves (GET /docs, /ui/); written by scripts/vendor.py, "
             "checked by tests/test_vendor.py. Paths are relative to this file.",
    TEST_ONLY: "Third-party files the browser tests inject (never served); written by scripts/vendor.py, "
               "checked by tests/test_vendor.py. Paths are relative to this file.",
}


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    license: str
    root: Path
    directory: str
    files: dict[str, str]  # name in the vendor directory → path inside the npm tarball


PACKAGES = [
    Package("redoc", "2.5.4", "MIT", SHIPPED, "redoc", {
        "redoc.standalone.js": "package/bundles/redoc.standalone.js",
        "redoc.standalone.js.LICENSE.txt": "package/bundles/redoc.standalone.js.LICENSE.txt",
        "LICENSE": "package/LICENSE",
    }),
    Package("chart.js", "4.6.2", "MIT", SHIPPED, "chartjs", {
        "chart.umd.min.js": "package/dist/chart.umd.min.js",
        "LICENSE.md": "package/LICENSE.md",
    }),
    Package("axe-core", "4.14.1", "MPL-2.0", TEST_ONLY, "axe-core", {
        "axe.min.js": "package/axe.min.js",
        "LICENSE": "package/LICENSE",
        "LICENSE-3RD-PARTY.txt": "package/LICENSE-3RD-PARTY.txt",
    }),
]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch(package: Package, work: Path) -> dict:
    """Copy the package's files into place; its manifest entry."""
    spec = f"{package.name}@{package.version}"
    tarball = work / subprocess.run(["npm", "pack", "--silent", spec], cwd=work, check=True,
                                    capture_output=True, text=True).stdout.strip().splitlines()[-1]
    integrity = subprocess.run(["npm", "view", spec, "dist.integrity"], check=True,
                               capture_output=True, text=True).stdout.strip()
    unpacked = work / package.name
    with tarfile.open(tarball) as tar:
        tar.extractall(unpacked, filter="data")
    dest = package.root / package.directory
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for name, origin in package.files.items():
        shutil.copyfile(unpacked / origin, dest / name)
    return {
        "name": package.name, "version": package.version, "license": package.license,
        "source": f"npm package {spec} ({tarball.name})",
        "tarball_integrity": integrity, "tarball_sha256": sha256(tarball),
        "files": [{"path": f"{package.directory}/{name}", "from": package.files[name],
                   "sha256": sha256(dest / name)} for name in sorted(package.files)],
    }


def write_manifest(root: Path, entries: dict[str, dict]) -> None:
    path = root / "MANIFEST.json"
    known = {p["name"]: p for p in json.loads(path.read_text())["packages"]} if path.exists() else {}
    known.update(entries)
    wanted = [p.name for p in PACKAGES if p.root == root]
    manifest = {"about": ABOUT[root], "packages": [known[name] for name in wanted if name in known]}
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")


def main(names: list[str]) -> None:
    chosen = [p for p in PACKAGES if not names or p.name in names]
    if names and len(chosen) != len(set(names)):
        sys.exit(f"unknown package; known: {', '.join(p.name for p in PACKAGES)}")
    with tempfile.TemporaryDirectory() as tmp:
        for root in {p.root for p in chosen}:
            entries = {p.name: fetch(p, Path(tmp)) for p in chosen if p.root == root}
            write_manifest(root, entries)
            print(f"vendored {', '.join(entries)} into {root.relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
