"""The audit log (registry/auth/audit.py) on real files, with real forked processes."""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import re
from collections import Counter
from pathlib import Path

from registry.auth.audit import MAX_LINE, AuditLog

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def lines_of(path: Path) -> list[dict]:
    """Every line of the file, parsed: fails on a split or interleaved line."""
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n")
    return [json.loads(line) for line in data.decode("ascii").splitlines()]


def all_files(path: Path) -> list[Path]:
    rotated = path.parent.glob(path.name + ".[0-9]*")
    return [path, *sorted(rotated, key=lambda f: int(f.suffix[1:]))]


def test_one_event_is_one_line(tmp_path):
    path = tmp_path / "audit.log"
    audit = AuditLog(str(path))
    audit.write("login", user="alice", ok=True, attempts=2, robot=None)
    audit.close()
    [record] = lines_of(path)
    assert TIME.match(record["time"])
    assert record == {"time": record["time"], "event": "login", "user": "alice", "ok": True,
                      "attempts": 2}
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_a_field_cannot_forge_the_time(tmp_path):
    path = tmp_path / "audit.log"
    audit = AuditLog(str(path))
    audit.write("login", time="1970-01-01T00:00:00.000Z")
    audit.close()
    assert lines_of(path)[0]["time"] != "1970-01-01T00:00:00.000Z"


def test_hostile_values_stay_one_bounded_line(tmp_path):
    path = tmp_path / "audit.log"
    audit = AuditLog(str(path))
    hostile = 'a\nb\r\n"}{"event":"forged"}\x00\x1b[31m\u2028é😀'
    audit.write("pull", user=hostile, agent="x" * 100_000, astral="😀" * 5000,
                scopes=["repository:a:pull", "\n" * 3000], nan=float("nan"))
    audit.write("e" * 100_000, **{f"f{i}": "😀" * 2000 for i in range(50)})
    audit.close()
    raw = path.read_bytes()
    assert raw.count(b"\n") == 2 and raw.isascii()
    assert all(len(line) + 1 <= MAX_LINE for line in raw.splitlines())
    first, second = lines_of(path)
    assert first["event"] == "pull" and first["user"] == hostile
    assert first["agent"].endswith("…") and len(first["agent"]) < 2000
    assert first["scopes"][0] == "repository:a:pull"
    assert first["nan"] == "nan"
    assert second["event"].startswith("eee") and second["event"].endswith("…")


def test_rotation_keeps_every_line_when_keep_is_large(tmp_path):
    path = tmp_path / "audit.log"
    audit = AuditLog(str(path), max_bytes=4096, keep=50)
    for i in range(2000):
        audit.write("push", seq=i, repo="library/alpine")
    audit.close()
    files = all_files(path)
    assert 10 < len(files) <= 51
    assert [f.name for f in files[1:]] == [f"audit.log.{i}" for i in range(1, len(files))]
    seqs = [r["seq"] for f in reversed(files) for r in lines_of(f)]
    assert seqs == list(range(2000))  # oldest file first: in order, none lost
    assert all(f.stat().st_size < 4096 + 200 for f in files)


def test_rotation_drops_the_oldest_beyond_keep(tmp_path):
    path = tmp_path / "audit.log"
    audit = AuditLog(str(path), max_bytes=1024, keep=3)
    for i in range(1000):
        audit.write("push", seq=i)
    audit.close()
    assert [f.name for f in all_files(path)] == [
        "audit.log", "audit.log.1", "audit.log.2", "audit.log.3"]
    seqs = [r["seq"] for f in reversed(all_files(path)) for r in lines_of(f)]
    assert seqs == list(range(seqs[0], 1000))  # the newest lines, contiguous


def test_keep_zero_never_rotates(tmp_path):
    path = tmp_path / "audit.log"
    audit = AuditLog(str(path), max_bytes=1024, keep=0)
    for i in range(200):
        audit.write("push", seq=i)
    audit.close()
    assert all_files(path) == [path]
    assert len(lines_of(path)) == 200


def test_a_process_notices_another_rotated(tmp_path):
    """Two logs on one path stand for two processes: the second rotates, the first must
    move to the new file instead of writing to audit.log.1 for ever."""
    path = tmp_path / "audit.log"
    a = AuditLog(str(path), max_bytes=1 << 20, keep=5)
    b = AuditLog(str(path), max_bytes=1 << 20, keep=5)
    a.write("x", seq=0)
    b.max_bytes = 1
    b.write("x", seq=1)  # crosses its limit: rotates
    for i in range(2, 200):
        a.write("x", seq=i)
    a.close()
    b.close()
    assert len(lines_of(path)) > 0  # a reopened within 100 writes
    seqs = sorted(r["seq"] for f in all_files(path) for r in lines_of(f))
    assert seqs == list(range(200))


def _worker(audit: AuditLog, proc: int, count: int) -> None:
    for seq in range(count):
        audit.write("push", proc=proc, seq=seq, repo="library/" + "x" * (seq % 50))
    audit.close()
    os._exit(0)  # no pytest teardown in the child


def test_several_processes_lose_split_and_repeat_nothing(tmp_path):
    path = tmp_path / "audit.log"
    audit = AuditLog(str(path), max_bytes=64 << 10, keep=1000)
    audit.write("start")  # the children inherit this descriptor, as forked workers do
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_worker, args=(audit, p, 2000)) for p in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    audit.close()
    records = [r for f in all_files(path) for r in lines_of(f)]
    assert sum(r["event"] == "start" for r in records) == 1
    seen = Counter((r["proc"], r["seq"]) for r in records if r["event"] == "push")
    assert seen == Counter({(p, s): 1 for p in range(4) for s in range(2000)})
    assert len(all_files(path)) > 4  # it did rotate, several times


def test_unwritable_log_is_reported_once_and_never_raises(tmp_path, caplog):
    audit = AuditLog(str(tmp_path / "missing" / "audit.log"))
    with caplog.at_level(logging.ERROR, logger="registry.audit"):
        for _ in range(5):
            audit.write("login", user="alice")
    errors = [r for r in caplog.records if r.name == "registry.audit"]
    assert len(errors) == 1 and errors[0].levelno == logging.ERROR
    assert "missing" in errors[0].getMessage()
    (tmp_path / "missing").mkdir()  # the disk came back: the next write goes through
    audit.write("login", user="bob")
    audit.close()
    assert [r["user"] for r in lines_of(tmp_path / "missing" / "audit.log")] == ["bob"]
