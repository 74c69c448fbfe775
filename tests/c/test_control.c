/* The C control calls against the real kernel, run by tests/c/run.sh inside a network
 * namespace of its own (ip netns exec NS test_control ...): conntrack create / update /
 * delete (by tuple, by id) / flush (all, family, mark, tuple filter), zeroing counters of
 * real traffic, batches (10 000 creates with per-item results, mixed failures, deletes),
 * and timeout policies compared with `nfct timeout list`. What the C API reads back is also
 * compared with what the Rust API sees (ffi/examples/ct_snapshot.rs).
 *
 * Usage: test_control --netns NAME --snapshot-bin PATH [--batch N] */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "check.h"
#include "ct_format.h"

static const char *g_netns, *g_snapshot_bin;
static long g_batch = 10000;
static const ipvsct_conntrack *g_ct_for_policies;

static ipvsct_tuple tuple(int v6, uint8_t proto, const char *src, uint16_t sport,
                          const char *dst, uint16_t dport)
{
    ipvsct_tuple t;
    memset(&t, 0, sizeof t);
    t.fields = IPVSCT_TUPLE_HAS_SRC | IPVSCT_TUPLE_HAS_DST | IPVSCT_TUPLE_HAS_PROTO |
               IPVSCT_TUPLE_HAS_SRC_PORT | IPVSCT_TUPLE_HAS_DST_PORT;
    t.src.family = t.dst.family = v6 ? IPVSCT_AF_INET6 : IPVSCT_AF_INET;
    inet_pton(v6 ? AF_INET6 : AF_INET, src, t.src.addr);
    inet_pton(v6 ? AF_INET6 : AF_INET, dst, t.dst.addr);
    t.proto = proto;
    t.src_port = sport;
    t.dst_port = dport;
    return t;
}

static ipvsct_ct_request create_req(ipvsct_tuple orig, uint32_t timeout)
{
    ipvsct_ct_request r;
    memset(&r, 0, sizeof r);
    r.orig = orig;
    r.fields = IPVSCT_CT_REQUEST_HAS_TIMEOUT;
    r.timeout = timeout;
    return r;
}

static uint32_t count_entries(const ipvsct_conntrack *ct)
{
    ipvsct_ct_global_stats g;
    memset(&g, 0, sizeof g);
    CHECK_RC(ipvsct_conntrack_count(ct, &g), IPVSCT_OK);
    return g.entries;
}

static int count_cb(const ipvsct_ct_entry *e, void *user)
{
    (void)e;
    (*(uint64_t *)user)++;
    return 0;
}

/* Entries matching `f`, counted through a dump. */
static uint64_t dump_count(const ipvsct_conntrack *ct, const ipvsct_dump_filter *f)
{
    uint64_t n = 0, reported = 0;
    CHECK_RC(ipvsct_conntrack_dump(ct, f, count_cb, &n, &reported), IPVSCT_OK);
    CHECK(n == reported, "dump: %llu entries seen, %llu reported", (unsigned long long)n,
          (unsigned long long)reported);
    return n;
}

/* Entry ids in dump order. */
struct ids {
    uint32_t *id;
    size_t n, cap;
};

static int ids_cb(const ipvsct_ct_entry *e, void *user)
{
    struct ids *v = user;
    if (v->n < v->cap)
        v->id[v->n] = e->id;
    v->n++;
    return 0;
}

/* The dump reader thread changes nothing a callback sees: with it off and on, a dump of
 * the whole table (many datagrams) gives the same entries in the same order. */
static void check_dump_reader(const ipvsct_conntrack *ct, size_t n)
{
    struct ids off = {calloc(n, sizeof(uint32_t)), 0, n}, on = {calloc(n, sizeof(uint32_t)), 0, n};
    CHECK(off.id && on.id, "calloc");
    ipvsct_conntrack *mut = (ipvsct_conntrack *)ct;
    ipvsct_dump_reader_report rr;
    CHECK_RC(ipvsct_conntrack_set_dump_reader(NULL, 1), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_conntrack_dump_reader_report(ct, NULL), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_conntrack_set_dump_reader(mut, 0), IPVSCT_OK);
    CHECK_RC(ipvsct_conntrack_dump(ct, NULL, ids_cb, &off, NULL), IPVSCT_OK);
    ipvsct_conntrack *fresh = NULL;
    CHECK_RC(ipvsct_conntrack_new(&fresh), IPVSCT_OK);
    CHECK_RC(ipvsct_conntrack_dump_reader_report(fresh, &rr), IPVSCT_ABSENT);
    ipvsct_conntrack_free(fresh);
    CHECK_RC(ipvsct_conntrack_set_dump_reader(mut, 1), IPVSCT_OK);
    CHECK_RC(ipvsct_conntrack_dump(ct, NULL, ids_cb, &on, NULL), IPVSCT_OK);
    /* The thread took over after two datagrams of the answer (32 KiB: 100-200 entries each). */
    memset(&rr, 0xff, sizeof rr);
    CHECK_RC(ipvsct_conntrack_dump_reader_report(ct, &rr), IPVSCT_OK);
    CHECK(rr.datagrams >= n / 200 && rr.datagrams <= n / 50, "reader report: %llu datagrams for %zu entries",
          (unsigned long long)rr.datagrams, n);
    CHECK(rr.queued_at_end >= 1 && rr.queued_at_end <= 8 && rr.reserved == 0,
          "reader report: %u queued at the end", rr.queued_at_end);
    CHECK(rr.reader_waited_ns < 1000000000ull && rr.caller_behind_at_end_ns < 1000000000ull,
          "reader report: waits under a second");
    CHECK(off.n == n && on.n == n, "dump reader off/on: %zu and %zu of %zu entries", off.n,
          on.n, n);
    CHECK(memcmp(off.id, on.id, n * sizeof(uint32_t)) == 0,
          "dump reader off/on: the same entries in the same order");
    free(off.id);
    free(on.id);
}

