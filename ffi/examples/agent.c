/* ipvsct-agent: a small monitoring agent on libipvsct.
 *
 * Every N seconds it prints the conntrack table's size against nf_conntrack_max and, per
 * protocol state, how many entries are in it, the state's timeout and the range of
 * seconds the entries have left. The table is streamed (ipvsct_dump_next), so memory does
 * not grow with it.
 *
 * Build:  cc -o ipvsct-agent agent.c $(pkg-config --cflags --libs ipvsct)
 * Run:    ipvsct-agent [--netns NAME|PATH] [--interval SECONDS] [--count ROUNDS]   (root)
 *         (--count 0, the default, runs until SIGINT/SIGTERM; --version prints the library's)
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ipvsct.h>

#define MAX_STATES 64

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
    /* IPVS services with active/inactive connections come here once libipvsct has the
     * IPVS calls (the conntrack read path is what this version offers). */
    fflush(stdout);
    return rc == IPVSCT_OK ? 0 : 1;
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
    printf("ipvsct-agent: libipvsct %s, namespace %s, every %lds\n", ipvsct_version(),
           netns ? netns : "(own)", interval);
    int failed = 0;
    for (long r = 0; !stop && (count == 0 || r < count); r++) {
        if (r > 0)
            for (long s = 0; s < interval && !stop; s++)
                sleep(1);
        if (!stop)
            failed |= round_once(ct);
    }
    ipvsct_conntrack_free(ct);
    return failed;
}
