#!/usr/bin/env bash
# Install the system packages the suite uses, where we may (root + apt): bubblewrap for the
# sandbox. Missing permissions are not an error: the code records the weaker isolation it used.
set -u
need=()
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
# The explorer's browser test drives Debian's chromium (it skips without one); a CJK font renders Japanese there.
{ [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1; } || need+=(chromium)
[ -e /usr/share/fonts/opentype/ipafont-gothic/ipag.ttf ] || need+=(fonts-ipafont-gothic)
# Continual pre-training's corpora: the Japanese translations of the Linux/C-library manual pages and their English
# originals (cltrlib.pretrain.corpus); without them that stage falls back to the data mirror or a folder of text.
[ -d /usr/share/man/ja/man2 ] || need+=(manpages-ja manpages-ja-dev)
[ -e /usr/share/man/man2/open.2.gz ] || need+=(manpages manpages-dev)
command -v groff >/dev/null 2>&1 || need+=(groff-base)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "[cltr] installing system packages: ${need[*]}"
  (apt-get install -y -q "${need[@]}" >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "${need[@]}" >/dev/null 2>&1; }) \
    || echo "[cltr] could not install ${need[*]}; continuing with weaker isolation"
else
  echo "[cltr] not root or no apt-get: please install ${need[*]} yourself for full isolation"
fi
exit 0
