# Clustered test services for `scripts/services.sh ... --cluster`: a 3-member ZooKeeper ensemble and a
# Redis Cluster of 3 masters with one replica each, all on 127.0.0.1, beside the single services.
# Sourced by services.sh, which defines $root, $state, say, die, pid_of, wait_until, stop_one,
# zk_launch.
#
# Ports (each movable with the variable named):
#   ZooKeeper members 1-3: client ${PROBE_ZK_ENSEMBLE_PORT:-22191}+0..2, quorum 22291+, election 22391+
#   Redis Cluster nodes 1-6: ${PROBE_REDIS_CLUSTER_PORT:-26401}+0..5 (cluster bus: port + 10000)
# State: target/services/zk{1,2,3}/ and target/services/redis-cluster/{1..6}/.

zk_ensemble_base=${PROBE_ZK_ENSEMBLE_PORT:-22191}
redis_cluster_base=${PROBE_REDIS_CLUSTER_PORT:-26401}
zk_members=(1 2 3)
redis_cluster_nodes=(1 2 3 4 5 6)

zk_member_port() { echo $((zk_ensemble_base + $1 - 1)); }
redis_cluster_port() { echo $((redis_cluster_base + $1 - 1)); }

zk_ensemble_connect() { # the ensemble's connect string
    local m list=()
    for m in "${zk_members[@]}"; do list+=("127.0.0.1:$(zk_member_port "$m")"); done
    (IFS=,; echo "${list[*]}")
}

redis_cluster_urls() { # the cluster's seed URLs, comma-separated, as PROBE_REDIS takes them
    local n list=()
    for n in "${redis_cluster_nodes[@]}"; do list+=("redis://127.0.0.1:$(redis_cluster_port "$n")/"); done
    (IFS=,; echo "${list[*]}")
}

# --- ZooKeeper ensemble ------------------------------------------------------------------------------

zk_member_ok() { # member: answers ruok
    local port
    port=$(zk_member_port "$1")
    [ "$(exec 3<>/dev/tcp/127.0.0.1/"$port" && printf ruok >&3 && timeout 2 cat <&3)" = imok ]
}

zk_member_mode() { # member: leader, follower, or nothing when it does not serve
    local port
    port=$(zk_member_port "$1")
    (exec 3<>/dev/tcp/127.0.0.1/"$port" && printf srvr >&3 && timeout 2 cat <&3) 2>/dev/null \
        | sed -n 's/^Mode: //p'
}

zk_ensemble_ok() { # a quorum serves: one leader and every member in the ensemble
    local m mode leaders=0
    for m in "${zk_members[@]}"; do
        mode=$(zk_member_mode "$m")
        case "$mode" in leader) leaders=$((leaders + 1)) ;; follower) ;; *) return 1 ;; esac
    done
    [ "$leaders" -eq 1 ] && zk_ensemble_session_ok
}

zk_ensemble_session_ok() {
    timeout 30 /usr/share/zookeeper/bin/zkCli.sh -server "$(zk_ensemble_connect)" ls / 2>&1 \
        | grep -q "^\[.*zookeeper.*\]"
}

zk_member_start() { # member: starts it unless it runs
    local m=$1 dir="$state/zk$1"
    if pid_of "zk$m" >/dev/null; then return; fi
    mkdir -p "$dir/data"
    echo "$m" >"$dir/data/myid"
    local peer servers=()
    for peer in "${zk_members[@]}"; do
        servers+=("server.$peer=127.0.0.1:$((zk_ensemble_base + 100 + peer - 1)):$((zk_ensemble_base + 200 + peer - 1))")
    done
    say "starting zookeeper member $m on 127.0.0.1:$(zk_member_port "$m")"
    zk_launch "$dir" "$(zk_member_port "$m")" 128m "${servers[@]}"
}

zk_ensemble_up() {
    local m
    for m in "${zk_members[@]}"; do zk_member_start "$m"; done
    wait_until 90 "zookeeper ensemble" zk_ensemble_ok || {
        for m in "${zk_members[@]}"; do
            say "member $m: mode '$(zk_member_mode "$m")'"
            tail -n 5 "$state/zk$m/log/zookeeper.log" >&2 2>/dev/null || true
        done
        die "the zookeeper ensemble ($(zk_ensemble_connect)) has no quorum after 90 s (logs: $state/zk*/log)"
    }
    local leader=""
    for m in "${zk_members[@]}"; do [ "$(zk_member_mode "$m")" = leader ] && leader=$m; done
    say "zookeeper ensemble $(zk_ensemble_connect) answers (leader: member $leader)"
}

zk_ensemble_down() {
    local m
    for m in "${zk_members[@]}"; do stop_one "zk$m"; done
}

# --- Redis Cluster -----------------------------------------------------------------------------------

redis_cluster_node_ok() { [ "$(redis-cli -h 127.0.0.1 -p "$(redis_cluster_port "$1")" PING 2>/dev/null)" = PONG ]; }

