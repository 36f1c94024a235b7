#!/usr/bin/env bash
# Builds CPython 3.13.5 with the GIL disabled (the free-threaded build, "3.13t")
# from Debian's own copy of the upstream source, and prints the interpreter's path.
# Nothing else on this machine offers a free-threaded Python. Takes 5-15 minutes
# on 2 cores the first time; afterwards it only prints the path.
#   PY_FT=$(.ci/free-threaded-python.sh) && "$PY_FT" -VV   (a copy of ../shared/tools/free-threaded-python.sh,
#   so that CI on a fresh machine has it; CCONC_FT_PREFIX picks where it is cached)
set -euo pipefail
PREFIX=${CCONC_FT_PREFIX:-$HOME/.cache/cconc/python-3.13.5t}
PY="$PREFIX/bin/python3.13t"
if [ -x "$PY" ] && "$PY" -c 'import sys; sys.exit(sys._is_gil_enabled())' 2>/dev/null; then
  echo "$PY"; exit 0
fi
SHA=93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
# A private apt configuration, so the machine's own sources stay as they are.
mkdir -p "$WORK/lists/partial" "$WORK/cache/archives/partial"
# The Debian archive this machine already uses, asked for the next release's sources.
MIRROR=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
         | grep -oE '^(URIs:|deb) +[^ ]+/debian/?( |$)' | head -1 | awk '{print $2}' || true)
[ -n "$MIRROR" ] || { echo "no Debian archive in this machine's apt sources" >&2; exit 1; }
echo "deb-src $MIRROR trixie main" > "$WORK/sources.list"
A=(-o Dir::Etc::sourcelist="$WORK/sources.list" -o Dir::Etc::sourceparts=- -o Dir::State::Lists="$WORK/lists" -o Dir::Cache="$WORK/cache")
apt-get "${A[@]}" -qq update >&2
(cd "$WORK" && apt-get "${A[@]}" -qq source --download-only python3.13=3.13.5-2+deb13u5 >&2)
echo "$SHA  $WORK/python3.13_3.13.5.orig.tar.xz" | sha256sum -c --quiet >&2
tar -C "$WORK" -xf "$WORK/python3.13_3.13.5.orig.tar.xz"
cd "$WORK/Python-3.13.5"
./configure -q --disable-gil --prefix="$PREFIX" --with-ensurepip=install >&2
make -s -j"$(nproc)" >&2
make -s altinstall >&2
"$PY" -c 'import sys; assert not sys._is_gil_enabled()' >&2
echo "$PY"
