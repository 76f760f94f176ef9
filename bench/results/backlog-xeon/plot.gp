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
1 802879
4 1752325
16 2510585
64 2732802
256 1535201
1024 610144
e
1 788143
4 1111638
16 717666
64 1315118
256 1295899
1024 525623
e
1 835531
4 1644514
16 1150732
64 331084
256 31296
1024 3550
e
1 205793
4 336502
16 503554
64 822699
256 792951
1024 556872
e
