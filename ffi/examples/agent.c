/* ipvsct-agent: a small monitoring agent on libipvsct.
 *
 * Every N seconds it prints the conntrack table's size against nf_conntrack_max and, per
 * protocol state, how many entries are in it, the state's timeout and the range of
 * seconds the entries have left. The table is streamed (ipvsct_dump_next), so memory does
 * not grow with it. Then the IPVS virtual services with their real servers and active /
 * inactive connection counts ("IPVS not available" when the kernel has no ip_vs).
 *
 * Build:  cc -o ipvsct-agent agent.c $(pkg-config --cflags --libs ipvsct)
 * Run:    ipvsct-agent [--netns NAME|PATH] [--interval SECONDS] [--count ROUNDS]   (root)
 *         (--count 0, the default, runs until SIGINT/SIGTERM; --version prints the library's)
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ipvsct.h>

#define MAX_STATES 64
#define MAX_SERVICES 64

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

struct state_row {
    uint8_t proto, kind, state;
    char name[IPVSCT_STATE_NAME_LEN];
    uint64_t entries;
    uint32_t state_timeout; /* IPVSCT_TIMEOUT_UNSET if unknown */
    uint32_t left_min, left_max;
};

static const char *proto_name(uint8_t p)
{
    switch (p) {
    case 1: return "icmp";
    case 6: return "tcp";
    case 17: return "udp";
    case 33: return "dccp";
    case 47: return "gre";
    case 58: return "icmpv6";
    case 132: return "sctp";
    case 136: return "udplite";
    default: return "other";
    }
}

static void report_error(const char *what, int32_t rc)
{
    char msg[1024];
    if (ipvsct_error_message(msg, sizeof msg) != IPVSCT_OK)
        snprintf(msg, sizeof msg, "(message longer than %zu bytes)", sizeof msg);
    fprintf(stderr, "ipvsct-agent: %s: %s: %s\n", what, ipvsct_result_name(rc), msg);
}

/* Streams the table once and fills `rows` per (protocol, state). Returns the result. */
static int32_t per_state(const ipvsct_conntrack *ct, struct state_row *rows, int *nrows)
{
    ipvsct_dump *dump = NULL;
    int32_t rc = ipvsct_dump_new(ct, NULL, &dump);
    if (rc != IPVSCT_OK)
        return rc;
    ipvsct_ct_entry e;
    *nrows = 0;
    while ((rc = ipvsct_dump_next(dump, &e)) == IPVSCT_OK) {
        int i;
        for (i = 0; i < *nrows; i++)
            if (rows[i].proto == e.orig.proto && rows[i].kind == e.state_kind &&
                rows[i].state == e.state)
                break;
        if (i == *nrows) {
            if (*nrows == MAX_STATES)
                continue;
            memset(&rows[i], 0, sizeof rows[i]);
            rows[i].proto = e.orig.proto;
            rows[i].kind = e.state_kind;
            rows[i].state = e.state;
            memcpy(rows[i].name, e.state_name, sizeof rows[i].name);
            rows[i].state_timeout = (e.fields & IPVSCT_CT_ENTRY_HAS_STATE_TIMEOUT)
                                        ? e.state_timeout
                                        : IPVSCT_TIMEOUT_UNSET;
            rows[i].left_min = UINT32_MAX;
            (*nrows)++;
        }
        rows[i].entries++;
        if (e.fields & IPVSCT_CT_ENTRY_HAS_TIMEOUT) {
            if (e.timeout < rows[i].left_min)
                rows[i].left_min = e.timeout;
            if (e.timeout > rows[i].left_max)
                rows[i].left_max = e.timeout;
        }
    }
    ipvsct_dump_free(dump);
    /* IPVSCT_DUMP_INTERRUPTED: the counts are from a table that changed meanwhile. */
    return rc == IPVSCT_DONE ? IPVSCT_OK : rc;
}

static int round_once(const ipvsct_conntrack *ct)
{
    char stamp[32];
    time_t now = time(NULL);
    strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", localtime(&now));

    ipvsct_ct_global_stats g;
    int32_t rc = ipvsct_conntrack_count(ct, &g);
    if (rc != IPVSCT_OK) {
        report_error("count", rc);
        return 1;
    }
    if (g.fields & IPVSCT_CT_GLOBAL_STATS_HAS_MAX)
        printf("[%s] conntrack: %u of %u entries (%.1f%%)\n", stamp, g.entries, g.max_entries,
               g.max_entries ? 100.0 * g.entries / g.max_entries : 0.0);
    else
        printf("[%s] conntrack: %u entries\n", stamp, g.entries);

    static struct state_row rows[MAX_STATES];
    int n = 0;
    rc = per_state(ct, rows, &n);
    if (rc != IPVSCT_OK)
        report_error("dump", rc);
    printf("  %-8s %-18s %8s %14s %18s\n", "proto", "state", "entries", "state timeout",
           "seconds left");
    for (int i = 0; i < n; i++) {
        char st[16], left[32];
        if (rows[i].state_timeout == IPVSCT_TIMEOUT_UNSET)
            snprintf(st, sizeof st, "-");
        else
            snprintf(st, sizeof st, "%us", rows[i].state_timeout);
        if (rows[i].left_min == UINT32_MAX)
            snprintf(left, sizeof left, "-");
        else
            snprintf(left, sizeof left, "%u-%u", rows[i].left_min, rows[i].left_max);
        printf("  %-8s %-18s %8llu %14s %18s\n", proto_name(rows[i].proto),
               rows[i].name[0] ? rows[i].name : "-", (unsigned long long)rows[i].entries, st,
               left);
    }
    fflush(stdout);
    return rc == IPVSCT_OK ? 0 : 1;
}

