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
1 943855
4 2526703
16 3164338
64 3541868
256 2561532
1024 1920615
e
1 860281
4 1944775
16 2145244
64 3115965
256 3000477
1024 2038058
e
1 682361
4 2770644
16 3479684
64 3245959
256 2143392
1024 1365277
e
1 197751
4 353289
16 497995
64 798593
256 843432
1024 607602
e
