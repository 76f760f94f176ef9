set terminal pngcairo size 900,560
set output 'bench/results/backlog-tuned/results.png'
set logscale x 2
set logscale y
set xlabel 'outputs (N)'
set ylabel 'copies delivered per second'
set key outside right
set grid
set title 'Fan-out of 1316-byte datagrams on 2 vCPUs, receivers: backlog (median of repetitions)'
plot '-' using 1:2 with linespoints title 'cast-all', '-' using 1:2 with linespoints title 'mirred'
1 432653
4 1501069
16 1630410
64 650102
256 307052
1024 121720
e
1 398445
4 1950570
16 1247235
64 406542
256 104996
1024 18948
e
