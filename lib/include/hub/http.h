/*
 * http.h: the operations endpoints every long-running service offers,
 * served by libmicrohttpd on its own thread:
 *
 *   GET /metrics  the registry in the Prometheus text format 0.0.4
 *   GET /healthz  200 "ok" while the service's loop calls hub_http_heartbeat()
 *                 often enough, else 503: restart the process
 *   GET /readyz   200 "ready" once the service said so with
 *                 hub_http_set_ready() and its loop is alive, else 503 with
 *                 the reason: do not send it work yet
 *
 * Any other path is 404; any method but GET and HEAD is 405.
 *
 * The server binds to a loopback address unless allow_remote is set,
 * because metrics reveal operational data (topics, volumes, failures).
 *
 * Every function below accepts a NULL server and does nothing, so a service
 * whose endpoint is disabled (http_listen = "") calls them all the same.
 */
#ifndef HUB_HTTP_H
#define HUB_HTTP_H

#include <stddef.h>

#include "hub/config.h"
#include "hub/metrics.h"

typedef struct hub_http_s hub_http_t;

typedef struct hub_http_conf_s {
    char *listen;           /* "host:port" or "[v6]:port"; port 0 picks a free one */
    int allow_remote;       /* may bind to a non-loopback address */
    long long heartbeat_ms; /* /healthz fails after this long without a heartbeat */
} hub_http_conf_t;

/* Default ports, so services on one host do not collide. */
#define HUB_HTTP_PORT_PROJECTOR 9471
#define HUB_HTTP_PORT_PLANNER   9472
#define HUB_HTTP_PORT_REMINDER  9473
#define HUB_HTTP_PORT_NOTIFIER  9474

#define HUB_HTTP_STR_(x) #x
#define HUB_HTTP_STR(x)  HUB_HTTP_STR_(x)

/*
 * HUB_HTTP_CFG_ITEMS: the three settings a service offers for its endpoint,
 * as hub_cfg_item_t initialisers for the service's own table:
 *
 *   <group>.http_listen        default "127.0.0.1:<port>" ($HUB_HTTP_LISTEN
 *                              overrides the default; "" disables)
 *   <group>.http_allow_remote  default false ($HUB_HTTP_ALLOW_REMOTE overrides
 *                              the default, e.g. in containers)
 *   <group>.http_heartbeat_ms  default 30000
 *
 * e.g. HUB_HTTP_CFG_ITEMS("planner", &conf.http, HUB_HTTP_PORT_PLANNER).
 */
#define HUB_HTTP_CFG_ITEM_(path, type, var, def, help, min, max)                                   \
    {                                                                                              \
        path, type, var, 0, def, help, min, max, NULL, NULL                                        \
    }
#define HUB_HTTP_CFG_ITEMS(group, conf, port)                                                      \
    HUB_HTTP_CFG_ITEM_(                                                                            \
        group ".http_listen", HUB_CFG_STRING, &(conf)->listen,                                     \
        "${HUB_HTTP_LISTEN:-127.0.0.1:" HUB_HTTP_STR(port) "}",                                    \
        "host:port for /metrics, /healthz and /readyz; port 0 picks one; empty: off", 0, 0),       \
        HUB_HTTP_CFG_ITEM_(group ".http_allow_remote", HUB_CFG_BOOL, &(conf)->allow_remote,        \
                           "${HUB_HTTP_ALLOW_REMOTE:-false}",                                      \
                           "allow a non-loopback http_listen (metrics reveal operational data)",   \
                           0, 0),                                                                  \
        HUB_HTTP_CFG_ITEM_(group ".http_heartbeat_ms", HUB_CFG_INT, &(conf)->heartbeat_ms,         \
                           "30000", "/healthz fails when the loop has not run for this long", 100, \
                           3600000)

/*
 * hub_http_start: binds conf->listen (which must not be empty) and serves
 * the endpoints from a background thread. metrics is borrowed and must
 * outlive the server; NULL serves /metrics as 404. The loop counts as alive
 * from here until heartbeat_ms passes without hub_http_heartbeat(); the
 * service is not ready until hub_http_set_ready(h, 1, NULL). NULL on error
 * (a malformed address, a non-loopback address without allow_remote, a
 * port in use) with the reason in errstr.
 */
hub_http_t *hub_http_start(const hub_http_conf_t *conf, hub_metrics_t *metrics, char *errstr,
                           size_t errstr_size);

/* hub_http_port: the port actually bound (useful with port 0), or 0 for NULL. */
int hub_http_port(const hub_http_t *h);

/* hub_http_heartbeat: records that the service's loop is alive. Lock-free; call every pass. */
void hub_http_heartbeat(hub_http_t *h);

/*
 * hub_http_set_ready: declares the service ready (ready non-zero, e.g. once
 * partitions are assigned and PostgreSQL is connected) or not, with a short
 * reason for /readyz (copied; no identifiers of people), e.g. "waiting for
 * partition assignment". reason may be NULL.
 */
void hub_http_set_ready(hub_http_t *h, int ready, const char *reason);

/* hub_http_stop: stops serving, waits for the thread and frees. NULL is fine. */
void hub_http_stop(hub_http_t *h);

#endif
