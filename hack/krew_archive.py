"""The krew release archive of the kubectl plugin, and its sha256 in plugins/readiness.yaml.

`python hack/krew_archive.py` writes dist/kubectl-readiness-<version>.tar.gz (the launcher in plugins/launcher/)
and sets every platform's sha256 in the manifest to its digest. The archive is byte-for-byte reproducible (sorted
entries, fixed times and owners), so a test can rebuild it and compare.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / "plugins" / "readiness.yaml"
LAUNCHER = REPO / "plugins" / "launcher"


def archive_bytes() -> bytes:
    """A .tar.gz of plugins/launcher/ (executables keep mode 0755), the same bytes on every build."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path in sorted(LAUNCHER.iterdir()):
            data = path.read_bytes()
            info = tarfile.TarInfo(path.name)
            info.size, info.mtime, info.uid, info.gid, info.uname, info.gname = len(data), 0, 0, 0, "", ""
            info.mode = 0o755 if path.stat().st_mode & 0o111 else 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def main() -> int:
    version = re.search(r"^  version: (v\S+)$", MANIFEST.read_text(), re.M)
    if version is None:
        print(f"error: no spec.version in {MANIFEST}", file=sys.stderr)
        return 1
    data = archive_bytes()
    digest = hashlib.sha256(data).hexdigest()
    target = REPO / "dist" / f"kubectl-readiness-{version.group(1)}.tar.gz"
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(data)
    MANIFEST.write_text(re.sub(r"(sha256: )[0-9a-f]{64}", rf"\g<1>{digest}", MANIFEST.read_text()))
    print(f"wrote {target.relative_to(REPO)} (sha256 {digest}) and its sha256 into {MANIFEST.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
