set terminal pngcairo size 900,560
set output 'bench/results/napi-2026-12-02/results.png'
set logscale x 2
set logscale y
set xlabel 'outputs (N)'
set ylabel 'copies delivered per second'
set key outside right
set grid
set title 'Fan-out of 1316-byte datagrams on 2 vCPUs, receivers: napi (median of repetitions)'
plot '-' using 1:2 with linespoints title 'cast-all', '-' using 1:2 with linespoints title 'cast-mixed', '-' using 1:2 with linespoints title 'mirred', '-' using 1:2 with linespoints title 'relay'
1 1203232
4 2092963
16 3546750
64 3900514
256 3855730
1024 2703884
e
1 1177686
4 1611369
16 2758722
64 3172862
256 3959535
1024 3549467
e
1 1422484
4 2318002
16 3570411
64 3619160
256 2778128
1024 1905970
e
1 35809
4 126351
16 331844
64 801125
256 1170630
1024 1006034
e