static ipvsct_dump_filter mark_filter(uint32_t mark, uint32_t mask)
{
    ipvsct_dump_filter f;
    memset(&f, 0, sizeof f);
    f.fields = IPVSCT_DUMP_FILTER_HAS_MARK;
    f.mark = mark;
    f.mark_mask = mask;
    return f;
}

static int collect_cb(const ipvsct_ct_entry *e, void *user)
{
    char line[LINE_LEN];
    fmt_entry(line, sizeof line, e);
    lines_add((struct lines *)user, line);
    return 0;
}

/* The Rust API's view of this namespace, as entry lines. */
static void rust_snapshot(struct lines *out)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s", g_snapshot_bin);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL, "cannot run %s", g_snapshot_bin);
    if (!p)
        return;
    char line[LINE_LEN];
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = 0;
        if (!strncmp(line, "entry ", 6))
            lines_add(out, line);
    }
    CHECK(pclose(p) == 0, "%s failed", g_snapshot_bin);
}

/* ---- create, get, update, delete ---- */

static void test_single_writes(const ipvsct_conntrack *ct, const ipvsct_ct_timeouts *t)
{
    CHECK_RC(ipvsct_conntrack_flush(ct, NULL), IPVSCT_OK);
    CHECK(count_entries(ct) == 0, "flush left %u entries", count_entries(ct));

    /* A TCP entry in ESTABLISHED with mark, status and a helper-less reply. */
    ipvsct_ct_request r = create_req(tuple(0, 6, "10.1.0.1", 1000, "10.1.0.2", 80), 300);
    r.fields |= IPVSCT_CT_REQUEST_HAS_MARK | IPVSCT_CT_REQUEST_HAS_STATUS |
                IPVSCT_CT_REQUEST_HAS_TCP_STATE;
    r.mark = 7;
    r.status = 0x6; /* SEEN_REPLY | ASSURED */
    r.tcp_state = 3; /* ESTABLISHED */
    CHECK_RC(ipvsct_conntrack_create(ct, &r), IPVSCT_OK);
    ipvsct_ct_entry e;
    memset(&e, 0, sizeof e);
    CHECK_RC(ipvsct_conntrack_get(ct, &r.orig, &e), IPVSCT_OK);
    CHECK(e.mark == 7 && (e.fields & IPVSCT_CT_ENTRY_HAS_MARK), "mark %u", e.mark);
    CHECK((e.status & 0xe) == 0xe, "status 0x%x lacks SEEN_REPLY|ASSURED|CONFIRMED", e.status);
    CHECK(e.state_kind == IPVSCT_STATE_KIND_TCP && e.state == 3 &&
              !strcmp(e.state_name, "ESTABLISHED"),
          "state %u/%u %s", e.state_kind, e.state, e.state_name);
    CHECK(e.state_timeout == t->tcp.established, "state_timeout %u, ESTABLISHED policy %u",
          e.state_timeout, t->tcp.established);
    CHECK(e.timeout <= 300 && e.timeout >= 290, "timeout %u of 300", e.timeout);
    CHECK(e.reply.src_port == 80 && e.reply.dst_port == 1000 && e.reply.src.addr[3] == 2,
          "reply %u -> %u", e.reply.src_port, e.reply.dst_port);
    uint32_t tcp_id = e.id;

    /* The same tuple again: EEXIST, with errno in the last error. */
    CHECK_RC(ipvsct_conntrack_create(ct, &r), IPVSCT_ERR_KERNEL);
    ipvsct_error err;
    CHECK_RC(ipvsct_error_last(&err), IPVSCT_OK);
    CHECK(err.errno_value == EEXIST && (err.fields & IPVSCT_ERROR_HAS_ERRNO) &&
              strstr(err.message, "conntrack create"),
          "duplicate create: errno %d '%s'", err.errno_value, err.message);

    /* A request the library refuses before sending: a timeout is required. */
    ipvsct_ct_request bad = r;
    bad.fields &= ~IPVSCT_CT_REQUEST_HAS_TIMEOUT;
    CHECK_RC(ipvsct_conntrack_create(ct, &bad), IPVSCT_ERR_INVALID_ARGUMENT);
    bad = r;
    bad.fields |= IPVSCT_CT_REQUEST_HAS_ID; /* only for deletes */
    CHECK_RC(ipvsct_conntrack_create(ct, &bad), IPVSCT_ERR_INVALID_ARGUMENT);

    /* Update: a masked mark change and a new timeout. */
    ipvsct_ct_request u;
    memset(&u, 0, sizeof u);
    u.orig = r.orig;
    u.fields = IPVSCT_CT_REQUEST_HAS_MARK | IPVSCT_CT_REQUEST_HAS_MARK_MASK |
               IPVSCT_CT_REQUEST_HAS_TIMEOUT;
    u.mark = 0x100;
    u.mark_mask = 0xf00; /* keeps the low bits: 7 | 0x100 */
    u.timeout = 600;
    CHECK_RC(ipvsct_conntrack_update(ct, &u), IPVSCT_OK);
    CHECK_RC(ipvsct_conntrack_get(ct, &r.orig, &e), IPVSCT_OK);
    CHECK(e.mark == 0x107 && e.timeout > 590 && e.timeout <= 600 && e.id == tcp_id,
          "after update: mark 0x%x timeout %u id %u/%u", e.mark, e.timeout, e.id, tcp_id);
    ipvsct_ct_request missing = u;
    missing.orig = tuple(0, 6, "10.1.0.1", 1001, "10.1.0.2", 80);
    CHECK_RC(ipvsct_conntrack_update(ct, &missing), IPVSCT_ERR_NOT_FOUND);

    /* UDP, ICMP and a zoned entry. */
    ipvsct_ct_request udp = create_req(tuple(0, 17, "10.1.0.3", 5000, "10.1.0.4", 53), 100);
    CHECK_RC(ipvsct_conntrack_create(ct, &udp), IPVSCT_OK);
    ipvsct_ct_request icmp = create_req(tuple(0, 1, "10.1.0.5", 0, "10.1.0.6", 0), 30);
    icmp.orig.fields = IPVSCT_TUPLE_HAS_SRC | IPVSCT_TUPLE_HAS_DST | IPVSCT_TUPLE_HAS_PROTO |
                       IPVSCT_TUPLE_HAS_ICMP_TYPE | IPVSCT_TUPLE_HAS_ICMP_CODE |
                       IPVSCT_TUPLE_HAS_ICMP_ID;
    icmp.orig.icmp_type = 8;
    icmp.orig.icmp_id = 4242;
    icmp.fields |= IPVSCT_CT_REQUEST_HAS_REPLY;
    icmp.reply = icmp.orig;
    icmp.reply.src = icmp.orig.dst;
    icmp.reply.dst = icmp.orig.src;
    icmp.reply.icmp_type = 0; /* echo reply */
    CHECK_RC(ipvsct_conntrack_create(ct, &icmp), IPVSCT_OK);
    ipvsct_ct_request zoned = create_req(tuple(0, 17, "10.1.0.3", 5000, "10.1.0.4", 53), 100);
    zoned.fields |= IPVSCT_CT_REQUEST_HAS_ZONE;
    zoned.zone = 5;
    CHECK_RC(ipvsct_conntrack_create(ct, &zoned), IPVSCT_OK);
    CHECK(count_entries(ct) == 4, "%u entries after 4 creates", count_entries(ct));
    ipvsct_dump_filter zf;
    memset(&zf, 0, sizeof zf);
    zf.fields = IPVSCT_DUMP_FILTER_HAS_ZONE;
    zf.zone = 5;
    CHECK(dump_count(ct, &zf) == 1, "zone 5 holds not exactly the zoned entry");

    /* The C dump equals the Rust API's view of the same table. */
    struct lines c_lines = {0}, rust_lines = {0};
    uint64_t n = 0;
    CHECK_RC(ipvsct_conntrack_dump(ct, NULL, collect_cb, &c_lines, &n), IPVSCT_OK);
    rust_snapshot(&rust_lines);
    compare_entries("C dump vs Rust after creates", &rust_lines, &c_lines, 5);
    lines_free(&c_lines);
    lines_free(&rust_lines);

    /* Delete by tuple (only the zone-0 UDP entry), then by reply tuple, then by id. */
    ipvsct_ct_request d;
    memset(&d, 0, sizeof d);
    d.orig = udp.orig;
    CHECK_RC(ipvsct_conntrack_delete(ct, &d), IPVSCT_OK);
    CHECK_RC(ipvsct_conntrack_get(ct, &udp.orig, &e), IPVSCT_ERR_NOT_FOUND);
    CHECK(dump_count(ct, &zf) == 1, "the zoned entry went with the other one");
    d.fields = IPVSCT_CT_REQUEST_HAS_ZONE;
    d.zone = 5;
    d.direction = IPVSCT_DIR_REPLY;
    d.orig = tuple(0, 17, "10.1.0.4", 53, "10.1.0.3", 5000);
    CHECK_RC(ipvsct_conntrack_delete(ct, &d), IPVSCT_OK);
    CHECK(dump_count(ct, &zf) == 0, "zoned entry not deleted by its reply tuple");
    memset(&d, 0, sizeof d);
    d.orig = r.orig;
    d.fields = IPVSCT_CT_REQUEST_HAS_ID;
    d.id = tcp_id + 1; /* another id: nothing deleted */
    CHECK_RC(ipvsct_conntrack_delete(ct, &d), IPVSCT_ERR_NOT_FOUND);
    CHECK_RC(ipvsct_conntrack_get(ct, &icmp.orig, &e), IPVSCT_OK);
    uint32_t icmp_id = e.id;
    ipvsct_ct_entry deleted;
    memset(&deleted, 0, sizeof deleted);
    CHECK_RC(ipvsct_conntrack_delete_by_id(ct, icmp_id, &deleted), IPVSCT_OK);
    CHECK(deleted.id == icmp_id && deleted.orig.icmp_id == 4242 && deleted.orig.proto == 1,
          "delete_by_id gave id %u icmp id %u", deleted.id, deleted.orig.icmp_id);
    CHECK_RC(ipvsct_conntrack_delete_by_id(ct, icmp_id, NULL), IPVSCT_ERR_NOT_FOUND);
    d.id = tcp_id;
    CHECK_RC(ipvsct_conntrack_delete(ct, &d), IPVSCT_OK);
    CHECK(count_entries(ct) == 0, "%u entries left after deleting all", count_entries(ct));
}

