/* The C API without the kernel: offline decoding of netlink messages built here from the
 * kernel's own uapi headers, the error calls, NULL and bad-length arguments, the layout
 * of the structs, and per-thread last errors. Runs as any user. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netfilter/nfnetlink_cttimeout.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

/* The layout is ABI: these must match the Rust definitions (ffi/src/layout_tests.rs pins the same numbers). */
_Static_assert(sizeof(ipvsct_addr) == 20, "ipvsct_addr size");
_Static_assert(sizeof(ipvsct_tuple) == 56, "ipvsct_tuple size");
_Static_assert(sizeof(ipvsct_ct_entry) == 352, "ipvsct_ct_entry size");
_Static_assert(offsetof(ipvsct_ct_entry, orig) == 64, "ipvsct_ct_entry.orig");
_Static_assert(offsetof(ipvsct_ct_entry, fields) == 232, "ipvsct_ct_entry.fields");
_Static_assert(offsetof(ipvsct_ct_entry, state_name) == 305, "ipvsct_ct_entry.state_name");
_Static_assert(sizeof(ipvsct_ct_cpu_stats) == 68, "ipvsct_ct_cpu_stats size");
_Static_assert(sizeof(ipvsct_ct_global_stats) == 16, "ipvsct_ct_global_stats size");
_Static_assert(sizeof(ipvsct_ct_timeouts) == 148, "ipvsct_ct_timeouts size");
_Static_assert(sizeof(ipvsct_ct_timeout_policy) == 108, "ipvsct_ct_timeout_policy size");
_Static_assert(sizeof(ipvsct_dump_filter) == 136, "ipvsct_dump_filter size");
_Static_assert(sizeof(ipvsct_error) == 920, "ipvsct_error size");
_Static_assert(sizeof(ipvsct_message_data) == 8 * IPVSCT_MESSAGE_DATA_WORDS, "union size");
_Static_assert(offsetof(ipvsct_message, data) == 24, "ipvsct_message.data");
_Static_assert(sizeof(ipvsct_ct_expect) == 304, "ipvsct_ct_expect size");
_Static_assert(sizeof(ipvsct_events_options) == 20, "ipvsct_events_options size");
_Static_assert(sizeof(ipvsct_overrun) == 32, "ipvsct_overrun size");
_Static_assert(sizeof(ipvsct_event_data) == 8 * IPVSCT_EVENT_DATA_WORDS, "event union size");
_Static_assert(sizeof(ipvsct_event) == 392, "ipvsct_event size");
_Static_assert(offsetof(ipvsct_event, data) == 8, "ipvsct_event.data");
_Static_assert(sizeof(ipvsct_events_stats) == 40, "ipvsct_events_stats size");
_Static_assert(sizeof(ipvsct_ct_request) == 256, "ipvsct_ct_request size");
_Static_assert(offsetof(ipvsct_ct_request, helper) == 240, "ipvsct_ct_request.helper");
_Static_assert(sizeof(ipvsct_batch_result) == 8, "ipvsct_batch_result size");
_Static_assert(sizeof(ipvsct_batch_report) == 56, "ipvsct_batch_report size");
_Static_assert(sizeof(ipvsct_ipvs_stats64) == 80, "ipvsct_ipvs_stats64 size");
_Static_assert(sizeof(ipvsct_ipvs_service_key) == 32, "ipvsct_ipvs_service_key size");
_Static_assert(sizeof(ipvsct_ipvs_service) == 168, "ipvsct_ipvs_service size");
_Static_assert(sizeof(ipvsct_ipvs_dest) == 152, "ipvsct_ipvs_dest size");
_Static_assert(sizeof(ipvsct_ipvs_config) == 16, "ipvsct_ipvs_config size");
_Static_assert(sizeof(ipvsct_ipvs_info) == 12, "ipvsct_ipvs_info size");
_Static_assert(sizeof(ipvsct_ipvs_daemon) == 56, "ipvsct_ipvs_daemon size");
_Static_assert(sizeof(ipvsct_ipvs_conn) == 180, "ipvsct_ipvs_conn size");
_Static_assert(sizeof(ipvsct_genl_family) == 32, "ipvsct_genl_family size");
_Static_assert(sizeof(ipvsct_capacity_state) == 56, "ipvsct_capacity_state size");
_Static_assert(sizeof(ipvsct_capacity_suggestion) == 328, "ipvsct_capacity_suggestion size");
_Static_assert(sizeof(ipvsct_capacity) == 5408, "ipvsct_capacity size");
_Static_assert(offsetof(ipvsct_capacity, fields) == 176, "ipvsct_capacity.fields");
_Static_assert(offsetof(ipvsct_capacity, states) == 256, "ipvsct_capacity.states");
_Static_assert(offsetof(ipvsct_capacity, warnings) == 3360, "ipvsct_capacity.warnings");
_Static_assert(sizeof(ipvsct_message_data) >= sizeof(ipvsct_ipvs_service), "union room");

/* ---- a tiny netlink message builder ---- */

struct msg {
    unsigned char buf[4096];
    size_t len;
    size_t start; /* offset of the current message's header */
    size_t nest[8];
    int depth;
};

static void align(struct msg *m)
{
    while (m->len % 4)
        m->buf[m->len++] = 0;
}

static void begin(struct msg *m, uint16_t type, uint16_t flags, uint32_t seq, uint8_t family,
                  uint16_t res_id)
{
    align(m);
    m->start = m->len;
    struct nlmsghdr h = {0, type, flags, seq, 0};
    memcpy(m->buf + m->len, &h, sizeof h);
    m->len += sizeof h;
    struct nfgenmsg g = {family, NFNETLINK_V0, htons(res_id)};
    memcpy(m->buf + m->len, &g, sizeof g);
    m->len += sizeof g;
}

static void end(struct msg *m)
{
    uint32_t l = (uint32_t)(m->len - m->start);
    memcpy(m->buf + m->start, &l, 4);
    align(m);
}

static void attr(struct msg *m, uint16_t type, const void *data, size_t n)
{
    struct nlattr a = {(uint16_t)(NLA_HDRLEN + n), type};
    memcpy(m->buf + m->len, &a, sizeof a);
    memcpy(m->buf + m->len + NLA_HDRLEN, data, n);
    m->len += NLA_HDRLEN + n;
    align(m);
}

