set terminal pngcairo size 900,560
set output '/tmp/full-napi/results.png'
set logscale x 2
set logscale y
set xlabel 'outputs (N)'
set ylabel 'copies delivered per second'
set key outside right
set grid
set title 'Fan-out of 1316-byte datagrams on 2 vCPUs, receivers: napi (median of repetitions)'
plot '-' using 1:2 with linespoints title 'cast-all', '-' using 1:2 with linespoints title 'cast-mixed', '-' using 1:2 with linespoints title 'mirred', '-' using 1:2 with linespoints title 'relay'
1 692540
4 2196614
16 2894325
64 2908449
256 2170434
1024 1458763
e
1 718625
4 1612461
16 1828819
64 2612986
256 2375134
1024 1702605
e
1 593169
4 2430844
16 2939388
64 2785316
256 1682512
1024 1078955
e
1 186796
4 288288
16 425470
64 728367
256 695457
1024 475271
e
