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
1 404744
4 698679
16 839257
64 605388
256 364527
1024 70367
e
1 474035
4 364748
16 444257
64 466009
256 331537
1024 89744
e
1 484047
4 1179292
16 845655
64 634457
256 450682
1024 67483
e
1 422840
e
1 419767
4 1752817
16 792624
64 235731
256 51897
1024 10665
e
1 485089
4 598951
16 216724
64 54697
256 13547
e
1 105221
4 162121
16 252219
64 362434
256 359015
1024 331136
e
1 474618
e
1 630247
4 985090
16 900796
64 411555
256 121715
1024 21553
e
1 525745
4 837613
16 1257514
64 858742
256 205868
1024 25345
e
1 451151
4 826800
16 848220
64 378573
256 100859
1024 19880
e
