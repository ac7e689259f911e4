/*
 * dump_data.c - test helper: writes the network input a recipe's data
 * sections give for one split, so a script can compare it with an
 * independent decoder (tests/test_images.sh compares with PIL and numpy).
 *
 *     dump_data RECIPE.ini learn|validation|test OUT.raw
 *
 * OUT.raw: the split's images in order, each the float32 CHW tensor
 * qc_data_batch makes (host byte order), no header; OUT.raw.labels: one
 * label per line.  Prints "N C H W".  Exit status 0, or 2 on an error (the
 * library's error line printed).
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"
#include "recipe/recipe.h"
#include "util/rng.h"

int main(int argc, char **argv)
{
    struct qc_recipe *r = NULL;
    struct qc_data_cfg *cfg = NULL;
    struct qc_dataset *ds = NULL;
    float *x = NULL;
    FILE *f = NULL, *fl = NULL;
    char lpath[4096];
    int rc = 2, c, h, w;
    if (argc != 4) {
        fprintf(stderr, "usage: dump_data RECIPE.ini learn|validation|test OUT.raw\n");
        return 1;
    }
    enum qc_split split = strcmp(argv[2], "learn") == 0        ? QC_SPLIT_LEARN
                          : strcmp(argv[2], "validation") == 0 ? QC_SPLIT_VALIDATION
                                                               : QC_SPLIT_TEST;
    if (qc_recipe_load(argv[1], false, &r) != QC_OK || qc_data_cfg_from_recipe(r, &cfg) != QC_OK ||
        qc_data_load(cfg, split, &ds) != QC_OK)
        goto out;
    qc_data_cfg_geometry(cfg, &c, &h, &w);
    size_t img = (size_t)c * h * w;
    snprintf(lpath, sizeof(lpath), "%s.labels", argv[3]);
    x = malloc(img * sizeof(float));
    f = fopen(argv[3], "wb");
    fl = fopen(lpath, "w");
    if (!x || !f || !fl) {
        fprintf(stderr, "dump_data: cannot write %s\n", argv[3]);
        goto out;
    }
    uint64_t seed = 1;
    for (int64_t i = 0; i < ds->n; i++) {
        int32_t label;
        if (qc_data_batch(cfg, ds, split, &i, 1, &seed, x, &label) != QC_OK)
            goto out;
        if (fwrite(x, sizeof(float), img, f) != img || fprintf(fl, "%d\n", label) < 0) {
            fprintf(stderr, "dump_data: cannot write %s\n", argv[3]);
            goto out;
        }
    }
    printf("%lld %d %d %d\n", (long long)ds->n, c, h, w);
    rc = 0;
out:
    if (f && fclose(f) != 0)
        rc = 2;
    if (fl && fclose(fl) != 0)
        rc = 2;
    free(x);
    qc_dataset_free(ds);
    qc_data_cfg_free(cfg);
    qc_recipe_free(r);
    return rc;
}
