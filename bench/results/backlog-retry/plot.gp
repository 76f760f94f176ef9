set terminal pngcairo size 900,560
set output 'bench/results/backlog-retry/results.png'
set logscale x 2
set logscale y
set xlabel 'outputs (N)'
set ylabel 'copies delivered per second'
set key outside right
set grid
set title 'Fan-out of 1316-byte datagrams on 2 vCPUs, receivers: backlog (median of repetitions)'
plot '-' using 1:2 with linespoints title 'cast-all', '-' using 1:2 with linespoints title 'cast-mixed', '-' using 1:2 with linespoints title 'mirred', '-' using 1:2 with linespoints title 'relay'
1 470216
4 1482813
16 1545932
64 898607
256 403913
1024 116154
e
1 478941
4 756569
16 821755
64 684682
256 263907
1024 146055
e
1 465940
4 1484380
16 703863
64 243542
256 57669
1024 9805
e
1 96144
4 137608
16 259371
64 345620
256 334748
1024 275763
e
