/* Conntrack events through the C API, run by tests/c/run.sh inside a network namespace
 * of its own (ip netns exec NS test_events --netns NS): real TCP traffic over loopback
 * shows up as NEW and UPDATE events through poll() on ipvsct_events_fd and
 * ipvsct_events_drain, deleting the entry as a DESTROY event with counters and stop time;
 * a subscription with a tiny receive buffer gets an OVERRUN event (and
 * IPVSCT_OVERRUN_SEEN) when a batch floods it, and ipvsct_events_resync then reports
 * exactly the connections it missed; filters, limits and re-entrancy. Every wait is
 * bounded. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define TCP_PORT 19090
#define FLOOD 3000

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static double mono(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* What the callbacks saw. */
struct seen {
    int new_, update, destroy, overrun, other;
    int tcp_new, tcp_time_wait, tcp_destroy;
    ipvsct_ct_entry first_new, destroyed;
    ipvsct_overrun last_overrun;
    uint16_t port; /* only TCP events to this port count as tcp_* */
};

static int record_cb(const ipvsct_event *ev, void *user)
{
    struct seen *s = (struct seen *)user;
    switch (ev->kind) {
    case IPVSCT_EVENT_NEW:
    case IPVSCT_EVENT_UPDATE:
    case IPVSCT_EVENT_DESTROY: {
        const ipvsct_ct_entry *e = &ev->data.entry;
        int ours = e->orig.proto == 6 && e->orig.dst_port == s->port;
        if (ev->kind == IPVSCT_EVENT_NEW) {
            s->new_++;
            if (ours && s->tcp_new++ == 0)
                s->first_new = *e;
        } else if (ev->kind == IPVSCT_EVENT_UPDATE) {
            s->update++;
            if (ours && e->state_kind == IPVSCT_STATE_KIND_TCP && e->state == 7)
                s->tcp_time_wait++;
        } else {
            s->destroy++;
            if (ours && s->tcp_destroy++ == 0)
                s->destroyed = *e;
        }
        break;
    }
    case IPVSCT_EVENT_OVERRUN:
        s->overrun++;
        s->last_overrun = ev->data.overrun;
        break;
    default:
        s->other++;
    }
    return 0;
}

/* Polls the subscription's fd and drains until `done(s)` or `secs` pass. */
static int wait_for(ipvsct_events *ev, struct seen *s, int (*done)(const struct seen *),
                    double secs)
{
    int fd = -1;
    CHECK_RC(ipvsct_events_fd(ev, &fd), IPVSCT_OK);
    double end = mono() + secs;
    while (!done(s) && mono() < end) {
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, 200);
        if (r < 0 && errno != EINTR) {
            CHECK(0, "poll: %s", strerror(errno));
            return 0;
        }
        if (r > 0) {
            uint64_t n = 0;
            int32_t rc = ipvsct_events_drain(ev, 0, record_cb, s, &n);
            CHECK(rc == IPVSCT_OK || rc == IPVSCT_OVERRUN_SEEN, "drain: %s (%s)",
                  ipvsct_result_name(rc), last_msg());
            CHECK(p.revents & POLLIN, "poll revents 0x%x", p.revents);
        }
    }
    return done(s);
}

static int have_new_and_time_wait(const struct seen *s)
{
    return s->tcp_new > 0 && s->tcp_time_wait > 0;
}

static int have_destroy(const struct seen *s)
{
    return s->tcp_destroy > 0;
}

/* One TCP connection to 127.0.0.1:TCP_PORT: request, answer, client closes first. */
static void tcp_connection(void)
{
    int l = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    struct timeval tv = {5, 0};
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(TCP_PORT);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    CHECK(bind(l, (struct sockaddr *)&a, sizeof a) == 0 && listen(l, 4) == 0, "listen: %s",
          strerror(errno));
    CHECK(connect(c, (struct sockaddr *)&a, sizeof a) == 0, "connect: %s", strerror(errno));
    int s = accept(l, NULL, NULL);
    CHECK(s >= 0, "accept: %s", strerror(errno));
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[64];
    CHECK(send(c, "ping", 4, 0) == 4 && recv(s, buf, sizeof buf, 0) == 4, "request");
    CHECK(send(s, "pong", 4, 0) == 4 && recv(c, buf, sizeof buf, 0) == 4, "answer");
    close(c);
    CHECK(recv(s, buf, sizeof buf, 0) == 0, "server expected EOF");
    close(s);
    close(l);
}

