/*
 * plots.h - the --plots output: per-layer weight histograms and the test
 * confusion matrix (PNG, drawn with png.h) and the graph drawn by Graphviz
 * dot.
 */
#ifndef QATCONV_SRC_EXPORT_PLOTS_H
#define QATCONV_SRC_EXPORT_PLOTS_H

#include <stddef.h>
#include <stdint.h>

#include "ir/graph.h"
#include "util/qc.h"

/* Histogram of one layer's float weights (before) with the quantized values
 * (after) overlaid, written to path as a 640x360 PNG: 80 bars for `before`
 * (n values, counts on the left axis), and the distinct levels of `after`
 * (n values, may be NULL) drawn as spikes of another colour, counts on the
 * right axis (and above each spike when there are at most 16 levels).  The
 * x axis spans both arrays (ticks at min, max and between); the title is
 * `title` (put the bit width in it, e.g. "conv1 weights, W4"), followed by
 * the number of levels and the bits they need.  Non-finite values are
 * skipped and counted in the legend. */
enum qc_status qc_plot_weight_histogram(const char *path, const char *title,
                                        const float *before, const float *after, int64_t n);

/* The confusion matrix counts (classes x classes, row = true class, column
 * = predicted) as a heat map, written to path as a PNG of
 * (48 + K cell + 16) x (56 + K cell + 16) pixels, K = classes, cell =
 * qc_plot_confusion_cell(K): the cell of true class t and prediction p has
 * its top-left corner at (48 + p cell, 56 + t cell); its colour goes from
 * white (0) to dark blue (the largest count), never lighter for a larger
 * count; the count is written in the cell when it fits (not on the cell's
 * first row or column of pixels); class numbers label the rows and columns.
 * Title and a line with the totals above. */
enum qc_status qc_plot_confusion(const char *path, const char *title, const int64_t *counts,
                                 int64_t classes);
/* The side of one cell: 480 / K pixels, at least 4 and at most 48. */
int qc_plot_confusion_cell(int64_t classes);

/* The graph as Graphviz: creates dir if needed, writes dir/graph.dot with one
 * box per node (op type, node label and node_notes[i] when node_notes and
 * node_notes[i] are not NULL, e.g. "W4 A4 s=0.0123 M0=... n=..."; nodes
 * with a note are filled), graph inputs and outputs as ellipses, and edges
 * along values labelled with the value's dtype when it is known; then runs
 * `dot -Tpng dir/graph.dot -o dir/graph.png` (no shell; the PNG replaces
 * graph.png only when dot succeeds).  When dot is missing or fails: one
 * qc_log_warn line and QC_OK (graph.dot stays). */
enum qc_status qc_plot_graph(const char *dir, const struct qc_graph *g,
                             const char *const *node_notes);

/* Creates the directory dir (not its parents) unless it already is one. */
enum qc_status qc_plot_make_dir(const char *dir);

/* dir + "/" + name + ext with every character of name outside [A-Za-z0-9._-]
 * replaced by '_' (a file name for a layer); NULL if it does not fit in len. */
const char *qc_plot_file_name(const char *dir, const char *name, const char *ext, char *buf,
                              size_t len);

#endif
