"""SIGTERM drains: a chunk with a declared length that is still arriving when the
server is told to stop either finishes within `[server] drain_seconds` (the client
gets its 202 and the bytes are there after a restart), or is cut at the end of the
drain and keeps what arrived, so the client resumes from the offset it reads back.

Regression: aiohttp stops reading every connection as soon as its shutdown begins,
so a PATCH sent with Content-Length and `Expect: 100-continue` (as curl sends it)
got no answer for the whole drain, and the upload was rolled back to 0 bytes."""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import threading

import requests
from harness import launch

SIZE = 5 << 20
PIECE = 64 << 10


class SlowPatch(threading.Thread):
    """A PATCH of `data` with Content-Length and `Expect: 100-continue`, written in
    paced pieces on a raw socket, the way a client on a slow link sends it. The
    first `fast` bytes go at full speed, `then` is called, the rest is paced."""

    def __init__(self, url: str, location: str, data: bytes, fast: int, pace: float,
                 then) -> None:
        super().__init__(daemon=True)
        host, port = url.removeprefix("http://").rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=60)
        self.location, self.data, self.fast, self.pace, self.then = (
            location, data, fast, pace, then)
        self.host = f"{host}:{port}"
        self.sent = 0
        self.answer = b""
        self.wake = threading.Event()  # never set: a pause that the test may not cut short

    def run(self) -> None:
        head = (f"PATCH {self.location} HTTP/1.1\r\nHost: {self.host}\r\n"
                f"Content-Type: application/octet-stream\r\nContent-Length: {len(self.data)}\r\n"
                "Expect: 100-continue\r\n\r\n").encode()
        self.sock.sendall(head)
        assert self.sock.recv(1024).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            while self.sent < len(self.data):
                if self.sent == self.fast:
                    self.then()
                if self.sent >= self.fast:
                    self.wake.wait(self.pace)  # the pacing of a slow link, not a wait for state
                piece = self.data[self.sent:self.sent + PIECE]
                self.sock.sendall(piece)
                self.sent += len(piece)
            while chunk := self.sock.recv(65536):
                self.answer += chunk
        except OSError:
            pass  # cut off by the server
        finally:
            self.sock.close()


def _offset(url: str, location: str) -> int:
    status = requests.get(f"{url}{location}", timeout=10)
    assert status.status_code == 204, status.text
    return int(status.headers["Range"].split("-")[1]) + 1


def _finish(url: str, location: str, data: bytes, have: int) -> None:
    """Send the rest from `have` and complete the upload: the stored prefix is right."""
    if have < len(data):
        r = requests.patch(f"{url}{location}", data=data[have:], timeout=30, headers={
            "Content-Range": f"{have}-{len(data) - 1}",
            "Content-Type": "application/octet-stream"})
        assert r.status_code == 202, r.text
        location = r.headers["Location"]
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    done = requests.put(f"{url}{location}?digest={digest}", timeout=30)
    assert done.status_code == 201, done.text


def _start(tmp_path, config: str):
    reg = launch(tmp_path, config=config)
    location = requests.post(f"{reg.url}/v2/drain/app/blobs/uploads/",
                             timeout=10).headers["Location"]
    return reg, location


def test_a_patch_that_fits_in_the_drain_finishes(tmp_path):
    config = "[server]\ndrain_seconds = 30\n"
    reg, location = _start(tmp_path, config)
    data = os.urandom(SIZE)
    # SIGTERM after the first MB; the other four take about 4 s at 1.3 MB/s.
    sender = SlowPatch(reg.url, location, data, 1 << 20, 0.05,
                       lambda: reg.process.send_signal(signal.SIGTERM))
    try:
        sender.start()
        sender.join(60)
        assert not sender.is_alive()
        assert sender.answer.startswith(b"HTTP/1.1 202"), sender.answer[:200]
        assert f"Range: 0-{SIZE - 1}".encode() in sender.answer
        reg.process.wait(30)
        log = reg.log()
        assert "stopping: no new connections" in log and "stopped" in log
        assert "Traceback" not in log
    finally:
        reg.stop()
    again = launch(tmp_path, config=config)
    try:
        assert _offset(again.url, location) == SIZE
        _finish(again.url, location, data, SIZE)
    finally:
        again.stop()


def test_a_patch_cut_at_the_end_of_the_drain_keeps_what_arrived(tmp_path):
    config = "[server]\ndrain_seconds = 1\n"
    reg, location = _start(tmp_path, config)
    data = os.urandom(SIZE)
    # SIGTERM after the first MB, then a trickle (160 kB/s) that outlasts the drain.
    sender = SlowPatch(reg.url, location, data, 1 << 20, 0.4,
                       lambda: reg.process.send_signal(signal.SIGTERM))
    try:
        sender.start()
        reg.process.wait(30)
        sender.join(30)
        assert not sender.is_alive()
        assert sender.sent < SIZE
        log = reg.log()
        assert "stopped" in log and "Traceback" not in log
    finally:
        reg.stop()
    again = launch(tmp_path, config=config)
    try:
        have = _offset(again.url, location)
        # What arrived: at least what was sent before the SIGTERM, at most what was sent.
        assert 1 << 20 <= have <= sender.sent
        _finish(again.url, location, data, have)
    finally:
        again.stop()
