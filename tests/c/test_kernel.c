/* The C API against the real kernel, in a namespace made by tests/c/run.sh and filled by
 * ct_traffic: every value is compared with what the Rust API saw a moment before
 * (ffi/examples/ct_snapshot.rs output) and with the known traffic and nft counter.
 *
 * Usage: test_kernel --netns NAME --snapshot FILE --capture FILE --new N
 *                    --tcp-port P --tcp-count K --udp-port U --udp-timeout S */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "check.h"
#include "ct_format.h"

static void fmt_cpu(char *out, size_t n, const ipvsct_ct_cpu_stats *s)
{
    struct {
        const char *name;
        uint32_t bit, v;
    } f[] = {
        {"searched", IPVSCT_CT_CPU_STATS_HAS_SEARCHED, s->searched},
        {"found", IPVSCT_CT_CPU_STATS_HAS_FOUND, s->found},
        {"new", IPVSCT_CT_CPU_STATS_HAS_CREATED, s->created},
        {"invalid", IPVSCT_CT_CPU_STATS_HAS_INVALID, s->invalid},
        {"ignore", IPVSCT_CT_CPU_STATS_HAS_IGNORE, s->ignore},
        {"delete", IPVSCT_CT_CPU_STATS_HAS_DELETED, s->deleted},
        {"delete_list", IPVSCT_CT_CPU_STATS_HAS_DELETE_LIST, s->delete_list},
        {"insert", IPVSCT_CT_CPU_STATS_HAS_INSERT, s->insert},
        {"insert_failed", IPVSCT_CT_CPU_STATS_HAS_INSERT_FAILED, s->insert_failed},
        {"drop", IPVSCT_CT_CPU_STATS_HAS_DROP, s->drop},
        {"early_drop", IPVSCT_CT_CPU_STATS_HAS_EARLY_DROP, s->early_drop},
        {"error", IPVSCT_CT_CPU_STATS_HAS_ERROR, s->error},
        {"search_restart", IPVSCT_CT_CPU_STATS_HAS_SEARCH_RESTART, s->search_restart},
        {"clash_resolve", IPVSCT_CT_CPU_STATS_HAS_CLASH_RESOLVE, s->clash_resolve},
        {"chaintoolong", IPVSCT_CT_CPU_STATS_HAS_CHAINTOOLONG, s->chaintoolong},
    };
    size_t used = (size_t)snprintf(out, n, "cpu cpu=%u", s->cpu);
    for (size_t i = 0; i < sizeof f / sizeof f[0] && used < n; i++) {
        char v[16];
        put(v, sizeof v, s->fields & f[i].bit, f[i].v);
        used += (size_t)snprintf(out + used, n - used, " %s=%s", f[i].name, v);
    }
}

static size_t fmt_list(char *out, size_t n, const uint32_t *v, size_t count)
{
    size_t used = 0;
    for (size_t i = 0; i < count && used < n; i++) {
        if (v[i] == IPVSCT_TIMEOUT_UNSET)
            used += (size_t)snprintf(out + used, n - used, "%s-", i ? "," : "");
        else
            used += (size_t)snprintf(out + used, n - used, "%s%u", i ? "," : "", v[i]);
    }
    return used;
}

