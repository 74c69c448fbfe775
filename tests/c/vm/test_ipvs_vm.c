/* The IPVS calls of the C API against a real ip_vs, inside the QEMU guest of
 * tests/c/vm/run.sh (tests/c/vm/guest.sh sets up the NAT lab and the traffic first).
 * Everything read is printed the way ipvsadm prints it and compared with ipvsadm's own
 * output taken at the same moment: -Ln, --stats --exact, --rate, --thresholds,
 * --persistent-conn, --tun-info, -Lnc, --timeout, --daemon. Every change the library
 * makes (services, destinations, timeouts, daemons, zeroing, flush) is checked through
 * ipvsadm, and errors come back as result codes with the kernel's errno.
 *
 * Usage: test_ipvs_vm --ipvsadm PATH --vip ADDR --requests N --netns NAME
 *   N: HTTP requests the guest sent through the new service TCP ADDR:80 (2 real servers,
 *   rr); NAME: an empty namespace for the by-name checks. Connection entries of earlier
 *   runs (other VIPs) may still be in the table. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "ipvsadm_format.h"

static const char *g_ipvsadm = "/usr/sbin/ipvsadm", *g_netns, *g_vip;
static char g_web[64]; /* "TCP <vip>:80" */
static long g_requests;

/* The output of `cmd` (at most n - 1 bytes); 0 if it ran and exited 0. */
static int run(const char *cmd, char *out, size_t n)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t got = fread(out, 1, n - 1, p);
    out[got] = 0;
    return pclose(p);
}

static int ipvsadm(const char *args, char *out, size_t n)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s %s 2>&1", g_ipvsadm, args);
    int rc = run(cmd, out, n);
    CHECK(rc == 0, "%s failed: %s", cmd, out);
    return rc;
}

struct collect {
    struct service_set *s;
};

static int svc_cb(const ipvsct_ipvs_service *svc, void *user)
{
    struct service_set *s = (struct service_set *)user;
    if (s->n < 16)
        s->svc[s->n++] = *svc;
    return 0;
}

struct dest_list {
    ipvsct_ipvs_dest *v;
    int *n;
};

static int dest_cb(const ipvsct_ipvs_dest *d, void *user)
{
    struct dest_list *l = (struct dest_list *)user;
    if (*l->n < 8)
        l->v[(*l->n)++] = *d;
    return 0;
}

/* Every service with its destinations, through the library. */
static void read_all(const ipvsct_ipvs *ipvs, struct service_set *s)
{
    memset(s, 0, sizeof *s);
    size_t n = 0;
    CHECK_RC(ipvsct_ipvs_services(ipvs, svc_cb, s, &n), IPVSCT_OK);
    CHECK(n == (size_t)s->n, "%zu services reported, %d seen", n, s->n);
    for (int i = 0; i < s->n; i++) {
        struct dest_list l = {s->dest[i], &s->ndest[i]};
        CHECK_RC(ipvsct_ipvs_dests(ipvs, &s->svc[i].key, dest_cb, &l, NULL), IPVSCT_OK);
    }
}

/* True if `line` is one of the (sorted) lines of `t`. */
static int has_line(const struct ipvs_text *t, const char *line)
{
    return bsearch(&line, t->v, (size_t)t->n, sizeof t->v[0], ipvs_cmp) != NULL;
}

/* One listing of the library against ipvsadm's, with the ipvsadm options `args`. The
 * kernel's estimator copies the counters and updates the rates every 2 s, and an ipvsadm
 * run can take longer than that under emulation, so ipvsadm's read is bracketed by two
 * library reads: every line ipvsadm prints must be the library's line of one of them (at
 * most one estimator update inside the bracket). Else (the estimator ran twice, or an
 * entry's state moved) it tries again, bounded; the last try reports every line that
 * differs from the second library read. */
