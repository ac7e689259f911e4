#!/bin/sh
# autogen.sh - regenerate the build system (configure, Makefile.in).
set -e
cd "$(dirname "$0")"
mkdir -p build-aux m4
autoreconf --install --force --warnings=all