static void fmt_timeouts(char *out, size_t n, const ipvsct_ct_timeouts *t)
{
    const ipvsct_tcp_timeouts *c = &t->tcp;
    const ipvsct_sctp_timeouts *s = &t->sctp;
    const ipvsct_dccp_timeouts *d = &t->dccp;
    uint32_t tcpv[] = {c->syn_sent,   c->syn_recv, c->established, c->fin_wait,
                       c->close_wait, c->last_ack, c->time_wait,   c->close,
                       c->syn_sent2,  c->retrans,  c->unack};
    uint32_t sctpv[] = {s->closed,        s->cookie_wait,       s->cookie_echoed,
                        s->established,   s->shutdown_sent,     s->shutdown_recd,
                        s->shutdown_ack_sent, s->heartbeat_sent, s->heartbeat_acked};
    uint32_t dccpv[] = {d->request,  d->respond, d->partopen, d->open,
                        d->closereq, d->closing, d->timewait};
    uint32_t udpv[] = {t->udp.unreplied, t->udp.replied};
    uint32_t udplv[] = {t->udplite.unreplied, t->udplite.replied};
    uint32_t grev[] = {t->gre.unreplied, t->gre.replied};
    char tcp[128], udp[32], udpl[32], sctp[128], dccp[128], icmp[16], icmp6[16], gre[32],
        gen[16];
    fmt_list(tcp, sizeof tcp, tcpv, 11);
    fmt_list(udp, sizeof udp, udpv, 2);
    fmt_list(udpl, sizeof udpl, udplv, 2);
    fmt_list(sctp, sizeof sctp, sctpv, 9);
    fmt_list(dccp, sizeof dccp, dccpv, 7);
    fmt_list(icmp, sizeof icmp, &t->icmp, 1);
    fmt_list(icmp6, sizeof icmp6, &t->icmpv6, 1);
    fmt_list(gre, sizeof gre, grev, 2);
    fmt_list(gen, sizeof gen, &t->generic, 1);
    snprintf(out, n,
             "timeouts source=%s tcp=%s udp=%s udplite=%s sctp=%s dccp=%s icmp=%s icmpv6=%s "
             "gre=%s generic=%s",
             t->source == IPVSCT_TIMEOUT_SOURCE_CTTIMEOUT ? "cttimeout" : "sysctl", tcp, udp,
             udpl, sctp, dccp, icmp, icmp6, gre, gen);
}

/* ---- comparison helpers ---- */

/* Replaces "state_timeout=V" with "state_timeout=-" (offline decoding has no policy). */
static void drop_state_timeout(char *l)
{
    char *p = strstr(l, "state_timeout=");
    if (!p)
        return;
    p += strlen("state_timeout=");
    char *end = strchr(p, ' ');
    if (!end)
        return;
    memmove(p + 1, end, strlen(end) + 1);
    *p = '-';
}

/* ---- callbacks ---- */

static int collect_cb(const ipvsct_ct_entry *e, void *user)
{
    char line[LINE_LEN];
    fmt_entry(line, sizeof line, e);
    lines_add((struct lines *)user, line);
    return 0;
}

struct filtered {
    ipvsct_ct_entry v[64];
    int n;
};

static int keep_cb(const ipvsct_ct_entry *e, void *user)
{
    struct filtered *f = (struct filtered *)user;
    if (f->n < 64)
        f->v[f->n++] = *e;
    return 0;
}

struct busy_ctx {
    const ipvsct_conntrack *same, *other;
    int32_t rc_same, rc_other;
    int calls;
};

static int busy_cb(const ipvsct_ct_entry *e, void *user)
{
    (void)e;
    struct busy_ctx *b = (struct busy_ctx *)user;
    ipvsct_ct_global_stats g;
    if (b->calls++ == 0) {
        b->rc_same = ipvsct_conntrack_count(b->same, &g);
        b->rc_other = ipvsct_conntrack_count(b->other, &g);
    }
    return 0;
}

static int stop_cb(const ipvsct_ct_entry *e, void *user)
{
    (void)e;
    (*(int *)user)++;
    return 1;
}

static int decode_cb(const ipvsct_message *m, void *user)
{
    struct lines *l = (struct lines *)user;
    if (m->kind == IPVSCT_MSG_CT_ENTRY) {
        char line[LINE_LEN];
        fmt_entry(line, sizeof line, &m->data.ct_entry);
        lines_add(l, line);
    }
    return 0;
}

struct thread_arg {
    const ipvsct_conntrack *ct;
    int ok, calls;
    uint32_t entries;
};

static void *count_thread(void *p)
{
    struct thread_arg *a = (struct thread_arg *)p;
    for (int i = 0; i < a->calls; i++) {
        ipvsct_ct_global_stats g;
        if (ipvsct_conntrack_count(a->ct, &g) == IPVSCT_OK && g.entries == a->entries)
            a->ok++;
    }
    return NULL;
}

/* ---- the test ---- */

struct args {
    const char *netns, *snapshot, *capture;
    long new_count, tcp_port, tcp_count, udp_port, udp_timeout;
};