redis_cluster_ok() { # every slot served and every node sees 6 nodes
    local info
    info=$(redis-cli -h 127.0.0.1 -p "$(redis_cluster_port 1)" CLUSTER INFO 2>/dev/null) || return 1
    grep -q '^cluster_state:ok' <<<"$info" && grep -q '^cluster_slots_assigned:16384' <<<"$info" \
        && grep -q "^cluster_known_nodes:${#redis_cluster_nodes[@]}" <<<"$info"
}

redis_cluster_known() { # some node remembers other nodes (a cluster formed before a restart)
    local n
    for n in "${redis_cluster_nodes[@]}"; do
        redis-cli -h 127.0.0.1 -p "$(redis_cluster_port "$n")" CLUSTER INFO 2>/dev/null \
            | grep -q '^cluster_known_nodes:[2-9]' && return 0
    done
    return 1
}

redis_cluster_up() {
    local n dir port
    for n in "${redis_cluster_nodes[@]}"; do
        dir="$state/redis-cluster/$n"
        port=$(redis_cluster_port "$n")
        if pid_of "redis-cluster/$n" >/dev/null; then continue; fi
        mkdir -p "$dir"
        say "starting redis cluster node $n on 127.0.0.1:$port"
        redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --daemonize yes \
            --pidfile "$dir/pid" --logfile "$dir/redis.log" --save '' --appendonly no \
            --cluster-enabled yes --cluster-config-file "$dir/nodes.conf" --cluster-node-timeout 2000 \
            || die "redis cluster node $n did not start (log: $dir/redis.log)"
    done
    for n in "${redis_cluster_nodes[@]}"; do
        wait_until 20 "redis cluster node $n" redis_cluster_node_ok "$n" \
            || die "redis cluster node $n does not answer PING (log: $state/redis-cluster/$n/redis.log)"
    done
    if redis_cluster_ok; then
        say "redis cluster $(redis_cluster_port 1)-$(redis_cluster_port "${#redis_cluster_nodes[@]}") already formed"
        return
    fi
    # Nodes restarted from their nodes.conf know each other already: give them time to agree again
    # instead of forming a new cluster over them; a cluster that does not come back is reset.
    if redis_cluster_known; then
        say "redis cluster nodes restarted from their saved state; waiting for them to agree"
        if wait_until 30 "redis cluster" redis_cluster_ok; then
            say "redis cluster $(redis_cluster_urls | cut -d, -f1),... answers again (16384 slots)"
            return
        fi
        say "the saved redis cluster did not recover; resetting its nodes and forming it again"
        for n in "${redis_cluster_nodes[@]}"; do
            port=$(redis_cluster_port "$n")
            redis-cli -h 127.0.0.1 -p "$port" FLUSHALL >/dev/null 2>&1 || true
            redis-cli -h 127.0.0.1 -p "$port" CLUSTER RESET HARD >/dev/null 2>&1 || true
        done
    fi
    local addrs=()
    for n in "${redis_cluster_nodes[@]}"; do addrs+=("127.0.0.1:$(redis_cluster_port "$n")"); done
    say "forming the redis cluster (3 masters, 1 replica each)"
    redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes \
        >"$state/redis-cluster/create.log" 2>&1 \
        || { tail -n 20 "$state/redis-cluster/create.log" >&2; die "redis-cli --cluster create failed (log: $state/redis-cluster/create.log)"; }
    wait_until 30 "redis cluster" redis_cluster_ok \
        || die "the redis cluster did not reach cluster_state:ok within 30 s (logs: $state/redis-cluster/*/redis.log)"
    say "redis cluster $(redis_cluster_urls | cut -d, -f1),... answers (16384 slots)"
}

redis_cluster_down() {
    local n
    for n in "${redis_cluster_nodes[@]}"; do stop_one "redis-cluster/$n"; done
}

# --- status and env ------------------------------------------------------------------------------------

cluster_status() {
    local rc=0 m n mode
    for m in "${zk_members[@]}"; do
        if pid_of "zk$m" >/dev/null; then
            mode=$(zk_member_mode "$m")
            echo "zookeeper member $m: running (pid $(pid_of "zk$m")), port $(zk_member_port "$m"), ${mode:-NOT serving}"
            [ -n "$mode" ] || rc=1
        else
            echo "zookeeper member $m: stopped"; rc=1
        fi
    done
    for n in "${redis_cluster_nodes[@]}"; do
        if pid_of "redis-cluster/$n" >/dev/null && redis_cluster_node_ok "$n"; then
            role=$(redis-cli -h 127.0.0.1 -p "$(redis_cluster_port "$n")" ROLE 2>/dev/null | head -n 1)
            echo "redis cluster node $n: running (pid $(pid_of "redis-cluster/$n")), port $(redis_cluster_port "$n"), $role"
        else
            echo "redis cluster node $n: stopped or not answering"; rc=1
        fi
    done
    if redis_cluster_ok; then echo "redis cluster: ok"; else echo "redis cluster: NOT ok"; rc=1; fi
    return $rc
}

cluster_env() {
    echo "export PROBE_TEST_ZK_ENSEMBLE=$(zk_ensemble_connect)"
    echo "export PROBE_TEST_REDIS_CLUSTER=$(redis_cluster_urls)"
}