static void u8a(struct msg *m, uint16_t t, uint8_t v) { attr(m, t, &v, 1); }
static void be16a(struct msg *m, uint16_t t, uint16_t v)
{
    v = htons(v);
    attr(m, t, &v, 2);
}
static void be32a(struct msg *m, uint16_t t, uint32_t v)
{
    v = htonl(v);
    attr(m, t, &v, 4);
}
static void be64a(struct msg *m, uint16_t t, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (56 - 8 * i));
    attr(m, t, b, 8);
}

static void nest(struct msg *m, uint16_t type)
{
    m->nest[m->depth++] = m->len;
    struct nlattr a = {0, (uint16_t)(type | NLA_F_NESTED)};
    memcpy(m->buf + m->len, &a, sizeof a);
    m->len += NLA_HDRLEN;
}

static void unnest(struct msg *m)
{
    size_t at = m->nest[--m->depth];
    uint16_t l = (uint16_t)(m->len - at);
    memcpy(m->buf + at, &l, 2);
}

static void tuple(struct msg *m, uint16_t which, int v6, const char *src, const char *dst,
                  uint8_t proto, uint16_t sport, uint16_t dport)
{
    unsigned char a[16], b[16];
    nest(m, which);
    nest(m, CTA_TUPLE_IP);
    inet_pton(v6 ? AF_INET6 : AF_INET, src, a);
    inet_pton(v6 ? AF_INET6 : AF_INET, dst, b);
    attr(m, v6 ? CTA_IP_V6_SRC : CTA_IP_V4_SRC, a, v6 ? 16 : 4);
    attr(m, v6 ? CTA_IP_V6_DST : CTA_IP_V4_DST, b, v6 ? 16 : 4);
    unnest(m);
    nest(m, CTA_TUPLE_PROTO);
    u8a(m, CTA_PROTO_NUM, proto);
    be16a(m, CTA_PROTO_SRC_PORT, sport);
    be16a(m, CTA_PROTO_DST_PORT, dport);
    unnest(m);
    unnest(m);
}

