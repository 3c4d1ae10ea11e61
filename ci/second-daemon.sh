#!/bin/bash
# A second Docker daemon in a network namespace of its own, for tests that
# must show the harness needs nothing of the daemon's network: no shared
# loopback, no host ports.
#
#   ci/second-daemon.sh start DIR [IMAGE...]
#       Starts dockerd in a new network namespace (only `lo`, brought up),
#       with its socket, data root, exec root (and so its own managed
#       containerd), pid file and configuration all under DIR; waits, with a
#       deadline, until it answers; then copies each IMAGE into it from the
#       default daemon (docker save | docker load). Its log is DIR/dockerd.log.
#       Talk to it with DOCKER_HOST=unix://DIR/docker.sock.
#   ci/second-daemon.sh stop DIR
#       Removes its containers, stops it (SIGTERM, then SIGKILL to whatever
#       is left in its namespace after the deadline), unmounts what it left
#       mounted under DIR and removes its state; DIR/dockerd.log stays.
#       Does nothing when no daemon was started in DIR.
#
# Needs root, util-linux's unshare, iproute2's ip and Debian's docker.io.
# Exit status: 0 done, 2 usage, 3 cannot start or stop.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"

deadline=${TLSHARNESS_DOCKER_DEADLINE:-90}

usage() {
    echo "usage: $0 start DIR [IMAGE...] | stop DIR" >&2
    exit 2
}

fail() {
    echo "second-daemon: $*" >&2
    exit 3
}

# The network namespace of process $1, e.g. net:[4026532281]; empty when
# the process is gone.
netns_of() {
    readlink "/proc/$1/ns/net" 2>/dev/null || true
}

# Whether process $1 runs (a zombie does not: nobody here may reap it).
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

# Waits until process $1 has exited, at most $2 seconds; fails otherwise.
# It is not our child, so there is nothing to wait(2) on: its state is
# polled until the deadline.
wait_exit() {
    local end=$((SECONDS + $2))
    while alive "$1"; do
        [ "$SECONDS" -lt "$end" ] || return 1
        sleep 0.1
    done
}

# Processes in network namespace $1 (the daemon's: nothing else is there).
pids_in_netns() {
    local p
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/ns/net" 2>/dev/null)" = "$1" ] && echo "${p#/proc/}"
    done
    return 0
}

