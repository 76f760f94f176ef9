set terminal pngcairo size 900,560
set output 'bench/results/backlog/results.png'
set logscale x 2
set logscale y
set xlabel 'outputs (N)'
set ylabel 'copies delivered per second'
set key outside right
set grid
set title 'Fan-out of 1316-byte datagrams on 2 vCPUs, receivers: backlog (median of repetitions)'
plot '-' using 1:2 with linespoints title 'cast-all', '-' using 1:2 with linespoints title 'cast-mixed', '-' using 1:2 with linespoints title 'cast-all-synthetic', '-' using 1:2 with linespoints title 'switch', '-' using 1:2 with linespoints title 'mirred', '-' using 1:2 with linespoints title 'bridge', '-' using 1:2 with linespoints title 'relay', '-' using 1:2 with linespoints title 'redirect-floor', '-' using 1:2 with linespoints title 'xdp-broadcast', '-' using 1:2 with linespoints title 'tc-xdp-hub', '-' using 1:2 with linespoints title 'tc-peer-xdp-hub'
1 469477
4 950309
16 732758
64 715920
256 329200
1024 71198
e
1 465635
4 333108
16 485022
64 491943
256 252099
1024 93372
e
1 492333
4 836637
16 923175
64 731034
256 300462
1024 118842
e
1 422752
e
1 450875
4 1333310
16 820814
64 246677
256 52609
1024 9862
e
1 508986
4 595689
16 207450
64 61714
256 14230
e
1 119789
4 162861
16 258618
64 355335
256 350309
1024 291695
e
1 451849
e
1 585203
4 1029765
16 892228
64 408954
256 106335
1024 16197
e
1 493694
4 1072476
16 1009506
64 746301
256 222561
1024 26208
e
1 589919
4 976257
16 810670
64 351152
256 111851
1024 17023
e
