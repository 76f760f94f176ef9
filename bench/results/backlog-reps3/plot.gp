set terminal pngcairo size 900,560
set output 'bench/results/backlog-reps3/results.png'
set logscale x 2
set logscale y
set xlabel 'outputs (N)'
set ylabel 'copies delivered per second'
set key outside right
set grid
set title 'Fan-out of 1316-byte datagrams on 2 vCPUs, receivers: backlog (median of repetitions)'
plot '-' using 1:2 with linespoints title 'cast-all', '-' using 1:2 with linespoints title 'cast-mixed', '-' using 1:2 with linespoints title 'mirred', '-' using 1:2 with linespoints title 'relay'
1 449632
4 1563395
16 1531634
64 914725
256 345740
1024 100080
e
1 436886
4 919608
16 839332
64 636862
256 345085
1024 138160
e
1 460343
4 1239804
16 802318
64 248669
256 46148
1024 9222
e
1 106624
4 169773
16 251530
64 352382
256 360413
1024 225000
e
