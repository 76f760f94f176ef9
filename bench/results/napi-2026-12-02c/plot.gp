set terminal pngcairo size 900,560
set output 'bench/results/napi-2026-12-02c/results.png'
set logscale x 2
set logscale y
set xlabel 'outputs (N)'
set ylabel 'copies delivered per second'
set key outside right
set grid
set title 'Fan-out of 1316-byte datagrams on 2 vCPUs, receivers: napi (median of repetitions)'
plot '-' using 1:2 with linespoints title 'cast-all', '-' using 1:2 with linespoints title 'cast-mixed', '-' using 1:2 with linespoints title 'mirred', '-' using 1:2 with linespoints title 'relay'
1 312932
4 1036719
16 1292568
64 1157875
256 1112522
1024 1137978
e
1 342396
4 810918
16 1018505
64 1262516
256 1212166
1024 1046534
e
1 258620
4 1198856
16 1320412
64 1350503
256 916390
1024 1025754
e
1 85285
4 118927
16 217304
64 292133
256 287007
1024 228395
e
