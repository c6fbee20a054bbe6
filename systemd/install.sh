#!/bin/sh
# edgeferry installer for systemd boxes. Idempotent: run it again with the same or a newer
# release to repair or upgrade.
#
#   install.sh install edgeferry-<version>-linux-<arch>.tar.gz [--start]
#   install.sh rollback            # back to the release installed before the current one
#   install.sh status              # which release runs, which one a rollback goes back to
#   install.sh uninstall [--purge] # keeps /etc/edgeferry and /var/lib/edgeferry unless --purge
#   install.sh configure <name>    # the .deb's postinst: the steps after unpacking (below)
#
# The .deb runs the same steps from its maintainer scripts (release.mjs) and installs this file
# as /usr/sbin/edgeferry-release: `edgeferry-release rollback` there rebuilds the previous
# release's own .deb from the files kept in /opt/edgeferry/kept and installs it (a downgrade dpkg
# knows about). A .deb never holds /etc/edgeferry: the config is written once from the release's
# examples and is never a conffile, so an upgrade never stops at dpkg's prompt.
#
# Layout: releases unpack into /opt/edgeferry/releases/<name>, /opt/edgeferry/current points at
# the running one (switched atomically, the previous ones kept for rollback); the config lives in
# /etc/edgeferry (an existing file is never overwritten: the shipped version is put beside it as
# <file>.dist); the buffer in /var/lib/edgeferry (systemd's StateDirectory). `edgeferry check`
# runs on the config with the new release before anything is switched or (re)started.
#
# DESTDIR=/some/dir installs into a scratch root instead of / (no systemctl calls then).
set -eu
umask 022

DESTDIR=${DESTDIR:-}
OPT=$DESTDIR/opt/edgeferry
ETC=$DESTDIR/etc/edgeferry
UNIT=$DESTDIR/etc/systemd/system/edgeferry.service
SYSUSERS=$DESTDIR/usr/lib/sysusers.d/edgeferry.conf
BIN=$DESTDIR/usr/local/bin/edgeferry
KEEP_RELEASES=3

say() { printf 'edgeferry install: %s\n' "$*"; }
die() { printf 'edgeferry install: %s\n' "$1" >&2; exit "${2:-1}"; }
systemd_here() { [ -z "$DESTDIR" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }

need_root() {
  [ -n "$DESTDIR" ] && return 0
  [ "$(id -u)" = 0 ] || die "run as root (or with DESTDIR=<scratch root> to try it out)"
}

machine_arch() {
  case "$(uname -m)" in
    aarch64|arm64) echo arm64 ;;
    x86_64|amd64) echo x64 ;;
    *) uname -m ;;
  esac
}

# Group id of "edgeferry" in the target root (created by systemd-sysusers), or empty.
edgeferry_gid() {
  [ -f "$DESTDIR/etc/group" ] && awk -F: '$1 == "edgeferry" { print $3 }' "$DESTDIR/etc/group" || true
}

install_config_file() { # $1 shipped file, $2 target path, $3 mode, $4 "first" on a first install
  if [ ! -e "$2" ]; then
    # An example the installer removed (a device map they replaced with their own) stays removed:
    # examples are written on the first install only, never again by an upgrade.
    [ "${4:-first}" = first ] || return 0
    mkdir -p "$(dirname "$2")"
    cp "$1" "$2"
    chmod "$3" "$2"
    say "config: wrote $2"
  elif ! cmp -s "$1" "$2"; then
    cp "$1" "$2.dist"
    chmod "$3" "$2.dist"
    say "config: kept your $2 (this release's version is beside it as $2.dist)"
  fi
}

switch_to() { # $1: releases/<name> or kept/<name>, relative to $OPT
  ln -sfn "$1" "$OPT/.current.new"
  mv -T "$OPT/.current.new" "$OPT/current"
}

running_name() {
  r=$(readlink "$OPT/current" 2>/dev/null || true)
  echo "${r#*/}"
}

# A .deb upgrade the new release's check refused: dpkg has already removed the running release's
# files (the preinst kept hard links in $OPT/kept, and current points there), so a process still
# running from the old paths would fail at its next reload or worker start. Restart it on the kept
# copy — only if that release still accepts the config, so a restart can never take it down.
keep_running() {
  cur=$(readlink "$OPT/current" 2>/dev/null || true)
  [ -n "$cur" ] && [ -d "$OPT/$cur" ] || return 0
  systemd_here && systemctl is-active --quiet edgeferry || return 0
  if "$OPT/$cur/runtime/bin/node" "$OPT/$cur/dist/src/main.js" check "$ETC/gateway.yaml" >/dev/null 2>&1; then
    systemctl restart edgeferry && say "restarted edgeferry on ${cur#*/} (its files kept in $OPT/$cur)"
  else
    say "left edgeferry running: ${cur#*/} refuses the configuration as it is now too"
  fi
}

