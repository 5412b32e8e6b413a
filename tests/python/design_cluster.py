"""The Python design's Redis Cluster side (redis-py-cluster's StrictRedisCluster, as in its
`__zk_connect`), reading and writing node settings in a cluster that probe also uses.

    python design_cluster.py get ENV FIELD --seed HOST:PORT
    python design_cluster.py set ENV FIELD VALUE --seed HOST:PORT

`get` prints the value of FIELD in the hash `thriftprobe_{ENV}` (or `null`) after `json.loads`, as
one JSON line; `set` writes VALUE as given. Runs in a virtualenv of its own (redis-py-cluster needs
redis-py 3, the other peers a current redis-py); scripts/test.sh makes it.
"""

import argparse
import json
import sys

from rediscluster import StrictRedisCluster


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("get", "set"))
    parser.add_argument("env")
    parser.add_argument("field")
    parser.add_argument("value", nargs="?")
    parser.add_argument("--seed", required=True, help="one node of the cluster, host:port")
    parser.add_argument("--password", default=None)
    args = parser.parse_args()

    host, port = args.seed.rsplit(":", 1)
    # The design's own construction: one startup node, a password, a short connect timeout.
    redis_nodes = [{'host': host, 'port': int(port)}]
    redis_instance = StrictRedisCluster(startup_nodes=redis_nodes, password=args.password,
                                        socket_connect_timeout=1)
    key = 'thriftprobe_' + args.env
    if args.command == "get":
        raw = redis_instance.hget(key, args.field)
        print(json.dumps(None if raw is None else json.loads(raw)))
    else:
        redis_instance.hset(key, args.field, args.value)
        print("OK")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
