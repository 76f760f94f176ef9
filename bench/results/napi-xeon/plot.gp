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
1 730363
4 1890698
16 2461435
64 2484682
256 1687547
1024 1223737
e
1 728101
4 1344448
16 1494774
64 2161091
256 1885393
1024 1490088
e
1 589712
4 2127344
16 2693603
64 2323452
256 1458802
1024 914995
e
1 175912
4 259515
16 393963
64 639001
256 589282
1024 404256
e