/* The messages every decode test reads: returns offsets of the first two messages. */
static void build_all(struct msg *m, size_t *second)
{
    memset(m, 0, sizeof *m);
    /* 1: a TCP/IPv4 entry as a dump sends it. */
    begin(m, (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW, NLM_F_MULTI, 7, AF_INET, 0);
    tuple(m, CTA_TUPLE_ORIG, 0, "10.0.0.1", "10.0.0.2", IPPROTO_TCP, 40000, 80);
    tuple(m, CTA_TUPLE_REPLY, 0, "10.0.0.2", "10.0.0.1", IPPROTO_TCP, 80, 40000);
    be32a(m, CTA_STATUS, 0x18e);
    be32a(m, CTA_TIMEOUT, 117);
    be32a(m, CTA_MARK, 42);
    nest(m, CTA_PROTOINFO);
    nest(m, CTA_PROTOINFO_TCP);
    u8a(m, CTA_PROTOINFO_TCP_STATE, 7);
    u8a(m, CTA_PROTOINFO_TCP_WSCALE_ORIGINAL, 7);
    u8a(m, CTA_PROTOINFO_TCP_WSCALE_REPLY, 9);
    uint8_t fl[2] = {0x23, 0x23};
    attr(m, CTA_PROTOINFO_TCP_FLAGS_ORIGINAL, fl, 2);
    unnest(m);
    unnest(m);
    nest(m, CTA_COUNTERS_ORIG);
    be64a(m, CTA_COUNTERS_PACKETS, 6);
    be64a(m, CTA_COUNTERS_BYTES, 324);
    unnest(m);
    nest(m, CTA_COUNTERS_REPLY);
    be64a(m, CTA_COUNTERS_PACKETS, 4);
    be64a(m, CTA_COUNTERS_BYTES, 220);
    unnest(m);
    be32a(m, CTA_USE, 1);
    be32a(m, CTA_ID, 0xdeadbeef);
    be16a(m, CTA_ZONE, 7);
    nest(m, CTA_TIMESTAMP);
    be64a(m, CTA_TIMESTAMP_START, 1700000000123456789ull);
    unnest(m);
    uint32_t labels[4] = {(1u << 1), (1u << 8), 0, 0}; /* labels 1 and 40 */
    attr(m, CTA_LABELS, labels, sizeof labels);
    nest(m, CTA_HELP);
    attr(m, CTA_HELP_NAME, "ftp", 4);
    unnest(m);
    end(m);
    *second = m->len;
    /* 2: a UDP/IPv6 destroy event with a stop time. */
    begin(m, (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE, 0, 0, AF_INET6, 0);
    tuple(m, CTA_TUPLE_ORIG, 1, "fd00::1", "fd00::2", IPPROTO_UDP, 5000, 53);
    tuple(m, CTA_TUPLE_REPLY, 1, "fd00::2", "fd00::1", IPPROTO_UDP, 53, 5000);
    be32a(m, CTA_STATUS, 0x8);
    nest(m, CTA_TIMESTAMP);
    be64a(m, CTA_TIMESTAMP_START, 10);
    be64a(m, CTA_TIMESTAMP_STOP, 20);
    unnest(m);
    end(m);
    /* 3: global statistics. */
    begin(m, (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET_STATS, 0, 8, AF_UNSPEC, 0);
    be32a(m, CTA_STATS_GLOBAL_ENTRIES, 12);
    be32a(m, CTA_STATS_GLOBAL_MAX_ENTRIES, 65536);
    end(m);
    /* 4: one CPU's statistics. */
    begin(m, (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET_STATS_CPU, NLM_F_MULTI, 9,
          AF_UNSPEC, 1);
    be32a(m, CTA_STATS_FOUND, 3);
    be32a(m, CTA_STATS_INSERT, 9);
    end(m);
    /* 5: a default timeout policy. */
    begin(m, (NFNL_SUBSYS_CTNETLINK_TIMEOUT << 8) | IPCTNL_MSG_TIMEOUT_DEFAULT_GET, 0, 10,
          AF_UNSPEC, 0);
    be16a(m, CTA_TIMEOUT_L3PROTO, AF_INET);
    u8a(m, CTA_TIMEOUT_L4PROTO, IPPROTO_TCP);
    nest(m, CTA_TIMEOUT_DATA);
    be32a(m, CTA_TIMEOUT_TCP_TIME_WAIT, 120);
    be32a(m, CTA_TIMEOUT_TCP_ESTABLISHED, 432000);
    unnest(m);
    end(m);
    /* 6: an error with extended ACK: EINVAL, "bad attr", offset 24 (request capped). */
    align(m);
    size_t at = m->len;
    struct nlmsghdr h = {0, NLMSG_ERROR, NLM_F_CAPPED | NLM_F_ACK_TLVS, 11, 0};
    memcpy(m->buf + m->len, &h, sizeof h);
    m->len += sizeof h;
    int32_t code = -EINVAL;
    memcpy(m->buf + m->len, &code, 4);
    m->len += 4;
    struct nlmsghdr req = {40, 0x0101, NLM_F_REQUEST | NLM_F_ACK, 11, 0};
    memcpy(m->buf + m->len, &req, sizeof req);
    m->len += sizeof req;
    attr(m, NLMSGERR_ATTR_MSG, "bad attr", 9);
    uint32_t offs = 24;
    attr(m, NLMSGERR_ATTR_OFFS, &offs, 4);
    uint32_t l = (uint32_t)(m->len - at);
    memcpy(m->buf + at, &l, 4);
    /* 7: NLMSG_DONE. */
    align(m);
    struct nlmsghdr done = {NLMSG_HDRLEN + 4, NLMSG_DONE, NLM_F_MULTI, 12, 0};
    memcpy(m->buf + m->len, &done, sizeof done);
    m->len += sizeof done;
    int32_t zero = 0;
    memcpy(m->buf + m->len, &zero, 4);
    m->len += 4;
}

/* ---- decode callbacks ---- */

struct seen {
    ipvsct_message m[16];
    int n;
};

static int record_cb(const ipvsct_message *msg, void *user)
{
    struct seen *s = (struct seen *)user;
    if (s->n < 16)
        s->m[s->n++] = *msg;
    return 0;
}

static int stop_after_one(const ipvsct_message *msg, void *user)
{
    (void)msg;
    ++*(int *)user;
    return 1;
}

static int count_cb(const ipvsct_message *msg, void *user)
{
    (void)msg;
    ++*(int *)user;
    return 0;
}

static void check_first_entry(const ipvsct_ct_entry *e)
{
    char a[64], b[64];
    CHECK(e->family == AF_INET && e->msg_type == IPCTNL_MSG_CT_NEW &&
              e->nlmsg_flags == NLM_F_MULTI,
          "family %u msg %u flags 0x%x", e->family, e->msg_type, e->nlmsg_flags);
    inet_ntop(AF_INET, e->orig.src.addr, a, sizeof a);
    inet_ntop(AF_INET, e->orig.dst.addr, b, sizeof b);
    CHECK(e->orig.src.family == IPVSCT_AF_INET && !strcmp(a, "10.0.0.1") && !strcmp(b, "10.0.0.2"),
          "orig %s -> %s", a, b);
    CHECK(e->orig.proto == 6 && e->orig.src_port == 40000 && e->orig.dst_port == 80 &&
              e->reply.src_port == 80 && e->reply.dst_port == 40000,
          "ports %u %u", e->orig.src_port, e->orig.dst_port);
    uint32_t tf = IPVSCT_TUPLE_HAS_SRC | IPVSCT_TUPLE_HAS_DST | IPVSCT_TUPLE_HAS_PROTO |
                  IPVSCT_TUPLE_HAS_SRC_PORT | IPVSCT_TUPLE_HAS_DST_PORT;
    CHECK(e->orig.fields == tf, "tuple fields 0x%x", e->orig.fields);
    CHECK(e->state_kind == IPVSCT_STATE_KIND_TCP && e->state == 7 &&
              !strcmp(e->state_name, "TIME_WAIT"),
          "state %u %u %s", e->state_kind, e->state, e->state_name);
    CHECK(e->status == 0x18e && e->timeout == 117 && e->mark == 42 && e->zone == 7 &&
              e->id == 0xdeadbeefu && e->use_count == 1,
          "status 0x%x timeout %u mark %u zone %u id 0x%x", e->status, e->timeout, e->mark,
          e->zone, e->id);
    CHECK(!(e->fields & IPVSCT_CT_ENTRY_HAS_STATE_TIMEOUT) &&
              e->state_timeout == IPVSCT_TIMEOUT_UNSET,
          "offline entries have no policy: state_timeout %u", e->state_timeout);
    CHECK(e->counters_orig.packets == 6 && e->counters_orig.bytes == 324 &&
              e->counters_reply.packets == 4 && e->counters_reply.bytes == 220,
          "counters");
    CHECK(e->timestamp_start == 1700000000123456789ull &&
              !(e->fields & IPVSCT_CT_ENTRY_HAS_TIMESTAMP_STOP),
          "timestamp %llu", (unsigned long long)e->timestamp_start);
    CHECK(e->labels[0] == 2 && e->labels[1] == 256 && e->labels[2] == 0, "labels %x %x",
          e->labels[0], e->labels[1]);
    CHECK(!strcmp(e->helper, "ftp") && (e->fields & IPVSCT_CT_ENTRY_HAS_HELPER), "helper '%s'",
          e->helper);
    CHECK(e->tcp_wscale_orig == 7 && e->tcp_wscale_reply == 9 && e->tcp_flags_orig == 0x23 &&
              e->tcp_flags_orig_mask == 0x23 && !(e->fields & IPVSCT_CT_ENTRY_HAS_TCP_FLAGS_REPLY),
          "tcp protoinfo");
    uint32_t want = IPVSCT_CT_ENTRY_HAS_TIMEOUT | IPVSCT_CT_ENTRY_HAS_MARK |
                    IPVSCT_CT_ENTRY_HAS_ZONE | IPVSCT_CT_ENTRY_HAS_COUNTERS_ORIG |
                    IPVSCT_CT_ENTRY_HAS_COUNTERS_REPLY | IPVSCT_CT_ENTRY_HAS_USE |
                    IPVSCT_CT_ENTRY_HAS_ID | IPVSCT_CT_ENTRY_HAS_TIMESTAMP_START |
                    IPVSCT_CT_ENTRY_HAS_LABELS | IPVSCT_CT_ENTRY_HAS_HELPER |
                    IPVSCT_CT_ENTRY_HAS_TCP_WSCALE_ORIG | IPVSCT_CT_ENTRY_HAS_TCP_WSCALE_REPLY |
                    IPVSCT_CT_ENTRY_HAS_TCP_FLAGS_ORIG;
    CHECK(e->fields == want, "fields 0x%x, want 0x%x", e->fields, want);
}

static void test_decode(void)
{
    static struct msg m;
    size_t second = 0;
    build_all(&m, &second);
    static struct seen s;
    size_t count = 99;
    CHECK_RC(ipvsct_decode(m.buf, m.len, record_cb, &s, &count), IPVSCT_OK);
    CHECK(count == 7 && s.n == 7, "%zu messages delivered, %d seen", count, s.n);
    if (s.n < 7)
        return;
    CHECK(s.m[0].kind == IPVSCT_MSG_CT_ENTRY && s.m[0].offset == 0 && s.m[0].nlmsg_seq == 7,
          "message 0 kind %u", s.m[0].kind);
    check_first_entry(&s.m[0].data.ct_entry);

    const ipvsct_ct_entry *u = &s.m[1].data.ct_entry;
    char a[64];
    inet_ntop(AF_INET6, u->orig.src.addr, a, sizeof a);
    CHECK(s.m[1].kind == IPVSCT_MSG_CT_ENTRY && s.m[1].offset == second, "message 1");
    CHECK(u->family == AF_INET6 && u->orig.src.family == IPVSCT_AF_INET6 && !strcmp(a, "fd00::1"),
          "v6 src %s", a);
    CHECK(u->msg_type == IPCTNL_MSG_CT_DELETE && u->state_kind == IPVSCT_STATE_KIND_UDP &&
              u->state == 0 && !strcmp(u->state_name, "UNREPLIED"),
          "udp destroy: msg %u state %u %s", u->msg_type, u->state, u->state_name);
    CHECK(!(u->fields & IPVSCT_CT_ENTRY_HAS_TIMEOUT) && u->timeout == IPVSCT_TIMEOUT_UNSET,
          "absent timeout %u", u->timeout);
    CHECK(u->timestamp_start == 10 && u->timestamp_stop == 20 &&
              (u->fields & IPVSCT_CT_ENTRY_HAS_TIMESTAMP_STOP),
          "stop time");

    CHECK(s.m[2].kind == IPVSCT_MSG_CT_GLOBAL_STATS &&
              s.m[2].data.ct_global_stats.entries == 12 &&
              s.m[2].data.ct_global_stats.max_entries == 65536,
          "global stats");
    const ipvsct_ct_cpu_stats *c = &s.m[3].data.ct_cpu_stats;
    CHECK(s.m[3].kind == IPVSCT_MSG_CT_CPU_STATS && c->cpu == 1 && c->found == 3 &&
              c->insert == 9 &&
              c->fields == (IPVSCT_CT_CPU_STATS_HAS_FOUND | IPVSCT_CT_CPU_STATS_HAS_INSERT),
          "cpu stats: cpu %u found %u insert %u fields 0x%x", c->cpu, c->found, c->insert,
          c->fields);
    const ipvsct_ct_timeout_policy *p = &s.m[4].data.ct_timeout_policy;
    CHECK(s.m[4].kind == IPVSCT_MSG_CT_TIMEOUT_POLICY && p->l3proto == AF_INET &&
              p->l4proto == IPPROTO_TCP && p->values[CTA_TIMEOUT_TCP_TIME_WAIT] == 120 &&
              p->values[CTA_TIMEOUT_TCP_ESTABLISHED] == 432000 &&
              p->values[CTA_TIMEOUT_TCP_SYN_SENT] == IPVSCT_TIMEOUT_UNSET && p->name[0] == 0,
          "policy");
    const ipvsct_error *k = &s.m[5].data.kernel_error;
    CHECK(s.m[5].kind == IPVSCT_MSG_KERNEL_ERROR && k->code == IPVSCT_ERR_KERNEL &&
              k->errno_value == EINVAL && !strcmp(k->extack, "bad attr") &&
              k->extack_offset == 24 && strstr(k->message, "bad attr") &&
              (k->fields & IPVSCT_ERROR_HAS_EXTACK_OFFSET),
          "kernel error: code %d errno %d extack '%s' offset %u", k->code, k->errno_value,
          k->extack, k->extack_offset);
    CHECK(s.m[6].kind == IPVSCT_MSG_UNKNOWN && s.m[6].nlmsg_type == NLMSG_DONE, "done");

    /* The single-message call gives the same entry. */
    ipvsct_ct_entry one;
    CHECK_RC(ipvsct_ct_entry_decode(m.buf, m.len, &one), IPVSCT_OK);
    CHECK(memcmp(&one, &s.m[0].data.ct_entry, sizeof one) == 0, "entry_decode differs");
    CHECK_RC(ipvsct_ct_entry_decode(m.buf + second, m.len - second, &one), IPVSCT_OK);
    CHECK(one.family == AF_INET6, "second message decoded alone");

    /* Stopping early. */
    int calls = 0;
    count = 99;
    CHECK_RC(ipvsct_decode(m.buf, m.len, stop_after_one, &calls, &count), IPVSCT_STOPPED);
    CHECK(calls == 1 && count == 1, "stopped after %d calls, count %zu", calls, count);

    /* Every truncation is a result code, never a crash; a cut inside the first header is
     * a decode error at offset 0 and nothing is delivered. */
    size_t bad_cuts = 0, decode_errors = 0;
    for (size_t cut = 1; cut < m.len; cut++) {
        int n = 0;
        int32_t rc = ipvsct_decode(m.buf, cut, count_cb, &n, NULL);
        decode_errors += rc == IPVSCT_ERR_DECODE;
        if (rc != IPVSCT_OK && rc != IPVSCT_ERR_DECODE) {
            bad_cuts++;
            fprintf(stderr, "cut %zu: %s\n", cut, ipvsct_result_name(rc));
        }
    }
    CHECK(bad_cuts == 0 && decode_errors > m.len / 2, "%zu of %zu cuts gave another result, "
          "%zu decode errors", bad_cuts, m.len - 1, decode_errors);
    int n = 0;
    count = 99;
    CHECK_RC(ipvsct_decode(m.buf, 10, count_cb, &n, &count), IPVSCT_ERR_DECODE);
    ipvsct_error e;
    CHECK_RC(ipvsct_error_last(&e), IPVSCT_OK);
    CHECK(n == 0 && count == 99 && e.code == IPVSCT_ERR_DECODE && e.decode_offset == 0 &&
              (e.fields & IPVSCT_ERROR_HAS_DECODE_LOCATION) && !strcmp(e.attr_path, "<message>"),
          "truncated header: n %d code %d offset %llu path '%s'", n, e.code,
          (unsigned long long)e.decode_offset, e.attr_path);
    /* A cut in the middle of the second message delivers the first, then fails there. */
    n = 0;
    CHECK_RC(ipvsct_decode(m.buf, second + 30, count_cb, &n, NULL), IPVSCT_ERR_DECODE);
    CHECK_RC(ipvsct_error_last(&e), IPVSCT_OK);
    CHECK(n == 1 && e.decode_offset == second, "n %d offset %llu (second message at %zu)", n,
          (unsigned long long)e.decode_offset, second);

    /* A malformed attribute is located by path and offset: a 3-byte IPv4 source. */
    static struct msg bad;
    memset(&bad, 0, sizeof bad);
    begin(&bad, (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW, 0, 1, AF_INET, 0);
    nest(&bad, CTA_TUPLE_ORIG);
    nest(&bad, CTA_TUPLE_IP);
    size_t src_at = bad.len;
    attr(&bad, CTA_IP_V4_SRC, "\x0a\x00\x00", 3);
    unnest(&bad);
    unnest(&bad);
    end(&bad);
    CHECK_RC(ipvsct_ct_entry_decode(bad.buf, bad.len, &one), IPVSCT_ERR_DECODE);
    CHECK_RC(ipvsct_error_last(&e), IPVSCT_OK);
    CHECK(!strcmp(e.attr_path, "CTA_TUPLE_ORIG/CTA_TUPLE_IP/CTA_IP_V4_SRC") &&
              e.decode_offset == src_at + NLA_HDRLEN && strstr(e.message, "wrong size"),
          "bad attribute: path '%s' offset %llu (attribute at %zu) '%s'", e.attr_path,
          (unsigned long long)e.decode_offset, src_at, e.message);
}

/* ---- arguments ---- */

static void test_arguments(void)
{
    unsigned char byte = 0;
    size_t count = 5;
    ipvsct_ct_entry e;
    CHECK_RC(ipvsct_decode(NULL, 0, count_cb, NULL, &count), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK(strstr(last_msg(), "`buf` is NULL") != NULL, "message '%s'", last_msg());
    CHECK_RC(ipvsct_decode(&byte, 0, NULL, NULL, &count), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_decode(&byte, SIZE_MAX, count_cb, NULL, &count), IPVSCT_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipvsct_decode(&byte, 0, count_cb, NULL, &count), IPVSCT_OK);
    CHECK(count == 0, "empty buffer: %zu messages", count);
    CHECK_RC(ipvsct_decode(&byte, 0, count_cb, NULL, NULL), IPVSCT_OK);
    CHECK_RC(ipvsct_ct_entry_decode(&byte, 0, &e), IPVSCT_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipvsct_ct_entry_decode(&byte, 1, NULL), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_ct_entry_decode(NULL, 16, &e), IPVSCT_ERR_NULL_ARGUMENT);

    ipvsct_conntrack *ct = (ipvsct_conntrack *)&byte; /* sentinel: must stay untouched */
    ipvsct_ct_global_stats g;
    ipvsct_ct_timeouts t;
    ipvsct_tuple tu;
    memset(&tu, 0, sizeof tu);
    CHECK_RC(ipvsct_conntrack_open("ipvsct-no-such-namespace", NULL), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_conntrack_open("", &ct), IPVSCT_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipvsct_conntrack_open("ipvsct-no-such-namespace", &ct), IPVSCT_ERR_NAMESPACE);
    CHECK(ct == (ipvsct_conntrack *)&byte, "handle written on failure");
    ipvsct_error err;
    CHECK_RC(ipvsct_error_last(&err), IPVSCT_OK);
    CHECK(err.errno_value == ENOENT && strstr(err.message, "ipvsct-no-such-namespace"),
          "namespace error: errno %d '%s'", err.errno_value, err.message);
    CHECK_RC(ipvsct_conntrack_count(NULL, &g), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_conntrack_default_timeouts(NULL, &t), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_conntrack_sysctl_timeouts(NULL, &t), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_conntrack_get(NULL, &tu, &e), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_conntrack_cpu_stats(NULL, NULL, 0, &count), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_conntrack_dump(NULL, NULL, NULL, NULL, NULL), IPVSCT_ERR_NULL_ARGUMENT);
    static ipvsct_capacity cap;
    CHECK_RC(ipvsct_conntrack_capacity(NULL, 0, &cap), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_conntrack_set_recv_timeout(NULL, 5), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_dump_new(NULL, NULL, NULL), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_dump_next(NULL, &e), IPVSCT_ERR_NULL_ARGUMENT);
    ipvsct_conntrack_free(NULL);
    ipvsct_dump_free(NULL);

    /* A handle in this namespace: opening needs no privilege; bad arguments are refused
     * before anything is sent to the kernel. */
    ct = NULL;
    CHECK_RC(ipvsct_conntrack_new(&ct), IPVSCT_OK);
    if (!ct)
        return;
    CHECK_RC(ipvsct_conntrack_count(ct, NULL), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_conntrack_capacity(ct, 1500, NULL), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_conntrack_get(ct, NULL, &e), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_conntrack_get(ct, &tu, NULL), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_conntrack_get(ct, &tu, &e), IPVSCT_ERR_INVALID_ARGUMENT); /* no fields */
    tu.fields = IPVSCT_TUPLE_HAS_SRC | IPVSCT_TUPLE_HAS_DST | IPVSCT_TUPLE_HAS_PROTO;
    tu.src.family = IPVSCT_AF_INET;
    tu.dst.family = 99;
    CHECK_RC(ipvsct_conntrack_get(ct, &tu, &e), IPVSCT_ERR_INVALID_ARGUMENT);
    CHECK(strstr(last_msg(), "orig.dst: address family 99") != NULL, "'%s'", last_msg());
    tu.dst.family = IPVSCT_AF_INET6;
    CHECK_RC(ipvsct_conntrack_get(ct, &tu, &e), IPVSCT_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipvsct_conntrack_cpu_stats(ct, NULL, 3, &count), IPVSCT_ERR_NULL_ARGUMENT);
    ipvsct_ct_cpu_stats cs[2];
    CHECK_RC(ipvsct_conntrack_cpu_stats(ct, cs, SIZE_MAX / 8, &count),
             IPVSCT_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipvsct_conntrack_cpu_stats(ct, cs, 2, NULL), IPVSCT_ERR_NULL_ARGUMENT);
    ipvsct_dump_filter f;
    memset(&f, 0, sizeof f);
    f.fields = 0x1000;
    CHECK_RC(ipvsct_conntrack_dump(ct, &f, NULL, NULL, NULL), IPVSCT_ERR_NULL_ARGUMENT);
    ipvsct_dump *d = NULL;
    CHECK_RC(ipvsct_dump_new(ct, &f, &d), IPVSCT_ERR_INVALID_ARGUMENT);
    f.fields = IPVSCT_DUMP_FILTER_HAS_FAMILY;
    f.family = 7;
    CHECK_RC(ipvsct_dump_new(ct, &f, &d), IPVSCT_ERR_INVALID_ARGUMENT);
    f.family = AF_INET;
    f.orig.fields = IPVSCT_TUPLE_HAS_DST_PORT; /* a port without the protocol */
    CHECK_RC(ipvsct_dump_new(ct, &f, &d), IPVSCT_ERR_INVALID_ARGUMENT);
    CHECK(strstr(last_msg(), "L4 protocol") != NULL, "'%s'", last_msg());
    CHECK(d == NULL, "iterator written on failure");
    CHECK_RC(ipvsct_conntrack_set_recv_timeout(ct, 1500), IPVSCT_OK);
    if (geteuid() != 0) {
        /* Without CAP_NET_ADMIN the kernel refuses nfnetlink requests: a distinct code. */
        memset(&g, 0x77, sizeof g);
        CHECK_RC(ipvsct_conntrack_count(ct, &g), IPVSCT_ERR_PERMISSION);
        CHECK_RC(ipvsct_error_last(&err), IPVSCT_OK);
        CHECK(err.errno_value == EPERM && strstr(err.message, "CAP_NET_ADMIN") &&
                  g.entries == 0x77777777u,
              "permission error: errno %d '%s'", err.errno_value, err.message);
        printf("test_api: unprivileged (uid %u): permission errors checked\n", (unsigned)geteuid());
    }
    ipvsct_conntrack_free(ct);
}

/* ---- expectations, nlctrl and the calls added for events, writes, policies, IPVS ---- */

static int keep_msg_cb(const ipvsct_message *msg, void *user)
{
    *(ipvsct_message *)user = *msg;
    return 0;
}

static void test_expect_and_family_decode(void)
{
    struct msg m;
    memset(&m, 0, sizeof m);
    begin(&m, (NFNL_SUBSYS_CTNETLINK_EXP << 8) | IPCTNL_MSG_EXP_NEW, NLM_F_CREATE | NLM_F_EXCL,
          0, AF_INET, 0);
    tuple(&m, CTA_EXPECT_MASTER, 0, "10.0.0.1", "10.0.0.2", IPPROTO_TCP, 40000, 21);
    tuple(&m, CTA_EXPECT_TUPLE, 0, "10.0.0.1", "10.0.0.2", IPPROTO_TCP, 0, 50000);
    tuple(&m, CTA_EXPECT_MASK, 0, "255.255.255.255", "255.255.255.255", IPPROTO_TCP, 0, 0xffff);
    be32a(&m, CTA_EXPECT_TIMEOUT, 299);
    be32a(&m, CTA_EXPECT_ID, 0x1234);
    attr(&m, CTA_EXPECT_HELP_NAME, "ftp", 4);
    be32a(&m, CTA_EXPECT_FLAGS, 1);
    end(&m);
    ipvsct_message got;
    memset(&got, 0, sizeof got);
    size_t n = 0;
    CHECK_RC(ipvsct_decode(m.buf, m.len, keep_msg_cb, &got, &n), IPVSCT_OK);
    const ipvsct_ct_expect *x = &got.data.ct_expect;
    CHECK(n == 1 && got.kind == IPVSCT_MSG_CT_EXPECT, "kind %u", got.kind);
    CHECK(x->master.dst_port == 21 && x->tuple.dst_port == 50000 && x->mask.dst_port == 0xffff &&
              x->timeout == 299 && x->id == 0x1234 && !strcmp(x->helper, "ftp") &&
              x->flags == 1 && x->family == AF_INET && x->msg_type == IPCTNL_MSG_EXP_NEW,
          "expectation: ports %u/%u timeout %u id 0x%x helper %s", x->master.dst_port,
          x->tuple.dst_port, x->timeout, x->id, x->helper);
    uint32_t want = IPVSCT_CT_EXPECT_HAS_TIMEOUT | IPVSCT_CT_EXPECT_HAS_ID |
                    IPVSCT_CT_EXPECT_HAS_HELPER | IPVSCT_CT_EXPECT_HAS_FLAGS;
    CHECK(x->fields == want, "expectation fields 0x%x, want 0x%x", x->fields, want);

    /* An nlctrl NEWFAMILY answer names a generic netlink family and its id. */
    memset(&m, 0, sizeof m);
    align(&m);
    m.start = m.len;
    struct nlmsghdr h = {0, GENL_ID_CTRL, 0, 3, 0};
    memcpy(m.buf + m.len, &h, sizeof h);
    m.len += sizeof h;
    struct genlmsghdr gh = {CTRL_CMD_NEWFAMILY, 2, 0};
    memcpy(m.buf + m.len, &gh, sizeof gh);
    m.len += sizeof gh;
    attr(&m, CTRL_ATTR_FAMILY_NAME, "IPVS", 5);
    uint16_t id = 0x21;
    attr(&m, CTRL_ATTR_FAMILY_ID, &id, 2);
    uint32_t one = 1;
    attr(&m, CTRL_ATTR_VERSION, &one, 4);
    end(&m);
    CHECK_RC(ipvsct_decode(m.buf, m.len, keep_msg_cb, &got, &n), IPVSCT_OK);
    CHECK(got.kind == IPVSCT_MSG_GENL_FAMILY && got.data.genl_family.id == 0x21 &&
              got.data.genl_family.version == 1 && !strcmp(got.data.genl_family.name, "IPVS"),
          "nlctrl: kind %u id 0x%x name %s", got.kind, got.data.genl_family.id,
          got.data.genl_family.name);
}

static int never_cb(const ipvsct_event *e, void *user)
{
    (void)e;
    (void)user;
    return 0;
}

static int never_policy_cb(const ipvsct_ct_timeout_policy *p, void *user)
{
    (void)p;
    (void)user;
    return 0;
}

static int never_service_cb(const ipvsct_ipvs_service *s, void *user)
{
    (void)s;
    (void)user;
    return 0;
}

static void test_new_arguments(void)
{
    int fd = -5;
    ipvsct_events *ev = (ipvsct_events *)&fd; /* sentinel */
    ipvsct_events_stats st;
    CHECK_RC(ipvsct_events_open(NULL, IPVSCT_EVENTS_CONNTRACK, NULL, NULL),
             IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_events_open(NULL, 0, NULL, &ev), IPVSCT_ERR_INVALID_ARGUMENT);
    CHECK(strstr(last_msg(), "groups") != NULL, "'%s'", last_msg());
    CHECK_RC(ipvsct_events_open("", IPVSCT_EVENTS_NEW, NULL, &ev), IPVSCT_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipvsct_events_open("ipvsct-no-such-namespace", IPVSCT_EVENTS_NEW, NULL, &ev),
             IPVSCT_ERR_NAMESPACE);
    CHECK(ev == (ipvsct_events *)&fd, "handle written on failure");
    CHECK_RC(ipvsct_events_fd(NULL, &fd), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK(fd == -5, "fd written on failure");
    CHECK_RC(ipvsct_events_drain(NULL, 0, never_cb, NULL, NULL), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_events_resync(NULL, never_cb, NULL, NULL), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_events_get_stats(NULL, &st), IPVSCT_ERR_NULL_ARGUMENT);
    ipvsct_events_free(NULL);

    ipvsct_ct_request req;
    memset(&req, 0, sizeof req);
    ipvsct_batch_result res[2];
    ipvsct_ct_entry e;
    CHECK_RC(ipvsct_conntrack_create(NULL, &req), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_conntrack_update(NULL, &req), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_conntrack_delete(NULL, &req), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_conntrack_delete_by_id(NULL, 1, &e), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_conntrack_flush(NULL, NULL), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_conntrack_zero_counters(NULL, NULL, NULL, NULL, NULL),
             IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_conntrack_batch(NULL, IPVSCT_BATCH_CREATE, &req, 1, res, 2, NULL),
             IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_conntrack_policies(NULL, never_policy_cb, NULL, NULL),
             IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_conntrack_policy_delete(NULL, "x"), IPVSCT_ERR_NULL_ARGUMENT);

    ipvsct_conntrack *ct = NULL;
    CHECK_RC(ipvsct_conntrack_new(&ct), IPVSCT_OK);
    if (ct) {
        /* Refused before anything is sent: no privilege needed to see these. */
        CHECK_RC(ipvsct_conntrack_create(ct, NULL), IPVSCT_ERR_NULL_ARGUMENT);
        CHECK_RC(ipvsct_conntrack_create(ct, &req), IPVSCT_ERR_INVALID_ARGUMENT);
        CHECK(strstr(last_msg(), "timeout is required") != NULL, "'%s'", last_msg());
        req.fields = 0x80000000u;
        CHECK_RC(ipvsct_conntrack_update(ct, &req), IPVSCT_ERR_INVALID_ARGUMENT);
        CHECK(strstr(last_msg(), "unknown bits") != NULL, "'%s'", last_msg());
        req.fields = 0;
        req.direction = 7;
        CHECK_RC(ipvsct_conntrack_delete(ct, &req), IPVSCT_ERR_INVALID_ARGUMENT);
        CHECK_RC(ipvsct_conntrack_batch(ct, IPVSCT_BATCH_CREATE, &req, 2, res, 1, NULL),
                 IPVSCT_ERR_BUFFER_TOO_SMALL);
        CHECK_RC(ipvsct_conntrack_batch(ct, IPVSCT_BATCH_CREATE, &req, SIZE_MAX / 512, res, 2,
                                        NULL),
                 IPVSCT_ERR_INVALID_ARGUMENT);
        CHECK_RC(ipvsct_conntrack_batch(ct, IPVSCT_BATCH_CREATE, &req, 1, NULL, 1, NULL),
                 IPVSCT_ERR_NULL_ARGUMENT);
        CHECK_RC(ipvsct_conntrack_policies(ct, NULL, NULL, NULL), IPVSCT_ERR_NULL_ARGUMENT);
        CHECK_RC(ipvsct_conntrack_policy_get(ct, NULL, NULL), IPVSCT_ERR_NULL_ARGUMENT);
        CHECK_RC(ipvsct_conntrack_default_policy(ct, AF_INET, 99, NULL),
                 IPVSCT_ERR_NULL_ARGUMENT);
        ipvsct_ct_timeout_policy p;
        memset(&p, 0, sizeof p);
        CHECK_RC(ipvsct_conntrack_default_policy(ct, AF_INET, 99, &p),
                 IPVSCT_ERR_INVALID_ARGUMENT);
        ipvsct_dump_filter f;
        memset(&f, 0, sizeof f);
        f.table = IPVSCT_TABLE_UNCONFIRMED;
        CHECK_RC(ipvsct_conntrack_flush(ct, &f), IPVSCT_ERR_INVALID_ARGUMENT);
        CHECK_RC(ipvsct_conntrack_zero_counters(ct, &f, NULL, NULL, NULL),
                 IPVSCT_ERR_INVALID_ARGUMENT);
        if (geteuid() != 0) {
            ipvsct_ct_request ok;
            memset(&ok, 0, sizeof ok);
            ok.orig.fields = IPVSCT_TUPLE_HAS_SRC | IPVSCT_TUPLE_HAS_DST | IPVSCT_TUPLE_HAS_PROTO |
                             IPVSCT_TUPLE_HAS_SRC_PORT | IPVSCT_TUPLE_HAS_DST_PORT;
            ok.orig.src.family = ok.orig.dst.family = IPVSCT_AF_INET;
            ok.orig.proto = 17;
            ok.orig.src_port = 1;
            ok.orig.dst_port = 2;
            ok.fields = IPVSCT_CT_REQUEST_HAS_TIMEOUT;
            ok.timeout = 10;
            CHECK_RC(ipvsct_conntrack_create(ct, &ok), IPVSCT_ERR_PERMISSION);
            CHECK_RC(ipvsct_conntrack_batch(ct, IPVSCT_BATCH_CREATE, &ok, 1, res, 1, NULL),
                     IPVSCT_ERR_PERMISSION);
            /* Subscribing to conntrack events needs CAP_NET_ADMIN too. */
            ev = (ipvsct_events *)&fd;
            CHECK_RC(ipvsct_events_open(NULL, IPVSCT_EVENTS_NEW, NULL, &ev), IPVSCT_ERR_PERMISSION);
            CHECK(ev == (ipvsct_events *)&fd, "handle written on failure");
        }
        ipvsct_conntrack_free(ct);
    }

    ipvsct_ipvs *ipvs = (ipvsct_ipvs *)&fd;
    ipvsct_ipvs_info info;
    ipvsct_ipvs_service svc;
    ipvsct_ipvs_service_key key;
    memset(&svc, 0, sizeof svc);
    memset(&key, 0, sizeof key);
    CHECK_RC(ipvsct_ipvs_open(NULL, NULL), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_ipvs_open("", &ipvs), IPVSCT_ERR_INVALID_ARGUMENT);
    CHECK(ipvs == (ipvsct_ipvs *)&fd, "ipvs handle written on failure");
    CHECK_RC(ipvsct_ipvs_get_info(NULL, &info), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_ipvs_services(NULL, never_service_cb, NULL, NULL), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_ipvs_service_add(NULL, &svc), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_ipvs_dest_delete(NULL, &key, NULL), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_ipvs_zero(NULL, NULL), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_ipvs_flush(NULL), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_ipvs_daemon_stop(NULL, IPVSCT_IPVS_DAEMON_MASTER), IPVSCT_ERR_NULL_ARGUMENT);
    ipvsct_ipvs_free(NULL);
    /* This kernel may or may not have IPVS: either a handle or IPVSCT_ERR_UNSUPPORTED. */
    ipvs = NULL;
    int32_t rc = ipvsct_ipvs_open(NULL, &ipvs);
    CHECK((rc == IPVSCT_OK && ipvs) || (rc == IPVSCT_ERR_UNSUPPORTED && !ipvs) ||
              (rc == IPVSCT_ERR_PERMISSION && !ipvs),
          "ipvs open: %s", ipvsct_result_name(rc));
    if (ipvs) {
        CHECK_RC(ipvsct_ipvs_service_add(ipvs, &svc), IPVSCT_ERR_INVALID_ARGUMENT);
        CHECK_RC(ipvsct_ipvs_daemon_stop(ipvs, 9), IPVSCT_ERR_INVALID_ARGUMENT);
        ipvsct_ipvs_free(ipvs);
    }
}

/* ---- error calls, names, version ---- */

static void *other_thread(void *p)
{
    (void)p;
    /* An error on this thread must not replace the main thread's last error. */
    ipvsct_decode(NULL, 0, NULL, NULL, NULL);
    ipvsct_error e;
    int ok = ipvsct_error_last(&e) == IPVSCT_OK && e.code == IPVSCT_ERR_NULL_ARGUMENT;
    return ok ? p : NULL;
}

static void test_errors(void)
{
    char small[4], big[512];
    ipvsct_error_clear();
    CHECK(ipvsct_error_message_len() == 1, "no error: %zu", ipvsct_error_message_len());
    CHECK_RC(ipvsct_error_message(big, sizeof big), IPVSCT_OK);
    CHECK(big[0] == 0, "empty message expected");
    ipvsct_error e;
    CHECK_RC(ipvsct_error_last(&e), IPVSCT_OK);
    CHECK(e.code == IPVSCT_OK && e.message[0] == 0 && e.fields == 0, "no error recorded");

    ipvsct_tuple tu;
    memset(&tu, 0, sizeof tu);
    CHECK_RC(ipvsct_conntrack_get(NULL, &tu, NULL), IPVSCT_ERR_NULL_ARGUMENT);
    size_t need = ipvsct_error_message_len();
    CHECK(need == strlen("argument `ct` is NULL") + 1, "needs %zu", need);
    memset(small, 'x', sizeof small);
    CHECK_RC(ipvsct_error_message(small, sizeof small), IPVSCT_ERR_BUFFER_TOO_SMALL);
    CHECK(small[0] == 'x', "buffer written on BUFFER_TOO_SMALL");
    CHECK_RC(ipvsct_error_message(NULL, 10), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_error_message(big, 0), IPVSCT_ERR_BUFFER_TOO_SMALL);
    CHECK_RC(ipvsct_error_last(NULL), IPVSCT_ERR_NULL_ARGUMENT);
    /* ...and none of these failures replaced the last error. */
    CHECK_RC(ipvsct_error_message(big, need), IPVSCT_OK);
    CHECK(!strcmp(big, "argument `ct` is NULL"), "'%s'", big);

    pthread_t th;
    static int token;
    void *res = NULL;
    pthread_create(&th, NULL, other_thread, &token);
    pthread_join(th, &res);
    CHECK(res == &token, "the other thread saw its own error");
    CHECK_RC(ipvsct_error_message(big, sizeof big), IPVSCT_OK);
    CHECK(!strcmp(big, "argument `ct` is NULL"), "last error is per thread: '%s'", big);
    ipvsct_error_clear();
    CHECK(ipvsct_error_message_len() == 1, "cleared");

    CHECK(!strcmp(ipvsct_result_name(IPVSCT_ERR_NOT_FOUND), "IPVSCT_ERR_NOT_FOUND"), "name");
    CHECK(!strcmp(ipvsct_result_name(IPVSCT_DONE), "IPVSCT_DONE"), "name");
    CHECK(!strcmp(ipvsct_result_name(-1000), "IPVSCT_UNKNOWN_RESULT"), "unknown name");
    char v[32];
    snprintf(v, sizeof v, "%d.%d.%d", IPVSCT_VERSION_MAJOR, IPVSCT_VERSION_MINOR,
             IPVSCT_VERSION_PATCH);
    CHECK(!strcmp(ipvsct_version(), v), "library %s, header %s", ipvsct_version(), v);
}

int main(void)
{
    test_decode();
    test_arguments();
    test_expect_and_family_decode();
    test_new_arguments();
    test_errors();
    return finish("test_api");
}
