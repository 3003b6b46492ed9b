"""Pushing a build cache directory through the S3 endpoint in the order spack
does: blobs first, then spec documents, then (a client's own update-index) the
index files. Shared by the boto3 tests and the replica tests on SeaweedFS."""

from __future__ import annotations

from pathlib import Path

from boto3.s3.transfer import TransferConfig

# boto3's own defaults, spelled out: spack's push goes through them.
TRANSFER = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20,
                          max_concurrency=4, use_threads=True)
INDEX_NAMES = ("index.manifest.json", "index.json", "index.json.hash")


def phase(rel: str) -> int:
    if rel.startswith("blobs/") or rel.endswith(".spack"):  # tarballs before specs
        return 0
    if rel.rsplit("/", 1)[-1] in INDEX_NAMES:
        return 2
    return 1


def upload_dir(s3, bucket: str, root: Path, prefix: str = "", indexes: bool = True) -> list[str]:
    """Upload every file below `root` to `bucket` under `prefix`; the keys, in order."""
    files = sorted((p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()),
                   key=lambda rel: (phase(rel), rel))
    keys = []
    for rel in files:
        if phase(rel) == 2 and not indexes:
            continue
        key = prefix + rel
        with open(root / rel, "rb") as f:
            s3.upload_fileobj(f, bucket, key, Config=TRANSFER)
        keys.append(key)
    return keys
