set terminal pngcairo size 900,560
set output 'bench/results/backlog-2026-12-02/results.png'
set logscale x 2
set logscale y
set xlabel 'outputs (N)'
set ylabel 'copies delivered per second'
set key outside right
set grid
set title 'Fan-out of 1316-byte datagrams on 2 vCPUs, receivers: backlog (median of repetitions)'
plot '-' using 1:2 with linespoints title 'cast-all', '-' using 1:2 with linespoints title 'cast-mixed', '-' using 1:2 with linespoints title 'mirred', '-' using 1:2 with linespoints title 'relay'
1 905570
4 1902094
16 5116111
64 3754806
256 6151554
1024 4019598
e
1 899172
4 1222373
16 3240980
64 4812829
256 5448897
1024 3638440
e
1 1012716
4 1375006
16 1286372
64 363010
256 82709
1024 15168
e
1 35140
4 110867
16 524376
64 973622
256 1385362
1024 1161183
e
