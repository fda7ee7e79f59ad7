#!/usr/bin/env bash
# Fetch and unpack the demo's data once: Debian's `tuxpaint-stamps-default` (Tux Paint clip art with one human-written
# English description per stamp, GPL-2+, ~160 MB), into <cache-dir>/tuxpaint, where `semcore-hf demo` reads it.
#
#   scripts/fetch_tuxpaint_stamps.sh [CACHE_DIR]        # default: .cache/semcore_hf (the demo's --cache-dir)
#
# Needs apt-get and dpkg (Debian, Ubuntu); elsewhere, unpack the .deb by hand and set SEMCORE_TUXPAINT_STAMPS to its
# usr/share/tuxpaint/stamps folder. `make demo-data` runs this script.
set -euo pipefail
PACKAGE=tuxpaint-stamps-default
CACHE="$(mkdir -p "${1:-.cache/semcore_hf}" && cd "${1:-.cache/semcore_hf}" && pwd)"
STAMPS="$CACHE/tuxpaint/usr/share/tuxpaint/stamps"
if [ -d "$STAMPS" ]; then
  echo "Tux Paint stamps already in $STAMPS"
  exit 0
fi
for tool in apt-get dpkg; do
  command -v "$tool" >/dev/null || { echo "$0: needs $tool (see the comment at the top of this script)" >&2; exit 1; }
done
mkdir -p "$CACHE/deb"
if ! ls "$CACHE/deb/${PACKAGE}"_*.deb >/dev/null 2>&1; then
  echo "Downloading $PACKAGE (~160 MB) with apt-get download"
  # a fresh machine may have no package lists yet
  (cd "$CACHE/deb" && { apt-get download "$PACKAGE" || { apt-get update -qq && apt-get download "$PACKAGE"; }; })
fi
rm -rf "$CACHE/tuxpaint.tmp"
dpkg -x "$(ls "$CACHE/deb/${PACKAGE}"_*.deb | head -n 1)" "$CACHE/tuxpaint.tmp"
mv "$CACHE/tuxpaint.tmp" "$CACHE/tuxpaint"  # appears whole or not at all
echo "Tux Paint stamps unpacked in $STAMPS"
