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
1 689858
4 1858206
16 2424844
64 2411754
256 1726074
1024 1159808
e
1 717075
4 1383346
16 1527342
64 2057531
256 1863183
1024 1430774
e
1 596547
4 2151145
16 2507746
64 2314335
256 1340727
1024 908637
e
1 172956
4 269990
16 450434
64 643763
256 595375
1024 414246
e
