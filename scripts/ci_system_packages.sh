#!/usr/bin/env bash
# System packages the HTML report's tests use, for .ci/run to call before the tests:
# Graphviz (graph pictures) and Debian's Chromium with its driver (the browser test).
# Installs only what is missing. Where it cannot install (no apt-get, not root) it says so and
# exits 0: the browser test then skips with the reason and the pictures degrade to DOT text.
# A failing apt-get fails the script, so a CI that should have the packages notices.
set -euo pipefail
need=()
command -v dot >/dev/null 2>&1 || need+=(graphviz)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
if [ ${#need[@]} -eq 0 ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1 || [ "$(id -u)" -ne 0 ]; then
    echo "warning: cannot install ${need[*]} (needs apt-get as root): the browser test will skip" \
         "and the HTML report shows DOT text instead of graph pictures" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q "${need[@]}"
