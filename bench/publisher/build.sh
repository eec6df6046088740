#!/usr/bin/env bash
# Builds the benchmark's C publisher into bench/bin/ (needs libmosquitto-dev and a C compiler).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bin
cc -O2 -Wall -Wextra -o bin/pub publisher/pub.c -lmosquitto -lpthread
echo "built bench/bin/pub"
