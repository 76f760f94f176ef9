set terminal pngcairo size 900,560
set output 'bench/results/backlog-floor/results.png'
set logscale x 2
set logscale y
set xlabel 'outputs (N)'
set ylabel 'copies delivered per second'
set key outside right
set grid
set title 'Fan-out of 1316-byte datagrams on 2 vCPUs, receivers: backlog (median of repetitions)'
plot '-' using 1:2 with linespoints title 'cast-all', '-' using 1:2 with linespoints title 'cast-mixed', '-' using 1:2 with linespoints title 'mirred', '-' using 1:2 with linespoints title 'relay'
1 416428
4 1647721
16 1418463
64 822726
256 235098
1024 128960
e
1 492010
4 906649
16 622317
64 552662
256 328204
1024 112077
e
1 421355
4 1354089
16 770897
64 237745
256 40796
1024 9846
e
1 103622
4 170399
16 262602
64 351340
256 351885
1024 241324
e
