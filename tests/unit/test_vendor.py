"""Vendored third-party files (scripts/vendor.py): each vendor directory holds exactly the files its
MANIFEST.json lists, byte for byte, each package at a pinned version with its licence."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from scripts.vendor import PACKAGES, SHIPPED, TEST_ONLY

ROOTS = [SHIPPED, TEST_ONLY]


def manifest(root: Path) -> dict:
    return json.loads((root / "MANIFEST.json").read_text())


@pytest.mark.parametrize("root", ROOTS, ids=lambda r: r.parent.name)
def test_the_manifest_lists_every_vendored_file_with_its_sha256(root):
    listed = set()
    for package in manifest(root)["packages"]:
        assert package["name"] and re.fullmatch(r"\d+\.\d+\.\d+", package["version"]), package
        assert package["license"] and package["source"] and package["tarball_integrity"].startswith("sha512-")
        assert re.fullmatch(r"[0-9a-f]{64}", package["tarball_sha256"])
        for entry in package["files"]:
            path = root / entry["path"]
            assert path.is_file(), f"{entry['path']} listed in MANIFEST.json but missing"
            assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], f"{entry['path']} changed"
            listed.add(path)
    on_disk = {p for p in root.rglob("*") if p.is_file() and p.name != "MANIFEST.json"}
    assert on_disk == listed, f"vendored files not in MANIFEST.json: {sorted(map(str, on_disk - listed))}"


def test_the_manifests_match_the_pinned_versions_of_the_vendor_script():
    for package in PACKAGES:
        (entry,) = [p for p in manifest(package.root)["packages"] if p["name"] == package.name]
        assert (entry["version"], entry["license"]) == (package.version, package.license)
        assert {Path(f["path"]).name for f in entry["files"]} == set(package.files)


@pytest.mark.parametrize(("path", "banner", "licence"), [
    (SHIPPED / "chartjs" / "chart.umd.min.js", r"Chart\.js v(\S+)", SHIPPED / "chartjs" / "LICENSE.md"),
    (TEST_ONLY / "axe-core" / "axe.min.js", r"axe v(\S+)", TEST_ONLY / "axe-core" / "LICENSE"),
])
def test_each_bundle_names_its_pinned_version_and_ships_with_its_licence(path, banner, licence):
    name = {"chart.umd.min.js": "chart.js", "axe.min.js": "axe-core"}[path.name]
    (package,) = [p for p in PACKAGES if p.name == name]
    found = re.search(banner, path.read_text()[:400])
    assert found and found.group(1) == package.version
    assert licence.read_text().strip()


def test_test_only_files_are_never_served():
    from gateway import ui

    assert not any("axe" in name for name in ui.FILES)
    assert not any(str(TEST_ONLY) in str(p) for p in ui.FILES.values())
