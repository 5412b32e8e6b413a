#!/usr/bin/env bash
# Install (if missing) and run ZooKeeper, Redis and MariaDB on 127.0.0.1 for probe's tests.
#
#   scripts/services.sh up      install missing Debian packages, start what is not running, wait until
#                               each service answers, create the MySQL database and `serviceapp` table
#   scripts/services.sh down    stop what `up` started (by the pid files under target/services/)
#   scripts/services.sh status  say for each service whether it runs and answers
#   scripts/services.sh env     print the PROBE_TEST_* variables the tests read (eval-able)
#
# TLS (scripts/lib/tls.sh): `up` makes a test CA and a certificate for 127.0.0.1 under
# target/services/tls/, starts a second Redis that speaks only TLS (port 26380) and starts MariaDB
# taking TLS beside plain connections (a MariaDB started without it is restarted once).
# With --cluster (`up --cluster`, `status --cluster`, `env --cluster`), the production shapes too,
# beside the single services: a 3-member ZooKeeper ensemble and a Redis Cluster of 3 masters with a
# replica each (scripts/lib/cluster.sh says their ports), and a Redis Cluster of 3 masters that speaks
# only TLS (scripts/lib/tls.sh). `down` stops whatever `up` started.
#
# The services use the project's own ports, never the usual 2181/6379/3306, and keep data, logs and
# pid files under target/services/. Ports can be moved with PROBE_ZK_PORT, PROBE_REDIS_PORT and
# PROBE_MYSQL_PORT.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
state="$root/target/services"
zk_port=${PROBE_ZK_PORT:-22181}
redis_port=${PROBE_REDIS_PORT:-26379}
mysql_port=${PROBE_MYSQL_PORT:-23306}
mysql_db=probe_test
mysql_user=probe
mysql_tls_user=probe_tls
mysql_password=probe

