"""Calls a Directory server through Apache Thrift's Python library and prints the results as one
JSON line.

    python apache_client.py HOST PORT {binary,compact} {buffered,framed} [--gen-dir DIR]

The classes are the ones Debian's thrift-compiler generated (`thrift -r --gen py`) into DIR, by
default $PROBE_TEST_APACHE_PY, which scripts/test.sh sets. Exits non-zero on any mismatch.
"""

import argparse
import os
import sys

from thrift.protocol import TBinaryProtocol, TCompactProtocol
from thrift.Thrift import TApplicationException
from thrift.transport import TSocket, TTransport

import directory_peer

PROTOCOLS = {"binary": TBinaryProtocol.TBinaryProtocol, "compact": TCompactProtocol.TCompactProtocol}
TRANSPORTS = {"buffered": TTransport.TBufferedTransport, "framed": TTransport.TFramedTransport}
PROTOCOL_FACTORIES = {
    "binary": TBinaryProtocol.TBinaryProtocolFactory,
    "compact": TCompactProtocol.TCompactProtocolFactory,
}
TRANSPORT_FACTORIES = {
    "buffered": TTransport.TBufferedTransportFactory,
    "framed": TTransport.TFramedTransportFactory,
}


def add_gen_dir_arg(parser):
    parser.add_argument(
        "--gen-dir",
        default=os.environ.get("PROBE_TEST_APACHE_PY"),
        help="where `thrift --gen py` wrote the interop code (default: $PROBE_TEST_APACHE_PY)",
    )


def load_generated(gen_dir):
    """The generated modules: `interop` (namespace py interop) and the included `shared`."""
    if not gen_dir or not os.path.isfile(os.path.join(gen_dir, "interop", "Directory.py")):
        sys.exit("no Apache Thrift code for interop.thrift in %r; run scripts/test.sh" % gen_dir)
    sys.path.insert(0, gen_dir)
    from interop import Directory, ttypes
    from shared import ttypes as shared_ttypes

    return Directory, directory_peer.Types(ttypes, shared_ttypes, TApplicationException)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    directory_peer.add_client_args(parser)
    add_gen_dir_arg(parser)
    args = parser.parse_args()
    directory, types = load_generated(args.gen_dir)
    sock = TSocket.TSocket(args.host, args.port)
    sock.setTimeout(5000)
    transport = TRANSPORTS[args.transport](sock)
    client = directory.Client(PROTOCOLS[args.protocol](transport))
    transport.open()
    try:
        # Generated structs define __eq__ without __hash__, so a Point cannot be a dict key.
        return directory_peer.run_client("apache", args, client, types, with_points=False)
    finally:
        transport.close()


if __name__ == "__main__":
    sys.exit(main())
