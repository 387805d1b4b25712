#!/usr/bin/env python3
"""Memory per idle keep-alive connection of a server, as its resident set grows.

    scripts/idle-rss.py URL PID [COUNT]

Opens COUNT (default 4000) connections to URL's host one after another, sends
one GET of URL on each, reads the whole answer (it must be 200), and leaves
the connection open and idle. Prints PID's resident set before and after, and
the growth per connection. URL is plain HTTP (a presigned URL for s3warden,
or the same path through nginx). Raise the open-file limit first
(`ulimit -n 20000`), for this process and for the server.
"""

import socket
import sys
import time
from urllib.parse import urlsplit


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit(f"no VmRSS for process {pid}")


def get(sock, request):
    sock.sendall(request)
    got = b""
    while b"\r\n\r\n" not in got:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("connection closed before the answer's head")
        got += chunk
    head, _, body = got.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0]
    if not status.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"answer: {status.decode(errors='replace')}")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit("connection closed in the answer's body")
        body += chunk


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    url, pid = urlsplit(sys.argv[1]), int(sys.argv[2])
    count = int(sys.argv[3]) if len(sys.argv) == 4 else 4000
    target = url.path + (f"?{url.query}" if url.query else "")
    request = f"GET {target} HTTP/1.1\r\nHost: {url.netloc}\r\n\r\n".encode()
    before = rss_kib(pid)
    open_connections = []
    for _ in range(count):
        sock = socket.create_connection((url.hostname, url.port or 80))
        get(sock, request)
        open_connections.append(sock)
    time.sleep(1)
    after = rss_kib(pid)
    print(
        f"RSS {before / 1024:.1f} MiB -> {after / 1024:.1f} MiB with {count} idle "
        f"keep-alive connections: {(after - before) / count:.1f} KiB per connection"
    )


if __name__ == "__main__":
    main()
