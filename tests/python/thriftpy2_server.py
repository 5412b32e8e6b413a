"""Serves Directory (directory_peer.DirectoryHandler) through thriftpy2.

    python thriftpy2_server.py PORT {binary,compact} {buffered,framed} [--host H] [--watch-stdin]

Prints the bound port on the first stdout line (PORT 0 picks a free one), then serves until killed.
"""

import argparse
import sys

from thriftpy2.server import TThreadedServer
from thriftpy2.thrift import TProcessor
from thriftpy2.transport import TServerSocket

import directory_peer
from thriftpy2_client import PROTOCOLS, TRANSPORTS, load_idl


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    directory_peer.add_server_args(parser)
    args = parser.parse_args()
    interop, types = load_idl()
    processor = TProcessor(interop.Directory, directory_peer.DirectoryHandler(types))
    # rpc.make_server refuses port 0, so the server is put together here the same way.
    sock = TServerSocket(host=args.host, port=args.port, client_timeout=60000)
    server = TThreadedServer(
        processor,
        sock,
        iprot_factory=PROTOCOLS[args.protocol](),
        itrans_factory=TRANSPORTS[args.transport](),
        daemon=True,
    )
    sock.listen()
    port = sock.sock.getsockname()[1]
    sock.listen = lambda: None  # serve() listens again otherwise
    directory_peer.serve(port, server.serve, args.watch_stdin)


if __name__ == "__main__":
    sys.exit(main())