static ipvsct_tuple our_tuple(const ipvsct_ct_entry *e)
{
    ipvsct_tuple t = e->orig;
    t.fields &= ~IPVSCT_TUPLE_HAS_ZONE;
    return t;
}

static void test_traffic(const char *netns, const ipvsct_conntrack *ct,
                         const ipvsct_ct_timeouts *t)
{
    ipvsct_events *ev = NULL;
    CHECK_RC(ipvsct_events_open(netns, IPVSCT_EVENTS_CONNTRACK, NULL, &ev), IPVSCT_OK);
    if (!ev)
        return;
    struct seen s;
    memset(&s, 0, sizeof s);
    s.port = TCP_PORT;
    uint64_t n = 99;
    CHECK_RC(ipvsct_events_drain(ev, 0, record_cb, &s, &n), IPVSCT_OK);
    CHECK(n == 0, "%llu events before any traffic", (unsigned long long)n);

    uint64_t t0 = now_ns();
    tcp_connection();
    CHECK(wait_for(ev, &s, have_new_and_time_wait, 10),
          "NEW %d and TIME_WAIT update %d for port %d", s.tcp_new, s.tcp_time_wait, TCP_PORT);
    const ipvsct_ct_entry *e = &s.first_new;
    CHECK(s.tcp_new == 1 && e->msg_type == 0 && e->state_kind == IPVSCT_STATE_KIND_TCP &&
              e->state == 1 && !strcmp(e->state_name, "SYN_SENT"),
          "NEW: %d events, msg %u state %u %s", s.tcp_new, e->msg_type, e->state, e->state_name);
    CHECK(e->state_timeout == t->tcp.syn_sent, "NEW state_timeout %u, SYN_SENT policy %u",
          e->state_timeout, t->tcp.syn_sent);
    CHECK(e->orig.src.addr[0] == 127 && e->orig.dst.addr[0] == 127 &&
              e->reply.src_port == TCP_PORT && (e->nlmsg_flags & 0x600) == 0x600,
          "NEW tuple/flags: reply sport %u flags 0x%x", e->reply.src_port, e->nlmsg_flags);
    CHECK((e->fields & IPVSCT_CT_ENTRY_HAS_EVENT_TIME) == 0 ||
              (e->event_time >= t0 - 1000000000ull && e->event_time <= now_ns()),
          "event time %llu", (unsigned long long)e->event_time);
    CHECK(s.update >= 2, "%d UPDATE events for a whole connection", s.update);

    /* Deleting the entry is a DESTROY event, with counters and start/stop times. */
    ipvsct_ct_request d;
    memset(&d, 0, sizeof d);
    d.orig = our_tuple(e);
    CHECK_RC(ipvsct_conntrack_delete(ct, &d), IPVSCT_OK);
    CHECK(wait_for(ev, &s, have_destroy, 10), "no DESTROY event after the delete");
    const ipvsct_ct_entry *x = &s.destroyed;
    CHECK(x->msg_type == 2 && x->orig.src_port == e->orig.src_port && x->id == e->id,
          "DESTROY: msg %u sport %u id %u/%u", x->msg_type, x->orig.src_port, x->id, e->id);
    CHECK((x->fields & IPVSCT_CT_ENTRY_HAS_COUNTERS_ORIG) && x->counters_orig.packets >= 4 &&
              x->counters_reply.packets >= 3,
          "DESTROY counters %llu/%llu", (unsigned long long)x->counters_orig.packets,
          (unsigned long long)x->counters_reply.packets);
    CHECK((x->fields & IPVSCT_CT_ENTRY_HAS_TIMESTAMP_STOP) &&
              (x->fields & IPVSCT_CT_ENTRY_HAS_TIMESTAMP_START) &&
              x->timestamp_start <= x->timestamp_stop && x->timestamp_stop <= now_ns(),
          "DESTROY times %llu..%llu", (unsigned long long)x->timestamp_start,
          (unsigned long long)x->timestamp_stop);

    ipvsct_events_stats st;
    CHECK_RC(ipvsct_events_get_stats(ev, &st), IPVSCT_OK);
    CHECK(st.received >= (uint64_t)(s.new_ + s.update + s.destroy) && st.overruns == 0 &&
              st.table_entries == 0,
          "stats: received %llu overruns %llu", (unsigned long long)st.received,
          (unsigned long long)st.overruns);
    ipvsct_events_free(ev);
}

