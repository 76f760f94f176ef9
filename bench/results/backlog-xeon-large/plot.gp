set terminal pngcairo size 900,560
set output 'bench/results/backlog-xeon-large/results.png'
set logscale x 2
set logscale y
set xlabel 'outputs (N)'
set ylabel 'copies delivered per second'
set key outside right
set grid
set title 'Fan-out of 1316-byte datagrams on 2 vCPUs, receivers: backlog (median of repetitions)'
plot '-' using 1:2 with linespoints title 'cast-all', '-' using 1:2 with linespoints title 'cast-mixed', '-' using 1:2 with linespoints title 'mirred', '-' using 1:2 with linespoints title 'relay'
64 1299683
256 133056
1024 192812
e
64 1182935
256 722087
1024 327505
e
64 300126
256 25730
1024 4158
e
64 790284
256 763005
1024 534983
e
