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
1 438544
4 1042114
16 1116459
64 735974
256 249240
1024 295204
e
1 452042
4 351051
16 324714
64 295813
256 225894
1024 64784
e
1 469866
4 1558034
16 825881
64 198054
256 55830
1024 9924
e
1 109591
4 153614
16 232853
64 346778
256 344931
1024 205702
e