/* A batch of `n` UDP creates to 10.9.0.1 (each a NEW event). */
static void flood(const ipvsct_conntrack *ct, int n, const char *prefix)
{
    ipvsct_ct_request *reqs = calloc((size_t)n, sizeof *reqs);
    ipvsct_batch_result *res = calloc((size_t)n, sizeof *res);
    CHECK(reqs && res, "out of memory");
    for (int i = 0; reqs && res && i < n; i++) {
        char src[32];
        snprintf(src, sizeof src, "%s.%d.%d", prefix, i / 250, i % 250 + 1);
        ipvsct_tuple *t = &reqs[i].orig;
        t->fields = IPVSCT_TUPLE_HAS_SRC | IPVSCT_TUPLE_HAS_DST | IPVSCT_TUPLE_HAS_PROTO |
                    IPVSCT_TUPLE_HAS_SRC_PORT | IPVSCT_TUPLE_HAS_DST_PORT;
        t->src.family = t->dst.family = IPVSCT_AF_INET;
        inet_pton(AF_INET, src, t->src.addr);
        inet_pton(AF_INET, "10.9.0.1", t->dst.addr);
        t->proto = 17;
        t->src_port = 4000;
        t->dst_port = 53;
        reqs[i].fields = IPVSCT_CT_REQUEST_HAS_TIMEOUT;
        reqs[i].timeout = 600;
    }
    ipvsct_batch_report rep;
    memset(&rep, 0, sizeof rep);
    if (reqs && res)
        CHECK_RC(ipvsct_conntrack_batch(ct, IPVSCT_BATCH_CREATE, reqs, (size_t)n, res, (size_t)n,
                                        &rep),
                 IPVSCT_OK);
    CHECK(rep.succeeded == (uint64_t)n, "flood: %llu of %d creates",
          (unsigned long long)rep.succeeded, n);
    free(reqs);
    free(res);
}

struct busy {
    ipvsct_events *ev;
    int32_t drain_rc, stats_rc, fd_rc;
    int calls;
};

static int busy_cb(const ipvsct_event *e, void *user)
{
    (void)e;
    struct busy *b = (struct busy *)user;
    if (b->calls++ == 0) {
        ipvsct_events_stats st;
        int fd;
        b->drain_rc = ipvsct_events_drain(b->ev, 0, busy_cb, b, NULL);
        b->stats_rc = ipvsct_events_get_stats(b->ev, &st);
        b->fd_rc = ipvsct_events_fd(b->ev, &fd);
    }
    return 0;
}

