"""Calls a Directory server through Apache Thrift's Python library and prints the results as one
JSON line.

    python apache_client.py HOST PORT {binary,compact} {buffered,framed,header} [--gen-dir DIR]
                            [--tls-ca CA [--tls-cert CERT --tls-key KEY]]

The classes are the ones Debian's thrift-compiler generated (`thrift -r --gen py`) into DIR, by
default $PROBE_TEST_APACHE_PY, which scripts/test.sh sets. Exits non-zero on any mismatch.

With `header`, the calls go through THeaderProtocol (compact ones compressed with zlib), and a last
`ping` carries probe's headers and a user header; the headers of its reply are printed under
"reply_headers".

With `--tls-ca`, it connects through TSSLSocket, verifying the server's certificate against CA for
the host it connects to (an IP SAN for 127.0.0.1), presenting CERT and KEY when given.
"""

import argparse
import os
import ssl
import sys

from thrift.protocol import TBinaryProtocol, TCompactProtocol
from thrift.protocol.THeaderProtocol import THeaderProtocol, THeaderProtocolFactory
from thrift.Thrift import TApplicationException
from thrift.transport import TSocket, TSSLSocket, TTransport
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


def add_tls_args(parser, server):
    """TLS options: a server's certificate and key (and the CA its clients' certificates must come
    from), or a client's CA (and the certificate and key it presents)."""
    parser.add_argument("--tls-ca", help="CA bundle (PEM) the peer's certificate must verify against")
    parser.add_argument("--tls-cert", help="this side's certificate (PEM)" + (" (TLS on)" if server else ""))
    parser.add_argument("--tls-key", help="its private key (PEM)")


def client_socket(args):
    """A TSocket, or with --tls-ca a TSSLSocket that verifies the server and may present a
    certificate."""
    if not args.tls_ca:
        return TSocket.TSocket(args.host, args.port)
    options = {"ca_certs": args.tls_ca, "cert_reqs": ssl.CERT_REQUIRED}
    if args.tls_cert:
        options.update(certfile=args.tls_cert, keyfile=args.tls_key)
    return TSSLSocket.TSSLSocket(args.host, args.port, **options)


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
    add_tls_args(parser, server=False)
    args = parser.parse_args()
    directory, types = load_generated(args.gen_dir)
    sock = client_socket(args)
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
