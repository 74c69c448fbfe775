/* Shared by the C IPVS tests (offline fixtures and the QEMU guest): what libipvsct reads,
 * printed the way ipvsadm 1.31 prints it (-Ln, --stats/--rate --exact, --thresholds,
 * --persistent-conn, --tun-info, -Lnc, --timeout, --daemon), and a comparison of such
 * text with ipvsadm's own output that ignores column padding and the order of services
 * and of the destinations of a service. */
#ifndef IPVSCT_TEST_IPVSADM_FORMAT_H
#define IPVSCT_TEST_IPVSADM_FORMAT_H

#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "check.h"
#include "ipvsct.h"

/* Which listing a line is for. */
enum ipvs_view { V_LN, V_STATS, V_RATE, V_THRESH, V_PERSIST, V_TUN };

#define IPVS_MAX_LINES 256
#define IPVS_LINE 256

struct ipvs_text {
    char *v[IPVS_MAX_LINES];
    int n;
};

static inline void ipvs_text_add(struct ipvs_text *t, const char *s)
{
    if (t->n < IPVS_MAX_LINES)
        t->v[t->n++] = strdup(s);
}

static inline void ipvs_text_free(struct ipvs_text *t)
{
    for (int i = 0; i < t->n; i++)
        free(t->v[i]);
    t->n = 0;
}

/* `s` with runs of blanks squeezed to one space and no blanks at either end. */
static inline void ipvs_squeeze(char *s)
{
    char *w = s;
    int blank = 1;
    for (char *r = s; *r; r++) {
        if (*r == ' ' || *r == '\t' || *r == '\n' || *r == '\r') {
            if (!blank)
                *w++ = ' ';
            blank = 1;
        } else {
            *w++ = *r;
            blank = 0;
        }
    }
    if (w > s && w[-1] == ' ')
        w--;
    *w = 0;
}

static inline void ipvs_addr_port(char *out, size_t n, const ipvsct_addr *a, uint16_t port)
{
    char ip[64];
    if (!inet_ntop(a->family == IPVSCT_AF_INET6 ? AF_INET6 : AF_INET, a->addr, ip, sizeof ip))
        snprintf(ip, sizeof ip, "?");
    if (a->family == IPVSCT_AF_INET6)
        snprintf(out, n, "[%s]:%u", ip, port);
    else
        snprintf(out, n, "%s:%u", ip, port);
}

static inline const char *ipvs_proto_name(uint16_t p)
{
    switch (p) {
    case 6: return "TCP";
    case 17: return "UDP";
    case 132: return "SCTP";
    case 0: return "IP";
    default: return "?";
    }
}

/* "TCP 10.0.0.1:80", "FWM 7", "FWM 8 IPv6". */
static inline void ipvs_service_name(char *out, size_t n, const ipvsct_ipvs_service_key *k)
{
    if (k->fwmark)
        snprintf(out, n, "FWM %u%s", k->fwmark, k->af == IPVSCT_AF_INET6 ? " IPv6" : "");
    else {
        char a[80];
        ipvs_addr_port(a, sizeof a, &k->addr, k->port);
        snprintf(out, n, "%s %s", ipvs_proto_name(k->protocol), a);
    }
}

