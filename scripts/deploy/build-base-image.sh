#!/usr/bin/env bash
# Builds a local base image (minimal Debian bookworm + python3 + venv) for when no registry
# serves one: debootstrap from the mirror this machine's apt sources already name, then
# `docker import`. The root filesystem tarball is cached outside the repo, so later runs only
# import it (or find the image already in the daemon).
#   usage: build-base-image.sh [TAG]      env: DOCKER (client), WSRELAY_CI_CACHE (cache dir)
set -euo pipefail

TAG=${1:-wsrelay-base:bookworm-python3}
DOCKER=${DOCKER:-docker}
CACHE=${WSRELAY_CI_CACHE:-/var/cache/wsrelay-ci}
SUITE=bookworm
PACKAGES=python3,python3-venv,ca-certificates
TARBALL="$CACHE/base-$SUITE-$(echo "$PACKAGES" | tr ',' '-').tar"

# The first Debian archive URI in the apt sources that serves $SUITE (deb822, then one-line).
apt_mirror() {
  local uri
  uri=$(awk -v suite="$SUITE" '
      /^[[:space:]]*$/ { uris = ""; suites = ""; next }
      /^URIs:/ { uris = $2 }
      /^Suites:/ { suites = $0 }
      uris != "" && suites != "" && suites ~ ("[[:space:]]" suite "([[:space:]]|$)") { print uris; exit }
    ' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { print $2; exit }' /etc/apt/sources.list)
  fi
  [ -n "$uri" ] || { echo "build-base-image: no apt source serves $SUITE" >&2; return 1; }
  echo "$uri"
}

if "$DOCKER" image inspect "$TAG" >/dev/null 2>&1; then
  echo "$TAG"
  exit 0
fi

if [ ! -s "$TARBALL" ]; then
  command -v debootstrap >/dev/null || { echo "build-base-image: debootstrap is not installed" >&2; exit 1; }
  mkdir -p "$CACHE"
  rootfs=$(mktemp -d "$CACHE/rootfs.XXXXXX")
  trap 'rm -rf "$rootfs"' EXIT
  mirror=$(apt_mirror)
  echo "build-base-image: debootstrap $SUITE ($PACKAGES) from $mirror" >&2
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$rootfs" "$mirror" >&2
  # Nothing of apt's caches or docs is needed in an image.
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
  tar --numeric-owner -C "$rootfs" -cf "$TARBALL.partial" .
  mv "$TARBALL.partial" "$TARBALL"
fi

"$DOCKER" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  "$TARBALL" "$TAG" >&2
echo "$TAG"