static int parse(int argc, char **argv, struct args *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--netns"))
            a->netns = v;
        else if (!strcmp(k, "--snapshot"))
            a->snapshot = v;
        else if (!strcmp(k, "--capture"))
            a->capture = v;
        else if (!strcmp(k, "--new"))
            a->new_count = atol(v);
        else if (!strcmp(k, "--tcp-port"))
            a->tcp_port = atol(v);
        else if (!strcmp(k, "--tcp-count"))
            a->tcp_count = atol(v);
        else if (!strcmp(k, "--udp-port"))
            a->udp_port = atol(v);
        else if (!strcmp(k, "--udp-timeout"))
            a->udp_timeout = atol(v);
        else
            return -1;
    }
    return a->netns && a->snapshot && a->capture && a->new_count > 0 ? 0 : -1;
}

struct snapshot {
    char count[LINE_LEN], timeouts[LINE_LEN];
    struct lines cpu, entries;
};

static int read_snapshot(const char *path, struct snapshot *s)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char line[LINE_LEN];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (!strncmp(line, "count ", 6))
            snprintf(s->count, sizeof s->count, "%s", line);
        else if (!strncmp(line, "timeouts ", 9))
            snprintf(s->timeouts, sizeof s->timeouts, "%s", line);
        else if (!strncmp(line, "cpu ", 4))
            lines_add(&s->cpu, line);
        else if (!strncmp(line, "entry ", 6))
            lines_add(&s->entries, line);
    }
    fclose(f);
    return 0;
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            unsigned char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    *len = n;
    return buf;
}

static ipvsct_tuple tuple4(uint8_t proto, const char *src, uint16_t sport, const char *dst,
                           uint16_t dport)
{
    ipvsct_tuple t;
    memset(&t, 0, sizeof t);
    t.fields = IPVSCT_TUPLE_HAS_SRC | IPVSCT_TUPLE_HAS_DST | IPVSCT_TUPLE_HAS_PROTO |
               IPVSCT_TUPLE_HAS_SRC_PORT | IPVSCT_TUPLE_HAS_DST_PORT;
    t.src.family = t.dst.family = IPVSCT_AF_INET;
    inet_pton(AF_INET, src, t.src.addr);
    inet_pton(AF_INET, dst, t.dst.addr);
    t.proto = proto;
    t.src_port = sport;
    t.dst_port = dport;
    return t;
}

