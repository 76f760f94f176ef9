set terminal pngcairo size 900,560
set output 'bench/results/napi-2026-12-03/results.png'
set logscale x 2
set logscale y
set xlabel 'outputs (N)'
set ylabel 'copies delivered per second'
set key outside right
set grid
set title 'Fan-out of 1316-byte datagrams on 2 vCPUs, receivers: napi (median of repetitions)'
plot '-' using 1:2 with linespoints title 'cast-all', '-' using 1:2 with linespoints title 'cast-mixed', '-' using 1:2 with linespoints title 'mirred', '-' using 1:2 with linespoints title 'relay'
1 281565
4 984616
16 1281600
64 1339234
256 1233835
1024 1060601
e
1 292354
4 661275
16 841310
64 1058231
256 1266474
1024 1017747
e
1 303885
4 961565
16 1209596
64 1216504
256 1081920
1024 901614
e
1 85542
4 139927
16 225802
64 251716
256 286043
1024 173773
e
