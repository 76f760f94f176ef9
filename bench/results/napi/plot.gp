set terminal pngcairo size 900,560
set output 'bench/results/napi/results.png'
set logscale x 2
set logscale y
set xlabel 'outputs (N)'
set ylabel 'copies delivered per second'
set key outside right
set grid
set title 'Fan-out of 1316-byte datagrams on 2 vCPUs, receivers: napi (median of repetitions)'
plot '-' using 1:2 with linespoints title 'cast-all', '-' using 1:2 with linespoints title 'cast-mixed', '-' using 1:2 with linespoints title 'cast-all-synthetic', '-' using 1:2 with linespoints title 'switch', '-' using 1:2 with linespoints title 'mirred', '-' using 1:2 with linespoints title 'bridge', '-' using 1:2 with linespoints title 'relay', '-' using 1:2 with linespoints title 'redirect-floor', '-' using 1:2 with linespoints title 'xdp-broadcast', '-' using 1:2 with linespoints title 'tc-xdp-hub', '-' using 1:2 with linespoints title 'tc-peer-xdp-hub'
1 325086
4 1174091
16 1050217
64 1237195
256 737664
1024 538289
e
1 333307
4 664014
16 951668
64 1134710
256 721542
1024 654946
e
1 316190
4 1196555
16 1155933
64 1222918
256 743957
1024 627579
e
1 343871
e
1 309194
4 1181452
16 1397106
64 1457419
256 1287325
1024 1087084
e
1 506762
4 780606
16 869469
64 1049769
256 743799
e
1 97037
4 139746
16 221389
64 323786
256 322843
1024 269479
e
1 338128
e
1 597703
4 1050793
16 1400176
64 1649538
256 1393414
1024 1099381
e
1 521766
4 816117
16 919972
64 1529307
256 1466293
1024 1228776
e
1 429175
4 1071412
16 1423874
64 1639864
256 1307640
1024 1229148
e
