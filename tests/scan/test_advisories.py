"""`registry advisories import`: OSV documents from a directory or a zip into the advisory
database, replaced by id when newer, hostile input refused with reasons while the
import goes on (registry/scan/advisories.py)."""

from __future__ import annotations

import json
import os
import sqlite3
import struct
import zipfile

import pytest

from registry.cli import main
from registry.scan.advisories import AdvisoryDB, import_path
from tests.scan.osvdocs import advisory, write_dir, write_zip


@pytest.fixture
def db(tmp_path):
    with AdvisoryDB(str(tmp_path / "advisories.sqlite")) as d:
        yield d


def test_directory_import_counts_and_reasons(tmp_path, db: AdvisoryDB) -> None:
    root = write_dir(str(tmp_path / "osv"), [
        advisory("PYSEC-2024-1", "PyPI", "jinja2", fixed="3.1.3"),
        advisory("DSA-5678-1", "Debian:12", "openssl", fixed="3.0.13-1~deb12u1"),
    ])
    bad = {
        "notjson.json": b"{not json",
        "array.json": b"[1, 2]",
        "noid.json": json.dumps({"modified": "2024-01-01T00:00:00Z"}).encode(),
        "badtime.json": json.dumps({"id": "X-1", "modified": "yesterday"}).encode(),
        "types.json": json.dumps({"id": "X-2", "modified": "2024-01-01T00:00:00Z",
                                  "affected": {"package": "nope"}}).encode(),
        "event.json": json.dumps(advisory("X-3", "PyPI", "a") | {"affected": [
            {"package": {"ecosystem": "PyPI", "name": "a"},
             "ranges": [{"type": "ECOSYSTEM", "events": [{"fixed": 1}]}]}]}).encode(),
        "deep.json": b"[" * 100_000 + b"]" * 100_000,
    }
    for name, data in bad.items():
        (tmp_path / "osv" / name).write_bytes(data)
    (tmp_path / "osv" / "huge.json").write_bytes(b" " * (9 << 20))
    (tmp_path / "osv" / "README.md").write_text("not a document")
    os.symlink("/etc/passwd", tmp_path / "osv" / "link.json")
    os.mkfifo(tmp_path / "osv" / "fifo.json")  # opened without blocking, then refused

    report = import_path(db, root)
    assert (report.imported, report.updated, report.unchanged) == (2, 0, 0)
    assert sum(report.rejected.values()) == len(bad) + 3
    reasons = "\n".join(report.rejected)
    for words in ("not JSON", "not a JSON object", "id: missing", "modified: not an RFC 3339",
                  "affected: expected a list", "affected[].ranges[].events[]: expected one of",
                  "larger than",
                  "not a regular file", "unreadable"):
        assert words in reasons, words
    assert ("PyPI", "jinja2") in report.packages and ("Debian", "openssl") in report.packages
    assert db.count() == 2 and db.generation == 1


def test_reimport_replaces_only_newer(tmp_path, db: AdvisoryDB) -> None:
    first = write_dir(str(tmp_path / "a"), [advisory("GHSA-1", "npm", "left-pad",
                                                     fixed="1.0.1")])
    import_path(db, first)
    same = import_path(db, first)
    assert (same.imported, same.updated, same.unchanged, same.changed) == (0, 0, 1, False)
    assert db.generation == 1
    newer = write_dir(str(tmp_path / "b"), [advisory(
        "GHSA-1", "npm", "right-pad", fixed="2.0.0", modified="2024-06-01T00:00:00+02:00")])
    report = import_path(db, newer)
    assert (report.imported, report.updated) == (0, 1)
    # Both the package it names now and the one it named before may have changed.
    assert report.packages == {("npm", "left-pad"), ("npm", "right-pad")}
    assert db.candidates("npm", ["left-pad"]) == []
    assert [a.id for a in db.candidates("npm", ["right-pad"])] == ["GHSA-1"]
    older = write_dir(str(tmp_path / "c"), [advisory("GHSA-1", "npm", "x",
                                                     modified="2023-01-01T00:00:00Z")])
    assert import_path(db, older).unchanged == 1
    assert db.generation == 2