struct services {
    ipvsct_ipvs_service v[MAX_SERVICES];
    size_t n;
};

static int keep_service(const ipvsct_ipvs_service *s, void *user)
{
    struct services *l = (struct services *)user;
    if (l->n < MAX_SERVICES)
        l->v[l->n++] = *s;
    return 0;
}

struct dests {
    ipvsct_ipvs_dest v[MAX_SERVICES];
    size_t n;
};

static int keep_dest(const ipvsct_ipvs_dest *d, void *user)
{
    struct dests *l = (struct dests *)user;
    if (l->n < MAX_SERVICES)
        l->v[l->n++] = *d;
    return 0;
}

static void addr_port(char *out, size_t n, const ipvsct_addr *a, uint16_t port)
{
    char ip[INET6_ADDRSTRLEN];
    int v6 = a->family == IPVSCT_AF_INET6;
    if (!inet_ntop(v6 ? AF_INET6 : AF_INET, a->addr, ip, sizeof ip))
        snprintf(ip, sizeof ip, "?");
    snprintf(out, n, v6 ? "[%s]:%u" : "%s:%u", ip, port);
}

static const char *fwd_name(uint32_t m)
{
    switch (m) {
    case IPVSCT_IPVS_FWD_MASQ: return "Masq";
    case IPVSCT_IPVS_FWD_LOCAL: return "Local";
    case IPVSCT_IPVS_FWD_TUNNEL: return "Tunnel";
    case IPVSCT_IPVS_FWD_ROUTE: return "Route";
    default: return "Bypass";
    }
}

/* Prints every virtual service with its real servers and their ActiveConn / InActConn. */
static int ipvs_round(const ipvsct_ipvs *ipvs)
{
    if (!ipvs) {
        printf("  IPVS not available\n");
        fflush(stdout);
        return 0;
    }
    static struct services svcs;
    svcs.n = 0;
    int32_t rc = ipvsct_ipvs_services(ipvs, keep_service, &svcs, NULL);
    if (rc != IPVSCT_OK) {
        report_error("IPVS services", rc);
        return 1;
    }
    printf("  %-44s %10s %10s\n", "IPVS service / real server", "ActiveConn", "InActConn");
    if (svcs.n == 0)
        printf("  (no virtual services)\n");
    for (size_t i = 0; i < svcs.n; i++) {
        const ipvsct_ipvs_service *s = &svcs.v[i];
        static struct dests ds;
        ds.n = 0;
        rc = ipvsct_ipvs_dests(ipvs, &s->key, keep_dest, &ds, NULL);
        if (rc != IPVSCT_OK) {
            report_error("IPVS destinations", rc);
            return 1;
        }
        unsigned long long active = 0, inactive = 0;
        for (size_t j = 0; j < ds.n; j++) {
            active += ds.v[j].active_conns;
            inactive += ds.v[j].inactive_conns;
        }
        char name[160], a[80];
        if (s->key.fwmark)
            snprintf(name, sizeof name, "FWM %u %s", s->key.fwmark, s->scheduler);
        else {
            addr_port(a, sizeof a, &s->key.addr, s->key.port);
            snprintf(name, sizeof name, "%s %s %s",
                     s->key.protocol == 6 ? "TCP" : s->key.protocol == 17 ? "UDP" : "SCTP", a,
                     s->scheduler);
        }
        printf("  %-44s %10llu %10llu\n", name, active, inactive);
        for (size_t j = 0; j < ds.n; j++) {
            const ipvsct_ipvs_dest *d = &ds.v[j];
            addr_port(a, sizeof a, &d->addr, d->port);
            snprintf(name, sizeof name, "-> %s %s w%u", a, fwd_name(d->fwd_method), d->weight);
            printf("    %-42s %10u %10u\n", name, d->active_conns, d->inactive_conns);
        }
    }
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    const char *netns = NULL;
    long interval = 5, count = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--netns") && i + 1 < argc)
            netns = argv[++i];
        else if (!strcmp(argv[i], "--interval") && i + 1 < argc)
            interval = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--count") && i + 1 < argc)
            count = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--version")) {
            printf("ipvsct-agent: libipvsct %s\n", ipvsct_version());
            return 0;
        } else {
            fprintf(stderr, "usage: %s [--netns NAME|PATH] [--interval SECONDS] [--count ROUNDS] "
                            "[--version]\n",
                    argv[0]);
            return 2;
        }
    }
    if (interval < 1)
        interval = 1;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    ipvsct_conntrack *ct = NULL;
    int32_t rc = ipvsct_conntrack_open(netns, &ct);
    if (rc != IPVSCT_OK) {
        report_error("open", rc);
        return 1;
    }
    /* IPVS is optional: without ip_vs in the kernel the agent reports conntrack only. */
    ipvsct_ipvs *ipvs = NULL;
    rc = ipvsct_ipvs_open(netns, &ipvs);
    if (rc != IPVSCT_OK && rc != IPVSCT_ERR_UNSUPPORTED) {
        report_error("IPVS open", rc);
        ipvsct_conntrack_free(ct);
        return 1;
    }
    printf("ipvsct-agent: libipvsct %s, namespace %s, every %lds\n", ipvsct_version(),
           netns ? netns : "(own)", interval);
    int failed = 0;
    for (long r = 0; !stop && (count == 0 || r < count); r++) {
        if (r > 0)
            for (long s = 0; s < interval && !stop; s++)
                sleep(1);
        if (!stop) {
            failed |= round_once(ct);
            failed |= ipvs_round(ipvs);
        }
    }
    ipvsct_ipvs_free(ipvs);
    ipvsct_conntrack_free(ct);
    return failed;
}
