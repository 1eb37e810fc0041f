#!/usr/bin/env bash
# The container test's stand-in for python:3.11-slim (Docker Hub cannot be reached from CI):
# a minimal Debian with Python 3.11, as a tarball for `docker import`.
#   docker/test-images/debian-rootfs.sh OUT.tar
# Debian 12's python3 is 3.11, as in the real base. This machine's CA bundle is copied in, so
# pip inside a build trusts the same certificates as pip on the host (an egress proxy's CA).
set -euo pipefail
out=$1
suite=${DEBIAN_SUITE:-bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  "$suite" "$root" "$mirror" >/dev/null
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
tar --numeric-owner -C "$root" -cf "$out.part" .
mv "$out.part" "$out"
