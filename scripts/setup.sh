#!/usr/bin/env bash
# Installs everything tunesmith needs on a fresh Debian machine: system packages, then torch (pinned,
# first and alone: an unpinned torch pulls a multi-GB CUDA build), then tunesmith and its pinned deps.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
if command -v apt-get >/dev/null 2>&1; then
  need=""
  command -v fluidsynth >/dev/null 2>&1 || need="$need fluidsynth libfluidsynth3"
  [ -f /usr/share/sounds/sf2/TimGM6mb.sf2 ] || need="$need timgm6mb-soundfont"
  command -v chromium >/dev/null 2>&1 || need="$need chromium"
  dpkg -s libsndfile1 >/dev/null 2>&1 || need="$need libsndfile1"
  if [ -n "$need" ]; then
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends $need fonts-dejavu-core
  fi
fi
PY=${PYTHON:-python3}
if ! $PY -c "import torch" >/dev/null 2>&1; then
  $PY -m pip install -q torch==2.13.0
fi
$PY -m pip install -q -e ".[test]"
echo "tunesmith installed: $(command -v tunesmith)"
