# TLS for the test services: a test CA and a server certificate (openssl), a Redis that speaks
# only TLS beside the plain one, MariaDB's TLS settings, and with --cluster a Redis Cluster that
# speaks only TLS. Sourced by services.sh, which defines $root, $state, say, die, pid_of,
# wait_until, stop_one.
#
# Files under target/services/tls/ (made once, made again when a certificate is about to expire):
#   ca.pem, ca.key          the test CA (10 years)
#   server.pem, server.key  signed by it for IP 127.0.0.1 and DNS localhost (1 year: browsers refuse
#                           longer-lived server certificates)
#   client.pem, client.key  signed by it for TLS clients (the TLS cluster's bus requires one)
#   other-ca.pem            a CA that signed nothing: what tests give as a wrong CA
# Ports (each movable with the variable named):
#   Redis over TLS: ${PROBE_REDIS_TLS_PORT:-26380} (no plain port)
#   TLS Redis Cluster nodes 1-3: ${PROBE_REDIS_TLS_CLUSTER_PORT:-26411}+0..2 (3 masters, no replicas;
#   the cluster bus is TLS too)
# MariaDB takes TLS on its usual port (23306) beside plain connections.

tls_dir="$state/tls"
redis_tls_port=${PROBE_REDIS_TLS_PORT:-26380}
redis_tls_cluster_base=${PROBE_REDIS_TLS_CLUSTER_PORT:-26411}
redis_tls_cluster_nodes=(1 2 3)

redis_tls_cluster_port() { echo $((redis_tls_cluster_base + $1 - 1)); }

# --- certificates ------------------------------------------------------------------------------------

tls_fresh() { # file: a certificate valid for one more day
    [ -f "$1" ] && openssl x509 -checkend 86400 -noout -in "$1" >/dev/null 2>&1
}

tls_new_ca() { # name subject: name.pem and name.key, a CA for 10 years
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
        -keyout "$tls_dir/$1.key" -out "$tls_dir/$1.pem" -subj "/CN=$2" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        >"$tls_dir/openssl.log" 2>&1 || { cat "$tls_dir/openssl.log" >&2; die "openssl could not make the CA $1"; }
}

