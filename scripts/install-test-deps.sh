#!/usr/bin/env bash
# Installs the system packages the tests need: redis-server (the Redis store's tests start their own
# server on a free loopback port; they never mock Redis). Does nothing when it is already there.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "redis-server is missing and this is not root: install it with your package manager" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq redis-server >/dev/null
command -v redis-server >/dev/null
echo "installed $(redis-server --version | head -n 1)"
