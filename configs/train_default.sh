#!/bin/sh
# Reproduces the default model (the `portrait` zoo entry behind `segment default`) and its 16:9 and 9:16
# variants (`portrait_landscape`, `portrait_tall`) from the ImageNet MobileNetV2 in ../shared/weights, on
# a CPU, in sixteen training stages and their exports:
#   sh configs/train_default.sh            (from anywhere; DATA=... overrides ../shared/data)
# Every stage is resumable: run the same command again after an interruption and it continues the
# stage it was in (`train --resume`) and skips the stages that finished (their summary.json exists).
# On a 2-core CPU each stage fits in one working session (35, 12, 43, 17, 20, 14, about 18, 30, 13,
# about 16, about 24, 1, about 12, about 15, 13 and 1 minutes). What each stage does is in its config and in edge_deeplab/assets/MODEL_CARD.md.
set -e
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
P=$DATA/portrait
H=$DATA/people
C=$DATA/camvid

stage() {
    out=$1
    shift
    if [ -f "$out/summary.json" ]; then
        echo "$out: finished, skipped"
        return
    fi
    resume=""
    if [ -d "$out/state" ]; then
        resume=--resume
    fi
    edge-deeplab train "$@" --out "$out" $resume
}

stage runs/portrait_ce --config configs/portrait.yaml --data "$P/train" --val "$P/val"
stage runs/portrait_teacher --config configs/portrait_finetune.yaml --data "$P/train" --val "$P/val"
stage runs/portrait_selfie --config configs/portrait_distill.yaml --data "$P/train" --val "$P/val"
stage runs/people --config configs/people.yaml --data "$P/train" \
    --data "$H/train" --data "$H/train" --data "$H/scenes" --data "$C/train" --val "$P/val" --val "$H/val"
stage runs/people_finetune --config configs/people_finetune.yaml --data "$P/train" \
    --data "$H/train" --data "$H/train" --data "$H/scenes" --data "$C/train" --val "$P/val" --val "$H/val"
stage runs/portrait_192 --config configs/people_continue.yaml --data "$P/train" \
    --data "$H/train" --data "$H/train" --data "$H/scenes" --data "$C/train" --val "$P/val" --val "$H/val"
stage runs/portrait_208 --config configs/people_hr.yaml --data "$P/train" \
    --data "$H/train" --data "$H/train" --data "$H/scenes" --data "$C/train" --val "$P/val" --val "$H/val"
stage runs/portrait --config configs/people_hr_tiled.yaml --data "$P/train" \
    --data "$H/train" --data "$H/train" --data "$H/scenes" --data "$C/train" --val "$P/val" --val "$H/val" --qat
# The shipped files (portrait_fp32.tflite, portrait_int8.tflite): fp32 from the float weights, int8 from
# the QAT weights, both verified on export.
edge-deeplab export runs/portrait --format tflite,tflite-int8 --calibration "$P/train" \
    --out runs/portrait/export
# The landscape variant: stage 6's weights fine-tuned at a 256x144 input, then at 288x160, then with
# the tiled teacher; the mean of the last two (then QAT for its int8 file).
stage runs/portrait_landscape_256 --config configs/people_landscape.yaml --data "$P/train" \
    --data "$H/train" --data "$H/train" --data "$H/scenes" --data "$C/train" --val "$P/val" --val "$H/val"
stage runs/portrait_landscape_288 --config configs/people_landscape_hr.yaml --data "$P/train" \
    --data "$H/train" --data "$H/train" --data "$H/scenes" --data "$C/train" --val "$P/val" --val "$H/val"
stage runs/portrait_landscape_tiled --config configs/people_landscape_tiled.yaml --data "$P/train" \
    --data "$H/train" --data "$H/train" --data "$H/scenes" --data "$C/train" --val "$P/val" --val "$H/val"
stage runs/portrait_landscape_soup --config configs/people_landscape_soup.yaml --data "$P/train" \
    --data "$H/train" --data "$H/train" --data "$H/scenes" --data "$C/train" --val "$P/val" --val "$H/val"
stage runs/portrait_landscape_jitter --config configs/people_landscape_jitter.yaml --data "$P/train" \
    --data "$H/train" --data "$H/train" --data "$H/scenes" --data "$C/train" --val "$P/val" --val "$H/val"
# The scene sequences that show people (no masks: the tiled teacher labels them), seen a second time.
S=runs/people_scenes/images
mkdir -p "$S"
scenes=$(cd "$H/scenes/images" && pwd)  # absolute: the links live two folders down
for sequence in bmx-bumps bmx-trees dance-twirl hockey horsejump-high horsejump-low kite-surf kite-walk \
        motorbike paragliding paragliding-launch scooter-black scooter-gray soapbox stroller surf swing; do
    ln -sf "$scenes/$sequence"_*.jpg "$S/"
done
stage runs/portrait_landscape_scenes --config configs/people_landscape_scenes.yaml --data "$P/train" \
    --data "$H/train" --data "$H/train" --data "$H/scenes" --data runs/people_scenes --data "$C/train" \
    --val "$P/val" --val "$H/val"
stage runs/portrait_landscape --config configs/people_landscape_final.yaml --data "$P/train" \
    --data "$H/train" --data "$H/train" --data "$H/scenes" --data runs/people_scenes --data "$C/train" \
    --val "$P/val" --val "$H/val" --qat
edge-deeplab export runs/portrait_landscape --format tflite,tflite-int8 --calibration "$P/train" \
    --out runs/portrait_landscape/export
# The tall variant: stage 8's weights at a 144x256 (9:16) input, as they are (no training); its int8
# file from stage 8's QAT weights, which hold no input shape.
stage runs/portrait_tall --config configs/people_tall.yaml --data "$P/train" --val "$P/val"
cp runs/portrait/qat.weights.h5 runs/portrait_tall/qat.weights.h5
edge-deeplab export runs/portrait_tall --format tflite,tflite-int8 --calibration "$P/train" \
    --out runs/portrait_tall/export
