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
1 1021769
4 2368460
16 3418486
64 3773990
256 2245415
1024 980945
e
1 1066118
4 1509091
16 1168968
64 1769023
256 1941919
1024 844905
e
1 1046398
4 2454572
16 1557956
64 440736
256 44888
1024 5551
e
1 241727
4 432625
16 588598
64 923619
256 983747
1024 749807
e
