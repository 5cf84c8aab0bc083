#!/usr/bin/env bash
# Vendor Redoc's built standalone bundle (what GET /docs runs in the browser) at a pinned version:
#   scripts/vendor_redoc.sh 2.5.4
# Takes the package from the npm registry with npm itself (`npm pack`), copies the bundle, its
# third-party notices and Redoc's LICENSE into gateway/static/vendor/redoc/, and rewrites
# gateway/static/vendor/MANIFEST.json with the version, the package tarball's integrity and the sha256
# of every copied file. tests/test_docs_page.py checks the files against that manifest. Only this
# script talks to the registry: the gateway never fetches anything at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:?usage: scripts/vendor_redoc.sh VERSION}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

tarball=$(cd "$tmp" && npm pack --silent "redoc@$version")
integrity=$(npm view "redoc@$version" dist.integrity)
tar xzf "$tmp/$tarball" -C "$tmp"

dest=gateway/static/vendor/redoc
rm -rf "$dest"
mkdir -p "$dest"
cp "$tmp/package/bundles/redoc.standalone.js" "$tmp/package/bundles/redoc.standalone.js.LICENSE.txt" \
   "$tmp/package/LICENSE" "$dest/"

python3 - "$version" "$tarball" "$integrity" "$tmp/$tarball" <<'EOF'
import hashlib
import json
import sys
from pathlib import Path

version, tarball, integrity, tarball_path = sys.argv[1:]
vendor = Path("gateway/static/vendor")
origin = {"redoc.standalone.js": "package/bundles/redoc.standalone.js",
          "redoc.standalone.js.LICENSE.txt": "package/bundles/redoc.standalone.js.LICENSE.txt",
          "LICENSE": "package/LICENSE"}
manifest = {
    "about": "Third-party files vendored for GET /docs; written by scripts/vendor_redoc.sh, checked by "
             "tests/test_docs_page.py. Paths are relative to this file.",
    "packages": [{
        "name": "redoc",
        "version": version,
        "license": "MIT",
        "source": f"npm package redoc@{version} ({tarball})",
        "tarball_integrity": integrity,
        "tarball_sha256": hashlib.sha256(Path(tarball_path).read_bytes()).hexdigest(),
        "files": [{"path": f"redoc/{name}", "from": origin[name],
                   "sha256": hashlib.sha256((vendor / "redoc" / name).read_bytes()).hexdigest()}
                  for name in sorted(origin)],
    }],
}
(vendor / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
print(f"vendored redoc {version} into {vendor}/redoc")
EOF
