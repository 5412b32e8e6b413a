"""What an operator of the Python design does by hand, as the design's own tools would do it.

    python design_operator.py OPS_JSON [backend options]

OPS_JSON is a JSON list of operations, run in order:

- `{"op": "create_minimal_db", "database": DB, "appkey": APP}`: creates database DB with the design's
  table as the design needs it, `serviceapp` with a unique `appkey` and nothing else, and registers
  APP in it (pymysql).
- `{"op": "drop_db", "database": DB}`: drops database DB.
- `{"op": "hset", "env": ENV, "field": FIELD, "value": TEXT}`: writes TEXT, exactly as given (loose
  JSON forms, any spacing), as the node settings FIELD of the Redis hash `thriftprobe_{ENV}`.
- `{"op": "zk_set", "path": PATH, "value": TEXT}`: replaces the data of the ZooKeeper node PATH with
  TEXT, exactly as given (kazoo).

Prints `DONE <n>` (the number of operations) when every one succeeded; any failure is raised, with
a non-zero exit status.
"""

import argparse
import json
import sys

import pymysql
from backend_args import add_backend_args
from kazoo.client import KazooClient
from redis import Redis

# How long kazoo may take to connect.
ZK_START_TIMEOUT = 10


def mysql_connect(args, database=None):
    return pymysql.connect(host=args.mysql_host, port=args.mysql_port, user=args.mysql_user,
                           password=args.mysql_password, database=database, connect_timeout=2,
                           autocommit=True)


def create_minimal_db(args, op):
    db = op["database"]
    with mysql_connect(args) as conn, conn.cursor() as cursor:
        cursor.execute("CREATE DATABASE `%s`" % db.replace("`", ""))
    with mysql_connect(args, db) as conn, conn.cursor() as cursor:
        cursor.execute("CREATE TABLE serviceapp (appkey VARCHAR(64) NOT NULL, UNIQUE KEY uk_appkey (appkey))")
        cursor.execute("INSERT INTO serviceapp (appkey) VALUES (%s)", [op["appkey"]])


def drop_db(args, op):
    with mysql_connect(args) as conn, conn.cursor() as cursor:
        cursor.execute("DROP DATABASE IF EXISTS `%s`" % op["database"].replace("`", ""))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("ops", help="JSON list of operations")
    add_backend_args(parser)
    args = parser.parse_args()

    ops = json.loads(args.ops)
    redis = None
    zk = None
    try:
        for op in ops:
            kind = op["op"]
            if kind == "create_minimal_db":
                create_minimal_db(args, op)
            elif kind == "drop_db":
                drop_db(args, op)
            elif kind == "hset":
                if redis is None:
                    redis = Redis(host=args.redis_host, port=args.redis_port, db=args.redis_db,
                                  password=args.redis_password)
                redis.hset("thriftprobe_" + op["env"], op["field"], op["value"])
            elif kind == "zk_set":
                if zk is None:
                    zk = KazooClient(hosts=args.zk)
                    zk.start(ZK_START_TIMEOUT)
                zk.set(op["path"], bytes(op["value"], encoding="utf-8"))
            else:
                raise ValueError("unknown operation %r" % kind)
    finally:
        if zk is not None:
            zk.stop()
            zk.close()
    print("DONE %d" % len(ops))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
