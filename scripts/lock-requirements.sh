#!/usr/bin/env bash
# Regenerates the hash-locked Python requirement files from our short lists of choices:
# scripts/requirements/NAME.in -> scripts/requirements/NAME.txt (pip-compile --generate-hashes).
# Needs the package index; the tests never run it (they install the committed .txt files).
#
#   scripts/lock-requirements.sh             # every set, keeping the pins already in each .txt
#   scripts/lock-requirements.sh aws         # only some sets
#   scripts/lock-requirements.sh --upgrade   # re-resolve every pin to the newest allowed version
#
# pip-compile keeps a pin from the existing .txt while it still satisfies the .in file, so a
# change to one choice moves as few transitive pins as possible. The locks are resolved for
# Python 3.11 on Linux, the interpreter our machines and CI have; the hashes cover every wheel
# and sdist of each pinned version, so the same lock installs on other platforms too.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
req=scripts/requirements
venv=.tools/venv-piptools

upgrade=()
sets=()
for arg in "$@"; do
  case "$arg" in
    --upgrade) upgrade=(--upgrade) ;;
    -h | --help) sed -n '2,13p' "${BASH_SOURCE[0]}"; exit 0 ;;
    -*) echo "lock-requirements: unknown option $arg" >&2; exit 2 ;;
    *) sets+=("$arg") ;;
  esac
done
if [ ${#sets[@]} -eq 0 ]; then
  for f in "$req"/*.in; do sets+=("$(basename "$f" .in)"); done
fi

# pip-tools itself comes from its own lock (bootstrapped with --no-deps from the hashes).
if [ ! -x "$venv/bin/pip-compile" ] || ! cmp -s "$venv/.installed-from" "$req/piptools.txt" 2>/dev/null; then
  rm -rf "$venv"
  python3 -m venv "$venv"
  if [ -f "$req/piptools.txt" ]; then
    "$venv/bin/pip" install --quiet --no-input --require-hashes --no-deps -r "$req/piptools.txt"
    cp "$req/piptools.txt" "$venv/.installed-from"
  else
    "$venv/bin/pip" install --quiet --no-input -r "$req/piptools.in"
  fi
fi

for name in "${sets[@]}"; do
  [ -f "$req/$name.in" ] || { echo "lock-requirements: no $req/$name.in" >&2; exit 2; }
  printf '[lock-requirements] %s.in -> %s.txt\n' "$name" "$name" >&2
  # CUSTOM_COMPILE_COMMAND: the header of each lock names this script, not the raw command.
  CUSTOM_COMPILE_COMMAND="scripts/lock-requirements.sh $name" \
    "$venv/bin/pip-compile" --quiet --generate-hashes --allow-unsafe --strip-extras \
    --no-emit-index-url --no-emit-find-links --resolver=backtracking ${upgrade[@]+"${upgrade[@]}"} \
    --output-file "$req/$name.txt" "$req/$name.in"
done