static void compare_live(const ipvsct_ipvs *ipvs, enum ipvs_view v, const char *args)
{
    static char out[65536];
    static struct service_set a, b;
    enum { TRIES = 10 };
    for (int attempt = 0; attempt < TRIES; attempt++) {
        struct ipvs_text ka = {.n = 0}, kb = {.n = 0}, want = {.n = 0};
        read_all(ipvs, &a);
        ipvsadm(args, out, sizeof out);
        read_all(ipvs, &b);
        ipvs_listing(&ka, &a, v);
        ipvs_listing(&kb, &b, v);
        ipvs_keys_of_listing(&want, out);
        qsort(ka.v, (size_t)ka.n, sizeof ka.v[0], ipvs_cmp);
        qsort(kb.v, (size_t)kb.n, sizeof kb.v[0], ipvs_cmp);
        int ok = want.n > 0 && want.n == ka.n && want.n == kb.n;
        for (int i = 0; ok && i < want.n; i++)
            ok = has_line(&ka, want.v[i]) || has_line(&kb, want.v[i]);
        char what[128];
        snprintf(what, sizeof what, "ipvsadm %s", args);
        if (ok) /* one check per line, as ipvs_compare counts them */
            for (int i = 0; i < want.n; i++)
                CHECK(has_line(&ka, want.v[i]) || has_line(&kb, want.v[i]), "%s: %s", what,
                      want.v[i]);
        else if (attempt == TRIES - 1)
            ipvs_compare(what, &want, &kb);
        else
            fprintf(stderr, "retrying: %s moved during the read (attempt %d)\n", what, attempt);
        ipvs_text_free(&ka);
        ipvs_text_free(&kb);
        ipvs_text_free(&want);
        if (ok)
            return;
        usleep(300000);
    }
}

static void compare_all(const ipvsct_ipvs *ipvs)
{
    compare_live(ipvs, V_LN, "-Ln");
    compare_live(ipvs, V_STATS, "-Ln --stats --exact");
    compare_live(ipvs, V_RATE, "-Ln --rate --exact");
    compare_live(ipvs, V_THRESH, "-Ln --thresholds");
    compare_live(ipvs, V_PERSIST, "-Ln --persistent-conn");
    compare_live(ipvs, V_TUN, "-Ln --tun-info");
}

static ipvsct_ipvs_service_key key4(uint16_t proto, const char *addr, uint16_t port)
{
    ipvsct_ipvs_service_key k;
    memset(&k, 0, sizeof k);
    k.af = IPVSCT_AF_INET;
    k.addr.family = IPVSCT_AF_INET;
    inet_pton(AF_INET, addr, k.addr.addr);
    k.protocol = proto;
    k.port = port;
    return k;
}

static ipvsct_ipvs_service service(ipvsct_ipvs_service_key k, const char *sched)
{
    ipvsct_ipvs_service s;
    memset(&s, 0, sizeof s);
    s.key = k;
    snprintf(s.scheduler, sizeof s.scheduler, "%s", sched);
    return s;
}

static ipvsct_ipvs_dest dest(int v6, const char *addr, uint16_t port, uint32_t fwd,
                             uint32_t weight)
{
    ipvsct_ipvs_dest d;
    memset(&d, 0, sizeof d);
    d.addr.family = v6 ? IPVSCT_AF_INET6 : IPVSCT_AF_INET;
    inet_pton(v6 ? AF_INET6 : AF_INET, addr, d.addr.addr);
    d.port = port;
    d.fwd_method = fwd;
    d.weight = weight;
    return d;
}

/* ---- reads: the traffic service ---- */

/* Two reads that must agree are retried this many times, this long apart. */
#define AGREE_TRIES 20
#define AGREE_PAUSE_US 200000

/* True if the two texts hold the same lines, in any order (both get sorted). */
static int texts_equal(struct ipvs_text *a, struct ipvs_text *b)
{
    if (a->n != b->n)
        return 0;
    qsort(a->v, (size_t)a->n, sizeof a->v[0], ipvs_cmp);
    qsort(b->v, (size_t)b->n, sizeof b->v[0], ipvs_cmp);
    for (int i = 0; i < a->n; i++)
        if (strcmp(a->v[i], b->v[i]))
            return 0;
    return 1;
}

