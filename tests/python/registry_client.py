"""Calls Directory.ping through the registry as the Python design's `ProbTClient` does.

    python registry_client.py --appkey APP --calls N [--zk HOST:PORT] [--env dev] [--service Directory]

Node discovery follows `ProbTClient._get_service_addr`: kazoo `get_children('/services/{env}/{appkey}')`,
the children matching `re.match(service_name + '_', child)`, `json.loads` of each node's data, the
nodes with `valid == 1`, and a pick by `random.randint(1, total_weight)` over the cumulative weights.
The design reconnects to ZooKeeper and reads the node list on every call; this client reads it once
and picks a node per call, as the design's improvement note (a ChildrenWatch/DataWatch keeping a local
routing table) would, so N calls are N independent weighted draws over one table.

Each call then goes as the design's `_connect` + `_req`: a new socket to the picked node, buffered
(unframed) transport, binary protocol, one call, close (thriftpy2's `make_client` with those
factories).

Prints one JSON line and exits 0:
    {"counts": {answer: n, ...}, "nodes": {child: {"raw": node data as text, "types": {field: python
    type name}}, ...}, "addrs": {answer: "host:port", ...}}
Exits non-zero (traceback on stderr) when a node is missing or a call fails.
"""

import argparse
import json
import os
import random
import re
import sys

import thriftpy2
from kazoo.client import KazooClient
from thriftpy2.protocol import TBinaryProtocolFactory
from thriftpy2.rpc import make_client
from thriftpy2.transport import TBufferedTransportFactory

IDL_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "idl")


class NoService(Exception):
    pass


def read_nodes(zk, env, appkey, service_name):
    """The node list of `_get_service_addr`: (child name, raw data) of the service's nodes."""
    zk_full_name = '/services' + '/' + env + '/' + appkey
    exists = zk.exists(zk_full_name)
    if exists is None:
        raise NoService('服务未启动 - appkey: ' + appkey + '; service: ' + service_name)

    services = zk.get_children(zk_full_name)
    nodes = list()
    for service in services:
        if re.match(service_name + '_', service) is not None:
            nodes.append((service, zk.get(zk_full_name + '/' + service)))
    return nodes


def valid_addrs(nodes):
    """The valid nodes and their total weight, as `_get_service_addr` computes them."""
    addrs = list()
    total_weight = 0
    for _, node in nodes:
        infos = json.loads(node[0])
        if infos['valid'] == 1:
            addrs.append(infos)
            total_weight += infos['weight']
    return addrs, total_weight


def pick(addrs, total_weight, appkey, service_name):
    """The weighted random draw of `_get_service_addr`."""
    if len(addrs) < 1:
        raise NoService('服务未启动 - appkey: ' + appkey + '; service: ' + service_name)
    randint = random.randint(1, total_weight)
    base_weight = 0
    base_addr = None
    for addr in addrs:
        base_addr = addr
        base_weight += addr['weight']
        if randint <= base_weight:
            break
    return base_addr['host'], base_addr['port']


def call_ping(service, host, port, timeout_ms):
    client = make_client(service, host, port,
                         trans_factory=TBufferedTransportFactory(),
                         proto_factory=TBinaryProtocolFactory(),
                         timeout=timeout_ms)
    try:
        return client.ping("hi")
    finally:
        client.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appkey", required=True)
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--service", default="Directory")
    parser.add_argument("--env", default="dev", choices=("dev", "prod"))
    parser.add_argument("--zk", default="127.0.0.1:22181", help="ZooKeeper host:port")
    parser.add_argument("--timeout-ms", type=int, default=5000, help="socket timeout of each call")
    args = parser.parse_args()

    thrift = thriftpy2.load(os.path.join(IDL_DIR, "interop.thrift"), module_name=args.appkey + "_thrift",
                            include_dirs=[IDL_DIR])
    service = getattr(thrift, args.service)

    zk = KazooClient(hosts=args.zk)
    zk.start(10)
    try:
        nodes = read_nodes(zk, args.env, args.appkey, args.service)
    finally:
        zk.stop()
        zk.close()
    addrs, total_weight = valid_addrs(nodes)

    counts = {}
    where = {}
    for _ in range(args.calls):
        host, port = pick(addrs, total_weight, args.appkey, args.service)
        answer = call_ping(service, host, port, args.timeout_ms)
        counts[answer] = counts.get(answer, 0) + 1
        where[answer] = "%s:%d" % (host, port)

    out = {
        "counts": counts,
        "addrs": where,
        "nodes": {
            child: {
                "raw": data[0].decode("utf-8"),
                "types": {k: type(v).__name__ for k, v in json.loads(data[0]).items()},
            }
            for child, data in nodes
        },
    }
    print(json.dumps(out, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
