set terminal pngcairo size 900,560
set output 'bench/results/backlog-tuned-xeon/results.png'
set logscale x 2
set logscale y
set xlabel 'outputs (N)'
set ylabel 'copies delivered per second'
set key outside right
set grid
set title 'Fan-out of 1316-byte datagrams on 2 vCPUs, receivers: backlog (median of repetitions)'
plot '-' using 1:2 with linespoints title 'cast-all', '-' using 1:2 with linespoints title 'mirred'
1 748697
4 1541410
16 1811980
64 1268177
256 146254
1024 92186
e
1 757257
4 2084217
16 1984856
64 754158
256 59032
1024 12466
e
