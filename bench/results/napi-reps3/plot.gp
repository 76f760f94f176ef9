set terminal pngcairo size 900,560
set output 'bench/results/napi-reps3/results.png'
set logscale x 2
set logscale y
set xlabel 'outputs (N)'
set ylabel 'copies delivered per second'
set key outside right
set grid
set title 'Fan-out of 1316-byte datagrams on 2 vCPUs, receivers: napi (median of repetitions)'
plot '-' using 1:2 with linespoints title 'cast-all', '-' using 1:2 with linespoints title 'cast-mixed', '-' using 1:2 with linespoints title 'mirred', '-' using 1:2 with linespoints title 'relay'
1 314059
4 1121891
16 1154833
64 1372175
256 1076022
1024 1043886
e
1 328622
4 807432
16 853509
64 1018715
256 1084733
1024 747701
e
1 309361
4 1427159
16 1390554
64 1449662
256 1120238
1024 1053469
e
1 96244
4 145466
16 233162
64 322463
256 316621
1024 215589
e
