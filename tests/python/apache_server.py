"""Serves Directory (directory_peer.DirectoryHandler) through Apache Thrift's Python library.

    python apache_server.py PORT {binary,compact} {buffered,framed,header} [--host H]
                            [--watch-stdin] [--gen-dir DIR]
                            [--tls-cert CERT --tls-key KEY [--tls-ca CA]]

Uses the code Debian's thrift-compiler generated into DIR (default $PROBE_TEST_APACHE_PY). Prints
the bound port on the first stdout line (PORT 0 picks a free one), then serves until killed.

With `header`, it serves THeaderProtocol clients only, and `ping` answers with every header of the
call echoed in its reply plus `x-python-saw`, the caller appkey, priority and request id it read.

With `--tls-cert`, it listens through TSSLServerSocket with that certificate and key; with
`--tls-ca` too, every client must present a certificate from CA (whose IP SANs name the address it
connects from, as TSSLServerSocket checks by default).
"""

import argparse
import ssl
import sys
import threading

from thrift.protocol.THeaderProtocol import THeaderProtocolFactory
from thrift.server import TServer
from thrift.transport import TSocket, TSSLSocket, TTransport
from thrift.transport.THeaderTransport import THeaderClientType

import directory_peer
from apache_client import PROTOCOL_FACTORIES, TRANSPORT_FACTORIES, add_gen_dir_arg, add_tls_args, load_generated


# The protocol of the call this thread is processing (THeaderProtocol: input and output are one).
CURRENT = threading.local()


def header_processor(directory, handler):
    """A processor that keeps the call's protocol where `HeaderHandler.ping` finds it."""

    class HeaderProcessor(directory.Processor):
        def process(self, iprot, oprot):
            CURRENT.protocol = iprot
            return directory.Processor.process(self, iprot, oprot)

    return HeaderProcessor(handler)


class HeaderHandler(directory_peer.DirectoryHandler):
    def ping(self, msg):
        protocol = CURRENT.protocol
        headers = dict(protocol.get_headers())
        for key, value in headers.items():
            protocol.set_header(key, value)
        saw = "appkey=%s priority=%s request_id=%s" % tuple(
            headers.get(k, b"-").decode("utf-8")
            for k in (b"probe-caller-appkey", b"probe-priority", b"probe-request-id")
        )
        protocol.set_header(b"x-python-saw", saw.encode("utf-8"))
        return directory_peer.DirectoryHandler.ping(self, msg)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    directory_peer.add_server_args(parser)
    add_gen_dir_arg(parser)
    add_tls_args(parser, server=True)
    args = parser.parse_args()
    directory, types = load_generated(args.gen_dir)
    if args.tls_cert:
        # An explicit context: with cert_reqs alone, TSSLServerSocket turns on check_hostname,
        # which a server side cannot use ("check_hostname requires server_hostname").
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)
        if args.tls_ca:
            context.load_verify_locations(args.tls_ca)
            context.verify_mode = ssl.CERT_REQUIRED
        sock = TSSLSocket.TSSLServerSocket(host=args.host, port=args.port, ssl_context=context)
    else:
        sock = TSocket.TServerSocket(host=args.host, port=args.port)
    if args.transport == "header":
        processor = header_processor(directory, HeaderHandler(types))
        transports = TTransport.TTransportFactoryBase()
        protocols = THeaderProtocolFactory(allowed_client_types=(THeaderClientType.HEADERS,))
    else:
        processor = directory.Processor(directory_peer.DirectoryHandler(types))
        transports = TRANSPORT_FACTORIES[args.transport]()
        protocols = PROTOCOL_FACTORIES[args.protocol]()
    server = TServer.TThreadedServer(processor, sock, transports, protocols, daemon=True)
    sock.listen()
    port = sock.handle.getsockname()[1]
    sock.listen = lambda: None  # serve() listens again otherwise
    directory_peer.serve(port, server.serve, args.watch_stdin)


if __name__ == "__main__":
    sys.exit(main())
