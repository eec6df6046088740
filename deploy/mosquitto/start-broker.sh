#!/bin/sh
# Start Mosquitto with the dynamic security plugin's file in place (the compose `mosquitto`
# service's command, run by the image's entrypoint as root before Mosquitto drops to its
# own user).
#
# Two copies of the logins exist: the seed `village broker-config --dynsec` writes from the
# registry (read-only here), and the live file the plugin rewrites after every change.
# Both are the registry at the time they were written, so the newer one wins: a fresh
# broker-config run (first start, a restore, new service secrets) replaces the live file,
# and a mere restart keeps what the plugin saved since.
set -eu

seed="${DYNSEC_SEED:-/broker/dynamic-security.json}"
live="${DYNSEC_FILE:-/mosquitto/data/dynamic-security.json}"
config="${MOSQUITTO_CONFIG:-/mosquitto/config/mosquitto.conf}"

if [ ! -s "$seed" ] && [ ! -s "$live" ]; then
    echo "start-broker: no logins: $seed is missing (run the broker-config service first)" >&2
    exit 1
fi
if [ ! -e "$live" ] || [ "$seed" -nt "$live" ]; then
    cp "$seed" "$live.seed"
    # The plugin, running as the broker's user, reads it and writes its changes beside it.
    chown "${MOSQUITTO_USER:-mosquitto}" "$live.seed" 2>/dev/null || true
    chmod 600 "$live.seed"
    mv "$live.seed" "$live"
    echo "start-broker: logins taken from $seed"
else
    echo "start-broker: keeping the logins the plugin saved in $live"
fi
exec "${MOSQUITTO_BIN:-/usr/sbin/mosquitto}" -c "$config"
