"""Zero-copy blob responses.

uvloop does not implement `loop.sendfile` (it raises NotImplementedError, so
aiohttp's FileResponse falls back to reading the file through Python). We
call os.sendfile(2) ourselves on a dedicated thread pool, waiting for the
non-blocking socket with poll(2), so the bytes never enter the process and
memory per download stays constant. Over TLS, or when sendfile is refused,
the file is streamed in bounded chunks instead.

A file may still be growing (a node cache serving a blob while it downloads
it): then a `Progress` says how far it has got, and reaching the current end
of the file means waiting for more, not the end of the response.
"""

from __future__ import annotations

import asyncio
import errno
import os
import select
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web

from registry.api.common import prepare
from registry.core.serving import Progress

# Over TLS: a read from the file is one hop to a thread; each write hands the TLS
# layer one slice, which it encrypts into its outgoing buffer at once, so the
# slice bounds that buffer (OpenSSL keeps a buffer grown to its largest write for
# the connection's life) and the high-water mark bounds what waits for the socket.
TLS_READ = 1 << 18
TLS_SLICE = 1 << 16
TLS_HIGH_WATER = 1 << 17
# Read buffers are reused (a connection's is back here once its body is sent) so
# reading a large file allocates nothing but the slices: idle ones kept, at most.
POOL = 4
_buffers: list[bytearray] = []
# Over TLS a body up to this size is read (and its file closed) in one hop to a
# thread and goes out with the headers in one write: one TLS record, one send.
TLS_SMALL = 1 << 16
# How long a stalled client may keep a sendfile thread waiting.
IDLE_TIMEOUT_S = 120.0

_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=256, thread_name_prefix="sendfile")
    return _pool


def _sendfile_blocking(sock_fd: int, file_fd: int, offset: int, count: int,
                       progress: Progress | None = None) -> None:
    poller = select.poll()
    poller.register(sock_fd, select.POLLOUT)
    end = offset + count
    while offset < end:
        try:
            sent = os.sendfile(sock_fd, file_fd, offset, min(end - offset, 1 << 30))
        except BlockingIOError:
            if not poller.poll(IDLE_TIMEOUT_S * 1000):
                raise TimeoutError("client stopped reading") from None
            continue
        except OSError as exc:
            if exc.errno == errno.EINTR:
                continue
            raise
        if sent == 0:
            if progress is None:
                raise ConnectionResetError("sendfile wrote nothing: peer gone or file shrank")
            # At the end of what is written so far: wait for the writer.
            progress.wait_beyond(offset, IDLE_TIMEOUT_S)
            continue
        offset += sent


async def _wait_flushed(transport: asyncio.Transport) -> None:
    """Headers must be on the wire before sendfile writes to the same socket."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + IDLE_TIMEOUT_S
    delay = 0.0005
    while transport.get_write_buffer_size() > 0:
        if transport.is_closing() or loop.time() > deadline:
            raise ConnectionResetError("connection closed")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)


async def _stream_fallback(response: web.StreamResponse, fd: int, offset: int,
                           count: int, progress: Progress | None) -> None:
    loop = asyncio.get_running_loop()
    buf = _buffers.pop() if _buffers else bytearray(TLS_READ)
    try:
        while count > 0:
            n = await loop.run_in_executor(None, _pread_into, fd, buf, min(TLS_READ, count),
                                           offset)
            if not n:
                if progress is None:
                    raise ConnectionResetError("file shrank while being served")
                await loop.run_in_executor(None, progress.wait_beyond, offset, IDLE_TIMEOUT_S)
                continue
            with memoryview(buf) as view:
                for start in range(0, n, TLS_SLICE):
                    # A copy: the transport may keep what it is given past this write.
                    await response.write(bytes(view[start:min(n, start + TLS_SLICE)]))
            count -= n
            offset += n
    finally:
        if len(_buffers) < POOL:
            _buffers.append(buf)


def _pread_into(fd: int, buf: bytearray, count: int, offset: int) -> int:
    with memoryview(buf) as view:
        return os.preadv(fd, [view[:count]], offset)


def bound_tls_buffer(transport: asyncio.BaseTransport | None) -> None:
    """Lower a TLS transport's write high-water mark (uvloop's is 512 KiB of
    encrypted bytes per connection) so a large body waits for the socket sooner."""
    if isinstance(transport, asyncio.WriteTransport):
        transport.set_write_buffer_limits(high=TLS_HIGH_WATER)


def _pread_and_close(fd: int, offset: int, count: int) -> bytes:
    try:
        return os.pread(fd, count, offset)
    finally:
        os.close(fd)


def _sendfile_and_close(sock_fd: int, fd: int, offset: int, count: int,
                        progress: Progress | None) -> None:
    """Send, then close both descriptors (the socket's is our own duplicate)."""
    try:
        _sendfile_blocking(sock_fd, fd, offset, count, progress)
    finally:
        os.close(fd)
        os.close(sock_fd)


async def send_file(request: web.BaseRequest, response: web.StreamResponse, fd: int,
                    offset: int, count: int,
                    progress: Progress | None = None) -> web.StreamResponse:
    """Prepare `response` (headers already set, Content-Length = count) and send
    `count` bytes of the open file descriptor `fd` from `offset`, following the
    file as it grows when `progress` is given. Takes ownership of `fd`: it is
    closed whatever happens. If the bytes cannot all be sent (the client went
    away, the writer of a growing file failed) the connection is closed, so a
    client never takes a short body for a whole one."""
    handed = False  # once the sendfile thread has the descriptor, it closes it
    try:
        transport = request.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        plain = (transport is not None and sock is not None
                 and transport.get_extra_info("sslcontext") is None)
        if not plain and 0 < count <= TLS_SMALL and progress is None \
                and request.method != "HEAD":
            handed = True
            data = await asyncio.get_running_loop().run_in_executor(
                None, _pread_and_close, fd, offset, count)
            if len(data) != count:
                if transport is not None:
                    transport.close()
                raise ConnectionResetError("file shrank while being served")
            await prepare(request, response)
            await response.write_eof(data)  # with the headers, in one write
            return response
        await prepare(request, response)
        if count and request.method != "HEAD":
            try:
                if not plain or transport is None or sock is None:  # plain: neither is None
                    bound_tls_buffer(transport)
                    await _stream_fallback(response, fd, offset, count, progress)
                else:
                    await _wait_flushed(transport)
                    # The thread writes to a duplicate of the socket's descriptor. If the
                    # client goes away meanwhile (a thread may wait minutes for a growing
                    # file), aiohttp closes the transport's descriptor and the kernel may
                    # hand its number to the next connection at once: a thread still using
                    # that number would send the rest of this body into another client's
                    # response. The duplicate stays this connection's until it is closed.
                    sock_fd = os.dup(sock.fileno())
                    handed = True
                    # Send and close in one hop to the sendfile pool.
                    await asyncio.get_running_loop().run_in_executor(
                        _executor(), _sendfile_and_close, sock_fd, fd, offset, count,
                        progress)
            except Exception as exc:
                # The peer went away or stalled, or the bytes will never come: nothing
                # sensible can follow on this connection, so close it rather than
                # leave a short body looking complete.
                if transport is not None:
                    transport.close()
                raise ConnectionResetError(f"blob body not sent whole: {exc!r}") from None
    finally:
        if not handed:
            await asyncio.to_thread(os.close, fd)
    # With sendfile the body went around aiohttp's writer: this completes the response.
    await response.write_eof()
    return response
