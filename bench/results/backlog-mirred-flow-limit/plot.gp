set terminal pngcairo size 900,560
set output 'bench/results/backlog-mirred-flow-limit/results.png'
set logscale x 2
set logscale y
set xlabel 'outputs (N)'
set ylabel 'copies delivered per second'
set key outside right
set grid
set title 'Fan-out of 1316-byte datagrams on 2 vCPUs, receivers: backlog (median of repetitions)'
plot '-' using 1:2 with linespoints title 'mirred'
1 419288
4 1913989
16 1488009
64 506490
256 125007
1024 23358
e
