/* bind_loopback.so: LD_PRELOAD shim for the test pcscd (issue 8).
 *
 * Debian's vpcd driver (vsmartcard-vpcd, ifd-vpcd) listens for virtual cards with
 * bind(INADDR_ANY) on ports 35963/35964 (vsmartcard virtualsmartcard/src/vpcd/vpcd.c,
 * opensock()), so while the tests run any network peer could act as the smart card.
 * Its reverse mode (DEVICENAME host:port) connects only once, at pcscd start-up, which
 * does not fit cards being inserted and removed. This shim, preloaded into the pcscd
 * that tests/pcsc/pcscd.sh starts, turns every IPv4 wildcard bind of that process into
 * a bind to 127.0.0.1: vpcd stays reachable from this machine only.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
    static int (*real_bind)(int, const struct sockaddr *, socklen_t);
    if (!real_bind)
        real_bind = (int (*)(int, const struct sockaddr *, socklen_t)) dlsym(RTLD_NEXT, "bind");
    if (addr && addr->sa_family == AF_INET && len >= (socklen_t) sizeof(struct sockaddr_in)) {
        struct sockaddr_in local;
        memcpy(&local, addr, sizeof local);
        if (local.sin_addr.s_addr == htonl(INADDR_ANY)) {
            local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            return real_bind(fd, (const struct sockaddr *) &local, sizeof local);
        }
    }
    return real_bind(fd, addr, len);
}