# The .deb's preinst, before dpkg unpacks a new release over the running one: keep the running
# release's files (hard links: no copy, and dpkg's removal of the originals leaves them intact)
# and point current at them, so the service keeps working during and after the upgrade.
cmd_keep() {
  new=${1:-}
  cur=$(readlink "$OPT/current" 2>/dev/null || true)
  case "$cur" in
    releases/*) ;;
    *) return 0 ;;
  esac
  old=${cur#releases/}
  [ "$old" != "$new" ] && [ -d "$OPT/$cur" ] || return 0
  mkdir -p "$OPT/kept"
  rm -rf "$OPT/kept/.$old.new"
  cp -al "$OPT/$cur" "$OPT/kept/.$old.new"
  rm -rf "${OPT:?}/kept/$old"
  mv "$OPT/kept/.$old.new" "$OPT/kept/$old"
  switch_to "kept/$old"
  say "kept $old in $OPT/kept/$old (running until $new is checked; the rollback target after)"
}

cmd_install() {
  tarball=${1:-}; shift || true
  start=no
  for a in "$@"; do
    case "$a" in --start) start=yes ;; *) die "unknown option $a" 2 ;; esac
  done
  [ -f "$tarball" ] || die "usage: install.sh install edgeferry-<version>-linux-<arch>.tar.gz [--start]" 2
  need_root
  name=$(basename "$tarball" .tar.gz)
  case "$name" in edgeferry-*-linux-*) ;; *) die "$tarball: not an edgeferry release tarball" 2 ;; esac
  arch=${name##*-linux-}
  [ "$arch" = "$(machine_arch)" ] || die "$tarball is for linux-$arch, this machine is $(machine_arch)"

  # 1. Unpack (again, if a previous try was interrupted) into releases/<name>.
  mkdir -p "$OPT/releases"
  rel=$OPT/releases/$name
  if [ ! -f "$rel/RELEASE" ]; then
    tmp=$(mktemp -d "$OPT/releases/.unpack.XXXXXX")
    tar -xzf "$tarball" -C "$tmp"
    [ -f "$tmp/$name/RELEASE" ] || { rm -rf "$tmp"; die "$tarball does not hold $name/"; }
    rm -rf "$rel"
    mv "$tmp/$name" "$rel"
    rmdir "$tmp"
    say "unpacked $name into $rel"
  else
    say "$name is already unpacked in $rel"
  fi
  activate "$name" "$start" tarball
}

# The steps after a release is in $OPT/releases/<name>: user, config, check, switch, restart.
# $3: tarball (this script owns the unit, the command, old releases) or deb (the package does).
activate() {
  name=$1 start=$2 how=$3
  rel=$OPT/releases/$name
  # Each release runs on the Node runtime it bundles (runtime/bin/node): nothing to match on the box.
  NODE=$rel/runtime/bin/node
  [ -x "$NODE" ] || die "$name has no runtime/bin/node: releases before 0.1.0 needed Node on the box; use a newer release"
  "$NODE" -e 0 2>/dev/null || die "$NODE does not run on this machine (wrong architecture, or glibc older than 2.28?)"

  # 2. The system user (sysusers.d: also applied at boot by systemd-sysusers).
  mkdir -p "$(dirname "$SYSUSERS")"
  [ "$how" = deb ] || cp "$rel/systemd/edgeferry.sysusers" "$SYSUSERS"
  if command -v systemd-sysusers >/dev/null 2>&1; then
    if [ -n "$DESTDIR" ]; then mkdir -p "$DESTDIR/etc"; systemd-sysusers --root="$DESTDIR" "$SYSUSERS"; else systemd-sysusers "$SYSUSERS"; fi
  else
    say "systemd-sysusers not found: create the user yourself (useradd --system --groups dialout edgeferry)"
  fi

  # 3. Config: examples where nothing is yet; never over an existing file.
  mkdir -p "$ETC" "$ETC/devices" "$ETC/secrets"
  first=upgrade
  [ -e "$ETC/gateway.yaml" ] || first=first
  install_config_file "$rel/config/gateway.example.yaml" "$ETC/gateway.yaml" 0640
  for f in "$rel"/config/devices/*.yaml; do install_config_file "$f" "$ETC/devices/$(basename "$f")" 0640 "$first"; done
  for f in "$rel"/config/secrets/*; do install_config_file "$f" "$ETC/secrets/$(basename "$f")" 0640 "$first"; done
  gid=$(edgeferry_gid)
  if [ -n "$gid" ]; then
    chown -R "0:$gid" "$ETC"
    chmod 0750 "$ETC" "$ETC/devices" "$ETC/secrets"
  fi

  # The JSON schemas the maps' $schema comments point at (../schema from devices/): not config, always this release's.
  rm -rf "$ETC/schema"
  cp -R "$rel/config/schema" "$ETC/schema"
  chmod -R u=rwX,g=rX,o= "$ETC/schema"
  [ -n "$gid" ] && chown -R "0:$gid" "$ETC/schema"

  # 4. Check the config with the new release before switching or (re)starting anything — unless it
  # is still the shipped example, whose placeholders keep the service from starting anyway.
  example=no
  if cmp -s "$rel/config/gateway.example.yaml" "$ETC/gateway.yaml"; then
    example=yes
    say "$ETC/gateway.yaml is the shipped example: it names no real broker or device, and the service refuses to start until its placeholders are replaced (edgeferry check $ETC/gateway.yaml lists them)"
  else
    say "checking $ETC/gateway.yaml with $name"
    if ! "$NODE" "$rel/dist/src/main.js" check "$ETC/gateway.yaml"; then
      if [ "$how" = deb ]; then
        keep_running
        die "the configuration has problems with $name (above); $(running_name) stays the running release. Fix them, then: dpkg --configure -a (or go back for good: edgeferry-release rollback)" 3
      fi
      die "the configuration has problems (above); nothing was switched or restarted. Fix them and run install again." 3
    fi
  fi

  # 5. Switch current → this release (atomically); the one it replaces is the rollback target.
  prev=$(readlink "$OPT/current" 2>/dev/null || true)
  switch_to "releases/$name"
  # (A release put back in place of its own kept copy, as a rollback does, is not its own target.)
  [ -n "$prev" ] && [ "${prev#*/}" != "$name" ] && echo "$prev" > "$OPT/previous"
  if [ "$how" = tarball ]; then
    mkdir -p "$(dirname "$UNIT")" "$(dirname "$BIN")"
    cp "$rel/systemd/edgeferry.service" "$UNIT.new"
    mv "$UNIT.new" "$UNIT"
    ln -sfn /opt/edgeferry/current/bin/edgeferry "$BIN"
  fi
  if [ "${prev#*/}" = "$name" ]; then say "current → $name"; else say "current → $name${prev:+ (was ${prev#*/})}"; fi

  # 6. Old releases beyond the last $KEEP_RELEASES go (never current or previous); with the .deb,
  # dpkg owns releases/ and only the kept copy of the previous release stays.
  keep_prev=$(cat "$OPT/previous" 2>/dev/null || true)
  if [ "$how" = deb ]; then
    for old in "$OPT"/kept/*; do
      [ -d "$old" ] || continue
      [ "kept/${old##*/}" = "$keep_prev" ] || { rm -rf "$old"; say "removed $old (no longer the rollback target)"; }
    done
  else
    ls -1t "$OPT/releases" | tail -n +$((KEEP_RELEASES + 1)) | while read -r old; do
      [ "releases/$old" = "releases/$name" ] || [ "releases/$old" = "$keep_prev" ] || { rm -rf "${OPT:?}/releases/$old"; say "removed old release $old"; }
    done
  fi

  # 7. systemd.
  if systemd_here; then
    systemctl daemon-reload
    if [ "$example" = yes ]; then
      say "installed, not started; edit $ETC/gateway.yaml and the device maps, check them (edgeferry check $ETC/gateway.yaml), then: systemctl enable --now edgeferry"
    elif systemctl is-active --quiet edgeferry; then
      systemctl restart edgeferry && say "restarted edgeferry"
    elif [ "$start" = yes ]; then
      systemctl enable --now edgeferry && say "enabled and started edgeferry"
    else
      say "installed; edit $ETC/gateway.yaml and the device maps, then: systemctl enable --now edgeferry"
    fi
  else
    say "installed into ${DESTDIR:-/} (no systemctl calls)"
  fi
}

