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
1 353808
4 1148601
16 925373
64 1284009
256 1342437
1024 870975
e
1 385450
4 665710
16 966408
64 909160
256 1178918
1024 644016
e
1 320074
4 1298188
16 1281676
64 1380080
256 1098173
1024 910985
e
1 312592
e
1 293844
4 1367181
16 1332662
64 1386939
256 1218825
1024 1135535
e
1 461031
4 576102
16 840895
64 903011
256 837643
e
1 93865
4 135063
16 227507
64 322303
256 312703
1024 212751
e
1 311175
e
1 330820
4 1365842
16 1476185
64 1680804
256 1389468
1024 1178163
e
1 333129
4 1003339
16 1330810
64 1328959
256 1192023
1024 1050636
e
1 291136
4 803827
16 1451506
64 1566383
256 1253638
1024 1106150
e