/* ---- flush: mark filter, family, tuple filter, all ---- */

static void test_flush(const ipvsct_conntrack *ct)
{
    CHECK_RC(ipvsct_conntrack_flush(ct, NULL), IPVSCT_OK);
    for (int i = 0; i < 5; i++) {
        char src[32];
        snprintf(src, sizeof src, "10.4.0.%d", i + 1);
        ipvsct_ct_request r = create_req(tuple(0, 17, src, 2000, "10.4.1.1", 53), 200);
        r.fields |= IPVSCT_CT_REQUEST_HAS_MARK;
        r.mark = i < 3 ? 0x1010 : 0x1020;
        CHECK_RC(ipvsct_conntrack_create(ct, &r), IPVSCT_OK);
    }
    for (int i = 0; i < 2; i++) {
        char src[64];
        snprintf(src, sizeof src, "fd00::%d", i + 1);
        ipvsct_ct_request r = create_req(tuple(1, 6, src, 3000, "fd00::99", 443), 200);
        CHECK_RC(ipvsct_conntrack_create(ct, &r), IPVSCT_OK);
    }
    CHECK(count_entries(ct) == 7, "%u entries, created 7", count_entries(ct));
    ipvsct_dump_filter f = mark_filter(0x10, 0xff);
    CHECK(dump_count(ct, &f) == 3, "3 entries carry mark 0x10/0xff");
    CHECK_RC(ipvsct_conntrack_flush(ct, &f), IPVSCT_OK);
    CHECK(count_entries(ct) == 4 && dump_count(ct, &f) == 0,
          "mark flush: %u entries left, expected 4", count_entries(ct));
    ipvsct_dump_filter m20 = mark_filter(0x1020, 0xffffffffu);
    CHECK(dump_count(ct, &m20) == 2, "the other marked entries survived");

    memset(&f, 0, sizeof f);
    f.fields = IPVSCT_DUMP_FILTER_HAS_FAMILY;
    f.family = IPVSCT_AF_INET6;
    CHECK(dump_count(ct, &f) == 2, "2 IPv6 entries");
    CHECK_RC(ipvsct_conntrack_flush(ct, &f), IPVSCT_OK);
    CHECK(count_entries(ct) == 2 && dump_count(ct, &f) == 0,
          "family flush: %u entries left, expected the 2 IPv4 ones", count_entries(ct));

    /* Tuple filter (needs a family): one source address. */
    memset(&f, 0, sizeof f);
    f.fields = IPVSCT_DUMP_FILTER_HAS_FAMILY;
    f.family = IPVSCT_AF_INET;
    f.orig.fields = IPVSCT_TUPLE_HAS_SRC;
    f.orig.src.family = IPVSCT_AF_INET;
    inet_pton(AF_INET, "10.4.0.4", f.orig.src.addr);
    CHECK(dump_count(ct, &f) == 1, "one entry from 10.4.0.4");
    CHECK_RC(ipvsct_conntrack_flush(ct, &f), IPVSCT_OK);
    CHECK(count_entries(ct) == 1, "tuple flush: %u entries left, expected 1", count_entries(ct));

    /* Filters a flush cannot take. */
    f.table = IPVSCT_TABLE_DYING;
    CHECK_RC(ipvsct_conntrack_flush(ct, &f), IPVSCT_ERR_INVALID_ARGUMENT);
    memset(&f, 0, sizeof f);
    f.fields = IPVSCT_DUMP_FILTER_USER_SPACE_ONLY;
    CHECK_RC(ipvsct_conntrack_flush(ct, &f), IPVSCT_ERR_INVALID_ARGUMENT);
    CHECK(count_entries(ct) == 1, "a refused flush deleted entries");
    CHECK_RC(ipvsct_conntrack_flush(ct, NULL), IPVSCT_OK);
    CHECK(count_entries(ct) == 0, "flush all left %u", count_entries(ct));
}

