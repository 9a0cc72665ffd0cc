/*
 * insn_count: count the guest instructions an emulated Arm CPU executes between two markers.
 *
 * Built on QEMU's TCG plugin API (version 1, as in Debian bookworm's qemu-user 7.2); the few declarations
 * it needs are written out below from QEMU's include/qemu/qemu-plugin.h and its TCG plugin
 * documentation, so no QEMU or GLib headers are needed to build it:
 *     gcc -shared -fPIC -O2 -o insn_count.so insn_count.c
 *
 * The program under test marks what is counted with close() of two magic descriptors (they fail with
 * EBADF, harmlessly): close(MARK_START) starts an interval, close(MARK_STOP) writes one line
 *     <instructions> <dot-product instructions>
 * to the file named by the plugin argument out=PATH, and close(MARK_GROUP) writes "group" (the end
 * of one model's intervals). Counting between markers, never whole processes, keeps Python's start-up
 * (which changes with .pyc files) out. Instructions are counted inline per translation block; the
 * dot-product ones (SDOT and UDOT, vector and by-element forms: each 16 multiply-adds into 4 lanes) by an
 * inline counter on each such instruction, found by its encoding at translation time.
 *
 * Copyright (C) 2026 the edge-pipeline authors. This file is built on QEMU's plugin API, whose header is
 * Copyright (C) 2017, Emilio G. Cota and (C) 2019, Linaro, and is licensed, like QEMU, under the
 * GNU General Public License, version 2 or later. SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- QEMU's plugin API, version 1 (include/qemu/qemu-plugin.h, QEMU 7.2) ------------------------ */
#define QEMU_PLUGIN_EXPORT __attribute__((visibility("default")))
typedef uint64_t qemu_plugin_id_t;
typedef struct qemu_info_t qemu_info_t; /* only passed through */
struct qemu_plugin_tb;
struct qemu_plugin_insn;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*qemu_plugin_vcpu_tb_trans_cb_t)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*qemu_plugin_vcpu_syscall_cb_t)(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num,
                                              uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5,
                                              uint64_t a6, uint64_t a7, uint64_t a8);
typedef void (*qemu_plugin_udata_cb_t)(qemu_plugin_id_t id, void *userdata);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_tb_trans_cb_t cb);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, enum qemu_plugin_op op, void *ptr,
                                              uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_inline(struct qemu_plugin_insn *insn, enum qemu_plugin_op op,
                                                void *ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *tb, size_t idx);
const void *qemu_plugin_insn_data(const struct qemu_plugin_insn *insn);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *insn);
void qemu_plugin_register_vcpu_syscall_cb(qemu_plugin_id_t id, qemu_plugin_vcpu_syscall_cb_t cb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, qemu_plugin_udata_cb_t cb, void *userdata);
QEMU_PLUGIN_EXPORT int qemu_plugin_version = 1;

/* --- the counter ------------------------------------------------------------------------------- */
#define AARCH64_CLOSE 57
#define MARK_START 1000003
#define MARK_STOP 1000004
#define MARK_GROUP 1000005

static uint64_t instructions, dot_products, started_instructions, started_dots;
static FILE *out;

static bool is_dot_product(uint32_t word)
{
    /* SDOT/UDOT (vector): 0 Q U 01110 10 0 Rm 100101 Rn Rd; (by element): 0 Q U 01111 10 L M Rm 1110 H 0 Rn Rd */
    return (word & 0x9FE0FC00u) == 0x0E809400u || (word & 0x9FC0F400u) == 0x0F80E000u;
}

static void translated(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t count = qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &instructions, count);
    for (size_t i = 0; i < count; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint32_t word;
        if (qemu_plugin_insn_size(insn) != sizeof(word)) {
            continue;
        }
        memcpy(&word, qemu_plugin_insn_data(insn), sizeof(word));
        if (is_dot_product(word)) {
            qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &dot_products, 1);
        }
    }
}

static void syscall(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1, uint64_t a2, uint64_t a3,
                    uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8)
{
    if (num != AARCH64_CLOSE) {
        return;
    }
    if (a1 == MARK_START) {
        started_instructions = instructions;
        started_dots = dot_products;
    } else if (a1 == MARK_STOP) {
        fprintf(out, "%" PRIu64 " %" PRIu64 "\n", instructions - started_instructions, dot_products - started_dots);
        fflush(out);
    } else if (a1 == MARK_GROUP) {
        fputs("group\n", out);
        fflush(out);
    }
}

static void finished(qemu_plugin_id_t id, void *userdata)
{
    fputs("end\n", out);
    fclose(out);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "out=", 4) == 0) {
            path = argv[i] + 4;
        }
    }
    out = path ? fopen(path, "w") : NULL;
    if (out == NULL) {
        fprintf(stderr, "insn_count: give out=PATH, a file it can write\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, translated);
    qemu_plugin_register_vcpu_syscall_cb(id, syscall);
    qemu_plugin_register_atexit_cb(id, finished, NULL);
    return 0;
}