int main(int argc, char **argv)
{
    struct args a;
    if (parse(argc, argv, &a) != 0) {
        fprintf(stderr, "usage: test_kernel --netns NAME --snapshot FILE --capture FILE --new N "
                        "--tcp-port P --tcp-count K --udp-port U --udp-timeout S\n");
        return 2;
    }
    struct snapshot snap;
    memset(&snap, 0, sizeof snap);
    CHECK(read_snapshot(a.snapshot, &snap) == 0, "cannot read %s", a.snapshot);

    ipvsct_conntrack *ct = NULL, *ct2 = NULL;
    CHECK_RC(ipvsct_conntrack_open(a.netns, &ct), IPVSCT_OK);
    char path[256];
    snprintf(path, sizeof path, "/run/netns/%s", a.netns);
    CHECK_RC(ipvsct_conntrack_open(path, &ct2), IPVSCT_OK);
    if (!ct || !ct2)
        return finish("test_kernel");
    CHECK_RC(ipvsct_conntrack_set_recv_timeout(ct, 10000), IPVSCT_OK);

    /* count, per-CPU statistics, timeouts: equal to what the Rust API read. */
    ipvsct_ct_global_stats g;
    char line[LINE_LEN];
    CHECK_RC(ipvsct_conntrack_count(ct, &g), IPVSCT_OK);
    snprintf(line, sizeof line, "count entries=%u max=%u", g.entries, g.max_entries);
    CHECK(strcmp(line, snap.count) == 0, "count: want '%s' got '%s'", snap.count, line);
    CHECK(g.fields & IPVSCT_CT_GLOBAL_STATS_HAS_MAX, "max_entries missing");
    CHECK(g.entries == (uint32_t)a.new_count, "%u entries, the nft 'ct state new' counter saw %ld",
          g.entries, a.new_count);

    size_t ncpu = 0, written = 0;
    CHECK_RC(ipvsct_conntrack_cpu_stats(ct, NULL, 0, &ncpu), IPVSCT_OK);
    CHECK(ncpu == (size_t)snap.cpu.n && ncpu > 0, "%zu CPUs, Rust saw %d", ncpu, snap.cpu.n);
    ipvsct_ct_cpu_stats cpus[256];
    memset(cpus, 0xab, sizeof cpus);
    written = 777;
    CHECK_RC(ipvsct_conntrack_cpu_stats(ct, cpus, ncpu - 1, &written), IPVSCT_ERR_BUFFER_TOO_SMALL);
    CHECK(written == 777 && cpus[0].cpu == 0xabab, "outputs written despite BUFFER_TOO_SMALL");
    CHECK_RC(ipvsct_conntrack_cpu_stats(ct, cpus, 256, &written), IPVSCT_OK);
    CHECK(written == ncpu, "%zu CPU records, expected %zu", written, ncpu);
    for (size_t i = 0; i < written && i < (size_t)snap.cpu.n; i++) {
        fmt_cpu(line, sizeof line, &cpus[i]);
        CHECK(strcmp(line, snap.cpu.v[i]) == 0, "cpu %zu\n  want %s\n  got  %s", i,
              snap.cpu.v[i], line);
    }

    ipvsct_ct_timeouts t, st;
    CHECK_RC(ipvsct_conntrack_default_timeouts(ct, &t), IPVSCT_OK);
    fmt_timeouts(line, sizeof line, &t);
    CHECK(strcmp(line, snap.timeouts) == 0, "timeouts\n  want %s\n  got  %s", snap.timeouts,
          line);
    CHECK(t.source == IPVSCT_TIMEOUT_SOURCE_CTTIMEOUT, "source %u", t.source);
    CHECK(t.udp.unreplied == (uint32_t)a.udp_timeout, "udp unreplied %u, sysctl set %ld",
          t.udp.unreplied, a.udp_timeout);
    CHECK_RC(ipvsct_conntrack_sysctl_timeouts(ct, &st), IPVSCT_OK);
    CHECK(st.source == IPVSCT_TIMEOUT_SOURCE_SYSCTL && st.udp.unreplied == t.udp.unreplied &&
              st.tcp.time_wait == t.tcp.time_wait,
          "sysctl timeouts: source %u udp %u tcp time_wait %u", st.source, st.udp.unreplied,
          st.tcp.time_wait);

    /* The capacity model: the same table, the namespace's TIME_WAIT timeout (900 s) and
     * Little's law over it; then a measured rate over 1.5 s in which nothing happens. */
    static ipvsct_capacity model;
    memset(&model, 0x5a, sizeof model);
    CHECK_RC(ipvsct_conntrack_capacity(ct, 0, &model), IPVSCT_OK);
    CHECK(model.entries == g.entries && model.max_entries == g.max_entries,
          "capacity: %llu of %llu, count says %u of %u", (unsigned long long)model.entries,
          (unsigned long long)model.max_entries, g.entries, g.max_entries);
    CHECK(model.headroom_entries == (uint64_t)g.max_entries - g.entries &&
              model.fill_ratio == (double)g.entries / (double)g.max_entries,
          "headroom %llu fill %f", (unsigned long long)model.headroom_entries, model.fill_ratio);
    CHECK(model.states_len == model.states_total && model.states_len > 0 &&
              !(model.fields & IPVSCT_CAPACITY_TRUNCATED),
          "%u of %u state rows, fields 0x%x", model.states_len, model.states_total, model.fields);
    uint64_t state_sum = 0, time_wait = 0;
    for (uint32_t i = 0; i < model.states_len && i < IPVSCT_CAPACITY_STATES_MAX; i++) {
        const ipvsct_capacity_state *s = &model.states[i];
        state_sum += s->count;
        if (!strcmp(s->proto, "tcp") && !strcmp(s->state_name, "TIME_WAIT")) {
            time_wait += s->count;
            CHECK(s->state_timeout == 900 && s->state_timeout == t.tcp.time_wait,
                  "TIME_WAIT row: state_timeout %u, policy %u", s->state_timeout,
                  t.tcp.time_wait);
            CHECK(s->max_seconds_left > 0 && s->max_seconds_left <= 900,
                  "TIME_WAIT row: %u s left", s->max_seconds_left);
        }
        if (!strcmp(s->proto, "udp"))
            CHECK(s->state_timeout == (uint32_t)a.udp_timeout, "udp %s row: state_timeout %u",
                  s->state_name, s->state_timeout);
    }
    CHECK(state_sum == model.entries, "state rows sum to %llu, %llu entries",
          (unsigned long long)state_sum, (unsigned long long)model.entries);
    CHECK(time_wait == (uint64_t)a.tcp_count + 1, "%llu TIME_WAIT entries, %ld TCP connections",
          (unsigned long long)time_wait, a.tcp_count + 1);
    CHECK((model.fields & IPVSCT_CAPACITY_HAS_SHORT_DWELL) && model.short_connection_dwell_seconds == 900,
          "dwell %u (fields 0x%x)", model.short_connection_dwell_seconds, model.fields);
    double want_rate = (double)g.max_entries / 900.0;
    CHECK((model.fields & IPVSCT_CAPACITY_HAS_MAX_SHORT_RATE) &&
              model.max_short_connections_per_second > want_rate - 1e-6 &&
              model.max_short_connections_per_second < want_rate + 1e-6,
          "max short connections/s %f, max/900 = %f", model.max_short_connections_per_second,
          want_rate);
    CHECK((model.fields & IPVSCT_CAPACITY_HAS_DOMINANT_STATE) && !strcmp(model.dominant_proto, "tcp") &&
              !strcmp(model.dominant_state, "TIME_WAIT") &&
              model.dominant_share == (double)time_wait / (double)model.entries,
          "dominant %s %s %f", model.dominant_proto, model.dominant_state, model.dominant_share);
    CHECK(model.rate_source == IPVSCT_CAPACITY_RATE_NONE &&
              !(model.fields & (IPVSCT_CAPACITY_HAS_NEW_PER_SECOND | IPVSCT_CAPACITY_HAS_GROWTH)) &&
              model.new_per_second == 0.0 && model.rate_is_lower_bound == 0,
          "interval 0: rate source %u fields 0x%x", model.rate_source, model.fields);
    CHECK(model.warnings_len == model.warnings_total && model.warnings_total == 0 &&
              model.suggestions_total == 0,
          "%u warnings, %u suggestions in an almost empty table: %s", model.warnings_total,
          model.suggestions_total, model.warnings[0]);
    CHECK(model.trouble_growth.drop == 0 && model.trouble_growth.insert_failed == 0,
          "trouble growth drop %llu insert_failed %llu",
          (unsigned long long)model.trouble_growth.drop,
          (unsigned long long)model.trouble_growth.insert_failed);

    memset(&model, 0x5a, sizeof model);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_RC(ipvsct_conntrack_capacity(ct, 1500, &model), IPVSCT_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double took = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECK(model.rate_source == IPVSCT_CAPACITY_RATE_EVENTS &&
              (model.fields & IPVSCT_CAPACITY_HAS_NEW_PER_SECOND) && model.new_per_second == 0.0 &&
              model.rate_is_lower_bound == 0,
          "idle 1.5 s: rate source %u, %f new/s, lower bound %u", model.rate_source,
          model.new_per_second, model.rate_is_lower_bound);
    CHECK((model.fields & IPVSCT_CAPACITY_HAS_GROWTH) && model.growth_per_second == 0.0 &&
              model.entries == g.entries,
          "idle 1.5 s: growth %f/s, %llu entries", model.growth_per_second,
          (unsigned long long)model.entries);
    CHECK(model.interval_seconds >= 1.5 && model.interval_seconds <= took,
          "interval %f s, the call took %f s", model.interval_seconds, took);
    CHECK((model.fields & IPVSCT_CAPACITY_HAS_EXPECTED_OCCUPANCY) && model.expected_occupancy == 0.0 &&
              !(model.fields & IPVSCT_CAPACITY_HAS_MEAN_SECONDS) &&
              !(model.fields & IPVSCT_CAPACITY_HAS_SECONDS_UNTIL_FULL) &&
              model.headroom_per_second == model.max_short_connections_per_second,
          "idle: expected %f headroom %f/s fields 0x%x", model.expected_occupancy,
          model.headroom_per_second, model.fields);

    /* The whole table through the callback and through the iterator. */
    struct lines cb_lines = {0}, it_lines = {0};
    uint64_t n = 0;
    CHECK_RC(ipvsct_conntrack_dump(ct, NULL, collect_cb, &cb_lines, &n), IPVSCT_OK);
    CHECK(n == (uint64_t)cb_lines.n && n == g.entries, "callback dump: %llu entries, count %u",
          (unsigned long long)n, g.entries);
    compare_entries("callback dump vs Rust", &snap.entries, &cb_lines, 10);

    ipvsct_dump *d = NULL;
    CHECK_RC(ipvsct_dump_new(ct, NULL, &d), IPVSCT_OK);
    ipvsct_ct_entry e;
    int32_t rc;
    int guard = 0;
    while (d && (rc = ipvsct_dump_next(d, &e)) == IPVSCT_OK && guard++ < 10000) {
        fmt_entry(line, sizeof line, &e);
        lines_add(&it_lines, line);
    }
    CHECK(d && rc == IPVSCT_DONE, "iterator ended with %s (%s)", ipvsct_result_name(rc),
          last_msg());
    CHECK_RC(ipvsct_dump_next(d, &e), IPVSCT_DONE);
    ipvsct_dump_free(d);
    compare_entries("iterator vs callback dump", &cb_lines, &it_lines, 3);

    /* Filter: the marked TCP connections, with real values. */
    ipvsct_dump_filter f;
    memset(&f, 0, sizeof f);
    f.fields = IPVSCT_DUMP_FILTER_HAS_MARK;
    f.mark = 42;
    f.mark_mask = 0xffffffffu;
    static struct filtered marked;
    CHECK_RC(ipvsct_conntrack_dump(ct, &f, keep_cb, &marked, &n), IPVSCT_OK);
    CHECK(marked.n == a.tcp_count + 1, "%d marked entries, %ld TCP connections made", marked.n,
          a.tcp_count + 1);
    int v6 = 0;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t now_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
    for (int i = 0; i < marked.n; i++) {
        const ipvsct_ct_entry *m = &marked.v[i];
        v6 += m->family == IPVSCT_AF_INET6;
        CHECK(m->orig.proto == 6 && m->orig.dst_port == a.tcp_port && m->reply.src_port == a.tcp_port,
              "marked entry %d: proto %u dport %u", i, m->orig.proto, m->orig.dst_port);
        CHECK(m->state_kind == IPVSCT_STATE_KIND_TCP && m->state == 7 &&
                  !strcmp(m->state_name, "TIME_WAIT"),
              "state %u/%u %s", m->state_kind, m->state, m->state_name);
        CHECK((m->fields & IPVSCT_CT_ENTRY_HAS_STATE_TIMEOUT) && m->state_timeout == t.tcp.time_wait,
              "state_timeout %u, TIME_WAIT policy %u", m->state_timeout, t.tcp.time_wait);
        CHECK((m->fields & IPVSCT_CT_ENTRY_HAS_TIMEOUT) && m->timeout <= m->state_timeout &&
                  m->timeout + 300 > m->state_timeout,
              "timeout %u of %u", m->timeout, m->state_timeout);
        CHECK((m->status & 0xe) == 0xe, "status 0x%x lacks SEEN_REPLY|ASSURED|CONFIRMED", m->status);
        CHECK((m->fields & IPVSCT_CT_ENTRY_HAS_COUNTERS_ORIG) && m->counters_orig.packets >= 4 &&
                  m->counters_orig.bytes >= 100 + 4 * 40 && m->counters_reply.bytes >= 200 + 3 * 40,
              "counters %llu/%llu %llu/%llu", (unsigned long long)m->counters_orig.packets,
              (unsigned long long)m->counters_orig.bytes,
              (unsigned long long)m->counters_reply.packets,
              (unsigned long long)m->counters_reply.bytes);
        CHECK((m->fields & IPVSCT_CT_ENTRY_HAS_TIMESTAMP_START) && m->timestamp_start <= now_ns &&
                  now_ns - m->timestamp_start < 600ull * 1000000000ull,
              "start %llu now %llu", (unsigned long long)m->timestamp_start,
              (unsigned long long)now_ns);
        CHECK((m->fields & IPVSCT_CT_ENTRY_HAS_TCP_WSCALE_ORIG) && m->msg_type == 0,
              "protoinfo/message: fields 0x%x msg %u", m->fields, m->msg_type);

        /* A lookup by the original tuple finds the same entry. */
        ipvsct_ct_entry got;
        CHECK_RC(ipvsct_conntrack_get(ct2, &m->orig, &got), IPVSCT_OK);
        CHECK(got.id == m->id && got.state == m->state && got.state_timeout == m->state_timeout &&
                  got.mark == 42,
              "get: id %u/%u state %u/%u", got.id, m->id, got.state, m->state);
    }
    CHECK(v6 == 1, "%d IPv6 entries among the marked ones, expected 1", v6);

    /* Tuple filters: the answered and the unanswered UDP flow. */
    for (int k = 0; k < 2; k++) {
        static struct filtered udp;
        udp.n = 0;
        memset(&f, 0, sizeof f);
        f.fields = IPVSCT_DUMP_FILTER_HAS_FAMILY;
        f.family = IPVSCT_AF_INET;
        f.orig.fields = IPVSCT_TUPLE_HAS_PROTO | IPVSCT_TUPLE_HAS_DST_PORT | IPVSCT_TUPLE_HAS_DST;
        f.orig.proto = 17;
        f.orig.dst_port = (uint16_t)(a.udp_port + k);
        f.orig.dst.family = IPVSCT_AF_INET;
        inet_pton(AF_INET, "127.0.0.1", f.orig.dst.addr);
        CHECK_RC(ipvsct_conntrack_dump(ct, &f, keep_cb, &udp, &n), IPVSCT_OK);
        CHECK(udp.n == 1 && n == 1, "udp port %ld: %d entries", a.udp_port + k, udp.n);
        if (udp.n == 1) {
            const ipvsct_ct_entry *u = &udp.v[0];
            const char *want = k == 0 ? "REPLIED" : "UNREPLIED";
            CHECK(u->state_kind == IPVSCT_STATE_KIND_UDP && u->state == (k == 0 ? 1 : 0) &&
                      !strcmp(u->state_name, want),
                  "udp state %u %s, want %s", u->state, u->state_name, want);
            CHECK(u->state_timeout == (uint32_t)a.udp_timeout, "udp state_timeout %u",
                  u->state_timeout);
            CHECK(((u->status & 0x2) != 0) == (k == 0), "udp status 0x%x", u->status);
            CHECK(!(u->fields & IPVSCT_CT_ENTRY_HAS_MARK) || u->mark == 0, "udp mark %u", u->mark);
        }
    }

    /* A lookup that finds nothing: NOT_FOUND with errno ENOENT, outputs untouched. */
    ipvsct_tuple missing = tuple4(6, "127.0.0.1", 1, "127.0.0.1", 2);
    memset(&e, 0x5a, sizeof e);
    CHECK_RC(ipvsct_conntrack_get(ct, &missing, &e), IPVSCT_ERR_NOT_FOUND);
    ipvsct_error err;
    CHECK_RC(ipvsct_error_last(&err), IPVSCT_OK);
    CHECK(err.code == IPVSCT_ERR_NOT_FOUND && err.errno_value == 2 &&
              (err.fields & IPVSCT_ERROR_HAS_ERRNO) && strstr(err.message, "conntrack get"),
          "last error: code %d errno %d '%s'", err.code, err.errno_value, err.message);
    CHECK(e.id == 0x5a5a5a5au, "entry written on failure");

    /* Re-entrancy: the handle is busy inside its own callback, other handles are not. */
    struct busy_ctx b = {ct, ct2, 0, 0, 0};
    CHECK_RC(ipvsct_conntrack_dump(ct, NULL, busy_cb, &b, NULL), IPVSCT_OK);
    CHECK(b.rc_same == IPVSCT_ERR_BUSY && b.rc_other == IPVSCT_OK, "inside callback: same %s other %s",
          ipvsct_result_name(b.rc_same), ipvsct_result_name(b.rc_other));
    CHECK_RC(ipvsct_conntrack_count(ct, &g), IPVSCT_OK);

    /* Early stop leaves the socket clean for the next request. */
    int seen = 0;
    CHECK_RC(ipvsct_conntrack_dump(ct, NULL, stop_cb, &seen, &n), IPVSCT_STOPPED);
    CHECK(seen == 1 && n == 1, "stop: callback called %d times, count %llu", seen,
          (unsigned long long)n);
    struct lines again = {0};
    CHECK_RC(ipvsct_conntrack_dump(ct, NULL, collect_cb, &again, &n), IPVSCT_OK);
    CHECK(again.n == cb_lines.n, "after an early stop: %d entries, before %d", again.n,
          cb_lines.n);
    lines_free(&again);

    /* An iterator freed early, then a full one. */
    CHECK_RC(ipvsct_dump_new(ct, NULL, &d), IPVSCT_OK);
    CHECK_RC(ipvsct_dump_next(d, &e), IPVSCT_OK);
    ipvsct_dump_free(d);
    d = NULL;
    CHECK_RC(ipvsct_dump_new(ct2, NULL, &d), IPVSCT_OK);
    ipvsct_conntrack_free(ct2); /* the iterator does not borrow the handle */
    ct2 = NULL;
    int total = 0;
    while (d && ipvsct_dump_next(d, &e) == IPVSCT_OK && total < 10000)
        total++;
    CHECK(total == cb_lines.n, "iterator after its handle was freed: %d entries, want %d", total,
          cb_lines.n);
    ipvsct_dump_free(d);

    /* Other tables and bad filters. */
    memset(&f, 0, sizeof f);
    f.table = IPVSCT_TABLE_DYING;
    CHECK_RC(ipvsct_conntrack_dump(ct, &f, keep_cb, &marked, NULL), IPVSCT_OK);
    f.table = 9;
    d = (ipvsct_dump *)&f; /* must stay untouched */
    CHECK_RC(ipvsct_dump_new(ct, &f, &d), IPVSCT_ERR_INVALID_ARGUMENT);
    CHECK(d == (ipvsct_dump *)&f, "iterator written on failure");

    /* One handle from several threads. */
    enum { THREADS = 4 };
    pthread_t th[THREADS];
    struct thread_arg ta[THREADS];
    for (int i = 0; i < THREADS; i++) {
        ta[i] = (struct thread_arg){ct, 0, 25, g.entries};
        pthread_create(&th[i], NULL, count_thread, &ta[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        CHECK(ta[i].ok == ta[i].calls, "thread %d: %d of %d counts right", i, ta[i].ok,
              ta[i].calls);
    }

    /* Offline decoding of the Rust API's captured dump gives the same entries. */
    size_t cap_len = 0;
    unsigned char *cap = read_file(a.capture, &cap_len);
    CHECK(cap && cap_len > 0, "cannot read capture %s", a.capture);
    if (cap) {
        struct lines off = {0};
        size_t msgs = 0;
        CHECK_RC(ipvsct_decode(cap, cap_len, decode_cb, &off, &msgs), IPVSCT_OK);
        CHECK(msgs == (size_t)off.n + 1, "%zu messages for %d entries (plus NLMSG_DONE)", msgs,
              off.n);
        struct lines want = {0};
        for (int i = 0; i < snap.entries.n; i++) {
            snprintf(line, sizeof line, "%s", snap.entries.v[i]);
            drop_state_timeout(line);
            lines_add(&want, line);
        }
        compare_entries("offline decode vs Rust", &want, &off, 0);
        for (int i = 0; i < want.n && i < off.n; i++)
            CHECK(strcmp(want.v[i], off.v[i]) == 0, "offline: whole line differs\n  %s\n  %s",
                  want.v[i], off.v[i]);
        if (cap_len > 0) {
            ipvsct_ct_entry one;
            CHECK_RC(ipvsct_ct_entry_decode(cap, cap_len, &one), IPVSCT_OK);
        }
        lines_free(&want);
        lines_free(&off);
        free(cap);
    }

    ipvsct_conntrack_free(ct);
    lines_free(&cb_lines);
    lines_free(&it_lines);
    lines_free(&snap.cpu);
    lines_free(&snap.entries);
    return finish("test_kernel");
}
