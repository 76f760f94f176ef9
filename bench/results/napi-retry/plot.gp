set terminal pngcairo size 900,560
set output '/tmp/bnapi/results.png'
set logscale x 2
set logscale y
set xlabel 'outputs (N)'
set ylabel 'copies delivered per second'
set key outside right
set grid
set title 'Fan-out of 1316-byte datagrams on 2 vCPUs, receivers: napi (median of repetitions)'
plot '-' using 1:2 with linespoints title 'cast-all', '-' using 1:2 with linespoints title 'mirred', '-' using 1:2 with linespoints title 'relay'
1 262791
4 1197888
16 1326212
64 1574158
256 1206538
1024 1123870
e
1 304893
4 1348309
16 1410815
64 1449981
256 1220675
1024 888387
e
1 89384
4 149758
16 227900
64 316585
256 303782
1024 182304
e
