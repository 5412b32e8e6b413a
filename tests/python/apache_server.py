"""Serves Directory (directory_peer.DirectoryHandler) through Apache Thrift's Python library.

    python apache_server.py PORT {binary,compact} {buffered,framed} [--host H] [--watch-stdin]
                            [--gen-dir DIR]

Uses the code Debian's thrift-compiler generated into DIR (default $PROBE_TEST_APACHE_PY). Prints
the bound port on the first stdout line (PORT 0 picks a free one), then serves until killed.
"""

import argparse
import sys

from thrift.server import TServer
from thrift.transport import TSocket

import directory_peer
from apache_client import PROTOCOL_FACTORIES, TRANSPORT_FACTORIES, add_gen_dir_arg, load_generated


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    directory_peer.add_server_args(parser)
    add_gen_dir_arg(parser)
    args = parser.parse_args()
    directory, types = load_generated(args.gen_dir)
    processor = directory.Processor(directory_peer.DirectoryHandler(types))
    sock = TSocket.TServerSocket(host=args.host, port=args.port)
    server = TServer.TThreadedServer(
        processor,
        sock,
        TRANSPORT_FACTORIES[args.transport](),
        PROTOCOL_FACTORIES[args.protocol](),
        daemon=True,
    )
    sock.listen()
    port = sock.handle.getsockname()[1]
    sock.listen = lambda: None  # serve() listens again otherwise
    directory_peer.serve(port, server.serve, args.watch_stdin)


if __name__ == "__main__":
    sys.exit(main())
