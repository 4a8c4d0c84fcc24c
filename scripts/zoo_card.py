"""Export a trained run into the zoo and write its model card with figures measured on the exported weights.

    python scripts/zoo_card.py NAME RUN CONFIG     (called by scripts/train_zoo.sh NAME)

The descriptive part of each card is in CARDS below (add yours); steps and wall time come from the run's
summary.json, the hardware from ZOO_HARDWARE (or this machine's CPU count), the figures from
tunesmith.zoo.measure (the same code tests/test_zoo.py runs again).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from tunesmith import zoo  # noqa: E402
from tunesmith.zoo.measure import measure  # noqa: E402

SPLIT = "by song: 90 % / 10 % of the 1,752 Erk songs the time-step filter keeps (seed 0): 1,577 train, 175 held out"
CARDS = {
    "essen-lstm": {
        "title": "Essen LSTM (seed 000, 50 epochs)",
        "description": "LSTM melody model over 16th-note time steps, trained on the Essen Erk folk songs; continues a primer.",
        "family": "melody_lstm",
        "data": "Essen folk songs, Erk subset (music21's bundled ABC), transposed to C major / A minor, 16th-note time steps",
        "split": SPLIT,
        "weaknesses": [
            "Knows only the Erk style: German folk songs in C major / A minor; other keys are out of its vocabulary (MIDI 48-79).",
            "Rhythms limited to the durations of the filter (16th to whole note); no triplets.",
            "No notion of form: long samples wander instead of repeating phrases the way the songs do.",
        ],
        "figure_notes": "val_loss (nats per 16th-note step) and val_accuracy (next step) on the held-out songs; "
                        "mean_overlap: 100 samples (temperature 0.9, empty primer, seed 0) evaluated with "
                        "`tunesmith evaluate` against the held-out songs (the held-out songs vs the training songs: 0.968).",
    },
    "essen-transformer": {
        "title": "Essen Transformer (relative attention, metre + mode conditioned, issue 16)",
        "description": "Decoder-only Transformer with relative position attention over 16th-note time steps (Essen Erk); "
                       "continues a primer; --condition metre=3/4,mode=minor (and --guidance) asks for a metre and mode.",
        "family": "melody_transformer",
        "data": "the Essen LSTM's data: Erk songs transposed to C major / A minor, 16th-note time steps, same filter and "
                "vocabulary, plus each song's labels: metre from its time signature, mode by Krumhansl-Schmuckler "
                "estimation (the Erk annotations all read major)",
        "split": SPLIT,
        "weaknesses": [
            "Trained from scratch with the labels on one NVIDIA H200 (configs/essen_transformer_cond_gpu.toml: the CPU "
            "recipe's data, model and batch with a constant learning rate, halved only on a validation plateau, which "
            "never came): 1,701 steps (27 epochs) in 189 s of wall time, sharing the GPU with three other training runs "
            "and the GPU test tier, stopped at its time limit with the validation loss still falling (0.664). On 2 CPU "
            "cores the same command needs about 1,440 CPU-seconds (0.85 CPU-s per step, measured for the CPU recipe "
            "configs/essen_transformer_cond.toml, whose halving of the rate every 250 steps stopped it at 0.725 "
            "nats/step); that CPU run was not made.",
            "Follows a metre request in 87 % of samples at guidance 1 (3/4 76 %, 4/4 96 %, 6/8 90 % by the metre "
            "classifier, 50 samples each) and 89 % at guidance 3; a minor request needs --guidance 3 (56 % minor at 1, "
            "98 % at 3). 3/4 is the weak metre (7 of its 50 samples read as 4/4 at guidance 1, 12 at 3). docs/conditioning.md.",
            "score_nats_per_step is given each held-out song's true metre and mode (side information: the mode is "
            "estimated from the song's own pitches); without labels (the null labels, seen in only 4 % of the "
            "training windows) it is 0.684 nats/step (scripts/conditioning_nll.py), still better than the "
            "unconditioned Transformer (0.737) and the Essen LSTM (0.757); samples without --condition come from that "
            "null branch.",
            "Attends to the last 128 16th-note steps (8 bars of 4/4); in longer samples the key/value cache slides and "
            "earlier phrases are forgotten.",
            "Its samples without --condition (null labels, temperature 0.9) are further from the held-out songs than "
            "those of the earlier CPU-trained model: mean overlap {mean_overlap} against 0.940 (the Essen LSTM: "
            "0.941), although its likelihood without labels is better (0.684 against 0.810): its tunes' lengths spread "
            "wider (number of notes: standard deviation 35 against 18 for the held-out songs; the feature's overlap "
            "0.77 against 0.89).",
            "Same vocabulary limits as the Essen LSTM: C major / A minor, MIDI 48-79, durations from a 16th to a whole note.",
        ],
        "figure_notes": "score_*: `tunesmith score zoo:essen-transformer essen-erk:val` (every held-out song scored on "
                        "its own from its start, given its true metre and mode labels, which are not scored; the "
                        "Essen LSTM and the 5-gram are scored the same way in docs/transformer.md). val_loss / "
                        "val_accuracy: the trainer's validation windows (128 steps, songs separated by 16 delimiters, "
                        "the label tokens among the targets, so not comparable with the LSTM's 64-step windows). "
                        "mean_overlap: 100 samples (temperature 0.9, empty primer, no labels, seed 0) against the "
                        "held-out songs. Following the labels: docs/conditioning.md.",
    },
    "melody-vae-4bar": {
        "title": "Melody VAE, 4 bars (MusicVAE-style, attribute-conditioned)",
        "description": "4-bar melody VAE over Essen Erk phrases: a hierarchical decoder that reads five attributes "
                       "(note density, pitch height, range, stepwise motion, rests) next to the latent code; 20 latent "
                       "sliders, 5 attribute sliders, interpolation.",
        "family": "melody_vae",
        "data": "Essen Erk songs as the Essen LSTM sees them (same filter, vocabulary and split), cut into 4-bar phrases "
                "(64 16th-note steps, one starting every bar), transposed by -2..+2 semitones for training",
        "split": SPLIT + "; validation and reconstruction use consecutive phrases of the held-out songs",
        "weaknesses": [
            "Reconstruction is close but not exact: onset F1 {onset_f1} on the held-out phrases (beam search, 8 "
            "hypotheses). The model fits its training phrases far better than held-out ones (about 1 against 6 nats "
            "per phrase in a run without attr_code_dropout), so rarer figures of an unseen tune are smoothed over.",
            "Slider positions are decoded by a draw at temperature 0.5 from fixed noise (model.slider_temperature, "
            "slider_seed; argmax decoding from the sliders' centre is a near-constant line that ignores the range and "
            "rests sliders), steered towards their attributes (model.slider_steer 0.7: the logits are 0.3 x the "
            "code's plus 0.7 x those of its attributes alone, z = 0, once an attribute slider is 0.5 sd or more from "
            "its centre; less before, none at the centre: slider_steer_from). So a slider can also change notes its "
            "attribute does not ask for, and once an attribute slider has moved the latent sliders do less.",
            "The attribute sliders follow their attribute from the sliders' centre (Spearman {attribute_spearman_min} "
            "or more with the shipped noise, slider_seed 0) and after the page's New piece (8 draws of the latent "
            "sliders: mean Spearman {attribute_spearman_new_piece_min} or more; unsteered, range 0.57). From codes "
            "drawn at 0.5 sigma around the centre, attributes included, range and stepwise motion follow less "
            "(docs/autoencoders.md, \"Steering the slider positions\").",
            "New melodies (prior samples and slider positions) are kept in one key (model.key_lock): each is drawn, "
            "then drawn again with the same noise inside the major (= natural minor) scale that holds most of its "
            "notes, plus the raised leading tone of its minor. Without it 8 % of their notes fell outside any one "
            "scale (the songs: 0.6 %) and the prior samples' mean overlap was 0.870. So no other chromatic note "
            "comes out of the sampler; reconstructions and interpolations of real melodies are not locked.",
            "Attribute sliders stop at the training phrases' 0.5 % and 99.5 % quantiles; combinations the songs never "
            "have (e.g. many rests at a high note density) decode to whatever the model makes of them.",
            "Phrases only: 4 bars of 4 beats (a 3/4 tune's bars do not line up with the model's).",
            "Melodies in other keys are encoded as they are (it was trained on C major / A minor +-2 semitones).",
        ],
        "figure_notes": "onset_f1 / token_accuracy: `tunesmith sample zoo:melody-vae-4bar --reconstruct essen-erk:val` "
                        "(beam search with 8 hypotheses from the posterior mean, `[sample] beam = 8`); mean_overlap: 200 "
                        "prior samples (seed 0, T 0.7, key-locked; the attributes of each drawn from the model's bank of "
                        "training phrases' attributes) evaluated against the held-out phrases; attribute_spearman: Spearman "
                        "correlation between attribute slider value (-3..3, 13 steps, from the sliders' centre, decoded "
                        "as the web page decodes a slider position) and the attribute of the decoded phrase; "
                        "attribute_spearman_new_piece: the same from 8 codes the web page's New piece makes (the 20 "
                        "latent sliders drawn from N(0, 1), seed 5; tunesmith.zoo.measure.new_piece_codes), averaged.",
    },
    "melody-vae-4bar-cond": {
        "title": "Melody VAE, 4 bars, with metre and mode (issue 16)",
        "description": "4-bar melody VAE over Essen Erk phrases that writes in the metre and mode you ask for "
                       "(--condition metre=3/4,mode=minor; guidance per kind), plus sliders and interpolation.",
        "family": "melody_vae",
        "data": "Essen Erk songs as the Essen LSTM sees them (same filter, vocabulary and split), cut into 4-bar phrases "
                "(64 16th-note steps, one starting every bar), each with its song's metre and mode labels, transposed "
                "by -2..+2 semitones for training",
        "split": SPLIT + "; validation and reconstruction use consecutive phrases of the held-out songs",
        "weaknesses": [
            "Follows one label at a time, not two: with guidance metre 1.5 / mode 12 (the [sample] default) a metre "
            "asked alone is written 83.5 % of the time and a mode asked alone 91.0 % (fresh seeds: 85.5 % / 83.0 %), "
            "but asked together the metre drops to 68 % (mode 84 %); without guidance the mode is followed 63 %. "
            "6/8 is the weak metre (68-74 %, read as 3/8 or 3/4). Measured on the float32 run and again on these float16 "
            "weights (the same 83.5 % / 91.0 %): docs/conditioning.md.",
            "Reconstruction is worse than the unconditioned model's (onset F1 {onset_f1}): the label adversary that "
            "makes it follow the labels keeps them, and what correlates with them, out of the code.",
            "Phrases only: 4 bars; a 3/4 or 6/8 request gets 64 16th-note steps in that metre (5 1/3 bars of 3/4).",
            "Melodies in other keys are encoded as they are (it was trained on C major / A minor +-2 semitones).",
        ],
        "figure_notes": "onset_f1 / token_accuracy: `tunesmith sample zoo:melody-vae-4bar-cond --reconstruct "
                        "essen-erk:val` (beam search, 8 hypotheses, each phrase encoded with null labels); "
                        "mean_overlap: 200 prior samples without labels (seed 0) against the held-out phrases; "
                        "attribute_spearman: as zoo:melody-vae-4bar. Following the labels: `python "
                        "scripts/conditioning_eval.py zoo:melody-vae-4bar-cond --metres 3/4,4/4,6/8,2/4 --num 50 "
                        "--guidance \"metre=1.5,mode=12\"` (docs/conditioning.md).",
    },
    "essen-gan-rhythm": {
        "title": "Essen GAN with rhythm (one-hot WGAN-GP, issue 15)",
        "description": "WGAN-GP over 4-bar Essen Erk phrases of 16th-note steps (pitch / hold / rest): melodies with rhythm from noise.",
        "family": "gan_rhythm",
        "data": "the Essen LSTM's data (Erk songs transposed to C major / A minor, 16th-note time steps, same filter and "
                "vocabulary) cut into 4-bar phrases (64 steps, one starting every bar), as the melody VAE sees them",
        "split": SPLIT,
        "weaknesses": [
            "Phrases of 4 bars of 4 beats; longer samples (--steps) chain independent phrases, so nothing ties "
            "one phrase to the next (no repeats, no cadence at the end of the piece).",
            "A narrower melody than the songs: fewer distinct pitches and a smaller range per phrase.",
            "Only C major / A minor and the songs' pitches (MIDI 48-79); no triplets, no durations outside the filter.",
            "No primer and no conditioning: a sample is a fresh latent vector (seed).",
        ],
        "figure_notes": "100 samples (argmax decoding, seed 0) evaluated with `tunesmith evaluate` against the held-out "
                        "songs: mean_overlap at the config's [sample] length, mean_overlap_phrase for single 4-bar "
                        "phrases. distinct: share of unique phrases among the 100; pairwise_edit: mean Levenshtein "
                        "distance between two phrases / 64; copies: share identical to a training phrase; "
                        "nearest_train: mean Hamming distance / 64 to the nearest training phrase. docs/gans.md.",
    },
    "chorale-harmonizer": {
        "title": "Chorale harmoniser (Coconet-style)",
        "description": "Four-voice Bach-style harmony for any melody (kept exactly as the soprano), or whole chorales; Gibbs sampling.",
        "family": "coconet",
        "data": "the 351 four-voice Bach chorales of music21's corpus, one pitch (or rest) per voice per 16th note, "
                "windows of 32 steps, transposed by up to +-6 semitones for training",
        "split": "by chorale, 90 % / 10 % (seed 0): 316 train, 35 held out -- the split gan_chorales uses "
                 "(bach-chorales:val in tunesmith evaluate)",
        "weaknesses": [
            "A voice that repeats a pitch comes out as one long note (a frame grid cannot tell them apart); "
            "the given melody is exempt, it is copied note for note.",
            "The network alone writes parallel fifths/octaves about 35 times as often as Bach (10.8 vs 0.31 per "
            "100 voice-leading steps on the held-out sopranos); the shipped sampling settings remove them with a "
            "rule (`[sample] parallel_penalty`), and the figures above include it. parallel_penalty = 0 gives the "
            "model alone.",
            "Knows the chorale style only: 4/4 and 3/4 hymn tunes; melodies outside MIDI 30-88 are refused.",
            "The key is never given: it is inferred from the melody, and modulations are sometimes late.",
        ],
        "figure_notes": "Harmonising the 35 held-out sopranos (seed 0, the config's Gibbs steps and temperature) and "
                        "composing 35 pieces as long as the held-out chorales, evaluated with `tunesmith evaluate` "
                        "against the held-out chorales: mean_overlap (harmonisations), composed_mean_overlap, and "
                        "the voice-leading table's in_scale, range_violations (share of notes outside SATB ranges), "
                        "parallels_per_100 (parallel fifths + octaves per 100 voice-leading steps; Bach 0.31) and "
                        "voice_overlaps. nll_erased_*: nats per erased (voice, 16th) cell of the held-out chorales "
                        "(random erasure as in training / alto, tenor and bass erased); val_loss: the validation "
                        "windows' masked loss. docs/chorales.md.",
    },
    "audio-cvae": {
        "title": "Audio CVAE: a note of the family and pitch you ask for (issue 13)",
        "description": "Conditional VAE over harmonic + noise images of notes, played by a harmonic-plus-noise synthesiser: pick a family and a MIDI pitch.",
        "family": "harmonic_cvae",
        "data": "nsynth-small (tunesmith datasets build nsynth-small): 4,125 FluidSynth-rendered 4-s notes, 11 NSynth "
                "families x 5 General MIDI programs x 25 pitches x 3 velocities; each note as 64 harmonic amplitudes + "
                "16 noise bands per 32-ms frame (dB over [-120, 0]), at the note's known pitch",
        "split": "by instrument (GM program): per family 3 programs train, 1 valid, 1 test; 2,475 training notes; the "
                 "figures are measured against the valid instruments (nsynth-small:val), which the model never heard",
        "weaknesses": [
            "The pitch is right by construction (the synthesiser plays harmonics of the requested f0); the timbre is "
            "what the model learns. Family accuracy {grid_family_accuracy} on the grid of every family x 3 held-out "
            "pitches (goal 0.70) is the verdict of the reference classifier, which knows the training instruments "
            "but is right for only {classifier_val_accuracy} of real notes of the held-out instruments: the samples "
            "sound like the family's training instruments, which says little about an unheard instrument of it.",
            "The harmonic + noise picture keeps its dB floor at -120 (at -80 it cut the quiet decays and releases, and "
            "re-synthesised training notes were classified right only 53-58 % of the time); part of what the wider "
            "floor keeps is spectral detail 60-100 dB below the peak, which the classifier's log-spectral features "
            "weigh more than a listener hears. No inharmonic partials, no sub-octaves, attacks smeared over 32-ms "
            "frames.",
            "Samples are smooth averages of the three training instruments of a family at that pitch: less varied "
            "than real notes; their MFCC Frechet distance beats real notes of the wrong family for a share "
            "{grid_fd_beats_wrong} of the families, not all (flute, reed and vocal stay farther from their held-out "
            "instrument).",
            "z is drawn from the family prior (a Gaussian fitted to the family's encoded training notes): it made "
            "the notes more often heard as the family asked for (brass at 60, 4 notes x seeds 0-4: 16/20 instead of "
            "11/20 with z ~ N(0, 0.8^2); the grid 0.9242 instead of 0.8333) but less varied: the MFCC Frechet "
            "distance beats the wrong family for 8 families instead of 9 (vocal lost), and 2 mallet notes of the "
            "grid are heard 2 octaves or more too low by pYIN (pitch 0.9697 instead of 1.0). --set prior=standard gives the "
            "old sampler.",
            "Pitches outside MIDI 36-81 (the training notes' range) are refused; a family asked for outside its own "
            "range (e.g. a flute at 40) is extrapolated.",
        ],
        "figure_notes": "brass60_*: `tunesmith sample zoo:audio-cvae --condition brass --pitch 60 --num 4 --seed 0`, "
                        "evaluated like `tunesmith evaluate OUT --reference nsynth-small:val` (pitch: pYIN within 50 "
                        "cents; family: the reference classifier trained on the training notes, its own held-out "
                        "accuracy in classifier_val_accuracy). grid_*: every family x its 3rd-lowest, middle and "
                        "3rd-highest held-out pitch x 2 notes (seeded); grid_fd_beats_wrong: share of families whose "
                        "MFCC Frechet distance to their real held-out notes is below that of real held-out notes of "
                        "the other families (as many notes). tunesmith/zoo/measure.py. Sampled with the config's [sample] "
                        "temperature 0.8 and prior = \"family\": z = mu_f + 0.8 x sigma_f x eps, mu_f and sigma_f the "
                        "mean and standard deviation of the family's training notes' posterior means (stored with the "
                        "weights at the end of training); --set prior=standard samples z ~ N(0, 0.8^2) instead.",
    },
}


def hardware() -> str:
    if os.environ.get("ZOO_HARDWARE"):
        return os.environ["ZOO_HARDWARE"]
    import torch

    return f"{os.cpu_count()} CPU cores, torch {torch.__version__}"


def set_sample_defaults(name: str, config: str) -> None:
    """The shipped model samples with the config file's [sample] defaults (a run resumed after [sample]
    changed keeps the old ones in its checkpoint; [data], [model] and [train] are the run's own)."""
    import tomllib

    path = zoo.ZOO_DIR / name / "checkpoint" / "config.json"
    cfg = json.loads(path.read_text())
    with open(config, "rb") as f:
        cfg["sample"] = tomllib.load(f).get("sample", {})
    path.write_text(json.dumps(cfg, indent=2))


