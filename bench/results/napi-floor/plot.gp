set terminal pngcairo size 900,560
set output 'bench/results/napi-floor/results.png'
set logscale x 2
set logscale y
set xlabel 'outputs (N)'
set ylabel 'copies delivered per second'
set key outside right
set grid
set title 'Fan-out of 1316-byte datagrams on 2 vCPUs, receivers: napi (median of repetitions)'
plot '-' using 1:2 with linespoints title 'cast-all', '-' using 1:2 with linespoints title 'cast-mixed', '-' using 1:2 with linespoints title 'mirred', '-' using 1:2 with linespoints title 'relay'
1 309820
4 1137673
16 1373986
64 1523682
256 1392522
1024 1192888
e
1 354508
4 737134
16 991467
64 1224611
256 1429707
1024 1080557
e
1 304709
4 1211420
16 1429706
64 1417249
256 1285830
1024 1042932
e
1 93162
4 139767
16 233940
64 314405
256 313530
1024 233369
e