# Installed from the .deb (dpkg knows the package) rather than by this script.
packaged() { [ -z "$DESTDIR" ] && [ -f /var/lib/dpkg/info/edgeferry.list ]; }

cmd_rollback() {
  need_root
  prev=$(cat "$OPT/previous" 2>/dev/null || true)
  cur=$(readlink "$OPT/current" 2>/dev/null || true)
  if packaged; then
    # A refused upgrade left current on the kept release while dpkg holds the new one: going back
    # means making the package what runs. Otherwise back to the previous release.
    target=$prev
    case "$cur" in kept/*) target=$cur ;; esac
    [ -n "$target" ] && [ -f "$OPT/$target/packaging/deb/DEBIAN/control" ] || die "no previous release to roll back to (or it came without its package files)"
    rebuild_deb "$target"
    say "installing ${target#*/} again from $OPT/$target (a downgrade dpkg records)"
    dpkg -i "$OPT/.rollback.deb" || die "dpkg refused the rollback (above); nothing else changed"
    rm -f "$OPT/.rollback.deb"
    return 0
  fi
  [ -n "$prev" ] && [ -d "$OPT/$prev" ] || die "no previous release to roll back to"
  "$OPT/$prev/runtime/bin/node" "$OPT/$prev/dist/src/main.js" check "$ETC/gateway.yaml" || die "the configuration has problems with ${prev#*/}; nothing changed" 3
  switch_to "$prev"
  echo "$cur" > "$OPT/previous"
  cp "$OPT/$prev/systemd/edgeferry.service" "$UNIT"
  say "current → ${prev#*/} (was ${cur#*/})"
  if systemd_here; then
    systemctl daemon-reload
    systemctl is-active --quiet edgeferry && systemctl restart edgeferry && say "restarted edgeferry"
  fi
  return 0
}

