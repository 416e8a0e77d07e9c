/* signals.c: stop and reload flags set by signal handlers; nothing else happens in a handler. */
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "hub/common.h"
#include "hub/signals.h"

static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t reload_flag;

static void on_stop(int sig)
{
    /* A second signal means the operator wants out now, not after the drain. */
    if (stop_flag)
        _exit(128 + sig);
    stop_flag = 1;
}

static void on_hup(int sig)
{
    (void)sig;
    reload_flag = 1;
}

int hub_signals_install(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0)
        return HUB_EIO;
    sa.sa_handler = on_hup;
    if (sigaction(SIGHUP, &sa, NULL) != 0)
        return HUB_EIO;
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    return HUB_OK;
}

int hub_stop_requested(void)
{
    return stop_flag != 0;
}

void hub_stop_request(void)
{
    stop_flag = 1;
}

int hub_reload_requested(void)
{
    if (!reload_flag)
        return 0;
    reload_flag = 0;
    return 1;
}
