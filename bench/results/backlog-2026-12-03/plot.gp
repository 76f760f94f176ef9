set terminal pngcairo size 900,560
set output 'bench/results/backlog-2026-12-03/results.png'
set logscale x 2
set logscale y
set xlabel 'outputs (N)'
set ylabel 'copies delivered per second'
set key outside right
set grid
set title 'Fan-out of 1316-byte datagrams on 2 vCPUs, receivers: backlog (median of repetitions)'
plot '-' using 1:2 with linespoints title 'cast-all', '-' using 1:2 with linespoints title 'cast-mixed', '-' using 1:2 with linespoints title 'mirred', '-' using 1:2 with linespoints title 'relay'
1 371154
4 1340954
16 1361973
64 2003276
256 1544628
1024 1301638
e
1 330451
4 786966
16 732027
64 1613764
256 1505998
1024 1113876
e
1 396153
4 1382414
16 779999
64 222634
256 54203
1024 17236
e
1 97380
4 155877
16 236756
64 339935
256 318413
1024 194120
e