def test_zip_import_names_are_labels_not_paths(tmp_path, db: AdvisoryDB) -> None:
    doc = json.dumps(advisory("ALPINE-CVE-2024-1", "Alpine:v3.19", "openssl",
                              fixed="3.1.4-r5")).encode()
    archive = write_zip(str(tmp_path / "all.zip"), {
        "../../escape.json": doc,
        "/abs/x.json": json.dumps(advisory("PYSEC-1", "PyPI", "x")).encode(),
        "dir/\x1b[2J\x1b]0;owned\x07bad.json": b"\xff\xfe garbage",
        "notes.txt": b"hello",
    })
    report = import_path(db, archive)
    assert report.imported == 2
    assert set(report.rejected) == {"not JSON", "not a .json member"}
    assert report.examples["not JSON"] == "dir/?[2J?]0;owned?bad.json"  # no escapes
    assert not (tmp_path.parent / "escape.json").exists()
    assert not os.path.exists("/abs/x.json")


def test_zip_bombs_are_bounded(tmp_path, db: AdvisoryDB) -> None:
    # A member inflating to 64 MiB: refused by its declared size, never inflated.
    bomb = write_zip(str(tmp_path / "bomb.zip"), {"big.json": b" " * (64 << 20)})
    assert os.path.getsize(bomb) < 1 << 20
    assert "larger than" in next(iter(import_path(db, bomb).rejected))

    # The same member declaring 100 bytes in the central directory: read through a
    # bounded read, it fails zipfile's size/CRC check instead of filling memory.
    liar = str(tmp_path / "liar.zip")
    with open(bomb, "rb") as f:
        data = bytearray(f.read())
    central = data.rindex(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, 100)
    with open(liar, "wb") as f:
        f.write(data)
    report = import_path(db, liar)
    assert report.imported == 0 and "unreadable member" in next(iter(report.rejected))

    # Too many bytes inflated in total, or too many entries: nothing of it is kept.
    many = write_zip(str(tmp_path / "many.zip"), {
        f"{i}.json": json.dumps(advisory(f"PYSEC-{i}", "PyPI", f"p{i}")).encode()
        for i in range(20)})
    report = import_path(db, many, max_total=1000)
    assert report.stopped and report.imported == 0 and db.count() == 0
    report = import_path(db, many, max_entries=10)
    assert "entries" in report.stopped and db.count() == 0
    assert import_path(db, many).imported == 20


def test_not_a_zip_or_directory(tmp_path, db: AdvisoryDB) -> None:
    path = tmp_path / "x.zip"
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError):
        import_path(db, str(path))


def test_cli_prints_counts_and_reasons(tmp_path, capsys) -> None:
    root = write_dir(str(tmp_path / "osv"), [advisory("PYSEC-2024-1", "PyPI", "jinja2")])
    (tmp_path / "osv" / "bad.json").write_text("{")
    data = str(tmp_path / "data")
    assert main(["advisories", "import", root, "--data", data]) == 0
    out = capsys.readouterr().out
    assert "imported 1, updated 0, unchanged 0, rejected 1" in out
    assert "rejected 1: not JSON (e.g. bad.json)" in out
    assert os.path.exists(os.path.join(data, "advisories.sqlite"))
    assert main(["advisories", "import", root, "--data", data, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["unchanged"] == 1
    assert main(["advisories", "import", str(tmp_path / "nope"), "--data", data]) == 2
    with zipfile.ZipFile(tmp_path / "e.zip", "w"):
        pass
    assert main(["advisories", "import", str(tmp_path / "e.zip"), "--data", data]) == 0


def test_opening_reads_while_an_import_writes(tmp_path) -> None:
    # The server opens the database for each match while `registry advisories import`
    # may hold a long write transaction: opening an existing file must not write.
    path = str(tmp_path / "advisories.sqlite")
    AdvisoryDB(path).close()
    writer = sqlite3.connect(path, isolation_level=None, timeout=0)
    writer.execute("BEGIN IMMEDIATE")
    try:
        with AdvisoryDB(path) as reader:
            assert reader.generation == 0 and reader.count() == 0
    finally:
        writer.execute("ROLLBACK")
        writer.close()
