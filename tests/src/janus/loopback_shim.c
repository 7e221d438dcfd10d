/* Preloaded into janus by bench-camera (see server.rs): Janus 1.1.2 skips every interface
 * flagged IFF_LOOPBACK when it gathers ICE candidates, so in a network namespace that has only
 * `lo` it finds no host candidate at all. This wrapper hides that one flag from the interface
 * list Janus reads, so it gathers on 127.0.0.1. Nothing else changes. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stddef.h>

int getifaddrs(struct ifaddrs **list) {
    int (*real)(struct ifaddrs **) = (int (*)(struct ifaddrs **))dlsym(RTLD_NEXT, "getifaddrs");
    if (real == NULL)
        return -1;
    int result = real(list);
    if (result == 0) {
        for (struct ifaddrs *i = *list; i != NULL; i = i->ifa_next)
            i->ifa_flags &= ~IFF_LOOPBACK;
    }
    return result;
}
