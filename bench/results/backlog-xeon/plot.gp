set terminal pngcairo size 900,560
set output '/tmp/full-backlog/results.png'
set logscale x 2
set logscale y
set xlabel 'outputs (N)'
set ylabel 'copies delivered per second'
set key outside right
set grid
set title 'Fan-out of 1316-byte datagrams on 2 vCPUs, receivers: backlog (median of repetitions)'
plot '-' using 1:2 with linespoints title 'cast-all', '-' using 1:2 with linespoints title 'cast-mixed', '-' using 1:2 with linespoints title 'mirred', '-' using 1:2 with linespoints title 'relay'
1 811799
4 1861635
16 2495398
64 3016207
256 1484865
1024 620865
e
1 838596
4 1143388
16 1178384
64 1241908
256 801558
1024 363394
e
1 826844
4 1639451
16 1157083
64 323845
256 28697
1024 3624
e
1 212239
4 339105
16 503016
64 803844
256 797718
1024 559998
e
