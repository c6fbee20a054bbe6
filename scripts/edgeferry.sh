#!/bin/sh
# edgeferry on the Node runtime bundled with its release (release.mjs installs this as bin/edgeferry).
here=$(dirname "$(readlink -f "$0")")
exec "$here/../runtime/bin/node" "$here/../dist/src/main.js" "$@"
