set terminal pngcairo size 900,560
set output 'bench/results/napi-2026-12-02b/results.png'
set logscale x 2
set logscale y
set xlabel 'outputs (N)'
set ylabel 'copies delivered per second'
set key outside right
set grid
set title 'Fan-out of 1316-byte datagrams on 2 vCPUs, receivers: napi (median of repetitions)'
plot '-' using 1:2 with linespoints title 'cast-all', '-' using 1:2 with linespoints title 'cast-mixed', '-' using 1:2 with linespoints title 'mirred', '-' using 1:2 with linespoints title 'relay'
1 211982
4 926210
16 1161446
64 1062885
256 931113
1024 847946
e
1 240604
4 636907
16 790351
64 997250
256 1065456
1024 880001
e
1 236897
4 827616
16 1113009
64 974024
256 828920
1024 757178
e
1 71960
4 126540
16 208518
64 246890
256 256335
1024 163501
e