static inline void ipvs_fmt_service(char *out, size_t n, enum ipvs_view v,
                                    const ipvsct_ipvs_service *s)
{
    char name[128];
    ipvs_service_name(name, sizeof name, &s->key);
    const ipvsct_ipvs_stats64 *st = &s->stats;
    if (v == V_STATS) {
        snprintf(out, n, "%s %llu %llu %llu %llu %llu", name, (unsigned long long)st->conns,
                 (unsigned long long)st->inpkts, (unsigned long long)st->outpkts,
                 (unsigned long long)st->inbytes, (unsigned long long)st->outbytes);
        return;
    }
    if (v == V_RATE) {
        snprintf(out, n, "%s %llu %llu %llu %llu %llu", name, (unsigned long long)st->cps,
                 (unsigned long long)st->inpps, (unsigned long long)st->outpps,
                 (unsigned long long)st->inbps, (unsigned long long)st->outbps);
        return;
    }
    size_t used = (size_t)snprintf(out, n, "%s %s", name, s->scheduler);
    uint32_t sched = s->flags & (IPVSCT_IPVS_SVC_SCHED1 | IPVSCT_IPVS_SVC_SCHED2 |
                                 IPVSCT_IPVS_SVC_SCHED3);
    if (sched && used < n) {
        const char *f1 = "flag-1", *f2 = "flag-2";
        if (!strcmp(s->scheduler, "sh")) {
            f1 = "sh-fallback";
            f2 = "sh-port";
        } else if (!strcmp(s->scheduler, "mh")) {
            f1 = "mh-fallback";
            f2 = "mh-port";
        }
        char flags[64] = "";
        if (s->flags & IPVSCT_IPVS_SVC_SCHED1)
            snprintf(flags + strlen(flags), sizeof flags - strlen(flags), "%s", f1);
        if (s->flags & IPVSCT_IPVS_SVC_SCHED2)
            snprintf(flags + strlen(flags), sizeof flags - strlen(flags), "%s%s",
                     flags[0] ? "," : "", f2);
        if (s->flags & IPVSCT_IPVS_SVC_SCHED3)
            snprintf(flags + strlen(flags), sizeof flags - strlen(flags), "%sflag-3",
                     flags[0] ? "," : "");
        used += (size_t)snprintf(out + used, n - used, " (%s)", flags);
    }
    if ((s->flags & IPVSCT_IPVS_SVC_PERSISTENT) && used < n) {
        used += (size_t)snprintf(out + used, n - used, " persistent %u", s->timeout);
        if (s->key.af == IPVSCT_AF_INET && s->netmask != 0xffffffffu && used < n) {
            struct in_addr m;
            m.s_addr = htonl(s->netmask);
            char mask[32];
            inet_ntop(AF_INET, &m, mask, sizeof mask);
            used += (size_t)snprintf(out + used, n - used, " mask %s", mask);
        } else if (s->key.af == IPVSCT_AF_INET6 && s->netmask != 128 && used < n) {
            used += (size_t)snprintf(out + used, n - used, " mask %u", s->netmask);
        }
        if ((s->fields & IPVSCT_IPVS_SERVICE_HAS_PE_NAME) && s->pe_name[0] && used < n)
            used += (size_t)snprintf(out + used, n - used, " pe %s", s->pe_name);
    }
    if ((s->flags & IPVSCT_IPVS_SVC_ONEPACKET) && used < n)
        snprintf(out + used, n - used, " ops");
}

static inline const char *ipvs_fwd_name(uint32_t m)
{
    switch (m) {
    case IPVSCT_IPVS_FWD_MASQ: return "Masq";
    case IPVSCT_IPVS_FWD_LOCAL: return "Local";
    case IPVSCT_IPVS_FWD_TUNNEL: return "Tunnel";
    case IPVSCT_IPVS_FWD_ROUTE: return "Route";
    case IPVSCT_IPVS_FWD_BYPASS: return "Bypass";
    default: return "Unknown";
    }
}

/* ipvsadm's TunnelInfo column. */
static inline void ipvs_tun_info(char *out, size_t n, const ipvsct_ipvs_dest *d)
{
    if (d->fwd_method != IPVSCT_IPVS_FWD_TUNNEL) {
        snprintf(out, n, "n/a");
        return;
    }
    const char *csum = (d->tun_flags & 2) ? "r+c" : (d->tun_flags & 1) ? "+c" : "-c";
    switch (d->tun_type) {
    case 0: snprintf(out, n, "ipip"); break;
    case 1: snprintf(out, n, "gue:%u:%s", d->tun_port, csum); break;
    case 2: snprintf(out, n, "gre:%s", csum); break;
    default: snprintf(out, n, "?");
    }
}

