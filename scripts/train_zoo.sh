#!/usr/bin/env bash
# Reproduce one model of the zoo (src/tunesmith/zoo/NAME/): train it, export it in float16 with its model card,
# then measure the card's figures on the exported weights (scripts/zoo_card.py).
#   bash scripts/train_zoo.sh NAME            e.g. essen-lstm, melody-vae-4bar
# Environment: ZOO_RUNS (default runs/zoo) holds the training runs; ZOO_HARDWARE describes the machine for the card.
set -euo pipefail
cd "$(dirname "$0")/.."
NAME="${1:?usage: bash scripts/train_zoo.sh NAME (see the case branches below)}"
RUNS="${ZOO_RUNS:-runs/zoo}"
RUN="$RUNS/$NAME"
mkdir -p "$RUNS"

case "$NAME" in
  essen-lstm)
    # seed 000's paper config: LSTM 256, 50 epochs (4,050 steps)
    tunesmith train configs/essen_lstm.toml --out "$RUN" --device cpu --quiet
    python scripts/zoo_card.py "$NAME" "$RUN" configs/essen_lstm.toml
    ;;
  essen-transformer)
    # issue 16: relative-attention Transformer, same data and split as essen-lstm (docs/transformer.md), trained from
    # scratch with metre and mode labels, per-metre bar positions and label dropout (docs/conditioning.md); the shipped
    # weights: 1,701 steps on an H200 (scripts/gpu_session.sh); on CPU the same command takes ~1,440 CPU-s
    tunesmith train configs/essen_transformer_cond_gpu.toml --out "$RUN" --max-steps 1701 --quiet
    python scripts/zoo_card.py "$NAME" "$RUN" configs/essen_transformer_cond_gpu.toml
    ;;
  melody-vae-4bar)
    # issue 12: hierarchical decoder reading the phrase's five attributes, a fifth of the items decoded from the
    # attributes alone (docs/autoencoders.md, "Attribute-conditioned decoding"); one thread, as measured
    OMP_NUM_THREADS=1 tunesmith train configs/melody_vae_4bar_attr_cd.toml --out "$RUN" --device cpu --quiet
    python scripts/zoo_card.py "$NAME" "$RUN" configs/melody_vae_4bar_attr_cd.toml
    ;;
  melody-vae-4bar-cond)
    # issue 16: the melody VAE with metre/mode labels, a label adversary and guidance per kind (docs/conditioning.md)
    tunesmith train configs/melody_vae_4bar_cond_adv8.toml --out "$RUN" --device cpu --quiet
    python scripts/zoo_card.py "$NAME" "$RUN" configs/melody_vae_4bar_cond_adv8.toml
    ;;
  chorale-harmonizer)
    # Coconet-style harmoniser (issue 15): docs/chorales.md
    tunesmith train configs/chorale_coconet.toml --out "$RUN" --device cpu --quiet
    python scripts/zoo_card.py "$NAME" "$RUN" configs/chorale_coconet.toml
    ;;
  essen-gan-rhythm)
    # issue 15: the GAN with rhythm (docs/gans.md); scripts/cpu_budget.py stops it at 30 CPU minutes if the
    # config's max_steps is not reached first, and prints the CPU and wall time for the card (ZOO_CPU_TIME_S)
    python scripts/cpu_budget.py 1800 tunesmith train configs/gan_rhythm.toml --out "$RUN" --device cpu --quiet
    python scripts/zoo_card.py "$NAME" "$RUN" configs/gan_rhythm.toml
    ;;
  audio-cvae)
    # issue 13: family + pitch conditioned CVAE over harmonic + noise images of nsynth-small notes (docs/audio.md)
    tunesmith datasets build nsynth-small
    tunesmith train configs/audio_cvae_pitch.toml --out "$RUN" --device cpu --quiet
    python scripts/zoo_card.py "$NAME" "$RUN" configs/audio_cvae_pitch.toml
    ;;
  *)
    echo "unknown zoo model '$NAME'; known: essen-lstm, essen-transformer, melody-vae-4bar, melody-vae-4bar-cond, chorale-harmonizer, audio-cvae, essen-gan-rhythm" >&2
    exit 2
    ;;
esac