static void test_overrun_and_resync(const ipvsct_conntrack *ct)
{
    CHECK_RC(ipvsct_conntrack_flush(ct, NULL), IPVSCT_OK);
    ipvsct_events_options o;
    memset(&o, 0, sizeof o);
    o.rcvbuf = 4096;
    ipvsct_events *plain = NULL, *kept = NULL;
    CHECK_RC(ipvsct_events_open(NULL, IPVSCT_EVENTS_NEW, &o, &plain), IPVSCT_OK);
    o.flags = IPVSCT_EVENTS_KEEP_TABLE;
    CHECK_RC(ipvsct_events_open(NULL, IPVSCT_EVENTS_CONNTRACK, &o, &kept), IPVSCT_OK);
    if (!plain || !kept)
        goto out;

    uint64_t before = now_ns();
    flood(ct, FLOOD, "10.8");
    struct seen s;
    memset(&s, 0, sizeof s);
    uint64_t n = 0;
    int32_t rc = ipvsct_events_drain(plain, 0, record_cb, &s, &n);
    CHECK(rc == IPVSCT_OVERRUN_SEEN, "drain after the flood: %s, expected IPVSCT_OVERRUN_SEEN",
          ipvsct_result_name(rc));
    CHECK(s.overrun >= 1 && s.new_ > 0 && s.new_ < FLOOD && n == (uint64_t)(s.new_ + s.overrun),
          "flood of %d: %d NEW, %d OVERRUN events, %llu delivered", FLOOD, s.new_, s.overrun,
          (unsigned long long)n);
    const ipvsct_overrun *ov = &s.last_overrun;
    CHECK(ov->failed_receives >= 1 && ov->total >= 1 && ov->since_ns <= ov->at_ns &&
              ov->at_ns >= before && ov->at_ns <= now_ns(),
          "overrun: %llu failed receives, total %llu, %llu..%llu",
          (unsigned long long)ov->failed_receives, (unsigned long long)ov->total,
          (unsigned long long)ov->since_ns, (unsigned long long)ov->at_ns);
    ipvsct_events_stats st;
    CHECK_RC(ipvsct_events_get_stats(plain, &st), IPVSCT_OK);
    CHECK(st.overruns == (uint64_t)s.overrun, "stats: %llu overruns, %d events",
          (unsigned long long)st.overruns, s.overrun);
    /* Nothing left: the next drain is a plain OK. */
    CHECK_RC(ipvsct_events_drain(plain, 0, record_cb, &s, &n), IPVSCT_OK);
    CHECK(n == 0, "%llu events after the queue was read empty", (unsigned long long)n);

    /* The kept table: drained NEW events plus what resync reports are every entry. */
    struct seen k;
    memset(&k, 0, sizeof k);
    rc = ipvsct_events_drain(kept, 0, record_cb, &k, &n);
    CHECK(rc == IPVSCT_OVERRUN_SEEN && k.overrun >= 1, "kept: drain %s, %d overruns",
          ipvsct_result_name(rc), k.overrun);
    struct seen r;
    memset(&r, 0, sizeof r);
    CHECK_RC(ipvsct_events_resync(kept, record_cb, &r, &n), IPVSCT_OK);
    CHECK(r.destroy == 0 && r.overrun == 0 && k.new_ + r.new_ == FLOOD &&
              n == (uint64_t)(r.new_ + r.update),
          "resync: %d NEW + %d drained = %d (want %d), %d UPDATE, %d DESTROY", r.new_, k.new_,
          k.new_ + r.new_, FLOOD, r.update, r.destroy);
    CHECK_RC(ipvsct_events_get_stats(kept, &st), IPVSCT_OK);
    CHECK(st.table_entries == FLOOD, "kept table: %llu entries, %d in the kernel",
          (unsigned long long)st.table_entries, FLOOD);
    /* A second resync finds nothing; a flush is then 3000 DESTROY differences. */
    CHECK_RC(ipvsct_events_resync(kept, record_cb, &r, &n), IPVSCT_OK);
    CHECK(n == 0, "a second resync reported %llu differences", (unsigned long long)n);
    CHECK_RC(ipvsct_conntrack_flush(ct, NULL), IPVSCT_OK);
    memset(&r, 0, sizeof r);
    CHECK_RC(ipvsct_events_resync(kept, record_cb, &r, &n), IPVSCT_OK);
    CHECK(r.destroy == FLOOD && n == FLOOD, "resync after a flush: %d DESTROY",
          r.destroy);

    /* Without a kept table, resync is a snapshot: every entry as NEW. */
    flood(ct, 20, "10.7");
    memset(&r, 0, sizeof r);
    CHECK_RC(ipvsct_events_resync(plain, record_cb, &r, &n), IPVSCT_OK);
    CHECK(r.new_ == 20 && n == 20, "snapshot resync: %d NEW", r.new_);

    /* Limits and re-entrancy. */
    flood(ct, 5, "10.6");
    memset(&s, 0, sizeof s);
    CHECK_RC(ipvsct_events_drain(kept, 1, record_cb, &s, &n), IPVSCT_STOPPED);
    CHECK(n == 1, "max_events 1 delivered %llu", (unsigned long long)n);
    struct busy b = {kept, 0, 0, 0, 0};
    CHECK_RC(ipvsct_events_drain(kept, 0, busy_cb, &b, &n), IPVSCT_OK);
    CHECK(b.calls >= 1 && b.drain_rc == IPVSCT_ERR_BUSY && b.stats_rc == IPVSCT_ERR_BUSY &&
              b.fd_rc == IPVSCT_OK,
          "inside the callback: drain %s stats %s fd %s", ipvsct_result_name(b.drain_rc),
          ipvsct_result_name(b.stats_rc), ipvsct_result_name(b.fd_rc));
out:
    ipvsct_events_free(plain);
    ipvsct_events_free(kept);
    CHECK_RC(ipvsct_conntrack_flush(ct, NULL), IPVSCT_OK);
}

