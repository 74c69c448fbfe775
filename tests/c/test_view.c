/* The lazy view dump (ipvsct_conntrack_dump_view) against the real kernel, in a namespace
 * with entries (tests/c/run.sh runs it in the namespace ct_traffic filled; it also runs
 * against a big table, e.g. the benchmark's): the table is dumped with the struct API and
 * with the view API, and for every entry every accessor is compared with the struct the
 * view itself fills (ipvsct_ct_view_entry), and that struct with the one the struct dump
 * passed, byte for byte (except the seconds-left `timeout`, which may tick between the
 * dumps by at most the time elapsed).
 * Then: early stop, re-entrancy (IPVSCT_ERR_BUSY), a family filter, NULL arguments.
 *
 * Usage: test_view --netns NAME [--min N]   (N: the fewest entries the table must have) */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "check.h"

struct table {
    ipvsct_ct_entry *v;
    size_t n, cap;
};

static int collect_cb(const ipvsct_ct_entry *e, void *user)
{
    struct table *t = (struct table *)user;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 1024;
        ipvsct_ct_entry *v = (ipvsct_ct_entry *)realloc(t->v, cap * sizeof *v);
        if (!v)
            return 1;
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n++] = *e;
    return 0;
}

struct compare {
    const struct table *structs;
    size_t i;          /* views seen */
    size_t mismatches; /* accessor or struct differences (first few are printed) */
    size_t by_id;      /* entries found by id rather than at the same position */
    size_t master, state_timeouts, marks, tcp;
    struct timespec start; /* when the struct dump started */
};

#define MISMATCH(c, ...)                                                        \
    do {                                                                        \
        if ((c)->mismatches++ < 10) {                                           \
            fprintf(stderr, "entry %zu: ", (c)->i);                             \
            fprintf(stderr, __VA_ARGS__);                                       \
            fputc('\n', stderr);                                                \
        }                                                                       \
    } while (0)

/* Checks an accessor's answer for a u32 field of the struct: IPVSCT_OK with the value
 * when the field's bit is set, IPVSCT_ABSENT (output untouched) otherwise. */
static void check_u32(struct compare *c, const char *name, int32_t rc, uint32_t got,
                      int present, uint32_t want)
{
    if (present ? rc != IPVSCT_OK || got != want : rc != IPVSCT_ABSENT || got != 0xdeadbeef)
        MISMATCH(c, "%s: %s %u, struct %s %u", name, ipvsct_result_name(rc), got,
                 present ? "has" : "lacks", want);
}

/* The struct of the same entry from the struct dump: at the same position, or by id. */
static const ipvsct_ct_entry *find(struct compare *c, const ipvsct_ct_entry *e)
{
    const struct table *t = c->structs;
    if (c->i < t->n && t->v[c->i].id == e->id)
        return &t->v[c->i];
    c->by_id++;
    for (size_t k = 0; k < t->n; k++)
        if (t->v[k].id == e->id)
            return &t->v[k];
    return NULL;
}

