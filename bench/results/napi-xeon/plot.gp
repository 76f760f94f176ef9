set terminal pngcairo size 900,560
set output 'bench/results/napi-xeon/results.png'
set logscale x 2
set logscale y
set xlabel 'outputs (N)'
set ylabel 'copies delivered per second'
set key outside right
set grid
set title 'Fan-out of 1316-byte datagrams on 2 vCPUs, receivers: napi (median of repetitions)'
plot '-' using 1:2 with linespoints title 'cast-all', '-' using 1:2 with linespoints title 'cast-mixed', '-' using 1:2 with linespoints title 'mirred', '-' using 1:2 with linespoints title 'relay'
1 716576
4 1712589
16 2430052
64 2771879
256 1863949
1024 1196985
e
1 722742
4 1404776
16 1602656
64 2242267
256 1791441
1024 1436292
e
1 598318
4 2129208
16 2592696
64 2613651
256 1462735
1024 953940
e
1 170728
4 272995
16 423868
64 669694
256 630529
1024 436337
e
