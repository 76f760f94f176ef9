set terminal pngcairo size 900,560
set output 'bench/results/napi-mirred-flow-limit/results.png'
set logscale x 2
set logscale y
set xlabel 'outputs (N)'
set ylabel 'copies delivered per second'
set key outside right
set grid
set title 'Fan-out of 1316-byte datagrams on 2 vCPUs, receivers: napi (median of repetitions)'
plot '-' using 1:2 with linespoints title 'mirred'
1 304640
4 1523440
16 1389401
64 1453564
256 1141909
1024 1092630
e
