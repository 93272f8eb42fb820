# bench/report/restart.gp: restart time against history length, one line
# per system, one panel per K. Loaded by a small driver that
# bench/report/report.lua writes next to the data; the driver sets:
#   out     PNG file name
#   ks      space-separated K values (one panel each)
#   series  space-separated data file names (one line each); every file has
#           rows "K N median_ms min_ms max_ms"
#   titles  the legend text of each series, separated by "|"
#   subtitle  one line under the title (mode, repeats)
#   nved    how many series (the first ones) are vedhost
# Both axes are logarithmic: restart times of the peers grow with history
# by orders of magnitude, which a linear axis would flatten.

nk = words(ks)
ns = words(series)
width = nk > 1 ? 560 * nk : 900
set terminal pngcairo size width, 680 font "DejaVu Sans,10"
set output out
set logscale xy
set grid xtics ytics mxtics mytics lc rgb "#dddddd"
set key below font ",9" maxrows 5 height 2 width -4
set xlabel "history length N (updates)"
set ylabel "restart to first served request (ms)"
set format x "%.0s%c"
# vedhost: solid, thick; peers: dashed. nved = how many of the series are
# vedhost (they come first).
set style line 1 lc rgb "#d62728" lw 3 pt 7 ps 1
set style line 2 lc rgb "#ff7f0e" lw 3 pt 9 ps 1
colors = "#1f77b4 #17becf #2ca02c #9467bd #8c564b #e377c2 #7f7f7f " . \
         "#bcbd22 #000000 #393b79"
do for [j = 1:10] {
  set style line (2 + j) lc rgb word(colors, j) lw 2 dt 2 pt (j + 3) ps 0.8
}
set datafile missing "NaN"
set autoscale xfix
title_of(i) = system(sprintf("printf '%%s' '%s' | cut -d'|' -f%d", titles, i))
set multiplot layout 1, nk title "Restart time vs history length\n" . subtitle
do for [p = 1:nk] {
  K = word(ks, p) + 0
  set title sprintf("K = %d keys", K)
  plot for [i = 1:ns] word(series, i) \
       using ($1 == K ? $2 : NaN):3:4:5 with yerrorlines \
       ls (i <= nved ? i : 2 + i - nved) \
       title title_of(i)
}
unset multiplot
