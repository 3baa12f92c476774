#!/bin/bash
# statherd-healthcheck [HOST:PORT]: exit 0 when statherd-server at HOST:PORT (default
# 127.0.0.1:8470) answers GET /healthz with HTTP 200, else print why and exit 1.
# Bash only (its /dev/tcp), so the runtime image needs no curl; the Dockerfile's HEALTHCHECK
# --timeout bounds a connect that hangs, `read -t` bounds a silent server.
set -u
target=${1:-127.0.0.1:8470}
host=${target%:*}
port=${target##*:}
host=${host#[}
host=${host%]}

if ! exec 3<>"/dev/tcp/${host}/${port}"; then
    echo "statherd-healthcheck: cannot connect to ${target}" >&2
    echo "hint: is statherd-server running and listening on ${target}?" >&2
    exit 1
fi
printf 'GET /healthz HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "${target}" >&3
if ! IFS= read -r -t 5 status <&3; then
    echo "statherd-healthcheck: no answer from ${target} within 5 s" >&2
    exit 1
fi
status=${status%$'\r'}
case "${status}" in
    "HTTP/1."[01]" 200"*) exit 0 ;;
esac
echo "statherd-healthcheck: GET http://${target}/healthz answered: ${status}" >&2
exit 1
