"""A Directory provider registered exactly as the Python design's `start_service` + `__zk_connect`.

    python registry_provider.py --appkey APP --port PORT --tag TAG [backend options] [--watch-stdin]

The design (thriftprobe server.py) reads config.yml and the host name; this script takes the same
settings as options instead (see `--help`), binds 127.0.0.1 and registers 127.0.0.1 in place of the
host-name lookup. Otherwise it keeps the design's steps and byte formats:

1. `SELECT count(*) as total from serviceapp WHERE appkey = %s` (pymysql); an unknown appkey stops
   it with the design's message (`appkey - APP 尚未注册`) and exit status 2.
2. Redis hash `thriftprobe_{env}`, field `{appkey}|{env}|{service}|{ip}|{port}`: `json.loads` of the
   value when there is one, else the default `{host, port, weight: 10, valid: 1}` written back with
   `json.dumps`.
3. kazoo: `/services/{env}/{appkey}` created (makepath) when missing, then the EPHEMERAL node
   `{service}_{ip}_{port}` with `bytes(json.dumps(nodeinfos), 'utf-8')`.
4. A thriftpy2 `rpc.make_server` server (binary protocol, buffered = unframed transport, the
   design's defaults) whose `ping` answers TAG; the other Directory methods are not implemented.

Two deliberate changes, both fixing races of the design:
- its `exists` + `create` of the app path fails with NodeExistsError when two providers of a new
  appkey start at once (the loser dies); this script ignores that error;
- it registers the node in `__zk_connect` before `server.serve()` opens the listening socket, so for
  a moment clients can find a node that refuses connections; this script listens first.

Once registered it prints `READY <port>` (flushed) and serves until killed, or with `--watch-stdin`
until stdin closes (the test process is gone); then it closes the ZooKeeper session so the
ephemeral node goes at once.

PORT 0 picks a free port (thriftpy2's make_server refuses port 0 itself).
"""

import argparse
import json
import logging
import os
import re
import socket
import sys
import threading

import pymysql
from backend_args import add_backend_args
import thriftpy2
from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError
from redis import Redis
from thriftpy2 import rpc

IDL_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "idl")
# What the host-name lookup of the design (`socket.gethostbyname(socket.getfqdn(...))`) answers here.
LOCAL_IP = "127.0.0.1"
# How long kazoo may take to connect (the design waits 200 s; a test should fail sooner).
ZK_START_TIMEOUT = 10


class AppNotRegistered(Exception):
    pass


class TaggedHandler(object):
    """Directory whose `ping` answers the provider's tag, like probe_tests::governance::Tagged."""

    def __init__(self, tag):
        self.tag = tag

    def ping(self, msg):
        return self.tag


def start_service(config, env, thrift_path, appkey, service_name, handler, port, on_ready):
    """The design's `start_service`, with `config` shaped like its config.yml."""
    if type(service_name).__name__ != 'str' or '' == service_name or re.match(r'^\w+$', service_name) is None:
        raise Exception('错误的 service_name (' + service_name + '), service_name 只能取字母、数字或下划线的组合')

    mysql = config['mysql'][env]
    dbclient = pymysql.connect(host=mysql['host'], port=mysql['port'], user=mysql['username'],
                               database=mysql['database'], password=mysql['password'], connect_timeout=1)
    sql = 'SELECT count(*) as total from serviceapp WHERE appkey = %s'
    cursor = dbclient.cursor(pymysql.cursors.DictCursor)
    values = [appkey]
    cursor.execute(sql, values)
    total = cursor.fetchone()
    dbclient.close()
    if total is None or total['total'] <= 0:
        raise AppNotRegistered('appkey - ' + appkey + ' 尚未注册')

    module_name = appkey + '_thrift'
    service_thrift = thriftpy2.load(thrift_path, module_name=module_name, include_dirs=[IDL_DIR])
    server = rpc.make_server(getattr(service_thrift, service_name), handler, LOCAL_IP, port)
    logging.info('启动 thrift 服务 [appkey:' + appkey + ', service_name:' + service_name + ', port:' + str(port) + ']')
    # Listen before registering (see the module doc); serve() would listen again otherwise.
    server.trans.listen()
    server.trans.listen = lambda: None
    zk = __zk_connect(config, env, appkey, service_name, port)
    on_ready(zk)
    server.serve()


