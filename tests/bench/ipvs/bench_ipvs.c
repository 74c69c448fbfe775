/* The C API side of the IPVS listing benchmark (tests/bench/ipvs/run.sh): every service,
 * then the destinations of each, with their 64-bit statistics, through libipvsct
 * (ipvsct_ipvs_services + ipvsct_ipvs_dests). Prints one JSON object:
 * {"services":S,"dests":D,"conns":C,"secs":T} (T: the listing alone, without opening).
 * Exit status 1 on any error. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ipvsct.h"

struct keys {
    ipvsct_ipvs_service_key *v;
    size_t n, cap;
    uint64_t conns;
};

static int svc_cb(const ipvsct_ipvs_service *svc, void *user)
{
    struct keys *k = (struct keys *)user;
    if (k->n == k->cap) {
        size_t cap = k->cap ? 2 * k->cap : 1024;
        ipvsct_ipvs_service_key *v = realloc(k->v, cap * sizeof *v);
        if (!v)
            return 1;
        k->v = v;
        k->cap = cap;
    }
    k->v[k->n++] = svc->key;
    k->conns += svc->stats.conns;
    return 0;
}

static int dest_cb(const ipvsct_ipvs_dest *d, void *user)
{
    uint64_t *sum = (uint64_t *)user;
    *sum += d->stats.conns + d->stats.inbytes;
    return 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void)
{
    ipvsct_ipvs *ipvs = NULL;
    if (ipvsct_ipvs_open(NULL, &ipvs) != IPVSCT_OK) {
        fprintf(stderr, "bench_ipvs_c: cannot open IPVS\n");
        return 1;
    }
    double t0 = now();
    struct keys k = {0};
    size_t n = 0, dests = 0;
    uint64_t sum = 0;
    if (ipvsct_ipvs_services(ipvs, svc_cb, &k, &n) != IPVSCT_OK || n != k.n) {
        fprintf(stderr, "bench_ipvs_c: listing the services failed\n");
        return 1;
    }
    for (size_t i = 0; i < k.n; i++) {
        size_t c = 0;
        if (ipvsct_ipvs_dests(ipvs, &k.v[i], dest_cb, &sum, &c) != IPVSCT_OK) {
            fprintf(stderr, "bench_ipvs_c: listing the destinations of service %zu failed\n", i);
            return 1;
        }
        dests += c;
    }
    double secs = now() - t0;
    printf("{\"services\":%zu,\"dests\":%zu,\"conns\":%llu,\"secs\":%.6f}\n", k.n, dests,
           (unsigned long long)k.conns, secs);
    free(k.v);
    ipvsct_ipvs_free(ipvs);
    return 0;
}