static int compare_cb(const ipvsct_ct_view *view, void *user)
{
    struct compare *c = (struct compare *)user;
    /* The state timeout read before anything else (the library then reads the protocol
     * itself; read after ipvsct_ct_view_orig below, it reuses what that decoded). */
    uint32_t st_first = 0xdeadbeef;
    int32_t rc_first = ipvsct_ct_view_state_timeout(view, &st_first);
    ipvsct_ct_entry e;
    memset(&e, 0x5a, sizeof e);
    int32_t rc = ipvsct_ct_view_entry(view, &e);
    if (rc != IPVSCT_OK) {
        MISMATCH(c, "ipvsct_ct_view_entry: %s (%s)", ipvsct_result_name(rc), last_msg());
        c->i++;
        return 0;
    }
    ipvsct_tuple t;
    memset(&t, 0, sizeof t);
    rc = ipvsct_ct_view_orig(view, &t);
    if (rc != IPVSCT_OK || memcmp(&t, &e.orig, sizeof t) != 0)
        MISMATCH(c, "orig: %s, differs from the struct's", ipvsct_result_name(rc));
    rc = ipvsct_ct_view_reply(view, &t);
    if (rc != IPVSCT_OK || memcmp(&t, &e.reply, sizeof t) != 0)
        MISMATCH(c, "reply: %s, differs from the struct's", ipvsct_result_name(rc));
    memset(&t, 0x33, sizeof t);
    rc = ipvsct_ct_view_master(view, &t);
    if (e.fields & IPVSCT_CT_ENTRY_HAS_MASTER) {
        c->master++;
        if (rc != IPVSCT_OK || memcmp(&t, &e.master, sizeof t) != 0)
            MISMATCH(c, "master: %s, differs from the struct's", ipvsct_result_name(rc));
    } else if (rc != IPVSCT_ABSENT) {
        MISMATCH(c, "master: %s without one", ipvsct_result_name(rc));
    }

    uint8_t b = 0xee, kind = 0xee, state = 0xee;
    rc = ipvsct_ct_view_proto(view, &b);
    if (rc != IPVSCT_OK || b != e.orig.proto)
        MISMATCH(c, "proto: %s %u, struct %u", ipvsct_result_name(rc), b, e.orig.proto);
    c->tcp += b == 6;
    rc = ipvsct_ct_view_family(view, &b);
    if (rc != IPVSCT_OK || b != e.family)
        MISMATCH(c, "family: %s %u, struct %u", ipvsct_result_name(rc), b, e.family);
    rc = ipvsct_ct_view_state(view, &kind, &state);
    if (rc != IPVSCT_OK || kind != e.state_kind || state != e.state)
        MISMATCH(c, "state: %s %u/%u, struct %u/%u", ipvsct_result_name(rc), kind, state,
                 e.state_kind, e.state);

    uint32_t v = 0xdeadbeef;
    rc = ipvsct_ct_view_status(view, &v);
    /* The struct holds 0 for an absent status. */
    if (rc == IPVSCT_ABSENT ? e.status != 0 : rc != IPVSCT_OK || v != e.status)
        MISMATCH(c, "status: %s %#x, struct %#x", ipvsct_result_name(rc), v, e.status);
    v = 0xdeadbeef;
    rc = ipvsct_ct_view_timeout(view, &v);
    check_u32(c, "timeout", rc, v, !!(e.fields & IPVSCT_CT_ENTRY_HAS_TIMEOUT), e.timeout);
    if (!(e.fields & IPVSCT_CT_ENTRY_HAS_TIMEOUT) && e.timeout != IPVSCT_TIMEOUT_UNSET)
        MISMATCH(c, "struct timeout %u without its bit", e.timeout);
    v = 0xdeadbeef;
    rc = ipvsct_ct_view_state_timeout(view, &v);
    c->state_timeouts += rc == IPVSCT_OK;
    check_u32(c, "state_timeout", rc, v, !!(e.fields & IPVSCT_CT_ENTRY_HAS_STATE_TIMEOUT),
              e.state_timeout);
    check_u32(c, "state_timeout (read first)", rc_first, st_first,
              !!(e.fields & IPVSCT_CT_ENTRY_HAS_STATE_TIMEOUT), e.state_timeout);
    v = 0xdeadbeef;
    rc = ipvsct_ct_view_mark(view, &v);
    c->marks += rc == IPVSCT_OK && v != 0;
    check_u32(c, "mark", rc, v, !!(e.fields & IPVSCT_CT_ENTRY_HAS_MARK), e.mark);
    v = 0xdeadbeef;
    rc = ipvsct_ct_view_use_count(view, &v);
    check_u32(c, "use_count", rc, v, !!(e.fields & IPVSCT_CT_ENTRY_HAS_USE), e.use_count);
    v = 0xdeadbeef;
    rc = ipvsct_ct_view_id(view, &v);
    check_u32(c, "id", rc, v, !!(e.fields & IPVSCT_CT_ENTRY_HAS_ID), e.id);
    uint16_t z = 0xbeef;
    rc = ipvsct_ct_view_zone(view, &z);
    if (e.fields & IPVSCT_CT_ENTRY_HAS_ZONE ? rc != IPVSCT_OK || z != e.zone
                                            : rc != IPVSCT_ABSENT || z != 0xbeef)
        MISMATCH(c, "zone: %s %u, struct %u", ipvsct_result_name(rc), z, e.zone);

    /* A NULL output is refused inside the callback too. */
    rc = ipvsct_ct_view_timeout(view, NULL);
    if (rc != IPVSCT_ERR_NULL_ARGUMENT)
        MISMATCH(c, "timeout(view, NULL): %s", ipvsct_result_name(rc));

    /* The struct the view fills = the struct the struct dump passed (layouts have no
     * padding: every byte is a documented field). */
    const ipvsct_ct_entry *s = find(c, &e);
    if (!s) {
        MISMATCH(c, "id %u is not in the struct dump", e.id);
    } else {
        ipvsct_ct_entry a = *s, b2 = e;
        /* `timeout` moves by at most the seconds since the struct dump started (+1 for
         * the kernel's rounding). */
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        uint32_t tick = (uint32_t)(now.tv_sec - c->start.tv_sec) + 2;
        uint32_t d = a.timeout > b2.timeout ? a.timeout - b2.timeout : b2.timeout - a.timeout;
        if (a.timeout != IPVSCT_TIMEOUT_UNSET && b2.timeout != IPVSCT_TIMEOUT_UNSET && d <= tick)
            a.timeout = b2.timeout;
        if (memcmp(&a, &b2, sizeof a) != 0) {
            size_t off = 0;
            while (((const unsigned char *)&a)[off] == ((const unsigned char *)&b2)[off])
                off++;
            MISMATCH(c, "ipvsct_ct_view_entry differs from the struct dump's entry (id %u) "
                     "from byte %zu (timeout %u vs %u)", e.id, off, s->timeout, e.timeout);
        }
    }
    c->i++;
    return 0;
}

