set terminal pngcairo size 900,560
set output 'bench/results/napi-reps3/results.png'
set logscale x 2
set logscale y
set xlabel 'outputs (N)'
set ylabel 'copies delivered per second'
set key outside right
set grid
set title 'Fan-out of 1316-byte datagrams on 2 vCPUs, receivers: napi (median of repetitions)'
plot '-' using 1:2 with linespoints title 'cast-all', '-' using 1:2 with linespoints title 'cast-mixed', '-' using 1:2 with linespoints title 'mirred', '-' using 1:2 with linespoints title 'relay'
1 332547
4 1118158
16 1205952
64 1405191
256 1275129
1024 993276
e
1 348393
4 714253
16 1013674
64 898723
256 1080008
1024 765272
e
1 307543
4 1368138
16 1376201
64 1508919
256 1248617
1024 1087383
e
1 97619
4 136733
16 240469
64 321977
256 324166
1024 208725
e
