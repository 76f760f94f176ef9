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
1 283495
4 1112317
16 1071139
64 1255691
256 1012231
1024 976489
e
1 245062
4 560065
16 883161
64 805365
256 858797
1024 844135
e
1 308866
4 1139523
16 1367881
64 1391468
256 1074698
1024 1064304
e
1 82049
4 108329
16 232583
64 291804
256 287087
1024 209963
e
