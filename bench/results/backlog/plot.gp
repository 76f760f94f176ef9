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
1 495757
4 944178
16 1212479
64 804078
256 174157
1024 389091
e
1 497929
4 388431
16 470787
64 429105
256 230924
1024 92626
e
1 483901
4 775070
16 1368710
64 745789
256 261335
1024 393902
e
1 434923
e
1 425933
4 1798011
16 784460
64 231851
256 33215
1024 9906
e
1 503385
4 554601
16 175522
64 58728
256 13404
e
1 104235
4 166174
16 259288
64 357263
256 356963
1024 287763
e
1 468088
e
1 509321
4 1896889
16 1051588
64 504772
256 73662
1024 17202
e
1 492557
4 1639456
16 1539172
64 878967
256 236558
1024 25186
e
1 476957
4 1093656
16 1126116
64 397618
256 113733
1024 17908
e
