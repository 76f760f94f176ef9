set terminal pngcairo size 900,560
set output 'bench/results/backlog-2026-12-02c/results.png'
set logscale x 2
set logscale y
set xlabel 'outputs (N)'
set ylabel 'copies delivered per second'
set key outside right
set grid
set title 'Fan-out of 1316-byte datagrams on 2 vCPUs, receivers: backlog (median of repetitions)'
plot '-' using 1:2 with linespoints title 'cast-all', '-' using 1:2 with linespoints title 'cast-mixed', '-' using 1:2 with linespoints title 'mirred', '-' using 1:2 with linespoints title 'relay'
1 459201
4 1634356
16 1657016
64 1763796
256 1712872
1024 1501946
e
1 405383
4 906362
16 897245
64 1703204
256 1506921
1024 1760157
e
1 372104
4 1653681
16 542203
64 196262
256 61202
1024 11830
e
1 95189
4 160947
16 253932
64 332721
256 335617
1024 293092
e