/* ---- zeroing the counters of real traffic ---- */

struct zero_seen {
    int n;
    uint64_t packets, bytes;
    uint16_t dport;
};

static int zero_cb(const ipvsct_ct_entry *e, void *user)
{
    struct zero_seen *z = (struct zero_seen *)user;
    z->n++;
    z->packets = e->counters_orig.packets;
    z->bytes = e->counters_orig.bytes;
    z->dport = e->orig.dst_port;
    return 0;
}

static void test_zero_counters(const ipvsct_conntrack *ct)
{
    const uint16_t port = 17777;
    int srv = socket(AF_INET, SOCK_DGRAM, 0), cli = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(srv >= 0 && cli >= 0, "socket: %s", strerror(errno));
    struct timeval tv = {5, 0};
    setsockopt(srv, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    CHECK(bind(srv, (struct sockaddr *)&a, sizeof a) == 0, "bind: %s", strerror(errno));
    char buf[100];
    memset(buf, 'z', sizeof buf);
    for (int i = 0; i < 3; i++) {
        CHECK(sendto(cli, buf, sizeof buf, 0, (struct sockaddr *)&a, sizeof a) == 100,
              "sendto: %s", strerror(errno));
        CHECK(recv(srv, buf, sizeof buf, 0) == 100, "recv: %s", strerror(errno));
    }
    close(cli);
    close(srv);

    ipvsct_dump_filter f;
    memset(&f, 0, sizeof f);
    f.fields = IPVSCT_DUMP_FILTER_HAS_FAMILY;
    f.family = IPVSCT_AF_INET;
    f.orig.fields = IPVSCT_TUPLE_HAS_PROTO | IPVSCT_TUPLE_HAS_DST_PORT;
    f.orig.proto = 17;
    f.orig.dst_port = port;
    struct zero_seen z = {0, 0, 0, 0};
    uint64_t zeroed = 0;
    CHECK_RC(ipvsct_conntrack_zero_counters(ct, &f, zero_cb, &z, &zeroed), IPVSCT_OK);
    CHECK(z.n == 1 && zeroed == 1 && z.dport == port, "zeroing saw %d entries (%llu zeroed)",
          z.n, (unsigned long long)zeroed);
    CHECK(z.packets == 3 && z.bytes == 3 * (100 + 28), "before zeroing: %llu packets %llu bytes",
          (unsigned long long)z.packets, (unsigned long long)z.bytes);
    z.n = 0;
    CHECK_RC(ipvsct_conntrack_zero_counters(ct, &f, zero_cb, &z, &zeroed), IPVSCT_OK);
    CHECK(z.n == 1 && z.packets == 0 && z.bytes == 0, "after zeroing: %llu packets",
          (unsigned long long)z.packets);
    CHECK_RC(ipvsct_conntrack_flush(ct, NULL), IPVSCT_OK);
}

/* ---- batches ---- */

static void batch_tuple(long i, ipvsct_tuple *t)
{
    char src[32];
    snprintf(src, sizeof src, "10.2.%ld.%ld", i / 250, i % 250 + 1);
    *t = tuple(0, 17, src, (uint16_t)(10000 + i % 50000), "10.3.0.1", 53);
}

static void test_batch(const ipvsct_conntrack *ct)
{
    CHECK_RC(ipvsct_conntrack_flush(ct, NULL), IPVSCT_OK);
    size_t n = (size_t)g_batch;
    ipvsct_ct_request *reqs = calloc(n + 12, sizeof *reqs);
    ipvsct_batch_result *res = calloc(n + 12, sizeof *res);
    CHECK(reqs && res, "out of memory");
    if (!reqs || !res) {
        free(reqs);
        free(res);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        batch_tuple((long)i, &reqs[i].orig);
        reqs[i].fields = IPVSCT_CT_REQUEST_HAS_TIMEOUT | IPVSCT_CT_REQUEST_HAS_MARK;
        reqs[i].timeout = 600;
        reqs[i].mark = 0xb0;
    }
    ipvsct_batch_report rep;
    memset(&rep, 0, sizeof rep);
    for (size_t i = 0; i < n; i++)
        res[i].code = 12345;
    CHECK_RC(ipvsct_conntrack_batch(ct, IPVSCT_BATCH_CREATE, reqs, n, res, n, &rep), IPVSCT_OK);
    size_t ok = 0;
    for (size_t i = 0; i < n; i++)
        ok += res[i].code == IPVSCT_OK && res[i].errno_value == 0;
    CHECK(ok == n, "%zu of %zu batch creates succeeded", ok, n);
    CHECK(rep.requests == n && rep.succeeded == n && rep.failed == 0 && rep.invalid == 0 &&
              rep.lost == 0 && rep.datagrams >= 1 && rep.elapsed_ns > 0,
          "report: %llu requests %llu ok %llu failed %llu lost %llu datagrams",
          (unsigned long long)rep.requests, (unsigned long long)rep.succeeded,
          (unsigned long long)rep.failed, (unsigned long long)rep.lost,
          (unsigned long long)rep.datagrams);
    CHECK(count_entries(ct) == n, "%u entries after %zu batch creates", count_entries(ct), n);
    ipvsct_dump_filter mf = mark_filter(0xb0, 0xffffffffu);
    CHECK(dump_count(ct, &mf) == n, "the batch entries carry mark 0xb0");
    check_dump_reader(ct, n);
    printf("test_control: %zu creates in %llu datagrams, %.1f ms\n", n,
           (unsigned long long)rep.datagrams, (double)rep.elapsed_ns / 1e6);

    /* Mixed: 10 duplicates, 1 invalid (UDP without ports), 1 new. */
    ipvsct_ct_request mixed[12];
    memcpy(mixed, reqs, 10 * sizeof *reqs);
    mixed[10] = reqs[0];
    mixed[10].orig.fields &= ~(IPVSCT_TUPLE_HAS_SRC_PORT | IPVSCT_TUPLE_HAS_DST_PORT);
    batch_tuple((long)n, &mixed[11].orig);
    mixed[11].fields = IPVSCT_CT_REQUEST_HAS_TIMEOUT;
    mixed[11].timeout = 600;
    ipvsct_batch_result mres[12];
    CHECK_RC(ipvsct_conntrack_batch(ct, IPVSCT_BATCH_CREATE, mixed, 12, mres, 12, &rep), IPVSCT_OK);
    int dup = 0;
    for (int i = 0; i < 10; i++)
        dup += mres[i].code == IPVSCT_ERR_KERNEL && mres[i].errno_value == EEXIST;
    CHECK(dup == 10, "%d of 10 duplicates refused with EEXIST", dup);
    CHECK(mres[10].code == IPVSCT_ERR_INVALID_ARGUMENT && mres[11].code == IPVSCT_OK,
          "invalid item %s, new item %s", ipvsct_result_name(mres[10].code),
          ipvsct_result_name(mres[11].code));
    CHECK(rep.requests == 12 && rep.succeeded == 1 && rep.failed == 10 && rep.invalid == 1,
          "mixed report: %llu ok %llu failed %llu invalid", (unsigned long long)rep.succeeded,
          (unsigned long long)rep.failed, (unsigned long long)rep.invalid);
    CHECK(strstr(last_msg(), "request 10") != NULL, "last error names the invalid request: %s",
          last_msg());
    CHECK(count_entries(ct) == n + 1, "%u entries after the mixed batch", count_entries(ct));

    /* Arguments the whole call refuses: nothing written. */
    mres[0].code = 777;
    CHECK_RC(ipvsct_conntrack_batch(ct, IPVSCT_BATCH_CREATE, mixed, 12, mres, 11, &rep),
             IPVSCT_ERR_BUFFER_TOO_SMALL);
    CHECK_RC(ipvsct_conntrack_batch(ct, 9, mixed, 12, mres, 12, &rep), IPVSCT_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipvsct_conntrack_batch(ct, IPVSCT_BATCH_CREATE, NULL, 12, mres, 12, &rep),
             IPVSCT_ERR_NULL_ARGUMENT);
    CHECK(mres[0].code == 777, "results written by a refused call");

    /* Delete the first 100 in a batch, then again: ENOENT each. */
    ipvsct_ct_request dels[100];
    for (int i = 0; i < 100; i++) {
        memset(&dels[i], 0, sizeof dels[i]);
        dels[i].orig = reqs[i].orig;
    }
    ipvsct_batch_result dres[100];
    CHECK_RC(ipvsct_conntrack_batch(ct, IPVSCT_BATCH_DELETE, dels, 100, dres, 100, &rep), IPVSCT_OK);
    CHECK(rep.succeeded == 100, "%llu of 100 batch deletes", (unsigned long long)rep.succeeded);
    CHECK_RC(ipvsct_conntrack_batch(ct, IPVSCT_BATCH_DELETE, dels, 100, dres, 100, &rep), IPVSCT_OK);
    int gone = 0;
    for (int i = 0; i < 100; i++)
        gone += dres[i].code == IPVSCT_ERR_NOT_FOUND && dres[i].errno_value == ENOENT;
    CHECK(gone == 100 && rep.failed == 100, "%d of 100 second deletes gave NOT_FOUND/ENOENT", gone);

    /* Update in a batch: a new mark on the next 50. */
    ipvsct_ct_request ups[50];
    for (int i = 0; i < 50; i++) {
        memset(&ups[i], 0, sizeof ups[i]);
        ups[i].orig = reqs[100 + i].orig;
        ups[i].fields = IPVSCT_CT_REQUEST_HAS_MARK;
        ups[i].mark = 0xc0;
    }
    ipvsct_batch_result ures[50];
    CHECK_RC(ipvsct_conntrack_batch(ct, IPVSCT_BATCH_UPDATE, ups, 50, ures, 50, &rep), IPVSCT_OK);
    ipvsct_dump_filter cf = mark_filter(0xc0, 0xffffffffu);
    CHECK(rep.succeeded == 50 && dump_count(ct, &cf) == 50, "batch update: %llu ok",
          (unsigned long long)rep.succeeded);

    /* Flush exactly the batch's destination (tuple filter). */
    ipvsct_dump_filter f;
    memset(&f, 0, sizeof f);
    f.fields = IPVSCT_DUMP_FILTER_HAS_FAMILY;
    f.family = IPVSCT_AF_INET;
    f.orig.fields = IPVSCT_TUPLE_HAS_DST;
    f.orig.dst.family = IPVSCT_AF_INET;
    inet_pton(AF_INET, "10.3.0.1", f.orig.dst.addr);
    CHECK(dump_count(ct, &f) == n + 1 - 100, "entries to 10.3.0.1 before the flush");
    CHECK_RC(ipvsct_conntrack_flush(ct, &f), IPVSCT_OK);
    CHECK(count_entries(ct) == 0, "%u entries after flushing the batch", count_entries(ct));
    free(reqs);
    free(res);
}

/* ---- timeout policies vs nfct ---- */

struct nfct_policy {
    char name[64];
    int l3, l4, nvalues;
    uint32_t values[16];
};

/* Parses `nfct timeout list` (".NAME = {", ".l3proto = N,", ".policy = {", ".X = V,"). */
static int nfct_list(struct nfct_policy *out, int max)
{
    FILE *p = popen("nfct timeout list 2>&1", "r");
    CHECK(p != NULL, "cannot run nfct");
    if (!p)
        return 0;
    char line[256];
    int n = -1, in_policy = 0;
    while (fgets(line, sizeof line, p)) {
        char key[64];
        unsigned v;
        if (line[0] == '.' && strstr(line, "= {") && n + 1 < max) {
            n++;
            memset(&out[n], 0, sizeof out[n]);
            sscanf(line, ".%63[^ ]", out[n].name);
            in_policy = 0;
        } else if (n >= 0 && sscanf(line, " .l3proto = %u", &v) == 1) {
            out[n].l3 = (int)v;
        } else if (n >= 0 && sscanf(line, " .l4proto = %u", &v) == 1) {
            out[n].l4 = (int)v;
        } else if (n >= 0 && strstr(line, ".policy = {")) {
            in_policy = 1;
        } else if (n >= 0 && in_policy && sscanf(line, " .%63[^ ] = %u", key, &v) == 2 &&
                   out[n].nvalues < 15) {
            out[n].values[++out[n].nvalues] = v;
        }
    }
    CHECK(pclose(p) == 0, "nfct timeout list failed");
    return n + 1;
}

struct policy_list {
    ipvsct_ct_timeout_policy v[16];
    int n;
};

static int policy_cb(const ipvsct_ct_timeout_policy *p, void *user)
{
    struct policy_list *l = (struct policy_list *)user;
    if (l->n < 16)
        l->v[l->n++] = *p;
    return 0;
}

static ipvsct_ct_timeout_policy policy(const char *name, uint8_t l4)
{
    ipvsct_ct_timeout_policy p;
    memset(&p, 0, sizeof p);
    for (int i = 0; i < IPVSCT_TIMEOUT_VALUES_LEN; i++)
        p.values[i] = IPVSCT_TIMEOUT_UNSET;
    snprintf(p.name, sizeof p.name, "%s", name);
    p.l3proto = IPVSCT_AF_INET;
    p.l4proto = l4;
    return p;
}

static void compare_with_nfct(const char *what)
{
    struct policy_list mine = {.n = 0};
    size_t n = 0;
    CHECK_RC(ipvsct_conntrack_policies(g_ct_for_policies, policy_cb, &mine, &n), IPVSCT_OK);
    struct nfct_policy theirs[16];
    int m = nfct_list(theirs, 16);
    CHECK((int)n == mine.n && m == mine.n, "%s: %d policies, nfct lists %d", what, mine.n, m);
    for (int i = 0; i < mine.n; i++) {
        const ipvsct_ct_timeout_policy *p = &mine.v[i];
        const struct nfct_policy *q = NULL;
        for (int j = 0; j < m; j++)
            if (!strcmp(theirs[j].name, p->name))
                q = &theirs[j];
        CHECK(q != NULL, "%s: policy %s not listed by nfct", what, p->name);
        if (!q)
            continue;
        CHECK(q->l3 == p->l3proto && q->l4 == p->l4proto, "%s: %s protocols %d/%d vs %u/%u",
              what, p->name, q->l3, q->l4, p->l3proto, p->l4proto);
        for (int k = 1; k <= q->nvalues; k++)
            CHECK(p->values[k] == q->values[k], "%s: %s value %d: %u, nfct %u", what, p->name, k,
                  p->values[k], q->values[k]);
        CHECK((p->fields & IPVSCT_TIMEOUT_POLICY_HAS_NAME) &&
                  (p->fields & IPVSCT_TIMEOUT_POLICY_HAS_USE),
              "%s: fields 0x%x", what, p->fields);
    }
}

static void test_policies(const ipvsct_conntrack *ct)
{
    g_ct_for_policies = ct;
    CHECK_RC(ipvsct_conntrack_policy_delete_unused(ct), IPVSCT_OK);
    compare_with_nfct("empty");
    ipvsct_ct_timeout_policy web = policy("ipvsct-c-web", 6);
    web.values[3] = 600; /* CTA_TIMEOUT_TCP_ESTABLISHED */
    web.values[7] = 30;  /* CTA_TIMEOUT_TCP_TIME_WAIT */
    CHECK_RC(ipvsct_conntrack_policy_add(ct, &web), IPVSCT_OK);
    ipvsct_ct_timeout_policy dns = policy("ipvsct-c-dns", 17);
    dns.values[1] = 5;
    dns.values[2] = 10;
    CHECK_RC(ipvsct_conntrack_policy_add(ct, &dns), IPVSCT_OK);
    CHECK_RC(ipvsct_conntrack_policy_add(ct, &dns), IPVSCT_ERR_KERNEL);
    compare_with_nfct("after add");

    ipvsct_ct_timeout_policy got;
    memset(&got, 0, sizeof got);
    CHECK_RC(ipvsct_conntrack_policy_get(ct, "ipvsct-c-web", &got), IPVSCT_OK);
    CHECK(got.values[3] == 600 && got.values[7] == 30 && got.l4proto == 6 &&
              !strcmp(got.name, "ipvsct-c-web") && got.values[1] != IPVSCT_TIMEOUT_UNSET,
          "get: established %u time_wait %u", got.values[3], got.values[7]);
    web.values[3] = 900;
    CHECK_RC(ipvsct_conntrack_policy_replace(ct, &web), IPVSCT_OK);
    CHECK_RC(ipvsct_conntrack_policy_get(ct, "ipvsct-c-web", &got), IPVSCT_OK);
    CHECK(got.values[3] == 900, "replace: established %u", got.values[3]);
    compare_with_nfct("after replace");

    /* Values outside the protocol, unknown protocols, missing names: refused locally. */
    ipvsct_ct_timeout_policy bad = policy("ipvsct-c-bad", 17);
    bad.values[5] = 1;
    CHECK_RC(ipvsct_conntrack_policy_add(ct, &bad), IPVSCT_ERR_INVALID_ARGUMENT);
    bad = policy("ipvsct-c-bad", 99);
    CHECK_RC(ipvsct_conntrack_policy_add(ct, &bad), IPVSCT_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipvsct_conntrack_policy_get(ct, NULL, &got), IPVSCT_ERR_NULL_ARGUMENT);

    CHECK_RC(ipvsct_conntrack_policy_delete(ct, "ipvsct-c-dns"), IPVSCT_OK);
    CHECK_RC(ipvsct_conntrack_policy_get(ct, "ipvsct-c-dns", &got), IPVSCT_ERR_NOT_FOUND);
    CHECK_RC(ipvsct_conntrack_policy_delete(ct, "ipvsct-c-dns"), IPVSCT_ERR_NOT_FOUND);
    compare_with_nfct("after delete");
    CHECK_RC(ipvsct_conntrack_policy_delete_unused(ct), IPVSCT_OK);
    compare_with_nfct("after delete-unused");

    /* The UDP default policy: set, read back through the policy, the state timeouts and
     * the sysctl, then restore. */
    ipvsct_ct_timeout_policy def;
    memset(&def, 0, sizeof def);
    CHECK_RC(ipvsct_conntrack_default_policy(ct, IPVSCT_AF_INET, 17, &def), IPVSCT_OK);
    uint32_t old_unreplied = def.values[1];
    CHECK(old_unreplied != IPVSCT_TIMEOUT_UNSET && def.name[0] == 0 && def.l4proto == 17,
          "default UDP policy: unreplied %u", old_unreplied);
    ipvsct_ct_timeouts before;
    CHECK_RC(ipvsct_conntrack_default_timeouts(ct, &before), IPVSCT_OK);
    ipvsct_ct_timeout_policy set = policy("", 17);
    set.values[1] = 33;
    CHECK_RC(ipvsct_conntrack_set_default_policy(ct, &set), IPVSCT_OK);
    ipvsct_ct_timeouts after;
    CHECK_RC(ipvsct_conntrack_default_timeouts(ct, &after), IPVSCT_OK);
    CHECK(after.udp.unreplied == 33 && after.udp.replied == before.udp.replied,
          "after default-set: udp %u/%u", after.udp.unreplied, after.udp.replied);
    ipvsct_ct_timeouts sys;
    CHECK_RC(ipvsct_conntrack_sysctl_timeouts(ct, &sys), IPVSCT_OK);
    CHECK(sys.udp.unreplied == 33, "sysctl nf_conntrack_udp_timeout %u", sys.udp.unreplied);
    /* New UDP entries get the new timeout as their state timeout. */
    ipvsct_ct_request r = create_req(tuple(0, 17, "10.5.0.1", 1, "10.5.0.2", 2), 20);
    CHECK_RC(ipvsct_conntrack_create(ct, &r), IPVSCT_OK);
    ipvsct_ct_entry e;
    CHECK_RC(ipvsct_conntrack_get(ct, &r.orig, &e), IPVSCT_OK);
    CHECK(e.state_timeout == 33, "UNREPLIED entry state_timeout %u after default-set",
          e.state_timeout);
    CHECK_RC(ipvsct_conntrack_flush(ct, NULL), IPVSCT_OK);
    set.values[1] = old_unreplied;
    CHECK_RC(ipvsct_conntrack_set_default_policy(ct, &set), IPVSCT_OK);
    set = policy("named", 17);
    set.values[1] = 1;
    CHECK_RC(ipvsct_conntrack_set_default_policy(ct, &set), IPVSCT_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipvsct_conntrack_default_timeouts(ct, &after), IPVSCT_OK);
    CHECK(after.udp.unreplied == old_unreplied, "restored udp %u", after.udp.unreplied);
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--netns"))
            g_netns = argv[i + 1];
        else if (!strcmp(argv[i], "--snapshot-bin"))
            g_snapshot_bin = argv[i + 1];
        else if (!strcmp(argv[i], "--batch"))
            g_batch = atol(argv[i + 1]);
    }
    if (!g_netns || !g_snapshot_bin || g_batch < 20) {
        fprintf(stderr, "usage: test_control --netns NAME --snapshot-bin PATH [--batch N]\n");
        return 2;
    }
    /* The test runs inside the namespace (for its traffic, nfct and the snapshot), and
     * opens it by name as well: both handles see the same table. */
    ipvsct_conntrack *ct = NULL, *by_name = NULL;
    CHECK_RC(ipvsct_conntrack_new(&ct), IPVSCT_OK);
    CHECK_RC(ipvsct_conntrack_open(g_netns, &by_name), IPVSCT_OK);
    if (!ct || !by_name)
        return finish("test_control");
    ipvsct_ct_timeouts t;
    CHECK_RC(ipvsct_conntrack_default_timeouts(ct, &t), IPVSCT_OK);

    test_single_writes(ct, &t);
    test_flush(by_name);
    test_zero_counters(ct);
    test_batch(ct);
    test_policies(ct);

    ipvsct_conntrack_free(by_name);
    ipvsct_conntrack_free(ct);
    return finish("test_control");
}
