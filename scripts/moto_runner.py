"""Runs a moto server on a free loopback port for as long as its standard input stays open.

Prints `PORT <n>` once the server answers. The owner keeps the pipe open and the server stops
when the owner exits (the pipe closes), so no test run or demo leaves a server behind.
"""

import socket
import sys
import urllib.request

from moto.server import ThreadedMotoServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=10).read()
    print(f"PORT {port}", flush=True)
    try:
        sys.stdin.read()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