static inline void ipvs_fmt_dest(char *out, size_t n, enum ipvs_view v, const ipvsct_ipvs_dest *d)
{
    char a[80];
    ipvs_addr_port(a, sizeof a, &d->addr, d->port);
    const ipvsct_ipvs_stats64 *st = &d->stats;
    switch (v) {
    case V_STATS:
        snprintf(out, n, "-> %s %llu %llu %llu %llu %llu", a, (unsigned long long)st->conns,
                 (unsigned long long)st->inpkts, (unsigned long long)st->outpkts,
                 (unsigned long long)st->inbytes, (unsigned long long)st->outbytes);
        break;
    case V_RATE:
        snprintf(out, n, "-> %s %llu %llu %llu %llu %llu", a, (unsigned long long)st->cps,
                 (unsigned long long)st->inpps, (unsigned long long)st->outpps,
                 (unsigned long long)st->inbps, (unsigned long long)st->outbps);
        break;
    case V_THRESH:
        snprintf(out, n, "-> %s %u %u %u %u", a, d->upper_threshold, d->lower_threshold,
                 d->active_conns, d->inactive_conns);
        break;
    case V_PERSIST:
        snprintf(out, n, "-> %s %u %u %u %u", a, d->weight, d->persist_conns, d->active_conns,
                 d->inactive_conns);
        break;
    case V_TUN: {
        char tun[32];
        ipvs_tun_info(tun, sizeof tun, d);
        snprintf(out, n, "-> %s %s %s %u %u %u", a, ipvs_fwd_name(d->fwd_method), tun,
                 d->weight, d->active_conns, d->inactive_conns);
        break;
    }
    default:
        snprintf(out, n, "-> %s %s %u %u %u", a, ipvs_fwd_name(d->fwd_method), d->weight,
                 d->active_conns, d->inactive_conns);
    }
}

/* Adds the comparison keys of one service and its destinations to `t`: the service line,
 * and "service || destination" per destination. */
static inline void ipvs_add_block(struct ipvs_text *t, const char *service_line,
                                  const char *const *dest_lines, int ndest)
{
    ipvs_text_add(t, service_line);
    for (int i = 0; i < ndest; i++) {
        char k[2 * IPVS_LINE + 8];
        snprintf(k, sizeof k, "%s || %s", service_line, dest_lines[i]);
        ipvs_text_add(t, k);
    }
}

/* The same keys from ipvsadm's listing text (header lines skipped). */
static inline void ipvs_keys_of_listing(struct ipvs_text *t, const char *text)
{
    char service[IPVS_LINE] = "";
    const char *p = text;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char line[IPVS_LINE];
        snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), p);
        p = e ? e + 1 : p + len;
        ipvs_squeeze(line);
        if (!line[0] || !strncmp(line, "IP Virtual Server", 17) || !strncmp(line, "Prot ", 5) ||
            !strcmp(line, "-> RemoteAddress:Port") || !strncmp(line, "-> RemoteAddress:Port ", 22))
            continue;
        if (!strncmp(line, "-> ", 3)) {
            char k[2 * IPVS_LINE + 8];
            snprintf(k, sizeof k, "%s || %s", service, line);
            ipvs_text_add(t, k);
        } else {
            snprintf(service, sizeof service, "%s", line);
            ipvs_text_add(t, line);
        }
    }
}

static inline int ipvs_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Checks that two key sets are equal; returns the number of differences. */
static inline int ipvs_compare(const char *what, struct ipvs_text *want, struct ipvs_text *got)
{
    qsort(want->v, (size_t)want->n, sizeof want->v[0], ipvs_cmp);
    qsort(got->v, (size_t)got->n, sizeof got->v[0], ipvs_cmp);
    int bad = 0;
    CHECK(want->n > 0, "%s: nothing to compare", what);
    CHECK(want->n == got->n, "%s: ipvsadm has %d lines, libipvsct %d", what, want->n, got->n);
    bad += want->n != got->n;
    for (int i = 0; i < want->n && i < got->n; i++) {
        int same = !strcmp(want->v[i], got->v[i]);
        CHECK(same, "%s: line differs\n  ipvsadm   %s\n  libipvsct %s", what, want->v[i],
              got->v[i]);
        bad += !same;
    }
    return bad;
}

/* Services with their destinations, as read. */
struct service_set {
    ipvsct_ipvs_service svc[16];
    ipvsct_ipvs_dest dest[16][8];
    int ndest[16];
    int n;
};

static inline int ipvs_find_service(const struct service_set *s, const char *name)
{
    for (int i = 0; i < s->n; i++) {
        char have[128];
        ipvs_service_name(have, sizeof have, &s->svc[i].key);
        if (!strcmp(have, name))
            return i;
    }
    return -1;
}

