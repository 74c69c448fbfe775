/* ipvsct-events: prints conntrack events as they happen, with libipvsct.
 *
 * Subscribes to NEW / UPDATE / DESTROY events, waits with poll() on the subscription's
 * file descriptor and drains what is ready. Each event is one line with its state and
 * the state's full timeout; when the kernel drops events (the receive buffer was full)
 * the OVERRUN is printed and the picture is repaired with ipvsct_events_resync.
 *
 * Build:  cc -o ipvsct-events events.c $(pkg-config --cflags --libs ipvsct)
 * Run:    ipvsct-events [--netns NAME|PATH] [--count EVENTS] [--seconds SECS] [--rcvbuf BYTES]
 *         (root; runs until SIGINT/SIGTERM, EVENTS events or SECS seconds, whichever first)
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ipvsct.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

struct counts {
    unsigned long long events, overruns;
};

static const char *proto_name(uint8_t p)
{
    switch (p) {
    case 1: return "icmp";
    case 6: return "tcp";
    case 17: return "udp";
    case 58: return "icmpv6";
    case 132: return "sctp";
    default: return "other";
    }
}

static void endpoint(char *out, size_t n, const ipvsct_addr *a, int has_port, uint16_t port)
{
    char ip[INET6_ADDRSTRLEN];
    if (!inet_ntop(a->family == IPVSCT_AF_INET6 ? AF_INET6 : AF_INET, a->addr, ip, sizeof ip))
        snprintf(ip, sizeof ip, "?");
    if (has_port)
        snprintf(out, n, a->family == IPVSCT_AF_INET6 ? "[%s]:%u" : "%s:%u", ip, port);
    else
        snprintf(out, n, "%s", ip);
}

static int print_event(const ipvsct_event *ev, void *user)
{
    struct counts *c = (struct counts *)user;
    c->events++;
    if (ev->kind == IPVSCT_EVENT_OVERRUN) {
        const ipvsct_overrun *o = &ev->data.overrun;
        c->overruns++;
        printf("OVERRUN   %llu receive(s) failed, %llu overrun(s) so far: events were lost\n",
               (unsigned long long)o->failed_receives, (unsigned long long)o->total);
        return 0;
    }
    if (ev->kind >= IPVSCT_EVENT_EXP_NEW) {
        printf("EXPECT    kind %u, helper %s\n", ev->kind, ev->data.expect.helper);
        return 0;
    }
    const ipvsct_ct_entry *e = &ev->data.entry;
    const char *kind = ev->kind == IPVSCT_EVENT_NEW      ? "NEW"
                       : ev->kind == IPVSCT_EVENT_UPDATE ? "UPDATE"
                                                         : "DESTROY";
    char src[64], dst[64], st[24];
    int ports = (e->orig.fields & IPVSCT_TUPLE_HAS_SRC_PORT) != 0;
    endpoint(src, sizeof src, &e->orig.src, ports, e->orig.src_port);
    endpoint(dst, sizeof dst, &e->orig.dst, ports, e->orig.dst_port);
    if (e->fields & IPVSCT_CT_ENTRY_HAS_STATE_TIMEOUT)
        snprintf(st, sizeof st, " (%us)", e->state_timeout);
    else
        st[0] = 0;
    printf("%-9s %s %s -> %s %s%s", kind, proto_name(e->orig.proto), src, dst,
           e->state_name[0] ? e->state_name : "-", st);
    if (e->fields & IPVSCT_CT_ENTRY_HAS_MARK)
        printf(" mark=%u", e->mark);
    if (ev->kind == IPVSCT_EVENT_DESTROY && (e->fields & IPVSCT_CT_ENTRY_HAS_COUNTERS_ORIG))
        printf(" packets=%llu/%llu", (unsigned long long)e->counters_orig.packets,
               (unsigned long long)e->counters_reply.packets);
    printf("\n");
    return 0;
}

static void report_error(const char *what, int32_t rc)
{
    char msg[1024];
    if (ipvsct_error_message(msg, sizeof msg) != IPVSCT_OK)
        snprintf(msg, sizeof msg, "(message longer than %zu bytes)", sizeof msg);
    fprintf(stderr, "ipvsct-events: %s: %s: %s\n", what, ipvsct_result_name(rc), msg);
}

int main(int argc, char **argv)
{
    const char *netns = NULL;
    unsigned long long max_events = 0;
    long seconds = 0;
    ipvsct_events_options opts;
    memset(&opts, 0, sizeof opts);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--netns") && i + 1 < argc)
            netns = argv[++i];
        else if (!strcmp(argv[i], "--count") && i + 1 < argc)
            max_events = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--rcvbuf") && i + 1 < argc)
            opts.rcvbuf = (uint32_t)strtoul(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: %s [--netns NAME|PATH] [--count EVENTS] [--seconds SECS] "
                            "[--rcvbuf BYTES]\n",
                    argv[0]);
            return 2;
        }
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    ipvsct_events *ev = NULL;
    int32_t rc = ipvsct_events_open(netns, IPVSCT_EVENTS_CONNTRACK, &opts, &ev);
    if (rc != IPVSCT_OK) {
        report_error("subscribe", rc);
        return 1;
    }
    int fd = -1;
    ipvsct_events_fd(ev, &fd);
    printf("ipvsct-events: listening (libipvsct %s, namespace %s)\n", ipvsct_version(),
           netns ? netns : "(own)");
    fflush(stdout);

    struct counts c = {0, 0};
    time_t end = seconds > 0 ? time(NULL) + seconds : 0;
    int failed = 0;
    while (!stop && (max_events == 0 || c.events < max_events) && (!end || time(NULL) < end)) {
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, 500);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            perror("poll");
            failed = 1;
            break;
        }
        if (r == 0)
            continue;
        rc = ipvsct_events_drain(ev, 0, print_event, &c, NULL);
        if (rc == IPVSCT_OVERRUN_SEEN) {
            uint64_t n = 0;
            /* Every connection of the table comes back as NEW: the picture is whole again. */
            rc = ipvsct_events_resync(ev, print_event, &c, &n);
            printf("RESYNC    %llu entries re-read after the overrun\n", (unsigned long long)n);
        }
        if (rc != IPVSCT_OK && rc != IPVSCT_STOPPED) {
            report_error("drain", rc);
            failed = 1;
            break;
        }
        fflush(stdout);
    }
    printf("ipvsct-events: %llu events, %llu overruns\n", c.events, c.overruns);
    ipvsct_events_free(ev);
    return failed;
}
