/* Shared by the C kernel tests: a line list, and the entry line format of
 * ffi/examples/ct_snapshot.rs ("entry family=... | timeout=... use=..."), so that what the
 * C API reads can be compared with what the Rust API read. */
#ifndef IPVSCT_TEST_CT_FORMAT_H
#define IPVSCT_TEST_CT_FORMAT_H

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "check.h"
#include "ipvsct.h"

#define MAX_LINES 512
#define LINE_LEN 1024

struct lines {
    char *v[MAX_LINES];
    int n;
};

static inline void lines_add(struct lines *l, const char *s)
{
    if (l->n < MAX_LINES)
        l->v[l->n++] = strdup(s);
}

static inline void lines_free(struct lines *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    l->n = 0;
}

static inline int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static inline void lines_sort(struct lines *l)
{
    qsort(l->v, (size_t)l->n, sizeof l->v[0], cmp_str);
}

/* ---- formatting: the same line format as ffi/examples/ct_snapshot.rs ---- */

/* A decimal value, or "-" when absent (`has` is 0). */
static inline void put(char *out, size_t n, uint64_t has, unsigned long long v)
{
    if (has)
        snprintf(out, n, "%llu", v);
    else
        snprintf(out, n, "-");
}

static inline void fmt_addr(char *out, size_t n, const ipvsct_addr *a)
{
    if (!inet_ntop(a->family == IPVSCT_AF_INET ? AF_INET : AF_INET6, a->addr, out,
                   (socklen_t)n))
        snprintf(out, n, "?");
}

static inline void fmt_tuple(char *out, size_t n, const ipvsct_tuple *t)
{
    char src[64], dst[64], sp[16], dp[16], icmp[64], zone[16];
    fmt_addr(src, sizeof src, &t->src);
    fmt_addr(dst, sizeof dst, &t->dst);
    put(sp, sizeof sp, t->fields & IPVSCT_TUPLE_HAS_SRC_PORT, t->src_port);
    put(dp, sizeof dp, t->fields & IPVSCT_TUPLE_HAS_DST_PORT, t->dst_port);
    put(zone, sizeof zone, t->fields & IPVSCT_TUPLE_HAS_ZONE, t->zone);
    uint32_t ib = IPVSCT_TUPLE_HAS_ICMP_TYPE | IPVSCT_TUPLE_HAS_ICMP_CODE | IPVSCT_TUPLE_HAS_ICMP_ID;
    if (t->fields & ib) {
        char a[8], b[8], c[8];
        put(a, sizeof a, t->fields & IPVSCT_TUPLE_HAS_ICMP_TYPE, t->icmp_type);
        put(b, sizeof b, t->fields & IPVSCT_TUPLE_HAS_ICMP_CODE, t->icmp_code);
        put(c, sizeof c, t->fields & IPVSCT_TUPLE_HAS_ICMP_ID, t->icmp_id);
        snprintf(icmp, sizeof icmp, "%s/%s/%s", a, b, c);
    } else {
        snprintf(icmp, sizeof icmp, "-");
    }
    snprintf(out, n, "%u,%s,%s,%s,%s,%s,%s", t->proto, src, sp, dst, dp, icmp, zone);
}

static inline void fmt_entry(char *out, size_t n, const ipvsct_ct_entry *e)
{
    char orig[256], reply[256], st[16], mark[16], zone[16], id[16], counters[128], start[32],
        labels[512], timeout[16], use[16];
    fmt_tuple(orig, sizeof orig, &e->orig);
    fmt_tuple(reply, sizeof reply, &e->reply);
    put(st, sizeof st, e->fields & IPVSCT_CT_ENTRY_HAS_STATE_TIMEOUT, e->state_timeout);
    put(mark, sizeof mark, e->fields & IPVSCT_CT_ENTRY_HAS_MARK, e->mark);
    put(zone, sizeof zone, e->fields & IPVSCT_CT_ENTRY_HAS_ZONE, e->zone);
    put(id, sizeof id, e->fields & IPVSCT_CT_ENTRY_HAS_ID, e->id);
    put(start, sizeof start, e->fields & IPVSCT_CT_ENTRY_HAS_TIMESTAMP_START,
        (unsigned long long)e->timestamp_start);
    put(timeout, sizeof timeout, e->fields & IPVSCT_CT_ENTRY_HAS_TIMEOUT, e->timeout);
    put(use, sizeof use, e->fields & IPVSCT_CT_ENTRY_HAS_USE, e->use_count);
    uint32_t both = IPVSCT_CT_ENTRY_HAS_COUNTERS_ORIG | IPVSCT_CT_ENTRY_HAS_COUNTERS_REPLY;
    if ((e->fields & both) == both)
        snprintf(counters, sizeof counters, "%llu/%llu/%llu/%llu",
                 (unsigned long long)e->counters_orig.packets,
                 (unsigned long long)e->counters_orig.bytes,
                 (unsigned long long)e->counters_reply.packets,
                 (unsigned long long)e->counters_reply.bytes);
    else
        snprintf(counters, sizeof counters, "-");
    if (e->fields & IPVSCT_CT_ENTRY_HAS_LABELS) {
        size_t used = 0;
        labels[0] = 0;
        for (unsigned bit = 0; bit < 32 * IPVSCT_LABEL_WORDS; bit++)
            if (e->labels[bit / 32] & (1u << (bit % 32)))
                used += (size_t)snprintf(labels + used, sizeof labels - used, "%s%u",
                                         used ? "," : "", bit);
    } else {
        snprintf(labels, sizeof labels, "-");
    }
    snprintf(out, n,
             "entry family=%u orig=%s reply=%s state=%s state_timeout=%s status=0x%x mark=%s "
             "zone=%s id=%s counters=%s start=%s labels=%s helper=%s | timeout=%s use=%s",
             e->family, orig, reply, e->state_name[0] ? e->state_name : "-", st, e->status,
             mark, zone, id, counters, start, labels, e->helper[0] ? e->helper : "-", timeout,
             use);
}


/* The "timeout=" value of an entry line (after " | "), or -1. */
static inline long line_timeout(const char *l)
{
    const char *p = strstr(l, " | timeout=");
    return p ? strtol(p + 11, NULL, 10) : -1;
}

/* Compares entry lines: the stable part exactly, the seconds left within [0, slack]. */
static inline void compare_entries(const char *what, struct lines *want, struct lines *got, long slack)
{
    lines_sort(want);
    lines_sort(got);
    CHECK(want->n == got->n, "%s: %d entries expected, %d read", what, want->n, got->n);
    for (int i = 0; i < want->n && i < got->n; i++) {
        const char *a = want->v[i], *b = got->v[i];
        const char *pa = strstr(a, " | "), *pb = strstr(b, " | ");
        size_t la = pa ? (size_t)(pa - a) : strlen(a), lb = pb ? (size_t)(pb - b) : strlen(b);
        CHECK(la == lb && memcmp(a, b, la) == 0, "%s: entry differs\n  want %s\n  got  %s", what,
              a, b);
        long ta = line_timeout(a), tb = line_timeout(b);
        CHECK(ta >= 0 && tb >= 0 && ta - tb >= 0 && ta - tb <= slack,
              "%s: seconds left %ld then %ld (slack %ld)\n  %s", what, ta, tb, slack, b);
    }
}

#endif
