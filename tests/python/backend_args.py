"""The backend options the design's peers share: ZooKeeper, Redis and MySQL of the test services."""


def add_backend_args(parser):
    """Adds --zk, --redis-* and --mysql-* with the defaults of `scripts/services.sh`."""
    parser.add_argument("--zk", default="127.0.0.1:22181", help="ZooKeeper host:port")
    parser.add_argument("--redis-host", default="127.0.0.1")
    parser.add_argument("--redis-port", type=int, default=26379)
    parser.add_argument("--redis-db", type=int, default=0)
    parser.add_argument("--redis-password", default=None)
    parser.add_argument("--mysql-host", default="127.0.0.1")
    parser.add_argument("--mysql-port", type=int, default=23306)
    parser.add_argument("--mysql-user", default="probe")
    parser.add_argument("--mysql-password", default="probe")
    parser.add_argument("--mysql-database", default="probe_test")
