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
1 332561
4 1263851
16 1435522
64 1512434
256 1293946
1024 1197496
e
1 322356
4 964031
16 1023856
64 1245550
256 1148307
1024 1138834
e
1 313635
4 1396362
16 1437372
64 1508365
256 1192149
1024 1061723
e
1 93111
4 152756
16 225749
64 316275
256 307460
1024 253613
e