say() { printf 'services: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# --- installation ------------------------------------------------------------------------------------

need_packages() {
    local missing=()
    command -v java >/dev/null && [ -f /usr/share/java/zookeeper.jar ] || missing+=(zookeeper)
    command -v redis-server >/dev/null && command -v redis-cli >/dev/null || missing+=(redis-server)
    command -v mariadbd >/dev/null && command -v mariadb-install-db >/dev/null || missing+=(mariadb-server)
    command -v mariadb >/dev/null || missing+=(mariadb-client)
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing packages ${missing[*]}; run as root or install them with apt-get"
    say "installing ${missing[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >"$state/apt.log" 2>&1 \
        || { tail -n 20 "$state/apt.log" >&2; die "apt-get install ${missing[*]} failed (log: $state/apt.log)"; }
}

# --- pid helpers -------------------------------------------------------------------------------------

pid_of() { # name -> pid if its pid file names a live process
    local f="$state/$1/pid"
    [ -f "$f" ] || return 1
    local pid
    pid=$(cat "$f")
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && { echo "$pid"; return 0; }
    return 1
}

wait_until() { # seconds description command...
    local secs=$1 what=$2
    shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || return 1
        sleep 0.2
    done
}

# --- ZooKeeper -----------------------------------------------------------------------------------------

zk_ok() { [ "$(exec 3<>/dev/tcp/127.0.0.1/$zk_port && printf ruok >&3 && timeout 2 cat <&3)" = imok ]; }

zk_session_ok() { # a real session: a client connects and lists the root
    timeout 30 /usr/share/zookeeper/bin/zkCli.sh -server "127.0.0.1:$zk_port" ls / 2>&1 | grep -q "^\[.*zookeeper.*\]"
}

# Writes DIR/zoo.cfg (client port PORT, then any extra lines, e.g. an ensemble's server.N) and
# DIR/log4j.properties, and starts ZooKeeper with HEAP in the background; its pid goes to DIR/pid.
zk_launch() { # dir port heap [cfg line...]
    local dir=$1 port=$2 heap=$3
    shift 3
    mkdir -p "$dir/data" "$dir/log"
    {
        cat <<CFG
tickTime=500
initLimit=20
syncLimit=5
dataDir=$dir/data
clientPort=$port
clientPortAddress=127.0.0.1
maxClientCnxns=0
minSessionTimeout=1000
maxSessionTimeout=60000
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,stat,mntr,cons
CFG
        local line
        for line in "$@"; do echo "$line"; done
    } >"$dir/zoo.cfg"
    cat >"$dir/log4j.properties" <<'CFG'
log4j.rootLogger=INFO, FILE
log4j.appender.FILE=org.apache.log4j.FileAppender
log4j.appender.FILE.File=${zookeeper.log.file}
log4j.appender.FILE.layout=org.apache.log4j.PatternLayout
log4j.appender.FILE.layout.ConversionPattern=%d{ISO8601} [%t] %-5p %c{1} - %m%n
CFG
    setsid java "-Xmx$heap" -Dzookeeper.log.file="$dir/log/zookeeper.log" \
        -Dlog4j.configuration="file:$dir/log4j.properties" \
        -cp "$dir:/usr/share/java/zookeeper.jar" \
        org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zoo.cfg" \
        >"$dir/log/stdout.log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
}

zk_up() {
    local dir="$state/zookeeper"
    if pid_of zookeeper >/dev/null; then say "zookeeper already running (pid $(pid_of zookeeper))"; return; fi
    if zk_ok; then say "zookeeper already answers on port $zk_port (not started by this checkout); using it"; return; fi
    say "starting zookeeper on 127.0.0.1:$zk_port"
    zk_launch "$dir" "$zk_port" 256m
    wait_until 60 zookeeper zk_ok || { tail -n 20 "$dir/log/"*.log >&2; die "zookeeper did not answer ruok on port $zk_port within 60 s (logs: $dir/log)"; }
    wait_until 60 zookeeper zk_session_ok || die "zookeeper answers ruok but no client session opened within 60 s (logs: $dir/log)"
}

# --- Redis -------------------------------------------------------------------------------------------

redis_ok() { [ "$(redis-cli -h 127.0.0.1 -p "$redis_port" PING 2>/dev/null)" = PONG ]; }

redis_up() {
    local dir="$state/redis"
    if pid_of redis >/dev/null; then say "redis already running (pid $(pid_of redis))"; return; fi
    if redis_ok; then say "redis already answers on port $redis_port (not started by this checkout); using it"; return; fi
    mkdir -p "$dir"
    say "starting redis on 127.0.0.1:$redis_port"
    redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$dir" --daemonize yes \
        --pidfile "$dir/pid" --logfile "$dir/redis.log" --save '' --appendonly no \
        || die "redis-server did not start (log: $dir/redis.log)"
    wait_until 20 redis redis_ok || die "redis did not answer PING on port $redis_port within 20 s (log: $dir/redis.log)"
}

# --- MariaDB -----------------------------------------------------------------------------------------

mysql_root() { mariadb --protocol=socket -S "$state/mariadb/mysqld.sock" -uroot "$@"; }
mysql_ok() { mariadb -h 127.0.0.1 -P "$mysql_port" -u"$mysql_user" -p"$mysql_password" "$mysql_db" -e 'SELECT 1'; }

# As root over the socket: the test user, its database, and the scratch databases `<db>_*` that tests
# create and drop (the MySQL schema tests, each on a database of its own); and a user of the same
# database that may only connect over TLS (the TLS tests: a plain connection of theirs is refused).
mysql_grants() {
    mysql_root <<SQL
CREATE DATABASE IF NOT EXISTS $mysql_db CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS '$mysql_user'@'127.0.0.1' IDENTIFIED BY '$mysql_password';
CREATE USER IF NOT EXISTS '$mysql_user'@'localhost' IDENTIFIED BY '$mysql_password';
GRANT ALL PRIVILEGES ON $mysql_db.* TO '$mysql_user'@'127.0.0.1';
GRANT ALL PRIVILEGES ON $mysql_db.* TO '$mysql_user'@'localhost';
GRANT ALL PRIVILEGES ON \`${mysql_db}_%\`.* TO '$mysql_user'@'127.0.0.1';
GRANT ALL PRIVILEGES ON \`${mysql_db}_%\`.* TO '$mysql_user'@'localhost';
CREATE USER IF NOT EXISTS '$mysql_tls_user'@'127.0.0.1' IDENTIFIED BY '$mysql_password' REQUIRE SSL;
GRANT ALL PRIVILEGES ON $mysql_db.* TO '$mysql_tls_user'@'127.0.0.1';
FLUSH PRIVILEGES;
SQL
}

mysql_up() {
    local dir="$state/mariadb"
    if pid_of mariadb >/dev/null && ! mysql_tls_on; then
        # TLS settings are read at start only.
        say "mariadb (pid $(pid_of mariadb)) runs without TLS; restarting it with TLS"
        stop_one mariadb
    fi
    if pid_of mariadb >/dev/null; then
        say "mariadb already running (pid $(pid_of mariadb))"
        mysql_grants
        mysql_schema
        return
    fi
    if mysql_ok >/dev/null 2>&1; then
        say "mariadb already answers on port $mysql_port (not started by this checkout); using it (TLS only if it was started with it)"
        mysql_schema
        return
    fi
    mkdir -p "$dir"
    if [ ! -d "$dir/data/mysql" ]; then
        say "initialising mariadb data directory"
        mariadb-install-db --no-defaults --datadir="$dir/data" --user="$(id -un)" \
            --auth-root-authentication-method=normal --skip-test-db >"$dir/install.log" 2>&1 \
            || { tail -n 20 "$dir/install.log" >&2; die "mariadb-install-db failed (log: $dir/install.log)"; }
    fi
    say "starting mariadb on 127.0.0.1:$mysql_port"
    setsid mariadbd --no-defaults --datadir="$dir/data" --bind-address=127.0.0.1 --port="$mysql_port" \
        --socket="$dir/mysqld.sock" --pid-file="$dir/mariadbd.pid" --log-error="$dir/error.log" \
        --user="$(id -un)" --skip-name-resolve --innodb-buffer-pool-size=64M $(mysql_tls_args) \
        >/dev/null 2>&1 </dev/null &
    echo $! >"$dir/pid"
    wait_until 60 mariadb mysql_root -e 'SELECT 1' \
        || { tail -n 20 "$dir/error.log" >&2; die "mariadb did not answer on its socket within 60 s (log: $dir/error.log)"; }
    mysql_grants
    wait_until 20 mariadb mysql_ok || die "mariadb does not answer queries on 127.0.0.1:$mysql_port (log: $dir/error.log)"
    mysql_schema
}

mysql_schema() { # as the probe user over TCP, so it also works on a server another checkout started
    mariadb -h 127.0.0.1 -P "$mysql_port" -u"$mysql_user" -p"$mysql_password" "$mysql_db" \
        <"$root/scripts/schema.sql" || die "creating the probe schema in $mysql_db failed"
}

# --- commands ----------------------------------------------------------------------------------------

stop_one() { # name
    local pid
    if pid=$(pid_of "$1"); then
        say "stopping $1 (pid $pid)"
        kill "$pid" 2>/dev/null || true
        local deadline=$((SECONDS + 30))
        while kill -0 "$pid" 2>/dev/null; do
            if [ $SECONDS -ge $deadline ]; then kill -9 "$pid" 2>/dev/null || true; fi
            sleep 0.2
        done
    fi
    rm -f "$state/$1/pid"
}

status_one() { # name check
    local pid
    if pid=$(pid_of "$1"); then
        if $2 >/dev/null 2>&1; then echo "$1: running (pid $pid), answers"; else echo "$1: running (pid $pid), NOT answering"; return 1; fi
    else
        echo "$1: stopped"; return 1
    fi
}

print_env() {
    echo "export PROBE_TEST_ZK=127.0.0.1:$zk_port"
    echo "export PROBE_TEST_REDIS=redis://127.0.0.1:$redis_port/"
    echo "export PROBE_TEST_MYSQL=mysql://$mysql_user:$mysql_password@127.0.0.1:$mysql_port/$mysql_db"
}

# shellcheck source=lib/cluster.sh
. "$root/scripts/lib/cluster.sh"
# shellcheck source=lib/tls.sh
. "$root/scripts/lib/tls.sh"

cmd=${1:-}
cluster=false
case "${2:-}" in
'') ;;
--cluster) cluster=true ;;
*) echo "usage: scripts/services.sh up|down|status|env [--cluster]" >&2; exit 2 ;;
esac
case "$cmd" in
up)
    mkdir -p "$state"
    need_packages
    tls_certs
    zk_up
    redis_up
    redis_tls_up
    mysql_up
    say "all three services answer (Redis and MariaDB over TLS too)"
    if $cluster; then
        zk_ensemble_up
        redis_cluster_up
        redis_tls_cluster_up
    fi
    ;;
down)
    stop_one zookeeper
    stop_one redis
    stop_one mariadb
    zk_ensemble_down
    redis_cluster_down
    redis_tls_down
    ;;
status)
    rc=0
    status_one zookeeper zk_ok || rc=1
    status_one redis redis_ok || rc=1
    status_one mariadb mysql_ok || rc=1
    tls_status || rc=1
    if $cluster; then cluster_status || rc=1; tls_cluster_status || rc=1; fi
    exit $rc
    ;;
env)
    print_env
    tls_env
    if $cluster; then cluster_env; tls_cluster_env; fi
    ;;
*)
    echo "usage: scripts/services.sh up|down|status|env [--cluster]" >&2
    exit 2
    ;;
esac