struct conn_view {
    int n, inactive_to[2], active;
    uint8_t vip[4];
};

static int conn_cb(const ipvsct_ipvs_conn *c, void *user)
{
    struct conn_view *v = (struct conn_view *)user;
    if (memcmp(c->vaddr.addr, v->vip, 4) != 0)
        return 0; /* an earlier run's entry */
    v->n++;
    if (c->activity == IPVSCT_IPVS_ACTIVE)
        v->active++;
    if (c->activity == IPVSCT_IPVS_INACTIVE && c->dest.addr[2] >= 2 && c->dest.addr[2] <= 3)
        v->inactive_to[c->dest.addr[2] - 2]++;
    CHECK((c->fields & IPVSCT_IPVS_CONN_HAS_STATE_TIMEOUT) && c->expires <= c->state_timeout &&
              c->protocol == 6 && c->vport == 80,
          "conn %s: %u of %u s, proto %u", c->state_name, c->expires, c->state_timeout,
          c->protocol);
    return 0;
}

static int conn_line_cb(const ipvsct_ipvs_conn *c, void *user)
{
    /* The -Lnc line without the expiry (it ticks between the two reads). */
    char line[IPVS_LINE], *sp;
    ipvs_fmt_conn(line, sizeof line, c);
    char *first = strchr(line, ' ');
    if (first && (sp = strchr(first + 1, ' ')) != NULL)
        memmove(first, sp, strlen(sp) + 1);
    ipvs_text_add((struct ipvs_text *)user, line);
    return 0;
}