tls_new_leaf() { # name common-name usage [extension...]: name.pem and name.key, signed by the test CA
    local name=$1 cn=$2 usage=$3
    shift 3
    printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage=$usage" "$@" >"$tls_dir/$name.ext"
    { openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$tls_dir/$name.key" \
        -out "$tls_dir/$name.csr" -subj "/CN=$cn" \
        && openssl x509 -req -in "$tls_dir/$name.csr" -CA "$tls_dir/ca.pem" -CAkey "$tls_dir/ca.key" \
            -CAcreateserial -days 365 -extfile "$tls_dir/$name.ext" -out "$tls_dir/$name.pem"; } \
        >"$tls_dir/openssl.log" 2>&1 \
        || { cat "$tls_dir/openssl.log" >&2; die "openssl could not make the certificate $name"; }
}

tls_certs() {
    command -v openssl >/dev/null || die "openssl is missing; install it with apt-get install openssl"
    mkdir -p "$tls_dir"
    chmod 700 "$tls_dir"
    local made=false
    if ! tls_fresh "$tls_dir/ca.pem"; then
        say "making the test CA ($tls_dir/ca.pem)"
        tls_new_ca ca "probe test CA"
        rm -f "$tls_dir/server.pem" "$tls_dir/client.pem"
        made=true
    fi
    tls_fresh "$tls_dir/other-ca.pem" || tls_new_ca other-ca "probe test CA that signed nothing"
    if ! tls_fresh "$tls_dir/server.pem"; then
        say "making the test server certificate for 127.0.0.1 ($tls_dir/server.pem)"
        tls_new_leaf server 127.0.0.1 serverAuth "subjectAltName=IP:127.0.0.1,DNS:localhost"
        made=true
    fi
    tls_fresh "$tls_dir/client.pem" || tls_new_leaf client "probe test client" clientAuth
    chmod 600 "$tls_dir"/*.key
    # Servers running on an older certificate read the new one when restarted (down, then up).
    if $made && { pid_of redis-tls >/dev/null || pid_of mariadb >/dev/null; }; then
        say "new certificates: services already running keep the old ones until restarted"
    fi
}

# --- Redis over TLS ------------------------------------------------------------------------------------

redis_tls_cli() { # port args...: redis-cli over TLS, trusting the test CA
    local port=$1
    shift
    redis-cli --tls --cacert "$tls_dir/ca.pem" -h 127.0.0.1 -p "$port" "$@"
}

redis_tls_ok() { [ "$(redis_tls_cli "$redis_tls_port" PING 2>/dev/null)" = PONG ]; }

redis_tls_args() { # dir: the TLS options of a redis-server that speaks only TLS
    echo --port 0 --tls-cert-file "$tls_dir/server.pem" --tls-key-file "$tls_dir/server.key" \
        --tls-ca-cert-file "$tls_dir/ca.pem" --tls-auth-clients no
}

redis_tls_up() {
    local dir="$state/redis-tls"
    if pid_of redis-tls >/dev/null; then say "redis over TLS already running (pid $(pid_of redis-tls))"; return; fi
    mkdir -p "$dir"
    say "starting redis over TLS on 127.0.0.1:$redis_tls_port"
    # shellcheck disable=SC2046 # the TLS options are words
    redis-server --bind 127.0.0.1 --tls-port "$redis_tls_port" $(redis_tls_args) --dir "$dir" \
        --daemonize yes --pidfile "$dir/pid" --logfile "$dir/redis.log" --save '' --appendonly no \
        || die "redis-server over TLS did not start (log: $dir/redis.log)"
    wait_until 20 "redis over TLS" redis_tls_ok \
        || die "redis over TLS did not answer PING on port $redis_tls_port within 20 s (log: $dir/redis.log)"
}

# --- Redis Cluster over TLS ----------------------------------------------------------------------------

redis_tls_node_ok() { [ "$(redis_tls_cli "$(redis_tls_cluster_port "$1")" PING 2>/dev/null)" = PONG ]; }

redis_tls_cluster_ok() { # every slot served by the 3 nodes
    local info
    info=$(redis_tls_cli "$(redis_tls_cluster_port 1)" CLUSTER INFO 2>/dev/null) || return 1
    grep -q '^cluster_state:ok' <<<"$info" && grep -q '^cluster_slots_assigned:16384' <<<"$info" \
        && grep -q "^cluster_known_nodes:${#redis_tls_cluster_nodes[@]}" <<<"$info"
}

redis_tls_cluster_urls() {
    local n list=()
    for n in "${redis_tls_cluster_nodes[@]}"; do list+=("rediss://127.0.0.1:$(redis_tls_cluster_port "$n")/"); done
    (IFS=,; echo "${list[*]}")
}

redis_tls_cluster_up() {
    local n dir port
    for n in "${redis_tls_cluster_nodes[@]}"; do
        dir="$state/redis-tls-cluster/$n"
        port=$(redis_tls_cluster_port "$n")
        if pid_of "redis-tls-cluster/$n" >/dev/null; then continue; fi
        mkdir -p "$dir"
        say "starting TLS redis cluster node $n on 127.0.0.1:$port"
        # shellcheck disable=SC2046
        redis-server --bind 127.0.0.1 --tls-port "$port" $(redis_tls_args) --tls-cluster yes \
            --tls-client-cert-file "$tls_dir/client.pem" --tls-client-key-file "$tls_dir/client.key" \
            --dir "$dir" --daemonize yes --pidfile "$dir/pid" --logfile "$dir/redis.log" --save '' \
            --appendonly no --cluster-enabled yes --cluster-config-file "$dir/nodes.conf" \
            --cluster-node-timeout 2000 \
            || die "TLS redis cluster node $n did not start (log: $dir/redis.log)"
    done
    for n in "${redis_tls_cluster_nodes[@]}"; do
        wait_until 20 "TLS redis cluster node $n" redis_tls_node_ok "$n" \
            || die "TLS redis cluster node $n does not answer PING (log: $state/redis-tls-cluster/$n/redis.log)"
    done
    if redis_tls_cluster_ok; then
        say "TLS redis cluster $(redis_tls_cluster_urls | cut -d, -f1),... already formed"
        return
    fi
    # Nodes restarted from their nodes.conf know each other: give them time to agree again.
    if redis_tls_cli "$(redis_tls_cluster_port 1)" CLUSTER INFO 2>/dev/null | grep -q '^cluster_known_nodes:[2-9]' \
        && wait_until 30 "TLS redis cluster" redis_tls_cluster_ok; then
        say "TLS redis cluster $(redis_tls_cluster_urls | cut -d, -f1),... answers again"
        return
    fi
    for n in "${redis_tls_cluster_nodes[@]}"; do
        port=$(redis_tls_cluster_port "$n")
        redis_tls_cli "$port" FLUSHALL >/dev/null 2>&1 || true
        redis_tls_cli "$port" CLUSTER RESET HARD >/dev/null 2>&1 || true
    done
    local addrs=()
    for n in "${redis_tls_cluster_nodes[@]}"; do addrs+=("127.0.0.1:$(redis_tls_cluster_port "$n")"); done
    say "forming the TLS redis cluster (3 masters)"
    redis-cli --tls --cacert "$tls_dir/ca.pem" --cluster create "${addrs[@]}" --cluster-replicas 0 \
        --cluster-yes >"$state/redis-tls-cluster/create.log" 2>&1 \
        || { tail -n 20 "$state/redis-tls-cluster/create.log" >&2; die "forming the TLS redis cluster failed (log: $state/redis-tls-cluster/create.log)"; }
    wait_until 30 "TLS redis cluster" redis_tls_cluster_ok \
        || die "the TLS redis cluster did not reach cluster_state:ok within 30 s (logs: $state/redis-tls-cluster/*/redis.log)"
    say "TLS redis cluster $(redis_tls_cluster_urls | cut -d, -f1),... answers (16384 slots)"
}

