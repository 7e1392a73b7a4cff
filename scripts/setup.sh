# Installs the Debian 12 packages a script needs. Sourced (not run) by
# scripts/test.sh and scripts/main.sh, which call
#   ensure_packages essential|optional <package>...
# A package counts as present when its probe (have_package) succeeds: a
# command on PATH for tools, a header for libraries. The missing ones are
# installed with one `apt-get install` (after one `apt-get update`) when this
# runs as root or with passwordless sudo; otherwise, or if that fails, the
# command to run is printed. Returns 0 if every package is present in the end;
# for "essential" a missing package is an error, for "optional" a note that
# the caller goes on without it.
#   SLUICE_NO_INSTALL=1   never install: only report what is missing.

# have_package <package>: whether what the package provides is already here.
have_package() {
  case $1 in
    cmake) command -v cmake ;;
    ninja-build) command -v ninja ;;
    g++) command -v g++ ;;
    clang-19) command -v clang++-19 ;;
    python3) command -v python3 ;;
    golang-go) command -v go ;;
    gnuplot-nox) command -v gnuplot ;;
    libgtest-dev) _sluice_have_header gtest/gtest.h ;;
    libasio-dev) _sluice_have_header asio/experimental/concurrent_channel.hpp ;;
    libconcurrentqueue-dev) _sluice_have_header concurrentqueue/blockingconcurrentqueue.h ;;
    *) [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ] ;;
  esac >/dev/null 2>&1
}

_sluice_have_header() {
  [ -f "/usr/include/$1" ] || [ -f "/usr/local/include/$1" ]
}

_sluice_say() { echo "${0##*/}: $*" >&2; }

# Why packages cannot be installed here; empty if they can.
_sluice_cannot_install() {
  if [ "${SLUICE_NO_INSTALL:-0}" != 0 ]; then
    echo "SLUICE_NO_INSTALL=$SLUICE_NO_INSTALL"
  elif ! command -v apt-get >/dev/null; then
    echo "apt-get not found"
  elif [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
    echo "not root, and sudo not found"
  elif [ "$(id -u)" -ne 0 ] && ! sudo -n true 2>/dev/null; then
    echo "not root, and sudo asks for a password"
  fi
}

# apt-get as root (directly or through sudo), output on stderr, waiting for a
# package manager that another process is running.
_sluice_apt_get() {
  local as_root=()
  if [ "$(id -u)" -ne 0 ]; then as_root=(sudo -n); fi
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get -q -o DPkg::Lock::Timeout=300 "$@" >&2
}

_sluice_apt_updated=0

ensure_packages() {
  local kind=$1; shift
  local missing=() pkg
  for pkg in "$@"; do
    have_package "$pkg" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0

  local why
  why=$(_sluice_cannot_install)
  if [ -z "$why" ]; then
    _sluice_say "installing ${missing[*]} (apt-get)"
    if [ $_sluice_apt_updated = 0 ]; then
      _sluice_apt_get update || _sluice_say "apt-get update failed; trying the install anyway"
      _sluice_apt_updated=1
    fi
    why="not found after apt-get install"
    if ! _sluice_apt_get install -y --no-install-recommends "${missing[@]}"; then
      why="apt-get install failed"
      # One unavailable package fails the whole install: try them one by one.
      if [ ${#missing[@]} -gt 1 ]; then
        for pkg in "${missing[@]}"; do
          have_package "$pkg" || _sluice_apt_get install -y --no-install-recommends "$pkg" || true
        done
      fi
    fi
    local still=()
    for pkg in "${missing[@]}"; do
      have_package "$pkg" || still+=("$pkg")
    done
    missing=("${still[@]}")
    [ ${#missing[@]} -eq 0 ] && return 0
  fi

  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo "; fi
  if [ "$kind" = essential ]; then
    _sluice_say "error: ${missing[*]} needed but not installed ($why). To install, run:"
  else
    _sluice_say "${missing[*]} not installed ($why): going on without. To install, run:"
  fi
  echo "    ${sudo}apt-get install -y ${missing[*]}" >&2
  return 1
}
