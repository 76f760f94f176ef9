set terminal pngcairo size 900,560
set output '/tmp/br/napi-reps3/results.png'
set logscale x 2
set logscale y
set xlabel 'outputs (N)'
set ylabel 'copies delivered per second'
set key outside right
set grid
set title 'Fan-out of 1316-byte datagrams on 2 vCPUs, receivers: napi (median of repetitions)'
plot '-' using 1:2 with linespoints title 'cast-all', '-' using 1:2 with linespoints title 'cast-mixed', '-' using 1:2 with linespoints title 'mirred', '-' using 1:2 with linespoints title 'relay'
1 324961
4 1132606
16 1254192
64 1439420
256 1242979
1024 1053855
e
1 318989
4 737342
16 948495
64 1000978
256 1167869
1024 926889
e
1 317113
4 1490526
16 1434876
64 1508213
256 1231602
1024 1145996
e
1 98016
4 135547
16 238553
64 323270
256 324161
1024 269063
e
