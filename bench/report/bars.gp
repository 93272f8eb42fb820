# bench/report/bars.gp: one bar per system/setting for throughput, memory
# per key and bytes on disk at the largest K of the run, one panel each.
# Loaded by a small driver that bench/report/report.lua writes next to the
# data; the driver sets:
#   out       PNG file name
#   np        number of panels
#   F, T, Y   arrays of np strings: data file, panel title, y label
#   L         array of np integers: 1 = logarithmic y axis
#   subtitle  one line under the title (mode, repeats, date)
# Every data file is tab-separated: "label median min max color", color 1
# for vedhost rows and 2 for the peers. Error bars: min-max over repeats.

set terminal pngcairo size 520 * np, 640 font "DejaVu Sans,10" noenhanced
set output out
set datafile separator "\t"
set multiplot layout 1, np title "vedhost (red) vs peers (blue)\n" . subtitle
set style fill solid 0.85 border -1
set boxwidth 0.7
set grid ytics lc rgb "#dddddd"
set xtics rotate by -45 left font ",8" nomirror
set bmargin 14
set tmargin 5
unset key
set linetype 1 lc rgb "#d62728"
set linetype 2 lc rgb "#1f77b4"
do for [i = 1:np] {
  set title T[i]
  set ylabel Y[i]
  if (L[i] == 1) {
    unset logscale y
    set yrange [*:*]
    stats F[i] using 2 nooutput
    set logscale y
    set yrange [STATS_min / 2 : STATS_max * 2]
    set format y "%.0s%c"
  } else {
    unset logscale y
    set yrange [0:*]
    set format y "%g"
  }
  plot F[i] using 0:2:5:xtic(1) with boxes lc variable, \
       F[i] using 0:2:3:4 with yerrorbars lc rgb "#333333" pointsize 0
}
unset multiplot