# The .deb of a kept release, rebuilt from its own files and the package files it carries
# (packaging/deb): the same paths, the same maintainer scripts. Hard links, no compression: quick
# and no extra space for the release itself.
rebuild_deb() { # $1: kept/<name> or releases/<name>
  name=${1#*/}
  st=$OPT/.rollback
  rm -rf "$st" "$OPT/.rollback.deb"
  mkdir -p "$st/opt/edgeferry/releases" "$st/usr/bin" "$st/usr/sbin" "$st/lib/systemd/system" "$st/usr/lib/sysusers.d"
  cp -al "$OPT/$1" "$st/opt/edgeferry/releases/$name"
  cp -R "$OPT/$1/packaging/deb/DEBIAN" "$st/DEBIAN"
  ln -s /opt/edgeferry/current/bin/edgeferry "$st/usr/bin/edgeferry"
  ln -s /opt/edgeferry/current/systemd/install.sh "$st/usr/sbin/edgeferry-release"
  cp "$OPT/$1/systemd/edgeferry.service" "$st/lib/systemd/system/edgeferry.service"
  cp "$OPT/$1/systemd/edgeferry.sysusers" "$st/usr/lib/sysusers.d/edgeferry.conf"
  dpkg-deb --root-owner-group -Znone --build "$st" "$OPT/.rollback.deb" >/dev/null
  rm -rf "$st"
}

cmd_status() {
  cur=$(readlink "$OPT/current" 2>/dev/null || true)
  prev=$(cat "$OPT/previous" 2>/dev/null || true)
  echo "running:     ${cur#*/}${cur:+ ($OPT/$cur)}"
  echo "rollback to: ${prev#*/}${prev:+ ($OPT/$prev)}"
  if packaged; then
    echo "package:     edgeferry $(dpkg-query -W -f '${Version} (${db:Status-Status})' edgeferry 2>/dev/null)"
  fi
  return 0
}

cmd_uninstall() {
  purge=no
  for a in "$@"; do
    case "$a" in --purge) purge=yes ;; *) die "unknown option $a" 2 ;; esac
  done
  need_root
  if systemd_here; then
    systemctl disable --now edgeferry 2>/dev/null || true
  fi
  rm -f "$UNIT" "$BIN" "$SYSUSERS"
  rm -rf "$OPT"
  systemd_here && systemctl daemon-reload
  if [ "$purge" = yes ]; then
    rm -rf "$ETC" "$DESTDIR/var/lib/edgeferry" "$DESTDIR/var/lib/private/edgeferry"
    say "removed edgeferry, its config and its buffer"
  else
    say "removed edgeferry; kept the config in $ETC and the buffer in $DESTDIR/var/lib/edgeferry (uninstall --purge removes them)"
  fi
}

# ---- commands (the .deb's preinst and postinst are this file down to here, see release.mjs) ----
cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  install) cmd_install "$@" ;;
  rollback) cmd_rollback ;;
  status) cmd_status ;;
  uninstall) cmd_uninstall "$@" ;;
  configure) need_root; [ $# -ge 1 ] || die "usage: install.sh configure <release name>" 2; activate "$1" no deb ;;
  keep) need_root; cmd_keep "${1:-}" ;;
  *) die "usage: install.sh install TARBALL [--start] | rollback | status | uninstall [--purge]" 2 ;;
esac
