#!/bin/bash
# Makes a Docker engine available on a Debian machine:
# - installs Debian's docker.io and debootstrap when they are missing;
# - starts dockerd (no bridge, no iptables: containers use host networking)
#   when no daemon answers, and waits for it with a deadline.
# Safe to run again: it does nothing when a daemon already answers.
set -euo pipefail

deadline=${TLSHARNESS_DOCKER_DEADLINE:-90}
log=${TLSHARNESS_DOCKERD_LOG:-/var/log/tlsharness-dockerd.log}

missing=""
command -v dockerd >/dev/null 2>&1 || [ -x /usr/sbin/dockerd ] || missing="$missing docker.io"
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing="$missing debootstrap"
if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "setup-docker: need root to install:$missing" >&2
        exit 3
    fi
    echo "setup-docker: installing$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

if docker info >/dev/null 2>&1; then
    echo "setup-docker: a Docker daemon answers"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "setup-docker: no Docker daemon answers and starting one needs root" >&2
    exit 3
fi

echo "setup-docker: starting dockerd (log: $log)"
: >"$log"
PATH="$PATH:/usr/sbin:/sbin" setsid nohup dockerd --bridge=none --iptables=false --ip-masq=false \
    >>"$log" 2>&1 </dev/null &
pid=$!

# Wait for the daemon's own "API listen" line rather than polling; tail
# stops if dockerd exits, so a crash fails fast instead of at the deadline.
exec 3< <(exec tail --pid="$pid" -n +1 -f "$log")
tail_pid=$!
up=0
if timeout "$deadline" grep -q -m1 'API listen on' <&3; then up=1; fi
kill "$tail_pid" 2>/dev/null || true
exec 3<&-
if [ "$up" != 1 ]; then
    echo "setup-docker: dockerd did not come up within ${deadline}s; last lines of $log:" >&2
    tail -n 20 "$log" >&2
    exit 3
fi
if ! docker info >/dev/null 2>&1; then
    echo "setup-docker: dockerd says it listens, but 'docker info' fails; see $log" >&2
    exit 3
fi
echo "setup-docker: dockerd is up (pid $pid)"