def main(name: str, run: str, config: str) -> None:
    if name not in CARDS:
        raise SystemExit(f"no card text for {name!r}: add it to CARDS in scripts/zoo_card.py")
    # a run stopped by a signal at its time limit writes no summary.json: ZOO_WALL_TIME_S gives its time
    summary = json.loads((Path(run) / "summary.json").read_text()) if (Path(run) / "summary.json").exists() else {}
    card = {**CARDS[name], "command": f"bash scripts/train_zoo.sh {name}", "config": config,
            "steps": int(json.loads((Path(run) / "checkpoint" / "meta.json").read_text())["step"]),
            "hardware": hardware(),
            # a run trained in several --resume segments: ZOO_WALL_TIME_S gives their sum
            "wall_time_s": float(os.environ.get("ZOO_WALL_TIME_S") or summary.get("seconds", "nan")),
            **({"cpu_time_s": float(os.environ["ZOO_CPU_TIME_S"])} if os.environ.get("ZOO_CPU_TIME_S") else {}),
            "figures": {}}
    zoo.export(run, name, card)               # figures are measured on the float16 weights that ship
    set_sample_defaults(name, config)
    card["figures"] = measure(f"zoo:{name}")
    for k, v in card["figures"].items():  # "{figure}" in a weakness: the measured value
        card["weaknesses"] = [w.replace("{" + k + "}", str(v)) for w in card["weaknesses"]]
    zoo.export(run, name, card)
    set_sample_defaults(name, config)
    print(json.dumps(card["figures"], indent=1))
    print(f"zoo:{name}: {zoo.size_bytes() / 1e6:.1f} MB for the whole zoo", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
