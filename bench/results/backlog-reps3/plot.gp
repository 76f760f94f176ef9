set terminal pngcairo size 900,560
set output '/tmp/br/backlog-reps3/results.png'
set logscale x 2
set logscale y
set xlabel 'outputs (N)'
set ylabel 'copies delivered per second'
set key outside right
set grid
set title 'Fan-out of 1316-byte datagrams on 2 vCPUs, receivers: backlog (median of repetitions)'
plot '-' using 1:2 with linespoints title 'cast-all', '-' using 1:2 with linespoints title 'cast-mixed', '-' using 1:2 with linespoints title 'mirred', '-' using 1:2 with linespoints title 'relay'
1 475854
4 999418
16 1211212
64 768819
256 266492
1024 431223
e
1 472532
4 342548
16 397953
64 425691
256 268781
1024 79701
e
1 460600
4 1727579
16 813635
64 244382
256 55247
1024 10745
e
1 113671
4 170898
16 258231
64 362753
256 365437
1024 306244
e
