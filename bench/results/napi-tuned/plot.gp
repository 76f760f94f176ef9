set terminal pngcairo size 900,560
set output 'bench/results/napi-tuned/results.png'
set logscale x 2
set logscale y
set xlabel 'outputs (N)'
set ylabel 'copies delivered per second'
set key outside right
set grid
set title 'Fan-out of 1316-byte datagrams on 2 vCPUs, receivers: napi (median of repetitions)'
plot '-' using 1:2 with linespoints title 'cast-all', '-' using 1:2 with linespoints title 'mirred'
1 310981
4 1121707
16 1375681
64 1567147
256 1351778
1024 1120498
e
1 312567
4 1359481
16 1274627
64 1390184
256 1187237
1024 1107778
e
