#!/usr/bin/env bash
# The README's Tour, line for line (README.md, section "Tour", shows everything below the marker;
# tests/test_cli.py checks that the two are identical and runs this script on tiny data).
#
#   bash examples/tour.sh                          # in ./tour: N, ITERS, SIZE as set below
#   N=8 ITERS=2 SIZE=64x160 TOUR_DIR=/tmp/t bash examples/tour.sh   # a smoke run of every line
#
# Every command works on synthetic data made by the first lines, so the Tour needs no download.
set -euo pipefail
mkdir -p "${TOUR_DIR:-tour}"
cd "${TOUR_DIR:-tour}"
# --- Tour ---
N=${N:-1000} ITERS=${ITERS:-500} SIZE=${SIZE:-144x400}   # scenes, iterations per run, HxW

# data: a layout -> one HDF5 file per split (resumable, parallel, integrity-checked)
lanekd prepare synthetic --n "$N" --seed 0 --size "$SIZE" --out synth_train.h5
lanekd prepare synthetic --n 40 --seed 1 --split val --size "$SIZE" --out synth_val.h5
lanekd prepare synthetic --n 20 --split test --layout culane --out synth_culane/  # files, CULane layout
lanekd prepare --verify synth_train.h5 && lanekd info synth_train.h5 --json

# networks
lanekd models --input-size "$SIZE" --json

# teachers and students (best.pt: the best validation score with --val, else the final weights)
lanekd train-teacher --model resnet18 --data synth_train.h5 --val synth_val.h5 --iters "$ITERS" --out runs/r18
lanekd train-teacher --model enet-sad --label-input --data synth_train.h5 --iters "$ITERS" --out runs/label-teacher
lanekd distill --method sad --data synth_train.h5 --val synth_val.h5 --iters "$ITERS" --out runs/sad
lanekd distill --method intra-kd --teacher runs/r18/best.pt --cache-teacher --data synth_train.h5 \
  --iters "$ITERS" --out runs/ikd
lanekd distill --method lgad --teacher runs/label-teacher/best.pt --data synth_train.h5 --iters "$ITERS" \
  --out runs/lgad
lanekd distill --method sad,kd --teacher runs/r18/best.pt --data synth_train.h5 --iters "$ITERS" \
  --out runs/sad-kd  # methods combine

# predictions and scores
lanekd predict runs/sad/best.pt synth_culane/driver_synth --out pred/ --format culane
lanekd evaluate --benchmark culane --gt synth_culane --pred pred/ --json  # pred/ mirrors the dataset
lanekd predict runs/sad/best.pt 'synth_culane/driver_synth/test/*.jpg' --out - --format json > lanes.json

# deployment
lanekd export runs/sad/best.pt --format onnx --out enet_sad.onnx --dynamic-batch
lanekd export runs/sad/best.pt --format torchscript --out enet_sad.ts
lanekd bench enet_sad.onnx --batch 8 --runs 5 --json
lanekd visualize attention runs/sad/best.pt synth_culane/driver_synth/test/000000.jpg --out attention.png
lanekd visualize data synth_train.h5 --index 7 --out sample.png