struct stop_ctx {
    int calls, stop_at;
};

static int stop_cb(const ipvsct_ct_view *view, void *user)
{
    struct stop_ctx *s = (struct stop_ctx *)user;
    uint32_t id;
    (void)ipvsct_ct_view_id(view, &id);
    return ++s->calls == s->stop_at;
}

struct busy_ctx {
    const ipvsct_conntrack *ct;
    int32_t rc;
    int calls;
};

static int busy_cb(const ipvsct_ct_view *view, void *user)
{
    (void)view;
    struct busy_ctx *b = (struct busy_ctx *)user;
    ipvsct_ct_global_stats g;
    if (b->calls++ == 0)
        b->rc = ipvsct_conntrack_count(b->ct, &g);
    return 0;
}

static int count_cb(const ipvsct_ct_view *view, void *user)
{
    uint8_t family = 0;
    if (ipvsct_ct_view_family(view, &family) == IPVSCT_OK && family == AF_INET)
        ++*(uint64_t *)user;
    return 0;
}

static int struct_count_cb(const ipvsct_ct_entry *e, void *user)
{
    (void)e;
    ++*(uint64_t *)user;
    return 0;
}

int main(int argc, char **argv)
{
    const char *netns = NULL;
    unsigned long min = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--netns") == 0)
            netns = argv[i + 1];
        else if (strcmp(argv[i], "--min") == 0)
            min = strtoul(argv[i + 1], NULL, 10);
    }
    if (!netns) {
        fprintf(stderr, "usage: test_view --netns NAME [--min N]\n");
        return 2;
    }
    ipvsct_conntrack *ct = NULL;
    CHECK_RC(ipvsct_conntrack_open(netns, &ct), IPVSCT_OK);
    if (!ct)
        return finish("test_view");
    CHECK_RC(ipvsct_conntrack_set_recv_timeout(ct, 10000), IPVSCT_OK);

    /* Both APIs over the same table. */
    struct table structs = {0};
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t n_struct = 0, n_view = 0;
    CHECK_RC(ipvsct_conntrack_dump(ct, NULL, collect_cb, &structs, &n_struct), IPVSCT_OK);
    CHECK(n_struct == structs.n && n_struct >= min, "struct dump: %llu entries (%zu kept), "
          "expected at least %lu", (unsigned long long)n_struct, structs.n, min);
    struct compare c = {.structs = &structs, .start = t0};
    CHECK_RC(ipvsct_conntrack_dump_view(ct, NULL, compare_cb, &c, &n_view), IPVSCT_OK);
    CHECK(n_view == n_struct && c.i == n_view, "view dump: %llu entries (%zu seen), struct "
          "dump %llu", (unsigned long long)n_view, c.i, (unsigned long long)n_struct);
    CHECK(c.mismatches == 0, "%zu accessor/struct mismatches", c.mismatches);
    CHECK(c.by_id <= n_view / 100 + 1, "%zu of %llu entries not at the same position",
          c.by_id, (unsigned long long)n_view);
    CHECK(c.state_timeouts == n_view, "%zu of %llu entries with a state timeout",
          c.state_timeouts, (unsigned long long)n_view);
    printf("test_view: %llu entries compared (%zu TCP, %zu with a mark, %zu with a master, "
           "%zu matched by id)\n", (unsigned long long)n_view, c.tcp, c.marks, c.master,
           c.by_id);

    /* Early stop: IPVSCT_STOPPED and the count of callbacks; the handle is usable after. */
    if (n_struct >= 3) {
        struct stop_ctx s = {0, 3};
        uint64_t n = 0;
        CHECK_RC(ipvsct_conntrack_dump_view(ct, NULL, stop_cb, &s, &n), IPVSCT_STOPPED);
        CHECK(n == 3 && s.calls == 3, "stopped after %llu (%d calls), expected 3",
              (unsigned long long)n, s.calls);
        s.calls = 0;
        s.stop_at = 1;
        CHECK_RC(ipvsct_conntrack_dump_view(ct, NULL, stop_cb, &s, NULL), IPVSCT_STOPPED);
        CHECK(s.calls == 1, "%d calls, expected 1", s.calls);
    }
    n_view = 0;
    CHECK_RC(ipvsct_conntrack_dump_view(ct, NULL, stop_cb, &(struct stop_ctx){0, -1}, &n_view),
             IPVSCT_OK);
    CHECK(n_view == n_struct, "after the stops: %llu entries, expected %llu",
          (unsigned long long)n_view, (unsigned long long)n_struct);

    /* A call on the same handle from the callback: IPVSCT_ERR_BUSY. */
    struct busy_ctx b = {ct, IPVSCT_OK, 0};
    CHECK_RC(ipvsct_conntrack_dump_view(ct, NULL, busy_cb, &b, NULL), IPVSCT_OK);
    CHECK(b.calls > 0 && b.rc == IPVSCT_ERR_BUSY, "count from the callback: %s",
          ipvsct_result_name(b.rc));

    /* A family filter: the same entries through both APIs, all AF_INET. */
    ipvsct_dump_filter f;
    memset(&f, 0, sizeof f);
    f.fields = IPVSCT_DUMP_FILTER_HAS_FAMILY;
    f.family = AF_INET;
    uint64_t inet_views = 0, inet_structs = 0, n_f = 0, n_fs = 0;
    CHECK_RC(ipvsct_conntrack_dump_view(ct, &f, count_cb, &inet_views, &n_f), IPVSCT_OK);
    CHECK_RC(ipvsct_conntrack_dump(ct, &f, struct_count_cb, &inet_structs, &n_fs), IPVSCT_OK);
    CHECK(n_f == inet_views && n_f == n_fs && n_fs == inet_structs,
          "AF_INET filter: %llu views (%llu AF_INET), %llu structs",
          (unsigned long long)n_f, (unsigned long long)inet_views, (unsigned long long)n_fs);

    /* NULL arguments. */
    uint64_t untouched = 12345;
    CHECK_RC(ipvsct_conntrack_dump_view(NULL, NULL, count_cb, NULL, &untouched),
             IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_conntrack_dump_view(ct, NULL, NULL, NULL, &untouched),
             IPVSCT_ERR_NULL_ARGUMENT);
    CHECK(untouched == 12345, "count_out written on failure");
    uint32_t v = 7;
    ipvsct_ct_entry e;
    CHECK_RC(ipvsct_ct_view_timeout(NULL, &v), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_ct_view_entry(NULL, &e), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK(v == 7, "output written on failure");
    CHECK(strcmp(ipvsct_result_name(IPVSCT_ABSENT), "IPVSCT_ABSENT") == 0, "name: %s",
          ipvsct_result_name(IPVSCT_ABSENT));

    free(structs.v);
    ipvsct_conntrack_free(ct);
    return finish("test_view");
}
