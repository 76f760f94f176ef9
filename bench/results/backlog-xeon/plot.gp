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
1 750939
4 1733975
16 2352038
64 2664630
256 1398673
1024 623689
e
1 751953
4 1067493
16 1082781
64 1472534
256 1342853
1024 534080
e
1 784787
4 1514201
16 1100571
64 289113
256 26087
1024 4105
e
1 200830
4 333754
16 500232
64 759920
256 757440
1024 527496
e