def __zk_connect(config, env, appkey, service_name, port):
    """The design's `__zk_connect` (single Redis; the design's Redis Cluster branch is left out)."""
    local_ip = LOCAL_IP
    redis_config = config['redis'][env]
    redis_instance = Redis(host=redis_config['host'], port=redis_config['port'],
                           password=redis_config['password'], db=redis_config['db'])

    nodeinfos = None
    redis_key = 'thriftprobe_' + env
    node_field = appkey + '|' + env + '|' + service_name + '|' + local_ip + '|' + str(port)
    try:
        nodeinfos = json.loads(
            redis_instance.hget(redis_key, node_field))
    except Exception:
        pass

    if nodeinfos is None:
        nodeinfos = {
            'host': local_ip,
            'port': port,
            'weight': 10,
            'valid': 1
        }
        redis_instance.hset(redis_key, node_field, json.dumps(nodeinfos))
        logging.info('更新节点配置信息到缓存: ' + node_field + ' - ' + json.dumps(nodeinfos))
    else:
        logging.info('从缓存中加载节点配置信息: ' + node_field + '-' + json.dumps(nodeinfos))

    host = config['zkserver'][env]['host'] + ':' + str(config['zkserver'][env]['port'])
    zk = KazooClient(hosts=host)
    zk.start(ZK_START_TIMEOUT)

    full_name = '/services' + '/' + env + '/' + appkey

    exists = zk.exists(full_name)
    if exists is None:
        # The design's check-then-create races when two providers of a new appkey start at once:
        # the loser's create fails with NodeExistsError and it dies. The path is there either way.
        try:
            zk.create(full_name, makepath=True)
        except NodeExistsError:
            pass

    zk.create(full_name + '/' + service_name + '_' + local_ip + '_' + str(port),
              value=bytes(json.dumps(nodeinfos), encoding='utf-8'),
              ephemeral=True)
    logging.info('创建节点成功:' + json.dumps(nodeinfos))
    return zk


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOCAL_IP, 0))
        return s.getsockname()[1]


def host_port(text, default_port):
    host, _, port = text.rpartition(':')
    return (host, int(port)) if host else (text, default_port)


def config_from_args(args):
    """The parts of the design's config.yml its server reads, for `args.env`."""
    zk_host, zk_port = host_port(args.zk, 2181)
    return {
        'zkserver': {args.env: {'host': zk_host, 'port': zk_port}},
        'redis': {args.env: {'host': args.redis_host, 'port': args.redis_port,
                             'password': args.redis_password, 'db': args.redis_db, 'cluster': 0}},
        'mysql': {args.env: {'host': args.mysql_host, 'port': args.mysql_port, 'username': args.mysql_user,
                             'password': args.mysql_password, 'database': args.mysql_database}},
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appkey", required=True)
    parser.add_argument("--service", default="Directory")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free one")
    parser.add_argument("--tag", required=True, help="what ping answers")
    parser.add_argument("--env", default="dev", choices=("dev", "prod"))
    add_backend_args(parser)
    parser.add_argument("--watch-stdin", action="store_true", help="exit when stdin closes")
    args = parser.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format='%(asctime)s - %(pathname)s[line:%(lineno)d] - %(levelname)s: %(message)s')

    port = args.port or free_port()

    def on_ready(zk):
        print("READY %d" % port, flush=True)
        if args.watch_stdin:
            def watch():
                sys.stdin.buffer.read()
                try:
                    zk.stop()
                    zk.close()
                finally:
                    os._exit(0)

            threading.Thread(target=watch, daemon=True).start()

    thrift_path = os.path.join(IDL_DIR, "interop.thrift")
    try:
        start_service(config_from_args(args), args.env, thrift_path, args.appkey, args.service,
                      TaggedHandler(args.tag), port, on_ready)
    except AppNotRegistered as e:
        logging.error(e)
        print(str(e), file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
