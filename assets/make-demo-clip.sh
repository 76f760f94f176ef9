#!/bin/sh
# Makes assets/demo.ts, the clip built into `ebpf-cast demo`: 10 s of H.264 (B-frames, GOP 50)
# with an AAC tone, from ffmpeg's own test sources. Debian 12's ffmpeg 5.1 made the committed file.
set -eu
cd "$(dirname "$0")"
ffmpeg -nostdin -v error -y \
    -f lavfi -i testsrc2=size=320x240:rate=25 -f lavfi -i sine=frequency=440:sample_rate=48000 \
    -t 10 -map 0:v -map 1:a -c:v libx264 -preset veryfast -b:v 250k -g 50 -c:a aac -b:a 48k \
    -fflags +bitexact -f mpegts demo.ts
ls -l demo.ts
