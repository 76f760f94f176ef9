set terminal pngcairo size 900,560
set output 'bench/results/backlog-reps3/results.png'
set logscale x 2
set logscale y
set xlabel 'outputs (N)'
set ylabel 'copies delivered per second'
set key outside right
set grid
set title 'Fan-out of 1316-byte datagrams on 2 vCPUs, receivers: backlog (median of repetitions)'
plot '-' using 1:2 with linespoints title 'cast-all', '-' using 1:2 with linespoints title 'cast-mixed', '-' using 1:2 with linespoints title 'mirred', '-' using 1:2 with linespoints title 'relay'
1 473456
4 1263411
16 1132803
64 646781
256 232251
1024 452273
e
1 410297
4 477631
16 469225
64 470900
256 263510
1024 109835
e
1 459034
4 1714778
16 773847
64 243264
256 51172
1024 10549
e
1 114109
4 169342
16 268119
64 332820
256 348769
1024 284244
e
