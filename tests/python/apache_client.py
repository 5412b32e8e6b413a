"""Calls a Directory server through Apache Thrift's Python library and prints the results as one
JSON line.

    python apache_client.py HOST PORT {binary,compact} {buffered,framed,header} [--gen-dir DIR]

The classes are the ones Debian's thrift-compiler generated (`thrift -r --gen py`) into DIR, by
default $PROBE_TEST_APACHE_PY, which scripts/test.sh sets. Exits non-zero on any mismatch.

With `header`, the calls go through THeaderProtocol (compact ones compressed with zlib), and a last
`ping` carries probe's headers and a user header; the headers of its reply are printed under
"reply_headers".
"""

import argparse
import os
import sys

from thrift.protocol import TBinaryProtocol, TCompactProtocol
from thrift.protocol.THeaderProtocol import THeaderProtocol, THeaderProtocolFactory
from thrift.Thrift import TApplicationException
from thrift.transport import TSocket, TTransport
from thrift.transport.THeaderTransport import THeaderClientType, THeaderSubprotocolID, THeaderTransformID

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
HEADER_PROTOCOL_IDS = {"binary": THeaderSubprotocolID.BINARY, "compact": THeaderSubprotocolID.COMPACT}

# What the header client sends with its last ping: probe's headers (README, "Per-call metadata")
# and a user header that is not ASCII.
SENT_HEADERS = {
    b"probe-caller-appkey": b"py_app",
    b"probe-caller-service": b"PyCaller",
    b"probe-request-id": b"py-req-1",
    b"probe-deadline-ms": b"5000",
    b"probe-priority": b"critical",
    b"traceparent": b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    b"tracestate": b"vendor=1",
    b"x-user": "\u00fc v".encode("utf-8"),
}


def header_round_trip(protocol, client, out):
    """One ping with SENT_HEADERS; records the reply and the headers it came with."""
    for key, value in SENT_HEADERS.items():
        protocol.set_header(key, value)
    out["header_ping"] = directory_peer.expect("ping with headers", client.ping("headers"), "pong: headers")
    out["reply_headers"] = {k.decode("utf-8"): v.decode("utf-8") for k, v in protocol.get_headers().items()}


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
    after = None
    if args.transport == "header":
        transport = sock
        protocol = THeaderProtocol(sock, [THeaderClientType.HEADERS], HEADER_PROTOCOL_IDS[args.protocol])
        if args.protocol == "compact":
            protocol.add_transform(THeaderTransformID.ZLIB)
        after = lambda out: header_round_trip(protocol, client, out)  # noqa: E731
    else:
        transport = TRANSPORTS[args.transport](sock)
        protocol = PROTOCOLS[args.protocol](transport)
    client = directory.Client(protocol)
    transport.open()
    try:
        # Generated structs define __eq__ without __hash__, so a Point cannot be a dict key.
        return directory_peer.run_client("apache", args, client, types, with_points=False, after=after)
    finally:
        transport.close()


if __name__ == "__main__":
    sys.exit(main())
