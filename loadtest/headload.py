"""A minimal keep-alive HTTP/1.1 HEAD load generator (stdlib + uvloop if present).

Debian's wrk 4.1 cannot benchmark HEAD: after a HEAD response carrying Content-Length it
waits for a body that never comes. This tool keeps `-c` connections busy with one HEAD
request in flight each for `-d` seconds; a HEAD response ends at the blank line after
its headers, so counting header blocks is all the parsing needed. It prints the same
`WRK_JSON {...}` line as loadtest/lua/common.lua so wrk.parse_output() reads it.

    python loadtest/headload.py http://127.0.0.1:5000/v2/r/manifests/sha256:... -c 64 -d 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from array import array
from urllib.parse import urlsplit

MAX_RECONNECTS = 10_000


class _State:
    def __init__(self) -> None:
        self.requests = 0
        self.status_errors = 0
        self.connect_errors = 0
        self.read_errors = 0
        self.bytes = 0
        self.stopping = False
        self.latencies = array("d")
        self.reconnects = 0


class _HeadConn(asyncio.Protocol):
    def __init__(self, state: _State, request: bytes, reconnect) -> None:
        self.state = state
        self.request = request
        self.reconnect = reconnect
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.sent_at = 0.0

    def connection_made(self, transport) -> None:
        self.transport = transport
        self._send()

    def _send(self) -> None:
        self.sent_at = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        st = self.state
        self.buf += data
        while True:  # bounded by the bytes received
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(self.buf[:end])
            del self.buf[: end + 4]
            st.bytes += end + 4
            if st.stopping:
                self.transport.close()
                return
            st.requests += 1
            st.latencies.append(time.perf_counter() - self.sent_at)
            try:
                status = int(head[9:12])
            except ValueError:
                status = 599
            if status >= 400:
                st.status_errors += 1
            if b"\r\nconnection: close" in head.lower():
                self.transport.close()
                return
            self._send()

    def connection_lost(self, exc) -> None:
        if not self.state.stopping:
            self.state.read_errors += 1
            self.reconnect()


async def run(url: str, connections: int, duration: float, headers: list[str]) -> dict:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"HEAD {path} HTTP/1.1", f"Host: {parts.netloc}", *headers]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    loop = asyncio.get_running_loop()
    st = _State()
    transports: list[asyncio.BaseTransport] = []

    async def connect() -> None:
        try:
            t, _ = await loop.create_connection(
                lambda: _HeadConn(st, request, reconnect), host, port
            )
            transports.append(t)
        except OSError:
            st.connect_errors += 1

    pending: set[asyncio.Task] = set()

    def reconnect() -> None:
        if not st.stopping and st.reconnects < MAX_RECONNECTS:
            st.reconnects += 1
            task = loop.create_task(connect())
            pending.add(task)
            task.add_done_callback(pending.discard)

    await asyncio.gather(*(connect() for _ in range(connections)))
    start = time.perf_counter()
    st.requests = st.status_errors = st.bytes = 0  # measure from here on
    st.latencies = array("d")
    await asyncio.sleep(duration)
    elapsed = time.perf_counter() - start
    st.stopping = True
    requests = st.requests
    for t in transports:
        t.close()
    lat = sorted(st.latencies[:requests])

    def pct(p: float) -> int:
        return int(lat[min(len(lat) - 1, int(len(lat) * p / 100))] * 1e6) if lat else 0

    return {
        "requests": requests,
        "duration_us": int(elapsed * 1e6),
        "bytes": st.bytes,
        "errors": {
            "connect": st.connect_errors,
            "read": st.read_errors,
            "write": 0,
            "status": st.status_errors,
            "timeout": 0,
        },
        "latency_us": {
            "min": pct(0),
            "mean": round(sum(lat) / len(lat) * 1e6, 1) if lat else 0,
            "max": int(lat[-1] * 1e6) if lat else 0,
            "p50": pct(50),
            "p90": pct(90),
            "p99": pct(99),
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url")
    ap.add_argument("-c", "--connections", type=int, default=64)
    ap.add_argument("-d", "--duration", type=float, default=10.0)
    ap.add_argument("-H", "--header", action="append", default=[])
    args = ap.parse_args(argv)
    if not 0 < args.duration <= 3600 or not 0 < args.connections <= 10_000:
        ap.error("duration must be in (0, 3600] s and connections in (0, 10000]")
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    result = runner(run(args.url, args.connections, args.duration, args.header))
    print("WRK_JSON " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
