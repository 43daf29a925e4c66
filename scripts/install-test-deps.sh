#!/usr/bin/env bash
# Installs what the tests need besides npm's packages:
# - redis-server (the Redis store's tests start their own server on a free loopback port; they never mock
#   Redis), from the system's package manager, when it is not there;
# - the real coding agents the tests drive (test/agents/), pinned in scripts/agents/, into a cache folder
#   outside the repository (scripts/agents/README.md says why); nothing when that install is there already.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
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
fi

node scripts/agents/install.mjs
