/* cdump: the C API's streaming callback dump, for the live benchmark (tests/bench/run.sh).
 *
 * Opens libipvsct in the current namespace (run it with ip netns exec), streams the
 * whole table through ipvsct_conntrack_dump (or, with the argument "iter", through the
 * iterator ipvsct_dump_new/ipvsct_dump_next; with "view", through the lazy view dump
 * ipvsct_conntrack_dump_view and its accessors) and reads the same two fields of every
 * entry (original source port, state timeout).
 * Prints one JSON object: {"mode":"c","entries":N,"secs":S,"cpu_secs":C,"peak_rss_kib":K}
 * (wall and CPU seconds of the dump call alone), and when the dump ran on the reader
 * thread its report (ipvsct_conntrack_dump_reader_report): "reader_datagrams",
 * "reader_waited_secs", "caller_waited_secs", "caller_behind_at_end_secs", "queued_at_end".
 *
 * Build: cc -O2 -I include tests/bench/cdump.c target/release/libipvsct.a -lpthread -ldl -lm
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <ipvsct.h>

struct tally {
    uint64_t entries;
    uint64_t ports;
    uint64_t with_state_timeout;
};

static int on_entry(const struct ipvsct_ct_entry *e, void *user)
{
    struct tally *t = user;
    t->entries++;
    t->ports += e->orig.src_port;
    t->with_state_timeout += e->state_timeout != IPVSCT_TIMEOUT_UNSET;
    return 0;
}

/* The view form: the same two fields through the accessors (nothing else is decoded). */
static int on_view(const struct ipvsct_ct_view *v, void *user)
{
    struct tally *t = user;
    struct ipvsct_tuple orig;
    uint32_t st;
    t->entries++;
    if (ipvsct_ct_view_orig(v, &orig) == IPVSCT_OK)
        t->ports += orig.src_port;
    t->with_state_timeout += ipvsct_ct_view_state_timeout(v, &st) == IPVSCT_OK;
    return 0;
}

static double clock_secs(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now(void)
{
    return clock_secs(CLOCK_MONOTONIC);
}

static long peak_rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = 0;
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            sscanf(line + 6, "%ld", &kib);
    fclose(f);
    return kib;
}

/* The iterator form: the same reads, one ipvsct_dump_next call per entry. */
static int32_t dump_iter(struct ipvsct_conntrack *ct, struct tally *t, uint64_t *count)
{
    struct ipvsct_dump *d = NULL;
    int32_t rc = ipvsct_dump_new(ct, NULL, &d);
    if (rc < 0)
        return rc;
    struct ipvsct_ct_entry e;
    while ((rc = ipvsct_dump_next(d, &e)) == IPVSCT_OK) {
        on_entry(&e, t);
        ++*count;
    }
    ipvsct_dump_free(d);
    return rc == IPVSCT_DONE ? IPVSCT_OK : rc;
}

int main(int argc, char **argv)
{
    int iter = argc > 1 && strcmp(argv[1], "iter") == 0;
    int view = argc > 1 && strcmp(argv[1], "view") == 0;
    struct ipvsct_conntrack *ct = NULL;
    int32_t rc = ipvsct_conntrack_new(&ct);
    if (rc < 0) {
        fprintf(stderr, "cdump: open: %s\n", ipvsct_result_name(rc));
        return 1;
    }
    struct tally t = {0};
    uint64_t count = 0;
    double start = now();
    double cpu_start = clock_secs(CLOCK_PROCESS_CPUTIME_ID);
    rc = iter ? dump_iter(ct, &t, &count)
         : view ? ipvsct_conntrack_dump_view(ct, NULL, on_view, &t, &count)
                : ipvsct_conntrack_dump(ct, NULL, on_entry, &t, &count);
    double secs = now() - start;
    double cpu_secs = clock_secs(CLOCK_PROCESS_CPUTIME_ID) - cpu_start;
    struct ipvsct_dump_reader_report rr;
    int have_report = ipvsct_conntrack_dump_reader_report(ct, &rr) == IPVSCT_OK;
    ipvsct_conntrack_free(ct);
    if (rc < 0) {
        char msg[512];
        if (ipvsct_error_message(msg, sizeof msg) < 0)
            msg[0] = 0;
        fprintf(stderr, "cdump: dump: %s: %s\n", ipvsct_result_name(rc), msg);
        return 1;
    }
    printf("{\"mode\":\"%s\",\"entries\":%llu,\"with_state_timeout\":%llu,\"secs\":%.6f,"
           "\"cpu_secs\":%.6f,\"peak_rss_kib\":%ld",
           iter ? "c_iter" : view ? "c_view" : "c", (unsigned long long)count,
           (unsigned long long)t.with_state_timeout, secs,
           cpu_secs, peak_rss_kib());
    if (have_report)
        printf(",\"reader_datagrams\":%llu,\"reader_waited_secs\":%.6f,\"caller_waited_secs\":%.6f,"
               "\"caller_behind_at_end_secs\":%.6f,\"queued_at_end\":%u",
               (unsigned long long)rr.datagrams, rr.reader_waited_ns / 1e9,
               rr.caller_waited_ns / 1e9, rr.caller_behind_at_end_ns / 1e9, rr.queued_at_end);
    printf("}\n");
    return count == t.entries ? 0 : 1;
}
