set terminal pngcairo size 900,560
set output 'bench/results/backlog-xeon/results.png'
set logscale x 2
set logscale y
set xlabel 'outputs (N)'
set ylabel 'copies delivered per second'
set key outside right
set grid
set title 'Fan-out of 1316-byte datagrams on 2 vCPUs, receivers: backlog (median of repetitions)'
plot '-' using 1:2 with linespoints title 'cast-all', '-' using 1:2 with linespoints title 'cast-mixed', '-' using 1:2 with linespoints title 'mirred', '-' using 1:2 with linespoints title 'relay'
1 735355
4 1686323
16 2195149
64 1179887
256 99588
1024 26024
e
1 726060
4 1016783
16 1069120
64 1067818
256 643776
1024 334531
e
1 764349
4 1584843
16 1011705
64 286662
256 24866
1024 4035
e
1 190024
4 312307
16 501560
64 746385
256 727306
1024 549864
e
