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
1 321067
4 1167786
16 1124758
64 1218772
256 695951
1024 683675
e
1 347348
4 682264
16 1041515
64 1034505
256 760893
1024 668176
e
1 334912
4 1269437
16 1083931
64 882730
256 659752
1024 664095
e
1 313975
e
1 321189
4 1363172
16 1404532
64 1451538
256 1159492
1024 1126684
e
1 424568
4 868105
16 974516
64 1008794
256 816441
e
1 91195
4 135748
16 219851
64 307251
256 305228
1024 230329
e
1 309312
e
1 463784
4 1057448
16 1437168
64 1622163
256 1684009
1024 1164005
e
1 533706
4 929061
16 1316927
64 1543080
256 1286237
1024 1158658
e
1 602446
4 1038978
16 1434012
64 1566166
256 1428488
1024 1146889
e
