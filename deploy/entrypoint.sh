#!/bin/sh
# Load this service's own credentials (every *.env in SERVICE_ENV_DIR: db.env from
# `village db roles`, mqtt.env from `village broker-config`), then run the command.
set -eu
if [ -n "${SERVICE_ENV_DIR:-}" ]; then
    found=0
    for file in "$SERVICE_ENV_DIR"/*.env; do
        [ -r "$file" ] || continue
        set -a
        . "$file"
        set +a
        found=1
    done
    if [ "$found" = 0 ]; then
        echo "no credentials in $SERVICE_ENV_DIR: run the db-roles and broker-config services first" >&2
        exit 1
    fi
fi
exec "$@"