# Mount points at or under directory $1, deepest first.
mounts_under() {
    # Field 5 of mountinfo is the mount point, with space, tab, newline and
    # backslash written as octal escapes.
    awk '{ print $5 }' /proc/self/mountinfo |
        while IFS= read -r m; do
            m=$(printf '%b' "$m")
            case "$m" in "$1" | "$1"/*) echo "$m" ;; esac
        done |
        awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2-
}

start() {
    local dir=$1
    shift
    [ "$(id -u)" = 0 ] || fail "starting a second dockerd needs root"
    local tool
    for tool in unshare ip dockerd docker timeout tail; do
        command -v "$tool" >/dev/null 2>&1 ||
            fail "$tool is missing (unshare: util-linux; ip: iproute2; dockerd, docker: docker.io)"
    done
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd -P)
    # containerd's sockets live under the exec root; a unix socket path has
    # at most 107 bytes.
    local longest="$dir/exec/containerd/containerd.sock.ttrpc"
    [ "${#longest}" -le 100 ] ||
        fail "$dir is too deep for the daemon's unix sockets (${#longest} > 100 bytes in $longest); use a shorter path"
    local old
    old=$(cat "$dir/dockerd.pid" 2>/dev/null || true)
    if [ -n "$old" ] && alive "$old"; then
        fail "a daemon already runs for $dir (pid $old); stop it first: $0 stop $dir"
    fi
    local log="$dir/dockerd.log"
    local sock="$dir/docker.sock"
    : >"$log"
    # Its own configuration, so that /etc/docker/daemon.json (hosts, data
    # root...) cannot make it clash with the first daemon.
    echo '{}' >"$dir/daemon.json"

    echo "second-daemon: starting dockerd in a new network namespace (log: $log)"
    # setsid: the daemon outlives this script and a signal to the caller's
    # process group. unshare and sh exec, so $! is dockerd's pid.
    setsid unshare --net -- /bin/sh -c 'ip link set lo up && exec "$@"' sh \
        dockerd \
        --host "unix://$sock" \
        --data-root "$dir/data" \
        --exec-root "$dir/exec" \
        --pidfile "$dir/docker.pid" \
        --config-file "$dir/daemon.json" \
        --bridge=none --iptables=false --ip-masq=false \
        >>"$log" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$dir/dockerd.pid"

    # Wait for the daemon's own "API listen on" line; tail stops when
    # dockerd exits, so a failed start fails at once, not at the deadline.
    local up=0
    exec 3< <(exec tail --pid="$pid" -n +1 -f "$log")
    local tail_pid=$!
    if timeout "$deadline" grep -q -m1 'API listen on' <&3; then up=1; fi
    kill "$tail_pid" 2>/dev/null || true
    exec 3<&-
    if [ "$up" != 1 ]; then
        echo "second-daemon: dockerd did not come up within ${deadline}s; last lines of $log:" >&2
        tail -n 20 "$log" >&2
        stop "$dir" >/dev/null 2>&1 || true
        exit 3
    fi
    local ns
    ns=$(netns_of "$pid")
    echo "$ns" >"$dir/netns"
    if [ -z "$ns" ] || [ "$ns" = "$(netns_of $$)" ]; then
        stop "$dir" >/dev/null 2>&1 || true
        fail "dockerd is not in a network namespace of its own (${ns:-gone})"
    fi
    if ! docker -H "unix://$sock" info >/dev/null 2>&1; then
        stop "$dir" >/dev/null 2>&1 || true
        fail "dockerd says it listens, but 'docker info' fails; see $log"
    fi

    local image
    for image in "$@"; do
        docker image inspect "$image" >/dev/null 2>&1 ||
            { stop "$dir" >/dev/null 2>&1 || true; fail "no image $image on the default daemon to copy"; }
        echo "second-daemon: loading $image"
        if ! docker save "$image" | docker -H "unix://$sock" load -q >/dev/null; then
            stop "$dir" >/dev/null 2>&1 || true
            fail "could not copy $image into the daemon"
        fi
    done
    echo "second-daemon: dockerd is up (pid $pid, $ns): DOCKER_HOST=unix://$sock"
}

stop() {
    local dir=$1
    [ -d "$dir" ] || return 0
    dir=$(cd "$dir" && pwd -P)
    local sock="$dir/docker.sock"
    local ns pid
    ns=$(cat "$dir/netns" 2>/dev/null || true)
    pid=$(cat "$dir/dockerd.pid" 2>/dev/null || true)
    if [ -z "$ns" ] && [ -n "$pid" ]; then
        # Stopped before it answered: its namespace, if it still runs.
        ns=$(netns_of "$pid")
    fi
    # Only a namespace other than ours is the daemon's to clear.
    [ "$ns" = "$(netns_of $$)" ] && ns=""

    if [ -n "$pid" ] && alive "$pid" && [ -n "$ns" ] && [ "$(netns_of "$pid")" = "$ns" ]; then
        # Containers first, through the daemon, so that it unmounts their
        # file systems and network namespaces itself.
        local ids
        ids=$(timeout 30 docker -H "unix://$sock" ps -aq 2>/dev/null || true)
        if [ -n "$ids" ]; then
            # shellcheck disable=SC2086
            timeout 60 docker -H "unix://$sock" rm -f -v $ids >/dev/null 2>&1 || true
        fi
        kill -TERM "$pid" 2>/dev/null || true
        if ! wait_exit "$pid" "$deadline"; then
            echo "second-daemon: dockerd (pid $pid) did not stop within ${deadline}s; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
            wait_exit "$pid" 10 || fail "dockerd (pid $pid) survives SIGKILL"
        fi
    fi
    # Containers that outlived a dockerd killed before it could remove them:
    # those in network namespaces of their own are found through runc's
    # state in the exec root (delete --force kills them and removes their
    # cgroups).
    local runc_root="$dir/exec/runtime-runc/moby" id
    if [ -d "$runc_root" ] && command -v runc >/dev/null 2>&1; then
        for id in $(runc --root "$runc_root" list -q 2>/dev/null || true); do
            echo "second-daemon: removing container $id left by dockerd" >&2
            timeout 30 runc --root "$runc_root" delete --force "$id" >/dev/null 2>&1 || true
        done
    fi
    # What outlived dockerd in its namespace (its containerd, shims, host
    # network containers) is nobody else's.
    if [ -n "$ns" ]; then
        local left p sig
        for sig in TERM KILL; do
            left=$(pids_in_netns "$ns" | tr '\n' ' ')
            [ -n "${left// /}" ] || break
            echo "second-daemon: SIG$sig to what is left in $ns: $left" >&2
            # shellcheck disable=SC2086
            kill "-$sig" $left 2>/dev/null || true
            for p in $left; do wait_exit "$p" 10 || true; done
        done
        left=$(pids_in_netns "$ns" | tr '\n' ' ')
        [ -z "${left// /}" ] || fail "processes survive in the daemon's namespace $ns: $left"
    fi

    # Overlay mounts in the data root, network namespaces and shm in the
    # exec root: a daemon that was killed leaves them behind.
    local m
    while IFS= read -r m; do
        [ -n "$m" ] || continue
        umount "$m" 2>/dev/null || umount -l "$m" ||
            fail "cannot unmount $m"
    done < <(mounts_under "$dir")
    [ -z "$(mounts_under "$dir")" ] || fail "still mounted under $dir: $(mounts_under "$dir" | tr '\n' ' ')"

    rm -rf "$dir/data" "$dir/exec" "$sock" "$dir/docker.pid" "$dir/dockerd.pid" \
        "$dir/netns" "$dir/daemon.json"
    [ ! -e "$dir/data" ] || fail "cannot remove $dir/data"
    echo "second-daemon: stopped; state under $dir removed (log kept: $dir/dockerd.log)"
}

[ $# -ge 2 ] || usage
cmd=$1
shift
case "$cmd" in
start) start "$@" ;;
stop)
    [ $# = 1 ] || usage
    stop "$1"
    ;;
*) usage ;;
esac
