#!/bin/sh
# The system packages `make chat` and `make test` need, checked before anything slow starts.
#
#   sh scripts/sysdeps.sh build           what creating .venv needs (Python's venv, a C/C++
#                                         compiler and cmake to build llama-cpp-python)
#   sh scripts/sysdeps.sh build browser   ... and what the browser tests need (Debian's chromium
#                                         and the fonts its screenshots use)
#
# Missing packages are installed with apt-get when run as root on Debian/Ubuntu; otherwise the
# one command that installs them is printed and the script fails, so nothing slow starts.
# DRY_RUN=1 prints the install command instead of running it.
set -eu

PYTHON=${PYTHON:-python3}
missing=""
need() { missing="$missing $1"; }
has() { command -v "$1" >/dev/null 2>&1; }
installed() { # a Debian package is installed (false where there is no dpkg)
  has dpkg-query && dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

for what in "$@"; do
  case "$what" in
    build)
      if ! has "$PYTHON"; then
        need python3
      elif ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
        need python3-venv
      fi
      has cmake || need cmake
      { has g++ || has c++; } || need g++
      ;;
    browser)
      has chromium || need chromium
      # only a recommendation of chromium: without it, screenshots in the tests show no text
      if has dpkg-query && ! installed fonts-liberation; then need fonts-liberation; fi
      ;;
    *) echo "sysdeps.sh: unknown need '$what' (build, browser)" >&2; exit 2 ;;
  esac
done

[ -z "$missing" ] && exit 0
missing=${missing# }
install="apt-get install -y -q --no-install-recommends $missing"
if [ "$(id -u)" = 0 ] && has apt-get; then
  echo "Installing system packages: $missing" >&2
  if [ "${DRY_RUN:-}" = 1 ]; then
    echo "DEBIAN_FRONTEND=noninteractive apt-get update -q && $install"
    exit 0
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # shellcheck disable=SC2086 # the list is meant to split
  apt-get install -y -q --no-install-recommends $missing
  exit 0
fi
if has apt-get; then
  echo "Missing system packages ($missing). Install them, then run make again:" >&2
  echo "  sudo apt-get update && sudo $install" >&2
else
  echo "Missing system packages ($missing; Debian names). Install them with your package manager, then run make again." >&2
fi
exit 1