redis_tls_down() {
    local n
    stop_one redis-tls
    for n in "${redis_tls_cluster_nodes[@]}"; do stop_one "redis-tls-cluster/$n"; done
}

# --- MariaDB ---------------------------------------------------------------------------------------------

mysql_tls_args() { # the server options that make MariaDB take TLS
    echo --ssl-cert="$tls_dir/server.pem" --ssl-key="$tls_dir/server.key" --ssl-ca="$tls_dir/ca.pem"
}

mysql_tls_on() { [ "$(mysql_root -N -e "SELECT @@have_ssl" 2>/dev/null)" = YES ]; }

# --- status and env ------------------------------------------------------------------------------------

tls_status() {
    local rc=0
    status_one redis-tls redis_tls_ok || rc=1
    if mysql_tls_on; then echo "mariadb: takes TLS"; else echo "mariadb: does NOT take TLS (restart it: down, then up)"; rc=1; fi
    return $rc
}

tls_cluster_status() {
    if redis_tls_cluster_ok; then echo "TLS redis cluster: ok"; else echo "TLS redis cluster: NOT ok"; return 1; fi
}

tls_env() {
    echo "export PROBE_TEST_TLS_CA=$tls_dir/ca.pem"
    echo "export PROBE_TEST_TLS_OTHER_CA=$tls_dir/other-ca.pem"
    echo "export PROBE_TEST_TLS_CERT=$tls_dir/server.pem"
    echo "export PROBE_TEST_TLS_KEY=$tls_dir/server.key"
    echo "export PROBE_TEST_REDIS_TLS=rediss://127.0.0.1:$redis_tls_port/"
    # A user MariaDB lets in over TLS only.
    echo "export PROBE_TEST_MYSQL_TLS='mysql://$mysql_tls_user:$mysql_password@127.0.0.1:$mysql_port/$mysql_db?require_ssl=true'"
}

tls_cluster_env() {
    echo "export PROBE_TEST_REDIS_TLS_CLUSTER=$(redis_tls_cluster_urls)"
}