/* The comparison keys of a whole listing. */
static inline void ipvs_listing(struct ipvs_text *t, const struct service_set *s, enum ipvs_view v)
{
    for (int i = 0; i < s->n; i++) {
        char svc[IPVS_LINE], dl[8][IPVS_LINE];
        const char *dp[8];
        ipvs_fmt_service(svc, sizeof svc, v == V_STATS || v == V_RATE ? v : V_LN, &s->svc[i]);
        for (int j = 0; j < s->ndest[i]; j++) {
            ipvs_fmt_dest(dl[j], sizeof dl[j], v, &s->dest[i][j]);
            dp[j] = dl[j];
        }
        ipvs_add_block(t, svc, dp, s->ndest[i]);
    }
}

static inline void ipvs_fmt_timeout(char *out, size_t n, const ipvsct_ipvs_config *c)
{
    snprintf(out, n, "Timeout (tcp tcpfin udp): %u %u %u", c->tcp, c->tcp_fin, c->udp);
}

static inline void ipvs_fmt_info(char *out, size_t n, const ipvsct_ipvs_info *i)
{
    snprintf(out, n, "IP Virtual Server version %u.%u.%u (size=%u)", i->major, i->minor,
             i->patch, i->conn_tab_size);
}

static inline void ipvs_fmt_daemon(char *out, size_t n, const ipvsct_ipvs_daemon *d)
{
    size_t used = (size_t)snprintf(out, n, "%s sync daemon (mcast=%s, syncid=%u",
                                   d->state == IPVSCT_IPVS_DAEMON_MASTER ? "master" : "backup",
                                   d->mcast_ifn, d->sync_id);
    if ((d->fields & IPVSCT_IPVS_DAEMON_HAS_SYNC_MAXLEN) && d->sync_maxlen && used < n)
        used += (size_t)snprintf(out + used, n - used, ", maxlen=%u", d->sync_maxlen);
    if ((d->fields & IPVSCT_IPVS_DAEMON_HAS_MCAST_GROUP) && used < n) {
        char g[64];
        inet_ntop(d->mcast_group.family == IPVSCT_AF_INET6 ? AF_INET6 : AF_INET,
                  d->mcast_group.addr, g, sizeof g);
        used += (size_t)snprintf(out + used, n - used, ", group=%s", g);
    }
    if ((d->fields & IPVSCT_IPVS_DAEMON_HAS_MCAST_PORT) && d->mcast_port && used < n)
        used += (size_t)snprintf(out + used, n - used, ", port=%u", d->mcast_port);
    if ((d->fields & IPVSCT_IPVS_DAEMON_HAS_MCAST_TTL) && d->mcast_ttl && used < n)
        used += (size_t)snprintf(out + used, n - used, ", ttl=%u", d->mcast_ttl);
    if (used < n)
        snprintf(out + used, n - used, ")");
}

/* One -Lnc line: "TCP 01:53 TIME_WAIT 10.0.1.2:35492 10.0.0.1:80 10.0.3.2:80". */
static inline void ipvs_fmt_conn(char *out, size_t n, const ipvsct_ipvs_conn *c)
{
    char cl[80], va[80], de[80];
    ipvs_addr_port(cl, sizeof cl, &c->client, c->client_port);
    ipvs_addr_port(va, sizeof va, &c->vaddr, c->vport);
    ipvs_addr_port(de, sizeof de, &c->dest, c->dest_port);
    snprintf(out, n, "%s %02u:%02u %s %s %s %s", ipvs_proto_name(c->protocol), c->expires / 60,
             c->expires % 60, c->state_name, cl, va, de);
}

/* The lines of ipvsadm -Lnc text that are entries (squeezed), into `t`. */
static inline void ipvs_conn_lines(struct ipvs_text *t, const char *text)
{
    const char *p = text;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char line[IPVS_LINE];
        snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line ? len : sizeof line - 1), p);
        p = e ? e + 1 : p + len;
        ipvs_squeeze(line);
        if (line[0] && strncmp(line, "IPVS connection entries", 23) && strncmp(line, "pro ", 4))
            ipvs_text_add(t, line);
    }
}

#endif
