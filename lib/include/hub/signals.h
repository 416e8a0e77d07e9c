/*
 * signals.h: graceful shutdown. SIGINT/SIGTERM set a flag that service loops
 * poll (they use short timeouts on blocking calls); a second signal exits at
 * once. SIGHUP sets a separate reload flag.
 */
#ifndef HUB_SIGNALS_H
#define HUB_SIGNALS_H

/* hub_signals_install: installs the handlers. Returns 0 or HUB_EIO. */
int hub_signals_install(void);

/* hub_stop_requested: non-zero once SIGINT or SIGTERM arrived (or hub_stop_request). */
int hub_stop_requested(void);

/* hub_stop_request: asks the loops to stop, as a signal would. */
void hub_stop_request(void);

/* hub_reload_requested: non-zero (once) after SIGHUP; reading it clears it. */
int hub_reload_requested(void);

#endif