static void test_reads(const ipvsct_ipvs *ipvs)
{
    static char out[65536];
    ipvsct_ipvs_info info;
    CHECK_RC(ipvsct_ipvs_get_info(ipvs, &info), IPVSCT_OK);
    char line[IPVS_LINE];
    ipvs_fmt_info(line, sizeof line, &info);
    ipvsadm("-Ln", out, sizeof out);
    CHECK(!strncmp(out, line, strlen(line)), "info '%s' vs ipvsadm '%.60s'", line, out);

    static struct service_set s;
    /* The kernel copies the per-CPU counters into the service and destination stats about
     * every 2 s (its rate estimator), so wait (bounded: 8 s) until they show every request. */
    int web = -1;
    for (int tries = 0; tries < 32; tries++) {
        read_all(ipvs, &s);
        web = ipvs_find_service(&s, g_web);
        if (web >= 0 && s.svc[web].stats.conns >= (uint64_t)g_requests)
            break;
        struct timespec ts = {0, 250 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    CHECK(web >= 0 && s.ndest[web] == 2, "the traffic service with 2 real servers");
    if (web < 0)
        return;
    /* The guest made g_requests connections: the counters are at least that (lower
     * bounds: a client retry would add one), and the destinations' add up to the
     * service's. */
    const ipvsct_ipvs_service *w = &s.svc[web];
    CHECK((w->fields & IPVSCT_IPVS_HAS_STATS64) && w->stats.conns >= (uint64_t)g_requests &&
              w->stats.inpkts >= 5 * (uint64_t)g_requests && w->stats.outbytes > w->stats.inbytes,
          "traffic service: %llu conns (sent %ld), %llu inpkts, %llu/%llu bytes",
          (unsigned long long)w->stats.conns, g_requests, (unsigned long long)w->stats.inpkts,
          (unsigned long long)w->stats.inbytes, (unsigned long long)w->stats.outbytes);
    uint64_t dest_conns = 0;
    for (int j = 0; j < s.ndest[web]; j++) {
        CHECK(s.dest[web][j].stats.conns >= (uint64_t)g_requests / 2, "rr: dest %d %llu conns",
              j, (unsigned long long)s.dest[web][j].stats.conns);
        dest_conns += s.dest[web][j].stats.conns;
    }
    CHECK(dest_conns == w->stats.conns, "destinations %llu conns, service %llu",
          (unsigned long long)dest_conns, (unsigned long long)w->stats.conns);
    uint64_t scheduled = w->stats.conns;
    compare_all(ipvs);

    /* The connection table: InActConn per destination (read over netlink) is the number of
     * inactive entries listed for it. Two reads: the counters and the listing are read back
     * to back, again (bounded) until they agree, as an entry can change state or expire
     * between them. */
    struct conn_view v;
    size_t n = 0;
    uint32_t inactive = 0;
    int agreed = 0;
    for (int tries = 0; tries < AGREE_TRIES && !agreed; tries++) {
        if (tries) {
            fprintf(stderr, "retrying: counters and connection table differ\n");
            usleep(AGREE_PAUSE_US);
        }
        read_all(ipvs, &s);
        web = ipvs_find_service(&s, g_web);
        memset(&v, 0, sizeof v);
        inet_pton(AF_INET, g_vip, v.vip);
        n = 0;
        CHECK_RC(ipvsct_ipvs_connections(ipvs, conn_cb, &v, &n), IPVSCT_OK);
        agreed = web >= 0 && s.ndest[web] == 2;
        inactive = 0;
        for (int j = 0; agreed && j < s.ndest[web]; j++) {
            int rs = s.dest[web][j].addr.addr[2] - 2;
            agreed = rs >= 0 && rs <= 1 &&
                     (uint32_t)v.inactive_to[rs] == s.dest[web][j].inactive_conns &&
                     s.dest[web][j].active_conns == 0;
            inactive += s.dest[web][j].inactive_conns;
        }
        agreed = agreed && v.active == 0 && (uint32_t)v.n == inactive;
    }
    CHECK(web >= 0 && s.ndest[web] == 2, "the traffic service with 2 real servers");
    if (web < 0)
        return;
    for (int j = 0; j < s.ndest[web]; j++) {
        int rs = s.dest[web][j].addr.addr[2] - 2;
        CHECK(rs >= 0 && rs <= 1 && (uint32_t)v.inactive_to[rs] == s.dest[web][j].inactive_conns &&
                  s.dest[web][j].active_conns == 0,
              "dest %d: ActiveConn %u, InActConn %u, %d inactive entries listed", j,
              s.dest[web][j].active_conns, s.dest[web][j].inactive_conns,
              rs >= 0 && rs <= 1 ? v.inactive_to[rs] : -1);
    }
    CHECK(n >= (size_t)v.n && v.n == (int)inactive && v.active == 0,
          "%d entries to %s (%zu in all), %d active, InActConn %u", v.n, g_vip, n, v.active,
          inactive);
    /* Every closed connection of this run has its entry (TIME_WAIT lasts 120 s), and no
     * entry exists for a connection the service did not count. */
    CHECK(inactive >= (uint32_t)g_requests && inactive <= scheduled,
          "InActConn %u after %ld closed connections (%llu counted)", inactive, g_requests,
          (unsigned long long)scheduled);

    /* The same entries as ipvsadm -Lnc read right after the library (again, bounded,
     * until the two reads agree; the final comparison prints every differing line). */
    struct ipvs_text mine = {.n = 0}, theirs = {.n = 0};
    for (int tries = 0; tries < AGREE_TRIES; tries++) {
        if (tries) {
            fprintf(stderr, "retrying: connection table and ipvsadm -Lnc differ\n");
            usleep(AGREE_PAUSE_US);
        }
        ipvs_text_free(&mine);
        ipvs_text_free(&theirs);
        CHECK_RC(ipvsct_ipvs_connections(ipvs, conn_line_cb, &mine, NULL), IPVSCT_OK);
        ipvsadm("-Lnc", out, sizeof out);
        ipvs_conn_lines(&theirs, out);
        for (int i = 0; i < theirs.n; i++) { /* drop the expiry column */
            char *first = strchr(theirs.v[i], ' '), *sp;
            if (first && (sp = strchr(first + 1, ' ')) != NULL)
                memmove(first, sp, strlen(sp) + 1);
        }
        if (texts_equal(&theirs, &mine))
            break;
    }
    ipvs_compare("ipvsadm -Lnc", &theirs, &mine);
    ipvs_text_free(&mine);
    ipvs_text_free(&theirs);
}

/* ---- control ---- */

static int daemon_cb(const ipvsct_ipvs_daemon *d, void *user)
{
    char line[IPVS_LINE];
    ipvs_fmt_daemon(line, sizeof line, d);
    ipvs_text_add((struct ipvs_text *)user, line);
    return 0;
}


static void test_control(const ipvsct_ipvs *ipvs)
{
    static char out[65536];
    /* Timeouts: set, compare, restore. */
    ipvsct_ipvs_config old, cfg;
    CHECK_RC(ipvsct_ipvs_get_config(ipvs, &old), IPVSCT_OK);
    cfg.tcp = 901;
    cfg.tcp_fin = 31;
    cfg.udp = 201;
    cfg.reserved = 0;
    CHECK_RC(ipvsct_ipvs_set_timeouts(ipvs, &cfg), IPVSCT_OK);
    ipvsadm("-L --timeout", out, sizeof out);
    ipvs_squeeze(out);
    CHECK(!strcmp(out, "Timeout (tcp tcpfin udp): 901 31 201"), "timeouts: '%s'", out);
    cfg.tcp = cfg.udp = IPVSCT_TIMEOUT_UNSET;
    cfg.tcp_fin = 0;
    CHECK_RC(ipvsct_ipvs_set_timeouts(ipvs, &cfg), IPVSCT_ERR_INVALID_ARGUMENT);
    CHECK_RC(ipvsct_ipvs_set_timeouts(ipvs, &old), IPVSCT_OK);
    ipvsct_ipvs_config now;
    CHECK_RC(ipvsct_ipvs_get_config(ipvs, &now), IPVSCT_OK);
    CHECK(now.tcp == old.tcp && now.tcp_fin == old.tcp_fin && now.udp == old.udp,
          "restored timeouts %u %u %u", now.tcp, now.tcp_fin, now.udp);

    /* Services of every kind, with destinations, made by the library. */
    ipvsct_ipvs_service udp = service(key4(17, "10.0.0.2", 53), "wlc");
    udp.flags = IPVSCT_IPVS_SVC_PERSISTENT;
    udp.timeout = 300;
    udp.netmask = 0xffffff00u;
    udp.fields = IPVSCT_IPVS_SERVICE_HAS_NETMASK;
    CHECK_RC(ipvsct_ipvs_service_add(ipvs, &udp), IPVSCT_OK);
    ipvsct_ipvs_dest d = dest(0, "10.0.2.2", 53, IPVSCT_IPVS_FWD_MASQ, 3);
    d.upper_threshold = 100;
    d.lower_threshold = 10;
    CHECK_RC(ipvsct_ipvs_dest_add(ipvs, &udp.key, &d), IPVSCT_OK);
    d = dest(0, "10.0.3.2", 53, IPVSCT_IPVS_FWD_MASQ, 1);
    CHECK_RC(ipvsct_ipvs_dest_add(ipvs, &udp.key, &d), IPVSCT_OK);

    ipvsct_ipvs_service sctp = service(key4(132, "10.0.0.3", 3000), "mh");
    sctp.flags = IPVSCT_IPVS_SVC_SCHED2;
    CHECK_RC(ipvsct_ipvs_service_add(ipvs, &sctp), IPVSCT_OK);
    d = dest(0, "10.0.2.9", 3000, IPVSCT_IPVS_FWD_TUNNEL, 1);
    d.fields = IPVSCT_IPVS_DEST_HAS_TUN_TYPE | IPVSCT_IPVS_DEST_HAS_TUN_PORT |
               IPVSCT_IPVS_DEST_HAS_TUN_FLAGS;
    d.tun_type = 1; /* GUE */
    d.tun_port = 6080;
    d.tun_flags = 1; /* CSUM */
    CHECK_RC(ipvsct_ipvs_dest_add(ipvs, &sctp.key, &d), IPVSCT_OK);
    d = dest(0, "10.0.2.10", 3000, IPVSCT_IPVS_FWD_TUNNEL, 2);
    d.fields = IPVSCT_IPVS_DEST_HAS_TUN_TYPE;
    d.tun_type = 2; /* GRE */
    CHECK_RC(ipvsct_ipvs_dest_add(ipvs, &sctp.key, &d), IPVSCT_OK);

    ipvsct_ipvs_service v6;
    memset(&v6, 0, sizeof v6);
    v6.key.af = IPVSCT_AF_INET6;
    v6.key.addr.family = IPVSCT_AF_INET6;
    inet_pton(AF_INET6, "2001:db8::1", v6.key.addr.addr);
    v6.key.protocol = 6;
    v6.key.port = 443;
    snprintf(v6.scheduler, sizeof v6.scheduler, "sh");
    v6.flags = IPVSCT_IPVS_SVC_PERSISTENT | IPVSCT_IPVS_SVC_SCHED1;
    v6.timeout = 60;
    v6.netmask = 64;
    v6.fields = IPVSCT_IPVS_SERVICE_HAS_NETMASK;
    CHECK_RC(ipvsct_ipvs_service_add(ipvs, &v6), IPVSCT_OK);
    d = dest(1, "2001:db8:2::2", 443, IPVSCT_IPVS_FWD_MASQ, 2);
    CHECK_RC(ipvsct_ipvs_dest_add(ipvs, &v6.key, &d), IPVSCT_OK);

    ipvsct_ipvs_service fw;
    memset(&fw, 0, sizeof fw);
    fw.key.af = IPVSCT_AF_INET;
    fw.key.fwmark = 9;
    snprintf(fw.scheduler, sizeof fw.scheduler, "lc");
    CHECK_RC(ipvsct_ipvs_service_add(ipvs, &fw), IPVSCT_OK);
    d = dest(0, "10.0.4.4", 0, IPVSCT_IPVS_FWD_ROUTE, 5);
    CHECK_RC(ipvsct_ipvs_dest_add(ipvs, &fw.key, &d), IPVSCT_OK);
    compare_all(ipvs);

    /* GET_SERVICE equals the dump's entry. */
    ipvsct_ipvs_service got;
    memset(&got, 0, sizeof got);
    CHECK_RC(ipvsct_ipvs_service_get(ipvs, &udp.key, &got), IPVSCT_OK);
    char a[IPVS_LINE], b[IPVS_LINE];
    ipvs_fmt_service(a, sizeof a, V_LN, &got);
    CHECK(!strcmp(a, "UDP 10.0.0.2:53 wlc persistent 300 mask 255.255.255.0"), "get: '%s'", a);

    /* Edits: read, change, write back. */
    got.timeout = 600;
    snprintf(got.scheduler, sizeof got.scheduler, "rr");
    CHECK_RC(ipvsct_ipvs_service_edit(ipvs, &got), IPVSCT_OK);
    static struct service_set s;
    read_all(ipvs, &s);
    int i = ipvs_find_service(&s, "UDP 10.0.0.2:53");
    CHECK(i >= 0 && s.ndest[i] == 2, "edited service with its 2 destinations");
    if (i >= 0) {
        ipvs_fmt_service(b, sizeof b, V_LN, &s.svc[i]);
        CHECK(!strcmp(b, "UDP 10.0.0.2:53 rr persistent 600 mask 255.255.255.0"), "edit: '%s'",
              b);
        ipvsct_ipvs_dest e = s.dest[i][0];
        e.weight = 0; /* quiesce */
        CHECK_RC(ipvsct_ipvs_dest_edit(ipvs, &udp.key, &e), IPVSCT_OK);
    }
    compare_all(ipvs);

    /* Errors: the kernel's errno, or refused before sending. */
    CHECK_RC(ipvsct_ipvs_service_add(ipvs, &fw), IPVSCT_ERR_KERNEL);
    ipvsct_error err;
    CHECK_RC(ipvsct_error_last(&err), IPVSCT_OK);
    CHECK(err.errno_value == EEXIST, "duplicate service: errno %d '%s'", err.errno_value,
          err.message);
    ipvsct_ipvs_service_key none = key4(6, "10.0.0.99", 1);
    CHECK_RC(ipvsct_ipvs_service_delete(ipvs, &none), IPVSCT_ERR_KERNEL);
    CHECK_RC(ipvsct_error_last(&err), IPVSCT_OK);
    CHECK(err.errno_value == ESRCH, "missing service: errno %d '%s'", err.errno_value,
          err.message);
    ipvsct_ipvs_service bad = service(key4(6, "10.0.0.98", 80), "rr");
    bad.flags = IPVSCT_IPVS_SVC_PERSISTENT; /* without a timeout */
    CHECK_RC(ipvsct_ipvs_service_add(ipvs, &bad), IPVSCT_ERR_INVALID_ARGUMENT);
    bad = service(key4(1, "10.0.0.98", 80), "rr"); /* ICMP has no services */
    CHECK_RC(ipvsct_ipvs_service_add(ipvs, &bad), IPVSCT_ERR_INVALID_ARGUMENT);
    d = dest(1, "2001:db8::9", 80, IPVSCT_IPVS_FWD_MASQ, 1); /* v6 dest, v4 service, NAT */
    CHECK_RC(ipvsct_ipvs_dest_add(ipvs, &udp.key, &d), IPVSCT_ERR_INVALID_ARGUMENT);
    ipvsadm("-Ln", out, sizeof out);
    CHECK(!strstr(out, "10.0.0.98"), "a refused service reached the kernel");

    /* Sync daemons: master by the library, compared with ipvsadm --daemon, stopped. */
    ipvsct_ipvs_daemon dm;
    memset(&dm, 0, sizeof dm);
    dm.state = IPVSCT_IPVS_DAEMON_MASTER;
    dm.sync_id = 7;
    snprintf(dm.mcast_ifn, sizeof dm.mcast_ifn, "sync0");
    dm.fields = IPVSCT_IPVS_DAEMON_HAS_MCAST_TTL | IPVSCT_IPVS_DAEMON_HAS_MCAST_PORT;
    dm.mcast_ttl = 2;
    dm.mcast_port = 8999;
    CHECK_RC(ipvsct_ipvs_daemon_start(ipvs, &dm), IPVSCT_OK);
    struct ipvs_text mine = {.n = 0}, theirs = {.n = 0};
    ipvsadm("-L --daemon", out, sizeof out);
    ipvs_conn_lines(&theirs, out);
    size_t nd = 0;
    CHECK_RC(ipvsct_ipvs_daemons(ipvs, NULL, &mine, &nd), IPVSCT_ERR_NULL_ARGUMENT);
    CHECK_RC(ipvsct_ipvs_daemons(ipvs, daemon_cb, &mine, &nd), IPVSCT_OK);
    CHECK(nd == 1, "%zu daemons", nd);
    ipvs_compare("ipvsadm -L --daemon", &theirs, &mine);
    ipvs_text_free(&mine);
    ipvs_text_free(&theirs);
    CHECK_RC(ipvsct_ipvs_daemon_stop(ipvs, IPVSCT_IPVS_DAEMON_MASTER), IPVSCT_OK);
    CHECK_RC(ipvsct_ipvs_daemons(ipvs, daemon_cb, &mine, &nd), IPVSCT_OK);
    CHECK(nd == 0, "%zu daemons after stop", nd);

    /* Zero one service, then everything. */
    CHECK_RC(ipvsct_ipvs_zero(ipvs, &(ipvsct_ipvs_service_key){0}), IPVSCT_ERR_INVALID_ARGUMENT);
    ipvsct_ipvs_service_key web = key4(6, g_vip, 80);
    CHECK_RC(ipvsct_ipvs_zero(ipvs, &web), IPVSCT_OK);
    CHECK_RC(ipvsct_ipvs_service_get(ipvs, &web, &got), IPVSCT_OK);
    CHECK(got.stats.conns == 0 && got.stats.inpkts == 0, "after zero: %llu conns",
          (unsigned long long)got.stats.conns);
    compare_live(ipvs, V_STATS, "-Ln --stats --exact");
    CHECK_RC(ipvsct_ipvs_zero(ipvs, NULL), IPVSCT_OK);
    compare_live(ipvs, V_STATS, "-Ln --stats --exact");

    /* Deletes: destinations, services; the listing is back to the traffic service. */
    d = dest(0, "10.0.2.10", 3000, IPVSCT_IPVS_FWD_TUNNEL, 2);
    CHECK_RC(ipvsct_ipvs_dest_delete(ipvs, &sctp.key, &d), IPVSCT_OK);
    CHECK_RC(ipvsct_ipvs_dest_delete(ipvs, &sctp.key, &d), IPVSCT_ERR_NOT_FOUND);
    CHECK_RC(ipvsct_ipvs_service_delete(ipvs, &sctp.key), IPVSCT_OK);
    CHECK_RC(ipvsct_ipvs_service_delete(ipvs, &udp.key), IPVSCT_OK);
    CHECK_RC(ipvsct_ipvs_service_delete(ipvs, &v6.key), IPVSCT_OK);
    CHECK_RC(ipvsct_ipvs_service_delete(ipvs, &fw.key), IPVSCT_OK);
    read_all(ipvs, &s);
    CHECK(s.n == 1 && ipvs_find_service(&s, g_web) == 0, "%d services left", s.n);
    compare_all(ipvs);
}

/* ---- another namespace, by name ---- */

static void test_other_namespace(void)
{
    static char out[8192];
    ipvsct_ipvs *other = NULL;
    CHECK_RC(ipvsct_ipvs_open(g_netns, &other), IPVSCT_OK);
    if (!other)
        return;
    ipvsct_ipvs_service s = service(key4(6, "192.0.2.1", 8080), "rr");
    CHECK_RC(ipvsct_ipvs_service_add(other, &s), IPVSCT_OK);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "/usr/sbin/ip netns exec %s %s -Ln 2>&1", g_netns, g_ipvsadm);
    CHECK(run(cmd, out, sizeof out) == 0 && strstr(out, "TCP  192.0.2.1:8080 rr"),
          "the service is not in namespace %s: %s", g_netns, out);
    ipvsadm("-Ln", out, sizeof out);
    CHECK(!strstr(out, "192.0.2.1"), "the other namespace's service shows in this one");
    CHECK_RC(ipvsct_ipvs_flush(other), IPVSCT_OK);
    run(cmd, out, sizeof out);
    CHECK(!strstr(out, "192.0.2.1"), "flush left the service: %s", out);
    ipvsct_ipvs_free(other);
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--ipvsadm"))
            g_ipvsadm = argv[i + 1];
        else if (!strcmp(argv[i], "--requests"))
            g_requests = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--netns"))
            g_netns = argv[i + 1];
        else if (!strcmp(argv[i], "--vip"))
            g_vip = argv[i + 1];
    }
    if (g_requests <= 0 || g_requests % 2 || !g_netns || !g_vip) {
        fprintf(stderr, "usage: test_ipvs_vm --ipvsadm PATH --vip ADDR --requests EVEN_N "
                        "--netns NAME\n");
        return 2;
    }
    snprintf(g_web, sizeof g_web, "TCP %s:80", g_vip);
    ipvsct_ipvs *ipvs = NULL;
    CHECK_RC(ipvsct_ipvs_open(NULL, &ipvs), IPVSCT_OK);
    if (!ipvs)
        return finish("test_ipvs_vm");
    test_reads(ipvs);
    test_control(ipvs);
    test_other_namespace();
    ipvsct_ipvs_free(ipvs);
    return finish("test_ipvs_vm");
}
