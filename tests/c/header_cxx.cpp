// The header compiles as C++ (g++ -Wall -Wextra -Werror) and links with C linkage.
#include <cstdio>
#include <cstring>

#include "ipvsct.h"

static_assert(sizeof(ipvsct_ct_entry) == 352, "same layout as in C");
static_assert(sizeof(ipvsct_event) == 392 && sizeof(ipvsct_ct_request) == 256, "same layout");
static_assert(sizeof(ipvsct_ipvs_service) == 168 && sizeof(ipvsct_ipvs_conn) == 180, "same layout");
static_assert(IPVSCT_OK == 0 && IPVSCT_ERR_NOT_FOUND < 0, "result codes");

static int on_event(const ipvsct_event *ev, void *user)
{
    if (ev->kind == IPVSCT_EVENT_OVERRUN)
        ++*static_cast<int *>(user);
    return 0;
}

static int on_message(const ipvsct_message *msg, void *user)
{
    if (msg->kind == IPVSCT_MSG_CT_ENTRY)
        ++*static_cast<int *>(user);
    return 0;
}

int main()
{
    ipvsct_result r = ipvsct_decode(nullptr, 0, on_message, nullptr, nullptr);
    ipvsct_error e;
    if (r != IPVSCT_ERR_NULL_ARGUMENT || ipvsct_error_last(&e) != IPVSCT_OK ||
        e.code != IPVSCT_ERR_NULL_ARGUMENT) {
        std::fprintf(stderr, "header_cxx: unexpected result %s\n", ipvsct_result_name(r));
        return 1;
    }
    int n = 0;
    unsigned char none = 0;
    size_t count = 1;
    if (ipvsct_decode(&none, 0, on_message, &n, &count) != IPVSCT_OK || count != 0) {
        std::fprintf(stderr, "header_cxx: empty decode failed\n");
        return 1;
    }
    if (ipvsct_events_drain(nullptr, 0, on_event, &n, nullptr) != IPVSCT_ERR_NULL_ARGUMENT) {
        std::fprintf(stderr, "header_cxx: events drain without a handle\n");
        return 1;
    }
    std::printf("header_cxx: libipvsct %s\n", ipvsct_version());
    std::printf("header_cxx: 3 passed, 0 failed\n");
    return std::strcmp(ipvsct_version(), "") == 0;
}
