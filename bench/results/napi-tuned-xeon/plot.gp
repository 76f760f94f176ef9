set terminal pngcairo size 900,560
set output 'bench/results/napi-tuned-xeon/results.png'
set logscale x 2
set logscale y
set xlabel 'outputs (N)'
set ylabel 'copies delivered per second'
set key outside right
set grid
set title 'Fan-out of 1316-byte datagrams on 2 vCPUs, receivers: napi (median of repetitions)'
plot '-' using 1:2 with linespoints title 'cast-all', '-' using 1:2 with linespoints title 'mirred'
1 720250
4 1722669
16 2223889
64 2543005
256 1811503
1024 1178887
e
1 589717
4 2144966
16 2542141
64 2429915
256 1384041
1024 904216
e
