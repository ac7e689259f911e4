/*
 * fuzz_recipe.c - libFuzzer target for the recipe parser.  Each input is a
 * recipe text, parsed strictly and then leniently from memory
 * (qc_recipe_load_string, which qc_recipe_load calls on the file's text).
 * On what parses, every schema key is read through the typed getters in
 * every section (inheritance, ConfigSection and [sec]Key references are
 * resolved there), and, when QC_FUZZ_GRAPH names an ONNX model at start-up
 * (scripts/fuzz passes the LeNet fixture), the sections are checked and
 * matched against its nodes and the quantizer specs are resolved, as
 * `qatconv convert` does.  Errors are expected; crashes, sanitizer reports,
 * leaks and timeouts are not.  Built and run by scripts/fuzz.
 */
#define _GNU_SOURCE 1
#include <config.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/graph.h"
#include "onnx/onnx_io.h"
#include "quant/qspec.h"
#include "recipe/recipe.h"
#include "recipe/match.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Set once at start-up and only read afterwards. */
struct fuzz_ctx {
    struct qc_graph *g;      /* matching target or NULL            */
    char            *keys;   /* qc_recipe_print_keys output, split */
    const char     **key;    /* the KEY of each "CLASS KEY" line   */
    int              n_keys;
};

static struct fuzz_ctx *ctx;

static void load_keys(struct fuzz_ctx *c)
{
    size_t len = 0;
    FILE *f = open_memstream(&c->keys, &len);
    int cap = 0;
    if (!f)
        return;
    qc_recipe_print_keys(f);
    if (fclose(f) != 0 || !c->keys)
        return;
    for (char *line = strtok(c->keys, "\n"); line; line = strtok(NULL, "\n")) {
        char *sp = strchr(line, ' ');
        if (!sp)
            continue;
        if (c->n_keys == cap) {
            const char **k;
            cap = cap ? 2 * cap : 64;
            k = realloc(c->key, (size_t)cap * sizeof(*k));
            if (!k)
                return;
            c->key = k;
        }
        c->key[c->n_keys++] = sp + 1;
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *model = getenv("QC_FUZZ_GRAPH");
    (void)argc;
    (void)argv;
    ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        abort();
    load_keys(ctx);
    if (model && model[0] && qc_onnx_load(model, &ctx->g) != QC_OK)
        abort();
    return 0;
}

static void exercise(const struct qc_recipe *r)
{
    char where[256];
    for (int s = 0; s < qc_recipe_n_sections(r); s++) {
        const char *sec = qc_recipe_section_name(r, s);
        (void)qc_recipe_section_is_node(r, s);
        (void)qc_recipe_section_is_base(r, s);
        (void)qc_recipe_section_line(r, s);
        for (int k = 0; k < ctx->n_keys; k++) {
            const char *str;
            int64_t i;
            double d;
            if (!qc_recipe_has_key(r, sec, ctx->key[k]))
                continue;
            (void)qc_recipe_str(r, sec, ctx->key[k], "", &str);
            (void)qc_recipe_int(r, sec, ctx->key[k], 0, &i);
            (void)qc_recipe_float(r, sec, ctx->key[k], 0.0, &d);
            (void)qc_recipe_where(r, sec, ctx->key[k], where, sizeof(where));
        }
    }
    if (ctx->g) {
        struct qc_quant_spec *specs = NULL;
        int n = 0;
        for (int i = 0; i < ctx->g->n_nodes; i++)
            (void)qc_recipe_node_section(r, ctx->g, &ctx->g->nodes[i]);
        (void)qc_recipe_check_sections(r, ctx->g, true);
        if (qc_recipe_check_sections(r, ctx->g, false) == QC_OK &&
            qc_quant_specs_from_recipe(r, ctx->g, &specs, &n) == QC_OK)
            qc_free(specs);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    struct qc_recipe *r = NULL;
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    if (qc_recipe_load_string(text, "fuzz.ini", false, &r) == QC_OK) {
        exercise(r);
        qc_recipe_free(r);
    } else if (qc_recipe_load_string(text, "fuzz.ini", true, &r) == QC_OK) {
        exercise(r);
        qc_recipe_free(r);
    }
    free(text);
    return 0;
}
