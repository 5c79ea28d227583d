#!/usr/bin/env bash
# Two network namespaces joined by a veth pair: "two hosts" on one machine, for the Flight
# gateway's cross-host test and benchmark (W5).
#   scripts/netns.sh up NAME [SUBNET]   creates NAME-a (SUBNET.1) and NAME-b (SUBNET.2), /24
#   scripts/netns.sh down NAME          removes them (and the veth pair with them)
#   scripts/netns.sh check              exit 0 if namespaces can be made here, else says why
# Run a process on a "host" with: ip netns exec NAME-a COMMAND. /dev/shm stays shared (the
# mount namespace is the same), so channels are local to both; only the network is split.
# Needs root (CAP_NET_ADMIN) and iproute2.
set -euo pipefail

usage() { sed -n '2,9p' "$0" >&2; exit 2; }

up() {
  local name=$1 subnet=${2:-10.201.0}
  local veth_a="${name:0:12}-a" veth_b="${name:0:12}-b"  # interface names: at most 15 chars
  ip netns add "$name-a"
  ip netns add "$name-b"
  ip link add "$veth_a" type veth peer name "$veth_b"
  ip link set "$veth_a" netns "$name-a"
  ip link set "$veth_b" netns "$name-b"
  ip -n "$name-a" addr add "$subnet.1/24" dev "$veth_a"
  ip -n "$name-b" addr add "$subnet.2/24" dev "$veth_b"
  for side in a b; do
    ip -n "$name-$side" link set lo up
    ip -n "$name-$side" link set "${name:0:12}-$side" up
  done
}

down() {
  local name=$1
  ip netns del "$name-a" 2>/dev/null || true  # deleting a namespace deletes its veth end,
  ip netns del "$name-b" 2>/dev/null || true  # and the peer goes with it
}

check() {
  if [ "$(id -u)" -ne 0 ]; then echo "network namespaces need root (CAP_NET_ADMIN)"; exit 1; fi
  if ! command -v ip >/dev/null; then echo "iproute2 (ip) is not installed"; exit 1; fi
  local probe="quiver-probe-$$"
  if ! out=$(up "$probe" 10.209.0 2>&1); then
    down "$probe"
    echo "cannot make network namespaces here: $out"
    exit 1
  fi
  # A TCP connect to a closed port of the other end: "refused" means packets went both ways.
  out=$(ip netns exec "$probe-a" timeout 3 bash -c 'echo >/dev/tcp/10.209.0.2/9' 2>&1 || true)
  if [[ "$out" != *"refused"* ]]; then
    down "$probe"
    echo "namespaces made, but the veth pair carries no traffic: $out"
    exit 1
  fi
  down "$probe"
}

case "${1:-}" in
  up) [ $# -ge 2 ] || usage; up "$2" "${3:-}" ;;
  down) [ $# -eq 2 ] || usage; down "$2" ;;
  check) check ;;
  *) usage ;;
esac
