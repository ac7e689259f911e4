/*
 * imagedb.h - indexing image-folder databases (private to src/data): the
 * file lists of [database] Type=DIR_Database and Type=ILSVRC2012_Database,
 * as N2D2 builds them (src/Database/DIR_Database.cpp, ILSVRC2012_Database.cpp).
 *
 * qc_dir_list walks a folder as N2D2's DIR_Database::loadDir: the image files
 * of a folder (those whose lowercased extension is in the list), sorted by
 * path with strcmp, then its sub-folders sorted by path, recursively while
 * depth != 0 (depth -1: no limit).  A file's label is the path of its folder
 * relative to the root, cut to label_depth components (depth 1, label depth
 * 1: one class per sub-folder); class ids number the label names in the
 * order they are first met, hence in sorted folder order.  Unlike N2D2
 * (which skips them silently), a folder with no image file and no
 * sub-folder is an error naming it, as is a folder that cannot be opened.
 *
 * ILSVRC2012: the training images are DataPath/train/<synset>/ files, one
 * class per line of the synset file (LabelPath), in the file's order; the
 * validation images are DataPath/val/<file>, listed with their class id in
 * DataPath/val.txt ("<file> <id>" per line, ids counting the synset lines
 * from 0).  Only the file names are listed: nothing is decoded here.
 */
#ifndef QATCONV_SRC_DATA_IMAGEDB_H
#define QATCONV_SRC_DATA_IMAGEDB_H

#include <stdbool.h>
#include <stdint.h>

#include "util/qc.h"

#define QC_INDEX_EVERY 1000 /* images between two QC_EVENT_INDEX events */

struct qc_image_list {
    /* optional: QC_EVENT_INDEX events while the files are listed (every
     * INDEX_EVERY images), what = the root; set by the caller */
    const struct qc_reporter *rep;
    const char *what;
    int64_t n, cap;
    char **paths;    /* n file paths                        */
    int32_t *labels; /* n class ids                          */
    int n_classes, names_cap;
    char **names; /* n_classes label names                */
};

/* Extensions (lowercase, no dot) accepted by default: jpg jpeg png. */
extern const char *const qc_image_default_exts[];
#define QC_IMAGE_N_DEFAULT_EXTS 3

void qc_image_list_free(struct qc_image_list *l);

/* Appends the images under root (see above).  QC_ERR_DATA with one error
 * line naming the folder when it cannot be read or holds nothing. */
enum qc_status qc_dir_list(const char *root, int depth, int label_depth, const char *const *exts,
                           int n_exts, struct qc_image_list *l);

/* ILSVRC2012 training images: train_dir/<synset>/ for each synset line of
 * synsets_path; with background, class 0 is "background" (no images). */
enum qc_status qc_ilsvrc_list_train(const char *train_dir, const char *synsets_path,
                                    bool background, const char *const *exts, int n_exts,
                                    struct qc_image_list *l);

/* ILSVRC2012 validation images of val_txt in val_dir; ids are offset by 1
 * with background and must name a class of l (l->n_classes). */
enum qc_status qc_ilsvrc_list_val(const char *val_dir, const char *val_txt, bool background,
                                  struct qc_image_list *l);

#endif
