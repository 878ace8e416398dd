# The scaling curve's plot (bench/run --curve writes the data files and calls this script):
#   gnuplot -e "out='curve.png'; s1='rows-S1.dat'; s2='rows-S2.dat'; w='workers.dat'; title='...'; s5rows='1000000'" \
#     bench/profiles/plot_curve.gp
# Left: wall time against rows for S1 and S2, each with the line through the origin and its smallest
# point (what perfectly linear scaling from that point would give). Right: S5's rows/s against workers.
set terminal pngcairo size 1400,560 font 'sans,10'
set output out
set multiplot layout 1,2 title title
set key top left
set grid
set xlabel 'rows'
set ylabel 'wall s'
set format x '%.1s%c'
f1(x) = slope1 * x
f2(x) = slope2 * x
# slope = wall/rows of each file's first line, its smallest point (the runner writes them sorted by rows)
stats s1 every ::0::0 using ($2/$1) nooutput prefix 'P1'
slope1 = P1_max
stats s2 every ::0::0 using ($2/$1) nooutput prefix 'P2'
slope2 = P2_max
set xrange [0:*]
set yrange [0:*]
plot s1 using 1:2 with linespoints pt 7 lw 2 lc 1 title 'S1 (new sheet)', \
     f1(x) with lines dt 2 lc 1 title 'S1 linear from its smallest point', \
     s2 using 1:2 with linespoints pt 5 lw 2 lc 2 title 'S2 (1% changed)', \
     f2(x) with lines dt 2 lc 2 title 'S2 linear from its smallest point'
set xlabel 'workers (S5, '.s5rows.' rows)'
set ylabel 'rows/s'
set format x '%g'
set xtics 1
set xrange [*:*]
set offsets 0.5, 0.5, 0, 0
set yrange [0:*]
plot w using 1:3 with linespoints pt 7 lw 2 lc 3 title 'S5 rows/s'
unset multiplot
