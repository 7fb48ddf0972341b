#!/usr/bin/env bash
# One entry point for people and CI: creates .venv with Python 3.10 (nnabla 1.39 has no wheels
# for newer CPython), installs this project into it, then runs the requested job.
#   scripts/dev.sh verify [pytest args]   verification suite over the default matrix on cpu + report
#   scripts/dev.sh test   [pytest args]   our own tests
#   scripts/dev.sh bench  [args]          side-by-side benchmark against NNabla's built-ins
#   scripts/dev.sh setup                  only create/refresh the environment
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"
stamp="$venv/.installed-from"

find_python310() {
    # GC_PYTHON_CANDIDATES (space-separated) replaces the places searched after $GC_PYTHON.
    local candidates=("${GC_PYTHON:-}")
    if [ -n "${GC_PYTHON_CANDIDATES+set}" ]; then
        read -r -a more <<< "$GC_PYTHON_CANDIDATES"
        candidates+=("${more[@]}")
    else
        candidates+=(python3.10)
        if command -v pyenv >/dev/null 2>&1; then
            local p
            for p in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.10(\.|$)'); do
                candidates+=("$(pyenv root)/versions/$p/bin/python")
            done
        fi
        candidates+=("$HOME"/.pyenv/versions/3.10*/bin/python /usr/bin/python3.10 /usr/local/bin/python3.10)
    fi
    local c
    for c in "${candidates[@]}"; do
        [ -n "$c" ] || continue
        # it must say it is 3.10 (a program that merely exits 0, like /bin/true, is not)
        if command -v "$c" >/dev/null 2>&1 &&
           [ "$("$c" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "3.10" ]; then
            command -v "$c"; return 0
        fi
    done
    return 1
}

setup() {
    # Re-install only when the project's metadata changed since the last install.
    local want; want=$(cat "$root/pyproject.toml" | cksum)
    if [ -x "$venv/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        return 0
    fi
    local py
    if ! py=$(find_python310); then
        echo "error: Python 3.10 not found. nnabla 1.39 ships wheels for CPython 3.8-3.10 only." >&2
        echo "       Install it (e.g. 'pyenv install 3.10') or point GC_PYTHON at a python3.10 binary." >&2
        exit 2
    fi
    [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$root[test]"
    echo "$want" > "$stamp"
}

job=${1:-}
[ $# -gt 0 ] && shift
case "$job" in
    setup) setup ;;
    verify) setup; cd "$root"; exec "$venv/bin/python" -m pytest suites -n 2 --gc-device=cpu -p no:hypothesispytest "$@" ;;
    test) setup; cd "$root"; exec "$venv/bin/python" -m pytest tests -n 2 "$@" ;;
    bench) setup; cd "$root"; exec "$venv/bin/python" benchmarks/bench_converters.py "$@" ;;
    *) echo "usage: scripts/dev.sh {verify|test|bench|setup} [args...]" >&2; exit 2 ;;
esac
