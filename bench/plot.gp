# SPDX-License-Identifier: GPL-2.0-or-later
# Median pause and restore per guest/medium/transport, min-max as error bars.
# gnuplot -e "dir='OUT'" plot.gp  (reads OUT/latency.dat, writes OUT/latency.png)
set terminal pngcairo size 1400,700 font ",9"
set output dir.'/latency.png'
set style data histogram
set style histogram errorbars gap 1 lw 1
set style fill solid 0.7 border -1
set ylabel 'ms (median, min-max)'
set xtics rotate by -40 left
set key top left
set grid ytics
set title 'cpr-reboot: guest pause (STOP to completed) and restore (migrate-incoming to running)'
plot dir.'/latency.dat' using 2:3:4:xtic(1) title 'pause', \
     '' using 5:6:7 title 'restore'
