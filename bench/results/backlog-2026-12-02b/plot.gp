set terminal pngcairo size 900,560
set output 'bench/results/backlog-2026-12-02b/results.png'
set logscale x 2
set logscale y
set xlabel 'outputs (N)'
set ylabel 'copies delivered per second'
set key outside right
set grid
set title 'Fan-out of 1316-byte datagrams on 2 vCPUs, receivers: backlog (median of repetitions)'
plot '-' using 1:2 with linespoints title 'cast-all', '-' using 1:2 with linespoints title 'cast-mixed', '-' using 1:2 with linespoints title 'mirred', '-' using 1:2 with linespoints title 'relay'
1 350674
4 1279776
16 1284723
64 1015055
256 979917
1024 1442763
e
1 361432
4 714175
16 608468
64 901332
256 1314802
1024 993183
e
1 361292
4 1114137
16 445107
64 168497
256 49898
1024 17029
e
1 97774
4 139104
16 215946
64 273025
256 262470
1024 242626
e
