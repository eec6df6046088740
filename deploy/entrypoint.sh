#!/bin/sh
# Load this service's broker login (written by `village broker-config`) and run the command.
set -eu
if [ -n "${SERVICE_ENV_FILE:-}" ]; then
    if [ ! -r "$SERVICE_ENV_FILE" ]; then
        echo "cannot read $SERVICE_ENV_FILE: run the broker-config service first" >&2
        exit 1
    fi
    set -a
    . "$SERVICE_ENV_FILE"
    set +a
fi
exec "$@"
