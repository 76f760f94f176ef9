set terminal pngcairo size 900,560
set output 'bench/results/backlog-xeon/results.png'
set logscale x 2
set logscale y
set xlabel 'outputs (N)'
set ylabel 'copies delivered per second'
set key outside right
set grid
set title 'Fan-out of 1316-byte datagrams on 2 vCPUs, receivers: backlog (median of repetitions)'
plot '-' using 1:2 with linespoints title 'cast-all', '-' using 1:2 with linespoints title 'cast-mixed', '-' using 1:2 with linespoints title 'mirred', '-' using 1:2 with linespoints title 'relay'
1 734702
4 1593928
16 1810260
64 1200903
256 138957
1024 128824
e
1 710476
4 1061507
16 897651
64 778186
256 180449
1024 78484
e
1 774600
4 1671711
16 1093209
64 288728
256 24155
1024 4386
e
1 202856
4 326358
16 499342
64 750180
256 716180
1024 498892
e
