"""Calls a Directory server through thriftpy2 and prints the results as one JSON line.

    python thriftpy2_client.py HOST PORT {binary,compact} {buffered,framed}

thriftpy2 loads tests/idl/interop.thrift at run time; its default wire, and the one the Python
design used, is binary over a buffered (unframed) transport. Exits non-zero on any mismatch.
"""

import argparse
import os
import sys

import thriftpy2
from thriftpy2.protocol import TBinaryProtocolFactory, TCompactProtocolFactory
from thriftpy2.rpc import make_client
from thriftpy2.thrift import TApplicationException
from thriftpy2.transport import TBufferedTransportFactory, TFramedTransportFactory

import directory_peer

IDL_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "idl")
PROTOCOLS = {"binary": TBinaryProtocolFactory, "compact": TCompactProtocolFactory}
TRANSPORTS = {"buffered": TBufferedTransportFactory, "framed": TFramedTransportFactory}


def load_idl():
    path = os.path.join(IDL_DIR, "interop.thrift")
    interop = thriftpy2.load(path, module_name="interop_thrift", include_dirs=[IDL_DIR])
    return interop, directory_peer.Types(interop, interop.shared, TApplicationException)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    directory_peer.add_client_args(parser)
    args = parser.parse_args()
    interop, types = load_idl()
    client = make_client(
        interop.Directory,
        args.host,
        args.port,
        proto_factory=PROTOCOLS[args.protocol](),
        trans_factory=TRANSPORTS[args.transport](),
        timeout=5000,
    )
    try:
        return directory_peer.run_client("thriftpy2", args, client, types, with_points=True)
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