/* A family filter: IPv4 events are skipped before decoding, IPv6 ones delivered. */
static void test_filter(const ipvsct_conntrack *ct)
{
    ipvsct_events_options o;
    memset(&o, 0, sizeof o);
    o.family = IPVSCT_AF_INET6;
    o.protocols_len = 1;
    o.protocols[0] = 17;
    ipvsct_events *ev = NULL;
    CHECK_RC(ipvsct_events_open(NULL, IPVSCT_EVENTS_NEW, &o, &ev), IPVSCT_OK);
    if (!ev)
        return;
    flood(ct, 3, "10.5");
    ipvsct_ct_request r;
    memset(&r, 0, sizeof r);
    r.orig.fields = IPVSCT_TUPLE_HAS_SRC | IPVSCT_TUPLE_HAS_DST | IPVSCT_TUPLE_HAS_PROTO |
                    IPVSCT_TUPLE_HAS_SRC_PORT | IPVSCT_TUPLE_HAS_DST_PORT;
    r.orig.src.family = r.orig.dst.family = IPVSCT_AF_INET6;
    inet_pton(AF_INET6, "fd00::5", r.orig.src.addr);
    inet_pton(AF_INET6, "fd00::6", r.orig.dst.addr);
    r.orig.proto = 17;
    r.orig.src_port = 1;
    r.orig.dst_port = 2;
    r.fields = IPVSCT_CT_REQUEST_HAS_TIMEOUT;
    r.timeout = 60;
    CHECK_RC(ipvsct_conntrack_create(ct, &r), IPVSCT_OK);
    r.orig.proto = 6; /* IPv6 but TCP: filtered too */
    CHECK_RC(ipvsct_conntrack_create(ct, &r), IPVSCT_OK);
    struct seen s;
    memset(&s, 0, sizeof s);
    uint64_t n = 0;
    CHECK_RC(ipvsct_events_drain(ev, 0, record_cb, &s, &n), IPVSCT_OK);
    ipvsct_events_stats st;
    CHECK_RC(ipvsct_events_get_stats(ev, &st), IPVSCT_OK);
    CHECK(n == 1 && s.new_ == 1 && st.received == 5 && st.filtered == 4,
          "filter: %llu delivered, %llu received, %llu filtered", (unsigned long long)n,
          (unsigned long long)st.received, (unsigned long long)st.filtered);
    ipvsct_events_free(ev);
    CHECK_RC(ipvsct_conntrack_flush(ct, NULL), IPVSCT_OK);

    /* Bad options and groups are refused before any socket is made. */
    o.protocols_len = 9;
    ev = (ipvsct_events *)&o;
    CHECK_RC(ipvsct_events_open(NULL, IPVSCT_EVENTS_NEW, &o, &ev), IPVSCT_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipvsct_events_open(NULL, 0, NULL, &ev), IPVSCT_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipvsct_events_open(NULL, 0x40, NULL, &ev), IPVSCT_ERR_INVALID_ARGUMENT);
    CHECK(ev == (ipvsct_events *)&o, "handle written on failure");
}

int main(int argc, char **argv)
{
    const char *netns = argc == 3 && !strcmp(argv[1], "--netns") ? argv[2] : NULL;
    if (!netns) {
        fprintf(stderr, "usage: test_events --netns NAME (run inside that namespace)\n");
        return 2;
    }
    ipvsct_conntrack *ct = NULL;
    CHECK_RC(ipvsct_conntrack_new(&ct), IPVSCT_OK);
    if (!ct)
        return finish("test_events");
    ipvsct_ct_timeouts t;
    CHECK_RC(ipvsct_conntrack_default_timeouts(ct, &t), IPVSCT_OK);
    CHECK_RC(ipvsct_conntrack_flush(ct, NULL), IPVSCT_OK);
    test_traffic(netns, ct, &t);
    test_overrun_and_resync(ct);
    test_filter(ct);
    ipvsct_conntrack_free(ct);
    return finish("test_events");
}
